//! The optimization loop as a deterministic fixed-lag pipeline: commands in, events out.
//!
//! Work is cut into numbered rounds. A round holds `proposals_per_round` reflective proposals
//! (1 by default, so a round is one iteration of gepa's loop), or one merge, plus the human
//! decisions taken when it was planned. Round n is planned (parents, minibatches, components,
//! RNG) from the state as committed after round n − `pipeline_lag`; up to `pipeline_lag` rounds
//! are in flight, a new one starts the moment the oldest commits, and rounds commit strictly in
//! order. So the outcome depends on the project, the seed and the settings alone, never on which
//! HTTP call returned first; `pipeline_lag = 1` is the reference's sequential loop.
//!
//! A round's plan (`round_started`) is written before its work starts and its results are
//! committed by `round_finished`; a crash in between is redone from the recorded plan on resume.

use super::data_fixes::DataChanges;
use super::event::{
    candidate_hash, Event, Guidance, GuideExample, HumanAction, Origin, PlannedMerge, PlannedProposal, ProposalOutcome,
    ReviewItem, ReviewKind,
};
use super::merge::{merge_subsample, Lineage};
use super::pareto::{dominators, CandidateId};
use super::reflect::{
    build_prompt, extract_instruction, is_cut_off, validate_template, ReflectiveRecord, COMPACT_TEMPLATE, CUT_OFF_NOTE,
    DEFAULT_TEMPLATE,
};
use super::rng::derive_rng;
use super::select::select_parent;
use super::state::{CommitBuffer, RunState};
use super::steer::{Inbox, SteerAnswer};
use crate::eval::{ExampleEval, Task};
use crate::llm::{ChatRequest, Message};
use crate::project::config::{AcceptPerRound, ComponentSelection, OptimizerConfig, ReviewPolicy, SystemKind};
use crate::project::{Candidate, Example, Project};
use crate::store::{self, read_log, EventLog, RunLock};
use anyhow::{anyhow, bail, Context, Result};
use futures::future::join_all;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;

pub use super::handle::{
    Command, EngineHandle, EngineOptions, Halted, ModelUsage, Notice, RunOutcome, RunResult, Status,
};

struct Live {
    /// Metric calls committed plus those of the rounds in flight so far.
    metric_calls: AtomicU64,
    cost_micro_usd: AtomicU64,
    in_flight: AtomicUsize,
}

/// Which split an evaluation was of (the evaluation cache keeps them apart: ids may repeat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Split {
    Train,
    Val,
}

impl Split {
    fn data(self) -> crate::project::Split {
        match self {
            Split::Train => crate::project::Split::Train,
            Split::Val => crate::project::Split::Val,
        }
    }
}

/// Committed evaluations by (texts, split, example, the example's revision: how many fixes a
/// person made to it), with the round that committed them: an evaluation is reused by a round
/// only when it was committed before that round was planned, so what a round pays never depends
/// on timing (gepa's `EvaluationCache`), and never against a value the example no longer has.
#[derive(Default)]
struct EvalCache {
    entries: HashMap<CacheKey, (u64, Arc<ExampleEval>)>,
}

/// (texts hash, split, example id, the example's revision).
type CacheKey = (String, Split, String, u32);

impl EvalCache {
    fn key(hash: &str, split: Split, example: &str, data: &DataChanges) -> CacheKey {
        (hash.to_string(), split, example.to_string(), data.revision(split.data(), example))
    }

    fn get(
        &self,
        hash: &str,
        split: Split,
        example: &str,
        committed_by: u64,
        data: &DataChanges,
    ) -> Option<ExampleEval> {
        let (round, e) = self.entries.get(&Self::key(hash, split, example, data))?;
        (*round <= committed_by).then(|| ExampleEval {
            cost_usd: 0.0,
            replayed_usd: 0.0,
            cached: true,
            ..(**e).clone()
        })
    }

    /// The committed score, without copying the evaluation (for the planner's guesses).
    fn score(&self, hash: &str, split: Split, example: &str, committed_by: u64, data: &DataChanges) -> Option<f64> {
        let (round, e) = self.entries.get(&Self::key(hash, split, example, data))?;
        (*round <= committed_by).then_some(e.score)
    }

    fn contains(&self, hash: &str, split: Split, example: &str, committed_by: u64, data: &DataChanges) -> bool {
        self.entries.get(&Self::key(hash, split, example, data)).is_some_and(|(r, _)| *r <= committed_by)
    }

    /// Remembers a committed round's evaluations; failed ones are not kept (they run again).
    /// `data`: the state the round committed into (its fixes are the ones it evaluated with).
    fn put(&mut self, round: u64, hash: &str, split: Split, evals: &[ExampleEval], data: &DataChanges) {
        for e in evals.iter().filter(|e| e.error.is_none() && !e.cached) {
            self.entries
                .entry(Self::key(hash, split, &e.example_id, data))
                .or_insert_with(|| (round, Arc::new(e.clone())));
        }
    }

    /// Files the evaluations of one committed round's events.
    fn put_events(&mut self, round: u64, events: &[Event], state: &RunState) {
        let data = &state.data;
        for ev in events {
            match ev {
                Event::MinibatchEvaluated { candidate_hash: Some(h), evals, .. } => {
                    self.put(round, h, Split::Train, evals, data)
                }
                Event::ValEvaluated { candidate, evals, .. } => {
                    if let Some(c) = state.candidates.get(*candidate) {
                        self.put(round, &candidate_hash(&c.texts), Split::Val, evals, data);
                    }
                }
                Event::MergeAttempted { texts, evals, .. } => {
                    self.put(round, &candidate_hash(texts), Split::Val, evals, data)
                }
                // A val example's outputs scored again against its corrected value.
                Event::ExampleFixed { rescored, .. } => {
                    for r in rescored {
                        if let Some(c) = state.candidates.get(r.candidate) {
                            let evals = std::slice::from_ref(&r.eval);
                            self.put(round, &candidate_hash(&c.texts), Split::Val, evals, data);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Round events waiting for their commit, and the work whose events are still taken.
#[derive(Default)]
struct Held {
    buf: CommitBuffer<Event>,
    live: std::collections::HashSet<u64>,
    /// Work that was voided (its late evaluations are not shown as spent by the run).
    voided: std::collections::HashSet<u64>,
    /// Voided work told to start nothing new: what it has in flight finishes (a round planned
    /// again may be waiting for those very replies), then it ends.
    stopped: std::collections::HashSet<u64>,
}

/// What the rounds in flight are doing, for the Activity line.
#[derive(Default)]
struct Activity {
    general: String,
    rounds: BTreeMap<u64, String>,
}

/// What the rounds in flight share with the engine: the project, the models, the log.
struct Shared {
    project: Arc<Project>,
    task: Arc<Task>,
    opt: OptimizerConfig,
    template: String,
    log: Mutex<EventLog>,
    seq: AtomicU64,
    notices: Option<mpsc::UnboundedSender<Notice>>,
    paused: watch::Receiver<bool>,
    eval_slots: Arc<Semaphore>,
    /// Whether the task model's server answers requests side by side (see `engine::gauge`).
    gauge: Mutex<crate::engine::gauge::ParallelGauge>,
    live: Live,
    /// Wall-clock start of this process's part of the run.
    started: Instant,
    activity: Mutex<Activity>,
    /// The engine's own copy of the commit rule: each round's events until it commits, and the
    /// generations of round work still wanted.
    held: Mutex<Held>,
    next_gen: AtomicU64,
    cache: Mutex<EvalCache>,
    /// Rounds planned and not committed, and evaluations served from the cache (committed).
    rounds_in_flight: AtomicUsize,
    evaluations_cached: AtomicU64,
    /// The next round to commit.
    next_commit: AtomicU64,
    /// The work generation scoring the seed on val.
    seed_gen: AtomicU64,
    /// Metric calls and cost (micro-USD) spent so far by the work of each round in flight (by
    /// generation).
    round_spend: Mutex<BTreeMap<u64, (u64, u64)>>,
    evaluations_dropped: AtomicU64,
    /// Whether a round's events go out one by one (the proposal number in the activity line).
    one_per_round: bool,
    /// Early news from rounds in flight (work generation, what it knows).
    previews: mpsc::UnboundedSender<(u64, Preview)>,
}

pub struct Engine {
    sh: Arc<Shared>,
    run_dir: PathBuf,
    state: RunState,
    handle: EngineHandle,
    /// Milliseconds the run was running before this process took it up (its earlier parts).
    active_before_ms: u64,
    commands: mpsc::UnboundedReceiver<Command>,
    previews: mpsc::UnboundedReceiver<(u64, Preview)>,
    /// Commands received while waiting, not yet taken.
    command_buf: Vec<Command>,
    auto_approve: bool,
    /// Texts of the seed when branching, and where they came from.
    seed_texts: Option<(Candidate, String)>,
    /// The last committed round found a new candidate and no round has been planned since
    /// (gepa's `last_iter_found_new_program`, consumed by the next plan).
    merge_ready: bool,
    /// Work of dropped plans still running unseen (see `void_from`).
    shadows: std::collections::VecDeque<Running>,
    /// Rounds recorded as planned but not committed when the run was resumed: redone first.
    recovered: Vec<(Event, Vec<HumanAction>)>,
    /// The run folder's `gepa-tui steer` inbox (see `engine::steer`).
    inbox: Arc<Mutex<Inbox>>,
    /// Steering requests taken by the planner whose round is not recorded yet: (id, action).
    requests: Vec<(String, HumanAction)>,
    /// Steering requests recorded with a round not committed yet: (round, id, action). A round
    /// dropped and planned again records them again with their id.
    in_flight_requests: Vec<(u64, String, HumanAction)>,
    _lock: RunLock,
}

/// A spawned task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long the processes that wrote a run's log were running it, from the `t` stamps: each part
/// runs from its first event (`run_started`, or `resumed`) to the last event before the next
/// `resumed`.
fn active_ms(log: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(log) else { return 0 };
    let (mut total, mut part) = (0u64, None::<(u64, u64)>);
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        let Some(t) = v.get("t").and_then(Value::as_u64) else { continue };
        if v.get("event").and_then(Value::as_str) == Some("resumed") {
            if let Some((first, last)) = part.take() {
                total += last.saturating_sub(first);
            }
        }
        part = Some(match part {
            Some((first, _)) => (first, t),
            None => (t, t),
        });
    }
    total + part.map_or(0, |(first, last)| last.saturating_sub(first))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// The event with `seq` and `t` around it, as one JSON object.
fn stamp(ev: &Event, seq: u64) -> Value {
    let mut v = serde_json::to_value(ev).expect("events serialize");
    let obj = v.as_object_mut().expect("events are objects");
    let mut out = serde_json::Map::with_capacity(obj.len() + 2);
    out.insert("seq".into(), seq.into());
    out.insert("t".into(), now_ms().into());
    out.append(obj);
    Value::Object(out)
}

/// Reads a run's events (repairing a torn tail when `repair`): the events and a warning if repaired.
/// Events that parse but do not fit together (a hand-edited or damaged log) are an error naming
/// the first bad one, never a panic later.
pub fn load_events(run_dir: &Path, repair: bool) -> Result<(Vec<Event>, Option<String>)> {
    store::refuse_symlinks(run_dir)?;
    let path = run_dir.join("events.jsonl");
    let log = read_log::<Event>(&path, repair)?;
    if let Err((i, why)) = RunState::check_events(&log.values) {
        bail!("{}: event {} ({}) does not fit the run: {why}", path.display(), i + 1, log.values[i].name());
    }
    let warning = log.repaired_bytes.map(|n| {
        format!(
            "{}: the last line was torn by a crash; cut {n} bytes and continuing from the last complete round",
            path.display()
        )
    });
    Ok((log.values, warning))
}

impl Engine {
    /// Starts a new run in `.gepa/runs/<id>/`.
    pub fn create(project: Arc<Project>, task: Arc<Task>, opts: EngineOptions) -> Result<(Engine, EngineHandle)> {
        let problems = project.optimization_problems();
        if !problems.is_empty() {
            bail!("the project cannot be optimized yet:\n  {}", problems.join("\n  "));
        }
        let run_id = store::new_run_id();
        let run_dir = project.runs_dir().join(&run_id);
        std::fs::create_dir_all(&run_dir)
            .with_context(|| format!("cannot create the run folder {}", run_dir.display()))?;
        std::fs::write(run_dir.join("gepa.toml"), &project.config_text)
            .with_context(|| format!("cannot write {}", run_dir.join("gepa.toml").display()))?;
        let lock = RunLock::acquire(&run_dir)?;
        let log = EventLog::create(&run_dir.join("events.jsonl"))?;
        let mut engine = Self::assemble(project, task, run_dir, log, lock, RunState::default(), 0, 0, opts, &[])?;
        let p = &engine.sh.project;
        let opt = &engine.sh.opt;
        let ev = Event::RunStarted {
            run_id,
            version: env!("CARGO_PKG_VERSION").to_string(),
            seed: opt.seed,
            components: p.component_names(),
            train_ids: p.train.iter().map(|e| e.id.clone()).collect(),
            val_ids: p.val.iter().map(|e| e.id.clone()).collect(),
            test_ids: p.test.iter().map(|e| e.id.clone()).collect(),
            max_metric_calls: opt.max_metric_calls,
            proposals_per_round: opt.proposals_per_round,
            pipeline_lag: Some(opt.max_lag()),
            config_hash: blake3::hash(p.config_text.as_bytes()).to_hex().to_string(),
            branched_from: engine.seed_texts.as_ref().map(|(_, from)| from.clone()),
            frontier: opt.frontier,
            protected: p.protected.clone(),
        };
        engine.sh.emit(ev.clone(), true)?;
        engine.state.apply(&ev);
        let handle = engine.handle.clone();
        Ok((engine, handle))
    }

    /// Continues an interrupted run: the rounds it had planned and not committed are redone from
    /// their recorded plans, then planning goes on as if nothing had happened.
    pub fn resume(
        project: Arc<Project>,
        task: Arc<Task>,
        run_id: &str,
        opts: EngineOptions,
    ) -> Result<(Engine, EngineHandle)> {
        let run_dir = project.runs_dir().join(run_id);
        if !run_dir.join("events.jsonl").is_file() {
            bail!(store::StoreError::NoSuchRun(run_id.to_string()));
        }
        let lock = RunLock::acquire(&run_dir)?;
        let (events, warning) = load_events(&run_dir, true)?;
        let state = RunState::from_events(&events);
        if state.run_id.is_empty() {
            bail!("{}: the run has no run_started event; it cannot be resumed", run_dir.display());
        }
        let hash = blake3::hash(project.config_text.as_bytes()).to_hex().to_string();
        let old_hash = events.iter().find_map(|e| match e {
            Event::RunStarted { config_hash, .. } => Some(config_hash.clone()),
            _ => None,
        });
        // The time between a stop and this resume is not the run's.
        let active = active_ms(&run_dir.join("events.jsonl"));
        let log = EventLog::open_append(&run_dir.join("events.jsonl"))?;
        let mut engine =
            Self::assemble(project, task, run_dir, log, lock, state, events.len() as u64, active, opts, &events)?;
        if let Some(w) = warning {
            engine.sh.notify(Notice::Warning(w));
        }
        if old_hash.is_some_and(|h| h != hash) {
            engine.sh.notify(Notice::Warning(
                "gepa.toml changed since this run started; the resumed run follows the new settings".into(),
            ));
        }
        if engine.state.val_ids != engine.sh.project.val.iter().map(|e| e.id.clone()).collect::<Vec<_>>() {
            bail!("the val split changed since run {run_id} started; resuming would mix scores of different data");
        }
        let handle = engine.handle.clone();
        if engine.state.finished.is_none() {
            engine.rebuild_cache(&events);
            let (recovered, lost_actions) = recovered_rounds(&events, engine.state.round);
            let after_round = engine.state.round.unwrap_or(0);
            engine.sh.emit(Event::Resumed { after_round }, true)?;
            // The rounds planned before the interruption keep their plans and decisions: they
            // are redone first, so the run goes on exactly as it would have.
            for (started, actions) in &recovered {
                engine.sh.emit(started.clone(), true)?;
                for a in actions {
                    let Event::RoundStarted { round, .. } = started else { continue };
                    // A steering request keeps its id (the inbox knows it as taken by it).
                    let request = events.iter().rev().find_map(|e| match e {
                        Event::Human { round: r, action: b, request } if r == round && b == a => request.clone(),
                        _ => None,
                    });
                    if let Some(id) = &request {
                        engine.in_flight_requests.push((*round, id.clone(), a.clone()));
                    }
                    engine.sh.emit(Event::Human { round: *round, action: a.clone(), request }, true)?;
                }
            }
            // The chance to merge after the last commit is taken by the first round redone when
            // `run` revalidates it, as it was when that round was planned (a merge planned right
            // after the commit stays a merge); a fixed-lag pipeline does not revalidate, so a
            // round planned after the last commit has taken it already.
            let consumed = engine.sh.opt.keep_stale_plans
                && recovered.iter().any(
                    |(e, _)| matches!(e, Event::RoundStarted { planned_after: Some(a), .. } if Some(*a) == engine.state.round),
                );
            engine.merge_ready = engine.state.last_round_found_new && !consumed;
            engine.recovered = recovered;
            // Decisions recorded in a round whose plan cannot be redone (a log from before the
            // pipeline) are taken again when the next round is planned.
            for action in lost_actions {
                handle.act(action);
            }
        }
        Ok((engine, handle))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        project: Arc<Project>,
        task: Arc<Task>,
        run_dir: PathBuf,
        log: EventLog,
        lock: RunLock,
        state: RunState,
        seq: u64,
        active_before_ms: u64,
        opts: EngineOptions,
        events: &[Event],
    ) -> Result<Engine> {
        let opt = project.config.optimizer.clone();
        if opt.proposals_per_round == 0 || opt.minibatch_size == 0 || opt.concurrency == 0 || opt.max_lag() == 0 {
            bail!(
                "gepa.toml: [optimizer] proposals_per_round, pipeline_lag, minibatch_size and concurrency must be at least 1"
            );
        }
        // The project reads it (inside the project folder only); the engine checks its placeholders.
        let template = match project.reflection_template()? {
            Some(t) => {
                validate_template(&t).map_err(|e| {
                    anyhow!("{}: {e}", project.config.reflection.template_file.as_deref().unwrap_or_default())
                })?;
                t
            }
            None => match project.config.reflection.template {
                crate::project::config::TemplateKind::Gepa => DEFAULT_TEMPLATE.to_string(),
                crate::project::config::TemplateKind::Compact => COMPACT_TEMPLATE.to_string(),
            },
        };
        let (ptx, prx) = watch::channel(opts.start_paused);
        let (vtx, vrx) = mpsc::unbounded_channel();
        let (ctx, crx) = mpsc::unbounded_channel();
        let handle = EngineHandle { paused: ptx, cancel: CancellationToken::new(), commands: ctx };
        let sh = Shared {
            eval_slots: Arc::new(Semaphore::new(opt.concurrency)),
            gauge: Mutex::new(Default::default()),
            live: Live {
                metric_calls: AtomicU64::new(state.metric_calls),
                cost_micro_usd: AtomicU64::new((state.cost_usd * 1e6) as u64),
                in_flight: AtomicUsize::new(0),
            },
            one_per_round: opt.proposals_per_round == 1,
            previews: vtx,
            project,
            task,
            opt,
            template,
            log: Mutex::new(log),
            seq: AtomicU64::new(seq),
            notices: opts.notices,
            paused: prx,
            started: Instant::now(),
            activity: Mutex::new(Activity::default()),
            held: Mutex::new(Held::default()),
            next_gen: AtomicU64::new(1),
            cache: Mutex::new(EvalCache::default()),
            rounds_in_flight: AtomicUsize::new(0),
            evaluations_cached: AtomicU64::new(state.evaluations_cached),
            next_commit: AtomicU64::new(state.round.map(|r| r + 1).unwrap_or(0)),
            seed_gen: AtomicU64::new(u64::MAX),
            round_spend: Mutex::new(BTreeMap::new()),
            evaluations_dropped: AtomicU64::new(0),
        };
        let inbox = Arc::new(Mutex::new(Inbox::open(&run_dir, events)));
        Ok(Engine {
            sh: Arc::new(sh),
            inbox,
            requests: Vec::new(),
            in_flight_requests: Vec::new(),
            run_dir,
            state,
            handle,
            active_before_ms,
            commands: crx,
            previews: vrx,
            command_buf: Vec::new(),
            auto_approve: opts.auto_approve,
            seed_texts: opts.seed_texts,
            merge_ready: false,
            shadows: Default::default(),
            recovered: Vec::new(),
            _lock: lock,
        })
    }

    /// Files every committed evaluation of the log in the evaluation cache, with its round.
    fn rebuild_cache(&self, events: &[Event]) {
        let mut commits = CommitBuffer::default();
        let mut state = RunState::default();
        let mut cache = self.sh.cache.lock().expect("cache");
        for ev in events {
            let batch = commits.feed(ev, ev);
            let Some(Event::RoundFinished { round, .. }) = batch.last() else {
                batch.into_iter().for_each(|e| state.apply(e));
                continue;
            };
            let round = *round;
            let owned: Vec<Event> = batch.iter().map(|e| (*e).clone()).collect();
            for e in batch {
                state.apply(e);
            }
            cache.put_events(round, &owned, &state);
        }
    }

    /// Seconds the run has been running, over all its processes (not the time it lay stopped).
    fn active_secs(&self) -> f64 {
        (self.active_before_ms as f64 + self.sh.started.elapsed().as_secs_f64() * 1000.0) / 1000.0
    }

    pub fn run_id(&self) -> &str {
        &self.state.run_id
    }
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
    pub fn state(&self) -> &RunState {
        &self.state
    }
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Runs until a stopping condition (then scores the best on test and writes result.json) or
    /// until `stop()` (then returns with `result: None`, resumable).
    pub async fn run(mut self) -> Result<RunOutcome> {
        if self.state.finished.is_some() {
            let result = self.read_result()?;
            return Ok(RunOutcome { run_id: self.state.run_id.clone(), run_dir: self.run_dir.clone(), result });
        }
        let stopped = |e: &Engine| {
            e.sh.set_activity("stopped; resumable");
            RunOutcome { run_id: e.state.run_id.clone(), run_dir: e.run_dir.clone(), result: None }
        };
        // Status once a second whatever the engine is doing (a held model is worth showing even
        // while the seed is scored).
        let sh = self.sh.clone();
        let ticker = AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                sh.send_status();
            }
        }));
        // Requests already waiting in the inbox (sent while the run was stopped) are taken by the
        // first plan, whatever the poller's timing.
        let waiting = inbox_commands(&self.inbox, &self.sh);
        self.command_buf.extend(waiting);
        let poller =
            AbortOnDrop(tokio::spawn(poll_inbox(self.inbox.clone(), self.handle.commands.clone(), self.sh.clone())));
        let mut inflight: Vec<Running> = Vec::new();
        if self.state.round.is_none() {
            // The seed is scored on val as round 0, in flight like any other: the first proposals
            // (whose parent can only be the seed) start beside it.
            inflight.push(self.start_seed()?);
        }
        for (started, actions) in std::mem::take(&mut self.recovered) {
            let f = self.start_round(&plans(&inflight), started, actions);
            inflight.push(f);
        }
        // A crash may have come between a commit and the voiding of the plans it made stale.
        self.revalidate(&mut inflight)?;
        let result = self.pipeline(&mut inflight).await;
        for r in inflight.iter().chain(self.shadows.iter()) {
            r.work.abort();
        }
        drop(ticker);
        drop(poller);
        // The last tick may be up to a second old: consumers get the final counts.
        self.sh.send_status();
        match result? {
            Some(result) => Ok(RunOutcome {
                run_id: self.state.run_id.clone(),
                run_dir: self.run_dir.clone(),
                result: Some(result),
            }),
            None => Ok(stopped(&self)),
        }
    }

    /// Keeps up to `pipeline_lag` rounds in flight and commits them in order, until the run
    /// finishes (Some) or is stopped (None).
    async fn pipeline(&mut self, inflight: &mut Vec<Running>) -> Result<Option<RunResult>> {
        let cancel = self.handle.cancel.clone();
        loop {
            while inflight.len() < self.room(inflight) {
                let Some(f) = self.plan_next(&plans(inflight)) else { break };
                inflight.push(f);
            }
            self.sh.rounds_in_flight.store(inflight.len(), Ordering::Relaxed);
            if inflight.is_empty() {
                let stop = self.stop_reason(0);
                if let Some(reason) = &stop {
                    // Proposals already paid for get their review before the run ends.
                    if self.state.review_queue.is_empty() || self.auto_approve {
                        return Ok(Some(self.finish(reason).await?));
                    }
                }
                let n = self.state.review_queue.len();
                self.sh.set_activity(if stop.is_none() {
                    format!("waiting for review: {n} pending (the queue is full)")
                } else {
                    format!("budget used; {n} pending item(s) wait for review before the run finishes")
                });
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(None),
                    cmd = self.commands.recv() => match cmd {
                        Some(c) => self.command_buf.push(c),
                        // Nobody can answer any more: finish (or stop) without the reviews.
                        None => {
                            if stop.is_some() {
                                self.auto_approve = true;
                            } else {
                                return Ok(None);
                            }
                        }
                    },
                }
                continue;
            }
            let room_for_more = inflight.len() < self.room(inflight);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(None),
                done = &mut inflight[0].work => {
                    let out = done.map_err(|e| anyhow!("a round's work ended abnormally: {e}"))??;
                    if self.reused_late(&inflight[0].plan, &out) {
                        // Planned ahead, it ran what the sequential loop would have reused.
                        self.void_from(inflight, 0)?;
                        continue;
                    }
                    let f = inflight.remove(0);
                    self.commit(f.plan, out).await?;
                    self.revalidate(inflight)?;
                }
                Some((gen, preview)) = self.previews.recv() => {
                    // A fixed-lag pipeline plans from committed states only.
                    let fixed = self.sh.opt.keep_stale_plans;
                    if let Some(i) = inflight.iter().position(|r| r.plan.gen == gen).filter(|_| !fixed) {
                        inflight[i].plan.preview = Some(preview);
                        self.revalidate_from(inflight, i + 1)?;
                    }
                }
                // A decision while the pipeline has room (the review queue was full): plan now.
                cmd = self.commands.recv(), if room_for_more => {
                    if let Some(c) = cmd {
                        self.command_buf.push(c);
                    }
                }
            }
        }
    }

    /// Rounds in flight were planned ahead, from the committed state with the rounds before them
    /// assumed to change nothing. After a commit, each is kept only if the plan made now, from
    /// what those rounds really did, is the same; the first that differs is voided with every
    /// round after it (their work is dropped, never counted) and planned again. So the search is
    /// the sequential loop's, plan for plan, whatever the lag.
    fn revalidate(&mut self, inflight: &mut Vec<Running>) -> Result<()> {
        self.revalidate_from(inflight, 0)
    }

    fn revalidate_from(&mut self, inflight: &mut Vec<Running>, from: usize) -> Result<()> {
        if self.sh.opt.keep_stale_plans {
            return Ok(());
        }
        let mut merge_ready = self.merge_ready && from == 0;
        for i in from..inflight.len() {
            let before = plans(&inflight[..i]);
            let (mut view, guess) = self.planning_view_and_guess(&before);
            for a in &inflight[i].plan.actions {
                view.apply_human_action(a);
            }
            let Event::RoundStarted { round, proposals, merge, .. } = &inflight[i].plan.started else {
                unreachable!("a plan is a round_started")
            };
            if *round == 0 {
                // The seed's round is not planned: it is always the seed on val.
                continue;
            }
            let guide = inflight[i].plan.actions.iter().find(|a| is_guide(a));
            let now = self.decide(&view, &before, *round, merge_ready, guess, guide);
            let same = match now {
                Some((p, m)) => p == *proposals && m == *merge,
                None => proposals.is_empty() && merge.is_none(),
            };
            if !same {
                self.void_from(inflight, i)?;
                return Ok(());
            }
            if i == 0 && (!proposals.is_empty() || merge.is_some()) {
                self.merge_ready = false;
            }
            merge_ready = false;
        }
        Ok(())
    }

    /// Whether a round planned ahead ran an evaluation that a round committed after it was
    /// planned (and before it) had already made: the sequential loop would have reused it, so
    /// the round's count would differ; it is redone. Rare (the same texts on the same example).
    fn reused_late(&self, f: &InFlight, out: &RoundOutput) -> bool {
        let Event::RoundStarted { round, .. } = &f.started else { return false };
        if !self.sh.opt.cache_evaluations || *round == 0 {
            return false;
        }
        // The round evaluated with the data as its own decisions left it.
        let changed;
        let data = if f.actions.iter().any(|a| a.example().is_some()) {
            let mut view = self.state.clone();
            f.actions.iter().for_each(|a| view.apply_human_action(a));
            changed = view.data;
            &changed
        } else {
            &self.state.data
        };
        let cache = self.sh.cache.lock().expect("cache");
        let before = round - 1;
        let held = self.sh.held.lock().expect("held events");
        let late = |hash: &str, split: Split, evals: &[ExampleEval]| {
            evals.iter().any(|e| !e.cached && cache.contains(hash, split, &e.example_id, before, data))
        };
        let events = held.buf.pending_of(*round);
        events.iter().any(|ev| match ev {
            Event::MinibatchEvaluated { candidate_hash: Some(h), evals, .. } => late(h, Split::Train, evals),
            Event::MergeAttempted { texts, evals, .. } => late(&candidate_hash(texts), Split::Val, evals),
            _ => false,
        }) || out.scored.iter().any(|(c, evals, _, _)| late(&candidate_hash(&c.texts), Split::Val, evals))
    }

    /// Drops rounds `i..` in flight: their work stops, `round_voided` records it, and the human
    /// decisions they carried are taken again by the next plan.
    fn void_from(&mut self, inflight: &mut Vec<Running>, i: usize) -> Result<()> {
        let voided: Vec<Running> = inflight.drain(i..).collect();
        let mut actions = Vec::new();
        for r in voided {
            let Event::RoundStarted { round, .. } = r.plan.started else { unreachable!("a plan is a round_started") };
            {
                let mut held = self.sh.held.lock().expect("held events");
                held.live.remove(&r.plan.gen);
                held.voided.insert(r.plan.gen);
                let _ = held.buf.take(round);
            }
            let dropped = self.sh.drop_round_calls(r.plan.gen);
            self.sh.evaluations_dropped.fetch_add(dropped, Ordering::Relaxed);
            self.sh.emit(Event::RoundVoided { round }, true)?;
            self.sh.stage(round, None);
            actions.extend(r.plan.actions.iter().cloned().map(Command::Act));
            // A plan dropped on early news may come back (a guessed child fails after all): its
            // work goes on unseen up to its reflection and child test, so that the replies are in
            // the response cache if it does. A few at most; nothing of it is recorded or counted.
            self.shadows.push_back(r);
            while self.shadows.len() > self.sh.lag() {
                if let Some(old) = self.shadows.pop_front() {
                    // Not aborted: a round planned again may share its requests in flight.
                    self.sh.held.lock().expect("held events").stopped.insert(old.plan.gen);
                }
            }
        }
        // A steering request among them is taken again as that request (its id recorded again).
        for cmd in actions.iter_mut() {
            let Command::Act(a) = cmd else { continue };
            if let Some(i) = self.in_flight_requests.iter().position(|(_, _, b)| b == a) {
                let (_, id, action) = self.in_flight_requests.remove(i);
                *cmd = Command::Request { id, action };
            }
        }
        actions.append(&mut self.command_buf);
        self.command_buf = actions;
        Ok(())
    }

    /// The reason to stop planning, counting `in_flight_calls` not yet committed.
    fn stop_reason(&self, in_flight_calls: u64) -> Option<String> {
        let s = &self.state;
        let opt = &self.sh.opt;
        if s.metric_calls + in_flight_calls >= opt.max_metric_calls {
            return Some(format!("budget of {} metric calls used", opt.max_metric_calls));
        }
        if let Some(max) = opt.max_cost_usd {
            if s.cost_usd >= max {
                return Some(format!("cost limit of ${max:.2} reached"));
            }
        }
        if let Some(max) = opt.max_wall_secs {
            if self.active_secs() >= max {
                return Some(format!("time limit of {max:.0}s reached"));
            }
        }
        if let Some(t) = opt.score_threshold {
            if s.best_val() >= t {
                return Some(format!("best val score reached the threshold {t}"));
            }
        }
        if let Some(p) = opt.patience_rounds {
            if s.rounds_without_improvement >= p {
                return Some(format!("no improvement in {p} rounds"));
            }
        }
        if self.run_dir.join("stop").exists() {
            return Some("stop file found in the run folder".into());
        }
        // Proposals that cost nothing learn nothing: every parent was perfect on minibatches it
        // was already scored on. Without the budget moving, this would go on for ever.
        let idle = (2 * self.sh.project.train.len().div_ceil(opt.minibatch_size.max(1)) as u64).max(10);
        if s.rounds_without_calls >= idle {
            return Some(format!("nothing left to learn: {idle} proposals in a row found their parent perfect on minibatches it was already scored on"));
        }
        if let Some(max) = opt.max_rounds {
            if s.round.unwrap_or(0) >= max {
                return Some(format!("{max} rounds done"));
            }
        }
        None
    }

    /// The state a round planned now starts from (the committed state with the rounds in flight
    /// planned on top), and the parent to guess for it: the child of the latest round in flight
    /// whose child is written or passed its minibatch, when no merge or human decision comes
    /// after it (that child will most likely be the best candidate; the guess is checked at
    /// commit like every plan).
    fn planning_view_and_guess(&self, inflight: &[InFlight]) -> (RunState, Option<CandidateId>) {
        let (view, guess, _) = self.planning_view(inflight);
        (view, guess)
    }

    /// `planning_view_and_guess`, and how many of the rounds in flight skip for sure (said so, or
    /// their parent is known perfect on their minibatch or on all of val).
    fn planning_view(&self, inflight: &[InFlight]) -> (RunState, Option<CandidateId>, usize) {
        let mut view = self.state.clone();
        let mut guess = None;
        let mut sure_skips = 0;
        for f in inflight {
            let chance = match &f.preview {
                Some(Preview::Skipped) => 1.0,
                None => self.skip_chance(&view, &f.started),
                Some(_) => 0.0,
            };
            sure_skips += usize::from(chance >= 1.0);
            view.plan_in_flight(&f.started, &f.actions, chance >= 0.5);
            let Event::RoundStarted { round, proposals, merge, .. } = &f.started else { continue };
            if let (0, Some(Preview::Passed(seed)), true) = (*round, &f.preview, view.candidates.is_empty()) {
                // The seed, still being scored on val, is the only parent there can be.
                guess = Some(view.add_provisional_seed(seed));
                continue;
            }
            if merge.is_some() || !f.actions.is_empty() {
                // A merge or a person's decision may add candidates of its own: no guess past it.
                guess = None;
            }
            if let (Some(Preview::Passed(child) | Preview::Reflected(child)), Some(p)) = (&f.preview, proposals.first())
            {
                guess = Some(view.add_provisional(child, p.parent));
            }
            // A round that adds nothing (skipped, rejected, or not known yet) leaves the guess
            // standing: the guessed child stays the likeliest parent of the rounds after it.
        }
        (view, guess, sure_skips)
    }

    /// Rounds in flight at most now: the lag, and one more for each round in flight that skips
    /// for sure (its parent is perfect there: it costs one minibatch and changes nothing, so the
    /// rounds behind it are planned right), up to three lags. A parent perfect on everything
    /// has many such rounds before the run ends, and they need not wait their turn four by four.
    fn room(&self, inflight: &[Running]) -> usize {
        if self.state.round.is_none() && !self.command_buf.is_empty() {
            // Decisions wait (a steered run's inbox at start): the first proposal waits for the
            // seed's commit to take them, as it would without the head start.
            return 1;
        }
        let lag = self.sh.lag();
        if lag == 1 || self.sh.opt.keep_stale_plans {
            return lag;
        }
        if self.state.round.is_none() && self.sh.opt.lag_is_auto() {
            // The seed's val pass tells whether the server answers side by side; until then
            // only the first proposal runs beside it (on a server that answers in turn, its few
            // requests cost no more than after the seed).
            return 2;
        }
        let (_, _, sure) = self.planning_view(&plans(inflight));
        lag + sure.min(2 * lag)
    }

    /// How likely a round in flight that has not said yet is to find its parent perfect on its
    /// minibatch (then the round robin stays, and the rounds after it are planned so; from 0.5 on
    /// the planner takes it to): known when the parent's scores there are committed, else the
    /// share of val examples the parent (or its nearest scored ancestor, never quite sure) is
    /// perfect on, to the power of the minibatch size. Only a guess for planning ahead; every
    /// plan is checked at commit.
    fn skip_chance(&self, view: &RunState, started: &Event) -> f64 {
        let opt = &self.sh.opt;
        let Event::RoundStarted { proposals, merge: None, .. } = started else { return 0.0 };
        let ([p], true) = (proposals.as_slice(), opt.skip_perfect_score) else { return 0.0 };
        // A guided proposal runs even on a minibatch its parent is perfect on.
        if p.guide.is_some() {
            return 0.0;
        }
        let Some(parent) = view.candidates.get(p.parent) else { return 0.0 };
        let hash = candidate_hash(&parent.texts);
        let committed = self.state.round.unwrap_or(0);
        let known: Option<Vec<f64>> = {
            let cache = self.sh.cache.lock().expect("cache");
            p.minibatch.iter().map(|id| cache.score(&hash, Split::Train, id, committed, &view.data)).collect()
        };
        if let Some(scores) = known {
            return if scores.iter().all(|s| *s >= opt.perfect_score) { 1.0 } else { 0.0 };
        }
        let mut scored = parent;
        for _ in 0..view.candidates.len() {
            if !scored.val_scores.is_empty() {
                break;
            }
            match scored.parents.first().and_then(|&c| view.candidates.get(c)) {
                Some(c) => scored = c,
                None => return 0.0,
            }
        }
        let n = scored.val_scores.len();
        if n == 0 {
            return 0.0;
        }
        let perfect = scored.val_scores.iter().filter(|s| **s >= opt.perfect_score).count() as f64 / n as f64;
        let chance = perfect.powi(p.minibatch.len() as i32);
        if scored.id == parent.id {
            chance
        } else {
            chance.min(0.99)
        }
    }

    /// What round `round` should be, planned from `view` (the committed state, the rounds in
    /// flight and this round's human decisions on top): its proposals, or a merge. None when no
    /// proposal should start (the budget is spoken for, the review queue is full, or only reviews
    /// are left).
    ///
    /// A person's `guide` taken with the round makes it that one guided proposal (a merge owed
    /// waits): the human asked for it, so it goes before what the engine would choose.
    fn decide(
        &self,
        view: &RunState,
        inflight: &[InFlight],
        round: u64,
        merge_ready: bool,
        guess: Option<CandidateId>,
        guide: Option<&HumanAction>,
    ) -> Option<(Vec<PlannedProposal>, Option<PlannedMerge>)> {
        let opt = &self.sh.opt;
        if guess.is_some() && opt.merge && guide.is_none() {
            // After a new candidate a merge may be due; that waits for the commit.
            return None;
        }
        let projected: u64 = inflight.iter().map(|f| f.min_calls).sum();
        if self.stop_reason(projected).is_some() || opt.max_rounds.is_some_and(|max| round > max) {
            return None;
        }
        let (mutation_policy, merge_policy) = self.policies(view);
        let room = if mutation_policy == ReviewPolicy::Auto && merge_policy == ReviewPolicy::Auto {
            usize::MAX
        } else {
            let pending = view.review_queue.len() + inflight.iter().map(|f| f.may_queue).sum::<usize>();
            self.sh.project.config.review.max_pending.max(1).saturating_sub(pending)
        };
        if room == 0 {
            return None;
        }
        if let Some(g) = guide {
            return Some((vec![self.guided_proposal(view, g)?], None));
        }
        if opt.merge && merge_ready && view.merges_due > 0 {
            if let Some(m) = self.plan_merge(view, round) {
                return Some((vec![], Some(m)));
            }
        }
        Some((self.plan_proposals(view, round, opt.proposals_per_round.min(room), guess), None))
    }

    /// Plans the next round from the committed state and the rounds in flight, records its plan,
    /// and starts its work. None when nothing should start now.
    fn plan_next(&mut self, inflight: &[InFlight]) -> Option<Running> {
        let (mut view, guess) = self.planning_view_and_guess(inflight);
        // A person's decisions wait for the seed's commit (they name candidates and items).
        let mut actions = if self.state.round.is_some() { self.take_commands(&mut view) } else { vec![] };
        let committed = self.state.round.unwrap_or(0);
        let round = self.state.round.map_or(0, |r| r + 1) + inflight.len() as u64;
        let guide = actions.iter().position(is_guide);
        let decided = self.decide(&view, inflight, round, self.merge_ready, guess, guide.map(|i| &actions[i]));
        if let Some(i) = guide.filter(|_| decided.is_none()) {
            // No proposal can start now (the budget is spoken for, or the review queue is full):
            // the guide waits for the next plan.
            let a = actions.remove(i);
            self.defer(a);
        }
        let (proposals, merge) = decided.unwrap_or_default();
        if proposals.is_empty() && merge.is_none() && actions.is_empty() {
            return None;
        }
        if !proposals.is_empty() || merge.is_some() {
            self.merge_ready = false;
        }
        let started = Event::RoundStarted { round, proposals, planned_after: Some(committed), merge };
        if let Err(e) = self.record_plan(&started, &actions) {
            return Some(fail_round(e, started, actions));
        }
        Some(self.start_round(inflight, started, actions))
    }

    /// Records a round's plan and the decisions taken with it; a steering request among them is
    /// recorded with its id and answered as taken.
    fn record_plan(&mut self, started: &Event, actions: &[HumanAction]) -> Result<()> {
        let Event::RoundStarted { round, .. } = started else { unreachable!("a plan is a round_started") };
        self.sh.emit(started.clone(), true)?;
        let mut taken = Vec::new();
        for a in actions {
            let request = self.requests.iter().position(|(_, r)| r == a).map(|i| self.requests.remove(i).0);
            self.sh.emit(Event::Human { round: *round, action: a.clone(), request: request.clone() }, true)?;
            if let Some(id) = request {
                self.in_flight_requests.push((*round, id.clone(), a.clone()));
                taken.push(id);
            }
        }
        for id in taken {
            self.answer(&SteerAnswer::taken(&id, *round));
        }
        Ok(())
    }

    /// Writes the answer to a steering request (a failure is said, not fatal: the request is
    /// recorded in the log either way).
    fn answer(&self, answer: &SteerAnswer) {
        let inbox = self.inbox.lock().expect("inbox");
        if let Err(e) = inbox.answer(answer) {
            let path = inbox.dir().join(super::steer::ANSWERS);
            self.sh.notify(Notice::Warning(format!(
                "cannot answer steering request {}: {}: {e}",
                answer.id,
                path.display()
            )));
        }
    }

    /// A decision taken but not planned now: back to the front of the queue (with its request
    /// id, when it came from the inbox).
    fn defer(&mut self, a: HumanAction) {
        let cmd = match self.requests.iter().position(|(_, r)| *r == a) {
            Some(i) => Command::Request { id: self.requests.remove(i).0, action: a },
            None => Command::Act(a),
        };
        self.command_buf.insert(0, cmd);
    }

    /// The decisions still queued when the run finishes (a guide the budget left no room for, a
    /// request that came too late): the workbench is told, a steering request is answered.
    fn refuse_leftovers(&mut self, reason: &str) {
        let mut cmds = std::mem::take(&mut self.command_buf);
        while let Ok(cmd) = self.commands.try_recv() {
            cmds.push(cmd);
        }
        for cmd in cmds {
            let why = format!("the run finished ({reason}) before this could be taken");
            match cmd {
                Command::Request { id, action } => {
                    self.answer(&SteerAnswer::refused(&id, &why));
                    self.sh.notify(Notice::Refused { action, why });
                }
                Command::Act(action) => self.sh.notify(Notice::Refused { action, why }),
                Command::ApproveAll => {}
            }
        }
    }

    /// Turns a recorded plan into its work, started beside the rounds in flight.
    fn start_round(&self, inflight: &[InFlight], started: Event, actions: Vec<HumanAction>) -> Running {
        let Event::RoundStarted { round, proposals, planned_after, merge } = &started else {
            unreachable!("a plan is a round_started")
        };
        // The view with the guessed child in it: it only adds a candidate, so the human decisions
        // read it as they would the plain view.
        let (view, _) = self.planning_view_and_guess(inflight);
        let reuse_until = planned_after.unwrap_or(round.saturating_sub(1));
        let mut after_actions = view.clone();
        for a in &actions {
            after_actions.apply_human_action(a);
        }
        let (mutation_policy, merge_policy) = self.policies(&after_actions);
        let human: Vec<NewCandidate> = actions.iter().filter_map(|a| self.human_candidate(&view, a)).collect();
        let jobs: Vec<ProposalJob> = proposals
            .iter()
            .filter_map(|p| {
                let parent_texts = view.candidates.get(p.parent)?.texts.clone();
                Some(ProposalJob { plan: p.clone(), parent_texts })
            })
            .collect();
        let merge_job = merge.as_ref().map(|m| self.merge_job(m));
        // The data as this round evaluates it: its own exclusions and fixes taken.
        let data = Arc::new(after_actions.data.clone());
        let all_val: Vec<&str> = self.sh.project.val.iter().map(|e| e.id.as_str()).collect();
        let val_ids: Vec<&str> =
            all_val.iter().copied().filter(|id| !data.is_excluded(crate::project::Split::Val, id)).collect();
        let mut min_calls: u64 =
            human.iter().map(|c| self.sh.uncached(&c.texts, &val_ids, Split::Val, reuse_until, &data)).sum();
        for j in &jobs {
            let ids: Vec<&str> = j.plan.minibatch.iter().map(String::as_str).collect();
            min_calls += self.sh.uncached(&j.parent_texts, &ids, Split::Train, reuse_until, &data);
        }
        if let Some(m) = &merge_job {
            let ids: Vec<&str> = m.plan.subsample.iter().map(|&i| all_val[i]).collect();
            min_calls += self.sh.uncached(&m.plan.texts, &ids, Split::Val, reuse_until, &data);
        }
        let may_queue = match (mutation_policy, merge_policy) {
            (ReviewPolicy::Approve, _) if !jobs.is_empty() => jobs.len(),
            (_, ReviewPolicy::Approve) if merge_job.is_some() => 1,
            _ => 0,
        };
        let gen = self.sh.next_gen.fetch_add(1, Ordering::Relaxed);
        self.sh.held.lock().expect("held events").live.insert(gen);
        let plan = RoundPlan {
            round: *round,
            gen,
            planned_after: reuse_until,
            human,
            proposals: jobs,
            merge: merge_job,
            vetoes: after_actions.vetoes.clone(),
            protected: after_actions.protected.clone(),
            mutation_policy,
            merge_policy,
            data,
        };
        let what = if plan.merge.is_some() {
            "merge planned"
        } else if plan.proposals.is_empty() {
            "scoring a person's candidate(s) on val"
        } else {
            "planned"
        };
        self.sh.stage(*round, Some(what.into()));
        let work = tokio::spawn(self.sh.clone().run_round(plan));
        Running { plan: InFlight { started, gen, preview: None, actions, min_calls, may_queue }, work }
    }

    /// Review policies in force (`ReviewConfig::in_force`).
    fn policies(&self, view: &RunState) -> (ReviewPolicy, ReviewPolicy) {
        self.sh.project.config.review.in_force(view.policy, self.auto_approve)
    }

    /// Takes the human commands that arrived since the last plan, validated against the view.
    /// One `guide` is taken per round (it is the round's proposal); later ones wait, in order.
    fn take_commands(&mut self, view: &mut RunState) -> Vec<HumanAction> {
        let mut cmds = std::mem::take(&mut self.command_buf);
        while let Ok(cmd) = self.commands.try_recv() {
            cmds.push(cmd);
        }
        let mut out: Vec<HumanAction> = Vec::new();
        let mut later = Vec::new();
        // Texts a decision of this batch adds: text protected with them is in the run too.
        let mut added: Vec<Candidate> = Vec::new();
        let committed = self.state.candidates.len();
        for cmd in cmds {
            let (actions, request) = match cmd {
                Command::ApproveAll => {
                    (view.review_queue.iter().map(|i| HumanAction::Approve { item: i.item }).collect(), None)
                }
                Command::Act(a) => (vec![a], None),
                Command::Request { id, action } => (vec![action], Some(id)),
            };
            for a in actions {
                if is_guide(&a) && (out.iter().any(is_guide) || !later.is_empty()) {
                    later.push(match &request {
                        Some(id) => Command::Request { id: id.clone(), action: a },
                        None => Command::Act(a),
                    });
                    continue;
                }
                match check_action(&a, view, committed, &added) {
                    Ok(()) => {
                        match &a {
                            HumanAction::AddCandidate { texts, .. } | HumanAction::Edit { texts, .. } => {
                                added.push(texts.clone())
                            }
                            HumanAction::Approve { item } => {
                                added.extend(view.review_item(*item).map(|i| i.texts.clone()))
                            }
                            _ => {}
                        }
                        view.apply_human_action(&a);
                        if let Some(id) = &request {
                            self.requests.push((id.clone(), a.clone()));
                        }
                        out.push(a);
                    }
                    Err(why) => {
                        if let Some(id) = &request {
                            self.answer(&SteerAnswer::refused(id, &why));
                        }
                        self.sh.notify(Notice::Refused { action: a, why });
                    }
                }
            }
        }
        self.command_buf = later;
        out
    }

    /// The candidate a human action asks to score on val, if any (`view`: before the action).
    fn human_candidate(&self, view: &RunState, a: &HumanAction) -> Option<NewCandidate> {
        let s = view;
        let changed_from = |texts: &Candidate, parent: Option<&CandidateId>| -> Vec<String> {
            match parent.and_then(|p| s.candidates.get(*p)) {
                Some(p) => texts.iter().filter(|(k, v)| p.texts.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect(),
                None => texts.keys().cloned().collect(),
            }
        };
        let item = |n: u64| s.review_item(n).or_else(|| self.state.review_item(n));
        match a {
            HumanAction::Approve { item: n } => {
                let it = item(*n)?;
                let origin = if it.kind == ReviewKind::Merge { Origin::Merge } else { Origin::Mutation };
                Some(NewCandidate {
                    texts: it.texts.clone(),
                    parents: it.parents.clone(),
                    origin,
                    changed: it.changed.clone(),
                    note: Some(format!("approved by a person (review item {n})")),
                })
            }
            HumanAction::Edit { item: n, texts } => {
                let it = item(*n)?;
                Some(NewCandidate {
                    texts: texts.clone(),
                    parents: it.parents.clone(),
                    origin: Origin::Human,
                    changed: changed_from(texts, it.parents.first()),
                    note: Some(format!("edited by a person before approval (review item {n})")),
                })
            }
            HumanAction::AddCandidate { texts, parents, origin, note } => Some(NewCandidate {
                texts: texts.clone(),
                parents: parents.clone(),
                origin: *origin,
                changed: changed_from(texts, parents.first()),
                note: Some(note.clone()),
            }),
            HumanAction::Veto { .. }
            | HumanAction::SetPolicy { .. }
            | HumanAction::ExcludeExample { .. }
            | HumanAction::FixExample { .. }
            | HumanAction::Guide { .. }
            | HumanAction::Protect { .. } => None,
        }
    }

    /// The one proposal of a round a person asked for (`guide`): its candidate as the parent,
    /// the next minibatch as usual, the component asked for (else the parent's round robin).
    fn guided_proposal(&self, view: &RunState, guide: &HumanAction) -> Option<PlannedProposal> {
        let HumanAction::Guide { candidate, note, example, component } = guide else { return None };
        let opt = &self.sh.opt;
        let train: Vec<String> = self.sh.project.train.iter().map(|e| e.id.clone()).collect();
        view.candidates.get(*candidate)?;
        let minibatch_index = view.minibatches_drawn;
        // Excluded train examples are not drawn (see data_fixes.rs).
        let minibatch = view.minibatch_ids(opt.seed, &train, opt.minibatch_size, minibatch_index);
        let components = match (component, opt.component_selection) {
            (Some(c), _) => vec![c.clone()],
            (None, ComponentSelection::All) => view.components.clone(),
            (None, ComponentSelection::RoundRobin) => {
                let next = view.next_component.get(*candidate).copied().unwrap_or(0);
                vec![view.components.get(next % view.components.len().max(1))?.clone()]
            }
        };
        Some(PlannedProposal {
            slot: 0,
            parent: *candidate,
            minibatch_index,
            minibatch,
            components,
            guide: Some(Guidance { note: note.trim().to_string(), example: example.clone() }),
        })
    }

    /// Chooses a round's parents, minibatches and components from the planning view.
    fn plan_proposals(
        &self,
        view: &RunState,
        round: u64,
        slots: usize,
        guess: Option<CandidateId>,
    ) -> Vec<PlannedProposal> {
        let s = view;
        let opt = &self.sh.opt;
        let train: Vec<String> = self.sh.project.train.iter().map(|e| e.id.clone()).collect();
        let fronts = s.front_sets();
        let means = s.val_means();
        let n_comp = s.components.len();
        let mut pointer_bumps: BTreeMap<CandidateId, usize> = BTreeMap::new();
        (0..slots)
            .map(|slot| {
                let mut rng = derive_rng(opt.seed, &["select", &round.to_string(), &slot.to_string()]);
                let parent = match guess {
                    Some(g) => g,
                    None => select_parent(opt.candidate_selection, &fronts, &means, opt.epsilon, opt.top_k, &mut rng),
                };
                let minibatch_index = s.minibatches_drawn + slot as u64;
                // Excluded train examples are not drawn (see data_fixes.rs).
                let minibatch = s.minibatch_ids(opt.seed, &train, opt.minibatch_size, minibatch_index);
                let components = match opt.component_selection {
                    ComponentSelection::All => s.components.clone(),
                    ComponentSelection::RoundRobin => {
                        // Several slots may share a parent: each takes the next component in turn.
                        let bump = pointer_bumps.entry(parent).or_insert(0);
                        let c = (s.next_component[parent] + *bump) % n_comp;
                        *bump += 1;
                        vec![s.components[c].clone()]
                    }
                };
                PlannedProposal { slot, parent, minibatch_index, minibatch, components, guide: None }
            })
            .collect()
    }

    /// Picks a merge of two frontier candidates (gepa's MergeProposer) and its val subsample. None
    /// when no pair qualifies; then the round does reflective proposals instead, as gepa does.
    fn plan_merge(&self, view: &RunState, round: u64) -> Option<PlannedMerge> {
        let s = view;
        let opt = &self.sh.opt;
        // Both parents must have been scored on at least this many of the same val examples
        // (gepa merge.py's `val_overlap_floor`); every candidate here is scored on all of val
        // that counts (excluded examples are not).
        let counted = s.counted_val();
        if counted.len() < MERGE_VAL_OVERLAP_FLOOR {
            return None;
        }
        let means = s.val_means();
        let pool: Vec<CandidateId> = dominators(&s.front_sets(), &means).into_iter().map(|(c, _)| c).collect();
        let texts: Vec<Candidate> = s.candidates.iter().map(|c| c.texts.clone()).collect();
        let parents: Vec<Vec<CandidateId>> = s.candidates.iter().map(|c| c.parents.clone()).collect();
        let lineage = Lineage { texts: &texts, parents: &parents, scores: &means };
        let mut rng = derive_rng(opt.seed, &["merge", &round.to_string()]);
        let mut history = s.merges.clone();
        let plan = lineage.plan_merge(&mut rng, &pool, &mut history)?;
        let mut rng = derive_rng(opt.seed, &["merge-subsample", &round.to_string()]);
        let (s1, s2) = (&s.candidates[plan.id1].val_scores, &s.candidates[plan.id2].val_scores);
        // Drawn among the examples that count, as if the excluded ones were not in val; and not on
        // one fixed in a round not committed yet (the parents' scores there are scored again
        // against its new value only then).
        let val = crate::project::Split::Val;
        let examples: Vec<usize> = counted
            .into_iter()
            .filter(|&i| s.data.revision(val, &s.val_ids[i]) == self.state.data.revision(val, &s.val_ids[i]))
            .collect();
        let subsample = if examples.len() == s.val_ids.len() {
            merge_subsample(s1, s2, opt.merge_subsample, &mut rng)
        } else {
            let pick = |v: &[f64]| examples.iter().map(|&i| v.get(i).copied().unwrap_or(0.0)).collect::<Vec<_>>();
            merge_subsample(&pick(s1), &pick(s2), opt.merge_subsample, &mut rng)
                .into_iter()
                .map(|k| examples[k])
                .collect()
        };
        Some(PlannedMerge {
            id1: plan.id1,
            id2: plan.id2,
            ancestor: plan.ancestor,
            sources: plan.sources,
            texts: plan.texts,
            subsample,
        })
    }

    fn merge_job(&self, plan: &PlannedMerge) -> MergeJob {
        let s = &self.state;
        let (s1, s2) = (&s.candidates[plan.id1].val_scores, &s.candidates[plan.id2].val_scores);
        let id1_sum: f64 = plan.subsample.iter().map(|&i| s1[i]).sum();
        let id2_sum: f64 = plan.subsample.iter().map(|&i| s2[i]).sum();
        let better = if id2_sum > id1_sum { s2 } else { s1 };
        let changed: Vec<String> = plan
            .texts
            .iter()
            .filter(|(k, v)| s.candidates[plan.id1].texts.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        MergeJob {
            plan: plan.clone(),
            id1_sum,
            id2_sum,
            better_scores: plan.subsample.iter().map(|&i| better[i]).collect(),
            changed,
        }
    }

    /// Commits the oldest round: records what it added (ids and review numbers are given here, in
    /// round order), applies its events to the state, and files its evaluations in the cache.
    /// A round that fixed examples first scores the recorded val outputs again (data_fixes.rs).
    async fn commit(&mut self, f: InFlight, mut out: RoundOutput) -> Result<()> {
        let Event::RoundStarted { round, .. } = f.started else { unreachable!("a plan is a round_started") };
        self.in_flight_requests.retain(|(r, _, _)| *r != round);
        let sh = self.sh.clone();
        if !super::data_fixes::fixed_in(&f.actions).is_empty() {
            sh.set_activity("scoring the recorded outputs again against the corrected examples");
            let (fixed, calls, cost) = self.rescore_fixes(round, &f.actions).await?;
            for ev in fixed {
                sh.emit(ev, false)?;
            }
            out.calls += calls;
            out.cost += cost;
            sh.set_activity("");
        }
        let finished = |p: &Passed, outcome: ProposalOutcome, child: &Candidate| Event::ProposalFinished {
            round,
            slot: p.slot,
            parent: p.parent,
            outcome,
            child: Some(child.clone()),
        };
        // Identical children are one review item: the first queued stands for the others.
        let mut queued: Vec<(u64, Candidate)> =
            self.state.review_queue.iter().map(|i| (i.item, i.texts.clone())).collect();
        let mut next_item = self.state.next_review_item;
        for (mut item, passed) in out.to_review {
            if let Some((same, _)) = queued.iter().find(|(_, t)| *t == item.texts) {
                if let Some(p) = &passed {
                    let (parent_sum, child_sum) = p.sums;
                    let outcome = ProposalOutcome::SameAsPending { item: *same, parent_sum, child_sum };
                    sh.emit(finished(p, outcome, &item.texts), false)?;
                }
                continue;
            }
            if let Some(p) = &passed {
                let (parent_sum, child_sum) = p.sums;
                sh.emit(finished(p, ProposalOutcome::Accepted { parent_sum, child_sum }, &item.texts), false)?;
            }
            item.item = next_item;
            next_item += 1;
            queued.push((item.item, item.texts.clone()));
            sh.emit(Event::ReviewQueued { item }, false)?;
        }
        let base_id = self.state.candidates.len();
        for (k, (c, evals, calls_before, passed)) in out.scored.into_iter().enumerate() {
            if let Some(p) = &passed {
                let (parent_sum, child_sum) = p.sums;
                sh.emit(finished(p, ProposalOutcome::Accepted { parent_sum, child_sum }, &c.texts), false)?;
            }
            let id = base_id + k;
            sh.emit(
                Event::CandidateAdded {
                    id,
                    texts: c.texts,
                    parents: c.parents,
                    origin: c.origin,
                    changed: c.changed,
                    round,
                    discovered_at: self.state.metric_calls + calls_before,
                    note: c.note,
                },
                false,
            )?;
            sh.emit(Event::ValEvaluated { candidate: id, evals, round: Some(round) }, false)?;
        }
        let batch = {
            let mut held = sh.held.lock().expect("held events");
            held.live.remove(&f.gen);
            held.buf.take(round)
        };
        let mut next = self.state.clone();
        for ev in &batch {
            next.apply(ev);
        }
        let accepted_mutations =
            batch.iter().filter(|e| matches!(e, Event::CandidateAdded { origin: Origin::Mutation, .. })).count();
        let mut merges_due = next.merges_due;
        if sh.opt.merge {
            for _ in 0..accepted_mutations {
                if next.merges_tested < sh.opt.max_merges {
                    merges_due += 1;
                }
            }
        }
        let (mut input_tokens, mut output_tokens) = (self.state.input_tokens, self.state.output_tokens);
        for ev in &batch {
            for u in event_usage(ev) {
                input_tokens += u.input_tokens;
                output_tokens += u.output_tokens;
            }
        }
        let metric_calls = self.state.metric_calls + out.calls;
        // What the round's replies cost, paid and served free from the response cache apart.
        let (paid, replayed) = batch.iter().map(event_cost).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        debug_assert!((paid + replayed - out.cost).abs() < 1e-9, "the events hold every cost of the round");
        let cost_usd = self.state.cost_usd + paid;
        let cost_usd_replayed = self.state.cost_usd_replayed + replayed;
        let fin = Event::RoundFinished {
            round,
            metric_calls,
            cost_usd,
            cost_usd_replayed,
            best: next.best().unwrap_or(0),
            best_val: next.best_val(),
            merges_due,
            found_new: out.found_new,
            input_tokens,
            output_tokens,
            objective_bests: next.objective_bests(),
        };
        sh.emit(fin.clone(), true)?;
        next.apply(&fin);
        tracing::info!(
            round,
            metric_calls,
            cost_usd,
            candidates = next.candidates.len(),
            best_val = next.best_val(),
            "round committed"
        );
        sh.cache.lock().expect("cache").put_events(round, &batch, &next);
        sh.drop_round_calls(f.gen);
        sh.live.metric_calls.store(next.metric_calls, Ordering::Relaxed);
        sh.live.cost_micro_usd.store((next.cost_usd * 1e6).round() as u64, Ordering::Relaxed);
        self.state = next;
        self.merge_ready = out.found_new;
        sh.stage(round, None);
        // Live counters: the committed totals plus what the rounds still in flight spent so far.
        sh.evaluations_cached.store(self.state.evaluations_cached, Ordering::Relaxed);
        sh.next_commit.store(round + 1, Ordering::Relaxed);
        sh.send_status();
        Ok(())
    }

    /// The `example_fixed` events of a round's fixes (see `data_fixes::rescore_fixes`), with the
    /// earlier candidates' val outputs read back from the committed events of the log.
    async fn rescore_fixes(&self, round: u64, actions: &[HumanAction]) -> Result<(Vec<Event>, u64, f64)> {
        let val_fixed: Vec<String> = super::data_fixes::fixed_in(actions)
            .into_iter()
            .filter(|(split, _, _)| *split == crate::project::Split::Val)
            .map(|(_, id, _)| id)
            .collect();
        let recorded = if val_fixed.is_empty() {
            Default::default()
        } else {
            // Held so that no line is appended while it is read.
            let _log = self.sh.log.lock().expect("log lock");
            let events = read_log::<Event>(&self.run_dir.join("events.jsonl"), false)?.values;
            let ids: Vec<&str> = val_fixed.iter().map(String::as_str).collect();
            super::data_fixes::committed_val_evals(&events, &ids)
        };
        let sh = &self.sh;
        super::data_fixes::rescore_fixes(&sh.task, &sh.project, &self.state, round, actions, &recorded)
            .await
            .map_err(|e| if e.stops_run() { anyhow::Error::new(Halted(e)) } else { anyhow!("{e}") })
    }

    /// Starts round 0: the seed scored on val. Its commit adds candidate 0.
    fn start_seed(&self) -> Result<Running> {
        let sh = self.sh.clone();
        let started = Event::RoundStarted { round: 0, proposals: vec![], planned_after: None, merge: None };
        sh.emit(started.clone(), false)?;
        sh.stage(0, Some("scoring the seed candidate on val".into()));
        let seed = self.seed_texts.as_ref().map(|(t, _)| t.clone()).unwrap_or_else(|| sh.project.seed.clone());
        let val_ids: Vec<&str> = sh.project.val.iter().map(|e| e.id.as_str()).collect();
        let min_calls = sh.uncached(&seed, &val_ids, Split::Val, 0, &self.state.data);
        let gen = sh.next_gen.fetch_add(1, Ordering::Relaxed);
        sh.seed_gen.store(gen, Ordering::Relaxed);
        sh.held.lock().expect("held events").live.insert(gen);
        let texts = seed.clone();
        let work = tokio::spawn(async move {
            let val: Vec<&Example> = sh.project.val.iter().collect();
            let (evals, calls, cost) = sh.evaluate(gen, &texts, &val, Split::Val, None).await?;
            let seed = NewCandidate { texts, parents: vec![], origin: Origin::Seed, changed: vec![], note: None };
            Ok(RoundOutput { calls, cost, scored: vec![(seed, evals, 0, None)], ..Default::default() })
        });
        let preview = Some(Preview::Passed(seed));
        Ok(Running { plan: InFlight { started, gen, preview, actions: vec![], min_calls, may_queue: 0 }, work })
    }

    /// Scores the best candidate on test, records `finished`, and writes result.json and best/.
    async fn finish(&mut self, reason: &str) -> Result<RunResult> {
        let sh = self.sh.clone();
        let best = self.state.best().ok_or_else(|| anyhow!("the run has no candidates"))?;
        if !sh.project.test.is_empty() && self.state.candidates[best].test_mean.is_none() {
            sh.set_activity("scoring the best candidate on test");
            let texts = self.state.candidates[best].texts.clone();
            let test: Vec<&Example> = sh.project.test.iter().collect();
            let gen = sh.next_gen.fetch_add(1, Ordering::Relaxed);
            let (evals, _, _) = sh.evaluate(gen, &texts, &test, Split::Val, None).await?;
            sh.drop_round_calls(gen);
            let m = mean(&evals.iter().map(|e| e.score).collect::<Vec<_>>());
            let ev = Event::TestEvaluated { candidate: best, evals, mean: m };
            sh.emit(ev.clone(), true)?;
            self.state.apply(&ev);
        }
        let s = &self.state;
        let fin = Event::Finished {
            reason: reason.to_string(),
            best,
            best_val: s.candidates[best].val_mean,
            test_score: s.candidates[best].test_mean,
            candidates: s.candidates.len(),
            metric_calls: s.metric_calls,
            cost_usd: s.cost_usd,
        };
        sh.emit(fin.clone(), true)?;
        self.state.apply(&fin);
        self.refuse_leftovers(reason);
        sh.set_activity(format!("finished: {reason}"));
        let result = self.result_now()?;
        self.write_outputs(&result)?;
        Ok(result)
    }

    fn result_now(&self) -> Result<RunResult> {
        let s = &self.state;
        let failed = s.failed_evaluations;
        let (reason, cost) = (s.finished.clone().unwrap_or_default(), s.cost_usd);
        let best = s.best().unwrap_or(0);
        let bv = s.candidates[best].val_mean;
        let test = s.candidates[best].test_mean;
        Ok(RunResult {
            run_id: s.run_id.clone(),
            stop_reason: reason,
            best_candidate: best,
            best_val_score: bv,
            seed_val_score: s.candidates.first().map(|c| c.val_mean).unwrap_or(0.0),
            test_score: test,
            val_test_gap: test.map(|t| bv - t),
            candidates: s.candidates.len(),
            metric_calls: s.metric_calls,
            evaluations_cached: s.evaluations_cached,
            evaluations_dropped: self.sh.evaluations_dropped.load(Ordering::Relaxed),
            cost_usd: cost,
            cost_usd_replayed: s.cost_usd_replayed,
            failed_evaluations: failed,
            wall_seconds: self.active_secs(),
            best_texts: s.candidates[best].texts.clone(),
            guided_proposals: s.guided_proposals,
            children_refused: s.children_refused,
            objectives: s.objective_report(),
            data: s.data_report(),
        })
    }

    fn read_result(&self) -> Result<Option<RunResult>> {
        let path = self.run_dir.join("result.json");
        if !path.exists() {
            // Finished but result.json lost (crash between the two writes): rebuild it.
            let r = self.result_now()?;
            self.write_outputs(&r)?;
            return Ok(Some(r));
        }
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))?))
    }

    fn write_outputs(&self, r: &RunResult) -> Result<()> {
        let best_dir = self.run_dir.join("best");
        std::fs::create_dir_all(&best_dir).with_context(|| format!("cannot create {}", best_dir.display()))?;
        for (name, file) in best_file_names(&self.sh.project) {
            if let Some(text) = r.best_texts.get(&name) {
                store::write_atomic(&best_dir.join(file), text.as_bytes())?;
            }
        }
        let json = serde_json::to_vec_pretty(r).expect("result serializes");
        store::write_atomic(&self.run_dir.join("result.json"), &json)?;
        Ok(())
    }
}

/// gepa merge.py's `val_overlap_floor`: a merge needs this many val examples both parents were
/// scored on.
const MERGE_VAL_OVERLAP_FLOOR: usize = 5;

/// A round whose plan could not be recorded: its work is the error, so the run stops there.
fn fail_round(e: anyhow::Error, started: Event, actions: Vec<HumanAction>) -> Running {
    let work = tokio::spawn(async move { Err(e) });
    Running { plan: InFlight { started, gen: 0, preview: None, actions, min_calls: 0, may_queue: 0 }, work }
}

/// The plans of rounds in flight.
fn plans(inflight: &[Running]) -> Vec<InFlight> {
    inflight.iter().map(|r| r.plan.clone()).collect()
}

/// Whether the run whose committed state is `state` would take decision `a` now (`gepa-tui
/// steer` asks before it sends; the engine asks again when it plans).
pub fn check_request(a: &HumanAction, state: &RunState) -> std::result::Result<(), String> {
    check_action(a, state, state.candidates.len(), &[])
}

fn is_guide(a: &HumanAction) -> bool {
    matches!(a, HumanAction::Guide { .. })
}

/// Whether a decision can be taken on `view`: `committed` candidates exist for good (a guide names
/// one of them), `added` are texts earlier decisions of the same batch add.
fn check_action(
    a: &HumanAction,
    view: &RunState,
    committed: usize,
    added: &[Candidate],
) -> std::result::Result<(), String> {
    let texts_ok = |texts: &Candidate| -> std::result::Result<(), String> {
        let mut want: Vec<&String> = view.components.iter().collect();
        want.sort();
        if texts.keys().collect::<Vec<_>>() != want {
            return Err(format!("texts must have exactly the components {:?}", view.components));
        }
        Ok(())
    };
    match a {
        HumanAction::Approve { item } | HumanAction::Veto { item, .. } => {
            view.review_item(*item).map(|_| ()).ok_or_else(|| format!("no pending review item {item}"))
        }
        HumanAction::Edit { item, texts } => {
            view.review_item(*item).ok_or_else(|| format!("no pending review item {item}"))?;
            texts_ok(texts)
        }
        HumanAction::AddCandidate { texts, parents, .. } => {
            if let Some(p) = parents.iter().find(|p| **p >= view.candidates.len()) {
                return Err(format!("no candidate {p}"));
            }
            texts_ok(texts)
        }
        HumanAction::SetPolicy { .. } => Ok(()),
        HumanAction::ExcludeExample { .. } | HumanAction::FixExample { .. } => view.check_data_action(a),
        HumanAction::Guide { candidate, note, example, component } => {
            if *candidate >= committed {
                return Err(format!(
                    "no candidate {candidate} (the run has {committed}: 0 to {})",
                    committed.max(1) - 1
                ));
            }
            if note.trim().is_empty() {
                return Err("a guide needs a note: what should the reflection take into account?".into());
            }
            if let Some(c) = component.as_ref().filter(|c| !view.components.contains(c)) {
                return Err(format!("no component `{c}` (the components are {})", view.components.join(", ")));
            }
            match example {
                Some(GuideExample { split: crate::project::Split::Test, .. }) => {
                    Err("test examples are never shown to the optimizer; guide with a train or val example".into())
                }
                Some(GuideExample { split, id }) => {
                    let ids = if *split == crate::project::Split::Val { &view.val_ids } else { &view.train_ids };
                    if ids.contains(id) {
                        Ok(())
                    } else {
                        Err(format!("no {} example `{id}` in this run", split.as_str()))
                    }
                }
                None => Ok(()),
            }
        }
        HumanAction::Protect { component, text } => {
            if !view.components.contains(component) {
                return Err(format!("no component `{component}` (the components are {})", view.components.join(", ")));
            }
            if text.trim().is_empty() {
                return Err("nothing to protect: the text is empty".into());
            }
            if crate::project::markers::has_markers(text) {
                return Err("the text to protect holds a keep marker; give the plain text".into());
            }
            if view.protected.get(component).is_some_and(|spans| spans.contains(text)) {
                return Err(format!("that text of `{component}` is already protected"));
            }
            let has = |texts: &Candidate| texts.get(component).is_some_and(|t| t.contains(text.as_str()));
            if view.candidates.iter().any(|c| has(&c.texts)) || added.iter().any(has) {
                Ok(())
            } else {
                Err(format!(
                    "\"{}\" is not in component `{component}` of any candidate; protect text exactly as a candidate has it",
                    crate::text::truncate_chars(&text.replace('\n', " "), 60)
                ))
            }
        }
    }
}

/// Reads the run folder's steering inbox a few times a second and hands each new request to the
/// planner (a line that is not a request is refused at once, with where it is).
async fn poll_inbox(inbox: Arc<Mutex<Inbox>>, commands: mpsc::UnboundedSender<Command>, sh: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for cmd in inbox_commands(&inbox, &sh) {
            let _ = commands.send(cmd);
        }
    }
}

/// The new requests in the inbox, as commands for the planner.
fn inbox_commands(inbox: &Mutex<Inbox>, sh: &Shared) -> Vec<Command> {
    let mut inbox = inbox.lock().expect("inbox");
    let mut out = Vec::new();
    for r in inbox.poll() {
        match r {
            Ok(req) => out.push(Command::Request { id: req.id, action: req.action }),
            Err(bad) => {
                if let Some(id) = &bad.id {
                    let _ = inbox.answer(&SteerAnswer::refused(id, &bad.why));
                }
                sh.notify(Notice::Warning(bad.why));
            }
        }
    }
    out
}

/// The rounds a log planned after its last committed round, each with the human decisions taken
/// with it, in round order; and the decisions of rounds whose plan cannot be redone (logs from
/// before the pipeline, whose merges were not recorded), to be taken again.
fn recovered_rounds(events: &[Event], committed: Option<u64>) -> (Vec<(Event, Vec<HumanAction>)>, Vec<HumanAction>) {
    let mut planned: BTreeMap<u64, (Event, Vec<HumanAction>)> = BTreeMap::new();
    let mut orphans: Vec<HumanAction> = Vec::new();
    let Some(last) = committed else { return (vec![], vec![]) };
    for ev in events {
        match ev {
            Event::RoundStarted { round, .. } if *round > last => {
                planned.insert(*round, (ev.clone(), vec![]));
            }
            Event::RoundVoided { round } => {
                if let Some((_, actions)) = planned.remove(round) {
                    // The decisions of a dropped round went on to the round planned after it.
                    orphans.retain(|a| !actions.contains(a));
                }
            }
            Event::Human { round, action, .. } if *round > last => match planned.get_mut(round) {
                Some((_, actions)) if !actions.contains(action) => actions.push(action.clone()),
                Some(_) => {}
                None => orphans.push(action.clone()),
            },
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut expect = last + 1;
    for (round, (started, actions)) in planned {
        let redoable = round == expect && matches!(started, Event::RoundStarted { planned_after: Some(_), .. });
        if redoable {
            out.push((started, actions));
            expect += 1;
        } else {
            for a in actions {
                if !orphans.contains(&a) {
                    orphans.push(a);
                }
            }
        }
    }
    (out, orphans)
}

/// Whether example `id` is among the minibatch's or is the one pointed at.
fn records_hold(batch: &[&Example], pointed: Option<&Example>, id: &str) -> bool {
    batch.iter().any(|e| e.id == id) || pointed.is_some_and(|e| e.id == id)
}

/// What a person asked of a round's reflections: vetoes' reasons and protected text, per component.
#[derive(Clone, Copy)]
struct Steering<'a> {
    vetoes: &'a BTreeMap<String, Vec<String>>,
    protected: &'a BTreeMap<String, Vec<String>>,
}

/// The `minibatch_evaluated` role of a guided proposal's parent on the example a person pointed at.
pub const GUIDE_EXAMPLE_ROLE: &str = "guided_example";

/// One reflective proposal of a planned round, with the parent's texts it starts from.
struct ProposalJob {
    plan: PlannedProposal,
    parent_texts: Candidate,
}

/// A planned merge, with what its test compares against.
struct MergeJob {
    plan: PlannedMerge,
    /// The parents' score sums on the subsample, and the better parent's score per example.
    id1_sum: f64,
    id2_sum: f64,
    better_scores: Vec<f64>,
    /// Components whose text differs from id1's.
    changed: Vec<String>,
}

/// A planned round: everything its work needs, owned, so it runs beside the rounds before it.
struct RoundPlan {
    round: u64,
    /// This attempt at the round (a voided round is planned again under the same number).
    gen: u64,
    /// Evaluations committed up to this round may be reused.
    planned_after: u64,
    human: Vec<NewCandidate>,
    proposals: Vec<ProposalJob>,
    merge: Option<MergeJob>,
    vetoes: BTreeMap<String, Vec<String>>,
    /// Text a person protected, per component, as of this round's plan.
    protected: BTreeMap<String, Vec<String>>,
    mutation_policy: ReviewPolicy,
    merge_policy: ReviewPolicy,
    /// The examples a person excluded or fixed, as this round evaluates them.
    data: Arc<DataChanges>,
}

/// A round in flight: its plan and its work (a task of its own).
struct Running {
    plan: InFlight,
    work: tokio::task::JoinHandle<Result<RoundOutput>>,
}

/// What a round in flight already knows of its outcome, before it commits: lets the planner
/// guess better for the rounds after it (results are still decided at commit).
#[derive(Clone, Debug, PartialEq)]
enum Preview {
    /// Its parent was perfect on the minibatch: no reflection, the round robin stays.
    Skipped,
    /// Its parent was not perfect on the minibatch: a reflection follows, the round robin moves.
    Reflecting,
    /// Its child failed the minibatch test: nothing will change.
    Rejected,
    /// Its child passed and will be scored on val and added: likely the next parent (round 0:
    /// the seed, being scored on val).
    Passed(Candidate),
    /// Its child is written and being tested: most children pass, so it is the guess too.
    Reflected(Candidate),
}

/// A round planned and not committed, as the planner sees it.
#[derive(Clone)]
struct InFlight {
    started: Event,
    gen: u64,
    preview: Option<Preview>,
    actions: Vec<HumanAction>,
    /// Metric calls it spends at least (its first evaluations not served from the cache).
    min_calls: u64,
    /// Proposals or merges that may each queue a review item.
    may_queue: usize,
}

/// A proposal that passed its test, as the commit records it.
struct Passed {
    slot: usize,
    parent: CandidateId,
    sums: (f64, f64),
}

/// What a round's work produced, for its commit.
#[derive(Default)]
struct RoundOutput {
    calls: u64,
    cost: f64,
    found_new: bool,
    /// Candidates scored on val, in the order they join (human ones first): the candidate, its
    /// val evaluations, the round's metric calls before it, and the proposal it came from.
    scored: Vec<(NewCandidate, Vec<ExampleEval>, u64, Option<Passed>)>,
    /// Children waiting for a person instead, with the proposal each came from.
    to_review: Vec<(ReviewItem, Option<Passed>)>,
}

/// Counts itself in `counter` while alive (an evaluation in flight, however it ends).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The outcome of one proposal before the round compares them.
#[derive(Default)]
struct SlotResult {
    calls: u64,
    cost: f64,
    /// The child, and the review item to queue instead when reviews are on.
    accepted: Option<(NewCandidate, ReviewItem)>,
    /// Minibatch score sums of the parent and the child.
    sums: (f64, f64),
    /// The parent was perfect on the minibatch.
    skipped: bool,
}

impl Shared {
    /// Rounds in flight at most now: `pipeline_lag`, or one at a time when it was left to the
    /// engine and the task model's server is seen answering requests in turn.
    fn lag(&self) -> usize {
        use crate::engine::gauge::Verdict;
        if self.opt.lag_is_auto() && self.gauge.lock().expect("gauge").verdict() == Verdict::Serial {
            1
        } else {
            self.opt.max_lag()
        }
    }

    /// Times one batch of evaluations sent together: (seconds from sending, output tokens).
    fn observe_batch(&self, replies: &[(f64, u64)]) {
        use crate::engine::gauge::Verdict;
        if !self.opt.lag_is_auto() || self.opt.max_lag() == 1 {
            return;
        }
        let changed = self.gauge.lock().expect("gauge").observe(replies);
        if changed == Some(Verdict::Serial) {
            tracing::info!("the model server answers requests in turn; one proposal at a time");
            self.notify(Notice::Warning(
                "the model server answers requests one after another (a llama-server or Ollama with one or two \
                 slots?): proposals now run one at a time, since work planned ahead would only wait in its \
                 queue in front of the next step's; set pipeline_lag in [optimizer] to choose"
                    .into(),
            ));
        }
    }

    fn notify(&self, n: Notice) {
        if let Some(tx) = &self.notices {
            let _ = tx.send(n);
        }
    }

    /// Appends an event (fsynced when `durable`), holds it for its round's commit, and tells the
    /// consumers.
    fn emit(&self, ev: Event, durable: bool) -> Result<()> {
        let mut held = self.held.lock().expect("held events");
        self.record(&mut held, ev, durable)
    }

    /// An event of the work of round generation `gen`: dropped when that work was voided (an
    /// aborted task may still be running up to its next await), so nothing of it lands.
    fn emit_in(&self, gen: u64, ev: Event, durable: bool) -> Result<()> {
        let mut held = self.held.lock().expect("held events");
        if !held.live.contains(&gen) {
            return Ok(());
        }
        self.record(&mut held, ev, durable)
    }

    fn record(&self, held: &mut Held, ev: Event, durable: bool) -> Result<()> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        {
            let mut log = self.log.lock().expect("log lock");
            log.append(&stamp(&ev, seq))
                .context("cannot record the run's events; the run stays resumable once the disk problem is fixed")?;
            if durable {
                log.sync()?;
            }
        }
        // Run-level events are applied by the engine itself; only round events are held here.
        let _ = held.buf.feed(&ev, ev.clone());
        self.notify(Notice::Event(Box::new(ev)));
        Ok(())
    }

    /// Whether voided work `gen` was told to start nothing new.
    fn stopped(&self, gen: u64) -> bool {
        self.held.lock().expect("held events").stopped.contains(&gen)
    }

    fn stage_in(&self, gen: u64, round: u64, what: Option<String>) {
        if self.held.lock().expect("held events").live.contains(&gen) {
            self.stage(round, what);
        }
    }

    fn set_activity(&self, s: impl Into<String>) {
        self.activity.lock().expect("activity").general = s.into();
        self.send_status();
    }

    /// What round `round` is doing now ("reflecting on `instruction`"); None when it committed.
    fn stage(&self, round: u64, what: Option<String>) {
        {
            let mut a = self.activity.lock().expect("activity");
            match what {
                Some(w) => a.rounds.insert(round, w),
                None => a.rounds.remove(&round),
            };
        }
        self.send_status();
    }

    fn activity_line(&self, outages: &[crate::llm::Outage]) -> String {
        // A model that is not answering holds everything that needs it: that comes first.
        let waiting: Vec<String> = outages.iter().map(|o| o.describe()).collect();
        if !waiting.is_empty() {
            return waiting.join(" · ");
        }
        let a = self.activity.lock().expect("activity");
        if a.rounds.is_empty() {
            return a.general.clone();
        }
        let word = if self.one_per_round { "proposal" } else { "round" };
        let mut parts: Vec<String> =
            a.rounds.iter().map(|(r, w)| if *r == 0 { w.clone() } else { format!("{word} {r}: {w}") }).collect();
        let n = self.live.in_flight.load(Ordering::Relaxed);
        if n > 0 {
            parts.push(format!("{n} evaluation{} in flight", if n == 1 { "" } else { "s" }));
        }
        parts.join(" · ")
    }

    fn send_status(&self) {
        if self.notices.is_none() {
            return;
        }
        let spend = self.round_spend.lock().expect("round spend").values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let outages = self.task.models().outages();
        let status = Status {
            activity: self.activity_line(&outages),
            outages,
            paused: *self.paused.borrow(),
            round: self.next_commit.load(Ordering::Relaxed),
            metric_calls: self.live.metric_calls.load(Ordering::Relaxed) + spend.0,
            max_metric_calls: self.opt.max_metric_calls,
            cost_usd: (self.live.cost_micro_usd.load(Ordering::Relaxed) + spend.1) as f64 / 1e6,
            in_flight: self.live.in_flight.load(Ordering::Relaxed),
            rounds_in_flight: self.rounds_in_flight.load(Ordering::Relaxed),
            evaluations_cached: self.evaluations_cached.load(Ordering::Relaxed),
            evaluations_dropped: self.evaluations_dropped.load(Ordering::Relaxed),
            elapsed_secs: self.started.elapsed().as_secs_f64(),
            models: ModelUsage::of(&self.task),
        };
        self.notify(Notice::Status(status));
    }

    /// Waits while paused.
    async fn gate(&self) {
        let mut rx = self.paused.clone();
        if *rx.borrow() {
            self.send_status();
        }
        while *rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Scores a candidate on examples, concurrently within the run-wide limit; results in input
    /// order. An evaluation committed by round `reuse` (the round, and the data as the round
    /// sees it) or earlier is served from the cache (free, marked `cached`). Returns the
    /// evaluations, the metric calls and the cost.
    async fn evaluate(
        &self,
        gen: u64,
        candidate: &Candidate,
        examples: &[&Example],
        split: Split,
        reuse: Option<(u64, &DataChanges)>,
    ) -> Result<(Vec<ExampleEval>, u64, f64)> {
        let hash = candidate_hash(candidate);
        let timings: Mutex<Vec<(f64, u64)>> = Mutex::new(Vec::new());
        // The server gauge reads the seed's val pass alone: a first proposal's few requests sent
        // beside it wait behind it on a server that answers in turn, and would read as parallel.
        let gauged = gen == self.seed_gen.load(Ordering::Relaxed) || self.next_commit.load(Ordering::Relaxed) > 0;
        let evals = futures::future::try_join_all(examples.iter().map(|ex| {
            let (hash, timings) = (&hash, &timings);
            async move {
                if let Some((until, data)) = reuse.filter(|_| self.opt.cache_evaluations) {
                    if let Some(e) = self.cache.lock().expect("cache").get(hash, split, &ex.id, until, data) {
                        return Ok::<_, Halted>(e);
                    }
                }
                self.gate().await;
                let _permit = self.eval_slots.acquire().await.expect("semaphore never closed");
                let in_flight = Counted::enter(&self.live.in_flight);
                let sent = Instant::now();
                let e = self.task.evaluate(candidate, ex).await;
                let secs = sent.elapsed().as_secs_f64();
                drop(in_flight);
                let e = e.map_err(Halted)?;
                // Replayed replies say nothing of the server (their time is the scorer's, a
                // command's or a script's): only evaluations that asked the server are timed.
                if !e.trace.steps.iter().any(|s| s.cached) {
                    let tokens: u64 = e.trace.steps.iter().map(|s| s.usage.output_tokens).sum();
                    timings.lock().expect("timings").push((secs, tokens));
                }
                if let Some(err) = &e.error {
                    tracing::warn!(example = %ex.id, error = %err, "evaluation failed; scored 0");
                }
                if self.held.lock().expect("held events").voided.contains(&gen) {
                    self.evaluations_dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    let mut spend = self.round_spend.lock().expect("round spend");
                    let r = spend.entry(gen).or_default();
                    r.0 += 1;
                    // Paid only: a reply replayed from the response cache is free.
                    r.1 += (e.paid_and_replayed().0 * 1e6).round() as u64;
                }
                self.send_status();
                Ok(e)
            }
        }))
        .await?;
        if gauged {
            self.observe_batch(&timings.into_inner().expect("timings"));
        }
        let calls = evals.iter().filter(|e| !e.cached).count() as u64;
        let cost = evals.iter().map(|e| e.cost_usd).sum();
        Ok((evals, calls, cost))
    }

    /// Forgets what a round's work spent (it committed, or was dropped): the metric calls.
    fn drop_round_calls(&self, gen: u64) -> u64 {
        self.round_spend.lock().expect("round spend").remove(&gen).map_or(0, |(calls, _)| calls)
    }

    /// How many of these evaluations a round planned now would have to run (not in the cache).
    fn uncached(&self, candidate: &Candidate, ids: &[&str], split: Split, reuse_until: u64, data: &DataChanges) -> u64 {
        if !self.opt.cache_evaluations {
            return ids.len() as u64;
        }
        let hash = candidate_hash(candidate);
        let cache = self.cache.lock().expect("cache");
        ids.iter().filter(|id| !cache.contains(&hash, split, id, reuse_until, data)).count() as u64
    }

    /// Does a planned round's work: its merge or proposals, then scores the candidates that passed
    /// (and those the round's human decisions add) on val. Nothing here touches the committed
    /// state; the commit does, in round order.
    async fn run_round(self: Arc<Self>, plan: RoundPlan) -> Result<RoundOutput> {
        let (round, gen) = (plan.round, plan.gen);
        let mut out = RoundOutput::default();
        let mut to_score: Vec<(NewCandidate, Option<Passed>)> = plan.human.into_iter().map(|c| (c, None)).collect();
        if let Some(job) = plan.merge {
            let (calls, cost, passed) = self.run_merge(round, gen, plan.planned_after, job, &plan.data).await?;
            out.calls += calls;
            out.cost += cost;
            if let Some((cand, item)) = passed {
                match plan.merge_policy {
                    ReviewPolicy::Auto => to_score.push((cand, None)),
                    ReviewPolicy::Approve => out.to_review.push((item, None)),
                }
            }
        } else if !plan.proposals.is_empty() {
            // Early news only for a round of one proposal (siblings are compared first).
            let news = plan.proposals.len() == 1 && to_score.is_empty();
            let auto = plan.mutation_policy == ReviewPolicy::Auto;
            let results = join_all(plan.proposals.iter().map(|p| {
                let steer = Steering { vetoes: &plan.vetoes, protected: &plan.protected };
                self.run_proposal(round, gen, (plan.planned_after, &plan.data), p, steer, news && auto)
            }))
            .await;
            if news {
                let preview = match &results[0] {
                    Ok(r) if r.skipped => Some(Preview::Skipped),
                    Ok(SlotResult { accepted: Some((c, _)), .. }) if auto => Some(Preview::Passed(c.texts.clone())),
                    Ok(SlotResult { accepted: None, .. }) => Some(Preview::Rejected),
                    _ => None,
                };
                if let Some(pv) = preview {
                    let _ = self.previews.send((gen, pv));
                }
            }
            let results: Vec<SlotResult> = results.into_iter().collect::<Result<_>>()?;
            let selected = select_accepted(&results, self.opt.accept_per_round);
            for ((p, r), chosen) in plan.proposals.iter().zip(results).zip(selected) {
                out.calls += r.calls;
                out.cost += r.cost;
                let Some((cand, item)) = r.accepted else { continue };
                let (parent_sum, child_sum) = r.sums;
                if !chosen {
                    let outcome = ProposalOutcome::NotSelected { parent_sum, child_sum };
                    self.emit_in(
                        gen,
                        Event::ProposalFinished {
                            round,
                            slot: p.plan.slot,
                            parent: p.plan.parent,
                            outcome,
                            child: Some(cand.texts.clone()),
                        },
                        false,
                    )?;
                    continue;
                }
                out.found_new = true;
                let passed = Passed { slot: p.plan.slot, parent: p.plan.parent, sums: r.sums };
                match plan.mutation_policy {
                    ReviewPolicy::Auto => to_score.push((cand, Some(passed))),
                    ReviewPolicy::Approve => out.to_review.push((item, Some(passed))),
                }
            }
        }
        if !self.held.lock().expect("held events").live.contains(&gen) {
            // Dropped: what it found is never used, and scoring on val would be all waste.
            return Ok(out);
        }
        if !to_score.is_empty() {
            let n = to_score.len();
            self.stage_in(
                gen,
                round,
                Some(format!("scoring {n} new candidate{} on val", if n == 1 { "" } else { "s" })),
            );
            // Excluded val examples are not evaluated; fixed ones are, with their corrected values.
            let val = plan.data.effective(crate::project::Split::Val, &self.project.val);
            let val: Vec<&Example> = val.iter().map(|e| e.as_ref()).collect();
            let reuse = Some((plan.planned_after, &*plan.data));
            let evals = futures::future::try_join_all(
                to_score.iter().map(|(c, _)| self.evaluate(gen, &c.texts, &val, Split::Val, reuse)),
            )
            .await?;
            for ((c, passed), (evals, calls, cost)) in to_score.into_iter().zip(evals) {
                out.scored.push((c, evals, out.calls, passed));
                out.calls += calls;
                out.cost += cost;
            }
        }
        self.stage_in(gen, round, Some("committing".into()));
        Ok(out)
    }

    /// `early`: tell the engine whether a reflection follows once the parent is scored, and the
    /// child's texts as soon as they are written.
    #[allow(clippy::too_many_arguments)]
    async fn run_proposal(
        &self,
        round: u64,
        gen: u64,
        reuse: (u64, &DataChanges),
        job: &ProposalJob,
        steer: Steering<'_>,
        early: bool,
    ) -> Result<SlotResult> {
        let p = &job.plan;
        let guide = p.guide.as_ref();
        let parent = &job.parent_texts;
        let (reuse_until, data) = reuse;
        let train_index: BTreeMap<&str, &Example> = self.project.train.iter().map(|e| (e.id.as_str(), e)).collect();
        // Fixed train examples are evaluated with their corrected values.
        let batch: Vec<std::borrow::Cow<Example>> = p
            .minibatch
            .iter()
            .filter_map(|id| train_index.get(id.as_str()).map(|e| data.apply(crate::project::Split::Train, e)))
            .collect();
        let batch: Vec<&Example> = batch.iter().map(|e| e.as_ref()).collect();
        let mut r = SlotResult::default();
        let finish = |outcome: ProposalOutcome, child: Option<Candidate>| Event::ProposalFinished {
            round,
            slot: p.slot,
            parent: p.parent,
            outcome,
            child,
        };

        self.stage_in(gen, round, Some(format!("parent {} on minibatch", p.parent)));
        let (parent_evals, calls, cost) =
            self.evaluate(gen, parent, &batch, Split::Train, Some((reuse_until, data))).await?;
        r.calls += calls;
        r.cost += cost;
        let parent_sum: f64 = parent_evals.iter().map(|e| e.score).sum();
        let perfect = parent_evals.iter().all(|e| e.score >= self.opt.perfect_score);
        self.emit_in(
            gen,
            Event::MinibatchEvaluated {
                round,
                slot: p.slot,
                candidate_role: "parent".into(),
                evals: parent_evals.clone(),
                candidate_hash: Some(candidate_hash(parent)),
            },
            false,
        )?;
        // A person asked for this reflection: it runs even on a minibatch the parent is perfect on.
        if self.opt.skip_perfect_score && perfect && guide.is_none() {
            self.emit_in(gen, finish(ProposalOutcome::SkippedPerfect, None), false)?;
            r.skipped = true;
            return Ok(r);
        }
        if early {
            let _ = self.previews.send((gen, Preview::Reflecting));
        }
        if self.stopped(gen) {
            return Ok(r);
        }
        // The example the person was looking at, with the parent's evaluation of it (served from
        // the evaluation cache when already committed), for the reflective dataset only.
        // A train example already in the minibatch is in the dataset once.
        let pointed = match guide.and_then(|g| g.example.as_ref()) {
            Some(GuideExample { split, id })
                if !(*split == crate::project::Split::Train && p.minibatch.contains(id)) =>
            {
                let is_val = *split == crate::project::Split::Val;
                self.project.split(*split).iter().find(|e| e.id == *id).map(|e| (e, is_val))
            }
            _ => None,
        };
        let pointed_example = pointed.map(|(e, _)| e);
        let mut pointed_eval: Option<ExampleEval> = None;
        if let Some((ex, is_val)) = pointed {
            let split = if is_val { Split::Val } else { Split::Train };
            self.stage_in(gen, round, Some(format!("parent {} on the example you pointed at", p.parent)));
            let (evals, calls, cost) = self.evaluate(gen, parent, &[ex], split, Some((reuse_until, data))).await?;
            r.calls += calls;
            r.cost += cost;
            self.emit_in(
                gen,
                Event::MinibatchEvaluated {
                    round,
                    slot: p.slot,
                    candidate_role: GUIDE_EXAMPLE_ROLE.into(),
                    evals: evals.clone(),
                    // Filed in the evaluation cache as train only (ids may repeat across splits).
                    candidate_hash: (!is_val).then(|| candidate_hash(parent)),
                },
                false,
            )?;
            pointed_eval = evals.into_iter().next();
        }

        let mut child = parent.clone();
        let mut reasoning = String::new();
        for component in &p.components {
            let mut records = self.reflective_dataset(component, &batch, &parent_evals);
            if let (Some(ex), Some(ev)) = (pointed_example, &pointed_eval) {
                records.extend(self.reflective_dataset(component, &[ex], std::slice::from_ref(ev)));
            }
            let notes = steer.vetoes.get(component).map(Vec::as_slice).unwrap_or(&[]);
            // The protected spans this parent's text holds: the child must keep them.
            let kept: Vec<String> = steer
                .protected
                .get(component)
                .map(|spans| spans.iter().filter(|s| parent[component].contains(s.as_str())).cloned().collect())
                .unwrap_or_default();
            let mut prompt = build_prompt(&self.template, &parent[component], &records, notes);
            prompt.push_str(&super::protect::protected_section(&kept));
            if let Some(g) = guide {
                // The example is in the dataset: pointed at and evaluated, or in the minibatch.
                let shown =
                    g.example.as_ref().map(|e| e.id.as_str()).filter(|id| records_hold(&batch, pointed_example, id));
                prompt.push_str(&super::protect::guidance_section(&g.note, shown));
            }
            self.gate().await;
            self.stage_in(gen, round, Some(format!("reflecting on `{component}` of candidate {}", p.parent)));
            let (reply, cut_answers) = match self.reflect(&prompt).await {
                Ok(asked) => asked,
                Err(e) if e.stops_run() => return Err(Halted(e).into()),
                Err(e) => {
                    self.emit_in(gen, finish(ProposalOutcome::ReflectionFailed { error: e.to_string() }, None), false)?;
                    return Ok(r);
                }
            };
            r.cost += reply.cost_usd;
            let cut = is_cut_off(&reply.text, reply.truncated) && !self.project.config.reflection.use_cut_off_answers;
            let attempts = cut_answers.len() as u32 + 1;
            let new_text = if cut { String::new() } else { extract_instruction(&reply.text) };
            if !reasoning.is_empty() {
                reasoning.push_str("\n\n");
            }
            reasoning.push_str(&reply.text);
            self.emit_in(
                gen,
                Event::Reflection {
                    round,
                    slot: p.slot,
                    parent: p.parent,
                    component: component.clone(),
                    dataset: records,
                    prompt,
                    answer: reply.text.clone(),
                    new_text: new_text.clone(),
                    truncated: reply.truncated,
                    cost_usd: reply.cost_usd,
                    usage: reply.usage,
                    cached: reply.cached,
                    cut_answers,
                },
                false,
            )?;
            if cut {
                // Half a prompt is never evaluated: nothing is spent on it.
                self.emit_in(gen, finish(ProposalOutcome::ReflectionTruncated { attempts }, None), false)?;
                return Ok(r);
            }
            if new_text.trim().is_empty() {
                self.emit_in(gen, finish(ProposalOutcome::EmptyAnswer, None), false)?;
                return Ok(r);
            }
            let max_growth = self.project.max_growth(component);
            if let Some(refused) = super::protect::refusal(component, &parent[component], &new_text, &kept, max_growth)
            {
                // Refused before any metric call is spent on it.
                child.insert(component.clone(), new_text);
                self.emit_in(gen, finish(refused, Some(child)), false)?;
                return Ok(r);
            }
            child.insert(component.clone(), new_text);
        }
        if child == *parent {
            self.emit_in(gen, finish(ProposalOutcome::Unchanged, None), false)?;
            return Ok(r);
        }

        if early {
            let _ = self.previews.send((gen, Preview::Reflected(child.clone())));
        }
        if self.stopped(gen) {
            return Ok(r);
        }
        self.stage_in(gen, round, Some("child on minibatch".into()));
        let (child_evals, calls, cost) =
            self.evaluate(gen, &child, &batch, Split::Train, Some((reuse_until, data))).await?;
        r.calls += calls;
        r.cost += cost;
        let child_sum: f64 = child_evals.iter().map(|e| e.score).sum();
        let child_scores: Vec<f64> = child_evals.iter().map(|e| e.score).collect();
        self.emit_in(
            gen,
            Event::MinibatchEvaluated {
                round,
                slot: p.slot,
                candidate_role: "child".into(),
                evals: child_evals,
                candidate_hash: Some(candidate_hash(&child)),
            },
            false,
        )?;
        // Strict improvement on the minibatch, as gepa's StrictImprovementAcceptance.
        if child_sum > parent_sum {
            let changed: Vec<String> =
                child.iter().filter(|(k, v)| parent.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect();
            // The outcome (accepted, or passed but not selected) is recorded once the round has
            // compared its proposals; see `accept_per_round`.
            r.sums = (parent_sum, child_sum);
            let item = ReviewItem {
                item: 0,
                kind: ReviewKind::Mutation,
                round,
                parents: vec![p.parent],
                texts: child.clone(),
                changed: changed.clone(),
                sources: vec![],
                examples: p.minibatch.clone(),
                parent_scores: parent_evals.iter().map(|e| e.score).collect(),
                child_scores,
                reasoning,
                cost_usd: r.cost,
            };
            let cand =
                NewCandidate { texts: child, parents: vec![p.parent], origin: Origin::Mutation, changed, note: None };
            r.accepted = Some((cand, item));
        } else {
            self.emit_in(gen, finish(ProposalOutcome::Rejected { parent_sum, child_sum }, Some(child)), false)?;
        }
        Ok(r)
    }

    /// Asks the reflection model. An answer cut off (at max_tokens, or with a fence left open) is
    /// asked again, up to `[reflection] truncation_retries` times, with the cut answer and a note
    /// to give only the complete new text: the last answer, and the cut ones before it. The
    /// reply's cost and tokens are those of every attempt.
    async fn reflect(&self, prompt: &str) -> Result<(crate::llm::ChatReply, Vec<String>), crate::llm::LlmError> {
        let model = self.task.models().get("reflection")?;
        let mut messages = vec![Message::user(prompt.to_string())];
        let mut reply = model.chat(&ChatRequest { messages: messages.clone() }).await?;
        let mut cut_answers = Vec::new();
        let (mut cost, mut usage, mut cached) = (reply.cost_usd, reply.usage, reply.cached);
        let cfg = &self.project.config.reflection;
        while is_cut_off(&reply.text, reply.truncated)
            && !cfg.use_cut_off_answers
            && cut_answers.len() < cfg.truncation_retries as usize
        {
            messages.push(Message::assistant(reply.text.clone()));
            messages.push(Message::user(CUT_OFF_NOTE));
            let again = model.chat(&ChatRequest { messages: messages.clone() }).await?;
            cut_answers.push(std::mem::replace(&mut reply, again).text);
            cost += reply.cost_usd;
            usage.input_tokens += reply.usage.input_tokens;
            usage.output_tokens += reply.usage.output_tokens;
            cached &= reply.cached;
            // Only the newest exchange is kept: the cut answer and the note.
            messages.drain(1..messages.len() - 2);
        }
        Ok((crate::llm::ChatReply { cost_usd: cost, usage, cached, ..reply }, cut_answers))
    }

    /// For each minibatch example: the inputs the system saw, the output of the step(s) using the
    /// component, and the evaluator's feedback (gepa's `make_reflective_dataset`).
    fn reflective_dataset(&self, component: &str, batch: &[&Example], evals: &[ExampleEval]) -> Vec<ReflectiveRecord> {
        let cfg = &self.project.config;
        let hidden = hidden_fields(cfg);
        let placeholder = format!("{{{{{component}}}}}");
        let using_steps: Vec<usize> = if cfg.system.kind == SystemKind::Chat {
            cfg.system
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    s.user.contains(&placeholder) || s.system.as_deref().is_some_and(|t| t.contains(&placeholder))
                })
                .map(|(i, _)| i)
                .collect()
        } else {
            vec![]
        };
        batch
            .iter()
            .zip(evals)
            .map(|(ex, ev)| {
                let mut inputs: serde_json::Map<String, Value> = ex
                    .fields
                    .iter()
                    .filter(|(k, _)| *k != "id" && !hidden.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let n_steps = ev.trace.steps.len();
                // A scorer that failed says nothing of what the system said: show that as usual.
                let generated = if let (Some(err), false) = (&ev.error, ev.scorer_failed) {
                    Value::String(format!("(the system failed: {err})"))
                } else if using_steps.is_empty() || using_steps.iter().all(|&i| i + 1 >= n_steps) {
                    Value::String(ev.output.clone())
                } else {
                    let mut m = serde_json::Map::new();
                    for &i in &using_steps {
                        if let Some(st) = ev.trace.steps.get(i) {
                            // Earlier steps' outputs the component's step read are inputs too.
                            for prev in &ev.trace.steps[..i] {
                                inputs.insert(
                                    format!("{} (output of step `{}`)", prev.name, prev.name),
                                    Value::String(prev.output.clone()),
                                );
                            }
                            m.insert(format!("output of step `{}`", st.name), Value::String(st.output.clone()));
                        }
                    }
                    m.insert("final output of the system".into(), Value::String(ev.output.clone()));
                    Value::Object(m)
                };
                ReflectiveRecord { inputs, generated_outputs: generated, feedback: ev.feedback.clone() }
            })
            .collect()
    }

    /// Scores a planned merge on its val subsample; it passes when it does at least as well as the
    /// better parent there (gepa's rule).
    async fn run_merge(
        &self,
        round: u64,
        gen: u64,
        reuse_until: u64,
        job: MergeJob,
        data: &DataChanges,
    ) -> Result<(u64, f64, Option<(NewCandidate, ReviewItem)>)> {
        let plan = job.plan;
        self.stage_in(gen, round, Some(format!("merging candidates {} and {}", plan.id1, plan.id2)));
        let examples: Vec<std::borrow::Cow<Example>> =
            plan.subsample.iter().map(|&i| data.apply(crate::project::Split::Val, &self.project.val[i])).collect();
        let examples: Vec<&Example> = examples.iter().map(|e| e.as_ref()).collect();
        let (evals, calls, cost) =
            self.evaluate(gen, &plan.texts, &examples, Split::Val, Some((reuse_until, data))).await?;
        let merged_sum: f64 = evals.iter().map(|e| e.score).sum();
        let accepted = merged_sum >= job.id1_sum.max(job.id2_sum);
        let subsample: Vec<String> = plan.subsample.iter().map(|&i| self.project.val[i].id.clone()).collect();
        let child_scores: Vec<f64> = evals.iter().map(|e| e.score).collect();
        self.emit_in(
            gen,
            Event::MergeAttempted {
                round,
                id1: plan.id1,
                id2: plan.id2,
                ancestor: plan.ancestor,
                sources: plan.sources.clone(),
                texts: plan.texts.clone(),
                subsample: subsample.clone(),
                id1_sum: job.id1_sum,
                id2_sum: job.id2_sum,
                merged_sum,
                accepted,
                evals,
            },
            false,
        )?;
        let passed = accepted.then(|| {
            let cand = NewCandidate {
                texts: plan.texts.clone(),
                parents: vec![plan.id1, plan.id2],
                origin: Origin::Merge,
                changed: job.changed.clone(),
                note: None,
            };
            let item = ReviewItem {
                item: 0,
                kind: ReviewKind::Merge,
                round,
                parents: vec![plan.id1, plan.id2],
                texts: plan.texts.clone(),
                changed: job.changed.clone(),
                sources: plan.sources.clone(),
                examples: subsample.clone(),
                parent_scores: job.better_scores.clone(),
                child_scores,
                reasoning: format!(
                    "merge of {} and {} (common ancestor {}): each component taken from the side that changed it",
                    plan.id1, plan.id2, plan.ancestor
                ),
                cost_usd: cost,
            };
            (cand, item)
        });
        Ok((calls, cost, passed))
    }
}

/// What the replies an event records cost: (paid, served free from the response cache).
pub(crate) fn event_cost(ev: &Event) -> (f64, f64) {
    match ev {
        Event::MinibatchEvaluated { evals, .. }
        | Event::ValEvaluated { evals, .. }
        | Event::MergeAttempted { evals, .. }
        | Event::TestEvaluated { evals, .. } => {
            evals.iter().map(ExampleEval::paid_and_replayed).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
        }
        // Scoring recorded outputs again (a judge's calls, when the evaluator has one).
        Event::ExampleFixed { rescored, .. } => {
            rescored.iter().map(|r| r.eval.paid_and_replayed()).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
        }
        Event::Reflection { cost_usd, cached: true, .. } => (0.0, *cost_usd),
        Event::Reflection { cost_usd, .. } => (*cost_usd, 0.0),
        _ => (0.0, 0.0),
    }
}

/// Token usage an event records: every step of every evaluation, and reflections.
fn event_usage(ev: &Event) -> Vec<crate::llm::Usage> {
    // An evaluation served from the cache used nothing this time.
    let steps = |evals: &[ExampleEval]| -> Vec<crate::llm::Usage> {
        evals.iter().filter(|e| !e.cached).flat_map(|e| e.trace.steps.iter().map(|s| s.usage)).collect()
    };
    match ev {
        Event::MinibatchEvaluated { evals, .. }
        | Event::ValEvaluated { evals, .. }
        | Event::MergeAttempted { evals, .. }
        | Event::TestEvaluated { evals, .. } => steps(evals),
        Event::Reflection { usage, .. } => vec![*usage],
        _ => vec![],
    }
}

/// Which accepted proposals of a round go on to val: all of them, or only the one with the largest
/// minibatch gain (the earliest slot on ties), as gepa's `AllImprovements` / `BestImprovement`.
/// With `all`, siblings with the same texts go on once (the earliest slot), as gepa dedupes them.
fn select_accepted(results: &[SlotResult], mode: AcceptPerRound) -> Vec<bool> {
    let accepted: Vec<bool> = results.iter().map(|r| r.accepted.is_some()).collect();
    if mode == AcceptPerRound::All {
        let texts = |i: usize| results[i].accepted.as_ref().map(|(c, _)| &c.texts);
        return (0..results.len()).map(|i| accepted[i] && (0..i).all(|j| texts(j) != texts(i))).collect();
    }
    let mut best: Option<(usize, f64)> = None;
    for (i, r) in results.iter().enumerate() {
        let gain = r.sums.1 - r.sums.0;
        if accepted[i] && best.is_none_or(|(_, g)| gain > g) {
            best = Some((i, gain));
        }
    }
    (0..results.len()).map(|i| best.is_some_and(|(b, _)| b == i)).collect()
}

/// A candidate about to be scored on val and added.
struct NewCandidate {
    texts: Candidate,
    parents: Vec<CandidateId>,
    origin: Origin,
    changed: Vec<String>,
    note: Option<String>,
}

/// Example fields the system must not see as inputs in the reflective dataset: the reference answer
/// and feedback-only fields reach the reflection model through the feedback instead.
fn hidden_fields(cfg: &crate::project::ProjectConfig) -> Vec<String> {
    let e = &cfg.evaluator;
    let mut out: Vec<String> = e.field.iter().cloned().chain(e.feedback_fields.iter().cloned()).collect();
    for p in &e.parts {
        out.extend(p.field.iter().cloned());
    }
    out
}

/// File names for the best candidate's texts: each component file's own name, or `<name>.txt` when
/// two components share one.
pub fn best_file_names(project: &Project) -> Vec<(String, String)> {
    let names: Vec<(String, String)> = project
        .config
        .components
        .iter()
        .map(|c| {
            let base = Path::new(&c.file)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("{}.txt", c.name));
            (c.name.clone(), base)
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let dup = names.iter().any(|(_, f)| !seen.insert(f.clone()));
    if dup {
        names.into_iter().map(|(n, _)| (n.clone(), format!("{n}.txt"))).collect()
    } else {
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run stopped for an hour and resumed counts only the minutes it ran.
    #[test]
    fn active_time_leaves_out_the_time_between_a_stop_and_a_resume() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events.jsonl");
        let lines = [
            r#"{"seq":0,"t":1000,"event":"run_started"}"#,
            r#"{"seq":1,"t":61000,"event":"round_finished"}"#,
            // Killed here; resumed an hour later.
            r#"{"seq":2,"t":3661000,"event":"resumed"}"#,
            r#"{"seq":3,"t":3691000,"event":"round_finished"}"#,
            r#"{"seq":4,"t":3700000,"event":"resumed"}"#,
            r#"{"seq":5,"t":3705000,"event":"finished"}"#,
            "{\"seq\":6,\"t\":99",
        ];
        std::fs::write(&log, lines.join("\n")).unwrap();
        assert_eq!(active_ms(&log), 60_000 + 30_000 + 5_000);
        assert_eq!(active_ms(&dir.path().join("missing.jsonl")), 0);
    }
}

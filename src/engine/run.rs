//! Rounds of proposals, commands in, events out.
//!
//! A round plans up to `proposals_per_round` reflective proposals from the state at its start (each
//! random choice from an RNG derived from (seed, round, slot)), runs them concurrently, scores the
//! accepted children on val, and commits the results in slot order. So the outcome depends on the
//! seed alone, never on which HTTP call returned first. With `proposals_per_round = 1` a round is
//! one iteration of gepa's loop.

use super::event::{Event, HumanAction, Origin, PlannedProposal, ProposalOutcome, ReviewItem, ReviewKind};
use super::merge::{merge_subsample, Lineage, MergePlan};
use super::minibatch::minibatch;
use super::pareto::{dominators, CandidateId};
use super::reflect::{build_prompt, extract_instruction, validate_template, ReflectiveRecord, DEFAULT_TEMPLATE};
use super::rng::derive_rng;
use super::select::select_parent;
use super::state::RunState;
use crate::eval::{ExampleEval, Task};
use crate::llm::{ChatRequest, Message};
use crate::project::config::{AcceptPerRound, ComponentSelection, OptimizerConfig, ReviewPolicy, SystemKind};
use crate::project::{Candidate, Example, Project};
use crate::store::{self, read_log, EventLog, RunLock};
use anyhow::{anyhow, bail, Context, Result};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;

/// Live, uncommitted progress for displays (never persisted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// What the engine is doing now, in a few words.
    pub activity: String,
    pub paused: bool,
    pub round: u64,
    /// Metric calls including the current round's so far.
    pub metric_calls: u64,
    pub max_metric_calls: u64,
    pub cost_usd: f64,
    /// Evaluations running right now.
    pub in_flight: usize,
    pub elapsed_secs: f64,
}

/// What the engine tells its consumers (TUI, headless printer, tests).
#[derive(Debug, Clone)]
pub enum Notice {
    Event(Box<Event>),
    Status(Status),
    /// Something the user should know that is not an error (a repaired log, a changed config).
    Warning(String),
}

/// `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub run_id: String,
    pub stop_reason: String,
    pub best_candidate: CandidateId,
    pub best_val_score: f64,
    pub seed_val_score: f64,
    pub test_score: Option<f64>,
    /// best val score minus test score: a large gap means the prompt fits val, not the task.
    pub val_test_gap: Option<f64>,
    pub candidates: usize,
    pub metric_calls: u64,
    pub cost_usd: f64,
    /// Evaluations that failed (model errors after retries, program crashes), scored 0.
    pub failed_evaluations: u64,
    pub wall_seconds: f64,
    pub best_texts: Candidate,
}

pub struct RunOutcome {
    pub run_id: String,
    pub run_dir: PathBuf,
    /// None when the run was stopped by the user before finishing (it stays resumable).
    pub result: Option<RunResult>,
}

#[derive(Clone, Default)]
pub struct EngineOptions {
    pub notices: Option<mpsc::UnboundedSender<Notice>>,
    /// Start paused (the TUI's "new run, paused" and tests).
    pub start_paused: bool,
    /// Treat `approve` review policies as `auto` (headless runs with nobody to ask).
    pub auto_approve: bool,
    /// Start a new run from these texts instead of the project's prompt files, recording where
    /// they came from (branching a run from a candidate of an earlier one).
    pub seed_texts: Option<(Candidate, String)>,
}

/// Steers a running engine from another task or thread.
#[derive(Clone)]
pub struct EngineHandle {
    paused: watch::Sender<bool>,
    cancel: CancellationToken,
    commands: mpsc::UnboundedSender<Command>,
}

impl EngineHandle {
    /// A human action, applied at the start of the next round (and recorded there).
    pub fn act(&self, action: HumanAction) {
        let _ = self.commands.send(Command::Act(action));
    }
    pub fn approve_all(&self) {
        let _ = self.commands.send(Command::ApproveAll);
    }
    /// Stop starting new work; calls in flight finish and are recorded.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }
    /// Stop now: the current round is abandoned (redone from the cache on resume).
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

struct Live {
    metric_calls: AtomicU64,
    cost_micro_usd: AtomicU64,
    in_flight: AtomicUsize,
}

pub struct Engine {
    project: Arc<Project>,
    task: Arc<Task>,
    opt: OptimizerConfig,
    template: String,
    run_dir: PathBuf,
    log: Mutex<EventLog>,
    seq: AtomicU64,
    state: RunState,
    notices: Option<mpsc::UnboundedSender<Notice>>,
    paused: watch::Receiver<bool>,
    handle: EngineHandle,
    eval_slots: Arc<Semaphore>,
    live: Live,
    /// Wall-clock start of this process's part of the run, and the run's creation time.
    started: Instant,
    created_ms: u64,
    activity: Mutex<String>,
    /// Events of the round in progress, applied to the state when it commits.
    round_events: Mutex<Vec<Event>>,
    commands: tokio::sync::Mutex<mpsc::UnboundedReceiver<Command>>,
    auto_approve: bool,
    /// Texts of the seed when branching, and where they came from.
    seed_texts: Option<(Candidate, String)>,
    _lock: RunLock,
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
        let mut engine = Self::assemble(project, task, run_dir, log, lock, RunState::default(), 0, now_ms(), opts)?;
        let p = &engine.project;
        let ev = Event::RunStarted {
            run_id,
            version: env!("CARGO_PKG_VERSION").to_string(),
            seed: engine.opt.seed,
            components: p.component_names(),
            train_ids: p.train.iter().map(|e| e.id.clone()).collect(),
            val_ids: p.val.iter().map(|e| e.id.clone()).collect(),
            test_ids: p.test.iter().map(|e| e.id.clone()).collect(),
            max_metric_calls: engine.opt.max_metric_calls,
            proposals_per_round: engine.opt.proposals_per_round,
            config_hash: blake3::hash(p.config_text.as_bytes()).to_hex().to_string(),
            branched_from: engine.seed_texts.as_ref().map(|(_, from)| from.clone()),
        };
        engine.emit(ev.clone(), true)?;
        engine.state.apply(&ev);
        let handle = engine.handle.clone();
        Ok((engine, handle))
    }

    /// Continues an interrupted run: the uncommitted tail is voided and redone.
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
        let created = std::fs::metadata(run_dir.join("gepa.toml"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or_else(now_ms);
        let log = EventLog::open_append(&run_dir.join("events.jsonl"))?;
        let engine = Self::assemble(project, task, run_dir, log, lock, state, events.len() as u64, created, opts)?;
        if let Some(w) = warning {
            engine.notify(Notice::Warning(w));
        }
        if old_hash.is_some_and(|h| h != hash) {
            engine.notify(Notice::Warning(
                "gepa.toml changed since this run started; the resumed run follows the new settings".into(),
            ));
        }
        if engine.state.val_ids != engine.project.val.iter().map(|e| e.id.clone()).collect::<Vec<_>>() {
            bail!("the val split changed since run {run_id} started; resuming would mix scores of different data");
        }
        if engine.state.finished.is_none() {
            let after_round = engine.state.round.unwrap_or(0);
            engine.emit(Event::Resumed { after_round }, true)?;
        }
        let handle = engine.handle.clone();
        // Decisions a person made in a round that never committed are not lost: they are taken
        // again at the start of the next round.
        for action in uncommitted_human_actions(&events) {
            handle.act(action);
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
        created_ms: u64,
        opts: EngineOptions,
    ) -> Result<Engine> {
        let opt = project.config.optimizer.clone();
        if opt.proposals_per_round == 0 || opt.minibatch_size == 0 || opt.concurrency == 0 {
            bail!("gepa.toml: [optimizer] proposals_per_round, minibatch_size and concurrency must be at least 1");
        }
        // The project reads it (inside the project folder only); the engine checks its placeholders.
        let template = match project.reflection_template()? {
            Some(t) => {
                validate_template(&t).map_err(|e| {
                    anyhow!("{}: {e}", project.config.reflection.template_file.as_deref().unwrap_or_default())
                })?;
                t
            }
            None => DEFAULT_TEMPLATE.to_string(),
        };
        let (ptx, prx) = watch::channel(opts.start_paused);
        let (ctx, crx) = mpsc::unbounded_channel();
        let handle = EngineHandle { paused: ptx, cancel: CancellationToken::new(), commands: ctx };
        Ok(Engine {
            eval_slots: Arc::new(Semaphore::new(opt.concurrency)),
            live: Live {
                metric_calls: AtomicU64::new(state.metric_calls),
                cost_micro_usd: AtomicU64::new((state.cost_usd * 1e6) as u64),
                in_flight: AtomicUsize::new(0),
            },
            project,
            task,
            opt,
            template,
            run_dir,
            log: Mutex::new(log),
            seq: AtomicU64::new(seq),
            state,
            notices: opts.notices,
            paused: prx,
            handle,
            started: Instant::now(),
            created_ms,
            activity: Mutex::new(String::new()),
            round_events: Mutex::new(Vec::new()),
            commands: tokio::sync::Mutex::new(crx),
            auto_approve: opts.auto_approve,
            seed_texts: opts.seed_texts,
            _lock: lock,
        })
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

    fn notify(&self, n: Notice) {
        if let Some(tx) = &self.notices {
            let _ = tx.send(n);
        }
    }

    /// Appends an event (fsynced when `durable`), remembers it for the round's commit, and tells
    /// the consumers.
    fn emit(&self, ev: Event, durable: bool) -> Result<()> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        {
            let mut log = self.log.lock().expect("log lock");
            log.append(&stamp(&ev, seq))
                .context("cannot record the run's events; the run stays resumable once the disk problem is fixed")?;
            if durable {
                log.sync()?;
            }
        }
        self.round_events.lock().expect("round events").push(ev.clone());
        self.notify(Notice::Event(Box::new(ev)));
        Ok(())
    }

    fn set_activity(&self, s: impl Into<String>) {
        *self.activity.lock().expect("activity") = s.into();
        self.send_status();
    }

    fn send_status(&self) {
        if self.notices.is_none() {
            return;
        }
        let status = Status {
            activity: self.activity.lock().expect("activity").clone(),
            paused: *self.paused.borrow(),
            round: self.state.round.map(|r| r + 1).unwrap_or(0),
            metric_calls: self.live.metric_calls.load(Ordering::Relaxed),
            max_metric_calls: self.opt.max_metric_calls,
            cost_usd: self.live.cost_micro_usd.load(Ordering::Relaxed) as f64 / 1e6,
            in_flight: self.live.in_flight.load(Ordering::Relaxed),
            elapsed_secs: self.started.elapsed().as_secs_f64(),
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

    /// Scores a candidate on examples, concurrently within the run-wide limit; results in input order.
    async fn evaluate(&self, candidate: &Candidate, examples: &[&Example]) -> Vec<ExampleEval> {
        join_all(examples.iter().map(|ex| async move {
            self.gate().await;
            let _permit = self.eval_slots.acquire().await.expect("semaphore never closed");
            self.live.in_flight.fetch_add(1, Ordering::Relaxed);
            let e = self.task.evaluate(candidate, ex).await;
            if let Some(err) = &e.error {
                tracing::warn!(example = %ex.id, error = %err, "evaluation failed; scored 0");
            }
            self.live.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.live.metric_calls.fetch_add(1, Ordering::Relaxed);
            self.live.cost_micro_usd.fetch_add((e.cost_usd * 1e6).round() as u64, Ordering::Relaxed);
            self.send_status();
            e
        }))
        .await
    }

    /// Runs until a stopping condition (then scores the best on test and writes result.json) or
    /// until `stop()` (then returns with `result: None`, resumable).
    pub async fn run(mut self) -> Result<RunOutcome> {
        if self.state.finished.is_some() {
            let result = self.read_result()?;
            return Ok(RunOutcome { run_id: self.state.run_id.clone(), run_dir: self.run_dir.clone(), result });
        }
        let cancel = self.handle.cancel.clone();
        loop {
            let mut allow_proposals = true;
            if self.state.round.is_some() {
                if let Some(reason) = self.stop_reason() {
                    // Proposals already paid for get their review before the run ends.
                    if self.state.review_queue.is_empty() || self.auto_approve {
                        let result = self.finish(&reason).await?;
                        return Ok(RunOutcome {
                            run_id: self.state.run_id.clone(),
                            run_dir: self.run_dir.clone(),
                            result: Some(result),
                        });
                    }
                    allow_proposals = false;
                }
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    self.set_activity("stopped; resumable");
                    return Ok(RunOutcome { run_id: self.state.run_id.clone(), run_dir: self.run_dir.clone(), result: None });
                }
                r = self.next_round(allow_proposals) => r?,
            }
        }
    }

    fn stop_reason(&self) -> Option<String> {
        let s = &self.state;
        if s.metric_calls >= self.opt.max_metric_calls {
            return Some(format!("budget of {} metric calls used", self.opt.max_metric_calls));
        }
        if let Some(max) = self.opt.max_cost_usd {
            if s.cost_usd >= max {
                return Some(format!("cost limit of ${max:.2} reached"));
            }
        }
        if let Some(max) = self.opt.max_wall_secs {
            if (now_ms().saturating_sub(self.created_ms)) as f64 / 1000.0 >= max {
                return Some(format!("time limit of {max:.0}s reached"));
            }
        }
        if let Some(t) = self.opt.score_threshold {
            if s.best_val() >= t {
                return Some(format!("best val score reached the threshold {t}"));
            }
        }
        if let Some(p) = self.opt.patience_rounds {
            if s.rounds_without_improvement >= p {
                return Some(format!("no improvement in {p} rounds"));
            }
        }
        if self.run_dir.join("stop").exists() {
            return Some("stop file found in the run folder".into());
        }
        None
    }

    async fn next_round(&mut self, allow_proposals: bool) -> Result<()> {
        self.gate().await;
        self.round_events.lock().expect("round events").clear();
        let base_calls = self.state.metric_calls;
        let base_cost = self.state.cost_usd;
        let Some(prev) = self.state.round else {
            let (calls, cost) = self.seed_round().await?;
            return self.commit(0, base_calls + calls, base_cost + cost, false);
        };
        let round = prev + 1;
        let actions = self.take_actions(allow_proposals).await?;
        let mut view = self.state.clone();
        for a in &actions {
            view.apply(&Event::Human { round, action: a.clone() });
        }
        let (mutation_policy, merge_policy) = self.policies(&view);
        let room = self.review_room(&view, mutation_policy);

        // A merge first when one is due (gepa tries it instead of a reflective proposal).
        let mut merge_plan = None;
        if allow_proposals && room > 0 && self.opt.merge && view.last_round_found_new && view.merges_due > 0 {
            merge_plan = self.plan_merge(round);
        }
        let plan = if allow_proposals && merge_plan.is_none() { self.plan_round(round, room) } else { vec![] };
        self.emit(Event::RoundStarted { round, proposals: plan.clone() }, false)?;
        for a in &actions {
            self.emit(Event::Human { round, action: a.clone() }, false)?;
        }
        let mut to_score: Vec<NewCandidate> = actions.iter().filter_map(|a| self.human_candidate(a)).collect();
        let mut to_review: Vec<ReviewItem> = Vec::new();
        let mut calls = 0u64;
        let mut cost = 0.0f64;
        let mut found_new = false;

        if let Some(mp) = merge_plan {
            let m = self.run_merge(round, mp).await?;
            calls += m.calls;
            cost += m.cost;
            if let Some((cand, item)) = m.passed {
                match merge_policy {
                    ReviewPolicy::Auto => to_score.push(cand),
                    ReviewPolicy::Approve => to_review.push(item),
                }
            }
        } else if !plan.is_empty() {
            self.set_activity(format!("round {round}: {} proposals", plan.len()));
            let results = join_all(plan.iter().map(|p| self.run_proposal(round, p, &view.vetoes))).await;
            let results: Vec<SlotResult> = results.into_iter().collect::<Result<_>>()?;
            let selected = select_accepted(&results, self.opt.accept_per_round);
            for ((p, r), chosen) in plan.iter().zip(results).zip(selected) {
                calls += r.calls;
                cost += r.cost;
                let Some((cand, item)) = r.accepted else { continue };
                let (parent_sum, child_sum) = r.sums;
                let outcome = if chosen {
                    ProposalOutcome::Accepted { parent_sum, child_sum }
                } else {
                    ProposalOutcome::NotSelected { parent_sum, child_sum }
                };
                self.emit(
                    Event::ProposalFinished {
                        round,
                        slot: p.slot,
                        parent: p.parent,
                        outcome,
                        child: Some(cand.texts.clone()),
                    },
                    false,
                )?;
                if chosen {
                    found_new = true;
                    match mutation_policy {
                        ReviewPolicy::Auto => to_score.push(cand),
                        ReviewPolicy::Approve => to_review.push(item),
                    }
                }
            }
        }
        let (c2, k2) = self.score_and_add(round, to_score, to_review, &view, calls).await?;
        self.commit(round, base_calls + calls + c2, base_cost + cost + k2, found_new)
    }

    /// Review policies in force: set at run time, else gepa.toml; `--auto-approve` overrides both.
    fn policies(&self, view: &RunState) -> (ReviewPolicy, ReviewPolicy) {
        if self.auto_approve {
            return (ReviewPolicy::Auto, ReviewPolicy::Auto);
        }
        view.policy.unwrap_or((self.project.config.review.mutations, self.project.config.review.merges))
    }

    /// How many proposals may start without overfilling the review queue.
    fn review_room(&self, view: &RunState, mutation_policy: ReviewPolicy) -> usize {
        let cap = self.opt.proposals_per_round;
        if mutation_policy == ReviewPolicy::Auto && self.policies(view).1 == ReviewPolicy::Auto {
            return cap;
        }
        self.project.config.review.max_pending.max(1).saturating_sub(view.review_queue.len()).min(cap)
    }

    /// Takes the human commands that arrived since the last round, validated against the state.
    /// Waits for one when nothing else can happen: the review queue is full, or proposals are not
    /// allowed (the budget is used but items still wait for review).
    async fn take_actions(&self, allow_proposals: bool) -> Result<Vec<HumanAction>> {
        let mut rx = self.commands.lock().await;
        let mut view = self.state.clone();
        let mut out = Vec::new();
        loop {
            while let Ok(cmd) = rx.try_recv() {
                self.accept_command(cmd, &mut view, &mut out);
            }
            let (mp, _) = self.policies(&view);
            let must_wait = out.is_empty()
                && !view.review_queue.is_empty()
                && (!allow_proposals || self.review_room(&view, mp) == 0);
            if !must_wait {
                return Ok(out);
            }
            let n = view.review_queue.len();
            self.set_activity(if allow_proposals {
                format!("waiting for review: {n} pending (the queue is full)")
            } else {
                format!("budget used; {n} pending item(s) wait for review before the run finishes")
            });
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.accept_command(cmd, &mut view, &mut out),
                    None => return Ok(out),
                },
                _ = self.handle.cancel.cancelled() => return Ok(out),
            }
        }
    }

    fn accept_command(&self, cmd: Command, view: &mut RunState, out: &mut Vec<HumanAction>) {
        let actions = match cmd {
            Command::ApproveAll => view.review_queue.iter().map(|i| HumanAction::Approve { item: i.item }).collect(),
            Command::Act(a) => vec![a],
        };
        for a in actions {
            match self.check_action(&a, view) {
                Ok(()) => {
                    view.apply(&Event::Human { round: 0, action: a.clone() });
                    out.push(a);
                }
                Err(why) => self.notify(Notice::Warning(format!("ignored: {why}"))),
            }
        }
    }

    fn check_action(&self, a: &HumanAction, view: &RunState) -> std::result::Result<(), String> {
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
        }
    }

    /// The candidate a human action asks to score on val, if any.
    fn human_candidate(&self, a: &HumanAction) -> Option<NewCandidate> {
        let s = &self.state;
        let changed_from = |texts: &Candidate, parent: Option<&CandidateId>| -> Vec<String> {
            match parent.and_then(|p| s.candidates.get(*p)) {
                Some(p) => texts.iter().filter(|(k, v)| p.texts.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect(),
                None => texts.keys().cloned().collect(),
            }
        };
        match a {
            HumanAction::Approve { item } => {
                let it = s.review_item(*item)?;
                let origin = if it.kind == ReviewKind::Merge { Origin::Merge } else { Origin::Mutation };
                Some(NewCandidate {
                    texts: it.texts.clone(),
                    parents: it.parents.clone(),
                    origin,
                    changed: it.changed.clone(),
                    note: Some(format!("approved by a person (review item {item})")),
                })
            }
            HumanAction::Edit { item, texts } => {
                let it = s.review_item(*item)?;
                Some(NewCandidate {
                    texts: texts.clone(),
                    parents: it.parents.clone(),
                    origin: Origin::Human,
                    changed: changed_from(texts, it.parents.first()),
                    note: Some(format!("edited by a person before approval (review item {item})")),
                })
            }
            HumanAction::AddCandidate { texts, parents, origin, note } => Some(NewCandidate {
                texts: texts.clone(),
                parents: parents.clone(),
                origin: *origin,
                changed: changed_from(texts, parents.first()),
                note: Some(note.clone()),
            }),
            HumanAction::Veto { .. } | HumanAction::SetPolicy { .. } => None,
        }
    }

    /// Scores the round's new candidates on val (concurrently) and adds them in a fixed order:
    /// human ones first, then the proposals' by slot; queues the ones that need a review.
    /// `calls_so_far` is the round's metric calls before this (for `discovered_at`).
    async fn score_and_add(
        &self,
        round: u64,
        to_score: Vec<NewCandidate>,
        to_review: Vec<ReviewItem>,
        view: &RunState,
        calls_so_far: u64,
    ) -> Result<(u64, f64)> {
        for (number, mut item) in (view.next_review_item..).zip(to_review) {
            item.item = number;
            self.emit(Event::ReviewQueued { item }, true)?;
        }
        if to_score.is_empty() {
            return Ok((0, 0.0));
        }
        self.set_activity(format!("round {round}: scoring {} new candidate(s) on val", to_score.len()));
        let val: Vec<&Example> = self.project.val.iter().collect();
        let evals = join_all(to_score.iter().map(|c| self.evaluate(&c.texts, &val))).await;
        let mut calls = 0u64;
        let mut cost = 0.0f64;
        let base_id = self.state.candidates.len();
        for (k, (c, evals)) in to_score.into_iter().zip(evals).enumerate() {
            let id = base_id + k;
            self.emit(
                Event::CandidateAdded {
                    id,
                    texts: c.texts,
                    parents: c.parents,
                    origin: c.origin,
                    changed: c.changed,
                    round,
                    discovered_at: self.state.metric_calls + calls_so_far + calls,
                    note: c.note,
                },
                true,
            )?;
            calls += evals.len() as u64;
            cost += evals.iter().map(|e| e.cost_usd).sum::<f64>();
            self.emit(Event::ValEvaluated { candidate: id, evals }, true)?;
        }
        Ok((calls, cost))
    }

    /// Applies the round's events to a copy of the state, records the commit, then swaps it in.
    fn commit(&mut self, round: u64, metric_calls: u64, cost_usd: f64, found_new: bool) -> Result<()> {
        let mut next = self.state.clone();
        for ev in self.round_events.lock().expect("round events").iter() {
            next.apply(ev);
        }
        let accepted_mutations = self
            .round_events
            .lock()
            .expect("round events")
            .iter()
            .filter(|e| matches!(e, Event::CandidateAdded { origin: Origin::Mutation, .. }))
            .count() as u32;
        let mut merges_due = next.merges_due;
        if self.opt.merge {
            for _ in 0..accepted_mutations {
                if next.merges_tested < self.opt.max_merges {
                    merges_due += 1;
                }
            }
        }
        let (mut input_tokens, mut output_tokens) = (self.state.input_tokens, self.state.output_tokens);
        for ev in self.round_events.lock().expect("round events").iter() {
            for u in event_usage(ev) {
                input_tokens += u.input_tokens;
                output_tokens += u.output_tokens;
            }
        }
        let best = next.best().unwrap_or(0);
        let fin = Event::RoundFinished {
            round,
            metric_calls,
            cost_usd,
            best,
            best_val: next.best_val(),
            merges_due,
            found_new,
            input_tokens,
            output_tokens,
        };
        self.emit(fin.clone(), true)?;
        next.apply(&fin);
        tracing::info!(
            round,
            metric_calls,
            cost_usd,
            candidates = next.candidates.len(),
            best_val = next.best_val(),
            "round committed"
        );
        self.state = next;
        self.live.metric_calls.store(self.state.metric_calls, Ordering::Relaxed);
        self.live.cost_micro_usd.store((self.state.cost_usd * 1e6) as u64, Ordering::Relaxed);
        self.send_status();
        Ok(())
    }

    async fn seed_round(&self) -> Result<(u64, f64)> {
        self.emit(Event::RoundStarted { round: 0, proposals: vec![] }, false)?;
        self.set_activity("scoring the seed candidate on val");
        let seed = self.seed_texts.as_ref().map(|(t, _)| t.clone()).unwrap_or_else(|| self.project.seed.clone());
        let evals = self.evaluate(&seed, &self.project.val.iter().collect::<Vec<_>>()).await;
        let cost = evals.iter().map(|e| e.cost_usd).sum();
        self.emit(
            Event::CandidateAdded {
                id: 0,
                texts: seed,
                parents: vec![],
                origin: Origin::Seed,
                changed: vec![],
                round: 0,
                discovered_at: 0,
                note: None,
            },
            true,
        )?;
        let n = evals.len() as u64;
        self.emit(Event::ValEvaluated { candidate: 0, evals }, true)?;
        Ok((n, cost))
    }

    /// Chooses the round's parents, minibatches and components from the state at its start.
    fn plan_round(&self, round: u64, slots: usize) -> Vec<PlannedProposal> {
        let s = &self.state;
        let fronts = s.front_sets();
        let means = s.val_means();
        let n_comp = s.components.len();
        let mut pointer_bumps: BTreeMap<CandidateId, usize> = BTreeMap::new();
        (0..slots)
            .map(|slot| {
                let mut rng = derive_rng(self.opt.seed, &["select", &round.to_string(), &slot.to_string()]);
                let parent = select_parent(
                    self.opt.candidate_selection,
                    &fronts,
                    &means,
                    self.opt.epsilon,
                    self.opt.top_k,
                    &mut rng,
                );
                let minibatch_index = s.minibatches_drawn + slot as u64;
                let idx = minibatch(self.opt.seed, self.project.train.len(), self.opt.minibatch_size, minibatch_index);
                let components = match self.opt.component_selection {
                    ComponentSelection::All => s.components.clone(),
                    ComponentSelection::RoundRobin => {
                        // Several slots may share a parent: each takes the next component in turn.
                        let bump = pointer_bumps.entry(parent).or_insert(0);
                        let c = (s.next_component[parent] + *bump) % n_comp;
                        *bump += 1;
                        vec![s.components[c].clone()]
                    }
                };
                PlannedProposal {
                    slot,
                    parent,
                    minibatch_index,
                    minibatch: idx.iter().map(|&i| self.project.train[i].id.clone()).collect(),
                    components,
                }
            })
            .collect()
    }

    async fn run_proposal(
        &self,
        round: u64,
        p: &PlannedProposal,
        vetoes: &BTreeMap<String, Vec<String>>,
    ) -> Result<SlotResult> {
        let parent = &self.state.candidates[p.parent].texts;
        let train_index: BTreeMap<&str, &Example> = self.project.train.iter().map(|e| (e.id.as_str(), e)).collect();
        let batch: Vec<&Example> = p.minibatch.iter().filter_map(|id| train_index.get(id.as_str()).copied()).collect();
        let mut r = SlotResult::default();
        let finish = |outcome: ProposalOutcome, child: Option<Candidate>| Event::ProposalFinished {
            round,
            slot: p.slot,
            parent: p.parent,
            outcome,
            child,
        };

        let parent_evals = self.evaluate(parent, &batch).await;
        r.calls += parent_evals.len() as u64;
        r.cost += parent_evals.iter().map(|e| e.cost_usd).sum::<f64>();
        let parent_sum: f64 = parent_evals.iter().map(|e| e.score).sum();
        let perfect = parent_evals.iter().all(|e| e.score >= self.opt.perfect_score);
        self.emit(
            Event::MinibatchEvaluated {
                round,
                slot: p.slot,
                candidate_role: "parent".into(),
                evals: parent_evals.clone(),
            },
            false,
        )?;
        if self.opt.skip_perfect_score && perfect {
            self.emit(finish(ProposalOutcome::SkippedPerfect, None), false)?;
            return Ok(r);
        }

        let mut child = parent.clone();
        let mut reasoning = String::new();
        for component in &p.components {
            let records = self.reflective_dataset(component, &batch, &parent_evals);
            let notes = vetoes.get(component).map(Vec::as_slice).unwrap_or(&[]);
            let prompt = build_prompt(&self.template, &parent[component], &records, notes);
            self.gate().await;
            self.set_activity(format!("round {round}: reflecting on `{component}` of candidate {}", p.parent));
            let reply = match self.task.models().get("reflection") {
                Ok(m) => m.chat(&ChatRequest { messages: vec![Message::user(prompt.clone())] }).await,
                Err(e) => Err(e),
            };
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    self.emit(finish(ProposalOutcome::ReflectionFailed { error: e.to_string() }, None), false)?;
                    return Ok(r);
                }
            };
            r.cost += reply.cost_usd;
            let new_text = extract_instruction(&reply.text);
            if !reasoning.is_empty() {
                reasoning.push_str("\n\n");
            }
            reasoning.push_str(&reply.text);
            self.emit(
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
                },
                false,
            )?;
            if new_text.trim().is_empty() {
                let error = "the reflection answer held no new text".to_string();
                self.emit(finish(ProposalOutcome::ReflectionFailed { error }, None), false)?;
                return Ok(r);
            }
            child.insert(component.clone(), new_text);
        }
        if child == *parent {
            self.emit(finish(ProposalOutcome::Unchanged, None), false)?;
            return Ok(r);
        }

        let child_evals = self.evaluate(&child, &batch).await;
        r.calls += child_evals.len() as u64;
        r.cost += child_evals.iter().map(|e| e.cost_usd).sum::<f64>();
        let child_sum: f64 = child_evals.iter().map(|e| e.score).sum();
        let child_scores: Vec<f64> = child_evals.iter().map(|e| e.score).collect();
        self.emit(
            Event::MinibatchEvaluated { round, slot: p.slot, candidate_role: "child".into(), evals: child_evals },
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
            self.emit(finish(ProposalOutcome::Rejected { parent_sum, child_sum }, Some(child)), false)?;
        }
        Ok(r)
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
                let generated = if let Some(err) = &ev.error {
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

    /// Picks a merge of two frontier candidates (gepa's MergeProposer). None when no pair qualifies;
    /// then the round does reflective proposals instead, as gepa does.
    fn plan_merge(&self, round: u64) -> Option<MergePlan> {
        let s = &self.state;
        let means = s.val_means();
        let pool: Vec<CandidateId> = dominators(&s.front_sets(), &means).into_iter().map(|(c, _)| c).collect();
        let texts: Vec<Candidate> = s.candidates.iter().map(|c| c.texts.clone()).collect();
        let parents: Vec<Vec<CandidateId>> = s.candidates.iter().map(|c| c.parents.clone()).collect();
        let lineage = Lineage { texts: &texts, parents: &parents, scores: &means };
        let mut rng = derive_rng(self.opt.seed, &["merge", &round.to_string()]);
        let mut history = s.merges.clone();
        lineage.plan_merge(&mut rng, &pool, &mut history)
    }

    /// Scores a planned merge on a val subsample; it passes when it does at least as well as the
    /// better parent there (gepa's rule).
    async fn run_merge(&self, round: u64, plan: MergePlan) -> Result<MergeResult> {
        let s = &self.state;
        self.set_activity(format!("round {round}: merging candidates {} and {}", plan.id1, plan.id2));
        let mut rng = derive_rng(self.opt.seed, &["merge-subsample", &round.to_string()]);
        let (s1, s2) = (&s.candidates[plan.id1].val_scores, &s.candidates[plan.id2].val_scores);
        let sub = merge_subsample(s1, s2, self.opt.merge_subsample, &mut rng);
        let examples: Vec<&Example> = sub.iter().map(|&i| &self.project.val[i]).collect();
        let evals = self.evaluate(&plan.texts, &examples).await;
        let calls = evals.len() as u64;
        let cost: f64 = evals.iter().map(|e| e.cost_usd).sum();
        let id1_sum: f64 = sub.iter().map(|&i| s1[i]).sum();
        let id2_sum: f64 = sub.iter().map(|&i| s2[i]).sum();
        let merged_sum: f64 = evals.iter().map(|e| e.score).sum();
        let accepted = merged_sum >= id1_sum.max(id2_sum);
        let subsample: Vec<String> = sub.iter().map(|&i| self.project.val[i].id.clone()).collect();
        let child_scores: Vec<f64> = evals.iter().map(|e| e.score).collect();
        self.emit(
            Event::MergeAttempted {
                round,
                id1: plan.id1,
                id2: plan.id2,
                ancestor: plan.ancestor,
                sources: plan.sources.clone(),
                texts: plan.texts.clone(),
                subsample: subsample.clone(),
                id1_sum,
                id2_sum,
                merged_sum,
                accepted,
                evals,
            },
            false,
        )?;
        let passed = accepted.then(|| {
            let better = if id2_sum > id1_sum { s2 } else { s1 };
            let changed: Vec<String> = plan
                .texts
                .iter()
                .filter(|(k, v)| s.candidates[plan.id1].texts.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .collect();
            let cand = NewCandidate {
                texts: plan.texts.clone(),
                parents: vec![plan.id1, plan.id2],
                origin: Origin::Merge,
                changed: changed.clone(),
                note: None,
            };
            let item = ReviewItem {
                item: 0,
                kind: ReviewKind::Merge,
                round,
                parents: vec![plan.id1, plan.id2],
                texts: plan.texts.clone(),
                changed,
                sources: plan.sources.clone(),
                examples: subsample.clone(),
                parent_scores: sub.iter().map(|&i| better[i]).collect(),
                child_scores,
                reasoning: format!(
                    "merge of {} and {} (common ancestor {}): each component taken from the side that changed it",
                    plan.id1, plan.id2, plan.ancestor
                ),
                cost_usd: cost,
            };
            (cand, item)
        });
        Ok(MergeResult { calls, cost, passed })
    }

    /// Scores the best candidate on test, records `finished`, and writes result.json and best/.
    async fn finish(&mut self, reason: &str) -> Result<RunResult> {
        let best = self.state.best().ok_or_else(|| anyhow!("the run has no candidates"))?;
        if !self.project.test.is_empty() && self.state.candidates[best].test_mean.is_none() {
            self.set_activity("scoring the best candidate on test");
            let texts = self.state.candidates[best].texts.clone();
            let evals = self.evaluate(&texts, &self.project.test.iter().collect::<Vec<_>>()).await;
            let m = mean(&evals.iter().map(|e| e.score).collect::<Vec<_>>());
            let ev = Event::TestEvaluated { candidate: best, evals, mean: m };
            self.emit(ev.clone(), true)?;
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
        self.emit(fin.clone(), true)?;
        self.state.apply(&fin);
        self.set_activity(format!("finished: {reason}"));
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
            cost_usd: cost,
            failed_evaluations: failed,
            wall_seconds: (now_ms().saturating_sub(self.created_ms)) as f64 / 1000.0,
            best_texts: s.candidates[best].texts.clone(),
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
        for (name, file) in best_file_names(&self.project) {
            if let Some(text) = r.best_texts.get(&name) {
                store::write_atomic(&best_dir.join(file), text.as_bytes())?;
            }
        }
        let json = serde_json::to_vec_pretty(r).expect("result serializes");
        store::write_atomic(&self.run_dir.join("result.json"), &json)?;
        Ok(())
    }
}

/// Human actions recorded after the last committed round (possibly over several interrupted
/// attempts at it), each once, in the order they were made.
fn uncommitted_human_actions(events: &[Event]) -> Vec<HumanAction> {
    let last_commit = events.iter().rposition(|e| matches!(e, Event::RoundFinished { .. })).map_or(0, |i| i + 1);
    let mut out: Vec<HumanAction> = Vec::new();
    for e in &events[last_commit..] {
        if let Event::Human { action, .. } = e {
            if !out.contains(action) {
                out.push(action.clone());
            }
        }
    }
    out
}

/// Token usage an event records: every step of every evaluation, and reflections.
fn event_usage(ev: &Event) -> Vec<crate::llm::Usage> {
    let steps = |evals: &[ExampleEval]| -> Vec<crate::llm::Usage> {
        evals.iter().flat_map(|e| e.trace.steps.iter().map(|s| s.usage)).collect()
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

#[derive(Default)]
struct SlotResult {
    calls: u64,
    cost: f64,
    /// The child, and the review item to queue instead when reviews are on.
    accepted: Option<(NewCandidate, ReviewItem)>,
    /// Minibatch score sums of the parent and the child.
    sums: (f64, f64),
}

/// Which accepted proposals of a round go on to val: all of them, or only the one with the largest
/// minibatch gain (the earliest slot on ties), as gepa's `AllImprovements` / `BestImprovement`.
fn select_accepted(results: &[SlotResult], mode: AcceptPerRound) -> Vec<bool> {
    let accepted: Vec<bool> = results.iter().map(|r| r.accepted.is_some()).collect();
    if mode == AcceptPerRound::All {
        return accepted;
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

struct MergeResult {
    calls: u64,
    cost: f64,
    passed: Option<(NewCandidate, ReviewItem)>,
}

/// A candidate about to be scored on val and added.
struct NewCandidate {
    texts: Candidate,
    parents: Vec<CandidateId>,
    origin: Origin,
    changed: Vec<String>,
    note: Option<String>,
}

/// What a person can ask of a running engine.
#[derive(Debug, Clone)]
pub enum Command {
    Act(HumanAction),
    /// Approve every pending item (expanded into one `approve` each, in queue order).
    ApproveAll,
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

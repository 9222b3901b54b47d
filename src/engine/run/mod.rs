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
//!
//! This file holds the engine's state and its top-level `run`; each concern is a child module with
//! its own `impl Engine` / `impl Shared` block: `open` (create, resume, recovered rounds),
//! `pipeline` (the lag, voiding, the stop rule), `plan` (planning a round), `commit` (committing
//! rounds in order), `human` (decisions from the workbench and the inbox), `proposal` (a round's
//! evaluations, reflections and merges), `status` (notices, events, live status, the pause gate),
//! `finish` (the result and its files) and `cache` (evaluations already paid for).

use super::data_fixes::DataChanges;
use super::event::{Event, HumanAction, Origin, PlannedMerge, PlannedProposal, ReviewItem};
use super::pareto::CandidateId;
use super::state::{CommitBuffer, RunState};
use super::steer::Inbox;
use crate::eval::{ExampleEval, Task};
use crate::project::config::{OptimizerConfig, ReviewPolicy};
use crate::project::{Candidate, Project};
use crate::store::{EventLog, RunLock};
use anyhow::Result;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};

pub use super::handle::{
    Command, EngineHandle, EngineOptions, Halted, ModelUsage, Notice, RunOutcome, RunResult, Status,
};

mod cache;
mod commit;
mod finish;
mod human;
mod open;
mod pipeline;
mod plan;
mod proposal;
mod spend;
mod status;

use cache::EvalCache;
pub use finish::best_file_names;
use human::{inbox_commands, poll_inbox};
pub use open::load_events;
use pipeline::plans;

struct Live {
    /// Metric calls committed plus those of the rounds in flight so far.
    metric_calls: AtomicU64,
    /// Evaluations and reflections waiting for their model right now.
    in_flight: AtomicUsize,
    reflecting: AtomicUsize,
    /// The most evaluations ever in flight at once in this process (a batch that raises it opened
    /// new connections: see `engine::gauge`).
    peak_in_flight: AtomicUsize,
}

/// What the run has paid, wherever it went: committed rounds, rounds in flight, and work planned
/// ahead and dropped. Every paid reply is booked in exactly one place (`Shared::book`), so
/// `cost_usd` and `max_cost_usd` count every paid call whatever the timing.
#[derive(Default)]
struct Spend {
    /// Per work generation in flight: metric calls and USD paid so far.
    rounds: BTreeMap<u64, (u64, f64)>,
    /// The committed state's `cost_usd` (dropped work already booked included).
    committed: f64,
    /// USD paid by dropped work in this process, and how much of it a commit has booked.
    dropped: f64,
    dropped_booked: f64,
}

impl Spend {
    fn total(&self) -> f64 {
        self.committed + (self.dropped - self.dropped_booked) + self.rounds.values().map(|r| r.1).sum::<f64>()
    }
}

/// Round events waiting for their commit, and the work whose events are still taken.
#[derive(Default)]
struct HeldEvents {
    buf: CommitBuffer<Event>,
    live: std::collections::HashSet<u64>,
    /// Work that was voided (its late evaluations are not shown as spent by the run).
    voided: std::collections::HashSet<u64>,
    /// Voided work told to start nothing new: what it has in flight finishes (a round planned
    /// again may be waiting for those very replies), then it ends.
    stopped: std::collections::HashSet<u64>,
    /// Work with a call held back at the cost limit (`Shared::cost_gate`): it can never end.
    at_cost_gate: std::collections::HashSet<u64>,
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
    /// Whose draws a sampling model's calls are (`run_started`'s `draws`: this run's id, or the
    /// run it replays): the outermost part of every place (see `llm::draw`).
    draws: String,
    opt: OptimizerConfig,
    template: String,
    /// The templates of components that have their own (`[[components]] template` or
    /// `template_file`): kept as written, whatever `[reflection]` or the engine's changes of
    /// course use.
    component_templates: BTreeMap<String, String>,
    /// What the engine may change by itself when reflections make no child (`engine::adapt`).
    allowed: crate::engine::adapt::Allowed,
    log: Mutex<EventLog>,
    seq: AtomicU64,
    notices: Option<mpsc::UnboundedSender<Notice>>,
    observer: Option<crate::engine::handle::NoticeObserver>,
    paused: watch::Receiver<bool>,
    eval_slots: Arc<Semaphore>,
    /// Whether the task model's server answers requests side by side (see `engine::gauge`), and
    /// whether the run said it answers in turn (so that going back is said too).
    gauge: Mutex<crate::engine::gauge::ParallelGauge>,
    said_serial: std::sync::atomic::AtomicBool,
    live: Live,
    /// Wall-clock start of this process's part of the run.
    started: Instant,
    activity: Mutex<Activity>,
    /// The engine's own copy of the commit rule: each round's events until it commits, and the
    /// generations of round work still wanted.
    held: Mutex<HeldEvents>,
    next_gen: AtomicU64,
    cache: Mutex<EvalCache>,
    /// Rounds planned and not committed, and evaluations served from the cache (committed).
    rounds_in_flight: AtomicUsize,
    evaluations_cached: AtomicU64,
    /// The next round to commit.
    next_commit: AtomicU64,
    /// The work generation scoring the seed on val.
    seed_gen: AtomicU64,
    /// What the run has paid (lock order: `held`, then `spend`).
    spend: Mutex<Spend>,
    /// Told when a call is held back because `max_cost_usd` is reached (which work: `held`).
    cost_stop: tokio::sync::Notify,
    /// The run is finishing: no call starts any more (see `Shared::cost_gate`).
    closing: std::sync::atomic::AtomicBool,
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

impl Engine {
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
        let (sh, dir) = (self.sh.clone(), self.run_dir.clone());
        let ticker = AbortOnDrop(tokio::spawn(async move {
            loop {
                sh.write_status_file(&dir);
                tokio::time::sleep(Duration::from_secs(1)).await;
                sh.send_status();
            }
        }));
        // Requests already waiting in the inbox (sent while the run was stopped) are taken by the
        // first plan, whatever the poller's timing.
        let waiting = inbox_commands(&self.inbox, &self.sh, &self.handle);
        self.command_buf.extend(waiting);
        let poller = AbortOnDrop(tokio::spawn(poll_inbox(self.inbox.clone(), self.handle.clone(), self.sh.clone())));
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
        self.sh.write_status_file(&self.run_dir);
        match result? {
            Some(result) => Ok(RunOutcome {
                run_id: self.state.run_id.clone(),
                run_dir: self.run_dir.clone(),
                result: Some(result),
            }),
            None => Ok(stopped(&self)),
        }
    }
}

/// What a person asked of a round's reflections: vetoes' reasons and protected text, per component.
#[derive(Clone, Copy)]
struct ReflectionConstraints<'a> {
    vetoes: &'a BTreeMap<String, Vec<String>>,
    protected: &'a BTreeMap<String, Vec<String>>,
}

/// One reflective proposal of a planned round, with the parent's texts it starts from.
struct ProposalJob {
    plan: PlannedProposal,
    parent_texts: Candidate,
    /// The changes of course in force for it (the first `plan.adaptations` of the run's).
    steps: Vec<crate::engine::adapt::AdaptStep>,
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

/// Why a run stops: the setting or rule that stopped it (`result.json`'s `stopped_by`) and the
/// sentence a person reads (`stop_reason`).
#[derive(Debug, Clone)]
pub(super) struct Stop {
    by: &'static str,
    text: String,
}

/// A round in flight: its plan and its work (a task of its own).
struct Running {
    plan: PlannedRound,
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
struct PlannedRound {
    started: Event,
    gen: u64,
    preview: Option<Preview>,
    actions: Vec<HumanAction>,
    /// Metric calls it spends at least (its first evaluations not served from the cache).
    min_calls: u64,
    /// Proposals or merges that may each queue a review item.
    may_queue: usize,
}

impl PlannedRound {
    /// Its round number (0 scores the seed).
    fn round(&self) -> u64 {
        match self.started {
            Event::RoundStarted { round, .. } => round,
            _ => unreachable!("a plan is a round_started"),
        }
    }
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

/// A candidate about to be scored on val and added.
struct NewCandidate {
    texts: Candidate,
    parents: Vec<CandidateId>,
    origin: Origin,
    changed: Vec<String>,
    note: Option<String>,
    /// The review item a person approved or edited into it.
    review_item: Option<u64>,
}

//! What the engine shows its consumers and how they steer it: the live `Status`, the `Notice`s
//! it sends (events, status, warnings, refused decisions), `result.json`'s `RunResult`, the
//! options it starts with and the `EngineHandle` (pause, resume, stop, decisions). The loop
//! itself is `engine::run`.

use super::event::{Event, HumanAction};
use super::pareto::CandidateId;
use crate::project::Candidate;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The live status of a running run, rewritten about once a second in its folder (a workbench
/// attached from another process reads it).
pub const STATUS_FILE: &str = "status.json";

/// Live, uncommitted progress for displays (never in the log; `status.json` holds the latest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// What the engine is doing now, in a few words: each round in flight and its stage.
    pub activity: String,
    pub paused: bool,
    /// The oldest round in flight (the next to commit).
    pub round: u64,
    /// Metric calls including those of the rounds in flight so far.
    pub metric_calls: u64,
    pub max_metric_calls: u64,
    pub cost_usd: f64,
    /// Evaluations running right now.
    pub in_flight: usize,
    /// Rounds planned and not yet committed.
    pub rounds_in_flight: usize,
    /// Evaluations served from the evaluation cache, committed so far.
    pub evaluations_cached: u64,
    /// Evaluations of rounds planned ahead and dropped (run, not counted).
    pub evaluations_dropped: u64,
    /// Of `cost_usd`, USD paid by work planned ahead and dropped (this process's part).
    pub cost_usd_dropped: f64,
    pub elapsed_secs: f64,
    /// Models whose provider is not answering: their requests are held and probed, not scored.
    pub outages: Vec<crate::llm::Outage>,
    /// Each model's usage in this process so far, in the task's order.
    pub models: Vec<ModelUsage>,
}

/// Usage of one model in this process (not part of the run's events).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelUsage {
    pub name: String,
    pub in_flight: u64,
    pub calls: u64,
    pub cache_hits: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// Calls waiting for the model's rate limit right now.
    pub waiting_on_limit: u64,
}

impl ModelUsage {
    /// Every model of the task, as its counters stand now.
    pub fn of(task: &crate::eval::Task) -> Vec<ModelUsage> {
        task.models()
            .iter()
            .map(|(name, m)| {
                let s = m.stats();
                ModelUsage {
                    name: name.to_string(),
                    in_flight: s.in_flight,
                    calls: s.calls,
                    cache_hits: s.cache_hits,
                    input_tokens: s.input_tokens,
                    output_tokens: s.output_tokens,
                    cost_usd: s.cost_usd,
                    waiting_on_limit: s.waiting_on_limit,
                }
            })
            .collect()
    }
}

/// The run stopped because a model's provider failed in a way that says nothing about the
/// candidates: it did not answer for longer than `max_outage_secs`, refused the key, ran out of
/// quota or credit, or refused the request as configured. Nothing was scored for it; the run is
/// resumable once the cause is fixed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Halted(pub crate::llm::LlmError);

/// What the engine tells its consumers (TUI, headless printer, tests).
#[derive(Debug, Clone)]
pub enum Notice {
    Event(Box<Event>),
    Status(Status),
    /// Something the user should know that is not an error (a repaired log, a changed config).
    Warning(String),
    /// A decision sent to the engine was not taken, and why (the item is no longer pending, the
    /// texts lack a component, …). Typed, so a consumer matches the decision it sent instead of
    /// parsing a message.
    Refused {
        action: HumanAction,
        why: String,
    },
}

impl Notice {
    /// The line a person reads for a warning or a refusal.
    pub fn message(&self) -> Option<String> {
        match self {
            Notice::Warning(w) => Some(w.clone()),
            Notice::Refused { why, .. } => Some(format!("ignored: {why}")),
            Notice::Event(_) | Notice::Status(_) => None,
        }
    }
}

/// `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub run_id: String,
    pub stop_reason: String,
    /// The setting or rule that stopped the run: `max_metric_calls`, `max_cost_usd`,
    /// `max_reflection_cost_usd`, `max_wall_secs`, `score_threshold`, `patience_rounds`,
    /// `max_rounds`, `max_proposals`, `max_candidates`, `stop_file`, `no_child` (reflections keep
    /// making no child) or `idle` (rounds spend nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    pub best_candidate: CandidateId,
    pub best_val_score: f64,
    pub seed_val_score: f64,
    pub test_score: Option<f64>,
    /// best val score minus test score: a large gap means the prompt fits val, not the task.
    pub val_test_gap: Option<f64>,
    pub candidates: usize,
    pub metric_calls: u64,
    /// Evaluations served from the run's evaluation cache instead of being run and counted.
    #[serde(default)]
    pub evaluations_cached: u64,
    /// Evaluations run for rounds planned ahead that were then dropped (paid for, never counted
    /// or used), in this process's part of the run. Depends on timing.
    #[serde(default)]
    pub evaluations_dropped: u64,
    /// USD the run paid, everything (replies replayed from the response cache are free; work of
    /// rounds planned ahead and then dropped is paid, and included).
    pub cost_usd: f64,
    /// USD the replies served from the cache would have cost.
    #[serde(default)]
    pub cost_usd_replayed: f64,
    /// Of `cost_usd`, what work planned ahead and then dropped paid. Depends on timing.
    #[serde(default)]
    pub cost_usd_dropped: f64,
    /// Evaluations that failed (model errors after retries, program crashes), scored 0.
    pub failed_evaluations: u64,
    /// Of `failed_evaluations`, those whose program (a `command` system or scorer) ran out of its
    /// `timeout_secs` and was stopped.
    #[serde(default)]
    pub timed_out_evaluations: u64,
    pub wall_seconds: f64,
    pub best_texts: Candidate,
    /// Proposals a person asked for with a note (`guide`, in the workbench or `gepa-tui steer`).
    #[serde(default)]
    pub guided_proposals: u64,
    /// Children refused before they were evaluated: they dropped text a person protected, or grew
    /// more than their component's `max_growth`.
    #[serde(default)]
    pub children_refused: u64,
    /// The frontier, each objective's best candidate, the non-dominated set (absent without objectives).
    #[serde(flatten)]
    pub objectives: super::state::ObjectiveReport,
    /// `excluded_examples` and `data_fixes`: what a person changed in the data (absent when nothing).
    #[serde(flatten)]
    pub data: super::data_fixes::DataReport,
}

pub struct RunOutcome {
    pub run_id: String,
    pub run_dir: PathBuf,
    /// None when the run was stopped by the user before finishing (it stays resumable).
    pub result: Option<RunResult>,
}

/// Something that sees every notice as the engine sends it, and must never block (experiment
/// tracking copies what it needs into its own bounded queue).
pub type NoticeObserver = std::sync::Arc<dyn Fn(&Notice) + Send + Sync>;

#[derive(Clone, Default)]
pub struct EngineOptions {
    pub notices: Option<mpsc::UnboundedSender<Notice>>,
    /// Also shown each notice, before the front end gets it (`tracking`).
    pub observer: Option<NoticeObserver>,
    /// Start paused (the TUI's "new run, paused" and tests).
    pub start_paused: bool,
    /// Treat `approve` review policies as `auto` (headless runs with nobody to ask).
    pub auto_approve: bool,
    /// Start a new run from these texts instead of the project's prompt files, recording where
    /// they came from (branching a run from a candidate of an earlier one).
    pub seed_texts: Option<(Candidate, String)>,
    /// A new run that takes the draws of this earlier run (`--replay RUN`): its sampling models'
    /// replies at the places that run had them (see `llm::draw`).
    pub draws_of: Option<String>,
    /// Settings the command line sets (`--seed`, `--max-metric-calls`), over gepa.toml's.
    pub overrides: super::settings::Overrides,
}

/// Steers a running engine from another task or thread.
#[derive(Clone)]
pub struct EngineHandle {
    pub(super) paused: watch::Sender<bool>,
    pub(super) cancel: CancellationToken,
    pub(super) commands: mpsc::UnboundedSender<Command>,
}

impl EngineHandle {
    /// A human action, taken when the next round is planned (and recorded with it).
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
    /// Stop now: the rounds in flight are abandoned (redone from their recorded plans on resume).
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

/// What a person can ask of a running engine.
#[derive(Debug, Clone)]
pub enum Command {
    Act(HumanAction),
    /// Approve every pending item (expanded into one `approve` each, in queue order).
    ApproveAll,
    /// A `gepa-tui steer` request from the run folder's inbox, answered there (see `steer`).
    Request {
        id: String,
        action: HumanAction,
    },
}

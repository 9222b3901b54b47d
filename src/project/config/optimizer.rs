//! The `[optimizer]`, `[review]` and `[reflection]` tables.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CandidateSelection {
    #[default]
    Pareto,
    CurrentBest,
    EpsilonGreedy,
    TopKPareto,
}

/// Which proposals of a round that passed their minibatch test go on to val.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AcceptPerRound {
    /// Only the one with the largest minibatch gain (gepa's BestImprovement): the budget goes to
    /// depth rather than to scoring siblings on val.
    #[default]
    Best,
    /// All of them (gepa's AllImprovements).
    All,
    /// The `accept_top_k` with the largest gains (gepa's TopKImprovements).
    TopK,
}

/// When a child passes its minibatch test (gepa's `acceptance_criterion`,
/// strategies/acceptance.py): the child's score sum against its parent's on the same minibatch.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Acceptance {
    /// Strictly greater (gepa's `StrictImprovementAcceptance`, its default).
    #[default]
    Strict,
    /// Greater or equal (gepa's `ImprovementOrEqualAcceptance`): lateral moves are kept.
    ImprovementOrEqual,
}

impl Acceptance {
    /// Whether a child with minibatch sum `child` passes against its parent's `parent`.
    pub fn passes(self, parent: f64, child: f64) -> bool {
        match self {
            Acceptance::Strict => child > parent,
            Acceptance::ImprovementOrEqual => child >= parent,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ComponentSelection {
    #[default]
    RoundRobin,
    All,
}

/// Rounds in flight at most when `pipeline_lag` is not written. Two, not four: work planned ahead
/// and dropped is paid for, and against a parallel mock (BENCHMARKS.md, 2026-12-07 "bills") four
/// rounds asked 1.54× the sequential loop's requests, two 1.14×, for 1.2–1.3× the wall of four
/// (and the same wall behind a concurrency cap). A default must be safe on a paid API.
pub const DEFAULT_PIPELINE_LAG: usize = 2;

/// Which Pareto fronts parent selection, domination removal and the merge pool work over
/// (gepa's `frontier_type`, core/state.py).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Frontier {
    /// One front per val example, on the main score.
    #[default]
    Instance,
    /// One front per objective, on its mean over val.
    Objective,
    /// Both: the per-example fronts and the per-objective fronts.
    Hybrid,
    /// One front per (val example, objective).
    Cartesian,
}

impl Frontier {
    pub fn as_str(self) -> &'static str {
        match self {
            Frontier::Instance => "instance",
            Frontier::Objective => "objective",
            Frontier::Hybrid => "hybrid",
            Frontier::Cartesian => "cartesian",
        }
    }

    pub fn is_instance(&self) -> bool {
        *self == Frontier::Instance
    }
}

/// An objective computed by gepa-tui itself, switched on in `[optimizer] objectives`. Each is
/// lower-is-better, so it is recorded negated (every objective in the run store is higher-is-better).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinObjective {
    /// The candidate's component texts, in tokens counted locally (words and punctuation marks).
    PromptTokens,
    /// Tokens the task model wrote for the example (from the recorded usage).
    OutputTokens,
    /// USD the task model's calls for the example cost (from the recorded usage and prices).
    CostUsd,
}

impl BuiltinObjective {
    pub const ALL: [BuiltinObjective; 3] =
        [BuiltinObjective::PromptTokens, BuiltinObjective::OutputTokens, BuiltinObjective::CostUsd];

    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinObjective::PromptTokens => "prompt_tokens",
            BuiltinObjective::OutputTokens => "output_tokens",
            BuiltinObjective::CostUsd => "cost_usd",
        }
    }

    pub fn from_name(name: &str) -> Option<BuiltinObjective> {
        Self::ALL.into_iter().find(|b| b.as_str() == name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    /// Budget: examples scored (one example scored = one metric call).
    pub max_metric_calls: u64,
    pub minibatch_size: usize,
    pub candidate_selection: CandidateSelection,
    /// epsilon_greedy: chance of a random candidate.
    pub epsilon: f64,
    /// top_k_pareto: how many of the best frontier candidates to sample from.
    pub top_k: usize,
    pub component_selection: ComponentSelection,
    /// The Pareto fronts selection works over: `instance` (per val example, the default),
    /// `objective`, `hybrid` or `cartesian`.
    pub frontier: Frontier,
    /// Objectives gepa-tui computes itself, recorded next to the evaluator's.
    pub objectives: Vec<BuiltinObjective>,
    /// Skip reflection when the parent is perfect on the minibatch.
    pub skip_perfect_score: bool,
    pub perfect_score: f64,
    pub merge: bool,
    pub max_merges: u32,
    /// Val examples a merge is first scored on.
    pub merge_subsample: usize,
    /// Times each val example is scored (gepa #133, #139): for a system that samples, each repeat
    /// is a new draw and a metric call; the example's score is the mean of its draws. 1: once,
    /// as gepa does.
    pub val_repeats: u32,
    /// Proposals planned together in one round from the same state (siblings); 1 (the default)
    /// makes every proposal its own round, as in the reference's loop.
    pub proposals_per_round: usize,
    /// Rounds in flight at most: round n is planned from the state as committed after round
    /// n - lag, and rounds commit in order. 1 is the reference's sequential loop. Not written
    /// (None): up to `DEFAULT_PIPELINE_LAG`, and one at a time while the task model's server is
    /// seen answering requests in turn (`engine::gauge`). Rounds sure to skip (their parent is
    /// perfect there) may run on top, up to three lags in all (`Engine::room`).
    pub pipeline_lag: Option<usize>,
    /// Keep a round planned ahead even when a round before it changed what it would have been
    /// (a fixed-lag pipeline: faster, but each proposal sees up to `pipeline_lag - 1` fewer of
    /// the results before it). Off by default: such a round is dropped and planned again.
    pub keep_stale_plans: bool,
    /// An evaluation already made in this run (same texts, same example) is reused, not run or
    /// counted again (gepa's `cache_evaluation`, which reuses val and merge evaluations only).
    pub cache_evaluations: bool,
    /// With `cache_evaluations`, minibatch evaluations are reused too (the default: it saves real
    /// budget). `false` is gepa's accounting: its reflective proposer always runs the parent and
    /// the child on the minibatch (`proposer/reflective_mutation/reflective_mutation.py`), only
    /// val and merge evaluations are served — for comparing runs side by side with the reference.
    pub cache_minibatches: bool,
    /// `best`: of a round's proposals that pass their minibatch, only the largest gain is scored on
    /// val; `all`: every one is.
    pub accept_per_round: AcceptPerRound,
    /// `accept_per_round = "top_k"`: how many of a round's passing proposals go on to val.
    pub accept_top_k: usize,
    /// The parents a round's `proposals_per_round` proposals come from: None, each proposal
    /// chooses its own (gepa's IndependentSampling); P, P parents with proposals_per_round / P
    /// children each (gepa's PxNSampling; 1 is its SameParentSampling).
    pub parents_per_round: Option<usize>,
    /// When a child passes its minibatch test: `strict` (greater, the default) or
    /// `improvement_or_equal`.
    pub acceptance: Acceptance,
    /// Evaluations (system runs + scoring) in flight at most, over all models.
    pub concurrency: usize,
    pub seed: u64,
    /// Stop when the best val mean reaches this.
    pub score_threshold: Option<f64>,
    /// Stop after this many rounds without a new best val mean.
    pub patience_rounds: Option<u64>,
    /// Stop after this many rounds (proposals, with one per round) past the seed.
    pub max_rounds: Option<u64>,
    pub max_cost_usd: Option<f64>,
    /// Stop once the reflection model's calls cost this much (gepa's `MaxReflectionCostStopper`).
    pub max_reflection_cost_usd: Option<f64>,
    /// Stop after this many reflective proposals (gepa's `MaxCandidateProposalsStopper`).
    pub max_proposals: Option<u64>,
    /// Stop once this many candidates are kept (gepa's `MaxTrackedCandidatesStopper`).
    pub max_candidates: Option<usize>,
    pub max_wall_secs: Option<f64>,
    /// Seconds a model's provider may fail every request (down, unreachable, overloaded) before
    /// the run stops, resumably. Until then its requests are held and probed, never scored.
    pub max_outage_secs: f64,
}

impl OptimizerConfig {
    /// Rounds in flight at most.
    pub fn max_lag(&self) -> usize {
        self.pipeline_lag.unwrap_or(DEFAULT_PIPELINE_LAG)
    }

    /// The lag was left to the engine (it then runs one proposal at a time on a server seen
    /// answering in turn).
    pub fn lag_is_auto(&self) -> bool {
        self.pipeline_lag.is_none()
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            max_metric_calls: 800,
            minibatch_size: 3,
            candidate_selection: CandidateSelection::Pareto,
            epsilon: 0.1,
            top_k: 5,
            component_selection: ComponentSelection::RoundRobin,
            frontier: Frontier::Instance,
            objectives: Vec::new(),
            skip_perfect_score: true,
            perfect_score: 1.0,
            merge: false,
            max_merges: 5,
            merge_subsample: 5,
            val_repeats: 1,
            proposals_per_round: 1,
            pipeline_lag: None,
            keep_stale_plans: false,
            cache_evaluations: true,
            cache_minibatches: true,
            accept_per_round: AcceptPerRound::Best,
            acceptance: Acceptance::Strict,
            accept_top_k: 2,
            parents_per_round: None,
            concurrency: 32,
            seed: 0,
            score_threshold: None,
            patience_rounds: None,
            max_rounds: None,
            max_cost_usd: None,
            max_reflection_cost_usd: None,
            max_proposals: None,
            max_candidates: None,
            max_wall_secs: None,
            max_outage_secs: 1800.0,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReviewPolicy {
    #[default]
    Auto,
    Approve,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// `approve`: a child that passed its minibatch test waits for a person before it is scored on val.
    pub mutations: ReviewPolicy,
    /// `approve`: a merge that passed its subsample test waits for a person likewise.
    pub merges: ReviewPolicy,
    /// At most this many items wait for review; while the queue is full no new proposals start.
    pub max_pending: usize,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self { mutations: ReviewPolicy::Auto, merges: ReviewPolicy::Auto, max_pending: 2 }
    }
}

impl ReviewConfig {
    /// The review policies (mutations, merges) in force: `--auto-approve` makes both `auto`
    /// (nobody is there to review, whatever was set); else the ones a person set during the
    /// run, else these. The engine and the workbench both ask this, so the screen never shows a
    /// policy the engine is not applying.
    pub fn in_force(
        &self,
        set_in_run: Option<(ReviewPolicy, ReviewPolicy)>,
        auto_approve: bool,
    ) -> (ReviewPolicy, ReviewPolicy) {
        if auto_approve {
            return (ReviewPolicy::Auto, ReviewPolicy::Auto);
        }
        set_in_run.unwrap_or((self.mutations, self.merges))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReflectionConfig {
    /// A file (relative to the project) holding the reflection prompt template, with
    /// `<curr_instructions>` and `<inputs_outputs_feedback>` placeholders as in gepa. It wins
    /// over `template`.
    pub template_file: Option<String>,
    /// The built-in template: `gepa` (gepa's own, the default) or `compact` (shorter, for small
    /// models that echo the examples or do the task themselves under gepa's).
    pub template: TemplateKind,
    /// Times a reflection cut off at max_tokens (or with a fence left open) is asked again for
    /// only the new text; after that the proposal ends `reflection_truncated`.
    pub truncation_retries: u32,
    /// Use what a cut-off answer holds, as gepa does, instead of asking again (for runs recorded
    /// before gepa-tui asked again, so they replay).
    pub use_cut_off_answers: bool,
    /// Tokens a cut-off answer is asked again with: a cut answer proves the model needs more
    /// than max_tokens. Default: 3 x the reflection model's `max_tokens` (none when that is not
    /// set: the server's own limit is kept).
    pub retry_max_tokens: Option<u32>,
    /// Let the engine change how it asks when reflections keep making no child (re-ask an
    /// unchanged answer with a note, then the other built-in template, re-asks at temperature
    /// 0.7, more tokens), each change recorded. `false` keeps the engine asking one way.
    pub adapt: bool,
}

/// `retry_max_tokens`'s default, as a multiple of the reflection model's `max_tokens`.
pub const RETRY_MAX_TOKENS_FACTOR: u32 = 3;

impl Default for ReflectionConfig {
    fn default() -> Self {
        Self {
            template_file: None,
            template: TemplateKind::Gepa,
            truncation_retries: 1,
            use_cut_off_answers: false,
            retry_max_tokens: None,
            adapt: true,
        }
    }
}

impl ReflectionConfig {
    /// The tokens a cut-off answer is asked again with, for a reflection model limited to
    /// `max_tokens`.
    pub fn retry_tokens(&self, max_tokens: Option<u32>) -> Option<u32> {
        self.retry_max_tokens.or(max_tokens.map(|n| n.saturating_mul(RETRY_MAX_TOKENS_FACTOR)))
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TemplateKind {
    #[default]
    Gepa,
    Compact,
}

impl TemplateKind {
    /// The other built-in template.
    pub fn other(self) -> TemplateKind {
        match self {
            TemplateKind::Gepa => TemplateKind::Compact,
            TemplateKind::Compact => TemplateKind::Gepa,
        }
    }

    /// `gepa` or `compact`, as `[reflection] template` names it.
    pub fn name(self) -> &'static str {
        match self {
            TemplateKind::Gepa => "gepa",
            TemplateKind::Compact => "compact",
        }
    }
}

//! Everything that happens in a run, as appended to `events.jsonl`. The run's state is a fold over
//! these (see `state/`); the TUI, `--resume` and `export` all read the same events.
//!
//! Round-scoped events (`round_started` .. `round_finished`) only change the state when their round
//! commits with `round_finished`; a round cut short by a crash is discarded on resume and redone
//! (from the response cache, so nothing is paid twice).

use super::pareto::CandidateId;
use super::reflect::ReflectiveRecord;
use crate::eval::ExampleEval;
use crate::project::config::{Frontier, OptimizerConfig, ReviewPolicy};
use crate::project::{Candidate, Split};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The best candidate on one objective: the highest val mean on it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveBest {
    pub candidate: CandidateId,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Seed,
    Mutation,
    Merge,
    Human,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Seed => "seed",
            Origin::Mutation => "mutation",
            Origin::Merge => "merge",
            Origin::Human => "human",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewKind {
    Mutation,
    Merge,
}

/// A child that passed its minibatch (or subsample) test and waits for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub item: u64,
    pub kind: ReviewKind,
    pub round: u64,
    pub parents: Vec<CandidateId>,
    pub texts: Candidate,
    pub changed: Vec<String>,
    /// For a merge: for each component (in name order), the candidate its text came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<CandidateId>,
    /// The examples of the test it passed (train minibatch, or val subsample for a merge).
    pub examples: Vec<String>,
    /// Per example: the (better) parent's score and the child's.
    pub parent_scores: Vec<f64>,
    pub child_scores: Vec<f64>,
    /// The reflection model's answer(s) that produced it.
    pub reasoning: String,
    /// USD spent on it so far.
    pub cost_usd: f64,
}

/// Something a person did. Recorded with the round it took effect in, so replaying the events
/// rebuilds the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum HumanAction {
    /// Score a pending item on val; it joins the pool.
    Approve { item: u64 },
    /// Drop a pending item; the reason is given to later reflections on the components it changed.
    Veto {
        item: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Replace a pending item's texts, then approve it.
    Edit { item: u64, texts: Candidate },
    /// A new candidate written or chosen by a person (a hand edit, a manual merge, texts from files).
    AddCandidate {
        texts: Candidate,
        parents: Vec<CandidateId>,
        /// Human for a hand edit; Merge for a manual merge.
        origin: Origin,
        note: String,
    },
    /// Switch the review policies at run time.
    SetPolicy { mutations: ReviewPolicy, merges: ReviewPolicy },
    /// Take a val or train example out of this run (mislabelled, broken): from the round it is
    /// taken in, it counts in no val mean or front, is not evaluated again, and is drawn in no
    /// minibatch (see `data_fixes.rs`). The data file is not touched.
    ExcludeExample { split: Split, example: String, reason: String },
    /// Correct one field of a val or train example (its expected answer): later evaluations use
    /// `value`, and for a val example every candidate's recorded output is scored again against it
    /// when the round commits (`example_fixed`). The data file is not touched.
    FixExample { split: Split, example: String, field: String, value: serde_json::Value },
    /// Run a reflection on this candidate with a person's note added to the reflective prompt
    /// (and the example they were looking at, if any, in its reflective dataset). It is the next
    /// round's proposal; its child is tested and scored like any other.
    Guide {
        candidate: CandidateId,
        note: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example: Option<GuideExample>,
        /// The component to rewrite (default: the candidate's round robin).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        component: Option<String>,
    },
    /// Protect this exact text of a component: later reflections on it are told to keep it
    /// verbatim, and a child that drops or changes it is refused before it is evaluated.
    Protect { component: String, text: String },
}

impl HumanAction {
    /// The example a data action is about.
    pub fn example(&self) -> Option<(Split, &str)> {
        match self {
            HumanAction::ExcludeExample { split, example, .. } | HumanAction::FixExample { split, example, .. } => {
                Some((*split, example))
            }
            _ => None,
        }
    }
}

/// One field a fix changed: what the data file holds (None: the example has no such field) and
/// the value the run uses instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<serde_json::Value>,
    pub new: serde_json::Value,
}

/// A candidate's recorded output on a fixed example, scored again against the corrected value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rescored {
    pub candidate: CandidateId,
    /// The recorded output and trace with the new score and feedback; `cost_usd` is what the
    /// scoring cost this time (a judge's call), nothing for local evaluators.
    pub eval: ExampleEval,
}

/// An example a person pointed at: its split (train or val) and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuideExample {
    pub split: Split,
    pub id: String,
}

/// A person's guidance for one proposal (see `HumanAction::Guide`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guidance {
    pub note: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<GuideExample>,
}

/// One planned reflective proposal of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedProposal {
    pub slot: usize,
    pub parent: CandidateId,
    /// Index of this minibatch over the whole run (the sampler is a pure function of it).
    pub minibatch_index: u64,
    /// Train example ids of the minibatch.
    pub minibatch: Vec<String>,
    /// The component(s) this proposal rewrites.
    pub components: Vec<String>,
    /// A person asked for this proposal, with this note (absent: the engine's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guide: Option<Guidance>,
    /// How many of the run's changes of course (`reflection_adapted`) are in force for it.
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub adaptations: usize,
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

/// A merge chosen when its round was planned: the two parents, their common ancestor, the texts,
/// and the val examples (indices, in val order) it is first scored on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedMerge {
    pub id1: CandidateId,
    pub id2: CandidateId,
    pub ancestor: CandidateId,
    /// For each component (in name order), the candidate its text came from.
    pub sources: Vec<CandidateId>,
    pub texts: Candidate,
    pub subsample: Vec<usize>,
}

/// Why a proposal produced no candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProposalOutcome {
    /// The parent was perfect on the minibatch: nothing to learn (gepa's skip_perfect_score).
    SkippedPerfect,
    /// The reflection call failed or returned nothing usable.
    ReflectionFailed { error: String },
    /// Every answer of the reflection was cut off (max_tokens, or a fence never closed), asked
    /// again `[reflection] truncation_retries` times: no child was made from half a prompt.
    ReflectionTruncated { attempts: u32 },
    /// The reflection answered with no new text at all: nothing to try.
    EmptyAnswer,
    /// The new texts equal the parent's.
    Unchanged,
    /// The child's minibatch sum did not pass `[optimizer] acceptance` against the parent's
    /// (not strictly greater by default; lower with `improvement_or_equal`).
    Rejected { parent_sum: f64, child_sum: f64 },
    /// Passed the minibatch test; scored on val (or queued for review).
    Accepted { parent_sum: f64, child_sum: f64 },
    /// Passed the minibatch test, but another proposal of the round gained more
    /// (`accept_per_round = "best"`).
    NotSelected { parent_sum: f64, child_sum: f64 },
    /// Passed the minibatch test with the very texts of an item already waiting for review: the
    /// two are one review item.
    SameAsPending { item: u64, parent_sum: f64, child_sum: f64 },
    /// The new text dropped or changed text a person protected: refused before it was evaluated.
    ProtectedTextChanged { component: String, missing: Vec<String> },
    /// The new text grew more than the component's `max_growth` over the parent's: refused before
    /// it was evaluated.
    GrewTooMuch { component: String, parent_chars: usize, child_chars: usize, max_growth: usize },
}

impl ProposalOutcome {
    /// What became of a proposal, for `adapt`'s window: None when it does not count (the parent
    /// was perfect, or it is not the reflection's outcome), `Some(None)` when it made a child.
    pub fn no_child(&self) -> Option<Option<crate::engine::adapt::NoChild>> {
        use crate::engine::adapt::NoChild;
        Some(match self {
            ProposalOutcome::SkippedPerfect => return None,
            ProposalOutcome::ReflectionTruncated { .. } => Some(NoChild::CutOff),
            ProposalOutcome::Unchanged => Some(NoChild::Unchanged),
            ProposalOutcome::EmptyAnswer => Some(NoChild::Empty),
            ProposalOutcome::ReflectionFailed { .. } => Some(NoChild::Failed),
            _ => None,
        })
    }

    /// The child was refused before it was evaluated (protected text, max_growth).
    pub fn refused_unevaluated(&self) -> bool {
        matches!(self, ProposalOutcome::ProtectedTextChanged { .. } | ProposalOutcome::GrewTooMuch { .. })
    }
}

/// Whose evaluation a `minibatch_evaluated` event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinibatchRole {
    /// The parent, before the reflection.
    Parent,
    /// The child the reflection proposed.
    Child,
    /// The parent on the example a person pointed at with a guide (shown to the reflection).
    GuidedExample,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        version: String,
        seed: u64,
        components: Vec<String>,
        train_ids: Vec<String>,
        val_ids: Vec<String>,
        test_ids: Vec<String>,
        max_metric_calls: u64,
        proposals_per_round: usize,
        /// Rounds in flight at most (round n planned from the state after round n - lag).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pipeline_lag: Option<usize>,
        /// blake3 of gepa.toml, so a resume can warn when the config changed.
        config_hash: String,
        /// `RUN:ID` when this run was branched from a candidate of an earlier run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branched_from: Option<String>,
        /// Whose draws a sampling model's calls are, when not this run's own (`--replay RUN`
        /// takes RUN's; see `llm::draw`). Absent: `run_id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        draws: Option<String>,
        /// The fronts selection works over (absent: `instance`, as in every log before objectives).
        #[serde(default, skip_serializing_if = "Frontier::is_instance")]
        frontier: Frontier,
        /// Text the component files protect (`<<keep>>` … `<</keep>>`), per component.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        protected: BTreeMap<String, Vec<String>>,
        /// The `[optimizer]` settings in force: gepa.toml with the command line's overrides
        /// (absent in logs written before it: then `seed`, `max_metric_calls`, … above).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settings: Option<Box<OptimizerConfig>>,
    },
    /// A resume changed settings (a bigger `--max-metric-calls`, an edit of gepa.toml): the
    /// settings in force from here on, and the keys that changed.
    SettingsChanged { settings: Box<OptimizerConfig>, changed: Vec<String> },
    /// A round is planned: the parents and minibatches (or the merge) chosen from the state as it
    /// was committed after round `planned_after`. Recorded before any of its work starts, so a
    /// resumed run redoes exactly this plan.
    RoundStarted {
        round: u64,
        proposals: Vec<PlannedProposal>,
        /// The last committed round when this one was planned (absent in logs written before the
        /// pipeline: then `round - 1`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        planned_after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        merge: Option<PlannedMerge>,
    },
    /// A candidate scored on a minibatch (parent before reflection, child after).
    MinibatchEvaluated {
        round: u64,
        slot: usize,
        candidate_role: MinibatchRole,
        evals: Vec<ExampleEval>,
        /// `candidate_hash` of the texts scored (the evaluation cache's key).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate_hash: Option<String>,
    },
    /// The reflection model was asked for a new text for one component.
    Reflection {
        round: u64,
        slot: usize,
        parent: CandidateId,
        component: String,
        dataset: Vec<ReflectiveRecord>,
        prompt: String,
        answer: String,
        new_text: String,
        /// The answer was cut off at max_tokens: the new text may be a broken half-prompt.
        truncated: bool,
        /// Priced whether or not the reply was served from the response cache.
        cost_usd: f64,
        #[serde(default)]
        usage: crate::llm::Usage,
        /// The reply was served from the response cache: nothing was paid for it this time.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cached: bool,
        /// Earlier answers that were cut off (max_tokens, or a fence never closed), each asked
        /// again; `answer` is the last. Their cost and tokens are in `cost_usd` and `usage`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cut_answers: Vec<String>,
        /// Earlier answers that returned the parent's text unchanged, each asked again with a note
        /// naming the examples the parent failed; in `cost_usd` and `usage` too.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unchanged_answers: Vec<String>,
        /// Earlier answers that held no instruction ("Certainly! Please provide the new
        /// instruction."), asked again (with the other built-in template, `reasked_with`, or a
        /// note saying so); in `cost_usd` and `usage` too.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        empty_answers: Vec<String>,
        /// The built-in template an answer with no instruction was asked again with: `prompt` is
        /// then that question's (None: no such re-ask, or one with a note).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasked_with: Option<crate::project::config::TemplateKind>,
        /// When some attempts (not all: see `cached`) were served from the response cache, the
        /// part of `cost_usd` they would have cost.
        #[serde(default, skip_serializing_if = "crate::system::is_zero")]
        cost_usd_replayed: f64,
    },
    /// What became of one proposal.
    ProposalFinished {
        round: u64,
        slot: usize,
        parent: CandidateId,
        outcome: ProposalOutcome,
        /// The child's texts when it got that far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        child: Option<Candidate>,
    },
    /// Reflections kept making no child to test: the engine changed how it asks from the next
    /// plan on (`engine::adapt`; decided at this round's commit from committed proposals only).
    ReflectionAdapted {
        round: u64,
        step: crate::engine::adapt::AdaptStep,
        /// The commonest reason the proposals of the window made no child.
        why: crate::engine::adapt::NoChild,
        /// Of the last `of` proposals that reflected, `no_child` made none.
        no_child: usize,
        of: usize,
    },
    /// A merge of two frontier candidates was tried.
    MergeAttempted {
        round: u64,
        id1: CandidateId,
        id2: CandidateId,
        ancestor: CandidateId,
        sources: Vec<CandidateId>,
        texts: Candidate,
        subsample: Vec<String>,
        id1_sum: f64,
        id2_sum: f64,
        merged_sum: f64,
        accepted: bool,
        evals: Vec<ExampleEval>,
    },
    /// The fixes of one example taken in `round`, committed: for a val example, the outputs every
    /// candidate scored before the fix gave, scored again against the corrected value, so a replay
    /// folds these scores instead of asking the evaluator again.
    ExampleFixed {
        round: u64,
        split: Split,
        example: String,
        changes: Vec<FieldChange>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rescored: Vec<Rescored>,
        /// Metric calls the re-scoring took: one per output scored again by an evaluator that
        /// calls a model or a program (`judge`, `command`); none when it only compares.
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        metric_calls: u64,
    },
    /// A new candidate joins the pool (ids are dense, in order of addition).
    CandidateAdded {
        id: CandidateId,
        texts: Candidate,
        parents: Vec<CandidateId>,
        origin: Origin,
        /// Components whose text differs from the (first) parent's.
        changed: Vec<String>,
        round: u64,
        /// Metric calls used when it was discovered.
        discovered_at: u64,
        /// Why a person added it, or how a reviewed item got here ("approved", "edited before approval").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// The review item it was, when a person approved it or edited it before approval (absent
        /// in older logs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        review_item: Option<u64>,
    },
    /// A child waits in the review queue instead of being scored on val.
    ReviewQueued { item: ReviewItem },
    /// A person acted (applied at the start of `round`).
    Human {
        round: u64,
        action: HumanAction,
        /// The id of the `gepa-tui steer` request it came from (absent: from the workbench).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
    /// A candidate scored on the whole val split (in val order).
    ValEvaluated {
        candidate: CandidateId,
        evals: Vec<ExampleEval>,
        /// The round it belongs to (absent in older logs, where it follows its round's events).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        round: Option<u64>,
    },
    /// Commits a round: its events now count. Metric calls and cost are summed in slot order here so
    /// the totals never depend on which call returned first.
    RoundFinished {
        round: u64,
        metric_calls: u64,
        /// USD paid so far: replies served from the response cache cost nothing.
        cost_usd: f64,
        /// USD the replies served from the cache so far would have cost.
        #[serde(default, skip_serializing_if = "crate::system::is_zero")]
        cost_usd_replayed: f64,
        /// Of `cost_usd`, USD paid so far for work planned ahead and then dropped (its replies
        /// were paid whether or not a later round used them). Depends on timing.
        #[serde(default, skip_serializing_if = "crate::system::is_zero")]
        cost_usd_dropped: f64,
        best: CandidateId,
        best_val: f64,
        /// Merges owed after this round (gepa's merges_due).
        merges_due: u32,
        /// This round accepted a new candidate by mutation (gepa's last_iter_found_new_program).
        found_new: bool,
        /// Tokens used by the run so far (system steps and reflections).
        #[serde(default)]
        input_tokens: u64,
        #[serde(default)]
        output_tokens: u64,
        /// Per objective, the candidate with the highest val mean on it and that mean (as
        /// recorded: higher is better, the built-in lower-is-better ones negated).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        objective_bests: BTreeMap<String, ObjectiveBest>,
    },
    /// The run continued after an interruption; uncommitted events before this are void.
    Resumed { after_round: u64 },
    /// A round planned ahead was dropped before it committed: a round before it changed what it
    /// would have been. Its events are void; the round is planned again under the same number.
    RoundVoided { round: u64 },
    /// The engine was paused or resumed by the user (informational).
    Paused { paused: bool },
    /// The best candidate scored on the test split.
    TestEvaluated { candidate: CandidateId, evals: Vec<ExampleEval>, mean: f64 },
    Finished {
        reason: String,
        /// The setting or rule that stopped the run (`max_metric_calls`, `max_proposals`, …;
        /// absent in runs recorded before it was kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopped_by: Option<String>,
        best: CandidateId,
        best_val: f64,
        test_score: Option<f64>,
        candidates: usize,
        metric_calls: u64,
        /// Everything the run paid, dropped work included.
        cost_usd: f64,
        /// Of it, what work planned ahead and dropped paid (`round_finished`'s, to the end).
        #[serde(default, skip_serializing_if = "crate::system::is_zero")]
        cost_usd_dropped: f64,
    },
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// The texts' identity for the evaluation cache: blake3 over the components in name order.
pub fn candidate_hash(texts: &Candidate) -> String {
    let mut h = blake3::Hasher::new();
    for (k, v) in texts {
        h.update(&(k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    h.finalize().to_hex()[..32].to_string()
}

/// How the commit rule files an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Counts at once (run_started, test_evaluated, finished, paused).
    Run,
    /// Belongs to this round; counts when it commits.
    Round(u64),
    /// Commits this round.
    Commit(u64),
    /// Voids every uncommitted round (resumed).
    Void,
    /// Voids this uncommitted round (round_voided).
    Drop(u64),
    /// Belongs to the round of the event before it (val_evaluated in older logs).
    Previous,
}

impl Event {
    /// The change of course a `reflection_adapted` event records.
    pub fn adapted(&self) -> Option<crate::engine::adapt::Taken> {
        match self {
            Event::ReflectionAdapted { round, step, why, no_child, of } => Some(crate::engine::adapt::Taken {
                round: *round,
                step: step.clone(),
                why: *why,
                no_child: *no_child,
                of: *of,
            }),
            _ => None,
        }
    }

    pub fn scope(&self) -> Scope {
        match self {
            Event::RunStarted { .. }
            | Event::SettingsChanged { .. }
            | Event::TestEvaluated { .. }
            | Event::Finished { .. }
            | Event::Paused { .. } => Scope::Run,
            Event::Resumed { .. } => Scope::Void,
            Event::RoundVoided { round } => Scope::Drop(*round),
            Event::RoundFinished { round, .. } => Scope::Commit(*round),
            Event::RoundStarted { round, .. }
            | Event::MinibatchEvaluated { round, .. }
            | Event::Reflection { round, .. }
            | Event::ProposalFinished { round, .. }
            | Event::MergeAttempted { round, .. }
            | Event::ReflectionAdapted { round, .. }
            | Event::CandidateAdded { round, .. }
            | Event::ExampleFixed { round, .. }
            | Event::Human { round, .. } => Scope::Round(*round),
            Event::ReviewQueued { item } => Scope::Round(item.round),
            Event::ValEvaluated { round: Some(r), .. } => Scope::Round(*r),
            Event::ValEvaluated { round: None, .. } => Scope::Previous,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::SettingsChanged { .. } => "settings_changed",
            Event::RoundStarted { .. } => "round_started",
            Event::MinibatchEvaluated { .. } => "minibatch_evaluated",
            Event::Reflection { .. } => "reflection",
            Event::ProposalFinished { .. } => "proposal_finished",
            Event::MergeAttempted { .. } => "merge_attempted",
            Event::ReflectionAdapted { .. } => "reflection_adapted",
            Event::CandidateAdded { .. } => "candidate_added",
            Event::ExampleFixed { .. } => "example_fixed",
            Event::ValEvaluated { .. } => "val_evaluated",
            Event::RoundFinished { .. } => "round_finished",
            Event::ReviewQueued { .. } => "review_queued",
            Event::Human { .. } => "human",
            Event::Resumed { .. } => "resumed",
            Event::RoundVoided { .. } => "round_voided",
            Event::Paused { .. } => "paused",
            Event::TestEvaluated { .. } => "test_evaluated",
            Event::Finished { .. } => "finished",
        }
    }

    /// A `run_started` for unit tests: run `r`, seed 0, one component `p`, no test split, a
    /// budget of 100 metric calls, one proposal a round, nothing protected, no settings.
    #[cfg(test)]
    pub(crate) fn run_started_for_tests(train: &[&str], val: &[&str], frontier: Frontier) -> Event {
        let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
        Event::RunStarted {
            run_id: "r".into(),
            version: "0".into(),
            seed: 0,
            components: vec!["p".into()],
            train_ids: ids(train),
            val_ids: ids(val),
            test_ids: vec![],
            max_metric_calls: 100,
            proposals_per_round: 1,
            pipeline_lag: None,
            config_hash: String::new(),
            branched_from: None,
            draws: None,
            frontier,
            protected: Default::default(),
            settings: None,
        }
    }
}

//! The typed form of `gepa.toml`. Field docs here are the reference for docs/configuration.md
//! (tests/docs.rs checks that every key is documented there).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Named models. `task` runs the system; `reflection` rewrites prompts; a `judge` evaluator names
    /// its own (default `reflection`). Chat steps may name any model (default `task`).
    pub models: BTreeMap<String, ModelConfig>,
    pub components: Vec<ComponentConfig>,
    pub system: SystemConfig,
    pub data: DataConfig,
    pub evaluator: EvaluatorConfig,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub review: ReviewConfig,
    #[serde(default)]
    pub reflection: ReflectionConfig,
}

// `[models.<name>]` is the model layer's own settings type, read from gepa.toml as written.
pub use crate::llm::settings::{ModelConfig, ProviderKind, TokenParam, DEFAULT_MAX_REPLY_BYTES, RESERVED_BODY_FIELDS};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    pub name: String,
    /// Path relative to the project folder; its text is the seed candidate's value.
    pub file: String,
    /// At most this many characters more than its parent's text per mutation: a longer child is
    /// refused before it is evaluated (for users fighting prompt bloat). None: no bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_growth: Option<i64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SystemKind {
    #[default]
    Chat,
    Command,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    pub kind: SystemKind,
    /// For `chat`: one model call per step.
    #[serde(default)]
    pub steps: Vec<ChatStep>,
    /// For `command`: argv (no shell). Gets `{"candidate":{…},"example":{…}}` on stdin.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default = "default_command_timeout")]
    pub timeout_secs: f64,
}

fn default_command_timeout() -> f64 {
    60.0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChatStep {
    pub name: String,
    /// Model name from `[models]`; default `task`.
    #[serde(default = "default_task_model")]
    pub model: String,
    /// Template of the system message (may be omitted).
    pub system: Option<String>,
    /// Template of the user message.
    pub user: String,
}

pub fn default_task_model() -> String {
    "task".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub train: String,
    pub val: String,
    pub test: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EvaluatorKind {
    Exact,
    Contains,
    Regex,
    JsonField,
    Command,
    Judge,
    /// Several evaluators (`[[evaluator.parts]]`) combined by weight; feedback from each.
    Combined,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvaluatorConfig {
    pub kind: EvaluatorKind,
    /// The example field holding the reference answer (exact, contains, json_field, judge). For
    /// exact and contains, an array value lists several accepted answers.
    pub field: Option<String>,
    /// Example fields appended to the feedback the reflection model reads.
    #[serde(default)]
    pub feedback_fields: Vec<String>,
    /// exact/contains/json_field compare ignoring case unless this is `true`. A regex is taken as
    /// written unless this is `false` (then it ignores case).
    #[serde(default)]
    pub case_sensitive: Option<bool>,
    /// regex: the pattern the output must match (anywhere; anchor with `^…$`). `{{field}}`
    /// placeholders are filled with the example's values, regex-escaped.
    pub pattern: Option<String>,
    /// json_field: the key (dotted path) in the output JSON to compare against `field`. Several keys:
    /// `json_keys`, each compared with the example field of the same name (or, when `field` names an
    /// object, with that object's key), scored as the fraction that match.
    pub json_key: Option<String>,
    #[serde(default)]
    pub json_keys: Vec<String>,
    /// command: argv of a scorer that reads `{"example":…,"output":…}` and prints `{"score":…,"feedback":…}`.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default = "default_command_timeout")]
    pub timeout_secs: f64,
    /// judge: the model to ask (default `reflection`).
    pub model: Option<String>,
    /// judge: what a good answer is. `{{output}}` is the answer, `{{expected}}` the value of `field`,
    /// other `{{names}}` are example fields; the answer (and reference) are appended when the rubric
    /// does not place them. The judge ends with `Score: N/10`, read as N/10.
    pub rubric: Option<String>,
    /// combined: the evaluators to combine, each with a `weight` (default 1); the score is the
    /// weighted mean and the feedback has one line per part.
    #[serde(default)]
    pub parts: Vec<EvaluatorPart>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvaluatorPart {
    pub kind: EvaluatorKind,
    /// combined: the objective this part's score is recorded as (default: its kind, numbered when
    /// a kind repeats: `judge`, `judge#2`). Also the label of its feedback lines.
    pub name: Option<String>,
    #[serde(default = "one")]
    pub weight: f64,
    pub field: Option<String>,
    pub case_sensitive: Option<bool>,
    pub pattern: Option<String>,
    pub json_key: Option<String>,
    #[serde(default)]
    pub json_keys: Vec<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default = "default_command_timeout")]
    pub timeout_secs: f64,
    pub model: Option<String>,
    pub rubric: Option<String>,
}

impl EvaluatorConfig {
    /// This evaluator as a single part (weight 1), so one code path validates and builds both the
    /// top-level evaluator and each part of a `combined` one.
    pub fn as_part(&self) -> EvaluatorPart {
        EvaluatorPart {
            kind: self.kind,
            name: None,
            weight: 1.0,
            field: self.field.clone(),
            case_sensitive: self.case_sensitive,
            pattern: self.pattern.clone(),
            json_key: self.json_key.clone(),
            json_keys: self.json_keys.clone(),
            command: self.command.clone(),
            timeout_secs: self.timeout_secs,
            model: self.model.clone(),
            rubric: self.rubric.clone(),
        }
    }
}

impl EvaluatorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvaluatorKind::Exact => "exact",
            EvaluatorKind::Contains => "contains",
            EvaluatorKind::Regex => "regex",
            EvaluatorKind::JsonField => "json_field",
            EvaluatorKind::Command => "command",
            EvaluatorKind::Judge => "judge",
            EvaluatorKind::Combined => "combined",
        }
    }
}

/// Labels (objective names) for combined parts: the part's `name`, else its kind, numbered when
/// an unnamed kind repeats (`judge`, `judge#2`), as before names existed: the labels are in the
/// feedback the reflection model reads, so a recorded run's requests stay the same.
pub fn part_labels(parts: &[EvaluatorPart]) -> Vec<String> {
    let mut seen: std::collections::HashMap<&str, usize> = Default::default();
    let repeated = |k: &str| parts.iter().filter(|p| p.name.is_none() && p.kind.as_str() == k).count() > 1;
    parts
        .iter()
        .map(|p| {
            if let Some(name) = &p.name {
                return name.clone();
            }
            let k = p.kind.as_str();
            let n = seen.entry(k).or_insert(0);
            *n += 1;
            if repeated(k) {
                format!("{k}#{n}")
            } else {
                k.to_string()
            }
        })
        .collect()
}

fn one() -> f64 {
    1.0
}

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

/// Rounds in flight at most when `pipeline_lag` is not written.
pub const DEFAULT_PIPELINE_LAG: usize = 4;

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
            proposals_per_round: 1,
            pipeline_lag: None,
            keep_stale_plans: false,
            cache_evaluations: true,
            cache_minibatches: true,
            accept_per_round: AcceptPerRound::Best,
            acceptance: Acceptance::Strict,
            concurrency: 32,
            seed: 0,
            score_threshold: None,
            patience_rounds: None,
            max_rounds: None,
            max_cost_usd: None,
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

// ---------------------------------------------------------------------------------------------
// Parsing with errors a person can act on.

use super::error::ProjectError;

/// Parses the text of `gepa.toml`. Errors name the line and key and say what was expected.
pub fn parse(text: &str) -> Result<ProjectConfig, ProjectError> {
    toml::from_str::<ProjectConfig>(text).map_err(|e| explain_toml_error(text, &e))
}

/// Turns toml/serde's message into one that names the line, the section and the key, with a
/// did-you-mean for misspelt keys and values.
fn explain_toml_error(text: &str, err: &toml::de::Error) -> ProjectError {
    let keys = KeyLines::new(text);
    let start = err.span().map(|s| s.start.min(text.len()));
    let line = start.map(|s| line_of(text, s));
    let msg = err.message().trim();
    let line_text = line.and_then(|l| text.lines().nth(l - 1)).unwrap_or("").trim();
    let header = line.and_then(|l| keys.header_at(l));
    let on_header_line = line.is_some() && header.map(|h| h.line) == line;

    let message = if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (name, expected) = split_name_and_expected(rest);
        if on_header_line {
            // `[optimiser]`: the misspelt key is a table name in the header itself.
            let parent = header.map(|h| parent_of_segment(h.path, &name)).unwrap_or_default();
            format!("unknown section `{name}`{}{}", in_section(&parent), suggestion(&name, &expected))
        } else {
            let line_key = key_on_line(line_text);
            let section = if line_key.is_empty() || line_key == name || line_key.ends_with(&format!(".{name}")) {
                header.map(|h| h.display()).unwrap_or_default()
            } else {
                // Inside an inline table: `components = [{ name = "a", fil = "x" }]`.
                format!("`{line_key}`")
            };
            format!("unknown key `{name}`{}{}", in_section(&section), suggestion(&name, &expected))
        }
    } else if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let (value, expected) = split_name_and_expected(rest);
        let key = key_on_line(line_text);
        let section = header.map(|h| h.display()).unwrap_or_default();
        let did_you_mean =
            strsim_best(&value, &expected).map(|s| format!("; did you mean \"{s}\"?")).unwrap_or_default();
        format!(
            "unknown value \"{value}\" for `{key}`{}{did_you_mean} Expected one of: {}",
            in_section(&section),
            expected.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ")
        )
    } else if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest).to_string();
        let whole_document = err.span().is_none_or(|s| s.is_empty());
        match header.filter(|_| !whole_document) {
            Some(h) => format!("missing key `{name}` in {}", h.display()),
            None => match name.as_str() {
                "components" => "missing [[components]]: name at least one text to optimize \
                                 (name = \"instruction\", file = \"prompts/instruction.md\")"
                    .to_string(),
                "models" => "missing [models]: define at least [models.task]".to_string(),
                other => format!("missing section [{other}]"),
            },
        }
    } else if let Some(rest) = msg
        .strip_prefix("invalid type: ")
        .map(|r| ("wrong type", r))
        .or_else(|| msg.strip_prefix("invalid value: ").map(|r| ("bad value", r)))
    {
        let (what, rest) = rest;
        let (found, expected) = match rest.rsplit_once(", expected ") {
            Some((f, e)) => (f.to_string(), describe_expected(e)),
            None => (rest.to_string(), String::new()),
        };
        let key = key_on_line(line_text);
        let section = header.map(|h| h.display()).unwrap_or_default();
        let key_part = if key.is_empty() { String::new() } else { format!(" for `{key}`") };
        format!("{what}{key_part}{}: expected {expected}, found {found}", in_section(&section))
    } else {
        msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
    };
    let whole_document_missing = msg.starts_with("missing field") && err.span().is_none_or(|s| s.is_empty());
    ProjectError::config(line.filter(|_| !whole_document_missing), message)
}

fn in_section(section: &str) -> String {
    if section.is_empty() {
        String::new()
    } else {
        format!(" in {section}")
    }
}

/// `name`, expected `a`, `b` or `c`  ->  ("name", ["a", "b", "c"])
fn split_name_and_expected(rest: &str) -> (String, Vec<String>) {
    let name = rest.split('`').next().unwrap_or(rest).to_string();
    let expected = match rest.split_once("expected") {
        Some((_, list)) => {
            list.split('`').enumerate().filter(|(i, _)| i % 2 == 1).map(|(_, s)| s.to_string()).collect()
        }
        None => Vec::new(),
    };
    (name, expected)
}

fn suggestion(name: &str, expected: &[String]) -> String {
    match strsim_best(name, expected) {
        Some(best) => format!("; did you mean `{best}`?"),
        None if expected.is_empty() => "; this section takes no keys".to_string(),
        None => {
            format!("; expected one of: {}", expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", "))
        }
    }
}

/// The closest of `options` to `name`, if it is close enough to be a likely typo.
pub(crate) fn strsim_best<'a>(name: &str, options: &'a [String]) -> Option<&'a str> {
    options
        .iter()
        .map(|o| (strsim::jaro_winkler(&name.to_lowercase(), &o.to_lowercase()), o))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, o)| o.as_str())
}

fn describe_expected(expected: &str) -> String {
    let e = expected.trim();
    match e {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number (0 or more)".to_string(),
        "i64" | "i32" => "a whole number".to_string(),
        "f64" | "f32" => "a number".to_string(),
        "a boolean" => "true or false".to_string(),
        "a sequence" => "an array, like [\"a\", \"b\"]".to_string(),
        "a map" => "a table".to_string(),
        _ if e.starts_with("struct ") => "a table".to_string(),
        _ if e.starts_with("enum ") => "one of the allowed names (a string)".to_string(),
        _ => e.to_string(),
    }
}

/// `key = value` -> `key` (empty when the line has no `=`).
fn key_on_line(line: &str) -> String {
    match line.split_once('=') {
        Some((k, _)) => k.trim().trim_matches('"').trim_matches('\'').to_string(),
        None => String::new(),
    }
}

/// For an unknown table name in a header, the section it sits in: `[system.stepz]` -> `[system]`.
fn parent_of_segment(path: &str, name: &str) -> String {
    let segments: Vec<&str> = path.split('.').collect();
    match segments.iter().position(|s| *s == name) {
        Some(0) | None => String::new(),
        Some(i) => format!("[{}]", segments[..i].join(".")),
    }
}

/// 1-based line number of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|b| **b == b'\n').count() + 1
}

/// Where each key and table header of a TOML text sits, so errors found after parsing (a missing
/// file, an unknown model) can still name their line. Paths look like `models.task.model`,
/// `components[1].file`, `system.steps[0].user`. A line scanner rather than toml's spans:
/// `toml::Spanned` would wrap every field of every config type, and toml_edit is a second parser
/// of the same text; parse errors do use toml's own span.
#[derive(Debug, Default, Clone)]
pub struct KeyLines {
    entries: Vec<KeyLine>,
}

#[derive(Debug, Clone)]
struct KeyLine {
    path: String,
    line: usize,
    header: Option<Header>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Header {
    Table,
    ArrayOfTables,
}

#[derive(Debug, Clone, Copy)]
struct HeaderRef<'a> {
    path: &'a str,
    line: usize,
    kind: Header,
}

impl HeaderRef<'_> {
    fn display(&self) -> String {
        // Drop the `[n]` index for display: `[[system.steps]]` reads better than `system.steps[0]`.
        let bare: String = strip_indices(self.path);
        match self.kind {
            Header::Table => format!("[{bare}]"),
            Header::ArrayOfTables => format!("[[{bare}]]"),
        }
    }
}

fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            c if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

#[derive(Default)]
struct Lexer {
    depth: i32,
    in_multiline: Option<&'static str>,
}

impl Lexer {
    /// Walks `s` updating bracket depth and multi-line string state; stops at a comment.
    fn scan(&mut self, s: &str) {
        let mut rest = s;
        loop {
            if let Some(close) = self.in_multiline {
                match rest.find(close) {
                    Some(i) => {
                        rest = &rest[i + close.len()..];
                        self.in_multiline = None;
                    }
                    None => return,
                }
            }
            let Some(c) = rest.chars().next() else { return };
            if rest.starts_with("\"\"\"") {
                self.in_multiline = Some("\"\"\"");
                rest = &rest[3..];
                continue;
            }
            if rest.starts_with("'''") {
                self.in_multiline = Some("'''");
                rest = &rest[3..];
                continue;
            }
            match c {
                '#' => return,
                '"' => {
                    // A basic string ends at the next unescaped quote on the same line.
                    let mut escaped = false;
                    let mut end = rest.len();
                    for (i, d) in rest.char_indices().skip(1) {
                        if escaped {
                            escaped = false;
                        } else if d == '\\' {
                            escaped = true;
                        } else if d == '"' {
                            end = i + 1;
                            break;
                        }
                    }
                    rest = &rest[end..];
                    continue;
                }
                '\'' => {
                    let end = rest[1..].find('\'').map(|i| i + 2).unwrap_or(rest.len());
                    rest = &rest[end..];
                    continue;
                }
                '[' | '{' => self.depth += 1,
                ']' | '}' => self.depth -= 1,
                _ => {}
            }
            rest = &rest[c.len_utf8()..];
        }
    }
}

fn split_key_path(key: &str) -> Vec<String> {
    key.split('.').map(|s| s.trim().trim_matches('"').trim_matches('\'').to_string()).collect()
}

impl KeyLines {
    pub fn new(text: &str) -> Self {
        let mut entries = Vec::new();
        let mut lexer = Lexer::default();
        let mut table = String::new();
        let mut array_counts: std::collections::HashMap<String, usize> = Default::default();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            if lexer.in_multiline.is_some() || lexer.depth > 0 {
                lexer.scan(raw);
                continue;
            }
            let line = raw.trim_start().trim_start_matches('\u{feff}');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(inner) = line.strip_prefix("[[") {
                let name = inner.split("]]").next().unwrap_or("");
                let base = split_key_path(name).join(".");
                let n = array_counts.entry(base.clone()).or_insert(0);
                table = format!("{base}[{n}]");
                *n += 1;
                entries.push(KeyLine { path: table.clone(), line: line_no, header: Some(Header::ArrayOfTables) });
                continue;
            }
            if let Some(inner) = line.strip_prefix('[') {
                let name = inner.split(']').next().unwrap_or("");
                table = split_key_path(name).join(".");
                entries.push(KeyLine { path: table.clone(), line: line_no, header: Some(Header::Table) });
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                let key = split_key_path(key).join(".");
                let path = if table.is_empty() { key } else { format!("{table}.{key}") };
                entries.push(KeyLine { path, line: line_no, header: None });
                lexer.scan(value);
            }
        }
        KeyLines { entries }
    }

    /// The line of a key, or of the nearest enclosing table that is written down.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = path.to_string();
        loop {
            if let Some(e) = self.entries.iter().find(|e| e.path == p) {
                return Some(e.line);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }

    /// The table header in force at `line` (the header on that line itself, if any).
    fn header_at(&self, line: usize) -> Option<HeaderRef<'_>> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.line <= line)
            .find_map(|e| e.header.map(|kind| HeaderRef { path: &e.path, line: e.line, kind }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[models.task]\nprovider = \"openai\"\nmodel = \"m\"\n\n\
[[components]]\nname = \"instruction\"\nfile = \"prompts/instruction.md\"\n\n\
[system]\nkind = \"chat\"\n[[system.steps]]\nname = \"answer\"\nuser = \"{{input}}\"\n\n\
[data]\ntrain = \"data/train.jsonl\"\nval = \"data/val.jsonl\"\n\n\
[evaluator]\nkind = \"exact\"\nfield = \"expected\"\n";

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn base_parses() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.system.steps[0].model, "task");
        assert_eq!(c.optimizer.concurrency, 32);
    }

    #[test]
    fn unknown_key_names_line_section_and_suggestion() {
        let text = format!("{BASE}\n[optimizer]\nconcurrency = 4\ncandidate_selecton = \"pareto\"\n");
        assert_eq!(
            err(&text),
            "gepa.toml:25: unknown key `candidate_selecton` in [optimizer]; did you mean `candidate_selection`?"
        );
    }

    /// The model keys of issue 24 are known like every other, typos and all.
    #[test]
    fn sampling_and_reply_size_keys_parse_and_their_typos_are_named() {
        let with = |line: &str| BASE.replace("model = \"m\"\n", &format!("model = \"m\"\n{line}\n"));
        let c = parse(&with("samples = true\nmax_reply_bytes = 1024")).unwrap();
        assert_eq!((c.models["task"].samples, c.models["task"].max_reply_bytes), (Some(true), 1024));
        assert_eq!(parse(BASE).unwrap().models["task"].max_reply_bytes, 16 << 20);
        assert_eq!(
            err(&with("sample = true")),
            "gepa.toml:4: unknown key `sample` in [models.task]; did you mean `samples`?"
        );
        assert_eq!(
            err(&with("max_reply_byte = 10")),
            "gepa.toml:4: unknown key `max_reply_byte` in [models.task]; did you mean `max_reply_bytes`?"
        );
    }

    #[test]
    fn unknown_key_in_array_of_tables() {
        let text = BASE.replace("user = \"{{input}}\"", "usr = \"{{input}}\"");
        assert_eq!(err(&text), "gepa.toml:13: unknown key `usr` in [[system.steps]]; did you mean `user`?");
    }

    #[test]
    fn unknown_key_in_an_inline_table_names_its_key() {
        let text = "components = [{ name = \"instruction\", fil = \"p.md\" }]\n[models.task]\nprovider = \"openai\"\n";
        assert_eq!(err(text), "gepa.toml:1: unknown key `fil` in `components`; did you mean `file`?");
    }

    #[test]
    fn unknown_section() {
        let text = format!("{BASE}\n[optimiser]\nseed = 1\n");
        assert_eq!(err(&text), "gepa.toml:23: unknown section `optimiser`; did you mean `optimizer`?");
    }

    #[test]
    fn wrong_type_names_key() {
        let text = format!("{BASE}\n[optimizer]\nconcurrency = \"4\"\n");
        assert_eq!(
            err(&text),
            "gepa.toml:24: wrong type for `concurrency` in [optimizer]: expected a whole number (0 or more), found string \"4\""
        );
    }

    #[test]
    fn missing_key_names_table() {
        let text = BASE.replace("model = \"m\"\n", "");
        assert_eq!(err(&text), "gepa.toml:1: missing key `model` in [models.task]");
        let text = BASE.replace("[evaluator]\nkind = \"exact\"\n", "[evaluator]\n");
        assert_eq!(err(&text), "gepa.toml:19: missing key `kind` in [evaluator]");
    }

    #[test]
    fn missing_section() {
        let text = BASE.replace("[data]\ntrain = \"data/train.jsonl\"\nval = \"data/val.jsonl\"\n", "");
        assert_eq!(err(&text), "gepa.toml: missing section [data]");
    }

    #[test]
    fn bad_enum_value() {
        let text = BASE.replace("provider = \"openai\"", "provider = \"opnai\"");
        assert_eq!(
            err(&text),
            "gepa.toml:2: unknown value \"opnai\" for `provider` in [models.task]; did you mean \"openai\"? Expected one of: \"openai\", \"anthropic\""
        );
    }

    #[test]
    fn syntax_error_has_line() {
        let text = format!("{BASE}\n[optimizer\n");
        assert!(err(&text).starts_with("gepa.toml:23: "), "{}", err(&text));
    }

    #[test]
    fn key_lines_follow_arrays_and_skip_multiline_strings() {
        let text = "[[components]]\nname = \"a\"\nfile = \"x\"\n[[components]]\nname = \"b\"\n\
file = \"y\"\n[evaluator]\nrubric = \"\"\"\nfake = 1\n[not_a_header]\n\"\"\"\ncommand = [\n  \"python\",\n  \"[x]\",\n]\nmodel = \"j\"\n";
        let k = KeyLines::new(text);
        assert_eq!(k.line("components[0].file"), Some(3));
        assert_eq!(k.line("components[1].file"), Some(6));
        assert_eq!(k.line("components[1].missing"), Some(4));
        assert_eq!(k.line("evaluator.rubric"), Some(8));
        assert_eq!(k.line("evaluator.fake"), Some(7));
        assert_eq!(k.line("evaluator.model"), Some(16));
        assert_eq!(k.line("not_a_header"), None);
    }
}

//! The typed form of `gepa.toml`. Field docs here are the reference for README's gepa.toml section.

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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible `/chat/completions` server.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub provider: ProviderKind,
    pub model: String,
    /// Default: `https://api.openai.com/v1` or `https://api.anthropic.com/v1`.
    pub base_url: Option<String>,
    /// The environment variable holding the key. Default `OPENAI_API_KEY` / `ANTHROPIC_API_KEY`.
    /// A missing variable is fine for servers that need no key (Ollama, llama.cpp).
    pub api_key_env: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// USD per million input tokens.
    #[serde(default)]
    pub price_input_per_mtok: f64,
    /// USD per million output tokens.
    #[serde(default)]
    pub price_output_per_mtok: f64,
    /// Calls in flight to this model at most.
    #[serde(default = "default_model_concurrency")]
    pub concurrency: usize,
    /// Seconds to establish a connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: f64,
    /// Seconds for a whole request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: f64,
    /// Attempts after the first on 429, 5xx, timeouts, dropped connections and malformed bodies.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
}

fn default_model_concurrency() -> usize {
    8
}
fn default_connect_timeout() -> f64 {
    10.0
}
fn default_request_timeout() -> f64 {
    120.0
}
fn default_retries() -> u32 {
    5
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    pub name: String,
    /// Path relative to the project folder; its text is the seed candidate's value.
    pub file: String,
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
    /// The example field holding the reference answer (exact, contains, json_field, judge).
    pub field: Option<String>,
    /// Example fields appended to the feedback the reflection model reads.
    #[serde(default)]
    pub feedback_fields: Vec<String>,
    /// exact/contains/json_field: compare ignoring case.
    #[serde(default)]
    pub case_sensitive: Option<bool>,
    /// regex: the pattern the output must match; `{{field}}` placeholders are filled from the example.
    pub pattern: Option<String>,
    /// json_field: the key (dotted path) in the output JSON to compare against `field`. Several keys:
    /// `json_fields`, scored as the fraction that match.
    pub json_key: Option<String>,
    #[serde(default)]
    pub json_keys: Vec<String>,
    /// command: argv of a scorer that reads `{"example":…,"output":…}` and prints `{"score":…,"feedback":…}`.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default = "default_command_timeout")]
    pub timeout_secs: f64,
    /// judge: the model to ask (default `reflection`) and the rubric template.
    pub model: Option<String>,
    pub rubric: Option<String>,
    /// combined: the evaluators to combine.
    #[serde(default)]
    pub parts: Vec<EvaluatorPart>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvaluatorPart {
    pub kind: EvaluatorKind,
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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ComponentSelection {
    #[default]
    RoundRobin,
    All,
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
    /// Skip reflection when the parent is perfect on the minibatch.
    pub skip_perfect_score: bool,
    pub perfect_score: f64,
    pub merge: bool,
    pub max_merges: u32,
    /// Val examples a merge is first scored on.
    pub merge_subsample: usize,
    /// Parents chosen per round; 1 reproduces the reference's sequential loop.
    pub proposals_per_round: usize,
    /// Evaluations (system runs + scoring) in flight at most, over all models.
    pub concurrency: usize,
    pub seed: u64,
    /// Stop when the best val mean reaches this.
    pub score_threshold: Option<f64>,
    /// Stop after this many rounds without a new best val mean.
    pub patience_rounds: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_wall_secs: Option<f64>,
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
            skip_perfect_score: true,
            perfect_score: 1.0,
            merge: false,
            max_merges: 5,
            merge_subsample: 5,
            proposals_per_round: 4,
            concurrency: 16,
            seed: 0,
            score_threshold: None,
            patience_rounds: None,
            max_cost_usd: None,
            max_wall_secs: None,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    pub mutations: ReviewPolicy,
    pub merges: ReviewPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ReflectionConfig {
    /// A file (relative to the project) holding the reflection prompt template, with
    /// `<curr_instructions>` and `<inputs_outputs_feedback>` placeholders as in gepa. Default: gepa's.
    pub template_file: Option<String>,
}

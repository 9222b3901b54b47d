//! The typed form of `gepa.toml`, one file per group of sections, and its reading (`parse`). Field
//! docs here are the reference for docs/configuration.md (tests/docs.rs checks that every key is
//! documented there).

mod evaluator;
mod optimizer;
mod parse;
#[cfg(test)]
mod tests;

pub use evaluator::{part_labels, EvaluatorConfig, EvaluatorKind, EvaluatorPart};
pub use optimizer::{
    AcceptPerRound, Acceptance, BuiltinObjective, CandidateSelection, ComponentSelection, Frontier, OptimizerConfig,
    ReflectionConfig, ReviewConfig, ReviewPolicy, TemplateKind, DEFAULT_PIPELINE_LAG, RETRY_MAX_TOKENS_FACTOR,
};
pub use parse::{keys_expected_instead, parse, KeyLines};
pub(crate) use parse::{parse_with_lines, strsim_best};

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
    #[serde(default)]
    pub tracking: TrackingConfig,
}

/// `[tracking]`: where each run is also recorded for the team (MLflow's tracking server).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// An MLflow tracking server's URL (`http://127.0.0.1:5000`); `""` turns tracking off even
    /// when `MLFLOW_TRACKING_URI` is set. Not written: `MLFLOW_TRACKING_URI`, else no tracking.
    #[serde(deserialize_with = "tracking_url", skip_serializing_if = "Option::is_none")]
    pub mlflow: Option<String>,
    /// The MLflow experiment the runs go to (made when missing). Not written:
    /// `MLFLOW_EXPERIMENT_NAME`, else the project folder's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
}

/// An http(s) URL or "" (off), refused at load with its line like any other bad value (by a
/// visitor, so the refusal is the value's own and names its key).
fn tracking_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Url;
    impl serde::de::Visitor<'_> for Url {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an MLflow tracking server's URL, http://host:port (e.g. \"http://127.0.0.1:5000\"), or \"\" for no tracking")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            let url = v.trim();
            if url.is_empty() || url.starts_with("http://") || url.starts_with("https://") {
                Ok(url.to_string())
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
    }
    d.deserialize_str(Url).map(Some)
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
    /// This component's reflection prompt: a built-in (`gepa` or `compact`) instead of
    /// `[reflection]`'s (gepa's `reflection_prompt_template` given as a dict, proposer/
    /// reflective_mutation/reflection_lm.py `_resolve_template`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateKind>,
    /// This component's own reflection template file (the placeholders of `[reflection]
    /// template_file`); wins over `template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_file: Option<String>,
}

impl ComponentConfig {
    /// Whether this component asks with a template of its own rather than `[reflection]`'s.
    pub fn has_own_template(&self) -> bool {
        self.template.is_some() || self.template_file.is_some()
    }
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
    /// For `command`: at most this many copies run at once (default: the machine's CPU count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
}

pub(crate) fn default_command_timeout() -> f64 {
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

//! The `[evaluator]` table and its `[[evaluator.parts]]`.

use super::default_command_timeout;
use serde::{Deserialize, Serialize};

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
    /// command: at most this many scorer programs run at once, over every part of a `combined`
    /// evaluator (default: the machine's CPU count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
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

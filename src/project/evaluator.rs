//! The evaluator as gepa.toml defines it, built once while the project loads and kept on
//! `Project`. `load/evaluator.rs` checks each rule (naming its line) and builds it here, so what
//! exists has passed those checks; `eval/` scores with it (its `score` methods live there, beside
//! the models and programs they call) and checks nothing again.

use super::config::EvaluatorKind;
use super::template::Template;
use std::path::PathBuf;
use std::time::Duration;

/// The project's evaluator: one scorer, or several combined by weight.
#[derive(Debug, Clone)]
pub struct Evaluator {
    pub(crate) kind: EvaluatorKind,
    /// One part of weight 1 unless `combined`; the weights add up to more than 0.
    pub(crate) parts: Vec<Part>,
}

/// One scorer of the evaluator, with the objective it is recorded as.
#[derive(Debug, Clone)]
pub struct Part {
    /// The part's `name`, else its kind (`judge`, `judge#2`): see `config::part_labels`.
    pub label: String,
    pub weight: f64,
    pub scorer: Scorer,
}

/// One scoring rule, from `[evaluator]` or one of its `[[evaluator.parts]]`.
#[derive(Debug, Clone)]
pub enum Scorer {
    Compare(CompareScorer),
    Command(CommandScorer),
    Judge(JudgeScorer),
}

/// `exact`, `contains`, `regex` and `json_field`: the output compared with the example.
#[derive(Debug, Clone)]
pub enum CompareScorer {
    Exact {
        field: String,
        case_sensitive: bool,
    },
    Contains {
        field: String,
        case_sensitive: bool,
    },
    Regex {
        pattern: Template,
        /// Add `(?i)`: only when `case_sensitive = false` is written (a regex says what it means).
        ignore_case: bool,
    },
    JsonField {
        /// With `key`: the example field holding the expected value. With `keys`: the field holding
        /// an object of expected values (else each key is its own example field).
        field: Option<String>,
        key: Option<String>,
        keys: Vec<String>,
        case_sensitive: bool,
    },
}

/// `command`: an external scorer, run without a shell in the project folder.
#[derive(Debug, Clone)]
pub struct CommandScorer {
    pub(crate) argv: Vec<String>,
    pub(crate) root: PathBuf,
    pub(crate) timeout: Duration,
}

/// `judge`: a model grades the output against a rubric.
#[derive(Debug, Clone)]
pub struct JudgeScorer {
    pub(crate) model: String,
    pub(crate) rubric: Template,
    /// The example field holding a reference answer, usable as `{{expected}}`.
    pub(crate) field: Option<String>,
    pub(crate) uses_output: bool,
    pub(crate) uses_expected: bool,
}

impl CommandScorer {
    pub fn new(argv: Vec<String>, root: PathBuf, timeout: Duration) -> Self {
        CommandScorer { argv, root, timeout }
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }
}

impl JudgeScorer {
    pub fn new(model: String, rubric: Template, field: Option<String>) -> Self {
        let names = rubric.placeholders();
        let (uses_output, uses_expected) = (names.contains(&"output"), names.contains(&"expected"));
        JudgeScorer { model, rubric, field, uses_output, uses_expected }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The example field holding the reference answer, if one is set.
    pub fn reference_field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl CompareScorer {
    /// The example fields the output is compared with.
    pub fn reference_fields(&self) -> Vec<String> {
        match self {
            CompareScorer::Exact { field, .. } | CompareScorer::Contains { field, .. } => vec![field.clone()],
            CompareScorer::Regex { pattern, .. } => pattern.placeholders().into_iter().map(String::from).collect(),
            CompareScorer::JsonField { field: Some(f), .. } => vec![f.clone()],
            CompareScorer::JsonField { field: None, keys, .. } => keys.clone(),
        }
    }
}

impl Scorer {
    /// The external program this scorer runs, if any.
    pub fn command(&self) -> Option<&[String]> {
        match self {
            Scorer::Command(c) => Some(c.argv()),
            _ => None,
        }
    }

    /// The model this scorer asks, if any.
    pub fn model(&self) -> Option<&str> {
        match self {
            Scorer::Judge(j) => Some(j.model()),
            _ => None,
        }
    }
}

impl Evaluator {
    /// A single scorer (`kind` is not `combined`) or a combined one of `parts`.
    pub(crate) fn new(kind: EvaluatorKind, parts: Vec<Part>) -> Self {
        Evaluator { kind, parts }
    }

    pub fn kind(&self) -> EvaluatorKind {
        self.kind
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    pub(crate) fn is_combined(&self) -> bool {
        self.kind == EvaluatorKind::Combined
    }

    pub(crate) fn total_weight(&self) -> f64 {
        self.parts.iter().map(|p| p.weight).sum()
    }

    /// The objectives a `combined` evaluator records for every example, one per part (a command
    /// part may add its own `scores` on top). Empty for a single evaluator.
    pub fn part_objectives(&self) -> Vec<&str> {
        if !self.is_combined() {
            return Vec::new();
        }
        self.parts.iter().map(|p| p.label.as_str()).collect()
    }

    /// Whether scoring only compares the output with the example (`exact`, `contains`, `regex`,
    /// `json_field`): no model call, no program, the same answer every time.
    pub fn is_local(&self) -> bool {
        self.parts.iter().all(|p| matches!(p.scorer, Scorer::Compare(_)))
    }

    /// The example fields the evaluator compares an output with (its reference answer): `field`,
    /// `json_keys` (each its own example field unless `field` holds them), the regex pattern's
    /// placeholders; over every part of a `combined` one. Empty when it reads the whole example
    /// (a `command` scorer) or nothing.
    pub fn reference_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |f: &str| {
            if !out.iter().any(|o| o == f) {
                out.push(f.to_string());
            }
        };
        for part in &self.parts {
            match &part.scorer {
                Scorer::Compare(c) => c.reference_fields().iter().for_each(|f| add(f)),
                Scorer::Judge(j) => j.reference_field().into_iter().for_each(&mut add),
                Scorer::Command(_) => {}
            }
        }
        out
    }

    /// Every external program the evaluator runs (so `check` can show them before they run).
    pub fn commands(&self) -> Vec<&[String]> {
        self.parts.iter().filter_map(|p| p.scorer.command()).collect()
    }

    /// The models the evaluator asks (judges).
    pub fn models(&self) -> Vec<&str> {
        self.parts.iter().filter_map(|p| p.scorer.model()).collect()
    }

    /// `exact`, or `combined: 0.5 × exact + 0.5 × judge`, for reports.
    pub fn describe(&self) -> String {
        if !self.is_combined() {
            return self.kind.as_str().to_string();
        }
        let total = self.total_weight();
        let parts: Vec<String> = self.parts.iter().map(|p| format!("{:.2} × {}", p.weight / total, p.label)).collect();
        format!("combined: {}", parts.join(" + "))
    }
}

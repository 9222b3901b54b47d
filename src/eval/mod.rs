//! Scores a run's output in [0, 1] with a feedback text the reflection model reads.
//!
//! Kinds: `exact`, `contains`, `regex`, `json_field` (in `compare`), `command` (an external scorer),
//! `judge` (an LLM with a rubric) and `combined` (a weighted mean of the others).

pub mod command;
pub mod compare;
pub mod judge;
pub mod objective;
pub mod task;

pub use task::{ExampleEval, Task, TimedOut};

use crate::llm::{Draw, LlmError, Models};
use crate::project::config::{part_labels, EvaluatorKind, EvaluatorPart};
use crate::project::{Example, Project, ProjectError};
use crate::system::RunOutput;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A score and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// In [0, 1].
    pub score: f64,
    /// What was right or wrong, in words the reflection model can act on.
    pub feedback: String,
    /// Set when scoring itself failed (the judge could not be asked, the scorer crashed); the
    /// score is then 0 and says nothing about the candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// USD spent on scoring (judge calls), priced whether or not served from the cache.
    #[serde(default)]
    pub cost_usd: f64,
    /// The part of `cost_usd` served from the response cache.
    #[serde(default, skip_serializing_if = "crate::system::is_zero")]
    pub replayed_usd: f64,
    /// Named objective scores beside the main one, higher is better (a `command` scorer's
    /// `"scores"`, or a `combined` evaluator's parts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objectives: BTreeMap<String, f64>,
    /// Scoring failed because a scorer program ran out of its `timeout_secs`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

impl Score {
    /// A score (clamped to [0, 1]; NaN counts as 0) with its feedback.
    pub fn new(score: f64, feedback: impl Into<String>) -> Score {
        Score {
            score: clamp01(score),
            feedback: feedback.into(),
            error: None,
            cost_usd: 0.0,
            replayed_usd: 0.0,
            objectives: BTreeMap::new(),
            timed_out: false,
        }
    }

    /// Scoring failed: 0, with the reason as both feedback and error.
    pub fn failed(reason: impl Into<String>) -> Score {
        let reason = reason.into();
        Score {
            score: 0.0,
            feedback: reason.clone(),
            error: Some(reason),
            cost_usd: 0.0,
            replayed_usd: 0.0,
            objectives: BTreeMap::new(),
            timed_out: false,
        }
    }
}

pub(crate) fn clamp01(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// One scoring rule, built from `[evaluator]` or one of its `[[evaluator.parts]]`.
#[derive(Debug)]
pub enum Scorer {
    Compare(compare::CompareScorer),
    Command(command::CommandScorer),
    Judge(judge::JudgeScorer),
}

impl Scorer {
    /// `slots`: the scorer programs running at once, shared by every part of the evaluator.
    fn from_part(part: &EvaluatorPart, project: &Project, slots: &Arc<Semaphore>) -> Result<Scorer, ProjectError> {
        Ok(match part.kind {
            EvaluatorKind::Exact | EvaluatorKind::Contains | EvaluatorKind::Regex | EvaluatorKind::JsonField => {
                Scorer::Compare(compare::CompareScorer::from_part(part)?)
            }
            EvaluatorKind::Command => {
                Scorer::Command(command::CommandScorer::from_part(part, &project.root, Arc::clone(slots))?)
            }
            EvaluatorKind::Judge => Scorer::Judge(judge::JudgeScorer::from_part(part)?),
            EvaluatorKind::Combined => {
                return Err(ProjectError::config(None, "a part of a combined evaluator cannot itself be \"combined\""))
            }
        })
    }

    pub async fn score(
        &self,
        example: &Example,
        run: &RunOutput,
        models: &Models,
        draw: Option<&Draw>,
    ) -> Result<Score, LlmError> {
        let mut s = match self {
            Scorer::Compare(c) => c.score(example, &run.output),
            Scorer::Command(c) => c.score(example, &run.output).await,
            Scorer::Judge(j) => j.score(example, &run.output, models, draw).await?,
        };
        s.score = clamp01(s.score);
        Ok(s)
    }

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

/// The project's evaluator: one scorer, or several combined by weight.
#[derive(Debug)]
pub struct Evaluator {
    kind: EvaluatorKind,
    /// (label, weight, scorer); one entry of weight 1 unless `combined`.
    parts: Vec<(String, f64, Scorer)>,
}

impl Evaluator {
    pub fn from_config(project: &Project) -> Result<Evaluator, ProjectError> {
        let ev = &project.config.evaluator;
        let slots = crate::system::command::process_slots(ev.concurrency);
        let parts = if ev.kind == EvaluatorKind::Combined {
            if ev.parts.is_empty() {
                return Err(ProjectError::config(
                    None,
                    "[evaluator] kind = \"combined\" needs at least one [[evaluator.parts]]",
                ));
            }
            let labels = part_labels(&ev.parts);
            ev.parts
                .iter()
                .zip(labels)
                .map(|(p, label)| Ok((label, p.weight, Scorer::from_part(p, project, &slots)?)))
                .collect::<Result<Vec<_>, ProjectError>>()?
        } else {
            vec![(ev.kind.as_str().to_string(), 1.0, Scorer::from_part(&ev.as_part(), project, &slots)?)]
        };
        let total: f64 = parts.iter().map(|p| p.1).sum();
        if !(total.is_finite() && total > 0.0) {
            return Err(ProjectError::config(
                None,
                "the weights of [[evaluator.parts]] must add up to a positive number",
            ));
        }
        Ok(Evaluator { kind: ev.kind, parts })
    }

    /// Scores a run; a judge's call is a draw under `draw` (`scorer=<part>`). `Err` when a
    /// judge's provider failed in a way that must stop the run.
    pub async fn score(
        &self,
        example: &Example,
        run: &RunOutput,
        models: &Models,
        draw: Option<&Draw>,
    ) -> Result<Score, LlmError> {
        let place = |label: &str| draw.map(|d| d.at("scorer", label));
        if self.kind != EvaluatorKind::Combined {
            if let Some((label, _, scorer)) = self.parts.first() {
                return scorer.score(example, run, models, place(label).as_ref()).await;
            }
        }
        let scores =
            futures::future::join_all(self.parts.iter().map(|(label, _, scorer)| async move {
                scorer.score(example, run, models, place(label).as_ref()).await
            }))
            .await;
        let scores = scores.into_iter().collect::<Result<Vec<_>, _>>()?;
        let total: f64 = self.parts.iter().map(|p| p.1).sum();
        let mut sum = 0.0;
        let mut objectives = BTreeMap::new();
        let mut feedback = Vec::new();
        let mut errors = Vec::new();
        let mut timed_out = false;
        let (mut cost, mut replayed) = (0.0, 0.0);
        for ((label, weight, _), s) in self.parts.iter().zip(scores) {
            sum += weight * s.score;
            // Each part is an objective; a command part's own `scores` are `part.name`.
            objectives.insert(label.clone(), s.score);
            for (k, v) in &s.objectives {
                objectives.insert(format!("{label}.{k}"), *v);
            }
            cost += s.cost_usd;
            replayed += s.replayed_usd;
            timed_out |= s.timed_out;
            feedback.push(format!("[{label}] {}", s.feedback.trim()));
            if let Some(e) = s.error {
                errors.push(format!("[{label}] {e}"));
            }
        }
        Ok(Score {
            score: clamp01(sum / total),
            feedback: feedback.join("\n"),
            error: (!errors.is_empty()).then(|| errors.join("\n")),
            cost_usd: cost,
            replayed_usd: replayed,
            objectives,
            timed_out,
        })
    }

    /// The objectives a `combined` evaluator records for every example, one per part (a command
    /// part may add its own `scores` on top). Empty for a single evaluator.
    pub fn part_objectives(&self) -> Vec<&str> {
        if self.kind != EvaluatorKind::Combined {
            return Vec::new();
        }
        self.parts.iter().map(|p| p.0.as_str()).collect()
    }

    /// Whether scoring only compares the output with the example (`exact`, `contains`, `regex`,
    /// `json_field`): no model call, no program, the same answer every time.
    pub fn is_local(&self) -> bool {
        self.parts.iter().all(|p| matches!(p.2, Scorer::Compare(_)))
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
        for (_, _, scorer) in &self.parts {
            match scorer {
                Scorer::Compare(c) => c.reference_fields().iter().for_each(|f| add(f)),
                Scorer::Judge(j) => j.reference_field().into_iter().for_each(&mut add),
                Scorer::Command(_) => {}
            }
        }
        out
    }

    /// Every external program the evaluator runs (so `check` can show them before they run).
    pub fn commands(&self) -> Vec<&[String]> {
        self.parts.iter().filter_map(|p| p.2.command()).collect()
    }

    /// The models the evaluator asks (judges).
    pub fn models(&self) -> Vec<&str> {
        self.parts.iter().filter_map(|p| p.2.model()).collect()
    }

    /// `exact`, or `combined: 0.5 × exact + 0.5 × judge`, for reports.
    pub fn describe(&self) -> String {
        if self.kind != EvaluatorKind::Combined {
            return self.kind.as_str().to_string();
        }
        let total: f64 = self.parts.iter().map(|p| p.1).sum();
        let parts: Vec<String> = self.parts.iter().map(|(label, w, _)| format!("{:.2} × {label}", w / total)).collect();
        format!("combined: {}", parts.join(" + "))
    }
}

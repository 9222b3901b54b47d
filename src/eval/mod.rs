//! Scores a run's output in [0, 1] with a feedback text the reflection model reads.
//!
//! Kinds: `exact`, `contains`, `regex`, `json_field` (in `compare`), `command` (an external scorer),
//! `judge` (an LLM with a rubric) and `combined` (a weighted mean of the others).

pub mod command;
pub mod compare;
pub mod judge;
pub mod objective;
pub mod repeats;
pub mod task;

pub use task::{ExampleEval, Task, TimedOut};

use crate::llm::{Draw, LlmError, Models};
use crate::project::Example;
use crate::system::RunOutput;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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

// The evaluator is built while the project loads and kept on `Project` (project/evaluator.rs);
// here it scores.
pub use crate::project::evaluator::{CommandScorer, CompareScorer, Evaluator, JudgeScorer, Part, Scorer};

impl Scorer {
    /// `slots`: the scorer programs running at once, shared by every part of the evaluator.
    pub async fn score(
        &self,
        example: &Example,
        run: &RunOutput,
        models: &Models,
        draw: Option<&Draw>,
        slots: &Semaphore,
    ) -> Result<Score, LlmError> {
        let mut s = match self {
            Scorer::Compare(c) => c.score(example, &run.output),
            Scorer::Command(c) => c.score(example, &run.output, slots).await,
            Scorer::Judge(j) => j.score(example, &run.output, models, draw).await?,
        };
        s.score = clamp01(s.score);
        Ok(s)
    }
}

impl Evaluator {
    /// Scores a run; a judge's call is a draw under `draw` (`scorer=<part>`). `Err` when a
    /// judge's provider failed in a way that must stop the run. At most `slots` scorer programs
    /// run at once (`[evaluator] concurrency`).
    pub async fn score(
        &self,
        example: &Example,
        run: &RunOutput,
        models: &Models,
        draw: Option<&Draw>,
        slots: &Semaphore,
    ) -> Result<Score, LlmError> {
        let place = |label: &str| draw.map(|d| d.at("scorer", label));
        if !self.is_combined() {
            if let Some(part) = self.parts.first() {
                return part.scorer.score(example, run, models, place(&part.label).as_ref(), slots).await;
            }
        }
        let scores = futures::future::join_all(self.parts.iter().map(|part| async move {
            part.scorer.score(example, run, models, place(&part.label).as_ref(), slots).await
        }))
        .await;
        let scores = scores.into_iter().collect::<Result<Vec<_>, _>>()?;
        let total = self.total_weight();
        let mut sum = 0.0;
        let mut objectives = BTreeMap::new();
        let mut feedback = Vec::new();
        let mut errors = Vec::new();
        let mut timed_out = false;
        let (mut cost, mut replayed) = (0.0, 0.0);
        for (Part { label, weight, .. }, s) in self.parts.iter().zip(scores) {
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
}

//! One metric call: run a candidate on an example with the project's system, then score it.
//! This is what the engine, `gepa-tui eval` and the tests all call.

use super::{Evaluator, Score};
use crate::llm::Models;
use crate::project::{Candidate, Example, Project, ProjectError};
use crate::system::{System, Trace};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The result of scoring one candidate on one example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExampleEval {
    pub example_id: String,
    /// In [0, 1]; 0 when the run or the scoring failed.
    pub score: f64,
    /// What the reflection model reads: the evaluator's feedback (or the error), then the
    /// example's `feedback_fields` as `name: value` lines.
    pub feedback: String,
    pub output: String,
    pub trace: Trace,
    /// Why the run or the scoring failed, if it did.
    pub error: Option<String>,
    /// USD spent on this evaluation: the system's model calls plus any judge.
    pub cost_usd: f64,
}

/// A project's system and evaluator, ready to score candidates.
#[derive(Debug)]
pub struct Task {
    project: Arc<Project>,
    models: Arc<Models>,
    system: System,
    evaluator: Evaluator,
}

impl Task {
    pub fn new(project: Arc<Project>, models: Arc<Models>) -> Result<Task, ProjectError> {
        let system = System::from_config(&project)?;
        let evaluator = Evaluator::from_config(&project)?;
        Ok(Task { project, models, system, evaluator })
    }

    pub fn models(&self) -> &Arc<Models> {
        &self.models
    }

    pub fn project(&self) -> &Arc<Project> {
        &self.project
    }

    pub fn system(&self) -> &System {
        &self.system
    }

    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// Runs `candidate` on `example` and scores it. Never fails: a failed run scores 0 with the
    /// error as its feedback, so one bad example cannot stop an optimization.
    pub async fn evaluate(&self, candidate: &Candidate, example: &Example) -> ExampleEval {
        let run = self.system.run(candidate, example, &self.models).await;
        let score = match &run.error {
            Some(e) => Score { score: 0.0, feedback: format!("The run failed: {e}"), error: None, cost_usd: 0.0 },
            None => self.evaluator.score(example, &run, &self.models).await,
        };
        let mut feedback = score.feedback;
        for name in &self.project.config.evaluator.feedback_fields {
            if let Some(value) = example.field_text(name).filter(|v| !v.trim().is_empty()) {
                if !feedback.is_empty() {
                    feedback.push('\n');
                }
                feedback.push_str(&format!("{name}: {value}"));
            }
        }
        ExampleEval {
            example_id: example.id.clone(),
            score: super::clamp01(score.score),
            feedback,
            output: run.output,
            trace: run.trace,
            error: run.error.or(score.error),
            cost_usd: run.cost_usd + score.cost_usd,
        }
    }
}

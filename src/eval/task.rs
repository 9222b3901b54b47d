//! One metric call: run a candidate on an example with the project's system, then score it.
//! This is what the engine, `gepa-tui eval` and the tests all call.

use super::{Evaluator, Score};
use crate::llm::{Draw, LlmError, Models};
use crate::project::{Candidate, Example, Project, ProjectError};
use crate::system::command::process_slots;
use crate::system::{System, Trace};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Semaphore;

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
    /// The run went through and the scorer failed (a judge without a verdict, a crashed scorer):
    /// `output` is what the system said.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scorer_failed: bool,
    /// USD of this evaluation: the system's model calls plus any judge, priced whether or not a
    /// reply came from the response cache (0 when `cached`).
    pub cost_usd: f64,
    /// The part of `cost_usd` whose replies were served from the response cache: not paid now.
    #[serde(default, skip_serializing_if = "crate::system::is_zero")]
    pub replayed_usd: f64,
    /// Served from the run's evaluation cache: the same texts were scored on this example
    /// before; nothing ran and no metric call was counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// Named objective scores, all higher-is-better (the built-in lower-is-better ones negated):
    /// a combined evaluator's parts, a command scorer's `scores`, `[optimizer] objectives`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub objectives: super::objective::ObjectiveScores,
    /// The program that ran out of its `timeout_secs` and was stopped, when that is why this
    /// evaluation failed: a timeout is not the candidate's answer, and the user is told so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<TimedOut>,
    /// Which draw of the example this is when val examples are scored more than once
    /// (`[optimizer] val_repeats`): 0 is the first (and only, by default).
    #[serde(default, skip_serializing_if = "is_first")]
    pub repeat: u32,
}

fn is_first(repeat: &u32) -> bool {
    *repeat == 0
}

/// Which program of an evaluation ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimedOut {
    /// The `command` system (`[system] timeout_secs`).
    System,
    /// A `command` scorer (`[evaluator] timeout_secs`).
    Scorer,
}

impl TimedOut {
    /// "the system" / "the scorer", for messages.
    pub fn what(self) -> &'static str {
        match self {
            TimedOut::System => "the system",
            TimedOut::Scorer => "the scorer",
        }
    }

    /// The section whose `timeout_secs` and `concurrency` govern it.
    pub fn section(self) -> &'static str {
        match self {
            TimedOut::System => "[system]",
            TimedOut::Scorer => "[evaluator]",
        }
    }
}

impl ExampleEval {
    /// An evaluation that has a score and nothing else: no output, no trace, nothing paid (test
    /// fixtures and benchmarks build on it with `..ExampleEval::scored(id, score)`).
    pub fn scored(example_id: impl Into<String>, score: f64) -> ExampleEval {
        ExampleEval {
            example_id: example_id.into(),
            score,
            feedback: String::new(),
            output: String::new(),
            trace: Default::default(),
            error: None,
            scorer_failed: false,
            cost_usd: 0.0,
            replayed_usd: 0.0,
            cached: false,
            objectives: Default::default(),
            timed_out: None,
            repeat: 0,
        }
    }

    /// (paid, served free from the response cache). Exactly (0, cost) when every reply was cached.
    pub fn paid_and_replayed(&self) -> (f64, f64) {
        if self.replayed_usd == self.cost_usd {
            (0.0, self.replayed_usd)
        } else {
            ((self.cost_usd - self.replayed_usd).max(0.0), self.replayed_usd)
        }
    }
}

/// A project's system and evaluator, ready to score candidates.
#[derive(Debug)]
pub struct Task {
    project: Arc<Project>,
    models: Arc<Models>,
    system: System,
    /// The scorer programs running at once (`[evaluator] concurrency`).
    scorer_slots: Arc<Semaphore>,
}

impl Task {
    pub fn new(project: Arc<Project>, models: Arc<Models>) -> Result<Task, ProjectError> {
        let system = System::from_config(&project)?;
        let scorer_slots = process_slots(project.config.evaluator.concurrency);
        Ok(Task { project, models, system, scorer_slots })
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
        &self.project.evaluator
    }

    /// The evaluator's feedback, then the example's `feedback_fields` as `name: value` lines.
    fn with_feedback_fields(&self, mut feedback: String, example: &Example) -> String {
        for name in &self.project.config.evaluator.feedback_fields {
            if let Some(value) = example.field_text(name).filter(|v| !v.trim().is_empty()) {
                if !feedback.is_empty() {
                    feedback.push('\n');
                }
                feedback.push_str(&format!("{name}: {value}"));
            }
        }
        feedback
    }

    /// Scores a recorded evaluation's output again against `example` (a corrected one), without
    /// running the system: the output and trace stay, the score, feedback and the evaluator's
    /// objectives are new (the built-in ones, measured on the run, stay). A run that failed
    /// scores 0 whatever the reference says, so it is kept as it was. `cost_usd` is what this
    /// scoring cost (a judge's call).
    pub async fn rescore(
        &self,
        example: &Example,
        recorded: &ExampleEval,
        draw: Option<&Draw>,
    ) -> Result<ExampleEval, LlmError> {
        if recorded.error.is_some() && !recorded.scorer_failed {
            return Ok(ExampleEval { cost_usd: 0.0, replayed_usd: 0.0, cached: false, ..recorded.clone() });
        }
        let run = crate::system::RunOutput {
            output: recorded.output.clone(),
            trace: recorded.trace.clone(),
            error: None,
            cost_usd: 0.0,
            replayed_usd: 0.0,
            timed_out: false,
        };
        let score = self.project.evaluator.score(example, &run, &self.models, draw, &self.scorer_slots).await?;
        let builtin = &self.project.config.optimizer.objectives;
        let mut objectives = score.objectives;
        for (name, v) in &recorded.objectives {
            if builtin.iter().any(|b| b.as_str() == name) {
                objectives.insert(name.clone(), *v);
            }
        }
        Ok(ExampleEval {
            example_id: example.id.clone(),
            score: super::clamp01(score.score),
            feedback: self.with_feedback_fields(score.feedback, example),
            output: recorded.output.clone(),
            trace: recorded.trace.clone(),
            scorer_failed: score.error.is_some(),
            error: score.error,
            cost_usd: score.cost_usd,
            replayed_usd: score.replayed_usd,
            cached: false,
            objectives,
            timed_out: score.timed_out.then_some(TimedOut::Scorer),
            repeat: recorded.repeat,
        })
    }

    /// Runs `candidate` on `example` and scores it. A failed run scores 0 with the error as its
    /// feedback, so one bad example cannot stop an optimization. `Err` only when a model's
    /// provider failed (down past the outage ceiling, a refused key, an empty account): that says
    /// nothing about the candidate, so it is not a score. Its model calls are draws under `draw`
    /// (see `llm::draw`; None: a model that samples answers afresh and nothing is cached).
    pub async fn evaluate(
        &self,
        candidate: &Candidate,
        example: &Example,
        draw: Option<&Draw>,
    ) -> Result<ExampleEval, LlmError> {
        let run = self.system.run(candidate, example, &self.models, draw).await?;
        let score = match &run.error {
            Some(e) => Score { feedback: format!("The run failed: {e}"), ..Score::new(0.0, "") },
            None => self.project.evaluator.score(example, &run, &self.models, draw, &self.scorer_slots).await?,
        };
        let mut objectives = score.objectives;
        if run.error.is_some() {
            // A failed run scores 0 on every part, as it does on the main score.
            for name in self.project.evaluator.part_objectives() {
                objectives.insert(name.to_string(), 0.0);
            }
        }
        let wanted = &self.project.config.optimizer.objectives;
        objectives.extend(super::objective::builtin_scores(wanted, candidate, &run.trace, run.cost_usd));
        let feedback = self.with_feedback_fields(score.feedback, example);
        Ok(ExampleEval {
            example_id: example.id.clone(),
            score: super::clamp01(score.score),
            feedback,
            output: run.output,
            trace: run.trace,
            scorer_failed: run.error.is_none() && score.error.is_some(),
            error: run.error.or(score.error),
            cost_usd: run.cost_usd + score.cost_usd,
            replayed_usd: run.replayed_usd + score.replayed_usd,
            cached: false,
            objectives,
            timed_out: if run.timed_out { Some(TimedOut::System) } else { score.timed_out.then_some(TimedOut::Scorer) },
            repeat: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{AttemptError, ChatRequest, FatalKind, ModelsOptions, ScriptedBackend};

    const TOML: &str = r#"
[models.task]
provider = "openai"
model = "m"
max_retries = 0

[models.judge]
provider = "openai"
model = "j"
max_retries = 0

[[components]]
name = "instruction"
file = "prompts/instruction.md"

[system]
kind = "chat"
[[system.steps]]
name = "draft"
system = "{{instruction}}"
user = "Q: {{question}}"
[[system.steps]]
name = "final"
user = "Polish: {{steps.draft.output}}"

[data]
train = "data/train.jsonl"
val = "data/val.jsonl"

[evaluator]
feedback_fields = ["hint"]
EVALUATOR
"#;

    fn project(evaluator: &str) -> (tempfile::TempDir, Arc<Project>) {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("gepa.toml", TOML.replace("EVALUATOR", evaluator)),
            ("prompts/instruction.md", "Be brief.".to_string()),
            (
                "data/train.jsonl",
                "{\"id\": \"a\", \"question\": \"2+2\", \"answer\": \"4\", \"hint\": \"add\"}\n".to_string(),
            ),
            ("data/val.jsonl", "{\"id\": \"b\", \"question\": \"3+3\", \"answer\": \"6\"}\n".to_string()),
        ];
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let project = Project::load(dir.path()).unwrap();
        (dir, Arc::new(project))
    }

    fn task(
        evaluator: &str,
        reply: impl Fn(&ChatRequest) -> Result<String, AttemptError> + Send + Sync + 'static,
    ) -> (tempfile::TempDir, Task) {
        let (dir, project) = project(evaluator);
        let backend = Arc::new(ScriptedBackend::new(reply));
        let models = Models::from_config(
            &project.config.models,
            ModelsOptions { backend_override: Some(backend.factory()), ..Default::default() },
        )
        .unwrap();
        let task = Task::new(project, Arc::new(models)).unwrap();
        (dir, task)
    }

    fn last_user(req: &ChatRequest) -> String {
        req.messages.last().map(|m| m.content.clone()).unwrap_or_default()
    }

    #[tokio::test]
    async fn chat_steps_chain_and_are_traced() {
        let (_dir, task) = task("kind = \"exact\"\nfield = \"answer\"", |req| {
            let user = last_user(req);
            Ok(match user.as_str() {
                "Q: 2+2" => "four, i.e. 4".to_string(),
                "Polish: four, i.e. 4" => "4".to_string(),
                other => format!("unexpected: {other}"),
            })
        });
        let project = Arc::clone(task.project());
        let e = task.evaluate(&project.seed, &project.train[0], None).await.unwrap();
        assert_eq!(e.error, None);
        assert_eq!(e.output, "4");
        assert_eq!(e.score, 1.0);
        assert_eq!(e.feedback, "Correct: \"4\".\nhint: add");
        assert_eq!(e.trace.steps.len(), 2);
        assert_eq!(e.trace.steps[0].messages[0].content, "Be brief.");
        assert_eq!(e.trace.steps[1].messages.len(), 1);
        assert_eq!(e.example_id, "a");
    }

    #[tokio::test]
    async fn a_request_the_model_refuses_scores_zero_with_the_error_as_feedback() {
        let (_dir, task) = task("kind = \"exact\"\nfield = \"answer\"", |_| {
            let message = "HTTP 400: context too long".to_string();
            Err(AttemptError::Fatal { status: Some(400), kind: FatalKind::ThisRequest, message })
        });
        let project = Arc::clone(task.project());
        let e = task.evaluate(&project.seed, &project.train[0], None).await.unwrap();
        assert_eq!(e.score, 0.0);
        let err = e.error.clone().unwrap();
        assert!(err.starts_with("step `draft`: "), "{err}");
        assert!(err.contains("context too long"), "{err}");
        assert!(e.feedback.starts_with("The run failed: step `draft`"), "{}", e.feedback);
        assert!(e.feedback.ends_with("\nhint: add"), "{}", e.feedback);
        // The failed request is kept so the trace shows what was sent.
        assert_eq!(e.trace.steps.len(), 1);
    }

    /// A provider that refuses the key, has no credit, or is down says nothing about the
    /// candidate: no score, an error for the caller to stop on, from the system and the judge.
    #[tokio::test]
    async fn a_failure_of_the_provider_is_not_a_score() {
        for kind in [FatalKind::Auth, FatalKind::Billing, FatalKind::BadRequest] {
            let (_dir, task) = task("kind = \"exact\"\nfield = \"answer\"", move |_| {
                Err(AttemptError::Fatal { status: Some(401), kind, message: "HTTP 401".into() })
            });
            let project = Arc::clone(task.project());
            let err = task.evaluate(&project.seed, &project.train[0], None).await.unwrap_err();
            assert!(err.stops_run(), "{kind:?}: {err}");
        }
        let judge = "kind = \"judge\"\nmodel = \"judge\"\nrubric = \"Grade {{output}}\"";
        let (_dir, task) = task(judge, |req| {
            if last_user(req).starts_with("Grade") {
                Err(AttemptError::Retryable { message: "HTTP 503 Service Unavailable".into(), retry_after: None })
            } else {
                Ok("4".into())
            }
        });
        let project = Arc::clone(task.project());
        let err = task.evaluate(&project.seed, &project.train[0], None).await.unwrap_err();
        assert!(matches!(err, LlmError::Exhausted { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_candidate_without_a_component_fails_cleanly() {
        let (_dir, task) = task("kind = \"exact\"\nfield = \"answer\"", |_| Ok("4".into()));
        let project = Arc::clone(task.project());
        let e = task.evaluate(&Candidate::new(), &project.train[0], None).await.unwrap();
        assert_eq!(e.score, 0.0);
        assert!(e.error.unwrap().contains("no value for `{{instruction}}`"));
    }

    #[tokio::test]
    async fn judge_scores_and_explains() {
        let evaluator = "kind = \"judge\"\nmodel = \"judge\"\nfield = \"answer\"\nrubric = \"Is {{output}} right for {{question}}?\"";
        let (_dir, task) = task(evaluator, |req| {
            let user = last_user(req);
            if user.starts_with("Is ") {
                assert!(user.contains("## Reference answer\n4"), "{user}");
                Ok("Right number, but wordy.\nScore: 7/10".into())
            } else {
                Ok("4".into())
            }
        });
        let project = Arc::clone(task.project());
        let e = task.evaluate(&project.seed, &project.train[0], None).await.unwrap();
        assert_eq!(e.error, None);
        assert!((e.score - 0.7).abs() < 1e-9);
        assert_eq!(e.feedback, "Right number, but wordy.\nhint: add");
    }

    #[tokio::test]
    async fn judge_without_a_score_is_an_error_not_a_guess() {
        let evaluator = "kind = \"judge\"\nmodel = \"judge\"\nrubric = \"Grade {{output}}\"";
        let (_dir, task) = task(evaluator, |req| {
            Ok(if last_user(req).starts_with("Grade") { "I cannot grade this.".into() } else { "4".into() })
        });
        let project = Arc::clone(task.project());
        let e = task.evaluate(&project.seed, &project.train[0], None).await.unwrap();
        assert_eq!(e.score, 0.0);
        assert!(e.error.unwrap().contains("no score"));
    }

    #[tokio::test]
    async fn combined_is_a_weighted_mean_with_labelled_feedback() {
        let evaluator = "kind = \"combined\"\n\
            [[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nweight = 3\n\
            [[evaluator.parts]]\nkind = \"judge\"\nmodel = \"judge\"\nrubric = \"Grade {{output}}\"\nweight = 1";
        let (_dir, task) = task(evaluator, |req| {
            Ok(if last_user(req).starts_with("Grade") { "Too terse.\nScore: 2/10".into() } else { "4".into() })
        });
        let project = Arc::clone(task.project());
        let e = task.evaluate(&project.seed, &project.train[0], None).await.unwrap();
        assert!((e.score - (3.0 * 1.0 + 0.2) / 4.0).abs() < 1e-9, "{}", e.score);
        assert_eq!(e.feedback, "[exact] Correct: \"4\".\n[judge] Too terse.\nhint: add");
        assert_eq!(task.evaluator().describe(), "combined: 0.75 × exact + 0.25 × judge");
        // Each part is an objective, named by its kind.
        assert_eq!(e.objectives.into_iter().collect::<Vec<_>>(), vec![("exact".into(), 1.0), ("judge".into(), 0.2)]);
    }

    /// A part's `name` names its objective and its feedback; `[optimizer] objectives` adds the
    /// built-in ones, negated (fewer tokens is better); a failed run scores 0 on every part.
    #[tokio::test]
    async fn named_parts_and_builtin_objectives() {
        let evaluator = "kind = \"combined\"\n\
            [[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nname = \"correct\"\n\
            [[evaluator.parts]]\nkind = \"contains\"\nfield = \"answer\"\nweight = 0\n\
            [optimizer]\nobjectives = [\"prompt_tokens\", \"output_tokens\", \"cost_usd\"]";
        let (_dir, t) = task(evaluator, |_| Ok("4".into()));
        let project = Arc::clone(t.project());
        let e = t.evaluate(&project.seed, &project.train[0], None).await.unwrap();
        assert_eq!(e.score, 1.0);
        assert_eq!(e.feedback, "[correct] Correct: \"4\".\n[contains] Correct: the output contains \"4\".\nhint: add");
        assert_eq!(e.objectives["correct"], 1.0);
        assert_eq!(e.objectives["contains"], 1.0);
        // "Be brief." is three tokens.
        assert_eq!(e.objectives["prompt_tokens"], -3.0);
        // The scripted backend counts words: "4" from each of the two steps; no prices are set.
        assert_eq!(e.objectives["output_tokens"], -2.0);
        assert_eq!(e.objectives["cost_usd"], 0.0);

        let (_dir, task) = task(evaluator, |_| {
            Err(AttemptError::Fatal { status: Some(400), kind: FatalKind::ThisRequest, message: "too long".into() })
        });
        let project = Arc::clone(task.project());
        let e = task.evaluate(&project.seed, &project.train[0], None).await.unwrap();
        assert_eq!(
            (e.objectives["correct"], e.objectives["contains"], e.objectives["prompt_tokens"]),
            (0.0, 0.0, -3.0)
        );
    }
}

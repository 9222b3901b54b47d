//! The `command` evaluator: an external scorer (argv, no shell, run in the project folder) reads
//! `{"example":{…},"output":"…"}` on stdin and prints `{"score":…,"feedback":"…"}`.

use super::Score;
use crate::project::evaluator::CommandScorer;
use crate::project::Example;
use crate::system::command::{example_json, parse_json_object, run_process};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

impl CommandScorer {
    /// Runs the scorer once a slot of `slots` is free (the wait is not timed).
    pub async fn score(&self, example: &Example, output: &str, slots: &Semaphore) -> Score {
        let input = json!({ "example": example_json(example), "output": output });
        let stdin = serde_json::to_vec(&input).unwrap_or_default();
        let done = match run_process(&self.argv, &self.root, stdin, self.timeout, slots).await {
            Ok(done) => done,
            Err(failure) => {
                return Score { timed_out: failure.timed_out, ..Score::failed(format!("the scorer failed: {failure}")) }
            }
        };
        let Some(reply) = parse_json_object(&done.stdout) else {
            return Score::failed(done.explain(&format!(
                "the scorer `{}` did not print a JSON object like {{\"score\": 0.5, \"feedback\": \"…\"}}",
                self.argv[0]
            )));
        };
        let score = match reply.get("score") {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(Value::Bool(b)) => f64::from(u8::from(*b)),
            Some(other) => {
                return Score::failed(done.explain(&format!(
                    "the scorer `{}` printed \"score\": {other}, expected a number from 0 to 1",
                    self.argv[0]
                )))
            }
            None => {
                return Score::failed(
                    done.explain(&format!("the scorer `{}` printed JSON without a \"score\"", self.argv[0])),
                )
            }
        };
        let feedback = match reply.get("feedback") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let mut s = Score::new(score, feedback);
        // Optional objective scores beside the main one: `"scores": {"name": number, …}`.
        match reply.get("scores") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    // The name reaches the screen: no control or escape sequences, one line.
                    let name = crate::text::sanitize(k).replace(['\n', '\t', '\r'], " ").trim().to_string();
                    match v.as_f64() {
                        Some(_) if name.is_empty() => {
                            return Score::failed(done.explain(&format!(
                                "the scorer `{}` printed \"scores\" with an empty name",
                                self.argv[0]
                            )))
                        }
                        Some(x) if x.is_finite() => {
                            s.objectives.insert(name, x);
                        }
                        _ => {
                            return Score::failed(done.explain(&format!(
                                "the scorer `{}` printed \"scores\": {{\"{k}\": {v}}}, expected a number (higher is better)",
                                self.argv[0]
                            )))
                        }
                    }
                }
            }
            Some(other) => {
                return Score::failed(done.explain(&format!(
                    "the scorer `{}` printed \"scores\": {other}, expected an object like {{\"brevity\": 0.8}}",
                    self.argv[0]
                )))
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scorer(script: &str) -> CommandScorer {
        let argv = vec!["sh".into(), "-c".into(), script.into()];
        CommandScorer::new(argv, std::env::temp_dir(), Duration::from_secs(10))
    }

    fn example() -> Example {
        Example { id: "e".into(), line: 1, fields: json!({"expected": "4"}).as_object().cloned().unwrap() }
    }

    #[tokio::test]
    async fn reads_score_and_feedback() {
        let s = scorer(r#"cat >/dev/null; echo '{"score": 0.25, "feedback": "close"}'"#)
            .score(&example(), "5", &Semaphore::new(1))
            .await;
        assert_eq!((s.score, s.feedback.as_str(), s.error), (0.25, "close", None));
    }

    /// `"scores"` are objectives beside the main score, as printed (not clamped: any number,
    /// higher is better); a non-number is a scorer failure, not a silent 0.
    #[tokio::test]
    async fn reads_named_objective_scores() {
        let s = scorer(r#"echo '{"score": 0.5, "scores": {"brevity": 0.9, "words": -12}}'"#)
            .score(&example(), "x", &Semaphore::new(1))
            .await;
        assert_eq!(s.error, None);
        assert_eq!(
            s.objectives.into_iter().collect::<Vec<_>>(),
            vec![("brevity".into(), 0.9), ("words".into(), -12.0)]
        );
        let s = scorer(r#"echo '{"score": 0.5, "scores": {"brevity": "high"}}'"#)
            .score(&example(), "x", &Semaphore::new(1))
            .await;
        assert_eq!(s.score, 0.0);
        assert!(s.error.unwrap().contains("\"brevity\": \"high\"}, expected a number"));
        let s = scorer(r#"echo '{"score": 0.5, "scores": [1]}'"#).score(&example(), "x", &Semaphore::new(1)).await;
        assert!(s.error.unwrap().contains("expected an object"));
        // A name with an escape sequence in it is cleaned before it can reach a terminal.
        let s = scorer(r#"printf '{"score": 1, "scores": {"\\u001b[31mred\\u001b[0m": 1}}'"#)
            .score(&example(), "x", &Semaphore::new(1))
            .await;
        assert_eq!(s.objectives.keys().collect::<Vec<_>>(), vec!["red"]);
    }

    #[tokio::test]
    async fn gets_example_and_output() {
        // Score 1 only when the input carries both.
        let s = scorer(r#"grep -q '"output":"5"' && echo '{"score": 1}' || echo '{"score": 0}'"#)
            .score(&example(), "5", &Semaphore::new(1))
            .await;
        assert_eq!(s.score, 1.0);
    }

    #[tokio::test]
    async fn out_of_range_is_clamped_and_failures_score_zero() {
        let s = scorer(r#"echo '{"score": 7}'"#).score(&example(), "x", &Semaphore::new(1)).await;
        assert_eq!(s.score, 1.0);
        let s = scorer("echo 'KeyError: x' >&2; exit 1").score(&example(), "x", &Semaphore::new(1)).await;
        assert_eq!(s.score, 0.0);
        assert!(s.feedback.contains("KeyError: x"), "{}", s.feedback);
        assert!(s.error.is_some());
        let s = scorer(r#"echo '{"score": "high"}'"#).score(&example(), "x", &Semaphore::new(1)).await;
        assert_eq!(s.score, 0.0);
        assert!(s.feedback.contains("expected a number"), "{}", s.feedback);
    }
}

//! What of a run goes to MLflow: the settings as params, per committed round the best val, the
//! budget used, cost, tokens and candidates as metrics at step = metric calls, and at the end the
//! test score and the val–test gap. Metric names follow gepa's own MLflow logging where they
//! mean the same (`best_valset_score`, `total_metric_calls`, `objective/<name>`:
//! gepa/logging/utils.py, `log_detailed_metrics_after_discovering_new_program`).

use super::mlflow::MetricPoint;
use crate::engine::{Event, Notice, RunResult, RunState};
use crate::project::Project;
use std::collections::BTreeMap;

/// What the tracker keeps of one notice: a few numbers, never the traces (the queue stays small).
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A candidate joined in `round` (counts when the round commits).
    Candidate { round: u64 },
    /// A round committed.
    Committed(Committed),
    /// A round planned ahead was dropped: its candidates never joined.
    Voided { round: u64 },
    /// The run went on after an interruption: nothing uncommitted counts.
    Resumed,
    /// A resume changed settings: MLflow's params cannot change, so these become tags.
    SettingsChanged { changed: Vec<String>, max_metric_calls: u64, at_ms: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub round: u64,
    pub metric_calls: u64,
    pub cost_usd: f64,
    pub best_val: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Each objective's best val mean, the natural way round.
    pub objectives: Vec<(String, f64)>,
    pub at_ms: i64,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The update a notice makes, if any.
pub fn update_of(n: &Notice) -> Option<Update> {
    let Notice::Event(ev) = n else { return None };
    Some(match &**ev {
        Event::CandidateAdded { round, .. } => Update::Candidate { round: *round },
        Event::RoundVoided { round } => Update::Voided { round: *round },
        Event::Resumed { .. } => Update::Resumed,
        Event::SettingsChanged { settings, changed } => Update::SettingsChanged {
            changed: changed.clone(),
            max_metric_calls: settings.max_metric_calls,
            at_ms: now_ms(),
        },
        Event::RoundFinished {
            round,
            metric_calls,
            cost_usd,
            best_val,
            input_tokens,
            output_tokens,
            objective_bests,
            ..
        } => Update::Committed(Committed {
            round: *round,
            metric_calls: *metric_calls,
            cost_usd: *cost_usd,
            best_val: *best_val,
            input_tokens: *input_tokens,
            output_tokens: *output_tokens,
            objectives: objective_bests
                .iter()
                .map(|(name, b)| (name.clone(), crate::eval::objective::natural(name, b.value)))
                .collect(),
            at_ms: now_ms(),
        }),
        _ => return None,
    })
}

/// The run's candidates and budget as its committed rounds leave them (the same commit rule as
/// the run's state: a round's candidates count when it commits).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub candidates: usize,
    pending: BTreeMap<u64, usize>,
    pub max_metric_calls: u64,
}

impl Tally {
    pub fn new(state: &RunState) -> Tally {
        Tally {
            candidates: state.candidates.len(),
            pending: BTreeMap::new(),
            max_metric_calls: state.settings.max_metric_calls,
        }
    }

    /// Folds an update; a committed round gives its metric points, a settings change its tags.
    pub fn take(&mut self, u: Update) -> (Vec<MetricPoint>, Vec<(String, String)>) {
        match u {
            Update::Candidate { round } => *self.pending.entry(round).or_default() += 1,
            Update::Voided { round } => drop(self.pending.remove(&round)),
            Update::Resumed => self.pending.clear(),
            Update::SettingsChanged { changed, max_metric_calls, at_ms } => {
                self.max_metric_calls = max_metric_calls;
                let tags = vec![
                    ("gepa.settings_changed".to_string(), format!("{} (at {})", changed.join(", "), at_ms)),
                    ("gepa.max_metric_calls".to_string(), max_metric_calls.to_string()),
                ];
                return (Vec::new(), tags);
            }
            Update::Committed(c) => {
                self.candidates += self.pending.remove(&c.round).unwrap_or(0);
                return (self.points(&c), Vec::new());
            }
        }
        (Vec::new(), Vec::new())
    }

    fn points(&self, c: &Committed) -> Vec<MetricPoint> {
        let step = c.metric_calls as i64;
        let point = |key: &str, value: f64| MetricPoint { key: key.to_string(), value, timestamp_ms: c.at_ms, step };
        let mut out = vec![
            point("best_valset_score", c.best_val),
            point("total_metric_calls", c.metric_calls as f64),
            point("budget_used", c.metric_calls as f64 / self.max_metric_calls.max(1) as f64),
            point("cost_usd", c.cost_usd),
            point("candidates", self.candidates as f64),
            point("input_tokens", c.input_tokens as f64),
            point("output_tokens", c.output_tokens as f64),
            point("round", c.round as f64),
        ];
        out.extend(c.objectives.iter().map(|(name, v)| point(&format!("objective/{}", metric_key(name)), *v)));
        out
    }
}

/// MLflow keys take letters, digits, `_ - . / :` and spaces; anything else becomes `_`.
pub fn metric_key(name: &str) -> String {
    name.chars().map(|c| if c.is_alphanumeric() || "_-./: ".contains(c) { c } else { '_' }).collect()
}

/// The run's settings as MLflow params: the `[optimizer]` settings in force (command-line
/// overrides included), each model's provider and name (never a key or a URL), the system, the
/// evaluator and the data's sizes.
pub fn params(project: &Project, state: &RunState) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&state.settings) {
        for (k, v) in map {
            if !v.is_null() {
                out.push((format!("optimizer.{k}"), scalar(&v)));
            }
        }
    }
    for (name, m) in &project.config.models {
        out.push((format!("models.{name}.provider"), word(&m.provider)));
        out.push((format!("models.{name}.model"), m.model.clone()));
        if let Some(t) = m.temperature {
            out.push((format!("models.{name}.temperature"), t.to_string()));
        }
        if let Some(t) = m.max_tokens {
            out.push((format!("models.{name}.max_tokens"), t.to_string()));
        }
    }
    out.push(("system.kind".into(), word(&project.config.system.kind)));
    out.push(("evaluator.kind".into(), word(&project.config.evaluator.kind)));
    out.push(("components".into(), state.components.join(",")));
    out.push(("data.train_examples".into(), state.train_ids.len().to_string()));
    out.push(("data.val_examples".into(), state.val_ids.len().to_string()));
    out.push(("data.test_examples".into(), state.test_ids.len().to_string()));
    let review = &project.config.review;
    out.push(("review.mutations".into(), word(&review.mutations)));
    out.push(("review.merges".into(), word(&review.merges)));
    out
}

/// A setting's value as gepa.toml writes it (`openai`, `round_robin`).
fn word(v: &impl serde::Serialize) -> String {
    scalar(&serde_json::to_value(v).unwrap_or_default())
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The end of the run: its final scores at the last step.
pub fn final_points(r: &RunResult) -> Vec<MetricPoint> {
    let at = now_ms();
    let step = r.metric_calls as i64;
    let point = |key: &str, value: f64| MetricPoint { key: key.to_string(), value, timestamp_ms: at, step };
    // The best val, calls and cost are the last round's points already.
    let mut out = vec![point("seed_valset_score", r.seed_val_score)];
    if let Some(t) = r.test_score {
        out.push(point("test_score", t));
    }
    if let Some(gap) = r.val_test_gap {
        out.push(point("val_test_gap", gap));
    }
    out
}

pub fn final_tags(r: &RunResult) -> Vec<(String, String)> {
    vec![
        ("gepa.stop_reason".into(), r.stop_reason.clone()),
        ("gepa.best_candidate".into(), r.best_candidate.to_string()),
        ("gepa.candidates".into(), r.candidates.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(round: u64, calls: u64) -> Update {
        Update::Committed(Committed {
            round,
            metric_calls: calls,
            cost_usd: 0.5,
            best_val: 0.75,
            input_tokens: 10,
            output_tokens: 5,
            objectives: vec![("prompt tokens (k)".into(), 12.0)],
            at_ms: 7,
        })
    }

    /// A round's candidates count when it commits, not when planned ahead and then dropped.
    #[test]
    fn candidates_count_when_their_round_commits() {
        let mut t = Tally { candidates: 1, max_metric_calls: 100, ..Default::default() };
        t.take(Update::Candidate { round: 1 });
        t.take(Update::Candidate { round: 2 });
        t.take(Update::Voided { round: 2 });
        let (points, _) = t.take(committed(1, 40));
        let get = |k: &str| points.iter().find(|p| p.key == k).map(|p| (p.value, p.step));
        assert_eq!(get("candidates"), Some((2.0, 40)));
        assert_eq!(get("budget_used"), Some((0.4, 40)));
        assert_eq!(get("best_valset_score"), Some((0.75, 40)));
        assert_eq!(get("objective/prompt tokens _k_"), Some((12.0, 40)));
        t.take(Update::Candidate { round: 3 });
        t.take(Update::Resumed);
        let (points, _) = t.take(committed(3, 50));
        assert_eq!(points.iter().find(|p| p.key == "candidates").unwrap().value, 2.0);
    }
}

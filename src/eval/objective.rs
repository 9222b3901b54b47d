//! Named objectives beside the main score. The run store keeps every objective higher-is-better
//! (gepa's `objective_scores`); the built-in ones are lower-is-better, so they are recorded negated
//! and shown the natural way round.

use crate::project::config::BuiltinObjective;
use crate::project::Candidate;
use crate::system::Trace;
use std::collections::BTreeMap;

/// Objective scores of one evaluation, by name.
pub type ObjectiveScores = BTreeMap<String, f64>;

/// Tokens of a text as counted locally: each run of letters and digits, and each other visible
/// character. Close to what a model's tokenizer gives for prose, and the same on every machine.
pub fn count_tokens(text: &str) -> u64 {
    let mut n = 0;
    let mut in_word = false;
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' {
            if !in_word {
                n += 1;
            }
            in_word = true;
        } else {
            in_word = false;
            if !c.is_whitespace() {
                n += 1;
            }
        }
    }
    n
}

/// The built-in objectives of one evaluation, as recorded (negated: fewer tokens, less cost is
/// higher). All come from the texts and the recorded usage, so a replay gives the same numbers.
pub fn builtin_scores(
    wanted: &[BuiltinObjective],
    candidate: &Candidate,
    trace: &Trace,
    task_cost_usd: f64,
) -> ObjectiveScores {
    wanted
        .iter()
        .map(|b| {
            let v = match b {
                BuiltinObjective::PromptTokens => candidate.values().map(|t| count_tokens(t)).sum::<u64>() as f64,
                BuiltinObjective::OutputTokens => trace.steps.iter().map(|s| s.usage.output_tokens).sum::<u64>() as f64,
                BuiltinObjective::CostUsd => task_cost_usd,
            };
            (b.as_str().to_string(), -v)
        })
        .collect()
}

/// Whether smaller is better for this objective as a person reads it.
pub fn lower_is_better(name: &str) -> bool {
    BuiltinObjective::from_name(name).is_some()
}

/// A recorded (higher-is-better) value the way a person reads it: tokens and USD positive.
pub fn natural(name: &str, recorded: f64) -> f64 {
    if lower_is_better(name) {
        -recorded
    } else {
        recorded
    }
}

/// A recorded value for a table cell: tokens whole (a mean to one decimal), USD with enough digits,
/// scores to 3 places.
pub fn format_natural(name: &str, recorded: f64) -> String {
    let v = natural(name, recorded);
    match BuiltinObjective::from_name(name) {
        // Whole tokens per example; a mean over examples keeps one decimal.
        Some(BuiltinObjective::PromptTokens | BuiltinObjective::OutputTokens) if v.fract() == 0.0 => format!("{v:.0}"),
        Some(BuiltinObjective::PromptTokens | BuiltinObjective::OutputTokens) => format!("{v:.1}"),
        Some(BuiltinObjective::CostUsd) => format!("${v:.5}"),
        None => format!("{v:.3}"),
    }
}

/// The mean of each objective over the evaluations that have it (gepa state.py
/// `_aggregate_objective_scores`: an objective missing from an example is left out of its mean).
pub fn aggregate<'a>(per_example: impl IntoIterator<Item = &'a ObjectiveScores>) -> ObjectiveScores {
    let mut totals: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for m in per_example {
        for (k, v) in m {
            let t = totals.entry(k.clone()).or_insert((0.0, 0));
            t.0 += v;
            t.1 += 1;
        }
    }
    totals.into_iter().map(|(k, (sum, n))| (k, sum / n as f64)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_words_and_marks() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("Answer the item."), 4);
        assert_eq!(count_tokens("  rule_A, then {{x}}!\n"), 9);
        assert_eq!(count_tokens("naïve café"), 2);
    }

    #[test]
    fn builtins_are_recorded_negated_and_shown_positive() {
        let cand: Candidate =
            [("a".to_string(), "one two".to_string()), ("b".to_string(), "three.".to_string())].into();
        let mut trace = Trace::default();
        let step = |out| crate::system::StepTrace {
            name: "answer".into(),
            model: "task".into(),
            messages: vec![],
            output: String::new(),
            truncated: false,
            usage: crate::llm::Usage { input_tokens: 100, output_tokens: out },
            cached: false,
        };
        trace.steps = vec![step(7), step(5)];
        let s = builtin_scores(&BuiltinObjective::ALL, &cand, &trace, 0.002);
        assert_eq!(s["prompt_tokens"], -4.0);
        assert_eq!(s["output_tokens"], -12.0);
        assert_eq!(s["cost_usd"], -0.002);
        assert_eq!(format_natural("prompt_tokens", s["prompt_tokens"]), "4");
        assert_eq!(format_natural("output_tokens", -1.875), "1.9");
        assert_eq!(format_natural("cost_usd", s["cost_usd"]), "$0.00200");
        assert_eq!(format_natural("meaning", 0.25), "0.250");
        assert!(lower_is_better("output_tokens") && !lower_is_better("meaning"));
    }

    /// gepa `_aggregate_objective_scores`: per objective, the mean over the examples that have it.
    #[test]
    fn aggregate_is_a_mean_over_examples_that_have_the_objective() {
        let a: ObjectiveScores = [("x".to_string(), 1.0), ("y".to_string(), 0.0)].into();
        let b: ObjectiveScores = [("x".to_string(), 0.5)].into();
        let m = aggregate([&a, &b]);
        assert_eq!(m["x"], 0.75);
        assert_eq!(m["y"], 0.0);
    }
}

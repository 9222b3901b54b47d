//! Several draws of one example (`[optimizer] val_repeats`): a system that samples is scored on
//! each val example k times, and the example's score is the mean of its draws (gepa #139: "run
//! each rollout N times, and return the aggregate as the score"). How far the draws spread is
//! kept, so a difference smaller than the noise is not read as a win.

use super::objective::{aggregate, ObjectiveScores};
use super::ExampleEval;

/// One example's draws, in repeat order.
#[derive(Debug, Clone, PartialEq)]
pub struct Draws<'a> {
    pub example_id: &'a str,
    pub evals: Vec<&'a ExampleEval>,
}

impl Draws<'_> {
    /// The example's score: the mean of its draws' (a single draw's own score).
    pub fn mean(&self) -> f64 {
        mean(&self.scores())
    }

    pub fn scores(&self) -> Vec<f64> {
        self.evals.iter().map(|e| e.score).collect()
    }

    /// Each objective's mean over the draws that have it.
    pub fn objectives(&self) -> ObjectiveScores {
        match self.evals.as_slice() {
            [one] => one.objectives.clone(),
            many => aggregate(many.iter().map(|e| &e.objectives)),
        }
    }
}

/// `evals` grouped by example, examples in the order of their first draw.
pub fn by_example(evals: &[ExampleEval]) -> Vec<Draws<'_>> {
    let mut out: Vec<Draws> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for e in evals {
        match at.get(e.example_id.as_str()) {
            Some(&i) => out[i].evals.push(e),
            None => {
                at.insert(&e.example_id, out.len());
                out.push(Draws { example_id: &e.example_id, evals: vec![e] });
            }
        }
    }
    for d in &mut out {
        d.evals.sort_by_key(|e| e.repeat);
    }
    out
}

pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// The sample standard deviation (n − 1), 0 for fewer than two values.
pub fn spread(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// Whether draws `a` beat draws `b` over every repeat: `a`'s worst draw scores above `b`'s
/// best, so no pairing of one draw each says otherwise. With one draw each it is `a > b`.
pub fn beats(a: &[f64], b: &[f64]) -> bool {
    let worst = a.iter().copied().fold(f64::INFINITY, f64::min);
    let best = b.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    !a.is_empty() && !b.is_empty() && worst > best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(id: &str, repeat: u32, score: f64) -> ExampleEval {
        ExampleEval { repeat, ..ExampleEval::scored(id, score) }
    }

    #[test]
    fn draws_are_grouped_by_example_in_repeat_order_and_averaged() {
        let evals = [draw("a", 0, 1.0), draw("b", 0, 0.0), draw("b", 1, 1.0), draw("a", 1, 0.5), draw("b", 2, 1.0)];
        let g = by_example(&evals);
        assert_eq!(g.iter().map(|d| d.example_id).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(g[1].scores(), [0.0, 1.0, 1.0]);
        assert_eq!((g[0].mean(), g[1].mean()), (0.75, 2.0 / 3.0));
    }

    #[test]
    fn a_win_holds_over_every_repeat() {
        assert!(beats(&[1.0], &[0.0]) && !beats(&[0.5], &[0.5]));
        // The means differ (0.67 against 0.33), but one draw of each says the other way round.
        assert!(!beats(&[1.0, 1.0, 0.0], &[0.0, 0.0, 1.0]));
        assert!(beats(&[0.8, 0.9], &[0.5, 0.7]) && !beats(&[0.8, 0.9], &[0.5, 0.8]));
        assert!((spread(&[1.0, 0.0, 1.0]) - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(spread(&[0.4]), 0.0);
    }
}

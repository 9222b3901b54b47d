//! Numbers derived from the committed state: fronts held, difficulty, wins, spend, the ETA, lineage.

use super::Model;
use crate::engine::CandidateId;
use crate::eval::ExampleEval;
use std::cell::Ref;

impl Model {
    /// Per candidate: how many of the run's fronts it holds (per val example, or whatever the
    /// run's `frontier` selects over; computed once per commit, when first asked).
    pub fn fronts_held(&self) -> Ref<'_, Vec<usize>> {
        self.held.get(self.commits, || {
            let mut held = vec![0usize; self.state.candidates.len()];
            for f in self.state.front_sets() {
                for c in f {
                    if let Some(h) = held.get_mut(c) {
                        *h += 1;
                    }
                }
            }
            held
        })
    }

    /// Adds to val example `id`'s committed score sum and count (for its difficulty).
    pub(super) fn count_score(&mut self, id: &str, score: f64, n: isize) {
        let Some(i) = self.state.val_ids.iter().position(|v| v == id) else { return };
        if let (Some(s), Some(c)) = (self.score_sums.get_mut(i), self.score_counts.get_mut(i)) {
            *s += score;
            *c = c.saturating_add_signed(n);
        }
    }

    /// Mean committed score on val example `i` over the candidates scored so far (low = hard).
    pub fn difficulty(&self, i: usize) -> f64 {
        match (self.score_sums.get(i), self.score_counts.get(i)) {
            (Some(s), Some(n)) if *n > 0 => s / *n as f64,
            _ => 0.0,
        }
    }

    pub fn on_frontier(&self, c: CandidateId) -> bool {
        self.fronts_held().get(c).copied().unwrap_or(0) > 0
    }

    /// Candidates on at least one front.
    pub fn frontier_size(&self) -> usize {
        self.fronts_held().iter().filter(|n| **n > 0).count()
    }

    /// A val example's score for a candidate, if scored.
    pub fn score(&self, c: CandidateId, example: usize) -> Option<f64> {
        self.state.candidates.get(c)?.val_scores.get(example).copied()
    }

    /// The val evaluation of a candidate on val example `example` (an index into `val_ids`), with
    /// its trace. None when it was not evaluated there (the example was excluded first).
    pub fn val_eval(&self, c: CandidateId, example: usize) -> Option<&ExampleEval> {
        let evals = self.val_evals.get(c)?;
        let id = self.state.val_ids.get(example)?;
        match evals.get(example) {
            Some(e) if e.example_id == *id => Some(e),
            _ => evals.iter().find(|e| e.example_id == *id),
        }
    }

    pub fn failed_eval(&self, c: CandidateId, example: usize) -> bool {
        self.val_eval(c, example).is_some_and(|e| e.error.is_some())
    }

    /// Wins, ties and losses of `a` against `b` over the val examples both were scored on.
    /// Wins, ties and losses of `a` against `b` over the val examples on an objective (as
    /// recorded, higher is better), counting only the examples both have it for.
    pub fn wins_ties_losses_on(&self, a: CandidateId, b: CandidateId, objective: &str) -> (usize, usize, usize) {
        let (Some(ca), Some(cb)) = (self.state.candidates.get(a), self.state.candidates.get(b)) else {
            return (0, 0, 0);
        };
        let (mut w, mut t, mut l) = (0, 0, 0);
        let counted = |(i, _): &(usize, _)| self.state.val_counted(*i);
        for (_, (x, y)) in ca.val_objectives.iter().zip(&cb.val_objectives).enumerate().filter(counted) {
            if let (Some(x), Some(y)) = (x.get(objective), y.get(objective)) {
                match x.total_cmp(y) {
                    std::cmp::Ordering::Greater => w += 1,
                    std::cmp::Ordering::Equal => t += 1,
                    std::cmp::Ordering::Less => l += 1,
                }
            }
        }
        (w, t, l)
    }

    /// The lowest and highest recorded value of an objective over every candidate and val example.
    pub fn objective_range(&self, objective: &str) -> Option<(f64, f64)> {
        let vals = self.state.candidates.iter().flat_map(|c| c.val_objectives.iter().filter_map(|m| m.get(objective)));
        vals.fold(None, |r, v| Some(r.map_or((*v, *v), |(lo, hi): (f64, f64)| (lo.min(*v), hi.max(*v)))))
    }

    pub fn wins_ties_losses(&self, a: CandidateId, b: CandidateId) -> (usize, usize, usize) {
        let (Some(ca), Some(cb)) = (self.state.candidates.get(a), self.state.candidates.get(b)) else {
            return (0, 0, 0);
        };
        if !ca.val_draws.is_empty() && !cb.val_draws.is_empty() {
            return self.wins_over_repeats(&ca.val_draws, &cb.val_draws);
        }
        // Branch-free counts (this runs for every visible cell of the pairwise matrix each frame).
        let (mut wins, mut losses) = (0usize, 0usize);
        for (x, y) in ca.val_scores.iter().zip(&cb.val_scores) {
            wins += usize::from(x > y);
            losses += usize::from(x < y);
        }
        let all = ca.val_scores.len().min(cb.val_scores.len());
        let mut n = all;
        // Excluded examples do not count (a person took them out of the run).
        for &i in self.state.data.excluded_val.iter().filter(|i| **i < all) {
            let (x, y) = (ca.val_scores[i], cb.val_scores[i]);
            wins -= usize::from(x > y);
            losses -= usize::from(x < y);
            n -= 1;
        }
        (wins, n - wins - losses, losses)
    }

    /// Wins, ties and losses when val is scored more than once (`val_repeats`): an example is a
    /// win only when it holds over every repeat (the worst draw beats the other's best; see
    /// `eval::repeats::beats`), a loss likewise, and a tie otherwise: a difference the draws
    /// themselves contradict is noise, not a win.
    fn wins_over_repeats(&self, a: &[Vec<f64>], b: &[Vec<f64>]) -> (usize, usize, usize) {
        let (mut w, mut t, mut l) = (0, 0, 0);
        for (_, (x, y)) in a.iter().zip(b).enumerate().filter(|(i, _)| self.state.val_counted(*i)) {
            if x.is_empty() || y.is_empty() {
                // Not scored there (excluded before one of them was scored).
                continue;
            }
            match (crate::eval::repeats::beats(x, y), crate::eval::repeats::beats(y, x)) {
                (true, _) => w += 1,
                (_, true) => l += 1,
                _ => t += 1,
            }
        }
        (w, t, l)
    }

    /// The models the engine is waiting for (not answering), from the last status.
    pub fn live_outages(&self) -> &[crate::llm::Outage] {
        self.live.as_ref().map(|s| s.outages.as_slice()).unwrap_or(&[])
    }

    /// Whether an engine is attached and still running.
    pub fn is_live(&self) -> bool {
        (self.attached || self.live.is_some()) && !self.engine_done
    }

    /// Metric calls including the round in flight.
    pub fn metric_calls(&self) -> u64 {
        match &self.live {
            Some(s) if !self.engine_done => s.metric_calls.max(self.state.metric_calls),
            _ => self.state.metric_calls,
        }
    }

    pub fn cost_usd(&self) -> f64 {
        match &self.live {
            Some(s) if !self.engine_done => s.cost_usd.max(self.state.cost_usd),
            _ => self.state.cost_usd,
        }
    }

    /// The run's forecast, as `gepa-tui check` makes it: from the seed's own scores on val once
    /// they are in (measured, as `check`'s dry run), else from the prompt sizes. None without the
    /// project at hand.
    pub fn forecast(&self) -> Option<crate::engine::forecast::Forecast> {
        let (plan, estimated) = self.forecast_basis.as_ref()?;
        let seed: Vec<(&crate::project::Example, &ExampleEval)> = self
            .val_evals
            .first()
            .into_iter()
            .flatten()
            .filter_map(|e| Some((self.examples.get(&(crate::project::Split::Val, e.example_id.clone()))?, e)))
            .collect();
        let per_call = if seed.is_empty() {
            estimated.clone()
        } else {
            crate::engine::forecast::measure(plan.perfect_score(), &seed)
        };
        Some(plan.forecast(per_call))
    }

    /// What the run used so far against its forecast: (used, the forecast), in dollars when the
    /// project prices its models (paid and replayed from the cache alike), else in tokens.
    pub fn use_against_forecast(&self) -> Option<(f64, crate::engine::forecast::Span, bool)> {
        let f = self.forecast()?;
        Some(if f.priced {
            (self.cost_usd() + self.state.cost_usd_replayed, f.total_usd(), true)
        } else {
            ((self.state.input_tokens + self.state.output_tokens) as f64, f.total_tokens(), false)
        })
    }

    /// Seconds left at this session's pace, when it can be told.
    pub fn eta_secs(&self) -> Option<f64> {
        let s = self.live.as_ref()?;
        if self.engine_done || self.state.finished.is_some() {
            return None;
        }
        let done = s.metric_calls.saturating_sub(self.session_start_calls);
        if done == 0 || s.elapsed_secs <= 0.0 {
            return None;
        }
        // The budget as the run recorded it, as the gauge reads it.
        let left = self.state.settings.max_metric_calls.saturating_sub(s.metric_calls);
        Some(s.elapsed_secs / done as f64 * left as f64)
    }

    /// The ancestors of `c` up to the seed, as (depth, id) in depth-first order; each candidate once.
    pub fn lineage(&self, c: CandidateId, max_nodes: usize) -> Vec<(usize, CandidateId)> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![(0usize, c)];
        while let Some((depth, id)) = stack.pop() {
            if out.len() >= max_nodes {
                break;
            }
            out.push((depth, id));
            if !seen.insert(id) {
                continue;
            }
            if let Some(rec) = self.state.candidates.get(id) {
                for &p in rec.parents.iter().rev() {
                    if p < id {
                        stack.push((depth + 1, p));
                    }
                }
            }
        }
        out
    }
}

//! The evaluation cache: scores of (candidate, split, example) already paid for, by the round that committed them.

use crate::engine::data_fixes::DataChanges;
use crate::engine::event::{candidate_hash, Event};
use crate::engine::state::RunState;
use crate::eval::ExampleEval;
use std::collections::HashMap;
use std::sync::Arc;

/// Which split an evaluation was of (the evaluation cache keeps them apart: ids may repeat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum EvalSplit {
    Train,
    Val,
}

impl EvalSplit {
    pub(super) fn data(self) -> crate::project::Split {
        match self {
            EvalSplit::Train => crate::project::Split::Train,
            EvalSplit::Val => crate::project::Split::Val,
        }
    }
}

/// Committed evaluations by (texts, split, example, the example's revision: how many fixes a
/// person made to it), with the round that committed them: an evaluation is reused by a round
/// only when it was committed before that round was planned, so what a round pays never depends
/// on timing (gepa's `EvaluationCache`), and never against a value the example no longer has.
#[derive(Default)]
pub(super) struct EvalCache {
    entries: HashMap<CacheKey, (u64, Arc<ExampleEval>)>,
}

/// (texts hash, split, example id, the example's revision, which draw of it: `val_repeats`).
pub(super) type CacheKey = (String, EvalSplit, String, u32, u32);

/// An example and which draw of it (0 the first; see `ExampleEval::repeat`).
pub(super) type Drawn<'a> = (&'a str, u32);

impl EvalCache {
    pub(super) fn key(hash: &str, split: EvalSplit, (example, repeat): Drawn, data: &DataChanges) -> CacheKey {
        (hash.to_string(), split, example.to_string(), data.revision(split.data(), example), repeat)
    }

    /// The evaluation of `example` by texts `hash`, when a round up to `committed_by` committed
    /// it (the planner reads its score without copying it).
    pub(super) fn committed(
        &self,
        hash: &str,
        split: EvalSplit,
        example: Drawn,
        committed_by: u64,
        data: &DataChanges,
    ) -> Option<&ExampleEval> {
        let (round, e) = self.entries.get(&Self::key(hash, split, example, data))?;
        (*round <= committed_by).then_some(&**e)
    }

    /// A copy to reuse: served from the cache, so nothing was paid for it this time.
    pub(super) fn get(
        &self,
        hash: &str,
        split: EvalSplit,
        example: Drawn,
        committed_by: u64,
        data: &DataChanges,
    ) -> Option<ExampleEval> {
        let e = self.committed(hash, split, example, committed_by, data)?;
        Some(ExampleEval { cost_usd: 0.0, replayed_usd: 0.0, cached: true, ..e.clone() })
    }

    /// Remembers a committed round's evaluations; failed ones are not kept (they run again).
    /// `data`: the state the round committed into (its fixes are the ones it evaluated with).
    pub(super) fn put(&mut self, round: u64, hash: &str, split: EvalSplit, evals: &[ExampleEval], data: &DataChanges) {
        for e in evals.iter().filter(|e| e.error.is_none() && !e.cached) {
            self.entries
                .entry(Self::key(hash, split, (&e.example_id, e.repeat), data))
                .or_insert_with(|| (round, Arc::new(e.clone())));
        }
    }

    /// Files the evaluations of one committed round's events.
    pub(super) fn put_events(&mut self, round: u64, events: &[Event], state: &RunState) {
        let data = &state.data;
        for ev in events {
            match ev {
                Event::MinibatchEvaluated { candidate_hash: Some(h), evals, .. } => {
                    self.put(round, h, EvalSplit::Train, evals, data)
                }
                Event::ValEvaluated { candidate, evals, .. } => {
                    if let Some(c) = state.candidates.get(*candidate) {
                        self.put(round, &candidate_hash(&c.texts), EvalSplit::Val, evals, data);
                    }
                }
                Event::MergeAttempted { texts, evals, .. } => {
                    self.put(round, &candidate_hash(texts), EvalSplit::Val, evals, data)
                }
                // A val example's outputs scored again against its corrected value.
                Event::ExampleFixed { rescored, .. } => {
                    for r in rescored {
                        if let Some(c) = state.candidates.get(r.candidate) {
                            let evals = std::slice::from_ref(&r.eval);
                            self.put(round, &candidate_hash(&c.texts), EvalSplit::Val, evals, data);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each draw of a repeated val pass (`val_repeats`) is kept and served apart.
    #[test]
    fn each_draw_of_an_example_is_kept_apart() {
        let data = DataChanges::default();
        let draws: Vec<ExampleEval> = [0.0, 1.0, 0.5]
            .iter()
            .zip(0..)
            .map(|(s, r)| ExampleEval { repeat: r, ..ExampleEval::scored("a", *s) })
            .collect();
        let mut cache = EvalCache::default();
        cache.put(1, "h", EvalSplit::Val, &draws, &data);
        for (r, want) in [(0, 0.0), (1, 1.0), (2, 0.5)] {
            let got = cache.get("h", EvalSplit::Val, ("a", r), 1, &data).unwrap();
            assert_eq!((got.score, got.repeat, got.cached), (want, r, true), "draw {r}");
        }
        assert!(cache.get("h", EvalSplit::Val, ("a", 3), 1, &data).is_none());
        assert!(cache.get("h", EvalSplit::Val, ("a", 1), 0, &data).is_none(), "committed after round 0");
    }
}

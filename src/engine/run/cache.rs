//! The evaluation cache: scores of (candidate, split, example) already paid for, by the round that committed them.

use crate::engine::data_fixes::DataChanges;
use crate::engine::event::{candidate_hash, Event};
use crate::engine::state::{CommitBuffer, RunState};
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

    /// Remembers a committed round's evaluations, taking them (a trace is the model's text: it
    /// is never held twice); failed ones are not kept (they run again).
    /// `data`: the state the round committed into (its fixes are the ones it evaluated with).
    pub(super) fn put(
        &mut self,
        round: u64,
        hash: &str,
        split: EvalSplit,
        evals: impl IntoIterator<Item = ExampleEval>,
        data: &DataChanges,
    ) {
        for e in evals.into_iter().filter(|e| e.error.is_none() && !e.cached) {
            self.entries
                .entry(Self::key(hash, split, (&e.example_id, e.repeat), data))
                .or_insert_with(|| (round, Arc::new(e)));
        }
    }

    /// Files the evaluations of one committed round's events, taken out of them.
    pub(super) fn put_events(&mut self, round: u64, events: Vec<Event>, state: &RunState) {
        let data = &state.data;
        for ev in events {
            match ev {
                Event::MinibatchEvaluated { candidate_hash: Some(h), evals, .. } => {
                    self.put(round, &h, EvalSplit::Train, evals, data)
                }
                Event::ValEvaluated { candidate, evals, .. } => {
                    if let Some(c) = state.candidates.get(candidate) {
                        self.put(round, &candidate_hash(&c.texts), EvalSplit::Val, evals, data);
                    }
                }
                Event::MergeAttempted { texts, evals, .. } => {
                    self.put(round, &candidate_hash(&texts), EvalSplit::Val, evals, data)
                }
                // A val example's outputs scored again against its corrected value.
                Event::ExampleFixed { rescored, .. } => {
                    for r in rescored {
                        if let Some(c) = state.candidates.get(r.candidate) {
                            self.put(round, &candidate_hash(&c.texts), EvalSplit::Val, [r.eval], data);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The cache of a run's log (on resume): every committed evaluation with its round, taken
    /// out of the events rather than copied, so a resume holds each trace once.
    pub(super) fn rebuild(events: Vec<Event>) -> EvalCache {
        let mut cache = EvalCache::default();
        let mut commits = CommitBuffer::default();
        let mut state = RunState::default();
        for ev in events {
            let batch = commits.feed_owned(ev);
            batch.iter().for_each(|e| state.apply(e));
            if let Some(&Event::RoundFinished { round, .. }) = batch.last() {
                cache.put_events(round, batch, &state);
            }
        }
        cache
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
        cache.put(1, "h", EvalSplit::Val, draws, &data);
        for (r, want) in [(0, 0.0), (1, 1.0), (2, 0.5)] {
            let got = cache.get("h", EvalSplit::Val, ("a", r), 1, &data).unwrap();
            assert_eq!((got.score, got.repeat, got.cached), (want, r, true), "draw {r}");
        }
        assert!(cache.get("h", EvalSplit::Val, ("a", 3), 1, &data).is_none());
        assert!(cache.get("h", EvalSplit::Val, ("a", 1), 0, &data).is_none(), "committed after round 0");
    }

    /// On resume the cache takes each committed evaluation out of the log's events instead of
    /// copying it: the trace and output it serves are the very allocations the log was read
    /// into, so a resumed run holds each once. A round the log planned and did not commit (a
    /// crash before its `round_finished`) files nothing.
    #[test]
    fn a_rebuilt_cache_holds_the_logs_own_traces_not_copies() {
        let texts: crate::project::Candidate = [("p".to_string(), "Answer the item.".to_string())].into();
        let hash = candidate_hash(&texts);
        let eval = |id: &str| {
            serde_json::json!({"example_id": id, "score": 1.0, "feedback": "ok", "output": format!("the answer to {id}"),
            "trace": {"steps": [{"name": "answer", "model": "task", "output": format!("the answer to {id}"), "truncated": false,
            "messages": [{"role": "system", "content": "Answer the item."}, {"role": "user", "content": format!("item {id}")}]}]},
            "error": null, "cost_usd": 0.001})
        };
        let log = [
            serde_json::json!({"event": "round_started", "round": 0, "proposals": []}),
            serde_json::json!({"event": "candidate_added", "id": 0, "texts": texts, "parents": [], "origin": "seed",
            "changed": [], "round": 0, "discovered_at": 0}),
            serde_json::json!({"event": "val_evaluated", "candidate": 0, "evals": [eval("a"), eval("b")]}),
            serde_json::json!({"event": "round_finished", "round": 0, "metric_calls": 2, "cost_usd": 0.002, "best": 0,
            "best_val": 1.0, "merges_due": 0, "found_new": false}),
            serde_json::json!({"event": "round_started", "round": 1, "planned_after": 0, "proposals": []}),
            serde_json::json!({"event": "minibatch_evaluated", "round": 1, "slot": 0, "candidate_role": "parent",
            "candidate_hash": hash, "evals": [eval("t")]}),
        ];
        let start = Event::run_started_for_tests(&["t"], &["a", "b"], Default::default());
        let events: Vec<Event> =
            std::iter::once(start).chain(log.into_iter().map(|v| serde_json::from_value(v).unwrap())).collect();
        let Event::ValEvaluated { evals, .. } = &events[3] else { panic!("val_evaluated") };
        let read: Vec<(ExampleEval, *const u8, *const u8)> = evals
            .iter()
            .map(|e| (e.clone(), e.output.as_ptr(), e.trace.steps[0].messages[1].content.as_ptr()))
            .collect();
        let data = DataChanges::default();
        let cache = EvalCache::rebuild(events);
        for (logged, output, user_message) in read {
            let id = logged.example_id.as_str();
            let got = cache.committed(&hash, EvalSplit::Val, (id, 0), 0, &data).expect("committed in round 0");
            assert_eq!(*got, logged, "{id}: the logged evaluation");
            assert_eq!(got.output.as_ptr(), output, "{id}: the log's output, not a copy");
            assert_eq!(
                got.trace.steps[0].messages[1].content.as_ptr(),
                user_message,
                "{id}: the log's trace, not a copy"
            );
        }
        assert!(cache.committed(&hash, EvalSplit::Train, ("t", 0), u64::MAX, &data).is_none(), "round 1 not committed");
    }
}

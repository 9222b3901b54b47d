//! Whether stored events fit together before they are folded (ids in range, one score per example).

use super::{CommitBuffer, RunState};
use crate::engine::event::Event;
use crate::engine::pareto::CandidateId;

impl RunState {
    /// Checks that stored events fit together (ids in range, one score per val example), folding
    /// them as `from_events` does. Err: the index of the first bad event and why.
    pub fn check_events(events: &[Event]) -> Result<(), (usize, String)> {
        let mut state = RunState::default();
        let mut commits = CommitBuffer::default();
        for (i, ev) in events.iter().enumerate() {
            for (j, e) in commits.feed(ev, (i, ev)) {
                state.check(e).map_err(|w| (j, w))?;
                state.apply(e);
            }
        }
        Ok(())
    }

    /// Whether `event` can be applied to this state without referring to what is not there.
    fn check(&self, event: &Event) -> Result<(), String> {
        let n = self.candidates.len();
        let known = |c: &CandidateId| -> Result<(), String> {
            if *c < n {
                Ok(())
            } else {
                Err(format!("candidate {c} does not exist ({n} so far)"))
            }
        };
        if self.run_id.is_empty() && !matches!(event, Event::RunStarted { .. }) {
            return Err("the log does not start with run_started".into());
        }
        match event {
            Event::RunStarted { components, .. } if components.is_empty() => Err("a run without components".into()),
            Event::RoundStarted { proposals, .. } => proposals.iter().try_for_each(|p| known(&p.parent)),
            Event::CandidateAdded { id, parents, texts, .. } => {
                if *id != n {
                    return Err(format!("candidate id {id}, but the next id is {n}"));
                }
                if texts.len() != self.components.len() {
                    return Err(format!("{} texts for {} components", texts.len(), self.components.len()));
                }
                parents.iter().try_for_each(known)
            }
            Event::ValEvaluated { candidate, evals, .. } => {
                known(candidate)?;
                // Every val example that counts, in val order (all of them before any exclusion).
                // With `val_repeats`, each draw lists them so (all first draws, then all second …).
                let counted = self.counted_val();
                let repeats = evals.iter().map(|e| e.repeat + 1).max().unwrap_or(1) as usize;
                let per_draw = evals.len() / repeats;
                let ids_fit = per_draw == self.val_ids.len()
                    || evals[..per_draw.min(evals.len())]
                        .iter()
                        .map(|e| &e.example_id)
                        .eq(counted.iter().map(|&i| &self.val_ids[i]));
                let draws_fit = evals.len() == per_draw * repeats
                    && evals.chunks(per_draw.max(1)).enumerate().all(|(r, draw)| {
                        draw.iter().all(|e| e.repeat as usize == r)
                            && draw.iter().map(|e| &e.example_id).eq(evals[..per_draw].iter().map(|e| &e.example_id))
                    });
                if per_draw != counted.len() || !ids_fit || !draws_fit {
                    return Err(format!("{} scores for {} val examples", evals.len(), counted.len()));
                }
                Ok(())
            }
            Event::Human { action, .. } => match action.example() {
                Some((split, id)) => {
                    let ids = if split == crate::project::Split::Val { &self.val_ids } else { &self.train_ids };
                    if ids.iter().any(|i| i == id) {
                        Ok(())
                    } else {
                        Err(format!("no {} example `{id}` in this run", split.as_str()))
                    }
                }
                None => Ok(()),
            },
            Event::ExampleFixed { rescored, .. } => rescored.iter().try_for_each(|r| known(&r.candidate)),
            Event::TestEvaluated { candidate, .. } => known(candidate),
            Event::MergeAttempted { id1, id2, ancestor, .. } => [id1, id2, ancestor].into_iter().try_for_each(known),
            Event::RoundFinished { best, .. } | Event::Finished { best, .. } if n > 0 => known(best),
            _ => Ok(()),
        }
    }
}

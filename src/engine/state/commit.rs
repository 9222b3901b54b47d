//! The commit rule: a round's events count once its `round_finished` is written.

use crate::engine::event::{Event, Scope};
use std::collections::BTreeMap;

/// The commit rule, in one place: events that belong to a round are held until its
/// `round_finished`, then released in the order they were written (several rounds may be in
/// flight at once, their events interleaved in the log); `resumed` voids every uncommitted round;
/// run-level events pass at once. The engine, `RunState::from_events`, `check_events` and the
/// workbench's model all fold through it.
#[derive(Debug, Clone)]
pub struct CommitBuffer<T> {
    pending: BTreeMap<u64, Vec<T>>,
    last_round: u64,
}

impl<T> Default for CommitBuffer<T> {
    fn default() -> Self {
        CommitBuffer { pending: BTreeMap::new(), last_round: 0 }
    }
}

impl<T> CommitBuffer<T> {
    /// Takes one event (carried as `item`) and returns what now counts, in order.
    pub fn feed(&mut self, ev: &Event, item: T) -> Vec<T> {
        self.feed_scoped(ev.scope(), item)
    }

    fn feed_scoped(&mut self, scope: Scope, item: T) -> Vec<T> {
        match scope {
            Scope::Run => vec![item],
            Scope::Void => {
                self.pending.clear();
                vec![]
            }
            Scope::Drop(round) => {
                self.pending.remove(&round);
                vec![]
            }
            Scope::Commit(round) => {
                let mut out = self.pending.remove(&round).unwrap_or_default();
                out.push(item);
                out
            }
            Scope::Round(round) => {
                self.last_round = round;
                self.pending.entry(round).or_default().push(item);
                vec![]
            }
            Scope::Previous => {
                self.pending.entry(self.last_round).or_default().push(item);
                vec![]
            }
        }
    }

    /// Held events, by round.
    pub fn pending(&self) -> impl Iterator<Item = &T> {
        self.pending.values().flatten()
    }

    /// The held events of one round.
    pub fn pending_of(&self, round: u64) -> &[T] {
        self.pending.get(&round).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Takes the held events of one round (the engine commits it itself).
    pub fn take(&mut self, round: u64) -> Vec<T> {
        self.pending.remove(&round).unwrap_or_default()
    }
}

impl CommitBuffer<Event> {
    /// `feed` of an event owned: what counts comes back owned (nothing copied).
    pub fn feed_owned(&mut self, ev: Event) -> Vec<Event> {
        self.feed_scoped(ev.scope(), ev)
    }
}

//! What the run paid, wherever the work went, and the cost limit that holds back new calls.
//!
//! Work planned ahead and then dropped keeps its calls in flight (a round planned again may take
//! their replies from the response cache), so those calls are paid whatever becomes of them.
//! Every paid reply is booked once, by the work generation that asked for it: to its round while
//! the round is in flight (the commit then books it through the round's events), or to the
//! dropped work once the round was voided (booked into `cost_usd` and `cost_usd_dropped` by the
//! next commit, or by `finished`). So `cost_usd` is everything the run paid.
//!
//! `max_cost_usd` is checked against that total before every evaluation and reflection starts:
//! once it is reached, no new one starts (it waits, and the run finishes), so the limit is
//! exceeded by at most the evaluations and reflections in flight when it was reached. When it is
//! reached depends on timing (which replies came first, how much dropped work had paid); the
//! committed rounds up to the stop never do: each is the sequential loop's.

use super::{Engine, Shared};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Shared {
    /// Books a reply paid by the work of generation `gen` (`calls` metric calls and `paid` USD).
    pub(super) fn book(&self, gen: u64, calls: u64, paid: f64) {
        let held = self.held.lock().expect("held events");
        let mut spend = self.spend.lock().expect("spend");
        if held.voided.contains(&gen) {
            self.evaluations_dropped.fetch_add(calls, Ordering::Relaxed);
            spend.dropped += paid;
        } else {
            let r = spend.rounds.entry(gen).or_default();
            r.0 += calls;
            r.1 += paid;
        }
    }

    /// A round's work was voided: what it paid so far goes to the dropped work. Called with the
    /// `held` lock taken, as the generation is marked voided (so no reply is booked in between).
    pub(super) fn drop_spend(&self, gen: u64) {
        let mut spend = self.spend.lock().expect("spend");
        if let Some((calls, paid)) = spend.rounds.remove(&gen) {
            self.evaluations_dropped.fetch_add(calls, Ordering::Relaxed);
            spend.dropped += paid;
        }
    }

    /// The work of generation `gen` committed (or ended as the test pass) and the committed state
    /// now holds `committed` USD: takes the dropped work's spend not booked yet, which the caller
    /// adds to the state (returned).
    pub(super) fn commit_spend(&self, gen: u64, committed_before_dropped: f64) -> f64 {
        let mut spend = self.spend.lock().expect("spend");
        spend.rounds.remove(&gen);
        let unbooked = spend.dropped - spend.dropped_booked;
        spend.dropped_booked = spend.dropped;
        spend.committed = committed_before_dropped + unbooked;
        unbooked
    }

    /// Everything the run has paid so far: committed, in flight and dropped.
    pub(super) fn paid_total(&self) -> f64 {
        self.spend.lock().expect("spend").total()
    }

    /// Whether `max_cost_usd` is reached, counting every paid call.
    pub(super) fn over_cost(&self) -> bool {
        self.opt.max_cost_usd.is_some_and(|max| self.paid_total() >= max)
    }

    /// Holds a call of the work of generation `gen` back for good once `max_cost_usd` is reached
    /// or the run is finishing; returns at once otherwise. The work is marked held before the
    /// engine is woken, and the engine drops the rounds in flight from the first one marked (see
    /// `Engine::drop_held`): a mark, not the wake-up, says which, so no wake-up can be spent on a
    /// round that was about to end while a held one waits for ever.
    pub(super) async fn cost_gate(&self, gen: u64) {
        if self.closing.load(Ordering::Relaxed) || self.over_cost() {
            self.held.lock().expect("held events").at_cost_gate.insert(gen);
            self.cost_stop.notify_one();
            std::future::pending::<()>().await;
        }
    }

    /// Evaluations and reflections waiting for a model now.
    pub(super) fn calls_in_flight(&self) -> usize {
        self.live.in_flight.load(Ordering::Relaxed) + self.live.reflecting.load(Ordering::Relaxed)
    }
}

/// How long a finishing run waits for the calls of dropped work still in flight (a model in an
/// outage holds its requests far longer; those are cut off, unanswered, so unpaid as far as the
/// run can know).
const DRAIN_AT_MOST: Duration = Duration::from_secs(30);

impl Engine {
    /// Waits for the calls in flight to end (none starts past the cost limit, or once the run is
    /// `closing`), so that what they cost is booked before the run finishes. False when the run
    /// was stopped meanwhile.
    pub(super) async fn drain_calls(&self) -> bool {
        let cancel = self.handle.cancel.clone();
        let started = Instant::now();
        while self.sh.calls_in_flight() > 0 && started.elapsed() < DRAIN_AT_MOST {
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = tokio::time::sleep(Duration::from_millis(2)) => {}
            }
        }
        true
    }
}

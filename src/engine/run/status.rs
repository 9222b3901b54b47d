//! The engine's shared side: notices and events out, live status, the pause gate, the pipeline lag.

use super::{stamp, HeldEvents, Shared};
use crate::engine::event::Event;
use crate::engine::handle::{ModelUsage, Notice, Status};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::atomic::Ordering;

impl Shared {
    /// Rounds in flight at most now: `pipeline_lag`; or, when it was left to the engine, one at a
    /// time while the task model's server is seen answering requests in turn or until a warm batch
    /// was measured (see `engine::gauge`).
    pub(super) fn lag(&self) -> usize {
        use crate::engine::gauge::Verdict;
        if !self.opt.lag_is_auto() {
            return self.opt.max_lag();
        }
        match self.gauge.lock().expect("gauge").verdict() {
            Verdict::Serial => 1,
            Verdict::Unknown => 1,
            Verdict::Parallel => self.opt.max_lag(),
        }
    }

    /// Times one batch of evaluations sent together: (seconds from sending, output tokens).
    pub(super) fn observe_batch(&self, replies: &[(f64, u64)], cold: bool) {
        use crate::engine::gauge::Verdict;
        if !self.opt.lag_is_auto() || self.opt.max_lag() == 1 {
            return;
        }
        let changed = self.gauge.lock().expect("gauge").observe(replies, cold);
        if changed == Some(Verdict::Parallel) && !self.said_serial.swap(false, Ordering::Relaxed) {
            tracing::info!("the model server answers requests side by side; planning ahead");
        } else if changed == Some(Verdict::Parallel) {
            tracing::info!("the model server now answers requests side by side; planning ahead again");
            self.notify(Notice::Warning(
                "the model server now answers requests side by side: proposals are planned ahead again".into(),
            ));
        }
        if changed == Some(Verdict::Serial) {
            self.said_serial.store(true, Ordering::Relaxed);
            tracing::info!("the model server answers requests in turn; one proposal at a time");
            self.notify(Notice::Warning(
                "the model server answers requests one after another (a llama-server or Ollama with one or two \
                 slots?): proposals now run one at a time, since work planned ahead would only wait in its \
                 queue in front of the next step's; set pipeline_lag in [optimizer] to choose"
                    .into(),
            ));
        }
    }

    pub(super) fn notify(&self, n: Notice) {
        if let Some(observe) = &self.observer {
            observe(&n);
        }
        if let Some(tx) = &self.notices {
            let _ = tx.send(n);
        }
    }

    /// Appends an event (fsynced when `durable`), holds it for its round's commit, and tells the
    /// consumers.
    pub(super) fn emit(&self, ev: Event, durable: bool) -> Result<()> {
        let mut held = self.held.lock().expect("held events");
        self.record(&mut held, ev, durable)
    }

    /// An event of the work of round generation `gen`: dropped when that work was voided (an
    /// aborted task may still be running up to its next await), so nothing of it lands.
    pub(super) fn emit_in(&self, gen: u64, ev: Event, durable: bool) -> Result<()> {
        let mut held = self.held.lock().expect("held events");
        if !held.live.contains(&gen) {
            return Ok(());
        }
        self.record(&mut held, ev, durable)
    }

    pub(super) fn record(&self, held: &mut HeldEvents, ev: Event, durable: bool) -> Result<()> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        {
            let mut log = self.log.lock().expect("log lock");
            log.append(&stamp(&ev, seq))
                .context("cannot record the run's events; the run stays resumable once the disk problem is fixed")?;
            if durable {
                log.sync()?;
            }
        }
        // Run-level events are applied by the engine itself; only round events are held here.
        let _ = held.buf.feed(&ev, ev.clone());
        self.notify(Notice::Event(Box::new(ev)));
        Ok(())
    }

    /// Whether voided work `gen` was told to start nothing new.
    pub(super) fn stopped(&self, gen: u64) -> bool {
        self.held.lock().expect("held events").stopped.contains(&gen)
    }

    pub(super) fn stage_in(&self, gen: u64, round: u64, what: Option<String>) {
        if self.held.lock().expect("held events").live.contains(&gen) {
            self.stage(round, what);
        }
    }

    pub(super) fn set_activity(&self, s: impl Into<String>) {
        self.activity.lock().expect("activity").general = s.into();
        self.send_status();
    }

    /// What round `round` is doing now ("reflecting on `instruction`"); None when it committed.
    pub(super) fn stage(&self, round: u64, what: Option<String>) {
        {
            let mut a = self.activity.lock().expect("activity");
            match what {
                Some(w) => a.rounds.insert(round, w),
                None => a.rounds.remove(&round),
            };
        }
        self.send_status();
    }

    pub(super) fn activity_line(&self, outages: &[crate::llm::Outage]) -> String {
        // A model that is not answering holds everything that needs it: that comes first.
        let waiting: Vec<String> = outages.iter().map(|o| o.describe()).collect();
        if !waiting.is_empty() {
            return waiting.join(" · ");
        }
        let a = self.activity.lock().expect("activity");
        if a.rounds.is_empty() {
            return a.general.clone();
        }
        let word = if self.one_per_round { "proposal" } else { "round" };
        let mut parts: Vec<String> =
            a.rounds.iter().map(|(r, w)| if *r == 0 { w.clone() } else { format!("{word} {r}: {w}") }).collect();
        let n = self.live.in_flight.load(Ordering::Relaxed);
        if n > 0 {
            parts.push(format!("{n} evaluation{} in flight", if n == 1 { "" } else { "s" }));
        }
        parts.join(" · ")
    }

    pub(super) fn send_status(&self) {
        if self.notices.is_some() {
            self.notify(Notice::Status(self.status()));
        }
    }

    /// Rewrites the run folder's `status.json` (the live status, for a workbench attached from
    /// another process): a temp file renamed over it, not fsynced (it says what is happening now;
    /// a crash leaves a stale one, and the lock says nobody runs the run).
    pub(super) fn write_status_file(&self, run_dir: &Path) {
        let path = run_dir.join(crate::engine::STATUS_FILE);
        let bytes = serde_json::to_vec(&self.status()).expect("status serializes");
        if let Err(e) = crate::store::runs::replace_file(&path, &bytes) {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }

    fn status(&self) -> Status {
        let (calls, cost_usd, cost_usd_dropped) = {
            let s = self.spend.lock().expect("spend");
            (s.rounds.values().map(|r| r.0).sum::<u64>(), s.total(), s.dropped)
        };
        let outages = self.task.models().outages();
        let status = Status {
            activity: self.activity_line(&outages),
            outages,
            paused: *self.paused.borrow(),
            round: self.next_commit.load(Ordering::Relaxed),
            metric_calls: self.live.metric_calls.load(Ordering::Relaxed) + calls,
            max_metric_calls: self.opt.max_metric_calls,
            cost_usd,
            in_flight: self.live.in_flight.load(Ordering::Relaxed),
            rounds_in_flight: self.rounds_in_flight.load(Ordering::Relaxed),
            evaluations_cached: self.evaluations_cached.load(Ordering::Relaxed),
            evaluations_dropped: self.evaluations_dropped.load(Ordering::Relaxed),
            cost_usd_dropped,
            elapsed_secs: self.started.elapsed().as_secs_f64(),
            models: ModelUsage::of(&self.task),
        };
        status
    }

    /// Waits while paused.
    pub(super) async fn gate(&self) {
        let mut rx = self.paused.clone();
        if *rx.borrow() {
            self.send_status();
        }
        while *rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

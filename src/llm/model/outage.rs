//! A model that is not answering: its requests are held and probed until it does, and listed.

use super::stats::{bump, CallInFlight};
use super::Model;
use crate::llm::retry::GaveUp;
use crate::llm::{AttemptError, ChatRequest, RawReply};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

/// A model that is not answering: its requests are held and probed until it does.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Outage {
    /// The model's key in `[models]`.
    pub model: String,
    /// The last failure, as the provider gave it.
    pub error: String,
    /// Unix milliseconds of the first failure of the longest-held request.
    pub since_ms: u64,
    /// Seconds until the next probe.
    pub next_try_secs: f64,
    /// Requests held.
    pub requests: usize,
}

impl Outage {
    /// `waiting for model "task": connection refused; next try in 40 s (retrying since 12:01:07)`.
    pub fn describe(&self) -> String {
        format!(
            "waiting for model \"{}\": {}; next try in {:.0} s (retrying since {})",
            self.model,
            short_reason(&self.error),
            self.next_try_secs.ceil(),
            crate::text::clock(self.since_ms)
        )
    }
}

/// The gist of a provider failure for a one-line status: `HTTP 503 Service Unavailable`, or the
/// innermost cause of a transport error (`connection refused`, `operation timed out`).
pub fn short_reason(message: &str) -> String {
    if message.starts_with("HTTP ") {
        return message.split(':').next().unwrap_or(message).trim().to_string();
    }
    if message.starts_with("malformed reply") {
        return "malformed replies".into();
    }
    let last = message.rsplit(": ").next().unwrap_or(message);
    let last = match last.find(" (os error") {
        Some(i) => &last[..i],
        None => last,
    };
    let mut out = crate::text::truncate_chars(last.trim(), 60);
    if let Some(first) = out.get(..1) {
        out = first.to_lowercase() + &out[1..];
    }
    out
}

/// One held request, for `Model::outage`.
pub(super) struct HeldRequest {
    error: String,
    since_ms: u64,
    next_try: std::time::Instant,
}

/// Takes a held request off the list when its wait ends, however it ends.
pub(super) struct HeldGuard<'a> {
    held: &'a Mutex<BTreeMap<u64, HeldRequest>>,
    id: u64,
}

impl HeldGuard<'_> {
    fn update(&self, error: String, since_ms: u64, next_try: std::time::Instant) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(self.id, HeldRequest { error, since_ms, next_try });
    }
}

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

pub(super) fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Model {
    /// The provider failed every retry of `req` in ways that say nothing about the request (down,
    /// overloaded, unreachable): hold it and probe, with a backoff capped at a minute, until the
    /// provider answers or `max` has passed since the first try. The wait is listed by `outage`
    /// and cut short by `retry_now`.
    pub(super) async fn wait_out(
        &self,
        req: &ChatRequest,
        mut gave_up: GaveUp,
        (first, first_wall): (std::time::Instant, std::time::SystemTime),
        max: Duration,
    ) -> Result<RawReply, GaveUp> {
        let guard = HeldGuard { held: &self.held, id: self.next_held.fetch_add(1, Ordering::Relaxed) };
        let since_ms = unix_ms(first_wall);
        for probe in 0u32.. {
            let AttemptError::Retryable { message, retry_after } = &gave_up.error else { return Err(gave_up) };
            let waited = first.elapsed();
            if waited >= max {
                tracing::warn!(model = %self.label, waited = ?waited, error = %message, "model did not answer; giving up");
                let waited_secs = waited.as_secs_f64();
                let last = message.clone();
                return Err(GaveUp { attempts: gave_up.attempts, error: AttemptError::Outage { waited_secs, last } });
            }
            // The last probe comes at the ceiling itself.
            let wait = self.retry.probe_delay(probe, *retry_after).min(max - waited);
            guard.update(message.clone(), since_ms, std::time::Instant::now() + wait);
            tracing::info!(model = %self.label, ?wait, error = %message, "model not answering; waiting");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
            let _permit = self.permits.acquire().await.expect("the model's semaphore is never closed");
            let _in_flight = CallInFlight::enter(&self.counters.in_flight);
            bump(&self.counters.retries);
            gave_up.attempts += 1;
            match self.send(req).await {
                Ok(raw) => return Ok(raw),
                Err(error) => gave_up.error = error.waitable(),
            }
        }
        unreachable!("the probe loop only ends by returning")
    }

    /// The provider is not answering some of this model's requests: how many are held, since
    /// when, the last failure and the next probe. None while it answers.
    pub fn outage(&self) -> Option<Outage> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let oldest = held.values().min_by_key(|h| h.since_ms)?;
        let latest = held.values().max_by_key(|h| h.next_try)?;
        let next = held.values().map(|h| h.next_try).min().unwrap_or(now);
        Some(Outage {
            model: self.name.clone(),
            error: latest.error.clone(),
            since_ms: oldest.since_ms,
            next_try_secs: next.saturating_duration_since(now).as_secs_f64(),
            requests: held.len(),
        })
    }

    /// Probes every held request now instead of at its next try.
    pub fn retry_now(&self) {
        self.wake.notify_waiters();
    }
}

//! A model's counters: calls, cache hits, in flight, failures, tokens and spend.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of one model's (or all models') counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    /// HTTP requests made (every attempt, retries included).
    pub calls: u64,
    /// Replies served from the cache.
    pub cache_hits: u64,
    /// Calls holding a concurrency permit right now.
    pub in_flight: u64,
    /// `chat` calls that ended in an error.
    pub failures: u64,
    /// Attempts that were retries of a failed attempt.
    pub retries: u64,
    /// Requests that waited for a rate limit, and those waiting now.
    #[serde(default)]
    pub rate_limited: u64,
    #[serde(default)]
    pub waiting_on_limit: u64,
    /// Tokens of paid (non-cached) replies.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// USD of paid (non-cached) replies.
    pub cost_usd: f64,
    /// USD the cached replies cost when they were first paid for.
    pub cost_usd_replayed: f64,
}

impl std::ops::AddAssign for ModelStats {
    fn add_assign(&mut self, o: Self) {
        self.calls += o.calls;
        self.cache_hits += o.cache_hits;
        self.in_flight += o.in_flight;
        self.failures += o.failures;
        self.retries += o.retries;
        self.rate_limited += o.rate_limited;
        self.waiting_on_limit += o.waiting_on_limit;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cost_usd += o.cost_usd;
        self.cost_usd_replayed += o.cost_usd_replayed;
    }
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) calls: AtomicU64,
    pub(super) cache_hits: AtomicU64,
    pub(super) in_flight: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) paid_input: AtomicU64,
    pub(super) paid_output: AtomicU64,
    pub(super) replayed_input: AtomicU64,
    pub(super) replayed_output: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts a call as in flight for as long as it holds its permit, even if it is cancelled.
pub(super) struct CallInFlight<'a>(&'a AtomicU64);

impl<'a> CallInFlight<'a> {
    pub(super) fn enter(counter: &'a AtomicU64) -> Self {
        bump(counter);
        Self(counter)
    }
}

impl Drop for CallInFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

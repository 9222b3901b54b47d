//! A model's rate limits: `requests_per_minute` spaces requests a minute / rpm apart,
//! `tokens_per_minute` holds over a sliding minute, and the provider's own word
//! (`x-ratelimit-remaining-*` at 0 until `x-ratelimit-reset-*`) holds every request.
//!
//! Written on tokio's clock rather than taken from a crate (`governor` keeps a GCRA over
//! `quanta`'s clock, which tokio's paused test clock cannot drive, and counts cells, not tokens
//! known only after the reply): a sliding window of what was sent is a few lines, exact over any
//! window, and testable in virtual time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);

/// One request in the window: when it was sent and its tokens (estimated until the reply says).
struct Sent {
    at: Instant,
    tokens: u64,
}

#[derive(Default)]
struct Window {
    sent: VecDeque<Sent>,
    next_id: u64,
    ids: VecDeque<u64>,
    /// The provider said to send nothing before this.
    blocked_until: Option<Instant>,
    /// With `requests_per_minute`, the earliest the next request may go: requests are spaced a
    /// minute / rpm apart (no bursts a provider's per-second limits would refuse).
    next_request: Option<Instant>,
}

/// The limits of one model; `None` for a limit means none.
pub struct RateLimiter {
    rpm: Option<u32>,
    tpm: Option<u64>,
    window: Mutex<Window>,
    /// Requests that had to wait for a limit, and those waiting now.
    pub waited: AtomicU64,
    pub waiting: AtomicU64,
}

/// A slot taken in the window; `settle` puts the real token count in place of the estimate.
pub struct Slot<'a> {
    limiter: &'a RateLimiter,
    id: u64,
}

impl Slot<'_> {
    pub fn settle(&self, tokens: u64) {
        let mut w = self.limiter.window.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = w.ids.iter().position(|&id| id == self.id) {
            w.sent[i].tokens = tokens;
        }
    }
}

impl RateLimiter {
    /// Limits of `rpm` requests and `tpm` tokens a minute (None: no limit of that kind); the
    /// provider's "0 remaining" holds either way.
    pub fn new(rpm: Option<u32>, tpm: Option<u64>) -> RateLimiter {
        RateLimiter { rpm, tpm, window: Mutex::default(), waited: AtomicU64::new(0), waiting: AtomicU64::new(0) }
    }

    /// Waits until a request of about `tokens` tokens may be sent, and counts it as sent.
    pub async fn acquire(&self, tokens: u64) -> Slot<'_> {
        let mut counted = false;
        loop {
            let wait = {
                let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                while w.sent.front().is_some_and(|s| now.duration_since(s.at) >= WINDOW) {
                    w.sent.pop_front();
                    w.ids.pop_front();
                }
                match self.wait_for(&w, now, tokens) {
                    None => {
                        let id = w.next_id;
                        w.next_id += 1;
                        w.sent.push_back(Sent { at: now, tokens });
                        w.ids.push_back(id);
                        if let Some(rpm) = self.rpm {
                            w.next_request = Some(now + WINDOW / rpm.max(1));
                        }
                        if counted {
                            self.waiting.fetch_sub(1, Ordering::Relaxed);
                        }
                        return Slot { limiter: self, id };
                    }
                    Some(wait) => wait,
                }
            };
            if !counted {
                counted = true;
                self.waited.fetch_add(1, Ordering::Relaxed);
                self.waiting.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// How long until a request of `tokens` fits, or None if it fits now.
    fn wait_for(&self, w: &Window, now: Instant, tokens: u64) -> Option<Duration> {
        if let Some(until) = w.blocked_until.filter(|u| *u > now) {
            return Some(until - now);
        }
        let expires = |s: &Sent| (s.at + WINDOW).saturating_duration_since(now);
        if let Some(next) = w.next_request.filter(|t| *t > now) {
            return Some(next - now);
        }
        if let Some(tpm) = self.tpm {
            let used: u64 = w.sent.iter().map(|s| s.tokens).sum();
            // A request larger than the whole limit still goes, alone in its window.
            if used + tokens > tpm && !w.sent.is_empty() {
                let mut left = used;
                for s in &w.sent {
                    left -= s.tokens;
                    if left + tokens <= tpm {
                        return Some(expires(s));
                    }
                }
                return w.sent.back().map(expires);
            }
        }
        None
    }

    /// The provider says nothing more may be sent for `wait` (its remaining count reached 0).
    pub fn block_for(&self, wait: Duration) {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let until = Instant::now() + wait;
        if w.blocked_until.is_none_or(|u| u < until) {
            w.blocked_until = Some(until);
        }
    }
}

/// A rough token count of a request for the tokens-per-minute limit before its reply tells the
/// real one: four characters a token, plus the output limit.
pub fn estimate_tokens(chars: usize, max_tokens: Option<u32>) -> u64 {
    (chars as u64).div_ceil(4) + u64::from(max_tokens.unwrap_or(0))
}

/// Parses OpenAI's reset durations: `1s`, `6m0s`, `20ms`, `0.5s`, `1h2m3s`.
pub fn parse_reset(value: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = value.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += n * unit;
        any = true;
    }
    if !num.is_empty() {
        // A bare number is seconds.
        total += num.parse::<f64>().ok()?;
        any = true;
    }
    any.then(|| Duration::try_from_secs_f64(total).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_durations_as_openai_writes_them() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_reset("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_reset("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_reset("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_reset("soon"), None);
        assert_eq!(parse_reset(""), None);
    }

    /// 120 requests at 60 a minute take two (virtual) minutes, one a second, and no 60-second
    /// window ever holds more than 60 of them.
    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_hold_in_every_window() {
        let limiter = std::sync::Arc::new(RateLimiter::new(Some(60), None));
        let start = Instant::now();
        let tasks: Vec<_> = (0..120)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    l.acquire(1).await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap().duration_since(start));
        }
        times.sort();
        let last = *times.last().unwrap();
        assert_eq!(last, Duration::from_secs(119), "the 120th request goes at the start of the 120th second");
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u < *t + WINDOW).count();
            assert!(in_window <= 60, "{in_window} requests within a minute of {t:?}");
        }
        assert_eq!(limiter.waited.load(Ordering::Relaxed), 119);
        assert_eq!(limiter.waiting.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_per_minute_count_the_settled_tokens() {
        let limiter = RateLimiter::new(None, Some(1000));
        let start = Instant::now();
        let slot = limiter.acquire(900).await;
        // The reply used far fewer tokens than estimated: the next fits at once.
        slot.settle(100);
        limiter.acquire(800).await;
        assert_eq!(Instant::now(), start);
        // This one does not fit until the first two leave the window.
        limiter.acquire(500).await;
        assert_eq!(Instant::now().duration_since(start), WINDOW);
        // Larger than the limit: it goes alone once the window is empty.
        limiter.acquire(5000).await;
        assert_eq!(Instant::now().duration_since(start), 2 * WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn the_provider_s_zero_remaining_holds_the_next_request() {
        let limiter = RateLimiter::new(None, None);
        let start = Instant::now();
        limiter.block_for(Duration::from_secs(6));
        limiter.acquire(1).await;
        assert_eq!(Instant::now().duration_since(start), Duration::from_secs(6));
    }
}

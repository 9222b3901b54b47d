//! Which failures are worth another attempt, and how long to wait before it.
//!
//! Classification is shared by every provider: 408, 429 and 5xx, timeouts, dropped connections and
//! malformed bodies are retryable; any other 4xx is fatal. Waits use exponential backoff with full
//! jitter, or the server's `Retry-After` when it sends one.

use super::{AttemptError, FatalKind};
use rand::RngExt;
use reqwest::header::HeaderMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

/// How many characters of a server's error body an error message quotes.
const SNIPPET_CHARS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first (`ModelConfig.max_retries`).
    pub max_retries: u32,
    /// The first backoff ceiling; doubles each retry. Tests set it tiny.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
    /// A server's `Retry-After` is obeyed up to this long.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(500);
    /// The longest wait between two probes of a model that is not answering.
    pub const MAX_PROBE_DELAY: Duration = Duration::from_secs(60);

    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base_delay: Self::DEFAULT_BASE_DELAY,
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }

    /// The ceiling of the wait before retry number `retry` (0-based): `base * 2^retry`, capped.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before probe number `probe` (0-based) of a model that is not answering, after its
    /// retries are used up: the server's `Retry-After` if given (capped), else between half and
    /// all of `base * 2^(max_retries + probe)`, capped at `MAX_PROBE_DELAY`.
    pub fn probe_delay(&self, probe: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_retry_after);
        }
        let factor = 2u32.saturating_pow(self.max_retries.saturating_add(probe).min(31));
        let ceiling = self.base_delay.saturating_mul(factor).min(Self::MAX_PROBE_DELAY);
        ceiling.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// The wait before retry number `retry`: the server's `Retry-After` if given (capped), else a
    /// uniformly random time up to the backoff ceiling ("full jitter").
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_retry_after);
        }
        let ceiling = self.backoff_ceiling(retry);
        // rand::rng, not the run's seeded RNG: jitter changes timing only, never the optimizer's draws.
        ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

/// The last error of a retry loop and how many attempts were made.
#[derive(Debug, Clone)]
pub struct GaveUp {
    pub attempts: u32,
    pub error: AttemptError,
}

/// Runs `attempt` until it succeeds, fails fatally, or `policy.max_retries` retries are used up.
pub async fn with_retries<T, F, Fut>(policy: &RetryPolicy, mut attempt: F) -> Result<T, GaveUp>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match attempt(attempts).await {
            Ok(value) => return Ok(value),
            // Nothing listens: the caller decides whether to wait (see `Model::chat`).
            Err(
                error
                @ (AttemptError::Fatal { .. } | AttemptError::Outage { .. } | AttemptError::NothingListens { .. }),
            ) => return Err(GaveUp { attempts, error }),
            Err(error @ AttemptError::Retryable { .. }) => {
                let retry = attempts - 1;
                if retry >= policy.max_retries {
                    return Err(GaveUp { attempts, error });
                }
                let AttemptError::Retryable { retry_after, .. } = &error else {
                    unreachable!("matched Retryable above")
                };
                let wait = policy.delay(retry, *retry_after);
                tracing::info!(attempt = attempts, ?wait, %error, "retrying model call");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Classifies a non-success HTTP status. `body` is the server's reply; `secret` (the API key, if
/// any) is scrubbed from the quoted snippet in case a server echoes it back.
pub fn classify_status(status: u16, headers: &HeaderMap, body: &str, secret: Option<&str>) -> AttemptError {
    let snippet = body_snippet(body, secret);
    let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    let mut message = format!("HTTP {status} {reason}").trim_end().to_string();
    if status == 404 {
        message.push_str(" (check base_url and the model id)");
    }
    if !snippet.is_empty() {
        message.push_str(": ");
        message.push_str(&snippet);
    }
    let kind = fatal_kind(status, body);
    let retryable = kind != FatalKind::Billing && (status == 408 || status == 429 || (500..=599).contains(&status));
    if retryable {
        AttemptError::Retryable { message, retry_after: retry_after(headers, SystemTime::now()) }
    } else {
        AttemptError::Fatal { status: Some(status), kind, message }
    }
}

/// What an error reply no retry can fix means, from its status and the provider's own words:
/// an exhausted quota or credit (OpenAI's `insufficient_quota` 429, Anthropic's "credit balance is
/// too low" 400, 402 Payment Required), a refused key, an unknown model or URL, a request too
/// large for the model or refused by a content filter (that request's fault, not the run's), or
/// any other invalid request.
pub fn fatal_kind(status: u16, body: &str) -> FatalKind {
    let text = body.to_lowercase();
    let says = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if status == 402
        || says(&[
            "insufficient_quota",
            "exceeded your current quota",
            "credit balance",
            "insufficient credits",
            "insufficient_credits",
            "billing",
            "out of credits",
        ])
    {
        return FatalKind::Billing;
    }
    match status {
        401 | 403 => FatalKind::Auth,
        404 => FatalKind::NotFound,
        413 => FatalKind::ThisRequest,
        _ if says(&[
            "context_length_exceeded",
            "maximum context length",
            "context length",
            "context window",
            "context too long",
            "prompt is too long",
            "too many tokens",
            "content_filter",
            "content management policy",
            "content_policy",
        ]) =>
        {
            FatalKind::ThisRequest
        }
        _ => FatalKind::BadRequest,
    }
}

/// Classifies a failure to send the request or read the reply. Only an unusable request (a bad
/// URL) is fatal; timeouts, refused and dropped connections are retried.
pub fn classify_transport(err: &reqwest::Error) -> AttemptError {
    let what = if err.is_timeout() {
        "request timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "connection dropped while reading the reply"
    } else {
        "request failed"
    };
    // The error chain names the URL and the cause, never the request headers (where the key is).
    let mut message = format!("{what}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    if err.is_builder() {
        AttemptError::Fatal { status: None, kind: FatalKind::BadRequest, message }
    } else if err.is_connect() && refused(err) {
        AttemptError::NothingListens { message: "connection refused".into() }
    } else {
        AttemptError::Retryable { message, retry_after: None }
    }
}

/// Whether the innermost cause of a transport error is a refused connection (nothing listens at
/// the address).
fn refused(err: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

impl AttemptError {
    /// A refused connection as the outage wait sees it: one more failure worth probing again.
    pub fn waitable(self) -> AttemptError {
        match self {
            AttemptError::NothingListens { message } => AttemptError::Retryable { message, retry_after: None },
            other => other,
        }
    }
}

/// A reply that arrived whole but cannot be used (cut JSON, wrong shape, no choices).
pub fn malformed(what: &str, body: &str, secret: Option<&str>) -> AttemptError {
    AttemptError::Retryable {
        message: format!("malformed reply ({what}): {}", body_snippet(body, secret)),
        retry_after: None,
    }
}

/// The wait the server asks for: `retry-after-ms` (OpenAI), else `Retry-After` in seconds or as an
/// HTTP date. A date in the past means "now".
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if let Ok(wait) = Duration::try_from_secs_f64(ms / 1000.0) {
            return Some(wait);
        }
    }
    parse_retry_after(header("retry-after")?, now)
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A short, printable, one-line excerpt of a server's reply for error messages.
pub fn body_snippet(body: &str, secret: Option<&str>) -> String {
    let mut text = crate::text::sanitize(body);
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::text::truncate_chars(&one_line, SNIPPET_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::http::tests::headers;

    #[test]
    fn retry_after_in_seconds_and_as_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        let h = headers(&[("retry-after-ms", "250"), ("retry-after", "9")]);
        assert_eq!(retry_after(&h, SystemTime::now()), Some(Duration::from_millis(250)));
    }

    #[test]
    fn statuses_are_classified() {
        let none = HeaderMap::new();
        for status in [408, 429, 500, 502, 503, 529] {
            assert!(
                matches!(classify_status(status, &none, "", None), AttemptError::Retryable { .. }),
                "{status} should be retryable"
            );
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(
                matches!(
                    classify_status(status, &none, "", None),
                    AttemptError::Fatal { status: Some(s), .. } if s == status
                ),
                "{status} should be fatal"
            );
        }
        let h = headers(&[("retry-after", "2")]);
        let AttemptError::Retryable { retry_after, .. } = classify_status(429, &h, "", None) else {
            panic!("429 is retryable")
        };
        assert_eq!(retry_after, Some(Duration::from_secs(2)));
    }

    #[test]
    fn billing_errors_are_not_retried_and_request_specific_refusals_are_told_apart() {
        let none = HeaderMap::new();
        let openai_quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        let anthropic_credit = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#;
        for (status, body) in [(429, openai_quota), (400, anthropic_credit), (402, "")] {
            assert!(
                matches!(
                    classify_status(status, &none, body, None),
                    AttemptError::Fatal { kind: FatalKind::Billing, .. }
                ),
                "{status} {body}"
            );
        }
        // A plain 429 is still a rate limit, worth waiting for.
        let rate =
            r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert!(matches!(classify_status(429, &none, rate, None), AttemptError::Retryable { .. }));
        let too_long = r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","code":"context_length_exceeded"}}"#;
        assert_eq!(fatal_kind(400, too_long), FatalKind::ThisRequest);
        assert_eq!(
            fatal_kind(400, r#"{"error":{"message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#),
            FatalKind::ThisRequest
        );
        assert_eq!(
            fatal_kind(400, r#"{"error":{"message":"Unsupported parameter: 'max_tokens'"}}"#),
            FatalKind::BadRequest
        );
        assert_eq!(fatal_kind(401, ""), FatalKind::Auth);
        assert_eq!(fatal_kind(404, r#"{"error":"model 'x' not found"}"#), FatalKind::NotFound);
    }

    #[test]
    fn snippet_is_short_printable_and_never_holds_the_key() {
        let body = format!("{{\"error\":\"bad key sk-secret-123\"}}\u{1b}[31m\n\n{}", "x".repeat(1000));
        let s = body_snippet(&body, Some("sk-secret-123"));
        assert!(!s.contains("sk-secret-123"));
        assert!(s.contains("[redacted]"));
        assert!(!s.contains('\u{1b}') && !s.contains('\n'));
        assert!(s.chars().count() <= SNIPPET_CHARS);
    }

    #[test]
    fn backoff_grows_then_caps_and_obeys_retry_after() {
        let p = RetryPolicy::new(5);
        assert_eq!(p.backoff_ceiling(0), Duration::from_millis(500));
        assert_eq!(p.backoff_ceiling(3), Duration::from_secs(4));
        assert_eq!(p.backoff_ceiling(40), Duration::from_secs(30));
        for retry in 0..10 {
            assert!(p.delay(retry, None) <= p.backoff_ceiling(retry));
        }
        assert_eq!(p.delay(0, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.delay(0, Some(Duration::from_secs(600))), Duration::from_secs(60));
        // Probes of a model that is down start where the retries stopped and cap at a minute.
        for probe in 0..10 {
            let d = p.probe_delay(probe, None);
            let ceiling = p.base_delay.saturating_mul(1 << (5 + probe).min(20)).min(RetryPolicy::MAX_PROBE_DELAY);
            assert!(d <= ceiling && d >= ceiling / 2, "probe {probe}: {d:?}");
        }
        assert_eq!(p.probe_delay(3, Some(Duration::from_secs(5))), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn gives_up_after_max_retries_and_stops_at_fatal() {
        let policy = RetryPolicy { base_delay: Duration::from_micros(1), ..RetryPolicy::new(2) };
        let mut seen = 0;
        let out: Result<(), _> = with_retries(&policy, |_| {
            seen += 1;
            async { Err(AttemptError::Retryable { message: "busy".into(), retry_after: None }) }
        })
        .await;
        assert_eq!(out.unwrap_err().attempts, 3);
        assert_eq!(seen, 3);

        let mut seen = 0;
        let out: Result<(), _> = with_retries(&policy, |_| {
            seen += 1;
            async { Err(AttemptError::Fatal { status: Some(400), kind: FatalKind::BadRequest, message: "bad".into() }) }
        })
        .await;
        assert_eq!(out.unwrap_err().attempts, 1);
        assert_eq!(seen, 1);
    }
}

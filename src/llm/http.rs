//! The HTTP plumbing both providers share: one client per model, one POST per attempt.

use super::retry::{classify_status, classify_transport};
use super::{AttemptError, LlmError, RawReply};
use crate::llm::settings::{ModelConfig, ProviderKind};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// A rustls client with the model's connect and whole-request timeouts. It trusts the Mozilla root
/// certificates built into the binary, not the system's store, so it works the same on a machine
/// with no CA bundle installed.
pub(crate) fn build_client(config: &ModelConfig) -> Result<reqwest::Client, String> {
    let connect = seconds("connect_timeout_secs", config.connect_timeout_secs)?;
    let request = seconds("request_timeout_secs", config.request_timeout_secs)?;
    client_with_timeouts(connect, request)
}

/// The same client for any other server gepa-tui talks to (an MLflow tracking server).
pub(crate) fn client_with_timeouts(connect: Duration, request: Duration) -> Result<reqwest::Client, String> {
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("could not set up the HTTP client: {e}"))?;
    reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only(roots)
        .connect_timeout(connect)
        .timeout(request)
        .user_agent(concat!("gepa-tui/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("could not set up the HTTP client: {e}"))
}

fn seconds(key: &str, value: f64) -> Result<Duration, String> {
    match Duration::try_from_secs_f64(value) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("{key} must be a positive number of seconds, not {value}")),
    }
}

/// Where a model's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL each request is posted to.
    pub url: String,
    /// The API root it is under (`…/v1`): what identifies the server in the response cache.
    pub base: String,
    /// Where the base URL came from: `base_url`, an environment variable, or the default.
    pub source: &'static str,
}

/// Resolves a model's endpoint the way the providers' own SDKs take it: `base_url` from gepa.toml,
/// else `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL` from the environment, else the provider's public
/// API. Anthropic's base works with or without `/v1` (its SDKs and `ANTHROPIC_BASE_URL` leave it
/// out). An OpenAI-compatible base with no path at all (`http://localhost:11434`) gets `/v1`;
/// any other path is used as given (OpenRouter's `…/api/v1`), and a base that already ends in
/// `/chat/completions` is the endpoint itself.
pub fn endpoint(config: &ModelConfig) -> Result<Endpoint, String> {
    let (env, default) = match config.provider {
        ProviderKind::Openai => ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
        ProviderKind::Anthropic => ("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    };
    let from_env = || std::env::var(env).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let (raw, source) = match (&config.base_url, from_env()) {
        (Some(b), _) => (b.clone(), "base_url"),
        (None, Some(v)) => (v, env),
        (None, None) => (default.to_string(), "default"),
    };
    let trimmed = raw.trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| {
        let from =
            if source == "base_url" { "base_url".to_string() } else { format!("{source} (from the environment)") };
        format!("{from} `{raw}` is not a valid URL ({e}); e.g. {default}")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{source} `{raw}` must start with http:// or https://"));
    }
    let bare = parsed.path().trim_matches('/').is_empty();
    let base = match config.provider {
        ProviderKind::Anthropic if trimmed.ends_with("/v1") => trimmed.to_string(),
        ProviderKind::Anthropic => format!("{trimmed}/v1"),
        ProviderKind::Openai if trimmed.ends_with("/chat/completions") => {
            trimmed.trim_end_matches("/chat/completions").to_string()
        }
        ProviderKind::Openai if bare => format!("{trimmed}/v1"),
        ProviderKind::Openai => trimmed.to_string(),
    };
    let path = match config.provider {
        ProviderKind::Openai => "chat/completions",
        ProviderKind::Anthropic => "messages",
    };
    Ok(Endpoint { url: format!("{base}/{path}"), base, source })
}

/// The environment variable's value, when it is set and not empty.
fn read_key(env: &str) -> Option<String> {
    std::env::var(env).ok().filter(|k| !k.trim().is_empty())
}

/// A header carrying a secret: marked sensitive so it never shows in Debug output.
fn secret_header(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), String> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| "the API key holds characters not allowed in an HTTP header".to_string())?;
    value.set_sensitive(true);
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// What a provider's backend posts with, built the same way for every provider: the client, the
/// URL, the headers (the key's header among them, marked secret), the key itself (kept only to
/// scrub it from quoted error bodies) and the config's extra body params.
pub(crate) struct Conn {
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    key: Option<String>,
    params: Option<serde_json::Map<String, serde_json::Value>>,
    /// `max_reply_bytes`: a longer reply body is refused while it is read.
    max_reply_bytes: u64,
}

/// How a reply body of a 2xx answer is read (each provider's `parse_reply`).
pub(crate) type ParseReply = fn(&str, Option<&str>) -> Result<RawReply, AttemptError>;

impl Conn {
    /// Reads the key from `api_key_env` (else `default_env`) now. A missing or empty variable
    /// sends no key header (local servers need none; a hosted one answers 401, which names the
    /// variable). `key_header` gives the header that carries the key and its value.
    pub(crate) fn open(
        config: &ModelConfig,
        default_env: &str,
        mut headers: HeaderMap,
        key_header: impl Fn(&str) -> (&'static str, String),
    ) -> Result<Conn, LlmError> {
        let fatal = |message: String| LlmError::Fatal { model: config.model.clone(), message };
        let url = endpoint(config).map_err(fatal)?.url;
        let client = build_client(config).map_err(fatal)?;
        let env = config.api_key_env.as_deref().unwrap_or(default_env);
        let key = read_key(env);
        if let Some(key) = &key {
            let (name, value) = key_header(key);
            secret_header(&mut headers, name, &value).map_err(|m| fatal(format!("{m} (from {env})")))?;
        }
        Ok(Conn { client, url, headers, key, params: config.body_params(), max_reply_bytes: config.max_reply_bytes })
    }

    /// Posts `body`, with the config's `params` laid over it, and reads a 2xx reply with `parse`.
    pub(crate) async fn send(&self, mut body: serde_json::Value, parse: ParseReply) -> Result<RawReply, AttemptError> {
        for (k, v) in self.params.iter().flatten() {
            body[k.as_str()] = v.clone();
        }
        let secret = self.key.as_deref();
        let (text, hold) = post_json(self, &body, secret).await?;
        parse(&text, secret).map(|r| RawReply { hold, text: without_reasoning(r.text, r.truncated), ..r })
    }
}

/// A reasoning model's answer without its thinking: what follows `</think>` when the reply
/// opens with `<think>` (Qwen3, DeepSeek-R1 and QwQ through Ollama or a server without a
/// reasoning parser), or when only the closing tag is there (templates that put the opening one
/// in the prompt). A reply cut off inside its thinking has no answer yet: empty, and `truncated`
/// says why. Servers that return the thinking apart (`reasoning_content`) need none of this.
fn without_reasoning(text: String, truncated: bool) -> String {
    let start = text.trim_start();
    for (open, close) in [("<think>", "</think>"), ("<thinking>", "</thinking>")] {
        let opened = start.starts_with(open);
        match text.find(close) {
            Some(end) if opened || !text[..end].contains(open) => {
                return text[end + close.len()..].trim_start().to_string();
            }
            None if opened && truncated => return String::new(),
            _ => {}
        }
    }
    text
}

/// Sends one JSON POST and returns the body of a 2xx reply; anything else is classified.
async fn post_json(
    conn: &Conn,
    body: &serde_json::Value,
    secret: Option<&str>,
) -> Result<(String, Option<Duration>), AttemptError> {
    let response = conn
        .client
        .post(&conn.url)
        .headers(conn.headers.clone())
        .json(body)
        .send()
        .await
        .map_err(|e| classify_transport(&e))?;
    let status = response.status();
    let reply_headers = response.headers().clone();
    let text = read_body(response, conn.max_reply_bytes).await?;
    if status.is_success() {
        Ok((text, exhausted_until(&reply_headers)))
    } else {
        Err(classify_status(status.as_u16(), &reply_headers, &text, secret))
    }
}

/// The reply body, read piece by piece and refused as soon as it is longer than `limit` bytes
/// (or says it will be), so a server cannot make us hold more than the user allowed. Reading can
/// fail on its own: a dropped connection or the request timeout mid-body.
async fn read_body(response: reqwest::Response, limit: u64) -> Result<String, AttemptError> {
    let too_long = |size: String| AttemptError::Retryable {
        message: format!(
            "the reply is {size}, more than max_reply_bytes = {limit} allows; refused (a runaway model \
             or a broken proxy? raise max_reply_bytes in [models.<name>] if replies this long are expected)"
        ),
        retry_after: None,
    };
    if let Some(announced) = response.content_length().filter(|&n| n > limit) {
        return Err(too_long(format!("{announced} bytes (its Content-Length)")));
    }
    let body = read_capped(response, limit)
        .await
        .map_err(|e| classify_transport(&e))?
        .ok_or_else(|| too_long(format!("over {limit} bytes (stopped reading there)")))?;
    Ok(String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// A reply body read piece by piece, given up (None) as soon as it is longer than `limit` bytes
/// or says it will be, so no server makes us hold more than we allow.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await? {
        if (body.len() + piece.len()) as u64 > limit {
            return Ok(None);
        }
        body.extend_from_slice(&piece);
    }
    Ok(Some(body))
}

/// How long the provider says nothing more may be sent, when a reply says its remaining requests
/// or tokens are 0 (OpenAI's and Anthropic's `…-ratelimit-remaining-*` and `…-reset-*` headers).
pub(crate) fn exhausted_until(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let mut hold: Option<Duration> = None;
    for (remaining, reset) in [
        ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
        ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
        ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"),
        ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"),
    ] {
        if header(remaining).and_then(|v| v.parse::<u64>().ok()) != Some(0) {
            continue;
        }
        let Some(value) = header(reset) else { continue };
        // OpenAI writes a duration (`6m0s`); Anthropic an RFC 3339 time, read as "a minute at most".
        let wait = super::limit::parse_reset(value).unwrap_or(Duration::from_secs(60));
        hold = Some(hold.map_or(wait, |h| h.max(wait)));
    }
    hold
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_reasoning_model_s_thinking_is_not_its_answer() {
        let answer = |t: &str, cut: bool| without_reasoning(t.to_string(), cut);
        assert_eq!(answer("<think>\nThe user wants JSON.\n</think>\n\n{\"a\": 1}", false), "{\"a\": 1}");
        assert_eq!(answer("  <thinking>hmm</thinking>Paris", false), "Paris");
        // The template opened the thinking in the prompt: only the closing tag is in the reply.
        assert_eq!(answer("so the team is billing.\n</think>\nbilling", false), "billing");
        // Cut off while thinking: no answer yet.
        assert_eq!(answer("<think>first, the rules", true), "");
        // Replies without thinking, or that only mention the tags, are left alone.
        assert_eq!(answer("Reply with JSON only.", false), "Reply with JSON only.");
        assert_eq!(answer("Use <think> tags? No.", false), "Use <think> tags? No.");
        assert_eq!(answer("<think>never closed", false), "<think>never closed");
    }

    /// A reply's headers from (name, value) pairs.
    pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    /// OpenAI's reset is a duration and is held for; Anthropic's is a time, held for a minute.
    fn zero_remaining_holds_until_openai_s_reset_or_a_minute_for_anthropic_s_reset_time() {
        let h = headers(&[("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "6m0s")]);
        assert_eq!(exhausted_until(&h), Some(Duration::from_secs(360)));
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "12"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "250ms"),
        ]);
        assert_eq!(exhausted_until(&h), Some(Duration::from_millis(250)));
        let h = headers(&[("x-ratelimit-remaining-requests", "3"), ("x-ratelimit-reset-requests", "1s")]);
        assert_eq!(exhausted_until(&h), None);
        let h = headers(&[
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2026-12-02T00:00:30Z"),
        ]);
        assert_eq!(exhausted_until(&h), Some(Duration::from_secs(60)));
    }

    fn config(toml_text: &str) -> ModelConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn endpoints_as_each_ecosystem_writes_base_urls() {
        let url = |t: &str| endpoint(&config(t)).unwrap().url;
        let oa = "provider = \"openai\"\nmodel = \"m\"\n";
        assert_eq!(
            url(&format!("{oa}base_url = \"http://localhost:11434\"")),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(
            url(&format!("{oa}base_url = \"http://localhost:11434/v1/\"")),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(
            url(&format!("{oa}base_url = \"https://openrouter.ai/api/v1\"")),
            "https://openrouter.ai/api/v1/chat/completions"
        );
        let an = "provider = \"anthropic\"\nmodel = \"c\"\n";
        assert_eq!(
            url(&format!("{an}base_url = \"https://api.anthropic.com\"")),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            url(&format!("{an}base_url = \"https://api.anthropic.com/v1\"")),
            "https://api.anthropic.com/v1/messages"
        );
        let bad = endpoint(&config(&format!("{oa}base_url = \"localhost:8080\""))).unwrap_err();
        assert!(bad.contains("base_url") && bad.contains("localhost:8080"), "{bad}");
    }
}

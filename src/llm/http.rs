//! The HTTP plumbing both providers share: one client per model, one POST per attempt.

use super::retry::{classify_status, classify_transport};
use super::AttemptError;
use crate::project::config::ModelConfig;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// A rustls client with the model's connect and whole-request timeouts. It trusts the Mozilla root
/// certificates built into the binary, not the system's store, so it works the same on a machine
/// with no CA bundle installed.
pub(crate) fn build_client(config: &ModelConfig) -> Result<reqwest::Client, String> {
    let connect = seconds("connect_timeout_secs", config.connect_timeout_secs)?;
    let request = seconds("request_timeout_secs", config.request_timeout_secs)?;
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

/// `{base_url}/{path}` with exactly one slash between, after checking that base_url is a URL.
pub(crate) fn endpoint(base_url: &str, path: &str) -> Result<String, String> {
    let base = base_url.trim_end_matches('/');
    let url = format!("{base}/{path}");
    reqwest::Url::parse(&url)
        .map_err(|e| format!("base_url `{base_url}` is not a valid URL ({e}); e.g. https://api.openai.com/v1"))?;
    Ok(url)
}

/// The environment variable's value, when it is set and not empty.
pub(crate) fn read_key(env: &str) -> Option<String> {
    std::env::var(env).ok().filter(|k| !k.trim().is_empty())
}

/// A header carrying a secret: marked sensitive so it never shows in Debug output.
pub(crate) fn secret_header(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), String> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| "the API key holds characters not allowed in an HTTP header".to_string())?;
    value.set_sensitive(true);
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// Sends one JSON POST and returns the body of a 2xx reply; anything else is classified.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    body: &serde_json::Value,
    secret: Option<&str>,
) -> Result<String, AttemptError> {
    let response =
        client.post(url).headers(headers.clone()).json(body).send().await.map_err(|e| classify_transport(&e))?;
    let status = response.status();
    let reply_headers = response.headers().clone();
    // Reading the body can fail on its own: a dropped connection or the request timeout mid-body.
    let text = response.text().await.map_err(|e| classify_transport(&e))?;
    if status.is_success() {
        Ok(text)
    } else {
        Err(classify_status(status.as_u16(), &reply_headers, &text, secret))
    }
}

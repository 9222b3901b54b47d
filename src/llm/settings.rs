//! A model's settings, as the model layer needs them: provider, endpoint, limits, prices and
//! request fields. gepa.toml's `[models.<name>]` tables are read straight into this type (the
//! project layer re-exports it), so the model layer depends on nothing above it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible `/chat/completions` server.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub provider: ProviderKind,
    pub model: String,
    /// Default: `https://api.openai.com/v1` or `https://api.anthropic.com/v1`.
    pub base_url: Option<String>,
    /// The environment variable holding the key. Default `OPENAI_API_KEY` / `ANTHROPIC_API_KEY`.
    /// A missing variable is fine for servers that need no key (Ollama, llama.cpp).
    pub api_key_env: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Whether the model samples: then each call is a draw, cached by the request and its place
    /// in the run, so a repeated prompt is asked again. Default: at any temperature but 0 (no
    /// temperature set means the provider's default, which samples). `false` shares replies by
    /// request alone (a server that seeds its sampling); `true` samples at temperature 0 too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<bool>,
    /// USD per million input tokens.
    #[serde(default)]
    pub price_input_per_mtok: f64,
    /// USD per million output tokens.
    #[serde(default)]
    pub price_output_per_mtok: f64,
    /// Calls in flight to this model at most.
    #[serde(default = "default_model_concurrency")]
    pub concurrency: usize,
    /// Seconds to establish a connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: f64,
    /// Seconds for a whole request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: f64,
    /// The largest reply body taken, in bytes (default 16 MiB). A longer one (a runaway model,
    /// a broken proxy) is refused while it is read, as a provider fault, so memory stays bounded
    /// by this times `concurrency` whatever a server sends.
    #[serde(default = "default_max_reply_bytes")]
    pub max_reply_bytes: u64,
    /// Attempts after the first on 429, 5xx, timeouts, dropped connections and malformed bodies.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Seconds: the ceiling of the first retry's random wait, doubling each retry (capped at 30 s).
    /// Default 0.5. A server's `Retry-After` overrides it. Tests and local servers set it small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_base_delay_secs: Option<f64>,
    /// The request field `max_tokens` is sent as (OpenAI's reasoning models take only
    /// `max_completion_tokens`). Default: `max_completion_tokens` for model ids starting with
    /// o1, o3, o4 or gpt-5, else `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_param: Option<TokenParam>,
    /// OpenAI reasoning models: `reasoning_effort` ("minimal", "low", "medium", "high").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// Anthropic: extended thinking with this many tokens of budget (less than max_tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget_tokens: Option<u32>,
    /// At most this many requests in any minute (retries included); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// At most this many tokens (prompt and reply) in any minute; a request is counted at four
    /// characters a token plus max_tokens until its reply gives the real count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Request-body fields sent as given (`top_p`, `seed`, `stop`, `response_format`, …), merged
    /// into every request; part of the cache key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<toml::Table>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenParam {
    MaxTokens,
    MaxCompletionTokens,
}

impl ModelConfig {
    /// Whether a call at `temperature` (None: the model's own) is a draw: any temperature but 0
    /// (none set: the provider's default, which samples), unless `samples` says.
    pub fn samples_at(&self, temperature: Option<f64>) -> bool {
        self.samples.unwrap_or(temperature.or(self.temperature) != Some(0.0))
    }

    /// The field the output limit is sent as (see `token_param`).
    pub fn token_param(&self) -> TokenParam {
        if let Some(p) = self.token_param {
            return p;
        }
        let id = self.model.rsplit('/').next().unwrap_or(&self.model).to_ascii_lowercase();
        let reasoning = ["o1", "o3", "o4", "gpt-5"].iter().any(|p| id.starts_with(p));
        if self.provider == ProviderKind::Openai && reasoning {
            TokenParam::MaxCompletionTokens
        } else {
            TokenParam::MaxTokens
        }
    }

    /// The request-body fields beyond model, messages, temperature and the output limit, as
    /// one JSON object (`reasoning_effort`, `thinking`, then `extra`); None when there are none.
    /// `extra` may not set what gepa.toml's own keys set (`load` says so, naming the field).
    pub fn body_params(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let mut out = serde_json::Map::new();
        if let Some(effort) = &self.reasoning_effort {
            out.insert("reasoning_effort".into(), effort.clone().into());
        }
        if let Some(budget) = self.thinking_budget_tokens {
            out.insert("thinking".into(), serde_json::json!({"type": "enabled", "budget_tokens": budget}));
        }
        for (k, v) in self.extra.iter().flatten() {
            if let Ok(v) = serde_json::to_value(v) {
                out.insert(k.clone(), v);
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

/// Request fields `[models.x.extra]` may not set, and the key that does instead.
pub const RESERVED_BODY_FIELDS: &[(&str, &str)] = &[
    ("model", "model"),
    ("messages", "the prompts (they come from the system and the candidate)"),
    ("system", "the prompts (they come from the system and the candidate)"),
    ("max_tokens", "max_tokens"),
    ("max_completion_tokens", "max_tokens with token_param = \"max_completion_tokens\""),
    ("temperature", "temperature"),
    ("reasoning_effort", "reasoning_effort"),
    ("thinking", "thinking_budget_tokens"),
    ("stream", "nothing: replies are read whole"),
];

fn default_model_concurrency() -> usize {
    32
}
fn default_connect_timeout() -> f64 {
    10.0
}
fn default_request_timeout() -> f64 {
    120.0
}
fn default_retries() -> u32 {
    5
}
pub const DEFAULT_MAX_REPLY_BYTES: u64 = 16 << 20;
fn default_max_reply_bytes() -> u64 {
    DEFAULT_MAX_REPLY_BYTES
}

//! Model providers behind one interface: OpenAI-compatible and Anthropic over HTTP, with retries,
//! a response cache, a per-model concurrency limit, and token/cost accounting.
//!
//! Layering (outside in): `Model::chat` -> cache lookup -> concurrency permit -> retry loop ->
//! `ChatBackend::send` (one HTTP request). Tests plug a scripted backend in at the bottom, so the
//! cache, limits and accounting are exercised exactly as in production.

pub mod anthropic;
pub mod cache;
pub mod draw;
pub mod http;
pub mod limit;
pub mod model;
pub mod openai;
pub mod retry;
pub mod scripted;
pub mod settings;
pub mod usage;

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(s: impl Into<String>) -> Self {
        Self { role: Role::System, content: s.into() }
    }
    pub fn user(s: impl Into<String>) -> Self {
        Self { role: Role::User, content: s.into() }
    }
    pub fn assistant(s: impl Into<String>) -> Self {
        Self { role: Role::Assistant, content: s.into() }
    }
}

/// What the caller asks for. Model name, base URL, temperature and max_tokens come from the
/// model's config unless the request overrides them for this one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// This call's temperature instead of the model's (e.g. one re-ask at a higher temperature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// This call's output limit instead of the model's `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Where the call sits in a run. For a model that samples, the cache keys the reply on it
    /// too, so the same request at another place is a new draw and at the same place (a resume,
    /// a replay) the recorded one. See `draw::Draw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draw: Option<Draw>,
}

impl ChatRequest {
    pub fn new(messages: Vec<Message>) -> Self {
        Self { messages, ..Default::default() }
    }

    /// At this temperature instead of the model's.
    pub fn at_temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// With this output limit instead of the model's.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// As the draw at `draw` (None: no place; a sampling model then answers afresh, uncached).
    pub fn drawn(mut self, draw: Option<Draw>) -> Self {
        self.draw = draw;
        self
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// One model answer as the backend produced it (also what the cache stores).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawReply {
    pub text: String,
    /// The provider stopped at max_tokens (`finish_reason: "length"` / `stop_reason: "max_tokens"`).
    pub truncated: bool,
    pub usage: Usage,
    /// The provider said its remaining requests or tokens are 0 until this long from now
    /// (`x-ratelimit-remaining-*`, `x-ratelimit-reset-*`): not stored in the cache.
    #[serde(skip)]
    pub hold: Option<std::time::Duration>,
}

/// A model answer with accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatReply {
    pub text: String,
    pub truncated: bool,
    pub usage: Usage,
    /// Priced from the config, whether or not the reply came from the cache (deterministic accounting).
    pub cost_usd: f64,
    /// Served from `.gepa/cache/` (nothing was paid for it this time).
    pub cached: bool,
}

/// One failed HTTP attempt, classified for the retry loop.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttemptError {
    /// 429, 5xx, timeouts, dropped connections, malformed or wrong-shaped bodies: worth retrying.
    #[error("{message}")]
    Retryable { message: String, retry_after: Option<std::time::Duration> },
    /// 400/401/403/404, an exhausted quota and the like: retrying cannot help.
    #[error("{message}")]
    Fatal { status: Option<u16>, kind: FatalKind, message: String },
    /// Nothing listens at the server's address (the connection was refused): retried at once
    /// only where that server answered before in this run (see `Model::chat`).
    #[error("{message}")]
    NothingListens { message: String },
    /// The provider kept failing past the outage ceiling (only `Model::wait_out` makes it).
    #[error("no answer for {waited_secs:.0} s: {last}")]
    Outage { waited_secs: f64, last: String },
}

/// Why retrying cannot help (`retry::fatal_kind` reads it from the reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatalKind {
    /// 401/403: the key is missing, wrong or revoked.
    Auth,
    /// The account is out of quota or credit.
    Billing,
    /// 404: no such model or endpoint.
    NotFound,
    /// The request cannot be sent as configured (a bad parameter, an unusable URL).
    BadRequest,
    /// This request alone is refused (too long for the model, a content filter): the candidate's
    /// fault, scored as a failed evaluation.
    ThisRequest,
}

/// Why a model call failed for good. Messages never contain the API key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("model `{model}`: the server refused the key (HTTP {status}); check the environment variable {env}")]
    Auth { model: String, status: u16, env: String },
    #[error("model `{model}`: {message}")]
    Fatal { model: String, message: String },
    #[error("model `{model}`: the provider refused for billing or quota: {message}; add credit or raise the account's limit with the provider")]
    Billing { model: String, message: String },
    /// This request alone was refused (too long, filtered): scored as a failed evaluation.
    #[error("model `{model}`: the provider refused this request: {message}")]
    Rejected { model: String, message: String },
    #[error("model `{model}`: gave up after {attempts} attempts: {last}")]
    Exhausted { model: String, attempts: u32, last: String },
    #[error(
        "model `{model}`: no answer for {waited_secs:.0} s, longer than [optimizer] max_outage_secs allows: {last}"
    )]
    Outage { model: String, waited_secs: f64, last: String },
    #[error(
        "model `{model}`: no cached reply for this request and --offline is set (the recorded run does not cover it){}",
        if *draw { "; the model samples, so its replies are recorded by their place in a run: replay one with gepa-tui run --replay RUN" } else { "" }
    )]
    OfflineMiss {
        model: String,
        /// The model samples: its replies are kept per draw (see `draw`), not per request.
        draw: bool,
    },
    #[error("model `{model}` is not defined in [models]")]
    UnknownModel { model: String },
    #[error(
        "model `{model}`: nothing listens at {url} (connection refused), and nothing has answered there in this run. \
         Start the server, e.g. `ollama serve` (Ollama; base_url = \"http://localhost:11434/v1\") or \
         `llama-server -m MODEL.gguf --port 8080` (llama.cpp; base_url = \"http://127.0.0.1:8080/v1\"), or fix base_url; \
         to wait for it instead, pass --wait"
    )]
    NothingListens { model: String, url: String },
}

impl LlmError {
    /// Whether the run must stop (resumably) rather than score the evaluation that hit it: every
    /// failure of the provider is not a property of the candidate; only a refusal of this one
    /// request is.
    pub fn stops_run(&self) -> bool {
        !matches!(self, LlmError::Rejected { .. })
    }
}

/// Sends one request; one implementation per provider (and the scripted one for tests).
pub trait ChatBackend: Send + Sync {
    fn send<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<RawReply, AttemptError>>;
}

pub use anthropic::AnthropicBackend;
pub use draw::Draw;
pub use model::{BackendFactory, Model, ModelStats, Models, ModelsOptions, Outage};
pub use openai::OpenAiBackend;
pub use scripted::ScriptedBackend;

//! The models of a project, ready to call: `Model::chat` = cache lookup -> concurrency permit ->
//! retry loop -> one backend request, with token and cost accounting on the way out.

mod outage;
mod registry;
mod stats;

use outage::HeldRequest;
use stats::{bump, CallInFlight, Counters};

pub use outage::{short_reason, Outage};
pub use registry::{AnsweredServers, BackendFactory, Models, ModelsOptions};
pub use stats::ModelStats;

use super::anthropic;
use super::cache::{CacheKey, RequestIdentity, ResponseCache};
use super::limit::RateLimiter;
use super::openai;
use super::retry::{with_retries, GaveUp, RetryPolicy};
use super::usage::cost_usd;
use super::{AttemptError, ChatBackend, ChatReply, ChatRequest, FatalKind, LlmError, RawReply, Usage};
use crate::llm::settings::{ModelConfig, ProviderKind};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedMutexGuard, Semaphore};

type Gates = Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>;

/// The right to make the one call for a request key; identical requests wait for it.
struct Turn {
    gates: Arc<Gates>,
    key: CacheKey,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let guard = self.guard.take().expect("a turn holds its guard until dropped");
        let gate = Arc::clone(OwnedMutexGuard::mutex(&guard));
        drop(guard);
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        // Clones are only taken under this lock: the map's and ours mean nobody else is waiting.
        if Arc::strong_count(&gate) == 2 {
            gates.remove(&self.key);
        }
    }
}

/// One configured model: its backend plus cache, concurrency limit, retries and counters.
pub struct Model {
    name: String,
    /// `name (model id)`, as errors show it.
    label: String,
    config: ModelConfig,
    key_env: String,
    provider: &'static str,
    base_url: String,
    /// What the provider is actually sent (Anthropic always sends one), for the cache key.
    sent_max_tokens: Option<u32>,
    /// The further request fields (`ModelConfig::body_params`), for the cache key.
    params: Option<serde_json::Map<String, serde_json::Value>>,
    backend: Arc<dyn ChatBackend>,
    cache: Option<ResponseCache>,
    offline: bool,
    permits: Semaphore,
    retry: RetryPolicy,
    counters: Counters,
    gates: Arc<Gates>,
    max_outage: Option<Duration>,
    /// `requests_per_minute` / `tokens_per_minute`, and the provider's own "0 remaining".
    limiter: RateLimiter,
    /// Requests held while the provider is not answering, by a private id.
    held: Mutex<BTreeMap<u64, HeldRequest>>,
    next_held: AtomicU64,
    /// Wakes held requests for an early probe ("retry now").
    wake: tokio::sync::Notify,
    /// The provider refused the key or the account (no credit, no quota): every later request
    /// would be refused the same way, so none is sent; each gets this error.
    refused: Mutex<Option<LlmError>>,
    wait_for_servers: bool,
    answered: AnsweredServers,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("offline", &self.offline)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// A model over a given backend (`Models::from_config` picks the HTTP one by provider).
    pub fn new(
        name: &str,
        config: &ModelConfig,
        backend: Arc<dyn ChatBackend>,
        opts: &ModelsOptions,
    ) -> Result<Model, LlmError> {
        let label = format!("{name} ({})", config.model);
        let (provider, default_env, sent_max_tokens) = match config.provider {
            ProviderKind::Openai => ("openai", openai::DEFAULT_KEY_ENV, config.max_tokens),
            ProviderKind::Anthropic => (
                "anthropic",
                anthropic::DEFAULT_KEY_ENV,
                Some(config.max_tokens.unwrap_or(anthropic::DEFAULT_MAX_TOKENS)),
            ),
        };
        // The API root the requests go to (`…/v1`, however base_url spells it), so that two
        // spellings of one server share the cache.
        let base_url = match super::http::endpoint(config) {
            Ok(e) => e.base,
            Err(_) => config.base_url.clone().unwrap_or_default().trim_end_matches('/').to_string(),
        };
        if config.concurrency == 0 {
            return Err(LlmError::Fatal { model: label, message: "concurrency must be at least 1".into() });
        }
        let mut retry = RetryPolicy::new(config.max_retries);
        // gepa.toml's retry_base_delay_secs, unless the caller (a test) overrides it.
        let from_config = config.retry_base_delay_secs.and_then(|s| Duration::try_from_secs_f64(s).ok());
        if let Some(base) = opts.retry_base_delay.or(from_config) {
            retry.base_delay = base;
        }
        Ok(Model {
            name: name.to_string(),
            label,
            key_env: config.api_key_env.clone().unwrap_or_else(|| default_env.to_string()),
            provider,
            base_url,
            sent_max_tokens,
            params: config.body_params(),
            config: config.clone(),
            backend,
            cache: opts.cache_dir.as_ref().map(ResponseCache::new),
            offline: opts.offline,
            permits: Semaphore::new(config.concurrency.min(Semaphore::MAX_PERMITS)),
            retry,
            counters: Counters::default(),
            gates: Arc::default(),
            max_outage: opts.max_outage,
            limiter: RateLimiter::new(config.requests_per_minute, config.tokens_per_minute),
            held: Mutex::default(),
            next_held: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            refused: Mutex::default(),
            wait_for_servers: opts.wait_for_servers,
            answered: opts.answered.clone(),
        })
    }

    /// The model's key in `[models]`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name (model id)`, as error messages show it.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The environment variable the key is read from (for `check` to say which one to set).
    pub fn key_env(&self) -> &str {
        &self.key_env
    }

    pub fn stats(&self) -> ModelStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let paid = Usage { input_tokens: load(&c.paid_input), output_tokens: load(&c.paid_output) };
        let replayed = Usage { input_tokens: load(&c.replayed_input), output_tokens: load(&c.replayed_output) };
        ModelStats {
            calls: load(&c.calls),
            cache_hits: load(&c.cache_hits),
            in_flight: load(&c.in_flight),
            failures: load(&c.failures),
            retries: load(&c.retries),
            rate_limited: load(&self.limiter.waited),
            waiting_on_limit: load(&self.limiter.waiting),
            input_tokens: paid.input_tokens,
            output_tokens: paid.output_tokens,
            cost_usd: cost_usd(paid, &self.config),
            cost_usd_replayed: cost_usd(replayed, &self.config),
        }
    }

    /// Whether `req` is a draw: the model samples at the temperature it is sent with (anything
    /// but 0, or none set: the provider's default samples), unless `samples` in gepa.toml says.
    pub fn samples(&self, req: &ChatRequest) -> bool {
        self.config.samples_at(req.temperature)
    }

    /// The cache key of `req` for this model: the request as sent, and for a draw its place.
    /// None when the cache is off, or for a draw with no place (it cannot be asked again).
    pub fn cache_key(&self, req: &ChatRequest) -> Option<CacheKey> {
        self.cache.as_ref()?;
        let draw = match (self.samples(req), &req.draw) {
            (false, _) => None,
            (true, Some(draw)) => Some(draw.parts()),
            (true, None) => return None,
        };
        Some(CacheKey::of(&RequestIdentity {
            provider: self.provider,
            base_url: &self.base_url,
            model: &self.config.model,
            messages: &req.messages,
            temperature: req.temperature.or(self.config.temperature),
            max_tokens: req.max_tokens.or(self.sent_max_tokens),
            params: self.params.as_ref(),
            draw,
        }))
    }

    /// Asks the model. A cached reply costs no request and no permit; offline, a miss is an error.
    pub async fn chat(&self, req: &ChatRequest) -> Result<ChatReply, LlmError> {
        let key = self.cache_key(req);
        if let Some(reply) = self.replay(key.as_ref()).await {
            return Ok(reply);
        }
        if self.offline {
            return Err(LlmError::OfflineMiss { model: self.label.clone(), draw: self.samples(req) });
        }
        // Identical requests in flight share one paid call: the others wait, then replay it.
        let turn = match &key {
            Some(key) => {
                let turn = self.take_turn(key).await;
                if let Some(reply) = self.replay(Some(key)).await {
                    return Ok(reply);
                }
                Some(turn)
            }
            None => None,
        };

        let first_try = (std::time::Instant::now(), std::time::SystemTime::now());
        let permit = self.permits.acquire().await.expect("the model's semaphore is never closed");
        if let Some(e) = self.refused.lock().expect("refused").clone() {
            return Err(e);
        }
        let in_flight = CallInFlight::enter(&self.counters.in_flight);
        let mut outcome = with_retries(&self.retry, |attempt| {
            if attempt > 1 {
                bump(&self.counters.retries);
            }
            self.send(req)
        })
        .await;
        drop((permit, in_flight));
        if let Err(GaveUp { error: AttemptError::NothingListens { .. }, .. }) = &outcome {
            // The usual first mistake with a local server: it is not started. Said at once,
            // unless this server answered before in the run (then it is an outage: waited out).
            if !self.wait_for_servers && !self.answered.has(&self.base_url) {
                bump(&self.counters.failures);
                return Err(LlmError::NothingListens { model: self.label.clone(), url: self.base_url.clone() });
            }
            outcome = outcome.map_err(|g| GaveUp { attempts: g.attempts, error: g.error.waitable() });
        }
        if let Err(GaveUp { error: AttemptError::Retryable { .. }, .. }) = &outcome {
            if let Some(max) = self.max_outage {
                let Err(gave_up) = outcome else { unreachable!("matched Err above") };
                outcome = self.wait_out(req, gave_up, first_try, max).await;
            }
        }
        match outcome {
            Ok(raw) => {
                // The server answered: what was paid is booked, and the reply's entry started,
                // before any await, so a caller dropped from here on loses neither. The entry is
                // written on a thread of its own, holding the turn, so an identical request
                // waiting for it replays this reply rather than paying for it again.
                let c = &self.counters;
                c.paid_input.fetch_add(raw.usage.input_tokens, Ordering::Relaxed);
                c.paid_output.fetch_add(raw.usage.output_tokens, Ordering::Relaxed);
                if let (Some(cache), Some(key)) = (&self.cache, &key) {
                    let written = cache.start_put(key, &raw, turn).await;
                    if let Err(e) = written.map_err(std::io::Error::other).and_then(|w| w) {
                        tracing::warn!(model = %self.label, error = %e, "could not write the cache entry");
                    }
                }
                Ok(self.reply(raw, false))
            }
            Err(gave_up) => {
                bump(&self.counters.failures);
                let e = self.explain(gave_up);
                if matches!(e, LlmError::Auth { .. } | LlmError::Billing { .. }) {
                    self.refused.lock().expect("refused").get_or_insert_with(|| e.clone());
                }
                Err(e)
            }
        }
    }

    /// One HTTP request, within the model's rate limits.
    async fn send(&self, req: &ChatRequest) -> Result<RawReply, AttemptError> {
        let chars = req.messages.iter().map(|m| m.content.chars().count()).sum();
        let slot =
            self.limiter.acquire(super::limit::estimate_tokens(chars, req.max_tokens.or(self.sent_max_tokens))).await;
        bump(&self.counters.calls);
        let reply = self.backend.send(req).await;
        if !matches!(reply, Err(AttemptError::NothingListens { .. })) {
            self.answered.mark(&self.base_url);
        }
        if let Ok(r) = &reply {
            slot.settle(r.usage.input_tokens + r.usage.output_tokens);
            if let Some(wait) = r.hold {
                self.limiter.block_for(wait);
            }
        }
        reply
    }

    async fn replay(&self, key: Option<&CacheKey>) -> Option<ChatReply> {
        let raw = self.cache.as_ref()?.get(key?).await?;
        let c = &self.counters;
        bump(&c.cache_hits);
        c.replayed_input.fetch_add(raw.usage.input_tokens, Ordering::Relaxed);
        c.replayed_output.fetch_add(raw.usage.output_tokens, Ordering::Relaxed);
        Some(self.reply(raw, true))
    }

    fn reply(&self, raw: RawReply, cached: bool) -> ChatReply {
        ChatReply {
            cost_usd: cost_usd(raw.usage, &self.config),
            text: raw.text,
            truncated: raw.truncated,
            usage: raw.usage,
            cached,
        }
    }

    async fn take_turn(&self, key: &CacheKey) -> Turn {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(gates.entry(key.clone()).or_default())
        };
        Turn { gates: Arc::clone(&self.gates), key: key.clone(), guard: Some(gate.lock_owned().await) }
    }

    fn explain(&self, gave_up: GaveUp) -> LlmError {
        let model = self.label.clone();
        match gave_up.error {
            AttemptError::Fatal { status: Some(status), kind: FatalKind::Auth, .. } => {
                let set = std::env::var_os(&self.key_env).is_some_and(|v| !v.is_empty());
                let env = if set { self.key_env.clone() } else { format!("{} (it is not set)", self.key_env) };
                LlmError::Auth { model, status, env }
            }
            AttemptError::Fatal { kind: FatalKind::Billing, message, .. } => LlmError::Billing { model, message },
            AttemptError::Fatal { kind: FatalKind::ThisRequest, message, .. } => LlmError::Rejected { model, message },
            AttemptError::Fatal { kind: FatalKind::BadRequest, message, .. } => {
                let message = match config_hint(&self.name, &self.config, &message) {
                    Some(hint) => format!("{message}; to fix it, {hint}"),
                    None => message,
                };
                LlmError::Fatal { model, message }
            }
            AttemptError::Fatal { message, .. } => LlmError::Fatal { model, message },
            AttemptError::Retryable { message, .. } => {
                LlmError::Exhausted { model, attempts: gave_up.attempts, last: message }
            }
            AttemptError::Outage { waited_secs, last } => LlmError::Outage { model, waited_secs, last },
            AttemptError::NothingListens { .. } => LlmError::NothingListens { model, url: self.base_url.clone() },
        }
    }
}

/// Which gepa.toml key to change when a provider refuses a parameter of the request (OpenAI's
/// "Unsupported parameter: 'max_tokens' … Use 'max_completion_tokens' instead", "'temperature' does
/// not support 0.2 with this model", "Unrecognized request argument supplied: top_k").
fn config_hint(name: &str, config: &ModelConfig, message: &str) -> Option<String> {
    let m = message.to_lowercase();
    let table = format!("[models.{name}] in gepa.toml");
    if m.contains("max_tokens") && m.contains("max_completion_tokens") {
        let want = if m.contains("use 'max_tokens'") || m.contains("use \"max_tokens\"") {
            "max_tokens"
        } else {
            "max_completion_tokens"
        };
        return Some(format!("set token_param = \"{want}\" in {table}"));
    }
    let refused = |field: &str| {
        m.contains(field)
            && ["unsupported", "not support", "unrecognized", "not permitted", "unknown", "only the default"]
                .iter()
                .any(|w| m.contains(w))
    };
    if refused("temperature") && config.temperature.is_some() {
        return Some(format!("remove temperature from {table} (this model takes only its default)"));
    }
    if refused("reasoning_effort") && config.reasoning_effort.is_some() {
        return Some(format!("remove reasoning_effort from {table}"));
    }
    if refused("thinking") && config.thinking_budget_tokens.is_some() {
        return Some(format!("remove thinking_budget_tokens from {table}"));
    }
    let extra = config.extra.as_ref()?;
    let field = extra.keys().find(|k| refused(&k.to_lowercase()))?;
    Some(format!("remove `{field}` from [models.{name}.extra] in gepa.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Draw, Message, ScriptedBackend};
    use std::path::Path;

    fn config(toml_text: &str) -> ModelConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn ask(text: &str) -> ChatRequest {
        ChatRequest::new(vec![Message::user(text)])
    }

    fn fast() -> ModelsOptions {
        ModelsOptions { retry_base_delay: Some(Duration::from_micros(10)), ..Default::default() }
    }

    /// Records how many requests overlap inside the backend. The first two wait for each other,
    /// so a model that sends one at a time never gets past them (the test times out).
    struct OverlapProbe {
        busy: AtomicU64,
        peak: AtomicU64,
        started: AtomicU64,
        first_two: tokio::sync::Barrier,
    }

    impl Default for OverlapProbe {
        fn default() -> Self {
            OverlapProbe {
                busy: AtomicU64::new(0),
                peak: AtomicU64::new(0),
                started: AtomicU64::new(0),
                first_two: tokio::sync::Barrier::new(2),
            }
        }
    }

    impl ChatBackend for OverlapProbe {
        fn send<'a>(&'a self, _req: &'a ChatRequest) -> crate::llm::BoxFuture<'a, Result<RawReply, AttemptError>> {
            Box::pin(async move {
                let now = self.busy.fetch_add(1, Ordering::SeqCst) + 1;
                self.peak.fetch_max(now, Ordering::SeqCst);
                if self.started.fetch_add(1, Ordering::SeqCst) < 2 {
                    self.first_two.wait().await;
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
                self.busy.fetch_sub(1, Ordering::SeqCst);
                Ok(RawReply { text: "ok".into(), truncated: false, usage: Usage::default(), hold: None })
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uses_the_concurrency_limit_and_never_exceeds_it() {
        let probe = Arc::new(OverlapProbe::default());
        let cfg = config("provider = \"openai\"\nmodel = \"m\"\nconcurrency = 2");
        let model = Arc::new(Model::new("task", &cfg, probe.clone(), &fast()).unwrap());
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let model = Arc::clone(&model);
                tokio::spawn(async move { model.chat(&ask(&format!("q{i}"))).await })
            })
            .collect();
        let all = async {
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        };
        // A hang guard, not a timing: serial calls never pass the probe's first two.
        tokio::time::timeout(Duration::from_secs(60), all).await.expect("two calls never ran at once");
        assert_eq!(model.stats().calls, 12);
        assert_eq!(probe.peak.load(Ordering::SeqCst), 2, "two at once, never more");
        assert_eq!(model.stats().in_flight, 0);
    }

    #[tokio::test]
    async fn identical_requests_in_flight_share_one_call() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(
            ScriptedBackend::new(|r| Ok(format!("echo {}", r.messages[0].content)))
                .with_latency(Duration::from_millis(20)),
        );
        let opts = ModelsOptions { cache_dir: Some(dir.path().to_path_buf()), ..fast() };
        let cfg = config("provider = \"openai\"\nmodel = \"m\"\ntemperature = 0.0");
        let model = Arc::new(Model::new("task", &cfg, backend.clone(), &opts).unwrap());
        let same = ask("same");
        let replies = futures::future::join_all((0..5).map(|_| model.chat(&same))).await;
        let replies: Vec<_> = replies.into_iter().map(Result::unwrap).collect();
        assert_eq!(backend.calls(), 1);
        assert_eq!(replies.iter().filter(|r| !r.cached).count(), 1);
        assert!(replies.iter().all(|r| r.text == "echo same"));
        assert_eq!(model.stats().cache_hits, 4);
        assert!(model.gates.lock().unwrap().is_empty());
    }

    /// A call dropped just after the server answered (where it waits for its cache entry to be
    /// written) has its tokens and cost booked, and its reply kept: asked again, the request is
    /// replayed, not paid a second time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_dropped_once_the_server_answered_is_booked_and_its_reply_kept() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(ScriptedBackend::raw(|_| {
            Ok(RawReply {
                text: "paid for".into(),
                truncated: false,
                usage: Usage { input_tokens: 1000, output_tokens: 10 },
                hold: None,
            })
        }));
        let opts = ModelsOptions { cache_dir: Some(dir.path().to_path_buf()), ..fast() };
        let cfg = config("provider = \"openai\"\nmodel = \"m\"\ntemperature = 0.0\nprice_input_per_mtok = 1.0");
        let model = Model::new("task", &cfg, backend.clone(), &opts).unwrap();
        let req = ask("q");
        let mut first = Box::pin(model.chat(&req));
        // Polled until the server has answered (the scripted one answers as it is asked), then
        // dropped where it stands: waiting for the entry's write, a thread away.
        while backend.calls() == 0 {
            assert!(futures::poll!(first.as_mut()).is_pending(), "the call ended before it could be dropped");
            tokio::task::yield_now().await;
        }
        drop(first);
        let stats = model.stats();
        assert_eq!((stats.input_tokens, stats.output_tokens), (1000, 10), "the paid reply was not booked");
        assert!((stats.cost_usd - 0.001).abs() < 1e-12, "{stats:?}");
        let again = model.chat(&req).await.unwrap();
        assert!(again.cached && again.text == "paid for", "{again:?}");
        assert_eq!(backend.calls(), 1, "the request was paid twice");
    }

    #[tokio::test]
    async fn cost_is_priced_for_every_reply_but_paid_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(ScriptedBackend::raw(|_| {
            Ok(RawReply {
                text: "x".into(),
                truncated: false,
                usage: Usage { input_tokens: 1_000_000, output_tokens: 500_000 },
                hold: None,
            })
        }));
        let models = Models::from_config(
            &BTreeMap::from([(
                "task".to_string(),
                config("provider = \"openai\"\nmodel = \"m\"\ntemperature = 0\nprice_input_per_mtok = 2\nprice_output_per_mtok = 4"),
            )]),
            ModelsOptions {
                cache_dir: Some(dir.path().to_path_buf()),
                backend_override: Some(backend.factory()),
                ..fast()
            },
        )
        .unwrap();
        let model = models.get("task").unwrap();
        let first = model.chat(&ask("q")).await.unwrap();
        let second = model.chat(&ask("q")).await.unwrap();
        assert_eq!((first.cached, second.cached), (false, true));
        assert_eq!(first.cost_usd, 4.0);
        assert_eq!(second.cost_usd, 4.0);
        let stats = models.total_stats();
        assert_eq!(stats.cost_usd, 4.0);
        assert_eq!(stats.cost_usd_replayed, 4.0);
        assert_eq!((stats.calls, stats.cache_hits), (1, 1));
        assert_eq!(stats.input_tokens, 1_000_000);
    }

    /// 120 calls at `requests_per_minute = 60` take two (virtual) minutes, and the model says
    /// how many waited.
    #[tokio::test(start_paused = true)]
    async fn calls_keep_to_requests_per_minute() {
        let backend = Arc::new(ScriptedBackend::new(|r| Ok(r.messages[0].content.clone())));
        let cfg = config("provider = \"openai\"\nmodel = \"m\"\nrequests_per_minute = 60");
        let model = Arc::new(Model::new("task", &cfg, backend.clone(), &fast()).unwrap());
        let start = tokio::time::Instant::now();
        let calls: Vec<_> = (0..120)
            .map(|i| {
                let model = Arc::clone(&model);
                tokio::spawn(async move { model.chat(&ask(&format!("q{i}"))).await })
            })
            .collect();
        for c in calls {
            c.await.unwrap().unwrap();
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(119) && took < Duration::from_secs(121), "{took:?}");
        assert_eq!(backend.calls(), 120);
        let stats = model.stats();
        assert_eq!((stats.rate_limited, stats.waiting_on_limit), (119, 0));
    }

    /// A model whose replies differ on every call, as a sampling server's do.
    fn sampling_server() -> Arc<ScriptedBackend> {
        let n = Arc::new(AtomicU64::new(0));
        Arc::new(ScriptedBackend::new(move |r| {
            let temperature = r.temperature.map(|t| format!(" at {t}")).unwrap_or_default();
            Ok(format!("answer {}{temperature}", n.fetch_add(1, Ordering::SeqCst)))
        }))
    }

    fn cached_model(toml_text: &str, backend: &Arc<ScriptedBackend>, dir: &Path, offline: bool) -> Model {
        let opts = ModelsOptions { cache_dir: Some(dir.to_path_buf()), offline, ..fast() };
        Model::new("reflection", &config(toml_text), backend.clone(), &opts).unwrap()
    }

    /// At temperature 1 the same prompt at two places is two draws, and the same place asked
    /// again (a resume, a replay offline) is the recorded one; at 0 it is one reply.
    #[tokio::test]
    async fn a_sampling_model_draws_per_place_and_a_place_replays() {
        let dir = tempfile::tempdir().unwrap();
        let backend = sampling_server();
        let warm = "provider = \"openai\"\nmodel = \"m\"\ntemperature = 1.0";
        let model = cached_model(warm, &backend, dir.path(), false);
        let run = Draw::stream("r1");
        let at = |round: u64| ask("same prompt").drawn(Some(run.at("round", round)));
        let first = model.chat(&at(1)).await.unwrap();
        let second = model.chat(&at(2)).await.unwrap();
        assert_eq!(backend.calls(), 2, "a repeated prompt at another place reaches the server");
        assert_ne!(first.text, second.text);
        // Another run draws afresh; no place at all is never served from the cache.
        let other = model.chat(&ask("same prompt").drawn(Some(Draw::stream("r2").at("round", 1)))).await.unwrap();
        model.chat(&ask("same prompt")).await.unwrap();
        model.chat(&ask("same prompt")).await.unwrap();
        assert_eq!(backend.calls(), 5);
        assert!(!other.cached);
        // The same places again, as a resume and an offline replay ask them: the recorded replies.
        let replay = cached_model(warm, &backend, dir.path(), true);
        for (round, recorded) in [(1, &first), (2, &second)] {
            let again = replay.chat(&at(round)).await.unwrap();
            assert!(again.cached);
            assert_eq!(again.text, recorded.text);
        }
        let err = replay.chat(&at(3)).await.unwrap_err();
        assert!(err.to_string().contains("--replay RUN"), "{err}");
        assert_eq!(backend.calls(), 5);

        // At temperature 0 nothing changes: one reply per request, whatever the place.
        let cold = cached_model("provider = \"openai\"\nmodel = \"m\"\ntemperature = 0.0", &backend, dir.path(), false);
        let a = cold.chat(&at(1)).await.unwrap();
        let b = cold.chat(&at(2)).await.unwrap();
        let c = cold.chat(&ask("same prompt")).await.unwrap();
        assert_eq!(backend.calls(), 6);
        assert!(b.cached && c.cached && a.text == b.text && b.text == c.text);
        // `samples` says otherwise either way.
        let said = cached_model(
            "provider = \"openai\"\nmodel = \"m\"\ntemperature = 0.0\nsamples = true",
            &backend,
            dir.path(),
            false,
        );
        said.chat(&at(7)).await.unwrap();
        assert_eq!(backend.calls(), 7);
        let seeded = cached_model(&format!("{warm}\nsamples = false"), &backend, dir.path(), false);
        seeded.chat(&at(8)).await.unwrap();
        assert!(seeded.chat(&at(9)).await.unwrap().cached);
        assert_eq!(backend.calls(), 8);
    }

    /// One call at another temperature (a re-ask) is sent at it and recorded as its own draw.
    #[tokio::test]
    async fn a_call_at_another_temperature_is_a_recorded_draw() {
        let dir = tempfile::tempdir().unwrap();
        let backend = sampling_server();
        let cold = "provider = \"openai\"\nmodel = \"m\"\ntemperature = 0.0";
        let model = cached_model(cold, &backend, dir.path(), false);
        let place = Draw::stream("r1").at("round", 4).at("reflect", "instruction");
        let plain = model.chat(&ask("q")).await.unwrap();
        let hot = ask("q").at_temperature(0.9).drawn(Some(place.at("attempt", 1)));
        let reask = model.chat(&hot).await.unwrap();
        assert_eq!((plain.text.as_str(), reask.text.as_str()), ("answer 0", "answer 1 at 0.9"));
        // Elsewhere it is a new draw; at the same place, offline, the recorded one.
        let other = model.chat(&ask("q").at_temperature(0.9).drawn(Some(place.at("attempt", 2)))).await.unwrap();
        assert_eq!(other.text, "answer 2 at 0.9");
        let replay = cached_model(cold, &backend, dir.path(), true);
        assert_eq!(replay.chat(&hot).await.unwrap().text, "answer 1 at 0.9");
        assert_eq!(replay.chat(&ask("q")).await.unwrap().text, "answer 0");
    }

    #[tokio::test]
    async fn unknown_model_and_zero_concurrency_are_errors() {
        let models = Models::from_config(&BTreeMap::new(), fast()).unwrap();
        assert!(matches!(models.get("task"), Err(LlmError::UnknownModel { .. })));
        let backend: Arc<dyn ChatBackend> = Arc::new(ScriptedBackend::new(|_| Ok(String::new())));
        let cfg = config("provider = \"openai\"\nmodel = \"m\"\nconcurrency = 0");
        let err = Model::new("task", &cfg, backend, &fast()).unwrap_err();
        assert!(err.to_string().contains("concurrency"), "{err}");
    }

    #[tokio::test]
    async fn fatal_errors_are_not_retried_and_counted_as_failures() {
        let backend = Arc::new(ScriptedBackend::new(|_| {
            Err(AttemptError::Fatal { status: Some(400), kind: FatalKind::BadRequest, message: "HTTP 400: bad".into() })
        }));
        let cfg = config("provider = \"openai\"\nmodel = \"m\"");
        let model = Model::new("task", &cfg, backend.clone(), &fast()).unwrap();
        let err = model.chat(&ask("q")).await.unwrap_err();
        assert!(matches!(err, LlmError::Fatal { .. }), "{err:?}");
        assert!(err.to_string().contains("task (m)"), "{err}");
        assert_eq!(backend.calls(), 1);
        assert_eq!(model.stats().failures, 1);
    }
}

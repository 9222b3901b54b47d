//! The models of a project, ready to call: `Model::chat` = cache lookup -> concurrency permit ->
//! retry loop -> one backend request, with token and cost accounting on the way out.

use super::anthropic::{self, AnthropicBackend};
use super::cache::{CacheKey, RequestIdentity, ResponseCache};
use super::openai::{self, OpenAiBackend};
use super::retry::{with_retries, GaveUp, RetryPolicy};
use super::usage::cost_usd;
use super::{AttemptError, ChatBackend, ChatReply, ChatRequest, LlmError, RawReply, Usage};
use crate::project::config::{ModelConfig, ProviderKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedMutexGuard, Semaphore};

/// Builds the backend for a model from its `[models]` name and config (tests swap HTTP out).
pub type BackendFactory = Arc<dyn Fn(&str, &ModelConfig) -> Arc<dyn ChatBackend> + Send + Sync>;

#[derive(Clone, Default)]
pub struct ModelsOptions {
    /// Where replies are cached (`.gepa/cache/`); None disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Replay only: a cache miss is `LlmError::OfflineMiss` and no request is sent.
    pub offline: bool,
    /// Replaces the HTTP backends (scripted models in tests).
    pub backend_override: Option<BackendFactory>,
    /// The first retry's backoff ceiling; default 0.5 s. Tests set it tiny.
    pub retry_base_delay: Option<Duration>,
}

impl fmt::Debug for ModelsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelsOptions")
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("backend_override", &self.backend_override.is_some())
            .field("retry_base_delay", &self.retry_base_delay)
            .finish()
    }
}

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
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cost_usd += o.cost_usd;
        self.cost_usd_replayed += o.cost_usd_replayed;
    }
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    cache_hits: AtomicU64,
    in_flight: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
    paid_input: AtomicU64,
    paid_output: AtomicU64,
    replayed_input: AtomicU64,
    replayed_output: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts a call as in flight for as long as it holds its permit, even if it is cancelled.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicU64) -> Self {
        bump(counter);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

type Gates = Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>;

/// The right to make the one call for a request key; identical requests wait for it.
struct Turn<'a> {
    gates: &'a Gates,
    key: CacheKey,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
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
    backend: Arc<dyn ChatBackend>,
    cache: Option<ResponseCache>,
    offline: bool,
    permits: Semaphore,
    retry: RetryPolicy,
    counters: Counters,
    gates: Gates,
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
        let (provider, default_url, default_env, sent_max_tokens) = match config.provider {
            ProviderKind::Openai => ("openai", openai::DEFAULT_BASE_URL, openai::DEFAULT_KEY_ENV, config.max_tokens),
            ProviderKind::Anthropic => (
                "anthropic",
                anthropic::DEFAULT_BASE_URL,
                anthropic::DEFAULT_KEY_ENV,
                Some(config.max_tokens.unwrap_or(anthropic::DEFAULT_MAX_TOKENS)),
            ),
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
            // A trailing slash does not make a different request, so it must not miss the cache.
            base_url: config.base_url.as_deref().unwrap_or(default_url).trim_end_matches('/').to_string(),
            sent_max_tokens,
            config: config.clone(),
            backend,
            cache: opts.cache_dir.as_ref().map(ResponseCache::new),
            offline: opts.offline,
            permits: Semaphore::new(config.concurrency.min(Semaphore::MAX_PERMITS)),
            retry,
            counters: Counters::default(),
            gates: Mutex::default(),
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
            input_tokens: paid.input_tokens,
            output_tokens: paid.output_tokens,
            cost_usd: cost_usd(paid, &self.config),
            cost_usd_replayed: cost_usd(replayed, &self.config),
        }
    }

    /// The cache key of `req` for this model (None when the cache is off).
    pub fn cache_key(&self, req: &ChatRequest) -> Option<CacheKey> {
        self.cache.as_ref()?;
        Some(CacheKey::of(&RequestIdentity {
            provider: self.provider,
            base_url: &self.base_url,
            model: &self.config.model,
            messages: &req.messages,
            temperature: self.config.temperature,
            max_tokens: self.sent_max_tokens,
        }))
    }

    /// Asks the model. A cached reply costs no request and no permit; offline, a miss is an error.
    pub async fn chat(&self, req: &ChatRequest) -> Result<ChatReply, LlmError> {
        let key = self.cache_key(req);
        if let Some(reply) = self.replay(key.as_ref()).await {
            return Ok(reply);
        }
        if self.offline {
            return Err(LlmError::OfflineMiss { model: self.label.clone() });
        }
        // Identical requests in flight share one paid call: the others wait, then replay it.
        let _turn = match &key {
            Some(key) => {
                let turn = self.take_turn(key).await;
                if let Some(reply) = self.replay(Some(key)).await {
                    return Ok(reply);
                }
                Some(turn)
            }
            None => None,
        };

        let _permit = self.permits.acquire().await.expect("the model's semaphore is never closed");
        let _in_flight = InFlight::enter(&self.counters.in_flight);
        let outcome = with_retries(&self.retry, |attempt| {
            bump(&self.counters.calls);
            if attempt > 1 {
                bump(&self.counters.retries);
            }
            self.backend.send(req)
        })
        .await;
        match outcome {
            Ok(raw) => {
                if let (Some(cache), Some(key)) = (&self.cache, &key) {
                    if let Err(e) = cache.put(key, &raw).await {
                        tracing::warn!(model = %self.label, error = %e, "could not write the cache entry");
                    }
                }
                let c = &self.counters;
                c.paid_input.fetch_add(raw.usage.input_tokens, Ordering::Relaxed);
                c.paid_output.fetch_add(raw.usage.output_tokens, Ordering::Relaxed);
                Ok(self.reply(raw, false))
            }
            Err(gave_up) => {
                bump(&self.counters.failures);
                Err(self.explain(gave_up))
            }
        }
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

    async fn take_turn(&self, key: &CacheKey) -> Turn<'_> {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(gates.entry(key.clone()).or_default())
        };
        Turn { gates: &self.gates, key: key.clone(), guard: Some(gate.lock_owned().await) }
    }

    fn explain(&self, gave_up: GaveUp) -> LlmError {
        let model = self.label.clone();
        match gave_up.error {
            AttemptError::Fatal { status: Some(status @ (401 | 403)), .. } => {
                let set = std::env::var_os(&self.key_env).is_some_and(|v| !v.is_empty());
                let env = if set { self.key_env.clone() } else { format!("{} (it is not set)", self.key_env) };
                LlmError::Auth { model, status, env }
            }
            AttemptError::Fatal { message, .. } => LlmError::Fatal { model, message },
            AttemptError::Retryable { message, .. } => {
                LlmError::Exhausted { model, attempts: gave_up.attempts, last: message }
            }
        }
    }
}

/// The project's `[models]`, by name.
#[derive(Debug, Default)]
pub struct Models {
    by_name: BTreeMap<String, Arc<Model>>,
}

impl Models {
    pub fn from_config(models: &BTreeMap<String, ModelConfig>, opts: ModelsOptions) -> Result<Models, LlmError> {
        let mut by_name = BTreeMap::new();
        for (name, config) in models {
            let backend = match &opts.backend_override {
                Some(factory) => factory(name, config),
                None => http_backend(config).map_err(|e| match e {
                    // Backends name the model id only; errors here name the [models] key too.
                    LlmError::Fatal { message, .. } => {
                        LlmError::Fatal { model: format!("{name} ({})", config.model), message }
                    }
                    other => other,
                })?,
            };
            let model = Model::new(name, config, backend, &opts)?;
            by_name.insert(name.clone(), Arc::new(model));
        }
        Ok(Models { by_name })
    }

    pub fn get(&self, name: &str) -> Result<&Arc<Model>, LlmError> {
        self.by_name.get(name).ok_or_else(|| LlmError::UnknownModel { model: name.to_string() })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Model>)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// All models' counters added up.
    pub fn total_stats(&self) -> ModelStats {
        let mut total = ModelStats::default();
        for model in self.by_name.values() {
            total += model.stats();
        }
        total
    }
}

fn http_backend(config: &ModelConfig) -> Result<Arc<dyn ChatBackend>, LlmError> {
    Ok(match config.provider {
        ProviderKind::Openai => Arc::new(OpenAiBackend::new(config)?),
        ProviderKind::Anthropic => Arc::new(AnthropicBackend::new(config)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Message, ScriptedBackend};

    fn config(toml_text: &str) -> ModelConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn ask(text: &str) -> ChatRequest {
        ChatRequest { messages: vec![Message::user(text)] }
    }

    fn fast() -> ModelsOptions {
        ModelsOptions { retry_base_delay: Some(Duration::from_micros(10)), ..Default::default() }
    }

    /// Records how many requests overlap inside the backend.
    #[derive(Default)]
    struct OverlapProbe {
        busy: AtomicU64,
        peak: AtomicU64,
    }

    impl ChatBackend for OverlapProbe {
        fn send<'a>(&'a self, _req: &'a ChatRequest) -> crate::llm::BoxFuture<'a, Result<RawReply, AttemptError>> {
            Box::pin(async move {
                let now = self.busy.fetch_add(1, Ordering::SeqCst) + 1;
                self.peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(3)).await;
                self.busy.fetch_sub(1, Ordering::SeqCst);
                Ok(RawReply { text: "ok".into(), truncated: false, usage: Usage::default() })
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_exceeds_the_concurrency_limit() {
        let probe = Arc::new(OverlapProbe::default());
        let cfg = config("provider = \"openai\"\nmodel = \"m\"\nconcurrency = 2");
        let model = Arc::new(Model::new("task", &cfg, probe.clone(), &fast()).unwrap());
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let model = Arc::clone(&model);
                tokio::spawn(async move { model.chat(&ask(&format!("q{i}"))).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(model.stats().calls, 12);
        assert!(probe.peak.load(Ordering::SeqCst) <= 2);
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
        let cfg = config("provider = \"openai\"\nmodel = \"m\"");
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

    #[tokio::test]
    async fn cost_is_priced_for_every_reply_but_paid_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(ScriptedBackend::raw(|_| {
            Ok(RawReply {
                text: "x".into(),
                truncated: false,
                usage: Usage { input_tokens: 1_000_000, output_tokens: 500_000 },
            })
        }));
        let models = Models::from_config(
            &BTreeMap::from([(
                "task".to_string(),
                config("provider = \"openai\"\nmodel = \"m\"\nprice_input_per_mtok = 2.0\nprice_output_per_mtok = 4.0"),
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
            Err(AttemptError::Fatal { status: Some(400), message: "HTTP 400: bad".into() })
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

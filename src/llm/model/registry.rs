//! The project's models by name, and how they are built (HTTP backends, or a test's factory).

use super::{Model, ModelStats, Outage};
use crate::llm::settings::{ModelConfig, ProviderKind};
use crate::llm::{AnthropicBackend, ChatBackend, LlmError, OpenAiBackend};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// When a request's retries are used up on failures of the provider (it is down, overloaded,
    /// unreachable), keep probing it for up to this long before giving up with
    /// `LlmError::Outage`. None: give up at once (`LlmError::Exhausted`), as `check` does.
    pub max_outage: Option<Duration>,
    /// Wait for a server where nothing listens even before it first answered (`--wait`); else
    /// such a request fails at once with `LlmError::NothingListens`.
    pub wait_for_servers: bool,
    /// The servers (API roots) that answered in this run, shared by the models built together.
    pub answered: AnsweredServers,
}

/// The API roots that answered (or accepted a connection) in this run.
#[derive(Clone, Default, Debug)]
pub struct AnsweredServers(Arc<Mutex<std::collections::HashSet<String>>>);

impl AnsweredServers {
    pub(super) fn mark(&self, base: &str) {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !set.contains(base) {
            set.insert(base.to_string());
        }
    }

    pub(super) fn has(&self, base: &str) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains(base)
    }
}

impl fmt::Debug for ModelsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelsOptions")
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("backend_override", &self.backend_override.is_some())
            .field("retry_base_delay", &self.retry_base_delay)
            .field("max_outage", &self.max_outage)
            .field("wait_for_servers", &self.wait_for_servers)
            .finish()
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

    /// The models the provider is not answering right now (see `Model::outage`).
    pub fn outages(&self) -> Vec<Outage> {
        self.by_name.values().filter_map(|m| m.outage()).collect()
    }

    /// Probes every held request of every model now.
    pub fn retry_now(&self) {
        self.by_name.values().for_each(|m| m.retry_now());
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

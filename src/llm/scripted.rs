//! An in-process model for tests of the engine, systems and evaluators: replies come from a
//! closure, no network. Plug it in with `ModelsOptions::backend_override` (see `factory`), so the
//! cache, concurrency limit and accounting run exactly as in production.

use super::model::BackendFactory;
use super::{AttemptError, BoxFuture, ChatBackend, ChatRequest, RawReply, Usage};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Script = dyn Fn(&ChatRequest) -> Result<RawReply, AttemptError> + Send + Sync;

pub struct ScriptedBackend {
    script: Box<Script>,
    latency: Option<Duration>,
    /// Up to this much more, at random per call (not seeded: completion order changes run to run).
    jitter: Option<Duration>,
    calls: AtomicU64,
}

impl ScriptedBackend {
    /// Replies with the closure's text; token counts are rough word counts; never truncated.
    pub fn new(reply: impl Fn(&ChatRequest) -> Result<String, AttemptError> + Send + Sync + 'static) -> Self {
        Self::raw(move |req| {
            let text = reply(req)?;
            Ok(RawReply {
                usage: Usage {
                    input_tokens: req.messages.iter().map(|m| words(&m.content)).sum(),
                    output_tokens: words(&text),
                },
                text,
                truncated: false,
                hold: None,
            })
        })
    }

    /// Replies with the closure's whole `RawReply` (to script truncation or exact usage).
    pub fn raw(reply: impl Fn(&ChatRequest) -> Result<RawReply, AttemptError> + Send + Sync + 'static) -> Self {
        Self { script: Box::new(reply), latency: None, jitter: None, calls: AtomicU64::new(0) }
    }

    /// Waits this long (tokio time) before each reply, to exercise concurrency.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Waits a random time up to `max` (tokio time) before each reply, so calls return in a
    /// different order every run.
    pub fn with_jitter(mut self, max: Duration) -> Self {
        self.jitter = Some(max);
        self
    }

    /// Requests this backend has received.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// A `backend_override` that serves every model from this one backend.
    pub fn factory(self: &Arc<Self>) -> BackendFactory {
        let backend = Arc::clone(self);
        Arc::new(move |_name, _config| Arc::clone(&backend) as Arc<dyn ChatBackend>)
    }
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

impl ChatBackend for ScriptedBackend {
    fn send<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<RawReply, AttemptError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if let Some(latency) = self.latency {
                tokio::time::sleep(latency).await;
            }
            if let Some(max) = self.jitter {
                let micros = rand::random::<u64>() % (max.as_micros() as u64).max(1);
                tokio::time::sleep(Duration::from_micros(micros)).await;
            }
            (self.script)(req)
        })
    }
}

//! The response cache under `.gepa/cache/`: one small JSON file per request, so a resumed or
//! recorded run replays exactly, and sample projects can commit theirs.
//!
//! The key is a blake3 hash of a canonical JSON of everything that shapes the reply (provider,
//! base URL, model, messages, temperature, max_tokens, further request fields) and nothing
//! secret: the API key is not in it. For a model that samples it also holds the draw's place in
//! the run (`draw.rs`), so a repeated prompt is a new draw and a replay the recorded one.

use super::{Message, RawReply};
use serde::Serialize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped when the key material or the file format changes, so old entries stop matching.
const KEY_VERSION: u32 = 1;

/// Everything that determines a reply. Field order is the canonical order of the hashed JSON.
#[derive(Debug, Clone, Serialize)]
pub struct RequestIdentity<'a> {
    pub provider: &'a str,
    pub base_url: &'a str,
    pub model: &'a str,
    pub messages: &'a [Message],
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Further request fields (reasoning effort, thinking, `[models.x.extra]`); absent from the
    /// hashed JSON when there are none, so keys made before they existed still match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// The draw's place, for a model that samples (absent otherwise: a deterministic model's
    /// reply is shared by every place and run, and its keys are those made before draws).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw: Option<&'a [String]>,
}

/// The hex blake3 hash naming one cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn of(identity: &RequestIdentity<'_>) -> Self {
        #[derive(Serialize)]
        struct Versioned<'a> {
            v: u32,
            #[serde(flatten)]
            request: &'a RequestIdentity<'a>,
        }
        let canonical = serde_json::to_vec(&Versioned { v: KEY_VERSION, request: identity })
            .expect("request identity always serializes");
        CacheKey(blake3::hash(&canonical).to_hex().to_string())
    }

    pub fn hex(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct ResponseCache {
    dir: PathBuf,
}

impl ResponseCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<first 2 hex>/<hex>.json`: the fan-out keeps folders small.
    pub fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(&key.0[..2]).join(format!("{}.json", key.0))
    }

    /// The stored reply, or None. An unreadable or corrupt entry is a miss (and is overwritten
    /// by the next successful call), never an error.
    pub async fn get(&self, key: &CacheKey) -> Option<RawReply> {
        let path = self.path(key);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable cache entry; treating as a miss");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(reply) => Some(reply),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "corrupt cache entry; treating as a miss");
                None
            }
        }
    }

    /// Stores `reply` atomically: a temp file in the same folder, then a rename over the entry, so a
    /// reader (or a crash) never sees half a file.
    pub async fn put(&self, key: &CacheKey, reply: &RawReply) -> io::Result<()> {
        self.start_put(key, reply, ()).await.map_err(io::Error::other)?
    }

    /// Starts storing `reply` now, on a thread of its own, and returns the write to wait on: it
    /// lands whether or not anyone waits (a caller dropped meanwhile does not lose a reply paid
    /// for). `hold` is dropped once the entry is written (or the write failed).
    pub fn start_put<T: Send + 'static>(
        &self,
        key: &CacheKey,
        reply: &RawReply,
        hold: T,
    ) -> tokio::task::JoinHandle<io::Result<()>> {
        let path = self.path(key);
        let json = serde_json::to_vec_pretty(reply).map(|mut json| {
            json.push(b'\n');
            json
        });
        tokio::task::spawn_blocking(move || {
            let written = json.map_err(io::Error::other).and_then(|json| write_atomically(&path, &json));
            drop(hold);
            written
        })
    }
}

fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    // Unique per process and write, so concurrent writers never share a temp file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), WRITES.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Usage;

    fn identity(messages: &[Message]) -> RequestIdentity<'_> {
        RequestIdentity {
            provider: "openai",
            base_url: "http://localhost:1/v1",
            model: "m",
            messages,
            temperature: Some(0.0),
            max_tokens: None,
            params: None,
            draw: None,
        }
    }

    #[test]
    fn key_is_stable_and_depends_on_every_field() {
        let msgs = [Message::user("hi")];
        let a = CacheKey::of(&identity(&msgs));
        assert_eq!(a, CacheKey::of(&identity(&msgs)));
        assert_eq!(a.hex().len(), 64);
        let other_msgs = [Message::user("hi!")];
        let extra = serde_json::Map::from_iter([("top_p".to_string(), serde_json::json!(0.5))]);
        let place = ["run=a".to_string(), "round=1".to_string()];
        let variants = [
            CacheKey::of(&identity(&other_msgs)),
            CacheKey::of(&RequestIdentity { temperature: Some(0.5), ..identity(&msgs) }),
            CacheKey::of(&RequestIdentity { max_tokens: Some(10), ..identity(&msgs) }),
            CacheKey::of(&RequestIdentity { model: "n", ..identity(&msgs) }),
            CacheKey::of(&RequestIdentity { provider: "anthropic", ..identity(&msgs) }),
            CacheKey::of(&RequestIdentity { base_url: "http://other/v1", ..identity(&msgs) }),
            CacheKey::of(&RequestIdentity { params: Some(&extra), ..identity(&msgs) }),
            CacheKey::of(&RequestIdentity { draw: Some(&place), ..identity(&msgs) }),
            CacheKey::of(&RequestIdentity { draw: Some(&place[..1]), ..identity(&msgs) }),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(&a, v);
            assert!(variants[i + 1..].iter().all(|w| w != v), "variant {i} collides");
        }
        // Keys made before draws existed still match: no draw, no change.
        assert_eq!(a.hex(), KEY_BEFORE_DRAWS);
    }

    /// The key of `identity([user "hi"])` as every version since params were added made it.
    const KEY_BEFORE_DRAWS: &str = "adf0d239bb9809a0a52ac16db3306b58a1517c5e7d6a44fa4e1112747b359a87";

    #[tokio::test]
    async fn round_trips_and_treats_corruption_as_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::new(dir.path());
        let msgs = [Message::user("hi")];
        let key = CacheKey::of(&identity(&msgs));
        assert_eq!(cache.get(&key).await, None);

        let reply = RawReply {
            text: "hello".into(),
            truncated: false,
            usage: Usage { input_tokens: 1, output_tokens: 2 },
            hold: None,
        };
        cache.put(&key, &reply).await.unwrap();
        let path = cache.path(&key);
        assert!(path.starts_with(dir.path().join(&key.hex()[..2])));
        assert_eq!(cache.get(&key).await, Some(reply.clone()));

        std::fs::write(&path, "{\"text\": \"hel").unwrap();
        assert_eq!(cache.get(&key).await, None);
        cache.put(&key, &reply).await.unwrap();
        assert_eq!(cache.get(&key).await, Some(reply));
        // Only the entry is left behind: no temp files.
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}

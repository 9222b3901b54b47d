//! The calls a run needs from MLflow's REST API (`/api/2.0/mlflow/…`, and the artifact proxy
//! `/api/2.0/mlflow-artifacts/…` a server started with `--serve-artifacts`, MLflow's default,
//! offers), over reqwest. No MLflow client library: the API is a handful of JSON calls.

use reqwest::{Method, Url};
use serde_json::{json, Value};
use std::time::Duration;

/// A reply body longer than this is refused while it is read (a search for one run by tag, an
/// experiment, an empty object: a few KB at most).
const MAX_REPLY_BYTES: u64 = 1 << 20;
/// MLflow's `log-batch` limits (its `MAX_METRICS_PER_BATCH`, `MAX_PARAMS_TAGS_PER_BATCH`).
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_PER_BATCH: usize = 100;
/// MLflow's longest param value (`MAX_PARAM_VAL_LENGTH`) and tag value (`MAX_TAG_VAL_LENGTH`).
pub const MAX_PARAM_CHARS: usize = 6000;
pub const MAX_TAG_CHARS: usize = 8000;

/// Why a call did not go through.
#[derive(Debug, Clone, PartialEq)]
pub enum MlflowError {
    /// Nothing answered, the connection broke, or the server answered 429 or 5xx: worth trying
    /// again later.
    Unavailable(String),
    /// The server answered and refused (a 4xx): the same request will be refused again.
    Refused(String),
}

impl std::fmt::Display for MlflowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MlflowError::Unavailable(m) | MlflowError::Refused(m) => f.write_str(m),
        }
    }
}

/// One metric point: MLflow's `Metric` (timestamp in milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub key: String,
    pub value: f64,
    pub timestamp_ms: i64,
    pub step: i64,
}

/// The identity of an MLflow run and where its artifacts go.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub artifact_uri: String,
}

/// A tracking server: its URL and the credentials MLflow's own clients read from the
/// environment (`MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` and
/// `MLFLOW_TRACKING_PASSWORD`), never written anywhere.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Option<Auth>,
}

impl Client {
    pub fn new(url: &str) -> Result<Client, String> {
        let base = Url::parse(url.trim_end_matches('/'))
            .map_err(|e| format!("`{url}` is not a valid URL ({e}); e.g. http://127.0.0.1:5000"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(format!("`{url}` is not an http:// or https:// URL"));
        }
        let http = crate::llm::http::client_with_timeouts(Duration::from_secs(5), Duration::from_secs(10))?;
        Ok(Client { http, base, auth: Auth::from_env() })
    }

    /// The server's URL as given (for messages and links).
    pub fn url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `base` + `/api/2.0/…` path segments, each encoded.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("checked in new").pop_if_empty().extend(segments);
        url
    }

    async fn call(&self, method: Method, url: Url, body: Option<Vec<u8>>, json: bool) -> Result<Value, MlflowError> {
        let mut req = self.http.request(method, url.clone());
        req = match &self.auth {
            Some(Auth::Bearer(token)) => req.bearer_auth(token),
            Some(Auth::Basic(user, password)) => req.basic_auth(user, Some(password)),
            None => req,
        };
        if let Some(body) = body {
            if json {
                req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
            }
            req = req.body(body);
        }
        let path = url.path().to_string();
        let response = req.send().await.map_err(|e| MlflowError::Unavailable(transport(&e)))?;
        let status = response.status();
        let body = crate::llm::http::read_capped(response, MAX_REPLY_BYTES)
            .await
            .map_err(|e| MlflowError::Unavailable(transport(&e)))?
            .ok_or_else(|| {
                MlflowError::Unavailable(format!("{path}: a reply over {MAX_REPLY_BYTES} bytes, refused"))
            })?;
        let text = String::from_utf8_lossy(&body);
        if status.is_success() {
            return Ok(if text.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&text).unwrap_or(json!({}))
            });
        }
        // MLflow answers errors as {"error_code": …, "message": …}.
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let message = match (parsed["error_code"].as_str(), parsed["message"].as_str()) {
            (Some(code), Some(m)) => format!("{code}: {m}"),
            _ => crate::text::truncate_chars(text.trim(), 300),
        };
        let message = format!("{path} answered {status}: {}", crate::text::sanitize(&message));
        if status.as_u16() == 429 || status.is_server_error() {
            Err(MlflowError::Unavailable(message))
        } else {
            Err(MlflowError::Refused(message))
        }
    }

    async fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Value, MlflowError> {
        let mut url = self.endpoint(segments);
        url.query_pairs_mut().extend_pairs(query);
        self.call(Method::GET, url, None, false).await
    }

    async fn post(&self, segments: &[&str], body: Value) -> Result<Value, MlflowError> {
        let url = self.endpoint(segments);
        self.call(Method::POST, url, Some(body.to_string().into_bytes()), true).await
    }

    /// The id of experiment `name`, made when there is none (`experiments/get-by-name`, then
    /// `experiments/create`; a create that lost a race to another client reads it again).
    pub async fn experiment_id(&self, name: &str) -> Result<String, MlflowError> {
        let path = ["api", "2.0", "mlflow", "experiments", "get-by-name"];
        match self.get(&path, &[("experiment_name", name)]).await {
            Ok(v) => return id_in(&v["experiment"]["experiment_id"], "experiments/get-by-name"),
            Err(MlflowError::Refused(m)) if m.contains("RESOURCE_DOES_NOT_EXIST") || m.contains(" 404 ") => {}
            Err(e) => return Err(e),
        }
        match self.post(&["api", "2.0", "mlflow", "experiments", "create"], json!({ "name": name })).await {
            Ok(v) => id_in(&v["experiment_id"], "experiments/create"),
            Err(MlflowError::Refused(m)) if m.contains("RESOURCE_ALREADY_EXISTS") => {
                let v = self.get(&path, &[("experiment_name", name)]).await?;
                id_in(&v["experiment"]["experiment_id"], "experiments/get-by-name")
            }
            Err(e) => Err(e),
        }
    }

    /// The run of `experiment` whose tag `key` is `value` (`runs/search`), if there is one.
    pub async fn find_run(&self, experiment: &str, key: &str, value: &str) -> Result<Option<RunInfo>, MlflowError> {
        let filter = format!("tags.`{key}` = '{}'", value.replace('\'', "\\'"));
        let body = json!({ "experiment_ids": [experiment], "filter": filter, "max_results": 1 });
        let v = self.post(&["api", "2.0", "mlflow", "runs", "search"], body).await?;
        Ok(v["runs"].as_array().and_then(|r| r.first()).map(|r| run_info(&r["info"], experiment)))
    }

    /// A new run (`runs/create`).
    pub async fn create_run(
        &self,
        experiment: &str,
        name: &str,
        start_ms: i64,
        tags: &[(String, String)],
    ) -> Result<RunInfo, MlflowError> {
        let body = json!({
            "experiment_id": experiment,
            "run_name": name,
            "start_time": start_ms,
            "tags": tags.iter().map(|(k, v)| json!({ "key": k, "value": clip(v, MAX_TAG_CHARS) })).collect::<Vec<_>>(),
        });
        let v = self.post(&["api", "2.0", "mlflow", "runs", "create"], body).await?;
        let info = &v["run"]["info"];
        if info["run_id"].as_str().is_none() {
            return Err(MlflowError::Refused(
                "runs/create answered without a run id: is this an MLflow server?".into(),
            ));
        }
        Ok(run_info(info, experiment))
    }

    /// Metrics, params and tags in one request (`runs/log-batch`); the caller keeps to MLflow's
    /// per-request limits.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<(), MlflowError> {
        let body = json!({
            "run_id": run_id,
            "metrics": metrics.iter().map(|m| json!({
                "key": m.key, "value": m.value, "timestamp": m.timestamp_ms, "step": m.step,
            })).collect::<Vec<_>>(),
            "params": params.iter().map(|(k, v)| json!({ "key": k, "value": clip(v, MAX_PARAM_CHARS) })).collect::<Vec<_>>(),
            "tags": tags.iter().map(|(k, v)| json!({ "key": k, "value": clip(v, MAX_TAG_CHARS) })).collect::<Vec<_>>(),
        });
        self.post(&["api", "2.0", "mlflow", "runs", "log-batch"], body).await.map(drop)
    }

    /// The run's status (`RUNNING`, `FINISHED`, `FAILED`, `KILLED`) and, when it ended, its end time
    /// (`runs/update`).
    pub async fn update_run(&self, run_id: &str, status: &str, end_ms: Option<i64>) -> Result<(), MlflowError> {
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(end) = end_ms {
            body["end_time"] = json!(end);
        }
        self.post(&["api", "2.0", "mlflow", "runs", "update"], body).await.map(drop)
    }

    /// Writes one artifact file of a run at `path` (relative, `/`-separated) under the run's
    /// `artifact_uri`: through the server's artifact proxy for `mlflow-artifacts:` (and plain
    /// http) locations, into the folder for a local one (as MLflow's own client does).
    pub async fn upload_artifact(&self, artifact_uri: &str, path: &str, bytes: Vec<u8>) -> Result<(), MlflowError> {
        match artifact_target(&self.base, artifact_uri, path)? {
            ArtifactTarget::Http(url) => self.call(Method::PUT, url, Some(bytes), false).await.map(drop),
            ArtifactTarget::Folder(file) => {
                let write = || -> std::io::Result<()> {
                    if let Some(dir) = file.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::write(&file, &bytes)
                };
                write().map_err(|e| MlflowError::Refused(format!("cannot write the artifact {}: {e}", file.display())))
            }
        }
    }
}

/// Where an artifact goes.
#[derive(Debug, PartialEq)]
enum ArtifactTarget {
    Http(Url),
    Folder(std::path::PathBuf),
}

/// The place of artifact `path` of a run whose `artifact_uri` is as MLflow gave it.
/// `mlflow-artifacts:/1/abc/artifacts` is served by the tracking server itself at
/// `/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts`; `mlflow-artifacts://host:port/…` by
/// that host (MLflow's `MlflowArtifactsRepository`).
fn artifact_target(base: &Url, artifact_uri: &str, path: &str) -> Result<ArtifactTarget, MlflowError> {
    let rel: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if rel.contains(&"..") {
        return Err(MlflowError::Refused(format!("artifact path `{path}` leaves the run's folder")));
    }
    if let Some(rest) = artifact_uri.strip_prefix("mlflow-artifacts:") {
        let (mut url, under) = match rest.strip_prefix("//") {
            Some(hosted) => {
                let (host, under) = hosted.split_once('/').unwrap_or((hosted, ""));
                let url = Url::parse(&format!("{}://{host}", base.scheme()))
                    .map_err(|e| MlflowError::Refused(format!("artifact location `{artifact_uri}`: {e}")))?;
                (url, under.to_string())
            }
            None => (base.clone(), rest.to_string()),
        };
        url.path_segments_mut()
            .map_err(|_| MlflowError::Refused(format!("artifact location `{artifact_uri}`")))?
            .pop_if_empty()
            .extend(["api", "2.0", "mlflow-artifacts", "artifacts"])
            .extend(under.split('/').filter(|s| !s.is_empty()))
            .extend(&rel);
        return Ok(ArtifactTarget::Http(url));
    }
    if artifact_uri.starts_with("http://") || artifact_uri.starts_with("https://") {
        let mut url = Url::parse(artifact_uri)
            .map_err(|e| MlflowError::Refused(format!("artifact location `{artifact_uri}`: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| MlflowError::Refused(format!("artifact location `{artifact_uri}`")))?
            .pop_if_empty()
            .extend(&rel);
        return Ok(ArtifactTarget::Http(url));
    }
    let local = artifact_uri.strip_prefix("file://").unwrap_or(artifact_uri);
    if local.starts_with('/') {
        let mut file = std::path::PathBuf::from(local);
        file.extend(&rel);
        return Ok(ArtifactTarget::Folder(file));
    }
    Err(MlflowError::Refused(format!(
        "the server keeps artifacts at `{artifact_uri}`, which gepa-tui cannot write to: start `mlflow server` with \
         --serve-artifacts (its default) so they go through the server"
    )))
}

fn id_in(v: &Value, call: &str) -> Result<String, MlflowError> {
    v.as_str().map(str::to_string).ok_or_else(|| {
        MlflowError::Refused(format!("{call} answered without an experiment id: is this an MLflow server?"))
    })
}

fn run_info(info: &Value, experiment: &str) -> RunInfo {
    let s = |k: &str| info[k].as_str().unwrap_or_default().to_string();
    RunInfo {
        run_id: s("run_id"),
        experiment_id: info["experiment_id"].as_str().unwrap_or(experiment).to_string(),
        artifact_uri: s("artifact_uri"),
    }
}

/// At most `max` characters (MLflow refuses longer param and tag values).
fn clip(s: &str, max: usize) -> String {
    crate::text::truncate_chars(s, max)
}

/// A transport error in a few words (reqwest's Display hides the cause: "error sending request").
fn transport(e: &reqwest::Error) -> String {
    let mut words = if e.is_timeout() {
        "no answer in time".to_string()
    } else if e.is_connect() {
        "nothing answers (connection refused or unreachable)".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if !e.is_connect() && !e.is_timeout() {
            words.push_str(&format!(": {s}"));
        }
        source = s.source();
    }
    words
}

/// How requests authenticate: as MLflow's own clients do, from the environment.
enum Auth {
    Bearer(String),
    Basic(String, String),
}

impl Auth {
    fn from_env() -> Option<Auth> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(token) = var("MLFLOW_TRACKING_TOKEN") {
            return Some(Auth::Bearer(token));
        }
        Some(Auth::Basic(var("MLFLOW_TRACKING_USERNAME")?, var("MLFLOW_TRACKING_PASSWORD")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1:5000").unwrap()
    }

    #[test]
    fn artifact_locations_map_to_the_proxy_or_a_folder() {
        let t = |uri: &str, path: &str| artifact_target(&base(), uri, path);
        assert_eq!(
            t("mlflow-artifacts:/1/abc/artifacts", "best/instruction.md"),
            Ok(ArtifactTarget::Http(
                Url::parse(
                    "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/best/instruction.md"
                )
                .unwrap()
            ))
        );
        assert_eq!(
            t("mlflow-artifacts://other:7000/9/r/artifacts", "result.json"),
            Ok(ArtifactTarget::Http(
                Url::parse("http://other:7000/api/2.0/mlflow-artifacts/artifacts/9/r/artifacts/result.json").unwrap()
            ))
        );
        // A name with a space or a `#` is one encoded segment, not a fragment.
        match t("mlflow-artifacts:/1/abc/artifacts", "best/my prompt#1.md").unwrap() {
            ArtifactTarget::Http(u) => assert!(u.as_str().ends_with("/best/my%20prompt%231.md"), "{u}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            t("file:///srv/mlruns/1/abc/artifacts", "best/a.md"),
            Ok(ArtifactTarget::Folder("/srv/mlruns/1/abc/artifacts/best/a.md".into()))
        );
        assert!(
            matches!(t("s3://bucket/1/abc", "a.md"), Err(MlflowError::Refused(m)) if m.contains("--serve-artifacts"))
        );
        assert!(t("mlflow-artifacts:/1/abc/artifacts", "../x").is_err());
    }
}

//! MLflow tracking: a run recorded in a real `mlflow server` reads back through MLflow's own API
//! (params, a metric's history, the artifacts) as the run's files say it went; and a tracking
//! server that does not answer never stops the run or changes its result.
//!
//! `.ci/run` installs MLflow from PyPI, starts `mlflow server` on a loopback port and exports its
//! URL as `GEPA_TEST_MLFLOW_URL` (or why it could not, as `GEPA_TEST_MLFLOW_PROBLEM`). Elsewhere,
//! start one and set it: `mlflow server --port 5000 & GEPA_TEST_MLFLOW_URL=http://127.0.0.1:5000`.

mod common;

use assert_cmd::Command;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SAMPLE: &str = "support-triage";

/// A copy of a recorded sample with `tracking` appended to its gepa.toml.
fn sample_copy(tmp: &Path, tracking: &str) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-projects").join(SAMPLE);
    let dir = tmp.join(SAMPLE);
    common::copy_tree(&from, &dir, &["runs"]);
    let mut toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
    toml.push_str(&format!("\n[tracking]\n{tracking}\n"));
    std::fs::write(dir.join("gepa.toml"), toml).unwrap();
    dir
}

/// `run --headless --offline --json`: the finished line and stderr.
fn run(dir: &Path) -> (Value, String) {
    let out = Command::cargo_bin("gepa-tui")
        .unwrap()
        .args(["run", "--headless", "--offline", "--json"])
        .arg(dir)
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .env_remove("OPENAI_API_KEY")
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the run failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("a finished line");
    (serde_json::from_str(last).unwrap(), stderr)
}

fn events(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// MLflow's REST API, called here directly (not through gepa-tui's client).
struct Mlflow {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
}

impl Mlflow {
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        self.rt.block_on(async {
            let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.url), query).unwrap();
            let r = self.http.get(url).send().await.unwrap();
            assert!(r.status().is_success(), "GET {path} {query:?}: {}", r.status());
            r.json().await.unwrap()
        })
    }
    fn post(&self, path: &str, body: Value) -> Value {
        self.rt.block_on(async {
            let r = self.http.post(format!("{}{path}", self.url)).json(&body).send().await.unwrap();
            assert!(r.status().is_success(), "POST {path}: {}", r.status());
            r.json().await.unwrap()
        })
    }
    fn bytes(&self, path: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let r = self.http.get(format!("{}{path}", self.url)).send().await.unwrap();
            assert!(r.status().is_success(), "GET {path}: {}", r.status());
            r.bytes().await.unwrap().to_vec()
        })
    }
}

#[test]
fn a_run_reads_back_from_a_real_mlflow_server_as_its_files_say() {
    let test = "a_run_reads_back_from_a_real_mlflow_server_as_its_files_say";
    let Some(url) = std::env::var("GEPA_TEST_MLFLOW_URL").ok().filter(|u| !u.is_empty()) else {
        let why = std::env::var("GEPA_TEST_MLFLOW_PROBLEM").unwrap_or_default();
        common::missing_prerequisite(
            test,
            &format!("an MLflow tracking server in GEPA_TEST_MLFLOW_URL (.ci/run starts one) {why}"),
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let experiment =
        format!("gepa-tui-test-{}-{}", std::process::id(), tmp.path().file_name().unwrap().to_string_lossy());
    let dir = sample_copy(tmp.path(), &format!("mlflow = \"{url}\"\nexperiment = \"{experiment}\""));
    let (finished, stderr) = run(&dir);
    let run_id = finished["run_id"].as_str().unwrap();
    let run_dir = dir.join(".gepa/runs").join(run_id);
    assert!(stderr.contains("MLflow: run "), "the headless run says where it is in MLflow:\n{stderr}");
    assert!(!stderr.contains("not answering") && !stderr.contains("refused"), "{stderr}");

    let ml = Mlflow {
        rt: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
        http: reqwest::Client::new(),
        url: url.trim_end_matches('/').to_string(),
    };
    let exp = ml.get("/api/2.0/mlflow/experiments/get-by-name", &[("experiment_name", &experiment)]);
    let exp_id = exp["experiment"]["experiment_id"].as_str().unwrap().to_string();
    let found = ml.post(
        "/api/2.0/mlflow/runs/search",
        json!({ "experiment_ids": [exp_id], "filter": format!("tags.`gepa.run_id` = '{run_id}'") }),
    );
    let runs = found["runs"].as_array().expect("the run is in the experiment");
    assert_eq!(runs.len(), 1, "one MLflow run for the gepa run: {found}");
    let info = &runs[0]["info"];
    assert_eq!(info["status"], "FINISHED");
    let mlflow_run = info["run_id"].as_str().unwrap();

    // Params: the settings the run recorded in force, and the data's sizes.
    let got = ml.get("/api/2.0/mlflow/runs/get", &[("run_id", mlflow_run)]);
    let params: std::collections::BTreeMap<String, String> = got["run"]["data"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["key"].as_str().unwrap().to_string(), p["value"].as_str().unwrap().to_string()))
        .collect();
    let evs = events(&run_dir);
    let started = evs.iter().find(|e| e["event"] == "run_started").unwrap();
    assert_eq!(params["optimizer.max_metric_calls"], started["settings"]["max_metric_calls"].to_string());
    assert_eq!(params["optimizer.minibatch_size"], started["settings"]["minibatch_size"].to_string());
    assert_eq!(params["optimizer.seed"], started["settings"]["seed"].to_string());
    let val_lines =
        std::fs::read_to_string(dir.join("data/val.jsonl")).unwrap().lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(params["data.val_examples"], val_lines.to_string());

    // A metric's history: one point per committed round, at step = metric calls, as events.jsonl has them.
    let history =
        ml.get("/api/2.0/mlflow/metrics/get-history", &[("run_id", mlflow_run), ("metric_key", "best_valset_score")]);
    let points: Vec<(i64, f64)> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["step"].as_i64().unwrap(), m["value"].as_f64().unwrap()))
        .collect();
    let rounds: Vec<(i64, f64)> = evs
        .iter()
        .filter(|e| e["event"] == "round_finished")
        .map(|e| (e["metric_calls"].as_i64().unwrap(), e["best_val"].as_f64().unwrap()))
        .collect();
    assert!(rounds.len() > 2, "the sample commits several rounds: {rounds:?}");
    assert_eq!(points, rounds, "best_valset_score's history is the committed rounds'");
    assert_eq!(points.last().unwrap().1, finished["best_val_score"].as_f64().unwrap());
    let metrics: std::collections::BTreeMap<String, f64> = got["run"]["data"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["key"].as_str().unwrap().to_string(), m["value"].as_f64().unwrap()))
        .collect();
    let (best, test_score) = (finished["best_val_score"].as_f64().unwrap(), finished["test_score"].as_f64().unwrap());
    assert_eq!(metrics["test_score"], test_score);
    assert!((metrics["val_test_gap"] - (best - test_score)).abs() < 1e-12, "{metrics:?}");
    assert_eq!(metrics["total_metric_calls"], finished["metric_calls"].as_f64().unwrap());

    // The artifacts: the best candidate's texts and result.json, byte for byte.
    let listed = ml.get("/api/2.0/mlflow/artifacts/list", &[("run_id", mlflow_run), ("path", "best")]);
    let files: Vec<&str> = listed["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(files, ["best/instruction.md"], "{listed}");
    let root = info["artifact_uri"].as_str().unwrap().strip_prefix("mlflow-artifacts:").expect("served artifacts");
    let proxy = format!("/api/2.0/mlflow-artifacts/artifacts{root}");
    assert_eq!(
        ml.bytes(&format!("{proxy}/best/instruction.md")),
        std::fs::read(run_dir.join("best/instruction.md")).unwrap()
    );
    assert_eq!(ml.bytes(&format!("{proxy}/result.json")), std::fs::read(run_dir.join("result.json")).unwrap());
}

/// A tracking server that takes connections and never answers: the run goes on to the same
/// result as without tracking, says the server is not answering, and exits saying what was not sent.
#[test]
fn a_tracking_server_that_never_answers_changes_nothing_in_the_run() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds every connection, reading nothing, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let tracked = sample_copy(tmp.path(), &format!("mlflow = \"http://127.0.0.1:{port}\""));
    let (with, stderr) = run(&tracked);
    let plain_tmp = tempfile::tempdir().unwrap();
    let plain = sample_copy(plain_tmp.path(), "mlflow = \"\"");
    let (without, plain_stderr) = run(&plain);
    for key in ["best_val_score", "test_score", "candidates", "metric_calls"] {
        assert_eq!(with[key], without[key], "{key}");
    }
    // The run was over before a request could time out: the last line says what was not sent.
    assert!(
        stderr.contains(&format!("MLflow at http://127.0.0.1:{port} did not answer (no answer in time)"))
            && stderr.contains("this run is not recorded there"),
        "{stderr}"
    );
    assert!(!plain_stderr.contains("MLflow"), "mlflow = \"\" turns tracking off:\n{plain_stderr}");
}

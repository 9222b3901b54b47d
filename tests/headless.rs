//! The real binary, headless, against an OpenAI-compatible mock speaking the scripted problem:
//! the `--json` contract, result files, `runs`, `export`, `eval --candidate`, `--branch`, review
//! policies without a person.

mod common;

use assert_cmd::Command;
use gepa_tui::llm::{ChatRequest, Message};
use serde_json::Value;
use std::path::Path;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Answers like tests/common's scripted models, telling them apart by the `model` field.
struct Scripted;

impl wiremock::Respond for Scripted {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let messages: Vec<Message> = serde_json::from_value(body["messages"].clone()).unwrap();
        let chat = ChatRequest::new(messages);
        let text = if body["model"] == "scripted-reflection" {
            common::reflection_reply(&chat)
        } else {
            common::task_reply(&chat)
        };
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10}
        }))
    }
}

async fn mock() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/chat/completions")).respond_with(Scripted).mount(&server).await;
    server
}

fn project_at(dir: &Path, server: &MockServer, extra: &str) {
    common::write_project(dir, extra);
    let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
    std::fs::write(dir.join("gepa.toml"), toml.replace("http://127.0.0.1:9/v1", &format!("{}/v1", server.uri())))
        .unwrap();
}

fn bin() -> Command {
    Command::cargo_bin("gepa-tui").unwrap()
}

fn run_json(dir: &Path, args: &[&str]) -> (Vec<Value>, String) {
    let out = bin().arg("run").arg("--headless").arg("--json").args(args).arg(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stderr: {stderr}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
        .collect();
    (lines, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_json_run_then_runs_export_eval_and_branch() {
    let server = mock().await;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("proj");
    project_at(&dir, &server, "max_metric_calls = 100\nproposals_per_round = 2\nseed = 5");
    let d = dir.clone();
    let (lines, stderr) = tokio::task::spawn_blocking(move || run_json(&d, &[])).await.unwrap();

    // One object per event; the last is the summary the docs promise.
    assert_eq!(lines[0]["event"], "run_started");
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "finished");
    for key in ["run_id", "best_val_score", "test_score", "candidates", "metric_calls", "cost_usd", "wall_seconds"] {
        assert!(last.get(key).is_some(), "finished line lacks {key}: {last}");
    }
    assert!(last["best_val_score"].as_f64().unwrap() > 0.125, "{last}");
    assert!(stderr.contains("best prompts written to"), "{stderr}");
    let run_id = last["run_id"].as_str().unwrap().to_string();
    let run_dir = dir.join(".gepa/runs").join(&run_id);
    assert!(run_dir.join("result.json").is_file());
    assert!(run_dir.join("best/instruction.md").is_file());
    assert!(run_dir.join("gepa.toml").is_file());

    // `runs` lists it as finished.
    let out = bin().arg("runs").arg(&dir).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&run_id) && listing.contains("finished"), "{listing}");

    // `export --out` writes the best texts; never over existing files.
    let out_dir = t.path().join("exported");
    bin().args(["export", "--run", &run_id, "--out"]).arg(&out_dir).arg(&dir).assert().success();
    let best: Value = serde_json::from_slice(&std::fs::read(run_dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(std::fs::read_to_string(out_dir.join("instruction.md")).unwrap(), best["best_texts"]["instruction"]);
    bin().args(["export", "--run", &run_id, "--out"]).arg(&out_dir).arg(&dir).assert().failure();

    // `eval --candidate RUN:ID` scores that candidate, from the cache.
    let best_id = best["best_candidate"].as_u64().unwrap();
    let spec = format!("{run_id}:{best_id}");
    let out =
        bin().args(["eval", "--split", "val", "--json", "--offline", "--candidate", &spec]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((report["mean"].as_f64().unwrap() - best["best_val_score"].as_f64().unwrap()).abs() < 1e-9);

    // `--branch` starts a new run from that candidate and records where it came from.
    let d = dir.clone();
    let (lines, _) = tokio::task::spawn_blocking(move || run_json(&d, &["--branch", &spec])).await.unwrap();
    assert_eq!(lines[0]["branched_from"], format!("{run_id}:{best_id}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_policies_need_a_person_or_auto_approve() {
    let server = mock().await;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("proj");
    project_at(&dir, &server, "max_metric_calls = 60\nseed = 1\n\n[review]\nmutations = \"approve\"");
    let d = dir.clone();
    let out = tokio::task::spawn_blocking(move || bin().arg("run").arg("--headless").arg(&d).output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--auto-approve") && err.contains("gepa.toml"), "{err}");
    assert!(!dir.join(".gepa/runs").exists() || std::fs::read_dir(dir.join(".gepa/runs")).unwrap().count() == 0);

    let d = dir.clone();
    let (lines, _) = tokio::task::spawn_blocking(move || run_json(&d, &["--auto-approve"])).await.unwrap();
    assert_eq!(lines.last().unwrap()["event"], "finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_seed_candidates_from_folders_join_the_pool() {
    let server = mock().await;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("proj");
    project_at(&dir, &server, "max_metric_calls = 40\nseed = 2");
    let variant = t.path().join("variant");
    std::fs::create_dir_all(&variant).unwrap();
    std::fs::write(variant.join("instruction.md"), "Answer the item. rule A rule B rule C").unwrap();
    std::fs::write(variant.join("format.md"), "Reply with the code only.").unwrap();
    let d = dir.clone();
    let v = variant.to_string_lossy().into_owned();
    let (lines, _) = tokio::task::spawn_blocking(move || run_json(&d, &["--add-seed", &v])).await.unwrap();
    let added = lines
        .iter()
        .find(|l| l["event"] == "candidate_added" && l["origin"] == "human")
        .expect("the folder's texts became a candidate");
    assert_eq!(added["texts"]["instruction"], "Answer the item. rule A rule B rule C");
    assert!(added["note"].as_str().unwrap().starts_with("added from"));

    // A folder missing a component's file is a clear error naming it.
    std::fs::remove_file(variant.join("format.md")).unwrap();
    let d = dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        bin().args(["run", "--headless", "--add-seed"]).arg(&variant).arg(&d).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("format.md"));
}

/// With objectives on: each `round_finished` and the `finished` line carry every objective's best
/// candidate, the progress line shows them, and `export --candidate OBJECTIVE` takes the best on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objectives_reach_the_json_events_the_progress_line_and_export() {
    let server = mock().await;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("proj");
    let opt =
        "max_metric_calls = 80\nseed = 5\nfrontier = \"hybrid\"\nobjectives = [\"prompt_tokens\", \"output_tokens\"]";
    project_at(&dir, &server, opt);
    let d = dir.clone();
    let (lines, stderr) = tokio::task::spawn_blocking(move || run_json(&d, &[])).await.unwrap();

    assert_eq!(lines[0]["frontier"], "hybrid");
    let round = lines.iter().rev().find(|l| l["event"] == "round_finished").unwrap();
    // As recorded: higher is better, so the token counts are negated. The seed is the shortest.
    assert_eq!(round["objective_bests"]["prompt_tokens"]["candidate"], 0);
    assert_eq!(round["objective_bests"]["prompt_tokens"]["value"], -12.0);
    // The mock says every reply is 10 tokens long.
    assert_eq!(round["objective_bests"]["output_tokens"]["value"], -10.0);
    let last = lines.last().unwrap();
    assert_eq!(last["objectives"]["prompt_tokens"]["best_candidate"], 0);
    assert_eq!(last["objectives"]["prompt_tokens"]["value"], 12.0);
    assert_eq!(last["objectives"]["prompt_tokens"]["lower_is_better"], true);
    assert!(last["non_dominated"].as_array().unwrap().contains(&serde_json::json!(0)), "{last}");
    // Without a terminal, one progress line per round, the natural way round.
    assert!(stderr.contains("| output_tokens 10 (#0) | prompt_tokens 12 (#0) |"), "{stderr}");

    let run_id = last["run_id"].as_str().unwrap().to_string();
    let out_dir = t.path().join("short");
    bin()
        .args(["export", "--run", &run_id, "--candidate", "prompt_tokens", "--out"])
        .arg(&out_dir)
        .arg(&dir)
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(out_dir.join("instruction.md")).unwrap(), "Answer the item. rule A");
    let out = bin()
        .args(["export", "--run", &run_id, "--candidate", "brevity", "--out"])
        .arg(t.path().join("x"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("one of run") && err.contains("output_tokens, prompt_tokens"), "{err}");
}

/// Keep markers in a prompt file: the run records the span as protected, no request carries a
/// marker, the best texts are plain, `export --write-prompts` writes the span back between
/// markers (so the next run protects it too) and `--out` writes the plain text; an added seed's
/// markers become protect decisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_markers_survive_a_run_and_are_written_back_by_export() {
    let server = mock().await;
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("proj");
    project_at(&dir, &server, "max_metric_calls = 60\nseed = 5");
    std::fs::write(dir.join("prompts/instruction.md"), "<<keep>>Answer the item.<</keep>> rule A").unwrap();
    let variant = t.path().join("variant");
    std::fs::create_dir_all(&variant).unwrap();
    std::fs::write(variant.join("instruction.md"), "Answer the item. rule A <<keep>>rule B<</keep>>").unwrap();
    std::fs::write(variant.join("format.md"), "Reply with the code only.").unwrap();
    let (d, v) = (dir.clone(), variant.to_string_lossy().into_owned());
    let (lines, _) = tokio::task::spawn_blocking(move || run_json(&d, &["--add-seed", &v])).await.unwrap();
    assert_eq!(lines[0]["protected"]["instruction"], serde_json::json!(["Answer the item."]));
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "human" && l["action"]["action"] == "protect" && l["action"]["text"] == "rule B"),
        "the added seed's marked text is protected"
    );
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests.iter().all(|r| !String::from_utf8_lossy(&r.body).contains("<<keep>>")),
        "a marker reached a model"
    );
    let run_id = lines.last().unwrap()["run_id"].as_str().unwrap().to_string();
    let run_dir = dir.join(".gepa/runs").join(&run_id);
    let best = std::fs::read_to_string(run_dir.join("best/instruction.md")).unwrap();
    assert!(best.contains("Answer the item.") && !best.contains("<<keep>>"), "{best}");

    let out_dir = t.path().join("exported");
    bin().args(["export", "--run", &run_id, "--out"]).arg(&out_dir).arg(&dir).assert().success();
    assert_eq!(std::fs::read_to_string(out_dir.join("instruction.md")).unwrap(), best);
    bin().args(["export", "--run", &run_id, "--write-prompts", "--yes"]).arg(&dir).assert().success();
    let written = std::fs::read_to_string(dir.join("prompts/instruction.md")).unwrap();
    assert!(written.contains("<<keep>>Answer the item.<</keep>>"), "{written}");
    let again = gepa_tui::project::Project::load(&dir).unwrap();
    assert_eq!(again.seed["instruction"], best);
    assert!(again.protected["instruction"].contains(&"Answer the item.".to_string()));
}

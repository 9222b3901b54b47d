//! Every sample project ships a recorded run that replays offline, to the end and to the recorded
//! result (so a change that alters the requests the engine makes, and so breaks replay, breaks
//! CI), and `check --offline` passes.

mod common;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn samples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-projects");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("gepa.toml").is_file())
        .collect();
    v.sort();
    v
}

/// A sample's recorded model replies (`.gepa/cache/`), committed with it.
fn is_recorded(sample: &Path) -> bool {
    std::fs::read_dir(sample.join(".gepa/cache")).is_ok_and(|mut d| d.next().is_some())
}

#[test]
fn every_sample_checks_and_replays_offline_to_the_end() {
    let samples = samples();
    assert!(samples.len() >= 4, "{samples:?}");
    let mut improved = Vec::new();
    for sample in samples {
        let name = sample.file_name().unwrap().to_string_lossy().into_owned();
        let out = Command::cargo_bin("gepa-tui").unwrap().args(["check", "--offline"]).arg(&sample).output().unwrap();
        assert!(out.status.success(), "{name}: check --offline failed:\n{}", String::from_utf8_lossy(&out.stdout));
        // Every sample ships its recorded replies, so the quick start and each README's
        // `--offline` command replay a real run with no key and no network.
        assert!(
            is_recorded(&sample),
            "{name}: no recorded run (.gepa/cache is empty); record it with scripts/record-samples.sh {name}"
        );

        // Replay in a copy, so the test never writes into the repository.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(&name);
        // A developer's local runs are not part of the sample.
        common::copy_tree(&sample, &dir, &["runs"]);
        let out = Command::cargo_bin("gepa-tui")
            .unwrap()
            .args(["run", "--headless", "--offline", "--json"])
            .arg(&dir)
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: the recorded run does not replay offline:\n{stderr}");
        // Replayed replies say nothing of a server: the gauge that drops to one proposal at a time
        // for a server answering in turn must not take a scorer's time for the server's.
        assert!(
            !stderr.contains("answers requests one after another"),
            "{name}: an offline replay judged the (absent) model server:\n{stderr}"
        );
        let last: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();

        assert_eq!(last["event"], "finished", "{name}");
        // A request the recording does not cover fails that evaluation (score 0) instead of the run.
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains("no cached reply"),
            "{name}: the recording does not cover every request of the replay"
        );
        // The replay ends exactly where the recording did (scripts/record-samples.sh saved its last line).
        let recording: Value = serde_json::from_slice(
            &std::fs::read(sample.join(".gepa/recorded-run.json"))
                .unwrap_or_else(|e| panic!("{name}: .gepa/recorded-run.json (the recording's final line): {e}")),
        )
        .unwrap();
        for key in ["best_val_score", "test_score", "candidates", "metric_calls"] {
            assert_eq!(last[key], recording[key], "{name}: the replay's {key} differs from the recording's");
        }
        let run_id = last["run_id"].as_str().unwrap();
        let result: Value =
            serde_json::from_slice(&std::fs::read(dir.join(".gepa/runs").join(run_id).join("result.json")).unwrap())
                .unwrap();
        let (seed, best) = (result["seed_val_score"].as_f64().unwrap(), result["best_val_score"].as_f64().unwrap());
        assert!(best >= seed, "{name}: best {best} below seed {seed}");
        // The sample that teaches objectives shows a real trade-off: an objective whose best is
        // not the best val candidate, and more than one candidate no other beats on everything.
        if let Some(objectives) = result["objectives"].as_object() {
            let best_id = result["best_candidate"].as_u64();
            assert!(
                objectives.values().any(|o| o["best_candidate"].as_u64() != best_id),
                "{name}: every objective's best is the best val candidate: no trade-off to show"
            );
            assert!(result["non_dominated"].as_array().is_some_and(|n| n.len() > 1), "{name}: {result}");
        }
        if best > seed {
            improved.push(name);
        }
    }
    assert!(improved.len() >= 2, "at least two samples improve on their seed; improved: {improved:?}");
}

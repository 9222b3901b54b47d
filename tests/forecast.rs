//! `gepa-tui check`'s forecast, against what the samples' recorded runs used (read from their
//! events, not from the forecast's code): the proposals and reflection calls each run made fall
//! in the forecast's range, and `--estimate-only` forecasts without calling any model.

mod common;

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn samples() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-projects");
    let mut v: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("gepa.toml").is_file())
        .collect();
    v.sort();
    v
}

/// The three numbers of a forecast line (`  proposals      8 – 12 – 19   (low – likely – high)`).
fn span(check: &str, label: &str) -> [f64; 3] {
    let at = check.find("\nForecast").expect("a forecast");
    let line = check[at..]
        .lines()
        .find(|l| l.starts_with(&format!("  {label} ")))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{check}"));
    let nums: Vec<f64> = line[label.len() + 2..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|s| !s.is_empty())
        .take(3)
        .map(|s| s.parse().unwrap())
        .collect();
    [nums[0], nums[1], nums[2]]
}

fn gepa() -> Command {
    let mut c = Command::cargo_bin("gepa-tui").unwrap();
    c.env_remove("MLFLOW_TRACKING_URI").env_remove("OPENAI_API_KEY");
    c
}

#[test]
fn the_recorded_runs_fall_in_the_forecast_range() {
    for sample in samples() {
        let name = sample.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(&name);
        common::copy_tree(&sample, &dir, &["runs"]);
        let check = gepa().args(["check", "--offline"]).arg(&dir).output().unwrap();
        let check = String::from_utf8_lossy(&check.stdout).into_owned();
        // Measured, from the recorded replies: the seed's dry run is served by the cache.
        assert!(
            check.contains("Forecast (the seed scored on 3 val examples as a dry run, from the cache"),
            "{name}:\n{check}"
        );
        let out = gepa().args(["run", "--headless", "--offline", "--json"]).arg(&dir).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let run = std::fs::read_dir(dir.join(".gepa/runs")).unwrap().flatten().next().unwrap().path();
        let events: Vec<Value> = std::fs::read_to_string(run.join("events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let committed =
            common::committed(&events.iter().map(|e| serde_json::from_value(e.clone()).unwrap()).collect::<Vec<_>>());
        let proposals =
            committed.iter().filter(|e| matches!(e, gepa_tui::engine::Event::ProposalFinished { .. })).count() as f64;
        let reflections: f64 = committed
            .iter()
            .map(|e| match e {
                gepa_tui::engine::Event::Reflection { cut_answers, unchanged_answers, .. } => {
                    (1 + cut_answers.len() + unchanged_answers.len()) as f64
                }
                _ => 0.0,
            })
            .sum();
        let [low, _, high] = span(&check, "proposals");
        assert!(low <= proposals && proposals <= high.ceil(), "{name}: {proposals} proposals, forecast {low}–{high}");
        let [low, _, high] = span(&check, "reflections");
        assert!(
            low <= reflections && reflections <= high,
            "{name}: {reflections} reflection calls, forecast {low}–{high}"
        );
        // The dashboard's forecast: made from the run's own scoring of the seed on all of val.
        let project = gepa_tui::project::Project::load(&dir).unwrap();
        let events: Vec<gepa_tui::engine::Event> =
            events.iter().map(|e| serde_json::from_value(e.clone()).unwrap()).collect();
        let model = gepa_tui::tui::model::Model::from_events(&events).with_project(&project);
        let f = model.forecast().expect("a forecast with the project at hand");
        assert_eq!(f.per_call.examples, project.val.len(), "{name}: measured on the seed's val pass");
        assert!(f.proposals.low <= proposals && proposals <= f.proposals.high.ceil(), "{name}: {:?}", f.proposals);
        let (used, against, dollars) = model.use_against_forecast().unwrap();
        assert!(!dollars && against == f.total_tokens(), "{name}: the samples are not priced: tokens");
        let last_round = events.iter().rev().find_map(|e| match e {
            gepa_tui::engine::Event::RoundFinished { input_tokens, output_tokens, .. } => {
                Some(input_tokens + output_tokens)
            }
            _ => None,
        });
        assert_eq!(used, last_round.unwrap() as f64, "{name}");
        let budget = span(&check, "metric calls")[0];
        let last: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
        let used = last["metric_calls"].as_f64().unwrap();
        let upto =
            check.split("up to ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse::<f64>().unwrap();
        assert!(budget <= used && used <= upto, "{name}: {used} metric calls, forecast {budget}–{upto}");
    }
}

/// `--estimate-only` forecasts from the prompt sizes: no ping, no dry run, even when nothing listens.
#[test]
fn estimate_only_calls_no_model() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_project(tmp.path(), "max_metric_calls = 200");
    let out = gepa().args(["check", "--estimate-only"]).arg(tmp.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Models: not pinged (--estimate-only calls no model)"), "{stdout}");
    assert!(stdout.contains("Forecast from the prompt sizes (no model called"), "{stdout}");
    assert!(stdout.contains("  metric calls   200 budget"), "{stdout}");
    let [low, mid, high] = span(&stdout, "proposals");
    assert!(0.0 < low && low <= mid && mid <= high, "{stdout}");
    // The task model is priced: dollars, growing with the prompts; the reflection model is free.
    let [low, mid, high] = span(&stdout, "total");
    assert!(0.0 < low && low < mid && mid < high, "{stdout}");
}

//! Peak memory (RSS) of the real binary on big inputs: a benchmark, not a test (it asserts
//! nothing but that each command succeeds). `scripts/bench-memory.sh` runs it and BENCHMARKS.md
//! records the table it prints: `cargo bench --profile dev --bench memory`. With
//! `GEPA_MEMORY_BASELINE=<an older gepa-tui binary>` each row is measured with that binary too,
//! just before this build, on the same input: a before/after ratio from one run.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/fault_server/mod.rs"]
mod fault_server;

use fault_server::{FaultServer, Plan};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const KEY_ENV: &str = "GEPA_MEMORY_BENCH_KEY";
const FAKE_KEY: &str = "sk-gepa-FAKE-memory-bench";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gepa-tui")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn write_project_in(dir: &Path, base_url: &str, optimizer: &str, model_extra: &str) {
    common::write_project_served(dir, optimizer, base_url, KEY_ENV, model_extra);
}

/// Peak RSS in kB of `<bin> args…`, measured by /usr/bin/time, and its wall time in seconds.
fn peak(bin: &Path, label: &str, args: &[&str]) -> (u64, f64) {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "PEAK_RSS_KB=%M"])
        .arg(bin)
        .args(args)
        .env(KEY_ENV, FAKE_KEY)
        .stdin(Stdio::null())
        .output()
        .expect("/usr/bin/time is needed for the memory benchmark");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{label} ({}): {:?}\n{stderr}", bin.display(), out.status);
    let kb: u64 = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("PEAK_RSS_KB="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in:\n{stderr}"));
    (kb, started.elapsed().as_secs_f64())
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The binaries measured: this build, and with `GEPA_MEMORY_BASELINE=<an older gepa-tui>` that
/// one too, run just before it on the same input (each row a before/after pair side by side).
struct Bench {
    baseline: Option<PathBuf>,
}

impl Bench {
    fn header(&self) {
        match &self.baseline {
            None => println!("\n| what | peak RSS | wall |\n|---|---|---|"),
            Some(b) => println!(
                "\nbaseline: {}\n\n| what | peak RSS (baseline) | peak RSS | ratio | wall (baseline / this) |\n|---|---|---|---|---|",
                b.display()
            ),
        }
    }

    /// A row saying what the input is, its cells empty.
    fn note(&self, what: String) {
        let empty = if self.baseline.is_some() { " | | | | |" } else { " | | |" };
        println!("| {what}{empty}");
    }

    /// One row: `reset` runs before each binary (a resume changes the run it resumes).
    fn measure(&self, label: &str, args: &[&str], reset: impl Fn()) {
        let this = Path::new(bin());
        match &self.baseline {
            None => {
                reset();
                let (kb, secs) = peak(this, label, args);
                println!("| {label} | {:.1} MiB | {secs:.1} s |", mib(kb));
            }
            Some(base) => {
                reset();
                let (kb0, secs0) = peak(base, label, args);
                reset();
                let (kb, secs) = peak(this, label, args);
                let ratio = kb as f64 / kb0 as f64;
                println!(
                    "| {label} | {:.1} MiB | {:.1} MiB | {ratio:.2}x | {secs0:.1} s / {secs:.1} s |",
                    mib(kb0),
                    mib(kb)
                );
            }
        }
    }
}

fn words(n: usize, salt: usize) -> String {
    const W: &[&str] = &["answer", "the", "customer", "politely", "rule", "group", "refund", "within", "days", "cite"];
    (0..n).map(|i| W[(i * 7 + salt) % W.len()]).collect::<Vec<_>>().join(" ")
}

fn example_line(i: usize, group: char) -> String {
    json!({
        "id": format!("ex{i}"),
        "input": format!("{} item {i} of group {group}", words(30, i)),
        "expected": format!("{group}-ok"),
        "hint": format!("group {group} needs rule {group}"),
    })
    .to_string()
}

/// The scripted project with `n_val` val examples of realistic size (~300 bytes each).
fn big_project(dir: &Path, base_url: &str, n_val: usize) {
    write_project_in(dir, base_url, "max_metric_calls = 100\nconcurrency = 32", "concurrency = 32");
    let mut val = String::new();
    for i in 0..n_val {
        val.push_str(&example_line(1000 + i, common::GROUPS[i % 8]));
        val.push('\n');
    }
    std::fs::write(dir.join("data/val.jsonl"), val).unwrap();
}

fn eval_json(id: &str, text: &str, score: f64) -> serde_json::Value {
    json!({
        "example_id": id,
        "score": score,
        "feedback": format!("expected G-ok, got `not sure`\nhint: group G needs rule G ({})", words(8, 3)),
        "output": if score > 0.0 { "G-ok" } else { "not sure" },
        "trace": {"steps": [{
            "name": "answer",
            "model": "task",
            "messages": [
                {"role": "system", "content": text},
                {"role": "user", "content": format!("{} item of group G", words(30, 1))},
            ],
            "output": "not sure",
            "truncated": false,
        }]},
        "error": null,
        "cost_usd": 0.00012,
    })
}

/// A run with `n` candidates, one accepted mutation per round, each scored on `val_ids`: the
/// events a long run of the scripted project would leave, finished (the best scored on test) or
/// stopped after its last round. Its size, and the metric calls it made.
fn synthetic_run(
    run_dir: &Path,
    n: usize,
    finished: bool,
    (val_ids, train_ids, test_ids): (&[String], &[String], &[String]),
) -> (u64, u64) {
    std::fs::create_dir_all(run_dir).unwrap();
    let file = std::fs::File::create(run_dir.join("events.jsonl")).unwrap();
    let mut w = std::io::BufWriter::new(file);
    let mut seq = 0u64;
    let mut put = |w: &mut std::io::BufWriter<std::fs::File>, mut v: serde_json::Value| {
        let o = v.as_object_mut().unwrap();
        let mut line = serde_json::Map::new();
        line.insert("seq".into(), seq.into());
        line.insert("t".into(), 0.into());
        line.append(o);
        seq += 1;
        serde_json::to_writer(&mut *w, &line).unwrap();
        w.write_all(b"\n").unwrap();
    };
    let texts = |c: usize| json!({"instruction": format!("Answer the item. {} rule A v{c}", words(90, c)), "format": format!("Reply with the code only. {}", words(12, c))});
    let system = |c: usize| format!("Answer the item. {} rule A v{c}\nReply with the code only.", words(100, c));
    let run_id = run_dir.file_name().unwrap().to_str().unwrap();
    put(
        &mut w,
        json!({"event": "run_started", "run_id": run_id, "version": "0.1.0", "seed": 0,
        "components": ["format", "instruction"], "train_ids": train_ids, "val_ids": val_ids, "test_ids": test_ids,
        "max_metric_calls": 1_000_000, "proposals_per_round": 1, "config_hash": "0"}),
    );
    let mut calls = 0u64;
    for c in 0..n {
        let round = c as u64;
        let val_score = |i: usize| if (i + c).is_multiple_of(3) { 1.0 } else { 0.0 };
        if c == 0 {
            put(&mut w, json!({"event": "round_started", "round": 0, "proposals": []}));
        } else {
            let parent = c - 1;
            let batch: Vec<&String> = (0..3).map(|k| &train_ids[(c * 3 + k) % train_ids.len()]).collect();
            put(
                &mut w,
                json!({"event": "round_started", "round": round, "proposals": [{"slot": 0, "parent": parent,
                "minibatch_index": round - 1, "minibatch": batch, "components": ["instruction"]}]}),
            );
            let evals: Vec<_> = batch.iter().map(|id| eval_json(id, &system(parent), 0.0)).collect();
            put(
                &mut w,
                json!({"event": "minibatch_evaluated", "round": round, "slot": 0, "candidate_role": "parent", "evals": evals}),
            );
            let record =
                json!({"inputs": {"input": words(30, c)}, "generated_outputs": "not sure", "feedback": words(20, c)});
            put(
                &mut w,
                json!({"event": "reflection", "round": round, "slot": 0, "parent": parent, "component": "instruction",
                "dataset": [record.clone(), record.clone(), record], "prompt": words(500, c), "answer": format!("```\n{}\n```", words(95, c)),
                "new_text": texts(c)["instruction"], "truncated": false, "cost_usd": 0.002}),
            );
            let evals: Vec<_> = batch.iter().map(|id| eval_json(id, &system(c), 1.0)).collect();
            put(
                &mut w,
                json!({"event": "minibatch_evaluated", "round": round, "slot": 0, "candidate_role": "child", "evals": evals}),
            );
            put(
                &mut w,
                json!({"event": "proposal_finished", "round": round, "slot": 0, "parent": parent,
                "outcome": {"kind": "accepted", "parent_sum": 0.0, "child_sum": 3.0}, "child": texts(c)}),
            );
            calls += 6;
        }
        put(
            &mut w,
            json!({"event": "candidate_added", "id": c, "texts": texts(c), "parents": if c == 0 { vec![] } else { vec![c - 1] },
            "origin": if c == 0 { "seed" } else { "mutation" }, "changed": ["instruction"], "round": round, "discovered_at": calls}),
        );
        let evals: Vec<_> = val_ids.iter().enumerate().map(|(i, id)| eval_json(id, &system(c), val_score(i))).collect();
        put(&mut w, json!({"event": "val_evaluated", "candidate": c, "evals": evals}));
        calls += val_ids.len() as u64;
        put(
            &mut w,
            json!({"event": "round_finished", "round": round, "metric_calls": calls, "cost_usd": calls as f64 * 0.00012,
            "best": 0, "best_val": 0.34, "merges_due": 0, "found_new": c > 0}),
        );
    }
    if finished {
        let evals: Vec<_> = test_ids.iter().map(|id| eval_json(id, &system(0), 1.0)).collect();
        put(&mut w, json!({"event": "test_evaluated", "candidate": 0, "evals": evals, "mean": 1.0}));
        put(
            &mut w,
            json!({"event": "finished", "reason": "budget", "best": 0, "best_val": 0.34, "test_score": 1.0,
            "candidates": n, "metric_calls": calls, "cost_usd": calls as f64 * 0.00012}),
        );
    }
    w.flush().unwrap();
    drop(w);
    std::fs::copy(
        run_dir.parent().unwrap().parent().unwrap().parent().unwrap().join("gepa.toml"),
        run_dir.join("gepa.toml"),
    )
    .unwrap();
    (file_len(&run_dir.join("events.jsonl")), calls)
}

/// Peak memory of loading a 10,000-example val set, and of folding and resuming a 2,000-candidate run.
fn main() {
    let server = FaultServer::start(Plan::default());
    // GEPA_BENCH_DIR keeps the generated projects for a look afterwards.
    let holder = tempfile::tempdir().unwrap();
    let root = std::env::var_os("GEPA_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| holder.path().to_path_buf());
    std::fs::create_dir_all(&root).unwrap();
    let tmp = &root;
    let bench = Bench { baseline: std::env::var_os("GEPA_MEMORY_BASELINE").map(PathBuf::from) };
    bench.header();
    let nothing = || {};

    // (a) 10,000 val examples: load and validate; score the seed on all of them; a run whose
    // budget is the seed's val scoring.
    let big = tmp.join("big-val");
    big_project(&big, &server.base_url(), 10_000);
    let val_bytes = file_len(&big.join("data/val.jsonl"));
    bench.note(format!("(val.jsonl: 10,000 examples, {:.1} MiB)", val_bytes as f64 / 1048576.0));
    let d = big.to_str().unwrap();
    bench.measure("`check --offline`: load + validate 10,000 val examples", &["check", "--offline", d], nothing);
    bench.measure(
        "`eval --split val`: score the seed on 10,000 examples",
        &["eval", d, "--split", "val", "--json"],
        nothing,
    );
    bench.measure(
        "`run --headless`: seed scored on 10,000 val examples, then test",
        &["run", "--headless", "--max-metric-calls", "10000", d],
        nothing,
    );

    // (b) A finished run with 2,000 candidates, each scored on 50 val examples; and the same run
    // stopped before its end (its resume rebuilds the evaluation cache, then finishes it).
    let long = tmp.join("long-run");
    big_project(&long, &server.base_url(), 50);
    let project = gepa_tui::project::Project::load(&long).unwrap();
    let ids = |xs: &[gepa_tui::project::Example]| xs.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    let splits = (ids(&project.val), ids(&project.train), ids(&project.test));
    let splits = (&splits.0[..], &splits.1[..], &splits.2[..]);
    let (done, stopped) = ("20260101-000000-0000", "20260101-000000-0001");
    let runs = long.join(".gepa/runs");
    let (bytes, _) = synthetic_run(&runs.join(done), 2000, true, splits);
    let (_, calls) = synthetic_run(&runs.join(stopped), 2000, false, splits);
    // The stopped run's log as written, put back before each resume of it (a resume finishes it).
    let pristine = tmp.join("stopped-events.jsonl");
    std::fs::copy(runs.join(stopped).join("events.jsonl"), &pristine).unwrap();
    bench.note(format!("(events.jsonl: 2,000 candidates x 50 val, {:.0} MiB)", bytes as f64 / 1048576.0));
    let d = long.to_str().unwrap();
    bench.measure("`runs`: fold the 2,000-candidate run", &["runs", d], nothing);
    let out = tmp.join("out");
    bench.measure(
        "`export`: fold it and write the best",
        &["export", d, "--run", done, "--out", out.to_str().unwrap()],
        || {
            let _ = std::fs::remove_dir_all(&out);
        },
    );
    bench.measure(
        "`run --headless --resume` of it (finished: rebuilds result.json)",
        &["run", "--headless", "--resume", done, d],
        || {
            let _ = std::fs::remove_file(runs.join(done).join("result.json"));
        },
    );
    let budget = calls.to_string();
    bench.measure(
        "`run --headless --resume` of it stopped after its last round (rebuilds the evaluation cache, scores the best on test)",
        &["run", "--headless", "--resume", stopped, "--max-metric-calls", &budget, d],
        || {
            let dir = runs.join(stopped);
            std::fs::copy(&pristine, dir.join("events.jsonl")).unwrap();
            for f in ["result.json", "status.json"] {
                let _ = std::fs::remove_file(dir.join(f));
            }
            let _ = std::fs::remove_dir_all(dir.join("best"));
        },
    );
}

//! What attaching costs the running process: the wall time of a headless run of the scripted
//! problem (the real binary against the local OpenAI-compatible test server, 100 ms a call) with no
//! screen attached, and with two attached screens (each a `Follower` polling the run's files every
//! 200 ms, as the workbench does, and drawing a 160×48 frame whenever something changed), run
//! alternately, side by side. A benchmark, not a test: `cargo bench --profile dev --bench attach`;
//! BENCHMARKS.md records the table it prints.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/fault_server/mod.rs"]
mod fault_server;

use fault_server::{FaultServer, Plan};
use gepa_tui::tui::app::App;
use gepa_tui::tui::keymap::Keymap;
use gepa_tui::tui::model::Model;
use gepa_tui::tui::remote::{Follower, Remote};
use gepa_tui::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY_ENV: &str = "GEPA_ATTACH_BENCH_KEY";
const PAIRS: usize = 5;

fn project(dir: &Path, base_url: &str) {
    common::write_project(dir, "max_metric_calls = 400\nminibatch_size = 3\nseed = 5\npipeline_lag = 2");
    let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
    let models = format!("base_url = \"{base_url}\"\napi_key_env = \"{KEY_ENV}\"");
    std::fs::write(dir.join("gepa.toml"), toml.replace("base_url = \"http://127.0.0.1:9/v1\"", &models)).unwrap();
}

/// A screen attached to the run in `run_dir` until its process lets go; returns the frames drawn.
fn attached_screen(run_dir: PathBuf) -> usize {
    let opened = loop {
        match Follower::open(&run_dir).unwrap() {
            Some(o) if !o.2.is_empty() => break o,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let (mut follower, holder, events) = opened;
    let mut model = Model::from_events(&events);
    model.attached = true;
    model.remote = Some(Remote::new(holder));
    let mut app = App::new(model, Keymap::default(), Theme::default());
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut frames = 0;
    while !follower.ended() {
        if follower.poll(&mut app) {
            term.draw(|f| app.render(f)).unwrap();
            frames += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    frames
}

/// One headless run from scratch with `screens` attached; its wall seconds (as result.json says)
/// and the frames the screens drew.
fn one_run(dir: &Path, base_url: &str, screens: usize) -> (f64, usize) {
    let _ = std::fs::remove_dir_all(dir);
    project(dir, base_url);
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gepa-tui"))
        .args(["run", "--headless"])
        .arg(dir)
        .env(KEY_ENV, "sk-bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_dir = loop {
        let found = std::fs::read_dir(dir.join(".gepa/runs"))
            .ok()
            .and_then(|rd| rd.flatten().map(|e| e.path()).next())
            .filter(|d| gepa_tui::store::RunLock::is_held(d));
        if let Some(d) = found {
            break d;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the run never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    let watchers: Vec<_> = (0..screens)
        .map(|_| {
            let d = run_dir.clone();
            std::thread::spawn(move || attached_screen(d))
        })
        .collect();
    assert!(child.wait().unwrap().success());
    let frames = watchers.into_iter().map(|w| w.join().unwrap()).sum();
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("result.json")).unwrap()).unwrap();
    (result["wall_seconds"].as_f64().unwrap(), frames)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn main() {
    let server = FaultServer::start(Plan { latency: Duration::from_millis(100), ..Plan::default() });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    let (mut none, mut two, mut frames) = (Vec::new(), Vec::new(), 0);
    // Alternated, so a machine that gets busier or quieter weighs on both alike.
    for _ in 0..PAIRS {
        none.push(one_run(&dir, &server.base_url(), 0).0);
        let (w, f) = one_run(&dir, &server.base_url(), 2);
        two.push(w);
        frames += f;
    }
    let (a, b) = (median(none.clone()), median(two.clone()));
    println!("\n| screens attached | wall, median of {PAIRS} (s) | each run (s) |\n|---|---|---|");
    let each = |xs: &[f64]| xs.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ");
    println!("| none | {a:.2} | {} |", each(&none));
    println!("| two | {b:.2} | {} |", each(&two));
    println!("\ntwo screens / none: {:.3} ({} frames drawn by the screens in all)", b / a, frames);
}

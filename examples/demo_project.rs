//! Writes a demo project with one finished and one interrupted run, for screenshots and trying the
//! binary by hand (the scripted models of the tests, no network):
//!
//!     cargo run --example demo_project -- /tmp/demo
//!     cargo run -- /tmp/demo --offline

#[path = "../tests/common/mod.rs"]
mod common;

use gepa_tui::engine::{Engine, EngineOptions};
use std::path::PathBuf;

/// The optimizer settings of the TUI tests' fixture run.
const OPT: &str = "max_metric_calls = 120\nminibatch_size = 3\nproposals_per_round = 2\nseed = 7\nmerge = true\nmax_merges = 2\npipeline_lag = 1";

fn main() -> anyhow::Result<()> {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        anyhow::bail!("usage: cargo run --example demo_project -- DIR (a folder to create)");
    };
    if dir.join("gepa.toml").exists() {
        anyhow::bail!("{} already holds a project; give a new folder", dir.display());
    }
    common::write_project(&dir, OPT);
    let (project, task) = common::load(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let finished = rt.block_on(async {
        let (engine, _h) = Engine::create(project, task, EngineOptions::default())?;
        anyhow::Ok(engine.run().await?.run_dir)
    })?;
    let id = finished.file_name().unwrap().to_string_lossy().to_string();
    // A copy cut mid-run: resumable, and replayable offline from the cache.
    let cut_dir = dir.join(".gepa/runs").join(format!("{id}-cut"));
    std::fs::create_dir_all(&cut_dir)?;
    std::fs::copy(finished.join("gepa.toml"), cut_dir.join("gepa.toml"))?;
    let ev = std::fs::read(finished.join("events.jsonl"))?;
    std::fs::write(cut_dir.join("events.jsonl"), &ev[..ev.len() / 3])?;
    println!("demo project in {}: runs {id} (finished) and {id}-cut (resumable)", dir.display());
    Ok(())
}

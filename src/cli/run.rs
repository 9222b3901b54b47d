//! `gepa-tui run --headless`: the engine without a screen, for CI and scripts.

use crate::cli::CommonArgs;
use crate::engine::{Engine, EngineOptions, Event, Notice, RunResult, Status};
use crate::eval::objective::format_natural;
use crate::eval::Task;
use crate::llm::{Models, ModelsOptions};
use crate::project::config::ReviewPolicy;
use crate::project::Project;
use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Options shared by the headless runner and the TUI when starting or resuming a run.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    pub resume: Option<String>,
    pub seed: Option<u64>,
    pub max_metric_calls: Option<u64>,
    /// Treat `approve` review policies as `auto`.
    pub auto_approve: bool,
    /// Start the new run from candidate ID of run RUN (`RUN:ID`).
    pub branch: Option<String>,
    /// Folders holding more seed candidates (files named like the components' files).
    pub add_seeds: Vec<std::path::PathBuf>,
}

impl RunArgs {
    /// The engine's options for these arguments, the same for the workbench and headless runs.
    pub fn engine_options(&self, notices: tokio::sync::mpsc::UnboundedSender<Notice>) -> EngineOptions {
        EngineOptions { notices: Some(notices), auto_approve: self.auto_approve, ..Default::default() }
    }
}

/// Loads the project with the run's overrides and builds its task (models with the cache).
pub fn prepare(dir: &Path, args: &RunArgs, common: &CommonArgs) -> Result<(Arc<Project>, Arc<Task>)> {
    let mut project = Project::load(dir)?;
    if let Some(seed) = args.seed {
        project.config.optimizer.seed = seed;
    }
    if let Some(n) = args.max_metric_calls {
        project.config.optimizer.max_metric_calls = n;
    }
    let project = Arc::new(project);
    // A run holds requests through a provider's outage (up to max_outage_secs) instead of
    // scoring them; checked at load, so the conversion cannot fail.
    let max_outage = Duration::try_from_secs_f64(project.config.optimizer.max_outage_secs).unwrap_or_default();
    let models = Models::from_config(
        &project.config.models,
        ModelsOptions {
            cache_dir: Some(project.cache_dir()),
            offline: common.offline,
            max_outage: Some(max_outage),
            ..Default::default()
        },
    )?;
    let task = Task::new(project.clone(), Arc::new(models))?;
    Ok((project, Arc::new(task)))
}

/// Creates or resumes the engine for `args`.
pub fn open_engine(
    project: Arc<Project>,
    task: Arc<Task>,
    args: &RunArgs,
    mut opts: EngineOptions,
) -> Result<(Engine, crate::engine::EngineHandle)> {
    if let Some(spec) = &args.branch {
        opts.seed_texts = Some(branch_texts(&project, spec)?);
    }
    let extra: Vec<(crate::project::Candidate, String)> =
        args.add_seeds.iter().map(|d| candidate_from_folder(&project, d)).collect::<Result<_>>()?;
    let (engine, handle) = match &args.resume {
        Some(id) => Engine::resume(project, task, id, opts)?,
        None => Engine::create(project, task, opts)?,
    };
    for (texts, from) in extra {
        handle.act(crate::engine::event::HumanAction::AddCandidate {
            texts,
            parents: vec![],
            origin: crate::engine::Origin::Human,
            note: format!("added from {from}"),
        });
    }
    Ok((engine, handle))
}

/// A candidate from a folder holding one file per component, named like the project's component
/// files (`prompts/instruction.md` -> `<dir>/instruction.md`).
pub fn candidate_from_folder(project: &Project, dir: &Path) -> Result<(crate::project::Candidate, String)> {
    Ok((project.candidate_from_folder(dir)?, dir.display().to_string()))
}

/// The texts of candidate ID of run RUN (`--branch RUN:ID`, `eval --candidate RUN:ID`).
pub fn branch_texts(project: &Project, spec: &str) -> Result<(crate::project::Candidate, String)> {
    let (run, id) = spec
        .rsplit_once(':')
        .and_then(|(r, i)| i.parse::<usize>().ok().map(|i| (r, i)))
        .with_context(|| format!("expected RUN:ID (e.g. 20261125-084012-3fa9:4), not `{spec}`"))?;
    let run_dir = project.runs_dir().join(run);
    if !run_dir.join("events.jsonl").is_file() {
        anyhow::bail!("no run `{run}` in {} (see `gepa-tui runs`)", project.root.display());
    }
    let (events, _) = crate::engine::run::load_events(&run_dir, false)?;
    let state = crate::engine::RunState::from_events(&events);
    let cand = state.candidates.get(id).with_context(|| format!("run `{run}` has no candidate {id}"))?;
    let mut names = project.component_names();
    names.sort();
    if cand.texts.keys().cloned().collect::<Vec<_>>() != names {
        anyhow::bail!(
            "candidate {id} of run `{run}` has components {:?}, but gepa.toml now has {names:?}",
            cand.texts.keys().collect::<Vec<_>>()
        );
    }
    Ok((cand.texts.clone(), format!("{run}:{id}")))
}

pub fn run_headless(dir: &Path, args: &RunArgs, json: bool, common: &CommonArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let (project, task) = prepare(dir, args, common)?;
        let review = &project.config.review;
        if !args.auto_approve && (review.mutations == ReviewPolicy::Approve || review.merges == ReviewPolicy::Approve) {
            anyhow::bail!(
                "{}: [review] asks a person to approve {}, and a headless run has nobody to ask; \
                 pass --auto-approve, or run it in the workbench (gepa-tui {})",
                project.root.join("gepa.toml").display(),
                if review.mutations == ReviewPolicy::Approve { "mutations" } else { "merges" },
                dir.display()
            );
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, handle) = open_engine(project, task, args, args.engine_options(tx))?;
        let run_id = engine.run_id().to_string();
        let mut progress = Progress::new();
        progress.candidates = engine.state().candidates.len();
        progress.best = engine.state().best_val();
        let run_dir = engine.run_dir().to_path_buf();
        let _log = crate::logging::log_to_run_folder(&run_dir, "headless.log");
        eprintln!("run {run_id} in {}", run_dir.display());
        let engine_task = tokio::spawn(engine.run());

        let ctrl_c = {
            let handle = handle.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    handle.stop();
                }
            })
        };
        while let Some(n) = rx.recv().await {
            match n {
                Notice::Event(ev) => {
                    if json && !matches!(*ev, Event::Finished { .. }) {
                        println!("{}", serde_json::to_string(&*ev).expect("events serialize"));
                    }
                    progress.event(&ev);
                }
                Notice::Status(s) => progress.status(&s),
                n @ (Notice::Warning(_) | Notice::Refused { .. }) => {
                    progress.line(&format!("warning: {}", n.message().unwrap_or_default()))
                }
            }
        }
        ctrl_c.abort();
        progress.done();
        let outcome = match engine_task.await.context("the engine task failed")? {
            Ok(outcome) => outcome,
            Err(e) => {
                let Some(halt) = e.downcast_ref::<crate::engine::Halted>() else { return Err(e) };
                eprintln!(
                    "stopped: {halt}\nnothing was scored for it; once that is fixed, resume with: \
                     gepa-tui run --headless --resume {run_id} {}",
                    dir.display()
                );
                return Ok(ExitCode::from(HALTED));
            }
        };
        match outcome.result {
            Some(r) => {
                if json {
                    println!("{}", finished_line(&r));
                }
                eprintln!("{}", summary(&r, &outcome.run_dir));
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!(
                    "stopped; resume with: gepa-tui run --headless --resume {} {}",
                    outcome.run_id,
                    dir.display()
                );
                Ok(ExitCode::from(130))
            }
        }
    })
}

/// The exit code of a run stopped by its model provider (a refused key, an empty account, an
/// outage past `max_outage_secs`): resumable once fixed.
pub const HALTED: u8 = 3;

/// The last line of `--json`: the run's outcome in one object.
pub fn finished_line(r: &RunResult) -> String {
    let mut line = serde_json::json!({
        "event": "finished",
        "run_id": r.run_id,
        "best_val_score": r.best_val_score,
        "test_score": r.test_score,
        "candidates": r.candidates,
        "metric_calls": r.metric_calls,
        "cost_usd": r.cost_usd,
        "cost_usd_replayed": r.cost_usd_replayed,
        "wall_seconds": r.wall_seconds,
    });
    // With objectives: each one's best candidate and value, and the non-dominated candidates.
    if !r.objectives.objectives.is_empty() {
        line["objectives"] = serde_json::to_value(&r.objectives.objectives).expect("serializes");
        line["non_dominated"] = serde_json::to_value(&r.objectives.non_dominated).expect("serializes");
    }
    line.to_string()
}

pub fn summary(r: &RunResult, run_dir: &Path) -> String {
    let mut s = format!(
        "finished ({}): best val {:.3} (seed {:.3}) from candidate {} of {}; {} metric calls, ${:.4}, {:.1}s",
        r.stop_reason,
        r.best_val_score,
        r.seed_val_score,
        r.best_candidate,
        r.candidates,
        r.metric_calls,
        r.cost_usd,
        r.wall_seconds
    );
    if r.cost_usd_replayed > 0.0 {
        s.push_str(&format!(
            " (replies replayed from the cache, free this time, would have cost ${:.4})",
            r.cost_usd_replayed
        ));
    }
    if let (Some(t), Some(gap)) = (r.test_score, r.val_test_gap) {
        s.push_str(&format!(
            "\ntest {t:.3} (val - test gap {gap:+.3}{})",
            if gap > 0.1 { ": the prompt may be overfit to val" } else { "" }
        ));
    }
    if r.failed_evaluations > 0 {
        s.push_str(&format!(
            "\n{} evaluations failed (model or program errors) and were scored 0",
            r.failed_evaluations
        ));
    }
    s.push_str(&format!("\nbest prompts written to {}", run_dir.join("best").display()));
    s
}

/// The live progress line on stderr: redrawn in place on a terminal, one line per round otherwise.
struct Progress {
    tty: bool,
    last: Status,
    best: f64,
    /// Per objective: its best candidate and val mean (as recorded), from the last round.
    objective_bests: std::collections::BTreeMap<String, crate::engine::event::ObjectiveBest>,
    candidates: usize,
    drawn: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            last: Status::default(),
            best: 0.0,
            objective_bests: Default::default(),
            candidates: 0,
            drawn: false,
        }
    }

    fn render(&self) -> String {
        let s = &self.last;
        let eta = if s.metric_calls > 0 && s.max_metric_calls > s.metric_calls {
            let per = s.elapsed_secs / s.metric_calls as f64;
            format!("ETA {:.0}s", per * (s.max_metric_calls - s.metric_calls) as f64)
        } else {
            "ETA -".into()
        };
        // `prompt_tokens 12 (#0)`: each objective's best value, the natural way round, and who holds it.
        let objectives: String = self
            .objective_bests
            .iter()
            .map(|(name, b)| format!(" | {name} {} (#{})", format_natural(name, b.value), b.candidate))
            .collect();
        format!(
            "[{}/{} calls{}] best val {:.3}{objectives} | {} candidates | ${:.4} | {} | {}{}",
            s.metric_calls,
            s.max_metric_calls,
            if s.evaluations_cached > 0 { format!(", {} reused", s.evaluations_cached) } else { String::new() },
            self.best,
            self.candidates,
            s.cost_usd,
            eta,
            if s.paused { "paused | " } else { "" },
            crate::text::truncate_chars(&s.activity, 110)
        )
    }

    fn status(&mut self, s: &Status) {
        // Without a terminal the line is not redrawn: say when a model stops and starts answering.
        if !self.tty {
            for o in &s.outages {
                if !self.last.outages.iter().any(|p| p.model == o.model) {
                    eprintln!("{}", o.describe());
                }
            }
            for p in &self.last.outages {
                if !s.outages.iter().any(|o| o.model == p.model) {
                    eprintln!("model \"{}\" answers again", p.model);
                }
            }
        }
        self.last = s.clone();
        if self.tty {
            // Redrawn in place: a line wider than the terminal would wrap and leave its first rows
            // behind, so it is cut to the width (the objective bests make it long).
            let width = crossterm::terminal::size().map(|(w, _)| w as usize).unwrap_or(200).max(20);
            eprint!("\r\x1b[2K{}", crate::text::truncate_chars(&self.render(), width - 1));
            let _ = std::io::stderr().flush();
            self.drawn = true;
        }
    }

    fn event(&mut self, ev: &Event) {
        match ev {
            Event::RoundFinished { best_val, objective_bests, .. } => {
                self.best = *best_val;
                self.objective_bests = objective_bests.clone();
                if !self.tty {
                    eprintln!("{}", self.render());
                }
            }
            Event::CandidateAdded { .. } => self.candidates += 1,
            _ => {}
        }
    }

    fn line(&mut self, msg: &str) {
        if self.drawn {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{msg}");
    }

    fn done(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workbench and headless runs build their engine from the same arguments the same way:
    /// `--auto-approve` is not lost in the workbench.
    #[test]
    fn auto_approve_reaches_the_engine_whichever_front_end_starts_it() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let args = RunArgs { auto_approve: true, ..Default::default() };
        assert!(args.engine_options(tx.clone()).auto_approve);
        assert!(!RunArgs::default().engine_options(tx).auto_approve);
    }
}

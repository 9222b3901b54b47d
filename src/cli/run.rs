//! `gepa-tui run --headless`: the engine without a screen, for CI and scripts.

use crate::engine::setup::{prepare, RunArgs, HALTED_EXIT_CODE};
use crate::engine::{Event, Notice, RunResult, Status};
use crate::eval::objective::format_natural;
use crate::project::config::ReviewPolicy;
use crate::tracking::RunEnd;
use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// `wait_for_review`: items an `approve` policy holds wait for a person (an attached workbench or
/// `gepa-tui steer approve|veto`); without it (and without `--auto-approve`) such a policy is an
/// error, so a CI job never hangs waiting for nobody.
pub fn run_headless(dir: &Path, args: &RunArgs, json: bool, wait_for_review: bool) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let (project, task) = prepare(dir, args)?;
        let review = &project.config.review;
        let approve = review.mutations == ReviewPolicy::Approve || review.merges == ReviewPolicy::Approve;
        if !args.auto_approve && !wait_for_review && approve {
            anyhow::bail!(
                "{}: [review] asks a person to approve {}, and a headless run has nobody to ask; \
                 pass --auto-approve, or --wait-for-review to hold each item until a person decides \
                 (from a workbench attached with `gepa-tui --run RUN`, or `gepa-tui steer`), or run it in \
                 the workbench (gepa-tui {})",
                project.root.join("gepa.toml").display(),
                if review.mutations == ReviewPolicy::Approve { "mutations" } else { "merges" },
                dir.display()
            );
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (engine, handle, mut tracking) = crate::tracking::open_tracked(project, task, args, tx)?;
        let run_id = engine.run_id().to_string();
        let mut progress = Progress::new();
        progress.candidates = engine.state().candidates.len();
        progress.best = engine.state().best_val();
        let run_dir = engine.run_dir().to_path_buf();
        let _log = crate::logging::log_to_run_folder(&run_dir, "headless.log");
        eprintln!("run {run_id} in {}", run_dir.display());
        if wait_for_review && approve {
            eprintln!(
                "items to review wait for a person: attach with `gepa-tui --run {run_id} {}`, or decide with \
                 `gepa-tui steer {} --run {run_id} approve|veto ITEM`",
                dir.display(),
                dir.display()
            );
        }
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
                    if let Event::Human { round, action, request: Some(id) } = &*ev {
                        progress.line(&format!("steered (request {id}, round {round}): {}", action.describe()));
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
        let ended = engine_task.await.context("the engine task failed")?;
        // The MLflow run learns how this one ended; its last updates get a bounded time to go.
        if let Some(mut t) = tracking.take() {
            t.end(RunEnd::of(&ended));
            eprintln!("{}", t.done().await);
        }
        let outcome = match ended {
            Ok(outcome) => outcome,
            Err(e) => {
                let Some(halt) = e.downcast_ref::<crate::engine::Halted>() else { return Err(e) };
                if let crate::llm::LlmError::NothingListens { .. } = &halt.0 {
                    eprintln!(
                        "error: {halt}\nonce it listens, resume with: gepa-tui run --headless --resume {run_id} {}",
                        dir.display()
                    );
                    return Ok(ExitCode::from(crate::engine::setup::NOTHING_LISTENS_EXIT_CODE));
                }
                eprintln!(
                    "stopped: {halt}\nnothing was scored for it; once that is fixed, resume with: \
                     gepa-tui run --headless --resume {run_id} {}",
                    dir.display()
                );
                return Ok(ExitCode::from(HALTED_EXIT_CODE));
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
        "cost_usd_dropped": r.cost_usd_dropped,
        "wall_seconds": r.wall_seconds,
    });
    // With objectives: each one's best candidate and value, and the non-dominated candidates.
    if !r.objectives.objectives.is_empty() {
        line["objectives"] = serde_json::to_value(&r.objectives.objectives).expect("serializes");
        line["non_dominated"] = serde_json::to_value(&r.objectives.non_dominated).expect("serializes");
    }
    // Examples a person excluded or fixed: the scores above are without (or with the corrected) ones.
    if !r.data.excluded_examples.is_empty() {
        line["excluded_examples"] = serde_json::to_value(&r.data.excluded_examples).expect("serializes");
    }
    if !r.data.data_fixes.is_empty() {
        line["data_fixes"] = serde_json::to_value(&r.data.data_fixes).expect("serializes");
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
    if r.cost_usd_dropped > 0.0 {
        s.push_str(&format!(
            " (of which ${:.4}, {:.0}%, paid for work planned ahead and dropped)",
            r.cost_usd_dropped,
            100.0 * r.cost_usd_dropped / r.cost_usd.max(f64::MIN_POSITIVE)
        ));
    }
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
    let (out, fixed) = (r.data.excluded_examples.len(), r.data.data_fixes.len());
    if out + fixed > 0 {
        s.push_str(&format!(
            "\n{out} example(s) excluded and {fixed} field(s) corrected by a person (the scores count without / with \
             them; result.json lists them; `gepa-tui export --data-fixes --run {}` writes corrected data files)",
            r.run_id
        ));
    }
    if r.failed_evaluations > 0 {
        s.push_str(&format!(
            "\n{} evaluations failed (model or program errors) and were scored 0",
            r.failed_evaluations
        ));
        if r.timed_out_evaluations > 0 {
            s.push_str(&format!(
                "; {} of them timed out (a program ran past its timeout_secs and was stopped: raise timeout_secs, \
                 or lower [system] / [evaluator] concurrency if the programs compete for the CPU)",
                r.timed_out_evaluations
            ));
        }
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
            // The engine changed how it asks: said once, where the progress is.
            ev @ Event::ReflectionAdapted { round, .. } => {
                if let Some(t) = ev.adapted() {
                    self.line(&format!("round {round}: {}", t.message()));
                }
            }
            // A person's exclusion or fix (from the workbench or `gepa-tui steer`), as taken.
            Event::Human { round, action, .. } if action.example().is_some() => {
                self.line(&format!("round {round}: {}", action.describe()))
            }
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

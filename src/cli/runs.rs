//! `gepa-tui runs` and `gepa-tui export`: read a project's run store (and, for `export
//! --data-fixes`, the project's data files, which are read and never written).

use crate::engine::run::{best_file_names, load_events};
use crate::engine::RunState;
use crate::project::Project;
use crate::store::list_runs;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn list(dir: &Path) -> Result<ExitCode> {
    let runs = list_runs(&dir.join(".gepa").join("runs"));
    if runs.is_empty() {
        println!("no runs yet in {} (start one with `gepa-tui` or `gepa-tui run --headless`)", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<22} {:<10} {:>10} {:>10} {:>11} {:>7}", "RUN", "STATUS", "BEST VAL", "TEST", "CANDIDATES", "CALLS");
    for r in runs {
        let (events, _) = match load_events(&r.dir, false) {
            Ok(e) => e,
            Err(e) => {
                println!("{:<22} cannot be read: {e:#}", r.id);
                continue;
            }
        };
        let s = RunState::from_events(&events);
        // A run a live process holds is running (`gepa-tui --run RUN` attaches to it); one whose
        // process is gone without finishing (killed, power lost) is resumable.
        let status = if r.running.is_some() {
            "running"
        } else if r.finished {
            "finished"
        } else {
            "resumable"
        };
        let test = s.test_score.map(|t| format!("{t:.3}")).unwrap_or_else(|| "-".into());
        println!(
            "{:<22} {:<10} {:>10.3} {:>10} {:>11} {:>7}",
            r.id,
            status,
            s.best_val(),
            test,
            s.candidates.len(),
            s.metric_calls
        );
        if let Some(h) = &r.running {
            println!("{:<22} by {}: `gepa-tui --run {} {}` attaches to it", "", h.describe(), r.id, dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--candidate`: an id, or an objective's name for the candidate with the best val mean on it.
fn chosen_candidate(state: &RunState, run: &str, arg: &str) -> Result<usize> {
    if let Ok(id) = arg.trim().parse::<usize>() {
        return Ok(id);
    }
    if let Some((id, _)) = state.objective_best(arg.trim()) {
        return Ok(id);
    }
    let names = state.objective_names();
    if names.is_empty() {
        bail!("--candidate {arg}: give a candidate id (run `{run}` records no objectives)");
    }
    bail!("--candidate {arg}: give a candidate id or one of run `{run}`'s objectives: {}", names.join(", "))
}

/// `export --blame`: the candidate's texts, each line with the candidate that first wrote it.
pub fn export_blame(dir: &Path, run: &str, candidate: Option<&str>) -> Result<ExitCode> {
    let project = Project::load(dir)?;
    let (events, state, id) = run_candidate(&project, run, candidate)?;
    let authors = crate::engine::blame::authors(&events);
    print!("{}", crate::engine::blame::plain_text(&state, &authors, id));
    Ok(ExitCode::SUCCESS)
}

/// A run's events, its state, and the candidate `--candidate` names (default: the best).
fn run_candidate(
    project: &Project,
    run: &str,
    candidate: Option<&str>,
) -> Result<(Vec<crate::engine::Event>, RunState, crate::engine::CandidateId)> {
    let run_dir = project.runs_dir().join(run);
    if !run_dir.join("events.jsonl").is_file() {
        bail!("no run `{run}` in {} (see `gepa-tui runs`)", project.root.display());
    }
    let (events, _) = load_events(&run_dir, false)?;
    let state = RunState::from_events(&events);
    let id = match candidate {
        Some(c) => chosen_candidate(&state, run, c)?,
        None => state.best().context("the run has no scored candidates yet")?,
    };
    if state.candidates.get(id).is_none() {
        bail!("run `{run}` has no candidate {id} (it has {})", state.candidates.len());
    }
    Ok((events, state, id))
}

pub fn export(
    dir: &Path,
    run: &str,
    candidate: Option<&str>,
    out: Option<&Path>,
    write_prompts: bool,
    yes: bool,
) -> Result<ExitCode> {
    let project = Project::load(dir)?;
    let (_, state, id) = run_candidate(&project, run, candidate)?;
    let cand = &state.candidates[id];
    if out.is_none() && !write_prompts {
        bail!("say where to export: --out DIR, or --write-prompts to overwrite the project's prompt files");
    }
    if let Some(out) = out {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        for (name, file) in best_file_names(&project) {
            let path = out.join(&file);
            if path.exists() {
                bail!("{} exists; not overwriting it (choose an empty folder)", path.display());
            }
            std::fs::write(&path, &cand.texts[&name]).with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    if write_prompts {
        let targets: Vec<_> =
            project.config.components.iter().map(|c| (c.name.clone(), project.root.join(&c.file))).collect();
        if !yes {
            if !std::io::stdin().is_terminal() {
                bail!("--write-prompts overwrites your prompt files; confirm with --yes when not at a terminal");
            }
            print!(
                "overwrite {} with candidate {id} of run {run}? [y/N] ",
                targets.iter().map(|(_, p)| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
            std::io::stdout().flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                println!("nothing written");
                return Ok(ExitCode::from(1));
            }
        }
        for (name, path) in targets {
            // The prompt files are the next run's seed: text the run protected keeps its markers.
            let spans = state.protected.get(&name).map(Vec::as_slice).unwrap_or(&[]);
            let text = crate::project::markers::mark_spans(&cand.texts[&name], spans);
            crate::store::write_atomic(&path, text.as_bytes())?;
            let kept = spans.iter().filter(|s| cand.texts[&name].contains(s.as_str())).count();
            if kept > 0 {
                println!("wrote {} ({kept} protected span(s) between <<keep>> markers)", path.display());
            } else {
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `export --data-fixes`: corrected copies of the data files run `run` changed (excluded examples
/// left out, fixed fields replaced, every other line as it is) written to `out` (default: the run's
/// folder, `data-fixes/`). A file there is replaced only with `force`; a data file is never
/// written, whatever `out` says.
pub fn export_data_fixes(dir: &Path, run: Option<&str>, out: Option<&Path>, force: bool) -> Result<ExitCode> {
    use crate::engine::data_fixes::corrected_copy;
    use crate::project::Split;
    let project = Project::load(dir)?;
    let (run, state) = match run {
        Some(run) => {
            let run_dir = project.runs_dir().join(run);
            if !run_dir.join("events.jsonl").is_file() {
                bail!("no run `{run}` in {} (see `gepa-tui runs`)", project.root.display());
            }
            let (events, _) = load_events(&run_dir, false)?;
            (run.to_string(), RunState::from_events(&events))
        }
        None => list_runs(&project.runs_dir())
            .into_iter()
            .find_map(|r| {
                let (events, _) = load_events(&r.dir, false).ok()?;
                let s = RunState::from_events(&events);
                (!s.data.is_empty()).then_some((r.id, s))
            })
            .with_context(|| {
                format!("no run in {} excluded or fixed an example; nothing to export", project.root.display())
            })?,
    };
    let report = state.data_report();
    if report.excluded_examples.is_empty() && report.data_fixes.is_empty() {
        println!("run {run} excluded and fixed no example; nothing to write");
        return Ok(ExitCode::SUCCESS);
    }
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| project.runs_dir().join(&run).join("data-fixes"));
    let d = &project.config.data;
    let mut files: Vec<(Split, &str)> = Vec::new();
    for (split, file) in [(Split::Train, d.train.as_str()), (Split::Val, d.val.as_str())] {
        let changed = report.excluded_examples.iter().any(|e| e.split == split)
            || report.data_fixes.iter().any(|f| f.split == split);
        if changed {
            files.push((split, file));
        }
    }
    // Named like the data files; a split's name first when two share one.
    let name = |file: &str| Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let clash = files.len() == 2 && name(files[0].1) == name(files[1].1);
    let mut planned = Vec::new();
    for (split, file) in &files {
        let target = out.join(if clash { format!("{}.{}", split.as_str(), name(file)) } else { name(file) });
        let source = project.root.join(file);
        if same_file(&target, &source) {
            bail!(
                "{} is the project's {} data file; export --data-fixes never writes in place: choose another --out",
                target.display(),
                split.as_str()
            );
        }
        if target.exists() && !force {
            bail!(
                "{} exists; not overwriting it (pass --force to replace it, or choose another --out)",
                target.display()
            );
        }
        let text = std::fs::read_to_string(&source).with_context(|| format!("cannot read {}", source.display()))?;
        let (copy, notes) = corrected_copy(&text, file, *split, &report).map_err(|e| anyhow::anyhow!(e))?;
        planned.push((target, copy, notes));
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    for (target, copy, notes) in planned {
        crate::store::write_atomic(&target, copy.as_bytes())?;
        for n in notes {
            println!("  {}", crate::text::sanitize(&n));
        }
        println!("wrote {}", target.display());
    }
    println!("the project's data files are unchanged; copy these over them yourself once you have checked them");
    Ok(ExitCode::SUCCESS)
}

/// Whether two paths name the same file (the second exists; the first may not yet).
fn same_file(a: &Path, b: &Path) -> bool {
    let Ok(b) = b.canonicalize() else { return false };
    if let Ok(a) = a.canonicalize() {
        return a == b;
    }
    match (a.parent().and_then(|p| p.canonicalize().ok()), a.file_name()) {
        (Some(dir), Some(name)) => dir.join(name) == b,
        _ => false,
    }
}

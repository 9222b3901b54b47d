//! Preparing and opening a run, in one place for every front end: the workbench, the headless
//! runner and `eval` load the project with the same overrides, build the same task (models with
//! the response cache), and create, resume or branch the engine with the same options, so a flag
//! cannot hold in one and be lost in another (as `--auto-approve` once was in the workbench).

use crate::engine::settings::Overrides;
use crate::engine::{Engine, EngineOptions, Notice};
use crate::eval::Task;
use crate::llm::{Models, ModelsOptions};
use crate::project::Project;
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The exit code of a front end whose run a model stopped (resumable once the cause is fixed).
pub const HALTED_EXIT_CODE: u8 = 3;

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
    /// A new run that replays run RUN: its seed, budget and branch point unless given here, and
    /// the draws of its sampling models (see `llm::draw`).
    pub replay: Option<String>,
    /// Folders holding more seed candidates (files named like the components' files).
    pub add_seeds: Vec<std::path::PathBuf>,
    /// Serve every model call from the response cache; a miss is an error.
    pub offline: bool,
    /// Wait for a server where nothing listens yet instead of failing at once (`--wait`).
    pub wait: bool,
}

/// The exit code of a run that could not start: nothing listens at a model's base URL (as for any
/// other error a person must fix first).
pub const NOTHING_LISTENS_EXIT_CODE: u8 = 2;

impl RunArgs {
    /// The engine's options for these arguments, the same for the workbench and headless runs.
    pub fn engine_options(&self, notices: tokio::sync::mpsc::UnboundedSender<Notice>) -> EngineOptions {
        EngineOptions {
            notices: Some(notices),
            auto_approve: self.auto_approve,
            overrides: Overrides { seed: self.seed, max_metric_calls: self.max_metric_calls },
            ..Default::default()
        }
    }
}

/// What `--replay RUN` takes from the run it replays.
struct Replayed {
    seed: u64,
    max_metric_calls: u64,
    branched_from: Option<String>,
    /// Whose draws RUN's were (its own id, or those of the run it replayed in turn).
    draws: String,
}

fn replayed(project: &Project, run: &str) -> Result<Replayed> {
    let run_dir = project.runs_dir().join(run);
    if !run_dir.join("events.jsonl").is_file() {
        anyhow::bail!("--replay {run}: no run `{run}` in {} (see `gepa-tui runs`)", project.root.display());
    }
    let (events, _) = crate::engine::run::load_events(&run_dir, false)?;
    let state = crate::engine::RunState::from_events(&events);
    if state.run_id.is_empty() {
        anyhow::bail!("--replay {run}: {} has no run_started event", run_dir.join("events.jsonl").display());
    }
    Ok(Replayed {
        seed: state.settings.seed,
        max_metric_calls: state.settings.max_metric_calls,
        branched_from: state.branched_from,
        draws: state.draws,
    })
}

/// Loads the project and builds its task (models with the cache).
pub fn prepare(dir: &Path, args: &RunArgs) -> Result<(Arc<Project>, Arc<Task>)> {
    // `--seed` and `--max-metric-calls` go to the engine (`engine_options`), which records the
    // settings in force in the run's events: gepa.toml stays as written.
    let project = Arc::new(Project::load(dir)?);
    // A run holds requests through a provider's outage (up to max_outage_secs) instead of
    // scoring them; checked at load, so the conversion cannot fail.
    let max_outage = Duration::try_from_secs_f64(project.config.optimizer.max_outage_secs).unwrap_or_default();
    let models = Models::from_config(
        &project.config.models,
        ModelsOptions {
            cache_dir: Some(project.cache_dir()),
            offline: args.offline,
            max_outage: Some(max_outage),
            wait_for_servers: args.wait,
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
    if let Some(run) = &args.replay {
        let r = replayed(&project, run)?;
        opts.draws_of = Some(r.draws);
        // RUN's seed and budget, unless the command line gives its own.
        opts.overrides.seed = opts.overrides.seed.or(Some(r.seed));
        opts.overrides.max_metric_calls = opts.overrides.max_metric_calls.or(Some(r.max_metric_calls));
        if args.branch.is_none() {
            if let Some(spec) = &r.branched_from {
                opts.seed_texts = Some(branch_texts(&project, spec)?);
            }
        }
    }
    if let Some(spec) = &args.branch {
        opts.seed_texts = Some(branch_texts(&project, spec)?);
    }
    let extra: Vec<(crate::project::Candidate, crate::project::markers::Protected, String)> =
        args.add_seeds.iter().map(|d| candidate_from_folder(&project, d)).collect::<Result<_>>()?;
    let (engine, handle) = match &args.resume {
        Some(id) => Engine::resume(project, task, id, opts)?,
        None => Engine::create(project, task, opts)?,
    };
    for (texts, protected, from) in extra {
        handle.act(crate::engine::event::HumanAction::AddCandidate {
            texts,
            parents: vec![],
            origin: crate::engine::Origin::Human,
            note: format!("added from {from}"),
        });
        // What its files mark with <<keep>> is protected from then on.
        for (component, spans) in protected {
            for text in spans {
                handle.act(crate::engine::event::HumanAction::Protect { component: component.clone(), text });
            }
        }
    }
    Ok((engine, handle))
}

/// A candidate from a folder holding one file per component, named like the project's component
/// files (`prompts/instruction.md` -> `<dir>/instruction.md`): its texts, the spans its keep
/// markers protect, and where it came from.
pub fn candidate_from_folder(
    project: &Project,
    dir: &Path,
) -> Result<(crate::project::Candidate, crate::project::markers::Protected, String)> {
    let (texts, protected) = project.candidate_from_folder(dir)?;
    Ok((texts, protected, dir.display().to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `--auto-approve` is carried into the engine's options (both front ends build them with
    /// `engine_options`; tests/headless.rs runs the headless one with the flag).
    #[test]
    fn auto_approve_is_carried_into_the_engine_options() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let args = RunArgs { auto_approve: true, ..Default::default() };
        assert!(args.engine_options(tx.clone()).auto_approve);
        assert!(!RunArgs::default().engine_options(tx).auto_approve);
    }
}

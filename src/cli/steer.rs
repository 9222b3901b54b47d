//! `gepa-tui steer [DIR] --run RUN <action>`: hands a decision to a live run without the screen,
//! through the run folder's inbox (see `engine::steer`), and prints the run's answer.
//!
//! Each subcommand only builds its `HumanAction`; sending, waiting and the messages are shared,
//! so another kind of steering is one more variant of `SteerAction` and its arm in `action`.

use crate::engine::event::{GuideExample, HumanAction};
use crate::engine::steer::{self, RunControl, SteerAnswer};
use crate::engine::RunState;
use crate::project::Split;
use crate::store::runs::RunLock;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `steer`'s exit codes besides 0 (taken) and 2 (an error: a bad argument, an unknown or finished
/// run).
pub const REFUSED_EXIT_CODE: u8 = 1;
pub const NOT_ANSWERED_EXIT_CODE: u8 = 4;

#[derive(Debug, Clone, Subcommand)]
pub enum SteerAction {
    /// Approve review item ITEM (a child an `approve` policy holds): it is scored on val and joins
    /// the pool.
    Approve {
        /// The item's number (the Review view, or the run's progress line).
        item: u64,
    },
    /// Veto review item ITEM; the reason is given to later reflections on what it changed.
    Veto {
        item: u64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Pause the run: calls in flight finish, nothing new starts (taken at once).
    Pause,
    /// Resume a paused run.
    Resume,
    /// Stop the run now; it stays resumable (the rounds in flight are redone on resume).
    Stop,
    /// Run a reflection on CANDIDATE with NOTE added to the reflective prompt (its next round).
    Guide {
        /// The candidate to reflect on (an id from the Frontier or result.json).
        candidate: usize,
        /// What the reflection should take into account, in your words.
        note: String,
        /// An example to add to the reflective dataset: a train or val example id.
        #[arg(long, value_name = "ID")]
        example: Option<String>,
        /// The example's split, when the id is in both train and val.
        #[arg(long, value_name = "train|val", requires = "example")]
        split: Option<String>,
        /// The component to rewrite (default: the candidate's next in the round robin).
        #[arg(long, value_name = "NAME")]
        component: Option<String>,
    },
    /// Protect TEXT of COMPONENT: later reflections must keep it verbatim, and a child that drops
    /// or changes it is refused before it is evaluated.
    Protect {
        /// The component (a [[components]] name in gepa.toml).
        component: String,
        /// The exact text to keep, as a candidate's component has it.
        text: String,
    },
    /// Exclude a val or train example from this run (mislabelled, broken): it counts in no val
    /// mean or front from the round that takes it, and is evaluated and drawn no more. The data
    /// file is not touched.
    Exclude {
        /// The example's id.
        example: String,
        /// Why (required; recorded and shown).
        #[arg(long)]
        reason: String,
        /// The example's split, when the id is in both train and val.
        #[arg(long, value_name = "train|val")]
        split: Option<String>,
    },
    /// Correct a field of a val or train example (its expected answer): later evaluations use the
    /// new value, and every candidate's recorded output on a val example is scored again. The
    /// data file is not touched (`gepa-tui export --data-fixes` writes corrected copies).
    Fix {
        /// The example's id.
        example: String,
        /// The corrected value (a field holding a number, list or object takes JSON).
        #[arg(long)]
        expected: String,
        /// The field to correct (default: the evaluator's reference field, `[evaluator] field`).
        #[arg(long, value_name = "NAME")]
        field: Option<String>,
        /// The example's split, when the id is in both train and val.
        #[arg(long, value_name = "train|val")]
        split: Option<String>,
    },
}

impl SteerAction {
    /// The decision this asks of the run whose state is `state` (project in `dir`). Err: the
    /// arguments do not fit it.
    fn action(&self, dir: &Path, state: &RunState, run: &str) -> Result<HumanAction> {
        Ok(match self {
            SteerAction::Approve { item } => HumanAction::Approve { item: *item },
            SteerAction::Veto { item, reason } => HumanAction::Veto { item: *item, reason: reason.clone() },
            SteerAction::Pause | SteerAction::Resume | SteerAction::Stop => {
                unreachable!("controls are sent as controls")
            }
            SteerAction::Guide { candidate, note, example, split, component } => {
                let example = match example {
                    Some(id) => Some(example_in(state, run, id, split.as_deref())?),
                    None => None,
                };
                HumanAction::Guide { candidate: *candidate, note: note.clone(), example, component: component.clone() }
            }
            SteerAction::Protect { component, text } => {
                HumanAction::Protect { component: component.clone(), text: text.clone() }
            }
            SteerAction::Exclude { example, reason, split } => {
                let split = example_in(state, run, example, split.as_deref())?.split;
                HumanAction::ExcludeExample { split, example: example.clone(), reason: reason.clone() }
            }
            SteerAction::Fix { example, expected, field, split } => {
                let split = example_in(state, run, example, split.as_deref())?.split;
                // The data file's value says how the typed one is read (text, or JSON).
                let project = crate::project::Project::load(dir)?;
                let field = match field.clone().or_else(|| project.config.evaluator.field.clone()) {
                    Some(f) => f,
                    None => {
                        bail!("the evaluator names no reference field: say which field to correct with --field NAME")
                    }
                };
                let current = project.split(split).iter().find(|e| e.id == *example).and_then(|e| e.fields.get(&field));
                let value = crate::engine::data_fixes::parse_field_value(current, expected)
                    .map_err(|e| anyhow::anyhow!("--expected for `{field}` of `{example}`: {e}"))?;
                HumanAction::FixExample { split, example: example.clone(), field, value }
            }
        })
    }
}

/// The split of example `id` in the run: `split` when given, else the one (train or val) that
/// has it.
fn example_in(state: &RunState, run: &str, id: &str, split: Option<&str>) -> Result<GuideExample> {
    let in_val = state.val_ids.iter().any(|v| v == id);
    let in_train = state.train_ids.iter().any(|t| t == id);
    let split = match split {
        Some("val") => Split::Val,
        Some("train") => Split::Train,
        Some(other) => bail!("--split {other}: the example must be a train or val one (--split train or --split val)"),
        None => match (in_train, in_val) {
            (false, true) => Split::Val,
            (true, false) => Split::Train,
            (true, true) => {
                bail!("run {run} has a train and a val example `{id}`: say which with --split train or --split val")
            }
            (false, false) => bail!("run {run} has no train or val example `{id}`"),
        },
    };
    Ok(GuideExample { split, id: id.to_string() })
}

/// Sends the decision to run `run` of the project in `dir` and waits up to `wait` for its answer.
pub fn run(dir: &Path, run: &str, action: &SteerAction, wait: Duration) -> Result<ExitCode> {
    let run_dir = dir.join(".gepa").join("runs").join(run);
    if run.is_empty() || run.contains(['/', '\\']) || !run_dir.join("events.jsonl").is_file() {
        bail!(
            "no run `{run}` in {}: `gepa-tui runs {}` lists the runs",
            dir.join(".gepa").join("runs").display(),
            dir.display()
        );
    }
    let (events, _) = crate::engine::run::load_events(&run_dir, false)?;
    let state = RunState::from_events(&events);
    if let Some(reason) = &state.finished {
        bail!(
            "run {run} is finished ({}): steering needs a live run; start a new one, or branch one from a candidate with `gepa-tui run --branch {run}:ID`",
            crate::text::sanitize(reason)
        );
    }
    let control = match action {
        SteerAction::Pause => Some(RunControl::Pause),
        SteerAction::Resume => Some(RunControl::Resume),
        SteerAction::Stop => Some(RunControl::Stop),
        _ => None,
    };
    if let Some(control) = control {
        return send_control(&run_dir, run, control, wait);
    }
    let action = action.action(dir, &state, run)?;
    // What the run would refuse now is refused here, without a round trip.
    if let Err(why) = action.check(&state, &[]) {
        println!("refused: {why}");
        return Ok(ExitCode::from(REFUSED_EXIT_CODE));
    }
    let live = RunLock::is_held(&run_dir);
    let id = steer::send(&run_dir, action)
        .with_context(|| format!("cannot write the request to {}", run_dir.join(steer::INBOX).display()))?;
    if !live {
        println!(
            "run {run} is not running (it stopped and can be resumed): request {id} waits in its inbox and is taken when the run resumes (gepa-tui run --headless --resume {run}, or reopen it in the workbench)"
        );
        return Ok(ExitCode::from(NOT_ANSWERED_EXIT_CODE));
    }
    wait_for_answer(&run_dir, run, &id, wait)
}

/// A control is for a process that runs the run now: a stopped run is told so, nothing is sent.
fn send_control(run_dir: &Path, run: &str, control: RunControl, wait: Duration) -> Result<ExitCode> {
    if !RunLock::is_held(run_dir) {
        bail!(
            "run {run} is not running (nothing to {}); resume it with `gepa-tui run --headless --resume {run}`",
            control.word()
        );
    }
    let id = steer::send_control(run_dir, control)
        .with_context(|| format!("cannot write the request to {}", run_dir.join(steer::INBOX).display()))?;
    wait_for_answer(run_dir, run, &id, wait)
}

fn wait_for_answer(run_dir: &Path, run: &str, id: &str, wait: Duration) -> Result<ExitCode> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(answer) = steer::answers(run_dir).remove(id) {
            return Ok(report(run, &answer));
        }
        if !RunLock::is_held(run_dir) {
            // It may have answered just before it let go.
            if let Some(answer) = steer::answers(run_dir).remove(id) {
                return Ok(report(run, &answer));
            }
            println!(
                "run {run} stopped before it took request {id}; the request waits in its inbox and is taken when the run resumes"
            );
            return Ok(ExitCode::from(NOT_ANSWERED_EXIT_CODE));
        }
        if Instant::now() >= deadline {
            println!(
                "run {run} has not answered request {id} in {:.0} s (it takes requests when it plans its next round; a run waiting for a review, or paused with every round planned, takes it later); the request stays in its inbox",
                wait.as_secs_f64()
            );
            return Ok(ExitCode::from(NOT_ANSWERED_EXIT_CODE));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn report(run: &str, answer: &SteerAnswer) -> ExitCode {
    if answer.accepted {
        match answer.round {
            Some(r) => println!("taken by run {run}: recorded with round {r}"),
            None => println!("taken by run {run}"),
        }
        ExitCode::SUCCESS
    } else {
        let why = answer.why.as_deref().map(crate::text::sanitize).unwrap_or_else(|| "no reason given".into());
        println!("refused by run {run}: {why}");
        ExitCode::from(REFUSED_EXIT_CODE)
    }
}

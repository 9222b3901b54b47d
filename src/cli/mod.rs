//! Command-line interface: parses arguments and wires the parts together.

pub mod check;
pub mod eval;
pub mod forecast;
pub mod help;
pub mod init;
pub mod run;
pub mod runs;
pub mod steer;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "gepa-tui",
    version,
    about = "A terminal workbench for evolving LLM prompts with GEPA",
    long_about = help::MAIN_LONG,
    after_long_help = help::MAIN_AFTER,
    after_help = "Examples:\n  gepa-tui sample-projects/support-triage --offline   replay a recorded sample run\n  gepa-tui init my-project                     write a starter project\n  gepa-tui check my-project                    validate it and ping its models\n  gepa-tui run --headless --json my-project    optimize without a screen\n\nMore with --help; each command has its own (gepa-tui run --help)."
)]
pub struct Cli {
    /// The project folder (default: the current folder).
    pub dir: Option<PathBuf>,
    /// Reopen this run (an id from `gepa-tui runs`).
    #[arg(long)]
    pub run: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Colour theme: dark, light, high-contrast, or a theme file name from the config dir.
    #[arg(long, global = true)]
    pub theme: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct CommonArgs {
    /// Serve every model call from the response cache; a miss is an error (no network, no key needed).
    #[arg(long, global = true)]
    pub offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a project folder and ping each model with a tiny request.
    #[command(long_about = help::CHECK_LONG, after_long_help = help::CHECK_AFTER)]
    Check {
        /// The project folder (default: the current folder).
        dir: Option<PathBuf>,
        /// Forecast the run's use from the prompt sizes alone: no dry evaluation, no model called.
        #[arg(long)]
        estimate_only: bool,
    },
    /// Score a candidate (default: the seed) on a data split.
    #[command(long_about = help::EVAL_LONG, after_long_help = help::EVAL_AFTER)]
    Eval {
        /// The project folder (default: the current folder).
        dir: Option<PathBuf>,
        /// train, val or test.
        #[arg(long, default_value = "val")]
        split: String,
        /// Score a candidate from a run instead of the seed: RUN:ID.
        #[arg(long)]
        candidate: Option<String>,
        /// Print one JSON object with per-example results instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Optimize: with --headless, without a screen (a progress line on stderr).
    #[command(long_about = help::RUN_LONG, after_long_help = help::RUN_AFTER)]
    Run {
        /// The project folder (default: the current folder).
        dir: Option<PathBuf>,
        /// Run without the TUI.
        #[arg(long)]
        headless: bool,
        /// Print one JSON object per event on stdout; the last is {"event":"finished",…}.
        #[arg(long)]
        json: bool,
        /// Continue an interrupted run (an id from `gepa-tui runs`).
        #[arg(long, value_name = "RUN")]
        resume: Option<String>,
        /// Override [optimizer] seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override [optimizer] max_metric_calls.
        #[arg(long, value_name = "N")]
        max_metric_calls: Option<u64>,
        /// Approve every child a `[review]` policy of "approve" would hold for a person.
        #[arg(long)]
        auto_approve: bool,
        /// Headless with a `[review]` policy of "approve": hold each item for a person, who decides
        /// from a workbench attached to the run (`gepa-tui --run RUN DIR`) or with `gepa-tui steer`.
        #[arg(long, requires = "headless", conflicts_with = "auto_approve")]
        wait_for_review: bool,
        /// Start the new run from a candidate of an earlier run instead of the prompt files: RUN:ID.
        #[arg(long, value_name = "RUN:ID", conflicts_with = "resume")]
        branch: Option<String>,
        /// A new run that replays run RUN: its seed, budget and branch point, and the replies its
        /// sampling models drew (with --offline, nothing is sent).
        #[arg(long, value_name = "RUN", conflicts_with = "resume")]
        replay: Option<String>,
        /// Add a candidate from a folder of component files (named like the prompt files); repeatable.
        #[arg(long = "add-seed", value_name = "DIR")]
        add_seeds: Vec<PathBuf>,
        /// Wait for a model server that is not listening yet (by default a run fails at once, exit 2,
        /// when nothing listens at a base URL that has not answered in this run).
        #[arg(long)]
        wait: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    #[command(long_about = help::COMPLETIONS_LONG, after_long_help = help::COMPLETIONS_AFTER)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from these same definitions.
    #[command(long_about = help::MAN_LONG, after_long_help = help::MAN_AFTER)]
    Man,
    /// List the runs of a project, newest first.
    #[command(long_about = help::RUNS_LONG, after_long_help = help::RUNS_AFTER)]
    Runs {
        /// The project folder (default: the current folder).
        dir: Option<PathBuf>,
    },
    /// Write the best (or a chosen) candidate's texts of a run to a folder, or back over the prompts.
    #[command(long_about = help::EXPORT_LONG, after_long_help = help::EXPORT_AFTER)]
    Export {
        /// The project folder (default: the current folder).
        dir: Option<PathBuf>,
        /// The run to export from (an id from `gepa-tui runs`; with --data-fixes, default: the newest
        /// run that excluded or fixed an example).
        #[arg(long, value_name = "RUN", required_unless_present = "data_fixes")]
        run: Option<String>,
        /// Candidate id, or an objective's name for its best candidate (default: the best by val mean).
        #[arg(long, value_name = "ID|OBJECTIVE")]
        candidate: Option<String>,
        /// Folder to write the texts (or, with --data-fixes, the corrected data files) into; created.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Overwrite the project's component files with the candidate's texts (asks first; --yes to skip).
        #[arg(long)]
        write_prompts: bool,
        /// With --write-prompts: overwrite without asking.
        #[arg(long)]
        yes: bool,
        /// Print the candidate's texts with, beside each line, the candidate and round that first
        /// wrote it, then what wrote each of those (a reflection and the feedback it read, or a person).
        #[arg(long, conflicts_with_all = ["out", "write_prompts"])]
        blame: bool,
        /// Write corrected copies of the data files a run changed (examples excluded, fields fixed)
        /// to --out (default: RUN's folder, data-fixes/); the data files themselves are never written.
        #[arg(long, conflicts_with_all = ["candidate", "write_prompts"])]
        data_fixes: bool,
        /// With --data-fixes: replace files that exist in --out.
        #[arg(long, requires = "data_fixes")]
        force: bool,
    },
    /// Steer a live run without the screen: approve, veto, guide, protect, exclude, fix; pause, resume, stop.
    #[command(long_about = help::STEER_LONG, after_long_help = help::STEER_AFTER)]
    Steer {
        /// The project folder (default: the current folder).
        dir: Option<PathBuf>,
        /// The run to steer (an id from `gepa-tui runs`).
        #[arg(long, value_name = "RUN")]
        run: String,
        /// Seconds to wait for the run's answer (0: send and return).
        #[arg(long, value_name = "SECS", default_value_t = 60.0)]
        wait: f64,
        #[command(subcommand)]
        action: steer::SteerAction,
    },
    /// Write a commented starter project (never overwrites existing files).
    #[command(long_about = help::INIT_LONG, after_long_help = help::INIT_AFTER)]
    Init {
        /// The folder to write into (default: the current folder; created if missing).
        dir: Option<PathBuf>,
    },
}

pub fn project_dir(dir: &Option<PathBuf>) -> PathBuf {
    dir.clone().unwrap_or_else(|| PathBuf::from("."))
}

//! Command-line interface: parses arguments and wires the parts together.

pub mod check;
pub mod eval;
pub mod init;
pub mod run;
pub mod runs;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "gepa-tui",
    version,
    about = "A terminal workbench for evolving LLM prompts with GEPA",
    long_about = "gepa-tui evolves the prompts of an LLM system with GEPA (reflective prompt evolution): \
a model reads execution traces and feedback, writes a better prompt, and a Pareto frontier keeps \
every candidate that is best on some example.\n\n\
Run it in a project folder (gepa.toml, prompts/, data/) to open the workbench.",
    after_help = "Examples:\n  gepa-tui sample-projects/support-triage      open the workbench on a sample\n  gepa-tui init my-project                     write a starter project\n  gepa-tui check my-project                    validate it and ping its models\n  gepa-tui run --headless --json my-project    optimize without a screen"
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
    #[command(
        after_help = "Examples:\n  gepa-tui check                       the project in the current folder\n  gepa-tui check --offline my-project  validate without calling any model\n\nExit status: 0 when everything is fine, 1 on any problem."
    )]
    Check { dir: Option<PathBuf> },
    /// Score a candidate (default: the seed) on a data split.
    #[command(
        after_help = "Examples:\n  gepa-tui eval --split val\n  gepa-tui eval my-project --split test --json\n  gepa-tui eval --candidate 20261125-101500-ab12:7 --split test"
    )]
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
    #[command(
        after_help = "Examples:\n  gepa-tui run --headless sample-projects/math-word-problems --offline\n  gepa-tui run --headless --json --seed 3 --max-metric-calls 300 my-project\n  gepa-tui run --headless --resume 20261125-084012-3fa9 my-project\n  gepa-tui run --headless --branch 20261125-084012-3fa9:4 my-project\n  gepa-tui run --headless --add-seed variants/short --add-seed variants/strict my-project\n\nThe budget (max_metric_calls) can be exceeded by at most one round's worth of evaluations:\na round that starts under budget runs to its end. Ctrl-C stops cleanly; the run stays resumable.\nTo stop a headless run from outside, create a file named `stop` in its run folder.\n\nExit status: 0 finished, 130 stopped (resumable), 2 on errors."
    )]
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
        /// Start the new run from a candidate of an earlier run instead of the prompt files: RUN:ID.
        #[arg(long, value_name = "RUN:ID", conflicts_with = "resume")]
        branch: Option<String>,
        /// Add a candidate from a folder of component files (named like the prompt files); repeatable.
        #[arg(long = "add-seed", value_name = "DIR")]
        add_seeds: Vec<PathBuf>,
    },
    /// List the runs of a project, newest first.
    #[command(after_help = "Example:\n  gepa-tui runs my-project")]
    Runs { dir: Option<PathBuf> },
    /// Write the best (or a chosen) candidate's texts of a run to a folder, or back over the prompts.
    #[command(
        after_help = "Examples:\n  gepa-tui export --run 20261125-084012-3fa9 --out exported/\n  gepa-tui export --run 20261125-084012-3fa9 --candidate 4 --out exported/\n  gepa-tui export --run 20261125-084012-3fa9 --write-prompts   (asks before overwriting)"
    )]
    Export {
        /// The project folder (default: the current folder).
        dir: Option<PathBuf>,
        #[arg(long, value_name = "RUN")]
        run: String,
        /// Candidate id (default: the best by val mean).
        #[arg(long)]
        candidate: Option<usize>,
        /// Folder to write the texts into (created; existing files are not overwritten).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Overwrite the project's component files with the candidate's texts (asks first; --yes to skip).
        #[arg(long)]
        write_prompts: bool,
        #[arg(long)]
        yes: bool,
    },
    /// Write a commented starter project (never overwrites existing files).
    #[command(after_help = "Example:\n  gepa-tui init my-project && cd my-project && gepa-tui check")]
    Init { dir: Option<PathBuf> },
}

pub fn project_dir(dir: &Option<PathBuf>) -> PathBuf {
    dir.clone().unwrap_or_else(|| PathBuf::from("."))
}

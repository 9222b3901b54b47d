use clap::Parser;
use gepa_tui::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Check { dir }) => {
            gepa_tui::cli::check::run(&gepa_tui::cli::project_dir(dir), &cli.common)
        }
        Some(Command::Eval {
            dir,
            split,
            candidate,
            json,
        }) => gepa_tui::cli::eval::run(
            &gepa_tui::cli::project_dir(dir),
            split,
            candidate.as_deref(),
            *json,
            &cli.common,
        ),
        Some(Command::Init { dir }) => gepa_tui::cli::init::run(&gepa_tui::cli::project_dir(dir)),
        None => Err(anyhow::anyhow!("the workbench is not built yet")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

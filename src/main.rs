use clap::Parser;
use gepa_tui::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Check { dir, estimate_only }) => {
            gepa_tui::cli::check::run(&gepa_tui::cli::project_dir(dir), &cli.common, *estimate_only)
        }
        Some(Command::Eval { dir, split, candidate, json }) => {
            gepa_tui::cli::eval::run(&gepa_tui::cli::project_dir(dir), split, candidate.as_deref(), *json, &cli.common)
        }
        Some(Command::Init { dir }) => gepa_tui::cli::init::run(&gepa_tui::cli::project_dir(dir)),
        Some(Command::Run {
            dir,
            headless,
            json,
            resume,
            seed,
            max_metric_calls,
            auto_approve,
            wait_for_review,
            branch,
            replay,
            add_seeds,
            wait,
        }) => {
            let args = gepa_tui::engine::setup::RunArgs {
                resume: resume.clone(),
                seed: *seed,
                max_metric_calls: *max_metric_calls,
                auto_approve: *auto_approve,
                branch: branch.clone(),
                replay: replay.clone(),
                add_seeds: add_seeds.clone(),
                offline: cli.common.offline,
                wait: *wait,
            };
            if *headless {
                gepa_tui::cli::run::run_headless(&gepa_tui::cli::project_dir(dir), &args, *json, *wait_for_review)
            } else {
                gepa_tui::tui::run(gepa_tui::tui::TuiArgs {
                    dir: gepa_tui::cli::project_dir(dir),
                    run: None,
                    new_run: true,
                    run_args: args,
                    theme: cli.theme.clone(),
                })
            }
        }
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "gepa-tui", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout()).map(|_| ExitCode::SUCCESS).map_err(Into::into)
        }
        Some(Command::Steer { dir, run, wait, action }) => match std::time::Duration::try_from_secs_f64(*wait) {
            Ok(wait) => gepa_tui::cli::steer::run(&gepa_tui::cli::project_dir(dir), run, action, wait),
            Err(_) => Err(anyhow::anyhow!("--wait {wait}: give a number of seconds, 0 or more")),
        },
        Some(Command::Runs { dir }) => gepa_tui::cli::runs::list(&gepa_tui::cli::project_dir(dir)),
        Some(Command::Export { dir, run, out, data_fixes: true, force, .. }) => gepa_tui::cli::runs::export_data_fixes(
            &gepa_tui::cli::project_dir(dir),
            run.as_deref(),
            out.as_deref(),
            *force,
        ),
        Some(Command::Export { dir, run, candidate, blame: true, .. }) => gepa_tui::cli::runs::export_blame(
            &gepa_tui::cli::project_dir(dir),
            run.as_deref().unwrap_or_default(),
            candidate.as_deref(),
        ),
        Some(Command::Export { dir, run, candidate, out, write_prompts, yes, .. }) => gepa_tui::cli::runs::export(
            &gepa_tui::cli::project_dir(dir),
            run.as_deref().unwrap_or_default(),
            candidate.as_deref(),
            out.as_deref(),
            *write_prompts,
            *yes,
        ),
        None => gepa_tui::tui::run(gepa_tui::tui::TuiArgs {
            dir: gepa_tui::cli::project_dir(&cli.dir),
            run: cli.run.clone(),
            theme: cli.theme.clone(),
            run_args: gepa_tui::engine::setup::RunArgs { offline: cli.common.offline, ..Default::default() },
            ..Default::default()
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

//! `gepa-tui eval [DIR] --split val`: score the seed candidate on a split and print the results.

use crate::cli::CommonArgs;
use crate::eval::{ExampleEval, Task};
use crate::llm::{Models, ModelsOptions};
use crate::project::{Project, Split};
use crate::text::{sanitize, truncate_chars};
use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use unicode_width::UnicodeWidthStr;

#[derive(Debug, Serialize)]
struct EvalReport<'a> {
    split: &'a str,
    candidate: &'a str,
    mean: f64,
    failed: usize,
    /// Of `failed`, the evaluations whose program ran out of its timeout.
    timed_out: usize,
    cost_usd: f64,
    /// Each objective's mean over the examples, the natural way round (tokens, USD).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    objectives: std::collections::BTreeMap<String, f64>,
    examples: &'a [ExampleEval],
}

pub fn parse_split(split: &str) -> anyhow::Result<Split> {
    match split.trim().to_ascii_lowercase().as_str() {
        "train" => Ok(Split::Train),
        "val" | "validation" => Ok(Split::Val),
        "test" => Ok(Split::Test),
        other => anyhow::bail!("unknown split `{other}`: use train, val or test"),
    }
}

pub fn run(
    dir: &Path,
    split: &str,
    candidate: Option<&str>,
    json: bool,
    common: &CommonArgs,
) -> anyhow::Result<ExitCode> {
    let split = parse_split(split)?;
    let project = Project::load(dir)?;
    // The seed, or a candidate of an earlier run (`RUN:ID`).
    let (seed, label) = match candidate {
        Some(spec) => {
            let (texts, from) = crate::engine::setup::branch_texts(&project, spec)?;
            (texts, format!("candidate {from}"))
        }
        None => (project.seed.clone(), "seed".to_string()),
    };
    if split == Split::Test && project.config.data.test.is_none() {
        anyhow::bail!("the project has no test split: add test = \"data/test.jsonl\" to [data] in gepa.toml");
    }
    let examples = project.split(split).to_vec();
    if examples.is_empty() {
        anyhow::bail!("the {} split has no examples", split.as_str());
    }
    let concurrency = project.config.optimizer.concurrency.max(1);
    let models = Models::from_config(
        &project.config.models,
        ModelsOptions { cache_dir: Some(project.cache_dir()), offline: common.offline, ..Default::default() },
    )
    .context("cannot set up the models")?;
    let task = Task::new(Arc::new(project), Arc::new(models))?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;

    let bar = ProgressBar::with_draw_target(Some(examples.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("scoring the {label} on {}", split.as_str()));
    // Each `eval` is its own draw of a model that samples (see `llm::draw`): scoring again
    // samples again, as a second run would; a deterministic model's replies are shared.
    let draws = crate::llm::Draw::stream(&format!("eval-{}", crate::store::new_run_id()));
    let evals: Result<Vec<ExampleEval>, crate::llm::LlmError> = runtime.block_on(async {
        let mut done: Vec<(usize, Result<ExampleEval, _>)> = futures::stream::iter(examples.iter().enumerate())
            .map(|(i, ex)| {
                let task = &task;
                let seed = &seed;
                let draw = draws.at("example", &ex.id);
                async move { (i, task.evaluate(seed, ex, Some(&draw)).await) }
            })
            .buffer_unordered(concurrency)
            .inspect(|(_, e)| {
                bar.inc(1);
                if e.as_ref().map_or(true, |e| e.error.is_some()) {
                    bar.set_message("(some runs failed)");
                }
            })
            .collect()
            .await;
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, e)| e).collect()
    });
    bar.finish_and_clear();
    // A provider that is down, refuses the key or has no credit says nothing about the candidate.
    let evals = evals.map_err(|e| anyhow::anyhow!("{e}; nothing was scored"))?;

    let n = evals.len();
    let mean = if n == 0 { 0.0 } else { evals.iter().map(|e| e.score).sum::<f64>() / n as f64 };
    let failed = evals.iter().filter(|e| e.error.is_some()).count();
    let timed_out = evals.iter().filter(|e| e.timed_out.is_some()).count();
    let cost: f64 = evals.iter().map(|e| e.cost_usd).sum();
    let stats = task.models().total_stats();
    let objectives: std::collections::BTreeMap<String, f64> =
        crate::eval::objective::aggregate(evals.iter().map(|e| &e.objectives))
            .into_iter()
            .map(|(k, v)| {
                let shown = crate::eval::objective::natural(&k, v);
                (k, shown)
            })
            .collect();
    if json {
        let report = EvalReport {
            split: split.as_str(),
            candidate: &label,
            mean,
            failed,
            timed_out,
            cost_usd: cost,
            objectives,
            examples: &evals,
        };
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&evals);
        println!();
        println!(
            "{} · {label} · mean {mean:.3} over {} · {} failed{} · ${cost:.4} · {} model requests, {} from cache",
            split.as_str(),
            if n == 1 { "1 example".to_string() } else { format!("{n} examples") },
            failed,
            if timed_out > 0 { format!(" ({timed_out} timed out)") } else { String::new() },
            stats.calls,
            stats.cache_hits
        );
        if !objectives.is_empty() {
            let means = crate::eval::objective::aggregate(evals.iter().map(|e| &e.objectives));
            let parts: Vec<String> =
                means.iter().map(|(k, v)| format!("{k} {}", crate::eval::objective::format_natural(k, *v))).collect();
            println!("objectives (mean): {}", parts.join(" · "));
        }
    }
    // When nothing could be scored, the mean says nothing about the prompt: fail loudly.
    if n > 0 && failed == n {
        eprintln!("every evaluation failed; the first error: {}", sanitize(evals[0].error.as_deref().unwrap_or("")));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of untrusted text for a table cell: sanitized, newlines shown as `⏎`, cut to `max`.
fn cell(s: &str, max: usize) -> String {
    let one_line = sanitize(s.trim()).replace('\n', " ⏎ ").replace('\t', " ");
    truncate_chars(&one_line, max)
}

fn pad(s: &str, width: usize) -> String {
    let w = UnicodeWidthStr::width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

fn print_table(evals: &[ExampleEval]) {
    let id_w = evals.iter().map(|e| cell(&e.example_id, 20).width()).max().unwrap_or(2).max(2);
    let out_w = 32;
    println!("{}  {}  {}  feedback", pad("id", id_w), pad("score", 5), pad("output", out_w));
    for e in evals {
        let feedback = match (&e.error, e.timed_out) {
            (Some(err), Some(t)) => format!("timed out ({}): {err}", t.what()),
            (Some(err), None) => format!("error: {err}"),
            (None, _) => e.feedback.clone(),
        };
        println!(
            "{}  {:<5.2}  {}  {}",
            pad(&cell(&e.example_id, 20), id_w),
            e.score,
            pad(&cell(&e.output, out_w), out_w),
            cell(&feedback, 60)
        );
    }
}

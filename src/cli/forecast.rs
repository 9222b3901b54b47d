//! `check`'s forecast: the seed scored on a few val examples (a dry evaluation through the
//! response cache, part of no run), or with `--estimate-only` the prompt sizes alone, and what
//! a run would then use (`engine::forecast`).

use crate::engine::forecast::{estimate, measure, Forecast, Plan, Span};
use crate::eval::Task;
use crate::llm::{Models, ModelsOptions};
use crate::project::{Example, Project};
use std::sync::Arc;

/// Val examples the dry evaluation scores the seed on.
pub const DRY_EXAMPLES: usize = 3;

/// The forecast's lines for `check`.
pub fn report(project: &Project, dry: bool, offline: bool) -> Vec<String> {
    let plan = Plan::of(project);
    let mut lines = Vec::new();
    let per_call = if dry {
        match dry_run(project, offline) {
            Ok(evals) => {
                let pairs: Vec<(&Example, &crate::eval::ExampleEval)> = evals.iter().map(|(e, v)| (e, v)).collect();
                let m = measure(plan.perfect_score(), &pairs);
                lines.push(format!(
                    "Forecast (the seed scored on {} val example{} as a dry run{}: mean score {:.2}, {} per call)",
                    m.examples,
                    if m.examples == 1 { "" } else { "s" },
                    if offline { ", from the cache" } else { "; part of no run" },
                    m.seed_score.unwrap_or(0.0),
                    tokens_in_out(m.input_tokens.mid, m.output_tokens.mid)
                ));
                m
            }
            Err(why) => {
                lines.push(format!("Forecast from the prompt sizes (the dry run failed: {why})"));
                estimate(project)
            }
        }
    } else {
        lines.push("Forecast from the prompt sizes (no model called; 4 characters a token)".to_string());
        estimate(project)
    };
    lines.extend(describe(&plan.forecast(per_call)));
    lines
}

/// The seed on the first val examples, as a run would score it.
fn dry_run(project: &Project, offline: bool) -> Result<Vec<(Example, crate::eval::ExampleEval)>, String> {
    let examples: Vec<Example> = project.val.iter().take(DRY_EXAMPLES).cloned().collect();
    let models = Models::from_config(
        &project.config.models,
        ModelsOptions { cache_dir: Some(project.cache_dir()), offline, ..Default::default() },
    )
    .map_err(|e| e.to_string())?;
    let task = Task::new(Arc::new(project.clone()), Arc::new(models)).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let seed = &project.seed;
        let runs = examples.iter().map(|ex| task.evaluate(seed, ex, None));
        let evals = futures::future::join_all(runs).await;
        examples.iter().cloned().zip(evals).map(|(ex, r)| r.map(|e| (ex, e)).map_err(|e| e.to_string())).collect()
    })
}

/// The forecast as `check` prints it: low – likely – high.
pub fn describe(f: &Forecast) -> Vec<String> {
    let mut lines = vec![
        format!(
            "  metric calls   {} budget ({} for the seed on val), up to {} with the last round; + {} on test after",
            f.max_metric_calls,
            f.seed_calls,
            f.metric_calls.high.round(),
            f.test_calls
        ),
        format!("  proposals      {}   (low – likely – high)", count(f.proposals)),
        format!("  reflections    {} calls", count(f.reflection_calls)),
        format!(
            "  task model     {} tokens in, {} out{}",
            tokens(f.task_input_tokens),
            tokens(f.task_output_tokens),
            usd_part(f.task_usd, f.priced)
        ),
        format!(
            "  reflection     {} tokens in, {} out{}",
            tokens(f.reflection_input_tokens),
            tokens(f.reflection_output_tokens),
            usd_part(f.reflection_usd, f.priced)
        ),
    ];
    if f.priced {
        lines.push(format!("  total          {}", usd(f.total_usd())));
    } else {
        lines.push(format!(
            "  total          {} tokens (no prices: add price_input_per_mtok / price_output_per_mtok to [models.<name>] for dollars)",
            tokens(f.total_tokens())
        ));
    }
    lines.push(
        "  (range: 10–50% of the children accepted, 40–100% of the parents' minibatch scores new, prompts 1–3× the \
         seed's length)"
            .to_string(),
    );
    lines
}

fn count(s: Span) -> String {
    format!("{:.0} – {:.0} – {:.0}", s.low, s.mid, s.high)
}

pub fn tokens(s: Span) -> String {
    format!("{} – {} – {}", short(s.low), short(s.mid), short(s.high))
}

fn tokens_in_out(i: f64, o: f64) -> String {
    format!("{} tokens in, {} out", short(i), short(o))
}

/// 950, 12k, 1.2M (as the dashboard writes them).
fn short(n: f64) -> String {
    crate::tui::views::fmt_tokens(n.max(0.0).round() as u64)
}

pub fn usd(s: Span) -> String {
    format!("${} – ${} – ${}", money(s.low), money(s.mid), money(s.high))
}

fn usd_part(s: Span, priced: bool) -> String {
    if priced {
        format!("   {}", usd(s))
    } else {
        String::new()
    }
}

fn money(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

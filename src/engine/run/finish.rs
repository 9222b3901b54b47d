//! Finishing a run: the result, `result.json`, the best prompts, and what recorded events cost.

use super::cache::EvalSplit;
use super::{mean, Engine, Stop};
use crate::engine::event::{Event, HumanAction};
use crate::engine::handle::{Halted, RunResult};
use crate::eval::ExampleEval;
use crate::llm::Draw;
use crate::project::{Example, Project};
use crate::store;
use crate::store::read_log;
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::sync::atomic::Ordering;

/// What the replies an event records cost: (paid, served free from the response cache).
pub(crate) fn event_cost(ev: &Event) -> (f64, f64) {
    match ev {
        Event::MinibatchEvaluated { evals, .. }
        | Event::ValEvaluated { evals, .. }
        | Event::MergeAttempted { evals, .. }
        | Event::TestEvaluated { evals, .. } => {
            evals.iter().map(ExampleEval::paid_and_replayed).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
        }
        // Scoring recorded outputs again (a judge's calls, when the evaluator has one).
        Event::ExampleFixed { rescored, .. } => {
            rescored.iter().map(|r| r.eval.paid_and_replayed()).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
        }
        Event::Reflection { cost_usd, cached: true, .. } => (0.0, *cost_usd),
        Event::Reflection { cost_usd, cost_usd_replayed, .. } => (cost_usd - cost_usd_replayed, *cost_usd_replayed),
        _ => (0.0, 0.0),
    }
}

/// Token usage an event records: every step of every evaluation, and reflections.
pub(super) fn event_usage(ev: &Event) -> Vec<crate::llm::Usage> {
    // An evaluation served from the cache used nothing this time.
    let steps = |evals: &[ExampleEval]| -> Vec<crate::llm::Usage> {
        evals.iter().filter(|e| !e.cached).flat_map(|e| e.trace.steps.iter().map(|s| s.usage)).collect()
    };
    match ev {
        Event::MinibatchEvaluated { evals, .. }
        | Event::ValEvaluated { evals, .. }
        | Event::MergeAttempted { evals, .. }
        | Event::TestEvaluated { evals, .. } => steps(evals),
        Event::Reflection { usage, .. } => vec![*usage],
        _ => vec![],
    }
}

/// File names for the best candidate's texts: each component file's own name, or `<name>.txt` when
/// two components share one.
pub fn best_file_names(project: &Project) -> Vec<(String, String)> {
    let names: Vec<(String, String)> = project
        .config
        .components
        .iter()
        .map(|c| {
            let base = Path::new(&c.file)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("{}.txt", c.name));
            (c.name.clone(), base)
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let dup = names.iter().any(|(_, f)| !seen.insert(f.clone()));
    if dup {
        names.into_iter().map(|(n, _)| (n.clone(), format!("{n}.txt"))).collect()
    } else {
        names
    }
}

impl Engine {
    /// The `example_fixed` events of a round's fixes (see `data_fixes::rescore_fixes`), with the
    /// earlier candidates' val outputs read back from the committed events of the log.
    pub(super) async fn rescore_fixes(&self, round: u64, actions: &[HumanAction]) -> Result<(Vec<Event>, u64, f64)> {
        let val_fixed: Vec<String> = crate::engine::data_fixes::fixed_in(actions)
            .into_iter()
            .filter(|(split, _, _)| *split == crate::project::Split::Val)
            .map(|(_, id, _)| id)
            .collect();
        let recorded = if val_fixed.is_empty() {
            Default::default()
        } else {
            // Held so that no line is appended while it is read.
            let _log = self.sh.log.lock().expect("log lock");
            let events = read_log::<Event>(&self.run_dir.join("events.jsonl"), false)?.values;
            let ids: Vec<&str> = val_fixed.iter().map(String::as_str).collect();
            crate::engine::data_fixes::committed_val_evals(&events, &ids)
        };
        let sh = &self.sh;
        let place = sh.place(round);
        crate::engine::data_fixes::rescore_fixes(&sh.task, &sh.project, &self.state, round, actions, &recorded, &place)
            .await
            .map_err(|e| if e.stops_run() { anyhow::Error::new(Halted(e)) } else { anyhow!("{e}") })
    }

    /// Scores the best candidate on test, records `finished`, and writes result.json and best/.
    pub(super) async fn finish(&mut self, stop: &Stop) -> Result<RunResult> {
        let reason = stop.text.as_str();
        let sh = self.sh.clone();
        let over_cost = sh.over_cost();
        let best = self.state.best().ok_or_else(|| match sh.opt.max_cost_usd.filter(|_| over_cost) {
            Some(max) => anyhow!(
                "max_cost_usd (${max}) was reached (${:.4} paid) before the seed candidate was scored on all of \
                 val: raise it in [optimizer]",
                sh.paid_total()
            ),
            None => anyhow!("the run has no candidates"),
        })?;
        let mut reason = reason.to_string();
        if over_cost && !sh.project.test.is_empty() && self.state.candidates[best].test_mean.is_none() {
            reason.push_str(&format!(
                "; the test split was not scored (that would pay past the cost limit: \
                 `gepa-tui eval --split test --candidate {}:{best}` scores it)",
                self.state.run_id
            ));
        } else if !sh.project.test.is_empty() && self.state.candidates[best].test_mean.is_none() {
            sh.set_activity("scoring the best candidate on test");
            let texts = self.state.candidates[best].texts.clone();
            let test: Vec<&Example> = sh.project.test.iter().collect();
            let gen = sh.next_gen.fetch_add(1, Ordering::Relaxed);
            let place = Draw::stream(&sh.draws).at("eval", "test").at("candidate", best);
            let (evals, _, _) = sh.evaluate(gen, &place, &texts, &test, EvalSplit::Val, None, 1).await?;
            let m = mean(&evals.iter().map(|e| e.score).collect::<Vec<_>>());
            let ev = Event::TestEvaluated { candidate: best, evals, mean: m };
            sh.emit(ev.clone(), true)?;
            self.state.apply(&ev);
            sh.commit_spend(gen, self.state.cost_usd);
        }
        // Dropped work still running starts nothing more; what its calls in flight pay is booked.
        sh.closing.store(true, Ordering::Relaxed);
        // (A stop meanwhile only cuts the wait short: the run finishes all the same.)
        let _ = self.drain_calls().await;
        let dropped = sh.commit_spend(u64::MAX, self.state.cost_usd);
        let s = &self.state;
        let fin = Event::Finished {
            reason: reason.clone(),
            stopped_by: Some(stop.by.to_string()),
            best,
            best_val: s.candidates[best].val_mean,
            test_score: s.candidates[best].test_mean,
            candidates: s.candidates.len(),
            metric_calls: s.metric_calls,
            cost_usd: s.cost_usd + dropped,
            cost_usd_dropped: s.cost_usd_dropped + dropped,
        };
        sh.emit(fin.clone(), true)?;
        self.state.apply(&fin);
        self.refuse_leftovers(&reason);
        sh.set_activity(format!("finished: {reason}"));
        let result = self.result_now()?;
        self.write_outputs(&result)?;
        Ok(result)
    }

    pub(super) fn result_now(&self) -> Result<RunResult> {
        let s = &self.state;
        let failed = s.failed_evaluations;
        let (reason, cost) = (s.finished.clone().unwrap_or_default(), s.cost_usd);
        let best = s.best().unwrap_or(0);
        let bv = s.candidates[best].val_mean;
        let test = s.candidates[best].test_mean;
        Ok(RunResult {
            run_id: s.run_id.clone(),
            stop_reason: reason,
            stopped_by: s.stopped_by.clone(),
            best_candidate: best,
            best_val_score: bv,
            seed_val_score: s.candidates.first().map(|c| c.val_mean).unwrap_or(0.0),
            test_score: test,
            val_test_gap: test.map(|t| bv - t),
            candidates: s.candidates.len(),
            metric_calls: s.metric_calls,
            evaluations_cached: s.evaluations_cached,
            evaluations_dropped: self.sh.evaluations_dropped.load(Ordering::Relaxed),
            cost_usd: cost,
            cost_usd_replayed: s.cost_usd_replayed,
            cost_usd_dropped: s.cost_usd_dropped,
            failed_evaluations: failed,
            timed_out_evaluations: s.timed_out_evaluations,
            wall_seconds: self.active_secs(),
            best_texts: s.candidates[best].texts.clone(),
            guided_proposals: s.guided_proposals,
            children_refused: s.children_refused,
            objectives: s.objective_report(),
            data: s.data_report(),
        })
    }

    pub(super) fn read_result(&self) -> Result<Option<RunResult>> {
        let path = self.run_dir.join("result.json");
        if !path.exists() {
            // Finished but result.json lost (crash between the two writes): rebuild it.
            let r = self.result_now()?;
            self.write_outputs(&r)?;
            return Ok(Some(r));
        }
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))?))
    }

    pub(super) fn write_outputs(&self, r: &RunResult) -> Result<()> {
        let best_dir = self.run_dir.join("best");
        std::fs::create_dir_all(&best_dir).with_context(|| format!("cannot create {}", best_dir.display()))?;
        for (name, file) in best_file_names(&self.sh.project) {
            if let Some(text) = r.best_texts.get(&name) {
                store::write_atomic(&best_dir.join(file), text.as_bytes())?;
            }
        }
        let json = serde_json::to_vec_pretty(r).expect("result serializes");
        store::write_atomic(&self.run_dir.join("result.json"), &json)?;
        Ok(())
    }
}

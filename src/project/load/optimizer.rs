//! `[optimizer]`: budgets, sizes and the objectives the fronts work over.

use super::Validator;
use crate::project::config::{EvaluatorKind, ProjectConfig, SystemKind};

impl Validator {
    pub(super) fn optimizer(&mut self, config: &ProjectConfig) {
        let o = &config.optimizer;
        let checks = [
            ("minibatch_size", o.minibatch_size >= 1, "must be at least 1"),
            ("concurrency", o.concurrency >= 1, "must be at least 1"),
            ("proposals_per_round", o.proposals_per_round >= 1, "must be at least 1"),
            (
                "pipeline_lag",
                o.pipeline_lag.is_none_or(|l| l >= 1),
                "must be at least 1 (1 = the reference's sequential loop)",
            ),
            ("top_k", o.top_k >= 1, "must be at least 1"),
            ("accept_top_k", o.accept_top_k >= 1, "must be at least 1"),
            (
                "parents_per_round",
                o.parents_per_round.is_none_or(|p| p >= 1 && o.proposals_per_round.is_multiple_of(p)),
                "must be at least 1 and divide proposals_per_round (P parents x N children = proposals_per_round)",
            ),
            ("merge_subsample", o.merge_subsample >= 1, "must be at least 1"),
            ("val_repeats", o.val_repeats >= 1, "must be at least 1 (1 = each val example scored once)"),
            ("max_metric_calls", o.max_metric_calls >= 1, "must be at least 1"),
            ("epsilon", (0.0..=1.0).contains(&o.epsilon), "must be between 0 and 1"),
            ("perfect_score", o.perfect_score.is_finite(), "must be a number"),
            (
                "max_outage_secs",
                o.max_outage_secs.is_finite() && o.max_outage_secs >= 0.0,
                "must be a number of seconds, 0 or more",
            ),
        ];
        for (key, ok, why) in checks {
            if !ok {
                self.problem(&format!("optimizer.{key}"), format!("[optimizer] {key} {why}"));
            }
        }
        if o.val_repeats > 1 {
            self.repeats_need_sampling(config);
        }
        for (i, b) in o.objectives.iter().enumerate() {
            if o.objectives[..i].contains(b) {
                self.problem("optimizer.objectives", format!("[optimizer] objectives lists `{}` twice", b.as_str()));
            }
        }
        // gepa refuses a non-instance frontier_type without objective scores (core/state.py);
        // here it is caught before the run, unless a command scorer may print `scores`.
        let ev = &config.evaluator;
        let may_have_objectives =
            !o.objectives.is_empty() || ev.kind == EvaluatorKind::Combined || ev.kind == EvaluatorKind::Command;
        if !o.frontier.is_instance() && !may_have_objectives {
            self.problem(
                "optimizer.frontier",
                format!(
                    "[optimizer] frontier = \"{}\" needs objectives: switch some on with objectives = [\"prompt_tokens\", …], or use a combined evaluator (each part is one), or frontier = \"instance\"",
                    o.frontier.as_str()
                ),
            );
        }
    }

    /// `val_repeats` draws again what a model that samples answers; a system and evaluator that
    /// only call models at temperature 0 would get the same reply each time, paying k metric calls
    /// for one score. A `command` system or scorer may sample on its own: taken as written.
    fn repeats_need_sampling(&mut self, config: &ProjectConfig) {
        let ev = &config.evaluator;
        let judges = std::iter::once(ev.as_part()).chain(ev.parts.iter().cloned());
        let mut models: Vec<(String, String)> = Vec::new();
        for p in judges {
            match p.kind {
                EvaluatorKind::Command => return,
                EvaluatorKind::Judge => {
                    models.push((p.model.unwrap_or_else(|| "reflection".into()), "the [evaluator] judge".into()))
                }
                _ => {}
            }
        }
        if config.system.kind == SystemKind::Command {
            return;
        }
        for s in &config.system.steps {
            models.push((s.model.clone(), format!("[[system.steps]] `{}`", s.name)));
        }
        let samples = |name: &str| config.models.get(name).is_some_and(|m| m.samples_at(None));
        if models.iter().any(|(m, _)| samples(m)) {
            return;
        }
        let used: Vec<String> = models.iter().map(|(m, by)| format!("[models.{m}] (used by {by})")).collect();
        self.problem(
            "optimizer.val_repeats",
            format!(
                "[optimizer] val_repeats = {} scores each val example again, but no model the evaluation \
                 uses samples: {} answer at temperature 0, so every repeat would get the same reply and \
                 cost a metric call for nothing. Give the task model a temperature above 0 (or \
                 samples = true), or remove val_repeats",
                config.optimizer.val_repeats,
                used.join(", ")
            ),
        );
    }
}

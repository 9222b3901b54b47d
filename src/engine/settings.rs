//! A run's settings in force: gepa.toml's `[optimizer]` with the command line's overrides,
//! recorded once in `run_started` and again in a `settings_changed` event when a resume changes
//! one. The engine's stop rule, the workbench's gauge and ETA, the headless progress line and
//! result.json all read them from that record (`RunState::settings`), never from gepa.toml.

use crate::project::config::{OptimizerConfig, ProjectConfig};
use serde_json::{Map, Value};

/// What the command line sets for a run (`--seed`, `--max-metric-calls`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub seed: Option<u64>,
    pub max_metric_calls: Option<u64>,
}

impl Overrides {
    fn flag_of(&self, key: &str) -> Option<&'static str> {
        match key {
            "seed" if self.seed.is_some() => Some("--seed"),
            "max_metric_calls" if self.max_metric_calls.is_some() => Some("--max-metric-calls"),
            _ => None,
        }
    }
}

/// Settings a resume may not change, and why: what the run recorded so far depends on them.
const FIXED_ON_RESUME: &[(&str, &str)] = &[
    ("seed", "every random draw the run made (parents, minibatches, merges) came from it"),
    ("frontier", "the fronts it recorded were kept over it"),
    ("val_repeats", "the val scores it recorded are means over that many draws of each example"),
];

/// One setting a resume changed.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingChange {
    pub key: String,
    pub from: Value,
    pub to: Value,
}

impl SettingChange {
    /// `max_metric_calls 200 → 400`
    pub fn describe(&self) -> String {
        format!("{} {} → {}", self.key, show(&self.from), show(&self.to))
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(not set)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The settings of a new run: gepa.toml's with the command line's on top.
pub fn for_new_run(file: &OptimizerConfig, overrides: &Overrides) -> OptimizerConfig {
    let mut s = file.clone();
    if let Some(seed) = overrides.seed {
        s.seed = seed;
    }
    if let Some(n) = overrides.max_metric_calls {
        s.max_metric_calls = n;
    }
    s
}

/// The settings a resumed run goes on with: the ones it recorded, except a key given on the
/// command line now or edited in gepa.toml since the run started (`at_start`: the copy of
/// gepa.toml in the run folder), which takes its new value. So `--max-metric-calls 500` given
/// when the run started still holds on a plain `--resume`. Err: a change to a key that cannot
/// change on resume, saying which and how to go on.
pub fn for_resume(
    recorded: &OptimizerConfig,
    at_start: Option<&OptimizerConfig>,
    now: &OptimizerConfig,
    overrides: &Overrides,
) -> Result<(OptimizerConfig, Vec<SettingChange>), String> {
    let (rec, now_file) = (as_map(recorded), as_map(now));
    let start = at_start.map(as_map);
    let command_line = as_map(&for_new_run(now, overrides));
    let mut out = rec.clone();
    for (key, value) in &now_file {
        let edited = match &start {
            Some(start) => start.get(key) != Some(value),
            // No readable copy of gepa.toml as it was: what gepa.toml says now holds.
            None => rec.get(key) != Some(value),
        };
        if edited {
            out.insert(key.clone(), value.clone());
        }
    }
    for key in ["seed", "max_metric_calls"] {
        if overrides.flag_of(key).is_some() {
            out.insert(key.into(), command_line[key].clone());
        }
    }
    let mut changes = Vec::new();
    for (key, to) in &out {
        let from = rec.get(key).cloned().unwrap_or(Value::Null);
        if &from != to {
            changes.push(SettingChange { key: key.clone(), from, to: to.clone() });
        }
    }
    if let Some((c, why)) =
        changes.iter().find_map(|c| FIXED_ON_RESUME.iter().find(|(k, _)| *k == c.key).map(|(_, why)| (c, why)))
    {
        let by = overrides
            .flag_of(&c.key)
            .map(str::to_string)
            .unwrap_or_else(|| format!("[optimizer] {} in gepa.toml", c.key));
        return Err(format!(
            "{} cannot change when a run is resumed: the run has {} = {}, and {why}; {by} asks for {}. \
             Resume with {} = {} (leave {by} out), or start a new run with the new value",
            c.key,
            c.key,
            show(&c.from),
            show(&c.to),
            c.key,
            show(&c.from),
        ));
    }
    let settings =
        serde_json::from_value(Value::Object(out)).map_err(|e| format!("the run's recorded settings: {e}"))?;
    Ok((settings, changes))
}

/// The `[optimizer]` of the copy of gepa.toml a run folder keeps, when it still parses.
pub fn at_start(run_dir: &std::path::Path) -> Option<OptimizerConfig> {
    let text = std::fs::read_to_string(run_dir.join("gepa.toml")).ok()?;
    crate::project::config::parse(&text).ok().map(|c: ProjectConfig| c.optimizer)
}

fn as_map(s: &OptimizerConfig) -> Map<String, Value> {
    match serde_json::to_value(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(f: impl FnOnce(&mut OptimizerConfig)) -> OptimizerConfig {
        let mut o = OptimizerConfig::default();
        f(&mut o);
        o
    }

    #[test]
    fn a_budget_given_at_start_holds_on_a_plain_resume_and_a_new_one_is_taken() {
        let file = opt(|o| o.max_metric_calls = 800);
        let recorded = for_new_run(&file, &Overrides { max_metric_calls: Some(200), ..Default::default() });
        let (s, changes) = for_resume(&recorded, Some(&file), &file, &Overrides::default()).unwrap();
        assert_eq!((s.max_metric_calls, changes.len()), (200, 0));
        let more = Overrides { max_metric_calls: Some(400), ..Default::default() };
        let (s, changes) = for_resume(&recorded, Some(&file), &file, &more).unwrap();
        assert_eq!(s.max_metric_calls, 400);
        assert_eq!(changes.iter().map(SettingChange::describe).collect::<Vec<_>>(), ["max_metric_calls 200 → 400"]);
    }

    #[test]
    fn an_edit_of_gepa_toml_since_the_start_is_taken() {
        let file = opt(|o| o.max_rounds = None);
        let edited = opt(|o| o.max_rounds = Some(9));
        let (s, changes) = for_resume(&file, Some(&file), &edited, &Overrides::default()).unwrap();
        assert_eq!(s.max_rounds, Some(9));
        assert_eq!(changes[0].describe(), "max_rounds (not set) → 9");
    }

    #[test]
    fn the_seed_cannot_change_on_resume_whether_by_flag_or_by_file() {
        let file = opt(|o| o.seed = 0);
        let recorded = for_new_run(&file, &Overrides { seed: Some(7), ..Default::default() });
        // The run's own seed, from the command line at the start, is kept without the flag.
        assert_eq!(for_resume(&recorded, Some(&file), &file, &Overrides::default()).unwrap().0.seed, 7);
        let again = Overrides { seed: Some(7), ..Default::default() };
        assert!(for_resume(&recorded, Some(&file), &file, &again).is_ok());
        let err =
            for_resume(&recorded, Some(&file), &file, &Overrides { seed: Some(8), ..Default::default() }).unwrap_err();
        assert!(err.starts_with("seed cannot change when a run is resumed: the run has seed = 7"), "{err}");
        assert!(err.contains("--seed asks for 8"), "{err}");
        let edited = opt(|o| o.seed = 3);
        let err = for_resume(&recorded, Some(&file), &edited, &Overrides::default()).unwrap_err();
        assert!(err.contains("[optimizer] seed in gepa.toml asks for 3"), "{err}");
    }

    #[test]
    fn val_repeats_cannot_change_on_resume() {
        let file = opt(|o| o.val_repeats = 3);
        let edited = opt(|o| o.val_repeats = 1);
        let err = for_resume(&file, Some(&file), &edited, &Overrides::default()).unwrap_err();
        assert!(
            err.starts_with("val_repeats cannot change when a run is resumed: the run has val_repeats = 3"),
            "{err}"
        );
        assert!(for_resume(&file, Some(&file), &file, &Overrides::default()).is_ok());
    }
}

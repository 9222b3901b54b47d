//! Fixing or excluding a bad example (a person marks a val or train example as mislabelled in the
//! Traces view). The data files are never touched: the run's events say what changed, and the
//! fold recomputes everything that depends on the data from them.
//!
//! - **Exclude a val example**: from the round the exclusion is taken in, the example counts for
//!   nothing, for every candidate old and new: val means, the per-example fronts, the objective
//!   and cartesian fronts, the best candidate, parent selection, domination removal, and the
//!   merges' overlap floor and subsample are all computed as if it were not in val. Later
//!   candidates are not evaluated on it (no metric call). Their `val_evaluated` lists the other
//!   examples only; `val_scores` stays indexed like the val split, with 0 where nothing was scored,
//!   and only counted examples (`val_counted`) are ever read.
//! - **Exclude a train example**: no later minibatch draws it. The sampler starts a new era at the
//!   first minibatch drawn after the exclusion: the examples left, in file order, walked epoch by
//!   epoch from a fresh shuffle seeded with (seed, epoch, the era's first minibatch), so each of
//!   them comes up in the next epoch. Minibatches drawn before are recorded in `round_started` and
//!   stay as they were. (gepa's `EpochShuffledBatchSampler` also reshuffles when the train set
//!   changes size, `needs_refresh` in strategies/batch_sampler.py, but keeps its position in the
//!   new order; here the new order is walked from its start so nothing left is skipped.)
//! - **Fix an example** (a corrected value for one field, its expected answer): evaluations from
//!   the round it is taken in use the corrected example. For a val example, every candidate's
//!   recorded output on it is scored again with the evaluator against the corrected value when
//!   the round commits, and the new scores are recorded (`example_fixed`), so a replay folds them
//!   and never asks the evaluator again. An evaluator that only compares (`exact`, `contains`,
//!   `regex`, `json_field`) does that for free; one that calls a model or a program (`judge`,
//!   `command`, or a `combined` with one) counts one metric call per output scored again, and a
//!   judge's cost is the run's. A train example's earlier minibatch scores are the record of the
//!   decisions taken on them and stay; the evaluation cache never serves an evaluation made
//!   against the old value (`revision`).
//!
//! Exclusions are final for the run (a branch or a new run starts from the files again). gepa has
//! nothing like this: its `DataLoader` may grow during a run (`MutableDataLoader.add_items`,
//! core/data_loader.py), but no example can be dropped or relabelled.

pub use super::data_changes::{DataChanges, DataFix, DataReport, ExcludedExample};
use super::event::{Event, FieldChange, HumanAction, Rescored};
use super::minibatch::{era_minibatch, minibatch};
use super::pareto::{offer_keyed, CandidateId, ParetoFronts};
use super::state::{CommitBuffer, RunState};
use crate::eval::objective::{aggregate, ObjectiveScores};
use crate::eval::{ExampleEval, Task};
use crate::llm::LlmError;
use crate::project::{Project, Split};
use serde_json::Value;
use std::collections::BTreeMap;

/// A value typed by a person for a field whose value is now `current`: a string field takes the
/// text as it is; any other JSON value (a number, a list, an object) must be typed as JSON.
pub fn parse_field_value(current: Option<&Value>, typed: &str) -> Result<Value, String> {
    match current {
        None | Some(Value::String(_)) => Ok(Value::String(typed.to_string())),
        Some(other) => serde_json::from_str::<Value>(typed.trim()).map_err(|e| {
            format!(
                "the field holds {}, so type the value as JSON (it is now {other}): {e}",
                match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::Array(_) => "a list",
                    _ => "an object",
                }
            )
        }),
    }
}

/// A `val_evaluated` placed by val index (`RunState::place_val`).
pub(super) struct PlacedVal {
    pub scores: Vec<f64>,
    pub objectives: Vec<ObjectiveScores>,
    /// Each example's draws' scores, when val was scored more than once; else empty.
    pub draws: Vec<Vec<f64>>,
}

impl RunState {
    /// How far candidate `c`'s val mean moves from draw to draw when val is scored more than once
    /// (`val_repeats`): the sample standard deviation of its per-repeat val means over the
    /// examples that count. None when it was scored once.
    pub fn val_spread(&self, c: CandidateId) -> Option<f64> {
        let rec = self.candidates.get(c)?;
        let repeats = rec.val_draws.iter().map(Vec::len).max().filter(|k| *k > 1)?;
        let counted: Vec<&Vec<f64>> =
            rec.val_draws.iter().enumerate().filter(|(i, _)| self.val_counted(*i)).map(|(_, d)| d).collect();
        let means: Vec<f64> = (0..repeats)
            .map(|r| crate::eval::repeats::mean(&counted.iter().filter_map(|d| d.get(r).copied()).collect::<Vec<_>>()))
            .collect();
        Some(crate::eval::repeats::spread(&means))
    }

    /// Whether val example `i` counts (it was not excluded).
    pub fn val_counted(&self, i: usize) -> bool {
        !self.data.excluded_val.contains(&i)
    }

    /// The indices of the val examples that count, in val order.
    pub fn counted_val(&self) -> Vec<usize> {
        (0..self.val_ids.len()).filter(|i| self.val_counted(*i)).collect()
    }

    /// The mean of a candidate's scores over the val examples that count (`scores` indexed like
    /// val). Without exclusions it is the plain mean, summed in the same order as always.
    pub(super) fn counted_mean(&self, scores: &[f64]) -> f64 {
        if self.data.excluded_val.is_empty() {
            return if scores.is_empty() { 0.0 } else { scores.iter().sum::<f64>() / scores.len() as f64 };
        }
        let counted: Vec<f64> =
            scores.iter().enumerate().filter(|(i, _)| self.val_counted(*i)).map(|(_, s)| *s).collect();
        if counted.is_empty() {
            0.0
        } else {
            counted.iter().sum::<f64>() / counted.len() as f64
        }
    }

    /// A `val_evaluated`'s evaluations placed by val index: scores (0 where the example was not
    /// evaluated: it was excluded), objective scores, and each example's draws' scores when it
    /// was scored more than once (`val_repeats`; empty otherwise): the score is their mean. A log
    /// from before exclusions lists every val example in order, and is read as it always was.
    pub(super) fn place_val(&self, evals: &[ExampleEval]) -> PlacedVal {
        let n = self.val_ids.len();
        let repeated = evals.iter().any(|e| e.repeat > 0);
        if !repeated && (evals.len() == n || n == 0) {
            let (scores, objectives) =
                (evals.iter().map(|e| e.score).collect(), evals.iter().map(|e| e.objectives.clone()).collect());
            return PlacedVal { scores, objectives, draws: Vec::new() };
        }
        let mut placed =
            PlacedVal { scores: vec![0.0; n], objectives: vec![ObjectiveScores::new(); n], draws: Vec::new() };
        if repeated {
            placed.draws = vec![Vec::new(); n];
        }
        for d in crate::eval::repeats::by_example(evals) {
            if let Some(i) = self.val_ids.iter().position(|id| id == d.example_id) {
                placed.scores[i] = d.mean();
                placed.objectives[i] = d.objectives();
                if repeated {
                    placed.draws[i] = d.scores();
                }
            }
        }
        placed
    }

    /// Takes a person's exclusion or fix (other actions are not about the data).
    pub(super) fn take_data_action(&mut self, action: &HumanAction) {
        match action {
            HumanAction::ExcludeExample { split, example, reason } => {
                if self.data.is_excluded(*split, example) {
                    return;
                }
                self.data.excluded.push(ExcludedExample { split: *split, id: example.clone(), reason: reason.clone() });
                match split {
                    Split::Val => {
                        if let Some(i) = self.val_ids.iter().position(|id| id == example) {
                            self.data.excluded_val.insert(i);
                            self.recompute_val();
                        }
                    }
                    // The sampler's new era begins with the first minibatch drawn from now on.
                    Split::Train => self.data.train_era = Some(self.round_draws_from),
                    Split::Test => {}
                }
            }
            HumanAction::FixExample { split, example, field, value } => {
                *self.data.revisions.entry((*split, example.clone())).or_insert(0) += 1;
                let existing =
                    self.data.fixes.iter_mut().find(|f| f.split == *split && f.id == *example && f.field == *field);
                match existing {
                    Some(f) => f.new = value.clone(),
                    None => self.data.fixes.push(DataFix {
                        split: *split,
                        id: example.clone(),
                        field: field.clone(),
                        old: None,
                        new: value.clone(),
                    }),
                }
            }
            _ => {}
        }
    }

    /// A committed `example_fixed`: the data file's values, and the val scores made again.
    pub(super) fn apply_fixed(&mut self, split: Split, example: &str, changes: &[FieldChange], rescored: &[Rescored]) {
        for c in changes {
            match self.data.fixes.iter_mut().find(|f| f.split == split && f.id == example && f.field == c.field) {
                Some(f) => f.old = c.old.clone(),
                None => self.data.fixes.push(DataFix {
                    split,
                    id: example.to_string(),
                    field: c.field.clone(),
                    old: c.old.clone(),
                    new: c.new.clone(),
                }),
            }
        }
        if split != Split::Val || rescored.is_empty() {
            return;
        }
        let Some(i) = self.val_ids.iter().position(|id| id == example) else { return };
        let n = self.val_ids.len();
        // Every recorded draw of a candidate is scored again in the same event (`val_repeats`).
        let mut by_candidate: BTreeMap<CandidateId, Vec<ExampleEval>> = BTreeMap::new();
        for r in rescored {
            by_candidate.entry(r.candidate).or_default().push(r.eval.clone());
        }
        for (candidate, evals) in by_candidate {
            let Some(c) = self.candidates.get_mut(candidate) else { continue };
            let Some(d) = crate::eval::repeats::by_example(&evals).into_iter().next() else { continue };
            if let Some(s) = c.val_scores.get_mut(i) {
                *s = d.mean();
            }
            if let Some(draws) = c.val_draws.get_mut(i) {
                *draws = d.scores();
            }
            let objectives = d.objectives();
            if c.val_objectives.is_empty() && !objectives.is_empty() {
                c.val_objectives = vec![ObjectiveScores::new(); n];
            }
            if let Some(o) = c.val_objectives.get_mut(i) {
                *o = objectives;
            }
        }
        self.recompute_val();
    }

    /// Rebuilds every candidate's val mean and objective means, and every front, from the scores
    /// per example over the val examples that count: what the fold would hold had the excluded
    /// examples never been in val (and fixed ones always said what they say now). A front's
    /// holders do not depend on the order candidates are offered in, so this equals the
    /// incremental fold over the same scores.
    pub(super) fn recompute_val(&mut self) {
        let counted = self.counted_val();
        let mut fronts = ParetoFronts::new(self.val_ids.len());
        let mut objective_fronts = BTreeMap::new();
        let mut cartesian_fronts = BTreeMap::new();
        let means: Vec<(f64, ObjectiveScores)> = self
            .candidates
            .iter()
            .map(|c| {
                let per: Vec<&ObjectiveScores> = counted.iter().filter_map(|&i| c.val_objectives.get(i)).collect();
                (self.counted_mean(&c.val_scores), aggregate(per))
            })
            .collect();
        for (c, (mean, objectives)) in self.candidates.iter_mut().zip(means) {
            if c.val_scores.is_empty() {
                continue;
            }
            for &i in &counted {
                if let Some(s) = c.val_scores.get(i) {
                    fronts.update(i, c.id, *s);
                }
                if let Some(m) = c.val_objectives.get(i) {
                    for (name, v) in m {
                        offer_keyed(&mut cartesian_fronts, (i, name.clone()), c.id, *v);
                    }
                }
            }
            for (name, v) in &objectives {
                offer_keyed(&mut objective_fronts, name.clone(), c.id, *v);
            }
            c.val_mean = mean;
            c.objectives = objectives;
        }
        self.fronts = fronts;
        self.objective_fronts = objective_fronts;
        self.cartesian_fronts = cartesian_fronts;
        // The yardstick changed: the next round is compared with the best as measured now.
        self.improvement_baseline = Some(self.best_val());
    }

    /// The train example ids of minibatch `k`, for the train split `train` (in file order): the
    /// plain epoch walk until a train example is excluded, then the walk of the era in force.
    pub fn minibatch_ids(&self, seed: u64, train: &[String], size: usize, k: u64) -> Vec<String> {
        match self.data.train_era {
            None => minibatch(seed, train.len(), size, k).into_iter().map(|i| train[i].clone()).collect(),
            Some(from) => {
                let left: Vec<&String> = train.iter().filter(|id| !self.data.is_excluded(Split::Train, id)).collect();
                era_minibatch(seed, from, left.len(), size, k).into_iter().map(|i| left[i].clone()).collect()
            }
        }
    }

    /// Whether a person's exclusion or fix can be taken now; Err says why not.
    pub fn check_data_action(&self, action: &HumanAction) -> Result<(), String> {
        let Some((split, id)) = action.example() else { return Ok(()) };
        let ids = match split {
            Split::Val => &self.val_ids,
            Split::Train => &self.train_ids,
            Split::Test => return Err("only val and train examples can be excluded or fixed".into()),
        };
        if !ids.iter().any(|i| i == id) {
            return Err(format!("no {} example `{id}` in this run", split.as_str()));
        }
        if self.data.is_excluded(split, id) {
            return Err(format!("{} example `{id}` is already excluded from this run", split.as_str()));
        }
        match action {
            HumanAction::ExcludeExample { reason, .. } => {
                if reason.trim().is_empty() {
                    return Err(format!(
                        "say why {} example `{id}` is excluded (a reason is required)",
                        split.as_str()
                    ));
                }
                let left = ids.iter().filter(|i| !self.data.is_excluded(split, i)).count();
                if left <= 1 {
                    return Err(format!(
                        "`{id}` is the only {} example left in this run; it cannot be excluded",
                        split.as_str()
                    ));
                }
            }
            HumanAction::FixExample { field, value, .. } => {
                if field.trim().is_empty() || field == "id" {
                    return Err(format!("name the field of `{id}` to correct (not `id`)"));
                }
                let now = self.data.fixes_of(split, id).find(|f| f.field == *field);
                if now.is_some_and(|f| f.new == *value) {
                    return Err(format!("`{field}` of `{id}` already has that value in this run"));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// result.json's account of the data changes.
    pub fn data_report(&self) -> DataReport {
        DataReport { excluded_examples: self.data.excluded.clone(), data_fixes: self.data.fixes.clone() }
    }
}

/// A corrected copy of one data file's text (`file` names it in messages): the lines of the
/// examples `report` excludes from `split` left out, the fixed fields of the others replaced;
/// every other line byte for byte as it is. Also one note per change made. Err when the file no
/// longer holds an example the run changed (it was edited since), or a changed line is not a
/// JSON object any more.
pub fn corrected_copy(
    text: &str,
    file: &str,
    split: Split,
    report: &DataReport,
) -> Result<(String, Vec<String>), String> {
    let examples = crate::project::data::parse_jsonl(file, text).map_err(|e| e.to_string())?;
    let line_of = |id: &str| examples.iter().find(|e| e.id == id).map(|e| e.line);
    let mut drop: BTreeMap<usize, &ExcludedExample> = BTreeMap::new();
    for e in report.excluded_examples.iter().filter(|e| e.split == split) {
        let line = line_of(&e.id)
            .ok_or_else(|| format!("{file} has no example `{}` any more; it changed since the run", e.id))?;
        drop.insert(line, e);
    }
    let mut fix: BTreeMap<usize, Vec<&DataFix>> = BTreeMap::new();
    for f in report.data_fixes.iter().filter(|f| f.split == split && !drop.values().any(|e| e.id == f.id)) {
        let line = line_of(&f.id)
            .ok_or_else(|| format!("{file} has no example `{}` any more; it changed since the run", f.id))?;
        fix.entry(line).or_default().push(f);
    }
    let mut out = String::with_capacity(text.len());
    let mut notes = Vec::new();
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = i + 1;
        if let Some(e) = drop.get(&line) {
            notes.push(format!("{file}:{line}: left out `{}` ({})", e.id, e.reason));
            continue;
        }
        let Some(fixes) = fix.get(&line) else {
            out.push_str(raw);
            continue;
        };
        let body = raw.trim_end_matches(['\n', '\r']);
        let ending = &raw[body.len()..];
        let (bom, json) = match body.strip_prefix('\u{feff}') {
            Some(rest) => ("\u{feff}", rest),
            None => ("", body),
        };
        let mut fields: serde_json::Map<String, Value> =
            serde_json::from_str(json).map_err(|e| format!("{file}:{line}: not a JSON object any more: {e}"))?;
        for f in fixes {
            let now = fields.get(&f.field);
            if f.old.is_some() && now != f.old.as_ref() {
                notes.push(format!(
                    "{file}:{line}: `{}` of `{}` is {} in the file, the run recorded {}; set to the run's value anyway",
                    f.field,
                    f.id,
                    now.map(Value::to_string).unwrap_or_else(|| "absent".into()),
                    f.old.as_ref().map(Value::to_string).unwrap_or_default()
                ));
            }
            notes.push(format!("{file}:{line}: `{}` of `{}` set to {}", f.field, f.id, f.new));
            fields.insert(f.field.clone(), f.new.clone());
        }
        out.push_str(bom);
        out.push_str(&serde_json::to_string(&fields).expect("JSON objects serialize"));
        out.push_str(ending);
    }
    Ok((out, notes))
}

/// The examples a round's fixes are about, in the order first fixed, each with the fields it
/// fixed.
pub fn fixed_in(actions: &[HumanAction]) -> Vec<(Split, String, Vec<String>)> {
    let mut out: Vec<(Split, String, Vec<String>)> = Vec::new();
    for a in actions {
        let HumanAction::FixExample { split, example, field, .. } = a else { continue };
        match out.iter_mut().find(|(s, e, _)| s == split && e == example) {
            Some((_, _, fields)) if fields.contains(field) => {}
            Some((_, _, fields)) => fields.push(field.clone()),
            None => out.push((*split, example.clone(), vec![field.clone()])),
        }
    }
    out
}

/// The latest committed val evaluations of each candidate on each of `examples` (every draw of
/// it, `val_repeats`), from a run's events: its `val_evaluated`, or the last `example_fixed` that
/// scored it again.
pub fn committed_val_evals(
    events: &[Event],
    examples: &[&str],
) -> BTreeMap<String, BTreeMap<CandidateId, Vec<ExampleEval>>> {
    let mut out: BTreeMap<String, BTreeMap<CandidateId, Vec<ExampleEval>>> = BTreeMap::new();
    let mut commits = CommitBuffer::default();
    for ev in events {
        for e in commits.feed(ev, ev) {
            match e {
                Event::ValEvaluated { candidate, evals, .. } => {
                    for id in examples {
                        let draws: Vec<ExampleEval> = evals.iter().filter(|x| x.example_id == *id).cloned().collect();
                        if !draws.is_empty() {
                            out.entry(id.to_string()).or_default().insert(*candidate, draws);
                        }
                    }
                }
                Event::ExampleFixed { split: Split::Val, example, rescored, .. }
                    if examples.contains(&example.as_str()) =>
                {
                    let mut fixed: BTreeMap<CandidateId, Vec<ExampleEval>> = BTreeMap::new();
                    for r in rescored {
                        fixed.entry(r.candidate).or_default().push(r.eval.clone());
                    }
                    out.entry(example.clone()).or_default().extend(fixed);
                }
                _ => {}
            }
        }
    }
    out
}

/// What committing a round's fixes records: one `example_fixed` per example fixed, with the data
/// file's old values and, for a val example, every earlier candidate's recorded output scored
/// again against the corrected example (`recorded`: the committed evaluations, from
/// `committed_val_evals`; `state`: the committed state before the round, `actions`: the round's
/// decisions). Also the metric calls and USD the scoring took.
pub async fn rescore_fixes(
    task: &Task,
    project: &Project,
    state: &RunState,
    round: u64,
    actions: &[HumanAction],
    recorded: &BTreeMap<String, BTreeMap<CandidateId, Vec<ExampleEval>>>,
    place: &crate::llm::Draw,
) -> Result<(Vec<Event>, u64, f64), LlmError> {
    let mut view = state.clone();
    for a in actions {
        view.apply_human_action(a);
    }
    let counts = !task.evaluator().is_local();
    let (mut events, mut calls, mut cost) = (Vec::new(), 0u64, 0.0);
    for (split, id, fields) in fixed_in(actions) {
        let file = match split {
            Split::Val => &project.val,
            _ => &project.train,
        };
        let Some(ex) = file.iter().find(|e| e.id == id) else { continue };
        let changes: Vec<FieldChange> = fields
            .iter()
            .filter_map(|f| {
                let fix = view.data.fixes_of(split, &id).find(|x| x.field == *f)?;
                Some(FieldChange { field: f.clone(), old: ex.fields.get(f).cloned(), new: fix.new.clone() })
            })
            .collect();
        let (mut rescored, mut example_calls) = (Vec::new(), 0u64);
        if split == Split::Val && !view.data.is_excluded(split, &id) {
            let corrected = view.data.apply(split, ex);
            let earlier = recorded.get(&id).into_iter().flatten().filter(|(c, _)| **c < state.candidates.len());
            for (c, draws) in earlier {
                for rec in draws {
                    // A repeat's output is scored again at its own place (the first at the old one).
                    let draw = place.at("fix", &id).at("candidate", c);
                    let draw = if rec.repeat == 0 { draw } else { draw.at("repeat", rec.repeat) };
                    let eval = task.rescore(&corrected, rec, Some(&draw)).await?;
                    example_calls += u64::from(counts);
                    cost += eval.cost_usd;
                    rescored.push(Rescored { candidate: *c, eval });
                }
            }
        }
        calls += example_calls;
        events.push(Event::ExampleFixed { round, split, example: id, changes, rescored, metric_calls: example_calls });
    }
    Ok((events, calls, cost))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::{Event, Origin};
    use crate::project::config::Frontier;

    fn eval(id: &str, score: f64, acc: f64) -> ExampleEval {
        ExampleEval { objectives: [("acc".to_string(), acc)].into(), ..ExampleEval::scored(id, score) }
    }

    fn start(val: &[&str], frontier: Frontier) -> Event {
        Event::run_started_for_tests(&["t0", "t1", "t2"], val, frontier)
    }

    fn added(c: usize) -> Event {
        Event::CandidateAdded {
            id: c,
            texts: [("p".to_string(), format!("text {c}"))].into(),
            parents: if c == 0 { vec![] } else { vec![0] },
            origin: if c == 0 { Origin::Seed } else { Origin::Mutation },
            changed: vec![],
            round: 0,
            discovered_at: 0,
            note: None,
            review_item: None,
        }
    }

    /// Scores per candidate on val e0..e3 (acc = the score): c0 [1,0,0,1], c1 [0,1,1,0],
    /// c2 [1,1,0,0].
    const ROWS: [[f64; 4]; 3] = [[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]];
    const VAL: [&str; 4] = ["e0", "e1", "e2", "e3"];

    fn fold(val: &[&str], rows: &[Vec<f64>], frontier: Frontier) -> RunState {
        let mut s = RunState::default();
        s.apply(&start(val, frontier));
        for (c, row) in rows.iter().enumerate() {
            s.apply(&added(c));
            let evals = val.iter().zip(row).map(|(id, x)| eval(id, *x, *x)).collect();
            s.apply(&Event::ValEvaluated { candidate: c, evals, round: None });
        }
        s
    }

    /// Excluding e3 gives exactly the fold of a run whose val never had it: the means, the
    /// per-example fronts, the objective fronts and the best candidate (with e3 all three tie at
    /// 1/2 and the earliest, c0, is best; without it c1 and c2 tie at 2/3 and c1 is).
    #[test]
    fn excluding_a_val_example_folds_as_if_it_was_never_in_val() {
        for frontier in [Frontier::Instance, Frontier::Hybrid, Frontier::Cartesian] {
            let rows: Vec<Vec<f64>> = ROWS.iter().map(|r| r.to_vec()).collect();
            let mut s = fold(&VAL, &rows, frontier);
            assert_eq!(s.best(), Some(0));
            s.apply(&Event::Human {
                round: 1,
                action: HumanAction::ExcludeExample { split: Split::Val, example: "e3".into(), reason: "wrong".into() },
                request: None,
            });
            let without: Vec<Vec<f64>> = ROWS.iter().map(|r| r[..3].to_vec()).collect();
            let never = fold(&VAL[..3], &without, frontier);
            assert_eq!(s.val_means(), never.val_means(), "{frontier:?}");
            assert_eq!(s.front_sets(), never.front_sets(), "{frontier:?}");
            assert_eq!(s.front_count(), never.front_count());
            assert_eq!(s.objective_fronts, never.objective_fronts);
            assert_eq!(s.best(), Some(1));
            for (a, b) in s.candidates.iter().zip(&never.candidates) {
                assert_eq!(a.objectives, b.objectives);
            }
            // A candidate scored after the exclusion is scored on e0..e2 only.
            let mut n = never.clone();
            let late = [0.0, 0.0, 1.0];
            for st in [&mut s, &mut n] {
                st.apply(&added(3));
                let evals = VAL[..3].iter().zip(late).map(|(id, x)| eval(id, x, x)).collect();
                st.apply(&Event::ValEvaluated { candidate: 3, evals, round: None });
            }
            assert_eq!(s.val_means(), n.val_means());
            assert_eq!(s.front_sets(), n.front_sets());
            assert_eq!(s.candidates[3].val_scores, vec![0.0, 0.0, 1.0, 0.0]);
        }
    }

    #[test]
    fn a_rescore_replaces_the_scores_and_moves_the_best() {
        let rows: Vec<Vec<f64>> = ROWS.iter().map(|r| r.to_vec()).collect();
        let mut s = fold(&VAL, &rows, Frontier::Instance);
        let fix = HumanAction::FixExample {
            split: Split::Val,
            example: "e0".into(),
            field: "expected".into(),
            value: Value::String("B".into()),
        };
        s.apply(&Event::Human { round: 1, action: fix, request: None });
        assert_eq!(s.data.revision(Split::Val, "e0"), 1);
        // Against the corrected value c1 is right on e0 and c0, c2 are wrong.
        let rescored =
            [(0, 0.0), (1, 1.0), (2, 0.0)].map(|(c, x)| Rescored { candidate: c, eval: eval("e0", x, x) }).to_vec();
        let changes = vec![FieldChange { field: "expected".into(), old: Some("A".into()), new: "B".into() }];
        s.apply(&Event::ExampleFixed {
            round: 1,
            split: Split::Val,
            example: "e0".into(),
            changes,
            rescored,
            metric_calls: 0,
        });
        assert_eq!(s.val_means(), vec![0.25, 0.75, 0.25]);
        assert_eq!(s.best(), Some(1));
        assert_eq!(s.fronts.entries[0].holders, [1].into());
        assert_eq!(s.data_report().data_fixes[0].old, Some(Value::String("A".into())));
    }

    /// An excluded train example is never drawn after the exclusion: the sampler's new era,
    /// starting at the next minibatch, walks the two left (each once per epoch of one minibatch
    /// of two). Minibatches drawn before are recorded in `round_started`, never drawn again.
    #[test]
    fn an_excluded_train_example_is_not_drawn_again() {
        let mut s = fold(&VAL, &[], Frontier::Instance);
        let train: Vec<String> = s.train_ids.clone();
        assert!((0..8).any(|k| s.minibatch_ids(5, &train, 2, k).contains(&"t1".to_string())));
        s.minibatches_drawn = 4;
        s.apply_human_action(&HumanAction::ExcludeExample {
            split: Split::Train,
            example: "t1".into(),
            reason: "wrong".into(),
        });
        assert_eq!(s.data.train_era, Some(4));
        for k in 4..40 {
            let mut b = s.minibatch_ids(5, &train, 2, k);
            b.sort();
            assert_eq!(b, vec!["t0".to_string(), "t2".to_string()], "minibatch {k}");
        }
    }

    #[test]
    fn refusals_name_the_example_and_the_reason() {
        let rows: Vec<Vec<f64>> = ROWS.iter().map(|r| r.to_vec()).collect();
        let mut s = fold(&VAL[..2], &rows.iter().map(|r| r[..2].to_vec()).collect::<Vec<_>>(), Frontier::Instance);
        let ex = |id: &str, reason: &str| HumanAction::ExcludeExample {
            split: Split::Val,
            example: id.into(),
            reason: reason.into(),
        };
        assert!(s.check_data_action(&ex("nope", "x")).unwrap_err().contains("no val example `nope`"));
        assert!(s.check_data_action(&ex("e0", " ")).unwrap_err().contains("reason"));
        s.apply_human_action(&ex("e0", "wrong"));
        assert!(s.check_data_action(&ex("e0", "x")).unwrap_err().contains("already excluded"));
        assert!(s.check_data_action(&ex("e1", "x")).unwrap_err().contains("only val example left"));
        // A guide cannot point at an example the run no longer uses.
        let guide = |id: &str| HumanAction::Guide {
            candidate: 0,
            note: "look here".into(),
            example: Some(crate::engine::event::GuideExample { split: Split::Val, id: id.into() }),
            component: None,
        };
        let why = guide("e0").check(&s, &[]).unwrap_err();
        assert!(why.contains("`e0` is excluded"), "{why}");
        assert_eq!(guide("e1").check(&s, &[]), Ok(()));
        let test = HumanAction::ExcludeExample { split: Split::Test, example: "e1".into(), reason: "x".into() };
        assert!(s.check_data_action(&test).is_err());
    }

    /// The copy leaves out the excluded line, rewrites the fixed one (keys in their order), and
    /// keeps every other byte, blank lines and CRLF endings included.
    #[test]
    fn a_corrected_copy_changes_only_the_changed_lines() {
        let text = "{\"id\": \"a\", \"expected\": \"x\"}\r\n\n{\"id\": \"b\", \"expected\": \"y\", \"k\": 1}\r\n{\"id\": \"c\", \"expected\": \"z\"}";
        let report = DataReport {
            excluded_examples: vec![ExcludedExample { split: Split::Val, id: "c".into(), reason: "dup".into() }],
            data_fixes: vec![DataFix {
                split: Split::Val,
                id: "b".into(),
                field: "expected".into(),
                old: Some("y".into()),
                new: "w".into(),
            }],
        };
        let (out, notes) = corrected_copy(text, "data/val.jsonl", Split::Val, &report).unwrap();
        assert_eq!(out, "{\"id\": \"a\", \"expected\": \"x\"}\r\n\n{\"id\":\"b\",\"expected\":\"w\",\"k\":1}\r\n");
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("data/val.jsonl:3") && notes[1].contains("data/val.jsonl:4: left out `c` (dup)"));
        // Another split's changes do not touch this file; an example gone from the file is an error.
        assert_eq!(corrected_copy(text, "t", Split::Train, &report).unwrap().0, text);
        let e = corrected_copy("{\"id\": \"a\"}\n", "data/val.jsonl", Split::Val, &report).unwrap_err();
        assert!(e.contains("data/val.jsonl has no example `c`"), "{e}");
    }

    #[test]
    fn typed_values_keep_the_field_s_type() {
        let s = Value::String("a".into());
        assert_eq!(parse_field_value(Some(&s), "b c").unwrap(), Value::String("b c".into()));
        assert_eq!(parse_field_value(None, "7").unwrap(), Value::String("7".into()));
        assert_eq!(parse_field_value(Some(&serde_json::json!(3)), " 4 ").unwrap(), serde_json::json!(4));
        let e = parse_field_value(Some(&serde_json::json!(["a"])), "b").unwrap_err();
        assert!(e.contains("a list") && e.contains("JSON"), "{e}");
    }
}

//! The run's state as a fold over its committed events. The engine, `--resume`, the TUI and export
//! all build it with `RunState::apply`; there is no second source of truth.

mod check;
mod commit;
mod report;

pub use commit::CommitBuffer;
pub use report::{ObjectiveReport, ObjectiveResult};

use super::event::{Event, HumanAction, Origin, PlannedProposal, ProposalOutcome, ReviewItem};
use super::merge::MergeHistory;
use super::pareto::{offer_keyed, CandidateId, KeyedFronts, ParetoFronts};
use crate::eval::objective::{aggregate, ObjectiveScores};
use crate::project::config::{Frontier, OptimizerConfig, ReviewPolicy};
use crate::project::Candidate;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct CandidateRecord {
    pub id: CandidateId,
    pub texts: Candidate,
    pub parents: Vec<CandidateId>,
    pub origin: Origin,
    pub changed: Vec<String>,
    pub round: u64,
    pub discovered_at: u64,
    /// Score per val example, in val order (empty until `val_evaluated`): the mean of its draws
    /// when val is scored more than once (`val_repeats`).
    pub val_scores: Vec<f64>,
    /// Per val example, the scores of its draws in repeat order, when val is scored more than
    /// once; empty otherwise.
    pub val_draws: Vec<Vec<f64>>,
    pub val_mean: f64,
    /// Objective scores per val example, in val order (empty without objectives).
    pub val_objectives: Vec<ObjectiveScores>,
    /// Each objective's mean over val (gepa's `prog_candidate_objective_scores`).
    pub objectives: ObjectiveScores,
    pub test_mean: Option<f64>,
    /// Why a person added it, or how a reviewed item got here.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunState {
    pub run_id: String,
    /// `RUN:ID` when the run was started from a candidate of another run (`--branch`, `b`).
    pub branched_from: Option<String>,
    /// Whose draws its sampling models' calls are (its own id unless it replays another run's).
    pub draws: String,
    /// The `[optimizer]` settings in force (`run_started`, then each `settings_changed`): what
    /// the engine's stop rule, the gauge, the ETA and result.json read.
    pub settings: OptimizerConfig,
    pub components: Vec<String>,
    pub train_ids: Vec<String>,
    pub val_ids: Vec<String>,
    pub test_ids: Vec<String>,
    pub candidates: Vec<CandidateRecord>,
    /// Per val example, on the main score (gepa's `program_at_pareto_front_valset`).
    pub fronts: ParetoFronts,
    /// Which fronts selection works over (`run_started`'s `frontier`).
    pub frontier: Frontier,
    /// Per objective, on its val mean (gepa's `program_at_pareto_front_objectives`).
    pub objective_fronts: KeyedFronts<String>,
    /// Per (val example index, objective) (gepa's `program_at_pareto_front_cartesian`).
    pub cartesian_fronts: KeyedFronts<(usize, String)>,
    /// Last committed round (0 = seed evaluated; none before that).
    pub round: Option<u64>,
    pub metric_calls: u64,
    /// USD paid (replies served from the response cache are free).
    pub cost_usd: f64,
    /// USD the replies served from the response cache would have cost.
    pub cost_usd_replayed: f64,
    /// Of `cost_usd`, what work planned ahead and then dropped paid.
    pub cost_usd_dropped: f64,
    /// Proposals whose reflection gave back the current text or nothing (no child to try).
    pub proposals_without_new_text: u64,
    /// Proposals whose reflection was cut off every time it was asked (no child made).
    pub reflections_cut_off: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// What the committed reflections cost at the model's prices (replies replayed from the
    /// response cache included, so a resume or a replay stops where the run did).
    pub reflection_cost_usd: f64,
    /// Reflective proposals committed (each sibling of a round; skipped ones too).
    pub proposals_made: u64,
    /// Round-robin pointer per candidate: the index into `components` to rewrite next.
    pub next_component: Vec<usize>,
    /// Minibatches drawn so far over the run.
    pub minibatches_drawn: u64,
    pub merges: MergeHistory,
    /// Merges owed: one per round that found a new candidate, up to max_merges (gepa's merges_due).
    pub merges_due: u32,
    pub merges_tested: u32,
    /// The last committed round added a candidate by mutation (gepa's last_iter_found_new_program).
    pub last_round_found_new: bool,
    /// (metric calls, best val mean) after each round that changed the best.
    pub best_history: Vec<(u64, f64)>,
    pub rounds_without_improvement: u64,
    /// Committed rounds in a row that spent no metric call (every evaluation they needed was in
    /// the evaluation cache: parents perfect on minibatches already seen).
    pub rounds_without_calls: u64,
    pub finished: Option<String>,
    /// The setting or rule that stopped the run (`max_proposals`, `max_metric_calls`, …).
    pub stopped_by: Option<String>,
    pub test_score: Option<f64>,
    /// Committed evaluations that failed (model or program errors), scored 0.
    pub failed_evaluations: u64,
    /// Of those, the ones a program ran out of its timeout in (`ExampleEval::timed_out`).
    pub timed_out_evaluations: u64,
    /// Evaluations served from the evaluation cache (not run again, not counted as metric calls).
    pub evaluations_cached: u64,
    /// Children waiting for a person, oldest first.
    pub review_queue: Vec<ReviewItem>,
    pub next_review_item: u64,
    /// Reasons given when vetoing, per component: told to later reflections on it.
    pub vetoes: BTreeMap<String, Vec<String>>,
    /// Review policies set at run time (mutations, merges), overriding gepa.toml.
    pub policy: Option<(ReviewPolicy, ReviewPolicy)>,
    /// Examples a person excluded or fixed (see `data_fixes.rs`).
    pub data: super::data_changes::DataChanges,
    /// The first minibatch index of the round being applied (a train exclusion's sampler era
    /// starts there).
    pub(super) round_draws_from: u64,
    /// Set when the data changed under the candidates (an exclusion, a rescore): the next round's
    /// best is compared with this, the best as measured now, not with the old best.
    pub(super) improvement_baseline: Option<f64>,
    /// Text a person protected, per component (from the prompt files' keep markers, then
    /// `protect` decisions): later reflections must keep it verbatim.
    pub protected: BTreeMap<String, Vec<String>>,
    /// Proposals a person asked for with a note (`guide`).
    pub guided_proposals: u64,
    /// Children refused before they were evaluated: they dropped protected text, or grew more
    /// than `max_growth`.
    pub children_refused: u64,
    /// Proposals that made no child, and the changes of course taken for them (`engine::adapt`).
    pub adapt: super::adapt::Adaptation,
    /// Proposals of the rounds in a row that spent no metric call which made no child (the rest
    /// found their parent perfect): says whether "nothing left to learn" is true.
    pub idle_no_child: u64,
    /// The same, for the round being applied (moved into `idle_no_child` at its commit).
    pub(super) round_no_child: u64,
}

impl RunState {
    /// Applies one committed event.
    pub fn apply(&mut self, event: &Event) {
        if let Event::MinibatchEvaluated { evals, .. }
        | Event::ValEvaluated { evals, .. }
        | Event::MergeAttempted { evals, .. }
        | Event::TestEvaluated { evals, .. } = event
        {
            self.failed_evaluations += evals.iter().filter(|e| e.error.is_some()).count() as u64;
            self.timed_out_evaluations += evals.iter().filter(|e| e.timed_out.is_some()).count() as u64;
            self.evaluations_cached += evals.iter().filter(|e| e.cached).count() as u64;
        }
        match event {
            Event::RunStarted {
                run_id,
                seed,
                components,
                train_ids,
                val_ids,
                test_ids,
                max_metric_calls,
                proposals_per_round,
                branched_from,
                draws,
                frontier,
                protected,
                settings,
                ..
            } => {
                self.draws = draws.clone().unwrap_or_else(|| run_id.clone());
                self.frontier = *frontier;
                self.protected = protected.clone();
                self.run_id = run_id.clone();
                self.branched_from = branched_from.clone();
                // A log from before the settings were recorded has the ones it named.
                self.settings = settings.as_deref().cloned().unwrap_or_else(|| OptimizerConfig {
                    seed: *seed,
                    max_metric_calls: *max_metric_calls,
                    proposals_per_round: *proposals_per_round,
                    frontier: *frontier,
                    ..OptimizerConfig::default()
                });
                self.components = components.clone();
                self.train_ids = train_ids.clone();
                self.val_ids = val_ids.clone();
                self.test_ids = test_ids.clone();
                self.fronts = ParetoFronts::new(val_ids.len());
            }
            Event::SettingsChanged { settings, .. } => self.settings = (**settings).clone(),
            Event::RoundStarted { proposals, .. } => {
                self.round_draws_from = self.minibatches_drawn;
                self.plan_applied(proposals);
                self.guided_proposals += proposals.iter().filter(|p| p.guide.is_some()).count() as u64;
            }
            Event::ExampleFixed { split, example, changes, rescored, .. } => {
                self.apply_fixed(*split, example, changes, rescored)
            }
            Event::ReviewQueued { item } => {
                self.next_review_item = self.next_review_item.max(item.item + 1);
                self.review_queue.push(item.clone());
            }
            Event::Human { action, .. } => self.apply_human(action),
            Event::CandidateAdded { id, texts, parents, origin, changed, round, discovered_at, note, .. } => {
                debug_assert_eq!(*id, self.candidates.len());
                self.candidates.push(CandidateRecord {
                    id: *id,
                    texts: texts.clone(),
                    parents: parents.clone(),
                    origin: *origin,
                    changed: changed.clone(),
                    round: *round,
                    discovered_at: *discovered_at,
                    val_scores: Vec::new(),
                    val_draws: Vec::new(),
                    val_mean: 0.0,
                    val_objectives: Vec::new(),
                    objectives: ObjectiveScores::new(),
                    test_mean: None,
                    note: note.clone(),
                });
                // A child continues its parents' round robin (gepa: the max of the parents' pointers,
                // already moved past the component just changed).
                let inherited = parents.iter().filter_map(|p| self.next_component.get(*p)).copied().max().unwrap_or(0);
                self.next_component.push(inherited);
            }
            Event::ValEvaluated { candidate, evals, .. } => {
                // Placed by val index; an example excluded before this candidate was scored has
                // no evaluation, and only the examples that count enter its mean and the fronts.
                let placed = self.place_val(evals);
                let (scores, per_example) = (placed.scores, placed.objectives);
                for (i, s) in scores.iter().enumerate().take(self.fronts.entries.len()) {
                    if self.val_counted(i) {
                        self.fronts.update(i, *candidate, *s);
                    }
                }
                let mean = self.counted_mean(&scores);
                let means =
                    aggregate(per_example.iter().enumerate().filter(|(i, _)| self.val_counted(*i)).map(|(_, m)| m));
                // Fronts on objectives are kept whatever the frontier, as gepa keeps its objective
                // front; `front_sets` picks which count.
                for (name, v) in &means {
                    offer_keyed(&mut self.objective_fronts, name.clone(), *candidate, *v);
                }
                for (i, m) in per_example.iter().enumerate().take(self.fronts.entries.len()) {
                    if !self.val_counted(i) {
                        continue;
                    }
                    for (name, v) in m {
                        offer_keyed(&mut self.cartesian_fronts, (i, name.clone()), *candidate, *v);
                    }
                }
                if let Some(c) = self.candidates.get_mut(*candidate) {
                    c.val_scores = scores;
                    c.val_draws = placed.draws;
                    c.val_mean = mean;
                    c.objectives = means;
                    c.val_objectives = if per_example.iter().all(|m| m.is_empty()) { Vec::new() } else { per_example };
                }
            }
            Event::MergeAttempted { id1, id2, ancestor, sources, accepted, .. } => {
                self.merges.record(*id1, *id2, *ancestor, sources);
                if *accepted {
                    self.merges_due = self.merges_due.saturating_sub(1);
                    self.merges_tested += 1;
                }
            }
            Event::RoundFinished {
                round,
                metric_calls,
                cost_usd,
                cost_usd_replayed,
                cost_usd_dropped,
                best_val,
                merges_due,
                found_new,
                input_tokens,
                output_tokens,
                ..
            } => {
                self.input_tokens = *input_tokens;
                self.output_tokens = *output_tokens;
                self.merges_due = *merges_due;
                self.last_round_found_new = *found_new;
                // After a data change the best is measured anew: compared with what it was right
                // after the change, and drawn on the chart even when it fell.
                let baseline = self.improvement_baseline.take();
                let prev_best = baseline.or(self.best_history.last().map(|(_, b)| *b));
                if self.round.is_some() && *metric_calls == self.metric_calls {
                    self.rounds_without_calls += 1;
                    self.idle_no_child += self.round_no_child;
                } else {
                    self.rounds_without_calls = 0;
                    self.idle_no_child = 0;
                }
                self.round_no_child = 0;
                self.round = Some(*round);
                self.metric_calls = *metric_calls;
                self.cost_usd = *cost_usd;
                self.cost_usd_replayed = *cost_usd_replayed;
                self.cost_usd_dropped = *cost_usd_dropped;
                if baseline.is_some() || prev_best.is_none_or(|p| *best_val > p) {
                    self.best_history.push((*metric_calls, *best_val));
                }
                if prev_best.is_none_or(|p| *best_val > p) {
                    self.rounds_without_improvement = 0;
                } else {
                    self.rounds_without_improvement += 1;
                }
            }
            Event::TestEvaluated { candidate, mean, evals } => {
                // Test scoring is not part of the budget, but it is paid for.
                for e in evals {
                    let (paid, replayed) = e.paid_and_replayed();
                    self.cost_usd += paid;
                    self.cost_usd_replayed += replayed;
                }
                if let Some(c) = self.candidates.get_mut(*candidate) {
                    c.test_mean = Some(*mean);
                }
                self.test_score = Some(*mean);
            }
            Event::Finished { reason, stopped_by, cost_usd, cost_usd_dropped, .. } => {
                self.finished = Some(reason.clone());
                self.stopped_by = stopped_by.clone();
                // Dropped work still running when the last round committed is booked here.
                self.cost_usd = *cost_usd;
                self.cost_usd_dropped = *cost_usd_dropped;
            }
            ev @ Event::ReflectionAdapted { .. } => {
                if let Some(t) = ev.adapted() {
                    self.adapt.take(&t);
                }
            }
            // The round robin moves on for every proposal that reflected: not for one skipped
            // because its parent was perfect (gepa's selector runs after the skip check).
            Event::ProposalFinished { parent, outcome, .. } => {
                self.proposals_made += 1;
                if *outcome != ProposalOutcome::SkippedPerfect {
                    self.advance_round_robin(*parent);
                }
                self.adapt.record(outcome.no_child());
                if matches!(outcome.no_child(), Some(Some(_))) {
                    self.round_no_child += 1;
                }
                match outcome {
                    ProposalOutcome::Unchanged | ProposalOutcome::EmptyAnswer => self.proposals_without_new_text += 1,
                    ProposalOutcome::ReflectionTruncated { .. } => self.reflections_cut_off += 1,
                    o if o.refused_unevaluated() => self.children_refused += 1,
                    _ => {}
                }
            }
            Event::Reflection { cost_usd, .. } => self.reflection_cost_usd += cost_usd,
            Event::MinibatchEvaluated { .. }
            | Event::Resumed { .. }
            | Event::RoundVoided { .. }
            | Event::Paused { .. } => {}
        }
    }

    /// Takes a person's decision (the planner's view of a round not yet committed: its
    /// minibatches are not drawn yet).
    pub fn apply_human_action(&mut self, action: &HumanAction) {
        self.round_draws_from = self.minibatches_drawn;
        self.apply_human(action);
    }

    fn apply_human(&mut self, action: &HumanAction) {
        match action {
            HumanAction::Approve { item } | HumanAction::Edit { item, .. } => {
                self.review_queue.retain(|i| i.item != *item)
            }
            HumanAction::Veto { item, reason } => {
                if let Some(pos) = self.review_queue.iter().position(|i| i.item == *item) {
                    let it = self.review_queue.remove(pos);
                    if let Some(r) = reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
                        for c in &it.changed {
                            self.vetoes.entry(c.clone()).or_default().push(r.to_string());
                        }
                    }
                }
            }
            HumanAction::SetPolicy { mutations, merges } => self.policy = Some((*mutations, *merges)),
            HumanAction::ExcludeExample { .. } | HumanAction::FixExample { .. } => self.take_data_action(action),
            HumanAction::Protect { component, text } => {
                let spans = self.protected.entry(component.clone()).or_default();
                if !spans.contains(text) {
                    spans.push(text.clone());
                }
            }
            // Taken by the planner of the round it is recorded with (its proposal says so).
            HumanAction::Guide { .. } | HumanAction::AddCandidate { .. } => {}
        }
    }

    /// The protected spans of `component` that occur in `text` (those a child of it must keep).
    pub fn protected_in(&self, component: &str, text: &str) -> Vec<String> {
        self.protected
            .get(component)
            .map_or_else(Vec::new, |spans| spans.iter().filter(|s| text.contains(s.as_str())).cloned().collect())
    }

    /// The pending item with this number.
    pub fn review_item(&self, item: u64) -> Option<&ReviewItem> {
        self.review_queue.iter().find(|i| i.item == item)
    }

    fn plan_applied(&mut self, proposals: &[PlannedProposal]) {
        for p in proposals {
            self.minibatches_drawn = self.minibatches_drawn.max(p.minibatch_index + 1);
        }
    }

    /// What the planner sees of a round that is planned but not committed: its minibatches are
    /// drawn, its parents' round robins moved on (as if none of them is skipped), the merge it
    /// tries is owed no more, and its human actions are taken.
    pub fn plan_in_flight(&mut self, planned: &Event, actions: &[HumanAction], skipped: bool) {
        if let Event::RoundStarted { proposals, merge, .. } = planned {
            self.round_draws_from = self.minibatches_drawn;
            self.plan_applied(proposals);
            for p in proposals.iter().filter(|_| !skipped) {
                self.advance_round_robin(p.parent);
            }
            if let Some(m) = merge {
                self.merges_due = self.merges_due.saturating_sub(1);
                // A merge in flight is not planned again.
                self.merges.record(m.id1, m.id2, m.ancestor, &m.sources);
            }
        }
        for a in actions {
            self.apply_human(a);
        }
    }

    /// The candidate's next reflection rewrites the next component (round robin).
    fn advance_round_robin(&mut self, parent: CandidateId) {
        if let Some(ptr) = self.next_component.get_mut(parent) {
            *ptr = (*ptr + 1) % self.components.len().max(1);
        }
    }

    /// A child that passed its minibatch in a round not yet committed, as the planner guesses
    /// the state will hold it: its id, texts and round robin (no val scores yet). Returns its id.
    pub fn add_provisional(&mut self, texts: &Candidate, parent: CandidateId) -> CandidateId {
        let id = self.candidates.len();
        self.candidates.push(CandidateRecord {
            id,
            texts: texts.clone(),
            parents: vec![parent],
            origin: Origin::Mutation,
            changed: vec![],
            round: 0,
            discovered_at: 0,
            val_scores: Vec::new(),
            val_draws: Vec::new(),
            val_mean: 0.0,
            val_objectives: Vec::new(),
            objectives: ObjectiveScores::new(),
            test_mean: None,
            note: None,
        });
        let inherited = self.next_component.get(parent).copied().unwrap_or(0);
        self.next_component.push(inherited);
        id
    }

    /// The seed while it is being scored on val, as the planner sees it (id 0, no val scores,
    /// the round robin at the first component). Returns its id.
    pub fn add_provisional_seed(&mut self, texts: &Candidate) -> CandidateId {
        let id = self.add_provisional(texts, 0);
        self.candidates[id].parents.clear();
        self.candidates[id].origin = Origin::Seed;
        self.next_component[id] = 0;
        id
    }

    /// Rebuilds the state from stored events: round-scoped events count only once their round is
    /// committed by `round_finished`; uncommitted rounds (a crash mid-round) are dropped.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> RunState {
        let mut state = RunState::default();
        let mut commits = CommitBuffer::default();
        for ev in events {
            for e in commits.feed(ev, ev) {
                state.apply(e);
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pareto::dominators;
    use crate::eval::ExampleEval;
    use std::collections::BTreeSet;

    fn start(frontier: Frontier) -> Event {
        Event::run_started_for_tests(&[], &["e0", "e1", "e2"], frontier)
    }

    fn eval(i: usize, score: f64, acc: f64, short: f64) -> ExampleEval {
        let objectives = [("acc".to_string(), acc), ("short".to_string(), short)].into();
        ExampleEval { objectives, ..ExampleEval::scored(format!("e{i}"), score) }
    }

    /// Three candidates on three val examples, with objectives `acc` (= the main score here) and
    /// `short` (brevity, higher is better):
    ///   c0: main [1,0,0] (mean .333), short [.5,.5,.5]  (mean .5)   the shortest
    ///   c1: main [1,1,0] (mean .667), short [.1,.1,.1]  (mean .1)   the most accurate
    ///   c2: main [0,0,1] (mean .333), short [.2,.2,.9]  (mean .433)
    fn state(frontier: Frontier) -> RunState {
        let rows = [
            ([1.0, 0.0, 0.0], [0.5, 0.5, 0.5]),
            ([1.0, 1.0, 0.0], [0.1, 0.1, 0.1]),
            ([0.0, 0.0, 1.0], [0.2, 0.2, 0.9]),
        ];
        let mut s = RunState::default();
        s.apply(&start(frontier));
        for (c, (main, short)) in rows.iter().enumerate() {
            s.apply(&Event::CandidateAdded {
                id: c,
                texts: [("p".to_string(), format!("text {c}"))].into(),
                parents: if c == 0 { vec![] } else { vec![0] },
                origin: if c == 0 { Origin::Seed } else { Origin::Mutation },
                changed: vec![],
                round: c as u64,
                discovered_at: 0,
                note: None,
                review_item: None,
            });
            let evals = (0..3).map(|i| eval(i, main[i], main[i], short[i])).collect();
            s.apply(&Event::ValEvaluated { candidate: c, evals, round: None });
        }
        s
    }

    fn sets(v: &[&[usize]]) -> Vec<BTreeSet<CandidateId>> {
        v.iter().map(|f| f.iter().copied().collect()).collect()
    }

    /// Instance (gepa `_get_pareto_front_mapping`, "instance": one front per val id):
    /// e0 {0,1}, e1 {1}, e2 {2}. remove_dominated_programs (gepa_utils.py), ascending by mean:
    /// c0 (.333), c2 (.333), c1. c0's only front e0 also holds c1: dominated. c2 alone on e2, c1
    /// alone on e1: kept. The shortest prompt, c0, can never be a parent.
    #[test]
    fn instance_frontier_drops_the_short_candidate() {
        let s = state(Frontier::Instance);
        assert_eq!(s.front_sets(), sets(&[&[0, 1], &[1], &[2]]));
        assert_eq!(dominators(&s.front_sets(), &s.val_means()), vec![(1, 2), (2, 1)]);
    }

    /// Objective ("objective": one front per objective, on its mean over val, core/state.py
    /// `_update_objective_pareto_front`): acc {1} (.667), short {0} (.5). c0 is alone on short,
    /// so remove_dominated_programs keeps it; c2 holds no front and is never picked.
    #[test]
    fn objective_frontier_keeps_the_best_on_each_objective() {
        let s = state(Frontier::Objective);
        assert_eq!(s.front_sets(), sets(&[&[1], &[0]]));
        assert_eq!(dominators(&s.front_sets(), &s.val_means()), vec![(0, 1), (1, 1)]);
        assert_eq!(s.candidates[2].objectives["short"], (0.2 + 0.2 + 0.9) / 3.0);
    }

    /// Hybrid ("hybrid": the instance fronts keyed ("val_id", id) plus the objective fronts keyed
    /// ("objective", name)): e0 {0,1}, e1 {1}, e2 {2}, acc {1}, short {0}. c0 is checked first:
    /// e0 also holds c1, but short holds c0 alone, so it stays. Weights: c0 on e0 and short (2),
    /// c1 on e0, e1, acc (3), c2 on e2 (1).
    #[test]
    fn hybrid_frontier_is_both() {
        let s = state(Frontier::Hybrid);
        assert_eq!(s.front_sets(), sets(&[&[0, 1], &[1], &[2], &[1], &[0]]));
        assert_eq!(s.front_count(), 5);
        assert_eq!(dominators(&s.front_sets(), &s.val_means()), vec![(0, 2), (1, 3), (2, 1)]);
        assert_eq!(s.fronts_held(), [(0, 2), (1, 3), (2, 1)].into());
    }

    /// Cartesian ("cartesian": one front per (val id, objective), `_update_pareto_front_for_cartesian`):
    /// (e0,acc) {0,1}, (e0,short) {0}, (e1,acc) {1}, (e1,short) {0}, (e2,acc) {2}, (e2,short) {2}.
    /// Nobody is dominated: c0 holds (e0,acc), (e0,short), (e1,short); c1 (e0,acc), (e1,acc);
    /// c2 (e2,acc), (e2,short).
    #[test]
    fn cartesian_frontier_is_per_example_and_objective() {
        let s = state(Frontier::Cartesian);
        assert_eq!(s.front_sets(), sets(&[&[0, 1], &[0], &[1], &[0], &[2], &[2]]));
        assert_eq!(s.front_count(), 6);
        assert_eq!(dominators(&s.front_sets(), &s.val_means()), vec![(0, 3), (1, 2), (2, 2)]);
    }

    /// The parent sampler (select.rs over `front_sets`, gepa's select_program_candidate_from_pareto_front:
    /// survivors drawn in proportion to the fronts they hold): under `objective` c0 and c1 about
    /// equally and never c2; under `instance` never c0; hybrid and cartesian by their weights.
    #[test]
    fn selection_follows_the_chosen_fronts() {
        use crate::engine::select::select_parent;
        use crate::project::config::CandidateSelection;
        use rand::SeedableRng;
        let count = |s: &RunState| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
            let mut n = [0usize; 3];
            for _ in 0..3000 {
                n[select_parent(CandidateSelection::Pareto, &s.front_sets(), &s.val_means(), 0.1, 5, &mut rng)] += 1;
            }
            n
        };
        let n = count(&state(Frontier::Objective));
        assert_eq!(n[2], 0, "{n:?}");
        assert!((1300..1700).contains(&n[0]), "{n:?}");
        let n = count(&state(Frontier::Instance));
        assert_eq!(n[0], 0, "{n:?}");
        // Hybrid weights 2 : 3 : 1 (of 6) and cartesian 3 : 2 : 2 (of 7), from the tests above.
        let n = count(&state(Frontier::Hybrid));
        assert!((800..1200).contains(&n[0]) && (1300..1700).contains(&n[1]) && (350..650).contains(&n[2]), "{n:?}");
        let n = count(&state(Frontier::Cartesian));
        assert!((1100..1470).contains(&n[0]) && (690..1030).contains(&n[1]) && (690..1030).contains(&n[2]), "{n:?}");
    }

    /// Over (main, acc, short): c2 (.333, .333, .433) is beaten by c0 (.333, .333, .5); c0 and c1
    /// trade accuracy for brevity. The best per objective is the highest mean on it.
    #[test]
    fn non_dominated_set_and_bests_per_objective() {
        let s = state(Frontier::Instance);
        assert_eq!(s.objective_names(), vec!["acc".to_string(), "short".to_string()]);
        assert_eq!(s.non_dominated(), vec![0, 1]);
        assert_eq!(s.objective_best("short"), Some((0, 0.5)));
        assert_eq!(s.objective_best("acc").map(|b| b.0), Some(1));
        assert_eq!(s.objective_best("missing"), None);
    }

    /// A log written before objectives (no `frontier`, no `objectives`) folds to the instance
    /// frontier, and an instance run writes its `run_started` exactly as before.
    #[test]
    fn old_logs_fold_and_instance_runs_write_what_they_did() {
        let line = serde_json::to_string(&start(Frontier::Instance)).unwrap();
        assert!(!line.contains("frontier"), "{line}");
        let e: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(e, start(Frontier::Instance));
        let hybrid = serde_json::to_string(&start(Frontier::Hybrid)).unwrap();
        assert!(hybrid.contains("\"frontier\":\"hybrid\""), "{hybrid}");
        let mut old = eval(0, 1.0, 0.0, 0.0);
        old.objectives.clear();
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("objectives"), "{text}");
        assert_eq!(serde_json::from_str::<ExampleEval>(&text).unwrap(), old);
    }
}

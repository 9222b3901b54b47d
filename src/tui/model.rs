//! What the workbench shows, as a fold over the run's events (the same fold as `RunState`: round
//! events count once `round_finished` commits them), plus what only a screen needs: every
//! candidate's val evaluations with their traces, each proposal and what became of it, and the
//! live, uncommitted progress of the round in flight.

use crate::engine::event::{Guidance, HumanAction, PlannedProposal, Scope};
use crate::engine::reflect::ReflectiveRecord;
use crate::engine::state::CommitBuffer;
use crate::engine::{CandidateId, Event, ModelUsage, Notice, ProposalOutcome, RunState, Status};
use crate::eval::ExampleEval;
use crate::project::config::{ComponentConfig, ReviewConfig, ReviewPolicy};
use crate::project::{Candidate, Example, Project, Split};
use std::cell::{Ref, RefCell};
use std::collections::BTreeMap;

/// A value derived from the model, recomputed only when its key changes (never per frame, never
/// per event while a long run is folded).
#[derive(Debug)]
pub struct Memo<K, V>(RefCell<Option<(K, V)>>);

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo(RefCell::new(None))
    }
}

impl<K, V> Clone for Memo<K, V> {
    fn clone(&self) -> Self {
        Memo::default()
    }
}

impl<K: PartialEq, V> Memo<K, V> {
    pub fn get(&self, key: K, compute: impl FnOnce() -> V) -> Ref<'_, V> {
        let stale = self.0.borrow().as_ref().is_none_or(|(k, _)| *k != key);
        if stale {
            let v = compute();
            *self.0.borrow_mut() = Some((key, v));
        }
        Ref::map(self.0.borrow(), |r| &r.as_ref().expect("just filled").1)
    }
}

/// One reflection call of a proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct ReflectionView {
    pub component: String,
    pub dataset: Vec<ReflectiveRecord>,
    pub prompt: String,
    pub answer: String,
    pub new_text: String,
    pub truncated: bool,
    pub cost_usd: f64,
    /// Earlier answers that were cut off and asked again.
    pub cut_answers: Vec<String>,
    /// Earlier answers that returned the parent's text unchanged, asked again with a note.
    pub unchanged_answers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MergeView {
    pub id1: CandidateId,
    pub id2: CandidateId,
    pub ancestor: CandidateId,
    pub subsample: Vec<String>,
    pub id1_sum: f64,
    pub id2_sum: f64,
    pub merged_sum: f64,
    pub accepted: bool,
}

/// A reflective proposal or a merge attempt, and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposalView {
    pub round: u64,
    pub slot: usize,
    /// The parent (for a merge, the first of the two).
    pub parent: CandidateId,
    pub components: Vec<String>,
    pub minibatch: Vec<String>,
    pub parent_evals: Vec<ExampleEval>,
    pub child_evals: Vec<ExampleEval>,
    pub reflections: Vec<ReflectionView>,
    /// None while the proposal is running.
    pub outcome: Option<ProposalOutcome>,
    pub child_texts: Option<Candidate>,
    pub merge: Option<MergeView>,
    /// The candidate it became, once added.
    pub child: Option<CandidateId>,
    /// Its round was committed (an uncommitted round is redone after a crash).
    pub committed: bool,
    /// A person asked for it with this note (`guide`).
    pub guide: Option<Guidance>,
    /// The parent's evaluation of the example the person pointed at, when one was.
    pub guide_evals: Vec<ExampleEval>,
    /// How many of the run's changes of course (`reflection_adapted`) it was asked with.
    pub adaptations: usize,
}

impl ProposalView {
    pub fn truncated(&self) -> bool {
        self.reflections.iter().any(|r| r.truncated)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Committed state: the same fold `--resume` and export use.
    pub state: RunState,
    /// Val evaluations per candidate (indexed like `state.candidates`), in val order.
    pub val_evals: Vec<Vec<ExampleEval>>,
    pub test_evals: BTreeMap<CandidateId, Vec<ExampleEval>>,
    /// Proposals in the order they started (uncommitted ones last, `committed == false`).
    pub proposals: Vec<ProposalView>,
    /// Events of the rounds in flight, applied to `state` when each commits.
    pending: CommitBuffer<Event>,
    /// The engine's latest live status (None when browsing a run without an engine).
    pub live: Option<Status>,
    /// Metric calls when this session attached to the engine (for the ETA).
    pub session_start_calls: u64,
    /// Whether the live engine is paused; written only by `set_paused`, from the engine handle.
    paused: bool,
    pub warnings: Vec<String>,
    /// The engine stopped with an error.
    pub engine_error: Option<String>,
    /// That error was the model provider's (see `engine::Halted`): the run is resumable once
    /// it is fixed.
    pub halted: bool,
    /// The engine task has ended (finished, stopped or failed).
    pub engine_done: bool,
    pub models: Vec<ModelUsage>,
    /// Examples by split and id, when the project is at hand: inputs and expected (ids may
    /// repeat across splits: a train and a val example are two examples).
    pub examples: BTreeMap<(Split, String), Example>,
    /// The example field holding the reference answer.
    pub expected_field: Option<String>,
    /// Every example field the evaluator compares an output with (what a fix corrects first).
    pub reference_fields: Vec<String>,
    pub max_cost_usd: Option<f64>,
    /// The project's components and their files (adding a candidate from a folder, `$EDITOR`'s
    /// file names), its folder, and the review policies gepa.toml sets.
    pub component_files: Vec<ComponentConfig>,
    pub project_root: Option<std::path::PathBuf>,
    /// gepa.toml's `[review]` (the default until a project is attached).
    pub review_config: ReviewConfig,
    /// The engine was started with `--auto-approve`: nothing waits for review, whatever is set.
    pub auto_approve: bool,
    /// An engine is attached to this window (the run is live, not browsed).
    pub attached: bool,
    /// The engine runs in another process this window is attached to (through the run's files).
    pub remote: Option<crate::tui::attached::Remote>,
    /// Decisions sent to the engine and not yet seen back as a `human` event: the engine applies
    /// them at the start of its next round.
    pub sent: Vec<HumanAction>,
    /// Committed decisions, oldest first, with the round they took effect in.
    pub decisions: Vec<(u64, HumanAction)>,
    /// Candidates whose proposal a person guided with a note (`guide`).
    pub guided_children: std::collections::BTreeSet<CandidateId>,
    /// Increments on every change, so views can cache derived rows.
    pub version: u64,
    /// Committed rounds folded so far (keys the derived numbers).
    commits: u64,
    held: Memo<u64, Vec<usize>>,
    /// Per val example: the sum and count of committed scores (for difficulty), kept as events
    /// arrive so a long run folds in one pass.
    score_sums: Vec<f64>,
    score_counts: Vec<usize>,
}

impl Model {
    pub fn new() -> Model {
        Model::default()
    }

    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Model {
        let mut m = Model::new();
        for ev in events {
            m.apply(ev);
        }
        m
    }

    /// Adds the project's examples and settings the events do not carry.
    pub fn with_project(mut self, project: &Project) -> Model {
        self.attach_project(project);
        self
    }

    pub fn attach_project(&mut self, project: &Project) {
        for (split, exs) in [(Split::Train, &project.train), (Split::Val, &project.val), (Split::Test, &project.test)] {
            for ex in exs {
                self.examples.insert((split, ex.id.clone()), ex.clone());
            }
        }
        self.expected_field = project.config.evaluator.field.clone();
        self.reference_fields = crate::eval::Evaluator::from_config(project)
            .map(|e| e.reference_fields())
            .unwrap_or_else(|_| self.expected_field.iter().cloned().collect());
        self.max_cost_usd = project.config.optimizer.max_cost_usd;
        self.component_files = project.config.components.clone();
        self.project_root = Some(project.root.clone());
        self.review_config = project.config.review.clone();
        self.version += 1;
    }

    /// Folds a notice, and says what became of a decision sent from here, if one was applied
    /// ("approve applied in round 4") or refused ("the engine ignored: …").
    pub fn on_notice_news(&mut self, n: Notice) -> Option<String> {
        let sent_before = self.sent.len();
        let news = match &n {
            Notice::Event(ev) => match &**ev {
                Event::Human { round, action, .. } => Some(format!("{} applied in round {round}", action.word())),
                _ => None,
            },
            Notice::Refused { why, .. } => Some(format!("the engine ignored: {}", crate::text::sanitize(why))),
            _ => None,
        };
        self.on_notice(n);
        news.filter(|_| self.sent.len() < sent_before)
    }

    pub fn on_notice(&mut self, n: Notice) {
        match n {
            Notice::Event(ev) => self.apply(&ev),
            // Live status changes no derived rows, so it leaves `version` alone (no re-sorts per tick).
            Notice::Status(s) => {
                self.models = s.models.clone();
                self.live = Some(s);
            }
            Notice::Warning(w) => {
                self.warnings.push(crate::text::sanitize(&w));
                self.version += 1;
            }
            Notice::Refused { action, why } => {
                // The refused decision is no longer on its way.
                if let Some(i) = self.sent.iter().position(|a| *a == action) {
                    self.sent.remove(i);
                }
                self.warnings.push(crate::text::sanitize(&format!("ignored: {why}")));
                self.version += 1;
            }
        }
    }

    /// Folds one event. Round-scoped events change `state` only when `round_finished` commits them,
    /// exactly as `RunState::from_events` does; proposals show up at once, marked uncommitted.
    pub fn apply(&mut self, ev: &Event) {
        self.version += 1;
        if let Event::Human { action, .. } = ev {
            if let Some(i) = self.sent.iter().position(|a| a == action) {
                self.sent.remove(i);
            }
        }
        match ev.scope() {
            Scope::Void => self.proposals.retain(|p| p.committed),
            Scope::Drop(round) => self.proposals.retain(|p| p.committed || p.round != round),
            Scope::Round(_) | Scope::Previous => self.track_proposal(ev),
            _ => {}
        }
        let committed = self.pending.feed(ev, ev.clone());
        for p in committed {
            self.commit_one(p);
        }
    }

    /// Applies one event that now counts.
    fn commit_one(&mut self, p: Event) {
        match &p {
            Event::TestEvaluated { candidate, evals, .. } => {
                self.test_evals.insert(*candidate, evals.clone());
            }
            Event::RunStarted { val_ids, .. } => {
                self.score_sums = vec![0.0; val_ids.len()];
                self.score_counts = vec![0; val_ids.len()];
                self.commits += 1;
            }
            // Pausing is live state: the engine handle says it (`set_paused`), not the log.
            Event::Paused { .. } => {}
            Event::Human { round, action, .. } => self.decisions.push((*round, action.clone())),
            Event::CandidateAdded { .. } => self.val_evals.push(Vec::new()),
            Event::ValEvaluated { candidate, evals, .. } => {
                if let Some(slot) = self.val_evals.get(*candidate) {
                    let old = slot.clone();
                    for e in &old {
                        self.count_score(&e.example_id, -e.score, -1);
                    }
                    for e in evals {
                        self.count_score(&e.example_id, e.score, 1);
                    }
                    self.val_evals[*candidate] = evals.clone();
                }
            }
            // Outputs scored again against a corrected example replace the recorded evaluations
            // (what the evaluation cost is kept: the scoring adds to it).
            Event::ExampleFixed { rescored, .. } => {
                for r in rescored {
                    let Some(slot) = self.val_evals.get_mut(r.candidate) else { continue };
                    let Some(e) = slot.iter_mut().find(|e| e.example_id == r.eval.example_id) else { continue };
                    let (old, cost, replayed) = (e.score, e.cost_usd, e.replayed_usd);
                    *e = crate::eval::ExampleEval {
                        cost_usd: cost + r.eval.cost_usd,
                        replayed_usd: replayed + r.eval.replayed_usd,
                        ..r.eval.clone()
                    };
                    self.count_score(&r.eval.example_id, r.eval.score - old, 0);
                }
            }
            Event::RoundFinished { round, .. } => {
                for pv in self.proposals.iter_mut().filter(|pv| pv.round == *round) {
                    pv.committed = true;
                }
                self.commits += 1;
            }
            _ => {}
        }
        self.state.apply(&p);
    }

    /// The engine task has ended. Decisions sent that it never took (it finished, stopped or
    /// failed first) are said to be lost, not left showing as "sent".
    pub fn engine_ended(&mut self) {
        self.engine_done = true;
        let lost = std::mem::take(&mut self.sent);
        if lost.is_empty() {
            return;
        }
        let why = if self.state.finished.is_some() {
            "the run finished first"
        } else {
            "the engine stopped first; reopen the run and decide again"
        };
        let n = lost.len();
        self.warnings.push(format!(
            "{n} decision{} sent to the engine {} not applied: {why}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "was" } else { "were" }
        ));
        self.version += 1;
    }

    /// Decisions that stopping the engine now would lose: sent and not yet applied, or applied in
    /// the round in flight (which a stop abandons).
    pub fn unrecorded_decisions(&self) -> usize {
        self.sent.len() + self.uncommitted_actions().count()
    }

    /// Decisions the engine applied in the round in flight (recorded, not yet committed).
    pub fn uncommitted_actions(&self) -> impl Iterator<Item = (u64, &HumanAction)> {
        self.pending.pending().filter_map(|e| match e {
            Event::Human { round, action, .. } => Some((*round, action)),
            _ => None,
        })
    }

    /// What is happening to a pending review item: a decision sent (not yet applied), or one
    /// applied in the round in flight (with that round).
    pub fn item_decision(&self, item: u64) -> Option<(Option<u64>, &HumanAction)> {
        if let Some(a) = self.sent.iter().find(|a| action_item(a) == Some(item)) {
            return Some((None, a));
        }
        self.uncommitted_actions().find(|(_, a)| action_item(a) == Some(item)).map(|(r, a)| (Some(r), a))
    }

    /// The review policies (mutations, merges) as they will be at the next round: the last one
    /// sent, else applied, else gepa.toml's.
    pub fn review_policy(&self) -> (ReviewPolicy, ReviewPolicy) {
        let set = |a: &HumanAction| match a {
            HumanAction::SetPolicy { mutations, merges } => Some((*mutations, *merges)),
            _ => None,
        };
        let set_in_run = self
            .sent
            .iter()
            .rev()
            .find_map(set)
            .or_else(|| self.uncommitted_actions().filter_map(|(_, a)| set(a)).last())
            .or(self.state.policy);
        self.review_config.in_force(set_in_run, self.auto_approve)
    }

    /// Whether decisions can be sent: an engine is attached and still running.
    pub fn can_act(&self) -> bool {
        self.attached && !self.engine_done
    }

    /// Why `what` (a decision) cannot be sent now, if it cannot.
    pub fn why_not_live(&self, what: &str) -> Option<String> {
        if self.can_act() {
            return None;
        }
        let why = if self.state.finished.is_some() {
            "this run is finished; start a new run, or branch one from a candidate with `gepa-tui run --branch RUN:ID`"
        } else if self.engine_done {
            "the engine has stopped; reopen the run to resume it"
        } else {
            "this run is open read-only; resume it from the start screen (or `gepa-tui --run RUN`)"
        };
        Some(format!("{what} needs a live run: {why}"))
    }

    /// Whether the live engine is paused.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// The one writer of the pause state: the event loop, from the engine handle (a status sent
    /// just before a pause is stale; the handle is the truth). Returns whether it changed.
    pub fn set_paused(&mut self, paused: bool) -> bool {
        std::mem::replace(&mut self.paused, paused) != paused
    }

    /// When the engine will apply a decision sent now.
    pub fn when_applied(&self) -> &'static str {
        if self.paused {
            "applied at the start of the next round (the engine is paused: space resumes it)"
        } else {
            "applied at the start of the next round"
        }
    }

    fn proposal_mut(&mut self, round: u64, slot: usize) -> Option<&mut ProposalView> {
        self.proposals.iter_mut().rev().find(|p| p.round == round && p.slot == slot && p.merge.is_none())
    }

    fn track_proposal(&mut self, ev: &Event) {
        match ev {
            Event::RoundStarted { round, proposals, .. } => {
                for PlannedProposal { slot, parent, minibatch, components, guide, adaptations, .. } in proposals {
                    self.proposals.push(ProposalView {
                        round: *round,
                        slot: *slot,
                        parent: *parent,
                        components: components.clone(),
                        minibatch: minibatch.clone(),
                        parent_evals: Vec::new(),
                        child_evals: Vec::new(),
                        reflections: Vec::new(),
                        outcome: None,
                        child_texts: None,
                        merge: None,
                        child: None,
                        committed: false,
                        guide: guide.clone(),
                        guide_evals: Vec::new(),
                        adaptations: *adaptations,
                    });
                }
            }
            Event::MinibatchEvaluated { round, slot, candidate_role, evals, .. } => {
                if let Some(p) = self.proposal_mut(*round, *slot) {
                    use crate::engine::event::MinibatchRole;
                    match candidate_role {
                        MinibatchRole::Parent => p.parent_evals = evals.clone(),
                        MinibatchRole::GuidedExample => p.guide_evals = evals.clone(),
                        MinibatchRole::Child => p.child_evals = evals.clone(),
                    }
                }
            }
            Event::Reflection {
                round,
                slot,
                component,
                dataset,
                prompt,
                answer,
                new_text,
                truncated,
                cost_usd,
                cut_answers,
                unchanged_answers,
                ..
            } => {
                if let Some(p) = self.proposal_mut(*round, *slot) {
                    p.reflections.push(ReflectionView {
                        component: component.clone(),
                        dataset: dataset.clone(),
                        prompt: prompt.clone(),
                        answer: answer.clone(),
                        new_text: new_text.clone(),
                        truncated: *truncated,
                        cost_usd: *cost_usd,
                        cut_answers: cut_answers.clone(),
                        unchanged_answers: unchanged_answers.clone(),
                    });
                }
            }
            Event::ProposalFinished { round, slot, outcome, child, .. } => {
                if let Some(p) = self.proposal_mut(*round, *slot) {
                    p.outcome = Some(outcome.clone());
                    p.child_texts = child.clone();
                }
            }
            Event::MergeAttempted {
                round,
                id1,
                id2,
                ancestor,
                texts,
                subsample,
                id1_sum,
                id2_sum,
                merged_sum,
                accepted,
                evals,
                ..
            } => {
                self.proposals.push(ProposalView {
                    round: *round,
                    slot: 0,
                    parent: *id1,
                    components: Vec::new(),
                    minibatch: subsample.clone(),
                    parent_evals: Vec::new(),
                    child_evals: evals.clone(),
                    reflections: Vec::new(),
                    outcome: None,
                    child_texts: Some(texts.clone()),
                    merge: Some(MergeView {
                        id1: *id1,
                        id2: *id2,
                        ancestor: *ancestor,
                        subsample: subsample.clone(),
                        id1_sum: *id1_sum,
                        id2_sum: *id2_sum,
                        merged_sum: *merged_sum,
                        accepted: *accepted,
                    }),
                    child: None,
                    committed: false,
                    guide: None,
                    guide_evals: Vec::new(),
                    adaptations: 0,
                });
            }
            Event::CandidateAdded { id, texts, parents, round, .. } => {
                let first = parents.first().copied();
                if let Some(p) = self.proposals.iter_mut().find(|p| {
                    p.round == *round
                        && p.child.is_none()
                        && Some(p.parent) == first
                        && p.child_texts.as_ref() == Some(texts)
                }) {
                    p.child = Some(*id);
                    if p.guide.is_some() {
                        self.guided_children.insert(*id);
                    }
                }
            }
            _ => {}
        }
    }

    /// Per candidate: how many of the run's fronts it holds (per val example, or whatever the
    /// run's `frontier` selects over; computed once per commit, when first asked).
    pub fn fronts_held(&self) -> Ref<'_, Vec<usize>> {
        self.held.get(self.commits, || {
            let mut held = vec![0usize; self.state.candidates.len()];
            for f in self.state.front_sets() {
                for c in f {
                    if let Some(h) = held.get_mut(c) {
                        *h += 1;
                    }
                }
            }
            held
        })
    }

    /// Adds to val example `id`'s committed score sum and count (for its difficulty).
    fn count_score(&mut self, id: &str, score: f64, n: isize) {
        let Some(i) = self.state.val_ids.iter().position(|v| v == id) else { return };
        if let (Some(s), Some(c)) = (self.score_sums.get_mut(i), self.score_counts.get_mut(i)) {
            *s += score;
            *c = c.saturating_add_signed(n);
        }
    }

    /// Mean committed score on val example `i` over the candidates scored so far (low = hard).
    pub fn difficulty(&self, i: usize) -> f64 {
        match (self.score_sums.get(i), self.score_counts.get(i)) {
            (Some(s), Some(n)) if *n > 0 => s / *n as f64,
            _ => 0.0,
        }
    }

    pub fn on_frontier(&self, c: CandidateId) -> bool {
        self.fronts_held().get(c).copied().unwrap_or(0) > 0
    }

    /// Candidates on at least one front.
    pub fn frontier_size(&self) -> usize {
        self.fronts_held().iter().filter(|n| **n > 0).count()
    }

    /// A val example's score for a candidate, if scored.
    pub fn score(&self, c: CandidateId, example: usize) -> Option<f64> {
        self.state.candidates.get(c)?.val_scores.get(example).copied()
    }

    /// The val evaluation of a candidate on val example `example` (an index into `val_ids`), with
    /// its trace. None when it was not evaluated there (the example was excluded first).
    pub fn val_eval(&self, c: CandidateId, example: usize) -> Option<&ExampleEval> {
        let evals = self.val_evals.get(c)?;
        let id = self.state.val_ids.get(example)?;
        match evals.get(example) {
            Some(e) if e.example_id == *id => Some(e),
            _ => evals.iter().find(|e| e.example_id == *id),
        }
    }

    pub fn failed_eval(&self, c: CandidateId, example: usize) -> bool {
        self.val_eval(c, example).is_some_and(|e| e.error.is_some())
    }

    /// Wins, ties and losses of `a` against `b` over the val examples both were scored on.
    /// Wins, ties and losses of `a` against `b` over the val examples on an objective (as
    /// recorded, higher is better), counting only the examples both have it for.
    pub fn wins_ties_losses_on(&self, a: CandidateId, b: CandidateId, objective: &str) -> (usize, usize, usize) {
        let (Some(ca), Some(cb)) = (self.state.candidates.get(a), self.state.candidates.get(b)) else {
            return (0, 0, 0);
        };
        let (mut w, mut t, mut l) = (0, 0, 0);
        let counted = |(i, _): &(usize, _)| self.state.val_counted(*i);
        for (_, (x, y)) in ca.val_objectives.iter().zip(&cb.val_objectives).enumerate().filter(counted) {
            if let (Some(x), Some(y)) = (x.get(objective), y.get(objective)) {
                match x.total_cmp(y) {
                    std::cmp::Ordering::Greater => w += 1,
                    std::cmp::Ordering::Equal => t += 1,
                    std::cmp::Ordering::Less => l += 1,
                }
            }
        }
        (w, t, l)
    }

    /// The lowest and highest recorded value of an objective over every candidate and val example.
    pub fn objective_range(&self, objective: &str) -> Option<(f64, f64)> {
        let vals = self.state.candidates.iter().flat_map(|c| c.val_objectives.iter().filter_map(|m| m.get(objective)));
        vals.fold(None, |r, v| Some(r.map_or((*v, *v), |(lo, hi): (f64, f64)| (lo.min(*v), hi.max(*v)))))
    }

    pub fn wins_ties_losses(&self, a: CandidateId, b: CandidateId) -> (usize, usize, usize) {
        let (Some(ca), Some(cb)) = (self.state.candidates.get(a), self.state.candidates.get(b)) else {
            return (0, 0, 0);
        };
        // Branch-free counts (this runs for every visible cell of the pairwise matrix each frame).
        let (mut wins, mut losses) = (0usize, 0usize);
        for (x, y) in ca.val_scores.iter().zip(&cb.val_scores) {
            wins += usize::from(x > y);
            losses += usize::from(x < y);
        }
        let all = ca.val_scores.len().min(cb.val_scores.len());
        let mut n = all;
        // Excluded examples do not count (a person took them out of the run).
        for &i in self.state.data.excluded_val.iter().filter(|i| **i < all) {
            let (x, y) = (ca.val_scores[i], cb.val_scores[i]);
            wins -= usize::from(x > y);
            losses -= usize::from(x < y);
            n -= 1;
        }
        (wins, n - wins - losses, losses)
    }

    /// Whether an engine is attached and still running.
    /// The models the engine is waiting for (not answering), from the last status.
    pub fn live_outages(&self) -> &[crate::llm::Outage] {
        self.live.as_ref().map(|s| s.outages.as_slice()).unwrap_or(&[])
    }

    pub fn is_live(&self) -> bool {
        (self.attached || self.live.is_some()) && !self.engine_done
    }

    /// Metric calls including the round in flight.
    pub fn metric_calls(&self) -> u64 {
        match &self.live {
            Some(s) if !self.engine_done => s.metric_calls.max(self.state.metric_calls),
            _ => self.state.metric_calls,
        }
    }

    pub fn cost_usd(&self) -> f64 {
        match &self.live {
            Some(s) if !self.engine_done => s.cost_usd.max(self.state.cost_usd),
            _ => self.state.cost_usd,
        }
    }

    /// Seconds left at this session's pace, when it can be told.
    pub fn eta_secs(&self) -> Option<f64> {
        let s = self.live.as_ref()?;
        if self.engine_done || self.state.finished.is_some() {
            return None;
        }
        let done = s.metric_calls.saturating_sub(self.session_start_calls);
        if done == 0 || s.elapsed_secs <= 0.0 {
            return None;
        }
        // The budget as the run recorded it, as the gauge reads it.
        let left = self.state.settings.max_metric_calls.saturating_sub(s.metric_calls);
        Some(s.elapsed_secs / done as f64 * left as f64)
    }

    /// Proposals of the round in flight still running.
    pub fn proposals_running(&self) -> usize {
        self.proposals.iter().filter(|p| !p.committed && p.outcome.is_none() && p.merge.is_none()).count()
    }

    /// The ancestors of `c` up to the seed, as (depth, id) in depth-first order; each candidate once.
    pub fn lineage(&self, c: CandidateId, max_nodes: usize) -> Vec<(usize, CandidateId)> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![(0usize, c)];
        while let Some((depth, id)) = stack.pop() {
            if out.len() >= max_nodes {
                break;
            }
            out.push((depth, id));
            if !seen.insert(id) {
                continue;
            }
            if let Some(rec) = self.state.candidates.get(id) {
                for &p in rec.parents.iter().rev() {
                    if p < id {
                        stack.push((depth + 1, p));
                    }
                }
            }
        }
        out
    }

    /// The id of example `i` of a split, as the run lists them (train or val).
    pub fn example_id(&self, split: crate::project::Split, i: usize) -> Option<&str> {
        let ids = match split {
            crate::project::Split::Train => &self.state.train_ids,
            crate::project::Split::Val => &self.state.val_ids,
            crate::project::Split::Test => &self.state.test_ids,
        };
        ids.get(i).map(String::as_str)
    }

    /// Example `id` of a split, when the project is at hand (as the data file has it).
    pub fn example(&self, split: Split, id: &str) -> Option<&Example> {
        self.examples.get(&(split, id.to_string()))
    }

    /// The reference answer of an example, when known (as the run uses it: corrected when a
    /// person fixed it). An evaluator that compares several fields (`json_keys`, a pattern with
    /// placeholders) has them all, `name: value` each.
    pub fn expected(&self, split: Split, example_id: &str) -> Option<String> {
        if let Some(field) = self.expected_field.as_deref() {
            return self.committed_field(split, example_id, field);
        }
        let parts: Vec<String> = self
            .reference_fields
            .iter()
            .filter_map(|f| self.committed_field(split, example_id, f).map(|v| format!("{f}: {v}")))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// A field's text as the run uses it: a committed fix, else the data file's.
    fn committed_field(&self, split: Split, example_id: &str, field: &str) -> Option<String> {
        if let Some(f) = self.state.data.fixes_of(split, example_id).find(|f| f.field == field) {
            return Some(match &f.new {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        self.example(split, example_id)?.field_text(field)
    }

    /// What a person did to an example, or asked and the engine has not committed yet.
    pub fn example_change(&self, split: Split, id: &str) -> ExampleChange {
        let mut out = ExampleChange::default();
        if let Some(e) = self.state.data.exclusion(split, id) {
            out.excluded = Some((e.reason.clone(), Stage::Committed));
        }
        for f in self.state.data.fixes_of(split, id) {
            out.fixes.push((f.field.clone(), f.new.clone(), Stage::Committed));
        }
        let later = self
            .uncommitted_actions()
            .map(|(r, a)| (Stage::Applied(r), a))
            .chain(self.sent.iter().map(|a| (Stage::Sent, a)));
        for (stage, a) in later {
            match a {
                HumanAction::ExcludeExample { split: s, example, reason }
                    if *s == split && example == id && out.excluded.is_none() =>
                {
                    out.excluded = Some((reason.clone(), stage));
                }
                HumanAction::FixExample { split: s, example, field, value } if *s == split && example == id => {
                    out.fixes.retain(|(f, _, _)| f != field);
                    out.fixes.push((field.clone(), value.clone(), stage));
                }
                _ => {}
            }
        }
        out
    }

    /// The fields a fix of `id` offers, the evaluator's reference fields first.
    pub fn fix_fields(&self, split: Split, id: &str) -> Vec<String> {
        let mut out: Vec<String> = self.reference_fields.clone();
        if let Some(ex) = self.example(split, id) {
            for k in ex.fields.keys() {
                if k != "id" && !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
        out
    }

    /// A field's value as the run will use it (a fix sent or taken, else the data file's).
    pub fn field_value(&self, split: Split, id: &str, field: &str) -> Option<serde_json::Value> {
        let change = self.example_change(split, id);
        if let Some((_, v, _)) = change.fixes.iter().find(|(f, _, _)| f == field) {
            return Some(v.clone());
        }
        self.example(split, id)?.fields.get(field).cloned()
    }
}

/// Where a person's decision is: sent to the engine, taken in a round not yet committed, or
/// committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Sent,
    Applied(u64),
    Committed,
}

/// An example's exclusion (its reason) and corrected fields, each with its stage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExampleChange {
    pub excluded: Option<(String, Stage)>,
    pub fixes: Vec<(String, serde_json::Value, Stage)>,
}

pub fn policy_name(p: ReviewPolicy) -> &'static str {
    match p {
        ReviewPolicy::Auto => "auto",
        ReviewPolicy::Approve => "approve",
    }
}

/// An exclusion or a fix on one line, as a person reads it: `val example va-03 excluded: label
/// is wrong`, `val example va-03: team corrected to "billing"`. Untrusted text is made safe.
pub fn data_action_line(a: &HumanAction) -> String {
    use crate::text::one_line;
    match a {
        HumanAction::ExcludeExample { split, example, reason } => {
            format!("{} example {} excluded: {}", split.as_str(), one_line(example), one_line(reason))
        }
        HumanAction::FixExample { split, example, field, value } => format!(
            "{} example {}: {} corrected to {}",
            split.as_str(),
            one_line(example),
            one_line(field),
            crate::text::truncate_chars(&one_line(&value_text(value)), 60)
        ),
        other => other.word().to_string(),
    }
}

/// A field's value as a person reads it: strings as they are (quoted), other JSON compact.
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// The review item a decision is about, if any.
pub fn action_item(a: &HumanAction) -> Option<u64> {
    match a {
        HumanAction::Approve { item } | HumanAction::Veto { item, .. } | HumanAction::Edit { item, .. } => Some(*item),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Origin;

    /// An evaluator that compares several fields (`json_keys`) expects them all; one with a
    /// `field` expects that one; a train and a val example with the same id are apart.
    #[test]
    fn the_expected_answer_is_every_field_the_evaluator_compares() {
        let mut m = Model { reference_fields: vec!["team".into(), "priority".into()], ..Model::default() };
        let ex = |team: &str| Example {
            id: "e1".into(),
            line: 1,
            fields: serde_json::json!({"message": "hi", "team": team, "priority": "low"}).as_object().cloned().unwrap(),
        };
        m.examples.insert((Split::Val, "e1".into()), ex("billing"));
        m.examples.insert((Split::Train, "e1".into()), ex("tech"));
        assert_eq!(m.expected(Split::Val, "e1").as_deref(), Some("team: billing, priority: low"));
        assert_eq!(m.expected(Split::Train, "e1").as_deref(), Some("team: tech, priority: low"));
        m.expected_field = Some("team".into());
        assert_eq!(m.expected(Split::Val, "e1").as_deref(), Some("billing"));
        assert_eq!(m.expected(Split::Test, "e1"), None);
    }

    fn eval(id: &str, score: f64) -> ExampleEval {
        ExampleEval::scored(id, score)
    }

    fn added(id: CandidateId, parents: Vec<CandidateId>, round: u64) -> Event {
        Event::CandidateAdded {
            id,
            texts: [("p".to_string(), format!("text {id}"))].into(),
            parents,
            origin: if id == 0 { Origin::Seed } else { Origin::Mutation },
            changed: vec![],
            round,
            discovered_at: 0,
            note: None,
        }
    }

    fn finished(round: u64) -> Event {
        Event::RoundFinished {
            round,
            metric_calls: 2,
            cost_usd: 0.0,
            cost_usd_replayed: 0.0,
            cost_usd_dropped: 0.0,
            best: 0,
            best_val: 0.5,
            merges_due: 0,
            found_new: false,
            input_tokens: 0,
            output_tokens: 0,
            objective_bests: Default::default(),
        }
    }

    fn start() -> Event {
        Event::RunStarted {
            run_id: "r".into(),
            version: "0".into(),
            seed: 0,
            components: vec!["p".into()],
            train_ids: vec![],
            val_ids: vec!["a".into(), "b".into()],
            test_ids: vec![],
            max_metric_calls: 10,
            proposals_per_round: 1,
            pipeline_lag: None,
            config_hash: String::new(),
            branched_from: None,
            draws: None,
            frontier: Default::default(),
            protected: Default::default(),
            settings: None,
        }
    }

    #[test]
    fn uncommitted_rounds_do_not_count_and_resume_drops_them() {
        let events = vec![
            start(),
            Event::RoundStarted { round: 0, proposals: vec![], planned_after: None, merge: None },
            added(0, vec![], 0),
            Event::ValEvaluated { candidate: 0, evals: vec![eval("a", 1.0), eval("b", 0.0)], round: None },
            finished(0),
            Event::RoundStarted { round: 1, proposals: vec![], planned_after: None, merge: None },
            added(1, vec![0], 1),
            Event::ValEvaluated { candidate: 1, evals: vec![eval("a", 0.0), eval("b", 1.0)], round: None },
        ];
        let m = Model::from_events(&events);
        assert_eq!(m.state, RunState::from_events(&events));
        assert_eq!(m.state.candidates.len(), 1);
        assert_eq!(m.val_evals.len(), 1);
        assert_eq!((m.difficulty(0), m.difficulty(1)), (1.0, 0.0));

        let mut more = events.clone();
        more.push(Event::Resumed { after_round: 0 });
        more.push(Event::RoundStarted { round: 1, proposals: vec![], planned_after: None, merge: None });
        more.push(added(1, vec![0], 1));
        more.push(Event::ValEvaluated { candidate: 1, evals: vec![eval("a", 1.0), eval("b", 1.0)], round: None });
        more.push(finished(1));
        let m = Model::from_events(&more);
        assert_eq!(m.state, RunState::from_events(&more));
        assert_eq!(m.val_evals[1][1].score, 1.0);
        assert_eq!(*m.fronts_held(), vec![1, 2]);
        assert_eq!((m.difficulty(0), m.difficulty(1)), (1.0, 0.5));
        assert_eq!(m.wins_ties_losses(1, 0), (1, 1, 0));
        assert_eq!(m.lineage(1, 10), vec![(0, 1), (1, 0)]);
    }
}

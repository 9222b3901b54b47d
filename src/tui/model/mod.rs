//! What the workbench shows, as a fold over the run's events (the same fold as `RunState`: round
//! events count once `round_finished` commits them), plus what only a screen needs: every
//! candidate's val evaluations with their traces, each proposal and what became of it, and the
//! live, uncommitted progress of the round in flight.

use crate::engine::event::{HumanAction, Scope};
use crate::engine::state::CommitBuffer;
use crate::engine::{CandidateId, Event, ModelUsage, Notice, RunState, Status};
use crate::eval::ExampleEval;
use crate::project::config::{ComponentConfig, ReviewConfig};
use crate::project::{Example, Project, Split};
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

mod decisions;
mod examples;
mod proposals;
mod stats;

pub use decisions::action_item;
pub use examples::{ExampleChange, Stage};
pub use proposals::{MergeAttempt, Proposal, ProposalSpend, ReflectionCall};

#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Committed state: the same fold `--resume` and export use.
    pub state: RunState,
    /// Val evaluations per candidate (indexed like `state.candidates`), in val order.
    pub val_evals: Vec<Vec<ExampleEval>>,
    pub test_evals: BTreeMap<CandidateId, Vec<ExampleEval>>,
    /// Proposals in the order they started (uncommitted ones last, `committed == false`).
    pub proposals: Vec<Proposal>,
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
    /// What wrote each candidate (blame), folded as rounds commit.
    pub authorship: crate::engine::blame::Authorship,
    /// What the run's forecast is made from (`engine::forecast`): the project's settings, and one
    /// metric call estimated from its prompt sizes until the seed's val scores say better.
    pub forecast_basis: Option<(crate::engine::forecast::Plan, crate::engine::forecast::PerCall)>,
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
        self.reference_fields = project.evaluator.reference_fields();
        self.max_cost_usd = project.config.optimizer.max_cost_usd;
        self.component_files = project.config.components.clone();
        self.project_root = Some(project.root.clone());
        self.review_config = project.config.review.clone();
        self.forecast_basis =
            Some((crate::engine::forecast::Plan::of(project), crate::engine::forecast::estimate(project)));
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
                    let same = |e: &&mut crate::eval::ExampleEval| {
                        e.example_id == r.eval.example_id && e.repeat == r.eval.repeat
                    };
                    let Some(e) = slot.iter_mut().find(same) else { continue };
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
        self.authorship.commit(&p);
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
            review_item: None,
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
        Event::run_started_for_tests(&[], &["a", "b"], Default::default())
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

    /// With `val_repeats = 3`, each example a candidate's three draws: a win counts only where it
    /// holds over every repeat (worked by hand: on `b` and `c` one draw of each goes the other way,
    /// so they are ties, though the means differ), and the spread is the standard deviation of
    /// the three per-repeat val means.
    #[test]
    fn a_win_over_repeated_draws_holds_over_every_draw() {
        let mut s = start();
        if let Event::RunStarted { val_ids, settings, .. } = &mut s {
            *val_ids = vec!["a".into(), "b".into(), "c".into()];
            *settings =
                Some(Box::new(crate::project::config::OptimizerConfig { val_repeats: 3, ..Default::default() }));
        }
        // Per example, the draws in repeat order.
        let draws = |d: [[f64; 3]; 3]| -> Vec<ExampleEval> {
            (0..3u32)
                .flat_map(|r| {
                    ["a", "b", "c"]
                        .iter()
                        .zip(d)
                        .map(move |(id, x)| ExampleEval { repeat: r, ..eval(id, x[r as usize]) })
                })
                .collect()
        };
        let events = vec![
            s,
            Event::RoundStarted { round: 0, proposals: vec![], planned_after: None, merge: None },
            added(0, vec![], 0),
            Event::ValEvaluated {
                candidate: 0,
                evals: draws([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]),
                round: None,
            },
            added(1, vec![0], 0),
            Event::ValEvaluated {
                candidate: 1,
                evals: draws([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]),
                round: None,
            },
            finished(0),
        ];
        let m = Model::from_events(&events);
        assert_eq!(m.state.candidates[0].val_scores, vec![1.0, 2.0 / 3.0, 0.0]);
        assert_eq!(m.wins_ties_losses(0, 1), (1, 2, 0));
        assert_eq!(m.wins_ties_losses(1, 0), (0, 2, 1));
        // Per-repeat means 2/3, 1/3, 2/3 (and 2/3, 1/3, 1/3): a standard deviation of 1/sqrt(27).
        for c in [0, 1] {
            assert!((m.state.val_spread(c).unwrap() - (1.0f64 / 27.0).sqrt()).abs() < 1e-12, "candidate {c}");
        }
    }
}

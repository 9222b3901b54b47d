//! Planning a round from the committed state and the rounds in flight: the planner's view and
//! guess, parents, minibatches, merges and the human decisions it takes.

use super::cache::EvalSplit;
use super::human::is_guide;
use super::pipeline::plans;
use super::{Engine, MergeJob, NewCandidate, PlannedRound, Preview, ProposalJob, RoundPlan, Running};
use crate::engine::event::{candidate_hash, Event, HumanAction, PlannedMerge, PlannedProposal};
use crate::engine::merge::{merge_subsample, Lineage};
use crate::engine::pareto::{dominators, CandidateId};
use crate::engine::rng::derive_rng;
use crate::engine::select::select_parent;
use crate::engine::state::RunState;
use crate::engine::steer::SteerAnswer;
use crate::project::config::{ComponentSelection, ReviewPolicy};
use crate::project::Candidate;
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// gepa merge.py's `val_overlap_floor`: a merge needs this many val examples both parents were
/// scored on.
const MERGE_VAL_OVERLAP_FLOOR: usize = 5;

/// A round whose plan could not be recorded: its work is the error, so the run stops there.
fn fail_round(e: anyhow::Error, started: Event, actions: Vec<HumanAction>) -> Running {
    let work = tokio::spawn(async move { Err(e) });
    Running { plan: PlannedRound { started, gen: 0, preview: None, actions, min_calls: 0, may_queue: 0 }, work }
}

impl Engine {
    /// The state a round planned now starts from (the committed state with the rounds in flight
    /// planned on top), and the parent to guess for it: the child of the latest round in flight
    /// whose child is written or passed its minibatch, when no merge or human decision comes
    /// after it (that child will most likely be the best candidate; the guess is checked at
    /// commit like every plan).
    pub(super) fn planning_view_and_guess(&self, inflight: &[PlannedRound]) -> (RunState, Option<CandidateId>) {
        let (view, guess, _) = self.planning_view(inflight);
        (view, guess)
    }

    /// `planning_view_and_guess`, and how many of the rounds in flight skip for sure (said so, or
    /// their parent is known perfect on their minibatch or on all of val).
    pub(super) fn planning_view(&self, inflight: &[PlannedRound]) -> (RunState, Option<CandidateId>, usize) {
        let mut view = self.state.clone();
        let mut guess = None;
        let mut sure_skips = 0;
        for f in inflight {
            let chance = match &f.preview {
                Some(Preview::Skipped) => 1.0,
                None => self.skip_chance(&view, &f.started),
                Some(_) => 0.0,
            };
            sure_skips += usize::from(chance >= 1.0);
            view.plan_in_flight(&f.started, &f.actions, chance >= 0.5);
            let Event::RoundStarted { round, proposals, merge, .. } = &f.started else { continue };
            if let (0, Some(Preview::Passed(seed)), true) = (*round, &f.preview, view.candidates.is_empty()) {
                // The seed, still being scored on val, is the only parent there can be.
                guess = Some(view.add_provisional_seed(seed));
                continue;
            }
            if merge.is_some() || !f.actions.is_empty() {
                // A merge or a person's decision may add candidates of its own: no guess past it.
                guess = None;
            }
            if let (Some(Preview::Passed(child) | Preview::Reflected(child)), Some(p)) = (&f.preview, proposals.first())
            {
                guess = Some(view.add_provisional(child, p.parent));
            }
            // A round that adds nothing (skipped, rejected, or not known yet) leaves the guess
            // standing: the guessed child stays the likeliest parent of the rounds after it.
        }
        (view, guess, sure_skips)
    }

    /// Rounds in flight at most now: the lag, and one more for each round in flight that skips
    /// for sure (its parent is perfect there: it costs one minibatch and changes nothing, so the
    /// rounds behind it are planned right), up to three lags. A parent perfect on everything
    /// has many such rounds before the run ends, and they need not wait their turn four by four.
    pub(super) fn room(&self, inflight: &[Running]) -> usize {
        // Several seeds: the first parent is chosen among them once they are all scored.
        if self.state.round.is_none() && (!self.command_buf.is_empty() || !self.sh.project.seeds.is_empty()) {
            // Decisions wait (a steered run's inbox at start): the first proposal waits for the
            // seed's commit to take them, as it would without the head start.
            return 1;
        }
        if self.state.round.is_none() && self.sh.opt.lag_is_auto() && self.sh.opt.max_lag() > 1 {
            // Whether the server answers side by side is not known yet (see `engine::gauge`):
            // only the first proposal runs beside the seed (on a server that answers in turn,
            // its few requests cost no more than after the seed).
            return 2;
        }
        let lag = self.sh.lag();
        if lag == 1 || self.sh.opt.keep_stale_plans {
            return lag;
        }
        let (_, _, sure) = self.planning_view(&plans(inflight));
        lag + sure.min(2 * lag)
    }

    /// How likely a round in flight that has not said yet is to find its parent perfect on its
    /// minibatch (then the round robin stays, and the rounds after it are planned so; from 0.5 on
    /// the planner takes it to): known when the parent's scores there are committed, else the
    /// share of val examples the parent (or its nearest scored ancestor, never quite sure) is
    /// perfect on, to the power of the minibatch size. Only a guess for planning ahead; every
    /// plan is checked at commit.
    pub(super) fn skip_chance(&self, view: &RunState, started: &Event) -> f64 {
        let opt = &self.sh.opt;
        let Event::RoundStarted { proposals, merge: None, .. } = started else { return 0.0 };
        let ([p], true) = (proposals.as_slice(), opt.skip_perfect_score) else { return 0.0 };
        // A guided proposal runs even on a minibatch its parent is perfect on.
        if p.guide.is_some() {
            return 0.0;
        }
        let Some(parent) = view.candidates.get(p.parent) else { return 0.0 };
        let hash = candidate_hash(&parent.texts);
        let committed = self.state.round.unwrap_or(0);
        let known: Option<Vec<f64>> = {
            let cache = self.sh.cache.lock().expect("cache");
            p.minibatch
                .iter()
                .map(|id| cache.committed(&hash, EvalSplit::Train, (id, 0), committed, &view.data).map(|e| e.score))
                .collect()
        };
        if let Some(scores) = known {
            return if scores.iter().all(|s| *s >= opt.perfect_score) { 1.0 } else { 0.0 };
        }
        let mut scored = parent;
        for _ in 0..view.candidates.len() {
            if !scored.val_scores.is_empty() {
                break;
            }
            match scored.parents.first().and_then(|&c| view.candidates.get(c)) {
                Some(c) => scored = c,
                None => return 0.0,
            }
        }
        let n = scored.val_scores.len();
        if n == 0 {
            return 0.0;
        }
        let perfect = scored.val_scores.iter().filter(|s| **s >= opt.perfect_score).count() as f64 / n as f64;
        let chance = perfect.powi(p.minibatch.len() as i32);
        if scored.id == parent.id {
            chance
        } else {
            chance.min(0.99)
        }
    }

    /// What round `round` should be, planned from `view` (the committed state, the rounds in
    /// flight and this round's human decisions on top): its proposals, or a merge. None when no
    /// proposal should start (the budget is spoken for, the review queue is full, or only reviews
    /// are left).
    ///
    /// A person's `guide` taken with the round makes it that one guided proposal (a merge owed
    /// waits): the human asked for it, so it goes before what the engine would choose.
    pub(super) fn decide(
        &self,
        view: &RunState,
        inflight: &[PlannedRound],
        round: u64,
        merge_ready: bool,
        guess: Option<CandidateId>,
        guide: Option<&HumanAction>,
    ) -> Option<(Vec<PlannedProposal>, Option<PlannedMerge>)> {
        let opt = &self.sh.opt;
        if guess.is_some() && opt.merge && guide.is_none() {
            // After a new candidate a merge may be due; that waits for the commit.
            return None;
        }
        let projected: u64 = inflight.iter().map(|f| f.min_calls).sum();
        if self.stop_reason(projected).is_some() || opt.max_rounds.is_some_and(|max| round > max) {
            return None;
        }
        // Proposals planned in the rounds in flight count against `max_proposals` too.
        let proposals_left = opt.max_proposals.map_or(usize::MAX, |max| {
            let planned: u64 = inflight
                .iter()
                .map(|f| match &f.started {
                    Event::RoundStarted { proposals, .. } => proposals.len() as u64,
                    _ => 0,
                })
                .sum();
            max.saturating_sub(self.state.proposals_made + planned) as usize
        });
        if proposals_left == 0 {
            return None;
        }
        let (mutation_policy, merge_policy) = self.policies(view);
        let room = if mutation_policy == ReviewPolicy::Auto && merge_policy == ReviewPolicy::Auto {
            usize::MAX
        } else {
            let pending = view.review_queue.len() + inflight.iter().map(|f| f.may_queue).sum::<usize>();
            self.sh.project.config.review.max_pending.max(1).saturating_sub(pending)
        };
        if room == 0 {
            return None;
        }
        if let Some(g) = guide {
            return Some((vec![self.guided_proposal(view, g)?], None));
        }
        if opt.merge && merge_ready && view.merges_due > 0 {
            if let Some(m) = self.plan_merge(view, round) {
                return Some((vec![], Some(m)));
            }
        }
        Some((self.plan_proposals(view, round, opt.proposals_per_round.min(room).min(proposals_left), guess), None))
    }

    /// Plans the next round from the committed state and the rounds in flight, records its plan,
    /// and starts its work. None when nothing should start now.
    pub(super) fn plan_next(&mut self, inflight: &[PlannedRound]) -> Option<Running> {
        if self.sh.over_cost() {
            // Nothing new starts past the cost limit, not even a person's candidate on val.
            return None;
        }
        let (mut view, guess) = self.planning_view_and_guess(inflight);
        // A person's decisions wait for the seed's commit (they name candidates and items).
        let mut actions = if self.state.round.is_some() { self.take_commands(&mut view) } else { vec![] };
        let committed = self.state.round.unwrap_or(0);
        let round = self.state.round.map_or(0, |r| r + 1) + inflight.len() as u64;
        let guide = actions.iter().position(is_guide);
        let decided = self.decide(&view, inflight, round, self.merge_ready, guess, guide.map(|i| &actions[i]));
        if let Some(i) = guide.filter(|_| decided.is_none()) {
            // No proposal can start now (the budget is spoken for, or the review queue is full):
            // the guide waits for the next plan.
            let a = actions.remove(i);
            self.defer(a);
        }
        let (proposals, merge) = decided.unwrap_or_default();
        if proposals.is_empty() && merge.is_none() && actions.is_empty() {
            return None;
        }
        if !proposals.is_empty() || merge.is_some() {
            self.merge_ready = false;
        }
        let started = Event::RoundStarted { round, proposals, planned_after: Some(committed), merge };
        if let Err(e) = self.record_plan(&started, &actions) {
            return Some(fail_round(e, started, actions));
        }
        Some(self.start_round(inflight, started, actions))
    }

    /// Records a round's plan and the decisions taken with it; a steering request among them is
    /// recorded with its id and answered as taken.
    pub(super) fn record_plan(&mut self, started: &Event, actions: &[HumanAction]) -> Result<()> {
        let Event::RoundStarted { round, .. } = started else { unreachable!("a plan is a round_started") };
        self.sh.emit(started.clone(), true)?;
        let mut taken = Vec::new();
        for a in actions {
            let request = self.requests.iter().position(|(_, r)| r == a).map(|i| self.requests.remove(i).0);
            self.sh.emit(Event::Human { round: *round, action: a.clone(), request: request.clone() }, true)?;
            if let Some(id) = request {
                self.in_flight_requests.push((*round, id.clone(), a.clone()));
                taken.push(id);
            }
        }
        for id in taken {
            self.answer(&SteerAnswer::taken(&id, *round));
        }
        Ok(())
    }

    /// Turns a recorded plan into its work, started beside the rounds in flight.
    pub(super) fn start_round(&self, inflight: &[PlannedRound], started: Event, actions: Vec<HumanAction>) -> Running {
        let Event::RoundStarted { round, proposals, planned_after, merge } = &started else {
            unreachable!("a plan is a round_started")
        };
        // The view with the guessed child in it: it only adds a candidate, so the human decisions
        // read it as they would the plain view.
        let (view, _) = self.planning_view_and_guess(inflight);
        let reuse_until = planned_after.unwrap_or(round.saturating_sub(1));
        let mut after_actions = view.clone();
        for a in &actions {
            after_actions.apply_human_action(a);
        }
        let (mutation_policy, merge_policy) = self.policies(&after_actions);
        let human: Vec<NewCandidate> = actions.iter().filter_map(|a| self.human_candidate(&view, a)).collect();
        let jobs: Vec<ProposalJob> = proposals
            .iter()
            .filter_map(|p| {
                let parent_texts = view.candidates.get(p.parent)?.texts.clone();
                let steps = view.adapt.steps[..p.adaptations.min(view.adapt.steps.len())].to_vec();
                Some(ProposalJob { plan: p.clone(), parent_texts, steps })
            })
            .collect();
        let merge_job = merge.as_ref().map(|m| self.merge_job(m));
        // The data as this round evaluates it: its own exclusions and fixes taken.
        let data = Arc::new(after_actions.data.clone());
        let all_val: Vec<&str> = self.sh.project.val.iter().map(|e| e.id.as_str()).collect();
        let val_ids: Vec<&str> =
            all_val.iter().copied().filter(|id| !data.is_excluded(crate::project::Split::Val, id)).collect();
        let mut min_calls: u64 =
            human.iter().map(|c| self.sh.uncached(&c.texts, &val_ids, EvalSplit::Val, reuse_until, &data)).sum();
        for j in &jobs {
            let ids: Vec<&str> = j.plan.minibatch.iter().map(String::as_str).collect();
            min_calls += self.sh.uncached(&j.parent_texts, &ids, EvalSplit::Train, reuse_until, &data);
        }
        if let Some(m) = &merge_job {
            let ids: Vec<&str> = m.plan.subsample.iter().map(|&i| all_val[i]).collect();
            min_calls += self.sh.uncached(&m.plan.texts, &ids, EvalSplit::Val, reuse_until, &data);
        }
        let may_queue = match (mutation_policy, merge_policy) {
            (ReviewPolicy::Approve, _) if !jobs.is_empty() => jobs.len(),
            (_, ReviewPolicy::Approve) if merge_job.is_some() => 1,
            _ => 0,
        };
        let gen = self.sh.next_gen.fetch_add(1, Ordering::Relaxed);
        self.sh.held.lock().expect("held events").live.insert(gen);
        let plan = RoundPlan {
            round: *round,
            gen,
            planned_after: reuse_until,
            human,
            proposals: jobs,
            merge: merge_job,
            vetoes: after_actions.vetoes.clone(),
            protected: after_actions.protected.clone(),
            mutation_policy,
            merge_policy,
            data,
        };
        let what = if plan.merge.is_some() {
            "merge planned"
        } else if plan.proposals.is_empty() {
            "scoring a person's candidate(s) on val"
        } else {
            "planned"
        };
        self.sh.stage(*round, Some(what.into()));
        let work = tokio::spawn(self.sh.clone().run_round(plan));
        Running { plan: PlannedRound { started, gen, preview: None, actions, min_calls, may_queue }, work }
    }

    /// Chooses a round's parents, minibatches and components from the planning view.
    pub(super) fn plan_proposals(
        &self,
        view: &RunState,
        round: u64,
        slots: usize,
        guess: Option<CandidateId>,
    ) -> Vec<PlannedProposal> {
        let s = view;
        let opt = &self.sh.opt;
        let train: Vec<String> = self.sh.project.train.iter().map(|e| e.id.clone()).collect();
        let fronts = s.front_sets();
        let means = s.val_means();
        let n_comp = s.components.len();
        let mut pointer_bumps: BTreeMap<CandidateId, usize> = BTreeMap::new();
        // With `parents_per_round = P`, slots come in P groups of N children of one parent (gepa's
        // PxNSampling, strategies/proposal_sampling.py); a group's parent is drawn with its first
        // slot's generator, so without it every slot draws its own (IndependentSampling).
        let children = opt.parents_per_round.map_or(1, |p| opt.proposals_per_round.div_ceil(p.max(1)));
        let mut parents: BTreeMap<usize, CandidateId> = BTreeMap::new();
        (0..slots)
            .map(|slot| {
                let first = slot - slot % children;
                let parent = match guess {
                    Some(g) => g,
                    None => *parents.entry(first).or_insert_with(|| {
                        let mut rng = derive_rng(opt.seed, &["select", &round.to_string(), &first.to_string()]);
                        select_parent(opt.candidate_selection, &fronts, &means, opt.epsilon, opt.top_k, &mut rng)
                    }),
                };
                let minibatch_index = s.minibatches_drawn + slot as u64;
                // Excluded train examples are not drawn (see data_fixes.rs).
                let minibatch = s.minibatch_ids(opt.seed, &train, opt.minibatch_size, minibatch_index);
                let components = match opt.component_selection {
                    ComponentSelection::All => s.components.clone(),
                    ComponentSelection::RoundRobin => {
                        // Several slots may share a parent: each takes the next component in turn.
                        let bump = pointer_bumps.entry(parent).or_insert(0);
                        let c = (s.next_component[parent] + *bump) % n_comp;
                        *bump += 1;
                        vec![s.components[c].clone()]
                    }
                };
                let adaptations = s.adapt.steps.len();
                PlannedProposal { slot, parent, minibatch_index, minibatch, components, guide: None, adaptations }
            })
            .collect()
    }

    /// Picks a merge of two frontier candidates (gepa's MergeProposer) and its val subsample. None
    /// when no pair qualifies; then the round does reflective proposals instead, as gepa does.
    pub(super) fn plan_merge(&self, view: &RunState, round: u64) -> Option<PlannedMerge> {
        let s = view;
        let opt = &self.sh.opt;
        // Both parents must have been scored on at least this many of the same val examples
        // (gepa merge.py's `val_overlap_floor`); every candidate here is scored on all of val
        // that counts (excluded examples are not).
        let counted = s.counted_val();
        if counted.len() < MERGE_VAL_OVERLAP_FLOOR {
            return None;
        }
        let means = s.val_means();
        let pool: Vec<CandidateId> = dominators(&s.front_sets(), &means).into_iter().map(|(c, _)| c).collect();
        let texts: Vec<Candidate> = s.candidates.iter().map(|c| c.texts.clone()).collect();
        let parents: Vec<Vec<CandidateId>> = s.candidates.iter().map(|c| c.parents.clone()).collect();
        let lineage = Lineage { texts: &texts, parents: &parents, scores: &means };
        let mut rng = derive_rng(opt.seed, &["merge", &round.to_string()]);
        let mut history = s.merges.clone();
        let plan = lineage.plan_merge(&mut rng, &pool, &mut history)?;
        let mut rng = derive_rng(opt.seed, &["merge-subsample", &round.to_string()]);
        let (s1, s2) = (&s.candidates[plan.id1].val_scores, &s.candidates[plan.id2].val_scores);
        // Drawn among the examples that count, as if the excluded ones were not in val; and not on
        // one fixed in a round not committed yet (the parents' scores there are scored again
        // against its new value only then).
        let val = crate::project::Split::Val;
        let examples: Vec<usize> = counted
            .into_iter()
            .filter(|&i| s.data.revision(val, &s.val_ids[i]) == self.state.data.revision(val, &s.val_ids[i]))
            .collect();
        let subsample = if examples.len() == s.val_ids.len() {
            merge_subsample(s1, s2, opt.merge_subsample, &mut rng)
        } else {
            let pick = |v: &[f64]| examples.iter().map(|&i| v.get(i).copied().unwrap_or(0.0)).collect::<Vec<_>>();
            merge_subsample(&pick(s1), &pick(s2), opt.merge_subsample, &mut rng)
                .into_iter()
                .map(|k| examples[k])
                .collect()
        };
        Some(PlannedMerge {
            id1: plan.id1,
            id2: plan.id2,
            ancestor: plan.ancestor,
            sources: plan.sources,
            texts: plan.texts,
            subsample,
        })
    }

    pub(super) fn merge_job(&self, plan: &PlannedMerge) -> MergeJob {
        let s = &self.state;
        let (s1, s2) = (&s.candidates[plan.id1].val_scores, &s.candidates[plan.id2].val_scores);
        let id1_sum: f64 = plan.subsample.iter().map(|&i| s1[i]).sum();
        let id2_sum: f64 = plan.subsample.iter().map(|&i| s2[i]).sum();
        let better = if id2_sum > id1_sum { s2 } else { s1 };
        let changed: Vec<String> = plan
            .texts
            .iter()
            .filter(|(k, v)| s.candidates[plan.id1].texts.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        MergeJob {
            plan: plan.clone(),
            id1_sum,
            id2_sum,
            better_scores: plan.subsample.iter().map(|&i| better[i]).collect(),
            changed,
        }
    }
}

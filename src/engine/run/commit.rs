//! Committing rounds strictly in order: ids and review numbers given, events applied, the cache
//! filled; and the seed's round.

use super::cache::EvalSplit;
use super::finish::{event_cost, event_usage};
use super::{Engine, NewCandidate, Passed, PlannedRound, Preview, RoundOutput, Running};
use crate::engine::event::{Event, Origin, ProposalOutcome};
use crate::project::config::OptimizerConfig;
use crate::project::{Candidate, Example};
use anyhow::{bail, Result};
use std::sync::atomic::Ordering;

impl Engine {
    /// Commits the oldest round: records what it added (ids and review numbers are given here, in
    /// round order), applies its events to the state, and files its evaluations in the cache.
    /// A round that fixed examples first scores the recorded val outputs again (data_fixes.rs).
    pub(super) async fn commit(&mut self, f: PlannedRound, mut out: RoundOutput) -> Result<()> {
        let Event::RoundStarted { round, .. } = f.started else { unreachable!("a plan is a round_started") };
        self.in_flight_requests.retain(|(r, _, _)| *r != round);
        let sh = self.sh.clone();
        if round == 0 {
            no_objectives_is_an_error(&sh.opt, &out)?;
        }
        if !crate::engine::data_fixes::fixed_in(&f.actions).is_empty() {
            sh.set_activity("scoring the recorded outputs again against the corrected examples");
            let (fixed, calls, cost) = self.rescore_fixes(round, &f.actions).await?;
            for ev in fixed {
                sh.emit(ev, false)?;
            }
            out.calls += calls;
            out.cost += cost;
            sh.set_activity("");
        }
        let finished = |p: &Passed, outcome: ProposalOutcome, child: &Candidate| Event::ProposalFinished {
            round,
            slot: p.slot,
            parent: p.parent,
            outcome,
            child: Some(child.clone()),
        };
        // Identical children are one review item: the first queued stands for the others.
        let mut queued: Vec<(u64, Candidate)> =
            self.state.review_queue.iter().map(|i| (i.item, i.texts.clone())).collect();
        let mut next_item = self.state.next_review_item;
        for (mut item, passed) in out.to_review {
            if let Some((same, _)) = queued.iter().find(|(_, t)| *t == item.texts) {
                if let Some(p) = &passed {
                    let (parent_sum, child_sum) = p.sums;
                    let outcome = ProposalOutcome::SameAsPending { item: *same, parent_sum, child_sum };
                    sh.emit(finished(p, outcome, &item.texts), false)?;
                }
                continue;
            }
            if let Some(p) = &passed {
                let (parent_sum, child_sum) = p.sums;
                sh.emit(finished(p, ProposalOutcome::Accepted { parent_sum, child_sum }, &item.texts), false)?;
            }
            item.item = next_item;
            next_item += 1;
            queued.push((item.item, item.texts.clone()));
            sh.emit(Event::ReviewQueued { item }, false)?;
        }
        let base_id = self.state.candidates.len();
        for (k, (c, evals, calls_before, passed)) in out.scored.into_iter().enumerate() {
            if let Some(p) = &passed {
                let (parent_sum, child_sum) = p.sums;
                sh.emit(finished(p, ProposalOutcome::Accepted { parent_sum, child_sum }, &c.texts), false)?;
            }
            let id = base_id + k;
            sh.emit(
                Event::CandidateAdded {
                    id,
                    texts: c.texts,
                    parents: c.parents,
                    origin: c.origin,
                    changed: c.changed,
                    round,
                    discovered_at: self.state.metric_calls + calls_before,
                    note: c.note,
                    review_item: c.review_item,
                },
                false,
            )?;
            sh.emit(Event::ValEvaluated { candidate: id, evals, round: Some(round) }, false)?;
        }
        if let Some(adapted) = self.adaptation(round) {
            let taken = adapted.adapted().expect("made as reflection_adapted");
            tracing::info!(round, change = %taken.message(), "reflection adapted");
            sh.emit(adapted, false)?;
        }
        let batch = {
            let mut held = sh.held.lock().expect("held events");
            held.live.remove(&f.gen);
            held.buf.take(round)
        };
        let mut next = self.state.clone();
        for ev in &batch {
            next.apply(ev);
        }
        let accepted_mutations =
            batch.iter().filter(|e| matches!(e, Event::CandidateAdded { origin: Origin::Mutation, .. })).count();
        let mut merges_due = next.merges_due;
        if sh.opt.merge {
            for _ in 0..accepted_mutations {
                if next.merges_tested < sh.opt.max_merges {
                    merges_due += 1;
                }
            }
        }
        let (mut input_tokens, mut output_tokens) = (self.state.input_tokens, self.state.output_tokens);
        for ev in &batch {
            for u in event_usage(ev) {
                input_tokens += u.input_tokens;
                output_tokens += u.output_tokens;
            }
        }
        let metric_calls = self.state.metric_calls + out.calls;
        // What the round's replies cost, paid and served free from the response cache apart.
        let (paid, replayed) = batch.iter().map(event_cost).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        debug_assert!((paid + replayed - out.cost).abs() < 1e-9, "the events hold every cost of the round");
        // And what work dropped since the last commit paid: the run paid it too.
        let dropped = sh.commit_spend(f.gen, self.state.cost_usd + paid);
        let cost_usd = self.state.cost_usd + paid + dropped;
        let cost_usd_dropped = self.state.cost_usd_dropped + dropped;
        let cost_usd_replayed = self.state.cost_usd_replayed + replayed;
        let fin = Event::RoundFinished {
            round,
            metric_calls,
            cost_usd,
            cost_usd_replayed,
            cost_usd_dropped,
            best: next.best().unwrap_or(0),
            best_val: next.best_val(),
            merges_due,
            found_new: out.found_new,
            input_tokens,
            output_tokens,
            objective_bests: next.objective_bests(),
        };
        sh.emit(fin.clone(), true)?;
        next.apply(&fin);
        tracing::info!(
            round,
            metric_calls,
            cost_usd,
            candidates = next.candidates.len(),
            best_val = next.best_val(),
            "round committed"
        );
        sh.cache.lock().expect("cache").put_events(round, batch, &next);
        sh.live.metric_calls.store(next.metric_calls, Ordering::Relaxed);
        self.state = next;
        self.merge_ready = out.found_new;
        sh.stage(round, None);
        // Live counters: the committed totals plus what the rounds still in flight spent so far.
        sh.evaluations_cached.store(self.state.evaluations_cached, Ordering::Relaxed);
        sh.next_commit.store(round + 1, Ordering::Relaxed);
        sh.send_status();
        Ok(())
    }

    /// The change of course round `round`'s commit takes, from the committed proposals and this
    /// round's (see `engine::adapt`): None when the last proposals made children, or nothing is
    /// left to try (then `stop_reason` says so).
    pub(super) fn adaptation(&self, round: u64) -> Option<Event> {
        let mut adapt = self.state.adapt.clone();
        for ev in self.sh.held.lock().expect("held events").buf.pending_of(round) {
            if let Event::ProposalFinished { outcome, .. } = ev {
                adapt.record(outcome.no_child());
            }
        }
        let (no_child, why) = adapt.due()?;
        let step = self.sh.allowed.next(&adapt.steps, why)?;
        Some(Event::ReflectionAdapted { round, step, why, no_child, of: adapt.window.len() })
    }

    /// Starts round 0: the seed scored on val. Its commit adds candidate 0.
    pub(super) fn start_seed(&self) -> Result<Running> {
        let sh = self.sh.clone();
        let started = Event::RoundStarted { round: 0, proposals: vec![], planned_after: None, merge: None };
        sh.emit(started.clone(), false)?;
        sh.stage(0, Some("scoring the seed candidate on val".into()));
        let seed = self.seed_texts.as_ref().map(|(t, _)| t.clone()).unwrap_or_else(|| sh.project.seed.clone());
        let val_ids: Vec<&str> = sh.project.val.iter().map(|e| e.id.as_str()).collect();
        // The further seeds of `seeds/<name>/` (not when branching from another run's candidate).
        let extra = if self.seed_texts.is_none() { sh.project.seeds.clone() } else { vec![] };
        let min_calls = std::iter::once(&seed)
            .chain(extra.iter().map(|(_, t)| t))
            .map(|t| sh.uncached(t, &val_ids, EvalSplit::Val, 0, &self.state.data))
            .sum();
        let gen = sh.next_gen.fetch_add(1, Ordering::Relaxed);
        sh.seed_gen.store(gen, Ordering::Relaxed);
        sh.held.lock().expect("held events").live.insert(gen);
        // With one seed the first proposal may start while it is scored: its parent can only be
        // the seed. With several, selection among them waits for their scores.
        let preview = extra.is_empty().then(|| Preview::Passed(seed.clone()));
        let work = tokio::spawn(async move {
            let val: Vec<&Example> = sh.project.val.iter().collect();
            let seeds = std::iter::once((None, seed)).chain(extra.into_iter().map(|(n, t)| (Some(n), t)));
            let mut out = RoundOutput::default();
            // Every seed is scored on all of val before the first proposal (gepa #134).
            for (name, texts) in seeds {
                let place = match &name {
                    None => sh.place(0).at("eval", "seed"),
                    Some(n) => sh.place(0).at("eval", "seed").at("seed", n),
                };
                let (evals, calls, cost) =
                    sh.evaluate(gen, &place, &texts, &val, EvalSplit::Val, None, sh.repeats(EvalSplit::Val)).await?;
                let note = name.map(|n| format!("a seed candidate, from {}/{n}/", crate::project::SEEDS_DIR));
                let seed = NewCandidate {
                    texts,
                    parents: vec![],
                    origin: Origin::Seed,
                    changed: vec![],
                    note,
                    review_item: None,
                };
                out.scored.push((seed, evals, out.calls, None));
                out.calls += calls;
                out.cost += cost;
            }
            Ok(out)
        });
        Ok(Running { plan: PlannedRound { started, gen, preview, actions: vec![], min_calls, may_queue: 0 }, work })
    }
}

/// A frontier over objectives needs objective scores: when the seed's val evaluations have none
/// (a `command` scorer that prints no `scores`), the run stops before it starts selecting, as
/// gepa raises (`GEPAState.__init__`, core/state.py) instead of quietly selecting the best mean.
fn no_objectives_is_an_error(opt: &OptimizerConfig, seed: &RoundOutput) -> Result<()> {
    let evals = seed.scored.iter().flat_map(|(_, evals, _, _)| evals);
    if opt.frontier.is_instance() || evals.clone().any(|e| !e.objectives.is_empty()) {
        return Ok(());
    }
    bail!(
        "gepa.toml: [optimizer] frontier = \"{}\" selects over objective scores, but the seed's {} val \
         evaluations have none: the [evaluator] command printed no `scores`. Have it print \
         {{\"score\": 0.8, \"scores\": {{\"accuracy\": 0.8, \"brevity\": 0.5}}}}, add built-in ones with \
         [optimizer] objectives = [\"prompt_tokens\"], or set frontier = \"instance\"",
        opt.frontier.as_str(),
        evals.count()
    )
}

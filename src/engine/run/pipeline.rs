//! The pipeline loop: keeping up to the lag in flight, voiding what a commit invalidates, and
//! the stop rule. Planning a round is `plan.rs`; committing one is `commit.rs`.

use super::cache::EvalSplit;
use super::human::is_guide;
use super::{Engine, PlannedRound, RoundOutput, Running, Stop};
use crate::engine::event::{candidate_hash, Event};
use crate::engine::handle::{Command, RunResult};
use crate::eval::ExampleEval;
use anyhow::{anyhow, Result};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The plans of rounds in flight.
pub(super) fn plans(inflight: &[Running]) -> Vec<PlannedRound> {
    inflight.iter().map(|r| r.plan.clone()).collect()
}

impl Engine {
    /// Keeps up to `pipeline_lag` rounds in flight and commits them in order, until the run
    /// finishes (Some) or is stopped (None).
    pub(super) async fn pipeline(&mut self, inflight: &mut Vec<Running>) -> Result<Option<RunResult>> {
        let cancel = self.handle.cancel.clone();
        loop {
            self.drop_held(inflight)?;
            while inflight.len() < self.room(inflight) {
                let Some(f) = self.plan_next(&plans(inflight)) else { break };
                inflight.push(f);
            }
            self.sh.rounds_in_flight.store(inflight.len(), Ordering::Relaxed);
            if inflight.is_empty() {
                let stop = self.stop_reason(0);
                if let Some(reason) = &stop {
                    // Past the cost limit nothing more is paid, not even to score an approval.
                    let over_cost = self.sh.over_cost();
                    // Proposals already paid for get their review before the run ends.
                    if self.state.review_queue.is_empty() || self.auto_approve || over_cost {
                        if over_cost && !self.drain_calls().await {
                            return Ok(None);
                        }
                        return Ok(Some(self.finish(reason).await?));
                    }
                }
                let n = self.state.review_queue.len();
                self.sh.set_activity(if stop.is_none() {
                    format!("waiting for review: {n} pending (the queue is full)")
                } else {
                    format!("budget used; {n} pending item(s) wait for review before the run finishes")
                });
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(None),
                    cmd = self.commands.recv() => match cmd {
                        Some(c) => self.command_buf.push(c),
                        // Nobody can answer any more: finish (or stop) without the reviews.
                        None => {
                            if stop.is_some() {
                                self.auto_approve = true;
                            } else {
                                return Ok(None);
                            }
                        }
                    },
                }
                continue;
            }
            let room_for_more = inflight.len() < self.room(inflight);
            // The time limit stops proposals mid-round: a round on a slow local model can take
            // longer than the whole limit. The seed's scoring always finishes (no run without it).
            let first_proposal = inflight.iter().position(|r| r.plan.round() > 0);
            let wall_left = self.sh.opt.max_wall_secs.map(|max| (max - self.active_secs()).max(0.0));
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(None),
                done = &mut inflight[0].work => {
                    let out = done.map_err(|e| anyhow!("a round's work ended abnormally: {e}"))??;
                    if self.reused_late(&inflight[0].plan, &out) {
                        // Planned ahead, it ran what the sequential loop would have reused.
                        self.void_from(inflight, 0)?;
                        continue;
                    }
                    let f = inflight.remove(0);
                    self.commit(f.plan, out).await?;
                    self.revalidate(inflight)?;
                }
                Some((gen, preview)) = self.previews.recv() => {
                    // A fixed-lag pipeline plans from committed states only.
                    let fixed = self.sh.opt.keep_stale_plans;
                    if let Some(i) = inflight.iter().position(|r| r.plan.gen == gen).filter(|_| !fixed) {
                        inflight[i].plan.preview = Some(preview);
                        self.revalidate_from(inflight, i + 1)?;
                    }
                }
                // A call was held back at the cost limit: its round is dropped at the loop's top.
                _ = self.sh.cost_stop.notified(), if self.sh.opt.max_cost_usd.is_some() => {}
                // At the time limit the rounds in flight are dropped (their paid calls are counted
                // as dropped work); the next check of the stop rules ends the run.
                _ = tokio::time::sleep(Duration::from_secs_f64(wall_left.unwrap_or(0.0))),
                    if wall_left.is_some() && first_proposal.is_some() =>
                {
                    self.void_from(inflight, first_proposal.unwrap_or(0))?;
                }
                // A decision while the pipeline has room (the review queue was full): plan now.
                cmd = self.commands.recv(), if room_for_more => {
                    if let Some(c) = cmd {
                        self.command_buf.push(c);
                    }
                }
            }
        }
    }

    /// Drops the rounds in flight from the first one with a call held back at the cost limit: it
    /// can never end, and the rounds after it were planned on what it would do. The rounds before
    /// it go on: their calls were sent before the limit and are paid whatever happens, so they
    /// are committed (a round that needs another call is held in its turn).
    fn drop_held(&mut self, inflight: &mut Vec<Running>) -> Result<()> {
        let first = {
            let held = self.sh.held.lock().expect("held events");
            inflight.iter().position(|r| held.at_cost_gate.contains(&r.plan.gen))
        };
        match first {
            Some(i) => self.void_from(inflight, i),
            None => Ok(()),
        }
    }

    /// Rounds in flight were planned ahead, from the committed state with the rounds before them
    /// assumed to change nothing. After a commit, each is kept only if the plan made now, from
    /// what those rounds really did, is the same; the first that differs is voided with every
    /// round after it (their work is dropped, never counted) and planned again. So the search is
    /// the sequential loop's, plan for plan, whatever the lag.
    pub(super) fn revalidate(&mut self, inflight: &mut Vec<Running>) -> Result<()> {
        self.revalidate_from(inflight, 0)
    }

    pub(super) fn revalidate_from(&mut self, inflight: &mut Vec<Running>, from: usize) -> Result<()> {
        if self.sh.opt.keep_stale_plans {
            return Ok(());
        }
        let mut merge_ready = self.merge_ready && from == 0;
        for i in from..inflight.len() {
            let before = plans(&inflight[..i]);
            let (mut view, guess) = self.planning_view_and_guess(&before);
            for a in &inflight[i].plan.actions {
                view.apply_human_action(a);
            }
            let Event::RoundStarted { round, proposals, merge, .. } = &inflight[i].plan.started else {
                unreachable!("a plan is a round_started")
            };
            if *round == 0 {
                // The seed's round is not planned: it is always the seed on val.
                continue;
            }
            let guide = inflight[i].plan.actions.iter().find(|a| is_guide(a));
            let now = self.decide(&view, &before, *round, merge_ready, guess, guide);
            let same = match now {
                Some((p, m)) => p == *proposals && m == *merge,
                None => proposals.is_empty() && merge.is_none(),
            };
            if !same {
                self.void_from(inflight, i)?;
                return Ok(());
            }
            if i == 0 && (!proposals.is_empty() || merge.is_some()) {
                self.merge_ready = false;
            }
            merge_ready = false;
        }
        Ok(())
    }

    /// Whether a round planned ahead ran an evaluation that a round committed after it was
    /// planned (and before it) had already made: the sequential loop would have reused it, so
    /// the round's count would differ; it is redone. Rare (the same texts on the same example).
    pub(super) fn reused_late(&self, f: &PlannedRound, out: &RoundOutput) -> bool {
        let Event::RoundStarted { round, .. } = &f.started else { return false };
        if !self.sh.opt.cache_evaluations || *round == 0 {
            return false;
        }
        // The round evaluated with the data as its own decisions left it.
        let changed;
        let data = if f.actions.iter().any(|a| a.example().is_some()) {
            let mut view = self.state.clone();
            f.actions.iter().for_each(|a| view.apply_human_action(a));
            changed = view.data;
            &changed
        } else {
            &self.state.data
        };
        let cache = self.sh.cache.lock().expect("cache");
        let before = round - 1;
        let held = self.sh.held.lock().expect("held events");
        let late = |hash: &str, split: EvalSplit, evals: &[ExampleEval]| {
            self.sh.reuses(split)
                && evals.iter().any(|e| {
                    !e.cached && cache.committed(hash, split, (&e.example_id, e.repeat), before, data).is_some()
                })
        };
        let events = held.buf.pending_of(*round);
        events.iter().any(|ev| match ev {
            Event::MinibatchEvaluated { candidate_hash: Some(h), evals, .. } => late(h, EvalSplit::Train, evals),
            Event::MergeAttempted { texts, evals, .. } => late(&candidate_hash(texts), EvalSplit::Val, evals),
            _ => false,
        }) || out.scored.iter().any(|(c, evals, _, _)| late(&candidate_hash(&c.texts), EvalSplit::Val, evals))
    }

    /// Drops rounds `i..` in flight: their work stops, `round_voided` records it, and the human
    /// decisions they carried are taken again by the next plan.
    pub(super) fn void_from(&mut self, inflight: &mut Vec<Running>, i: usize) -> Result<()> {
        let voided: Vec<Running> = inflight.drain(i..).collect();
        let mut actions = Vec::new();
        for r in voided {
            let Event::RoundStarted { round, .. } = r.plan.started else { unreachable!("a plan is a round_started") };
            {
                let mut held = self.sh.held.lock().expect("held events");
                held.live.remove(&r.plan.gen);
                held.voided.insert(r.plan.gen);
                let _ = held.buf.take(round);
                // What it paid so far is the dropped work's, still counted in cost_usd.
                self.sh.drop_spend(r.plan.gen);
            }
            self.sh.emit(Event::RoundVoided { round }, true)?;
            self.sh.stage(round, None);
            actions.extend(r.plan.actions.iter().cloned().map(Command::Act));
            // A plan dropped on early news may come back (a guessed child fails after all): its
            // work goes on unseen up to its reflection and child test, so that the replies are in
            // the response cache if it does. A few at most; nothing of it is recorded or counted.
            self.shadows.push_back(r);
            while self.shadows.len() > self.sh.lag() {
                if let Some(old) = self.shadows.pop_front() {
                    // Not aborted: a round planned again may share its requests in flight.
                    self.sh.held.lock().expect("held events").stopped.insert(old.plan.gen);
                }
            }
        }
        // A steering request among them is taken again as that request (its id recorded again).
        for cmd in actions.iter_mut() {
            let Command::Act(a) = cmd else { continue };
            if let Some(i) = self.in_flight_requests.iter().position(|(_, _, b)| b == a) {
                let (_, id, action) = self.in_flight_requests.remove(i);
                *cmd = Command::Request { id, action };
            }
        }
        actions.append(&mut self.command_buf);
        self.command_buf = actions;
        Ok(())
    }

    /// The reason to stop planning, counting `in_flight_calls` not yet committed. Each rule reads
    /// the committed state, as gepa's stoppers read its state before each iteration
    /// (`core/engine.py`, `while not self._should_stop(state)`); a round planned ahead that a
    /// commit brings past one is dropped when the rounds in flight are checked again.
    pub(super) fn stop_reason(&self, in_flight_calls: u64) -> Option<Stop> {
        let s = &self.state;
        let opt = &self.sh.opt;
        let stop = |by: &'static str, text: String| Some(Stop { by, text });
        if s.metric_calls + in_flight_calls >= opt.max_metric_calls {
            return stop("max_metric_calls", format!("budget of {} metric calls used", opt.max_metric_calls));
        }
        if let Some(max) = opt.max_cost_usd {
            // Every paid call, dropped work and rounds in flight included: depends on timing.
            if self.sh.paid_total() >= max {
                return stop("max_cost_usd", format!("cost limit of ${max:.2} reached"));
            }
        }
        if let Some(max) = opt.max_reflection_cost_usd {
            // gepa utils/stop_condition.py, MaxReflectionCostStopper: `total_cost >= max`.
            if s.reflection_cost_usd >= max {
                return stop(
                    "max_reflection_cost_usd",
                    format!(
                        "max_reflection_cost_usd reached: the reflection model's calls cost ${:.4} of ${max:.4}",
                        s.reflection_cost_usd
                    ),
                );
            }
        }
        if let Some(max) = opt.max_wall_secs {
            if self.active_secs() >= max {
                return stop("max_wall_secs", format!("max_wall_secs reached: the time limit of {max} s of running"));
            }
        }
        if let Some(t) = opt.score_threshold {
            if s.best_val() >= t {
                return stop("score_threshold", format!("best val score reached the threshold {t}"));
            }
        }
        if let Some(p) = opt.patience_rounds {
            if s.rounds_without_improvement >= p {
                return stop("patience_rounds", format!("no improvement in {p} rounds"));
            }
        }
        if let Some(max) = opt.max_candidates {
            // gepa utils/stop_condition.py, MaxTrackedCandidatesStopper: `len(candidates) >= max`.
            if s.candidates.len() >= max {
                return stop(
                    "max_candidates",
                    format!("max_candidates reached: {} candidates kept", s.candidates.len()),
                );
            }
        }
        if self.run_dir.join("stop").exists() {
            return stop("stop_file", "stop file found in the run folder".into());
        }
        // Reflections keep making no child, and every change of course allowed was taken.
        if self.sh.allowed.adapt {
            if let Some((no_child, _)) = s.adapt.due() {
                // The proposals in a row that made no child say it (`stalled`); else the window.
                let window = format!("{no_child} of the last {} proposals made no child to test", s.adapt.window.len());
                return stop("no_child", self.stalled(s.adapt.streak_text().is_none().then_some(window)));
            }
        }
        // Proposals that cost nothing learn nothing. Without the budget moving, this would go on
        // for ever; it is "nothing left to learn" only when every one found its parent perfect.
        let idle = (2 * self.sh.project.train.len().div_ceil(opt.minibatch_size.max(1)) as u64).max(10);
        if s.rounds_without_calls >= idle {
            if s.idle_no_child == 0 {
                return stop("idle", format!("nothing left to learn: {idle} proposals in a row found their parent perfect on minibatches it was already scored on"));
            }
            return stop("idle", self.stalled(Some(format!("{idle} rounds in a row spent no metric call"))));
        }
        if let Some(max) = opt.max_rounds {
            if s.round.unwrap_or(0) >= max {
                return stop("max_rounds", format!("{max} rounds done"));
            }
        }
        if let Some(max) = opt.max_proposals {
            // gepa utils/stop_condition.py, MaxCandidateProposalsStopper: exactly max proposals.
            if s.proposals_made >= max {
                return stop("max_proposals", format!("max_proposals reached: {max} proposals made"));
            }
        }
        None
    }

    /// Why a run whose reflections make no child stops, truthfully: where the budget stood, what
    /// happened, what was tried, and what the user may do.
    fn stalled(&self, what: Option<String>) -> String {
        let s = &self.state;
        let al = &self.sh.allowed;
        // What happened: `what`, then the proposals in a row that made no child.
        let happened = [what, s.adapt.streak_text()].into_iter().flatten().collect::<Vec<_>>().join(": ");
        let tried = s.adapt.tried_text(al);
        let cut =
            s.adapt.streak.keys().max_by_key(|k| s.adapt.streak[*k]) == Some(&crate::engine::adapt::NoChild::CutOff);
        let advice = match (cut, al.adapt) {
            (true, _) => "give the reflection model more max_tokens, or try a larger one",
            (false, true) => "try a larger reflection model",
            (false, false) => "try a larger reflection model, or let the engine adapt ([reflection] adapt = true)",
        };
        format!(
            "stopped at {} of {} metric calls: {happened}; tried: {tried} — {advice}",
            s.metric_calls, self.sh.opt.max_metric_calls
        )
    }
}

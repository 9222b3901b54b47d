//! The pipeline loop: planning rounds from the committed state, keeping up to the lag in flight, voiding
//! what a commit invalidates, and committing rounds strictly in order.

use super::*;

/// gepa merge.py's `val_overlap_floor`: a merge needs this many val examples both parents were
/// scored on.
pub(super) const MERGE_VAL_OVERLAP_FLOOR: usize = 5;

/// A round whose plan could not be recorded: its work is the error, so the run stops there.
pub(super) fn fail_round(e: anyhow::Error, started: Event, actions: Vec<HumanAction>) -> Running {
    let work = tokio::spawn(async move { Err(e) });
    Running { plan: InFlight { started, gen: 0, preview: None, actions, min_calls: 0, may_queue: 0 }, work }
}

/// The plans of rounds in flight.
pub(super) fn plans(inflight: &[Running]) -> Vec<InFlight> {
    inflight.iter().map(|r| r.plan.clone()).collect()
}

impl Engine {
    /// Keeps up to `pipeline_lag` rounds in flight and commits them in order, until the run
    /// finishes (Some) or is stopped (None).
    pub(super) async fn pipeline(&mut self, inflight: &mut Vec<Running>) -> Result<Option<RunResult>> {
        let cancel = self.handle.cancel.clone();
        loop {
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
                // A call was held back at the cost limit: the rounds still working cannot end.
                _ = self.sh.cost_stop.notified(), if self.sh.opt.max_cost_usd.is_some() => {
                    if !inflight[0].work.is_finished() {
                        self.void_from(inflight, 0)?;
                    }
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
    pub(super) fn reused_late(&self, f: &InFlight, out: &RoundOutput) -> bool {
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
        let late = |hash: &str, split: Split, evals: &[ExampleEval]| {
            self.sh.reuses(split)
                && evals
                    .iter()
                    .any(|e| !e.cached && cache.committed(hash, split, &e.example_id, before, data).is_some())
        };
        let events = held.buf.pending_of(*round);
        events.iter().any(|ev| match ev {
            Event::MinibatchEvaluated { candidate_hash: Some(h), evals, .. } => late(h, Split::Train, evals),
            Event::MergeAttempted { texts, evals, .. } => late(&candidate_hash(texts), Split::Val, evals),
            _ => false,
        }) || out.scored.iter().any(|(c, evals, _, _)| late(&candidate_hash(&c.texts), Split::Val, evals))
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

    /// The reason to stop planning, counting `in_flight_calls` not yet committed.
    pub(super) fn stop_reason(&self, in_flight_calls: u64) -> Option<String> {
        let s = &self.state;
        let opt = &self.sh.opt;
        if s.metric_calls + in_flight_calls >= opt.max_metric_calls {
            return Some(format!("budget of {} metric calls used", opt.max_metric_calls));
        }
        if let Some(max) = opt.max_cost_usd {
            // Every paid call, dropped work and rounds in flight included: depends on timing.
            if self.sh.paid_total() >= max {
                return Some(format!("cost limit of ${max:.2} reached"));
            }
        }
        if let Some(max) = opt.max_wall_secs {
            if self.active_secs() >= max {
                return Some(format!("time limit of {max:.0}s reached"));
            }
        }
        if let Some(t) = opt.score_threshold {
            if s.best_val() >= t {
                return Some(format!("best val score reached the threshold {t}"));
            }
        }
        if let Some(p) = opt.patience_rounds {
            if s.rounds_without_improvement >= p {
                return Some(format!("no improvement in {p} rounds"));
            }
        }
        if self.run_dir.join("stop").exists() {
            return Some("stop file found in the run folder".into());
        }
        // Reflections keep making no child, and every change of course allowed was taken.
        if self.sh.allowed.adapt {
            if let Some((no_child, _)) = s.adapt.due() {
                // The proposals in a row that made no child say it (`stalled`); else the window.
                let window = format!("{no_child} of the last {} proposals made no child to test", s.adapt.window.len());
                return Some(self.stalled(s.adapt.streak_text().is_none().then_some(window)));
            }
        }
        // Proposals that cost nothing learn nothing. Without the budget moving, this would go on
        // for ever; it is "nothing left to learn" only when every one found its parent perfect.
        let idle = (2 * self.sh.project.train.len().div_ceil(opt.minibatch_size.max(1)) as u64).max(10);
        if s.rounds_without_calls >= idle {
            if s.idle_no_child == 0 {
                return Some(format!("nothing left to learn: {idle} proposals in a row found their parent perfect on minibatches it was already scored on"));
            }
            return Some(self.stalled(Some(format!("{idle} rounds in a row spent no metric call"))));
        }
        if let Some(max) = opt.max_rounds {
            if s.round.unwrap_or(0) >= max {
                return Some(format!("{max} rounds done"));
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
        let tried = s.adapt.tried_text(al.adapt, al.retry_max_tokens);
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

    /// The state a round planned now starts from (the committed state with the rounds in flight
    /// planned on top), and the parent to guess for it: the child of the latest round in flight
    /// whose child is written or passed its minibatch, when no merge or human decision comes
    /// after it (that child will most likely be the best candidate; the guess is checked at
    /// commit like every plan).
    pub(super) fn planning_view_and_guess(&self, inflight: &[InFlight]) -> (RunState, Option<CandidateId>) {
        let (view, guess, _) = self.planning_view(inflight);
        (view, guess)
    }

    /// `planning_view_and_guess`, and how many of the rounds in flight skip for sure (said so, or
    /// their parent is known perfect on their minibatch or on all of val).
    pub(super) fn planning_view(&self, inflight: &[InFlight]) -> (RunState, Option<CandidateId>, usize) {
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
        if self.state.round.is_none() && !self.command_buf.is_empty() {
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
                .map(|id| cache.committed(&hash, Split::Train, id, committed, &view.data).map(|e| e.score))
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
        inflight: &[InFlight],
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
        Some((self.plan_proposals(view, round, opt.proposals_per_round.min(room), guess), None))
    }

    /// Plans the next round from the committed state and the rounds in flight, records its plan,
    /// and starts its work. None when nothing should start now.
    pub(super) fn plan_next(&mut self, inflight: &[InFlight]) -> Option<Running> {
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
    pub(super) fn start_round(&self, inflight: &[InFlight], started: Event, actions: Vec<HumanAction>) -> Running {
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
            human.iter().map(|c| self.sh.uncached(&c.texts, &val_ids, Split::Val, reuse_until, &data)).sum();
        for j in &jobs {
            let ids: Vec<&str> = j.plan.minibatch.iter().map(String::as_str).collect();
            min_calls += self.sh.uncached(&j.parent_texts, &ids, Split::Train, reuse_until, &data);
        }
        if let Some(m) = &merge_job {
            let ids: Vec<&str> = m.plan.subsample.iter().map(|&i| all_val[i]).collect();
            min_calls += self.sh.uncached(&m.plan.texts, &ids, Split::Val, reuse_until, &data);
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
        Running { plan: InFlight { started, gen, preview: None, actions, min_calls, may_queue }, work }
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
        (0..slots)
            .map(|slot| {
                let mut rng = derive_rng(opt.seed, &["select", &round.to_string(), &slot.to_string()]);
                let parent = match guess {
                    Some(g) => g,
                    None => select_parent(opt.candidate_selection, &fronts, &means, opt.epsilon, opt.top_k, &mut rng),
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

    /// Commits the oldest round: records what it added (ids and review numbers are given here, in
    /// round order), applies its events to the state, and files its evaluations in the cache.
    /// A round that fixed examples first scores the recorded val outputs again (data_fixes.rs).
    pub(super) async fn commit(&mut self, f: InFlight, mut out: RoundOutput) -> Result<()> {
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
        sh.cache.lock().expect("cache").put_events(round, &batch, &next);
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
        let min_calls = sh.uncached(&seed, &val_ids, Split::Val, 0, &self.state.data);
        let gen = sh.next_gen.fetch_add(1, Ordering::Relaxed);
        sh.seed_gen.store(gen, Ordering::Relaxed);
        sh.held.lock().expect("held events").live.insert(gen);
        let texts = seed.clone();
        let work = tokio::spawn(async move {
            let val: Vec<&Example> = sh.project.val.iter().collect();
            let place = sh.place(0).at("eval", "seed");
            let (evals, calls, cost) = sh.evaluate(gen, &place, &texts, &val, Split::Val, None).await?;
            let seed = NewCandidate { texts, parents: vec![], origin: Origin::Seed, changed: vec![], note: None };
            Ok(RoundOutput { calls, cost, scored: vec![(seed, evals, 0, None)], ..Default::default() })
        });
        let preview = Some(Preview::Passed(seed));
        Ok(Running { plan: InFlight { started, gen, preview, actions: vec![], min_calls, may_queue: 0 }, work })
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

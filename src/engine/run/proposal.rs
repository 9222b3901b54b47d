//! A round's work: evaluations, reflective proposals and merges, run on the shared side of the engine.

use super::cache::EvalSplit;
use super::{
    MergeJob, NewCandidate, Passed, Preview, ProposalJob, ReflectionConstraints, RoundOutput, RoundPlan, Shared,
    SlotResult,
};
use crate::engine::adapt::InForce;
use crate::engine::data_fixes::DataChanges;
use crate::engine::event::{
    candidate_hash, Event, GuideExample, MinibatchRole, Origin, ProposalOutcome, ReviewItem, ReviewKind,
};
use crate::engine::handle::Halted;
use crate::engine::reflect::{
    answers_an_example, build_prompt, builtin_template, extract_instruction, holds_no_instruction, is_cut_off,
    same_words, unchanged_note, ReflectiveRecord, CUT_OFF_NOTE, NO_INSTRUCTION_NOTE,
};
use crate::eval::ExampleEval;
use crate::llm::{ChatRequest, Draw, Message};
use crate::project::config::{AcceptPerRound, ReviewPolicy, SystemKind, TemplateKind};
use crate::project::{Candidate, Example};
use anyhow::Result;
use futures::future::join_all;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A reflection's last reply (cost and tokens those of every attempt), the cut-off answers asked
/// again before it, and the part of the cost served free from the response cache.
type Asked = (crate::llm::ChatReply, Vec<String>, f64);

/// Counts itself in `counter` while alive (an evaluation in flight, however it ends).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Example fields the system must not see as inputs in the reflective dataset: the reference answer
/// and feedback-only fields reach the reflection model through the feedback instead.
fn hidden_fields(cfg: &crate::project::ProjectConfig) -> Vec<String> {
    let e = &cfg.evaluator;
    let mut out: Vec<String> = e.field.iter().cloned().chain(e.feedback_fields.iter().cloned()).collect();
    for p in &e.parts {
        out.extend(p.field.iter().cloned());
    }
    out
}

/// Whether example `id` is among the minibatch's or is the one pointed at.
fn records_hold(batch: &[&Example], pointed: Option<&Example>, id: &str) -> bool {
    batch.iter().any(|e| e.id == id) || pointed.is_some_and(|e| e.id == id)
}

/// Which accepted proposals of a round go on to val (`engine::select::select_passing`).
fn select_accepted(results: &[SlotResult], mode: AcceptPerRound, top_k: usize) -> Vec<bool> {
    let passed: Vec<Option<(&Candidate, f64)>> =
        results.iter().map(|r| r.accepted.as_ref().map(|(c, _)| (&c.texts, r.sums.1 - r.sums.0))).collect();
    crate::engine::select::select_passing(&passed, mode, top_k)
}

impl Shared {
    /// Where round `round`'s model calls sit among the run's draws (`run=<draws>/round=<n>`;
    /// see `llm::draw`). A call made with `ChatRequest::drawn(Some(place.at(…)))` at a place
    /// decided by the committed run is a recorded draw: a resume or replay gets its reply.
    pub(super) fn place(&self, round: u64) -> Draw {
        Draw::stream(&self.draws).at("round", round)
    }

    /// Whether committed evaluations of `split` are served from the evaluation cache:
    /// `cache_evaluations`, and for minibatches (train) `cache_minibatches` too.
    pub(super) fn reuses(&self, split: EvalSplit) -> bool {
        self.opt.cache_evaluations && (split == EvalSplit::Val || self.opt.cache_minibatches)
    }

    /// How many times a val pass scores each example (`val_repeats`); other splits once.
    pub(super) fn repeats(&self, split: EvalSplit) -> u32 {
        match split {
            EvalSplit::Val => self.opt.val_repeats.max(1),
            EvalSplit::Train => 1,
        }
    }

    /// Scores a candidate on examples, concurrently within the run-wide limit; results in input
    /// order, each example `repeats` times (all first draws, then all second ones, …; see
    /// `val_repeats`). An evaluation committed by round `reuse` (the round, and the data as the
    /// round sees it) or earlier is served from the cache (free, marked `cached`). Model calls are
    /// draws under `place` (`example=<id>` below it, then `repeat=<r>` for each draw after the
    /// first, so the first is the draw a single pass makes). Returns the evaluations, the metric
    /// calls (one per draw run) and the cost.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn evaluate(
        &self,
        gen: u64,
        place: &Draw,
        candidate: &Candidate,
        examples: &[&Example],
        split: EvalSplit,
        reuse: Option<(u64, &DataChanges)>,
        repeats: u32,
    ) -> Result<(Vec<ExampleEval>, u64, f64)> {
        let hash = candidate_hash(candidate);
        let timings: Mutex<Vec<(f64, u64)>> = Mutex::new(Vec::new());
        // The server gauge reads the seed's val pass alone: a first proposal's few requests sent
        // beside it wait behind it on a server that answers in turn, and would read as parallel.
        let gauged = gen == self.seed_gen.load(Ordering::Relaxed) || self.next_commit.load(Ordering::Relaxed) > 0;
        let peak_before = self.live.peak_in_flight.load(Ordering::Relaxed);
        let draws: Vec<(&Example, u32)> =
            (0..repeats.max(1)).flat_map(|r| examples.iter().map(move |ex| (*ex, r))).collect();
        let evals = futures::future::try_join_all(draws.into_iter().map(|(ex, repeat)| {
            let (hash, timings) = (&hash, &timings);
            async move {
                if let Some((until, data)) = reuse.filter(|_| self.reuses(split)) {
                    let cache = self.cache.lock().expect("cache");
                    if let Some(e) = cache.get(hash, split, (&ex.id, repeat), until, data) {
                        return Ok::<_, Halted>(e);
                    }
                }
                self.gate().await;
                let _permit = loop {
                    self.cost_gate(gen).await;
                    let permit = self.eval_slots.acquire().await.expect("semaphore never closed");
                    // The limit may have been reached while this one waited for its turn.
                    if !self.over_cost() {
                        break permit;
                    }
                };
                let in_flight = Counted::enter(&self.live.in_flight);
                self.live.peak_in_flight.fetch_max(self.live.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
                // Tokio's clock: a test with the clock paused times its scripted server exactly.
                let sent = tokio::time::Instant::now();
                let at = place.at("example", &ex.id);
                let at = if repeat == 0 { at } else { at.at("repeat", repeat) };
                let e = self.task.evaluate(candidate, ex, Some(&at)).await;
                let secs = sent.elapsed().as_secs_f64();
                let e = ExampleEval { repeat, ..e.map_err(Halted)? };
                // Replayed replies say nothing of the server (their time is the scorer's, a
                // command's or a script's): only evaluations that asked the server are timed.
                if !e.trace.steps.iter().any(|s| s.cached) {
                    let tokens: u64 = e.trace.steps.iter().map(|s| s.usage.output_tokens).sum();
                    timings.lock().expect("timings").push((secs, tokens));
                }
                if let Some(err) = &e.error {
                    tracing::warn!(example = %ex.id, error = %err, "evaluation failed; scored 0");
                }
                // Paid only: a reply replayed from the response cache is free. Booked before it
                // leaves the count of calls in flight, which a finishing run waits on (another
                // thread may finish the run between the two otherwise, without this reply's cost).
                self.book(gen, 1, e.paid_and_replayed().0);
                drop(in_flight);
                self.send_status();
                Ok(e)
            }
        }))
        .await?;
        if gauged {
            // The first batch of the process, or one that had more requests in flight than ever
            // before, opened new connections: its timing is the network's, not the server's.
            let cold = peak_before == 0 || self.live.peak_in_flight.load(Ordering::Relaxed) > peak_before;
            self.observe_batch(&timings.into_inner().expect("timings"), cold);
        }
        let calls = evals.iter().filter(|e| !e.cached).count() as u64;
        let cost = evals.iter().map(|e| e.cost_usd).sum();
        Ok((evals, calls, cost))
    }

    /// How many of these evaluations a round planned now would have to run (not in the cache),
    /// every draw of a val pass counted.
    pub(super) fn uncached(
        &self,
        candidate: &Candidate,
        ids: &[&str],
        split: EvalSplit,
        reuse_until: u64,
        data: &DataChanges,
    ) -> u64 {
        if !self.reuses(split) {
            return ids.len() as u64 * u64::from(self.repeats(split));
        }
        let hash = candidate_hash(candidate);
        let cache = self.cache.lock().expect("cache");
        let draws = (0..self.repeats(split)).flat_map(|r| ids.iter().map(move |id| (*id, r)));
        draws.filter(|d| cache.committed(&hash, split, *d, reuse_until, data).is_none()).count() as u64
    }

    /// Does a planned round's work: its merge or proposals, then scores the candidates that passed
    /// (and those the round's human decisions add) on val. Nothing here touches the committed
    /// state; the commit does, in round order.
    pub(super) async fn run_round(self: Arc<Self>, plan: RoundPlan) -> Result<RoundOutput> {
        let (round, gen) = (plan.round, plan.gen);
        let mut out = RoundOutput::default();
        let mut to_score: Vec<(NewCandidate, Option<Passed>)> = plan.human.into_iter().map(|c| (c, None)).collect();
        if let Some(job) = plan.merge {
            let (calls, cost, passed) = self.run_merge(round, gen, plan.planned_after, job, &plan.data).await?;
            out.calls += calls;
            out.cost += cost;
            if let Some((cand, item)) = passed {
                match plan.merge_policy {
                    ReviewPolicy::Auto => to_score.push((cand, None)),
                    ReviewPolicy::Approve => out.to_review.push((item, None)),
                }
            }
        } else if !plan.proposals.is_empty() {
            // Early news only for a round of one proposal (siblings are compared first).
            let news = plan.proposals.len() == 1 && to_score.is_empty();
            let auto = plan.mutation_policy == ReviewPolicy::Auto;
            let results = join_all(plan.proposals.iter().map(|p| {
                let asked = ReflectionConstraints { vetoes: &plan.vetoes, protected: &plan.protected };
                self.run_proposal(round, gen, (plan.planned_after, &plan.data), p, asked, news && auto)
            }))
            .await;
            if news {
                let preview = match &results[0] {
                    Ok(r) if r.skipped => Some(Preview::Skipped),
                    Ok(SlotResult { accepted: Some((c, _)), .. }) if auto => Some(Preview::Passed(c.texts.clone())),
                    Ok(SlotResult { accepted: None, .. }) => Some(Preview::Rejected),
                    _ => None,
                };
                if let Some(pv) = preview {
                    let _ = self.previews.send((gen, pv));
                }
            }
            let results: Vec<SlotResult> = results.into_iter().collect::<Result<_>>()?;
            let selected = select_accepted(&results, self.opt.accept_per_round, self.opt.accept_top_k);
            for ((p, r), chosen) in plan.proposals.iter().zip(results).zip(selected) {
                out.calls += r.calls;
                out.cost += r.cost;
                let Some((cand, item)) = r.accepted else { continue };
                let (parent_sum, child_sum) = r.sums;
                if !chosen {
                    let outcome = ProposalOutcome::NotSelected { parent_sum, child_sum };
                    self.emit_in(
                        gen,
                        Event::ProposalFinished {
                            round,
                            slot: p.plan.slot,
                            parent: p.plan.parent,
                            outcome,
                            child: Some(cand.texts.clone()),
                        },
                        false,
                    )?;
                    continue;
                }
                out.found_new = true;
                let passed = Passed { slot: p.plan.slot, parent: p.plan.parent, sums: r.sums };
                match plan.mutation_policy {
                    ReviewPolicy::Auto => to_score.push((cand, Some(passed))),
                    ReviewPolicy::Approve => out.to_review.push((item, Some(passed))),
                }
            }
        }
        if !self.held.lock().expect("held events").live.contains(&gen) {
            // Dropped: what it found is never used, and scoring on val would be all waste.
            return Ok(out);
        }
        if !to_score.is_empty() {
            let n = to_score.len();
            self.stage_in(
                gen,
                round,
                Some(format!("scoring {n} new candidate{} on val", if n == 1 { "" } else { "s" })),
            );
            // Excluded val examples are not evaluated; fixed ones are, with their corrected values.
            let val = plan.data.effective(crate::project::Split::Val, &self.project.val);
            let val: Vec<&Example> = val.iter().map(|e| e.as_ref()).collect();
            let reuse = Some((plan.planned_after, &*plan.data));
            let repeats = self.repeats(EvalSplit::Val);
            let places: Vec<Draw> = (0..n).map(|i| self.place(round).at("eval", "val").at("candidate", i)).collect();
            let evals = futures::future::try_join_all(
                to_score
                    .iter()
                    .zip(&places)
                    .map(|((c, _), place)| self.evaluate(gen, place, &c.texts, &val, EvalSplit::Val, reuse, repeats)),
            )
            .await?;
            for ((c, passed), (evals, calls, cost)) in to_score.into_iter().zip(evals) {
                out.scored.push((c, evals, out.calls, passed));
                out.calls += calls;
                out.cost += cost;
            }
        }
        self.stage_in(gen, round, Some("committing".into()));
        Ok(out)
    }

    /// `early`: tell the engine whether a reflection follows once the parent is scored, and the
    /// child's texts as soon as they are written.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_proposal(
        &self,
        round: u64,
        gen: u64,
        reuse: (u64, &DataChanges),
        job: &ProposalJob,
        asked: ReflectionConstraints<'_>,
        early: bool,
    ) -> Result<SlotResult> {
        let p = &job.plan;
        let guide = p.guide.as_ref();
        let parent = &job.parent_texts;
        let (reuse_until, data) = reuse;
        let train_index: BTreeMap<&str, &Example> = self.project.train.iter().map(|e| (e.id.as_str(), e)).collect();
        // Fixed train examples are evaluated with their corrected values.
        let batch: Vec<std::borrow::Cow<Example>> = p
            .minibatch
            .iter()
            .filter_map(|id| train_index.get(id.as_str()).map(|e| data.apply(crate::project::Split::Train, e)))
            .collect();
        let batch: Vec<&Example> = batch.iter().map(|e| e.as_ref()).collect();
        let mut r = SlotResult::default();
        let finish = |outcome: ProposalOutcome, child: Option<Candidate>| Event::ProposalFinished {
            round,
            slot: p.slot,
            parent: p.parent,
            outcome,
            child,
        };

        // Where this proposal's model calls sit among the run's draws (see `llm::draw`).
        let place = self.place(round).at("slot", p.slot);
        self.stage_in(gen, round, Some(format!("parent {} on minibatch", p.parent)));
        let (parent_evals, calls, cost) = self
            .evaluate(gen, &place.at("eval", "parent"), parent, &batch, EvalSplit::Train, Some((reuse_until, data)), 1)
            .await?;
        r.calls += calls;
        r.cost += cost;
        let parent_sum: f64 = parent_evals.iter().map(|e| e.score).sum();
        let perfect = parent_evals.iter().all(|e| e.score >= self.opt.perfect_score);
        self.emit_in(
            gen,
            Event::MinibatchEvaluated {
                round,
                slot: p.slot,
                candidate_role: MinibatchRole::Parent,
                evals: parent_evals.clone(),
                candidate_hash: Some(candidate_hash(parent)),
            },
            false,
        )?;
        // A person asked for this reflection: it runs even on a minibatch the parent is perfect on.
        if self.opt.skip_perfect_score && perfect && guide.is_none() {
            self.emit_in(gen, finish(ProposalOutcome::SkippedPerfect, None), false)?;
            r.skipped = true;
            return Ok(r);
        }
        if early {
            let _ = self.previews.send((gen, Preview::Reflecting));
        }
        if self.stopped(gen) {
            return Ok(r);
        }
        // The example the person was looking at, with the parent's evaluation of it (served from
        // the evaluation cache when already committed), for the reflective dataset only.
        // A train example already in the minibatch is in the dataset once.
        let pointed = match guide.and_then(|g| g.example.as_ref()) {
            Some(GuideExample { split, id })
                if !(*split == crate::project::Split::Train && p.minibatch.contains(id)) =>
            {
                let is_val = *split == crate::project::Split::Val;
                self.project.split(*split).iter().find(|e| e.id == *id).map(|e| (e, is_val))
            }
            _ => None,
        };
        let pointed_example = pointed.map(|(e, _)| e);
        let mut pointed_eval: Option<ExampleEval> = None;
        if let Some((ex, is_val)) = pointed {
            let split = if is_val { EvalSplit::Val } else { EvalSplit::Train };
            self.stage_in(gen, round, Some(format!("parent {} on the example you pointed at", p.parent)));
            let guided = place.at("eval", "guided");
            let (evals, calls, cost) =
                self.evaluate(gen, &guided, parent, &[ex], split, Some((reuse_until, data)), 1).await?;
            r.calls += calls;
            r.cost += cost;
            self.emit_in(
                gen,
                Event::MinibatchEvaluated {
                    round,
                    slot: p.slot,
                    candidate_role: MinibatchRole::GuidedExample,
                    evals: evals.clone(),
                    // Filed in the evaluation cache as train only (ids may repeat across splits).
                    candidate_hash: (!is_val).then(|| candidate_hash(parent)),
                },
                false,
            )?;
            pointed_eval = evals.into_iter().next();
        }

        let mut child = parent.clone();
        let mut reasoning = String::new();
        let asking = self.allowed.in_force(&job.steps);
        // A component's own template first, as gepa's per-component dict; then a built-in the
        // engine turned to, then `[reflection]`'s.
        let template_of = |component: &str| match (self.component_templates.get(component), asking.template) {
            (Some(own), _) => own.as_str(),
            (None, Some(kind)) => builtin_template(kind),
            (None, None) => self.template.as_str(),
        };
        // Which records the parent failed (their number in the prompt), for a re-ask's note.
        let scores: Vec<f64> = parent_evals.iter().chain(pointed_eval.as_ref()).map(|e| e.score).collect();
        for component in &p.components {
            let mut records = self.reflective_dataset(component, &batch, &parent_evals);
            if let (Some(ex), Some(ev)) = (pointed_example, &pointed_eval) {
                records.extend(self.reflective_dataset(component, &[ex], std::slice::from_ref(ev)));
            }
            let notes = asked.vetoes.get(component).map(Vec::as_slice).unwrap_or(&[]);
            // The protected spans this parent's text holds: the child must keep them.
            let kept: Vec<String> = asked
                .protected
                .get(component)
                .map(|spans| spans.iter().filter(|s| parent[component].contains(s.as_str())).cloned().collect())
                .unwrap_or_default();
            let prompt_with = |template: &str| {
                let mut prompt = build_prompt(template, &parent[component], &records, notes);
                prompt.push_str(&crate::engine::protect::protected_section(&kept));
                if let Some(g) = guide {
                    // The example is in the dataset: pointed at and evaluated, or in the minibatch.
                    let shown = g
                        .example
                        .as_ref()
                        .map(|e| e.id.as_str())
                        .filter(|id| records_hold(&batch, pointed_example, id));
                    prompt.push_str(&crate::engine::protect::guidance_section(&g.note, shown));
                }
                prompt
            };
            let mut prompt = prompt_with(template_of(component));
            // The other built-in template, when this component is asked with a built-in one.
            let other_template = match self.component_templates.contains_key(component) {
                true => None,
                false => asking.template.or(self.allowed.template).map(TemplateKind::other),
            };
            self.gate().await;
            self.cost_gate(gen).await;
            self.stage_in(gen, round, Some(format!("reflecting on `{component}` of candidate {}", p.parent)));
            let reflect_place = place.at("reflect", component);
            let asked = {
                let _reflecting = Counted::enter(&self.live.reflecting);
                let asked = self.reflect(&prompt, &reflect_place, &asking).await;
                // Booked while still counted in flight (see `evaluate`).
                if let Ok((reply, _, replayed)) = &asked {
                    self.book(gen, 0, reply.cost_usd - replayed);
                }
                asked
            };
            let (reply, cut_answers, mut replayed) = match asked {
                Ok(asked) => asked,
                Err(e) if e.stops_run() => return Err(Halted(e).into()),
                Err(e) => {
                    self.emit_in(gen, finish(ProposalOutcome::ReflectionFailed { error: e.to_string() }, None), false)?;
                    return Ok(r);
                }
            };
            let use_cut = self.project.config.reflection.use_cut_off_answers;
            let mut new_text = if is_cut_off(&reply.text, reply.truncated) && !use_cut {
                None
            } else {
                Some(extract_instruction(&reply.text))
            };
            let (mut unchanged_answers, mut empty_answers, mut reasked_with) = (Vec::new(), Vec::new(), None);
            let (mut reply, mut cut_answers) = (reply, cut_answers);
            let no_instruction = |reply: &crate::llm::ChatReply, new_text: &Option<String>| {
                new_text.as_deref().is_some_and(|t| {
                    holds_no_instruction(template_of(component), &reply.text, &parent[component])
                        || answers_an_example(t, &parent[component], &records)
                })
            };
            let echoed = new_text.as_deref().is_some_and(|t| same_words(t, &parent[component]));
            let empty = no_instruction(&reply, &new_text);
            if self.allowed.adapt && (echoed || empty) {
                // Asked the same way, a model at temperature 0 answers the same way: the re-ask
                // says what went wrong (for an echo, naming the examples the parent failed), once.
                let (note, kind, why) = if echoed {
                    let failed: Vec<usize> = scores
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| **s < self.opt.perfect_score)
                        .map(|(i, _)| i)
                        .collect();
                    (unchanged_note(&records, &failed), "unchanged", "the answer was the instruction unchanged")
                } else {
                    (NO_INSTRUCTION_NOTE.to_string(), "no_instruction", "the answer held no instruction")
                };
                // An answer with no instruction is asked again with the other built-in template, a
                // question of its own (a 1.5B model told with a note gave the parent back); with a
                // template of the user's, with the note.
                let fresh = other_template.filter(|_| !echoed).map(|t| prompt_with(builtin_template(t)));
                let how = match other_template.filter(|_| fresh.is_some()) {
                    Some(t) => format!(" (with the {} template)", t.name()),
                    None => String::new(),
                };
                self.stage_in(gen, round, Some(format!("re-asking on `{component}`: {why}{how}")));
                let again = {
                    let _reflecting = Counted::enter(&self.live.reflecting);
                    let again = match &fresh {
                        Some(other) => {
                            let messages = vec![Message::user(other.clone())];
                            self.ask_reflection(messages, &reflect_place.at("reask", "template"), &asking, true).await
                        }
                        None => {
                            let place = reflect_place.at("reask", kind);
                            self.reask((&prompt, &reply.text, &note), &place, &asking).await
                        }
                    };
                    if let Ok((again, _, again_replayed)) = &again {
                        self.book(gen, 0, again.cost_usd - again_replayed);
                    }
                    again
                };
                let again = match again {
                    Ok(again) => again,
                    Err(e) if e.stops_run() => return Err(Halted(e).into()),
                    Err(e) => {
                        let outcome = ProposalOutcome::ReflectionFailed { error: e.to_string() };
                        self.emit_in(gen, finish(outcome, None), false)?;
                        return Ok(r);
                    }
                };
                let first = std::mem::replace(&mut reply, again.0);
                reply.cost_usd += first.cost_usd;
                reply.usage.input_tokens += first.usage.input_tokens;
                reply.usage.output_tokens += first.usage.output_tokens;
                reply.cached &= first.cached;
                replayed += again.2;
                cut_answers.extend(again.1);
                if echoed { &mut unchanged_answers } else { &mut empty_answers }.push(first.text);
                // The prompt recorded is the one whose answer makes the child.
                if let Some(other) = fresh {
                    prompt = other;
                    reasked_with = other_template;
                }
                new_text = if is_cut_off(&reply.text, reply.truncated) && !use_cut {
                    None
                } else {
                    Some(extract_instruction(&reply.text))
                };
            }
            // A reply with no instruction in it is no new text (adapt = false: gepa's way, the
            // reply whole is the child's text); so is the parent given back when told to write one.
            let told_then_echoed = empty && new_text.as_deref().is_some_and(|t| same_words(t, &parent[component]));
            if self.allowed.adapt && (no_instruction(&reply, &new_text) || told_then_echoed) {
                new_text = Some(String::new());
            }
            r.cost += reply.cost_usd;
            let cut = new_text.is_none();
            let attempts = (cut_answers.len() + unchanged_answers.len() + empty_answers.len()) as u32 + 1;
            let new_text = new_text.unwrap_or_default();
            if !reasoning.is_empty() {
                reasoning.push_str("\n\n");
            }
            reasoning.push_str(&reply.text);
            self.emit_in(
                gen,
                Event::Reflection {
                    round,
                    slot: p.slot,
                    parent: p.parent,
                    component: component.clone(),
                    dataset: records,
                    prompt,
                    answer: reply.text.clone(),
                    new_text: new_text.clone(),
                    truncated: reply.truncated,
                    cost_usd: reply.cost_usd,
                    usage: reply.usage,
                    cached: reply.cached,
                    cut_answers,
                    unchanged_answers,
                    empty_answers,
                    reasked_with,
                    cost_usd_replayed: if reply.cached { 0.0 } else { replayed },
                },
                false,
            )?;
            if cut {
                // Half a prompt is never evaluated: nothing is spent on it.
                self.emit_in(gen, finish(ProposalOutcome::ReflectionTruncated { attempts }, None), false)?;
                return Ok(r);
            }
            if new_text.trim().is_empty() {
                self.emit_in(gen, finish(ProposalOutcome::EmptyAnswer, None), false)?;
                return Ok(r);
            }
            let max_growth = self.project.max_growth(component);
            if let Some(refused) =
                crate::engine::protect::refusal(component, &parent[component], &new_text, &kept, max_growth)
            {
                // Refused before any metric call is spent on it.
                child.insert(component.clone(), new_text);
                self.emit_in(gen, finish(refused, Some(child)), false)?;
                return Ok(r);
            }
            child.insert(component.clone(), new_text);
        }
        // With adapt on, a child that differs from its parent only in whitespace is the parent.
        let same = |(k, v): (&String, &String)| parent.get(k).is_some_and(|p| same_words(v, p));
        if child == *parent || (self.allowed.adapt && child.iter().all(same)) {
            self.emit_in(gen, finish(ProposalOutcome::Unchanged, None), false)?;
            return Ok(r);
        }

        if early {
            let _ = self.previews.send((gen, Preview::Reflected(child.clone())));
        }
        if self.stopped(gen) {
            return Ok(r);
        }
        self.stage_in(gen, round, Some("child on minibatch".into()));
        let (child_evals, calls, cost) = self
            .evaluate(gen, &place.at("eval", "child"), &child, &batch, EvalSplit::Train, Some((reuse_until, data)), 1)
            .await?;
        r.calls += calls;
        r.cost += cost;
        let child_sum: f64 = child_evals.iter().map(|e| e.score).sum();
        let child_scores: Vec<f64> = child_evals.iter().map(|e| e.score).collect();
        self.emit_in(
            gen,
            Event::MinibatchEvaluated {
                round,
                slot: p.slot,
                candidate_role: MinibatchRole::Child,
                evals: child_evals,
                candidate_hash: Some(candidate_hash(&child)),
            },
            false,
        )?;
        // gepa's acceptance criterion on the minibatch sums (strategies/acceptance.py).
        if self.opt.acceptance.passes(parent_sum, child_sum) {
            let changed: Vec<String> =
                child.iter().filter(|(k, v)| parent.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect();
            // The outcome (accepted, or passed but not selected) is recorded once the round has
            // compared its proposals; see `accept_per_round`.
            r.sums = (parent_sum, child_sum);
            let item = ReviewItem {
                item: 0,
                kind: ReviewKind::Mutation,
                round,
                parents: vec![p.parent],
                texts: child.clone(),
                changed: changed.clone(),
                sources: vec![],
                examples: p.minibatch.clone(),
                parent_scores: parent_evals.iter().map(|e| e.score).collect(),
                child_scores,
                reasoning,
                cost_usd: r.cost,
            };
            let cand = NewCandidate {
                texts: child,
                parents: vec![p.parent],
                origin: Origin::Mutation,
                changed,
                note: None,
                review_item: None,
            };
            r.accepted = Some((cand, item));
        } else {
            self.emit_in(gen, finish(ProposalOutcome::Rejected { parent_sum, child_sum }, Some(child)), false)?;
        }
        Ok(r)
    }

    /// Asks the reflection model. An answer cut off (at max_tokens, or with a fence left open) is
    /// asked again, up to `[reflection] truncation_retries` times, with the cut answer and a note
    /// to give only the complete new text, with `retry_max_tokens` of room (a cut answer proves
    /// the model needs more than max_tokens): the last answer, and the cut ones before it. The
    /// reply's cost and tokens are those of every attempt. Each attempt is the draw
    /// `attempt=<n>` under `place` (`…/slot=<s>/reflect=<component>`).
    pub(super) async fn reflect(
        &self,
        prompt: &str,
        place: &Draw,
        asking: &InForce,
    ) -> Result<Asked, crate::llm::LlmError> {
        self.ask_reflection(vec![Message::user(prompt.to_string())], place, asking, false).await
    }

    /// Asks the reflection model again after an answer that returned the instruction unchanged or
    /// held none: the prompt, that answer and `note`, at the re-ask temperature once the run
    /// turned to sampling (each attempt the draw `attempt=<n>` under `place`, which is
    /// `reask=unchanged` or `reask=no_instruction` under the reflection's; an answer with no
    /// instruction asked again with the other built-in template is the draw `reask=template`,
    /// asked as a question of its own, not by this). A cut-off answer is asked again as `reflect`
    /// does.
    pub(super) async fn reask(
        &self,
        (prompt, answer, note): (&str, &str, &str),
        place: &Draw,
        asking: &InForce,
    ) -> Result<Asked, crate::llm::LlmError> {
        let messages = vec![Message::user(prompt.to_string()), Message::assistant(answer), Message::user(note)];
        self.ask_reflection(messages, place, asking, true).await
    }

    /// `messages`, then a re-ask for each cut-off answer (see `reflect`); `reask`: the first
    /// request is itself a re-ask (at the re-ask temperature).
    async fn ask_reflection(
        &self,
        mut messages: Vec<Message>,
        place: &Draw,
        asking: &InForce,
        reask: bool,
    ) -> Result<Asked, crate::llm::LlmError> {
        let model = self.task.models().get("reflection")?;
        let base = messages.len();
        let ask = |messages: &[Message], attempt: usize| {
            let mut req = ChatRequest::new(messages.to_vec()).drawn(Some(place.at("attempt", attempt)));
            if let Some(t) = asking.reask_temperature.filter(|_| reask || attempt > 0) {
                req = req.at_temperature(t);
            }
            // A cut answer proves the model needs more room than max_tokens.
            if let Some(n) = asking.retry_max_tokens.filter(|_| attempt > 0) {
                req = req.with_max_tokens(n);
            }
            req
        };
        let mut reply = model.chat(&ask(&messages, 0)).await?;
        let mut cut_answers = Vec::new();
        let (mut cost, mut usage, mut cached) = (reply.cost_usd, reply.usage, reply.cached);
        let free = |r: &crate::llm::ChatReply| if r.cached { r.cost_usd } else { 0.0 };
        let mut replayed = free(&reply);
        let cfg = &self.project.config.reflection;
        while is_cut_off(&reply.text, reply.truncated)
            && !cfg.use_cut_off_answers
            && cut_answers.len() < cfg.truncation_retries as usize
        {
            messages.push(Message::assistant(reply.text.clone()));
            messages.push(Message::user(CUT_OFF_NOTE));
            let again = model.chat(&ask(&messages, cut_answers.len() + 1)).await?;
            cut_answers.push(std::mem::replace(&mut reply, again).text);
            cost += reply.cost_usd;
            usage.input_tokens += reply.usage.input_tokens;
            usage.output_tokens += reply.usage.output_tokens;
            cached &= reply.cached;
            replayed += free(&reply);
            // Only the newest exchange is kept: the cut answer and the note.
            messages.drain(base..messages.len() - 2);
        }
        Ok((crate::llm::ChatReply { cost_usd: cost, usage, cached, ..reply }, cut_answers, replayed))
    }

    /// For each minibatch example: the inputs the system saw, the output of the step(s) using the
    /// component, and the evaluator's feedback (gepa's `make_reflective_dataset`).
    pub(super) fn reflective_dataset(
        &self,
        component: &str,
        batch: &[&Example],
        evals: &[ExampleEval],
    ) -> Vec<ReflectiveRecord> {
        let cfg = &self.project.config;
        let hidden = hidden_fields(cfg);
        let placeholder = format!("{{{{{component}}}}}");
        let using_steps: Vec<usize> = if cfg.system.kind == SystemKind::Chat {
            cfg.system
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| {
                    s.user.contains(&placeholder) || s.system.as_deref().is_some_and(|t| t.contains(&placeholder))
                })
                .map(|(i, _)| i)
                .collect()
        } else {
            vec![]
        };
        batch
            .iter()
            .zip(evals)
            .map(|(ex, ev)| {
                let mut inputs: serde_json::Map<String, Value> = ex
                    .fields
                    .iter()
                    .filter(|(k, _)| *k != "id" && !hidden.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let n_steps = ev.trace.steps.len();
                // A scorer that failed says nothing of what the system said: show that as usual.
                let generated = if let (Some(err), false) = (&ev.error, ev.scorer_failed) {
                    Value::String(format!("(the system failed: {err})"))
                } else if using_steps.is_empty() || using_steps.iter().all(|&i| i + 1 >= n_steps) {
                    Value::String(ev.output.clone())
                } else {
                    let mut m = serde_json::Map::new();
                    for &i in &using_steps {
                        if let Some(st) = ev.trace.steps.get(i) {
                            // Earlier steps' outputs the component's step read are inputs too.
                            for prev in &ev.trace.steps[..i] {
                                inputs.insert(
                                    format!("{} (output of step `{}`)", prev.name, prev.name),
                                    Value::String(prev.output.clone()),
                                );
                            }
                            m.insert(format!("output of step `{}`", st.name), Value::String(st.output.clone()));
                        }
                    }
                    m.insert("final output of the system".into(), Value::String(ev.output.clone()));
                    Value::Object(m)
                };
                ReflectiveRecord { inputs, generated_outputs: generated, feedback: ev.feedback.clone() }
            })
            .collect()
    }

    /// Scores a planned merge on its val subsample; it passes when it does at least as well as the
    /// better parent there (gepa's rule).
    pub(super) async fn run_merge(
        &self,
        round: u64,
        gen: u64,
        reuse_until: u64,
        job: MergeJob,
        data: &DataChanges,
    ) -> Result<(u64, f64, Option<(NewCandidate, ReviewItem)>)> {
        let plan = job.plan;
        self.stage_in(gen, round, Some(format!("merging candidates {} and {}", plan.id1, plan.id2)));
        let examples: Vec<std::borrow::Cow<Example>> =
            plan.subsample.iter().map(|&i| data.apply(crate::project::Split::Val, &self.project.val[i])).collect();
        let examples: Vec<&Example> = examples.iter().map(|e| e.as_ref()).collect();
        let place = self.place(round).at("eval", "merge");
        let reuse = Some((reuse_until, data));
        let repeats = self.repeats(EvalSplit::Val);
        let (evals, calls, cost) =
            self.evaluate(gen, &place, &plan.texts, &examples, EvalSplit::Val, reuse, repeats).await?;
        // Each example's score is the mean of its draws (`val_repeats`), as the parents' are.
        let child_scores: Vec<f64> = crate::eval::repeats::by_example(&evals).iter().map(|d| d.mean()).collect();
        let merged_sum: f64 = child_scores.iter().sum();
        let accepted = merged_sum >= job.id1_sum.max(job.id2_sum);
        let subsample: Vec<String> = plan.subsample.iter().map(|&i| self.project.val[i].id.clone()).collect();
        self.emit_in(
            gen,
            Event::MergeAttempted {
                round,
                id1: plan.id1,
                id2: plan.id2,
                ancestor: plan.ancestor,
                sources: plan.sources.clone(),
                texts: plan.texts.clone(),
                subsample: subsample.clone(),
                id1_sum: job.id1_sum,
                id2_sum: job.id2_sum,
                merged_sum,
                accepted,
                evals,
            },
            false,
        )?;
        let passed = accepted.then(|| {
            let cand = NewCandidate {
                texts: plan.texts.clone(),
                parents: vec![plan.id1, plan.id2],
                origin: Origin::Merge,
                changed: job.changed.clone(),
                note: None,
                review_item: None,
            };
            let item = ReviewItem {
                item: 0,
                kind: ReviewKind::Merge,
                round,
                parents: vec![plan.id1, plan.id2],
                texts: plan.texts.clone(),
                changed: job.changed.clone(),
                sources: plan.sources.clone(),
                examples: subsample.clone(),
                parent_scores: job.better_scores.clone(),
                child_scores,
                reasoning: format!(
                    "merge of {} and {} (common ancestor {}): each component taken from the side that changed it",
                    plan.id1, plan.id2, plan.ancestor
                ),
                cost_usd: cost,
            };
            (cand, item)
        });
        Ok((calls, cost, passed))
    }
}

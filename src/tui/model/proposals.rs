//! Each proposal and merge attempt as the workbench shows it, folded from its round's events.

use super::Model;
use crate::engine::event::{Guidance, MinibatchRole, PlannedProposal};
use crate::engine::reflect::ReflectiveRecord;
use crate::engine::{CandidateId, Event, ProposalOutcome};
use crate::eval::ExampleEval;
use crate::project::Candidate;

/// One reflection call of a proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct ReflectionCall {
    pub component: String,
    pub dataset: Vec<ReflectiveRecord>,
    pub prompt: String,
    pub answer: String,
    pub new_text: String,
    pub truncated: bool,
    pub cost_usd: f64,
    /// Tokens of all its attempts.
    pub usage: crate::llm::Usage,
    /// Earlier answers that were cut off and asked again.
    pub cut_answers: Vec<String>,
    /// Earlier answers that returned the parent's text unchanged, asked again with a note.
    pub unchanged_answers: Vec<String>,
    /// Earlier answers that held no instruction, asked again with a note, or with this other
    /// built-in template (`prompt` is then that question's).
    pub empty_answers: Vec<String>,
    pub reasked_with: Option<crate::project::config::TemplateKind>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MergeAttempt {
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
pub struct Proposal {
    pub round: u64,
    pub slot: usize,
    /// The parent (for a merge, the first of the two).
    pub parent: CandidateId,
    pub components: Vec<String>,
    pub minibatch: Vec<String>,
    pub parent_evals: Vec<ExampleEval>,
    pub child_evals: Vec<ExampleEval>,
    pub reflections: Vec<ReflectionCall>,
    /// None while the proposal is running.
    pub outcome: Option<ProposalOutcome>,
    pub child_texts: Option<Candidate>,
    pub merge: Option<MergeAttempt>,
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

impl Proposal {
    pub fn truncated(&self) -> bool {
        self.reflections.iter().any(|r| r.truncated)
    }

    /// What this proposal used: its reflection calls, its minibatch evaluations (the parent's and
    /// the child's), and the val pass of the candidate it became (`val`).
    pub fn spend(&self, val: Option<&[ExampleEval]>) -> ProposalSpend {
        let mut s = ProposalSpend::default();
        for r in &self.reflections {
            s.reflection_usd += r.cost_usd;
            s.reflection_calls += 1 + r.cut_answers.len() + r.unchanged_answers.len() + r.empty_answers.len();
            s.reflection_tokens += r.usage.input_tokens + r.usage.output_tokens;
        }
        let tokens = |e: &ExampleEval| {
            e.trace.steps.iter().map(|st| st.usage.input_tokens + st.usage.output_tokens).sum::<u64>()
        };
        for e in self.parent_evals.iter().chain(&self.child_evals).chain(&self.guide_evals) {
            if e.cached {
                s.evals_reused += 1;
                continue;
            }
            s.evals_run += 1;
            s.eval_usd += e.cost_usd;
            s.eval_tokens += tokens(e);
        }
        for e in val.into_iter().flatten().filter(|e| !e.cached) {
            s.val_usd += e.cost_usd;
            s.val_tokens += tokens(e);
        }
        s
    }
}

/// A proposal's own use (`Proposal::spend`), priced as gepa.toml prices the models whether or
/// not a reply came from the response cache.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProposalSpend {
    pub reflection_usd: f64,
    pub reflection_calls: usize,
    pub reflection_tokens: u64,
    pub eval_usd: f64,
    pub evals_run: usize,
    pub evals_reused: usize,
    pub eval_tokens: u64,
    pub val_usd: f64,
    pub val_tokens: u64,
}

impl ProposalSpend {
    pub fn usd(&self) -> f64 {
        self.reflection_usd + self.eval_usd + self.val_usd
    }
    pub fn tokens(&self) -> u64 {
        self.reflection_tokens + self.eval_tokens + self.val_tokens
    }
}

impl Model {
    fn proposal_mut(&mut self, round: u64, slot: usize) -> Option<&mut Proposal> {
        self.proposals.iter_mut().rev().find(|p| p.round == round && p.slot == slot && p.merge.is_none())
    }

    pub(super) fn track_proposal(&mut self, ev: &Event) {
        match ev {
            Event::RoundStarted { round, proposals, .. } => {
                for PlannedProposal { slot, parent, minibatch, components, guide, adaptations, .. } in proposals {
                    self.proposals.push(Proposal {
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
                usage,
                cut_answers,
                unchanged_answers,
                empty_answers,
                reasked_with,
                ..
            } => {
                if let Some(p) = self.proposal_mut(*round, *slot) {
                    p.reflections.push(ReflectionCall {
                        component: component.clone(),
                        dataset: dataset.clone(),
                        prompt: prompt.clone(),
                        answer: answer.clone(),
                        new_text: new_text.clone(),
                        truncated: *truncated,
                        cost_usd: *cost_usd,
                        usage: *usage,
                        cut_answers: cut_answers.clone(),
                        unchanged_answers: unchanged_answers.clone(),
                        empty_answers: empty_answers.clone(),
                        reasked_with: *reasked_with,
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
                self.proposals.push(Proposal {
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
                    merge: Some(MergeAttempt {
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

    /// Proposals of the round in flight still running.
    pub fn proposals_running(&self) -> usize {
        self.proposals.iter().filter(|p| !p.committed && p.outcome.is_none() && p.merge.is_none()).count()
    }
}

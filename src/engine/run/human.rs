//! Human decisions: commands and inbox requests checked against the run, taken into a plan, deferred or refused.

use super::{Engine, NewCandidate, Shared};
use crate::engine::event::{Guidance, HumanAction, Origin, PlannedProposal, ReviewKind};
use crate::engine::handle::{Command, EngineHandle, Notice};
use crate::engine::pareto::CandidateId;
use crate::engine::state::RunState;
use crate::engine::steer::{Inbox, SteerAnswer};
use crate::project::config::{ComponentSelection, ReviewPolicy};
use crate::project::Candidate;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) fn is_guide(a: &HumanAction) -> bool {
    matches!(a, HumanAction::Guide { .. })
}

/// Reads the run folder's steering inbox a few times a second and hands each new request to the
/// planner (a line that is not a request is refused at once, with where it is).
pub(super) async fn poll_inbox(inbox: Arc<Mutex<Inbox>>, handle: EngineHandle, sh: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for cmd in inbox_commands(&inbox, &sh, &handle) {
            let _ = handle.commands.send(cmd);
        }
    }
}

/// The new requests in the inbox, as commands for the planner; a control is carried out now and
/// answered (one that waited from before the run was opened is refused).
pub(super) fn inbox_commands(inbox: &Mutex<Inbox>, sh: &Shared, handle: &EngineHandle) -> Vec<Command> {
    use crate::engine::steer::{Incoming, RunControl};
    let mut inbox = inbox.lock().expect("inbox");
    let mut out = Vec::new();
    for r in inbox.poll() {
        match r {
            Ok(Incoming::Act(req)) => out.push(Command::Request { id: req.id, action: req.action }),
            Ok(Incoming::Control { request, stale: true }) => {
                let why = format!(
                    "`{}` was sent while the run was not running; send it again now that it runs",
                    request.control.word()
                );
                let _ = inbox.answer(&SteerAnswer::refused(&request.id, why));
            }
            Ok(Incoming::Control { request, stale: false }) => {
                match request.control {
                    RunControl::Pause => handle.pause(),
                    RunControl::Resume => handle.resume(),
                    RunControl::Stop => handle.stop(),
                    RunControl::RetryNow => sh.task.models().retry_now(),
                }
                tracing::info!("steered: {} (request {})", request.control.word(), request.id);
                // The status says it before the answer does, so a screen that reads the answer
                // never reads an older status after it.
                sh.send_status();
                sh.write_status_file(inbox.dir());
                let _ = inbox.answer(&SteerAnswer { id: request.id, accepted: true, round: None, why: None });
            }
            Err(bad) => {
                if let Some(id) = &bad.id {
                    let _ = inbox.answer(&SteerAnswer::refused(id, &bad.why));
                }
                sh.notify(Notice::Warning(bad.why));
            }
        }
    }
    out
}

impl Engine {
    /// Writes the answer to a steering request (a failure is said, not fatal: the request is
    /// recorded in the log either way).
    pub(super) fn answer(&self, answer: &SteerAnswer) {
        let inbox = self.inbox.lock().expect("inbox");
        if let Err(e) = inbox.answer(answer) {
            let path = inbox.dir().join(crate::engine::steer::ANSWERS);
            self.sh.notify(Notice::Warning(format!(
                "cannot answer steering request {}: {}: {e}",
                answer.id,
                path.display()
            )));
        }
    }

    /// A decision taken but not planned now: back to the front of the queue (with its request
    /// id, when it came from the inbox).
    pub(super) fn defer(&mut self, a: HumanAction) {
        let cmd = match self.requests.iter().position(|(_, r)| *r == a) {
            Some(i) => Command::Request { id: self.requests.remove(i).0, action: a },
            None => Command::Act(a),
        };
        self.command_buf.insert(0, cmd);
    }

    /// The decisions still queued when the run finishes (a guide the budget left no room for, a
    /// request that came too late): the workbench is told, a steering request is answered.
    pub(super) fn refuse_leftovers(&mut self, reason: &str) {
        let mut cmds = std::mem::take(&mut self.command_buf);
        while let Ok(cmd) = self.commands.try_recv() {
            cmds.push(cmd);
        }
        for cmd in cmds {
            let why = format!("the run finished ({reason}) before this could be taken");
            match cmd {
                Command::Request { id, action } => {
                    self.answer(&SteerAnswer::refused(&id, &why));
                    self.sh.notify(Notice::Refused { action, why });
                }
                Command::Act(action) => self.sh.notify(Notice::Refused { action, why }),
                Command::ApproveAll => {}
            }
        }
    }

    /// Review policies in force (`ReviewConfig::in_force`).
    pub(super) fn policies(&self, view: &RunState) -> (ReviewPolicy, ReviewPolicy) {
        self.sh.project.config.review.in_force(view.policy, self.auto_approve)
    }

    /// Takes the human commands that arrived since the last plan, validated against the view.
    /// One `guide` is taken per round (it is the round's proposal); later ones wait, in order.
    pub(super) fn take_commands(&mut self, view: &mut RunState) -> Vec<HumanAction> {
        let mut cmds = std::mem::take(&mut self.command_buf);
        while let Ok(cmd) = self.commands.try_recv() {
            cmds.push(cmd);
        }
        let mut out: Vec<HumanAction> = Vec::new();
        let mut later = Vec::new();
        // Texts a decision of this batch adds: text protected with them is in the run too.
        let mut added: Vec<Candidate> = Vec::new();
        let committed = self.state.candidates.len();
        for cmd in cmds {
            let (actions, request) = match cmd {
                Command::ApproveAll => {
                    (view.review_queue.iter().map(|i| HumanAction::Approve { item: i.item }).collect(), None)
                }
                Command::Act(a) => (vec![a], None),
                Command::Request { id, action } => (vec![action], Some(id)),
            };
            for a in actions {
                if is_guide(&a) && (out.iter().any(is_guide) || !later.is_empty()) {
                    later.push(match &request {
                        Some(id) => Command::Request { id: id.clone(), action: a },
                        None => Command::Act(a),
                    });
                    continue;
                }
                match a.check_planned(view, committed, &added) {
                    Ok(()) => {
                        match &a {
                            HumanAction::AddCandidate { texts, .. } | HumanAction::Edit { texts, .. } => {
                                added.push(texts.clone())
                            }
                            HumanAction::Approve { item } => {
                                added.extend(view.review_item(*item).map(|i| i.texts.clone()))
                            }
                            _ => {}
                        }
                        view.apply_human_action(&a);
                        if let Some(id) = &request {
                            self.requests.push((id.clone(), a.clone()));
                        }
                        out.push(a);
                    }
                    Err(why) => {
                        if let Some(id) = &request {
                            self.answer(&SteerAnswer::refused(id, &why));
                        }
                        self.sh.notify(Notice::Refused { action: a, why });
                    }
                }
            }
        }
        self.command_buf = later;
        out
    }

    /// The candidate a human action asks to score on val, if any (`view`: before the action).
    pub(super) fn human_candidate(&self, view: &RunState, a: &HumanAction) -> Option<NewCandidate> {
        let s = view;
        let changed_from = |texts: &Candidate, parent: Option<&CandidateId>| -> Vec<String> {
            match parent.and_then(|p| s.candidates.get(*p)) {
                Some(p) => texts.iter().filter(|(k, v)| p.texts.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect(),
                None => texts.keys().cloned().collect(),
            }
        };
        let item = |n: u64| s.review_item(n).or_else(|| self.state.review_item(n));
        match a {
            HumanAction::Approve { item: n } => {
                let it = item(*n)?;
                let origin = if it.kind == ReviewKind::Merge { Origin::Merge } else { Origin::Mutation };
                Some(NewCandidate {
                    texts: it.texts.clone(),
                    parents: it.parents.clone(),
                    origin,
                    changed: it.changed.clone(),
                    note: Some(format!("approved by a person (review item {n})")),
                    review_item: Some(*n),
                })
            }
            HumanAction::Edit { item: n, texts } => {
                let it = item(*n)?;
                Some(NewCandidate {
                    texts: texts.clone(),
                    parents: it.parents.clone(),
                    origin: Origin::Human,
                    changed: changed_from(texts, it.parents.first()),
                    note: Some(format!("edited by a person before approval (review item {n})")),
                    review_item: Some(*n),
                })
            }
            HumanAction::AddCandidate { texts, parents, origin, note } => Some(NewCandidate {
                texts: texts.clone(),
                parents: parents.clone(),
                origin: *origin,
                changed: changed_from(texts, parents.first()),
                note: Some(note.clone()),
                review_item: None,
            }),
            HumanAction::Veto { .. }
            | HumanAction::SetPolicy { .. }
            | HumanAction::ExcludeExample { .. }
            | HumanAction::FixExample { .. }
            | HumanAction::Guide { .. }
            | HumanAction::Protect { .. } => None,
        }
    }

    /// The one proposal of a round a person asked for (`guide`): its candidate as the parent,
    /// the next minibatch as usual, the component asked for (else the parent's round robin).
    pub(super) fn guided_proposal(&self, view: &RunState, guide: &HumanAction) -> Option<PlannedProposal> {
        let HumanAction::Guide { candidate, note, example, component } = guide else { return None };
        let opt = &self.sh.opt;
        let train: Vec<String> = self.sh.project.train.iter().map(|e| e.id.clone()).collect();
        view.candidates.get(*candidate)?;
        let minibatch_index = view.minibatches_drawn;
        // Excluded train examples are not drawn (see data_fixes.rs).
        let minibatch = view.minibatch_ids(opt.seed, &train, opt.minibatch_size, minibatch_index);
        let components = match (component, opt.component_selection) {
            (Some(c), _) => vec![c.clone()],
            (None, ComponentSelection::All) => view.components.clone(),
            (None, ComponentSelection::RoundRobin) => {
                let next = view.next_component.get(*candidate).copied().unwrap_or(0);
                vec![view.components.get(next % view.components.len().max(1))?.clone()]
            }
        };
        Some(PlannedProposal {
            slot: 0,
            parent: *candidate,
            minibatch_index,
            minibatch,
            components,
            guide: Some(Guidance { note: note.trim().to_string(), example: example.clone() }),
            adaptations: view.adapt.steps.len(),
        })
    }
}

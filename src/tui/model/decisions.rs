//! A person's decisions as the workbench tracks them: sent, applied in the round in flight, committed.

use super::Model;
use crate::engine::event::HumanAction;
use crate::engine::Event;
use crate::engine::RunState;
use crate::project::config::ReviewPolicy;
use crate::project::Candidate;

impl Model {
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

    /// Why item `item` takes no decision from here now, when a decision is already on its way to
    /// the engine or applied in the round in flight (the committed state still lists it).
    pub fn item_taken(&self, item: u64) -> Option<String> {
        let (round, a) = self.item_decision(item)?;
        let when = match round {
            None => "on its way to the engine".to_string(),
            Some(r) => format!("applied in round {r}"),
        };
        Some(format!("item {item} already has a decision ({}) {when}", a.word()))
    }

    /// The engine's check of decision `a` (`HumanAction::check`) against the state it will plan
    /// from: the committed state with the decisions sent and those of the round in flight taken.
    pub fn check_decision(&self, a: &HumanAction) -> Result<(), String> {
        let mut view: RunState = self.state.clone();
        let mut added: Vec<Candidate> = Vec::new();
        let earlier = self.uncommitted_actions().map(|(_, b)| b).chain(&self.sent);
        for b in earlier {
            match b {
                HumanAction::AddCandidate { texts, .. } | HumanAction::Edit { texts, .. } => added.push(texts.clone()),
                HumanAction::Approve { item } => added.extend(view.review_item(*item).map(|i| i.texts.clone())),
                _ => {}
            }
            view.apply_human_action(b);
        }
        a.check(&view, &added)
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
}

/// The review item a decision is about, if any.
pub fn action_item(a: &HumanAction) -> Option<u64> {
    match a {
        HumanAction::Approve { item } | HumanAction::Veto { item, .. } | HumanAction::Edit { item, .. } => Some(*item),
        _ => None,
    }
}

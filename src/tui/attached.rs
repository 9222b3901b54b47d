//! What the workbench keeps of a run another process runs: who holds it, the decisions sent
//! from this screen and the run's answers. The model holds it and views draw it; `remote` does
//! the following and sending.

use crate::engine::event::HumanAction;
use crate::engine::steer::{RunControl, SteerAnswer};
use crate::store::LockHolder;

/// How many decisions the attached screen remembers (the newest are shown).
const KEPT_REQUESTS: usize = 50;

/// What the model keeps of the process the screen is attached to.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    /// Who runs it (from the lock file).
    pub holder: LockHolder,
    /// Decisions sent from this screen, oldest first, with the run's answers.
    pub requests: Vec<SentRequest>,
    /// The process let go of the run: what became of it.
    pub ended: Option<String>,
}

/// One decision sent through the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct SentRequest {
    pub id: String,
    /// "approval of item 3", "pause".
    pub what: String,
    pub action: Option<HumanAction>,
    pub control: Option<RunControl>,
    pub answer: Option<SteerAnswer>,
}

impl SentRequest {
    /// "approval of item 3: sent → taken (round 7)", "… sent → refused (no pending item 3)".
    pub fn line(&self) -> String {
        let then = match &self.answer {
            None => String::new(),
            Some(a) if a.accepted => match a.round {
                Some(r) => format!(" → taken (round {r})"),
                None => " → taken".into(),
            },
            Some(a) => format!(
                " → refused ({})",
                crate::text::sanitize(a.why.as_deref().unwrap_or("no reason given")).replace('\n', " ")
            ),
        };
        format!("{}: sent{then}", self.what)
    }
}

impl Remote {
    pub fn new(holder: LockHolder) -> Remote {
        Remote { holder, requests: Vec::new(), ended: None }
    }

    /// "attached to pid 4242 on build-1 since 2026-12-07 09:12 UTC".
    pub fn header(&self) -> String {
        format!("attached to {}", self.holder.describe())
    }

    /// The last pause (true) or resume (false) sent from here that the run has not answered yet.
    pub fn pending_pause(&self) -> Option<bool> {
        self.requests.iter().rev().filter(|q| q.answer.is_none()).find_map(|q| match q.control {
            Some(RunControl::Pause) => Some(true),
            Some(RunControl::Resume) => Some(false),
            _ => None,
        })
    }

    pub(super) fn sent(&mut self, id: String, what: String, action: Option<HumanAction>, control: Option<RunControl>) {
        self.requests.push(SentRequest { id, what, action, control, answer: None });
        if self.requests.len() > KEPT_REQUESTS {
            self.requests.remove(0);
        }
    }
}

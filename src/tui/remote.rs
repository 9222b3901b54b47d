//! A run another process is running (a `gepa-tui run --headless` in tmux, on a server, in CI):
//! the workbench *attaches* to it through files. It follows `events.jsonl` as it grows, folding
//! only the lines that are new (a line still being written waits for its end), reads the
//! `status.json` the engine rewrites about once a second, and sends every decision through the
//! run's inbox exactly as `gepa-tui steer` does, showing each as sent, then taken or refused from
//! the run's answers. When the process lets go of the run's lock, the screen says so and is a
//! browse of the run as it was left.

use crate::engine::event::HumanAction;
use crate::engine::steer::{self, RunControl, SteerAnswer};
use crate::engine::{Event, Notice, RunState, Status};
use crate::store::{LockHolder, RunLock, Tail};
use crate::tui::app::App;
pub use crate::tui::attached::{Remote, SentRequest};
use crate::tui::outbox::EngineCommand;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Follows the files of a run another process runs.
pub struct Follower {
    run_dir: PathBuf,
    events: Tail,
    answers: Tail,
    /// The last `status.json` read, as bytes (it is folded again only when it changes).
    status: Vec<u8>,
    ended: bool,
}

impl Follower {
    /// Starts following the run in `run_dir` if a live process holds it: its holder, and the
    /// events so far (whole lines).
    pub fn open(run_dir: &Path) -> Result<Option<(Follower, LockHolder, Vec<Event>)>> {
        let Some(holder) = RunLock::holder(run_dir) else { return Ok(None) };
        crate::store::refuse_symlinks(run_dir)?;
        let mut f = Follower {
            run_dir: run_dir.to_path_buf(),
            events: Tail::new(&run_dir.join("events.jsonl")),
            answers: Tail::new(&run_dir.join(steer::ANSWERS)),
            status: Vec::new(),
            ended: false,
        };
        let events: Vec<Event> = f.events.read_new()?;
        if let Err((i, why)) = RunState::check_events(&events) {
            bail!("{}: event {} ({}) does not fit the run: {why}", f.events.path().display(), i + 1, events[i].name());
        }
        // Answers to requests sent before this screen came are not its own.
        let _ = f.answers.new_lines();
        Ok(Some((f, holder, events)))
    }

    /// The live status, when the file is there and changed since the last read.
    pub fn status(&mut self) -> Option<Status> {
        let bytes = std::fs::read(self.run_dir.join(crate::engine::STATUS_FILE)).ok()?;
        if bytes == self.status {
            return None;
        }
        let s = serde_json::from_slice(&bytes).ok()?;
        self.status = bytes;
        Some(s)
    }

    /// Folds what the run wrote since the last call into the screen: new events, the live
    /// status, the answers to decisions sent from here; and, once its process has let go, says
    /// so (the screen is then a browse). Returns whether anything changed.
    pub fn poll(&mut self, app: &mut App) -> bool {
        if self.ended {
            return false;
        }
        // Asked before reading, so nothing written before the process let go is missed.
        let gone = RunLock::holder(&self.run_dir).is_none();
        let mut changed = false;
        match self.events.read_new::<Event>() {
            Ok(evs) => {
                for ev in evs {
                    app.on_notice(Notice::Event(Box::new(ev)));
                    changed = true;
                }
            }
            Err(e) => {
                app.model.on_notice(Notice::Warning(format!("{e}; the screen stops following the run")));
                self.end(app, None);
                return true;
            }
        }
        if let Some(s) = self.status() {
            app.model.set_paused(s.paused);
            app.on_notice(Notice::Status(s));
            changed = true;
        }
        changed |= self.take_answers(app);
        if gone {
            let finished = app.model.state.finished.clone();
            self.end(app, finished);
            changed = true;
        }
        changed
    }

    fn take_answers(&mut self, app: &mut App) -> bool {
        let answers: Vec<SteerAnswer> = self.answers.read_new().unwrap_or_default();
        let mut changed = false;
        for a in answers {
            let Some(remote) = app.model.remote.as_mut() else { return changed };
            let Some(req) = remote.requests.iter_mut().find(|r| r.id == a.id) else { continue };
            req.answer = Some(a.clone());
            let line = req.line();
            let (action, control) = (req.action.clone(), req.control);
            if let (false, Some(action)) = (a.accepted, action) {
                app.model.on_notice(Notice::Refused { action, why: a.why.clone().unwrap_or_default() });
            }
            // Taken, a pause holds from now (the status file says so too, from its next rewrite).
            match (a.accepted, control) {
                (true, Some(RunControl::Pause)) => _ = app.model.set_paused(true),
                (true, Some(RunControl::Resume)) => _ = app.model.set_paused(false),
                _ => {}
            }
            app.model.version += 1;
            app.flash = Some(line);
            changed = true;
        }
        changed
    }

    fn end(&mut self, app: &mut App, finished: Option<String>) {
        self.ended = true;
        app.model.live = None;
        app.model.set_paused(false);
        app.model.engine_ended();
        if let Some(remote) = app.model.remote.as_mut() {
            let who = format!("pid {}", remote.holder.pid);
            remote.ended = Some(match finished {
                Some(reason) => {
                    format!("the run finished ({}); {who} has let go of it", crate::text::sanitize(&reason))
                }
                None => format!("{who} let go of the run before it finished: it is resumable"),
            });
        }
        app.model.version += 1;
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Carries out what the screen asked: a decision or a control goes into the run's inbox and
    /// is shown as sent until the run answers.
    pub fn send(&mut self, app: &mut App, cmd: EngineCommand) {
        let (what, action, control) = match cmd {
            EngineCommand::Act(a) => (a.noun(), Some(a), None),
            EngineCommand::Pause => ("pause".to_string(), None, Some(RunControl::Pause)),
            EngineCommand::Resume => ("resume".to_string(), None, Some(RunControl::Resume)),
            EngineCommand::RetryNow => ("retry now".to_string(), None, Some(RunControl::RetryNow)),
            // One approval per item still waiting with one sent from here (as `Outbox` marked them).
            EngineCommand::ApproveAll => {
                let items: Vec<u64> = app.model.state.review_queue.iter().map(|i| i.item).collect();
                for item in items {
                    let a = HumanAction::Approve { item };
                    let already = app
                        .model
                        .remote
                        .as_ref()
                        .is_some_and(|r| r.requests.iter().any(|q| q.action.as_ref() == Some(&a)));
                    if app.model.sent.contains(&a) && !already {
                        self.send(app, EngineCommand::Act(a));
                    }
                }
                return;
            }
        };
        let sent = match (&action, control) {
            (Some(a), _) => steer::send(&self.run_dir, a.clone()),
            (None, Some(c)) => steer::send_control(&self.run_dir, c),
            (None, None) => return,
        };
        match sent {
            Ok(id) => {
                tracing::info!("sent to the run's inbox: {what} (request {id})");
                if let Some(r) = app.model.remote.as_mut() {
                    r.sent(id, what, action, control);
                }
            }
            Err(e) => {
                let why = format!("cannot write to {}: {e}", self.run_dir.join(steer::INBOX).display());
                match action {
                    Some(action) => app.model.on_notice(Notice::Refused { action, why: why.clone() }),
                    None => app.model.on_notice(Notice::Warning(why.clone())),
                }
                app.flash = Some(why);
            }
        }
        app.model.version += 1;
    }
}

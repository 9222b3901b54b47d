//! Steering a live run from outside it (`gepa-tui steer`): the run folder's inbox.
//!
//! A request is one line appended to `<run>/steer.jsonl`: `{"id": …, "action": "guide", …}`,
//! an id and a `HumanAction` as the run log writes it. Writers append under a lock on the file,
//! each line in one write. The engine reads the file every moment it runs (only whole lines),
//! hands each new request to its planner as the workbench's decisions are handed, and checks it
//! there against the run as it is when the next round is planned: a request it takes is recorded
//! as a `human` event carrying the request's id, one it refuses is not recorded. Either way the
//! answer is appended to `<run>/steer-acks.jsonl`: `{"id": …, "accepted": true, "round": N}` or
//! `{"id": …, "accepted": false, "why": "…"}`, which `gepa-tui steer` waits for.
//!
//! A request already recorded (its id is in a `human` event of the log) is never taken again,
//! even when a crash came between the event and its answer: a resumed run answers it then. A
//! request sent while the run is stopped waits in the inbox for the resume.
//!
//! Any `HumanAction` travels this way, so a new kind of steering is a new subcommand that builds
//! its action (see `cli/steer.rs`); nothing here changes. So do the controls of the process
//! (`{"id": …, "action": "pause"}`, `resume`, `stop`, `retry_now`): they are carried out the moment
//! they are read and answered `taken` with no round. A control that was waiting in the inbox when
//! the run was opened is refused, not obeyed (a `stop` sent to a stopped run must not stop its
//! resume).

use super::event::{Event, HumanAction};
use super::state::CommitBuffer;
use crate::store::events::no_follow;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The inbox and the answers, in the run folder.
pub const INBOX: &str = "steer.jsonl";
pub const ANSWERS: &str = "steer-acks.jsonl";

/// One request in the inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteerRequest {
    pub id: String,
    #[serde(flatten)]
    pub action: HumanAction,
}

/// What the process running a run does at once, asked through the inbox (the workbench's
/// space and retry key, `gepa-tui steer pause|resume|stop`). Not recorded in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RunControl {
    /// Start nothing new; calls in flight finish and are recorded.
    Pause,
    Resume,
    /// Stop now, resumable (the rounds in flight are redone on resume).
    Stop,
    /// Ask the models that are not answering again now.
    RetryNow,
}

impl RunControl {
    pub fn word(self) -> &'static str {
        match self {
            RunControl::Pause => "pause",
            RunControl::Resume => "resume",
            RunControl::Stop => "stop",
            RunControl::RetryNow => "retry now",
        }
    }
}

/// One control request in the inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlRequest {
    pub id: String,
    #[serde(flatten)]
    pub control: RunControl,
}

/// A line of the inbox, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A decision, for the planner.
    Act(SteerRequest),
    /// A control, carried out now; `stale`: it was in the inbox before the run was opened.
    Control { request: ControlRequest, stale: bool },
}

/// The run's answer to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteerAnswer {
    pub id: String,
    pub accepted: bool,
    /// The round it was recorded with (accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u64>,
    /// Why it was not taken (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl SteerAnswer {
    pub fn taken(id: &str, round: u64) -> SteerAnswer {
        SteerAnswer { id: id.to_string(), accepted: true, round: Some(round), why: None }
    }
    pub fn refused(id: &str, why: impl Into<String>) -> SteerAnswer {
        SteerAnswer { id: id.to_string(), accepted: false, round: None, why: Some(why.into()) }
    }
}

/// A new request id: unique enough across processes (time, process, a random part).
pub fn new_request_id() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{ms}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

/// Appends one line to a file in the run folder, under an exclusive lock on it (writers of the
/// inbox may be several `gepa-tui steer` at once), in one write, made durable.
fn append_line(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = no_follow(OpenOptions::new().create(true).append(true)).open(path)?;
    f.lock()?;
    let done = f.write_all(&line).and_then(|()| f.sync_data());
    let _ = f.unlock();
    done
}

/// Sends `action` to the run in `run_dir`: appends it to the inbox; returns the request's id.
pub fn send(run_dir: &Path, action: HumanAction) -> std::io::Result<String> {
    crate::store::refuse_symlinks(run_dir).map_err(std::io::Error::other)?;
    let req = SteerRequest { id: new_request_id(), action };
    append_line(&run_dir.join(INBOX), &req)?;
    Ok(req.id)
}

/// Sends a control to the process running the run in `run_dir`; returns the request's id.
pub fn send_control(run_dir: &Path, control: RunControl) -> std::io::Result<String> {
    crate::store::refuse_symlinks(run_dir).map_err(std::io::Error::other)?;
    let req = ControlRequest { id: new_request_id(), control };
    append_line(&run_dir.join(INBOX), &req)?;
    Ok(req.id)
}

/// Every answer written so far, by request id (the last for an id wins).
pub fn answers(run_dir: &Path) -> BTreeMap<String, SteerAnswer> {
    let text = std::fs::read_to_string(run_dir.join(ANSWERS)).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str::<SteerAnswer>(l).ok()).map(|a| (a.id.clone(), a)).collect()
}

/// The ids of requests the log records as taken, with the round of their `human` event: in a
/// committed round, or in one still to be redone on resume. One recorded only in a round that was
/// dropped (`round_voided`, or left unfinished before a `resumed`) is not: the engine takes it
/// again when that round is planned again (on resume, from the log: `recovered_rounds`), and a
/// crash before then must not lose it.
pub fn recorded_requests(events: &[Event]) -> BTreeMap<String, u64> {
    let mut commits = CommitBuffer::default();
    let mut out = BTreeMap::new();
    let mut id_of = |e: &Event| {
        if let Event::Human { round, request: Some(id), .. } = e {
            out.insert(id.clone(), *round);
        }
    };
    for ev in events {
        for e in commits.feed(ev, ev) {
            id_of(e);
        }
    }
    for e in commits.pending() {
        id_of(e);
    }
    out
}

/// A line of the inbox that is not a request.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRequest {
    /// Its id, when that much could be read (the refusal is answered to it).
    pub id: Option<String>,
    pub why: String,
}

/// The engine's side of the inbox: reads new requests, writes answers.
pub struct Inbox {
    dir: PathBuf,
    lines: crate::store::Tail,
    /// Lines in the inbox when the run was opened: a control among them is stale.
    lines_at_open: usize,
    /// Requests answered or recorded already: never handed over again.
    done: HashSet<String>,
}

impl Inbox {
    /// The inbox of a run whose log holds `events`: requests answered, or recorded in the log,
    /// are done; one recorded but not answered (a crash between the two) is answered now.
    pub fn open(run_dir: &Path, events: &[Event]) -> Inbox {
        let answered = answers(run_dir);
        let mut done: HashSet<String> = answered.keys().cloned().collect();
        for (id, round) in recorded_requests(events) {
            if !answered.contains_key(&id) {
                let _ = append_line(&run_dir.join(ANSWERS), &SteerAnswer::taken(&id, round));
            }
            done.insert(id);
        }
        let lines_at_open =
            std::fs::read(run_dir.join(INBOX)).map(|b| b.iter().filter(|c| **c == b'\n').count()).unwrap_or(0);
        Inbox { dir: run_dir.to_path_buf(), lines: crate::store::Tail::new(&run_dir.join(INBOX)), lines_at_open, done }
    }

    /// Requests appended since the last call (whole lines only), not yet done.
    pub fn poll(&mut self) -> Vec<Result<Incoming, BadRequest>> {
        let Ok(lines) = self.lines.new_lines() else { return vec![] };
        let mut out = Vec::new();
        for (n, text) in lines {
            match serde_json::from_str::<SteerRequest>(&text) {
                Ok(req) if self.done.insert(req.id.clone()) => out.push(Ok(Incoming::Act(req))),
                Ok(_) => {}
                Err(e) => match serde_json::from_str::<ControlRequest>(&text) {
                    Ok(request) if self.done.insert(request.id.clone()) => {
                        out.push(Ok(Incoming::Control { request, stale: n <= self.lines_at_open }))
                    }
                    Ok(_) => {}
                    Err(_) => {
                        let id = serde_json::from_str::<serde_json::Value>(&text)
                            .ok()
                            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(String::from))
                            .filter(|id| self.done.insert(id.clone()));
                        out.push(Err(BadRequest { id, why: format!("{}:{n}: not a steering request: {e}", INBOX) }));
                    }
                },
            }
        }
        out
    }

    /// A request the engine takes again from its log (recorded in a round that was dropped): it
    /// is not handed over a second time.
    pub fn taken_again(&mut self, id: &str) {
        self.done.insert(id.to_string());
    }

    /// Writes the answer to a request. Errors are the caller's to report.
    pub fn answer(&self, answer: &SteerAnswer) -> std::io::Result<()> {
        append_line(&self.dir.join(ANSWERS), answer)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guide(note: &str) -> HumanAction {
        HumanAction::Guide { candidate: 1, note: note.into(), example: None, component: None }
    }

    #[test]
    fn requests_are_read_once_whole_and_answered() {
        let dir = tempfile::tempdir().unwrap();
        let mut inbox = Inbox::open(dir.path(), &[]);
        assert!(inbox.poll().is_empty());
        let a = send(dir.path(), guide("first")).unwrap();
        // A line still being written is not read yet.
        let mut f = OpenOptions::new().append(true).open(dir.path().join(INBOX)).unwrap();
        f.write_all(br#"{"id":"half","action":"pro"#).unwrap();
        let got = inbox.poll();
        assert_eq!(got, vec![Ok(Incoming::Act(SteerRequest { id: a.clone(), action: guide("first") }))]);
        f.write_all(b"tect\",\"component\":\"c\",\"text\":\"t\"}\nnot json\n{\"id\":\"x\",\"action\":\"fly\"}\n")
            .unwrap();
        let got = inbox.poll();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[0],
            Ok(Incoming::Act(SteerRequest {
                id: "half".into(),
                action: HumanAction::Protect { component: "c".into(), text: "t".into() }
            }))
        );
        assert!(matches!(&got[1], Err(BadRequest { id: None, why }) if why.contains("steer.jsonl:3")), "{got:?}");
        assert!(matches!(&got[2], Err(BadRequest { id: Some(id), .. }) if id == "x"), "{got:?}");
        assert!(inbox.poll().is_empty());

        inbox.answer(&SteerAnswer::taken(&a, 4)).unwrap();
        assert_eq!(answers(dir.path())[&a], SteerAnswer::taken(&a, 4));
        // A new engine on the same run skips what was answered.
        let mut again = Inbox::open(dir.path(), &[]);
        let ids: Vec<String> = again
            .poll()
            .into_iter()
            .filter_map(|r| match r {
                Ok(Incoming::Act(r)) => Some(r.id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, vec!["half".to_string()]);
    }

    /// A control is read as one; one waiting from before the run was opened is stale.
    #[test]
    fn controls_are_read_and_old_ones_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let old = send_control(dir.path(), RunControl::Stop).unwrap();
        let mut inbox = Inbox::open(dir.path(), &[]);
        let new = send_control(dir.path(), RunControl::Pause).unwrap();
        assert_eq!(
            inbox.poll(),
            vec![
                Ok(Incoming::Control { request: ControlRequest { id: old, control: RunControl::Stop }, stale: true }),
                Ok(Incoming::Control { request: ControlRequest { id: new, control: RunControl::Pause }, stale: false }),
            ]
        );
        let line = std::fs::read_to_string(dir.path().join(INBOX)).unwrap();
        assert!(line.lines().nth(1).unwrap().contains("\"action\":\"pause\""), "{line}");
    }

    /// Recorded in the log but never answered (killed in between): not taken again, and answered.
    /// Recorded only in a round that was dropped (and not yet planned again): taken again.
    #[test]
    fn a_request_recorded_before_a_crash_is_answered_not_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let id = send(dir.path(), guide("once")).unwrap();
        let events = vec![Event::Human { round: 7, action: guide("once"), request: Some(id.clone()) }];
        let mut inbox = Inbox::open(dir.path(), &events);
        assert!(inbox.poll().is_empty());
        assert_eq!(answers(dir.path())[&id], SteerAnswer::taken(&id, 7));

        let dir = tempfile::tempdir().unwrap();
        let id = send(dir.path(), guide("again")).unwrap();
        let dropped = vec![
            Event::Human { round: 7, action: guide("again"), request: Some(id.clone()) },
            Event::RoundVoided { round: 7 },
        ];
        let mut inbox = Inbox::open(dir.path(), &dropped);
        assert_eq!(inbox.poll(), vec![Ok(Incoming::Act(SteerRequest { id: id.clone(), action: guide("again") }))]);
        assert!(answers(dir.path()).is_empty());
    }
}

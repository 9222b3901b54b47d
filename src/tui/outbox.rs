//! The workbench's outbox: what it asks of the engine, in one place. Each decision is checked (is
//! the run live, does the item already have a decision, and the engine's own `HumanAction::check`),
//! sent as an `EngineCommand`, and remembered in `Model::sent` until the engine records it. Every function
//! returns the line the status bar shows; an `Err` is why nothing was sent.

use crate::engine::event::HumanAction;
use crate::engine::{CandidateId, Origin};
use crate::project::config::ReviewPolicy;
use crate::project::{Candidate, Split};
use crate::tui::model::Model;
use crate::tui::views::editor::{EditSession, EditTarget};

/// What the workbench asks of the engine; the event loop carries it out.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineCommand {
    Pause,
    Resume,
    /// A decision, applied by the engine at the start of its next round.
    Act(HumanAction),
    ApproveAll,
    /// Probe the models that are not answering now.
    RetryNow,
}

/// A request for the event loop: suspend the terminal and edit these texts in `$EDITOR`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalEdit {
    pub target: EditTarget,
    pub names: Vec<String>,
    pub texts: Candidate,
}

/// What came back from `$EDITOR`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalOutcome {
    /// The files' texts as read back (the originals where a file could not be read).
    pub texts: Candidate,
    /// Why the edit did not go through cleanly (the editor failed, a file vanished).
    pub error: Option<String>,
}

/// The model and the queue of commands for the engine, borrowed together.
pub struct Outbox<'a> {
    pub model: &'a mut Model,
    pub commands: &'a mut Vec<EngineCommand>,
}

impl Outbox<'_> {
    /// Sends a decision to the engine, when the engine's own check (`HumanAction::check`) takes
    /// it against the state the engine will plan from, and remembers it until the engine records
    /// it. Err: why it was not sent, in the engine's words.
    pub fn send(&mut self, action: HumanAction) -> Result<String, String> {
        self.model.check_decision(&action).map_err(|why| format!("{why}; nothing was sent"))?;
        let what = action.noun();
        self.commands.push(EngineCommand::Act(action.clone()));
        self.model.sent.push(action);
        self.model.version += 1;
        Ok(format!("{what} sent; {}", self.model.when_applied()))
    }

    /// Pause or resume a live engine. The model's pause state follows the engine handle once the
    /// event loop has carried the command out, so nothing here writes it.
    pub fn toggle_pause(&mut self) -> String {
        if !self.model.is_live() {
            return if self.model.state.finished.is_some() {
                "this run is finished; there is nothing to pause".into()
            } else {
                "no engine is running in this window".into()
            };
        }
        // A pause or resume still queued (keys in one burst) counts as done.
        let queued = self.commands.iter().rev().find_map(|c| match c {
            EngineCommand::Pause => Some(true),
            EngineCommand::Resume => Some(false),
            _ => None,
        });
        // Attached, one sent through the inbox and not answered yet counts as done too.
        let unanswered = self.model.remote.as_ref().and_then(|r| r.pending_pause());
        if queued.or(unanswered).unwrap_or(self.model.paused()) {
            self.commands.push(EngineCommand::Resume);
            "resumed".into()
        } else {
            self.commands.push(EngineCommand::Pause);
            "pausing: calls in flight finish, nothing new starts".into()
        }
    }

    /// `r`: the engine is holding work for a model that does not answer; ask it again now.
    pub fn retry_now(&mut self) -> String {
        let waiting: Vec<String> = match self.model.live.as_ref().filter(|_| self.model.is_live()) {
            Some(s) => s.outages.iter().map(|o| format!("\"{}\"", o.model)).collect(),
            None => vec![],
        };
        if waiting.is_empty() {
            return "every model is answering; there is nothing to retry".into();
        }
        self.commands.push(EngineCommand::RetryNow);
        format!("trying model {} again now", waiting.join(", "))
    }

    /// Approves every pending item that has no decision yet.
    pub fn approve_all(&mut self) -> Result<String, String> {
        if let Some(why) = self.model.why_not_live("approving") {
            return Err(why);
        }
        let m = &*self.model;
        let items: Vec<u64> =
            m.state.review_queue.iter().map(|i| i.item).filter(|n| m.item_decision(*n).is_none()).collect();
        if items.is_empty() {
            return Err("nothing waits for a decision".into());
        }
        self.commands.push(EngineCommand::ApproveAll);
        for item in &items {
            self.model.sent.push(HumanAction::Approve { item: *item });
        }
        self.model.version += 1;
        Ok(format!("approval of {} item(s) sent; {}", items.len(), self.model.when_applied()))
    }

    /// Switches mutations (or merges) between auto and approve; `approve_all_keys` names the key
    /// that approves what still waits.
    pub fn toggle_policy(&mut self, mutations: bool, approve_all_keys: &str) -> Result<String, String> {
        if let Some(why) = self.model.why_not_live("changing the review policy") {
            return Err(why);
        }
        if self.model.auto_approve {
            return Err("this run was started with --auto-approve: every item is approved as it comes; \
                 start it again without --auto-approve to review"
                .into());
        }
        let flip = |p: ReviewPolicy| if p == ReviewPolicy::Auto { ReviewPolicy::Approve } else { ReviewPolicy::Auto };
        let (m, g) = self.model.review_policy();
        let (m, g) = if mutations { (flip(m), g) } else { (m, flip(g)) };
        let mut msg = self.send(HumanAction::SetPolicy { mutations: m, merges: g })?;
        let pending = self.model.state.review_queue.len();
        if pending > 0 && (m == ReviewPolicy::Auto || g == ReviewPolicy::Auto) {
            msg.push_str(&format!("; the {pending} pending item(s) still wait ({approve_all_keys} approves them all)"));
        }
        Ok(msg)
    }

    /// Sends what an edit produced: its texts with keep markers taken out, then a `protect` for
    /// each span they marked. Err: why nothing was sent (the caller keeps the texts).
    pub fn submit_edit(&mut self, target: EditTarget, texts: Candidate) -> Result<String, String> {
        if !self.model.can_act() {
            return Err("the engine is not running any more; nothing was sent".into());
        }
        let (texts, protected) = crate::project::markers::strip_candidate(&texts)
            .map_err(|(component, e)| format!("{component}, {e}; nothing was sent"))?;
        if let EditTarget::HandEdit { parent } = target {
            let same = self.model.state.candidates.get(parent).is_some_and(|c| c.texts == texts);
            if same && !protected.is_empty() {
                // Only keep markers were added: the text stays, the spans are protected.
                return match self.protect_new(protected) {
                    0 => Err("that text is protected already; nothing was sent".into()),
                    n => Ok(format!("{n} protected span(s) of #{parent} sent; {}", self.model.when_applied())),
                };
            }
        }
        let mut msg = self.submit_plain_edit(target, texts)?;
        let n = self.protect_new(protected);
        if n > 0 {
            msg.push_str(&format!("; {n} protected span(s) sent"));
        }
        Ok(msg)
    }

    fn submit_plain_edit(&mut self, target: EditTarget, texts: Candidate) -> Result<String, String> {
        match target {
            EditTarget::ReviewItem { item } => {
                if let Some(why) = self.model.item_taken(item) {
                    return Err(why);
                }
                if self.model.state.review_item(item).is_some_and(|it| it.texts == texts) {
                    self.send(HumanAction::Approve { item })?;
                    return Ok(format!(
                        "nothing was changed: item {item} approved as it is; {}",
                        self.model.when_applied()
                    ));
                }
                self.send(HumanAction::Edit { item, texts })
            }
            EditTarget::HandEdit { parent } => {
                let same = self.model.state.candidates.get(parent).is_some_and(|c| c.texts == texts);
                if same {
                    return Err(format!("the texts are those of #{parent}; change something first (esc leaves)"));
                }
                self.send(HumanAction::AddCandidate {
                    texts,
                    parents: vec![parent],
                    origin: Origin::Human,
                    note: "edited by hand".into(),
                })
            }
        }
    }

    /// What `$EDITOR` gave back: sent as the edit when it went well; otherwise (or when nothing
    /// was changed) the texts are kept for the inline editor, so nothing typed is lost. Returns
    /// the editor to open, if any, and the status line; `save` names the editor's send key.
    pub fn external_done(
        &mut self,
        request: ExternalEdit,
        outcome: ExternalOutcome,
        save: &str,
    ) -> (Option<EditSession>, String) {
        let keep = || EditSession::with_texts(request.target, &request.names, &request.texts, &outcome.texts);
        if let Some(err) = &outcome.error {
            return (Some(keep()), format!("{err}; your text is in the editor here ({save} sends it)"));
        }
        if outcome.texts == request.texts {
            return (None, "nothing was changed in the editor; nothing sent".into());
        }
        match self.submit_edit(request.target, outcome.texts.clone()) {
            Ok(msg) => (None, msg),
            Err(e) => (Some(keep()), format!("{e}; your text is in the editor here")),
        }
    }

    /// A reflection on `candidate` guided by the note typed, with the example the person was
    /// looking at (split, index in its ids). Err: why the prompt stays open (no note yet).
    pub fn guide(
        &mut self,
        candidate: CandidateId,
        example: Option<(crate::project::Split, usize)>,
        typed: &str,
    ) -> Result<String, String> {
        if let Some(why) = self.model.why_not_live("guiding a reflection") {
            return Ok(why);
        }
        let note = typed.trim();
        let example = example.and_then(|(split, i)| {
            Some(crate::engine::event::GuideExample { split, id: self.model.example_id(split, i)?.to_string() })
        });
        self.send(HumanAction::Guide { candidate, note: note.to_string(), example, component: None })
    }

    /// A veto of `item` with the reason typed (none when blank).
    pub fn veto(&mut self, item: u64, typed: &str) -> String {
        if let Some(why) = self.model.why_not_live("vetoing") {
            return why;
        }
        if let Some(why) = self.model.item_taken(item) {
            return why;
        }
        let reason = Some(typed.trim().to_string()).filter(|r| !r.is_empty());
        self.send(HumanAction::Veto { item, reason }).unwrap_or_else(|why| why)
    }

    /// Excludes an example from the run, with the reason typed (required). Err: why not (the
    /// prompt stays open).
    pub fn exclude(&mut self, split: Split, example: &str, typed: &str) -> Result<String, String> {
        if let Some(why) = self.model.why_not_live("excluding an example") {
            return Err(why);
        }
        let reason = typed.trim().to_string();
        self.send(HumanAction::ExcludeExample { split, example: example.to_string(), reason })
    }

    /// Corrects a field of an example to the value typed (a string field takes the text as it
    /// is; other values are JSON). Err: why not (the prompt stays open).
    pub fn fix(&mut self, split: Split, example: &str, field: &str, typed: &str) -> Result<String, String> {
        if let Some(why) = self.model.why_not_live("fixing an example") {
            return Err(why);
        }
        let now = self.model.field_value(split, example, field);
        let value = crate::engine::data_fixes::parse_field_value(now.as_ref(), typed)?;
        if now.as_ref() == Some(&value) {
            return Err(format!("that is the value `{field}` has; change it first (esc leaves)"));
        }
        self.send(HumanAction::FixExample { split, example: example.to_string(), field: field.to_string(), value })
    }

    /// A new candidate from the folder typed. Err: why the folder will not do (the prompt stays
    /// open with the path for another try).
    pub fn add_from_folder(&mut self, typed: &str) -> Result<String, String> {
        let (texts, protected, dir) = candidate_from_folder(self.model, typed)?;
        if let Some(why) = self.model.why_not_live("adding a candidate") {
            return Ok(why);
        }
        let dup = self.model.state.candidates.iter().find(|c| c.texts == texts).map(|c| c.id);
        let mut msg = self.send(HumanAction::AddCandidate {
            texts,
            parents: vec![],
            origin: Origin::Human,
            note: format!("added from {dir}"),
        })?;
        if let Some(d) = dup {
            msg.push_str(&format!(" (its texts equal #{d}'s)"));
        }
        let n = self.protect_new(protected);
        if n > 0 {
            msg.push_str(&format!("; {n} protected span(s) sent"));
        }
        Ok(msg)
    }

    /// Sends a `protect` for each span the engine would take (one not protected, nor on its way,
    /// yet); returns how many.
    fn protect_new(&mut self, protected: crate::project::markers::Protected) -> usize {
        let mut n = 0;
        for (component, spans) in protected {
            for text in spans {
                let a = HumanAction::Protect { component: component.clone(), text };
                if self.model.check_decision(&a).is_err() {
                    continue;
                }
                self.commands.push(EngineCommand::Act(a.clone()));
                self.model.sent.push(a);
                n += 1;
            }
        }
        if n > 0 {
            self.model.version += 1;
        }
        n
    }
}

/// Reads a folder of component files (relative to where gepa-tui was started, else to the project
/// folder; `~` is the home folder).
fn candidate_from_folder(
    m: &Model,
    typed: &str,
) -> Result<(Candidate, crate::project::markers::Protected, String), String> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Err("type the folder that holds the component files".into());
    }
    if m.component_files.is_empty() {
        return Err("the project's components are not known in this window".into());
    }
    let mut path = std::path::PathBuf::from(typed);
    if let Some(rest) = typed.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            path = std::path::PathBuf::from(home).join(rest);
        }
    }
    if path.is_relative() && !path.exists() {
        if let Some(root) = &m.project_root {
            path = root.join(&path);
        }
    }
    crate::project::candidate_from_folder(&m.component_files, &path)
        .map(|(t, p)| (t, p, path.display().to_string()))
        .map_err(|e| e.problems().join("; "))
}

/// The branch key on candidate `c`: the first press says what will happen (`armed`), the second
/// on the same candidate asks the event loop to start a new run seeded with its texts
/// (`chosen`), as `gepa-tui run --branch RUN:ID` does. The run left behind stays as it is (a live
/// one stops and stays resumable).
pub fn branch_press(
    m: &Model,
    c: CandidateId,
    armed: &mut Option<CandidateId>,
    chosen: &mut Option<CandidateId>,
    keys: &str,
) -> String {
    if c >= m.state.candidates.len() {
        return "no candidate to start a new run from yet".into();
    }
    if *armed == Some(c) {
        *armed = None;
        *chosen = Some(c);
        return format!("starting a new run from #{c}…");
    }
    *armed = Some(c);
    branch_warning(m, c, keys)
}

/// What pressing the branch key again on `c` will do.
fn branch_warning(m: &Model, c: CandidateId, keys: &str) -> String {
    // Short enough for an 80-column status bar; what matters most comes first.
    let mut msg = format!("{keys} again: a new run from #{c}'s texts, fresh budget");
    if m.is_live() && m.remote.is_none() {
        msg.push_str("; this run stops (resumable)");
        let waiting = m.unrecorded_decisions();
        if waiting > 0 {
            msg.push_str(&format!(", dropping {waiting} unrecorded decision(s)"));
        }
    }
    msg
}

/// Why quitting now would drop decisions, if it would: sent and not yet applied, or applied in a
/// round still running (stopping abandons that round, to be redone on resume). `keys` quit.
pub fn quit_warning(m: &Model, keys: &str) -> Option<String> {
    let waiting = m.unrecorded_decisions();
    // Attached, leaving drops nothing: the decisions are in the run's inbox, and the run goes on.
    if waiting == 0 || !m.can_act() || m.remote.is_some() {
        return None;
    }
    let key = keys.split(", ").next().filter(|k| !k.is_empty()).unwrap_or("q");
    Some(format!(
        "{waiting} decision(s) not recorded for good yet ({}); {key} again quits without them (the items stay pending)",
        if m.paused() { "the engine is paused: space resumes it" } else { "wait for this round to end" },
    ))
}

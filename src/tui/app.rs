//! The workbench's router, with no terminal: keys become `Action`s through the keymap and go to
//! the overlay on top (editor, merge screen, input line, help), else to the active view, else to
//! the global actions here; what a view asks back (`Outcome`) is carried out here. Each view owns
//! its state, keys and drawing (`views/`); decisions for the engine go through `steer`. The event
//! loop (`tui::run`) feeds this input and engine notices and draws it when something changed.
//! Tests drive it directly.
//!
//! As in yazi's `router.rs`, the layer on top takes the key first; as in gitui's `app.rs`, the
//! app holds the components and forwards to them, and they never reach back into the app.

use crate::engine::CandidateId;
use crate::tui::keymap::{Action, Key, Keymap, Layer};
use crate::tui::model::Model;
use crate::tui::steer::Steer;
use crate::tui::theme::Theme;
use crate::tui::views::candidate::CandidateView;
use crate::tui::views::editor::{EditSession, EditTarget};
use crate::tui::views::frontier::FrontierView;
use crate::tui::views::help::HelpView;
use crate::tui::views::input::{InputLine, InputTarget};
use crate::tui::views::merge::MergeView;
use crate::tui::views::reflections::ReflectionsView;
use crate::tui::views::review::ReviewView;
use crate::tui::views::status_bar::Footer;
use crate::tui::views::traces::TracesView;
use crate::tui::views::win_matrix::MatrixView;
use crate::tui::views::{self, Ctx, Outcome};
use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::Frame;

pub use crate::tui::steer::{EngineCommand, ExternalEdit, ExternalOutcome};
pub use crate::tui::views::candidate::DiffMode;
pub use crate::tui::views::win_matrix::MatrixPane;
pub use crate::tui::views::View;

pub struct App {
    pub model: Model,
    pub keymap: Keymap,
    pub theme: Theme,
    pub view: View,
    /// The help overlay, when open.
    pub help: Option<HelpView>,
    pub input: Option<InputLine>,
    pub selected: CandidateId,
    /// The selection follows the best candidate until the user picks one.
    pub follow_best: bool,
    pub frontier: FrontierView,
    pub matrix: MatrixView,
    pub candidate: CandidateView,
    pub traces: TracesView,
    pub reflections: ReflectionsView,
    pub review: ReviewView,
    /// The inline editor, when open (it takes every key).
    pub editor: Option<EditSession>,
    /// The manual merge screen, when open.
    pub merge: Option<MergeView>,
    /// Candidates marked for a manual merge (at most two, oldest first).
    pub marked: Vec<CandidateId>,
    /// Texts to edit in `$EDITOR`; the event loop takes it, suspends the terminal and reports
    /// back with `external_edit_done`.
    pub external: Option<ExternalEdit>,
    /// `q` was pressed once while decisions were still on their way to the engine.
    pub quit_armed: bool,
    /// The branch key was pressed once on this candidate; pressing it again branches.
    pub branch_armed: Option<CandidateId>,
    /// Leave this run and start a new one seeded with this candidate's texts (the event loop
    /// stops a live engine first).
    pub branch: Option<CandidateId>,
    /// A one-line message in the status bar until the next key.
    pub flash: Option<String>,
    pub quit: bool,
    pub commands: Vec<EngineCommand>,
    /// The project folder, shown in the status bar.
    pub project_label: String,
    /// The terminal width at the last render (tab hit-testing uses the same layout).
    last_width: u16,
}

/// The read-only context the views get, borrowed field by field so a view's own state can be
/// borrowed mutably beside it.
macro_rules! ctx {
    ($app:ident) => {
        Ctx {
            model: &$app.model,
            theme: &$app.theme,
            keymap: &$app.keymap,
            selected: $app.selected,
            marked: &$app.marked,
            prompt: $app.input.as_ref(),
        }
    };
}

impl App {
    pub fn new(model: Model, keymap: Keymap, theme: Theme) -> App {
        let mut app = App {
            model,
            keymap,
            theme,
            view: View::Dashboard,
            help: None,
            input: None,
            selected: 0,
            follow_best: true,
            frontier: FrontierView::default(),
            matrix: MatrixView::default(),
            candidate: CandidateView::default(),
            traces: TracesView::default(),
            reflections: ReflectionsView::default(),
            review: ReviewView::default(),
            editor: None,
            merge: None,
            marked: Vec::new(),
            external: None,
            quit_armed: false,
            branch_armed: None,
            branch: None,
            flash: None,
            quit: false,
            commands: Vec::new(),
            project_label: String::new(),
            last_width: 80,
        };
        app.follow_best_candidate();
        app
    }

    fn steer(&mut self) -> Steer<'_> {
        Steer { model: &mut self.model, commands: &mut self.commands }
    }

    /// Until the user selects a candidate, keep the best one selected, so a finished or reopened
    /// run opens on its winner and a live run's views follow the newest best.
    fn follow_best_candidate(&mut self) {
        if let Some(b) = self.model.state.best().filter(|_| self.follow_best) {
            self.show_candidate(b);
        }
    }

    /// Selects a candidate by the user's choice: the selection stops following the best.
    pub fn select_candidate(&mut self, c: CandidateId) {
        self.follow_best = false;
        self.show_candidate(c);
    }

    fn show_candidate(&mut self, c: CandidateId) {
        if c != self.selected {
            self.selected = c;
            self.candidate.on_select(&self.model, c);
            self.traces.scroll.reset();
            self.traces.example = None;
        }
    }

    pub fn goto(&mut self, view: View) {
        self.view = view;
        self.help = None;
    }

    /// Feeds one terminal event; returns whether anything visible may have changed.
    pub fn on_terminal_event(&mut self, ev: &TermEvent) -> bool {
        match ev {
            TermEvent::Key(k) => self.on_key(*k),
            TermEvent::Mouse(m) => self.on_mouse(*m),
            TermEvent::Resize(..) => true,
            TermEvent::Paste(text) => self.on_paste(text),
            _ => false,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        // Terminals with the kitty protocol report releases too; a key acts once.
        if key.kind == KeyEventKind::Release {
            return false;
        }
        self.flash = None;
        if let Some(ed) = self.editor.as_mut() {
            let out = ed.on_key(key, &self.keymap, Layer::Editor);
            self.apply(out);
            return true;
        }
        if self.merge.is_some() {
            if let Some(a) = self.keymap.action_in(Layer::Merge, &key) {
                let ctx = ctx!(self);
                let out = self.merge.as_mut().map_or(Outcome::Done, |mg| mg.handle(a, &ctx));
                if let Outcome::Send(_) = out {
                    self.merge = None;
                    self.marked.clear();
                }
                self.apply(out);
            }
            return true;
        }
        if self.input.is_some() {
            self.on_input_key(key);
            return true;
        }
        // The help overlay's own table first, then the view under it, then the global one.
        let layers: &[Layer] =
            if self.help.is_some() { &[Layer::Help, self.view.layer()] } else { &[self.view.layer()] };
        match self.keymap.action_under(layers, Key::from_event(&key)) {
            Some(a) => {
                if a != Action::Quit {
                    self.quit_armed = false;
                }
                if a != Action::Branch {
                    self.branch_armed = None;
                }
                self.perform(a);
            }
            None if key.code != KeyCode::Null && key.modifiers & !KeyModifiers::SHIFT == KeyModifiers::NONE => {
                let k = Key::from_event(&key);
                let here = self.view.layer();
                self.flash = Some(match self.keymap.elsewhere(here, k) {
                    Some((layer, a)) => {
                        let view = View::ALL.into_iter().find(|v| v.layer() == layer);
                        let at = view.map(|v| format!(" ({})", v.index() + 1)).unwrap_or_default();
                        format!("{k} ({}) works {}{at}; ? lists the keys here", a.name(), layer.title())
                    }
                    None => format!("{k} is not bound; ? lists the keys"),
                });
            }
            None => {}
        }
        true
    }

    fn on_input_key(&mut self, key: KeyEvent) {
        let Some(input) = self.input.as_mut() else { return };
        let target = input.target;
        match key.code {
            KeyCode::Enter if target.is_prompt() => {
                let text = input.text.clone();
                self.submit_prompt(target, &text);
            }
            KeyCode::Enter => self.input = None,
            KeyCode::Esc if target.is_prompt() => {
                self.input = None;
                self.flash = Some(match target {
                    InputTarget::VetoReason { item } => format!("veto of item {item} cancelled; nothing sent"),
                    _ => "cancelled; nothing sent".into(),
                });
            }
            KeyCode::Esc => {
                self.input = None;
                self.set_input_text(target, String::new());
            }
            KeyCode::Backspace => {
                input.text.pop();
                let s = input.text.clone();
                self.set_input_text(target, s);
            }
            KeyCode::Char(c) if !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
                input.text.push(c);
                let s = input.text.clone();
                self.set_input_text(target, s);
            }
            _ => {}
        }
    }

    /// A filter applies as it is typed; a prompt's error clears when its text changes.
    fn set_input_text(&mut self, target: InputTarget, text: String) {
        match target {
            InputTarget::FrontierFilter => self.frontier.set_filter(text),
            InputTarget::TraceSearch => self.traces.set_query(text),
            InputTarget::VetoReason { .. } | InputTarget::Folder => {
                if let Some(i) = self.input.as_mut() {
                    i.error = None;
                }
            }
        }
    }

    fn submit_prompt(&mut self, target: InputTarget, text: &str) {
        match target {
            InputTarget::VetoReason { item } => {
                self.input = None;
                self.flash = Some(self.steer().veto(item, text));
            }
            InputTarget::Folder => match self.steer().add_from_folder(text) {
                Ok(msg) => {
                    self.input = None;
                    self.flash = Some(msg);
                }
                Err(e) => {
                    if let Some(i) = self.input.as_mut() {
                        i.error = Some(e);
                    }
                }
            },
            _ => self.input = None,
        }
    }

    /// Does what an action means: in the help overlay, else in the current view, else globally.
    pub fn perform(&mut self, action: Action) {
        if let Some(help) = self.help.as_mut() {
            match help.handle(action) {
                Outcome::Ignored if action == Action::Quit => self.quit = true,
                Outcome::Ignored => {
                    self.help = None;
                    self.perform(action);
                }
                Outcome::Close(_) => self.help = None,
                _ => {}
            }
            return;
        }
        let out = self.view_handle(action);
        if out == Outcome::Ignored {
            self.global(action);
        } else {
            self.apply(out);
        }
    }

    /// The active view's answer to an action.
    fn view_handle(&mut self, action: Action) -> Outcome {
        let ctx = ctx!(self);
        match self.view {
            View::Dashboard => Outcome::Ignored,
            View::Frontier => self.frontier.handle(action, &ctx),
            View::WinMatrix => self.matrix.handle(action, &ctx),
            View::Candidate => self.candidate.handle(action, &ctx),
            View::Traces => self.traces.handle(action, &ctx),
            View::Reflections => self.reflections.handle(action, &ctx),
            View::Review => self.review.handle(action, &ctx),
        }
    }

    /// Actions that mean the same in every view.
    fn global(&mut self, action: Action) {
        let flash = match action {
            Action::Quit => return self.request_quit(),
            Action::Help => {
                self.help = Some(HelpView::default());
                return;
            }
            Action::TogglePause => self.steer().toggle_pause(),
            Action::RetryNow => self.steer().retry_now(),
            Action::ViewDashboard => return self.goto(View::Dashboard),
            Action::ViewFrontier => return self.goto(View::Frontier),
            Action::ViewWinMatrix => return self.goto(View::WinMatrix),
            Action::ViewCandidate => return self.goto(View::Candidate),
            Action::ViewTraces => {
                self.traces.proposal = None;
                return self.goto(View::Traces);
            }
            Action::ViewReflections => return self.goto(View::Reflections),
            Action::ViewReview => return self.goto(View::Review),
            Action::NextView => return self.goto(View::ALL[(self.view.index() + 1) % View::ALL.len()]),
            Action::PrevView => {
                return self.goto(View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()])
            }
            Action::OpenTraces => return self.apply(Outcome::ValTraces(None)),
            Action::ApproveAll => self.steer().approve_all().unwrap_or_else(|e| e),
            Action::ToggleMutationReview | Action::ToggleMergeReview => {
                let keys = self.keymap.describe(Action::ApproveAll);
                self.steer().toggle_policy(action == Action::ToggleMutationReview, &keys).unwrap_or_else(|e| e)
            }
            Action::Mark => self.toggle_mark(),
            Action::Branch => self.request_branch(),
            Action::MergeMarked => match self.open_merge() {
                Some(msg) => msg,
                None => return,
            },
            Action::AddCandidate => match self.model.why_not_live("adding a candidate") {
                Some(why) => why,
                None => {
                    self.input = Some(InputLine::new(InputTarget::Folder, ""));
                    return;
                }
            },
            Action::Edit | Action::EditExternal if matches!(self.view, View::Candidate | View::Frontier) => {
                return self.hand_edit(action == Action::EditExternal);
            }
            Action::Edit | Action::EditExternal => format!(
                "{} edits in the Review (7), Candidate (4) and Frontier (2) views",
                self.keymap.describe(action)
            ),
            _ => return,
        };
        self.flash = Some(flash);
    }

    /// Carries out what a view asked for.
    fn apply(&mut self, out: Outcome) {
        match out {
            Outcome::Ignored | Outcome::Done => {}
            Outcome::Flash(msg) => self.flash = Some(msg),
            Outcome::Select(c) => self.select_candidate(c),
            Outcome::Show(view, c) => {
                if let Some(c) = c {
                    self.select_candidate(c);
                }
                self.goto(view);
            }
            Outcome::ValTraces(example) => {
                self.traces.show_val(example);
                self.goto(View::Traces);
            }
            Outcome::ProposalTraces(k) => match self.traces.show_proposal(&self.model, k) {
                Ok(()) => self.goto(View::Traces),
                Err(e) => self.flash = Some(e),
            },
            Outcome::Compare(other) => {
                self.candidate.compare_with(other);
                self.goto(View::Candidate);
            }
            Outcome::Prompt(line) => self.input = Some(line),
            Outcome::Send(action) => self.flash = Some(self.steer().send(action)),
            Outcome::Edit { target, texts, external } => self.start_edit(target, &texts, external),
            Outcome::SubmitEdit { target, texts } => match self.steer().submit_edit(target, texts) {
                Ok(msg) => {
                    self.editor = None;
                    self.flash = Some(msg);
                }
                Err(e) => self.flash = Some(e),
            },
            Outcome::Close(msg) => {
                self.editor = None;
                self.merge = None;
                self.flash = Some(msg).filter(|m| !m.is_empty());
            }
        }
    }

    /// `q`: leaves, unless decisions are not safely recorded yet: sent and not yet applied, or
    /// applied in a round still running (stopping abandons that round, to be redone on resume).
    /// Then the first `q` says so; pending items stay pending either way.
    fn request_quit(&mut self) {
        let waiting = self.model.unrecorded_decisions();
        if waiting > 0 && self.model.can_act() && !self.quit_armed {
            self.quit_armed = true;
            self.flash = Some(format!(
                "{waiting} decision(s) not recorded for good yet ({}); {} again quits without them (the items stay pending)",
                if self.model.paused() { "the engine is paused: space resumes it" } else { "wait for this round to end" },
                self.keymap.keys_for(Action::Quit).first().map(|k| k.to_string()).unwrap_or_else(|| "q".into()),
            ));
            return;
        }
        self.quit = true;
    }

    /// Feeds an engine notice to the model, and says in the status bar when a decision sent
    /// from here is applied or refused.
    pub fn on_notice(&mut self, n: crate::engine::Notice) {
        use crate::engine::{Event, Notice};
        let sent_before = self.model.sent.len();
        let applied = match &n {
            Notice::Event(ev) => match &**ev {
                Event::Human { round, action } => Some((*round, action.clone())),
                _ => None,
            },
            _ => None,
        };
        let refused = match &n {
            Notice::Refused { why, .. } => Some(why.clone()),
            _ => None,
        };
        self.model.on_notice(n);
        self.follow_best_candidate();
        if self.model.sent.len() < sent_before {
            self.flash = match (applied, refused) {
                (Some((round, a)), _) => {
                    Some(format!("{} applied in round {round}", crate::tui::model::action_word(&a)))
                }
                (_, Some(why)) => Some(format!("the engine ignored: {}", crate::text::sanitize(&why))),
                _ => self.flash.take(),
            };
        }
    }

    fn start_edit(&mut self, target: EditTarget, texts: &crate::project::Candidate, external: bool) {
        let names = self.model.state.components.clone();
        if external {
            self.external = Some(ExternalEdit { target, names, texts: texts.clone() });
        } else {
            self.editor = Some(EditSession::new(target, &names, texts));
        }
    }

    /// `e` / `E` on a candidate: its texts, edited, become a new candidate.
    fn hand_edit(&mut self, external: bool) {
        let Some(rec) = self.model.state.candidates.get(self.selected) else {
            self.flash = Some("no candidate to edit yet".into());
            return;
        };
        let texts = rec.texts.clone();
        match self.model.why_not_live("a hand edit") {
            Some(why) => self.flash = Some(why),
            None => self.start_edit(EditTarget::HandEdit { parent: self.selected }, &texts, external),
        }
    }

    /// Text pasted into the terminal (bracketed paste) goes into the open editor or prompt.
    pub fn on_paste(&mut self, text: &str) -> bool {
        if let Some(ed) = self.editor.as_mut() {
            ed.paste(text);
            return true;
        }
        if let Some(input) = self.input.as_mut() {
            input.text.push_str(&crate::text::sanitize(text).replace(['\n', '\t'], " "));
            let (t, s) = (input.target, input.text.clone());
            self.set_input_text(t, s);
            return true;
        }
        false
    }

    /// What `$EDITOR` gave back: sent as the edit when it went well; otherwise (or when
    /// nothing was changed) the texts open in the inline editor, so nothing typed is lost.
    pub fn external_edit_done(&mut self, request: ExternalEdit, outcome: ExternalOutcome) {
        let keep = || EditSession::with_texts(request.target, &request.names, &request.texts, &outcome.texts);
        if let Some(err) = outcome.error.clone() {
            self.editor = Some(keep());
            let save = self.keymap.describe(Action::Save);
            self.flash = Some(format!("{err}; your text is in the editor here ({save} sends it)"));
            return;
        }
        if outcome.texts == request.texts {
            self.flash = Some("nothing was changed in the editor; nothing sent".into());
            return;
        }
        match self.steer().submit_edit(request.target, outcome.texts.clone()) {
            Ok(msg) => self.flash = Some(msg),
            Err(e) => {
                self.editor = Some(keep());
                self.flash = Some(format!("{e}; your text is in the editor here"));
            }
        }
    }

    /// The branch key: the first press says what will happen, the second (on the same candidate)
    /// asks the event loop to start a new run seeded with the selected candidate's texts, as
    /// `gepa-tui run --branch RUN:ID` does. The run left behind stays as it is (a live one stops
    /// and stays resumable).
    fn request_branch(&mut self) -> String {
        let c = self.selected;
        if c >= self.model.state.candidates.len() {
            return "no candidate to start a new run from yet".into();
        }
        if self.branch_armed == Some(c) {
            self.branch_armed = None;
            self.branch = Some(c);
            return format!("starting a new run from #{c}…");
        }
        self.branch_armed = Some(c);
        crate::tui::steer::branch_warning(&self.model, c, &self.keymap.describe(Action::Branch))
    }

    fn toggle_mark(&mut self) -> String {
        let c = self.selected;
        if c >= self.model.state.candidates.len() {
            return "no candidate to mark yet".into();
        }
        if let Some(i) = self.marked.iter().position(|m| *m == c) {
            self.marked.remove(i);
            return format!("#{c} unmarked");
        }
        self.marked.push(c);
        let dropped = (self.marked.len() > 2).then(|| self.marked.remove(0));
        if self.marked.len() < 2 {
            return format!("#{c} marked; mark one more to merge them");
        }
        let m = self.keymap.describe(Action::MergeMarked);
        let (a, b) = (self.marked[0], self.marked[1]);
        match dropped {
            Some(d) => format!("#{c} marked (#{d} unmarked: a merge takes two); {m} merges #{a} and #{b}"),
            None => format!("#{a} and #{b} marked; {m} merges them"),
        }
    }

    /// Opens the merge screen on the two marked candidates; Some: why not.
    fn open_merge(&mut self) -> Option<String> {
        if self.marked.len() != 2 {
            return Some(format!(
                "mark two candidates first ({} marks the selected one); {} marked",
                self.keymap.describe(Action::Mark),
                self.marked.len()
            ));
        }
        if let Some(why) = self.model.why_not_live("a manual merge") {
            return Some(why);
        }
        self.merge = Some(MergeView::new(&self.model, self.marked[0], self.marked[1]));
        None
    }

    pub fn on_mouse(&mut self, m: MouseEvent) -> bool {
        if self.editor.is_some() || self.merge.is_some() {
            return false;
        }
        let pos = Position::new(m.column, m.row);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if m.row == 0 {
                    if let Some(v) = views::tabs::hit(self.last_width, m.column) {
                        self.goto(v);
                    }
                } else if self.help.is_some() {
                    self.help = None;
                } else {
                    let ctx = ctx!(self);
                    let out = match self.view {
                        View::Frontier => self.frontier.click(pos, &ctx),
                        View::WinMatrix => self.matrix.click(pos, &ctx),
                        View::Traces => self.traces.click(pos, &ctx),
                        View::Review => self.review.click(pos, &ctx),
                        View::Reflections => self.reflections.click(pos, &ctx),
                        View::Dashboard | View::Candidate => Outcome::Ignored,
                    };
                    self.apply(out);
                }
                true
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let down = m.kind == MouseEventKind::ScrollDown;
                let in_detail = match self.view {
                    View::Traces => self.traces.detail_area.contains(pos),
                    View::Reflections => self.reflections.detail_area.contains(pos),
                    View::Review => self.review.detail_area.contains(pos),
                    _ => false,
                };
                let help = self.help.is_some();
                let action = match (help || in_detail || self.view == View::Candidate, down) {
                    (true, true) => Action::ScrollDown,
                    (true, false) => Action::ScrollUp,
                    (false, true) => Action::Down,
                    (false, false) => Action::Up,
                };
                for _ in 0..if in_detail || help { 3 } else { 1 } {
                    self.perform(action);
                }
                true
            }
            _ => false,
        }
    }

    /// The keymap layer on top: the open overlay's, else the active view's.
    pub fn layer(&self) -> Layer {
        if self.editor.is_some() {
            Layer::Editor
        } else if self.merge.is_some() {
            Layer::Merge
        } else if self.help.is_some() {
            Layer::Help
        } else {
            self.view.layer()
        }
    }

    /// The footer's keys: the open overlay's, else the active view's, then help and quit.
    fn hints(&self) -> Vec<(Action, &'static str)> {
        if self.editor.is_some() {
            // The editor shows its own keys on its last line.
            return vec![];
        }
        if let Some(mg) = &self.merge {
            return mg.hints();
        }
        let ctx = ctx!(self);
        let mut h = match self.view {
            View::Dashboard => views::dashboard::hints(),
            View::Frontier => self.frontier.hints(&ctx),
            View::WinMatrix => self.matrix.hints(&ctx),
            View::Candidate => self.candidate.hints(),
            View::Traces => self.traces.hints(),
            View::Reflections => self.reflections.hints(),
            View::Review => self.review.hints(&ctx),
        };
        h.extend([(Action::Help, "help"), (Action::Quit, "quit")]);
        h
    }

    /// Draws the whole screen: tabs, the current view, the status bar, and overlays.
    pub fn render(&mut self, frame: &mut Frame) {
        let area = frame.area();
        self.last_width = area.width;
        let [tabs, body, status] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(area);
        let hints = self.hints();
        let ctx = ctx!(self);
        views::tabs::render(frame, tabs, &ctx, self.view);
        match self.view {
            View::Dashboard => views::dashboard::render(frame, body, &ctx),
            View::Frontier => self.frontier.render(frame, body, &ctx),
            View::WinMatrix => self.matrix.render(frame, body, &ctx),
            View::Candidate => self.candidate.render(frame, body, &ctx),
            View::Traces => self.traces.render(frame, body, &ctx),
            View::Reflections => self.reflections.render(frame, body, &ctx),
            View::Review => self.review.render(frame, body, &ctx),
        }
        if let Some(ed) = &self.editor {
            ed.render(frame, body, &ctx);
        } else if let Some(mg) = self.merge.as_mut() {
            mg.render(frame, body, &ctx);
        }
        // The help overlay leaves the footer to the view under it.
        let layer = if self.help.is_some() { self.view.layer() } else { self.layer() };
        let footer = Footer { flash: self.flash.as_deref(), editor: self.editor.as_ref(), hints, layer };
        views::status_bar::render(frame, status, &ctx, &footer);
        if let Some(help) = self.help.as_mut() {
            help.render(frame, body, &ctx, self.view.layer());
        }
    }
}

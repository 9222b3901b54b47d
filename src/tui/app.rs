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
use crate::tui::views::editor::{EditSession, EditTarget};
use crate::tui::views::help::HelpView;
use crate::tui::views::input::{InputLine, InputTarget};
use crate::tui::views::merge::MergeView;
use crate::tui::views::status_bar::Footer;
use crate::tui::views::{self, Ctx, Outcome, Views};
use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::Frame;

mod prompt;

pub use crate::tui::steer::{EngineCommand, ExternalEdit, ExternalOutcome};
pub use crate::tui::views::candidate::DiffMode;
pub use crate::tui::views::win_matrix::MatrixPane;
pub use crate::tui::views::View;

#[derive(Default)]
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
    /// Each view's own state.
    pub views: Views,
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
        let mut app = App { model, keymap, theme, follow_best: true, last_width: 80, ..App::default() };
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
            self.views.on_select(&self.model, c);
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
        if let Some(input) = self.input.as_mut() {
            let k = input.on_key(key);
            self.on_input(k);
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
                let unbound = self.keymap.unbound(self.view.layer(), Key::from_event(&key));
                self.flash = Some(unbound);
            }
            None => {}
        }
        true
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
        let ctx = ctx!(self);
        let out = self.views.handle(self.view, action, &ctx);
        if out == Outcome::Ignored {
            self.global(action);
        } else {
            self.apply(out);
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
            Action::ViewTraces => {
                // The tab shows the selected candidate's traces (not a proposal's minibatch).
                self.views.traces.proposal = None;
                return self.goto(View::Traces);
            }
            a if self.view.after(a).is_some() => return self.goto(self.view.after(a).expect("checked")),
            Action::OpenTraces => return self.apply(Outcome::ValTraces(None)),
            Action::ApproveAll => self.steer().approve_all().unwrap_or_else(|e| e),
            Action::ToggleMutationReview | Action::ToggleMergeReview => {
                let keys = self.keymap.describe(Action::ApproveAll);
                self.steer().toggle_policy(action == Action::ToggleMutationReview, &keys).unwrap_or_else(|e| e)
            }
            Action::Mark => views::merge::toggle_mark(&mut self.marked, self.selected, &self.model, &self.keymap),
            Action::Branch => {
                let keys = self.keymap.describe(Action::Branch);
                crate::tui::steer::branch_press(
                    &self.model,
                    self.selected,
                    &mut self.branch_armed,
                    &mut self.branch,
                    &keys,
                )
            }
            Action::MergeMarked => match MergeView::open(&ctx!(self)) {
                Ok(mg) => return self.merge = Some(mg),
                Err(why) => why,
            },
            Action::AddCandidate => match self.model.why_not_live("adding a candidate") {
                Some(why) => why,
                None => {
                    self.input = Some(InputLine::new(InputTarget::Folder, ""));
                    return;
                }
            },
            Action::Edit | Action::EditExternal => format!(
                "{} edits in the Review (7), Candidate (4) and Frontier (2) views",
                self.keymap.describe(action)
            ),
            Action::Guide => format!(
                "{} guides a reflection from the Frontier (2), Candidate (4), Traces (5) and Reflections (6) views",
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
                self.views.traces.show_val(example);
                self.goto(View::Traces);
            }
            Outcome::ProposalTraces(k) => match self.views.traces.show_proposal(&self.model, k) {
                Ok(()) => self.goto(View::Traces),
                Err(e) => self.flash = Some(e),
            },
            Outcome::Compare(other) => {
                self.views.candidate.compare_with(other);
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
        let quit_keys = self.keymap.describe(Action::Quit);
        match crate::tui::steer::quit_warning(&self.model, &quit_keys).filter(|_| !self.quit_armed) {
            Some(warning) => {
                self.quit_armed = true;
                self.flash = Some(warning);
            }
            None => self.quit = true,
        }
    }

    /// Feeds an engine notice to the model, and says in the status bar when a decision sent
    /// from here is applied or refused.
    pub fn on_notice(&mut self, n: crate::engine::Notice) {
        let news = self.model.on_notice_news(n);
        self.follow_best_candidate();
        if let Some(msg) = news {
            self.flash = Some(msg);
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

    /// Text pasted into the terminal (bracketed paste) goes into the open editor or prompt.
    pub fn on_paste(&mut self, text: &str) -> bool {
        if let Some(ed) = self.editor.as_mut() {
            ed.paste(text);
            return true;
        }
        if let Some(input) = self.input.as_mut() {
            let k = input.paste(text);
            self.on_input(k);
            return true;
        }
        false
    }

    /// What `$EDITOR` gave back (see `Steer::external_done`).
    pub fn external_edit_done(&mut self, request: ExternalEdit, outcome: ExternalOutcome) {
        let save = self.keymap.describe_in(Layer::Editor, Action::Save);
        let (kept, msg) = self.steer().external_done(request, outcome, &save);
        self.editor = kept.or(self.editor.take());
        self.flash = Some(msg);
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
                    let out = self.views.click(self.view, pos, &ctx);
                    self.apply(out);
                }
                true
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let down = m.kind == MouseEventKind::ScrollDown;
                let in_detail = self.views.in_detail(self.view, pos);
                let help = self.help.is_some();
                // The wheel scrolls a text pane, and moves through a list.
                let action = [[Action::Up, Action::Down], [Action::ScrollUp, Action::ScrollDown]]
                    [usize::from(help || in_detail)][usize::from(down)];
                // Three lines a notch on a detail pane (the Candidate view's text scrolls by one).
                let lines = if (in_detail && self.view != View::Candidate) || help { 3 } else { 1 };
                for _ in 0..lines {
                    self.perform(action);
                }
                true
            }
            _ => false,
        }
    }

    /// The keymap layer on top: the open overlay's, else the active view's.
    pub fn layer(&self) -> Layer {
        match (&self.editor, &self.merge, &self.help) {
            (Some(_), ..) => Layer::Editor,
            (_, Some(_), _) => Layer::Merge,
            (.., Some(_)) => Layer::Help,
            _ => self.view.layer(),
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
        let mut h = self.views.hints(self.view, &ctx);
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
        self.views.render(self.view, frame, body, &ctx);
        if let Some(ed) = self.editor.as_mut() {
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

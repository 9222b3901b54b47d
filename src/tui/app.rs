//! The workbench's router, with no terminal: keys become `Action`s through the keymap and go to
//! the overlay on top of the stack (editor, merge screen, input line, help: `app/overlay.rs`),
//! else to the active view, else to the global actions here; what a view asks back (`Outcome`) is carried out here. Each view owns
//! its state, keys and drawing (`views/`); decisions for the engine go through `outbox`. The event
//! loop (`tui::run`) feeds this input and engine notices and draws it when something changed.
//! Tests drive it directly.
//!
//! As in yazi's `router.rs`, the layer on top takes the key first; as in gitui's `app.rs`, the
//! app holds the components and forwards to them, and they never reach back into the app.

use crate::engine::CandidateId;
use crate::tui::keymap::{Action, Key, Keymap, Layer};
use crate::tui::model::Model;
use crate::tui::outbox::Outbox;
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
use overlay::{Kind, Overlay, Overlays};
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::Frame;

mod overlay;
mod prompt;

pub use crate::tui::outbox::{EngineCommand, ExternalEdit, ExternalOutcome};
pub use crate::tui::views::candidate::DiffMode;
pub use crate::tui::views::win_matrix::MatrixPane;
pub use crate::tui::views::View;

#[derive(Default)]
pub struct App {
    pub model: Model,
    pub keymap: Keymap,
    pub theme: Theme,
    pub view: View,
    /// What is open over the view (editor, merge screen, input line, help), the top last.
    overlays: Overlays,
    pub selected: CandidateId,
    /// The selection follows the best candidate until the user picks one.
    pub follow_best: bool,
    /// Each view's own state.
    pub views: Views,
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
/// borrowed mutably beside it. An overlay borrowed mutably beside it gets a copy of the input
/// line (`ctx!(self, &prompt)`).
macro_rules! ctx {
    ($app:ident) => {
        ctx!($app, $app.overlays.input())
    };
    ($app:ident, $prompt:expr) => {
        Ctx {
            model: &$app.model,
            theme: &$app.theme,
            keymap: &$app.keymap,
            selected: $app.selected,
            marked: &$app.marked,
            prompt: $prompt,
        }
    };
}

impl App {
    pub fn new(model: Model, keymap: Keymap, theme: Theme) -> App {
        let mut app = App { model, keymap, theme, follow_best: true, last_width: 80, ..App::default() };
        app.follow_best_candidate();
        app
    }

    fn outbox(&mut self) -> Outbox<'_> {
        Outbox { model: &mut self.model, commands: &mut self.commands }
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
        self.overlays.close(Kind::Help);
    }

    /// The help overlay, when open.
    pub fn help(&self) -> Option<&HelpView> {
        self.overlays.help()
    }

    /// The input line, when open.
    pub fn input(&self) -> Option<&InputLine> {
        self.overlays.input()
    }

    /// The inline editor, when open (it takes every key).
    pub fn editor(&self) -> Option<&EditSession> {
        self.overlays.editor()
    }

    /// The manual merge screen, when open.
    pub fn merge(&self) -> Option<&MergeView> {
        self.overlays.merge()
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
        match self.overlays.top() {
            Some(Kind::Editor) => {
                let out = self.overlays.editor_mut().map(|ed| ed.on_key(key, &self.keymap, Layer::Editor));
                self.overlay_done(Kind::Editor, out.unwrap_or(Outcome::Done));
                return true;
            }
            Some(Kind::Input) => {
                if let Some(k) = self.overlays.input_mut().map(|i| i.on_key(key, &self.keymap)) {
                    self.on_input(k);
                }
                return true;
            }
            Some(Kind::Merge | Kind::Help) | None => {}
        }
        // The top layer's own table first (the help's, then what is under it), then the global one.
        let layers = self.overlays.layers(self.view.layer());
        match self.keymap.action_under(&layers, Key::from_event(&key)) {
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
                let unbound = self.keymap.unbound(self.overlays.under_help(self.view.layer()), Key::from_event(&key));
                self.flash = Some(unbound);
            }
            None => {}
        }
        true
    }

    /// Does what an action means: in the overlay on top, else in the current view, else globally.
    pub fn perform(&mut self, action: Action) {
        match self.overlays.pop() {
            Some(Overlay::Help(mut help)) => match help.handle(action) {
                // Quit from the help over a view quits; over the merge screen it cancels the merge.
                Outcome::Ignored if action == Action::Quit && self.overlays.top().is_none() => self.quit = true,
                // Any other key closes the help and does what it does under it.
                Outcome::Ignored => self.perform(action),
                Outcome::Close(_) => {}
                _ => self.overlays.push(Overlay::Help(help)),
            },
            Some(Overlay::Merge(mut mg)) => {
                let prompt = self.overlays.input().cloned();
                let out = mg.handle(action, &ctx!(self, prompt.as_ref()));
                match out {
                    Outcome::Send(_) => self.marked.clear(),
                    Outcome::Close(_) => {}
                    _ => self.overlays.push(Overlay::Merge(mg)),
                }
                match out {
                    // The merge screen takes every key; help, pause and retry act over it.
                    Outcome::Ignored if Action::OVER_MERGE.contains(&action) => self.global(action),
                    out => self.apply(out),
                }
            }
            // The input line reads raw keys; what comes here (the mouse wheel) is the view's.
            Some(input @ Overlay::Input(_)) => {
                self.overlays.push(input);
                self.in_view(action);
            }
            // The editor reads raw keys and takes no mouse.
            Some(editor) => self.overlays.push(editor),
            None => self.in_view(action),
        }
    }

    /// An action in the current view, else a global one.
    fn in_view(&mut self, action: Action) {
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
            Action::Help => return self.overlays.push(Overlay::Help(HelpView::default())),
            Action::TogglePause => self.outbox().toggle_pause(),
            Action::RetryNow => self.outbox().retry_now(),
            Action::ViewTraces => {
                // The tab shows the selected candidate's traces (not a proposal's minibatch).
                self.views.traces.proposal = None;
                return self.goto(View::Traces);
            }
            a if self.view.after(a).is_some() => return self.goto(self.view.after(a).expect("checked")),
            Action::OpenTraces => return self.apply(Outcome::ValTraces(None)),
            Action::ApproveAll => self.outbox().approve_all().unwrap_or_else(|e| e),
            Action::ToggleMutationReview | Action::ToggleMergeReview => {
                let keys = self.keymap.describe(Action::ApproveAll);
                self.outbox().toggle_policy(action == Action::ToggleMutationReview, &keys).unwrap_or_else(|e| e)
            }
            Action::Mark => views::merge::toggle_mark(&mut self.marked, self.selected, &self.model, &self.keymap),
            Action::Branch => {
                let keys = self.keymap.describe(Action::Branch);
                crate::tui::outbox::branch_press(
                    &self.model,
                    self.selected,
                    &mut self.branch_armed,
                    &mut self.branch,
                    &keys,
                )
            }
            Action::MergeMarked => match MergeView::open(&ctx!(self)) {
                Ok(mg) => return self.overlays.push(Overlay::Merge(mg)),
                Err(why) => why,
            },
            Action::AddCandidate => match self.model.why_not_live("adding a candidate") {
                Some(why) => why,
                None => return self.overlays.push(Overlay::Input(InputLine::new(InputTarget::Folder, ""))),
            },
            // An action of some views' tables that the view here did not take: say where it works.
            a if self.keymap.layer_bindings(Layer::Global).iter().all(|(g, _)| *g != a) => {
                match self.keymap.where_it_works(a) {
                    Some(w) => w,
                    None => return,
                }
            }
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
            Outcome::Prompt(line) => self.overlays.push(Overlay::Input(line)),
            Outcome::Send(action) => self.flash = Some(self.outbox().send(action).unwrap_or_else(|why| why)),
            Outcome::Edit { target, texts, external } => self.start_edit(target, &texts, external),
            Outcome::SubmitEdit { target, texts } => match self.outbox().submit_edit(target, texts) {
                Ok(msg) => {
                    self.overlays.close(Kind::Editor);
                    self.flash = Some(msg);
                }
                Err(e) => self.flash = Some(e),
            },
            // The overlay that asked is closed by `overlay_done` (or was taken off to ask).
            Outcome::Close(msg) => self.flash = Some(msg).filter(|m| !m.is_empty()),
        }
    }

    /// Carries out what an overlay asked, closing it when it asked to close.
    fn overlay_done(&mut self, kind: Kind, out: Outcome) {
        if let Outcome::Close(_) = out {
            self.overlays.close(kind);
        }
        self.apply(out);
    }

    /// `q`: leaves, unless decisions are not safely recorded yet: sent and not yet applied, or
    /// applied in a round still running (stopping abandons that round, to be redone on resume).
    /// Then the first `q` says so; pending items stay pending either way.
    fn request_quit(&mut self) {
        let quit_keys = self.keymap.describe(Action::Quit);
        match crate::tui::outbox::quit_warning(&self.model, &quit_keys).filter(|_| !self.quit_armed) {
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
            self.overlays.push(Overlay::Editor(EditSession::new(target, &names, texts)));
        }
    }

    /// Text pasted into the terminal (bracketed paste) goes into the open editor or prompt.
    pub fn on_paste(&mut self, text: &str) -> bool {
        match self.overlays.top() {
            Some(Kind::Editor) => self.overlays.editor_mut().map(|ed| ed.paste(text)).is_some(),
            Some(Kind::Input) => match self.overlays.input_mut().map(|i| i.paste(text)) {
                Some(k) => {
                    self.on_input(k);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// What `$EDITOR` gave back (see `Outbox::external_done`).
    pub fn external_edit_done(&mut self, request: ExternalEdit, outcome: ExternalOutcome) {
        let save = self.keymap.describe_in(Layer::Editor, Action::Save);
        let (kept, msg) = self.outbox().external_done(request, outcome, &save);
        if let Some(ed) = kept {
            self.overlays.push(Overlay::Editor(ed));
        }
        self.flash = Some(msg);
    }

    pub fn on_mouse(&mut self, m: MouseEvent) -> bool {
        if self.overlays.is_open(Kind::Editor) || self.overlays.is_open(Kind::Merge) {
            return false;
        }
        let pos = Position::new(m.column, m.row);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if m.row == 0 {
                    if let Some(v) = views::tabs::hit(self.last_width, m.column) {
                        self.goto(v);
                    }
                } else if !self.overlays.close(Kind::Help) {
                    let ctx = ctx!(self);
                    let out = self.views.click(self.view, pos, &ctx);
                    self.apply(out);
                }
                true
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let down = m.kind == MouseEventKind::ScrollDown;
                let in_detail = self.views.in_detail(self.view, pos);
                let help = self.overlays.is_open(Kind::Help);
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
        self.overlays.layers(self.view.layer())[0]
    }

    /// The footer's keys: the open overlay's, else the active view's, then help and quit (each
    /// shown with its label in the layer).
    fn hints(&self) -> Vec<Action> {
        match self.overlays.under_help(self.view.layer()) {
            // The editor shows its own keys on its last line.
            Layer::Editor => return vec![],
            Layer::Merge => return self.overlays.merge().map(MergeView::hints).unwrap_or_default(),
            _ => {}
        }
        let ctx = ctx!(self);
        let mut h = self.views.hints(self.view, &ctx);
        h.extend([Action::Help, Action::Quit]);
        h
    }

    /// Draws the whole screen: tabs, the current view, the status bar, and overlays.
    pub fn render(&mut self, frame: &mut Frame) {
        let area = frame.area();
        self.last_width = area.width;
        let bar = views::attach_bar::height(self.model.remote.as_ref(), area.width);
        let [tabs, attach, body, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(bar),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        let hints = self.hints();
        let ctx = ctx!(self);
        views::tabs::render(frame, tabs, &ctx, self.view);
        views::attach_bar::render(frame, attach, &ctx);
        self.views.render(self.view, frame, body, &ctx);
        // The help overlay leaves the footer to what is under it.
        let layer = self.overlays.under_help(self.view.layer());
        let footer = Footer { flash: self.flash.as_deref(), editor: self.overlays.editor(), hints, layer };
        views::status_bar::render(frame, status, &ctx, &footer);
        // The overlays over the body, bottom to top (the input line is the footer's).
        let prompt = self.overlays.input().cloned();
        let ctx = ctx!(self, prompt.as_ref());
        for o in self.overlays.iter_mut() {
            match o {
                Overlay::Editor(ed) => ed.render(frame, body, &ctx),
                Overlay::Merge(mg) => mg.render(frame, body, &ctx),
                Overlay::Help(help) => help.render(frame, body, &ctx, layer),
                Overlay::Input(_) => {}
            }
        }
    }
}

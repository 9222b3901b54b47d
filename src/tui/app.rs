//! The workbench's state and input handling, with no terminal: keys become `Action`s through the
//! keymap and change only this struct; the event loop (`tui::run`) feeds it input and engine
//! notices and draws it when something changed. Tests drive it directly.

use crate::engine::CandidateId;
use crate::tui::keymap::{Action, Keymap};
use crate::tui::model::{Memo, Model};
use crate::tui::theme::Theme;
use crate::tui::views;
use crossterm::event::{
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::Frame;
use std::cell::{Cell, Ref};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Dashboard,
    Frontier,
    WinMatrix,
    Candidate,
    Traces,
    Reflections,
    Review,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Dashboard,
        View::Frontier,
        View::WinMatrix,
        View::Candidate,
        View::Traces,
        View::Reflections,
        View::Review,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Dashboard => "Dashboard",
            View::Frontier => "Frontier",
            View::WinMatrix => "Win matrix",
            View::Candidate => "Candidate",
            View::Traces => "Traces",
            View::Reflections => "Reflections",
            View::Review => "Review",
        }
    }

    pub fn short_title(self) -> &'static str {
        match self {
            View::Dashboard => "Dash",
            View::Frontier => "Front",
            View::WinMatrix => "Wins",
            View::Candidate => "Cand",
            View::Traces => "Trace",
            View::Reflections => "Refl",
            View::Review => "Review",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).expect("listed")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontierSort {
    Id,
    ValMean,
    FrontsHeld,
    TestScore,
}

impl FrontierSort {
    pub fn label(self) -> &'static str {
        match self {
            FrontierSort::Id => "id",
            FrontierSort::ValMean => "val mean ↓",
            FrontierSort::FrontsHeld => "fronts held ↓",
            FrontierSort::TestScore => "test ↓",
        }
    }
    fn next(self) -> Self {
        match self {
            FrontierSort::Id => FrontierSort::ValMean,
            FrontierSort::ValMean => FrontierSort::FrontsHeld,
            FrontierSort::FrontsHeld => FrontierSort::TestScore,
            FrontierSort::TestScore => FrontierSort::Id,
        }
    }
}

#[derive(Debug, Default)]
pub struct FrontierUi {
    pub sort: FrontierSortCell,
    pub filter: String,
    pub offset: Cell<usize>,
    /// (model version, sort, filter) -> candidate ids in display order.
    rows: Memo<(u64, FrontierSort, String), Vec<CandidateId>>,
}

/// The frontier's sort order (a newtype so `FrontierUi` can derive Default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontierSortCell(pub FrontierSort);

impl Default for FrontierSortCell {
    fn default() -> Self {
        FrontierSortCell(FrontierSort::Id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExampleOrder {
    /// As in the val file.
    Val,
    /// Lowest mean score over the candidates first.
    HardestFirst,
    EasiestFirst,
}

impl ExampleOrder {
    pub fn label(self) -> &'static str {
        match self {
            ExampleOrder::Val => "val order",
            ExampleOrder::HardestFirst => "hardest first",
            ExampleOrder::EasiestFirst => "easiest first",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixPane {
    Heat,
    Pairwise,
}

#[derive(Debug)]
pub struct MatrixUi {
    pub pane: MatrixPane,
    /// Column cursor: a position in `example_order`.
    pub col: usize,
    pub order: ExampleOrder,
    /// Pairwise matrix: the column candidate (the row is the selected candidate).
    pub other: CandidateId,
    pub row_offset: Cell<usize>,
    pub col_offset: Cell<usize>,
    pub pair_row_offset: Cell<usize>,
    pub pair_col_offset: Cell<usize>,
    /// Where the heat map's cells were drawn (for mouse clicks).
    pub heat_area: Cell<Rect>,
    order_cache: Memo<(u64, ExampleOrder), Vec<usize>>,
}

impl Default for MatrixUi {
    fn default() -> Self {
        MatrixUi {
            pane: MatrixPane::Heat,
            col: 0,
            order: ExampleOrder::Val,
            other: 0,
            row_offset: Cell::new(0),
            col_offset: Cell::new(0),
            pair_row_offset: Cell::new(0),
            pair_col_offset: Cell::new(0),
            heat_area: Cell::new(Rect::default()),
            order_cache: Memo::default(),
        }
    }
}

/// A scroll position in a text pane; the pane's last render records how far it can go, so the
/// position never runs past the end (and scrolling back up is immediate).
#[derive(Debug, Default)]
pub struct Scroll {
    pub pos: u16,
    pub max: Cell<u16>,
}

impl Scroll {
    pub fn by(&mut self, delta: i32) {
        self.pos = (self.pos as i32 + delta).clamp(0, self.max.get() as i32) as u16;
    }
    pub fn reset(&mut self) {
        self.pos = 0;
    }
    /// The position to draw at, given the rows the content has and the rows visible.
    pub fn at(&self, content_rows: usize, visible: u16) -> u16 {
        let max = content_rows.saturating_sub(visible as usize).min(u16::MAX as usize) as u16;
        self.max.set(max);
        self.pos.min(max)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffMode {
    Off,
    Parent,
    Other,
}

#[derive(Debug)]
pub struct CandidateUi {
    pub diff: DiffMode,
    pub compare: CandidateId,
    pub scroll: Scroll,
}

impl Default for CandidateUi {
    fn default() -> Self {
        CandidateUi { diff: DiffMode::Parent, compare: 0, scroll: Scroll::default() }
    }
}

#[derive(Debug, Default)]
pub struct TracesUi {
    /// The selected val example (an index into the val split).
    pub example: Option<usize>,
    pub query: String,
    pub scroll: Scroll,
    pub offset: Cell<usize>,
    pub list_area: Cell<Rect>,
    pub detail_area: Cell<Rect>,
}

#[derive(Debug, Default)]
pub struct ReflectionsUi {
    /// An index into `model.proposals`; None follows the newest.
    pub selected: Option<usize>,
    pub scroll: Scroll,
    pub offset: Cell<usize>,
    pub list_area: Cell<Rect>,
    pub detail_area: Cell<Rect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputTarget {
    FrontierFilter,
    TraceSearch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLine {
    pub target: InputTarget,
    pub text: String,
}

/// What the workbench asks of the engine; the event loop carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineCommand {
    Pause,
    Resume,
}

pub struct App {
    pub model: Model,
    pub keymap: Keymap,
    pub theme: Theme,
    pub view: View,
    pub help: bool,
    pub help_scroll: Scroll,
    pub input: Option<InputLine>,
    pub selected: CandidateId,
    pub frontier: FrontierUi,
    pub matrix: MatrixUi,
    pub candidate: CandidateUi,
    pub traces: TracesUi,
    pub reflections: ReflectionsUi,
    /// A one-line message in the status bar until the next key.
    pub flash: Option<String>,
    pub quit: bool,
    pub commands: Vec<EngineCommand>,
    /// The project folder, shown in the status bar.
    pub project_label: String,
    /// Where the frontier rows were drawn (for mouse clicks).
    pub frontier_area: Cell<Rect>,
    /// The terminal width at the last render (tab hit-testing uses the same layout).
    pub last_width: Cell<u16>,
}

impl App {
    pub fn new(model: Model, keymap: Keymap, theme: Theme) -> App {
        App {
            model,
            keymap,
            theme,
            view: View::Dashboard,
            help: false,
            help_scroll: Scroll::default(),
            input: None,
            selected: 0,
            frontier: FrontierUi::default(),
            matrix: MatrixUi::default(),
            candidate: CandidateUi::default(),
            traces: TracesUi::default(),
            reflections: ReflectionsUi::default(),
            flash: None,
            quit: false,
            commands: Vec::new(),
            project_label: String::new(),
            frontier_area: Cell::new(Rect::default()),
            last_width: Cell::new(80),
        }
    }

    pub fn n_candidates(&self) -> usize {
        self.model.state.candidates.len()
    }

    /// Candidate ids in the frontier's order, filtered; cached until the model or the order changes.
    pub fn frontier_rows(&self) -> Ref<'_, Vec<CandidateId>> {
        let key = (self.model.version, self.frontier.sort.0, self.frontier.filter.clone());
        self.frontier.rows.get(key, || self.compute_frontier_rows())
    }

    fn compute_frontier_rows(&self) -> Vec<CandidateId> {
        let cands = &self.model.state.candidates;
        let needle = self.frontier.filter.to_lowercase();
        let mut rows: Vec<CandidateId> = cands
            .iter()
            .filter(|c| {
                needle.is_empty()
                    || format!("#{}", c.id) == needle
                    || c.origin.as_str().contains(&needle)
                    || c.changed.iter().any(|n| n.to_lowercase().contains(&needle))
                    || c.texts.values().any(|t| t.to_lowercase().contains(&needle))
            })
            .map(|c| c.id)
            .collect();
        let held = self.model.fronts_held();
        match self.frontier.sort.0 {
            FrontierSort::Id => {}
            FrontierSort::ValMean => {
                rows.sort_by(|a, b| cands[*b].val_mean.total_cmp(&cands[*a].val_mean).then(a.cmp(b)))
            }
            FrontierSort::FrontsHeld => rows.sort_by(|a, b| {
                held.get(*b).copied().unwrap_or(0).cmp(&held.get(*a).copied().unwrap_or(0)).then(a.cmp(b))
            }),
            FrontierSort::TestScore => rows.sort_by(|a, b| {
                let t = |c: &CandidateId| cands[*c].test_mean.unwrap_or(f64::NEG_INFINITY);
                t(b).total_cmp(&t(a)).then(a.cmp(b))
            }),
        }
        rows
    }

    /// Val example indices in the heat map's column order; cached per model version.
    pub fn example_order(&self) -> Ref<'_, Vec<usize>> {
        let key = (self.model.version, self.matrix.order);
        self.matrix.order_cache.get(key, || {
            let n = self.model.state.val_ids.len();
            let mut idx: Vec<usize> = (0..n).collect();
            let diff = |i: usize| self.model.difficulty(i);
            match self.matrix.order {
                ExampleOrder::Val => {}
                ExampleOrder::HardestFirst => idx.sort_by(|a, b| diff(*a).total_cmp(&diff(*b)).then(a.cmp(b))),
                ExampleOrder::EasiestFirst => idx.sort_by(|a, b| diff(*b).total_cmp(&diff(*a)).then(a.cmp(b))),
            }
            idx
        })
    }

    /// The selected candidate's val examples for the traces list: failures first (errors, then
    /// lowest score), filtered by the search query.
    pub fn trace_rows(&self) -> Vec<usize> {
        let Some(evals) = self.model.val_evals.get(self.selected) else {
            return Vec::new();
        };
        let q = self.traces.query.to_lowercase();
        let mut rows: Vec<usize> = (0..evals.len())
            .filter(|&i| {
                if q.is_empty() {
                    return true;
                }
                let e = &evals[i];
                let hay = |s: &str| s.to_lowercase().contains(&q);
                hay(&e.example_id)
                    || hay(&e.output)
                    || hay(&e.feedback)
                    || e.error.as_deref().is_some_and(hay)
                    || e.trace.steps.iter().any(|s| s.messages.iter().any(|m| hay(&m.content)))
                    || self
                        .model
                        .examples
                        .get(&e.example_id)
                        .is_some_and(|ex| ex.fields.values().any(|v| hay(&v.to_string())))
            })
            .collect();
        rows.sort_by(|a, b| {
            let (ea, eb) = (&evals[*a], &evals[*b]);
            eb.error.is_some().cmp(&ea.error.is_some()).then(ea.score.total_cmp(&eb.score)).then(a.cmp(b))
        });
        rows
    }

    /// Feeds one terminal event; returns whether anything visible may have changed.
    pub fn on_terminal_event(&mut self, ev: &TermEvent) -> bool {
        match ev {
            TermEvent::Key(k) => self.on_key(*k),
            TermEvent::Mouse(m) => self.on_mouse(*m),
            TermEvent::Resize(..) => true,
            _ => false,
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        // Terminals with the kitty protocol report releases too; a key acts once.
        if key.kind == KeyEventKind::Release {
            return false;
        }
        self.flash = None;
        if self.input.is_some() {
            self.on_input_key(key);
            return true;
        }
        match self.keymap.action_for(&key) {
            Some(a) => {
                self.perform(a);
                true
            }
            None => {
                if key.code != KeyCode::Null && key.modifiers & !KeyModifiers::SHIFT == KeyModifiers::NONE {
                    self.flash =
                        Some(format!("{} is not bound; ? lists the keys", crate::tui::keymap::Key::from_event(&key)));
                }
                true
            }
        }
    }

    fn on_input_key(&mut self, key: KeyEvent) {
        let Some(input) = self.input.as_mut() else { return };
        match key.code {
            KeyCode::Enter => {
                self.input = None;
            }
            KeyCode::Esc => {
                let target = input.target;
                self.input = None;
                self.set_input_text(target, String::new());
            }
            KeyCode::Backspace => {
                input.text.pop();
                let (t, s) = (input.target, input.text.clone());
                self.set_input_text(t, s);
            }
            KeyCode::Char(c) if !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
                input.text.push(c);
                let (t, s) = (input.target, input.text.clone());
                self.set_input_text(t, s);
            }
            _ => {}
        }
    }

    fn set_input_text(&mut self, target: InputTarget, text: String) {
        match target {
            InputTarget::FrontierFilter => {
                self.frontier.filter = text;
                self.frontier.offset.set(0);
            }
            InputTarget::TraceSearch => {
                self.traces.query = text;
                self.traces.offset.set(0);
                self.traces.scroll.reset();
            }
        }
    }

    pub fn goto(&mut self, view: View) {
        self.view = view;
        self.help = false;
    }

    /// Does what an action means in the current view.
    pub fn perform(&mut self, action: Action) {
        if self.help {
            match action {
                Action::Help | Action::Back => self.help = false,
                Action::Quit => self.quit = true,
                Action::Down | Action::ScrollDown => self.help_scroll.by(1),
                Action::Up | Action::ScrollUp => self.help_scroll.by(-1),
                Action::PageDown => self.help_scroll.by(10),
                Action::PageUp => self.help_scroll.by(-10),
                Action::Top => self.help_scroll.reset(),
                _ => {
                    self.help = false;
                    self.perform(action);
                }
            }
            return;
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Help => {
                self.help = true;
                self.help_scroll.reset();
            }
            Action::TogglePause => self.toggle_pause(),
            Action::ViewDashboard => self.goto(View::Dashboard),
            Action::ViewFrontier => self.goto(View::Frontier),
            Action::ViewWinMatrix => self.goto(View::WinMatrix),
            Action::ViewCandidate => self.goto(View::Candidate),
            Action::ViewTraces => self.goto(View::Traces),
            Action::ViewReflections => self.goto(View::Reflections),
            Action::ViewReview => self.goto(View::Review),
            Action::NextView => self.goto(View::ALL[(self.view.index() + 1) % View::ALL.len()]),
            Action::PrevView => self.goto(View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()]),
            Action::OpenTraces => {
                self.traces.example = None;
                self.traces.scroll.reset();
                self.goto(View::Traces);
            }
            Action::Back => {
                if self.view == View::Frontier && !self.frontier.filter.is_empty() {
                    self.frontier.filter.clear();
                } else if self.view == View::Traces && !self.traces.query.is_empty() {
                    self.traces.query.clear();
                } else if self.view == View::WinMatrix && self.matrix.pane == MatrixPane::Pairwise {
                    self.matrix.pane = MatrixPane::Heat;
                }
            }
            _ => match self.view {
                View::Dashboard | View::Review => {}
                View::Frontier => self.frontier_action(action),
                View::WinMatrix => self.matrix_action(action),
                View::Candidate => self.candidate_action(action),
                View::Traces => self.traces_action(action),
                View::Reflections => self.reflections_action(action),
            },
        }
    }

    fn toggle_pause(&mut self) {
        if !self.model.is_live() {
            self.flash = Some(if self.model.state.finished.is_some() {
                "this run is finished; there is nothing to pause".into()
            } else {
                "no engine is running in this window".into()
            });
            return;
        }
        if self.model.paused {
            self.commands.push(EngineCommand::Resume);
            self.model.paused = false;
            self.flash = Some("resumed".into());
        } else {
            self.commands.push(EngineCommand::Pause);
            self.model.paused = true;
            self.flash = Some("pausing: calls in flight finish, nothing new starts".into());
        }
    }

    /// Moves a cursor within `0..len` by `delta` (clamped).
    fn step(pos: usize, delta: isize, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        (pos as isize + delta).clamp(0, len as isize - 1) as usize
    }

    fn page(&self) -> isize {
        10
    }

    fn frontier_action(&mut self, action: Action) {
        let rows = self.frontier_rows().clone();
        let pos = rows.iter().position(|c| *c == self.selected).unwrap_or(0);
        let new_pos = match action {
            Action::Up => Self::step(pos, -1, rows.len()),
            Action::Down => Self::step(pos, 1, rows.len()),
            Action::PageUp => Self::step(pos, -self.page(), rows.len()),
            Action::PageDown => Self::step(pos, self.page(), rows.len()),
            Action::Top => 0,
            Action::Bottom => rows.len().saturating_sub(1),
            Action::Open => {
                if let Some(&c) = rows.get(pos) {
                    self.select_candidate(c);
                    self.goto(View::Candidate);
                }
                return;
            }
            Action::Sort => {
                self.frontier.sort.0 = self.frontier.sort.0.next();
                self.flash = Some(format!("sorted by {}", self.frontier.sort.0.label()));
                return;
            }
            Action::Search => {
                self.input =
                    Some(InputLine { target: InputTarget::FrontierFilter, text: self.frontier.filter.clone() });
                return;
            }
            _ => return,
        };
        if let Some(&c) = rows.get(new_pos) {
            self.select_candidate(c);
        }
    }

    pub fn select_candidate(&mut self, c: CandidateId) {
        if c != self.selected {
            self.selected = c;
            self.candidate.scroll.reset();
            self.traces.scroll.reset();
            self.traces.example = None;
            if let Some(rec) = self.model.state.candidates.get(c) {
                self.candidate.compare = rec.parents.first().copied().unwrap_or(c);
            }
        }
    }

    fn matrix_action(&mut self, action: Action) {
        let n_c = self.n_candidates();
        let n_e = self.model.state.val_ids.len();
        match (self.matrix.pane, action) {
            (_, Action::SwitchPane) => {
                self.matrix.pane = match self.matrix.pane {
                    MatrixPane::Heat => MatrixPane::Pairwise,
                    MatrixPane::Pairwise => MatrixPane::Heat,
                }
            }
            (_, Action::Sort) => {
                self.matrix.order = match self.matrix.order {
                    ExampleOrder::Val => ExampleOrder::HardestFirst,
                    ExampleOrder::HardestFirst => ExampleOrder::EasiestFirst,
                    ExampleOrder::EasiestFirst => ExampleOrder::Val,
                };
                self.flash = Some(format!("examples in {}", self.matrix.order.label()));
            }
            (_, Action::Up) => self.select_candidate(Self::step(self.selected, -1, n_c)),
            (_, Action::Down) => self.select_candidate(Self::step(self.selected, 1, n_c)),
            (_, Action::PageUp) => self.select_candidate(Self::step(self.selected, -self.page(), n_c)),
            (_, Action::PageDown) => self.select_candidate(Self::step(self.selected, self.page(), n_c)),
            (MatrixPane::Heat, Action::Left) => self.matrix.col = Self::step(self.matrix.col, -1, n_e),
            (MatrixPane::Heat, Action::Right) => self.matrix.col = Self::step(self.matrix.col, 1, n_e),
            (MatrixPane::Heat, Action::Top) => self.matrix.col = 0,
            (MatrixPane::Heat, Action::Bottom) => self.matrix.col = n_e.saturating_sub(1),
            (MatrixPane::Heat, Action::Open) => {
                let Some(&example) = self.example_order().get(self.matrix.col) else { return };
                if self.model.val_eval(self.selected, example).is_some() {
                    self.traces.example = Some(example);
                    self.traces.query.clear();
                    self.traces.scroll.reset();
                    self.goto(View::Traces);
                } else {
                    self.flash = Some(format!("candidate #{} has no val evaluation yet", self.selected));
                }
            }
            (MatrixPane::Pairwise, Action::Left) => self.matrix.other = Self::step(self.matrix.other, -1, n_c),
            (MatrixPane::Pairwise, Action::Right) => self.matrix.other = Self::step(self.matrix.other, 1, n_c),
            (MatrixPane::Pairwise, Action::Top) => self.matrix.other = 0,
            (MatrixPane::Pairwise, Action::Bottom) => self.matrix.other = n_c.saturating_sub(1),
            (MatrixPane::Pairwise, Action::Open) => {
                let other = self.matrix.other;
                self.candidate.compare = other;
                self.candidate.diff = DiffMode::Other;
                self.candidate.scroll.reset();
                self.goto(View::Candidate);
            }
            _ => {}
        }
    }

    fn candidate_action(&mut self, action: Action) {
        let n_c = self.n_candidates();
        match action {
            Action::Up | Action::ScrollUp => self.candidate.scroll.by(-1),
            Action::Down | Action::ScrollDown => self.candidate.scroll.by(1),
            Action::PageUp => self.candidate.scroll.by(-10),
            Action::PageDown => self.candidate.scroll.by(10),
            Action::Top => self.candidate.scroll.reset(),
            Action::Left => self.select_candidate(Self::step(self.selected, -1, n_c)),
            Action::Right => self.select_candidate(Self::step(self.selected, 1, n_c)),
            Action::Diff => {
                self.candidate.diff = match self.candidate.diff {
                    DiffMode::Off => DiffMode::Parent,
                    DiffMode::Parent => DiffMode::Other,
                    DiffMode::Other => DiffMode::Off,
                };
            }
            Action::CompareNext | Action::ComparePrev => {
                let d = if action == Action::CompareNext { 1 } else { -1 };
                let mut c = Self::step(self.candidate.compare, d, n_c);
                if c == self.selected && n_c > 1 {
                    c = Self::step(c, d, n_c);
                }
                self.candidate.compare = c;
                self.candidate.diff = DiffMode::Other;
            }
            Action::Open => {
                self.traces.example = None;
                self.goto(View::Traces);
            }
            _ => {}
        }
    }

    fn traces_action(&mut self, action: Action) {
        let rows = self.trace_rows();
        let pos = self.traces.example.and_then(|e| rows.iter().position(|r| *r == e)).unwrap_or(0);
        let new_pos = match action {
            Action::Up => Self::step(pos, -1, rows.len()),
            Action::Down => Self::step(pos, 1, rows.len()),
            Action::Top => 0,
            Action::Bottom => rows.len().saturating_sub(1),
            Action::Left => {
                self.select_candidate(Self::step(self.selected, -1, self.n_candidates()));
                return;
            }
            Action::Right => {
                self.select_candidate(Self::step(self.selected, 1, self.n_candidates()));
                return;
            }
            Action::PageUp => {
                self.traces.scroll.by(-10);
                return;
            }
            Action::PageDown => {
                self.traces.scroll.by(10);
                return;
            }
            Action::ScrollUp => {
                self.traces.scroll.by(-1);
                return;
            }
            Action::ScrollDown => {
                self.traces.scroll.by(1);
                return;
            }
            Action::Search => {
                self.input = Some(InputLine { target: InputTarget::TraceSearch, text: self.traces.query.clone() });
                return;
            }
            _ => return,
        };
        if let Some(&e) = rows.get(new_pos) {
            if self.traces.example != Some(e) {
                self.traces.scroll.reset();
            }
            self.traces.example = Some(e);
        }
    }

    /// Proposals newest first, as indices into `model.proposals`.
    pub fn reflection_rows(&self) -> Vec<usize> {
        (0..self.model.proposals.len()).rev().collect()
    }

    fn reflections_action(&mut self, action: Action) {
        let n = self.model.proposals.len();
        if n == 0 {
            return;
        }
        // Display order is newest first: "down" goes to an older proposal.
        let cur = self.reflections.selected.unwrap_or(n - 1).min(n - 1);
        let pos = n - 1 - cur;
        let new_pos = match action {
            Action::Up => Self::step(pos, -1, n),
            Action::Down => Self::step(pos, 1, n),
            Action::Top => 0,
            Action::Bottom => n - 1,
            Action::PageUp => {
                self.reflections.scroll.by(-10);
                return;
            }
            Action::PageDown => {
                self.reflections.scroll.by(10);
                return;
            }
            Action::ScrollUp => {
                self.reflections.scroll.by(-1);
                return;
            }
            Action::ScrollDown => {
                self.reflections.scroll.by(1);
                return;
            }
            Action::Open => {
                if let Some(c) = self.model.proposals.get(cur).and_then(|p| p.child) {
                    self.select_candidate(c);
                    self.goto(View::Candidate);
                } else {
                    self.flash = Some("this proposal did not become a candidate".into());
                }
                return;
            }
            _ => return,
        };
        let sel = n - 1 - new_pos;
        if Some(sel) != self.reflections.selected {
            self.reflections.scroll.reset();
        }
        // The newest row follows new proposals as they arrive.
        self.reflections.selected = if new_pos == 0 { None } else { Some(sel) };
    }

    pub fn on_mouse(&mut self, m: MouseEvent) -> bool {
        let pos = Position::new(m.column, m.row);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if m.row == 0 {
                    if let Some(v) = views::tabs::hit(self.last_width.get(), m.column) {
                        self.goto(v);
                    }
                    return true;
                }
                if self.help {
                    self.help = false;
                    return true;
                }
                self.click(pos);
                true
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let down = m.kind == MouseEventKind::ScrollDown;
                let in_detail = match self.view {
                    View::Traces => self.traces.detail_area.get().contains(pos),
                    View::Reflections => self.reflections.detail_area.get().contains(pos),
                    _ => false,
                };
                let action = match (self.help || in_detail || self.view == View::Candidate, down) {
                    (true, true) => Action::ScrollDown,
                    (true, false) => Action::ScrollUp,
                    (false, true) => Action::Down,
                    (false, false) => Action::Up,
                };
                for _ in 0..if in_detail || self.help { 3 } else { 1 } {
                    self.perform(action);
                }
                true
            }
            _ => false,
        }
    }

    fn click(&mut self, pos: Position) {
        match self.view {
            View::Frontier => {
                let area = self.frontier_area.get();
                if area.contains(pos) {
                    let row = self.frontier.offset.get() + (pos.y - area.y) as usize;
                    let c = self.frontier_rows().get(row).copied();
                    if let Some(c) = c {
                        self.select_candidate(c);
                    }
                }
            }
            View::WinMatrix => {
                let area = self.matrix.heat_area.get();
                if area.contains(pos) {
                    let row = self.matrix.row_offset.get() + (pos.y - area.y) as usize;
                    let col = self.matrix.col_offset.get() + ((pos.x - area.x) / views::win_matrix::CELL_W) as usize;
                    if row < self.n_candidates() && col < self.model.state.val_ids.len() {
                        self.matrix.pane = MatrixPane::Heat;
                        self.select_candidate(row);
                        self.matrix.col = col;
                    }
                }
            }
            View::Traces => {
                let area = self.traces.list_area.get();
                if area.contains(pos) {
                    let row = self.traces.offset.get() + (pos.y - area.y) as usize;
                    if let Some(&e) = self.trace_rows().get(row) {
                        self.traces.example = Some(e);
                        self.traces.scroll.reset();
                    }
                }
            }
            View::Reflections => {
                let area = self.reflections.list_area.get();
                if area.contains(pos) {
                    let row = self.reflections.offset.get() + (pos.y - area.y) as usize;
                    let n = self.model.proposals.len();
                    if row < n {
                        self.reflections.selected = if row == 0 { None } else { Some(n - 1 - row) };
                        self.reflections.scroll.reset();
                    }
                }
            }
            _ => {}
        }
    }

    /// Draws the whole screen: tabs, the current view, the status bar, and overlays.
    pub fn render(&self, frame: &mut Frame) {
        let area = frame.area();
        self.last_width.set(area.width);
        let [tabs, body, status] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(area);
        let theme = &self.theme;
        views::tabs::render(frame, tabs, self, theme);
        match self.view {
            View::Dashboard => views::dashboard::render(frame, body, self, theme),
            View::Frontier => views::frontier::render(frame, body, self, theme),
            View::WinMatrix => views::win_matrix::render(frame, body, self, theme),
            View::Candidate => views::candidate::render(frame, body, self, theme),
            View::Traces => views::traces::render(frame, body, self, theme),
            View::Reflections => views::reflections::render(frame, body, self, theme),
            View::Review => views::review::render(frame, body, self, theme),
        }
        views::status_bar::render(frame, status, self, theme);
        if self.help {
            views::help::render(frame, body, self, theme);
        }
    }
}

//! The workbench's state and input handling, with no terminal: keys become `Action`s through the
//! keymap and change only this struct; the event loop (`tui::run`) feeds it input and engine
//! notices and draws it when something changed. Tests drive it directly.

use crate::engine::event::{HumanAction, ReviewItem};
use crate::engine::{CandidateId, Origin};
use crate::project::config::ReviewPolicy;
use crate::project::Candidate;
use crate::tui::editor::TextEditor;
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
    /// The run's objective at this index (of `RunState::objective_names`), best first.
    Objective(usize),
}

impl FrontierSort {
    /// `objectives` are the run's objective names.
    pub fn label(self, objectives: &[String]) -> String {
        match self {
            FrontierSort::Id => "id".into(),
            FrontierSort::ValMean => "val mean ↓".into(),
            FrontierSort::FrontsHeld => "fronts held ↓".into(),
            FrontierSort::TestScore => "test ↓".into(),
            FrontierSort::Objective(i) => match objectives.get(i) {
                // Best first: the fewest tokens (↑) for a lower-is-better objective.
                Some(n) if crate::eval::objective::lower_is_better(n) => format!("{n} ↑"),
                Some(n) => format!("{n} ↓"),
                None => "id".into(),
            },
        }
    }

    /// The next order: the fixed ones, then each of the run's `n_objectives` objectives.
    fn next(self, n_objectives: usize) -> Self {
        match self {
            FrontierSort::Id => FrontierSort::ValMean,
            FrontierSort::ValMean => FrontierSort::FrontsHeld,
            FrontierSort::FrontsHeld => FrontierSort::TestScore,
            FrontierSort::TestScore if n_objectives > 0 => FrontierSort::Objective(0),
            FrontierSort::Objective(i) if i + 1 < n_objectives => FrontierSort::Objective(i + 1),
            FrontierSort::TestScore | FrontierSort::Objective(_) => FrontierSort::Id,
        }
    }
}

#[derive(Debug, Default)]
pub struct FrontierUi {
    pub sort: FrontierSortCell,
    /// The trade-off plot is shown beside (or under) the table.
    pub trade_off: bool,
    /// The plot's axes as chosen (x, y): indices into the val score and the run's objectives;
    /// None until chosen (then x is the first objective and y the val score).
    pub axis_choice: Option<[usize; 2]>,
    pub filter: String,
    pub offset: Cell<usize>,
    /// (model version, sort, filter) -> candidate ids in display order.
    rows: Memo<(u64, FrontierSort, String), Vec<CandidateId>>,
}

impl FrontierUi {
    /// The plot's (x, y) axes among `n` (the val score, then the objectives).
    pub fn axes(&self, n: usize) -> [usize; 2] {
        let [x, y] = self.axis_choice.unwrap_or([1, 0]);
        let clamp = |i: usize| if i < n { i } else { 0 };
        [clamp(x), clamp(y)]
    }

    /// Moves one axis (0 = x, 1 = y) to the next of `n` axes, skipping the other axis's.
    fn next_axis(&mut self, which: usize, n: usize) {
        let mut axes = self.axes(n);
        if n >= 2 {
            let mut next = (axes[which] + 1) % n;
            if next == axes[1 - which] {
                next = (next + 1) % n;
            }
            axes[which] = next;
        }
        self.axis_choice = Some(axes);
    }
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
    /// The objective the heat map and the wins/ties/losses show instead of the main score.
    pub objective: Option<String>,
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
            objective: None,
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
    /// Some(k): the minibatch evaluations of proposal k (`model.proposals[k]`: the parent's, then
    /// the child's) instead of the selected candidate's val evaluations.
    pub proposal: Option<usize>,
    /// The selected row's evaluation (an index into `App::trace_evals`).
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

#[derive(Debug, Default)]
pub struct ReviewUi {
    /// The selected item's number; None (or an item no longer pending) selects the first.
    pub item: Option<u64>,
    pub scroll: Scroll,
    pub offset: Cell<usize>,
    pub list_area: Cell<Rect>,
    pub detail_area: Cell<Rect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputTarget {
    FrontierFilter,
    TraceSearch,
    /// The reason for vetoing this review item (optional).
    VetoReason {
        item: u64,
    },
    /// A folder of component files to add as a candidate.
    Folder,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLine {
    pub target: InputTarget,
    pub text: String,
    /// Why the last Enter did not go through (the text stays for another try).
    pub error: Option<String>,
}

/// What an edit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditTarget {
    /// Edit a pending review item's texts, then approve it.
    ReviewItem { item: u64 },
    /// A new candidate from a candidate's texts (origin human, parent that candidate).
    HandEdit { parent: CandidateId },
}

/// The inline editor over a candidate's texts, one editor per component.
#[derive(Debug, Clone)]
pub struct EditSession {
    pub target: EditTarget,
    /// Component names, in the run's order.
    pub names: Vec<String>,
    /// The texts before editing, as they were (the editors hold them sanitized).
    pub originals: Candidate,
    pub editors: Vec<TextEditor>,
    pub current: usize,
    /// Esc was pressed once over unsent edits.
    pub confirm_discard: bool,
}

impl EditSession {
    pub fn new(target: EditTarget, names: &[String], texts: &Candidate) -> EditSession {
        let editors = names
            .iter()
            .map(|n| TextEditor::new(&crate::text::sanitize(texts.get(n).map(String::as_str).unwrap_or(""))))
            .collect();
        EditSession {
            target,
            names: names.to_vec(),
            originals: texts.clone(),
            editors,
            current: 0,
            confirm_discard: false,
        }
    }

    /// The edited texts; a component left as it was keeps its original text exactly (the editor
    /// shows it with control characters removed).
    pub fn texts(&self) -> Candidate {
        self.names
            .iter()
            .zip(&self.editors)
            .map(|(n, e)| {
                let orig = self.originals.get(n).cloned().unwrap_or_default();
                let text = e.text();
                (n.clone(), if text == crate::text::sanitize(&orig) { orig } else { text })
            })
            .collect()
    }

    pub fn modified(&self) -> bool {
        self.texts() != self.originals
    }

    /// Components whose text was changed here.
    pub fn changed(&self) -> Vec<&str> {
        let t = self.texts();
        self.names.iter().filter(|n| t.get(*n) != self.originals.get(*n)).map(String::as_str).collect()
    }
}

/// The manual merge screen: for each component, which of the two marked candidates it comes from.
#[derive(Debug)]
pub struct MergeUi {
    pub a: CandidateId,
    pub b: CandidateId,
    pub names: Vec<String>,
    pub from: Vec<CandidateId>,
    /// What the merge rules chose, to show where the person departs from them.
    pub default_from: Vec<CandidateId>,
    pub cursor: usize,
    pub scroll: Scroll,
}

impl MergeUi {
    pub fn texts(&self, model: &Model) -> Candidate {
        self.names
            .iter()
            .zip(&self.from)
            .map(|(n, c)| (n.clone(), model.state.candidates[*c].texts.get(n).cloned().unwrap_or_default()))
            .collect()
    }
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

pub struct App {
    pub model: Model,
    pub keymap: Keymap,
    pub theme: Theme,
    pub view: View,
    pub help: bool,
    pub help_scroll: Scroll,
    pub input: Option<InputLine>,
    pub selected: CandidateId,
    /// The selection follows the best candidate until the user picks one.
    pub follow_best: bool,
    pub frontier: FrontierUi,
    pub matrix: MatrixUi,
    pub candidate: CandidateUi,
    pub traces: TracesUi,
    pub reflections: ReflectionsUi,
    pub review: ReviewUi,
    /// The inline editor, when open (it takes every key).
    pub editor: Option<EditSession>,
    /// The manual merge screen, when open.
    pub merge: Option<MergeUi>,
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
    /// Where the frontier rows were drawn (for mouse clicks).
    pub frontier_area: Cell<Rect>,
    /// The terminal width at the last render (tab hit-testing uses the same layout).
    pub last_width: Cell<u16>,
}

impl App {
    pub fn new(model: Model, keymap: Keymap, theme: Theme) -> App {
        let mut app = App {
            model,
            keymap,
            theme,
            view: View::Dashboard,
            help: false,
            help_scroll: Scroll::default(),
            input: None,
            selected: 0,
            follow_best: true,
            frontier: FrontierUi::default(),
            matrix: MatrixUi::default(),
            candidate: CandidateUi::default(),
            traces: TracesUi::default(),
            reflections: ReflectionsUi::default(),
            review: ReviewUi::default(),
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
            frontier_area: Cell::new(Rect::default()),
            last_width: Cell::new(80),
        };
        app.follow_best_candidate();
        app
    }

    /// Until the user selects a candidate, keep the best one selected, so a finished or reopened
    /// run opens on its winner and a live run's views follow the newest best.
    fn follow_best_candidate(&mut self) {
        if let Some(b) = self.model.state.best().filter(|_| self.follow_best) {
            self.show_candidate(b);
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
            FrontierSort::Objective(i) => {
                // Recorded values are higher-is-better: the best first, unscored last.
                let name = self.model.state.objective_names().get(i).cloned().unwrap_or_default();
                let v = |c: &CandidateId| cands[*c].objectives.get(&name).copied().unwrap_or(f64::NEG_INFINITY);
                rows.sort_by(|a, b| v(b).total_cmp(&v(a)).then(a.cmp(b)))
            }
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

    /// The evaluations the Traces view lists, each with whose it is ("" for a candidate's val
    /// evaluations; "parent" or "child" for a proposal's minibatch).
    pub fn trace_evals(&self) -> Vec<(&'static str, &crate::eval::ExampleEval)> {
        match self.traces.proposal.and_then(|k| self.model.proposals.get(k)) {
            Some(p) => {
                p.parent_evals.iter().map(|e| ("parent", e)).chain(p.child_evals.iter().map(|e| ("child", e))).collect()
            }
            None => {
                self.model.val_evals.get(self.selected).map(|v| v.iter().map(|e| ("", e)).collect()).unwrap_or_default()
            }
        }
    }

    /// Opens the Traces view on the selected candidate's val evaluations.
    fn open_val_traces(&mut self) {
        self.traces.proposal = None;
        self.traces.example = None;
        self.traces.scroll.reset();
        self.goto(View::Traces);
    }

    /// Opens the Traces view on proposal `k`'s minibatch: what parent and child were sent and said.
    fn open_proposal_traces(&mut self, k: usize) {
        let Some(p) = self.model.proposals.get(k) else { return };
        if p.parent_evals.is_empty() && p.child_evals.is_empty() {
            self.flash = Some("this proposal has no minibatch evaluations (yet)".into());
            return;
        }
        self.traces.proposal = Some(k);
        self.traces.example = None;
        self.traces.offset.set(0);
        self.traces.scroll.reset();
        self.goto(View::Traces);
    }

    /// The traces list's rows (indexes into `trace_evals`), filtered by the search query: on val,
    /// failures first (errors, then lowest score); on a minibatch, in its order.
    pub fn trace_rows(&self) -> Vec<usize> {
        let evals = self.trace_evals();
        let minibatch = self.traces.proposal.is_some();
        let q = self.traces.query.to_lowercase();
        let mut rows: Vec<usize> = (0..evals.len())
            .filter(|&i| {
                if q.is_empty() {
                    return true;
                }
                let e = evals[i].1;
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
        // A minibatch keeps its order (parent's, then child's); val puts failures first.
        if !minibatch {
            rows.sort_by(|a, b| {
                let (ea, eb) = (evals[*a].1, evals[*b].1);
                eb.error.is_some().cmp(&ea.error.is_some()).then(ea.score.total_cmp(&eb.score)).then(a.cmp(b))
            });
        }
        rows
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
        if self.editor.is_some() {
            self.on_editor_key(key);
            return true;
        }
        if self.merge.is_some() {
            self.on_merge_key(key);
            return true;
        }
        if self.input.is_some() {
            self.on_input_key(key);
            return true;
        }
        match self.keymap.action_for(&key) {
            Some(a) => {
                if a != Action::Quit {
                    self.quit_armed = false;
                }
                if a != Action::Branch {
                    self.branch_armed = None;
                }
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
        let prompt = matches!(input.target, InputTarget::VetoReason { .. } | InputTarget::Folder);
        match key.code {
            KeyCode::Enter if prompt => {
                let (target, text) = (input.target, input.text.clone());
                self.submit_prompt(target, text);
            }
            KeyCode::Enter => {
                self.input = None;
            }
            KeyCode::Esc if prompt => {
                let target = input.target;
                self.input = None;
                self.flash = Some(match target {
                    InputTarget::VetoReason { item } => format!("veto of item {item} cancelled; nothing sent"),
                    _ => "cancelled; nothing sent".into(),
                });
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
            InputTarget::VetoReason { .. } | InputTarget::Folder => {
                if let Some(i) = self.input.as_mut() {
                    i.error = None;
                }
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
            Action::Quit => self.request_quit(),
            Action::Help => {
                self.help = true;
                self.help_scroll.reset();
            }
            Action::TogglePause => self.toggle_pause(),
            Action::RetryNow => self.retry_now(),
            Action::ViewDashboard => self.goto(View::Dashboard),
            Action::ViewFrontier => self.goto(View::Frontier),
            Action::ViewWinMatrix => self.goto(View::WinMatrix),
            Action::ViewCandidate => self.goto(View::Candidate),
            Action::ViewTraces => {
                self.traces.proposal = None;
                self.goto(View::Traces);
            }
            Action::ViewReflections => self.goto(View::Reflections),
            Action::ViewReview => self.goto(View::Review),
            Action::NextView => self.goto(View::ALL[(self.view.index() + 1) % View::ALL.len()]),
            Action::PrevView => self.goto(View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()]),
            Action::OpenTraces if self.view == View::Reflections => {
                let n = self.model.proposals.len();
                if n > 0 {
                    self.open_proposal_traces(self.reflections.selected.unwrap_or(n - 1).min(n - 1));
                }
            }
            Action::OpenTraces => self.open_val_traces(),
            Action::Back => {
                if self.view == View::Frontier && !self.frontier.filter.is_empty() {
                    self.frontier.filter.clear();
                } else if self.view == View::Traces && !self.traces.query.is_empty() {
                    self.traces.query.clear();
                } else if self.view == View::Traces && self.traces.proposal.is_some() {
                    // Back to the proposal these minibatch traces came from.
                    self.traces.proposal = None;
                    self.goto(View::Reflections);
                } else if self.view == View::WinMatrix && self.matrix.pane == MatrixPane::Pairwise {
                    self.matrix.pane = MatrixPane::Heat;
                }
            }
            Action::ApproveAll => self.approve_all(),
            Action::ToggleMutationReview => self.toggle_policy(true),
            Action::ToggleMergeReview => self.toggle_policy(false),
            Action::Mark => self.toggle_mark(),
            Action::Branch => self.request_branch(),
            Action::MergeMarked => self.open_merge(),
            Action::AddCandidate => {
                if self.need_live("adding a candidate") {
                    self.input = Some(InputLine { target: InputTarget::Folder, text: String::new(), error: None });
                }
            }
            Action::Edit | Action::EditExternal if self.view != View::Review => {
                if matches!(self.view, View::Candidate | View::Frontier) {
                    self.hand_edit(action == Action::EditExternal);
                } else {
                    self.flash = Some(format!(
                        "{} edits in the Review (7), Candidate (4) and Frontier (2) views",
                        self.keymap.describe(action)
                    ));
                }
            }
            Action::Approve | Action::Veto if self.view != View::Review => {
                self.flash = Some(format!(
                    "{} {} the selected item in the Review view (7)",
                    self.keymap.describe(action),
                    if action == Action::Approve { "approves" } else { "vetoes" }
                ));
            }
            Action::Save => {}
            _ => match self.view {
                View::Dashboard => {}
                View::Review => self.review_action(action),
                View::Frontier => self.frontier_action(action),
                View::WinMatrix => self.matrix_action(action),
                View::Candidate => self.candidate_action(action),
                View::Traces => self.traces_action(action),
                View::Reflections => self.reflections_action(action),
            },
        }
    }

    /// `r`: the engine is holding work for a model that does not answer; ask it again now.
    fn retry_now(&mut self) {
        let waiting: Vec<String> = match self.model.live.as_ref().filter(|_| self.model.is_live()) {
            Some(s) => s.outages.iter().map(|o| format!("\"{}\"", o.model)).collect(),
            None => vec![],
        };
        if waiting.is_empty() {
            self.flash = Some("every model is answering; there is nothing to retry".into());
            return;
        }
        self.commands.push(EngineCommand::RetryNow);
        self.flash = Some(format!("trying model {} again now", waiting.join(", ")));
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

    /// `q`: leaves, unless decisions are not safely recorded yet: sent and not yet applied, or
    /// applied in a round still running (stopping abandons that round, to be redone on resume).
    /// Then the first `q` says so; pending items stay pending either way.
    fn request_quit(&mut self) {
        let waiting = self.model.unrecorded_decisions();
        if waiting > 0 && self.model.can_act() && !self.quit_armed {
            self.quit_armed = true;
            self.flash = Some(format!(
                "{waiting} decision(s) not recorded for good yet ({}); {} again quits without them (the items stay pending)",
                if self.model.paused { "the engine is paused: space resumes it" } else { "wait for this round to end" },
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
            Notice::Warning(w) if w.starts_with("ignored: ") => Some(w.clone()),
            _ => None,
        };
        self.model.on_notice(n);
        self.follow_best_candidate();
        if self.model.sent.len() < sent_before {
            self.flash = match (applied, refused) {
                (Some((round, a)), _) => Some(format!("{} applied in round {round}", action_word(&a))),
                (_, Some(w)) => Some(format!("the engine {}", crate::text::sanitize(&w))),
                _ => self.flash.take(),
            };
        }
    }

    /// Whether decisions can be sent now; if not, says why in the status bar.
    pub fn need_live(&mut self, what: &str) -> bool {
        if self.model.can_act() {
            return true;
        }
        let why = if self.model.state.finished.is_some() {
            "this run is finished; start a new run, or branch one from a candidate with `gepa-tui run --branch RUN:ID`"
                .to_string()
        } else if self.model.engine_done {
            "the engine has stopped; reopen the run to resume it".to_string()
        } else {
            "this run is open read-only; resume it from the start screen (or `gepa-tui --run RUN`)".to_string()
        };
        self.flash = Some(format!("{what} needs a live run: {why}"));
        false
    }

    /// Sends a decision to the engine and remembers it until the engine records it.
    pub fn send(&mut self, action: HumanAction) {
        let what = match &action {
            HumanAction::Approve { item } => format!("approval of item {item}"),
            HumanAction::Veto { item, reason: Some(_) } => format!("veto of item {item} (with its reason)"),
            HumanAction::Veto { item, reason: None } => format!("veto of item {item}"),
            HumanAction::Edit { item, .. } => format!("edited texts of item {item}"),
            HumanAction::AddCandidate { note, .. } => format!("new candidate ({note})"),
            HumanAction::SetPolicy { mutations, merges } => {
                format!("review policy (mutations {}, merges {})", policy_name(*mutations), policy_name(*merges))
            }
        };
        self.commands.push(EngineCommand::Act(action.clone()));
        self.model.sent.push(action);
        self.model.version += 1;
        self.flash = Some(format!("{what} sent; {}", self.when_applied()));
    }

    /// When the engine will apply a decision sent now.
    pub fn when_applied(&self) -> &'static str {
        if self.model.paused {
            "applied at the start of the next round (the engine is paused: space resumes it)"
        } else {
            "applied at the start of the next round"
        }
    }

    /// The review items in display order (oldest first).
    pub fn review_rows(&self) -> &[ReviewItem] {
        &self.model.state.review_queue
    }

    /// The selected review item (the first when none is chosen or the chosen one is gone).
    pub fn selected_item(&self) -> Option<&ReviewItem> {
        let q = self.review_rows();
        self.review.item.and_then(|n| q.iter().find(|i| i.item == n)).or(q.first())
    }

    /// The selected item if a decision can be taken on it now; else says why.
    fn actionable_item(&mut self, what: &str) -> Option<ReviewItem> {
        let Some(it) = self.selected_item().cloned() else {
            self.flash = Some("the review queue is empty".into());
            return None;
        };
        if !self.need_live(what) {
            return None;
        }
        if let Some((round, a)) = self.model.item_decision(it.item) {
            self.flash = Some(format!(
                "item {} already has a decision ({}) {}",
                it.item,
                action_word(a),
                match round {
                    None => "on its way to the engine".to_string(),
                    Some(r) => format!("applied in round {r}"),
                }
            ));
            return None;
        }
        Some(it)
    }

    fn review_action(&mut self, action: Action) {
        let items: Vec<u64> = self.review_rows().iter().map(|i| i.item).collect();
        let pos = self.selected_item().and_then(|it| items.iter().position(|n| *n == it.item)).unwrap_or(0);
        let new_pos = match action {
            Action::Up => Self::step(pos, -1, items.len()),
            Action::Down => Self::step(pos, 1, items.len()),
            Action::Top => 0,
            Action::Bottom => items.len().saturating_sub(1),
            Action::PageUp => return self.review.scroll.by(-10),
            Action::PageDown => return self.review.scroll.by(10),
            Action::ScrollUp => return self.review.scroll.by(-1),
            Action::ScrollDown => return self.review.scroll.by(1),
            Action::Approve => {
                if let Some(it) = self.actionable_item("approving") {
                    self.send(HumanAction::Approve { item: it.item });
                }
                return;
            }
            Action::Veto => {
                if let Some(it) = self.actionable_item("vetoing") {
                    self.input = Some(InputLine {
                        target: InputTarget::VetoReason { item: it.item },
                        text: String::new(),
                        error: None,
                    });
                }
                return;
            }
            Action::Edit | Action::EditExternal => {
                if let Some(it) = self.actionable_item("editing") {
                    let target = EditTarget::ReviewItem { item: it.item };
                    self.start_edit(target, &it.texts, action == Action::EditExternal);
                }
                return;
            }
            Action::Open => {
                // Enter on an item shows its parent in the Candidate view, diffed against nothing new.
                if let Some(p) = self.selected_item().and_then(|it| it.parents.first().copied()) {
                    self.select_candidate(p);
                    self.goto(View::Candidate);
                }
                return;
            }
            _ => return,
        };
        if let Some(&n) = items.get(new_pos) {
            if Some(n) != self.selected_item().map(|i| i.item) {
                self.review.scroll.reset();
            }
            self.review.item = Some(n);
        }
    }

    fn start_edit(&mut self, target: EditTarget, texts: &Candidate, external: bool) {
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
        if self.need_live("a hand edit") {
            self.start_edit(EditTarget::HandEdit { parent: self.selected }, &texts, external);
        }
    }

    /// Sends what an edit produced. Err: why nothing was sent (the caller keeps the texts).
    fn submit_edit(&mut self, target: EditTarget, texts: Candidate) -> Result<(), String> {
        if !self.model.can_act() {
            return Err("the engine is not running any more; nothing was sent".into());
        }
        match target {
            EditTarget::ReviewItem { item } => {
                let Some(it) = self.model.state.review_item(item).cloned() else {
                    return Err(format!("item {item} is no longer pending"));
                };
                if let Some((_, a)) = self.model.item_decision(item) {
                    return Err(format!("item {item} already has a decision ({})", action_word(a)));
                }
                if texts == it.texts {
                    self.send(HumanAction::Approve { item });
                    self.flash =
                        Some(format!("nothing was changed: item {item} approved as it is; {}", self.when_applied()));
                } else {
                    self.send(HumanAction::Edit { item, texts });
                }
                Ok(())
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
                });
                Ok(())
            }
        }
    }

    fn on_editor_key(&mut self, key: KeyEvent) {
        let Some(ed) = self.editor.as_mut() else { return };
        let typed = matches!(key.code, KeyCode::Char(_))
            && !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        let action = if typed { None } else { self.keymap.action_for(&key) };
        if action != Some(Action::Back) {
            ed.confirm_discard = false;
        }
        match action {
            Some(Action::Save) => {
                let (target, texts) = (ed.target, ed.texts());
                match self.submit_edit(target, texts) {
                    Ok(()) => self.editor = None,
                    Err(e) => self.flash = Some(e),
                }
            }
            Some(Action::Back) => {
                if ed.modified() && !ed.confirm_discard {
                    ed.confirm_discard = true;
                    self.flash = Some(format!(
                        "esc again discards your edits; {} sends them",
                        self.keymap.describe(Action::Save)
                    ));
                } else {
                    self.editor = None;
                    self.flash = Some("edit cancelled; nothing sent".into());
                }
            }
            Some(Action::NextView) => ed.current = (ed.current + 1) % ed.editors.len().max(1),
            Some(Action::PrevView) => ed.current = (ed.current + ed.editors.len().max(1) - 1) % ed.editors.len().max(1),
            Some(Action::Quit) => {
                self.flash = Some("esc leaves the editor first (your text stays until you do)".into());
            }
            _ => {
                if let Some(e) = ed.editors.get_mut(ed.current) {
                    e.input(key);
                }
            }
        }
    }

    /// Text pasted into the terminal (bracketed paste) goes into the open editor or prompt.
    pub fn on_paste(&mut self, text: &str) -> bool {
        if let Some(ed) = self.editor.as_mut() {
            if let Some(e) = ed.editors.get_mut(ed.current) {
                e.insert_str(text);
            }
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
        if let Some(err) = outcome.error {
            let mut session = EditSession::new(request.target, &request.names, &request.texts);
            for (name, e) in session.names.iter().zip(session.editors.iter_mut()) {
                if let Some(t) = outcome.texts.get(name) {
                    *e = TextEditor::new(&crate::text::sanitize(t));
                }
            }
            self.editor = Some(session);
            self.flash = Some(format!(
                "{err}; your text is in the editor here ({} sends it)",
                self.keymap.describe(Action::Save)
            ));
            return;
        }
        if outcome.texts == request.texts {
            self.flash = Some("nothing was changed in the editor; nothing sent".into());
            return;
        }
        if let Err(e) = self.submit_edit(request.target, outcome.texts.clone()) {
            let mut session = EditSession::new(request.target, &request.names, &request.texts);
            for (name, ed) in session.names.iter().zip(session.editors.iter_mut()) {
                *ed = TextEditor::new(&crate::text::sanitize(&outcome.texts[name]));
            }
            self.editor = Some(session);
            self.flash = Some(format!("{e}; your text is in the editor here"));
        }
    }

    fn submit_prompt(&mut self, target: InputTarget, text: String) {
        match target {
            InputTarget::VetoReason { item } => {
                self.input = None;
                if !self.need_live("vetoing") {
                    return;
                }
                if self.model.state.review_item(item).is_none() {
                    self.flash = Some(format!("item {item} is no longer pending; the veto was not sent"));
                    return;
                }
                if let Some((_, a)) = self.model.item_decision(item) {
                    self.flash = Some(format!("item {item} already has a decision ({})", action_word(a)));
                    return;
                }
                let reason = Some(text.trim().to_string()).filter(|r| !r.is_empty());
                self.send(HumanAction::Veto { item, reason });
            }
            InputTarget::Folder => match self.candidate_from_folder(text.trim()) {
                Ok((texts, dir)) => {
                    self.input = None;
                    if !self.need_live("adding a candidate") {
                        return;
                    }
                    let dup = self.model.state.candidates.iter().find(|c| c.texts == texts).map(|c| c.id);
                    self.send(HumanAction::AddCandidate {
                        texts,
                        parents: vec![],
                        origin: Origin::Human,
                        note: format!("added from {dir}"),
                    });
                    if let Some(d) = dup {
                        if let Some(f) = self.flash.as_mut() {
                            f.push_str(&format!(" (its texts equal #{d}'s)"));
                        }
                    }
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

    /// Reads a folder of component files (relative to where gepa-tui was started, else to the
    /// project folder; `~` is the home folder).
    fn candidate_from_folder(&self, typed: &str) -> Result<(Candidate, String), String> {
        if typed.is_empty() {
            return Err("type the folder that holds the component files".into());
        }
        if self.model.component_files.is_empty() {
            return Err("the project's components are not known in this window".into());
        }
        let mut path = std::path::PathBuf::from(typed);
        if let Some(rest) = typed.strip_prefix("~/") {
            if let Some(home) = std::env::var_os("HOME") {
                path = std::path::PathBuf::from(home).join(rest);
            }
        }
        if path.is_relative() && !path.exists() {
            if let Some(root) = &self.model.project_root {
                path = root.join(&path);
            }
        }
        crate::project::candidate_from_folder(&self.model.component_files, &path)
            .map(|t| (t, path.display().to_string()))
            .map_err(|e| e.problems().join("; "))
    }

    fn approve_all(&mut self) {
        if !self.need_live("approving") {
            return;
        }
        let items: Vec<u64> =
            self.review_rows().iter().map(|i| i.item).filter(|n| self.model.item_decision(*n).is_none()).collect();
        if items.is_empty() {
            self.flash = Some("nothing waits for a decision".into());
            return;
        }
        self.commands.push(EngineCommand::ApproveAll);
        for item in &items {
            self.model.sent.push(HumanAction::Approve { item: *item });
        }
        self.model.version += 1;
        self.flash = Some(format!("approval of {} item(s) sent; {}", items.len(), self.when_applied()));
    }

    fn toggle_policy(&mut self, mutations: bool) {
        if !self.need_live("changing the review policy") {
            return;
        }
        let flip = |p: ReviewPolicy| if p == ReviewPolicy::Auto { ReviewPolicy::Approve } else { ReviewPolicy::Auto };
        let (m, g) = self.model.review_policy();
        let (m, g) = if mutations { (flip(m), g) } else { (m, flip(g)) };
        self.send(HumanAction::SetPolicy { mutations: m, merges: g });
        let pending = self.review_rows().len();
        if let Some(f) = self.flash.as_mut() {
            if pending > 0 && (m == ReviewPolicy::Auto || g == ReviewPolicy::Auto) {
                f.push_str(&format!(
                    "; the {pending} pending item(s) still wait ({} approves them all)",
                    self.keymap.describe(Action::ApproveAll)
                ));
            }
        }
    }

    /// The branch key: the first press says what will happen, the second (on the same candidate)
    /// asks the event loop to start a new run seeded with the selected candidate's texts, as
    /// `gepa-tui run --branch RUN:ID` does. The run left behind stays as it is (a live one stops
    /// and stays resumable).
    fn request_branch(&mut self) {
        let c = self.selected;
        if c >= self.n_candidates() {
            self.flash = Some("no candidate to start a new run from yet".into());
            return;
        }
        if self.branch_armed == Some(c) {
            self.branch_armed = None;
            self.branch = Some(c);
            self.flash = Some(format!("starting a new run from #{c}…"));
            return;
        }
        self.branch_armed = Some(c);
        // Short enough for an 80-column status bar; what matters most comes first.
        let mut msg =
            format!("{} again: a new run from #{c}'s texts, fresh budget", self.keymap.describe(Action::Branch));
        if self.model.is_live() {
            msg.push_str("; this run stops (resumable)");
            let waiting = self.model.unrecorded_decisions();
            if waiting > 0 {
                msg.push_str(&format!(", dropping {waiting} unrecorded decision(s)"));
            }
        }
        self.flash = Some(msg);
    }

    fn toggle_mark(&mut self) {
        let c = self.selected;
        if c >= self.n_candidates() {
            self.flash = Some("no candidate to mark yet".into());
            return;
        }
        if let Some(i) = self.marked.iter().position(|m| *m == c) {
            self.marked.remove(i);
            self.flash = Some(format!("#{c} unmarked"));
            return;
        }
        self.marked.push(c);
        if self.marked.len() > 2 {
            let dropped = self.marked.remove(0);
            self.flash = Some(format!("#{c} marked (#{dropped} unmarked: a merge takes two)"));
        }
        if self.marked.len() == 2 {
            let m = self.keymap.describe(Action::MergeMarked);
            let msg = format!("#{} and #{} marked; {m} merges them", self.marked[0], self.marked[1]);
            self.flash = Some(match self.flash.take() {
                Some(f) if f.contains("unmarked") => {
                    format!("{f}; {m} merges #{} and #{}", self.marked[0], self.marked[1])
                }
                _ => msg,
            });
        } else {
            self.flash = Some(format!("#{c} marked; mark one more to merge them"));
        }
    }

    fn open_merge(&mut self) {
        if self.marked.len() != 2 {
            self.flash = Some(format!(
                "mark two candidates first ({} marks the selected one); {} marked",
                self.keymap.describe(Action::Mark),
                self.marked.len()
            ));
            return;
        }
        if !self.need_live("a manual merge") {
            return;
        }
        let (a, b) = (self.marked[0], self.marked[1]);
        let st = &self.model.state;
        let texts: Vec<Candidate> = st.candidates.iter().map(|c| c.texts.clone()).collect();
        let parents: Vec<Vec<CandidateId>> = st.candidates.iter().map(|c| c.parents.clone()).collect();
        let scores = st.val_means();
        let lineage = crate::engine::merge::Lineage { texts: &texts, parents: &parents, scores: &scores };
        let defaults = lineage.default_sources(a, b);
        let names = st.components.clone();
        let from: Vec<CandidateId> = names.iter().map(|n| defaults.get(n).copied().unwrap_or(a)).collect();
        self.merge =
            Some(MergeUi { a, b, names, default_from: from.clone(), from, cursor: 0, scroll: Scroll::default() });
    }

    fn on_merge_key(&mut self, key: KeyEvent) {
        let Some(mg) = self.merge.as_mut() else { return };
        match self.keymap.action_for(&key) {
            Some(Action::Up) => mg.cursor = mg.cursor.saturating_sub(1),
            Some(Action::Down) => mg.cursor = (mg.cursor + 1).min(mg.names.len().saturating_sub(1)),
            Some(Action::Left) => {
                if let Some(f) = mg.from.get_mut(mg.cursor) {
                    *f = mg.a;
                }
            }
            Some(Action::Right) => {
                if let Some(f) = mg.from.get_mut(mg.cursor) {
                    *f = mg.b;
                }
            }
            Some(Action::PageDown) => mg.scroll.by(10),
            Some(Action::PageUp) => mg.scroll.by(-10),
            Some(Action::ScrollDown) => mg.scroll.by(1),
            Some(Action::ScrollUp) => mg.scroll.by(-1),
            Some(Action::Back) | Some(Action::Quit) => {
                self.merge = None;
                self.flash = Some("merge cancelled; nothing sent (the marks stay)".into());
            }
            Some(Action::Open) | Some(Action::Save) => {
                let (a, b) = (mg.a, mg.b);
                let texts = mg.texts(&self.model);
                let st = &self.model.state;
                if let Some(same) = [a, b].into_iter().find(|c| st.candidates[*c].texts == texts) {
                    self.flash = Some(format!(
                        "those choices give #{same}'s texts unchanged; take at least one component from each side"
                    ));
                    return;
                }
                if !self.need_live("a manual merge") {
                    return;
                }
                self.merge = None;
                self.marked.clear();
                self.send(HumanAction::AddCandidate {
                    texts,
                    parents: vec![a, b],
                    origin: Origin::Merge,
                    note: "manual merge".into(),
                });
            }
            _ => {}
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
            Action::TradeOff => {
                self.frontier.trade_off = !self.frontier.trade_off;
                return;
            }
            Action::AxisX | Action::AxisY => {
                let names = views::trade_off::axes(self);
                if !self.frontier.trade_off {
                    self.frontier.trade_off = true;
                } else {
                    let which = usize::from(action == Action::AxisY);
                    self.frontier.next_axis(which, names.len());
                }
                let [x, y] = self.frontier.axes(names.len());
                self.flash = Some(format!("trade-off: {} against {}", names[y], names[x]));
                return;
            }
            Action::Sort => {
                let names = self.model.state.objective_names();
                self.frontier.sort.0 = self.frontier.sort.0.next(names.len());
                self.flash = Some(format!("sorted by {}", self.frontier.sort.0.label(&names)));
                return;
            }
            Action::Search => {
                self.input = Some(InputLine {
                    target: InputTarget::FrontierFilter,
                    text: self.frontier.filter.clone(),
                    error: None,
                });
                return;
            }
            _ => return,
        };
        if let Some(&c) = rows.get(new_pos) {
            self.select_candidate(c);
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
            (_, Action::NextObjective) => {
                // The main score, then each objective, then the main score again.
                let names = self.model.state.objective_names();
                let at = self.matrix.objective.as_ref().and_then(|o| names.iter().position(|n| n == o));
                let next = match at {
                    None => names.first(),
                    Some(i) => names.get(i + 1),
                };
                self.matrix.objective = next.cloned();
                self.flash = Some(match (&self.matrix.objective, names.is_empty()) {
                    (_, true) => "this run records no objectives: the win matrix shows the main score".into(),
                    (Some(o), _) => format!("win matrix: {o} (scaled from the worst to the best seen)"),
                    (None, _) => "win matrix: the main score".into(),
                });
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
                    self.traces.proposal = None;
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
            Action::Open => self.open_val_traces(),
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
            // On a proposal's minibatch, ← → go to the older / newer proposal.
            Action::Left | Action::Right if self.traces.proposal.is_some() => {
                let k = self.traces.proposal.unwrap_or(0);
                let next = if action == Action::Left { k.checked_sub(1) } else { Some(k + 1) };
                match next.filter(|&j| j < self.model.proposals.len()) {
                    Some(j) => self.open_proposal_traces(j),
                    None => self.flash = Some("no more proposals that way".into()),
                }
                return;
            }
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
                self.input =
                    Some(InputLine { target: InputTarget::TraceSearch, text: self.traces.query.clone(), error: None });
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
        if self.editor.is_some() || self.merge.is_some() {
            return false;
        }
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
                    View::Review => self.review.detail_area.get().contains(pos),
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
            View::Review => {
                let area = self.review.list_area.get();
                if area.contains(pos) {
                    let row = self.review.offset.get() + (pos.y - area.y) as usize;
                    if let Some(n) = self.review_rows().get(row).map(|i| i.item) {
                        if Some(n) != self.selected_item().map(|i| i.item) {
                            self.review.scroll.reset();
                        }
                        self.review.item = Some(n);
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
            View::Frontier if self.frontier.trade_off => {
                // Side by side when wide, the table over the plot otherwise.
                let split = if body.width >= 140 {
                    Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).split(body)
                } else {
                    Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).split(body)
                };
                views::frontier::render(frame, split[0], self, theme);
                views::trade_off::render(frame, split[1], self, theme);
            }
            View::Frontier => views::frontier::render(frame, body, self, theme),
            View::WinMatrix => views::win_matrix::render(frame, body, self, theme),
            View::Candidate => views::candidate::render(frame, body, self, theme),
            View::Traces => views::traces::render(frame, body, self, theme),
            View::Reflections => views::reflections::render(frame, body, self, theme),
            View::Review => views::review::render(frame, body, self, theme),
        }
        if self.editor.is_some() {
            views::editor::render(frame, body, self, theme);
        } else if self.merge.is_some() {
            views::merge::render(frame, body, self, theme);
        }
        views::status_bar::render(frame, status, self, theme);
        if self.help {
            views::help::render(frame, body, self, theme);
        }
    }
}

pub fn policy_name(p: ReviewPolicy) -> &'static str {
    match p {
        ReviewPolicy::Auto => "auto",
        ReviewPolicy::Approve => "approve",
    }
}

/// A decision in a word or two ("approve", "veto", "edit").
pub fn action_word(a: &HumanAction) -> &'static str {
    match a {
        HumanAction::Approve { .. } => "approve",
        HumanAction::Veto { .. } => "veto",
        HumanAction::Edit { .. } => "edit, then approve",
        HumanAction::AddCandidate { .. } => "add a candidate",
        HumanAction::SetPolicy { .. } => "review policy",
    }
}

//! One file per view. Each view owns its state (a `…View` struct: selection, scroll, layout facts
//! for mouse hit-testing), answers the actions routed to it with `handle(action, &Ctx) -> Outcome`,
//! lists the keys that matter in it (`hints`, for the footer), and draws itself with
//! `render(frame, area, &Ctx)`. `Ctx` is read-only: the model, theme, keymap and the selection the
//! views share. No view imports `app`: what a view cannot do itself (select a candidate, open
//! another view, send a decision) it asks of the router with an `Outcome`.
//!
//! The shape follows gitui's components (`src/components/mod.rs`: each keeps its own state, answers
//! `event()` and lists its `commands()` for the help bar, the app only routes) and television's
//! render, which hands back the layout it drew for the main loop to hit-test (`render.rs`,
//! `UiState`); here the layout facts stay in the view's own state, written by `render(&mut self)`.
//!
//! Every text that came from a model or a data file goes through `crate::text::sanitize` (via the
//! helpers here) before it is drawn.

pub mod attach_bar;
pub mod blame;
pub mod candidate;
pub mod dashboard;
pub mod editor;
pub mod frontier;
pub mod help;
pub mod input;
pub mod lineage;
pub mod merge;
pub mod reflections;
pub mod review;
pub mod start;
pub mod status_bar;
pub mod tabs;
pub mod traces;
pub mod trade_off;
pub mod win_matrix;

use crate::engine::event::HumanAction;
use crate::engine::CandidateId;
use crate::project::Candidate;
use crate::tui::keymap::Keymap;
use crate::tui::model::Model;
use crate::tui::theme::Theme;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};

/// What every view may read: the run, how to draw, the keys, and the selection the views share.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub model: &'a Model,
    pub theme: &'a Theme,
    pub keymap: &'a Keymap,
    /// The candidate the views show (picking one in any view picks it in all).
    pub selected: CandidateId,
    /// Candidates marked for a manual merge (at most two, oldest first).
    pub marked: &'a [CandidateId],
    /// The input line, when open (the Review view says what a veto's reason is for).
    pub prompt: Option<&'a input::InputLine>,
}

impl Ctx<'_> {
    pub fn n_candidates(&self) -> usize {
        self.model.state.candidates.len()
    }
}

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
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

    /// The view an action goes to from this one (its number key, or the next / previous tab).
    pub fn after(self, action: crate::tui::keymap::Action) -> Option<View> {
        use crate::tui::keymap::Action as A;
        let n = View::ALL.len();
        let to = match action {
            A::ViewDashboard => 0,
            A::ViewFrontier => 1,
            A::ViewWinMatrix => 2,
            A::ViewCandidate => 3,
            A::ViewTraces => 4,
            A::ViewReflections => 5,
            A::ViewReview => 6,
            A::NextView => (self.index() + 1) % n,
            A::PrevView => (self.index() + n - 1) % n,
            _ => return None,
        };
        Some(View::ALL[to])
    }

    /// The view's table in the keymap.
    pub fn layer(self) -> crate::tui::keymap::Layer {
        use crate::tui::keymap::Layer;
        match self {
            View::Dashboard => Layer::Dashboard,
            View::Frontier => Layer::Frontier,
            View::WinMatrix => Layer::WinMatrix,
            View::Candidate => Layer::Candidate,
            View::Traces => Layer::Traces,
            View::Reflections => Layer::Reflections,
            View::Review => Layer::Review,
        }
    }
}

/// What a view asks of the router after an action: the things it cannot do on its own state.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The action means nothing here.
    Ignored,
    /// Done on the view's own state.
    Done,
    /// A one-line message for the status bar.
    Flash(String),
    /// The user picked this candidate.
    Select(CandidateId),
    /// Go to a view, having picked this candidate first (None keeps the selection).
    Show(View, Option<CandidateId>),
    /// The Traces view on the selected candidate's val evaluations, at this example (which also
    /// clears the search) or from the top.
    ValTraces(Option<usize>),
    /// The Traces view on proposal k's minibatch.
    ProposalTraces(usize),
    /// The Candidate view, diffed against this candidate.
    Compare(CandidateId),
    /// Open the input line.
    Prompt(input::InputLine),
    /// Send a decision to the engine.
    Send(HumanAction),
    /// Edit these texts (inline, or in `$EDITOR`).
    Edit { target: editor::EditTarget, texts: Candidate, external: bool },
    /// The editor's texts are ready to send (the router checks them first).
    SubmitEdit { target: editor::EditTarget, texts: Candidate },
    /// Close the overlay this came from, saying this (nothing when empty).
    Close(String),
}

/// The views' own states, and the dispatch to the active one (gitui's `accessors!` idea: every
/// component is listed once, so no view is left out of drawing, keys or the mouse).
#[derive(Debug, Default)]
pub struct Views {
    pub frontier: frontier::FrontierView,
    pub matrix: win_matrix::MatrixView,
    pub candidate: candidate::CandidateView,
    pub traces: traces::TracesView,
    pub reflections: reflections::ReflectionsView,
    pub review: review::ReviewView,
}

impl Views {
    /// The active view's answer to an action.
    pub fn handle(&mut self, view: View, action: crate::tui::keymap::Action, ctx: &Ctx) -> Outcome {
        match view {
            View::Dashboard => Outcome::Ignored,
            View::Frontier => self.frontier.handle(action, ctx),
            View::WinMatrix => self.matrix.handle(action, ctx),
            View::Candidate => self.candidate.handle(action, ctx),
            View::Traces => self.traces.handle(action, ctx),
            View::Reflections => self.reflections.handle(action, ctx),
            View::Review => self.review.handle(action, ctx),
        }
    }

    /// A left click at `pos` in the active view.
    pub fn click(&mut self, view: View, pos: Position, ctx: &Ctx) -> Outcome {
        match view {
            View::Frontier => self.frontier.click(pos, ctx),
            View::WinMatrix => self.matrix.click(pos, ctx),
            View::Traces => self.traces.click(pos, ctx),
            View::Review => self.review.click(pos, ctx),
            View::Reflections => self.reflections.click(pos, ctx),
            View::Candidate => self.candidate.click(pos),
            View::Dashboard => Outcome::Ignored,
        }
    }

    /// Whether `pos` is on the active view's detail pane (the wheel scrolls it, not the list).
    pub fn in_detail(&self, view: View, pos: Position) -> bool {
        match view {
            View::Traces => self.traces.detail_area.contains(pos),
            View::Reflections => self.reflections.detail_area.contains(pos),
            View::Review => self.review.detail_area.contains(pos),
            // The Candidate view is all text: the wheel always scrolls it.
            View::Candidate => true,
            _ => false,
        }
    }

    /// The keys worth a hint in the footer, in the active view.
    pub fn hints(&self, view: View, ctx: &Ctx) -> Vec<crate::tui::keymap::Action> {
        match view {
            View::Dashboard => dashboard::hints(),
            View::Frontier => self.frontier.hints(ctx),
            View::WinMatrix => self.matrix.hints(ctx),
            View::Candidate => self.candidate.hints(),
            View::Traces => self.traces.hints(),
            View::Reflections => self.reflections.hints(),
            View::Review => self.review.hints(ctx),
        }
    }

    pub fn render(&mut self, view: View, frame: &mut ratatui::Frame, area: Rect, ctx: &Ctx) {
        match view {
            View::Dashboard => dashboard::render(frame, area, ctx),
            View::Frontier => self.frontier.render(frame, area, ctx),
            View::WinMatrix => self.matrix.render(frame, area, ctx),
            View::Candidate => self.candidate.render(frame, area, ctx),
            View::Traces => self.traces.render(frame, area, ctx),
            View::Reflections => self.reflections.render(frame, area, ctx),
            View::Review => self.review.render(frame, area, ctx),
        }
    }

    /// Another candidate was selected: the views showing one start from its top.
    pub fn on_select(&mut self, m: &Model, c: CandidateId) {
        self.candidate.on_select(m, c);
        self.frontier.detail_scroll.reset();
        self.traces.scroll.reset();
        self.traces.example = None;
    }
}

/// The guide key on a candidate: the prompt for a note to a reflection on it, with the example
/// the person is looking at (its split and index in the run's ids), if any.
pub fn guide_prompt(ctx: &Ctx, candidate: CandidateId, example: Option<(crate::project::Split, usize)>) -> Outcome {
    if candidate >= ctx.n_candidates() {
        return Outcome::Flash("no candidate to guide a reflection on yet".into());
    }
    match ctx.model.why_not_live("guiding a reflection") {
        Some(why) => Outcome::Flash(why),
        None => Outcome::Prompt(input::InputLine::new(input::InputTarget::GuideNote { candidate, example }, "")),
    }
}

/// A scroll position in a text pane; the pane's last render records how far it can go, so the
/// position never runs past the end (and scrolling back up is immediate).
#[derive(Debug, Default, Clone)]
pub struct Scroll {
    pub pos: u16,
    pub max: u16,
}

impl Scroll {
    pub fn by(&mut self, delta: i32) {
        self.pos = (self.pos as i32 + delta).clamp(0, self.max as i32) as u16;
    }
    pub fn reset(&mut self) {
        self.pos = 0;
    }
    /// The position to draw at, given the rows the content has and the rows visible.
    pub fn at(&mut self, content_rows: usize, visible: u16) -> u16 {
        let max = content_rows.saturating_sub(visible as usize).min(u16::MAX as usize) as u16;
        self.max = max;
        self.pos.min(max)
    }

    /// Scroll actions on this pane: Some(Done) when the action was one.
    pub fn handle(&mut self, action: crate::tui::keymap::Action) -> Option<Outcome> {
        use crate::tui::keymap::Action;
        match action {
            Action::PageUp => self.by(-10),
            Action::PageDown => self.by(10),
            Action::ScrollUp => self.by(-1),
            Action::ScrollDown => self.by(1),
            _ => return None,
        }
        Some(Outcome::Done)
    }
}

/// Where a list's rows were drawn and from which row, so a click can find its row; the offset also
/// keeps the selection in a stable window from one frame to the next.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListLayout {
    pub area: Rect,
    pub offset: usize,
}

impl ListLayout {
    /// Keeps `selected` inside a window of `height` rows, and returns the first row to draw (so
    /// only the visible rows are ever built).
    pub fn window(&mut self, selected: usize, height: usize, len: usize) -> usize {
        self.offset = scroll_window(self.offset, selected, height, len);
        self.offset
    }

    /// The row (an index into the list) at `pos`, if it is on a drawn row.
    pub fn row_at(&self, pos: Position) -> Option<usize> {
        self.area.contains(pos).then(|| self.offset + (pos.y - self.area.y) as usize)
    }
}

/// Moves a cursor within `0..len` by `delta` (clamped).
pub fn step(pos: usize, delta: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (pos as isize + delta).clamp(0, len as isize - 1) as usize
}

/// Rows a page key moves a list cursor by.
pub const PAGE: isize = 10;

/// A bordered pane with a title; the focused pane's border uses the title colour.
pub fn pane<'a>(title: impl Into<Line<'a>>, theme: &Theme, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
        .border_style(if focused { theme.title } else { theme.border })
        .title(title.into().style(theme.title))
}

/// `output_tokens 14 · prompt_tokens 162`: objectives the natural way round, on one line.
pub fn objectives_summary(objectives: &crate::eval::objective::ObjectiveScores) -> String {
    let parts: Vec<String> = objectives
        .iter()
        .map(|(k, v)| format!("{} {}", one_line(k), crate::eval::objective::format_natural(k, *v)))
        .collect();
    parts.join(" · ")
}

pub fn fmt_score(s: f64) -> String {
    format!("{s:.3}")
}

pub use crate::text::one_line;

/// Untrusted text as lines with one style: control sequences stripped, tabs expanded.
pub fn text_lines(s: &str, style: Style) -> Vec<Line<'static>> {
    crate::text::sanitize(s).replace('\t', "    ").split('\n').map(|l| Line::styled(l.to_string(), style)).collect()
}

/// What each side of a proposal answered on one example, on one line: the expected answer, the
/// parent's reply and the child's (or why the child's run failed). None when there is nothing to say.
pub fn answers_line(
    m: &crate::tui::model::Model,
    split: crate::project::Split,
    example_id: &str,
    parent: Option<&crate::eval::ExampleEval>,
    child: Option<&crate::eval::ExampleEval>,
    indent: usize,
    theme: &Theme,
) -> Option<Line<'static>> {
    let quote = |s: &str| format!("\"{}\"", crate::text::truncate_chars(&one_line(s), 80));
    let mut said: Vec<String> = Vec::new();
    if let Some(x) = m.expected(split, example_id) {
        said.push(format!("expected {}", quote(&x)));
    }
    if let Some(e) = parent {
        said.push(format!("parent said {}", quote(&e.output)));
    }
    if let Some(e) = child {
        let out = e.error.as_deref().map(|er| format!("failed: {}", one_line(er))).unwrap_or_else(|| quote(&e.output));
        said.push(format!("child said {out}"));
    }
    if said.is_empty() {
        return None;
    }
    Some(Line::styled(format!("{}{}", " ".repeat(indent), said.join(" · ")), theme.muted))
}

/// A heading line inside a detail pane.
pub fn heading(s: impl Into<String>, theme: &Theme) -> Line<'static> {
    Line::from(Span::styled(s.into(), theme.title))
}

/// Keeps `selected` inside a window of `height` rows starting at `offset`, and returns the new
/// offset.
pub fn scroll_window(offset: usize, selected: usize, height: usize, len: usize) -> usize {
    let mut off = offset;
    if height == 0 {
        return off;
    }
    if selected < off {
        off = selected;
    } else if selected >= off + height {
        off = selected + 1 - height;
    }
    off.min(len.saturating_sub(height))
}

/// Rows `lines` take when wrapped at `width` (an estimate by character width: word wrapping can
/// add a row now and then, so it errs on the long side).
pub fn wrapped_rows(lines: &[Line], width: u16) -> usize {
    let w = width.max(1) as usize;
    lines.iter().map(|l| l.width().div_ceil(w).max(1) + usize::from(l.width() > w)).sum()
}

/// The inner area of a bordered block.
pub fn inner(area: Rect) -> Rect {
    Block::default().borders(Borders::ALL).inner(area)
}

/// A centred rectangle of at most `w` x `h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h)
}

/// A short label for a candidate's origin: `guided` for a mutation a person guided with a note.
pub fn origin_label(m: &Model, c: &crate::engine::CandidateRecord) -> String {
    match c.origin {
        crate::engine::Origin::Seed => "seed".into(),
        crate::engine::Origin::Mutation if m.guided_children.contains(&c.id) => "guided".into(),
        o => o.as_str().to_string(),
    }
}

pub fn parents_label(parents: &[usize]) -> String {
    if parents.is_empty() {
        "-".into()
    } else {
        parents.iter().map(|p| format!("#{p}")).collect::<Vec<_>>().join("+")
    }
}

/// Formats seconds as `1h02m`, `3m05s` or `12s`.
pub fn fmt_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub fn fmt_tokens(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{:.0}k", n as f64 / 1e3)
    } else if n >= 1_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Split;

    fn eval(id: &str, output: &str, error: Option<&str>) -> crate::eval::ExampleEval {
        let base = crate::eval::ExampleEval::scored(id, 0.0);
        crate::eval::ExampleEval { output: output.into(), error: error.map(Into::into), ..base }
    }

    fn plain(line: Option<Line>) -> Option<String> {
        line.map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
    }

    #[test]
    fn answers_line_says_what_each_side_answered_and_strips_escapes() {
        let theme = Theme::default();
        let mut m = crate::tui::model::Model::default();
        // No reference field (a regex evaluator): no "expected", and no dangling separator.
        let p = eval("ex1", "3\n", None);
        let c = eval("ex1", "\x1b[31m22\x1b[0m", None);
        assert_eq!(
            plain(answers_line(&m, Split::Val, "ex1", Some(&p), Some(&c), 2, &theme)).as_deref(),
            Some("  parent said \"3 \" · child said \"22\"")
        );
        // A failed child run says why; the expected answer comes from the example's field.
        m.expected_field = Some("answer".into());
        let mut fields = serde_json::Map::new();
        fields.insert("answer".into(), serde_json::json!("22"));
        let ex1 = crate::project::Example { id: "ex1".into(), line: 1, fields };
        m.examples.insert((Split::Val, "ex1".into()), ex1.clone());
        // A train example with the same id is another example: its answer is not val's.
        let mut other = ex1;
        other.fields.insert("answer".into(), serde_json::json!("7"));
        m.examples.insert((Split::Train, "ex1".into()), other);
        let failed = eval("ex1", "", Some("timed out after 60 s"));
        assert_eq!(
            plain(answers_line(&m, Split::Val, "ex1", None, Some(&failed), 0, &theme)).as_deref(),
            Some("expected \"22\" · child said failed: timed out after 60 s")
        );
        assert_eq!(
            plain(answers_line(&m, Split::Train, "ex1", None, Some(&failed), 0, &theme)).as_deref(),
            Some("expected \"7\" · child said failed: timed out after 60 s")
        );
        assert_eq!(
            plain(answers_line(&crate::tui::model::Model::default(), Split::Val, "ex1", None, None, 0, &theme)),
            None
        );
    }
}

//! Candidate: each component's text (wrapped, scrollable), a word-level inline diff against its
//! parent or any chosen candidate, and its lineage as a tree up to the seed.
//!
//! The lineage is drawn here, not with tui-tree-widget: that widget is for trees a person opens
//! and closes, while a lineage is a short read-only path of ancestors (two for a merge), a few
//! indented lines.

use super::{fmt_score, heading, one_line, pane, parents_label, step, text_lines, Ctx, Outcome, Scroll};
use crate::engine::CandidateId;
use crate::tui::keymap::Action;
use crate::tui::model::Model;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeSet;

/// A word-level diff of `old` -> `new` as styled lines. Without colour, removed and added words are
/// also bracketed as `[-old-]{+new+}` so the diff still reads.
pub fn word_diff(old: &str, new: &str, theme: &Theme) -> Vec<Line<'static>> {
    let old = crate::text::sanitize(old).replace('\t', "    ");
    let new = crate::text::sanitize(new).replace('\t', "    ");
    let diff = TextDiff::configure().timeout(std::time::Duration::from_millis(200)).diff_words(&old, &new);
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    for change in diff.iter_all_changes() {
        let (style, open, close) = match change.tag() {
            ChangeTag::Equal => (theme.text, "", ""),
            ChangeTag::Delete => (theme.diff_removed, "[-", "-]"),
            ChangeTag::Insert => (theme.diff_added, "{+", "+}"),
        };
        let marked = !theme.colour && change.tag() != ChangeTag::Equal;
        let value = change.value();
        let parts: Vec<&str> = value.split('\n').collect();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                lines.push(Line::from(std::mem::take(&mut cur)));
            }
            if !part.is_empty() {
                let text = if marked { format!("{open}{part}{close}") } else { part.to_string() };
                cur.push(Span::styled(text, style));
            }
        }
    }
    lines.push(Line::from(cur));
    lines
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffMode {
    Off,
    Parent,
    Other,
    /// Beside each line, the candidate that first wrote it, and who wrote those.
    Blame,
}

/// The Candidate view's state.
#[derive(Debug)]
pub struct CandidateView {
    pub diff: DiffMode,
    pub compare: CandidateId,
    pub scroll: Scroll,
    /// Blame mode's line cursor and the writer pane.
    pub blame: super::blame::BlameView,
}

impl Default for CandidateView {
    fn default() -> Self {
        CandidateView {
            diff: DiffMode::Parent,
            compare: 0,
            scroll: Scroll::default(),
            blame: super::blame::BlameView::default(),
        }
    }
}

impl CandidateView {
    /// A newly selected candidate shows from the top, compared with its first parent.
    pub fn on_select(&mut self, m: &Model, c: CandidateId) {
        self.scroll.reset();
        self.blame.reset();
        if let Some(rec) = m.state.candidates.get(c) {
            self.compare = rec.parents.first().copied().unwrap_or(c);
        }
    }

    /// Shows the selected candidate diffed against `other`.
    pub fn compare_with(&mut self, other: CandidateId) {
        self.compare = other;
        self.diff = DiffMode::Other;
        self.scroll.reset();
    }

    pub fn handle(&mut self, action: Action, ctx: &Ctx) -> Outcome {
        let n_c = ctx.n_candidates();
        if self.diff == DiffMode::Blame {
            if let Some(out) = self.blame.handle(action) {
                return out;
            }
        }
        match action {
            Action::Up | Action::ScrollUp => self.scroll.by(-1),
            Action::Down | Action::ScrollDown => self.scroll.by(1),
            Action::PageUp => self.scroll.by(-10),
            Action::PageDown => self.scroll.by(10),
            Action::Top => self.scroll.reset(),
            Action::Left => return Outcome::Select(step(ctx.selected, -1, n_c)),
            Action::Right => return Outcome::Select(step(ctx.selected, 1, n_c)),
            Action::Diff => {
                self.diff = match self.diff {
                    DiffMode::Off => DiffMode::Parent,
                    DiffMode::Parent => DiffMode::Other,
                    DiffMode::Other => {
                        self.blame.reset();
                        DiffMode::Blame
                    }
                    DiffMode::Blame => DiffMode::Off,
                };
            }
            Action::CompareNext | Action::ComparePrev => {
                let d = if action == Action::CompareNext { 1 } else { -1 };
                let mut c = step(self.compare, d, n_c);
                if c == ctx.selected && n_c > 1 {
                    c = step(c, d, n_c);
                }
                self.compare = c;
                self.diff = DiffMode::Other;
            }
            Action::Edit | Action::EditExternal => {
                return super::editor::hand_edit(ctx, action == Action::EditExternal)
            }
            Action::Guide => return super::guide_prompt(ctx, ctx.selected, None),
            Action::Open => return Outcome::ValTraces(None),
            _ => return Outcome::Ignored,
        }
        Outcome::Done
    }

    pub fn hints(&self) -> Vec<Action> {
        use Action::*;
        match (self.diff, self.blame.open) {
            (DiffMode::Blame, false) => vec![Down, Open, Diff, Edit, Guide],
            (DiffMode::Blame, true) => vec![Down, Back, Diff, Edit, Guide],
            _ => vec![Diff, ComparePrev, CompareNext, Edit, Guide],
        }
    }

    /// A click in blame mode puts the line cursor on the line clicked.
    pub fn click(&mut self, pos: ratatui::layout::Position) -> Outcome {
        match self.diff {
            DiffMode::Blame => self.blame.click(pos),
            _ => Outcome::Ignored,
        }
    }

    fn diff_target(&self, ctx: &Ctx) -> Option<CandidateId> {
        let rec = ctx.model.state.candidates.get(ctx.selected)?;
        match self.diff {
            DiffMode::Off | DiffMode::Blame => None,
            DiffMode::Parent => rec.parents.first().copied(),
            DiffMode::Other => Some(self.compare).filter(|c| *c != ctx.selected && *c < ctx.n_candidates()),
        }
    }
}

/// The selected candidate's texts, each diffed word by word against `target`'s when given.
pub fn text_body(ctx: &Ctx, target: Option<CandidateId>) -> Vec<Line<'static>> {
    let (m, theme) = (ctx.model, ctx.theme);
    let rec = &m.state.candidates[ctx.selected];
    let mut lines = Vec::new();
    if !rec.objectives.is_empty() {
        lines.push(Line::styled(
            format!("objectives (val mean): {}", super::objectives_summary(&rec.objectives)),
            theme.muted,
        ));
    }
    for name in &m.state.components {
        let text = rec.texts.get(name).map(String::as_str).unwrap_or("");
        let other = target.and_then(|t| m.state.candidates[t].texts.get(name)).map(String::as_str);
        let differs = other.is_some_and(|o| o != text);
        let mark = match (target, differs) {
            (Some(t), true) => format!(" (differs from #{t})"),
            (Some(t), false) => format!(" (same as #{t})"),
            (None, _) if rec.changed.contains(name) => " (changed from parent)".into(),
            _ => String::new(),
        };
        lines.push(heading(format!("── {}{mark} ──", one_line(name)), theme));
        match other {
            Some(o) if differs => lines.extend(word_diff(o, text, theme)),
            _ => lines.extend(text_lines(text, theme.text)),
        }
        // What reflections on it must keep verbatim.
        for span in m.state.protected_in(name, text) {
            let shown = crate::text::truncate_chars(&one_line(&span), 100);
            lines.push(Line::styled(format!("  protected: \"{shown}\""), theme.accent));
        }
        lines.push(Line::raw(""));
    }
    lines
}

impl CandidateView {
    pub fn render(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let (m, theme) = (ctx.model, ctx.theme);
        let Some(rec) = m.state.candidates.get(ctx.selected) else {
            frame.render_widget(
                Paragraph::new(Span::styled("No candidate yet.", theme.muted)).block(pane(" Candidate ", theme, true)),
                area,
            );
            return;
        };
        let wide = area.width >= 110;
        let blame_open = self.diff == DiffMode::Blame && self.blame.open;
        let (text_area, tree_area) = if wide {
            let [a, b] = Layout::horizontal([Constraint::Min(40), Constraint::Length(44)]).areas(area);
            (a, Some(b))
        } else if blame_open {
            // The writer of a line needs the room more than the lineage does.
            (area, None)
        } else {
            let h = (area.height / 3).clamp(4, 8);
            let [a, b] = Layout::vertical([Constraint::Min(5), Constraint::Length(h)]).areas(area);
            (a, Some(b))
        };

        let target = self.diff_target(ctx);
        let mut title = vec![
            Span::styled(format!(" Candidate #{} ", rec.id), theme.title),
            Span::styled(format!("· {} ", rec.origin.as_str()), theme.muted),
        ];
        if !rec.parents.is_empty() {
            title.push(Span::styled(format!("of {} ", parents_label(&rec.parents)), theme.muted));
        }
        if !rec.val_scores.is_empty() {
            title.push(Span::styled(format!("· val {} ", fmt_score(rec.val_mean)), theme.score(rec.val_mean)));
        }
        title.push(Span::styled(
            match (self.diff, target) {
                (DiffMode::Off, _) => "· no diff ".to_string(),
                (DiffMode::Blame, _) => format!(
                    "· blame · {}: who wrote the line ",
                    ctx.keymap.describe_in(crate::tui::keymap::Layer::Candidate, Action::Open)
                ),
                (_, Some(t)) => format!("· diff against #{t} "),
                (DiffMode::Parent, None) => "· the seed has no parent ".to_string(),
                (DiffMode::Other, None) => "· choose a candidate to compare with [ ] ".to_string(),
            },
            theme.accent,
        ));
        if let Some(t) = tree_area {
            render_lineage(frame, t, m, rec.id, theme);
        }
        if self.diff == DiffMode::Blame {
            self.blame.render(frame, text_area, Line::from(title), ctx);
            return;
        }
        let lines = text_body(ctx, target);
        let body_area = super::inner(text_area);
        let at = self.scroll.at(super::wrapped_rows(&lines, body_area.width), body_area.height);
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((at, 0)).block(pane(
                Line::from(title),
                theme,
                true,
            )),
            text_area,
        );
    }
}

fn node_line(m: &Model, id: CandidateId, prefix: &str, theme: &Theme, repeated: bool) -> Line<'static> {
    let c = &m.state.candidates[id];
    let mut spans = vec![Span::styled(prefix.to_string(), theme.border), Span::styled(format!("#{id} "), theme.accent)];
    spans.push(Span::styled(c.origin.as_str().to_string(), theme.muted));
    if !c.changed.is_empty() {
        spans.push(Span::styled(format!(" {}", one_line(&c.changed.join(","))), theme.text));
    }
    if !c.val_scores.is_empty() {
        spans.push(Span::styled(format!(" {}", fmt_score(c.val_mean)), theme.score(c.val_mean)));
    }
    if repeated {
        spans.push(Span::styled(" (above)", theme.muted));
    }
    Line::from(spans)
}

/// The ancestry of `id` as a tree: merges branch into their two parents; deep chains stop indenting
/// after a while so a long lineage stays readable.
fn render_lineage(frame: &mut Frame, area: Rect, m: &Model, id: CandidateId, theme: &Theme) {
    const MAX_NODES: usize = 300;
    let mut lines = Vec::new();
    let mut seen = BTreeSet::new();
    // (candidate, prefix for its line, prefix for its children)
    let mut stack: Vec<(CandidateId, String, String)> = vec![(id, String::new(), String::new())];
    while let Some((c, prefix, child_prefix)) = stack.pop() {
        if lines.len() >= MAX_NODES {
            lines.push(Line::styled("…", theme.muted));
            break;
        }
        let repeated = !seen.insert(c);
        lines.push(node_line(m, c, &prefix, theme, repeated));
        if repeated {
            continue;
        }
        let parents: Vec<CandidateId> = m.state.candidates[c].parents.iter().copied().filter(|p| *p < c).collect();
        let n = parents.len();
        for (k, p) in parents.into_iter().enumerate().rev() {
            let last = k + 1 == n;
            let (branch, cont) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
            let deep = child_prefix.chars().count() >= 24;
            let next_child = if deep { child_prefix.clone() } else { format!("{child_prefix}{cont}") };
            stack.push((p, format!("{child_prefix}{branch}"), next_child));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(pane(" Lineage (up to the seed) ", theme, false)), area);
}

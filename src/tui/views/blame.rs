//! The Candidate view's blame mode: beside each line of the selected candidate's texts the
//! candidate and round that first wrote it (`engine::blame`; ✎ marks a person's line), a line
//! cursor (↑ ↓), and for the line under it (enter) the writer: the reflection that wrote it with
//! the minibatch feedback it read, and a person's guidance, approval or edit.
//!
//! Lines are wrapped here, under their own gutter, so each screen row belongs to one known line:
//! the cursor is kept in view and a click finds its line exactly.

use super::{heading, inner, one_line, pane, Ctx, Outcome, PAGE};
use crate::engine::blame::{Author, BlameLine};
use crate::engine::{CandidateId, Origin};
use crate::tui::editor::wrap_ranges;
use crate::tui::keymap::{Action, Layer};
use crate::tui::theme::Theme;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The blame of each component of one candidate, in the project's component order.
type Blamed = Vec<(String, Vec<BlameLine>)>;

/// The blame mode's state: the line cursor, whether its writer is open, and what the last
/// render drew (for keeping the cursor in view and for clicks).
#[derive(Debug, Default)]
pub struct BlameView {
    /// The cursor: an index over the lines of every component, in order.
    pub line: usize,
    /// The pane with the cursor line's writer is open (enter; esc closes it).
    pub open: bool,
    /// The first row drawn, and whether the next render brings the cursor into view.
    offset: usize,
    follow: bool,
    /// Where the rows were drawn, and the line each drawn row belongs to.
    area: Rect,
    drawn: Vec<Option<usize>>,
    /// Lines the last render had (the cursor's range).
    n_lines: usize,
    /// The blame of (candidate, model version) last drawn.
    cache: Option<((CandidateId, u64), Blamed)>,
}

impl BlameView {
    /// Another candidate: from its first line, the writer pane as it was.
    pub fn reset(&mut self) {
        self.line = 0;
        self.offset = 0;
        self.follow = true;
    }

    /// Actions in blame mode; None for the ones the Candidate view answers as in any mode.
    pub fn handle(&mut self, action: Action) -> Option<Outcome> {
        let last = self.n_lines.saturating_sub(1);
        let to = |d: isize, at: usize| super::step(at, d, self.n_lines.max(1));
        match action {
            Action::Up => self.line = to(-1, self.line),
            Action::Down => self.line = to(1, self.line),
            Action::PageUp => self.line = to(-PAGE, self.line),
            Action::PageDown => self.line = to(PAGE, self.line),
            Action::Top => self.line = 0,
            Action::Bottom => self.line = last,
            Action::Open => self.open = !self.open,
            Action::Back if self.open => self.open = false,
            Action::ScrollUp | Action::ScrollDown => {
                let d: isize = if action == Action::ScrollUp { -1 } else { 1 };
                self.offset = self.offset.saturating_add_signed(d);
                self.follow = false;
                return Some(Outcome::Done);
            }
            _ => return None,
        }
        self.follow = true;
        Some(Outcome::Done)
    }

    /// A click on a line puts the cursor on it.
    pub fn click(&mut self, pos: Position) -> Outcome {
        if !self.area.contains(pos) {
            return Outcome::Ignored;
        }
        match self.drawn.get((pos.y - self.area.y) as usize).copied().flatten() {
            Some(l) => {
                self.line = l;
                self.follow = true;
                Outcome::Done
            }
            None => Outcome::Ignored,
        }
    }

    fn blamed(&mut self, ctx: &Ctx) -> &Blamed {
        let m = ctx.model;
        let key = (ctx.selected, m.version);
        if self.cache.as_ref().is_none_or(|(k, _)| *k != key) {
            let authors = &m.authorship.authors;
            let b = m
                .state
                .components
                .iter()
                .map(|name| (name.clone(), crate::engine::blame::blame(&m.state, authors, ctx.selected, name)))
                .collect();
            self.cache = Some((key, b));
        }
        &self.cache.as_ref().expect("just filled").1
    }

    /// Draws the lines in `area` (a pane titled `title`) and, when open, the cursor line's
    /// writer below them, as tall as it needs (at most three fifths of `area`).
    pub fn render(&mut self, frame: &mut Frame, area: Rect, title: Line, ctx: &Ctx) {
        let theme = ctx.theme;
        let blamed = self.blamed(ctx).clone();
        let n_lines: usize = blamed.iter().map(|(_, l)| l.len()).sum();
        self.n_lines = n_lines;
        self.line = self.line.min(n_lines.saturating_sub(1));
        // The cursor's line: its component, its number there, the line.
        let mut cursor: Option<(&str, usize, &BlameLine)> = None;
        let mut k = 0;
        for (name, lines) in &blamed {
            if let Some(l) = lines.get(self.line.wrapping_sub(k)).filter(|_| self.line >= k) {
                cursor = Some((name, self.line - k + 1, l));
                break;
            }
            k += lines.len();
        }
        let writer_rows: Option<(Rect, Line, Vec<Line>)> =
            cursor.filter(|_| self.open).map(|(component, number, line)| {
                let title = Line::from(vec![
                    Span::styled(format!(" Line {number} of {} ", one_line(component)), theme.title),
                    Span::styled(
                        format!("· who wrote it · {} closes ", ctx.keymap.describe_in(Layer::Candidate, Action::Back)),
                        theme.muted,
                    ),
                ]);
                let rows: Vec<Line> =
                    writer(ctx, component, line).iter().flat_map(|p| p.rows(inner(area).width)).collect();
                let most = (area.height * 3 / 5).min(area.height.saturating_sub(5));
                let h = (rows.len() as u16 + 2).max(6).min(most);
                (Rect { y: area.y + area.height - h, height: h, ..area }, title, rows)
            });
        let area = match &writer_rows {
            Some((w, ..)) => Rect { height: area.height - w.height, ..area },
            None => area,
        };
        let body = inner(area);
        let mut rows: Vec<(Line<'static>, Option<usize>)> = Vec::new();
        let mut k = 0;
        for (name, lines) in &blamed {
            rows.push((heading(format!("── {} ──", one_line(name)), theme), None));
            for l in lines {
                push_line(&mut rows, l, k, k == self.line, body.width, ctx);
                k += 1;
            }
            rows.push((Line::raw(""), None));
        }
        if !self.open {
            let all: Vec<BlameLine> = blamed.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
            rows.push((heading("── who wrote the lines ──", theme), None));
            for (c, by_hand) in crate::engine::blame::writers(&all) {
                let a = author(ctx, c);
                push_wrapped(&mut rows, &a.describe(c, by_hand), theme.text, 0, body.width);
                for (component, fed) in
                    a.reflection.as_ref().filter(|_| !by_hand).map(|r| &r.read).into_iter().flatten()
                {
                    push_wrapped(
                        &mut rows,
                        &format!("it read, for {}:", one_line(component)),
                        theme.muted,
                        2,
                        body.width,
                    );
                    for (example, feedback) in fed {
                        let f = crate::text::truncate_chars(&one_line(feedback), 120);
                        push_wrapped(&mut rows, &format!("{}: {f}", one_line(example)), theme.muted, 4, body.width);
                    }
                }
            }
        }
        let h = body.height as usize;
        if self.follow {
            let start = rows.iter().position(|(_, l)| *l == Some(self.line)).unwrap_or(0);
            let end = rows.iter().rposition(|(_, l)| *l == Some(self.line)).map_or(start + 1, |e| e + 1);
            // A component's first line shows with its heading.
            let start = if start > 0 && rows[start - 1].1.is_none() { start - 1 } else { start };
            if start < self.offset {
                self.offset = start;
            } else if end > self.offset + h {
                self.offset = (end.saturating_sub(h)).min(start);
            }
            self.follow = false;
        }
        self.offset = self.offset.min(rows.len().saturating_sub(h));
        let shown: Vec<(Line, Option<usize>)> = rows.into_iter().skip(self.offset).take(h).collect();
        self.drawn = shown.iter().map(|(_, l)| *l).collect();
        self.area = body;
        let lines: Vec<Line> = shown.into_iter().map(|(l, _)| l).collect();
        frame.render_widget(Paragraph::new(lines).block(pane(title, theme, true)), area);
        if let Some((w, title, rows)) = writer_rows {
            frame.render_widget(Paragraph::new(rows).block(pane(title, theme, false)), w);
        }
    }
}

/// What wrote candidate `c`, as the model folded it.
fn author(ctx: &Ctx, c: CandidateId) -> Author {
    ctx.model.authorship.authors.get(&c).cloned().unwrap_or_default()
}

/// One blame line as rows: the gutter (`#3   r2   │`, ✎ for a person's line; this candidate's own
/// lines in the added colour), the text wrapped under it; the cursor's rows highlighted.
fn push_line(rows: &mut Vec<(Line<'static>, Option<usize>)>, l: &BlameLine, k: usize, at: bool, width: u16, ctx: &Ctx) {
    let theme = ctx.theme;
    let mark = if l.by_hand { '✎' } else { ' ' };
    let gutter = format!("#{:<3} r{:<3}{mark}", l.by, l.round);
    let gw = unicode_width::UnicodeWidthStr::width(gutter.as_str()) + 2;
    let pick = |s: Style| if at { theme.selection } else { s };
    let g_style = pick(if l.by == ctx.selected { theme.diff_added } else { theme.accent });
    let text = one_line(&l.text);
    let chars: Vec<char> = text.chars().collect();
    for (i, (a, b)) in wrap_ranges(&text, (width as usize).saturating_sub(gw)).into_iter().enumerate() {
        let g = if i == 0 { gutter.clone() } else { " ".repeat(gw - 2) };
        let part: String = chars[a..b].iter().collect();
        let spans = vec![
            Span::styled(g, g_style),
            Span::styled("│ ", pick(theme.border)),
            Span::styled(part, pick(theme.text)),
        ];
        rows.push((Line::from(spans), Some(k)));
    }
}

/// A text wrapped at `width`, indented by `indent`, as rows of no line.
fn push_wrapped(rows: &mut Vec<(Line<'static>, Option<usize>)>, text: &str, style: Style, indent: usize, width: u16) {
    let p = Para { lead: (" ".repeat(indent), style), text: text.to_string(), style };
    rows.extend(p.rows(width).into_iter().map(|l| (l, None)));
}

/// A paragraph of the writer pane: a lead (an example's id) and a text wrapped under the
/// text's own start, so the lead stands out.
struct Para {
    lead: (String, Style),
    text: String,
    style: Style,
}

impl Para {
    fn styled(text: impl Into<String>, style: Style) -> Para {
        Para { lead: (String::new(), style), text: text.into(), style }
    }

    fn rows(&self, width: u16) -> Vec<Line<'static>> {
        let text = one_line(&self.text);
        let lead = one_line(&self.lead.0);
        let hang = unicode_width::UnicodeWidthStr::width(lead.as_str());
        let chars: Vec<char> = text.chars().collect();
        wrap_ranges(&text, (width as usize).saturating_sub(hang).max(10))
            .into_iter()
            .enumerate()
            .map(|(i, (a, b))| {
                let first = if i == 0 { lead.clone() } else { " ".repeat(hang) };
                let part: String = chars[a..b].iter().collect();
                Line::from(vec![Span::styled(first, self.lead.1), Span::styled(part, self.style)])
            })
            .collect()
    }
}

/// The writer of `line` (of `component`): who, the reflection and what it read, and a person's
/// decision on it (guidance, approval, edit).
fn writer(ctx: &Ctx, component: &str, line: &BlameLine) -> Vec<Para> {
    let theme = ctx.theme;
    let a = author(ctx, line.by);
    let mut out = vec![Para::styled(a.describe(line.by, line.by_hand), theme.title)];
    let edited = a.review.filter(|r| r.edited);
    match (a.origin, line.by_hand, edited) {
        (None | Some(Origin::Seed), _, _) => {
            let from = match &a.note {
                Some(n) => one_line(n),
                None => match ctx.model.component_files.iter().find(|c| c.name == component) {
                    Some(c) => format!("the project's {}, as the run started", one_line(&c.file)),
                    None => "the project's text, as the run started".into(),
                },
            };
            out.push(Para::styled(from, theme.muted));
        }
        (_, true, Some(r)) => {
            out.push(Para::styled(
                format!("The person changed what review item {} proposed: the lines marked ✎ are theirs.", r.item),
                theme.text,
            ));
            if let Some(refl) = &a.reflection {
                let was = Author { review: None, proposed: None, ..a.clone() };
                out.push(Para::styled(
                    format!("What they edited: {}", one_line(&was.describe(line.by, false))),
                    theme.muted,
                ));
                read(&mut out, refl, theme);
            }
        }
        (_, true, None) => {
            out.push(Para::styled("A person wrote this candidate: the lines marked ✎ are theirs.", theme.text))
        }
        (_, false, _) => {
            if let Some(r) = edited {
                out.push(Para::styled(
                    format!(
                        "A person edited review item {} before approving it, in round {}: their lines are marked ✎.",
                        r.item, a.round
                    ),
                    theme.text,
                ));
            }
            match &a.reflection {
                Some(refl) => read(&mut out, refl, theme),
                None if a.origin == Some(Origin::Merge) => out.push(Para::styled(
                    "A merge takes each component from a parent: this line came down from it.",
                    theme.muted,
                )),
                None => out.push(Para::styled("The reflection that wrote it is not in this run's log.", theme.muted)),
            }
        }
    }
    out
}

/// What a reflection read: per component, the minibatch's examples and their feedback.
fn read(out: &mut Vec<Para>, r: &crate::engine::blame::Reflected, theme: &Theme) {
    if let Some(g) = &r.guided {
        out.push(Para::styled(format!("A person guided it: \"{}\"", one_line(g)), theme.accent));
    }
    for (component, fed) in &r.read {
        let ids: Vec<String> = fed.iter().map(|(id, _)| one_line(id)).collect();
        out.push(Para::styled(
            format!("It read the minibatch of round {} ({}), for {}:", r.round, ids.join(", "), one_line(component)),
            theme.text,
        ));
        for (example, feedback) in fed {
            out.push(Para {
                lead: (format!("  {}: ", one_line(example)), theme.accent),
                text: crate::text::truncate_chars(&one_line(feedback), 600),
                style: theme.muted,
            });
        }
    }
}

//! One file per view, each with `render(frame, area, &App, &Theme)`. Views only read the app; keys
//! are handled in `app.rs`. Every text that came from a model or a data file goes through
//! `crate::text::sanitize` (via the helpers here) before it is drawn.

pub mod candidate;
pub mod dashboard;
pub mod editor;
pub mod frontier;
pub mod help;
pub mod merge;
pub mod reflections;
pub mod review;
pub mod start;
pub mod status_bar;
pub mod tabs;
pub mod traces;
pub mod win_matrix;

use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};
use std::cell::Cell;

/// A bordered pane with a title; the focused pane's border uses the title colour.
pub fn pane<'a>(title: impl Into<Line<'a>>, theme: &Theme, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
        .border_style(if focused { theme.title } else { theme.border })
        .title(title.into().style(theme.title))
}

pub fn fmt_score(s: f64) -> String {
    format!("{s:.3}")
}

/// Untrusted text on one line: control sequences stripped, newlines and tabs shown as spaces.
pub fn one_line(s: &str) -> String {
    crate::text::sanitize(s).replace(['\n', '\t'], " ")
}

/// Untrusted text as lines with one style: control sequences stripped, tabs expanded.
pub fn text_lines(s: &str, style: Style) -> Vec<Line<'static>> {
    crate::text::sanitize(s).replace('\t', "    ").split('\n').map(|l| Line::styled(l.to_string(), style)).collect()
}

/// A heading line inside a detail pane.
pub fn heading(s: impl Into<String>, theme: &Theme) -> Line<'static> {
    Line::from(Span::styled(s.into(), theme.title))
}

/// Keeps `selected` inside a window of `height` rows starting at the stored offset, and returns
/// the new offset (so only the visible rows are ever built).
pub fn scroll_window(offset: &Cell<usize>, selected: usize, height: usize, len: usize) -> usize {
    let mut off = offset.get();
    if height == 0 {
        return off;
    }
    if selected < off {
        off = selected;
    } else if selected >= off + height {
        off = selected + 1 - height;
    }
    off = off.min(len.saturating_sub(height));
    offset.set(off);
    off
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

/// A short label for a candidate's origin and what it changed.
pub fn origin_label(c: &crate::engine::CandidateRecord) -> String {
    match c.origin {
        crate::engine::Origin::Seed => "seed".into(),
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

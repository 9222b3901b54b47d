//! The tab bar: one tab per view (click to switch) and the run's state on the right.

use super::{Ctx, View};
use crate::tui::model::Model;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Each view's tab as (view, x, width, label) for a terminal `width` wide: full titles when they
/// fit, short ones otherwise. Rendering and mouse hit-testing both use this.
pub fn layout(width: u16) -> Vec<(View, u16, u16, String)> {
    let full: Vec<String> = View::ALL.iter().enumerate().map(|(i, v)| format!(" {} {} ", i + 1, v.title())).collect();
    let total: usize = full.iter().map(|l| l.chars().count()).sum();
    let labels: Vec<String> = if total + 24 <= width as usize {
        full
    } else {
        View::ALL.iter().enumerate().map(|(i, v)| format!(" {} {} ", i + 1, v.short_title())).collect()
    };
    let mut x = 0u16;
    View::ALL
        .iter()
        .zip(labels)
        .map(|(v, l)| {
            let w = l.chars().count() as u16;
            let out = (*v, x, w, l);
            x += w;
            out
        })
        .collect()
}

/// The view whose tab is at column `x`.
pub fn hit(width: u16, x: u16) -> Option<View> {
    layout(width).into_iter().find(|(_, x0, w, _)| x >= *x0 && x < x0 + w).map(|(v, ..)| v)
}

/// A word for what the run is doing.
pub fn run_state(m: &Model) -> (&'static str, bool) {
    if m.engine_error.is_some() && m.halted {
        ("■ stopped by a model (resumable)", true)
    } else if m.engine_error.is_some() {
        ("✗ engine failed", true)
    } else if m.state.finished.is_some() {
        ("✓ finished", false)
    } else if m.is_live() && m.live.as_ref().is_some_and(|s| !s.outages.is_empty()) {
        ("⚠ waiting for a model", true)
    } else if m.is_live() && m.paused() {
        ("⏸ paused", true)
    } else if m.is_live() {
        ("● running", false)
    } else if m.engine_done {
        ("■ stopped", true)
    } else {
        ("◌ browsing (resumable)", false)
    }
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &Ctx, active: View) {
    let theme = ctx.theme;
    let mut spans: Vec<Span> = Vec::new();
    for (v, _, _, label) in layout(area.width) {
        let style = if v == active { theme.selection } else { theme.muted };
        spans.push(Span::styled(label, style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
    let (state, warn) = run_state(ctx.model);
    let used: u16 = layout(area.width).iter().map(|(_, _, w, _)| *w).sum();
    let state_span = Span::styled(format!("{state} "), if warn { theme.warning } else { theme.accent });
    // Items waiting for a person are worth a glance from any view.
    let waiting = ctx.model.state.review_queue.len();
    let mut right = Line::from(state_span.clone()).right_aligned();
    if waiting > 0 && ctx.model.can_act() {
        for label in [format!("⚑ {waiting} to review · "), format!("⚑ {waiting} ")] {
            let line = Line::from(vec![Span::styled(label, theme.warning), state_span.clone()]).right_aligned();
            if area.width > used + line.width() as u16 {
                right = line;
                break;
            }
        }
    }
    if area.width > used + right.width() as u16 {
        frame.render_widget(Paragraph::new(right), Rect { x: area.x + used, width: area.width - used, ..area });
    }
}

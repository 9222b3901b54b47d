//! Review: the queue of proposals waiting for a human. Nothing fills it yet; this view says so
//! honestly instead of showing actions that do nothing.

use super::pane;
use crate::tui::app::App;
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn render(frame: &mut Frame, area: Rect, _app: &App, theme: &Theme) {
    let lines = vec![
        Line::styled("The review queue is empty.", theme.title),
        Line::raw(""),
        Line::styled("Proposals wait here for a human when gepa.toml asks for it, for example:", theme.text),
        Line::raw(""),
        Line::from(vec![Span::styled("    [review]", theme.accent)]),
        Line::from(vec![Span::styled("    mutations = \"approve\"", theme.accent)]),
        Line::from(vec![Span::styled("    merges = \"approve\"", theme.accent)]),
        Line::raw(""),
        Line::styled(
            "Approving, vetoing with a reason, editing and merging by hand are not built yet: this version of \
             gepa-tui accepts every proposal that passes the minibatch test on its own, and nothing waits here.",
            theme.muted,
        ),
        Line::styled("Every proposal and its outcome is in the Reflections view (6).", theme.muted),
    ];
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane(" Review queue ", theme, true)),
        area,
    );
}

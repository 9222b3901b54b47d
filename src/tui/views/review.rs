//! Review: children that passed their test and wait for a person (`[review]` set to "approve").
//! The workbench shows them but cannot act on them yet; this view says so instead of offering
//! buttons that do nothing.

use super::{one_line, pane};
use crate::engine::event::ReviewKind;
use crate::tui::app::App;
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let queue = &app.model.state.review_queue;
    let mut lines = Vec::new();
    if queue.is_empty() {
        lines.push(Line::styled("The review queue is empty.", theme.title));
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "Children that pass their minibatch test wait here for a person, instead of being scored on val, when gepa.toml says:",
            theme.text,
        ));
        lines.push(Line::raw(""));
        for l in ["    [review]", "    mutations = \"approve\"", "    merges = \"approve\""] {
            lines.push(Line::styled(l, theme.accent));
        }
    } else {
        lines.push(Line::styled(format!("{} waiting for a person:", queue.len()), theme.title));
        lines.push(Line::raw(""));
        for it in queue {
            let kind = match it.kind {
                ReviewKind::Mutation => "mutation",
                ReviewKind::Merge => "merge",
            };
            let parents = super::parents_label(&it.parents);
            let (ps, cs): (f64, f64) = (it.parent_scores.iter().sum(), it.child_scores.iter().sum());
            lines.push(Line::from(vec![
                Span::styled(format!("item {} ", it.item), theme.accent),
                Span::styled(
                    format!("{kind} of {parents} · round {} · changes {}", it.round, one_line(&it.changed.join(", "))),
                    theme.text,
                ),
                Span::styled(format!(" · {} examples: {ps:.2} → {cs:.2}", it.examples.len()), theme.muted),
            ]));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Approving, vetoing with a reason, editing and merging by hand are not in the workbench yet, so an item \
         here waits until the run is continued with `gepa-tui run --auto-approve DIR` (or [review] is set back \
         to \"auto\"). Every proposal and its outcome is in the Reflections view (6).",
        theme.muted,
    ));
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane(" Review queue ", theme, true)),
        area,
    );
}

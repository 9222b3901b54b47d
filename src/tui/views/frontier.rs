//! Frontier: every candidate with its parents, origin, the component it changed, its val mean, the
//! fronts it holds, the test score when known, and when it was found. Sortable (`s`), filterable
//! (`/`); Enter opens the candidate. Only the visible rows are built.

use super::{fmt_score, inner, one_line, pane, parents_label, scroll_window};
use crate::tui::app::App;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let m = &app.model;
    let rows = app.frontier_rows();
    let n_val = m.state.val_ids.len();
    let mut title = vec![Span::styled(format!(" Frontier: {} candidates", m.state.candidates.len()), theme.title)];
    title.push(Span::styled(
        format!(" · {} on a front · sorted by {}", m.frontier_size(), app.frontier.sort.0.label()),
        theme.muted,
    ));
    if !app.marked.is_empty() {
        let marks = app.marked.iter().map(|c| format!("#{c}")).collect::<Vec<_>>().join(" and ");
        title.push(Span::styled(format!(" · marked {marks} ◆"), theme.accent));
    }
    if !app.frontier.filter.is_empty() {
        title.push(Span::styled(
            format!(" · filter \"{}\": {} shown", one_line(&app.frontier.filter), rows.len()),
            theme.warning,
        ));
    }
    title.push(Span::raw(" "));
    let block = pane(Line::from(title), theme, true);
    let body = inner(area);
    frame.render_widget(block, area);
    if m.state.candidates.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("No candidates yet: the seed is scored on val first.", theme.muted)),
            body,
        );
        return;
    }
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("No candidate matches the filter (esc clears it).", theme.muted)),
            body,
        );
        return;
    }
    let height = body.height.saturating_sub(1) as usize;
    let pos = rows.iter().position(|c| *c == app.selected).unwrap_or(0);
    let off = scroll_window(&app.frontier.offset, pos, height, rows.len());
    app.frontier_area.set(Rect { y: body.y + 1, height: height as u16, ..body });
    let best = m.state.best();
    let fronts_held = m.fronts_held();
    let header =
        Row::new(["", "id", "parents", "origin", "changed", "val", "fronts", "test", "found@"].map(Cell::from))
            .style(theme.title.add_modifier(Modifier::BOLD));
    let visible = rows.iter().skip(off).take(height).map(|&id| {
        let c = &m.state.candidates[id];
        let held = fronts_held.get(id).copied().unwrap_or(0);
        let mark = if held > 0 { "★" } else { " " };
        let scored = !c.val_scores.is_empty();
        let mut val_style = if scored { theme.score(c.val_mean) } else { theme.muted };
        if Some(id) == best {
            val_style = val_style.add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
        }
        let changed = if c.changed.is_empty() { "-".to_string() } else { c.changed.join(",") };
        // The selected row is one style, so its text stays readable on the selection colour.
        let selected = id == app.selected;
        let st = |style: ratatui::style::Style| if selected { theme.selection } else { style };
        let row = Row::new(vec![
            Cell::from(Span::styled(mark, st(theme.accent))),
            Cell::from(if app.marked.contains(&id) { format!("#{id}◆") } else { format!("#{id}") }),
            Cell::from(parents_label(&c.parents)),
            Cell::from(super::origin_label(c)),
            Cell::from(one_line(&changed)),
            Cell::from(Span::styled(if scored { fmt_score(c.val_mean) } else { "…".into() }, st(val_style))),
            Cell::from(format!("{held}/{n_val}")),
            Cell::from(c.test_mean.map(fmt_score).unwrap_or_else(|| "-".into())),
            Cell::from(c.discovered_at.to_string()),
        ]);
        row.style(if selected { theme.selection } else { theme.text })
    });
    let widths = [
        Constraint::Length(1),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Min(9),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(7),
    ];
    let table = Table::new(visible, widths).header(header).column_spacing(1);
    frame.render_widget(table, body);
}

//! Frontier: every candidate with its parents, origin, the component it changed, its val mean, the
//! fronts it holds, its mean on each objective, the test score when known, and when it was found.
//! Sortable (`s`), filterable (`/`); Enter opens the candidate. Only the visible rows are built.

use super::{fmt_score, inner, one_line, pane, parents_label, scroll_window};
use crate::eval::objective::format_natural;
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
    let n_fronts = m.state.front_count();
    let all_objectives = m.state.objective_names();
    let objectives = objective_columns(&all_objectives, app, inner(area).width);
    let mut title = vec![Span::styled(format!(" Frontier: {} candidates", m.state.candidates.len()), theme.title)];
    title.push(Span::styled(
        format!(
            " · {} on a front{} · sorted by {}",
            m.frontier_size(),
            if m.state.frontier.is_instance() { String::new() } else { format!(" ({})", m.state.frontier.as_str()) },
            app.frontier.sort.0.label(&all_objectives)
        ),
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
    let mut names: Vec<String> = ["", "id", "parents", "origin", "changed", "val", "fronts"].map(String::from).into();
    names.extend(objectives.iter().map(|(n, _)| n.clone()));
    // Objectives without room get a narrow `+N` column, so the table says they exist.
    let hidden = all_objectives.len() - objectives.len();
    if hidden > 0 {
        names.push(format!("+{hidden}"));
    }
    names.extend(["test", "found@"].map(String::from));
    let header = Row::new(names.into_iter().map(Cell::from)).style(theme.title.add_modifier(Modifier::BOLD));
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
        let mut cells = vec![
            Cell::from(Span::styled(mark, st(theme.accent))),
            Cell::from(if app.marked.contains(&id) { format!("#{id}◆") } else { format!("#{id}") }),
            Cell::from(parents_label(&c.parents)),
            Cell::from(super::origin_label(c)),
            Cell::from(one_line(&changed)),
            Cell::from(Span::styled(if scored { fmt_score(c.val_mean) } else { "…".into() }, st(val_style))),
            Cell::from(format!("{held}/{n_fronts}")),
        ];
        // Each objective the natural way round; the best on it in bold.
        for (name, _) in &objectives {
            let cell = match c.objectives.get(name) {
                Some(v) => {
                    let best = m.state.objective_best(name).is_some_and(|(b, _)| b == id);
                    let style = if best { theme.text.add_modifier(Modifier::BOLD) } else { theme.text };
                    Span::styled(format_natural(name, *v), st(style))
                }
                None => Span::styled("-", st(theme.muted)),
            };
            cells.push(Cell::from(cell));
        }
        if hidden > 0 {
            cells.push(Cell::from(""));
        }
        cells.push(Cell::from(c.test_mean.map(fmt_score).unwrap_or_else(|| "-".into())));
        cells.push(Cell::from(c.discovered_at.to_string()));
        let row = Row::new(cells);
        row.style(if selected { theme.selection } else { theme.text })
    });
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Min(9),
        Constraint::Length(6),
        Constraint::Length(7),
    ];
    widths.extend(objectives.iter().map(|(_, w)| Constraint::Length(*w)));
    if hidden > 0 {
        widths.push(Constraint::Length(HIDDEN_COLUMN - 1));
    }
    widths.extend([Constraint::Length(6), Constraint::Length(7)]);
    let table = Table::new(visible, widths).header(header).column_spacing(1);
    frame.render_widget(table, body);
}

/// Width of the table's columns other than the objectives', with the spaces between them.
const FIXED_COLUMNS: u16 = 1 + 5 + 9 + 8 + 9 + 6 + 7 + 6 + 7 + 8;

fn objective_width(name: &str) -> u16 {
    name.chars().count().clamp(6, 10) as u16
}

/// The `+N` column (with its space) that says how many objectives have no room.
const HIDDEN_COLUMN: u16 = 4;

/// The objectives that get a column in `width`, with their widths: in name order, as many as
/// fit, the one sorted by first and narrowed to fit if need be (sorting by one always shows it).
fn objective_columns(names: &[String], app: &App, width: u16) -> Vec<(String, u16)> {
    let all: u16 = names.iter().map(|n| objective_width(n) + 1).sum();
    let room = width.saturating_sub(FIXED_COLUMNS);
    let mut budget = if all <= room { room } else { room.saturating_sub(HIDDEN_COLUMN) };
    let sorted = match app.frontier.sort.0 {
        crate::tui::app::FrontierSort::Objective(i) => Some(i),
        _ => None,
    };
    let mut shown: Vec<(usize, u16)> = Vec::new();
    if let Some(i) = sorted.filter(|i| *i < names.len()) {
        let w = objective_width(&names[i]).min(budget.saturating_sub(1));
        if w >= 5 {
            budget -= w + 1;
            shown.push((i, w));
        }
    }
    for i in (0..names.len()).filter(|i| Some(*i) != sorted) {
        let w = objective_width(&names[i]);
        if w < budget {
            budget -= w + 1;
            shown.push((i, w));
        }
    }
    shown.sort_unstable();
    shown.into_iter().map(|(i, w)| (names[i].clone(), w)).collect()
}

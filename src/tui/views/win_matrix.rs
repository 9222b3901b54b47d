//! Win matrix: a heat map of candidates × val examples (theme colours plus glyphs that read
//! without colour, and a legend), columns orderable by example difficulty; and a candidate ×
//! candidate matrix of wins/ties/losses over the val examples. Enter on a heat-map cell opens that
//! trace; on a pairwise cell, the diff of the two candidates. `v` shows an objective instead of the
//! main score (the heat map scaled from the worst value seen to the best). Only visible cells are
//! drawn.

use super::{fmt_score, inner, one_line, pane, scroll_window};
use crate::engine::CandidateId;
use crate::eval::objective::format_natural;
use crate::tui::app::{App, MatrixPane};
use crate::tui::theme::{score_band, ScoreBand, Theme};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Columns per heat-map cell.
pub const CELL_W: u16 = 2;
const LABEL_W: u16 = 13;
const PAIR_W: u16 = 9;
const PAIR_LABEL_W: u16 = 6;

/// The glyph for a score, readable without colour.
pub fn glyph(score: Option<f64>, failed: bool) -> &'static str {
    if failed {
        return "✗";
    }
    match score.map(score_band) {
        None => " ",
        Some(ScoreBand::High) => "█",
        Some(ScoreBand::Mid) => "▒",
        Some(ScoreBand::Low) => "░",
        Some(ScoreBand::Zero) => "·",
    }
}

pub fn legend(theme: &Theme) -> Line<'static> {
    let item = |g: &'static str, style: Style, label: &'static str| {
        vec![Span::styled(format!("{g}{g}"), style), Span::styled(format!(" {label}   "), theme.muted)]
    };
    let mut spans = vec![Span::styled("legend ", theme.muted)];
    spans.extend(item("█", theme.score_high, "≥ 0.75"));
    spans.extend(item("▒", theme.score_mid, "≥ 0.25"));
    spans.extend(item("░", theme.score_low, "> 0"));
    spans.extend(item("·", theme.score_none, "0"));
    spans.extend(item("✗", theme.error, "failed"));
    Line::from(spans)
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let m = &app.model;
    if m.state.candidates.is_empty() || m.state.val_ids.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("No candidate has been scored on val yet.", theme.muted)).block(pane(
                " Win matrix ",
                theme,
                true,
            )),
            area,
        );
        return;
    }
    // Side by side when both matrices fit across; otherwise stacked, each pane getting the rows it
    // needs when both fit, else the heat map about 60%.
    let n = m.state.candidates.len() as u16;
    let n_e = m.state.val_ids.len() as u16;
    let heat_w = LABEL_W + CELL_W * n_e + 2;
    let pair_w = (PAIR_LABEL_W + PAIR_W * n + 2).max(60);
    let (heat_need, pair_need) = (n + 4, n + 4);
    let (heat, pair) = if heat_w + pair_w <= area.width && heat_need.max(pair_need) <= area.height {
        let [a, b] =
            Layout::horizontal([Constraint::Length(heat_w.max(area.width - pair_w)), Constraint::Min(0)]).areas(area);
        (a, b)
    } else {
        let pair_h = if heat_need + pair_need <= area.height {
            area.height - heat_need
        } else {
            (area.height * 2 / 5).clamp(5.min(area.height / 2), pair_need.max(5))
        };
        let [a, b] = Layout::vertical([Constraint::Min(6), Constraint::Length(pair_h)]).areas(area);
        (a, b)
    };
    render_heat(frame, heat, app, theme);
    render_pairwise(frame, pair, app, theme);
}

fn render_heat(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let m = &app.model;
    let order = app.example_order();
    let focused = app.matrix.pane == MatrixPane::Heat;
    let objective = app.matrix.objective.as_deref();
    let range = objective.and_then(|o| m.objective_range(o));
    // A cell's value in [0, 1]: the main score, or the objective scaled from the worst to the best.
    let cell_value = |c: CandidateId, ex: usize| -> Option<f64> {
        match (objective, range) {
            (None, _) => m.state.candidates[c].val_scores.get(ex).copied(),
            (Some(o), Some((lo, hi))) => {
                let v = *m.state.candidates[c].val_objectives.get(ex)?.get(o)?;
                Some(if hi > lo { (v - lo) / (hi - lo) } else { 1.0 })
            }
            (Some(_), None) => None,
        }
    };
    let what = match objective {
        Some(o) => format!(" Heat map: {o} (scaled, best █) ·"),
        None => " Heat map:".to_string(),
    };
    let title = Line::from(vec![
        Span::styled(
            format!("{what} {} candidates × {} val examples", m.state.candidates.len(), m.state.val_ids.len()),
            theme.title,
        ),
        Span::styled(format!(" · {} ", app.matrix.order.label()), theme.muted),
    ]);
    frame.render_widget(pane(title, theme, focused), area);
    let body = inner(area);
    if body.height < 3 || body.width <= LABEL_W + CELL_W {
        return;
    }
    // Line 1: the selected cell; line 2: the legend; then the rows.
    let col = app.matrix.col.min(order.len().saturating_sub(1));
    let example = order.get(col).copied().unwrap_or(0);
    let sel = app.selected;
    let ex_id = m.state.val_ids.get(example).map(|s| one_line(s)).unwrap_or_default();
    let mut info = vec![
        Span::styled(format!("#{sel}"), theme.accent),
        Span::styled(" on ", theme.muted),
        Span::styled(ex_id, theme.accent),
        Span::styled(
            format!(" (val {} · difficulty: mean {:.2} over candidates)", example + 1, m.difficulty(example)),
            theme.muted,
        ),
        Span::styled(": ", theme.muted),
    ];
    let on_objective = objective.map(|o| {
        let rec = &m.state.candidates[sel];
        (o, rec.val_objectives.get(example).and_then(|v| v.get(o)).copied())
    });
    match (on_objective, m.score(sel, example)) {
        (Some((o, Some(v))), _) => {
            info.push(Span::styled(format!("{o} {}", format_natural(o, v)), theme.text));
            if let Some(best) = m.state.cartesian_fronts.get(&(example, o.to_string())).filter(|f| f.best.is_finite()) {
                info.push(Span::styled(format!(" (best here {})", format_natural(o, best.best)), theme.muted));
            }
        }
        (Some((o, None)), _) => info.push(Span::styled(format!("no {o}"), theme.muted)),
        (None, Some(s)) => {
            info.push(Span::styled(fmt_score(s), theme.score(s)));
            if m.failed_eval(sel, example) {
                info.push(Span::styled(" failed", theme.error));
            }
            let holders = m.state.fronts.entries.get(example).map(|e| e.holders.len()).unwrap_or(0);
            if m.state.fronts.entries.get(example).is_some_and(|e| e.holders.contains(&sel)) {
                info.push(Span::styled(format!(" · on this front ({holders} hold it)"), theme.muted));
            }
        }
        (None, None) => info.push(Span::styled("not scored", theme.muted)),
    }
    let [info_a, legend_a, grid] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(1)]).areas(body);
    frame.render_widget(Paragraph::new(Line::from(info)), info_a);
    frame.render_widget(Paragraph::new(legend(theme)), legend_a);

    let n_c = m.state.candidates.len();
    let rows_h = grid.height as usize;
    let cols_w = ((grid.width - LABEL_W) / CELL_W) as usize;
    let row_off = scroll_window(&app.matrix.row_offset, sel.min(n_c - 1), rows_h, n_c);
    let col_off = scroll_window(&app.matrix.col_offset, col, cols_w, order.len());
    app.matrix.heat_area.set(Rect { x: grid.x + LABEL_W, width: (cols_w as u16) * CELL_W, ..grid });
    let buf = frame.buffer_mut();
    let best = m.state.best();
    for (r, c) in (row_off..n_c.min(row_off + rows_h)).enumerate() {
        let y = grid.y + r as u16;
        let rec = &m.state.candidates[c];
        let star = if m.on_frontier(c) { "★" } else { " " };
        let label_style = if c == sel {
            theme.selection
        } else if Some(c) == best {
            theme.text.add_modifier(Modifier::BOLD)
        } else {
            theme.text
        };
        let mean = match objective {
            Some(o) => rec.objectives.get(o).map(|v| format_natural(o, *v)).unwrap_or_else(|| "-".into()),
            None if rec.val_scores.is_empty() => "…".into(),
            None => fmt_score(rec.val_mean),
        };
        let label = format!("{:<5}{star}{:>6} ", format!("#{c}"), crate::text::truncate_chars(&mean, 6));
        buf.set_stringn(grid.x, y, &label, LABEL_W as usize, label_style);
        for (k, &ex) in order.iter().skip(col_off).take(cols_w).enumerate() {
            let x = grid.x + LABEL_W + k as u16 * CELL_W;
            let score = cell_value(c, ex);
            let failed = m.failed_eval(c, ex);
            let g = glyph(score, failed);
            let mut style = if failed { theme.error } else { score.map(|s| theme.cell(s)).unwrap_or(theme.muted) };
            if c == sel && k + col_off == col {
                style = theme.selection;
            }
            set_cell(buf, x, y, g, style);
            set_cell(buf, x + 1, y, if c == sel && k + col_off == col { "◂" } else { g }, style);
        }
    }
}

fn set_cell(buf: &mut Buffer, x: u16, y: u16, symbol: &str, style: Style) {
    if let Some(cell) = buf.cell_mut((x, y)) {
        cell.set_symbol(symbol).set_style(style);
    }
}

fn render_pairwise(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let m = &app.model;
    let focused = app.matrix.pane == MatrixPane::Pairwise;
    let n_c = m.state.candidates.len();
    let (a, b) = (app.selected.min(n_c - 1), app.matrix.other.min(n_c - 1));
    let objective = app.matrix.objective.as_deref();
    let wtl = |i: CandidateId, j: CandidateId| match objective {
        Some(o) => m.wins_ties_losses_on(i, j, o),
        None => m.wins_ties_losses(i, j),
    };
    let (w, t, l) = wtl(a, b);
    let title = match objective {
        Some(o) => format!(" Wins/ties/losses on {o} (row vs column) "),
        None => " Wins/ties/losses (row vs column) ".to_string(),
    };
    frame.render_widget(pane(title, theme, focused), area);
    let body = inner(area);
    if body.height < 3 || body.width <= PAIR_LABEL_W + PAIR_W {
        return;
    }
    let info = Line::from(vec![
        Span::styled(format!("#{a} vs #{b}: "), theme.accent),
        Span::styled(format!("{w} wins, {t} ties, {l} losses"), theme.text),
        Span::styled(format!(" over {} val examples", m.state.val_ids.len()), theme.muted),
    ]);
    frame.render_widget(Paragraph::new(info), Rect { height: 1, ..body });
    let body = Rect { y: body.y + 1, height: body.height - 1, ..body };
    let rows_h = body.height as usize - 1;
    let cols_w = ((body.width - PAIR_LABEL_W) / PAIR_W) as usize;
    let row_off = scroll_window(&app.matrix.pair_row_offset, a, rows_h, n_c);
    let col_off = scroll_window(&app.matrix.pair_col_offset, b, cols_w, n_c);
    let buf = frame.buffer_mut();
    for (k, j) in (col_off..n_c.min(col_off + cols_w)).enumerate() {
        let x = body.x + PAIR_LABEL_W + k as u16 * PAIR_W;
        let style = if j == b { theme.accent.add_modifier(Modifier::BOLD) } else { theme.muted };
        buf.set_stringn(x, body.y, format!("{:>8}", format!("#{j}")), PAIR_W as usize, style);
    }
    for (r, i) in (row_off..n_c.min(row_off + rows_h)).enumerate() {
        let y = body.y + 1 + r as u16;
        let label_style = if i == a { theme.selection } else { theme.text };
        buf.set_stringn(body.x, y, format!("{:<5}", format!("#{i}")), PAIR_LABEL_W as usize, label_style);
        for (k, j) in (col_off..n_c.min(col_off + cols_w)).enumerate() {
            let x = body.x + PAIR_LABEL_W + k as u16 * PAIR_W;
            let (text, mut style) = if i == j {
                ("—".to_string(), theme.muted)
            } else {
                let (w, t, l) = wtl(i, j);
                let style = if w > l {
                    theme.score_high
                } else if w < l {
                    theme.score_low
                } else {
                    theme.score_mid
                };
                (format!("{w}/{t}/{l}"), style)
            };
            if i == a && j == b && focused {
                style = theme.selection;
            }
            buf.set_stringn(x, y, format!("{text:>8}"), PAIR_W as usize, style);
        }
    }
}

//! Win matrix: a heat map of candidates × val examples (theme colours plus glyphs that read
//! without colour, and a legend), columns orderable by example difficulty; and a candidate ×
//! candidate matrix of wins/ties/losses over the val examples. Enter on a heat-map cell opens that
//! trace; on a pairwise cell, the diff of the two candidates. `v` shows an objective instead of the
//! main score (the heat map scaled from the worst value seen to the best). Only visible cells are
//! drawn.

use super::{fmt_score, inner, one_line, pane, scroll_window, step, Ctx, Outcome, PAGE};
use crate::engine::CandidateId;
use crate::eval::objective::format_natural;
use crate::tui::keymap::Action;
use crate::tui::model::{Memo, Model};
use crate::tui::theme::{score_band, ScoreBand, Theme};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use std::cell::Ref;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExampleOrder {
    /// As in the val file.
    #[default]
    Val,
    /// Lowest mean score over the candidates first.
    HardestFirst,
    EasiestFirst,
}

impl ExampleOrder {
    pub fn label(self) -> &'static str {
        match self {
            ExampleOrder::Val => "val order",
            ExampleOrder::HardestFirst => "hardest first",
            ExampleOrder::EasiestFirst => "easiest first",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatrixPane {
    #[default]
    Heat,
    Pairwise,
}

/// The Win matrix view's state.
#[derive(Debug, Default)]
pub struct MatrixView {
    pub pane: MatrixPane,
    /// Column cursor: a position in `example_order`.
    pub col: usize,
    pub order: ExampleOrder,
    /// Pairwise matrix: the column candidate (the row is the selected candidate).
    pub other: CandidateId,
    /// The objective the heat map and the wins/ties/losses show instead of the main score.
    pub objective: Option<String>,
    /// The heat map's first row and column drawn, and where its cells are (for mouse clicks).
    pub row_offset: usize,
    pub col_offset: usize,
    pub heat_area: Rect,
    pair_row_offset: usize,
    pair_col_offset: usize,
    order_cache: Memo<(u64, ExampleOrder), Vec<usize>>,
}

impl MatrixView {
    /// Val example indices in the heat map's column order; cached per model version.
    pub fn example_order(&self, m: &Model) -> Ref<'_, Vec<usize>> {
        let key = (m.version, self.order);
        self.order_cache.get(key, || {
            let n = m.state.val_ids.len();
            let mut idx: Vec<usize> = (0..n).collect();
            let diff = |i: usize| m.difficulty(i);
            match self.order {
                ExampleOrder::Val => {}
                ExampleOrder::HardestFirst => idx.sort_by(|a, b| diff(*a).total_cmp(&diff(*b)).then(a.cmp(b))),
                ExampleOrder::EasiestFirst => idx.sort_by(|a, b| diff(*b).total_cmp(&diff(*a)).then(a.cmp(b))),
            }
            idx
        })
    }

    pub fn handle(&mut self, action: Action, ctx: &Ctx) -> Outcome {
        let n_c = ctx.n_candidates();
        let n_e = ctx.model.state.val_ids.len();
        let sel = ctx.selected;
        match (self.pane, action) {
            (_, Action::SwitchPane) => {
                self.pane = match self.pane {
                    MatrixPane::Heat => MatrixPane::Pairwise,
                    MatrixPane::Pairwise => MatrixPane::Heat,
                }
            }
            (MatrixPane::Pairwise, Action::Back) => self.pane = MatrixPane::Heat,
            (_, Action::NextObjective) => {
                // The main score, then each objective, then the main score again.
                let names = ctx.model.state.objective_names();
                let at = self.objective.as_ref().and_then(|o| names.iter().position(|n| n == o));
                let next = match at {
                    None => names.first(),
                    Some(i) => names.get(i + 1),
                };
                self.objective = next.cloned();
                return Outcome::Flash(match (&self.objective, names.is_empty()) {
                    (_, true) => "this run records no objectives: the win matrix shows the main score".into(),
                    (Some(o), _) => format!("win matrix: {o} (scaled from the worst to the best seen)"),
                    (None, _) => "win matrix: the main score".into(),
                });
            }
            (_, Action::Sort) => {
                self.order = match self.order {
                    ExampleOrder::Val => ExampleOrder::HardestFirst,
                    ExampleOrder::HardestFirst => ExampleOrder::EasiestFirst,
                    ExampleOrder::EasiestFirst => ExampleOrder::Val,
                };
                return Outcome::Flash(format!("examples in {}", self.order.label()));
            }
            (_, Action::Up) => return Outcome::Select(step(sel, -1, n_c)),
            (_, Action::Down) => return Outcome::Select(step(sel, 1, n_c)),
            (_, Action::PageUp) => return Outcome::Select(step(sel, -PAGE, n_c)),
            (_, Action::PageDown) => return Outcome::Select(step(sel, PAGE, n_c)),
            (MatrixPane::Heat, Action::Left) => self.col = step(self.col, -1, n_e),
            (MatrixPane::Heat, Action::Right) => self.col = step(self.col, 1, n_e),
            (MatrixPane::Heat, Action::Top) => self.col = 0,
            (MatrixPane::Heat, Action::Bottom) => self.col = n_e.saturating_sub(1),
            (MatrixPane::Heat, Action::Open) => {
                let Some(&example) = self.example_order(ctx.model).get(self.col) else { return Outcome::Done };
                // The Traces view lists the candidate's evaluations (an excluded example may be
                // missing from them): its row for this example.
                let id = ctx.model.state.val_ids.get(example);
                let row = ctx.model.val_evals.get(sel).and_then(|v| v.iter().position(|e| Some(&e.example_id) == id));
                return if let (Some(row), Some(_)) = (row, ctx.model.val_eval(sel, example)) {
                    Outcome::ValTraces(Some(row))
                } else if !ctx.model.state.val_counted(example) {
                    Outcome::Flash(format!("that val example is excluded from this run; #{sel} was not scored on it"))
                } else {
                    Outcome::Flash(format!("candidate #{sel} has no val evaluation yet"))
                };
            }
            (MatrixPane::Pairwise, Action::Left) => self.other = step(self.other, -1, n_c),
            (MatrixPane::Pairwise, Action::Right) => self.other = step(self.other, 1, n_c),
            (MatrixPane::Pairwise, Action::Top) => self.other = 0,
            (MatrixPane::Pairwise, Action::Bottom) => self.other = n_c.saturating_sub(1),
            (MatrixPane::Pairwise, Action::Open) => return Outcome::Compare(self.other),
            _ => return Outcome::Ignored,
        }
        Outcome::Done
    }

    /// A click on a heat-map cell selects its candidate and example.
    pub fn click(&mut self, pos: Position, ctx: &Ctx) -> Outcome {
        let area = self.heat_area;
        if !area.contains(pos) {
            return Outcome::Ignored;
        }
        let row = self.row_offset + (pos.y - area.y) as usize;
        let col = self.col_offset + ((pos.x - area.x) / CELL_W) as usize;
        if row < ctx.n_candidates() && col < ctx.model.state.val_ids.len() {
            self.pane = MatrixPane::Heat;
            self.col = col;
            return Outcome::Select(row);
        }
        Outcome::Ignored
    }

    pub fn hints(&self, ctx: &Ctx) -> Vec<Action> {
        use Action::*;
        let mut h = match self.pane {
            MatrixPane::Heat => vec![Open, Sort, SwitchPane],
            MatrixPane::Pairwise => vec![Open, SwitchPane],
        };
        if !ctx.model.state.objective_names().is_empty() {
            h.push(NextObjective);
        }
        h
    }
}

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

impl MatrixView {
    pub fn render(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let (m, theme) = (ctx.model, ctx.theme);
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
            let [a, b] = Layout::horizontal([Constraint::Length(heat_w.max(area.width - pair_w)), Constraint::Min(0)])
                .areas(area);
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
        self.render_heat(frame, heat, ctx);
        self.render_pairwise(frame, pair, ctx);
    }

    fn render_heat(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let (m, theme) = (ctx.model, ctx.theme);
        let order = self.example_order(m).clone();
        let focused = self.pane == MatrixPane::Heat;
        let objective = self.objective.clone();
        let objective = objective.as_deref();
        let range = objective.and_then(|o| m.objective_range(o));
        // A cell's value in [0, 1]: the main score, or the objective scaled from the worst to the best.
        let cell_value = |c: CandidateId, ex: usize| -> Option<f64> {
            match (objective, range) {
                // An excluded example shows as unscored (it counts for nothing).
                _ if !m.state.val_counted(ex) => None,
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
            Span::styled(format!(" · {} ", self.order.label()), theme.muted),
        ]);
        frame.render_widget(pane(title, theme, focused), area);
        let body = inner(area);
        if body.height < 3 || body.width <= LABEL_W + CELL_W {
            return;
        }
        // Line 1: the selected cell; line 2: the legend; then the rows.
        let col = self.col.min(order.len().saturating_sub(1));
        let example = order.get(col).copied().unwrap_or(0);
        let sel = ctx.selected;
        let ex_id = m.state.val_ids.get(example).map(|s| one_line(s)).unwrap_or_default();
        let mut info = vec![
            Span::styled(format!("#{sel}"), theme.accent),
            Span::styled(" on ", theme.muted),
            Span::styled(ex_id, theme.accent),
            Span::styled(": ", theme.muted),
        ];
        let on_objective = objective.map(|o| {
            let rec = &m.state.candidates[sel];
            (o, rec.val_objectives.get(example).and_then(|v| v.get(o)).copied())
        });
        match (on_objective, m.score(sel, example)) {
            (Some((o, Some(v))), _) => {
                info.push(Span::styled(format!("{o} {}", format_natural(o, v)), theme.text));
                if let Some(best) =
                    m.state.cartesian_fronts.get(&(example, o.to_string())).filter(|f| f.best.is_finite())
                {
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
        // The cell's score first, then where the example stands (cut first on a narrow screen).
        info.push(Span::styled(
            format!(" · val {} · difficulty: mean {:.2} over candidates", example + 1, m.difficulty(example)),
            theme.muted,
        ));
        let [info_a, legend_a, grid] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(1)]).areas(body);
        frame.render_widget(Paragraph::new(Line::from(info)), info_a);
        frame.render_widget(Paragraph::new(legend(theme)), legend_a);

        let n_c = m.state.candidates.len();
        let rows_h = grid.height as usize;
        let cols_w = ((grid.width - LABEL_W) / CELL_W) as usize;
        let row_off = scroll_window(self.row_offset, sel.min(n_c - 1), rows_h, n_c);
        let col_off = scroll_window(self.col_offset, col, cols_w, order.len());
        (self.row_offset, self.col_offset) = (row_off, col_off);
        self.heat_area = Rect { x: grid.x + LABEL_W, width: (cols_w as u16) * CELL_W, ..grid };
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

    fn render_pairwise(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let (m, theme) = (ctx.model, ctx.theme);
        let focused = self.pane == MatrixPane::Pairwise;
        let n_c = m.state.candidates.len();
        let (a, b) = (ctx.selected.min(n_c - 1), self.other.min(n_c - 1));
        let objective = self.objective.as_deref();
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
        let mut info = vec![
            Span::styled(format!("#{a} vs #{b}: "), theme.accent),
            Span::styled(format!("{w} wins, {t} ties, {l} losses"), theme.text),
            Span::styled(format!(" over {} val examples", m.state.val_ids.len()), theme.muted),
        ];
        // With repeated val scoring a win must hold over every draw (see `wins_ties_losses`).
        let repeats = m.state.settings.val_repeats;
        if repeats > 1 && objective.is_none() {
            info.push(Span::styled(format!(" × {repeats} draws"), theme.muted));
        }
        let info = Line::from(info);
        frame.render_widget(Paragraph::new(info), Rect { height: 1, ..body });
        let body = Rect { y: body.y + 1, height: body.height - 1, ..body };
        let rows_h = body.height as usize - 1;
        let cols_w = ((body.width - PAIR_LABEL_W) / PAIR_W) as usize;
        let row_off = scroll_window(self.pair_row_offset, a, rows_h, n_c);
        let col_off = scroll_window(self.pair_col_offset, b, cols_w, n_c);
        (self.pair_row_offset, self.pair_col_offset) = (row_off, col_off);
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
}

fn set_cell(buf: &mut Buffer, x: u16, y: u16, symbol: &str, style: Style) {
    if let Some(cell) = buf.cell_mut((x, y)) {
        cell.set_symbol(symbol).set_style(style);
    }
}

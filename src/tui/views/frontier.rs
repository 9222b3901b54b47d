//! Frontier: every candidate with its parents, origin, the component it changed, its val mean, the
//! fronts it holds, its mean on each objective, the test score when known, and when it was found.
//! Sortable (`s`), filterable (`/`); Enter opens the candidate. Only the visible rows are built.
//! With `o`, the trade-off plot (`trade_off.rs`) shares the view; at wide sizes (or with `D`) a
//! detail pane beside the table shows the selected candidate's texts diffed against its parent,
//! so prompts can be scanned without switching views.

use super::input::{InputLine, InputTarget};
use super::{fmt_score, inner, one_line, pane, parents_label, step, Ctx, ListLayout, Outcome, Scroll, View, PAGE};
use crate::engine::CandidateId;
use crate::eval::objective::format_natural;
use crate::tui::keymap::Action;
use crate::tui::model::{Memo, Model};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;
use std::cell::Ref;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrontierSort {
    #[default]
    Id,
    ValMean,
    FrontsHeld,
    TestScore,
    /// The run's objective at this index (of `RunState::objective_names`), best first.
    Objective(usize),
}

impl FrontierSort {
    /// `objectives` are the run's objective names.
    pub fn label(self, objectives: &[String]) -> String {
        match self {
            FrontierSort::Id => "id".into(),
            FrontierSort::ValMean => "val mean ↓".into(),
            FrontierSort::FrontsHeld => "fronts held ↓".into(),
            FrontierSort::TestScore => "test ↓".into(),
            FrontierSort::Objective(i) => match objectives.get(i) {
                // Best first: the fewest tokens (↑) for a lower-is-better objective.
                Some(n) if crate::eval::objective::lower_is_better(n) => format!("{n} ↑"),
                Some(n) => format!("{n} ↓"),
                None => "id".into(),
            },
        }
    }

    /// The next order: the fixed ones, then each of the run's `n_objectives` objectives.
    fn next(self, n_objectives: usize) -> Self {
        match self {
            FrontierSort::Id => FrontierSort::ValMean,
            FrontierSort::ValMean => FrontierSort::FrontsHeld,
            FrontierSort::FrontsHeld => FrontierSort::TestScore,
            FrontierSort::TestScore if n_objectives > 0 => FrontierSort::Objective(0),
            FrontierSort::Objective(i) if i + 1 < n_objectives => FrontierSort::Objective(i + 1),
            FrontierSort::TestScore | FrontierSort::Objective(_) => FrontierSort::Id,
        }
    }
}

/// The Frontier view's state.
#[derive(Debug, Default)]
pub struct FrontierView {
    pub sort: FrontierSort,
    /// The trade-off plot is shown beside (or under) the table.
    pub trade_off: bool,
    /// The plot's axes as chosen (x, y): indices into the val score and the run's objectives;
    /// None until chosen (then x is the first objective and y the val score).
    pub axis_choice: Option<[usize; 2]>,
    pub filter: String,
    /// The whole run's lineage as a tree instead of the table (`L`).
    pub tree: bool,
    /// The detail pane: None shows it when the view is wide enough; `D` decides.
    pub detail: Option<bool>,
    pub detail_scroll: Scroll,
    /// Where the table's rows were drawn (for mouse clicks).
    pub list: ListLayout,
    /// The last render was wide enough for a pane beside the table.
    wide: bool,
    /// (model version, sort, filter, tree) -> candidate ids in display order.
    rows: Memo<(u64, FrontierSort, String, bool), Vec<CandidateId>>,
}

impl FrontierView {
    /// The plot's (x, y) axes among `n` (the val score, then the objectives).
    pub fn axes(&self, n: usize) -> [usize; 2] {
        let [x, y] = self.axis_choice.unwrap_or([1, 0]);
        let clamp = |i: usize| if i < n { i } else { 0 };
        [clamp(x), clamp(y)]
    }

    /// Moves one axis (0 = x, 1 = y) to the next of `n` axes, skipping the other axis's.
    fn next_axis(&mut self, which: usize, n: usize) {
        let mut axes = self.axes(n);
        if n >= 2 {
            let mut next = (axes[which] + 1) % n;
            if next == axes[1 - which] {
                next = (next + 1) % n;
            }
            axes[which] = next;
        }
        self.axis_choice = Some(axes);
    }

    /// Candidate ids in the frontier's order, filtered; cached until the model or the order changes.
    pub fn rows(&self, m: &Model) -> Ref<'_, Vec<CandidateId>> {
        let key = (m.version, self.sort, self.filter.clone(), self.tree);
        self.rows.get(key, || self.compute_rows(m))
    }

    fn compute_rows(&self, m: &Model) -> Vec<CandidateId> {
        let cands = &m.state.candidates;
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<CandidateId> = cands
            .iter()
            .filter(|c| {
                needle.is_empty()
                    || format!("#{}", c.id) == needle
                    || super::origin_label(m, c).contains(&needle)
                    || c.origin.as_str().contains(&needle)
                    || c.changed.iter().any(|n| n.to_lowercase().contains(&needle))
                    || c.texts.values().any(|t| t.to_lowercase().contains(&needle))
            })
            .map(|c| c.id)
            .collect();
        if self.tree {
            // Tree order, whatever the sort: a filter keeps the matching nodes where they hang.
            let keep: std::collections::BTreeSet<CandidateId> = rows.into_iter().collect();
            return super::lineage::tree(m).into_iter().map(|n| n.id).filter(|c| keep.contains(c)).collect();
        }
        let held = m.fronts_held();
        match self.sort {
            FrontierSort::Id => {}
            FrontierSort::ValMean => {
                rows.sort_by(|a, b| cands[*b].val_mean.total_cmp(&cands[*a].val_mean).then(a.cmp(b)))
            }
            FrontierSort::FrontsHeld => rows.sort_by(|a, b| {
                held.get(*b).copied().unwrap_or(0).cmp(&held.get(*a).copied().unwrap_or(0)).then(a.cmp(b))
            }),
            FrontierSort::TestScore => rows.sort_by(|a, b| {
                let t = |c: &CandidateId| cands[*c].test_mean.unwrap_or(f64::NEG_INFINITY);
                t(b).total_cmp(&t(a)).then(a.cmp(b))
            }),
            FrontierSort::Objective(i) => {
                // Recorded values are higher-is-better: the best first, unscored last.
                let name = m.state.objective_names().get(i).cloned().unwrap_or_default();
                let v = |c: &CandidateId| cands[*c].objectives.get(&name).copied().unwrap_or(f64::NEG_INFINITY);
                rows.sort_by(|a, b| v(b).total_cmp(&v(a)).then(a.cmp(b)))
            }
        }
        rows
    }

    pub fn handle(&mut self, action: Action, ctx: &Ctx) -> Outcome {
        let rows = self.rows(ctx.model).clone();
        let pos = rows.iter().position(|c| *c == ctx.selected).unwrap_or(0);
        let new_pos = match action {
            Action::Up => step(pos, -1, rows.len()),
            Action::Down => step(pos, 1, rows.len()),
            Action::PageUp => step(pos, -PAGE, rows.len()),
            Action::PageDown => step(pos, PAGE, rows.len()),
            Action::Top => 0,
            Action::Bottom => rows.len().saturating_sub(1),
            Action::Open => {
                return match rows.get(pos) {
                    Some(&c) => Outcome::Show(View::Candidate, Some(c)),
                    None => Outcome::Done,
                }
            }
            Action::TradeOff => {
                self.trade_off = !self.trade_off;
                return Outcome::Done;
            }
            Action::Lineage => {
                self.tree = !self.tree;
                self.list.offset = 0;
                return Outcome::Done;
            }
            Action::Detail => {
                // The pane is on by default only where it fits, so the first press turns it off there.
                let shown = self.detail.unwrap_or(self.wide);
                self.detail = Some(!shown);
                return Outcome::Done;
            }
            Action::ScrollUp | Action::ScrollDown if self.detail_shown() => {
                self.detail_scroll.by(if action == Action::ScrollUp { -1 } else { 1 });
                return Outcome::Done;
            }
            Action::AxisX | Action::AxisY => {
                let names = super::trade_off::axes(ctx.model);
                if !self.trade_off {
                    self.trade_off = true;
                } else {
                    let which = usize::from(action == Action::AxisY);
                    self.next_axis(which, names.len());
                }
                let [x, y] = self.axes(names.len());
                return Outcome::Flash(format!("trade-off: {} against {}", names[y], names[x]));
            }
            Action::Sort => {
                let names = ctx.model.state.objective_names();
                self.sort = self.sort.next(names.len());
                return Outcome::Flash(format!("sorted by {}", self.sort.label(&names)));
            }
            Action::Search => return Outcome::Prompt(InputLine::new(InputTarget::FrontierFilter, self.filter.clone())),
            Action::Edit | Action::EditExternal => {
                return super::editor::hand_edit(ctx, action == Action::EditExternal)
            }
            Action::Guide => return super::guide_prompt(ctx, ctx.selected, None),
            Action::Back if !self.filter.is_empty() => {
                self.filter.clear();
                return Outcome::Done;
            }
            _ => return Outcome::Ignored,
        };
        match rows.get(new_pos) {
            Some(&c) => Outcome::Select(c),
            None => Outcome::Done,
        }
    }

    /// The filter as typed so far.
    pub fn set_filter(&mut self, text: String) {
        self.filter = text;
        self.list.offset = 0;
    }

    pub fn click(&mut self, pos: Position, ctx: &Ctx) -> Outcome {
        match self.list.row_at(pos).and_then(|r| self.rows(ctx.model).get(r).copied()) {
            Some(c) => Outcome::Select(c),
            None => Outcome::Ignored,
        }
    }

    /// The keys worth a hint in the footer.
    pub fn hints(&self, ctx: &Ctx) -> Vec<Action> {
        use Action::*;
        if self.tree {
            vec![Open, Lineage, Search, Edit, Mark]
        } else if ctx.marked.len() == 2 {
            vec![MergeMarked, Mark, Open, Edit, AddCandidate]
        } else if self.trade_off {
            vec![AxisX, AxisY, TradeOff, Open, Sort]
        } else {
            vec![Open, Sort, Search, TradeOff, Edit, Guide, Mark]
        }
    }

    /// Whether the detail pane is drawn (the trade-off plot takes its place when on).
    fn detail_shown(&self) -> bool {
        !self.trade_off && self.detail.unwrap_or(self.wide)
    }

    /// The table, and the trade-off plot or the detail pane beside it (wide) or under it.
    pub fn render(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        // The table keeps the width its columns need (all objectives included); the detail pane
        // comes by default when what is left is wide enough to read a prompt in.
        let objectives: u16 = ctx.model.state.objective_names().iter().map(|n| objective_width(n) + 1).sum();
        let table_w = (fixed_columns(ctx.model) + objectives + 2).max(area.width * 55 / 100);
        self.wide = area.width >= table_w + DETAIL_MIN_WIDTH;
        if !self.trade_off && !self.detail_shown() {
            return self.render_table(frame, area, ctx);
        }
        let split = match (self.trade_off, self.wide || area.width >= 140) {
            (true, true) => Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).split(area),
            (false, true) => Layout::horizontal([Constraint::Length(table_w), Constraint::Min(0)]).split(area),
            (_, false) => Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).split(area),
        };
        self.render_table(frame, split[0], ctx);
        if self.trade_off {
            super::trade_off::render(frame, split[1], self.axes(super::trade_off::axes(ctx.model).len()), ctx);
        } else {
            self.render_detail(frame, split[1], ctx);
        }
    }

    /// The selected candidate's texts, diffed against its first parent (the seed's as they are).
    fn render_detail(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let theme = ctx.theme;
        let Some(rec) = ctx.model.state.candidates.get(ctx.selected) else {
            return frame.render_widget(pane(" Texts ", theme, false), area);
        };
        let parent = rec.parents.first().copied();
        let title = match parent {
            Some(p) => format!(" #{} · diff against #{p} · {} opens it ", rec.id, ctx.keymap.describe(Action::Open)),
            None => format!(" #{} · the seed's texts ", rec.id),
        };
        let lines = super::candidate::text_body(ctx, parent);
        let body = inner(area);
        let at = self.detail_scroll.at(super::wrapped_rows(&lines, body.width), body.height);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(ratatui::widgets::Wrap { trim: false })
                .scroll((at, 0))
                .block(pane(title, theme, false)),
            area,
        );
    }

    fn render_table(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let (m, theme) = (ctx.model, ctx.theme);
        let rows = self.rows(m).clone();
        if self.tree {
            let body = inner(area);
            let pos = rows.iter().position(|c| *c == ctx.selected).unwrap_or(0);
            let off = self.list.window(pos, body.height as usize, rows.len());
            self.list.area = body;
            return super::lineage::render(frame, area, ctx, &super::lineage::tree(m), &rows, off);
        }
        let n_fronts = m.state.front_count();
        let all_objectives = m.state.objective_names();
        let objectives =
            objective_columns(&all_objectives, self.sort, inner(area).width.saturating_sub(spread_width(m)));
        let mut title = vec![Span::styled(format!(" Frontier: {} candidates", m.state.candidates.len()), theme.title)];
        title.push(Span::styled(
            format!(
                " · {} on a front{} · sorted by {}",
                m.frontier_size(),
                if m.state.frontier.is_instance() {
                    String::new()
                } else {
                    format!(" ({})", m.state.frontier.as_str())
                },
                self.sort.label(&all_objectives)
            ),
            theme.muted,
        ));

        if !ctx.marked.is_empty() {
            let marks = ctx.marked.iter().map(|c| format!("#{c}")).collect::<Vec<_>>().join(" and ");
            title.push(Span::styled(format!(" · marked {marks} ◆"), theme.accent));
        }
        if !self.filter.is_empty() {
            title.push(Span::styled(
                format!(" · filter \"{}\": {} shown", one_line(&self.filter), rows.len()),
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
        let pos = rows.iter().position(|c| *c == ctx.selected).unwrap_or(0);
        let off = self.list.window(pos, height, rows.len());
        self.list.area = Rect { y: body.y + 1, height: height as u16, ..body };
        let best = m.state.best();
        let fronts_held = m.fronts_held();
        let mut names: Vec<String> =
            ["", "id", "parents", "origin", "changed", "val", "fronts"].map(String::from).into();
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
            let selected = id == ctx.selected;
            let st = |style: ratatui::style::Style| if selected { theme.selection } else { style };
            let mut cells = vec![
                Cell::from(Span::styled(mark, st(theme.accent))),
                Cell::from(if ctx.marked.contains(&id) { format!("#{id}◆") } else { format!("#{id}") }),
                Cell::from(parents_label(&c.parents)),
                Cell::from(super::origin_label(ctx.model, c)),
                Cell::from(one_line(&changed)),
                Cell::from(Span::styled(val_label(m, id), st(val_style))),
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
            Constraint::Length(6 + spread_width(m)),
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
}

/// A candidate's val mean, with how far it spreads over the repeats when val is scored more
/// than once (`val_repeats`): `0.667±0.05`.
fn val_label(m: &crate::tui::model::Model, c: crate::engine::CandidateId) -> String {
    let rec = &m.state.candidates[c];
    if rec.val_scores.is_empty() {
        return "…".into();
    }
    match m.state.val_spread(c) {
        Some(sd) => format!("{}±{sd:.2}", fmt_score(rec.val_mean)),
        None => fmt_score(rec.val_mean),
    }
}

/// What the val column needs beyond a mean's width for its spread (`±0.05`), in a run that
/// scores val more than once.
fn spread_width(m: &crate::tui::model::Model) -> u16 {
    if m.state.settings.val_repeats > 1 {
        5
    } else {
        0
    }
}

fn fixed_columns(m: &crate::tui::model::Model) -> u16 {
    FIXED_COLUMNS + spread_width(m)
}

/// The narrowest detail pane shown by default beside the table.
const DETAIL_MIN_WIDTH: u16 = 50;

/// Width of the table's columns other than the objectives', with the spaces between them.
const FIXED_COLUMNS: u16 = 1 + 5 + 9 + 8 + 9 + 6 + 7 + 6 + 7 + 8;

fn objective_width(name: &str) -> u16 {
    name.chars().count().clamp(6, 10) as u16
}

/// The `+N` column (with its space) that says how many objectives have no room.
const HIDDEN_COLUMN: u16 = 4;

/// The objectives that get a column in `width`, with their widths: in name order, as many as
/// fit, the one sorted by first and narrowed to fit if need be (sorting by one always shows it).
fn objective_columns(names: &[String], sort: FrontierSort, width: u16) -> Vec<(String, u16)> {
    let all: u16 = names.iter().map(|n| objective_width(n) + 1).sum();
    let room = width.saturating_sub(FIXED_COLUMNS);
    let mut budget = if all <= room { room } else { room.saturating_sub(HIDDEN_COLUMN) };
    let sorted = match sort {
        FrontierSort::Objective(i) => Some(i),
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

//! The trade-off plot, a pane of the Frontier view: every scored candidate placed by two chosen
//! axes (the val score or an objective, each the natural way round), the ones no other beats on
//! both axes joined and marked, the selected candidate highlighted. `X` and `Y` choose the axes.

use super::Ctx;
use super::{fmt_score, inner, pane};
use crate::engine::pareto::non_dominated;
use crate::engine::CandidateId;
use crate::eval::objective::{format_natural, lower_is_better, natural};
use crate::tui::keymap::{Action, Layer};
use crate::tui::model::Model;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

/// The main score's axis name; the others are the run's objectives.
pub const VAL_AXIS: &str = "val";

/// The axes to choose from: the val score, then each objective by name.
pub fn axes(m: &Model) -> Vec<String> {
    std::iter::once(VAL_AXIS.to_string()).chain(m.state.objective_names()).collect()
}

/// A candidate's value on an axis, as recorded (higher is better), if it has one.
fn recorded(m: &Model, c: CandidateId, axis: &str) -> Option<f64> {
    let rec = m.state.candidates.get(c).filter(|r| !r.val_scores.is_empty())?;
    if axis == VAL_AXIS {
        Some(rec.val_mean)
    } else {
        rec.objectives.get(axis).copied()
    }
}

fn shown(axis: &str, recorded: f64) -> f64 {
    if axis == VAL_AXIS {
        recorded
    } else {
        natural(axis, recorded)
    }
}

fn label(axis: &str, recorded: f64) -> String {
    if axis == VAL_AXIS {
        fmt_score(recorded)
    } else {
        format_natural(axis, recorded)
    }
}

/// Which way is better along an axis as drawn.
fn better(axis: &str, horizontal: bool) -> &'static str {
    match (axis != VAL_AXIS && lower_is_better(axis), horizontal) {
        (true, true) => "← better",
        (false, true) => "better →",
        (true, false) => "↓ better",
        (false, false) => "↑ better",
    }
}

/// The plotted points (candidate, x, y as recorded) and those no other beats on both axes.
pub fn points(m: &Model, x: &str, y: &str) -> (Vec<(CandidateId, f64, f64)>, Vec<CandidateId>) {
    let pts: Vec<(CandidateId, f64, f64)> =
        (0..m.state.candidates.len()).filter_map(|c| Some((c, recorded(m, c, x)?, recorded(m, c, y)?))).collect();
    let coords: Vec<Vec<f64>> = pts.iter().map(|(_, a, b)| vec![*a, *b]).collect();
    let front = non_dominated(&coords).into_iter().map(|i| pts[i].0).collect();
    (pts, front)
}

/// Axis bounds around the values, padded; a single value gets room on both sides.
fn bounds(values: impl Iterator<Item = f64>) -> [f64; 2] {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return [0.0, 1.0];
    }
    let pad = if hi > lo { (hi - lo) * 0.08 } else { lo.abs().max(1.0) * 0.1 };
    [lo - pad, hi + pad]
}

/// Three labels along an axis: low, middle, high, formatted like the axis's values.
fn labels(axis: &str, b: [f64; 2]) -> Vec<Span<'static>> {
    // The bounds are natural values; labels format recorded ones.
    let rec = |v: f64| if axis != VAL_AXIS && lower_is_better(axis) { -v } else { v };
    [b[0], (b[0] + b[1]) / 2.0, b[1]].into_iter().map(|v| Span::raw(label(axis, rec(v)))).collect()
}

/// The plot of axes `[xi, yi]` (indices into `axes`; the Frontier view keeps the choice).
pub fn render(frame: &mut Frame, area: Rect, [xi, yi]: [usize; 2], ctx: &Ctx) {
    let theme = ctx.theme;
    let names = axes(ctx.model);
    let keys = format!(
        "{}/{} axes",
        ctx.keymap.describe_in(Layer::Frontier, Action::AxisX),
        ctx.keymap.describe_in(Layer::Frontier, Action::AxisY)
    );
    if names.len() < 2 {
        let block = pane(Line::from(Span::styled(" Trade-off ", theme.title)), theme, false);
        let text = "This run records no objectives, so there is nothing to trade the val score against. \
                    Switch some on in gepa.toml, e.g. [optimizer] objectives = [\"prompt_tokens\"], or \
                    use a combined evaluator (each part is an objective).";
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme.muted)).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    }
    let (x, y) = (names[xi].as_str(), names[yi].as_str());
    let body = inner(area);
    let [chart_area, caption_area] = Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(body);
    // In a short plot the axis titles would sit on the points: the pane's title says which way
    // is better instead.
    let tall = chart_area.height >= 10;
    let named = if tall {
        format!(" Trade-off: {y} against {x} ")
    } else {
        format!(" Trade-off: {y} ({}) against {x} ({}) ", better(y, false), better(x, true))
    };
    let title = Line::from(vec![Span::styled(named, theme.title), Span::styled(format!("· {keys} "), theme.muted)]);
    frame.render_widget(pane(title, theme, false), area);

    let (pts, front) = points(ctx.model, x, y);
    let natural_pt = |(_, a, b): &(CandidateId, f64, f64)| (shown(x, *a), shown(y, *b));
    let others: Vec<(f64, f64)> =
        pts.iter().filter(|p| !front.contains(&p.0) && p.0 != ctx.selected).map(natural_pt).collect();
    let mut front_pts: Vec<(f64, f64)> = pts.iter().filter(|p| front.contains(&p.0)).map(natural_pt).collect();
    front_pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let selected: Vec<(f64, f64)> = pts.iter().filter(|p| p.0 == ctx.selected).map(natural_pt).collect();
    let xb = bounds(pts.iter().map(|p| natural_pt(p).0));
    let yb = bounds(pts.iter().map(|p| natural_pt(p).1));

    let mut datasets = vec![
        Dataset::default().graph_type(GraphType::Line).marker(Marker::Braille).style(theme.accent).data(&front_pts),
        Dataset::default().graph_type(GraphType::Scatter).marker(Marker::Dot).style(theme.muted).data(&others),
        Dataset::default().graph_type(GraphType::Scatter).marker(Marker::Dot).style(theme.accent).data(&front_pts),
    ];
    if !selected.is_empty() {
        let style = theme.warning.add_modifier(Modifier::BOLD);
        datasets
            .push(Dataset::default().graph_type(GraphType::Scatter).marker(Marker::Block).style(style).data(&selected));
    }
    let axis_title = |t: String| if tall { Span::styled(t, theme.muted) } else { Span::raw("") };
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .title(axis_title(format!("{x} ({})", better(x, true))))
                .bounds(xb)
                .labels(labels(x, xb))
                .style(theme.border),
        )
        .y_axis(
            Axis::default()
                .title(axis_title(format!("{y} ({})", better(y, false))))
                .bounds(yb)
                .labels(labels(y, yb))
                .style(theme.border),
        );
    frame.render_widget(chart, chart_area);

    let ids = |v: &[CandidateId]| v.iter().map(|c| format!("#{c}")).collect::<Vec<_>>().join(" ");
    let mut caption = vec![Line::from(vec![
        Span::styled("• ", theme.accent),
        Span::styled(format!("not beaten on both (joined): {}", ids(&front)), theme.text),
    ])];
    let sel = match pts.iter().find(|p| p.0 == ctx.selected) {
        Some((c, a, b)) => format!("#{c}: {x} {} · {y} {}", label(x, *a), label(y, *b)),
        None => format!("#{} is not scored on val yet", ctx.selected),
    };
    caption
        .push(Line::from(vec![Span::styled("█ ", theme.warning), Span::styled(format!("selected {sel}"), theme.text)]));
    frame.render_widget(Paragraph::new(caption), caption_area);
}

//! Dashboard: the budget, the best val score over metric calls, the frontier's size, what is in
//! flight, tokens and cost, the ETA, and a live line of what the engine is doing.

use super::{fmt_duration, fmt_score, fmt_tokens, one_line, pane, Ctx};
use crate::tui::keymap::Action;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, Gauge, GraphType, Paragraph, Wrap};
use ratatui::Frame;

/// The keys worth a hint in the footer.
pub fn hints() -> Vec<Action> {
    vec![Action::TogglePause, Action::NextView]
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &Ctx) {
    let theme = ctx.theme;
    let m = &ctx.model;
    let [gauges, middle, activity] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(6),
        Constraint::Length(4 + m.warnings.len().min(3) as u16),
    ])
    .areas(area);

    // Budget: metric calls, and USD when there is a cost limit.
    let calls = m.metric_calls();
    let max_calls = m.state.settings.max_metric_calls.max(1);
    let [g1, g2] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(gauges);
    let used = calls as f64 / max_calls as f64;
    // The round under way when the budget runs out finishes (as in gepa), so a run can end past
    // its budget: say by how much rather than show a full bar at "100%".
    let label = match calls.checked_sub(m.state.settings.max_metric_calls).filter(|over| *over > 0) {
        Some(over) => format!("{calls} / {} ({:.0}%, {over} over)", m.state.settings.max_metric_calls, used * 100.0),
        None => format!("{calls} / {} ({:.0}%)", m.state.settings.max_metric_calls, used * 100.0),
    };
    frame.render_widget(
        Gauge::default()
            .block(pane(" Budget: metric calls ", theme, false))
            .gauge_style(theme.score_high)
            .ratio(used.clamp(0.0, 1.0))
            .label(Span::styled(label, theme.text)),
        g1,
    );
    let cost = m.cost_usd();
    match m.max_cost_usd {
        Some(max) if max > 0.0 => {
            let r = (cost / max).clamp(0.0, 1.0);
            frame.render_widget(
                Gauge::default()
                    .block(pane(" Budget: USD ", theme, false))
                    .gauge_style(if r > 0.9 { theme.score_low } else { theme.score_mid })
                    .ratio(r)
                    .label(Span::styled(format!("${cost:.4} of ${max:.2}"), theme.text)),
                g2,
            );
        }
        _ => frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(format!("${cost:.4}"), theme.text),
                Span::styled(" spent · no cost limit", theme.muted),
            ]))
            .block(pane(" Cost ", theme, false)),
            g2,
        ),
    }

    let stats_w = if middle.width >= 100 { 46 } else { 38 };
    let [chart_area, stats_area] = Layout::horizontal([Constraint::Min(20), Constraint::Length(stats_w)]).areas(middle);
    render_chart(frame, chart_area, ctx, theme);
    render_stats(frame, stats_area, ctx, theme);
    render_activity(frame, activity, ctx, theme);
}

fn render_chart(frame: &mut Frame, area: Rect, ctx: &Ctx, theme: &Theme) {
    let m = &ctx.model;
    let calls = m.metric_calls();
    let x_max = (m.state.settings.max_metric_calls.max(calls).max(1)) as f64;
    // The best score is a step function of metric calls.
    let mut steps: Vec<(f64, f64)> = Vec::with_capacity(m.state.best_history.len() * 2 + 1);
    for (x, y) in &m.state.best_history {
        if let Some(&(_, prev)) = steps.last() {
            steps.push((*x as f64, prev));
        }
        steps.push((*x as f64, *y));
    }
    if let Some(&(x, y)) = steps.last() {
        if (calls as f64) > x {
            steps.push((calls as f64, y));
        }
    }
    let points: Vec<(f64, f64)> = m.state.candidates.iter().map(|c| (c.discovered_at as f64, c.val_mean)).collect();
    let datasets = vec![
        Dataset::default()
            .name("candidates")
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(theme.muted)
            .data(&points),
        Dataset::default()
            .name("best val")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.score_high)
            .data(&steps),
    ];
    let label = |s: String| Span::styled(s, theme.muted);
    let title = Line::from(vec![
        Span::styled(" Best val ", theme.title),
        Span::styled("━", theme.score_high),
        Span::styled("  candidates ", theme.title),
        Span::styled("•", theme.muted),
        Span::styled("  by metric calls ", theme.title),
    ]);
    let chart = Chart::new(datasets)
        .block(pane(title, theme, false))
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels(vec![label("0".into()), label(format!("{}", x_max as u64))])
                .style(theme.border),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, 1.0])
                .labels(vec![label("0".into()), label("0.5".into()), label("1".into())])
                .style(theme.border),
        )
        .legend_position(None);
    if m.state.candidates.is_empty() {
        let msg = Paragraph::new(Span::styled("no candidate scored yet", theme.muted)).block(pane(
            " Best val score over metric calls ",
            theme,
            false,
        ));
        frame.render_widget(msg, area);
    } else {
        frame.render_widget(chart, area);
    }
}

fn kv<'a>(k: &'a str, v: Vec<Span<'a>>, theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::styled(format!("{k:<11}"), theme.muted)];
    spans.extend(v);
    Line::from(spans)
}

fn render_stats(frame: &mut Frame, area: Rect, ctx: &Ctx, theme: &Theme) {
    let m = &ctx.model;
    let s = &m.state;
    let t = |x: String| Span::styled(x, theme.text);
    let mut lines = Vec::new();
    let (state, _) = super::tabs::run_state(ctx.model);
    let round = match (&m.live, s.round) {
        (Some(st), _) if m.is_live() => format!(" · round {}", st.round),
        (_, Some(r)) => format!(" · round {r} done"),
        _ => String::new(),
    };
    lines.push(kv("state", vec![t(format!("{state}{round}"))], theme));
    if let Some(from) = &s.branched_from {
        let what = match from.rsplit_once(':') {
            // Run first: it fits an 80-column dashboard on one line.
            Some((run, id)) => format!("{} #{}", one_line(run), one_line(id)),
            None => one_line(from),
        };
        lines.push(kv("seeded", vec![Span::styled(what, theme.muted)], theme));
    }
    lines.push(kv(
        "candidates",
        vec![
            t(s.candidates.len().to_string()),
            Span::styled(format!(" ({} on the frontier)", m.frontier_size()), theme.muted),
        ],
        theme,
    ));
    if let Some(b) = s.best() {
        let seed = s.candidates.first().map(|c| c.val_mean).unwrap_or(0.0);
        lines.push(kv(
            "best val",
            vec![
                Span::styled(fmt_score(s.candidates[b].val_mean), theme.score(s.candidates[b].val_mean)),
                Span::styled(format!(" #{b} · seed {}", fmt_score(seed)), theme.muted),
            ],
            theme,
        ));
        if let Some(test) = s.candidates[b].test_mean {
            let gap = s.candidates[b].val_mean - test;
            let style = if gap > 0.1 { theme.warning } else { theme.muted };
            let mut v =
                vec![Span::styled(fmt_score(test), theme.score(test)), Span::styled(format!(" gap {gap:+.3}"), style)];
            if gap > 0.1 {
                v.push(Span::styled(" overfit?", theme.warning));
            }
            lines.push(kv("test", v, theme));
        }
    }
    if !s.data.is_empty() {
        // Examples a person took out or corrected (marked ⊘ and ✎ in Traces): the scores above are
        // computed without (or with the corrected) ones.
        let (out, fixed) = (s.data.excluded.len(), s.data.fixed_examples());
        let mut v = Vec::new();
        if out > 0 {
            v.push(Span::styled(format!("{out} excluded"), theme.warning));
        }
        if fixed > 0 {
            if !v.is_empty() {
                v.push(Span::styled(" · ", theme.muted));
            }
            v.push(Span::styled(format!("{fixed} fixed"), theme.warning));
        }
        lines.push(kv("examples", v, theme));
    }
    let bests = s.objective_bests();
    if !bests.is_empty() {
        // Each objective's best value and who holds it, the natural way round, on one (wrapped) line.
        let parts: Vec<String> = bests
            .iter()
            .map(|(name, b)| {
                format!("{} {} #{}", one_line(name), crate::eval::objective::format_natural(name, b.value), b.candidate)
            })
            .collect();
        lines.push(kv("best on", vec![Span::styled(parts.join(" · "), theme.muted)], theme));
    }
    if let Some(l) = m.live.as_ref().filter(|_| m.is_live()) {
        lines.push(kv(
            "in flight",
            vec![
                t(format!("{} evals", l.in_flight)),
                Span::styled(format!(" · {} rounds", l.rounds_in_flight.max(m.proposals_running())), theme.muted),
            ],
            theme,
        ));
    }
    let dropped = m.live.as_ref().map_or(0, |l| l.evaluations_dropped);
    if s.evaluations_cached > 0 || dropped > 0 {
        // Evaluations served from the run's evaluation cache, and those of plans dropped (paid:
        // their share of the cost is shown when there is one).
        let mut v = vec![t(format!("{} evals", s.evaluations_cached))];
        if dropped > 0 {
            v.push(Span::styled(format!(" · {dropped} dropped"), theme.muted));
        }
        let dropped_usd = m.live.as_ref().map_or(0.0, |l| l.cost_usd_dropped);
        if dropped_usd > 0.0 {
            v.push(Span::styled(format!(" (${dropped_usd:.4})"), theme.muted));
        }
        lines.push(kv("reused", v, theme));
    }
    if s.proposals_without_new_text > 0 || s.reflections_cut_off > 0 {
        // Reflections that gave nothing to try: the same text, nothing, or only cut-off answers.
        let mut v = vec![t(format!("{} unchanged or empty", s.proposals_without_new_text))];
        if s.reflections_cut_off > 0 {
            v.push(Span::styled(format!(" · {} cut off", s.reflections_cut_off), theme.warning));
        }
        lines.push(kv("no child", v, theme));
    }
    if s.guided_proposals > 0 || s.children_refused > 0 {
        // What a person asked of the run beyond reviews: guided proposals, and children refused
        // before any evaluation for protected text or max_growth.
        let mut v = vec![t(format!("{} guided", s.guided_proposals))];
        if s.children_refused > 0 {
            v.push(Span::styled(format!(" · {} refused", s.children_refused), theme.warning));
        }
        lines.push(kv("steering", v, theme));
    }
    if !m.state.review_queue.is_empty() {
        lines.push(kv(
            "review",
            vec![Span::styled(format!("{} waiting (view 7)", m.state.review_queue.len()), theme.warning)],
            theme,
        ));
    }
    // Per model, this session: its calls (requests sent, retries included, plus replies the
    // cache served), how many the cache served, and how many are running now.
    for (k, u) in m.models.iter().enumerate() {
        let mut v = vec![
            Span::styled(format!("{} ", one_line(&u.name)), theme.accent),
            t((u.calls + u.cache_hits).to_string()),
            // No-break spaces keep a count with its word when the line wraps.
            Span::styled(format!(" ({}\u{a0}cached)", u.cache_hits), theme.muted),
        ];
        if u.in_flight > 0 {
            v.push(t(format!(" · {}\u{a0}busy", u.in_flight)));
        }
        if u.waiting_on_limit > 0 {
            v.push(Span::styled(format!(" · {} waiting on its rate limit", u.waiting_on_limit), theme.warning));
        }
        lines.push(kv(if k == 0 { "calls" } else { "" }, v, theme));
    }
    // The whole run's usage as its events record it, so a replayed or reopened run shows it too.
    lines.push(kv(
        "tokens",
        vec![t(format!("{} in · {} out", fmt_tokens(s.input_tokens), fmt_tokens(s.output_tokens)))],
        theme,
    ));
    // Paid, and apart what the replies replayed from the response cache would have cost.
    let mut cost = vec![t(format!("${:.4} paid", m.cost_usd()))];
    if s.cost_usd_replayed > 0.0 {
        cost.push(Span::styled(format!(" · ${:.4} replayed free", s.cost_usd_replayed), theme.muted));
    }
    lines.push(kv("cost", cost, theme));
    // Spend against what `check` would forecast (low – likely – high), from the seed's scores.
    if let Some((used, f, dollars)) = m.use_against_forecast() {
        let show = |v: f64| if dollars { format!("${v:.4}") } else { fmt_tokens(v.round() as u64) };
        let share = if f.mid > 0.0 { format!(" · {:.0}% of likely", 100.0 * used / f.mid) } else { String::new() };
        let style = if used > f.high { theme.warning } else { theme.muted };
        lines.push(kv(
            "forecast",
            vec![
                t(format!("{} of {}–{}–{}", show(used), show(f.low), show(f.mid), show(f.high))),
                Span::styled(format!("{}{share}", if dollars { "" } else { " tokens" }), style),
            ],
            theme,
        ));
    }
    if let Some(l) = m.live.as_ref().filter(|_| m.is_live()) {
        let eta = m.eta_secs().map(fmt_duration).unwrap_or_else(|| "-".into());
        lines.push(kv(
            "elapsed",
            vec![t(fmt_duration(l.elapsed_secs)), Span::styled(format!(" · ETA {eta}"), theme.muted)],
            theme,
        ));
    }
    if let Some(reason) = &s.finished {
        lines.push(kv("stopped by", vec![Span::styled(one_line(reason), theme.muted)], theme));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane(" Run ", theme, false)), area);
}

fn render_activity(frame: &mut Frame, area: Rect, ctx: &Ctx, theme: &Theme) {
    let m = &ctx.model;
    let mut lines = Vec::new();
    let now = if let (Some(e), true) = (&m.engine_error, m.halted) {
        Span::styled(
            format!("stopped: {}; nothing was scored for it. Fix that and reopen the run to resume", one_line(e)),
            theme.error,
        )
    } else if let Some(e) = &m.engine_error {
        Span::styled(format!("the engine stopped with an error: {}", one_line(e)), theme.error)
    } else if let Some(l) = m.live.as_ref().filter(|_| m.is_live() && !m.live_outages().is_empty()) {
        let keys = ctx.keymap.describe(Action::RetryNow);
        let quit = ctx.keymap.describe(Action::Quit);
        Span::styled(format!("{} · {keys} tries now, {quit} stops (resumable)", one_line(&l.activity)), theme.warning)
    } else if let Some(l) = m.live.as_ref().filter(|_| m.is_live()) {
        let act = if l.activity.is_empty() { "starting".to_string() } else { one_line(&l.activity) };
        Span::styled(if m.paused() { format!("paused · {act}") } else { act }, theme.text)
    } else if let Some(reason) = &m.state.finished {
        Span::styled(format!("finished: {}", one_line(reason)), theme.text)
    } else if m.engine_done {
        Span::styled("stopped; the run is resumable (reopen it from the start screen)", theme.muted)
    } else {
        Span::styled("browsing a stored run; nothing is running", theme.muted)
    };
    lines.push(Line::from(vec![Span::styled("now  ", theme.muted), now]));
    // The engine's latest change of course when reflections kept making no child.
    if let Some(t) = m.state.adapt.taken.last() {
        lines.push(Line::from(Span::styled(format!("⟳ round {}: {}", t.round, one_line(&t.message())), theme.warning)));
    }
    for w in m.warnings.iter().rev().take(3) {
        lines.push(Line::from(Span::styled(format!("⚠ {}", one_line(w)), theme.warning)));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(pane(" Activity ", theme, false)), area);
}

//! Traces: for the selected candidate, each val example (failures first) with its input fields, the
//! rendered messages of every step, the output, the expected answer, the score and the feedback;
//! or, opened with `t` from Reflections, the same for a proposal's minibatch (parent, then child).
//! `/` searches inputs, messages, outputs and feedback.

use super::{fmt_score, heading, inner, one_line, pane, scroll_window, text_lines};
use crate::llm::Role;
use crate::tui::app::App;
use crate::tui::theme::Theme;
use crate::tui::views::win_matrix::glyph;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// A list row's name: the example id, after whose run it is on a minibatch.
fn row_label(whose: &str, example_id: &str) -> String {
    if whose.is_empty() {
        one_line(example_id)
    } else {
        format!("{whose} {}", one_line(example_id))
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let m = &app.model;
    let evals = app.trace_evals();
    // On a proposal's minibatch: which proposal, for the titles.
    let proposal = app.traces.proposal.and_then(|k| m.proposals.get(k)).map(|p| format!("r{}.{}", p.round, p.slot));
    if evals.is_empty() {
        let msg = if m.state.candidates.is_empty() {
            "No candidate yet.".to_string()
        } else {
            format!("Candidate #{} has no val evaluations yet.", app.selected)
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, theme.muted)).block(pane(" Traces ", theme, true)), area);
        return;
    }
    let list_w = if area.width >= 120 { 36 } else { 26 };
    let [list_area, detail_area] = Layout::horizontal([Constraint::Length(list_w), Constraint::Min(20)]).areas(area);
    let rows = app.trace_rows();
    let failing = evals.iter().filter(|(_, e)| e.error.is_some() || e.score < 1.0).count();
    let what = match &proposal {
        Some(p) => format!(" {p} minibatch "),
        None => format!(" #{} on val ", app.selected),
    };
    let title = if app.traces.query.is_empty() {
        // "below 1" is shortened on a minibatch, whose longer name must fit a narrow list.
        let below = if proposal.is_some() { format!("· {failing} < 1 ") } else { format!("· {failing} below 1 ") };
        vec![Span::styled(what, theme.title), Span::styled(below, theme.muted)]
    } else {
        // Narrow lists have room for the query or the counts, and the query matters more.
        vec![
            Span::styled(
                match &proposal {
                    Some(p) => format!(" {p} "),
                    None => format!(" #{} ", app.selected),
                },
                theme.title,
            ),
            Span::styled(format!("\"{}\" {}/{} ", one_line(&app.traces.query), rows.len(), evals.len()), theme.warning),
        ]
    };
    frame.render_widget(pane(Line::from(title), theme, true), list_area);
    let list_body = inner(list_area);
    app.traces.list_area.set(list_body);
    app.traces.detail_area.set(detail_area);
    let selected = app.traces.example.filter(|e| rows.contains(e)).or(rows.first().copied());
    let pos = selected.and_then(|s| rows.iter().position(|r| *r == s)).unwrap_or(0);
    let off = scroll_window(&app.traces.offset, pos, list_body.height as usize, rows.len());
    let items: Vec<Line> = rows
        .iter()
        .skip(off)
        .take(list_body.height as usize)
        .map(|&i| {
            let (whose, e) = evals[i];
            let failed = e.error.is_some();
            let g = glyph(Some(e.score), failed);
            let style = if Some(i) == selected { theme.selection } else { theme.text };
            Line::from(vec![
                Span::styled(
                    format!("{g} "),
                    if Some(i) == selected {
                        theme.selection
                    } else if failed {
                        theme.error
                    } else {
                        theme.score(e.score)
                    },
                ),
                Span::styled(format!("{} {}", fmt_score(e.score), row_label(whose, &e.example_id)), style),
            ])
        })
        .collect();
    if rows.is_empty() {
        frame.render_widget(Paragraph::new(Span::styled("nothing matches (esc clears)", theme.muted)), list_body);
    } else {
        frame.render_widget(Paragraph::new(items), list_body);
    }

    let Some(sel) = selected else {
        frame.render_widget(pane(" Trace ", theme, false), detail_area);
        return;
    };
    let (whose, e) = evals[sel];
    let mut lines: Vec<Line> = Vec::new();
    let place = match &proposal {
        Some(p) => format!(" · the {whose}'s run in {p}'s minibatch · score "),
        None => format!(" · val {} of {} · score ", sel + 1, evals.len()),
    };
    lines.push(Line::from(vec![
        Span::styled(one_line(&e.example_id), theme.accent),
        Span::styled(place, theme.muted),
        Span::styled(fmt_score(e.score), theme.score(e.score)),
        Span::styled(format!(" · ${:.5}", e.cost_usd), theme.muted),
    ]));
    if !e.objectives.is_empty() {
        lines.push(Line::styled(format!("objectives: {}", super::objectives_summary(&e.objectives)), theme.muted));
    }
    if let Some(err) = &e.error {
        lines.push(heading("── Error ──", theme));
        lines.extend(text_lines(err, theme.error));
    }
    if let Some(ex) = m.examples.get(&e.example_id) {
        lines.push(heading("── Input ──", theme));
        for (k, v) in &ex.fields {
            if k == "id" || m.expected_field.as_deref() == Some(k.as_str()) {
                continue;
            }
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut first = text_lines(&text, theme.text);
            if let Some(l0) = first.first_mut() {
                l0.spans.insert(0, Span::styled(format!("{}: ", one_line(k)), theme.muted));
            }
            lines.extend(first);
        }
    }
    if let Some(exp) = m.expected(&e.example_id) {
        lines.push(heading("── Expected ──", theme));
        lines.extend(text_lines(&exp, theme.text));
    }
    for (k, step) in e.trace.steps.iter().enumerate() {
        lines.push(heading(
            format!("── Step {}: {} ({}) ──", k + 1, one_line(&step.name), one_line(&step.model)),
            theme,
        ));
        for msg in &step.messages {
            let role = match msg.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            lines.push(Line::styled(format!("[{role}]"), theme.accent));
            lines.extend(text_lines(&msg.content, theme.text));
        }
        lines.push(Line::styled("[reply]", theme.accent));
        if step.truncated {
            lines.push(Line::styled("⚠ cut off at max_tokens", theme.warning));
        }
        lines.extend(text_lines(&step.output, theme.text));
    }
    if let Some(pt) = &e.trace.program_trace {
        lines.push(heading("── Program trace ──", theme));
        lines.extend(text_lines(&serde_json::to_string_pretty(pt).unwrap_or_default(), theme.text));
    }
    if let Some(stderr) = e.trace.stderr.as_deref().filter(|s| !s.trim().is_empty()) {
        lines.push(heading("── Stderr ──", theme));
        lines.extend(text_lines(stderr, theme.muted));
    }
    lines.push(heading("── Output ──", theme));
    lines.extend(text_lines(&e.output, theme.text));
    lines.push(heading("── Feedback ──", theme));
    lines.extend(text_lines(&e.feedback, theme.text));
    let body_area = super::inner(detail_area);
    let at = app.traces.scroll.at(super::wrapped_rows(&lines, body_area.width), body_area.height);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((at, 0)).block(pane(
            match &proposal {
                Some(p) => format!(" Trace: {p}, {whose} "),
                None => format!(" Trace of #{} ", app.selected),
            },
            theme,
            false,
        )),
        detail_area,
    );
}

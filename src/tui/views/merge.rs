//! The manual merge screen: for each component, which of the two marked candidates its text comes
//! from (the merge rules' choice first, marked "rules"), then the merged texts.

use super::{heading, inner, one_line, pane, text_lines};
use crate::tui::app::App;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(mg) = &app.merge else { return };
    let m = &app.model;
    frame.render_widget(Clear, area);
    let title = format!(" Merge #{} and #{} by hand ", mg.a, mg.b);
    frame.render_widget(pane(title, theme, true), area);
    let body = inner(area);
    let rows = mg.names.len() as u16 + 2;
    let [choices, preview] =
        Layout::vertical([Constraint::Length(rows.min(body.height)), Constraint::Min(0)]).areas(body);
    let score = |c: usize| {
        m.state.candidates.get(c).filter(|r| !r.val_scores.is_empty()).map(|r| format!(" (val {:.3})", r.val_mean))
    };
    let mut lines = vec![Line::from(vec![
        Span::styled("per component, ← takes ", theme.muted),
        Span::styled(format!("#{}{}", mg.a, score(mg.a).unwrap_or_default()), theme.accent),
        Span::styled(", → takes ", theme.muted),
        Span::styled(format!("#{}{}", mg.b, score(mg.b).unwrap_or_default()), theme.accent),
    ])];
    let w = mg.names.iter().map(|n| n.chars().count()).max().unwrap_or(0).clamp(9, 18);
    for (i, name) in mg.names.iter().enumerate() {
        let from = mg.from[i];
        let same = m.state.candidates[mg.a].texts.get(name) == m.state.candidates[mg.b].texts.get(name);
        let cur = i == mg.cursor;
        let side = |c: usize| {
            let chosen = from == c;
            let label = if chosen { format!("[#{c}]") } else { format!(" #{c} ") };
            Span::styled(label, if chosen { theme.selection } else { theme.muted })
        };
        let mut spans = vec![
            Span::styled(if cur { "▶ " } else { "  " }, theme.accent),
            Span::styled(
                format!("{:<w$} ", crate::text::truncate_chars(&one_line(name), w)),
                if cur { theme.title } else { theme.text },
            ),
            side(mg.a),
            Span::raw("  "),
            side(mg.b),
        ];
        if same {
            spans.push(Span::styled("  same text on both sides", theme.muted));
        } else if from == mg.default_from[i] {
            spans.push(Span::styled("  (the merge rules' choice)", theme.muted));
        } else {
            spans.push(Span::styled(
                "  (the rules would take #".to_string() + &mg.default_from[i].to_string() + ")",
                theme.warning,
            ));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), choices);
    let texts = mg.texts(m);
    let mut out = Vec::new();
    for (name, from) in mg.names.iter().zip(&mg.from) {
        let other = if *from == mg.a { mg.b } else { mg.a };
        let chosen = texts.get(name).map(String::as_str).unwrap_or("");
        let left_out = m.state.candidates[other].texts.get(name).map(String::as_str).unwrap_or("");
        if left_out == chosen {
            out.push(heading(format!("── {} · from #{from} (same in #{other}) ──", one_line(name)), theme));
            out.extend(text_lines(chosen, theme.text));
        } else {
            // What the choice brings, against the side left out.
            out.push(heading(format!("── {} · from #{from} · diff against #{other} ──", one_line(name)), theme));
            out.extend(super::candidate::word_diff(left_out, chosen, theme));
        }
        out.push(Line::raw(""));
    }
    let at = mg.scroll.at(super::wrapped_rows(&out, preview.width), preview.height);
    frame.render_widget(Paragraph::new(out).wrap(Wrap { trim: false }).scroll((at, 0)), preview);
}

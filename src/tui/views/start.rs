//! Draws the start screen: "new run" and the project's earlier runs, newest first.

use super::{fmt_score, one_line, pane, scroll_window};
use crate::tui::start::StartScreen;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn render(frame: &mut Frame, area: Rect, s: &StartScreen, theme: &Theme) {
    let foot_h = if s.error.is_some() { 4 } else { 2 };
    let [head, body, foot] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(3), Constraint::Length(foot_h)]).areas(area);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled(" gepa-tui ", theme.selection),
                Span::styled("  reflective prompt evolution", theme.muted),
            ]),
            Line::from(vec![
                Span::styled(" project ", theme.muted),
                Span::styled(one_line(&s.project_label), theme.text),
            ]),
        ]),
        head,
    );
    let mut lines: Vec<Line> = Vec::new();
    let row_style = |i: usize| if i == s.selected { theme.selection } else { theme.text };
    lines.push(Line::from(vec![
        Span::styled(" ＋ New run ", row_style(0)),
        Span::styled("  start optimizing from the prompts in the project", theme.muted),
    ]));
    let inner_h = body.height.saturating_sub(2) as usize;
    let off = scroll_window(0, s.selected.saturating_sub(1), inner_h.saturating_sub(2), s.runs.len());
    if s.runs.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("   No earlier runs. Press enter to start the first one.", theme.muted));
    } else {
        lines.push(Line::styled(format!("   {} earlier runs, newest first:", s.runs.len()), theme.muted));
    }
    for (i, r) in s.runs.iter().enumerate().skip(off).take(inner_h.saturating_sub(2)) {
        let mut spans = vec![Span::styled(format!(" {} ", r.id), row_style(i + 1))];
        if let Some(who) = &r.running {
            spans.push(Span::styled("  running ", theme.accent));
            spans.push(Span::styled(format!(" {}", one_line(who)), theme.text));
            spans.push(Span::styled(" (attach)", theme.muted));
        } else if r.finished {
            spans.push(Span::styled("  finished ", theme.score_high));
            if let Some(b) = r.best_val {
                spans.push(Span::styled(format!(" best val {}", fmt_score(b)), theme.text));
            }
            if let Some(t) = r.test_score {
                spans.push(Span::styled(format!(" · test {}", fmt_score(t)), theme.text));
            }
            if let (Some(c), Some(mc)) = (r.candidates, r.metric_calls) {
                spans.push(Span::styled(format!(" · {c} candidates · {mc} calls"), theme.muted));
            }
            spans.push(Span::styled(" (browse)", theme.muted));
        } else {
            spans.push(Span::styled("  unfinished", theme.warning));
            spans.push(Span::styled(" (resume)", theme.muted));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines).block(pane(" Runs ", theme, true)), body);
    let hint = |a: crate::tui::keymap::Action| s.keymap.keys_for(a).first().map(|k| k.to_string()).unwrap_or_default();
    use crate::tui::keymap::Action::*;
    let mut foot_lines = vec![Line::from(vec![
        Span::styled(format!(" {}", hint(Open)), theme.accent),
        Span::styled(" open  ", theme.muted),
        Span::styled(format!("{}/{}", hint(Up), hint(Down)), theme.accent),
        Span::styled(" choose  ", theme.muted),
        Span::styled(hint(Quit), theme.accent),
        Span::styled(" quit", theme.muted),
    ])];
    if let Some(e) = &s.error {
        foot_lines.insert(0, Line::styled(format!(" {}", one_line(e)), theme.error));
    }
    frame.render_widget(Paragraph::new(foot_lines).wrap(Wrap { trim: false }), foot);
    if s.help {
        let layer = crate::tui::keymap::Layer::Global;
        super::help::draw(frame, area, &s.keymap, layer, theme, &mut super::Scroll::default());
    }
}

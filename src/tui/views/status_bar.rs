//! The bottom line: the filter being typed, a passing message, or the keys that matter here (read
//! from the keymap, so rebinding a key changes the hint too); the run id on the right.

use crate::tui::app::{App, InputTarget, MatrixPane, View};
use crate::tui::keymap::Action;
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

fn hints(app: &App) -> Vec<(Action, &'static str)> {
    use Action::*;
    let mut h: Vec<(Action, &'static str)> = match app.view {
        View::Dashboard => vec![(TogglePause, "pause"), (NextView, "next view")],
        View::Frontier => vec![(Open, "open"), (OpenTraces, "traces"), (Sort, "sort"), (Search, "filter")],
        View::WinMatrix => match app.matrix.pane {
            MatrixPane::Heat => vec![(Open, "trace"), (Sort, "order examples"), (SwitchPane, "wins/ties/losses")],
            MatrixPane::Pairwise => vec![(Open, "diff the pair"), (SwitchPane, "heat map")],
        },
        View::Candidate => {
            vec![(Diff, "diff mode"), (ComparePrev, "compare -"), (CompareNext, "compare +"), (Open, "traces")]
        }
        View::Traces => {
            vec![(Search, "search"), (PageDown, "scroll"), (Left, "prev candidate"), (Right, "next candidate")]
        }
        View::Reflections => vec![(Open, "open child"), (PageDown, "scroll")],
        View::Review => vec![],
    };
    h.push((Help, "help"));
    h.push((Quit, "quit"));
    h
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let left: Line = if let Some(input) = &app.input {
        let label = match input.target {
            InputTarget::FrontierFilter => "filter candidates (id, origin, component, text)",
            InputTarget::TraceSearch => "search traces",
        };
        Line::from(vec![
            Span::styled(format!(" {label}: "), theme.title),
            Span::styled(super::one_line(&input.text), theme.text),
            Span::styled("▏", theme.accent),
            Span::styled("  enter keep · esc clear", theme.muted),
        ])
    } else if let Some(msg) = &app.flash {
        Line::from(Span::styled(format!(" {msg}"), theme.warning))
    } else {
        let mut spans = vec![Span::raw(" ")];
        for (action, label) in hints(app) {
            if let Some(k) = app.keymap.keys_for(action).first() {
                spans.push(Span::styled(k.to_string(), theme.accent));
                spans.push(Span::styled(format!(" {label}  "), theme.muted));
            }
        }
        Line::from(spans)
    };
    let used = left.width() as u16;
    frame.render_widget(Paragraph::new(left), area);
    let id = &app.model.state.run_id;
    if !id.is_empty() && app.input.is_none() {
        let right = Line::from(Span::styled(format!("run {id} "), theme.muted));
        let need = right.width() as u16;
        if area.width >= used + need {
            frame.render_widget(Paragraph::new(right), Rect { x: area.x + area.width - need, width: need, ..area });
        }
    }
}

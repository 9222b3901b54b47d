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
    if app.editor.is_some() {
        // The editor shows its own keys on its last line.
        return vec![];
    }
    if app.merge.is_some() {
        return vec![
            (Left, "left side"),
            (Right, "right side"),
            (Down, "next component"),
            (Open, "send"),
            (Back, "cancel"),
        ];
    }
    let mut h: Vec<(Action, &'static str)> = match app.view {
        View::Dashboard => vec![(TogglePause, "pause"), (NextView, "next view")],
        View::Frontier if app.marked.len() == 2 => {
            vec![(MergeMarked, "merge marked"), (Mark, "unmark"), (Open, "open"), (Edit, "edit"), (AddCandidate, "add")]
        }
        View::Frontier if app.frontier.trade_off => {
            vec![(AxisX, "x axis"), (AxisY, "y axis"), (TradeOff, "hide plot"), (Open, "open"), (Sort, "sort")]
        }
        View::Frontier => vec![
            (Open, "open"),
            (Sort, "sort"),
            (Search, "filter"),
            (TradeOff, "plot"),
            (Edit, "edit"),
            (Mark, "mark"),
            (AddCandidate, "add"),
        ],
        View::WinMatrix => {
            let mut h = match app.matrix.pane {
                MatrixPane::Heat => vec![(Open, "trace"), (Sort, "order examples"), (SwitchPane, "wins/ties/losses")],
                MatrixPane::Pairwise => vec![(Open, "diff the pair"), (SwitchPane, "heat map")],
            };
            if !app.model.state.objective_names().is_empty() {
                h.push((NextObjective, "objective"));
            }
            h
        }
        View::Candidate => {
            vec![(Diff, "diff mode"), (ComparePrev, "compare -"), (CompareNext, "compare +"), (Edit, "edit")]
        }
        View::Traces if app.traces.proposal.is_some() => {
            vec![(Search, "search"), (PageDown, "scroll"), (Left, "older"), (Right, "newer"), (Back, "back")]
        }
        View::Traces => {
            vec![(Search, "search"), (PageDown, "scroll"), (Left, "prev candidate"), (Right, "next candidate")]
        }
        View::Reflections => vec![(Open, "open child"), (OpenTraces, "minibatch traces"), (PageDown, "scroll")],
        View::Review if app.model.state.review_queue.is_empty() => {
            vec![(ToggleMutationReview, "mutations auto/approve"), (ToggleMergeReview, "merges auto/approve")]
        }
        View::Review => vec![
            (Approve, "approve"),
            (Veto, "veto"),
            (Edit, "edit"),
            (EditExternal, "$EDITOR"),
            (ApproveAll, "all"),
            (ToggleMutationReview, "policy"),
        ],
    };
    h.push((Help, "help"));
    h.push((Quit, "quit"));
    h
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let left: Line = if let Some(input) = &app.input {
        let (label, keys) = match input.target {
            InputTarget::FrontierFilter => {
                ("filter candidates (id, origin, component, text)".to_string(), "  enter keep · esc clear")
            }
            InputTarget::TraceSearch => ("search traces".to_string(), "  enter keep · esc clear"),
            InputTarget::VetoReason { item } => {
                (format!("veto item {item} · reason (optional)"), "  enter veto · esc cancel")
            }
            InputTarget::Folder => ("add a candidate from folder".to_string(), "  enter add · esc cancel"),
        };
        let after = match &input.error {
            Some(e) => Span::styled(format!("  {}", super::one_line(e)), theme.error),
            None => Span::styled(keys, theme.muted),
        };
        // The end of a long text stays in view (it is where the typing happens).
        let label = format!(" {label}: ");
        let room = (area.width as usize).saturating_sub(label.chars().count() + 1);
        // The keys hint gives way to the text when the line is short.
        let (after, keep) = match input.error {
            Some(_) => (after, (room / 2).max(8)),
            None if room >= after.width() + 24 => {
                let w = after.width();
                (after, room - w)
            }
            None => (Span::raw(""), room.max(8)),
        };
        let typed = super::one_line(&input.text);
        let n = typed.chars().count();
        let shown =
            if n > keep { format!("…{}", typed.chars().skip(n + 1 - keep).collect::<String>()) } else { typed };
        let spans = vec![
            Span::styled(label, theme.title),
            Span::styled(shown, theme.text),
            Span::styled("▏", theme.accent),
            after,
        ];
        Line::from(spans)
    } else if let (Some(ed), None) = (&app.editor, &app.flash) {
        let n = ed.changed().len();
        Line::from(Span::styled(
            format!(" editing: {n} of {} changed · the run goes on; nothing is sent until you save", ed.names.len()),
            theme.muted,
        ))
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

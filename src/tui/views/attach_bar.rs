//! The line under the tabs of a screen attached to a run another process runs: who runs it, and
//! what became of the last decision sent from here (sent → taken / refused); once the process
//! has let go of the run, what became of it.

use super::Ctx;
use crate::tui::attached::Remote;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The rows the bar needs at `width` (0 when the screen is not attached).
pub fn height(remote: Option<&Remote>, width: u16) -> u16 {
    match remote {
        None => 0,
        Some(r) => match r.requests.last() {
            Some(last) if header(r).chars().count() + 18 + last.line().chars().count() + 1 > width as usize => 2,
            _ => 1,
        },
    }
}

fn header(r: &Remote) -> String {
    match &r.ended {
        Some(e) => format!(" ■ {e}"),
        None => format!(" ⇄ {}", r.header()),
    }
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &Ctx) {
    let Some(r) = ctx.model.remote.as_ref() else { return };
    let theme = ctx.theme;
    let head = Span::styled(header(r), if r.ended.is_some() { theme.warning } else { theme.accent });
    let last = r.requests.last().map(|q| {
        let style = match &q.answer {
            Some(a) if !a.accepted => theme.error,
            Some(_) => theme.score_high,
            None => theme.text,
        };
        vec![Span::styled("last decision: ", theme.muted), Span::styled(q.line(), style)]
    });
    let lines = match last {
        Some(mut spans) if area.height >= 2 => {
            spans.insert(0, Span::raw(" "));
            vec![Line::from(head), Line::from(spans)]
        }
        Some(spans) => {
            let mut all = vec![head, Span::styled(" · ", theme.muted)];
            all.extend(spans);
            vec![Line::from(all)]
        }
        None => vec![Line::from(head)],
    };
    frame.render_widget(Paragraph::new(lines), area);
}

//! The inline editor over a candidate's texts: a tab per component (a `*` marks the edited ones),
//! the text soft-wrapped, and the keys that send or cancel on the last line.

use super::{inner, one_line, pane};
use crate::tui::app::{App, EditTarget};
use crate::tui::keymap::Action;
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(ed) = &app.editor else { return };
    frame.render_widget(Clear, area);
    let title = match ed.target {
        EditTarget::ReviewItem { item } => format!(" Edit item {item}, then approve "),
        EditTarget::HandEdit { parent } => format!(" Edit #{parent} into a new candidate "),
    };
    frame.render_widget(pane(title, theme, true), area);
    let body = inner(area);
    if body.height < 3 {
        return;
    }
    let changed = ed.changed();
    let mut tabs = Vec::new();
    for (i, name) in ed.names.iter().enumerate() {
        let mark = if changed.contains(&name.as_str()) { "*" } else { "" };
        let label = format!(" {}{mark} ", one_line(name));
        tabs.push(Span::styled(label, if i == ed.current { theme.selection } else { theme.muted }));
        tabs.push(Span::raw(" "));
    }
    frame.render_widget(Paragraph::new(Line::from(tabs)), Rect { height: 1, ..body });
    let text_area = Rect { y: body.y + 1, height: body.height - 2, ..body };
    if let Some(e) = ed.editors.get(ed.current) {
        e.render(frame, text_area, theme.text, theme.accent);
    }
    let k = |a: Action| app.keymap.keys_for(a).first().map(|k| k.to_string()).unwrap_or_else(|| a.name().into());
    let save = match ed.target {
        EditTarget::ReviewItem { .. } => "approve the edited texts",
        EditTarget::HandEdit { .. } => "send as a new candidate",
    };
    let mut hints = vec![
        Span::styled(k(Action::Save), theme.accent),
        Span::styled(format!(" {save}  "), theme.muted),
        Span::styled(k(Action::Back), theme.accent),
        Span::styled(" cancel  ", theme.muted),
    ];
    if ed.names.len() > 1 {
        hints.push(Span::styled(k(Action::NextView), theme.accent));
        hints.push(Span::styled(" next component  ", theme.muted));
    }
    hints.push(Span::styled("ctrl-z", theme.accent));
    hints.push(Span::styled(" undo", theme.muted));
    frame.render_widget(Paragraph::new(Line::from(hints)), Rect { y: body.y + body.height - 1, height: 1, ..body });
}

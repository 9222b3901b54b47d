//! The bottom line: the filter being typed, a passing message, or the keys that matter here (read
//! from the keymap, so rebinding a key changes the hint too); the run id on the right.

use super::editor::EditSession;
use super::input::InputTarget;
use super::Ctx;
use crate::tui::keymap::{Action, Layer};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// What the footer shows besides the input line: a passing message, the open editor, or the keys
/// that matter where the user is (from the active view's `hints`).
pub struct Footer<'a> {
    pub flash: Option<&'a str>,
    pub editor: Option<&'a EditSession>,
    pub hints: Vec<Action>,
    /// The keymap layer the hints' keys are looked up in.
    pub layer: Layer,
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &Ctx, footer: &Footer) {
    let theme = ctx.theme;
    let left: Line = if let Some(input) = ctx.prompt {
        // What enter and esc do for this line; their keys come from the `[input]` table.
        let (label, enter, esc) = match input.target {
            InputTarget::FrontierFilter => {
                ("filter candidates (id, origin, component, text)".to_string(), "keep", "clear")
            }
            InputTarget::TraceSearch => ("search traces".to_string(), "keep", "clear"),
            InputTarget::VetoReason { item } => (format!("veto item {item} · reason (optional)"), "veto", "cancel"),
            InputTarget::Folder => ("add a candidate from folder".to_string(), "add", "cancel"),
            InputTarget::ExcludeReason => ("exclude · reason".to_string(), "exclude", "cancel"),
            InputTarget::FixValue => ("corrected value".to_string(), "send", "cancel"),
            InputTarget::GuideNote { candidate, example } => {
                let on = match example.and_then(|(split, i)| Some((split, ctx.model.example_id(split, i)?))) {
                    Some((split, id)) => format!(" + {} {}", split.as_str(), super::one_line(id)),
                    None => String::new(),
                };
                (format!("guide #{candidate}{on} · note"), "send", "cancel")
            }
        };
        let key = |a: Action| ctx.keymap.keys_in(Layer::Input, a).first().map(|k| k.to_string());
        let mut parts = vec![key(Action::Open).map(|k| format!("{k} {enter}"))];
        if input.target == InputTarget::FixValue {
            parts.push(key(Action::NextField).map(|k| format!("{k} {}", Action::NextField.label_in(Layer::Input))));
        }
        parts.push(key(Action::Back).map(|k| format!("{k} {esc}")));
        let keys = format!("  {}", parts.into_iter().flatten().collect::<Vec<_>>().join(" · "));
        let label = input.label.as_deref().map(super::one_line).unwrap_or(label);
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
    } else if let (Some(ed), None) = (footer.editor, footer.flash) {
        let n = ed.changed().len();
        Line::from(Span::styled(
            format!(" editing: {n} of {} changed · the run goes on; nothing is sent until you save", ed.names.len()),
            theme.muted,
        ))
    } else if let Some(msg) = footer.flash {
        Line::from(Span::styled(format!(" {msg}"), theme.warning))
    } else {
        let mut spans = vec![Span::raw(" ")];
        for &action in &footer.hints {
            if let Some(k) = ctx.keymap.keys_in(footer.layer, action).first() {
                spans.push(Span::styled(k.to_string(), theme.accent));
                spans.push(Span::styled(format!(" {}  ", action.label_in(footer.layer)), theme.muted));
            }
        }
        Line::from(spans)
    };
    let used = left.width() as u16;
    frame.render_widget(Paragraph::new(left), area);
    let id = &ctx.model.state.run_id;
    if !id.is_empty() && ctx.prompt.is_none() {
        let right = Line::from(Span::styled(format!("run {id} "), theme.muted));
        let need = right.width() as u16;
        if area.width >= used + need {
            frame.render_widget(Paragraph::new(right), Rect { x: area.x + area.width - need, width: need, ..area });
        }
    }
}

//! The `?` overlay: every bound action with its keys, drawn from the keymap itself.

use super::{centered, pane};
use crate::tui::app::App;
use crate::tui::keymap::{Action, Keymap};
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

/// The help text's lines: one per action with at least one key.
pub fn lines(keymap: &Keymap, theme: &Theme) -> Vec<Line<'static>> {
    let keys: Vec<(Action, String)> =
        Action::ALL.iter().map(|a| (*a, keymap.describe(*a))).filter(|(_, k)| !k.is_empty()).collect();
    let w = keys.iter().map(|(_, k)| k.chars().count()).max().unwrap_or(0).min(18);
    let mut out = vec![
        Line::styled("Keys (from the keymap; override them in keymap.toml in the config dir)", theme.muted),
        Line::raw(""),
    ];
    for (a, k) in keys {
        out.push(Line::from(vec![
            Span::styled(format!("{k:>w$}  "), theme.accent),
            Span::styled(a.description(), theme.text),
        ]));
    }
    out.push(Line::raw(""));
    out.push(Line::styled("Mouse: click a tab, a row or a heat-map cell; the wheel scrolls.", theme.muted));
    out
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let lines = lines(&app.keymap, theme);
    let h = (lines.len() as u16 + 2).min(area.height);
    let rect = centered(area, 84, h);
    frame.render_widget(Clear, rect);
    let body = super::inner(rect);
    let at = app.help_scroll.at(super::wrapped_rows(&lines, body.width), body.height);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((at, 0)).block(pane(
            " Help: ? or esc closes ",
            theme,
            true,
        )),
        rect,
    );
}

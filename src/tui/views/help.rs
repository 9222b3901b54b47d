//! The `?` overlay: the keys of the view under it (its keymap table), then the global ones, drawn
//! from the keymap itself, as yazi's `help/` lists the active layer's bindings and television's
//! `help_panel.rs` its mode's.

use super::{centered, pane, Ctx, Outcome, Scroll};
use crate::tui::keymap::{Action, Key, Keymap, Layer};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

/// One titled table of the help: an action per row with its keys, described as in `layer`.
struct Section {
    title: String,
    layer: Layer,
    rows: Vec<(Action, String)>,
}

/// The help's sections for the view (or overlay) whose table is `layer`: its own keys (for a
/// view, also the editor's and the input line's, which a view's keys open), and the global ones
/// that act there.
fn sections(keymap: &Keymap, layer: Layer) -> (Vec<Section>, Section) {
    let join = |keys: &[Key]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
    let table =
        |l: Layer| -> Vec<(Action, String)> { keymap.layer_bindings(l).iter().map(|(a, k)| (*a, join(k))).collect() };
    let titled = |l: Layer| {
        let t = l.title();
        format!("{}{}", t[..1].to_uppercase(), &t[1..])
    };
    let global: Vec<(Action, String)> = match layer {
        Layer::Global => table(Layer::Global),
        _ => keymap
            .global_bindings_in(layer)
            .iter()
            .filter(|(a, _)| layer != Layer::Merge || Action::OVER_MERGE.contains(a))
            .map(|(a, k)| (*a, join(k)))
            .collect(),
    };
    let everywhere = Section { title: "Everywhere".into(), layer, rows: global };
    let mut own = Vec::new();
    if layer != Layer::Global {
        own.push(Section { title: titled(layer), layer, rows: table(layer) });
    }
    if Layer::ALL[1..8].contains(&layer) {
        for l in [Layer::Editor, Layer::Input] {
            own.push(Section { title: titled(l), layer: l, rows: table(l) });
        }
    }
    (own, everywhere)
}

/// Sections as lines for a column `width` wide, keys right-aligned in `key_w` columns (a long
/// description wraps under itself, not under the keys).
fn section_lines(sections: &[Section], key_w: usize, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for (i, sec) in sections.iter().enumerate() {
        if i > 0 {
            out.push(Line::raw(""));
        }
        if sec.rows.is_empty() {
            out.push(Line::styled(format!("No keys of its own {}.", sec.layer.title()), theme.muted));
            continue;
        }
        out.push(Line::styled(sec.title.clone(), theme.title));
        for (a, k) in &sec.rows {
            let keys = format!("{k:>key_w$}  ");
            let indent = keys.chars().count();
            let text = a.description_in(sec.layer);
            let rows = crate::tui::editor::wrap_ranges(text, usize::from(width).saturating_sub(indent).max(20));
            for (i, (from, to)) in rows.into_iter().enumerate() {
                let part: String = text.chars().skip(from).take(to - from).collect();
                let lead =
                    if i == 0 { Span::styled(keys.clone(), theme.accent) } else { Span::raw(" ".repeat(indent)) };
                out.push(Line::from(vec![lead, Span::styled(part.trim_end().to_string(), theme.text)]));
            }
        }
    }
    out
}

fn intro(layer: Layer, theme: &Theme) -> Line<'static> {
    Line::styled(
        format!(
            "Keys from the keymap; override them in keymap.toml in the config dir ([{}], then [global])",
            layer.name()
        ),
        theme.muted,
    )
}

fn mouse(theme: &Theme) -> Line<'static> {
    Line::styled("Mouse: click a tab, a row or a heat-map cell; the wheel scrolls.", theme.muted)
}

fn key_width(own: &[Section], everywhere: &Section) -> usize {
    own.iter().chain([everywhere]).flat_map(|s| &s.rows).map(|(_, k)| k.chars().count()).max().unwrap_or(0).min(18)
}

/// The help as one column `width` wide: the layer's own keys, the global ones, then the editor's
/// and the input line's (what a small screen shows first is what acts here).
pub fn lines(keymap: &Keymap, layer: Layer, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let (mut own, everywhere) = sections(keymap, layer);
    let w = key_width(&own, &everywhere);
    let extra = own.split_off(own.len().min(1));
    let mut out = vec![intro(layer, theme), Line::raw("")];
    for group in [own, vec![everywhere], extra] {
        if !group.is_empty() {
            out.extend(section_lines(&group, w, theme, width));
            out.push(Line::raw(""));
        }
    }
    out.push(mouse(theme));
    out
}

/// The width of one column of the help.
const COLUMN: u16 = 84;

/// Draws the help over `area`: one column, or two side by side (the layer's own keys, the global
/// ones) on a screen wide enough for both, so 160 columns show it whole. What does not fit
/// scrolls, and the frame says how much is above and below.
pub fn draw(frame: &mut Frame, area: Rect, keymap: &Keymap, layer: Layer, theme: &Theme, scroll: &mut Scroll) {
    let (own, everywhere) = sections(keymap, layer);
    let two = area.width >= 2 * 72 + 3 && !own.is_empty();
    let width = if two { area.width.min(2 * COLUMN + 1) } else { COLUMN.min(area.width) };
    let inner_w = width.saturating_sub(2);
    let (columns, col_w, head) = if two {
        let col = (inner_w - 1) / 2;
        let w = key_width(&own, &everywhere);
        let left = section_lines(&own, w, theme, col);
        let mut right = section_lines(&[everywhere], w, theme, col);
        right.extend([Line::raw(""), mouse(theme)]);
        (vec![left, right], col, 2)
    } else {
        (vec![lines(keymap, layer, theme, inner_w)], inner_w, 0)
    };
    let rows = columns.iter().map(|c| super::wrapped_rows(c, col_w)).max().unwrap_or(0) as u16;
    let rect = centered(area, width, (rows + head + 2).min(area.height));
    frame.render_widget(Clear, rect);
    let inner = super::inner(rect);
    let [top, body] = Layout::vertical([Constraint::Length(head), Constraint::Min(0)]).areas(inner);
    let at = scroll.at(usize::from(rows), body.height);
    // Cut to fit: the frame says so, or a reader takes the first screen for all of it.
    let mut block = pane(" Help: ? or esc closes ", theme, true);
    if at > 0 {
        block = block.title_top(Line::styled(format!(" ↑ {at} more above "), theme.muted).right_aligned());
    }
    if at < scroll.max {
        let below = scroll.max - at;
        block = block.title_bottom(Line::styled(format!(" ↓ {below} more below "), theme.muted).right_aligned());
    }
    frame.render_widget(block, rect);
    if head > 0 {
        frame.render_widget(Paragraph::new(intro(layer, theme)), top);
    }
    let cols: Vec<Rect> = if two {
        let [l, _, r] =
            Layout::horizontal([Constraint::Length(col_w), Constraint::Length(1), Constraint::Min(0)]).areas(body);
        vec![l, r]
    } else {
        vec![body]
    };
    for (lines, r) in columns.into_iter().zip(cols) {
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((at, 0)), r);
    }
}

/// The help overlay's state: how far it is scrolled.
#[derive(Debug, Default)]
pub struct HelpView {
    pub scroll: Scroll,
}

impl HelpView {
    /// Scrolls, or closes on help / back; Ignored for any other action (the router closes the
    /// overlay and does it).
    pub fn handle(&mut self, action: Action) -> Outcome {
        match action {
            Action::Help | Action::Back => Outcome::Close(String::new()),
            Action::Down | Action::ScrollDown => {
                self.scroll.by(1);
                Outcome::Done
            }
            Action::Up | Action::ScrollUp => {
                self.scroll.by(-1);
                Outcome::Done
            }
            Action::PageDown => {
                self.scroll.by(10);
                Outcome::Done
            }
            Action::PageUp => {
                self.scroll.by(-10);
                Outcome::Done
            }
            Action::Top => {
                self.scroll.reset();
                Outcome::Done
            }
            _ => Outcome::Ignored,
        }
    }

    /// The overlay over the view whose keymap table is `layer`.
    pub fn render(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx, layer: Layer) {
        draw(frame, area, ctx.keymap, layer, ctx.theme, &mut self.scroll);
    }
}

/// docs/keys.md's table: every binding of every table, each action with its keys and its label
/// there (a test keeps the page equal to this, and checks every binding is on it, so the docs
/// follow the keymap).
pub fn readme_keys(keymap: &Keymap) -> String {
    let mut out = String::from("| where | keys |\n|---|---|\n");
    for layer in Layer::ALL {
        let rows = keymap.layer_bindings(layer);
        if rows.is_empty() {
            continue;
        }
        let view = Layer::ALL[1..8].iter().position(|v| *v == layer).map(|i| format!("{} ", i + 1));
        let title = layer.title().trim_start_matches("in the ").trim_start_matches("on the ");
        let keys: Vec<String> = rows
            .iter()
            .map(|(a, keys)| {
                let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                format!("{} {}", keys.join(" "), a.label_in(layer))
            })
            .collect();
        out.push_str(&format!("| {}{title} | {} |\n", view.unwrap_or_default(), keys.join(" · ")));
    }
    out
}

//! The `?` overlay: the keys of the view under it (its keymap table), then the global ones, drawn
//! from the keymap itself, as yazi's `help/` lists the active layer's bindings and television's
//! `help_panel.rs` its mode's.

use super::{centered, pane, Ctx, Outcome, Scroll};
use crate::tui::keymap::{Action, Key, Keymap, Layer};
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

/// The help text's lines for a pane `width` columns wide: the actions `layer`'s own table binds,
/// then the global ones that act there, each with its keys (a long description wraps under
/// itself, not under the keys).
pub fn lines(keymap: &Keymap, layer: Layer, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let join = |keys: &[Key]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
    let own: Vec<(Action, String)> = keymap.layer_bindings(layer).iter().map(|(a, k)| (*a, join(k))).collect();
    let global: Vec<(Action, String)> = keymap
        .global_bindings_in(layer)
        .iter()
        .filter(|(a, _)| layer != Layer::Merge || Action::OVER_MERGE.contains(a))
        .map(|(a, k)| (*a, join(k)))
        .collect();
    let own_global = own.clone();
    let w = own.iter().chain(&global).map(|(_, k)| k.chars().count()).max().unwrap_or(0).min(18);
    let mut out = vec![
        Line::styled(
            format!(
                "Keys from the keymap; override them in keymap.toml in the config dir ([{}], then [global])",
                layer.name()
            ),
            theme.muted,
        ),
        Line::raw(""),
    ];
    let rows = |out: &mut Vec<Line<'static>>, keys: Vec<(Action, String)>| {
        for (a, k) in keys {
            let keys = format!("{k:>w$}  ");
            let indent = keys.chars().count();
            let text = a.description_in(layer);
            let rows = crate::tui::editor::wrap_ranges(text, usize::from(width).saturating_sub(indent).max(20));
            for (i, (from, to)) in rows.into_iter().enumerate() {
                let part: String = text.chars().skip(from).take(to - from).collect();
                let lead =
                    if i == 0 { Span::styled(keys.clone(), theme.accent) } else { Span::raw(" ".repeat(indent)) };
                out.push(Line::from(vec![lead, Span::styled(part.trim_end().to_string(), theme.text)]));
            }
        }
    };
    let title = layer.title();
    if layer == Layer::Global {
        // One table only (the start screen).
    } else if own.is_empty() {
        out.push(Line::styled(format!("No keys of its own {title}."), theme.muted));
    } else {
        out.push(Line::styled(format!("{}{}", title[..1].to_uppercase(), &title[1..]), theme.title));
        rows(&mut out, own);
    }
    out.push(Line::raw(""));
    out.push(Line::styled("Everywhere", theme.title));
    rows(&mut out, if layer == Layer::Global { own_global } else { global });
    out.push(Line::raw(""));
    out.push(Line::styled("Mouse: click a tab, a row or a heat-map cell; the wheel scrolls.", theme.muted));
    out
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
        let theme = ctx.theme;
        let lines = lines(ctx.keymap, layer, theme, 84.min(area.width).saturating_sub(2));
        let h = (lines.len() as u16 + 2).min(area.height);
        let rect = centered(area, 84, h);
        frame.render_widget(Clear, rect);
        let body = super::inner(rect);
        let at = self.scroll.at(super::wrapped_rows(&lines, body.width), body.height);
        // Cut to fit: the frame says so, or a reader takes the first screen for all of it.
        let mut block = pane(" Help: ? or esc closes ", theme, true);
        if at > 0 {
            block = block.title_top(Line::styled(format!(" ↑ {at} more above "), theme.muted).right_aligned());
        }
        if at < self.scroll.max {
            let below = self.scroll.max - at;
            block = block.title_bottom(Line::styled(format!(" ↓ {below} more below ",), theme.muted).right_aligned());
        }
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((at, 0)).block(block), rect);
    }
}

/// The main keys per view, for docs/keys.md's table (a test keeps the page equal to this, so the
/// docs follow the keymap).
pub fn readme_keys(keymap: &Keymap) -> String {
    use Action::*;
    // Each row's keys come from its layer (a view's own table, then the global one).
    let key_in = |l: Layer, a: Action| {
        keymap.keys_in(l, a).first().map(|k| format!("`{k}`")).unwrap_or_else(|| format!("({})", a.name()))
    };
    let row =
        |items: &[(String, &str)]| items.iter().map(|(k, what)| format!("{k} {what}")).collect::<Vec<_>>().join(" · ");
    let rows: Vec<(&str, Vec<(String, &str)>)> = vec![
        (
            "everywhere",
            vec![
                (key_in(Layer::Global, Help), "all keys"),
                (format!("{}–{}", key_in(Layer::Global, ViewDashboard), key_in(Layer::Global, ViewReview)), "views"),
                (key_in(Layer::Global, NextView), "next view"),
                (key_in(Layer::Global, TogglePause), "pause / resume"),
                (key_in(Layer::Global, RetryNow), "try a model that is not answering now"),
                (key_in(Layer::Global, ApproveAll), "approve all pending"),
                (key_in(Layer::Global, Quit), "quit (a live run stays resumable)"),
            ],
        ),
        (
            "2 Frontier",
            vec![
                (key_in(Layer::Frontier, Open), "open"),
                (key_in(Layer::Frontier, Sort), "sort"),
                (key_in(Layer::Frontier, Search), "filter"),
                (key_in(Layer::Frontier, TradeOff), "trade-off plot"),
                (format!("{} {}", key_in(Layer::Frontier, AxisX), key_in(Layer::Frontier, AxisY)), "its x / y axis"),
                (key_in(Layer::Frontier, Detail), "the selected candidate's texts beside the table"),
                (key_in(Layer::Frontier, Lineage), "the whole run's lineage as a tree"),
                (key_in(Layer::Frontier, Edit), "edit into a new candidate"),
                (key_in(Layer::Frontier, Guide), "guide a reflection on it with a note"),
                (key_in(Layer::Frontier, Mark), "mark for a merge"),
                (key_in(Layer::Frontier, MergeMarked), "merge the two marked"),
                (key_in(Layer::Frontier, AddCandidate), "add a candidate from a folder"),
                (key_in(Layer::Frontier, Branch), "a new run from the selected candidate"),
            ],
        ),
        (
            "3 Win matrix",
            vec![
                (key_in(Layer::WinMatrix, Open), "the trace (heat map) or the diff (pairwise)"),
                (key_in(Layer::WinMatrix, SwitchPane), "heat map ↔ wins/ties/losses"),
                (key_in(Layer::WinMatrix, Sort), "order the examples"),
                (key_in(Layer::WinMatrix, NextObjective), "an objective instead of the main score"),
            ],
        ),
        (
            "4 Candidate",
            vec![
                (key_in(Layer::Candidate, Diff), "diff off / parent / other"),
                (
                    format!("{} {}", key_in(Layer::Candidate, ComparePrev), key_in(Layer::Candidate, CompareNext)),
                    "compare with another",
                ),
                (key_in(Layer::Candidate, Edit), "edit into a new candidate"),
                (key_in(Layer::Candidate, EditExternal), "the same in $EDITOR"),
                (key_in(Layer::Candidate, Guide), "guide a reflection on it with a note"),
            ],
        ),
        (
            "5 Traces",
            vec![
                (key_in(Layer::Traces, Search), "search"),
                (
                    key_in(Layer::Traces, Guide),
                    "guide a reflection on this candidate with a note, this example in its dataset",
                ),
                (key_in(Layer::Traces, ExcludeExample), "exclude the example from this run, with a reason"),
                (key_in(Layer::Traces, FixExample), "correct its expected value (`tab` another field)"),
            ],
        ),
        (
            "6 Reflections",
            vec![
                (key_in(Layer::Reflections, Open), "open the child"),
                (key_in(Layer::Reflections, OpenTraces), "the proposal's minibatch traces (parent, then child)"),
                (key_in(Layer::Reflections, Guide), "guide a new reflection on its parent with a note"),
            ],
        ),
        (
            "7 Review",
            vec![
                (key_in(Layer::Review, Approve), "approve"),
                (key_in(Layer::Review, Veto), "veto, with an optional reason"),
                (key_in(Layer::Review, Edit), "edit, then approve"),
                (key_in(Layer::Review, EditExternal), "the same in $EDITOR"),
                (
                    format!(
                        "{} {}",
                        key_in(Layer::Review, ToggleMutationReview),
                        key_in(Layer::Review, ToggleMergeReview)
                    ),
                    "mutations / merges: auto ↔ approve",
                ),
            ],
        ),
        (
            "editor",
            vec![
                (key_in(Layer::Editor, Save), "send"),
                (key_in(Layer::Editor, Back), "cancel"),
                (key_in(Layer::Editor, NextView), "next component"),
                (key_in(Layer::Editor, Protect), "protect the line (`<<keep>>` markers; again removes them)"),
                ("`ctrl-z` `ctrl-y`".into(), "undo / redo"),
            ],
        ),
        (
            "merge screen",
            vec![
                (
                    format!("{} {}", key_in(Layer::Merge, Left), key_in(Layer::Merge, Right)),
                    "take the component from the left / right",
                ),
                (format!("{} {}", key_in(Layer::Merge, Up), key_in(Layer::Merge, Down)), "component"),
                (key_in(Layer::Merge, Open), "send"),
                (key_in(Layer::Merge, Back), "cancel"),
                (key_in(Layer::Merge, Help), "its keys"),
                (key_in(Layer::Merge, TogglePause), "pause / resume"),
            ],
        ),
    ];
    let mut out = String::from("| where | keys |\n|---|---|\n");
    for (view, items) in rows {
        out.push_str(&format!("| {view} | {} |\n", row(&items)));
    }
    out
}

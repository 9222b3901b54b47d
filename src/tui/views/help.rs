//! The `?` overlay: every bound action with its keys, drawn from the keymap itself.

use super::{centered, pane, Ctx, Outcome, Scroll};
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

    pub fn render(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let theme = ctx.theme;
        let lines = lines(ctx.keymap, theme);
        let h = (lines.len() as u16 + 2).min(area.height);
        let rect = centered(area, 84, h);
        frame.render_widget(Clear, rect);
        let body = super::inner(rect);
        let at = self.scroll.at(super::wrapped_rows(&lines, body.width), body.height);
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((at, 0)).block(pane(
                " Help: ? or esc closes ",
                theme,
                true,
            )),
            rect,
        );
    }
}

/// The main keys per view, for README.md's "Keys" section (a test keeps the README equal to this,
/// so the README follows the keymap).
pub fn readme_keys(keymap: &Keymap) -> String {
    use Action::*;
    let k =
        |a: Action| keymap.keys_for(a).first().map(|k| format!("`{k}`")).unwrap_or_else(|| format!("({})", a.name()));
    let row =
        |items: &[(String, &str)]| items.iter().map(|(k, what)| format!("{k} {what}")).collect::<Vec<_>>().join(" · ");
    let rows: Vec<(&str, Vec<(String, &str)>)> = vec![
        (
            "everywhere",
            vec![
                (k(Help), "all keys"),
                (format!("{}–{}", k(ViewDashboard), k(ViewReview)), "views"),
                (k(NextView), "next view"),
                (k(TogglePause), "pause / resume"),
                (k(RetryNow), "try a model that is not answering now"),
                (k(ApproveAll), "approve all pending"),
                (k(Quit), "quit (a live run stays resumable)"),
            ],
        ),
        (
            "2 Frontier",
            vec![
                (k(Open), "open"),
                (k(Sort), "sort"),
                (k(Search), "filter"),
                (k(TradeOff), "trade-off plot"),
                (format!("{} {}", k(AxisX), k(AxisY)), "its x / y axis"),
                (k(Edit), "edit into a new candidate"),
                (k(Mark), "mark for a merge"),
                (k(MergeMarked), "merge the two marked"),
                (k(AddCandidate), "add a candidate from a folder"),
                (k(Branch), "a new run from the selected candidate"),
            ],
        ),
        (
            "3 Win matrix",
            vec![
                (k(Open), "the trace (heat map) or the diff (pairwise)"),
                (k(SwitchPane), "heat map ↔ wins/ties/losses"),
                (k(Sort), "order the examples"),
                (k(NextObjective), "an objective instead of the main score"),
            ],
        ),
        (
            "4 Candidate",
            vec![
                (k(Diff), "diff off / parent / other"),
                (format!("{} {}", k(ComparePrev), k(CompareNext)), "compare with another"),
                (k(Edit), "edit into a new candidate"),
                (k(EditExternal), "the same in $EDITOR"),
            ],
        ),
        (
            "6 Reflections",
            vec![(k(Open), "open the child"), (k(OpenTraces), "the proposal's minibatch traces (parent, then child)")],
        ),
        (
            "7 Review",
            vec![
                (k(Approve), "approve"),
                (k(Veto), "veto, with an optional reason"),
                (k(Edit), "edit, then approve"),
                (k(EditExternal), "the same in $EDITOR"),
                (format!("{} {}", k(ToggleMutationReview), k(ToggleMergeReview)), "mutations / merges: auto ↔ approve"),
            ],
        ),
        (
            "editor",
            vec![
                (k(Save), "send"),
                (k(Back), "cancel"),
                (k(NextView), "next component"),
                ("`ctrl-z` `ctrl-y`".into(), "undo / redo"),
            ],
        ),
        (
            "merge screen",
            vec![
                (format!("{} {}", k(Left), k(Right)), "take the component from the left / right"),
                (format!("{} {}", k(Up), k(Down)), "component"),
                (k(Open), "send"),
                (k(Back), "cancel"),
            ],
        ),
    ];
    let mut out = String::from("| where | keys |\n|---|---|\n");
    for (view, items) in rows {
        out.push_str(&format!("| {view} | {} |\n", row(&items)));
    }
    out
}

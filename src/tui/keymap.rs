//! Keys are data: a `Key -> Action` table with defaults here and overrides from `keymap.toml` in
//! the user config dir. The help overlay is drawn from the same table, so it cannot drift.
//!
//! ```toml
//! [keys]
//! "j" = "down"
//! "ctrl-c" = "quit"
//! "x" = "none"      # unbinds a default
//! ```

use crate::tui::theme::did_you_mean;
use anyhow::{anyhow, bail, Context, Result};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::fmt;
use std::path::Path;

macro_rules! actions {
    ($($variant:ident = $name:literal, $desc:literal;)*) => {
        /// Everything a key can do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action { $($variant),* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];
            /// The name used in keymap.toml.
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name),* }
            }
            /// One line for the help overlay.
            pub fn description(self) -> &'static str {
                match self { $(Action::$variant => $desc),* }
            }
            pub fn from_name(name: &str) -> Option<Action> {
                match name { $($name => Some(Action::$variant),)* _ => None }
            }
        }
    };
}

actions! {
    Quit = "quit", "leave (a live run is stopped cleanly and stays resumable)";
    Help = "help", "show or hide this help";
    TogglePause = "toggle_pause", "pause or resume the engine";
    RetryNow = "retry_now", "try a model that is not answering again now";
    ViewDashboard = "view_dashboard", "dashboard: budget, best score, activity";
    ViewFrontier = "view_frontier", "frontier: every candidate";
    ViewWinMatrix = "view_win_matrix", "win matrix: candidates x val examples";
    ViewCandidate = "view_candidate", "candidate: texts, diff, lineage";
    ViewTraces = "view_traces", "traces of the selected candidate";
    ViewReflections = "view_reflections", "reflections: each proposal";
    ViewReview = "view_review", "review queue";
    NextView = "next_view", "next view";
    PrevView = "prev_view", "previous view";
    Up = "up", "move up";
    Down = "down", "move down";
    Left = "left", "move left";
    Right = "right", "move right";
    PageUp = "page_up", "page up (scrolls the detail pane)";
    PageDown = "page_down", "page down (scrolls the detail pane)";
    ScrollUp = "scroll_up", "scroll the detail pane up a line";
    ScrollDown = "scroll_down", "scroll the detail pane down a line";
    Top = "top", "go to the first item";
    Bottom = "bottom", "go to the last item";
    Open = "open", "open the selected item";
    Back = "back", "close the overlay / clear the filter";
    Sort = "sort", "change the sort order";
    TradeOff = "trade_off", "frontier: show or hide the trade-off plot of two objectives";
    AxisX = "axis_x", "trade-off plot: the next objective (or the val score) on the x axis";
    AxisY = "axis_y", "trade-off plot: the next objective (or the val score) on the y axis";
    Search = "search", "filter (frontier) or search (traces)";
    SwitchPane = "switch_pane", "win matrix: heat map <-> wins/ties/losses";
    NextObjective = "next_objective", "win matrix: show the next objective instead of the main score";
    Diff = "diff", "candidate: diff off / against parent / against another";
    CompareNext = "compare_next", "candidate: compare with the next candidate";
    ComparePrev = "compare_prev", "candidate: compare with the previous candidate";
    OpenTraces = "open_traces", "traces of the selected candidate (from Reflections: the proposal's minibatch)";
    Approve = "approve", "review: approve the selected item (scored on val, then it may join the frontier)";
    Veto = "veto", "review: veto the selected item, with an optional reason for later reflections";
    Edit = "edit", "review: edit the item's texts, then approve; candidate/frontier: edit into a new candidate";
    EditExternal = "edit_external", "like edit, in $EDITOR (one file per component)";
    ApproveAll = "approve_all", "approve every pending review item";
    ToggleMutationReview = "toggle_mutation_review", "mutations: switch between auto and approve";
    ToggleMergeReview = "toggle_merge_review", "merges: switch between auto and approve";
    Mark = "mark", "mark / unmark the selected candidate for a manual merge";
    MergeMarked = "merge_marked", "merge the two marked candidates by hand";
    AddCandidate = "add_candidate", "add a candidate from a folder of component files";
    Branch = "branch", "start a new run seeded with the selected candidate (press twice; a live run stops, resumable)";
    Save = "save", "editor: approve / send the edited texts";
}

/// A key with its modifiers, as written in keymap.toml (`q`, `ctrl-c`, `shift-tab`, `pagedown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub const fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        Key { code, mods }
    }
    pub const fn plain(code: KeyCode) -> Key {
        Key { code, mods: KeyModifiers::NONE }
    }
    pub const fn ch(c: char) -> Key {
        Key { code: KeyCode::Char(c), mods: KeyModifiers::NONE }
    }

    /// Normalises a terminal key event: shift is part of the character for printable keys
    /// (`G`, `?`), and BackTab is always shift-tab.
    pub fn from_event(ev: &KeyEvent) -> Key {
        let mut mods = ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match ev.code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::Char(c)
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, mods }
    }

    pub fn parse(s: &str) -> Result<Key> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.len() > 1 && lower.starts_with("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[5..];
            } else if rest.len() > 1 && lower.starts_with("alt-") {
                mods |= KeyModifiers::ALT;
                rest = &rest[4..];
            } else if rest.len() > 1 && lower.starts_with("shift-") {
                mods |= KeyModifiers::SHIFT;
                rest = &rest[6..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" if mods.contains(KeyModifiers::SHIFT) => {
                    mods.remove(KeyModifiers::SHIFT);
                    KeyCode::BackTab
                }
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" => KeyCode::Insert,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pageup" | "pgup" => KeyCode::PageUp,
                "pagedown" | "pgdown" | "pgdn" => KeyCode::PageDown,
                f if f.starts_with('f') && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) => {
                    KeyCode::F(f[1..].parse().expect("checked"))
                }
                _ => bail!(
                    "`{s}` is not a key (use a character such as \"q\", or enter, esc, tab, shift-tab, space, backspace, up, down, left, right, home, end, pageup, pagedown, f1-f12, with ctrl-/alt- prefixes)"
                ),
            },
        };
        // Shift on a character is the character itself ("G", not "shift-g").
        if let KeyCode::Char(c) = code {
            if mods.contains(KeyModifiers::SHIFT) {
                mods.remove(KeyModifiers::SHIFT);
                return Ok(Key { code: KeyCode::Char(c.to_ascii_uppercase()), mods });
            }
        }
        Ok(Key { code, mods })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    /// In order of definition; later entries for the same key replace earlier ones.
    bindings: Vec<(Key, Action)>,
}

impl Default for Keymap {
    fn default() -> Self {
        use Action::*;
        use KeyCode as K;
        let p = Key::plain;
        let c = Key::ch;
        let bindings = vec![
            (c('q'), Quit),
            (Key::new(K::Char('c'), KeyModifiers::CONTROL), Quit),
            (c('?'), Help),
            (c(' '), TogglePause),
            (c('r'), RetryNow),
            (c('1'), ViewDashboard),
            (c('2'), ViewFrontier),
            (c('3'), ViewWinMatrix),
            (c('4'), ViewCandidate),
            (c('5'), ViewTraces),
            (c('6'), ViewReflections),
            (c('7'), ViewReview),
            (p(K::Tab), NextView),
            (p(K::BackTab), PrevView),
            (p(K::Up), Up),
            (c('k'), Up),
            (p(K::Down), Down),
            (c('j'), Down),
            (p(K::Left), Left),
            (c('h'), Left),
            (p(K::Right), Right),
            (c('l'), Right),
            (p(K::PageUp), PageUp),
            (p(K::PageDown), PageDown),
            (c('K'), ScrollUp),
            (c('J'), ScrollDown),
            (p(K::Home), Top),
            (c('g'), Top),
            (p(K::End), Bottom),
            (c('G'), Bottom),
            (p(K::Enter), Open),
            (p(K::Esc), Back),
            (c('s'), Sort),
            (c('o'), TradeOff),
            (c('X'), AxisX),
            (c('Y'), AxisY),
            (c('/'), Search),
            (c('w'), SwitchPane),
            (c('v'), NextObjective),
            (c('d'), Diff),
            (c(']'), CompareNext),
            (c('['), ComparePrev),
            (c('t'), OpenTraces),
            (c('a'), Approve),
            (c('x'), Veto),
            (c('e'), Edit),
            (c('E'), EditExternal),
            (c('A'), ApproveAll),
            (c('p'), ToggleMutationReview),
            (c('P'), ToggleMergeReview),
            (c('m'), Mark),
            (c('M'), MergeMarked),
            (c('+'), AddCandidate),
            (c('b'), Branch),
            (Key::new(K::Char('s'), KeyModifiers::CONTROL), Save),
        ];
        Keymap { bindings }
    }
}

impl Keymap {
    pub fn action_for(&self, ev: &KeyEvent) -> Option<Action> {
        let key = Key::from_event(ev);
        self.bindings.iter().rev().find(|(k, _)| *k == key).map(|(_, a)| *a)
    }

    /// Keys bound to `action`, in definition order.
    pub fn keys_for(&self, action: Action) -> Vec<Key> {
        let mut out = Vec::new();
        for (k, a) in &self.bindings {
            // A key rebound later to another action no longer does this one.
            if *a == action
                && self.bindings.iter().rev().find(|(k2, _)| k2 == k).map(|(_, a2)| *a2) == Some(action)
                && !out.contains(k)
            {
                out.push(*k);
            }
        }
        out
    }

    /// Keys for `action` joined for display ("q, ctrl-c").
    pub fn describe(&self, action: Action) -> String {
        self.keys_for(action).iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
    }

    /// Applies `[keys]` overrides from keymap.toml text.
    pub fn apply_overrides(&mut self, text: &str) -> Result<()> {
        let table: toml::Table = toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        for (k, v) in &table {
            if k != "keys" {
                bail!("unknown section `{k}`; key bindings go under [keys], e.g. [keys] \"j\" = \"down\"");
            }
            let keys = v.as_table().ok_or_else(|| anyhow!("[keys] must be a table of \"key\" = \"action\""))?;
            for (key, action) in keys {
                let parsed = Key::parse(key).with_context(|| format!("[keys] \"{key}\""))?;
                let name = action
                    .as_str()
                    .ok_or_else(|| anyhow!("[keys] \"{key}\": the action must be a string such as \"down\""))?;
                if name == "none" {
                    self.bindings.retain(|(k2, _)| *k2 != parsed);
                    continue;
                }
                let Some(act) = Action::from_name(name) else {
                    let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                    let hint = did_you_mean(name, &names).map(|s| format!(" Did you mean `{s}`?")).unwrap_or_default();
                    bail!(
                        "[keys] \"{key}\": `{name}` is not an action.{hint} Actions: {}, or \"none\" to unbind",
                        names.join(", ")
                    );
                };
                self.bindings.push((parsed, act));
            }
        }
        Ok(())
    }

    /// The defaults with the user's `keymap.toml` from `config_dir` applied, if there is one.
    pub fn load(config_dir: Option<&Path>) -> Result<Keymap> {
        let mut km = Keymap::default();
        if let Some(dir) = config_dir {
            let path = dir.join("keymap.toml");
            if path.is_file() {
                let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                km.apply_overrides(&text).map_err(|e| anyhow!("{}: {e:#}", path.display()))?;
            }
        }
        Ok(km)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventKind;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent { code, modifiers: mods, kind: KeyEventKind::Press, state: crossterm::event::KeyEventState::NONE }
    }

    #[test]
    fn parses_and_prints_keys() {
        assert_eq!(Key::parse("ctrl-c").unwrap(), Key::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(Key::parse("shift-tab").unwrap(), Key::plain(KeyCode::BackTab));
        assert_eq!(Key::parse("shift-g").unwrap(), Key::ch('G'));
        assert_eq!(Key::parse("PageDown").unwrap(), Key::plain(KeyCode::PageDown));
        assert_eq!(Key::parse("f5").unwrap(), Key::plain(KeyCode::F(5)));
        assert!(Key::parse("hyper-q").is_err());
        assert_eq!(Key::parse("space").unwrap().to_string(), "space");
    }

    #[test]
    fn shifted_characters_match_their_binding() {
        let km = Keymap::default();
        assert_eq!(km.action_for(&ev(KeyCode::Char('G'), KeyModifiers::SHIFT)), Some(Action::Bottom));
        assert_eq!(km.action_for(&ev(KeyCode::Char('?'), KeyModifiers::SHIFT)), Some(Action::Help));
        assert_eq!(km.action_for(&ev(KeyCode::BackTab, KeyModifiers::SHIFT)), Some(Action::PrevView));
    }

    #[test]
    fn overrides_rebind_and_unbind() {
        let mut km = Keymap::default();
        km.apply_overrides("[keys]\n\"x\" = \"quit\"\n\"q\" = \"none\"\n\"j\" = \"up\"").unwrap();
        assert_eq!(km.action_for(&ev(KeyCode::Char('x'), KeyModifiers::NONE)), Some(Action::Quit));
        assert_eq!(km.action_for(&ev(KeyCode::Char('q'), KeyModifiers::NONE)), None);
        assert_eq!(km.action_for(&ev(KeyCode::Char('j'), KeyModifiers::NONE)), Some(Action::Up));
        assert_eq!(km.describe(Action::Down), "↓");
        assert_eq!(km.describe(Action::Quit), "ctrl-c, x");
    }

    #[test]
    fn bad_overrides_say_what_is_wrong() {
        let mut km = Keymap::default();
        let e = km.apply_overrides("[keys]\n\"j\" = \"dwon\"").unwrap_err().to_string();
        assert!(e.contains("Did you mean `down`"), "{e}");
        let e = format!("{:#}", km.apply_overrides("[keys]\n\"ctrl-\" = \"down\"").unwrap_err());
        assert!(e.contains("ctrl-"), "{e}");
        let e = km.apply_overrides("j = \"down\"").unwrap_err().to_string();
        assert!(e.contains("[keys]"), "{e}");
    }
}

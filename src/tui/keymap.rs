//! Keys are data, in layers: a `[global]` table and one per view or overlay (`[frontier]`,
//! `[review]`, `[editor]`, …), with defaults here and overrides from `keymap.toml` in the user
//! config dir. A key is looked up in the active layer, then in `[global]`, as yazi's `router.rs`
//! picks a layer's table from `keymap-default.toml`. The help overlay and the footer hints are drawn
//! from the same tables (the active layer first, then the global one), so they cannot drift.
//!
//! ```toml
//! [global]
//! "j" = "down"
//! "ctrl-c" = "quit"
//! [frontier]
//! "S" = "sort"
//! "s" = "none"      # unbinds a default here (and keeps a global binding of "s" from acting here)
//! ```
//!
//! A `[keys]` table (the older, flat form) still works and means what it meant: the binding holds
//! in every view, so it goes into `[global]` and the key is taken out of every view's table.

use crate::tui::theme::did_you_mean;
use anyhow::{anyhow, bail, Context, Result};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::fmt;
use std::path::Path;

macro_rules! actions {
    ($($variant:ident = $name:literal, $label:literal, $desc:literal;)*) => {
        /// Everything a key can do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action { $($variant),* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];
            /// The name used in keymap.toml.
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name),* }
            }
            /// A word or two for the footer and the keys table (`label_in` says it per layer).
            pub fn label(self) -> &'static str {
                match self { $(Action::$variant => $label),* }
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
    Quit = "quit", "quit", "leave (a live run is stopped cleanly and stays resumable)";
    Help = "help", "help", "show or hide this help";
    TogglePause = "toggle_pause", "pause", "pause or resume the engine";
    RetryNow = "retry_now", "retry", "try a model that is not answering again now";
    ViewDashboard = "view_dashboard", "dashboard", "dashboard: budget, best score, activity";
    ViewFrontier = "view_frontier", "frontier", "frontier: every candidate";
    ViewWinMatrix = "view_win_matrix", "win matrix", "win matrix: candidates x val examples";
    ViewCandidate = "view_candidate", "candidate", "candidate: texts, diff, lineage";
    ViewTraces = "view_traces", "traces", "traces of the selected candidate";
    ViewReflections = "view_reflections", "reflections", "reflections: each proposal";
    ViewReview = "view_review", "review", "review queue";
    NextView = "next_view", "next view", "next view";
    PrevView = "prev_view", "previous view", "previous view";
    Up = "up", "up", "move up";
    Down = "down", "down", "move down";
    Left = "left", "left", "move left";
    Right = "right", "right", "move right";
    PageUp = "page_up", "page up", "page up (scrolls the detail pane)";
    PageDown = "page_down", "page down", "page down (scrolls the detail pane)";
    ScrollUp = "scroll_up", "scroll up", "scroll the detail pane up a line";
    ScrollDown = "scroll_down", "scroll down", "scroll the detail pane down a line";
    Top = "top", "first", "go to the first item";
    Bottom = "bottom", "last", "go to the last item";
    Open = "open", "open", "open the selected item";
    Back = "back", "back", "close the overlay / clear the filter";
    Sort = "sort", "sort", "change the sort order";
    TradeOff = "trade_off", "plot", "frontier: show or hide the trade-off plot of two objectives";
    Lineage = "lineage", "lineage", "frontier: the whole run's lineage as a tree instead of the table (enter opens a candidate)";
    Detail = "detail", "texts", "frontier: show or hide the selected candidate's texts beside the table";
    AxisX = "axis_x", "x axis", "trade-off plot: the next objective (or the val score) on the x axis";
    AxisY = "axis_y", "y axis", "trade-off plot: the next objective (or the val score) on the y axis";
    Search = "search", "search", "filter (frontier) or search (traces)";
    SwitchPane = "switch_pane", "switch pane", "win matrix: heat map <-> wins/ties/losses";
    NextObjective = "next_objective", "objective", "win matrix: show the next objective instead of the main score";
    Diff = "diff", "diff mode", "candidate: diff off / against parent / against another / blame (who wrote each line)";
    CompareNext = "compare_next", "compare +", "candidate: compare with the next candidate";
    ComparePrev = "compare_prev", "compare -", "candidate: compare with the previous candidate";
    OpenTraces = "open_traces", "traces", "traces of the selected candidate (from Reflections: the proposal's minibatch)";
    ExcludeExample = "exclude_example", "exclude", "traces: take the example out of this run, with a reason";
    FixExample = "fix_example", "fix", "traces: correct the example's expected value (tab: next field)";
    Approve = "approve", "approve", "review: approve the selected item (scored on val, then it may join the frontier)";
    Veto = "veto", "veto", "review: veto the selected item, with an optional reason for later reflections";
    Edit = "edit", "edit", "edit the texts (a review item's, then approve; a candidate's, into a new candidate)";
    EditExternal = "edit_external", "$EDITOR", "like edit, in $EDITOR (one file per component)";
    ApproveAll = "approve_all", "approve all", "approve every pending review item";
    ToggleMutationReview = "toggle_mutation_review", "mutations auto/approve", "mutations: switch between auto and approve";
    ToggleMergeReview = "toggle_merge_review", "merges auto/approve", "merges: switch between auto and approve";
    Mark = "mark", "mark", "mark / unmark the selected candidate for a manual merge";
    MergeMarked = "merge_marked", "merge marked", "merge the two marked candidates by hand";
    AddCandidate = "add_candidate", "add", "add a candidate from a folder of component files";
    Branch = "branch", "branch", "start a new run seeded with the selected candidate (press twice; a live run stops, resumable)";
    Save = "save", "send", "editor: approve / send the edited texts";
    Guide = "guide", "guide", "guide a reflection on this candidate with a note";
    Protect = "protect", "protect", "editor: protect this line from mutation (<<keep>> markers; again removes them)";
    Undo = "undo", "undo", "editor: undo the last change (a word at a time)";
    Redo = "redo", "redo", "editor: redo what undo took back";
    NextField = "next_field", "next field", "input line: the next field of the example being fixed";
}

impl Action {
    /// One line for the help overlay in `layer`: what the action does there, where that is not
    /// what it does in the views (the merge screen's arrows choose sides, its enter sends).
    pub fn description_in(self, layer: Layer) -> &'static str {
        use Action::*;
        match (layer, self) {
            (Layer::Merge, Up) => "the previous component",
            (Layer::Merge, Down) => "the next component",
            (Layer::Merge, Left) => "take this component from the left (first marked) candidate",
            (Layer::Merge, Right) => "take this component from the right (second marked) candidate",
            (Layer::Merge, Open | Save) => "send the merged candidate (it is scored on val like any other)",
            (Layer::Merge, Back | Quit) => "cancel the merge (the marks stay)",
            (Layer::Editor, Save) => "send the edited texts (a review item's: approve them)",
            (Layer::Editor, Back) => "cancel (the first esc warns when something changed)",
            (Layer::Editor, NextView) => "the next component",
            (Layer::Editor, PrevView) => "the previous component",
            (Layer::Input, Open) => "send the text (a filter or a search: keep it and close the line)",
            (Layer::Input, Back) => "cancel (a filter or a search: clear it)",
            (Layer::Frontier | Layer::Candidate, Edit) => "edit the candidate's texts into a new candidate",
            (Layer::Candidate, Up) => "blame: the line above (else: scroll up)",
            (Layer::Candidate, Down) => "blame: the line below (else: scroll down)",
            (Layer::Candidate, Open) => {
                "blame: who wrote the selected line: its reflection and the minibatch feedback it read, a person's guidance, approval or edit (else: the candidate's val traces)"
            }
            (Layer::Candidate, Back) => "blame: close the selected line's writer",
            (Layer::Review, Edit) => "edit the item's texts, then approve",
            // In its own table, "frontier: …" needs no "frontier:" (a view key keeps its view's name).
            (
                _,
                ViewDashboard | ViewFrontier | ViewWinMatrix | ViewCandidate | ViewTraces | ViewReflections
                | ViewReview,
            ) => self.description(),
            _ => {
                let d = self.description();
                let own = match layer {
                    Layer::Frontier => "frontier: ",
                    Layer::WinMatrix => "win matrix: ",
                    Layer::Candidate => "candidate: ",
                    Layer::Traces => "traces: ",
                    Layer::Review => "review: ",
                    Layer::Editor => "editor: ",
                    Layer::Input => "input line: ",
                    _ => return d,
                };
                d.strip_prefix(own).unwrap_or(d)
            }
        }
    }

    /// A word or two for the footer and the keys table in `layer`, where the action does there
    /// something more particular than its label says (the merge screen's arrows choose sides).
    pub fn label_in(self, layer: Layer) -> &'static str {
        use Action::*;
        match (layer, self) {
            (Layer::Frontier, Search) => "filter",
            (Layer::WinMatrix, Sort) => "order examples",
            (Layer::Reflections, Open) => "open child",
            (Layer::Candidate, Open) => "who wrote it",
            (Layer::Candidate, Down) => "next line",
            (Layer::Candidate, Back) => "close",
            (Layer::Reflections, OpenTraces) => "minibatch traces",
            (Layer::Reflections, PageDown) => "scroll",
            (Layer::Traces, Left) => "prev",
            (Layer::Traces, Right) => "next",
            (Layer::Merge, Left) => "left side",
            (Layer::Merge, Right) => "right side",
            (Layer::Merge, Up) => "previous component",
            (Layer::Merge, Down) => "next component",
            (Layer::Merge | Layer::Input, Open) | (Layer::Merge, Save) => "send",
            (Layer::Merge | Layer::Editor | Layer::Input, Back) => "cancel",
            (Layer::Editor, NextView) => "next component",
            (Layer::Editor, PrevView) => "previous component",
            _ => self.label(),
        }
    }

    /// The global actions that act over the merge screen (it takes every other key): help,
    /// pause and retry go on as in the views; quit cancels the merge.
    pub const OVER_MERGE: [Action; 4] = [Action::Quit, Action::Help, Action::TogglePause, Action::RetryNow];
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

/// A table of bindings: the global one, or one per view or overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    Global,
    Dashboard,
    Frontier,
    WinMatrix,
    Candidate,
    Traces,
    Reflections,
    Review,
    Editor,
    /// The line a filter, a search, a reason or a note is typed on.
    Input,
    Merge,
    Help,
}

impl Layer {
    pub const ALL: [Layer; 12] = [
        Layer::Global,
        Layer::Dashboard,
        Layer::Frontier,
        Layer::WinMatrix,
        Layer::Candidate,
        Layer::Traces,
        Layer::Reflections,
        Layer::Review,
        Layer::Editor,
        Layer::Input,
        Layer::Merge,
        Layer::Help,
    ];

    /// The table's name in keymap.toml.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Global => "global",
            Layer::Dashboard => "dashboard",
            Layer::Frontier => "frontier",
            Layer::WinMatrix => "win_matrix",
            Layer::Candidate => "candidate",
            Layer::Traces => "traces",
            Layer::Reflections => "reflections",
            Layer::Review => "review",
            Layer::Editor => "editor",
            Layer::Input => "input",
            Layer::Merge => "merge",
            Layer::Help => "help",
        }
    }

    /// Where the layer's keys work, for the help overlay.
    pub fn title(self) -> &'static str {
        match self {
            Layer::Global => "everywhere",
            Layer::Dashboard => "in the Dashboard",
            Layer::Frontier => "in the Frontier",
            Layer::WinMatrix => "in the Win matrix",
            Layer::Candidate => "in the Candidate view",
            Layer::Traces => "in the Traces",
            Layer::Reflections => "in the Reflections",
            Layer::Review => "in the Review queue",
            Layer::Editor => "in the editor",
            Layer::Input => "on the input line",
            Layer::Merge => "on the merge screen",
            Layer::Help => "in the help",
        }
    }

    pub fn from_name(name: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    /// In order of definition; later entries for the same key in a layer replace earlier ones.
    /// None unbinds the key in that layer (it does not fall through to the global table).
    bindings: Vec<(Layer, Key, Option<Action>)>,
}

impl Default for Keymap {
    fn default() -> Self {
        use Action::*;
        use KeyCode as K;
        use Layer as L;
        let p = Key::plain;
        let c = Key::ch;
        let ctrl = |ch: char| Key::new(K::Char(ch), KeyModifiers::CONTROL);
        let global = vec![
            (c('q'), Quit),
            (ctrl('c'), Quit),
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
            (c('t'), OpenTraces),
            (c('A'), ApproveAll),
            (c('p'), ToggleMutationReview),
            (c('P'), ToggleMergeReview),
            (c('m'), Mark),
            (c('M'), MergeMarked),
            (c('+'), AddCandidate),
            (c('b'), Branch),
        ];
        let views: Vec<(Layer, Key, Action)> = vec![
            (L::Frontier, c('s'), Sort),
            (L::Frontier, c('/'), Search),
            (L::Frontier, c('o'), TradeOff),
            (L::Frontier, c('D'), Detail),
            (L::Frontier, c('L'), Lineage),
            (L::Frontier, c('X'), AxisX),
            (L::Frontier, c('Y'), AxisY),
            (L::WinMatrix, c('w'), SwitchPane),
            (L::WinMatrix, c('s'), Sort),
            (L::WinMatrix, c('v'), NextObjective),
            (L::Frontier, c('n'), Guide),
            (L::Frontier, c('e'), Edit),
            (L::Frontier, c('E'), EditExternal),
            (L::Candidate, c('e'), Edit),
            (L::Candidate, c('E'), EditExternal),
            (L::Review, c('e'), Edit),
            (L::Review, c('E'), EditExternal),
            (L::Candidate, c('d'), Diff),
            (L::Candidate, c('n'), Guide),
            (L::Candidate, c(']'), CompareNext),
            (L::Candidate, c('['), ComparePrev),
            (L::Traces, c('/'), Search),
            (L::Traces, c('x'), ExcludeExample),
            (L::Traces, c('f'), FixExample),
            (L::Traces, c('n'), Guide),
            (L::Reflections, c('n'), Guide),
            (L::Review, c('a'), Approve),
            (L::Review, c('x'), Veto),
            (L::Editor, ctrl('s'), Save),
            (L::Editor, ctrl('k'), Protect),
            (L::Editor, p(K::Esc), Back),
            (L::Editor, p(K::Tab), NextView),
            (L::Editor, p(K::BackTab), PrevView),
            (L::Editor, ctrl('z'), Undo),
            (L::Editor, ctrl('y'), Redo),
            (L::Input, p(K::Enter), Open),
            (L::Input, p(K::Esc), Back),
            (L::Input, p(K::Tab), NextField),
            (L::Merge, p(K::Left), Left),
            (L::Merge, p(K::Right), Right),
            (L::Merge, p(K::Up), Up),
            (L::Merge, p(K::Down), Down),
            (L::Merge, p(K::Enter), Open),
            (L::Merge, ctrl('s'), Save),
            (L::Merge, p(K::Esc), Back),
        ];
        let bindings = global
            .into_iter()
            .map(|(k, a)| (L::Global, k, Some(a)))
            .chain(views.into_iter().map(|(l, k, a)| (l, k, Some(a))))
            .collect();
        Keymap { bindings }
    }
}

impl Keymap {
    /// Every binding in effect: (table, key, action), in definition order (an unbinding, or a
    /// binding replaced later in the same table, left out).
    pub fn bindings(&self) -> Vec<(Layer, Key, Action)> {
        let mut out = Vec::new();
        for (i, (l, k, a)) in self.bindings.iter().enumerate() {
            let later = self.bindings[i + 1..].iter().any(|(l2, k2, _)| l2 == l && k2 == k);
            if let (Some(a), false) = (a, later) {
                out.push((*l, *k, *a));
            }
        }
        out
    }

    /// What `key` is bound to in `layer` alone: Some(None) when it is unbound there on purpose.
    fn lookup(&self, layer: Layer, key: Key) -> Option<Option<Action>> {
        self.bindings.iter().rev().find(|(l, k, _)| *l == layer && *k == key).map(|(_, _, a)| *a)
    }

    /// The action `key` does in `layer`: the layer's own binding, else the global one.
    pub fn action_at(&self, layer: Layer, key: Key) -> Option<Action> {
        match self.lookup(layer, key) {
            Some(a) => a,
            None if layer != Layer::Global => self.lookup(Layer::Global, key).flatten(),
            None => None,
        }
    }

    /// The action `key` does under a stack of layers (the top first): the first layer that binds
    /// it, else the global table.
    pub fn action_under(&self, layers: &[Layer], key: Key) -> Option<Action> {
        match layers.iter().find_map(|l| self.lookup(*l, key)) {
            Some(a) => a,
            None => self.lookup(Layer::Global, key).flatten(),
        }
    }

    /// The action a key event does in `layer`.
    pub fn action_in(&self, layer: Layer, ev: &KeyEvent) -> Option<Action> {
        self.action_at(layer, Key::from_event(ev))
    }

    /// The action a key event does where only the global table applies (the start screen).
    pub fn action_for(&self, ev: &KeyEvent) -> Option<Action> {
        self.action_in(Layer::Global, ev)
    }

    /// The first layer other than `layer` (and the global one) where `key` does something, and
    /// what: to tell a person where a key they pressed works.
    pub fn elsewhere(&self, layer: Layer, key: Key) -> Option<(Layer, Action)> {
        Layer::ALL
            .into_iter()
            .filter(|l| *l != layer && *l != Layer::Global)
            .find_map(|l| self.lookup(l, key).flatten().map(|a| (l, a)))
    }

    /// What to say when `key` does nothing in `layer`: where it works, if anywhere.
    pub fn unbound(&self, layer: Layer, key: Key) -> String {
        match self.elsewhere(layer, key) {
            Some((l, a)) => {
                let at = Layer::ALL[1..8].iter().position(|v| *v == l).map(|i| format!(" ({})", i + 1));
                format!("{key} ({}) works {}{}; ? lists the keys here", a.name(), l.title(), at.unwrap_or_default())
            }
            None => format!("{key} is not bound; ? lists the keys"),
        }
    }

    /// Where `action` works when it does nothing here: its keys and the views (with their number)
    /// whose tables bind it, e.g. "e (edit) works in the Frontier (2), the Candidate view (4) and
    /// the Review queue (7)". Drawn from the tables, so a rebinding changes it too.
    pub fn where_it_works(&self, action: Action) -> Option<String> {
        let places: Vec<String> = Layer::ALL[1..]
            .iter()
            .filter(|l| **l != Layer::Help && self.layer_bindings(**l).iter().any(|(a, _)| *a == action))
            .map(|l| {
                let n = Layer::ALL[1..8].iter().position(|v| v == l).map(|i| format!(" ({})", i + 1));
                format!("{}{}", l.title().trim_start_matches("in ").trim_start_matches("on "), n.unwrap_or_default())
            })
            .collect();
        let keys = join(&self.keys_for(action));
        let (last, rest) = places.split_last()?;
        let at = if rest.is_empty() { last.clone() } else { format!("{} and {last}", rest.join(", ")) };
        Some(format!("{keys} ({}) works in {at}", action.name()))
    }

    /// Keys that do `action` in `layer` (its own first, then the global ones it does not
    /// shadow), in definition order.
    pub fn keys_in(&self, layer: Layer, action: Action) -> Vec<Key> {
        let mut out = Vec::new();
        for l in [layer, Layer::Global] {
            for (l2, k, a) in &self.bindings {
                if *l2 == l && *a == Some(action) && self.action_at(layer, *k) == Some(action) && !out.contains(k) {
                    out.push(*k);
                }
            }
        }
        out
    }

    /// Keys that do `action`: in the global table, else in the first layer that binds it.
    pub fn keys_for(&self, action: Action) -> Vec<Key> {
        Layer::ALL.into_iter().map(|l| self.keys_in(l, action)).find(|k| !k.is_empty()).unwrap_or_default()
    }

    /// Keys for `action` joined for display ("q, ctrl-c").
    pub fn describe(&self, action: Action) -> String {
        join(&self.keys_for(action))
    }

    /// Keys for `action` in `layer` joined for display.
    pub fn describe_in(&self, layer: Layer, action: Action) -> String {
        join(&self.keys_in(layer, action))
    }

    /// The layer's own bindings as (action, its keys here), in action order; the global table's
    /// when `layer` is Global. An action whose keys are all shadowed here is left out.
    pub fn layer_bindings(&self, layer: Layer) -> Vec<(Action, Vec<Key>)> {
        Action::ALL
            .iter()
            .map(|&a| {
                let keys: Vec<Key> = self
                    .bindings
                    .iter()
                    .filter(|(l, k, b)| *l == layer && *b == Some(a) && self.action_at(layer, *k) == Some(a))
                    .map(|(_, k, _)| *k)
                    .fold(Vec::new(), |mut v, k| {
                        if !v.contains(&k) {
                            v.push(k);
                        }
                        v
                    });
                (a, keys)
            })
            .filter(|(_, k)| !k.is_empty())
            .collect()
    }

    /// The global bindings that still act in `layer` (not shadowed by its own table).
    pub fn global_bindings_in(&self, layer: Layer) -> Vec<(Action, Vec<Key>)> {
        self.layer_bindings(Layer::Global)
            .into_iter()
            .map(|(a, keys)| (a, keys.into_iter().filter(|k| self.lookup(layer, *k).is_none()).collect::<Vec<_>>()))
            .filter(|(_, k)| !k.is_empty())
            .collect()
    }

    /// Applies overrides from keymap.toml text: `[global]` and one table per layer, or the older
    /// flat `[keys]` (a binding for every view).
    pub fn apply_overrides(&mut self, text: &str) -> Result<()> {
        let table: toml::Table = toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        for (section, v) in &table {
            let layer = match (section.as_str(), Layer::from_name(section)) {
                ("keys", _) => None,
                (_, Some(l)) => Some(l),
                (_, None) => {
                    let names: Vec<&str> = Layer::ALL.iter().map(|l| l.name()).collect();
                    let hint =
                        did_you_mean(section, &names).map(|s| format!(" Did you mean [{s}]?")).unwrap_or_default();
                    bail!(
                        "unknown section `[{section}]`.{hint} Key bindings go under [global] or a view's or overlay's \
                         table ({}), e.g. [frontier] \"S\" = \"sort\"",
                        names.iter().map(|n| format!("[{n}]")).collect::<Vec<_>>().join(", ")
                    );
                }
            };
            let keys = v.as_table().ok_or_else(|| anyhow!("[{section}] must be a table of \"key\" = \"action\""))?;
            for (key, action) in keys {
                let parsed = Key::parse(key).with_context(|| format!("[{section}] \"{key}\""))?;
                let name = action
                    .as_str()
                    .ok_or_else(|| anyhow!("[{section}] \"{key}\": the action must be a string such as \"down\""))?;
                let act = match name {
                    "none" => None,
                    _ => Some(Action::from_name(name).ok_or_else(|| {
                        let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                        let hint =
                            did_you_mean(name, &names).map(|s| format!(" Did you mean `{s}`?")).unwrap_or_default();
                        anyhow!(
                            "[{section}] \"{key}\": `{name}` is not an action.{hint} Actions: {}, or \"none\" to unbind",
                            names.join(", ")
                        )
                    })?),
                };
                match layer {
                    Some(l) => self.bindings.push((l, parsed, act)),
                    None => {
                        // The flat form: the same in every view, as before there were layers.
                        self.bindings.retain(|(_, k2, _)| *k2 != parsed);
                        if act.is_some() {
                            self.bindings.push((Layer::Global, parsed, act));
                        }
                    }
                }
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

fn join(keys: &[Key]) -> String {
    keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
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

    /// A binding in one layer acts there and nowhere else; the global table still answers the
    /// keys the layer does not bind.
    #[test]
    fn each_layer_takes_its_own_overrides() {
        let f5 = ev(KeyCode::F(5), KeyModifiers::NONE);
        for layer in Layer::ALL {
            let mut km = Keymap::default();
            km.apply_overrides(&format!("[{}]\n\"f5\" = \"bottom\"", layer.name())).unwrap();
            assert_eq!(km.action_in(layer, &f5), Some(Action::Bottom), "{layer:?}");
            for other in Layer::ALL.into_iter().filter(|o| *o != layer) {
                let want = if layer == Layer::Global { Some(Action::Bottom) } else { None };
                assert_eq!(km.action_in(other, &f5), want, "[{}] binding seen in {other:?}", layer.name());
            }
            // `q` is global: it still quits in every layer that does not rebind it.
            assert_eq!(km.action_in(layer, &ev(KeyCode::Char('q'), KeyModifiers::NONE)), Some(Action::Quit));
        }
    }

    #[test]
    fn a_layer_shadows_the_global_table_and_none_stops_the_fall_through() {
        let mut km = Keymap::default();
        let s = ev(KeyCode::Char('s'), KeyModifiers::NONE);
        let q = ev(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(km.action_in(Layer::Frontier, &s), Some(Action::Sort));
        assert_eq!(km.action_in(Layer::Candidate, &s), None);
        km.apply_overrides("[frontier]\n\"q\" = \"sort\"\n[candidate]\n\"q\" = \"none\"").unwrap();
        assert_eq!(km.action_in(Layer::Frontier, &q), Some(Action::Sort));
        assert_eq!(km.action_in(Layer::Candidate, &q), None);
        assert_eq!(km.action_in(Layer::Traces, &q), Some(Action::Quit));
        // Footer and help read the same tables.
        assert_eq!(km.describe_in(Layer::Frontier, Action::Sort), "s, q");
        assert_eq!(km.describe_in(Layer::Frontier, Action::Quit), "ctrl-c");
        assert!(!km.global_bindings_in(Layer::Frontier).iter().any(|(_, k)| k.contains(&Key::ch('q'))));
    }

    #[test]
    fn the_flat_keys_table_still_binds_in_every_view() {
        let mut km = Keymap::default();
        // `s` sorts in two views; the old flat form makes it quit everywhere, as it used to.
        km.apply_overrides("[keys]\n\"s\" = \"quit\"\n\"x\" = \"none\"").unwrap();
        for layer in Layer::ALL {
            assert_eq!(km.action_in(layer, &ev(KeyCode::Char('s'), KeyModifiers::NONE)), Some(Action::Quit));
            assert_eq!(km.action_in(layer, &ev(KeyCode::Char('x'), KeyModifiers::NONE)), None);
        }
    }

    #[test]
    fn bad_overrides_say_what_is_wrong() {
        let mut km = Keymap::default();
        let e = km.apply_overrides("[keys]\n\"j\" = \"dwon\"").unwrap_err().to_string();
        assert!(e.contains("Did you mean `down`"), "{e}");
        let e = format!("{:#}", km.apply_overrides("[keys]\n\"ctrl-\" = \"down\"").unwrap_err());
        assert!(e.contains("ctrl-"), "{e}");
        let e = km.apply_overrides("j = \"down\"").unwrap_err().to_string();
        assert!(e.contains("[global]"), "{e}");
        let e = km.apply_overrides("[fronteir]\n\"j\" = \"down\"").unwrap_err().to_string();
        assert!(e.contains("Did you mean [frontier]?"), "{e}");
    }
}

//! The overlay stack: what is open over the active view (the inline editor, the merge screen, the
//! input line, the help), the top one last. The top overlay takes the keys; closing it gives them
//! back to the one under it, else to the view. At most one of each kind is open: opening a kind
//! again replaces it where it was. Help opens over whatever is under it and lists that layer's
//! keys (a view's, or the merge screen's).
//!
//! As in gitui's popup stack (`src/popup_stack.rs`), the router owns the stack and asks the top
//! what a key means; the overlays never reach back into the router.

use crate::tui::keymap::Layer;
use crate::tui::views::editor::EditSession;
use crate::tui::views::help::HelpView;
use crate::tui::views::input::InputLine;
use crate::tui::views::merge::MergeView;

pub enum Overlay {
    Editor(EditSession),
    Merge(MergeView),
    Input(InputLine),
    Help(HelpView),
}

/// Which overlay it is (the stack holds at most one of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Editor,
    Merge,
    Input,
    Help,
}

impl Overlay {
    pub fn kind(&self) -> Kind {
        match self {
            Overlay::Editor(_) => Kind::Editor,
            Overlay::Merge(_) => Kind::Merge,
            Overlay::Input(_) => Kind::Input,
            Overlay::Help(_) => Kind::Help,
        }
    }

    /// The keymap layer it reads keys in; the input line reads raw keys and has none.
    fn layer(&self) -> Option<Layer> {
        match self.kind() {
            Kind::Editor => Some(Layer::Editor),
            Kind::Merge => Some(Layer::Merge),
            Kind::Help => Some(Layer::Help),
            Kind::Input => None,
        }
    }
}

#[derive(Default)]
pub struct Overlays(Vec<Overlay>);

impl Overlays {
    /// Opens `o` on top; an open overlay of the same kind is replaced.
    pub fn push(&mut self, o: Overlay) {
        self.close(o.kind());
        self.0.push(o);
    }

    /// Closes the overlay of this kind, wherever it is; whether one was open.
    pub fn close(&mut self, kind: Kind) -> bool {
        let before = self.0.len();
        self.0.retain(|o| o.kind() != kind);
        self.0.len() != before
    }

    /// Takes the top overlay off (the router hands it back with `push` unless it closed).
    pub fn pop(&mut self) -> Option<Overlay> {
        self.0.pop()
    }

    pub fn top(&self) -> Option<Kind> {
        self.0.last().map(Overlay::kind)
    }

    pub fn is_open(&self, kind: Kind) -> bool {
        self.0.iter().any(|o| o.kind() == kind)
    }

    /// Bottom to top, as they are drawn.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Overlay> {
        self.0.iter_mut()
    }

    /// The keymap layers a key is looked up in, the top first: the help's and the first layer
    /// under it, or the top overlay's; `view` when no overlay with a layer is open.
    pub fn layers(&self, view: Layer) -> Vec<Layer> {
        let mut out = Vec::new();
        for l in self.0.iter().rev().filter_map(Overlay::layer) {
            out.push(l);
            if l != Layer::Help {
                return out;
            }
        }
        out.push(view);
        out
    }

    /// The layer under the help (what it lists and what the footer shows while it is open).
    pub fn under_help(&self, view: Layer) -> Layer {
        self.layers(view).into_iter().find(|l| *l != Layer::Help).unwrap_or(view)
    }

    pub fn help(&self) -> Option<&HelpView> {
        self.0.iter().find_map(|o| if let Overlay::Help(h) = o { Some(h) } else { None })
    }

    pub fn input(&self) -> Option<&InputLine> {
        self.0.iter().find_map(|o| if let Overlay::Input(i) = o { Some(i) } else { None })
    }

    pub fn input_mut(&mut self) -> Option<&mut InputLine> {
        self.0.iter_mut().find_map(|o| if let Overlay::Input(i) = o { Some(i) } else { None })
    }

    pub fn merge(&self) -> Option<&MergeView> {
        self.0.iter().find_map(|o| if let Overlay::Merge(m) = o { Some(m) } else { None })
    }

    pub fn editor(&self) -> Option<&EditSession> {
        self.0.iter().find_map(|o| if let Overlay::Editor(e) = o { Some(e) } else { None })
    }

    pub fn editor_mut(&mut self) -> Option<&mut EditSession> {
        self.0.iter_mut().find_map(|o| if let Overlay::Editor(e) = o { Some(e) } else { None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::views::input::InputTarget;

    #[test]
    fn keys_go_to_the_top_and_help_reads_the_layer_under_it() {
        let mut s = Overlays::default();
        assert_eq!(s.layers(Layer::Frontier), [Layer::Frontier]);
        s.push(Overlay::Help(HelpView::default()));
        assert_eq!(s.layers(Layer::Frontier), [Layer::Help, Layer::Frontier]);
        assert_eq!(s.under_help(Layer::Frontier), Layer::Frontier);
        s.close(Kind::Help);
        // The input line reads raw keys: the view's layer stays the one in force under it.
        s.push(Overlay::Input(InputLine::new(InputTarget::Folder, "")));
        assert_eq!(s.top(), Some(Kind::Input));
        assert_eq!(s.layers(Layer::Review), [Layer::Review]);
    }

    #[test]
    fn opening_a_kind_again_replaces_it_and_closing_one_leaves_the_rest() {
        let mut s = Overlays::default();
        s.push(Overlay::Input(InputLine::new(InputTarget::Folder, "a")));
        s.push(Overlay::Help(HelpView::default()));
        s.push(Overlay::Input(InputLine::new(InputTarget::Folder, "b")));
        assert_eq!(s.top(), Some(Kind::Input));
        assert_eq!(s.input().map(|i| i.text.as_str()), Some("b"));
        assert!(s.close(Kind::Input));
        assert_eq!(s.top(), Some(Kind::Help));
        assert!(!s.close(Kind::Editor));
    }
}

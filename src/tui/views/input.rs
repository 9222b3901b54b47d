//! The one-line input under the views: a filter or search typed live into a view, or a prompt (a
//! veto's reason, a folder to add) sent on Enter. The router owns it while it is open; the status
//! bar draws it.

use crate::tui::keymap::{Action, Keymap, Layer};

/// What the typed text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputTarget {
    FrontierFilter,
    TraceSearch,
    /// The reason for vetoing this review item (optional).
    VetoReason {
        item: u64,
    },
    /// A folder of component files to add as a candidate.
    Folder,
    /// Why the example marked in the Traces view is excluded from the run (required).
    ExcludeReason,
    /// The corrected value of a field of the example marked in the Traces view.
    FixValue,
    /// A note for a reflection on this candidate (`guide`), with the example the person was
    /// looking at: its split and its index in that split's ids.
    GuideNote {
        candidate: crate::engine::CandidateId,
        example: Option<(crate::project::Split, usize)>,
    },
}

impl InputTarget {
    /// A prompt is sent on Enter; a filter applies as it is typed.
    pub fn is_prompt(self) -> bool {
        matches!(
            self,
            InputTarget::VetoReason { .. }
                | InputTarget::Folder
                | InputTarget::ExcludeReason
                | InputTarget::FixValue
                | InputTarget::GuideNote { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLine {
    pub target: InputTarget,
    pub text: String,
    /// Why the last Enter did not go through (the text stays for another try).
    pub error: Option<String>,
    /// What the prompt asks, when the target alone does not say (which example, which field).
    pub label: Option<String>,
}

impl InputLine {
    pub fn new(target: InputTarget, text: impl Into<String>) -> InputLine {
        InputLine { target, text: text.into(), error: None, label: None }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> InputLine {
        self.label = Some(label.into());
        self
    }
}

/// What a key did to the input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKey {
    /// The text changed (a filter applies it as typed).
    Typed(String),
    /// Enter on a prompt: send this text.
    Submit(String),
    /// Enter on a filter: keep it and close the line.
    Keep,
    /// Tab on a fix: the next field of the example.
    NextField,
    /// Esc: a prompt is cancelled; a filter is cleared.
    Cancel,
    /// Nothing happened.
    None,
}

impl InputLine {
    /// Typing goes into the text; the input layer's keys (`[input]`: enter, esc, tab) send,
    /// cancel and step to the next field. The router carries the outcome out.
    pub fn on_key(&mut self, key: crossterm::event::KeyEvent, keymap: &Keymap) -> InputKey {
        use crossterm::event::{KeyCode, KeyModifiers};
        match key.code {
            KeyCode::Char(c) if !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
                self.text.push(c);
                return InputKey::Typed(self.text.clone());
            }
            KeyCode::Backspace => {
                self.text.pop();
                return InputKey::Typed(self.text.clone());
            }
            _ => {}
        }
        match keymap.action_in(Layer::Input, &key) {
            Some(Action::Open) if self.target.is_prompt() => InputKey::Submit(self.text.clone()),
            Some(Action::Open) => InputKey::Keep,
            Some(Action::NextField) if self.target == InputTarget::FixValue => InputKey::NextField,
            Some(Action::Back) => InputKey::Cancel,
            _ => InputKey::None,
        }
    }

    /// Pasted text, on one line and without control sequences.
    pub fn paste(&mut self, text: &str) -> InputKey {
        self.text.push_str(&crate::text::sanitize(text).replace(['\n', '\t'], " "));
        InputKey::Typed(self.text.clone())
    }
}

//! The one-line input under the views: a filter or search typed live into a view, or a prompt (a
//! veto's reason, a folder to add) sent on Enter. The router owns it while it is open; the status
//! bar draws it.

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
}

impl InputTarget {
    /// A prompt is sent on Enter; a filter applies as it is typed.
    pub fn is_prompt(self) -> bool {
        matches!(self, InputTarget::VetoReason { .. } | InputTarget::Folder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLine {
    pub target: InputTarget,
    pub text: String,
    /// Why the last Enter did not go through (the text stays for another try).
    pub error: Option<String>,
}

impl InputLine {
    pub fn new(target: InputTarget, text: impl Into<String>) -> InputLine {
        InputLine { target, text: text.into(), error: None }
    }
}

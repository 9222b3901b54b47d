//! The input line's prompts (a filter, a veto's reason, a folder, a guide's note, an exclusion's
//! reason, a corrected value): what typing, Tab and Enter do in each, and what is sent. Part of
//! the router (`app.rs`), kept apart so the router stays a router.

use super::{App, Kind};
use crate::tui::views;
use crate::tui::views::input::{InputKey, InputTarget};

impl App {
    fn close_input(&mut self) {
        self.overlays.close(Kind::Input);
    }

    /// The input line's keys: a filter applies as it is typed, a prompt is sent on Enter.
    pub(super) fn on_input(&mut self, key: InputKey) {
        let Some(target) = self.overlays.input().map(|i| i.target) else { return };
        match key {
            InputKey::Typed(text) => self.set_input_text(target, text),
            InputKey::Submit(text) => self.submit_prompt(target, &text),
            InputKey::Keep => self.close_input(),
            InputKey::NextField => self.next_fix_field(),
            InputKey::Cancel => {
                self.close_input();
                match target {
                    InputTarget::VetoReason { item } => {
                        self.flash = Some(format!("veto of item {item} cancelled; nothing sent"))
                    }
                    InputTarget::Folder => self.flash = Some("cancelled; nothing sent".into()),
                    InputTarget::ExcludeReason | InputTarget::FixValue => {
                        self.views.traces.pending = None;
                        self.flash = Some("cancelled; nothing sent".into());
                    }
                    InputTarget::GuideNote { .. } => self.flash = Some("guidance cancelled; nothing sent".into()),
                    _ => self.set_input_text(target, String::new()),
                }
            }
            InputKey::None => {}
        }
    }

    /// A filter applies as it is typed; a prompt's error clears when its text changes.
    fn set_input_text(&mut self, target: InputTarget, text: String) {
        match target {
            InputTarget::FrontierFilter => self.views.frontier.set_filter(text),
            InputTarget::TraceSearch => self.views.traces.set_query(text),
            InputTarget::VetoReason { .. }
            | InputTarget::Folder
            | InputTarget::ExcludeReason
            | InputTarget::FixValue
            | InputTarget::GuideNote { .. } => {
                if let Some(i) = self.overlays.input_mut() {
                    i.error = None;
                }
            }
        }
    }

    /// Tab in a fix's prompt: the example's next field, with its value as the run uses it.
    fn next_fix_field(&mut self) {
        let Some(mark) = self.views.traces.pending.as_mut() else { return };
        if mark.fields.is_empty() {
            return;
        }
        mark.at = (mark.at + 1) % mark.fields.len();
        let value = self.model.field_value(mark.split, &mark.example, mark.field());
        let text = views::traces::value_for_prompt(value.as_ref());
        let label = mark.fix_label();
        if let Some(i) = self.overlays.input_mut() {
            i.text = text;
            i.label = Some(label);
            i.error = None;
        }
    }

    fn submit_prompt(&mut self, target: InputTarget, text: &str) {
        match target {
            InputTarget::VetoReason { item } => {
                self.close_input();
                self.flash = Some(self.outbox().veto(item, text));
            }
            InputTarget::GuideNote { candidate, example } => {
                let sent = self.outbox().guide(candidate, example, text);
                self.prompt_result(sent);
            }
            InputTarget::Folder => {
                let sent = self.outbox().add_from_folder(text);
                self.prompt_result(sent);
            }
            InputTarget::ExcludeReason | InputTarget::FixValue => {
                let Some(mark) = self.views.traces.pending.clone() else {
                    self.close_input();
                    return;
                };
                let sent = if target == InputTarget::ExcludeReason {
                    self.outbox().exclude(mark.split, &mark.example, text)
                } else {
                    self.outbox().fix(mark.split, &mark.example, mark.field(), text)
                };
                if sent.is_ok() {
                    self.views.traces.pending = None;
                }
                self.prompt_result(sent);
            }
            _ => self.close_input(),
        }
    }

    /// A prompt's Enter: sent (the line closes, saying so), or why not (it stays for another try).
    fn prompt_result(&mut self, sent: Result<String, String>) {
        match sent {
            Ok(msg) => {
                self.close_input();
                self.flash = Some(msg);
            }
            Err(e) => {
                if let Some(i) = self.overlays.input_mut() {
                    i.error = Some(e);
                }
            }
        }
    }
}

//! The inline editor over a candidate's texts: a tab per component (a `*` marks the edited ones),
//! the text soft-wrapped, and the keys that send or cancel on the last line.

use super::{inner, one_line, pane, Ctx, Outcome};
use crate::engine::CandidateId;
use crate::project::Candidate;
use crate::tui::editor::TextEditor;
use crate::tui::keymap::{Action, Keymap, Layer};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// What an edit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditTarget {
    /// Edit a pending review item's texts, then approve it.
    ReviewItem { item: u64 },
    /// A new candidate from a candidate's texts (origin human, parent that candidate).
    HandEdit { parent: CandidateId },
}

/// `e` / `E` on a candidate (Frontier, Candidate view): its texts, edited, become a new candidate.
pub fn hand_edit(ctx: &Ctx, external: bool) -> Outcome {
    let Some(rec) = ctx.model.state.candidates.get(ctx.selected) else {
        return Outcome::Flash("no candidate to edit yet".into());
    };
    match ctx.model.why_not_live("a hand edit") {
        Some(why) => Outcome::Flash(why),
        None => {
            Outcome::Edit { target: EditTarget::HandEdit { parent: ctx.selected }, texts: rec.texts.clone(), external }
        }
    }
}

/// The inline editor over a candidate's texts, one editor per component.
#[derive(Debug, Clone)]
pub struct EditSession {
    pub target: EditTarget,
    /// Component names, in the run's order.
    pub names: Vec<String>,
    /// The texts before editing, as they were (the editors hold them sanitized).
    pub originals: Candidate,
    pub editors: Vec<TextEditor>,
    pub current: usize,
    /// Esc was pressed once over unsent edits.
    pub confirm_discard: bool,
}

impl EditSession {
    pub fn new(target: EditTarget, names: &[String], texts: &Candidate) -> EditSession {
        let editors = names
            .iter()
            .map(|n| TextEditor::new(&crate::text::sanitize(texts.get(n).map(String::as_str).unwrap_or(""))))
            .collect();
        EditSession {
            target,
            names: names.to_vec(),
            originals: texts.clone(),
            editors,
            current: 0,
            confirm_discard: false,
        }
    }

    /// A session on the `originals`, with the editors holding `edited` where it has a text (what
    /// came back from `$EDITOR`, so nothing typed there is lost).
    pub fn with_texts(target: EditTarget, names: &[String], originals: &Candidate, edited: &Candidate) -> Self {
        let mut session = EditSession::new(target, names, originals);
        for (name, e) in session.names.iter().zip(session.editors.iter_mut()) {
            if let Some(t) = edited.get(name) {
                *e = TextEditor::new(&crate::text::sanitize(t));
            }
        }
        session
    }

    /// The edited texts; a component left as it was keeps its original text exactly (the editor
    /// shows it with control characters removed).
    pub fn texts(&self) -> Candidate {
        self.names
            .iter()
            .zip(&self.editors)
            .map(|(n, e)| {
                let orig = self.originals.get(n).cloned().unwrap_or_default();
                let text = e.text();
                (n.clone(), if text == crate::text::sanitize(&orig) { orig } else { text })
            })
            .collect()
    }

    pub fn modified(&self) -> bool {
        self.texts() != self.originals
    }

    /// Components whose text was changed here.
    pub fn changed(&self) -> Vec<&str> {
        let t = self.texts();
        self.names.iter().filter(|n| t.get(*n) != self.originals.get(*n)).map(String::as_str).collect()
    }

    /// The editor takes every key: typed characters go into the text; the keymap's save, back
    /// and next/previous view keys send, cancel and switch components.
    pub fn on_key(&mut self, key: KeyEvent, keymap: &Keymap, layer: Layer) -> Outcome {
        let typed = matches!(key.code, KeyCode::Char(_))
            && !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        let action = if typed { None } else { keymap.action_in(layer, &key) };
        if action != Some(Action::Back) {
            self.confirm_discard = false;
        }
        let n = self.editors.len().max(1);
        match action {
            Some(Action::Save) => return Outcome::SubmitEdit { target: self.target, texts: self.texts() },
            Some(Action::Back) if self.modified() && !self.confirm_discard => {
                self.confirm_discard = true;
                return Outcome::Flash(format!(
                    "esc again discards your edits; {} sends them",
                    keymap.describe_in(layer, Action::Save)
                ));
            }
            Some(Action::Back) => return Outcome::Close("edit cancelled; nothing sent".into()),
            Some(Action::Protect) => {
                let Some(e) = self.editors.get_mut(self.current) else { return Outcome::Done };
                return Outcome::Flash(match e.toggle_keep_line() {
                    Some(true) => format!(
                        "line protected: later reflections must keep it verbatim once {} sends it",
                        keymap.describe_in(layer, Action::Save)
                    ),
                    Some(false) => "keep markers taken off this line".into(),
                    None => "an empty line has nothing to protect".into(),
                });
            }
            Some(Action::Undo) => {
                if let Some(e) = self.editors.get_mut(self.current) {
                    e.undo();
                }
            }
            Some(Action::Redo) => {
                if let Some(e) = self.editors.get_mut(self.current) {
                    e.redo();
                }
            }
            Some(Action::NextView) => self.current = (self.current + 1) % n,
            Some(Action::PrevView) => self.current = (self.current + n - 1) % n,
            Some(Action::Quit) => {
                return Outcome::Flash("esc leaves the editor first (your text stays until you do)".into())
            }
            _ => {
                if let Some(e) = self.editors.get_mut(self.current) {
                    e.input(key);
                }
            }
        }
        Outcome::Done
    }

    /// Pasted text goes in whole at the cursor.
    pub fn paste(&mut self, text: &str) {
        if let Some(e) = self.editors.get_mut(self.current) {
            e.insert_str(text);
        }
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let (ed, theme) = (self, ctx.theme);
        frame.render_widget(Clear, area);
        let title = match ed.target {
            EditTarget::ReviewItem { item } => format!(" Edit item {item}, then approve "),
            EditTarget::HandEdit { parent } => format!(" Edit #{parent} into a new candidate "),
        };
        frame.render_widget(pane(title, theme, true), area);
        let body = inner(area);
        if body.height < 3 {
            return;
        }
        let changed = ed.changed();
        let mut tabs = Vec::new();
        for (i, name) in ed.names.iter().enumerate() {
            let mark = if changed.contains(&name.as_str()) { "*" } else { "" };
            let label = format!(" {}{mark} ", one_line(name));
            tabs.push(Span::styled(label, if i == ed.current { theme.selection } else { theme.muted }));
            tabs.push(Span::raw(" "));
        }
        frame.render_widget(Paragraph::new(Line::from(tabs)), Rect { height: 1, ..body });
        let text_area = Rect { y: body.y + 1, height: body.height - 2, ..body };
        if let Some(e) = ed.editors.get_mut(ed.current) {
            e.render(frame, text_area, theme.text, theme.accent);
        }
        let k = |a: Action| {
            ctx.keymap.keys_in(Layer::Editor, a).first().map(|k| k.to_string()).unwrap_or_else(|| a.name().into())
        };
        let (save, short) = match ed.target {
            EditTarget::ReviewItem { .. } => ("approve the edited texts", "approve"),
            EditTarget::HandEdit { .. } => ("send as a new candidate", "send"),
        };
        let label = |a: Action| a.label_in(Layer::Editor);
        let mut keys =
            vec![(k(Action::Save), save, short), (k(Action::Back), label(Action::Back), label(Action::Back))];
        if ed.names.len() > 1 {
            keys.push((k(Action::NextView), label(Action::NextView), label(Action::NextView)));
        }
        keys.push((k(Action::Protect), "protect line", label(Action::Protect)));
        keys.push((k(Action::Undo), label(Action::Undo), label(Action::Undo)));
        // The long labels when they fit, else the short ones, and as many keys as fit.
        let fits = |long: bool| {
            keys.iter().map(|(k, l, s)| k.chars().count() + 3 + if long { l } else { s }.chars().count()).sum::<usize>()
                <= body.width as usize + 2
        };
        let long = fits(true);
        let mut hints = Vec::new();
        let mut width = 0;
        for (key, l, s) in &keys {
            let what = if long { *l } else { *s };
            width += key.chars().count() + 1 + what.chars().count();
            if width > body.width as usize {
                break;
            }
            width += 2;
            hints.push(Span::styled(key.clone(), theme.accent));
            hints.push(Span::styled(format!(" {what}  "), theme.muted));
        }
        frame.render_widget(Paragraph::new(Line::from(hints)), Rect { y: body.y + body.height - 1, height: 1, ..body });
    }
}

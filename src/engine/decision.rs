//! A person's decision (`HumanAction`) in words and its check, in one place: the engine checks
//! each decision when it plans with it, and the workbench and `gepa-tui steer` call the same check
//! before they send one, so a rule and its message are written once.

use super::event::{GuideExample, HumanAction};
use super::state::RunState;
use crate::project::config::ReviewPolicy;
use crate::project::{Candidate, Split};
use crate::text::{one_line, truncate_chars};

impl HumanAction {
    /// A decision in a word or two ("approve", "veto", "edit, then approve").
    pub fn word(&self) -> &'static str {
        match self {
            HumanAction::Approve { .. } => "approve",
            HumanAction::Veto { .. } => "veto",
            HumanAction::Edit { .. } => "edit, then approve",
            HumanAction::AddCandidate { .. } => "add a candidate",
            HumanAction::SetPolicy { .. } => "review policy",
            HumanAction::ExcludeExample { .. } => "exclude an example",
            HumanAction::FixExample { .. } => "fix an example",
            HumanAction::Guide { .. } => "guide",
            HumanAction::Protect { .. } => "protect",
        }
    }

    /// The decision as something sent ("approval of item 3", "guidance for a reflection on #2"):
    /// what a status line says is on its way. Untrusted text is made safe.
    pub fn noun(&self) -> String {
        match self {
            HumanAction::Approve { item } => format!("approval of item {item}"),
            HumanAction::Veto { item, reason: Some(_) } => format!("veto of item {item} (with its reason)"),
            HumanAction::Veto { item, reason: None } => format!("veto of item {item}"),
            HumanAction::Edit { item, .. } => format!("edited texts of item {item}"),
            HumanAction::AddCandidate { note, .. } => format!("new candidate ({})", one_line(note)),
            HumanAction::SetPolicy { mutations, merges } => {
                format!("review policy (mutations {}, merges {})", policy_word(*mutations), policy_word(*merges))
            }
            HumanAction::ExcludeExample { .. } | HumanAction::FixExample { .. } => self.describe(),
            HumanAction::Guide { candidate, example: Some(e), .. } => format!(
                "guidance for a reflection on #{candidate} (with {} example {})",
                e.split.as_str(),
                one_line(&e.id)
            ),
            HumanAction::Guide { candidate, .. } => format!("guidance for a reflection on #{candidate}"),
            HumanAction::Protect { component, .. } => format!("protection of text in {}", one_line(component)),
        }
    }

    /// The decision as taken, on one line ("item 3 vetoed: too long", "val example va-03
    /// excluded: label is wrong"): what the decision log and the headless progress say.
    /// Untrusted text is made safe.
    pub fn describe(&self) -> String {
        let quoted = |t: &str| format!("\"{}\"", truncate_chars(&one_line(t), 60));
        match self {
            HumanAction::Approve { item } => format!("item {item} approved"),
            HumanAction::Veto { item, reason: Some(r) } => format!("item {item} vetoed: {}", one_line(r)),
            HumanAction::Veto { item, reason: None } => format!("item {item} vetoed"),
            HumanAction::Edit { item, .. } => format!("item {item} edited, then approved"),
            HumanAction::AddCandidate { note, parents, .. } if parents.is_empty() => one_line(note),
            HumanAction::AddCandidate { note, parents, .. } => {
                let from: Vec<String> = parents.iter().map(|p| format!("#{p}")).collect();
                format!("{} (from {})", one_line(note), from.join("+"))
            }
            HumanAction::SetPolicy { mutations, merges } => {
                format!("policy: mutations {}, merges {}", policy_word(*mutations), policy_word(*merges))
            }
            HumanAction::ExcludeExample { split, example, reason } => {
                format!("{} example {} excluded: {}", split.as_str(), one_line(example), one_line(reason))
            }
            HumanAction::FixExample { split, example, field, value } => format!(
                "{} example {}: {} corrected to {}",
                split.as_str(),
                one_line(example),
                one_line(field),
                truncate_chars(&one_line(&value_text(value)), 60)
            ),
            HumanAction::Guide { candidate, note, example, .. } => {
                let with = example
                    .as_ref()
                    .map(|e| format!(" with {} example {}", e.split.as_str(), one_line(&e.id)))
                    .unwrap_or_default();
                format!("a reflection on #{candidate}{with}, guided by {}", quoted(note))
            }
            HumanAction::Protect { component, text } => {
                format!("{} protected in {}", quoted(text), one_line(component))
            }
        }
    }

    /// Whether the run whose state is `view` takes this decision now (`added`: texts that
    /// decisions sent before it add). The workbench and `gepa-tui steer` ask before they send; the
    /// engine asks again when it plans (`check_planned`).
    pub fn check(&self, view: &RunState, added: &[Candidate]) -> Result<(), String> {
        self.check_planned(view, view.candidates.len(), added)
    }

    /// Whether the planner takes this decision on `view`: `committed` candidates exist for good
    /// (a guide names one of them), `added` are texts earlier decisions of the same batch add.
    pub fn check_planned(&self, view: &RunState, committed: usize, added: &[Candidate]) -> Result<(), String> {
        let a = self;
        let texts_ok = |texts: &Candidate| -> Result<(), String> {
            let mut want: Vec<&String> = view.components.iter().collect();
            want.sort();
            if texts.keys().collect::<Vec<_>>() != want {
                return Err(format!("texts must have exactly the components {:?}", view.components));
            }
            Ok(())
        };
        match a {
            HumanAction::Approve { item } | HumanAction::Veto { item, .. } => {
                view.review_item(*item).map(|_| ()).ok_or_else(|| format!("no pending review item {item}"))
            }
            HumanAction::Edit { item, texts } => {
                view.review_item(*item).ok_or_else(|| format!("no pending review item {item}"))?;
                texts_ok(texts)
            }
            HumanAction::AddCandidate { texts, parents, .. } => {
                if let Some(p) = parents.iter().find(|p| **p >= view.candidates.len()) {
                    return Err(format!("no candidate {p}"));
                }
                texts_ok(texts)
            }
            HumanAction::SetPolicy { .. } => Ok(()),
            HumanAction::ExcludeExample { .. } | HumanAction::FixExample { .. } => view.check_data_action(a),
            HumanAction::Guide { candidate, note, example, component } => {
                if *candidate >= committed {
                    return Err(format!(
                        "no candidate {candidate} (the run has {committed}: 0 to {})",
                        committed.max(1) - 1
                    ));
                }
                if note.trim().is_empty() {
                    return Err("a guide needs a note: what should the reflection take into account?".into());
                }
                if let Some(c) = component.as_ref().filter(|c| !view.components.contains(c)) {
                    return Err(format!("no component `{c}` (the components are {})", view.components.join(", ")));
                }
                match example {
                    Some(GuideExample { split: Split::Test, .. }) => {
                        Err("test examples are never shown to the optimizer; guide with a train or val example".into())
                    }
                    Some(GuideExample { split, id }) => {
                        let ids = if *split == Split::Val { &view.val_ids } else { &view.train_ids };
                        if view.data.is_excluded(*split, id) {
                            Err(format!(
                                "{} example `{id}` is excluded from this run; guide with an example it still uses",
                                split.as_str()
                            ))
                        } else if ids.contains(id) {
                            Ok(())
                        } else {
                            Err(format!("no {} example `{id}` in this run", split.as_str()))
                        }
                    }
                    None => Ok(()),
                }
            }
            HumanAction::Protect { component, text } => {
                if !view.components.contains(component) {
                    return Err(format!(
                        "no component `{component}` (the components are {})",
                        view.components.join(", ")
                    ));
                }
                if text.trim().is_empty() {
                    return Err("nothing to protect: the text is empty".into());
                }
                if crate::project::markers::has_markers(text) {
                    return Err("the text to protect holds a keep marker; give the plain text".into());
                }
                if view.protected.get(component).is_some_and(|spans| spans.contains(text)) {
                    return Err(format!("that text of `{component}` is already protected"));
                }
                let has = |texts: &Candidate| texts.get(component).is_some_and(|t| t.contains(text.as_str()));
                if view.candidates.iter().any(|c| has(&c.texts)) || added.iter().any(has) {
                    Ok(())
                } else {
                    Err(format!(
                        "\"{}\" is not in component `{component}` of any candidate; protect text exactly as a candidate has it",
                        crate::text::truncate_chars(&text.replace('\n', " "), 60)
                    ))
                }
            }
        }
    }
}

/// A review policy in a word ("auto", "approve").
pub fn policy_word(p: ReviewPolicy) -> &'static str {
    match p {
        ReviewPolicy::Auto => "auto",
        ReviewPolicy::Approve => "approve",
    }
}

/// A field's value as a person reads it: strings as they are (quoted), other JSON compact.
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

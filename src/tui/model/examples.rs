//! The examples as the run uses them: ids, reference answers, exclusions and fixes by stage.

use super::Model;
use crate::engine::event::HumanAction;
use crate::project::{Example, Split};

impl Model {
    /// The id of example `i` of a split, as the run lists them (train or val).
    pub fn example_id(&self, split: crate::project::Split, i: usize) -> Option<&str> {
        let ids = match split {
            crate::project::Split::Train => &self.state.train_ids,
            crate::project::Split::Val => &self.state.val_ids,
            crate::project::Split::Test => &self.state.test_ids,
        };
        ids.get(i).map(String::as_str)
    }

    /// Example `id` of a split, when the project is at hand (as the data file has it).
    pub fn example(&self, split: Split, id: &str) -> Option<&Example> {
        self.examples.get(&(split, id.to_string()))
    }

    /// The reference answer of an example, when known (as the run uses it: corrected when a
    /// person fixed it). An evaluator that compares several fields (`json_keys`, a pattern with
    /// placeholders) has them all, `name: value` each.
    pub fn expected(&self, split: Split, example_id: &str) -> Option<String> {
        if let Some(field) = self.expected_field.as_deref() {
            return self.committed_field(split, example_id, field);
        }
        let parts: Vec<String> = self
            .reference_fields
            .iter()
            .filter_map(|f| self.committed_field(split, example_id, f).map(|v| format!("{f}: {v}")))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// A field's text as the run uses it: a committed fix, else the data file's.
    fn committed_field(&self, split: Split, example_id: &str, field: &str) -> Option<String> {
        if let Some(f) = self.state.data.fixes_of(split, example_id).find(|f| f.field == field) {
            return Some(match &f.new {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        self.example(split, example_id)?.field_text(field)
    }

    /// What a person did to an example, or asked and the engine has not committed yet.
    pub fn example_change(&self, split: Split, id: &str) -> ExampleChange {
        let mut out = ExampleChange::default();
        if let Some(e) = self.state.data.exclusion(split, id) {
            out.excluded = Some((e.reason.clone(), Stage::Committed));
        }
        for f in self.state.data.fixes_of(split, id) {
            out.fixes.push((f.field.clone(), f.new.clone(), Stage::Committed));
        }
        let later = self
            .uncommitted_actions()
            .map(|(r, a)| (Stage::Applied(r), a))
            .chain(self.sent.iter().map(|a| (Stage::Sent, a)));
        for (stage, a) in later {
            match a {
                HumanAction::ExcludeExample { split: s, example, reason }
                    if *s == split && example == id && out.excluded.is_none() =>
                {
                    out.excluded = Some((reason.clone(), stage));
                }
                HumanAction::FixExample { split: s, example, field, value } if *s == split && example == id => {
                    out.fixes.retain(|(f, _, _)| f != field);
                    out.fixes.push((field.clone(), value.clone(), stage));
                }
                _ => {}
            }
        }
        out
    }

    /// The fields a fix of `id` offers, the evaluator's reference fields first.
    pub fn fix_fields(&self, split: Split, id: &str) -> Vec<String> {
        let mut out: Vec<String> = self.reference_fields.clone();
        if let Some(ex) = self.example(split, id) {
            for k in ex.fields.keys() {
                if k != "id" && !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
        out
    }

    /// A field's value as the run will use it (a fix sent or taken, else the data file's).
    pub fn field_value(&self, split: Split, id: &str, field: &str) -> Option<serde_json::Value> {
        let change = self.example_change(split, id);
        if let Some((_, v, _)) = change.fixes.iter().find(|(f, _, _)| f == field) {
            return Some(v.clone());
        }
        self.example(split, id)?.fields.get(field).cloned()
    }
}

/// Where a person's decision is: sent to the engine, taken in a round not yet committed, or
/// committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Sent,
    Applied(u64),
    Committed,
}

/// An example's exclusion (its reason) and corrected fields, each with its stage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExampleChange {
    pub excluded: Option<(String, Stage)>,
    pub fixes: Vec<(String, serde_json::Value, Stage)>,
}

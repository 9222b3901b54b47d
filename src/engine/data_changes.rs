//! What a person changed in a run's data (examples excluded, fields corrected), as the fold holds
//! it and as result.json reports it. The types only: `data_fixes` folds the decisions into them.

use crate::project::{Example, Split};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// An example a person took out of the run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExcludedExample {
    pub split: Split,
    pub id: String,
    pub reason: String,
}

/// A corrected field of an example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFix {
    pub split: Split,
    pub id: String,
    pub field: String,
    /// What the data file holds (None: the example has no such field), as recorded when the fix
    /// committed.
    #[serde(default)]
    pub old: Option<Value>,
    /// What the run uses instead.
    pub new: Value,
}

/// What a person changed in the run's data, as the fold holds it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataChanges {
    /// In the order they were taken.
    pub excluded: Vec<ExcludedExample>,
    /// One per (split, example, field): its latest value; in the order first taken.
    pub fixes: Vec<DataFix>,
    /// Indices into `val_ids` of the excluded val examples.
    pub excluded_val: BTreeSet<usize>,
    /// Fixes taken per example: the evaluation cache keeps evaluations apart by it.
    pub(super) revisions: BTreeMap<(Split, String), u32>,
    /// The first minibatch of the sampler's era after the last train exclusion.
    pub train_era: Option<u64>,
}

impl DataChanges {
    pub fn is_empty(&self) -> bool {
        self.excluded.is_empty() && self.fixes.is_empty()
    }

    pub fn is_excluded(&self, split: Split, id: &str) -> bool {
        self.excluded.iter().any(|e| e.split == split && e.id == id)
    }

    pub fn exclusion(&self, split: Split, id: &str) -> Option<&ExcludedExample> {
        self.excluded.iter().find(|e| e.split == split && e.id == id)
    }

    /// The fixes of one example, in the order first taken.
    pub fn fixes_of<'a>(&'a self, split: Split, id: &'a str) -> impl Iterator<Item = &'a DataFix> + 'a {
        self.fixes.iter().filter(move |f| f.split == split && f.id == id)
    }

    /// How many fixes were taken on an example (0: as in the file).
    pub fn revision(&self, split: Split, id: &str) -> u32 {
        self.revisions.get(&(split, id.to_string())).copied().unwrap_or(0)
    }

    /// Examples fixed (at least one field), over both splits.
    pub fn fixed_examples(&self) -> usize {
        self.fixes.iter().map(|f| (f.split, f.id.as_str())).collect::<BTreeSet<_>>().len()
    }

    /// The example as the run sees it: its fixed fields replaced.
    pub fn apply<'a>(&self, split: Split, ex: &'a Example) -> Cow<'a, Example> {
        let mut fixes = self.fixes_of(split, &ex.id).peekable();
        if fixes.peek().is_none() {
            return Cow::Borrowed(ex);
        }
        let mut out = ex.clone();
        for f in fixes {
            out.fields.insert(f.field.clone(), f.new.clone());
        }
        Cow::Owned(out)
    }

    /// A split as the run evaluates it now: excluded examples left out, fixed fields replaced.
    pub fn effective<'a>(&self, split: Split, examples: &'a [Example]) -> Vec<Cow<'a, Example>> {
        examples.iter().filter(|e| !self.is_excluded(split, &e.id)).map(|e| self.apply(split, e)).collect()
    }
}

/// What `result.json` says a person changed in the data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DataReport {
    /// Examples taken out of the run, with the reason given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_examples: Vec<ExcludedExample>,
    /// Corrected fields: the data file's value and the one the run used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_fixes: Vec<DataFix>,
}

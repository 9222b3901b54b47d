//! A project folder: `gepa.toml`, the seed components, and the JSONL data splits.

pub mod config;
pub mod data;
pub mod error;
pub mod evaluator;
mod load;
pub mod markers;
pub mod template;

pub use config::ProjectConfig;
pub(crate) use data::{json_path, json_path_in_map};
pub use error::ProjectError;

/// The folder of further seed candidates inside a project folder, one `seeds/<name>/` each.
pub const SEEDS_DIR: &str = "seeds";

/// The config file's name inside a project folder.
pub const CONFIG_FILE: &str = "gepa.toml";

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A candidate maps component name -> text.
pub type Candidate = BTreeMap<String, String>;

/// One line of a JSONL split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Example {
    /// The `id` field if present (string or number), else `line-<n>`; stable across runs.
    pub id: String,
    /// 1-based line number in the file it came from.
    pub line: usize,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Example {
    /// A field rendered as text: strings as they are, other JSON values as compact JSON.
    pub fn field_text(&self, name: &str) -> Option<String> {
        self.fields.get(name).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// A loaded, validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder (canonical).
    pub root: PathBuf,
    pub config: ProjectConfig,
    /// The raw text of gepa.toml (copied into each run folder).
    pub config_text: String,
    /// Where each key of gepa.toml is written, for problems found after loading.
    pub config_lines: config::KeyLines,
    /// The evaluator `[evaluator]` defines, built while loading.
    pub evaluator: evaluator::Evaluator,
    /// The seed candidate: each component's file text, keep markers taken out.
    pub seed: Candidate,
    /// Further seed candidates, from `seeds/<name>/` (one file per component, named like the
    /// component files), sorted by name: scored on val with the first and on the frontier.
    pub seeds: Vec<(String, Candidate)>,
    /// What the component files mark as protected (`<<keep>>` … `<</keep>>`), per component.
    pub protected: markers::Protected,
    pub train: Vec<Example>,
    pub val: Vec<Example>,
    pub test: Vec<Example>,
}

impl Project {
    /// Loads and validates the project in `dir`: parses gepa.toml, reads the component files and
    /// the data splits, and checks every template, path and name. All problems are reported
    /// together (`ProjectError::Several`), each with its file and line.
    pub fn load(dir: &std::path::Path) -> Result<Project, ProjectError> {
        load::load(dir)
    }

    pub fn split(&self, split: Split) -> &[Example] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    /// Component names in config order.
    pub fn component_names(&self) -> Vec<String> {
        self.config.components.iter().map(|c| c.name.clone()).collect()
    }

    pub fn gepa_dir(&self) -> PathBuf {
        self.root.join(".gepa")
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.gepa_dir().join("runs")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.gepa_dir().join("cache")
    }

    /// A candidate from a folder holding one file per component, named like the component files
    /// (`prompts/instruction.md` -> `<dir>/instruction.md`): extra seeds, or one added mid-run.
    /// Keep markers are taken out of the texts and returned as the spans they protect.
    pub fn candidate_from_folder(
        &self,
        dir: &std::path::Path,
    ) -> Result<(Candidate, markers::Protected), ProjectError> {
        candidate_from_folder(&self.config.components, dir)
    }

    /// The bound on growth per mutation of a component, in characters (`max_growth`).
    pub fn max_growth(&self, component: &str) -> Option<usize> {
        self.config.components.iter().find(|c| c.name == component)?.max_growth.map(|g| g.max(0) as usize)
    }
}

/// `Project::candidate_from_folder` for the components of a config; every file that cannot be
/// read, and every keep marker that does not pair up, is reported, each naming its file.
pub fn candidate_from_folder(
    components: &[config::ComponentConfig],
    dir: &std::path::Path,
) -> Result<(Candidate, markers::Protected), ProjectError> {
    if !dir.is_dir() {
        return Err(ProjectError::NoSuchFolder { dir: dir.to_path_buf() });
    }
    let mut texts = Candidate::new();
    let mut protected = markers::Protected::new();
    let mut errors = Vec::new();
    for c in components {
        let name = std::path::Path::new(&c.file)
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| c.name.clone().into());
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => match markers::strip_markers(&text) {
                Ok((plain, spans)) => {
                    texts.insert(c.name.clone(), plain);
                    if !spans.is_empty() {
                        protected.insert(c.name.clone(), spans);
                    }
                }
                Err(e) => errors.push(ProjectError::data(&path.display().to_string(), Some(e.line), e.message)),
            },
            Err(source) => {
                errors.push(ProjectError::Io { path: format!("{} (component `{}`)", path.display(), c.name), source })
            }
        }
    }
    ProjectError::from_list(errors)?;
    Ok((texts, protected))
}

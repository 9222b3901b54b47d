//! Why a project folder cannot be used. Every message names the file (and line, when there is one)
//! and says what was expected, so the user can fix it without reading our source.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{}: no gepa.toml in this folder (write a starter project with `gepa-tui init {}`)", .dir.display(), .dir.display())]
    NotAProject { dir: PathBuf },
    #[error("{}: no such folder", .dir.display())]
    NoSuchFolder { dir: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `gepa.toml` does not parse, or names something that does not make sense.
    #[error("{}", at(.file, *.line, .message))]
    Config { file: String, line: Option<usize>, message: String },
    /// A data split (JSONL) has a bad line or does not fit the config.
    #[error("{}", at(.file, *.line, .message))]
    Data { file: String, line: Option<usize>, message: String },
    /// Several independent problems, each on its own line.
    #[error("{}", join(.0))]
    Several(Vec<ProjectError>),
}

fn at(file: &str, line: Option<usize>, message: &str) -> String {
    match line {
        Some(line) => format!("{file}:{line}: {message}"),
        None => format!("{file}: {message}"),
    }
}

fn join(errors: &[ProjectError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

impl ProjectError {
    pub(crate) fn config(line: Option<usize>, message: impl Into<String>) -> Self {
        ProjectError::Config { file: super::CONFIG_FILE.to_string(), line, message: message.into() }
    }

    pub(crate) fn data(file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        ProjectError::Data { file: file.to_string(), line, message: message.into() }
    }

    /// One error from many: none => Ok, one => itself, more => `Several`.
    pub(crate) fn from_list(mut errors: Vec<ProjectError>) -> Result<(), ProjectError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ProjectError::Several(errors)),
        }
    }

    /// Each problem as one line of text (a `Several` flattened), for reports that list them.
    pub fn problems(&self) -> Vec<String> {
        match self {
            ProjectError::Several(list) => list.iter().flat_map(|e| e.problems()).collect(),
            other => vec![other.to_string()],
        }
    }
}

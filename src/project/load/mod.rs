//! Loading and validating a project folder. Every problem found is collected (not just the first),
//! each naming its file, line and key, so one `gepa-tui check` shows everything to fix.

mod evaluator;
mod models;
mod optimizer;
mod seeds;
mod system;

use super::config::{self, strsim_best, KeyLines, ProjectConfig};
use super::error::ProjectError;
use super::{data, Candidate, Example, Project, CONFIG_FILE};
use std::path::{Component, Path, PathBuf};

pub(super) fn load(dir: &Path) -> Result<Project, ProjectError> {
    let root = dir.canonicalize().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ProjectError::NoSuchFolder { dir: dir.to_path_buf() },
        _ => ProjectError::Io { path: dir.display().to_string(), source },
    })?;
    if !root.is_dir() {
        return Err(ProjectError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::other("not a folder"),
        });
    }
    let config_text = match std::fs::read_to_string(root.join(CONFIG_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProjectError::NotAProject { dir: dir.to_path_buf() })
        }
        Err(source) => return Err(ProjectError::Io { path: CONFIG_FILE.to_string(), source }),
    };
    let (config, keys) = config::parse_with_lines(&config_text)?;
    let mut v = Validator { root: root.clone(), keys, errors: Vec::new() };
    let (seed, mut protected) = v.components(&config).unzip();
    let seeds = v.seeds(&config, seed.as_ref(), protected.get_or_insert_with(Default::default));
    let train = v.split(&config.data.train, "data.train", true);
    let val = v.split(&config.data.val, "data.val", true);
    let test = match &config.data.test {
        Some(path) => v.split(path, "data.test", false),
        None => Some(Vec::new()),
    };
    // Placeholders naming example fields are checked against the first train example.
    let fields: Option<Vec<String>> =
        train.as_ref().and_then(|t| t.first()).map(|e| e.fields.keys().cloned().collect());
    v.models(&config);
    v.system(&config, fields.as_deref());
    let all_examples: Option<[(&str, &[Example]); 3]> = match (&train, &val, &test) {
        (Some(tr), Some(va), Some(te)) => Some([
            (config.data.train.as_str(), tr.as_slice()),
            (config.data.val.as_str(), va.as_slice()),
            (config.data.test.as_deref().unwrap_or(""), te.as_slice()),
        ]),
        _ => None,
    };
    let evaluator = v.evaluator(&config, fields.as_deref(), all_examples.as_ref());
    v.optimizer(&config);
    v.reflection(&config);
    v.run_store();
    ProjectError::from_list(v.errors)?;
    // Built whenever nothing was wrong with it (`Validator::evaluator`).
    let evaluator = evaluator.ok_or_else(|| ProjectError::config(None, "[evaluator] could not be built"))?;
    Ok(Project {
        root,
        config,
        config_text,
        config_lines: v.keys,
        evaluator,
        seed: seed.unwrap_or_default(),
        seeds,
        protected: protected.unwrap_or_default(),
        train: train.unwrap_or_default(),
        val: val.unwrap_or_default(),
        test: test.unwrap_or_default(),
    })
}

/// A component, step or other name usable in a `{{placeholder}}`.
fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphanumeric() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

struct Validator {
    root: PathBuf,
    keys: KeyLines,
    errors: Vec<ProjectError>,
}

impl Validator {
    fn problem(&mut self, key_path: &str, message: impl Into<String>) {
        let line = self.keys.line(key_path);
        self.errors.push(ProjectError::config(line, message));
    }

    /// Resolves a path from gepa.toml to a file inside the project folder.
    fn resolve(&mut self, rel: &str, key_path: &str, what: &str) -> Option<PathBuf> {
        match resolve_inside(&self.root, rel) {
            Ok(p) => Some(p),
            Err(why) => {
                self.problem(key_path, format!("{what}: {why}"));
                None
            }
        }
    }

    fn read_text(&mut self, rel: &str, key_path: &str, what: &str) -> Option<String> {
        let path = self.resolve(rel, key_path, what)?;
        match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => Some(t),
                Err(_) => {
                    self.errors.push(ProjectError::data(rel, None, "is not UTF-8 text; save it as UTF-8"));
                    None
                }
            },
            Err(source) => {
                self.errors.push(ProjectError::Io { path: rel.to_string(), source });
                None
            }
        }
    }

    /// The seed (each component file's text, keep markers taken out) and the spans the markers
    /// protect.
    fn components(&mut self, config: &ProjectConfig) -> Option<(Candidate, super::markers::Protected)> {
        if config.components.is_empty() {
            self.problem("components", "no components: add at least one [[components]] with a name and a file");
            return None;
        }
        let mut seed = Candidate::new();
        let mut protected = super::markers::Protected::new();
        let mut ok = true;
        for (i, c) in config.components.iter().enumerate() {
            let at = format!("components[{i}]");
            if !is_ident(&c.name) {
                self.problem(
                    &format!("{at}.name"),
                    format!(
                        "component name \"{}\" must be a single word (letters, digits, `_`, `-`): it is used as {{{{{}}}}} in templates",
                        c.name, c.name
                    ),
                );
                ok = false;
                continue;
            }
            if seed.contains_key(&c.name) {
                self.problem(
                    &format!("{at}.name"),
                    format!("component `{}` is defined twice; names must be unique", c.name),
                );
                ok = false;
                continue;
            }
            if let Some(g) = c.max_growth.filter(|g| *g < 0) {
                self.problem(
                    &format!("{at}.max_growth"),
                    format!(
                        "[[components]] `{}`: max_growth = {g} must be 0 or more (the characters a mutation may add to the text; 0 = it may not grow)",
                        c.name
                    ),
                );
                ok = false;
            }
            match self.read_text(&c.file, &format!("{at}.file"), &format!("component `{}`", c.name)) {
                Some(text) => match super::markers::strip_markers(&text) {
                    Ok((plain, spans)) => {
                        seed.insert(c.name.clone(), plain);
                        if !spans.is_empty() {
                            protected.insert(c.name.clone(), spans);
                        }
                    }
                    Err(e) => {
                        self.errors.push(ProjectError::data(
                            &c.file,
                            Some(e.line),
                            format!("component `{}`: {}", c.name, e.message),
                        ));
                        ok = false;
                    }
                },
                None => ok = false,
            }
        }
        ok.then_some((seed, protected))
    }

    fn split(&mut self, rel: &str, key_path: &str, required: bool) -> Option<Vec<Example>> {
        let name = key_path.trim_start_matches("data.");
        let text = self.read_text(rel, key_path, &format!("[data] {name}"))?;
        match data::parse_jsonl(rel, &text) {
            Ok(examples) if examples.is_empty() && required => {
                self.errors.push(ProjectError::data(
                    rel,
                    None,
                    format!("the {name} split has no examples; add one JSON object per line"),
                ));
                None
            }
            Ok(examples) => Some(examples),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// `.gepa/` is written to: a project folder that ships it (or its runs/ or cache/) as a symlink
    /// out of the folder would have a run write wherever that points.
    fn run_store(&mut self) {
        for rel in [".gepa", ".gepa/runs", ".gepa/cache"] {
            let path = self.root.join(rel);
            let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            if !is_link {
                continue;
            }
            let target = path.canonicalize().ok();
            if target.as_ref().is_none_or(|t| !t.starts_with(&self.root)) {
                let to = target.map(|t| format!(" to {}", t.display())).unwrap_or_default();
                self.errors.push(ProjectError::data(
                    rel,
                    None,
                    format!(
                        "is a symlink{to}, outside the project folder; gepa-tui keeps its runs and cache inside the project: remove the link"
                    ),
                ));
            }
        }
    }

    fn reflection(&mut self, config: &ProjectConfig) {
        if let Some(file) = &config.reflection.template_file {
            self.reflection_template(file, "reflection.template_file", "[reflection] template_file");
        }
        for (i, c) in config.components.iter().enumerate() {
            if let Some(file) = &c.template_file {
                let what = format!("[[components]] `{}` template_file", c.name);
                self.reflection_template(file, &format!("components[{i}].template_file"), &what);
            }
        }
    }

    /// Reads a reflection template file and checks it has the placeholders gepa's have.
    fn reflection_template(&mut self, file: &str, key: &str, what: &str) {
        let Some(text) = self.read_text(file, key, what) else {
            return;
        };
        for tag in ["<curr_instructions>", "<inputs_outputs_feedback>"] {
            if !text.contains(tag) {
                self.errors.push(ProjectError::data(
                    file,
                    None,
                    format!("the reflection template must contain {tag} (where the current text and the examples go)"),
                ));
            }
        }
    }
}

/// Resolves `rel` inside `root` (canonical), refusing absolute paths, `..` that climbs out, and
/// symlinks that lead outside. The error says why, in words for the user.
pub(crate) fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf, String> {
    if rel.trim().is_empty() {
        return Err("the path is empty".to_string());
    }
    let path = Path::new(rel);
    if path.is_absolute() || path.has_root() {
        return Err(format!("\"{rel}\" must be a path relative to the project folder"));
    }
    let mut depth: i64 = 0;
    for c in path.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::Prefix(_) | Component::RootDir => {
                return Err(format!("\"{rel}\" must be a path relative to the project folder"))
            }
        }
        if depth < 0 {
            return Err(format!("\"{rel}\" is outside the project folder; keep every file inside it"));
        }
    }
    let joined = root.join(path);
    let canonical = match joined.canonicalize() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hint = similar_file(root, path).map(|s| format!("; did you mean \"{s}\"?")).unwrap_or_default();
            return Err(format!("file \"{rel}\" not found in the project folder{hint}"));
        }
        Err(e) => return Err(format!("cannot open \"{rel}\": {e}")),
    };
    if !canonical.starts_with(root) {
        return Err(format!(
            "\"{rel}\" leads outside the project folder (through a symlink, to {}); keep every file inside it",
            canonical.display()
        ));
    }
    if !canonical.is_file() {
        return Err(format!("\"{rel}\" is not a file"));
    }
    Ok(canonical)
}

/// A file next to where `rel` points whose name is close to it, as the user would write it.
fn similar_file(root: &Path, rel: &Path) -> Option<String> {
    let name = rel.file_name()?.to_str()?;
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let dir = root.join(parent_rel);
    let names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    let best = strsim_best(name, &names)?;
    let p = parent_rel.join(best);
    Some(p.to_string_lossy().replace('\\', "/"))
}

impl Project {
    /// Problems that do not stop `eval` but stop an optimization run (e.g. no reflection model).
    pub fn optimization_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.config.models.contains_key("reflection") {
            let at = match self.config_lines.line("models") {
                Some(l) => format!("{CONFIG_FILE}:{l}"),
                None => CONFIG_FILE.to_string(),
            };
            out.push(format!(
                "{at}: no [models.reflection]: optimizing needs a model that reads traces and rewrites prompts (it may be the same model as [models.task])"
            ));
        }
        out
    }

    /// The reflection prompt template from `[reflection] template_file`, if one is set.
    pub fn reflection_template(&self) -> Result<Option<String>, ProjectError> {
        let Some(file) = &self.config.reflection.template_file else {
            return Ok(None);
        };
        self.template_text(file, "[reflection] template_file").map(Some)
    }

    /// The text of a reflection template file named in gepa.toml (`what` says where).
    pub fn template_text(&self, file: &str, what: &str) -> Result<String, ProjectError> {
        let path =
            resolve_inside(&self.root, file).map_err(|why| ProjectError::config(None, format!("{what}: {why}")))?;
        std::fs::read_to_string(&path).map_err(|source| ProjectError::Io { path: file.to_string(), source })
    }
}

#[cfg(test)]
mod tests;

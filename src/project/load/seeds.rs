//! Several seed candidates (gepa #134): each folder `seeds/<name>/` beside `prompts/` holds one
//! starting candidate, a file per component named like the component's own file.

use super::Validator;
use crate::project::config::{strsim_best, ProjectConfig};
use crate::project::error::ProjectError;
use crate::project::markers::Protected;
use crate::project::{candidate_from_folder, Candidate, SEEDS_DIR};

impl Validator {
    /// The extra seeds, by folder name (sorted: that order gives their candidate ids after the
    /// component files' seed); the spans their keep markers protect join `protected`.
    pub(super) fn seeds(
        &mut self,
        config: &ProjectConfig,
        seed: Option<&Candidate>,
        protected: &mut Protected,
    ) -> Vec<(String, Candidate)> {
        let mut out = Vec::new();
        let dir = self.root.join(SEEDS_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else { return out };
        let mut folders: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        folders.sort();
        let files: Vec<String> = config
            .components
            .iter()
            .filter_map(|c| std::path::Path::new(&c.file).file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        for folder in folders {
            let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let rel = format!("{SEEDS_DIR}/{name}");
            // A file that names no component would be silently left out: say so.
            for f in std::fs::read_dir(&folder).into_iter().flatten().filter_map(|e| e.ok()) {
                let file = f.file_name().to_string_lossy().into_owned();
                if f.path().is_file() && !files.contains(&file) {
                    let hint = strsim_best(&file, &files).map(|b| format!("; did you mean `{b}`?")).unwrap_or_default();
                    self.errors.push(ProjectError::data(
                        &format!("{rel}/{file}"),
                        None,
                        format!(
                            "is not a component file: a seed folder holds one file per component, named like its file ({}){hint}",
                            files.join(", ")
                        ),
                    ));
                }
            }
            match candidate_from_folder(&config.components, &folder) {
                Ok((texts, spans)) => {
                    if seed == Some(&texts) || out.iter().any(|(_, t)| *t == texts) {
                        self.errors.push(ProjectError::data(
                            &rel,
                            None,
                            "holds the same texts as another seed: remove it (a copy adds nothing)",
                        ));
                        continue;
                    }
                    for (component, s) in spans {
                        let kept: &mut Vec<String> = protected.entry(component).or_default();
                        kept.extend(s.into_iter().filter(|x| !kept.contains(x)).collect::<Vec<_>>());
                    }
                    out.push((name, texts));
                }
                Err(e) => self.errors.push(e),
            }
        }
        out
    }
}

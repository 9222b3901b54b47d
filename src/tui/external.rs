//! Editing texts in the user's `$EDITOR`: one temporary file per component, named like the
//! component's file so the editor picks the right syntax. The caller suspends the terminal around
//! `edit` (gitui's externaleditor.rs does the same). Whatever happens, the user's text is not lost:
//! when the editor fails, the files stay where they are and what they hold comes back.

use crate::project::config::ComponentConfig;
use crate::project::Candidate;
use crate::tui::outbox::{ExternalEdit, ExternalOutcome};
use std::path::{Path, PathBuf};

/// The editor command: `$VISUAL`, else `$EDITOR`, else `vi`, split on whitespace (so
/// `EDITOR="code --wait"` works).
pub fn editor_command() -> Vec<String> {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|parts| !parts.is_empty())
        .unwrap_or_else(|| vec!["vi".to_string()])
}

/// A file name for a component: its name plus its file's extension (`instruction.md`).
fn file_name(name: &str, components: &[ComponentConfig]) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let ext = components
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| Path::new(&c.file).extension().map(|e| e.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "txt".into());
    format!("{safe}.{ext}")
}

/// A fresh folder for this edit under the system's temp folder.
fn scratch_dir() -> std::io::Result<PathBuf> {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("gepa-tui-edit-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Writes the texts to files, runs `command` on them (all at once, in component order) and reads
/// them back. The terminal must already be handed over to the editor.
pub fn edit(request: &ExternalEdit, components: &[ComponentConfig], command: &[String]) -> ExternalOutcome {
    let mut texts: Candidate = request.texts.clone();
    let dir = match scratch_dir() {
        Ok(d) => d,
        Err(e) => return ExternalOutcome { texts, error: Some(format!("cannot make a temporary folder: {e}")) },
    };
    let mut files = Vec::new();
    for name in &request.names {
        let path = dir.join(file_name(name, components));
        if let Err(e) = std::fs::write(&path, request.texts.get(name).map(String::as_str).unwrap_or("")) {
            return ExternalOutcome { texts, error: Some(format!("cannot write {}: {e}", path.display())) };
        }
        files.push((name.clone(), path));
    }
    let Some((program, args)) = command.split_first() else {
        return ExternalOutcome { texts, error: Some("no editor command".into()) };
    };
    let status = std::process::Command::new(program).args(args).args(files.iter().map(|(_, p)| p)).status();
    let mut error = match status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`{}` exited with {s}", command.join(" "))),
        Err(e) => Some(format!("cannot start the editor `{}` ($VISUAL / $EDITOR): {e}", command.join(" "))),
    };
    for (name, path) in &files {
        match std::fs::read_to_string(path) {
            // Editors add a final newline the prompt did not have; drop exactly that one.
            Ok(t) => {
                let orig_nl = request.texts.get(name).is_some_and(|o| o.ends_with('\n'));
                let t = if !orig_nl { t.strip_suffix('\n').map(str::to_string).unwrap_or(t) } else { t };
                texts.insert(name.clone(), t);
            }
            Err(e) => {
                error.get_or_insert_with(|| format!("cannot read back {}: {e}", path.display()));
            }
        }
    }
    if let Some(e) = error.as_mut() {
        e.push_str(&format!(" (the files are kept in {})", dir.display()));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    ExternalOutcome { texts, error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::views::editor::EditTarget;

    fn request() -> ExternalEdit {
        ExternalEdit {
            target: EditTarget::HandEdit { parent: 0 },
            names: vec!["a".into(), "b".into()],
            texts: [("a".to_string(), "alpha".to_string()), ("b".to_string(), "beta".to_string())].into(),
        }
    }

    #[test]
    fn the_editor_s_changes_come_back_and_the_files_go() {
        let comps = vec![ComponentConfig {
            name: "a".into(),
            file: "prompts/a.md".into(),
            max_growth: None,
            template: None,
            template_file: None,
        }];
        // A scripted "editor": appends to the first file, as a person saving it would.
        let cmd: Vec<String> = vec!["sh".into(), "-c".into(), "printf 'alpha, edited\\n' > \"$1\"".into(), "sh".into()];
        let out = edit(&request(), &comps, &cmd);
        assert_eq!(out.error, None);
        assert_eq!(out.texts["a"], "alpha, edited");
        assert_eq!(out.texts["b"], "beta");
    }

    #[test]
    fn a_failing_editor_keeps_the_text_and_the_files() {
        let cmd: Vec<String> =
            vec!["sh".into(), "-c".into(), "printf 'half done' > \"$1\"; exit 3".into(), "sh".into()];
        let out = edit(&request(), &[], &cmd);
        let err = out.error.unwrap();
        assert!(err.contains("exited") && err.contains("kept in"), "{err}");
        assert_eq!(out.texts["a"], "half done");
        let missing = edit(&request(), &[], &["/nonexistent/editor".to_string()]);
        assert!(missing.error.unwrap().contains("cannot start the editor"));
        assert_eq!(missing.texts, request().texts);
    }
}

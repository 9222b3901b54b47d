//! `[system]` and its `[[system.steps]]`, and the templates they and the evaluator write.

use super::{is_ident, Validator};
use crate::project::config::ProjectConfig;
use crate::project::template::{Scope, Template};

impl Validator {
    pub(super) fn system(&mut self, config: &ProjectConfig, fields: Option<&[String]>) {
        use super::config::SystemKind;
        let sys = &config.system;
        if !(sys.timeout_secs.is_finite() && sys.timeout_secs > 0.0) {
            self.problem("system.timeout_secs", "[system] timeout_secs must be a positive number of seconds");
        }
        if sys.concurrency == Some(0) {
            self.problem(
                "system.concurrency",
                "[system] concurrency must be at least 1 (copies of the command run at once; default: the CPU count)",
            );
        }
        match sys.kind {
            SystemKind::Command => {
                if sys.command.first().is_none_or(|c| c.trim().is_empty()) {
                    self.problem(
                        "system.command",
                        "[system] kind = \"command\" needs command = [\"program\", \"arg\", …] (run without a shell, in the project folder)",
                    );
                }
                if !sys.steps.is_empty() {
                    self.problem(
                        "system.steps",
                        "[[system.steps]] are only used with kind = \"chat\"; remove them or set kind = \"chat\"",
                    );
                }
            }
            SystemKind::Chat => {
                if !sys.command.is_empty() {
                    self.problem(
                        "system.command",
                        "[system] command is only used with kind = \"command\"; remove it or set kind = \"command\"",
                    );
                }
                if sys.steps.is_empty() {
                    self.problem(
                        "system",
                        "[system] kind = \"chat\" needs at least one [[system.steps]] with a name and a user template",
                    );
                }
                let components: Vec<String> = config.components.iter().map(|c| c.name.clone()).collect();
                let mut earlier: Vec<String> = Vec::new();
                for (i, step) in sys.steps.iter().enumerate() {
                    let at = format!("system.steps[{i}]");
                    if !is_ident(&step.name) {
                        self.problem(
                            &format!("{at}.name"),
                            format!("step name \"{}\" must be a single word (letters, digits, `_`, `-`): it is used as {{{{steps.<name>.output}}}}", step.name),
                        );
                    } else if earlier.contains(&step.name) {
                        self.problem(
                            &format!("{at}.name"),
                            format!("step `{}` is defined twice; step names must be unique", step.name),
                        );
                    }
                    self.model_exists(config, &step.model, &format!("{at}.model"), &format!("step `{}`", step.name));
                    let scope = fields.map(|f| Scope {
                        components: components.clone(),
                        earlier_steps: earlier.clone(),
                        fields: f.to_vec(),
                        special: Vec::new(),
                    });
                    let templates = [("system", step.system.as_deref()), ("user", Some(step.user.as_str()))];
                    for (which, text) in templates {
                        let Some(text) = text else { continue };
                        self.template(
                            text,
                            &format!("{at}.{which}"),
                            &format!("step `{}`, {which} template", step.name),
                            scope.as_ref(),
                        );
                    }
                    earlier.push(step.name.clone());
                }
            }
        }
    }

    /// Parses a template and checks its placeholders against `scope` (when known).
    pub(super) fn template(
        &mut self,
        text: &str,
        key_path: &str,
        what: &str,
        scope: Option<&Scope>,
    ) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => {
                if let Some(scope) = scope {
                    if let Err(why) = scope.check(&t) {
                        self.problem(key_path, format!("{what}: {why}"));
                        return None;
                    }
                }
                Some(t)
            }
            Err(e) => {
                self.problem(key_path, format!("{what}: {e}"));
                None
            }
        }
    }
}

//! `{{name}}` templates for chat steps, judge rubrics and regex patterns.
//!
//! A name is a component (`{{instruction}}`), an example field (`{{question}}`), or the output of an
//! earlier step (`{{steps.draft.output}}`); spaces inside the braces are ignored. Templates are parsed
//! once at load time, and every placeholder is checked against what will be available, so a typo
//! fails in `gepa-tui check` rather than after the first paid model call. There is no escaping: a
//! literal `{{` in a step template is an error (it would almost always be a typo). When a component
//! and an example field share a name, `{{name}}` is the component.

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Slot(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{{` at character {at} is never closed with `}}}}`")]
    Unclosed { at: usize },
    #[error("empty placeholder `{{{{}}}}` at character {at}")]
    Empty { at: usize },
    #[error(
        "`{{{{{name}}}}}` is not a placeholder name (use letters, digits, `_`, `-`, and `.` in `steps.<step>.output`)"
    )]
    BadName { name: String },
}

/// A placeholder that had no value when rendering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no value for `{{{{{name}}}}}`")]
pub struct MissingValue {
    pub name: String,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphanumeric() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let at = source[..offset + open].chars().count() + 1;
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed { at })?;
            let name = after[..close].trim();
            if name.is_empty() {
                return Err(TemplateError::Empty { at });
            }
            if !is_name(name) {
                return Err(TemplateError::BadName { name: name.to_string() });
            }
            parts.push(Part::Slot(name.to_string()));
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The distinct placeholder names, in order of first use.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Slot(name) if seen.insert(name.as_str()) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Fills each placeholder from `lookup`; the first name it has no value for is an error.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<String, MissingValue> {
        self.render_with(|name, out| match lookup(name) {
            Some(v) => {
                out.push_str(&v);
                true
            }
            None => false,
        })
    }

    /// Like `render`, but the callback writes the value itself (so callers can escape it).
    pub fn render_with(&self, mut write: impl FnMut(&str, &mut String) -> bool) -> Result<String, MissingValue> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Slot(name) => {
                    if !write(name, &mut out) {
                        return Err(MissingValue { name: name.clone() });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `steps.<step>.output` -> `<step>`.
pub fn step_output_name(placeholder: &str) -> Option<&str> {
    placeholder.strip_prefix("steps.").and_then(|s| s.strip_suffix(".output")).filter(|s| !s.is_empty())
}

/// The names a template may use at one place in the config, grouped so an error can list them.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Component names (the texts being optimized).
    pub components: Vec<String>,
    /// Steps that ran before this one; usable as `steps.<name>.output`.
    pub earlier_steps: Vec<String>,
    /// Example fields (from the first train example).
    pub fields: Vec<String>,
    /// Names specific to the place, e.g. `output` and `expected` in a judge rubric.
    pub special: Vec<String>,
}

impl Scope {
    pub fn contains(&self, name: &str) -> bool {
        if let Some(step) = step_output_name(name) {
            return self.earlier_steps.iter().any(|s| s == step);
        }
        self.components.iter().any(|c| c == name)
            || self.fields.iter().any(|f| f == name)
            || self.special.iter().any(|s| s == name)
    }

    fn all_names(&self) -> Vec<String> {
        self.special
            .iter()
            .chain(&self.components)
            .chain(&self.fields)
            .cloned()
            .chain(self.earlier_steps.iter().map(|s| format!("steps.{s}.output")))
            .collect()
    }

    /// Explains why `name` is not available, with a suggestion and the list of what is.
    pub fn explain_unknown(&self, name: &str) -> String {
        let names = self.all_names();
        let mut msg = format!("unknown placeholder `{{{{{name}}}}}`");
        if let Some(step) = step_output_name(name) {
            msg.push_str(&format!(
                " (`{step}` is not an earlier step: a step can only use the outputs of the steps before it)"
            ));
        }
        if let Some(best) = super::config::strsim_best(name, &names) {
            msg.push_str(&format!("; did you mean `{{{{{best}}}}}`?"));
        }
        let list = |v: &[String]| v.iter().map(|n| format!("{{{{{n}}}}}")).collect::<Vec<_>>().join(", ");
        let mut groups = Vec::new();
        if !self.special.is_empty() {
            groups.push(list(&self.special));
        }
        if !self.components.is_empty() {
            groups.push(format!("components {}", list(&self.components)));
        }
        if !self.fields.is_empty() {
            groups.push(format!("example fields {}", list(&self.fields)));
        }
        if !self.earlier_steps.is_empty() {
            let outs: Vec<String> = self.earlier_steps.iter().map(|s| format!("steps.{s}.output")).collect();
            groups.push(format!("earlier steps {}", list(&outs)));
        }
        let sep = if msg.ends_with('?') { " " } else { ". " };
        if groups.is_empty() {
            msg.push_str(&format!("{sep}Nothing is available here."));
        } else {
            msg.push_str(&format!("{sep}Available: {}.", groups.join("; ")));
        }
        msg
    }

    /// The first unknown placeholder of `template`, explained.
    pub fn check(&self, template: &Template) -> Result<(), String> {
        match template.placeholders().into_iter().find(|n| !self.contains(n)) {
            Some(name) => Err(self.explain_unknown(name)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "instruction" => Some("Be brief.".into()),
            "question" => Some("2+2?".into()),
            "steps.draft.output" => Some("4".into()),
            _ => None,
        }
    }

    #[test]
    fn renders_components_fields_and_step_outputs() {
        let t = Template::parse("{{instruction}}\nQ: {{ question }} (draft: {{steps.draft.output}})").unwrap();
        assert_eq!(t.render(lookup).unwrap(), "Be brief.\nQ: 2+2? (draft: 4)");
        assert_eq!(t.placeholders(), vec!["instruction", "question", "steps.draft.output"]);
    }

    #[test]
    fn text_without_placeholders_and_single_braces_pass_through() {
        let t = Template::parse("Reply as {\"a\": 1} — no {placeholders}.").unwrap();
        assert_eq!(t.render(|_| None).unwrap(), "Reply as {\"a\": 1} — no {placeholders}.");
        assert_eq!(Template::parse("").unwrap().render(|_| None).unwrap(), "");
    }

    #[test]
    fn values_are_not_re_expanded() {
        let t = Template::parse("{{question}}").unwrap();
        let out = t.render(|_| Some("{{instruction}}".into())).unwrap();
        assert_eq!(out, "{{instruction}}");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(Template::parse("ab {{oops").unwrap_err(), TemplateError::Unclosed { at: 4 });
        assert_eq!(Template::parse("{{ }}").unwrap_err(), TemplateError::Empty { at: 1 });
        assert!(matches!(Template::parse("{{a b}}").unwrap_err(), TemplateError::BadName { .. }));
        assert_eq!(Template::parse("{{oops").unwrap_err().to_string(), "`{{` at character 1 is never closed with `}}`");
    }

    #[test]
    fn missing_value_names_placeholder() {
        let t = Template::parse("{{nope}}").unwrap();
        assert_eq!(t.render(lookup).unwrap_err().to_string(), "no value for `{{nope}}`");
    }

    #[test]
    fn scope_explains_unknown_with_suggestion_and_list() {
        let scope = Scope {
            components: vec!["instruction".into()],
            earlier_steps: vec!["draft".into()],
            fields: vec!["question".into(), "answer".into()],
            special: vec![],
        };
        let t = Template::parse("{{questoin}}").unwrap();
        assert_eq!(
            scope.check(&t).unwrap_err(),
            "unknown placeholder `{{questoin}}`; did you mean `{{question}}`? Available: \
components {{instruction}}; example fields {{question}}, {{answer}}; earlier steps {{steps.draft.output}}."
        );
        assert!(scope.check(&Template::parse("{{steps.draft.output}} {{answer}}").unwrap()).is_ok());
        let later = scope.check(&Template::parse("{{steps.final.output}}").unwrap()).unwrap_err();
        assert!(later.contains("not an earlier step"), "{later}");
    }
}

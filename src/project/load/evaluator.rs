//! `[evaluator]` and its `[[evaluator.parts]]`, checked against the examples.

use super::{is_ident, Validator};
use crate::project::config::{part_labels, strsim_best, EvaluatorKind, EvaluatorPart, ProjectConfig};
use crate::project::data::{json_path, json_path_in_map};
use crate::project::evaluator::{CommandScorer, CompareScorer, Evaluator, JudgeScorer, Part, Scorer};
use crate::project::template::Scope;
use crate::project::{Example, ProjectError, CONFIG_FILE};
use std::collections::BTreeSet;
use std::time::Duration;

impl Validator {
    /// Checks `[evaluator]` and builds it: the evaluator the project keeps, built only when
    /// nothing here was wrong.
    pub(super) fn evaluator(
        &mut self,
        config: &ProjectConfig,
        fields: Option<&[String]>,
        splits: Option<&[(&str, &[Example]); 3]>,
    ) -> Option<Evaluator> {
        let problems_before = self.errors.len();
        let ev = &config.evaluator;
        if ev.concurrency == Some(0) {
            self.problem(
                "evaluator.concurrency",
                "[evaluator] concurrency must be at least 1 (scorer programs run at once; default: the CPU count)",
            );
        }
        let mut parts = Vec::new();
        if ev.kind == EvaluatorKind::Combined {
            if ev.parts.is_empty() {
                self.problem(
                    "evaluator",
                    "[evaluator] kind = \"combined\" needs at least one [[evaluator.parts]] (each with a kind and a weight)",
                );
            }
            let labels = part_labels(&ev.parts);
            for ((i, part), label) in ev.parts.iter().enumerate().zip(labels) {
                let at = format!("evaluator.parts[{i}]");
                if part.kind == EvaluatorKind::Combined {
                    self.problem(&format!("{at}.kind"), "a part of a combined evaluator cannot itself be \"combined\"");
                    continue;
                }
                if !(part.weight.is_finite() && part.weight >= 0.0) {
                    self.problem(&format!("{at}.weight"), "[[evaluator.parts]] weight must be a number of 0 or more");
                }
                let scorer = self.evaluator_part(config, part, &at, "[[evaluator.parts]]", fields, splits);
                parts.extend(scorer.map(|scorer| Part { label, weight: part.weight, scorer }));
            }
            self.part_names(config);
            let total: f64 = ev.parts.iter().map(|p| p.weight).filter(|w| w.is_finite()).sum();
            if !ev.parts.is_empty() && total <= 0.0 {
                self.problem(
                    "evaluator.parts",
                    "the weights of [[evaluator.parts]] add up to 0; give at least one part a positive weight",
                );
            }
        } else {
            if !ev.parts.is_empty() {
                self.problem("evaluator.parts", "[[evaluator.parts]] are only used with kind = \"combined\"");
            }
            let scorer = self.evaluator_part(config, &ev.as_part(), "evaluator", "[evaluator]", fields, splits);
            parts.extend(scorer.map(|scorer| Part { label: ev.kind.as_str().to_string(), weight: 1.0, scorer }));
        }
        // A misspelt feedback field would silently add nothing; it must exist somewhere.
        if let Some(splits) = splits {
            let known: BTreeSet<&String> =
                splits.iter().flat_map(|(_, ex)| ex.iter().flat_map(|e| e.fields.keys())).collect();
            for f in &ev.feedback_fields {
                if !known.contains(f) {
                    let all: Vec<String> = known.iter().map(|s| s.to_string()).collect();
                    let hint = strsim_best(f, &all).map(|b| format!("; did you mean `{b}`?")).unwrap_or_default();
                    self.problem(
                        "evaluator.feedback_fields",
                        format!("[evaluator] feedback_fields: no example has a field `{f}`{hint}"),
                    );
                }
            }
        }
        (self.errors.len() == problems_before).then(|| Evaluator::new(ev.kind, parts))
    }

    /// Each combined part is an objective named by its `name` (default: its kind): names must be
    /// single words and differ from each other and from the built-in objectives.
    pub(super) fn part_names(&mut self, config: &ProjectConfig) {
        let parts = &config.evaluator.parts;
        let labels = part_labels(parts);
        let builtins: Vec<&str> = config.optimizer.objectives.iter().map(|b| b.as_str()).collect();
        for (i, part) in parts.iter().enumerate() {
            let at = format!("evaluator.parts[{i}]");
            let key = if part.name.is_some() { format!("{at}.name") } else { at.clone() };
            let label = &labels[i];
            if let Some(name) = &part.name {
                if !is_ident(name) {
                    self.problem(
                        &key,
                        format!("[[evaluator.parts]] name \"{name}\" must be a single word (letters, digits, `_`, `-`): it names an objective"),
                    );
                    continue;
                }
            }
            if let Some(j) = labels[..i].iter().position(|l| l == label) {
                let first = self
                    .keys
                    .line(&format!("evaluator.parts[{j}]"))
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default();
                self.problem(
                    &key,
                    format!("[[evaluator.parts]] two parts are both named `{label}`{first}: give each part its own name = \"…\", the objective it is recorded as"),
                );
            } else if builtins.contains(&label.as_str()) {
                self.problem(
                    &key,
                    format!("[[evaluator.parts]] `{label}` is also a built-in objective in [optimizer] objectives: give the part another name = \"…\""),
                );
            }
        }
    }

    pub(super) fn evaluator_part(
        &mut self,
        config: &ProjectConfig,
        part: &EvaluatorPart,
        at: &str,
        section: &str,
        fields: Option<&[String]>,
        splits: Option<&[(&str, &[Example]); 3]>,
    ) -> Option<Scorer> {
        let kind = part.kind.as_str();
        let case_sensitive = part.case_sensitive.unwrap_or(false);
        let need_field = |v: &mut Self| -> Option<String> {
            match part.field.as_deref() {
                Some(f) if !f.trim().is_empty() => Some(f.to_string()),
                _ => {
                    v.problem(
                        at,
                        format!("{section} kind = \"{kind}\" needs field = \"<the example field holding the expected answer>\""),
                    );
                    None
                }
            }
        };
        let compare = match part.kind {
            EvaluatorKind::Exact | EvaluatorKind::Contains => {
                let field = need_field(self)?;
                self.field_everywhere(&field, &format!("{at}.field"), section, splits);
                if part.kind == EvaluatorKind::Exact {
                    CompareScorer::Exact { field, case_sensitive }
                } else {
                    CompareScorer::Contains { field, case_sensitive }
                }
            }
            EvaluatorKind::Regex => match part.pattern.as_deref() {
                None => {
                    self.problem(
                        at,
                        format!("{section} kind = \"regex\" needs pattern = \"…\" (a regular expression the output must match; {{{{field}}}} fills in an example field)"),
                    );
                    return None;
                }
                Some(pattern) => {
                    let scope = fields.map(|f| Scope { fields: f.to_vec(), ..Scope::default() });
                    let key = format!("{at}.pattern");
                    let t = self.template(pattern, &key, &format!("{section} pattern"), scope.as_ref())?;
                    // Fill placeholders with a plain word to see whether the rest is a valid regex.
                    let probe = t.render(|_| Some("x".to_string())).unwrap_or_default();
                    if let Err(e) = regex::Regex::new(&probe) {
                        let why = e.to_string();
                        let last = why.lines().last().unwrap_or("").trim().to_string();
                        self.problem(&key, format!("{section} pattern is not a valid regular expression: {last}"));
                        return None;
                    }
                    CompareScorer::Regex { pattern: t, ignore_case: part.case_sensitive == Some(false) }
                }
            },
            EvaluatorKind::JsonField => {
                match (&part.json_key, part.json_keys.is_empty()) {
                    (Some(_), false) => {
                        self.problem(
                            at,
                            format!("{section} set either json_key (one key, compared with `field`) or json_keys (several), not both"),
                        );
                        return None;
                    }
                    (None, true) => {
                        self.problem(
                            at,
                            format!("{section} kind = \"json_field\" needs json_key = \"<key in the output JSON>\" with field = \"<example field>\", or json_keys = [\"a\", \"b\"]"),
                        );
                        return None;
                    }
                    (Some(key), true) => {
                        if key.trim().is_empty() {
                            self.problem(&format!("{at}.json_key"), format!("{section} json_key is empty"));
                        }
                        let field = need_field(self)?;
                        self.field_everywhere(&field, &format!("{at}.field"), section, splits);
                        CompareScorer::JsonField {
                            field: Some(field),
                            key: Some(key.clone()),
                            keys: Vec::new(),
                            case_sensitive,
                        }
                    }
                    (None, false) => {
                        // Each key is compared with the same-named example field, or with that key
                        // of the object in `field`.
                        if let Some(first) = splits.and_then(|s| s[0].1.first()) {
                            for key in &part.json_keys {
                                let expected = match part.field.as_deref() {
                                    Some(f) => first.fields.get(f).and_then(|v| json_path(v, key)),
                                    None => json_path_in_map(&first.fields, key),
                                };
                                if expected.is_none() {
                                    let holder = match part.field.as_deref() {
                                        Some(f) => format!("the object in field `{f}`"),
                                        None => "its fields".to_string(),
                                    };
                                    self.problem(
                                        &format!("{at}.json_keys"),
                                        format!("{section} json_keys: `{key}` is not among {holder} in the first train example (line {}), so there is nothing to compare it with", first.line),
                                    );
                                }
                            }
                        }
                        CompareScorer::JsonField {
                            field: part.field.clone(),
                            key: None,
                            keys: part.json_keys.clone(),
                            case_sensitive,
                        }
                    }
                }
            }
            EvaluatorKind::Command => {
                let argv_ok = part.command.first().is_some_and(|c| !c.trim().is_empty());
                if !argv_ok {
                    self.problem(
                        at,
                        format!("{section} kind = \"command\" needs command = [\"program\", \"arg\", …]: it reads {{\"example\":…,\"output\":…}} on stdin and prints {{\"score\":…,\"feedback\":…}}"),
                    );
                }
                let timeout = Duration::try_from_secs_f64(part.timeout_secs).ok().filter(|t| !t.is_zero());
                if timeout.is_none() {
                    self.problem(
                        &format!("{at}.timeout_secs"),
                        format!("{section} timeout_secs must be a positive number of seconds"),
                    );
                }
                let timeout = timeout.filter(|_| argv_ok)?;
                return Some(Scorer::Command(CommandScorer::new(part.command.clone(), self.root.clone(), timeout)));
            }
            EvaluatorKind::Judge => {
                let model = part.model.clone().unwrap_or_else(|| "reflection".to_string());
                self.model_exists(config, &model, &format!("{at}.model"), &format!("the {section} judge"));
                if let Some(f) = part.field.as_deref() {
                    self.field_everywhere(f, &format!("{at}.field"), section, splits);
                }
                return match part.rubric.as_deref() {
                    None => {
                        self.problem(
                            at,
                            format!("{section} kind = \"judge\" needs rubric = \"…\" (what a good answer is; {{{{output}}}} is the answer, {{{{expected}}}} the reference)"),
                        );
                        None
                    }
                    Some(rubric) => {
                        let mut special = vec!["output".to_string()];
                        if part.field.is_some() {
                            special.push("expected".to_string());
                        }
                        let scope = fields.map(|f| Scope { fields: f.to_vec(), special, ..Scope::default() });
                        let rubric = self.template(
                            rubric,
                            &format!("{at}.rubric"),
                            &format!("{section} rubric"),
                            scope.as_ref(),
                        )?;
                        Some(Scorer::Judge(JudgeScorer::new(model, rubric, part.field.clone())))
                    }
                };
            }
            // A combined part that is itself combined is refused by the caller.
            EvaluatorKind::Combined => return None,
        };
        Some(Scorer::Compare(compare))
    }

    /// Every example of every split must hold the reference field; the first one missing is named.
    pub(super) fn field_everywhere(
        &mut self,
        field: &str,
        key_path: &str,
        section: &str,
        splits: Option<&[(&str, &[Example]); 3]>,
    ) {
        let Some(splits) = splits else { return };
        for (file, examples) in splits {
            if let Some(e) = examples.iter().find(|e| !e.fields.contains_key(field)) {
                let known: Vec<String> = e.fields.keys().cloned().collect();
                let hint = strsim_best(field, &known).map(|b| format!("; did you mean `{b}`?")).unwrap_or_default();
                let line = self.keys.line(key_path);
                let where_cfg = match line {
                    Some(l) => format!("{CONFIG_FILE}:{l}"),
                    None => CONFIG_FILE.to_string(),
                };
                self.errors.push(ProjectError::data(
                    file,
                    Some(e.line),
                    format!(
                        "example `{}` has no field `{field}`, which {section} compares against ({where_cfg}){hint}",
                        e.id
                    ),
                ));
            }
        }
    }
}

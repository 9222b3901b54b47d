//! Loading and validating a project folder. Every problem found is collected (not just the first),
//! each naming its file, line and key, so one `gepa-tui check` shows everything to fix.

use super::config::{self, strsim_best, EvaluatorKind, EvaluatorPart, KeyLines, ProjectConfig};
use super::error::ProjectError;
use super::template::{Scope, Template};
use super::{data, Candidate, Example, Project, CONFIG_FILE};
use std::collections::BTreeSet;
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
    let config = config::parse(&config_text)?;
    let mut v = Validator { root: root.clone(), keys: KeyLines::new(&config_text), errors: Vec::new() };
    let (seed, protected) = v.components(&config).unzip();
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
    v.evaluator(&config, fields.as_deref(), all_examples.as_ref());
    v.optimizer(&config);
    v.reflection(&config);
    v.run_store();
    ProjectError::from_list(v.errors)?;
    Ok(Project {
        root,
        config,
        config_text,
        seed: seed.unwrap_or_default(),
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

    fn models(&mut self, config: &ProjectConfig) {
        for (name, m) in &config.models {
            let at = format!("models.{name}");
            if m.model.trim().is_empty() {
                self.problem(&format!("{at}.model"), format!("[models.{name}] model is empty"));
            }
            if m.concurrency == 0 {
                self.problem(&format!("{at}.concurrency"), format!("[models.{name}] concurrency must be at least 1"));
            }
            if m.max_tokens == Some(0) {
                self.problem(&format!("{at}.max_tokens"), format!("[models.{name}] max_tokens must be at least 1"));
            }
            if m.requests_per_minute == Some(0) || m.tokens_per_minute == Some(0) {
                let key = if m.requests_per_minute == Some(0) { "requests_per_minute" } else { "tokens_per_minute" };
                self.problem(
                    &format!("{at}.{key}"),
                    format!("[models.{name}] {key} must be at least 1 (leave it out for no limit)"),
                );
            }
            for (field, instead) in crate::project::config::RESERVED_BODY_FIELDS {
                if m.extra.as_ref().is_some_and(|t| t.contains_key(*field)) {
                    self.problem(
                        &format!("{at}.extra.{field}"),
                        format!("[models.{name}.extra] cannot set `{field}`: gepa.toml sets it with {instead}"),
                    );
                }
            }
            let anthropic = m.provider == crate::project::config::ProviderKind::Anthropic;
            if m.reasoning_effort.is_some() && anthropic {
                self.problem(
                    &format!("{at}.reasoning_effort"),
                    format!("[models.{name}] reasoning_effort is OpenAI's; for Anthropic set thinking_budget_tokens"),
                );
            }
            if let Some(budget) = m.thinking_budget_tokens {
                if !anthropic {
                    self.problem(
                        &format!("{at}.thinking_budget_tokens"),
                        format!(
                            "[models.{name}] thinking_budget_tokens is Anthropic's; for OpenAI set reasoning_effort"
                        ),
                    );
                } else if budget >= m.max_tokens.unwrap_or(crate::llm::anthropic::DEFAULT_MAX_TOKENS) {
                    self.problem(
                        &format!("{at}.thinking_budget_tokens"),
                        format!("[models.{name}] thinking_budget_tokens ({budget}) must be less than max_tokens (the answer comes after the thinking)"),
                    );
                }
            }
            for (key, secs) in
                [("connect_timeout_secs", m.connect_timeout_secs), ("request_timeout_secs", m.request_timeout_secs)]
            {
                if !(secs.is_finite() && secs > 0.0) {
                    self.problem(
                        &format!("{at}.{key}"),
                        format!("[models.{name}] {key} must be a positive number of seconds"),
                    );
                }
            }
            if m.max_reply_bytes == 0 {
                self.problem(
                    &format!("{at}.max_reply_bytes"),
                    format!("[models.{name}] max_reply_bytes must be at least 1 (default 16777216, 16 MiB)"),
                );
            }
            if let Some(secs) = m.retry_base_delay_secs {
                if !(secs.is_finite() && secs >= 0.0) {
                    self.problem(
                        &format!("{at}.retry_base_delay_secs"),
                        format!("[models.{name}] retry_base_delay_secs must be 0 or more seconds (default 0.5)"),
                    );
                }
            }
            if let Some(url) = &m.base_url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    self.problem(
                        &format!("{at}.base_url"),
                        format!("[models.{name}] base_url \"{url}\" must start with http:// or https://"),
                    );
                }
            }
            for (key, price) in
                [("price_input_per_mtok", m.price_input_per_mtok), ("price_output_per_mtok", m.price_output_per_mtok)]
            {
                if !(price.is_finite() && price >= 0.0) {
                    self.problem(
                        &format!("{at}.{key}"),
                        format!("[models.{name}] {key} must be 0 or more (USD per million tokens)"),
                    );
                }
            }
        }
    }

    /// An error unless `model` is defined in [models].
    fn model_exists(&mut self, config: &ProjectConfig, model: &str, key_path: &str, user: &str) {
        if config.models.contains_key(model) {
            return;
        }
        let defined: Vec<String> = config.models.keys().cloned().collect();
        let hint = match strsim_best(model, &defined) {
            Some(best) => format!("did you mean `{best}`? "),
            None => String::new(),
        };
        self.problem(
            key_path,
            format!(
                "{user} uses model `{model}`, which is not defined: {hint}add a [models.{model}] section (defined: {})",
                if defined.is_empty() { "none".to_string() } else { defined.join(", ") }
            ),
        );
    }

    fn system(&mut self, config: &ProjectConfig, fields: Option<&[String]>) {
        use super::config::SystemKind;
        let sys = &config.system;
        if !(sys.timeout_secs.is_finite() && sys.timeout_secs > 0.0) {
            self.problem("system.timeout_secs", "[system] timeout_secs must be a positive number of seconds");
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
    fn template(&mut self, text: &str, key_path: &str, what: &str, scope: Option<&Scope>) -> Option<Template> {
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

    fn evaluator(
        &mut self,
        config: &ProjectConfig,
        fields: Option<&[String]>,
        splits: Option<&[(&str, &[Example]); 3]>,
    ) {
        let ev = &config.evaluator;
        if ev.kind == EvaluatorKind::Combined {
            if ev.parts.is_empty() {
                self.problem(
                    "evaluator",
                    "[evaluator] kind = \"combined\" needs at least one [[evaluator.parts]] (each with a kind and a weight)",
                );
            }
            for (i, part) in ev.parts.iter().enumerate() {
                let at = format!("evaluator.parts[{i}]");
                if part.kind == EvaluatorKind::Combined {
                    self.problem(&format!("{at}.kind"), "a part of a combined evaluator cannot itself be \"combined\"");
                    continue;
                }
                if !(part.weight.is_finite() && part.weight >= 0.0) {
                    self.problem(&format!("{at}.weight"), "[[evaluator.parts]] weight must be a number of 0 or more");
                }
                self.evaluator_part(config, part, &at, "[[evaluator.parts]]", fields, splits);
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
            self.evaluator_part(config, &ev.as_part(), "evaluator", "[evaluator]", fields, splits);
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
    }

    /// Each combined part is an objective named by its `name` (default: its kind): names must be
    /// single words and differ from each other and from the built-in objectives.
    fn part_names(&mut self, config: &ProjectConfig) {
        let parts = &config.evaluator.parts;
        let labels = super::config::part_labels(parts);
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

    fn evaluator_part(
        &mut self,
        config: &ProjectConfig,
        part: &EvaluatorPart,
        at: &str,
        section: &str,
        fields: Option<&[String]>,
        splits: Option<&[(&str, &[Example]); 3]>,
    ) {
        let kind = part.kind.as_str();
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
        match part.kind {
            EvaluatorKind::Exact | EvaluatorKind::Contains => {
                if let Some(f) = need_field(self) {
                    self.field_everywhere(&f, &format!("{at}.field"), section, splits);
                }
            }
            EvaluatorKind::Regex => match part.pattern.as_deref() {
                None => self.problem(
                    at,
                    format!("{section} kind = \"regex\" needs pattern = \"…\" (a regular expression the output must match; {{{{field}}}} fills in an example field)"),
                ),
                Some(pattern) => {
                    let scope = fields.map(|f| Scope {
                        fields: f.to_vec(),
                        ..Scope::default()
                    });
                    let key = format!("{at}.pattern");
                    if let Some(t) = self.template(pattern, &key, &format!("{section} pattern"), scope.as_ref()) {
                        // Fill placeholders with a plain word to see whether the rest is a valid regex.
                        let probe = t.render(|_| Some("x".to_string())).unwrap_or_default();
                        if let Err(e) = regex::Regex::new(&probe) {
                            let why = e.to_string();
                            let last = why.lines().last().unwrap_or("").trim().to_string();
                            self.problem(&key, format!("{section} pattern is not a valid regular expression: {last}"));
                        }
                    }
                }
            },
            EvaluatorKind::JsonField => {
                match (&part.json_key, part.json_keys.is_empty()) {
                    (Some(_), false) => self.problem(
                        at,
                        format!("{section} set either json_key (one key, compared with `field`) or json_keys (several), not both"),
                    ),
                    (None, true) => self.problem(
                        at,
                        format!("{section} kind = \"json_field\" needs json_key = \"<key in the output JSON>\" with field = \"<example field>\", or json_keys = [\"a\", \"b\"]"),
                    ),
                    (Some(key), true) => {
                        if key.trim().is_empty() {
                            self.problem(&format!("{at}.json_key"), format!("{section} json_key is empty"));
                        }
                        if let Some(f) = need_field(self) {
                            self.field_everywhere(&f, &format!("{at}.field"), section, splits);
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
                    }
                }
            }
            EvaluatorKind::Command => {
                if part.command.first().is_none_or(|c| c.trim().is_empty()) {
                    self.problem(
                        at,
                        format!("{section} kind = \"command\" needs command = [\"program\", \"arg\", …]: it reads {{\"example\":…,\"output\":…}} on stdin and prints {{\"score\":…,\"feedback\":…}}"),
                    );
                }
                if !(part.timeout_secs.is_finite() && part.timeout_secs > 0.0) {
                    self.problem(&format!("{at}.timeout_secs"), format!("{section} timeout_secs must be a positive number of seconds"));
                }
            }
            EvaluatorKind::Judge => {
                let model = part.model.clone().unwrap_or_else(|| "reflection".to_string());
                self.model_exists(config, &model, &format!("{at}.model"), &format!("the {section} judge"));
                if let Some(f) = part.field.as_deref() {
                    self.field_everywhere(f, &format!("{at}.field"), section, splits);
                }
                match part.rubric.as_deref() {
                    None => self.problem(
                        at,
                        format!("{section} kind = \"judge\" needs rubric = \"…\" (what a good answer is; {{{{output}}}} is the answer, {{{{expected}}}} the reference)"),
                    ),
                    Some(rubric) => {
                        let mut special = vec!["output".to_string()];
                        if part.field.is_some() {
                            special.push("expected".to_string());
                        }
                        let scope = fields.map(|f| Scope {
                            fields: f.to_vec(),
                            special,
                            ..Scope::default()
                        });
                        self.template(rubric, &format!("{at}.rubric"), &format!("{section} rubric"), scope.as_ref());
                    }
                }
            }
            EvaluatorKind::Combined => {}
        }
    }

    /// Every example of every split must hold the reference field; the first one missing is named.
    fn field_everywhere(
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

    fn optimizer(&mut self, config: &ProjectConfig) {
        let o = &config.optimizer;
        let checks = [
            ("minibatch_size", o.minibatch_size >= 1, "must be at least 1"),
            ("concurrency", o.concurrency >= 1, "must be at least 1"),
            ("proposals_per_round", o.proposals_per_round >= 1, "must be at least 1"),
            (
                "pipeline_lag",
                o.pipeline_lag.is_none_or(|l| l >= 1),
                "must be at least 1 (1 = the reference's sequential loop)",
            ),
            ("top_k", o.top_k >= 1, "must be at least 1"),
            ("merge_subsample", o.merge_subsample >= 1, "must be at least 1"),
            ("max_metric_calls", o.max_metric_calls >= 1, "must be at least 1"),
            ("epsilon", (0.0..=1.0).contains(&o.epsilon), "must be between 0 and 1"),
            ("perfect_score", o.perfect_score.is_finite(), "must be a number"),
            (
                "max_outage_secs",
                o.max_outage_secs.is_finite() && o.max_outage_secs >= 0.0,
                "must be a number of seconds, 0 or more",
            ),
        ];
        for (key, ok, why) in checks {
            if !ok {
                self.problem(&format!("optimizer.{key}"), format!("[optimizer] {key} {why}"));
            }
        }
        for (i, b) in o.objectives.iter().enumerate() {
            if o.objectives[..i].contains(b) {
                self.problem("optimizer.objectives", format!("[optimizer] objectives lists `{}` twice", b.as_str()));
            }
        }
        // gepa refuses a non-instance frontier_type without objective scores (core/state.py);
        // here it is caught before the run, unless a command scorer may print `scores`.
        let ev = &config.evaluator;
        let may_have_objectives =
            !o.objectives.is_empty() || ev.kind == EvaluatorKind::Combined || ev.kind == EvaluatorKind::Command;
        if !o.frontier.is_instance() && !may_have_objectives {
            self.problem(
                "optimizer.frontier",
                format!(
                    "[optimizer] frontier = \"{}\" needs objectives: switch some on with objectives = [\"prompt_tokens\", …], or use a combined evaluator (each part is one), or frontier = \"instance\"",
                    o.frontier.as_str()
                ),
            );
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
        let Some(file) = &config.reflection.template_file else { return };
        let Some(text) = self.read_text(file, "reflection.template_file", "[reflection] template_file") else {
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

/// A dotted path (`a.b.0`) into a JSON value.
pub(crate) fn json_path<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, seg| match v {
        serde_json::Value::Object(m) => m.get(seg),
        serde_json::Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

pub(crate) fn json_path_in_map<'a>(
    m: &'a serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<&'a serde_json::Value> {
    let (first, rest) = match path.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (path, None),
    };
    let v = m.get(first)?;
    match rest {
        Some(r) => json_path(v, r),
        None => Some(v),
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
            let keys = KeyLines::new(&self.config_text);
            let at = match keys.line("models") {
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
        let path = resolve_inside(&self.root, file)
            .map_err(|why| ProjectError::config(None, format!("[reflection] template_file: {why}")))?;
        std::fs::read_to_string(&path).map(Some).map_err(|source| ProjectError::Io { path: file.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[models.task]
provider = "openai"
model = "m"

[models.reflection]
provider = "openai"
model = "m"

[[components]]
name = "instruction"
file = "prompts/instruction.md"

[system]
kind = "chat"
[[system.steps]]
name = "draft"
user = "{{instruction}} {{question}}"
[[system.steps]]
name = "final"
system = "{{instruction}}"
user = "{{steps.draft.output}}"

[data]
train = "data/train.jsonl"
val = "data/val.jsonl"

[evaluator]
feedback_fields = ["hint"]
kind = "exact"
field = "answer"
"#;

    const TRAIN: &str = "{\"question\": \"a\", \"answer\": \"1\", \"hint\": \"h\"}\n";
    const VAL: &str = "{\"question\": \"b\", \"answer\": \"2\"}\n";

    /// A project folder with the files above, `toml` replacing gepa.toml when given.
    fn folder(toml: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("gepa.toml", toml),
            ("prompts/instruction.md", "Answer."),
            ("data/train.jsonl", TRAIN),
            ("data/val.jsonl", VAL),
        ];
        for (rel, text) in files.iter().chain(extra) {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn problems(toml: &str, extra: &[(&str, &str)]) -> Vec<String> {
        let dir = folder(toml, extra);
        match Project::load(dir.path()) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems(),
        }
    }

    fn one_problem(toml: &str) -> String {
        let p = problems(toml, &[]);
        assert_eq!(p.len(), 1, "{p:#?}");
        p[0].clone()
    }

    /// Keep markers come out of the seed and become its protected spans; one that does not pair
    /// names the prompt file and its line. `max_growth` below 0 names the key and its line.
    #[test]
    fn keep_markers_and_max_growth() {
        let dir = folder(TOML, &[("prompts/instruction.md", "Answer.\n<<keep>>Cite the source.<</keep>>")]);
        let p = Project::load(dir.path()).unwrap();
        assert_eq!(p.seed["instruction"], "Answer.\nCite the source.");
        assert_eq!(p.protected["instruction"], vec!["Cite the source.".to_string()]);
        assert_eq!(p.max_growth("instruction"), None);

        let e = problems(TOML, &[("prompts/instruction.md", "Answer.\n\n<<keep>>Cite the source.")]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("prompts/instruction.md:3: component `instruction`: <<keep>> is never closed"),
            "{e:?}"
        );

        let toml =
            TOML.replace("file = \"prompts/instruction.md\"", "file = \"prompts/instruction.md\"\nmax_growth = -3");
        let e = one_problem(&toml);
        assert!(e.starts_with("gepa.toml:13: "), "{e}");
        assert!(e.contains("max_growth = -3 must be 0 or more"), "{e}");
        let toml = TOML
            .replace("file = \"prompts/instruction.md\"", "file = \"prompts/instruction.md\"\nmax_growth = \"lots\"");
        let e = one_problem(&toml);
        assert!(e.starts_with("gepa.toml:13: ") && e.contains("max_growth"), "{e}");
        let toml =
            TOML.replace("file = \"prompts/instruction.md\"", "file = \"prompts/instruction.md\"\nmax_growth = 200");
        let dir = folder(&toml, &[]);
        assert_eq!(Project::load(dir.path()).unwrap().max_growth("instruction"), Some(200));
    }

    #[test]
    fn loads_seed_splits_and_ids() {
        let dir = folder(TOML, &[]);
        let p = Project::load(dir.path()).unwrap();
        assert_eq!(p.seed["instruction"], "Answer.");
        assert_eq!(p.train[0].id, "line-1");
        assert_eq!(p.val.len(), 1);
        assert!(p.test.is_empty());
        assert!(p.optimization_problems().is_empty());
        assert_eq!(p.root, dir.path().canonicalize().unwrap());
    }

    #[test]
    fn a_step_cannot_use_a_later_step() {
        let toml = TOML.replace("user = \"{{instruction}} {{question}}\"", "user = \"{{steps.final.output}}\"");
        let p = one_problem(&toml);
        assert!(
            p.starts_with("gepa.toml:18: step `draft`, user template: unknown placeholder `{{steps.final.output}}`"),
            "{p}"
        );
        assert!(p.contains("not an earlier step"), "{p}");
    }

    #[test]
    fn unknown_model_and_missing_reflection() {
        let toml = TOML.replacen("name = \"final\"", "name = \"final\"\nmodel = \"tsak\"", 1);
        let p = one_problem(&toml);
        assert!(p.contains("step `final` uses model `tsak`, which is not defined: did you mean `task`?"), "{p}");

        let toml = TOML.replace("[models.reflection]\nprovider = \"openai\"\nmodel = \"m\"\n", "");
        let dir = folder(&toml, &[]);
        let project = Project::load(dir.path()).unwrap();
        let opt = project.optimization_problems();
        assert_eq!(opt.len(), 1);
        assert!(opt[0].contains("no [models.reflection]"), "{opt:?}");
    }

    #[test]
    fn evaluator_requirements_per_kind() {
        let with = |ev: &str| TOML.replace("kind = \"exact\"\nfield = \"answer\"", ev);
        assert!(one_problem(&with("kind = \"exact\"")).contains("kind = \"exact\" needs field"));
        assert!(one_problem(&with("kind = \"regex\"")).contains("needs pattern"));
        assert!(
            one_problem(&with("kind = \"regex\"\npattern = \"(unclosed\"")).contains("not a valid regular expression")
        );
        assert!(one_problem(&with("kind = \"regex\"\npattern = \"{{anwser}}\"")).contains("did you mean `{{answer}}`"));
        assert!(one_problem(&with("kind = \"json_field\"")).contains("needs json_key"));
        assert!(one_problem(&with("kind = \"json_field\"\njson_key = \"a\"")).contains("needs field"));
        assert!(one_problem(&with("kind = \"json_field\"\njson_keys = [\"answr\"]")).contains("`answr` is not among"));
        assert!(problems(&with("kind = \"json_field\"\njson_keys = [\"answer\"]"), &[]).is_empty());
        assert!(one_problem(&with("kind = \"command\"")).contains("needs command"));
        assert!(one_problem(&with("kind = \"judge\"")).contains("needs rubric"));
        assert!(one_problem(&with("kind = \"judge\"\nrubric = \"{{output}} vs {{expected}}\""))
            .contains("unknown placeholder `{{expected}}`"));
        assert!(problems(
            &with("kind = \"judge\"\nfield = \"answer\"\nrubric = \"{{output}} vs {{expected}} for {{question}}\""),
            &[]
        )
        .is_empty());
        assert!(one_problem(&with("kind = \"combined\"")).contains("needs at least one [[evaluator.parts]]"));
        let combined = "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nweight = 2\n\
                        [[evaluator.parts]]\nkind = \"contains\"";
        let p = one_problem(&with(combined));
        assert!(p.contains("[[evaluator.parts]] kind = \"contains\" needs field"), "{p}");
    }

    #[test]
    fn objective_names_and_frontier_checks() {
        let with = |ev: &str, opt: &str| {
            format!("{}\n[optimizer]\n{opt}\n", TOML.replace("kind = \"exact\"\nfield = \"answer\"", ev))
        };
        let two_exact =
            "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nname = \"right\"\n\
                         [[evaluator.parts]]\nkind = \"contains\"\nfield = \"answer\"\nname = \"right\"";
        let p = one_problem(&with(two_exact, ""));
        // Names the second part's `name` line and the first part's line.
        assert!(p.contains("two parts are both named `right`"), "{p}");
        let toml = with(two_exact, "");
        let first = toml.lines().position(|l| l == "[[evaluator.parts]]").unwrap() + 1;
        let second_name = toml.lines().enumerate().filter(|(_, l)| *l == "name = \"right\"").nth(1).unwrap().0 + 1;
        assert!(p.starts_with(&format!("gepa.toml:{second_name}: ")), "{p}");
        assert!(p.contains(&format!("(line {first})")), "{p}");
        // Unnamed parts of the same kind are numbered, as before names existed.
        let unnamed = "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\n\
                       [[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"";
        assert!(problems(&with(unnamed, ""), &[]).is_empty());
        let p = one_problem(&with(
            "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nname = \"cost_usd\"",
            "objectives = [\"cost_usd\"]",
        ));
        assert!(p.contains("`cost_usd` is also a built-in objective"), "{p}");
        assert!(one_problem(&with(
            "kind = \"combined\"\n[[evaluator.parts]]\nkind = \"exact\"\nfield = \"answer\"\nname = \"a b\"",
            ""
        ))
        .contains("must be a single word"));
        let p = one_problem(&with("kind = \"exact\"\nfield = \"answer\"", "frontier = \"hybrid\""));
        assert!(p.contains("frontier = \"hybrid\" needs objectives"), "{p}");
        assert!(problems(
            &with("kind = \"exact\"\nfield = \"answer\"", "frontier = \"hybrid\"\nobjectives = [\"prompt_tokens\"]"),
            &[]
        )
        .is_empty());
        let p = one_problem(&with("kind = \"exact\"\nfield = \"answer\"", "objectives = [\"latency\"]"));
        assert!(p.contains("latency") && p.contains("prompt_tokens"), "{p}");
    }

    #[test]
    fn reference_field_must_be_in_every_example() {
        let dir = folder(
            TOML,
            &[(
                "data/val.jsonl",
                "{\"question\": \"b\", \"answer\": \"2\"}\n{\"question\": \"c\", \"answr\": \"3\"}\n",
            )],
        );
        let p = Project::load(dir.path()).unwrap_err().problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("data/val.jsonl:2: example `line-2` has no field `answer`"), "{}", p[0]);
        assert!(p[0].contains("did you mean `answr`?"), "{}", p[0]);
    }

    #[test]
    fn misspelt_feedback_field() {
        let p = one_problem(&TOML.replace("feedback_fields = [\"hint\"]", "feedback_fields = [\"hnt\"]"));
        assert!(p.contains("no example has a field `hnt`; did you mean `hint`?"), "{p}");
    }

    #[test]
    fn empty_split_and_several_problems_at_once() {
        let toml = TOML.replace("file = \"prompts/instruction.md\"", "file = \"/etc/passwd\"");
        let p = problems(&toml, &[("data/val.jsonl", "\n\n")]);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p.iter().any(|x| x.contains("\"/etc/passwd\" must be a path relative to the project folder")));
        assert!(p.iter().any(|x| x == "data/val.jsonl: the val split has no examples; add one JSON object per line"));
    }

    #[test]
    fn misspelt_file_gets_a_suggestion() {
        let toml = TOML.replace("data/train.jsonl", "data/trian.jsonl");
        let p = one_problem(&toml);
        assert!(
            p.contains("file \"data/trian.jsonl\" not found in the project folder; did you mean \"data/train.jsonl\"?"),
            "{p}"
        );
    }

    #[test]
    fn command_system_checks() {
        let toml = TOML.replace("kind = \"chat\"", "kind = \"command\"");
        let p = problems(&toml, &[]);
        assert!(p.iter().any(|x| x.contains("needs command = [")), "{p:#?}");
        assert!(p.iter().any(|x| x.contains("only used with kind = \"chat\"")), "{p:#?}");
    }

    #[test]
    fn resolve_inside_rules() {
        let dir = folder(TOML, &[]);
        let root = dir.path().canonicalize().unwrap();
        assert!(resolve_inside(&root, "prompts/../prompts/instruction.md").is_ok());
        assert!(resolve_inside(&root, "../x").unwrap_err().contains("outside the project folder"));
        assert!(resolve_inside(&root, "prompts/../../x").unwrap_err().contains("outside"));
        assert!(resolve_inside(&root, "prompts").unwrap_err().contains("is not a file"));
        assert!(resolve_inside(&root, "").unwrap_err().contains("empty"));
    }
}

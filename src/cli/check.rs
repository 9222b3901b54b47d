//! `gepa-tui check [DIR]`: validate a project, show what it would run, and ping its models.

use crate::cli::CommonArgs;
use crate::llm::{ChatRequest, LlmError, Message, Models, ModelsOptions};
use crate::project::config::{EvaluatorKind, ProviderKind, SystemKind};
use crate::project::{Project, Split};
use crate::system::System;
use crate::text::{sanitize, truncate_chars};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long a ping may take in all (one retry), whatever the model's own timeouts say.
const PING_TIMEOUT_SECS: f64 = 60.0;

pub fn run(dir: &Path, common: &CommonArgs, estimate_only: bool) -> anyhow::Result<ExitCode> {
    let project = match Project::load(dir) {
        Ok(p) => p,
        Err(e) => {
            let problems = e.problems();
            println!("{}: the project has {}:", dir.display(), count(problems.len(), "problem"));
            for p in &problems {
                println!("  ✗ {}", sanitize(p));
            }
            return Ok(ExitCode::from(1));
        }
    };
    let mut problems: Vec<String> = project.optimization_problems();
    print_report(&project);

    // Build what a run would build, to list every program it would start.
    let system = System::from_config(&project);
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    match &system {
        Ok(s) => commands.extend(s.command().map(|argv| ("system".to_string(), argv.to_vec()))),
        Err(e) => problems.extend(e.problems()),
    }
    commands.extend(project.evaluator.commands().into_iter().map(|argv| ("evaluator".to_string(), argv.to_vec())));
    println!();
    if commands.is_empty() {
        println!("External commands: none (this project only calls models)");
    } else {
        println!(
            "External commands (run in {} without a shell; read them before running someone else's project):",
            project.root.display()
        );
        for (who, argv) in &commands {
            println!("  {who:<10} {}", sanitize(&shell_words(argv)));
        }
    }

    println!();
    let mut pinged = true;
    if estimate_only {
        println!("Models: not pinged (--estimate-only calls no model)");
    } else if common.offline {
        println!("Models: not pinged (--offline: every call must come from .gepa/cache/)");
    } else {
        println!("Pinging models…");
        let failed = ping_models(&project);
        pinged = failed.is_empty();
        problems.extend(failed);
    }
    println!();
    // A dry evaluation needs models that answer (or the cache, offline) and a system that builds.
    let dry = !estimate_only && pinged && system.is_ok();
    for line in super::forecast::report(&project, dry, common.offline) {
        println!("{}", sanitize(&line));
    }

    if let Some(hint) = compact_hint(&project) {
        println!();
        println!("{}", sanitize(&hint));
    }
    if let Some(warning) = max_tokens_warning(&project) {
        println!();
        println!("{}", sanitize(&warning));
    }

    println!();
    if problems.is_empty() {
        println!("✓ {} is ready.", project.root.display());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{}:", count(problems.len(), "problem"));
        for p in &problems {
            println!("  ✗ {}", sanitize(p));
        }
        Ok(ExitCode::from(1))
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn print_report(project: &Project) {
    let c = &project.config;
    println!("Project {}", project.root.display());
    println!();
    println!("Components ({})", c.components.len());
    let width = c.components.iter().map(|x| x.name.chars().count()).max().unwrap_or(0);
    let file_width = c.components.iter().map(|x| sanitize(&x.file).chars().count()).max().unwrap_or(0);
    for comp in &c.components {
        let text = project.seed.get(&comp.name).map(String::as_str).unwrap_or("");
        let kept = project.protected.get(&comp.name).map_or(0, Vec::len);
        let mut extra = String::new();
        if kept > 0 {
            extra.push_str(&format!(", {} protected", count(kept, "span")));
        }
        if let Some(g) = comp.max_growth {
            extra.push_str(&format!(", max_growth {g} chars"));
        }
        println!(
            "  {:<width$}  {:<file_width$}  {}, {}{extra}",
            sanitize(&comp.name),
            sanitize(&comp.file),
            count(text.chars().count(), "char"),
            count(text.lines().count(), "line"),
        );
    }
    println!();
    println!("Data");
    let files = [Some(&c.data.train), Some(&c.data.val), c.data.test.as_ref()];
    let fw = files.iter().flatten().map(|f| sanitize(f).chars().count()).max().unwrap_or(0);
    for (split, file) in [Split::Train, Split::Val, Split::Test].into_iter().zip(files) {
        match file {
            Some(f) => {
                println!(
                    "  {:<5}  {:<fw$}  {}",
                    split.as_str(),
                    sanitize(f),
                    count(project.split(split).len(), "example")
                )
            }
            None => println!("  {:<5}  (none: the best candidate is not scored on a held-out split)", split.as_str()),
        }
    }
    println!();
    match c.system.kind {
        SystemKind::Chat => {
            println!("System: chat, {}", count(c.system.steps.len(), "step"));
            for step in &c.system.steps {
                println!("  {} → model `{}`", sanitize(&step.name), sanitize(&step.model));
            }
        }
        SystemKind::Command => println!(
            "System: command (timeout {} s, at most {} at once)",
            c.system.timeout_secs,
            c.system.concurrency.unwrap_or_else(crate::system::command::default_concurrency)
        ),
    }
    let ev = &c.evaluator;
    let mut line = format!("Evaluator: {}", ev.kind.as_str());
    if ev.kind == EvaluatorKind::Combined {
        let parts: Vec<String> = ev.parts.iter().map(|p| format!("{} × {}", p.weight, p.kind.as_str())).collect();
        line.push_str(&format!(" ({})", parts.join(" + ")));
    }
    if let Some(f) = &ev.field {
        line.push_str(&format!(", reference field `{f}`"));
    }
    if !ev.feedback_fields.is_empty() {
        line.push_str(&format!(", feedback fields: {}", ev.feedback_fields.join(", ")));
    }
    println!("{}", sanitize(&line));
    if let Some(line) = objectives_line(project) {
        println!("{}", sanitize(&line));
    }
    println!();
    println!("Models");
    for (name, m) in &c.models {
        let (provider, default_env) = match m.provider {
            ProviderKind::Openai => ("openai", crate::llm::openai::DEFAULT_KEY_ENV),
            ProviderKind::Anthropic => ("anthropic", crate::llm::anthropic::DEFAULT_KEY_ENV),
        };
        // The URL requests go to, and whether it came from the environment (never the key).
        let at = match crate::llm::http::endpoint(m) {
            Ok(e) if e.source.ends_with("_BASE_URL") => format!("{} (from ${})", e.url, e.source),
            Ok(e) => e.url,
            Err(e) => format!("an unusable URL: {e}"),
        };
        let env = m.api_key_env.as_deref().unwrap_or(default_env);
        // Only whether the variable is set: its value never reaches the screen.
        let key = if std::env::var_os(env).is_some_and(|v| !v.is_empty()) { "set" } else { "not set" };
        let line = format!("  {name}: {provider} `{}` at {at} (key ${env}: {key})", m.model);
        println!("{}", sanitize(&line));
    }
}

/// `Objectives: correct, leak (evaluator parts), prompt_tokens (built in, lower is better) ·
/// frontier hybrid`, when the project records any or selects over them.
fn objectives_line(project: &Project) -> Option<String> {
    let (c, ev) = (&project.config, &project.evaluator);
    let mut parts = Vec::new();
    let part_objectives = ev.part_objectives();
    if !part_objectives.is_empty() {
        parts.push(format!("{} (evaluator parts)", part_objectives.join(", ")));
    }
    let commands = !ev.commands().is_empty();
    if !c.optimizer.objectives.is_empty() {
        let names: Vec<&str> = c.optimizer.objectives.iter().map(|b| b.as_str()).collect();
        parts.push(format!("{} (built in, lower is better)", names.join(", ")));
    }
    if parts.is_empty() && c.optimizer.frontier.is_instance() {
        return None;
    }
    if commands {
        parts.push("any \"scores\" the command scorer prints".into());
    }
    let listed = if parts.is_empty() { "none".to_string() } else { parts.join(", ") };
    Some(format!("Objectives: {listed} · frontier {}", c.optimizer.frontier.as_str()))
}

/// Suggests `[reflection] template = "compact"` when the reflection model's id names a size of
/// 8B parameters or less (`qwen2.5-coder-1.5b-instruct`, `llama3.2:3b`): such models echo the
/// examples or answer them under gepa's long template. A name rule, so it costs no call.
fn compact_hint(project: &Project) -> Option<String> {
    let r = &project.config.reflection;
    if r.template_file.is_some() || r.template != crate::project::config::TemplateKind::Gepa {
        return None;
    }
    let model = &project.config.models.get("reflection")?.model;
    let size = model_size_billions(model).filter(|b| *b <= 8.0)?;
    Some(format!(
        "Hint: the reflection model `{model}` looks small ({size}B parameters); [reflection] template = \"compact\" \
         asks it for only the revised instruction, which small models manage better than gepa's template"
    ))
}

/// The parameter count an id names in billions: `1.5b`, `3B`, `7b` (after a separator).
fn model_size_billions(model: &str) -> Option<f64> {
    let lower = model.to_ascii_lowercase();
    lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .filter_map(|part| part.strip_suffix('b')?.parse::<f64>().ok())
        .find(|b| *b > 0.0)
}

/// argv as a person would type it, quoting what a shell would split or expand.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars().all(|c| {
                    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '=' | ':' | '@' | '%' | '+' | ',')
                });
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asks each model for one word, without the cache (a cached reply would prove nothing), and
/// returns a problem per model that did not answer.
fn ping_models(project: &Project) -> Vec<String> {
    let mut configs = project.config.models.clone();
    for m in configs.values_mut() {
        m.max_retries = m.max_retries.min(1);
        m.request_timeout_secs = m.request_timeout_secs.min(PING_TIMEOUT_SECS);
        m.max_tokens = Some(m.max_tokens.unwrap_or(16).min(16));
    }
    let models = match Models::from_config(&configs, ModelsOptions::default()) {
        Ok(m) => m,
        Err(e) => return vec![e.to_string()],
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return vec![format!("cannot start the async runtime: {e}")],
    };
    let request = ChatRequest::new(vec![Message::user("Reply with the single word: ok")]);
    let results = runtime.block_on(async {
        let pings = models.iter().map(|(name, model)| {
            let request = &request;
            async move {
                let start = Instant::now();
                let limit = Duration::from_secs_f64(PING_TIMEOUT_SECS * 2.0 + 5.0);
                let reply = tokio::time::timeout(limit, model.chat(request)).await;
                (name.to_string(), start.elapsed(), reply)
            }
        });
        futures::future::join_all(pings).await
    });
    let mut problems: Vec<String> = Vec::new();
    // Each problem once: models whose server does not listen at the same URL are one problem.
    let mut not_listening: Vec<(String, Vec<String>)> = Vec::new();
    for (name, elapsed, reply) in results {
        match reply {
            Ok(Ok(r)) => println!(
                "  ✓ {name}: answered in {:.1} s: {:?}",
                elapsed.as_secs_f64(),
                truncate_chars(&sanitize(r.text.trim()), 40)
            ),
            Ok(Err(LlmError::NothingListens { url, .. })) => {
                println!("  ✗ {name}: no answer (below)");
                match not_listening.iter_mut().find(|(u, _)| *u == url) {
                    Some((_, names)) => names.push(name),
                    None => not_listening.push((url, vec![name])),
                }
            }
            Ok(Err(e)) => {
                println!("  ✗ {name}: no answer (below)");
                problems.push(ping_problem(&e));
            }
            Err(_) => {
                println!("  ✗ {name}: no answer in {:.0} s", elapsed.as_secs_f64());
                problems.push(format!("model `{name}` did not answer in {:.0} s", elapsed.as_secs_f64()));
            }
        }
    }
    for (url, names) in not_listening {
        let who: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        let (s, its) = if names.len() == 1 { ("", "its") } else { ("s", "their") };
        problems.push(format!(
            "model{s} {}: nothing listens at {url} (connection refused). Start {its} server, e.g. `ollama serve` \
             (Ollama; base_url = \"http://localhost:11434/v1\") or `llama-server -m MODEL.gguf --port 8080` \
             (llama.cpp; base_url = \"http://127.0.0.1:8080/v1\"), or fix base_url in gepa.toml",
            who.join(", ")
        ));
    }
    problems
}

/// A failed ping in one line: the provider's words, not the HTTP client's whole chain of causes.
fn ping_problem(e: &LlmError) -> String {
    match e {
        LlmError::Exhausted { model, attempts, last } => {
            format!("model `{model}`: no answer after {attempts} attempts: {}", crate::llm::model::short_reason(last))
        }
        LlmError::Outage { model, last, .. } => {
            format!("model `{model}`: no answer: {}", crate::llm::model::short_reason(last))
        }
        other => other.to_string(),
    }
}

/// A warning when the reflection model's `max_tokens` leaves a small model too little room for
/// the template's answer: under gepa's template, models of 8B parameters or fewer ramble for
/// hundreds of tokens before the instruction (with 400, 14 of 18 answers of a 1.5B model were
/// cut off); the compact template's answer is the instruction alone (about 110 tokens measured).
fn max_tokens_warning(project: &Project) -> Option<String> {
    let r = &project.config.reflection;
    if r.template_file.is_some() {
        return None;
    }
    let m = project.config.models.get("reflection")?;
    let max = m.max_tokens?;
    let size = model_size_billions(&m.model).filter(|b| *b <= 8.0)?;
    let (name, needs) = match r.template {
        crate::project::config::TemplateKind::Gepa => ("gepa's", 1000),
        crate::project::config::TemplateKind::Compact => ("the compact", 256),
    };
    (max < needs).then(|| {
        format!(
            "Warning: [models.reflection] max_tokens = {max} is small for {name} template on `{}` ({size}B parameters): \
             its answers are often cut off before the new instruction ends. Give it max_tokens = {needs} or more \
             (a cut-off answer is asked again with [reflection] retry_max_tokens = {} tokens)",
            m.model,
            r.retry_tokens(Some(max)).unwrap_or(max)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_quotes_what_a_shell_would_split() {
        let argv: Vec<String> =
            ["python3", "scripts/score.py", "--mode=strict", "a b", "it's"].map(String::from).into();
        assert_eq!(shell_words(&argv), r"python3 scripts/score.py --mode=strict 'a b' 'it'\''s'");
    }

    #[test]
    fn model_sizes_are_read_from_their_ids() {
        assert_eq!(model_size_billions("qwen2.5-coder-1.5b-instruct"), Some(1.5));
        assert_eq!(model_size_billions("llama3.2:3b"), Some(3.0));
        assert_eq!(model_size_billions("Qwen/Qwen2.5-72B-Instruct"), Some(72.0));
        assert_eq!(model_size_billions("gpt-4.1-mini"), None);
        assert_eq!(model_size_billions("claude-sonnet-4-5"), None);
    }
}

//! A small scripted GEPA problem shared by the engine and TUI tests.
//!
//! Each example belongs to a group A–H and is answered right only when the system prompt mentions
//! that group's rule ("rule C"); the feedback names the rule. The scripted reflection model adds
//! every rule it reads about to the instruction. So GEPA has real work: each minibatch teaches a few
//! rules, children specialise, the Pareto front holds several candidates, and merges can combine
//! two components' rules.
#![allow(dead_code)]

use gepa_tui::eval::Task;
use gepa_tui::llm::scripted::ScriptedBackend;
use gepa_tui::llm::{AttemptError, ChatBackend, ChatRequest, Models, ModelsOptions};
use gepa_tui::project::Project;
use std::path::Path;
use std::sync::Arc;

pub const GROUPS: &[char] = &['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'];

pub fn write_project(dir: &Path, extra_optimizer: &str) {
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("gepa.toml"),
        format!(
            r#"
[models.task]
provider = "openai"
model = "scripted-task"
base_url = "http://127.0.0.1:9/v1"
temperature = 0.0
price_input_per_mtok = 1.0
price_output_per_mtok = 2.0

[models.reflection]
provider = "openai"
model = "scripted-reflection"
base_url = "http://127.0.0.1:9/v1"
temperature = 0.0

[[components]]
name = "instruction"
file = "prompts/instruction.md"

[[components]]
name = "format"
file = "prompts/format.md"

[system]
kind = "chat"
[[system.steps]]
name = "answer"
system = "{{{{instruction}}}}\n{{{{format}}}}"
user = "{{{{input}}}}"

[data]
train = "data/train.jsonl"
val = "data/val.jsonl"
test = "data/test.jsonl"

[evaluator]
kind = "exact"
field = "expected"
feedback_fields = ["hint"]

[optimizer]
{extra_optimizer}
"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join("prompts/instruction.md"), "Answer the item.").unwrap();
    std::fs::write(dir.join("prompts/format.md"), "Reply with the code only.").unwrap();
    let line = |i: usize, g: char| {
        format!(
            "{{\"id\": \"ex{i}\", \"input\": \"item {i} of group {g}\", \"expected\": \"{g}-ok\", \"hint\": \"group {g} needs rule {g}\"}}\n"
        )
    };
    let mut train = String::new();
    let mut val = String::new();
    let mut test = String::new();
    for i in 0..24 {
        train.push_str(&line(i, GROUPS[(i * 3) % 8]));
    }
    for i in 100..116 {
        val.push_str(&line(i, GROUPS[i % 8]));
    }
    for i in 200..208 {
        test.push_str(&line(i, GROUPS[(i + 1) % 8]));
    }
    // Group A is answered right by the seed, so the seed is not all-zero.
    std::fs::write(dir.join("prompts/instruction.md"), "Answer the item. rule A").unwrap();
    std::fs::write(dir.join("data/train.jsonl"), train).unwrap();
    std::fs::write(dir.join("data/val.jsonl"), val).unwrap();
    std::fs::write(dir.join("data/test.jsonl"), test).unwrap();
}

/// A runtime as the engine tests use: two worker threads, like the CI machine.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The scripted project in a fresh temporary folder, `extra` under `[optimizer]`.
pub fn scripted_project(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("proj");
    write_project(&p, extra);
    (dir, p)
}

/// The scripted task model: "G-ok" when the system prompt mentions "rule G", else a wrong answer.
pub fn task_reply(req: &ChatRequest) -> String {
    let system =
        req.messages.iter().find(|m| m.role == gepa_tui::llm::Role::System).map(|m| m.content.as_str()).unwrap_or("");
    let user = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == gepa_tui::llm::Role::User)
        .map(|m| m.content.as_str())
        .unwrap_or("");
    let group = user.chars().last().unwrap_or('?');
    if system.contains(&format!("rule {group}")) {
        format!("{group}-ok")
    } else {
        "not sure".to_string()
    }
}

/// The scripted reflection model: keeps the current text and adds the rules the feedback names,
/// at most two new ones per reflection so learning takes several rounds.
pub fn reflection_reply(req: &ChatRequest) -> String {
    let prompt = &req.messages.last().unwrap().content;
    let start = prompt.find("```\n").map(|i| i + 4).unwrap_or(0);
    let end = prompt[start..].find("\n```").map(|i| start + i).unwrap_or(start);
    let current = &prompt[start..end];
    let mut text = current.to_string();
    let mut added = 0;
    for g in GROUPS {
        let rule = format!("rule {g}");
        if prompt[end..].contains(&format!("needs {rule}")) && !text.contains(&rule) && added < 2 {
            text.push_str(&format!(" {rule}"));
            added += 1;
        }
    }
    format!("Here is a better instruction:\n```\n{text}\n```")
}

/// Called with the 1-based number of each reflection request (lets a test act mid-run, deterministically).
pub type ReflectionHook = Arc<dyn Fn(u64) + Send + Sync>;

pub fn scripted_models(project: &Project, hook: Option<ReflectionHook>) -> Models {
    scripted_models_with(project, hook, None)
}

/// The scripted models, each reply delayed at random up to `jitter` (calls return out of order).
pub fn scripted_models_with(
    project: &Project,
    hook: Option<ReflectionHook>,
    jitter: Option<std::time::Duration>,
) -> Models {
    let shake = |b: ScriptedBackend| match jitter {
        Some(j) => b.with_jitter(j),
        None => b,
    };
    let task: Arc<dyn ChatBackend> =
        Arc::new(shake(ScriptedBackend::new(move |req: &ChatRequest| Ok::<_, AttemptError>(task_reply(req)))));
    let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let refl: Arc<dyn ChatBackend> = Arc::new(shake(ScriptedBackend::new(move |req: &ChatRequest| {
        let k = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if let Some(h) = &hook {
            h(k);
        }
        Ok::<_, AttemptError>(reflection_reply(req))
    })));
    models_from(project, task, refl)
}

/// Models that answer the task (and judge) with `task` and reflections with `refl`, through the
/// real cache, concurrency limit and accounting.
pub fn models_from(project: &Project, task: Arc<dyn ChatBackend>, refl: Arc<dyn ChatBackend>) -> Models {
    Models::from_config(
        &project.config.models,
        ModelsOptions {
            cache_dir: Some(project.cache_dir()),
            offline: false,
            backend_override: Some(Arc::new(
                move |name: &str, _cfg: &gepa_tui::project::config::ModelConfig| {
                    if name == "reflection" {
                        refl.clone()
                    } else {
                        task.clone()
                    }
                },
            )),
            retry_base_delay: Some(std::time::Duration::from_millis(1)),
            // As a run does (cli::run::prepare): an outage is waited for, never scored.
            max_outage: Some(std::time::Duration::from_secs_f64(project.config.optimizer.max_outage_secs)),
            ..Default::default()
        },
    )
    .unwrap()
}

pub fn load(dir: &Path) -> (Arc<Project>, Arc<Task>) {
    load_with(dir, None)
}

pub fn load_with(dir: &Path, hook: Option<ReflectionHook>) -> (Arc<Project>, Arc<Task>) {
    load_jittered(dir, hook, None)
}

pub fn load_jittered(
    dir: &Path,
    hook: Option<ReflectionHook>,
    jitter: Option<std::time::Duration>,
) -> (Arc<Project>, Arc<Task>) {
    let project = Arc::new(Project::load(dir).unwrap());
    let models = Arc::new(scripted_models_with(&project, hook, jitter));
    let task = Arc::new(Task::new(project.clone(), models).unwrap());
    (project, task)
}

/// Copies a folder tree (files and folders; folders named in `skip` are left out).
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if !skip.iter().any(|s| e.file_name() == *s) {
                copy_tree(&e.path(), &target, skip);
            }
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The events the fold keeps, in the order it applies them: a voided round's events, and any
/// human decision it carried (recorded again in the round planned in its place), are left out.
#[allow(dead_code)]
pub fn committed(events: &[gepa_tui::engine::Event]) -> Vec<gepa_tui::engine::Event> {
    let mut commits = gepa_tui::engine::state::CommitBuffer::default();
    events.iter().flat_map(|ev| commits.feed(ev, ev.clone())).collect()
}

/// Whether this is a CI run (`CI` set to anything but empty, `0` or `false`): there a test whose
/// prerequisite is missing fails instead of skipping, so a CI machine cannot pass a test it never ran.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// A test that cannot run here because `what` is missing: under CI a failure naming it; elsewhere
/// the test says "skipped" and returns (the caller returns). Each skip is appended to the file
/// `GEPA_TEST_SKIP_LOG` names, which `.ci/run` counts.
pub fn missing_prerequisite(test: &str, what: &str) {
    if under_ci() {
        panic!("{test}: {what} is missing, and under CI this test must run, not skip (.ci/run installs it)");
    }
    eprintln!("skipped: {test}: {what} is missing");
    if let Some(log) = std::env::var_os("GEPA_TEST_SKIP_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        writeln!(f, "{test}: {what} is missing").unwrap();
    }
}

/// Whether tmux can be started; when it cannot, reports the missing prerequisite for `test`.
pub fn have_tmux(test: &str) -> bool {
    let ok = std::process::Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        missing_prerequisite(test, "tmux (the smoke test drives the real binary in it; apt-get install tmux)");
    }
    ok
}

/// `write_project` with both models pointed at an OpenAI-compatible server at `base_url` (the
/// key read from `key_env`), plus `model_extra` settings for both.
pub fn write_project_served(dir: &Path, extra_optimizer: &str, base_url: &str, key_env: &str, model_extra: &str) {
    write_project(dir, extra_optimizer);
    let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
    let models = format!("base_url = \"{base_url}\"\napi_key_env = \"{key_env}\"\n{model_extra}");
    let toml = toml.replace("base_url = \"http://127.0.0.1:9/v1\"", &models);
    std::fs::write(dir.join("gepa.toml"), toml).unwrap();
}

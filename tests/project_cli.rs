//! The project-facing commands as a user runs them: `check`, `eval` and `init` on folders under
//! tests/fixtures/ (each a copy of `valid` with one thing broken), and `eval` against a local
//! OpenAI-compatible mock.

mod common;
use assert_cmd::Command;
use std::path::{Path, PathBuf};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn gepa() -> Command {
    let mut cmd = Command::cargo_bin("gepa-tui").expect("the gepa-tui binary");
    cmd.env_remove("OPENAI_API_KEY").env_remove("ANTHROPIC_API_KEY");
    cmd
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn run(cmd: &mut Command) -> Outcome {
    let out = cmd.output().expect("run gepa-tui");
    let o = Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!o.stderr.contains("panicked"), "gepa-tui panicked:\n{}", o.stderr);
    o
}

/// Runs `check --offline` on a fixture, expecting failure, and returns everything it printed.
fn check_fails(dir: &Path) -> String {
    let o = run(gepa().arg("check").arg("--offline").arg(dir));
    assert_eq!(o.code, Some(1), "check should fail:\n{}", o.all());
    o.all()
}

/// A copy of the `valid` fixture in a temp folder, its models pointed at `base_url`.
fn valid_project_at(base_url: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_tree(&fixture("valid"), tmp.path(), &[]);
    let toml_path = tmp.path().join("gepa.toml");
    let text = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(&toml_path, text.replace("http://127.0.0.1:9/v1", base_url)).unwrap();
    tmp
}

#[test]
fn valid_fixture_passes_offline_check() {
    let o = run(gepa().arg("check").arg("--offline").arg(fixture("valid")));
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(o.stdout.contains("instruction"), "{}", o.stdout);
    assert!(o.stdout.contains("val    data/val.jsonl    4 examples"), "{}", o.stdout);
}

/// `check` says which objectives a run will record and the frontier, and nothing when there are
/// none; a frontier that would have nothing to select over is refused, naming the line.
#[test]
fn check_names_the_objectives_and_the_frontier() {
    let o = run(gepa().arg("check").arg("--offline").arg(fixture("valid")));
    assert!(!o.stdout.contains("Objectives"), "{}", o.stdout);
    let tmp = valid_project_at("http://127.0.0.1:9/v1");
    let toml_path = tmp.path().join("gepa.toml");
    let text = std::fs::read_to_string(&toml_path).unwrap();
    let with =
        |opt: &str| std::fs::write(&toml_path, text.replace("[optimizer]", &format!("[optimizer]\n{opt}"))).unwrap();
    with("objectives = [\"prompt_tokens\", \"cost_usd\"]\nfrontier = \"hybrid\"");
    let o = run(gepa().arg("check").arg("--offline").arg(tmp.path()));
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(
        o.stdout.contains("Objectives: prompt_tokens, cost_usd (built in, lower is better) · frontier hybrid"),
        "{}",
        o.stdout
    );
    with("frontier = \"cartesian\"");
    let o = run(gepa().arg("check").arg("--offline").arg(tmp.path()));
    assert_ne!(o.code, Some(0));
    let line = text.lines().position(|l| l == "[optimizer]").unwrap() + 2;
    assert!(
        o.all().contains(&format!("gepa.toml:{line}: [optimizer] frontier = \"cartesian\" needs objectives")),
        "{}",
        o.all()
    );
}

#[test]
fn typo_key_names_file_line_and_suggestion() {
    let out = check_fails(&fixture("typo_key"));
    assert!(
        out.contains(
            "gepa.toml:37: unknown key `candidate_selecton` in [optimizer]; did you mean `candidate_selection`?"
        ),
        "{out}"
    );
}

#[test]
fn missing_prompt_file_names_key_line_and_path() {
    let out = check_fails(&fixture("missing_prompt"));
    assert!(out.contains("gepa.toml:17: component `instruction`: file \"prompts/instruction.md\" not found"), "{out}");
}

#[test]
fn bad_jsonl_line_names_file_and_line() {
    let out = check_fails(&fixture("bad_jsonl"));
    assert!(out.contains("data/val.jsonl:3: expected a JSON object: "), "{out}");
}

#[test]
fn unknown_placeholder_names_step_and_placeholder() {
    let out = check_fails(&fixture("unknown_placeholder"));
    assert!(
        out.contains(
            "gepa.toml:24: step `answer`, user template: unknown placeholder `{{qestion}}`; did you mean `{{question}}`?"
        ),
        "{out}"
    );
    assert!(out.contains("example fields {{id}}, {{question}}, {{answer}}"), "{out}");
}

#[test]
fn path_escaping_the_project_is_refused() {
    let out = check_fails(&fixture("path_escape"));
    assert!(
        out.contains(
            "gepa.toml:17: component `instruction`: \"../valid/prompts/instruction.md\" is outside the project folder"
        ),
        "{out}"
    );
}

#[cfg(unix)]
#[test]
fn symlink_leading_outside_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.md");
    std::fs::write(&secret, "not yours").unwrap();
    let project = valid_project_at("http://127.0.0.1:9/v1");
    let prompt = project.path().join("prompts/instruction.md");
    std::fs::remove_file(&prompt).unwrap();
    std::os::unix::fs::symlink(&secret, &prompt).unwrap();
    let out = check_fails(project.path());
    assert!(out.contains("leads outside the project folder (through a symlink"), "{out}");
}

#[test]
fn eval_on_a_broken_project_fails_with_the_same_message() {
    let o = run(gepa().args(["eval", "--offline", "--split", "val"]).arg(fixture("bad_jsonl")));
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("data/val.jsonl:3: expected a JSON object"), "{}", o.all());
}

#[test]
fn not_a_project_folder() {
    let empty = tempfile::tempdir().unwrap();
    let out = check_fails(empty.path());
    assert!(out.contains("no gepa.toml in this folder"), "{out}");
    assert!(out.contains("gepa-tui init"), "{out}");
    let out = check_fails(&empty.path().join("nope"));
    assert!(out.contains("nope: no such folder"), "{out}");
}

#[test]
fn init_then_check_passes_and_init_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("starter");
    let o = run(gepa().arg("init").arg(&dir));
    assert_eq!(o.code, Some(0), "{}", o.all());
    for f in
        ["gepa.toml", "prompts/instruction.md", "data/train.jsonl", "data/val.jsonl", "data/test.jsonl", ".gitignore"]
    {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(std::fs::read_to_string(dir.join(".gitignore")).unwrap().contains(".gepa/"));

    let o = run(gepa().arg("check").arg("--offline").arg(&dir));
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(o.stdout.contains("train  data/train.jsonl  6 examples"), "{}", o.stdout);

    // A second init touches nothing and names the file it would have overwritten.
    std::fs::write(dir.join("prompts/instruction.md"), "my own prompt").unwrap();
    let o = run(gepa().arg("init").arg(&dir));
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("gepa.toml already exists"), "{}", o.all());
    assert_eq!(std::fs::read_to_string(dir.join("prompts/instruction.md")).unwrap(), "my own prompt");
}

#[test]
fn init_in_a_repository_keeps_its_gitignore() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join(".gitignore"), "target/\n").unwrap();
    let o = run(gepa().arg("init").arg(tmp.path()));
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(std::fs::read_to_string(tmp.path().join(".gitignore")).unwrap(), "target/\n");
    assert!(o.stdout.contains("add `.gepa/` to your .gitignore"), "{}", o.stdout);
}

#[test]
fn eval_candidate_and_missing_test_split_are_explained() {
    let o = run(gepa().args(["eval", "--offline", "--candidate", "r1:3"]).arg(fixture("valid")));
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("no run `r1`"), "{}", o.all());
    let o = run(gepa().args(["eval", "--offline", "--split", "test"]).arg(fixture("valid")));
    assert_ne!(o.code, Some(0));
    assert!(o.stderr.contains("no test split"), "{}", o.all());
    let o = run(gepa().args(["eval", "--offline", "--split", "dev"]).arg(fixture("valid")));
    assert!(o.stderr.contains("unknown split `dev`"), "{}", o.all());
}

fn completion(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 1}
    }))
}

/// A mock that answers the val questions 1+1 and 2+2 right, 3+3 and 4+4 wrong: mean 0.5.
async fn arithmetic_mock() -> MockServer {
    let server = MockServer::start().await;
    for (question, reply) in [("1+1", "2"), ("2+2", " 4\n"), ("3+3", "7"), ("4+4", "The answer is 8")] {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_string_contains(format!("Question: {question}")))
            .respond_with(completion(reply))
            .mount(&server)
            .await;
    }
    server
}

async fn run_async(mut cmd: Command) -> Outcome {
    tokio::task::spawn_blocking(move || run(&mut cmd)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_scores_the_seed_and_replays_from_cache() {
    let server = arithmetic_mock().await;
    let project = valid_project_at(&format!("{}/v1", server.uri()));

    let mut cmd = gepa();
    cmd.args(["eval", "--split", "val", "--json"]).arg(project.path());
    let o = run_async(cmd).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let report: serde_json::Value = serde_json::from_str(o.stdout.trim()).expect(&o.stdout);
    assert_eq!(report["split"], "val");
    assert_eq!(report["mean"], 0.5);
    let examples = report["examples"].as_array().unwrap();
    let ids: Vec<&str> = examples.iter().map(|e| e["example_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["v1", "v2", "v3", "v4"]);
    assert_eq!(examples[2]["feedback"], "Expected \"6\", got \"7\".\nhint: Three plus three is six.");
    assert_eq!(server.received_requests().await.unwrap().len(), 4);

    // The same evaluation again: every reply comes from .gepa/cache/, no request is sent.
    server.reset().await;
    let mut cmd = gepa();
    cmd.args(["eval", "--split", "val"]).arg(project.path());
    let o = run_async(cmd).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(o.stdout.contains("mean 0.500 over 4 examples"), "{}", o.stdout);
    assert!(o.stdout.contains("0 model requests, 4 from cache"), "{}", o.stdout);
    assert!(o.stdout.contains("Expected \"6\", got \"7\"."), "{}", o.stdout);
    assert_eq!(server.received_requests().await.unwrap().len(), 0);

    // And offline, where a miss would be an error.
    let mut cmd = gepa();
    cmd.args(["eval", "--offline", "--split", "val", "--json"]).arg(project.path());
    let o = run_async(cmd).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let report: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(report["mean"], 0.5);
    assert!(report.get("objectives").is_none(), "{report}");

    // With a built-in objective on (the requests are the same, so still offline): its mean over
    // the examples, the natural way round; the mock says every reply is 1 token long.
    let toml_path = project.path().join("gepa.toml");
    let text = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(&toml_path, text.replace("[optimizer]", "[optimizer]\nobjectives = [\"output_tokens\"]")).unwrap();
    let mut cmd = gepa();
    cmd.args(["eval", "--offline", "--split", "val", "--json"]).arg(project.path());
    let o = run_async(cmd).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let report: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(report["objectives"]["output_tokens"], 1.0);
    assert_eq!(report["examples"][0]["objectives"]["output_tokens"], -1.0);
    let mut cmd = gepa();
    cmd.args(["eval", "--offline", "--split", "val"]).arg(project.path());
    let o = run_async(cmd).await;
    assert!(o.stdout.contains("objectives (mean): output_tokens 1\n"), "{}", o.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_table_sanitizes_model_text() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(completion("\u{1b}]0;pwned\u{7}\u{1b}[31m2\u{1b}[0m"))
        .mount(&server)
        .await;
    let project = valid_project_at(&format!("{}/v1", server.uri()));
    let mut cmd = gepa();
    cmd.args(["eval", "--split", "val"]).arg(project.path());
    let o = run_async(cmd).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(!o.stdout.contains('\u{1b}'), "{:?}", o.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_pings_models() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(completion("ok")).mount(&server).await;
    let project = valid_project_at(&format!("{}/v1", server.uri()));
    let mut cmd = gepa();
    cmd.arg("check").arg(project.path());
    let o = run_async(cmd).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(o.stdout.contains("✓ task: answered"), "{}", o.stdout);
    // Two pings, then the forecast's dry run: the seed on 3 val examples, one step each.
    assert!(
        o.stdout.contains("Forecast (the seed scored on 3 val examples as a dry run; part of no run"),
        "{}",
        o.stdout
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2 + 3);

    // A server that refuses the key is a problem check reports.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string("{\"error\": \"bad key\"}"))
        .mount(&server)
        .await;
    let mut cmd = gepa();
    cmd.arg("check").arg(project.path());
    let o = run_async(cmd).await;
    assert_eq!(o.code, Some(1), "{}", o.all());
    // Said once (the ping line points below), naming the model.
    assert!(o.stdout.contains("✗ task: no answer (below)"), "{}", o.stdout);
    assert_eq!(o.stdout.matches("refused the key").count(), 2, "once per model: {}", o.stdout);
    assert!(o.stdout.contains("model `task ("), "{}", o.stdout);
}

/// `--help` is the manual: every command says what it does, its exit status and how to call it.
#[test]
fn every_command_has_a_manual_with_exit_status_and_examples() {
    for args in [
        vec![],
        vec!["run"],
        vec!["check"],
        vec!["eval"],
        vec!["runs"],
        vec!["export"],
        vec!["steer"],
        vec!["init"],
        vec!["completions"],
        vec!["man"],
    ] {
        let out = gepa().args(&args).arg("--help").env("COLUMNS", "80").output().unwrap();
        assert!(out.status.success(), "{args:?} --help failed");
        let text = String::from_utf8(out.stdout).unwrap();
        for section in ["Usage: gepa-tui", "Exit status:", "Example"] {
            assert!(text.contains(section), "`gepa-tui {} --help` lacks {section:?}:\n{text}", args.join(" "));
        }
        // Each example names the program, so it can be copied as it stands.
        let examples = &text[text.find("Example").unwrap()..];
        assert!(examples.lines().skip(1).any(|l| l.trim_start().starts_with("gepa-tui")), "{args:?}: {examples}");
        // The short form stays short and points at the long one.
        let short = gepa().args(&args).arg("-h").output().unwrap();
        let short = String::from_utf8(short.stdout).unwrap();
        assert!(short.len() < text.len(), "{args:?}: -h is not shorter than --help");
    }
}

/// `[models.x.extra]` passes fields through, but not the ones gepa.toml sets itself: `check`
/// names the field, its line, and the key that sets it; and `check` says where a base URL taken
/// from the environment points.
#[test]
fn extra_may_not_set_the_model_and_check_shows_an_environment_base_url() {
    let tmp = valid_project_at("http://127.0.0.1:9/v1");
    let toml_path = tmp.path().join("gepa.toml");
    let text = std::fs::read_to_string(&toml_path).unwrap();
    let bad = format!("{text}\n[models.task.extra]\nmodel = \"other\"\ntop_p = 0.5\n");
    std::fs::write(&toml_path, bad).unwrap();
    let out = check_fails(tmp.path());
    assert!(out.contains("[models.task.extra] cannot set `model`: gepa.toml sets it with model"), "{out}");
    assert!(out.contains("gepa.toml:"), "the line is named: {out}");
    assert!(!out.contains("top_p"), "{out}");

    let tmp = valid_project_at("http://127.0.0.1:9/v1");
    let text = std::fs::read_to_string(tmp.path().join("gepa.toml")).unwrap();
    let no_base: String = text.lines().filter(|l| !l.starts_with("base_url")).collect::<Vec<_>>().join("\n");
    std::fs::write(tmp.path().join("gepa.toml"), no_base).unwrap();
    let o = run(gepa().arg("check").arg("--offline").arg(tmp.path()).env("OPENAI_BASE_URL", "http://127.0.0.1:7/"));
    assert!(o.stdout.contains("at http://127.0.0.1:7/v1/chat/completions (from $OPENAI_BASE_URL)"), "{}", o.all());
}

/// Completions and the manual page come from the same definitions as --help.
#[test]
fn completions_and_the_man_page_are_generated_from_the_cli() {
    for (shell, marker) in [("bash", "_gepa__tui()"), ("zsh", "#compdef gepa-tui"), ("fish", "complete -c gepa-tui")] {
        let o = run(gepa().args(["completions", shell]));
        assert_eq!(o.code, Some(0), "{shell}: {}", o.all());
        assert!(o.stdout.contains(marker) && o.stdout.contains("headless"), "{shell}:\n{}", o.stdout);
    }
    let o = run(gepa().arg("man"));
    assert_eq!(o.code, Some(0));
    assert!(o.stdout.contains(".TH gepa-tui 1") && o.stdout.contains("completions"), "{}", o.stdout);
    let o = run(gepa().args(["completions", "nosh"]));
    assert_eq!(o.code, Some(2), "{}", o.all());
    assert!(o.stderr.contains("possible values: bash"), "{}", o.stderr);
}

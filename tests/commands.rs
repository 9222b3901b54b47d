//! `command` systems and scorers as a user runs them, through the real binary: at most
//! `[system] concurrency` / `[evaluator] concurrency` copies run at once (default: the CPU count),
//! a zero is refused naming the line, and a program past its `timeout_secs` is recorded as a
//! timeout — in `eval`, in a headless run's events and summary, and in the workbench's Traces.

use assert_cmd::Command;
use gepa_tui::engine::run::load_events;
use gepa_tui::tui::app::{App, View};
use gepa_tui::tui::keymap::Keymap;
use gepa_tui::tui::model::Model;
use gepa_tui::tui::theme::Theme;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::Value;
use std::path::Path;

/// Each copy marks itself running in a folder, watches how many marks there are for a while (or
/// until it sees more than `limit`, which a capped run never shows; `limit` 0: it does not watch),
/// appends the most it saw to `<folder>.log`, and answers. The example `slow` sleeps past any
/// timeout after that.
const PROBE: &str = r#"d=$1; limit=$2; kind=$3; slow=$4
input=$(cat)
mkdir -p "$d"
touch "$d/run.$$"
max=1; i=0
[ "$limit" = 0 ] && i=15
while [ $i -lt 15 ]; do
  n=$(ls "$d" | grep -c '^run\.')
  [ "$n" -gt "$max" ] && max=$n
  [ "$n" -gt "$limit" ] && break
  sleep 0.02; i=$((i+1))
done
rm -f "$d/run.$$"
echo "$max" >> "$d.log"
case "$input" in *"\"id\":\"$slow\""*) sleep 30;; esac
if [ "$kind" = system ]; then echo '{"output": "ok"}'; else echo '{"score": 1, "feedback": "fine"}'; fi
"#;

/// A project whose system and scorer are the probe, with 8 val examples (`v0`…`v7`) and up to 8
/// evaluations in flight. `system` and `evaluator` are extra keys of those sections.
fn project(dir: &Path, limits: (usize, usize), slow: (&str, &str), system: &str, evaluator: &str) {
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("probe.sh"), PROBE).unwrap();
    std::fs::write(dir.join("prompts/instruction.md"), "Answer.").unwrap();
    let lines: String = (0..8).map(|i| format!("{{\"id\": \"v{i}\", \"input\": \"item {i}\"}}\n")).collect();
    std::fs::write(dir.join("data/train.jsonl"), &lines).unwrap();
    std::fs::write(dir.join("data/val.jsonl"), &lines).unwrap();
    let toml = format!(
        r#"[models.task]
provider = "openai"
model = "unused"
base_url = "http://127.0.0.1:9/v1"

[models.reflection]
provider = "openai"
model = "unused"
base_url = "http://127.0.0.1:9/v1"

[[components]]
name = "instruction"
file = "prompts/instruction.md"

[system]
kind = "command"
command = ["sh", "probe.sh", "system", "{}", "system", "{}"]
{system}

[data]
train = "data/train.jsonl"
val = "data/val.jsonl"

[evaluator]
kind = "command"
command = ["sh", "probe.sh", "scorer", "{}", "scorer", "{}"]
{evaluator}

[optimizer]
concurrency = 8
max_metric_calls = 8
"#,
        limits.0, slow.0, limits.1, slow.1
    );
    std::fs::write(dir.join("gepa.toml"), toml).unwrap();
}

fn bin() -> Command {
    Command::cargo_bin("gepa-tui").unwrap()
}

/// The most copies of `which` ("system" or "scorer") one copy saw running at once, over all.
fn most_at_once(dir: &Path, which: &str) -> usize {
    let log = std::fs::read_to_string(dir.join(format!("{which}.log"))).unwrap();
    let seen: Vec<usize> = log.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(seen.len(), 8, "one line per val example: {log}");
    seen.into_iter().max().unwrap()
}

fn eval_json(dir: &Path) -> Value {
    let out = bin().args(["eval", "--split", "val", "--json"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// 8 evaluations may be in flight, yet no more than `[system] concurrency` programs and
/// `[evaluator] concurrency` scorers run at once.
#[test]
fn command_systems_and_scorers_run_at_most_their_concurrency_at_once() {
    let t = tempfile::tempdir().unwrap();
    project(t.path(), (2, 1), ("", ""), "concurrency = 2", "concurrency = 1");
    let report = eval_json(t.path());
    assert_eq!(report["failed"], 0, "{report}");
    assert!(most_at_once(t.path(), "system") <= 2, "more than 2 systems at once");
    assert_eq!(most_at_once(t.path(), "scorer"), 1, "more than 1 scorer at once");
}

/// Not written, the cap is the machine's CPU count.
#[test]
fn the_default_concurrency_of_commands_is_the_cpu_count() {
    let t = tempfile::tempdir().unwrap();
    let n = cpus();
    project(t.path(), (n, n), ("", ""), "", "");
    let report = eval_json(t.path());
    assert_eq!(report["failed"], 0, "{report}");
    assert!(most_at_once(t.path(), "system") <= n, "more systems at once than {n} CPUs");
    assert!(most_at_once(t.path(), "scorer") <= n, "more scorers at once than {n} CPUs");
    let out = bin().args(["check", "--offline"]).arg(t.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("System: command (timeout 60 s, at most {n} at once)")), "{stdout}");
}

/// A concurrency of 0 would run nothing: refused, naming the file, line and key.
#[test]
fn a_concurrency_of_zero_is_refused_naming_its_line() {
    for (system, evaluator, section) in [("concurrency = 0", "", "[system]"), ("", "concurrency = 0", "[evaluator]")] {
        let t = tempfile::tempdir().unwrap();
        project(t.path(), (1, 1), ("", ""), system, evaluator);
        let toml = std::fs::read_to_string(t.path().join("gepa.toml")).unwrap();
        let line = 1 + toml.lines().position(|l| l == "concurrency = 0").unwrap();
        let out = bin().args(["eval", "--split", "val"]).arg(t.path()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        let want = format!("gepa.toml:{line}: {section} concurrency must be at least 1");
        assert!(stderr.contains(&want), "{want}: {stderr}");
    }
}

/// A program past its timeout is a timeout in the record (`timed_out`), not only a 0: `eval`
/// names it for the system and for the scorer, in JSON and in its table.
#[test]
fn eval_records_a_timeout_as_a_timeout() {
    let t = tempfile::tempdir().unwrap();
    project(t.path(), (0, 0), ("v3", "v5"), "timeout_secs = 3", "timeout_secs = 3");
    let report = eval_json(t.path());
    let examples = report["examples"].as_array().unwrap();
    let by_id = |id: &str| examples.iter().find(|e| e["example_id"] == id).unwrap();
    assert_eq!(by_id("v3")["timed_out"], "system", "{}", by_id("v3"));
    assert!(by_id("v3")["error"].as_str().unwrap().contains("`sh` timed out: it did not finish within 3 s"));
    assert_eq!(by_id("v5")["timed_out"], "scorer", "{}", by_id("v5"));
    assert_eq!(by_id("v5")["score"], 0.0);
    for e in examples.iter().filter(|e| e["example_id"] != "v3" && e["example_id"] != "v5") {
        assert_eq!(e.get("timed_out"), None, "{e}");
        assert_eq!(e["score"], 1.0, "{e}");
    }
    assert_eq!((report["failed"].as_u64(), report["timed_out"].as_u64()), (Some(2), Some(2)), "{report}");

    let out = bin().args(["eval", "--split", "val"]).arg(t.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = |id: &str| stdout.lines().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{stdout}")).to_string();
    assert!(row("v3").contains("timed out (the system): `sh` timed out"), "{stdout}");
    assert!(row("v5").contains("timed out (the scorer): the scorer failed: `sh` timed out"), "{stdout}");
    assert!(stdout.contains("2 failed (2 timed out)"), "{stdout}");
}

/// A headless run records the timeout in its evaluation events and says so in its summary; the
/// workbench opened on that run marks the example ⧗ in Traces and names the timeout above it.
#[test]
fn a_run_records_a_timeout_and_shows_it_headless_and_in_traces() {
    let t = tempfile::tempdir().unwrap();
    project(t.path(), (0, 0), ("v3", ""), "timeout_secs = 3", "");
    let out = bin().args(["run", "--headless", "--json"]).arg(t.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 evaluations failed (model or program errors) and were scored 0; 1 of them timed out"),
        "{stderr}"
    );
    let events: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let val = events.iter().find(|e| e["event"] == "val_evaluated").unwrap_or_else(|| panic!("{events:?}"));
    let timed_out: Vec<&Value> =
        val["evals"].as_array().unwrap().iter().filter(|e| e["timed_out"] == "system").collect();
    assert_eq!(timed_out.len(), 1, "{val}");
    assert_eq!(timed_out[0]["example_id"], "v3");
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir(t.path()).join("result.json")).unwrap()).unwrap();
    assert_eq!(result["timed_out_evaluations"], 1, "{result}");

    let (events, _) = load_events(&run_dir(t.path()), false).unwrap();
    let project = gepa_tui::project::Project::load(t.path()).unwrap();
    let mut app = App::new(Model::from_events(&events).with_project(&project), Keymap::default(), Theme::default());
    app.select_candidate(0);
    app.goto(View::Traces);
    let screen = draw(&mut app);
    // Failures first: the timed-out example heads the list, and its trace is the one shown.
    let first = screen.lines().find(|l| l.contains(".000 v")).unwrap_or_else(|| panic!("{screen}"));
    assert!(first.starts_with("┃⧗ 0.000 v3 "), "{screen}");
    assert!(screen.contains("── Timed out: the system ran past [system] timeout_secs ──"), "{screen}");
    assert_eq!(screen.matches('⧗').count(), 1, "{screen}");
}

fn run_dir(project: &Path) -> std::path::PathBuf {
    let runs = project.join(".gepa/runs");
    let mut dirs: Vec<_> = std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn draw(app: &mut App) -> String {
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    term.draw(|f| app.render(f)).unwrap();
    let buf = term.backend().buffer();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>().trim_end().to_string() + "\n")
        .collect()
}

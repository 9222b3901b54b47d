//! Attach (issue 26): a workbench opened on a run another process runs follows it through the
//! run's files and steers it through its inbox. The run here is the real binary, headless, against
//! `fault_server` (the scripted GEPA problem of `tests/common` over HTTP, with latency per call).

mod common;
mod fault_server;

use fault_server::{FaultServer, Plan};
use gepa_tui::engine::event::HumanAction;
use gepa_tui::engine::run::load_events;
use gepa_tui::store::RunLock;
use gepa_tui::tui::app::{App, EngineCommand};
use gepa_tui::tui::keymap::Keymap;
use gepa_tui::tui::model::Model;
use gepa_tui::tui::remote::{Follower, Remote};
use gepa_tui::tui::theme::Theme;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY_ENV: &str = "GEPA_ATTACH_TEST_KEY";

/// Generous: a loaded 2-core machine compiling beside the test is slow, never stuck.
const DEADLINE: Duration = Duration::from_secs(180);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gepa-tui")
}

/// The scripted project with both models on `base_url`.
fn project_at(dir: &Path, base_url: &str, optimizer: &str) {
    common::write_project(dir, optimizer);
    let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
    let models = format!("base_url = \"{base_url}\"\napi_key_env = \"{KEY_ENV}\"\nrequest_timeout_secs = 20.0");
    std::fs::write(dir.join("gepa.toml"), toml.replace("base_url = \"http://127.0.0.1:9/v1\"", &models)).unwrap();
}

/// Polls `cond` until it holds (Ok); panics with `what` and the last state it reported past the
/// deadline.
fn wait_until(what: &str, mut cond: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    while let Err(state) = cond() {
        assert!(start.elapsed() < DEADLINE, "{what} did not happen within {DEADLINE:?}:\n{state}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ok_if(cond: bool, state: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(state())
    }
}

/// The only run folder of the project, once there is one.
fn the_run(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir.join(".gepa/runs"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("events.jsonl").is_file())
}

/// Ends a child process however the test ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The screen attached to a live headless run folds the log as it grows into the same Model as
/// the finished log folded at once; its decisions and controls go through the inbox and come
/// back taken, and once the process ends the screen is a browse of the finished run.
#[test]
fn the_attached_fold_equals_the_fold_of_the_finished_log() {
    let server = FaultServer::start(Plan { latency: Duration::from_millis(40), ..Plan::default() });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    project_at(&dir, &server.base_url(), "max_metric_calls = 150\nminibatch_size = 3\nseed = 3\npipeline_lag = 2");
    let child = Command::new(bin())
        .args(["run", "--headless"])
        .arg(&dir)
        .env(KEY_ENV, "sk-test")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _reaper = Reaper(child);
    let mut run_dir = None;
    wait_until("the run starting", || {
        run_dir = the_run(&dir).filter(|d| RunLock::is_held(d));
        ok_if(run_dir.is_some(), String::new)
    });
    let run_dir = run_dir.unwrap();
    let mut opened = None;
    wait_until("the run's first event", || {
        opened = Follower::open(&run_dir).unwrap().filter(|(_, _, evs)| !evs.is_empty());
        ok_if(opened.is_some(), String::new)
    });
    let (mut follower, holder, events) = opened.unwrap();
    assert_ne!(holder.pid, std::process::id(), "held by the headless process, not this one");
    let mut model = Model::from_events(&events);
    model.attached = true;
    model.remote = Some(Remote::new(holder));
    let mut app = App::new(model, Keymap::default(), Theme::default());

    // A pause and a resume from the screen are taken by the process, acked as taken.
    follower.send(&mut app, EngineCommand::Pause);
    let answered = |app: &App, n: usize| {
        app.model
            .remote
            .as_ref()
            .unwrap()
            .requests
            .iter()
            .take(n)
            .all(|r| r.answer.as_ref().is_some_and(|a| a.accepted))
    };
    wait_until("the pause taken", || {
        follower.poll(&mut app);
        ok_if(answered(&app, 1), || format!("{:?}", app.model.remote))
    });
    wait_until("the run paused", || {
        follower.poll(&mut app);
        ok_if(app.model.paused(), || format!("{:?}", app.model.live))
    });
    follower.send(&mut app, EngineCommand::Resume);
    // A decision, as the Frontier's guide key sends it.
    let guide = HumanAction::Guide { candidate: 0, note: "rule B matters".into(), example: None, component: None };
    app.model.sent.push(guide.clone());
    follower.send(&mut app, EngineCommand::Act(guide));
    wait_until("the resume and the guide taken", || {
        follower.poll(&mut app);
        ok_if(answered(&app, 3), || format!("{:?}", app.model.remote))
    });
    let lines: Vec<String> = app.model.remote.as_ref().unwrap().requests.iter().map(|r| r.line()).collect();
    assert_eq!(lines[0], "pause: sent → taken");
    assert!(lines[2].starts_with("guidance for a reflection on #0: sent → taken (round "), "{lines:?}");
    assert!(app.model.sent.is_empty() || app.model.decisions.is_empty(), "the guide is on its way or recorded");

    let mut polls = 0;
    wait_until("the run finishing", || {
        polls += 1;
        follower.poll(&mut app);
        ok_if(follower.ended(), || format!("{:?}", app.model.live))
    });
    assert!(polls > 3, "the log was followed as it grew ({polls} polls)");
    let remote = app.model.remote.as_ref().unwrap();
    assert!(remote.ended.as_deref().is_some_and(|e| e.starts_with("the run finished")), "{:?}", remote.ended);
    assert!(app.model.engine_done && !app.model.can_act(), "a browse now");

    let (all, _) = load_events(&run_dir, false).unwrap();
    let whole = Model::from_events(&all);
    let m = &app.model;
    assert!(whole.state.finished.is_some());
    assert_eq!(m.state, whole.state, "the same committed state");
    assert_eq!(m.val_evals, whole.val_evals);
    assert_eq!(m.test_evals, whole.test_evals);
    assert_eq!(m.proposals, whole.proposals);
    assert_eq!(m.decisions, whole.decisions);
    assert!(
        whole.decisions.iter().any(|(_, a)| matches!(a, HumanAction::Guide { note, .. } if note == "rule B matters")),
        "the guide sent from the screen is in the run's log"
    );
}

/// A private tmux server, killed however the test ends; each program runs in its own session.
struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").arg("-L").arg(&self.0).args(args).output().unwrap()
    }
    /// Starts `cmd` in a new 100×30 session `name`, in a shell (which stays when it ends).
    fn start(&self, name: &str, cmd: &str) {
        let out = self.run(&["new-session", "-d", "-x", "100", "-y", "30", "-s", name, "sh"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        self.keys(name, &[cmd, "Enter"]);
    }
    fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        self.run(&args);
    }
    fn screen(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", name]).stdout).into_owned()
    }
    /// Waits until session `name`'s screen satisfies `cond`; returns that screen.
    fn wait(&self, name: &str, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut seen = String::new();
        wait_until(&format!("{what} (in the `{name}` session)"), || {
            seen = self.screen(name);
            ok_if(cond(&seen), || seen.clone())
        });
        seen
    }
    fn wait_for(&self, name: &str, text: &str) -> String {
        self.wait(name, &format!("`{text}`"), |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The last line of a screen that has text (the headless progress line is redrawn in place).
fn last_line(screen: &str) -> &str {
    screen.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// The candidate count the Frontier's title shows.
fn frontier_count(screen: &str) -> Option<usize> {
    let at = screen.find("Frontier: ")? + "Frontier: ".len();
    screen[at..].split_whitespace().next()?.parse().ok()
}

/// The real thing, in tmux: a headless run waiting for reviews (about 300 ms a call), two
/// workbenches attached to it. The Frontier grows while they watch; a mutation approved on the
/// first is taken by the headless run; space pauses it (its progress line says so) and space
/// resumes it; `q` leaves it running; the second screen switches mutations to auto, approves what
/// waits, and shows the run finished.
#[test]
fn a_workbench_attaches_to_a_headless_run_in_tmux_and_steers_it() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let server = FaultServer::start(Plan { latency: Duration::from_millis(300), ..Plan::default() });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    project_at(
        &dir,
        &server.base_url(),
        "max_metric_calls = 140\nminibatch_size = 3\nseed = 7\npipeline_lag = 1\n\n[review]\nmutations = \"approve\"\nmax_pending = 2",
    );
    let tmux = Tmux(format!("gepa-tui-attach-{}", std::process::id()));
    let gepa = format!("NO_COLOR=1 {KEY_ENV}=sk-test {}", bin());
    tmux.start(
        "run",
        &format!("clear; {gepa} run --headless --wait-for-review {}; echo headless-exit=$?", dir.display()),
    );
    let mut run_dir = None;
    wait_until("the headless run taking its lock", || {
        run_dir = the_run(&dir).filter(|d| RunLock::is_held(d));
        ok_if(run_dir.is_some(), || tmux.screen("run"))
    });
    let run_dir = run_dir.unwrap();
    let run = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        tmux.wait_for("run", "items to review wait for a person").contains(&format!("gepa-tui --run {run}")),
        "the headless run says how to attach"
    );

    // Two screens attach ("a" from --run, "b" from the start screen's list).
    tmux.start("a", &format!("clear; {gepa} --run {run} {}; echo tui-exit=$?", dir.display()));
    tmux.start("b", &format!("clear; {gepa} {}; echo tui-exit=$?", dir.display()));
    tmux.wait_for("a", "attached to pid");
    let start = tmux.wait_for("b", "(attach)");
    assert!(start.contains("running") && start.contains(&run), "{start}");
    tmux.keys("b", &["Down", "Enter"]);
    tmux.wait_for("b", "attached to pid");
    let header = tmux.screen("a");
    assert!(header.contains(&format!("on {}", gepa_tui::store::runs::host_name())), "{header}");

    // The Frontier fills as the run goes: the seed, then the children approved below.
    tmux.keys("a", &["2"]);
    let before = frontier_count(&tmux.wait("a", "the Frontier", |s| frontier_count(s).is_some())).unwrap();
    // A mutation waits for review; approved from screen a, the headless run takes it.
    tmux.keys("a", &["7"]);
    tmux.wait("a", "an item waiting for review", |s| s.contains("⚑"));
    tmux.keys("a", &["a"]);
    let s =
        tmux.wait("a", "the approval taken", |s| s.contains("approval of item") && s.contains("sent → taken (round"));
    assert!(!s.contains("refused"), "{s}");
    tmux.wait_for("run", "steered (request");
    tmux.keys("a", &["2"]);
    tmux.wait("a", "the Frontier growing", |s| frontier_count(s).is_some_and(|n| n > before));

    // Space pauses the headless run (its own progress line says so) and space resumes it.
    tmux.keys("a", &["Space"]);
    tmux.wait("run", "the headless run paused", |s| last_line(s).contains("paused |"));
    tmux.wait_for("a", "pause: sent → taken");
    tmux.keys("a", &["Space"]);
    tmux.wait("run", "the headless run resumed", |s| {
        !last_line(s).contains("paused |") && last_line(s).contains("calls")
    });
    tmux.wait_for("a", "resume: sent → taken");

    // q detaches: the headless run goes on.
    tmux.keys("a", &["q"]);
    let s = tmux.wait_for("a", "tui-exit=");
    assert!(s.contains("tui-exit=0") && s.contains(&format!("detached from run {run}")), "{s}");
    assert!(RunLock::is_held(&run_dir), "the run goes on after q");
    assert!(!tmux.screen("run").contains("headless-exit="), "{}", tmux.screen("run"));

    // Screen b lets mutations through and approves what waits; the run finishes and b says so.
    tmux.keys("b", &["p"]);
    tmux.wait("b", "the policy taken", |s| s.contains("review policy") && s.contains("→ taken"));
    tmux.keys("b", &["A"]);
    let s = tmux.wait_for("run", "headless-exit=");
    assert!(s.contains("headless-exit=0") && s.contains("finished ("), "{s}");
    let s = tmux
        .wait("b", "the finish on the attached screen", |s| s.contains("✓ finished") && s.contains("the run finished"));
    assert!(!s.contains("attached to pid"), "{s}");
    tmux.keys("b", &["q"]);
    tmux.wait_for("b", "tui-exit=0");
}

//! Reliability and security (issue 7): provider faults, crashes, disk trouble, hostile input,
//! containment and secrets. The scripted GEPA problem of `tests/common` runs in the real binary
//! against `fault_server`, a misbehaving OpenAI-compatible server on 127.0.0.1.
//!
//! RELIABILITY.md summarises what each test tries and what it proves.

mod common;
mod fault_server;

use fault_server::{FailRule, Fault, FaultServer, Plan};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The variable the test projects read their key from, and a key nobody could mistake.
const KEY_ENV: &str = "GEPA_RELIABILITY_TEST_KEY";
const FAKE_KEY: &str = "sk-gepa-FAKE-5ecr3t-7f3a9c1e5b2d4086";

/// The scripted problem's optimizer settings (as in tests/engine.rs): several rounds, merges on.
const OPT: &str =
    "max_metric_calls = 160\nminibatch_size = 3\nproposals_per_round = 3\nseed = 7\nmerge = true\nmax_merges = 3";

/// Model settings for runs against the fault server: short timeouts, quick retries.
const FAST_MODEL: &str = "request_timeout_secs = 2.0\nmax_retries = 8\nretry_base_delay_secs = 0.01";

/// A measured figure RELIABILITY.md quotes, one line on stderr named by the test that measured it:
/// `scripts/reliability-figures.sh` collects them into a results file.
fn figure(what: impl std::fmt::Display) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("figure: {test}: {}", what.to_string().replace('\n', " "));
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gepa-tui")
}

struct TestProject {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

/// The scripted project of tests/common, with both models pointed at `base_url`.
fn project_at(base_url: &str, optimizer: &str, model_extra: &str) -> TestProject {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    write_project_in(&dir, base_url, optimizer, model_extra);
    TestProject { _tmp: tmp, dir }
}

fn write_project_in(dir: &Path, base_url: &str, optimizer: &str, model_extra: &str) {
    common::write_project_served(dir, optimizer, base_url, KEY_ENV, model_extra);
}

fn gepa(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env(KEY_ENV, FAKE_KEY)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// `gepa-tui run --headless --json DIR [extra…]`, to the end.
fn run_headless(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--headless", "--json", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    gepa(&args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a clean exit 0 and no panic, showing stderr otherwise.
fn assert_finished(out: &Output) {
    let err = text(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstderr:\n{err}", out.status);
    assert_no_panic(&err);
}

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "a panic:\n{stderr}");
}

/// The ids of the runs in a project.
fn run_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join(".gepa/runs"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

fn only_run(dir: &Path) -> String {
    let ids = run_ids(dir);
    assert_eq!(ids.len(), 1, "expected one run, found {ids:?}");
    ids[0].clone()
}

fn read_result(dir: &Path, run: &str) -> Value {
    let path = dir.join(".gepa/runs").join(run).join("result.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// result.json without what legitimately differs between two runs (timing, the run's id).
fn comparable(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    o.remove("run_id");
    o.remove("wall_seconds");
    // Work dropped from rounds planned ahead depends on how far they got: timing.
    o.remove("evaluations_dropped");
    // Which replies were paid and which replayed from the cache depends on what ran first (and
    // on kills and resumes); what they cost together does not.
    let replayed = o.remove("cost_usd_replayed").and_then(|c| c.as_f64()).unwrap_or(0.0);
    // Work planned ahead and dropped is paid, and how much of it there was is timing.
    let dropped = o.remove("cost_usd_dropped").and_then(|c| c.as_f64()).unwrap_or(0.0);
    let total = o["cost_usd"].as_f64().unwrap_or(0.0) - dropped + replayed;
    o.insert("cost_usd".into(), ((total * 1e9).round() / 1e9).into());
    v
}

/// The uninterrupted, fault-free reference run of a project with `optimizer` settings.
fn reference_result(optimizer: &str) -> Value {
    let server = FaultServer::start(Plan::default());
    let p = project_at(&server.base_url(), optimizer, FAST_MODEL);
    let out = run_headless(&p.dir, &[]);
    assert_finished(&out);
    let r = read_result(&p.dir, &only_run(&p.dir));
    assert_eq!(r["failed_evaluations"], 0, "{r}");
    comparable(r)
}

// ---------------------------------------------------------------------------------------------
// 1. Provider faults

/// 20% of attempts fail in every way the server can think of; the run ends exactly where the
/// fault-free run with the same seed ends.
#[test]
fn a_run_through_twenty_percent_faults_matches_the_fault_free_run() {
    let reference = reference().clone();

    let server = FaultServer::start(Plan {
        seed: 11,
        fault_percent: 20,
        max_faults_per_request: 4,
        hang: Duration::from_secs(6),
        ..Plan::default()
    });
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    let started = Instant::now();
    let out = run_headless(&p.dir, &[]);
    assert_finished(&out);
    let run = only_run(&p.dir);
    let faulty = comparable(read_result(&p.dir, &run));
    assert_eq!(faulty, reference, "faults changed the result");

    let counts = server.fault_counts();
    let attempts = server.attempts();
    let injected: usize = counts.values().sum();
    eprintln!("{:.1}s", started.elapsed().as_secs_f64());
    figure(format!("{} attempts, {injected} faults {counts:?}", attempts.len()));
    // Every kind of fault was really tried, at about the rate asked for.
    for f in Fault::TRANSIENT {
        assert!(counts.contains_key(f), "{f:?} was never injected: {counts:?}");
    }
    let rate = injected as f64 / attempts.len() as f64;
    assert!((0.1..0.3).contains(&rate), "fault rate {rate}");

    // Retry-After is obeyed: the next attempt of that body waited at least the second asked for.
    for a in attempts.iter().filter(|a| a.fault == Some(Fault::RateLimitedRetryAfter)) {
        let next = attempts.iter().find(|b| b.body_hash == a.body_hash && b.number == a.number + 1);
        let next = next.expect("a rate-limited request is retried");
        let waited = next.at.duration_since(a.at);
        assert!(waited >= Duration::from_millis(950), "retried after {waited:?} despite Retry-After: 1");
    }

    // The --json stream ends with the finished line; the summary names no failures.
    let stdout = text(&out.stdout);
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "finished");
    assert!(!text(&out.stderr).contains("evaluations failed"));
}

/// Model settings for the outage tests: retries used up within a fraction of a second, so every
/// outage below outlasts them.
const OUTAGE_MODEL: &str = "request_timeout_secs = 2.0\nmax_retries = 3\nretry_base_delay_secs = 0.01";

/// The lines of a run's events.jsonl so far.
fn log_lines(dir: &Path, run: &str) -> usize {
    run_file_lines(dir, run, "events.jsonl")
}

/// Complete lines in the run folder's file `name` (0 while it does not exist).
fn run_file_lines(dir: &Path, run: &str, name: &str) -> usize {
    let path = dir.join(".gepa/runs").join(run).join(name);
    std::fs::read(&path).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
}

/// Waits until the run has written `n` events (it must still be running).
fn wait_for_lines(dir: &Path, run: &str, n: usize, child: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while log_lines(dir, run) < n {
        assert!(child.0.try_wait().unwrap().is_none(), "the run ended after {} events", log_lines(dir, run));
        assert!(Instant::now() < deadline, "the run did not get to {n} events");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for the process to end: its exit code and what it printed on stderr.
fn wait_exit(child: &mut Running, stderr: &Path) -> (Option<i32>, String) {
    let status = child.0.wait().unwrap();
    let err = std::fs::read_to_string(stderr).unwrap();
    assert_no_panic(&err);
    (status.code(), err)
}

/// A run against a fault server answering in 5 ms, 30 events in: the server, the project, where
/// the run's stderr goes, the process and the run's id.
fn a_run_thirty_events_in() -> (FaultServer, TestProject, PathBuf, Running, String) {
    let server = FaultServer::start(Plan { latency: Duration::from_millis(5), ..Plan::default() });
    let p = project_at(&server.base_url(), OPT, OUTAGE_MODEL);
    let err_path = p.dir.join("stderr.txt");
    let mut child = spawn_headless(&p.dir, &[], &err_path);
    let run = wait_for_run_start(&p.dir, &mut child);
    wait_for_lines(&p.dir, &run, 30, &mut child);
    (server, p, err_path, child, run)
}

/// A provider that fails everything (`outage` starts it, `restore` ends it) for 3 s in the middle
/// of a run, longer than all retries take: the run holds its requests, says so, and carries on by
/// itself when the provider is back, ending exactly where the run without the outage ends.
fn survives_an_outage(outage: impl Fn(&FaultServer), restore: impl Fn(&FaultServer)) -> String {
    let reference = reference().clone();
    let (server, p, err_path, mut child, run) = a_run_thirty_events_in();
    outage(&server);
    let held_at = log_lines(&p.dir, &run);
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.0.try_wait().unwrap().is_none(), "the run ended during the outage");
    restore(&server);
    let (code, err) = wait_exit(&mut child, &err_path);
    assert_eq!(code, Some(0), "{err}");
    let r = read_result(&p.dir, &run);
    assert_eq!(r["failed_evaluations"], 0, "an outage was scored: {r}");
    assert_eq!(comparable(r), reference, "the outage changed the result");
    assert!(err.contains("waiting for model \"task\"") || err.contains("waiting for model \"reflection\""), "{err}");
    assert!(err.contains("answers again"), "{err}");
    assert!(log_lines(&p.dir, &run) > held_at, "the run went on after the outage");
    figure(format!(
        "held at event {held_at} of {}; {} attempts in all, faults {:?}",
        log_lines(&p.dir, &run),
        server.attempts().len(),
        server.fault_counts()
    ));
    eprintln!("stderr:\n{err}");
    err
}

#[test]
fn a_provider_that_stops_listening_is_waited_for_and_the_result_is_the_clean_run_s() {
    let err = survives_an_outage(FaultServer::go_down, FaultServer::come_up);
    assert!(err.contains("connection refused"), "{err}");
}

#[test]
fn a_provider_answering_503_to_everything_is_waited_for_and_the_result_is_the_clean_run_s() {
    let err = survives_an_outage(
        |s| s.set_plan(|p| p.fail_all = Some(Fault::Unavailable)),
        |s| s.set_plan(|p| p.fail_all = None),
    );
    assert!(err.contains("HTTP 503 Service Unavailable"), "{err}");
}

/// A key revoked mid-run, then an account out of credit: each stops the run at once with exit 3
/// and the fix named (the key's variable, never its value; the billing problem), scoring
/// nothing; after each fix `--resume` goes on, and the run ends as the uninterrupted one.
#[test]
fn a_revoked_key_and_an_empty_account_stop_the_run_resumably_with_the_fix_named() {
    let reference = reference().clone();
    let (server, p, err_path, mut child, run) = a_run_thirty_events_in();
    server.set_plan(|p| p.fail_all = Some(Fault::Unauthorized));
    let (code, err) = wait_exit(&mut child, &err_path);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("refused the key (HTTP 401)") && err.contains(KEY_ENV), "{err}");
    assert!(err.contains(&format!("--resume {run}")), "{err}");
    assert!(!err.contains(FAKE_KEY));
    assert!(!p.dir.join(".gepa/runs").join(&run).join("result.json").exists());

    server.set_plan(|p| p.fail_all = None);
    let mut child = spawn_headless(&p.dir, &["--resume", &run], &err_path);
    let at = log_lines(&p.dir, &run);
    wait_for_lines(&p.dir, &run, at + 20, &mut child);
    server.set_plan(|p| p.fail_all = Some(Fault::InsufficientQuota));
    let (code, err) = wait_exit(&mut child, &err_path);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("billing or quota") && err.contains("exceeded your current quota"), "{err}");
    // Billing is not a rate limit: it is asked once, not retried.
    let quota: Vec<_> = server.attempts().into_iter().filter(|a| a.fault == Some(Fault::InsufficientQuota)).collect();
    let asked: std::collections::BTreeSet<_> = quota.iter().map(|a| a.body_hash.clone()).collect();
    assert_eq!(asked.len(), quota.len(), "a request was asked again after the account was found empty");
    // At most what was in flight when it emptied: 32 evaluations and the rounds' reflections.
    assert!(quota.len() <= 32 + 4, "{} attempts hit the empty account", quota.len());
    figure(format!("faults {:?}", server.fault_counts()));
    eprintln!("quota stderr:\n{err}");

    server.set_plan(|p| p.fail_all = None);
    let mut child = spawn_headless(&p.dir, &["--resume", &run], &err_path);
    let (code, err) = wait_exit(&mut child, &err_path);
    assert_eq!(code, Some(0), "{err}");
    let r = read_result(&p.dir, &run);
    assert_eq!(r["failed_evaluations"], 0, "{r}");
    assert_eq!(comparable(r), reference, "stopping for the key and the account changed the result");
}

/// A request the provider fails every time (a 503 for one val example, cut bodies for some
/// reflections) is held past `max_outage_secs`, then the run stops resumably, saying so; nothing
/// was scored for it. Once the provider answers it, `--resume` ends as the clean run.
#[test]
fn a_request_that_keeps_failing_past_max_outage_secs_stops_the_run_resumably() {
    let reference = reference().clone();
    let server = FaultServer::start(Plan {
        fail_rules: vec![
            FailRule {
                model: Some("scripted-task".into()),
                body_contains: "item 102 of".into(),
                fault: Fault::Unavailable,
            },
            FailRule {
                model: Some("scripted-reflection".into()),
                body_contains: "item 5 of".into(),
                fault: Fault::CutJson,
            },
        ],
        ..Plan::default()
    });
    let p = project_at(&server.base_url(), &format!("{OPT}\nmax_outage_secs = 1"), OUTAGE_MODEL);
    let out = run_headless(&p.dir, &[]);
    let err = text(&out.stderr);
    assert_no_panic(&err);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("longer than [optimizer] max_outage_secs allows"), "{err}");
    let run = only_run(&p.dir);
    assert!(!p.dir.join(".gepa/runs").join(&run).join("result.json").exists());
    // Nothing was scored for the failing request: no evaluation in the log holds the error.
    let events = std::fs::read_to_string(p.dir.join(".gepa/runs").join(&run).join("events.jsonl")).unwrap();
    for line in events.lines() {
        let ev: Value = serde_json::from_str(line).unwrap();
        for e in ev["evals"].as_array().into_iter().flatten() {
            assert!(e["error"].is_null(), "a provider failure was scored: {e}");
        }
        assert_ne!(ev["outcome"]["kind"], "reflection_failed", "a provider failure ended a proposal: {ev}");
    }

    server.set_plan(|p| p.fail_rules.clear());
    let out = run_headless(&p.dir, &["--resume", &run]);
    assert_finished(&out);
    let r = read_result(&p.dir, &run);
    assert_eq!(r["failed_evaluations"], 0, "{r}");
    assert_eq!(comparable(r), reference);
}

/// A second run of the same seed is served whole from the response cache: it pays nothing, and
/// says apart what those replies cost when they were first paid for.
#[test]
fn a_run_replayed_from_the_cache_costs_nothing_and_says_what_it_would_have_cost() {
    let server = FaultServer::start(Plan::default());
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    let out = run_headless(&p.dir, &[]);
    assert_finished(&out);
    let first = read_result(&p.dir, &only_run(&p.dir));
    // What the committed work cost (work planned ahead and dropped is paid too, never replayed).
    let paid = first["cost_usd"].as_f64().unwrap() - first["cost_usd_dropped"].as_f64().unwrap()
        + first["cost_usd_replayed"].as_f64().unwrap();
    assert!(first["cost_usd"].as_f64().unwrap() > 0.0, "{first}");
    let requests = server.attempts().len();

    let out = run_headless(&p.dir, &["--offline"]);
    assert_finished(&out);
    assert_eq!(server.attempts().len(), requests, "the replay sent requests");
    let second_id = run_ids(&p.dir).into_iter().find(|id| *id != first["run_id"]).unwrap();
    let second = read_result(&p.dir, &second_id);
    assert_eq!(second["cost_usd"], 0.0, "{second}");
    let replayed = second["cost_usd_replayed"].as_f64().unwrap();
    assert!((replayed - paid).abs() < 1e-9, "replayed {replayed}, first run priced {paid}");
    let summary = text(&out.stderr);
    assert!(summary.contains("$0.0000") && summary.contains("would have cost"), "{summary}");
    assert_eq!(comparable(second), comparable(first), "the replay is the same run");
}

/// A server that answers one request at a time (a llama-server with one slot), the real binary
/// with `pipeline_lag` left to the engine: whatever lag the engine picks from its timings, the
/// run ends with the sequential loop's result. Whether it plans ahead there is timing: a starved
/// client misreads such a server as parallel (RELIABILITY.md, "Under load": 5 of 50 on one busy
/// core), so that claim is checked on tokio's paused clock, where it is exact
/// (`tests/engine.rs::against_a_one_slot_server_the_defaults_are_no_slower_than_lag_one`).
#[test]
fn a_server_answering_in_turn_ends_with_the_sequential_loop_s_result() {
    let opt = "max_metric_calls = 150\nminibatch_size = 3\nseed = 5";
    let server = FaultServer::start(Plan {
        latency: Duration::from_millis(15),
        one_slot: Some(std::sync::Arc::new(tokio::sync::Mutex::new(()))),
        ..Plan::default()
    });
    let p = project_at(&server.base_url(), opt, FAST_MODEL);
    let out = run_headless(&p.dir, &[]);
    assert_finished(&out);
    let run = only_run(&p.dir);
    let log = std::fs::read_to_string(p.dir.join(".gepa/runs").join(&run).join("events.jsonl")).unwrap();
    let rounds = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|ev| ev["event"] == "round_started" && ev["round"].as_u64().unwrap() > 0)
        .count();
    assert!(rounds >= 3, "{rounds} rounds");
    assert_eq!(comparable(read_result(&p.dir, &run)), reference_result(&format!("{opt}\npipeline_lag = 1")));
}

// ---------------------------------------------------------------------------------------------
// 2. Crash safety

/// A child process killed when dropped, so a failing test leaves no binary running.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `gepa-tui run --headless …` with stdout discarded and stderr into `stderr_to`.
fn spawn_headless(dir: &Path, extra: &[&str], stderr_to: &Path) -> Running {
    let mut args = vec!["run", "--headless", "--json", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let err = std::fs::File::create(stderr_to).unwrap();
    Running(gepa(&args).stdout(Stdio::null()).stderr(err).spawn().unwrap())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Waits until the run's events.jsonl holds its first complete line; returns the run id.
fn wait_for_run_start(dir: &Path, child: &mut Running) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(id) = run_ids(dir).first() {
            let log = dir.join(".gepa/runs").join(id).join("events.jsonl");
            if std::fs::read(&log).map(|b| b.contains(&b'\n')).unwrap_or(false) {
                return id.clone();
            }
        }
        assert!(child.0.try_wait().unwrap().is_none(), "the run ended before it started");
        assert!(Instant::now() < deadline, "the run did not start");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Kills the process with SIGKILL; true when it was still running (the kill landed mid-run).
fn kill_9(child: &mut Running) -> bool {
    let running = child.0.try_wait().unwrap().is_none();
    child.0.kill().unwrap_or(());
    let status = child.0.wait().unwrap();
    running && !status.success()
}

/// Replies the fault server holds until the test lets them through (`Plan::gate`): a run killed
/// while some are held is killed mid-run, whatever the machine's load.
struct Gate(std::sync::Arc<tokio::sync::Semaphore>);

impl Gate {
    fn new() -> Gate {
        Gate(std::sync::Arc::new(tokio::sync::Semaphore::new(0)))
    }

    /// `plan` with its replies held by this gate.
    fn holding(&self, plan: Plan) -> Plan {
        Plan { gate: Some(self.0.clone()), ..plan }
    }

    /// Lets `n` more replies go and waits until the run has taken them all.
    fn let_through(&self, n: usize, child: &mut Running) {
        self.0.add_permits(n);
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.0.available_permits() > 0 {
            assert!(child.0.try_wait().unwrap().is_none(), "the run ended with replies still held for it");
            assert!(Instant::now() < deadline, "the run stopped asking for replies");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Lets a seeded random number of replies go (1 to 16), waits a seeded random moment (up to
    /// 20 ms) for what they set going, and kills the run with SIGKILL: mid-run whatever the load,
    /// as the replies it still needs are held. `what` names the kill, `stderr` is the run's.
    fn kill_after_random_replies(
        &self,
        child: &mut Running,
        rng: &mut rand_chacha::ChaCha8Rng,
        what: &str,
        stderr: &Path,
    ) {
        use gepa_tui::engine::rng::below;
        self.let_through(1 + below(rng, 16) as usize, child);
        std::thread::sleep(Duration::from_millis(below(rng, 20) as u64));
        assert!(kill_9(child), "{what} did not land mid-run:\n{}", std::fs::read_to_string(stderr).unwrap());
    }

    /// Lets replies go one at a time, each once the run has taken the one before, until `done`
    /// says so: the run moves on only as far as `done` needs, so it is still running then
    /// however fast or slow the machine is (it fails if the run ends first).
    fn feed_until(&self, child: &mut Running, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done() {
            assert!(child.0.try_wait().unwrap().is_none(), "the run ended before {what}");
            assert!(Instant::now() < deadline, "the run never got to {what}");
            if self.0.available_permits() == 0 {
                self.0.add_permits(1);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// No reply is held from now on.
    fn open(&self) {
        self.0.close();
    }
}

/// The fault-free, uninterrupted run of the scripted problem, computed once for every test that
/// compares against it.
fn reference() -> &'static Value {
    static REFERENCE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    REFERENCE.get_or_init(|| reference_result(OPT))
}

/// A torn last line, as a crash in the middle of a write leaves it.
const TORN_LINE: &str = "{\"seq\":99999,\"t\":0,\"event\":\"round_finished\",\"round\":4,\"metric_ca";

/// `kill -9` at seeded random moments (after a random number of replies, a random moment later),
/// resume with `--resume` each time, once after a torn line was appended by hand: the end result
/// is the uninterrupted run's. The server holds the replies the kills need (`Gate`), so every
/// kill lands mid-run however busy the machine is.
#[test]
fn a_run_killed_with_sigkill_at_random_moments_resumes_to_the_same_result() {
    use rand::SeedableRng;
    let reference = reference().clone();
    let gate = Gate::new();
    let server = FaultServer::start(gate.holding(Plan::default()));
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    let logs = p.dir.parent().unwrap().join("stderr");
    std::fs::create_dir_all(&logs).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut run: Option<String> = None;
    let mut landed = 0;
    let mut torn_check: Option<PathBuf> = None;
    // Fewer replies in all (at most 8 x 16) than the run needs: none of its lives can finish.
    for attempt in 0..8 {
        let err_path = logs.join(format!("{attempt}.txt"));
        let mut child = match &run {
            None => spawn_headless(&p.dir, &[], &err_path),
            Some(id) => spawn_headless(&p.dir, &["--resume", id], &err_path),
        };
        let id = match &run {
            None => run.insert(wait_for_run_start(&p.dir, &mut child)).clone(),
            Some(id) => id.clone(),
        };
        let log = p.dir.join(".gepa/runs").join(&id).join("events.jsonl");
        if let Some(path) = torn_check.take() {
            // The resume right after the torn line must say it repaired it.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !std::fs::read_to_string(&path).unwrap_or_default().contains("torn") {
                assert!(Instant::now() < deadline, "no warning about the torn line");
                std::thread::sleep(Duration::from_millis(5));
            }
            let stderr = std::fs::read_to_string(&path).unwrap();
            assert!(stderr.contains("warning:") && stderr.contains("events.jsonl"), "{stderr}");
        }
        gate.kill_after_random_replies(&mut child, &mut rng, &format!("kill {attempt}"), &err_path);
        landed += 1;
        // Whatever the moment, the log reads back (at worst with a torn last line).
        gepa_tui::store::read_log::<serde_json::Value>(&log, false)
            .unwrap_or_else(|e| panic!("after kill {landed}: {e}"));
        if landed == 2 {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            std::io::Write::write_all(&mut f, TORN_LINE.as_bytes()).unwrap();
            torn_check = Some(logs.join(format!("{}.txt", attempt + 1)));
        }
    }
    assert!(torn_check.is_none(), "the torn line was never resumed over");

    gate.open();
    let id = run.unwrap();
    let out = run_headless(&p.dir, &["--resume", &id]);
    assert_finished(&out);
    assert_eq!(comparable(read_result(&p.dir, &id)), reference, "after {landed} kills");

    // Resuming replays from the cache: only calls in flight at a kill are asked again.
    let attempts = server.attempts();
    let mut answered = std::collections::HashSet::new();
    let mut asked_again = 0;
    for a in &attempts {
        if answered.contains(&a.body_hash) {
            asked_again += 1;
        }
        if a.fault.is_none() {
            answered.insert(a.body_hash.clone());
        }
    }
    figure(format!("{landed} kills; {} requests, {asked_again} asked again after an answer", attempts.len()));
    assert!(asked_again <= landed * 16, "{asked_again} requests were paid for twice");
}

/// A run whose reflection model samples (temperature 1, a new answer at every call), killed with
/// SIGKILL mid-run and resumed, ends with the texts its own recorded replies make; a
/// `--replay RUN --offline` of it ends with the same result and the same best texts, asking no
/// model; a second run of the project draws afresh.
#[test]
fn a_sampling_run_killed_with_sigkill_resumes_and_replays_offline_to_its_result() {
    let gate = Gate::new();
    let server = FaultServer::start(gate.holding(Plan::default()));
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    let toml = std::fs::read_to_string(p.dir.join("gepa.toml")).unwrap();
    let (cold, warm) = ("model = \"scripted-reflection\"\n", "model = \"scripted-reflection\"\ntemperature = 1.0\n");
    let reflection_at = toml.find(cold).unwrap();
    let after = toml[reflection_at..].replacen("temperature = 0.0\n", "", 1).replacen(cold, warm, 1);
    std::fs::write(p.dir.join("gepa.toml"), format!("{}{after}", &toml[..reflection_at])).unwrap();
    let logs = p.dir.parent().unwrap().join("stderr");
    std::fs::create_dir_all(&logs).unwrap();
    let mut child = spawn_headless(&p.dir, &[], &logs.join("0.txt"));
    let id = wait_for_run_start(&p.dir, &mut child);
    gate.let_through(40, &mut child);
    assert!(kill_9(&mut child), "the kill did not land mid-run");
    gate.open();
    assert_finished(&run_headless(&p.dir, &["--resume", &id]));
    let best =
        |run: &str| std::fs::read_to_string(p.dir.join(".gepa/runs").join(run).join("best/instruction.md")).unwrap();
    let recorded = (comparable(read_result(&p.dir, &id)), best(&id));
    assert!(recorded.1.contains(" draft "), "the best text is a sampled one: {}", recorded.1);

    let asked = server.attempts().len();
    let out = gepa(&["run", "--headless", "--json", "--offline", "--replay", &id, p.dir.to_str().unwrap()])
        .env_remove(KEY_ENV)
        .output()
        .unwrap();
    assert_finished(&out);
    assert_eq!(server.attempts().len(), asked, "an offline replay asked the server");
    let replay = run_ids(&p.dir).into_iter().find(|r| *r != id).unwrap();
    assert_eq!((comparable(read_result(&p.dir, &replay)), best(&replay)), recorded);

    // A new run of the project is new draws: its reflections reach the server again.
    assert_finished(&run_headless(&p.dir, &[]));
    let fresh = run_ids(&p.dir).into_iter().find(|r| *r != id && *r != replay).unwrap();
    assert_ne!(best(&fresh), recorded.1);
}

/// One life of an engine on the review project, in-process: approves every pending item (those
/// restored by a resume, then each new one), except that at the `kill_at`-th item queued over the
/// whole run it stops answering, waits until the engine says it is waiting for review, and dies
/// there (its runtime is torn down mid-await, as a SIGKILL would leave it). Returns the result
/// when the engine finished instead.
fn review_life(
    dir: &Path,
    resume: Option<&str>,
    queued_so_far: &mut usize,
    kill_at: Option<usize>,
) -> (String, Option<gepa_tui::engine::RunResult>) {
    use gepa_tui::engine::event::HumanAction;
    use gepa_tui::engine::{Engine, EngineOptions, Event, Notice};
    let (project, task) = common::load(dir);
    if let Some(id) = resume {
        // The "killed" engine was torn down on a runtime shut down in the background, whose
        // threads may still hold the run's lock for a moment (a killed process lets go at once).
        let run_dir = dir.join(".gepa/runs").join(id);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while gepa_tui::store::RunLock::acquire(&run_dir).is_err() {
            assert!(std::time::Instant::now() < deadline, "the torn-down engine never let go of the run");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = EngineOptions { notices: Some(tx), ..Default::default() };
    let (engine, h) = rt.block_on(async {
        match resume {
            Some(id) => Engine::resume(project, task, id, opts),
            None => Engine::create(project, task, opts),
        }
        .unwrap()
    });
    let run_id = engine.run_id().to_string();
    for item in &engine.state().review_queue {
        h.act(HumanAction::Approve { item: item.item });
    }
    let outcome = rt.block_on(async {
        let jh = tokio::spawn(engine.run());
        let mut dying = false;
        while let Some(notice) = rx.recv().await {
            match notice {
                Notice::Event(ev) => {
                    if let Event::ReviewQueued { item } = &*ev {
                        *queued_so_far += 1;
                        if Some(*queued_so_far) == kill_at {
                            dying = true;
                        } else {
                            h.act(HumanAction::Approve { item: item.item });
                        }
                    }
                }
                Notice::Status(s) if dying && s.activity.starts_with("waiting for review") => return None,
                _ => {}
            }
        }
        Some(jh.await.unwrap().unwrap().result.unwrap())
    });
    rt.shutdown_background();
    (run_id, outcome)
}

/// Killed while waiting for a person to review a child (in-process: headless runs refuse
/// `approve` policies, so only the workbench waits), resumed, the pending item approved: the same
/// result as a run where every item was approved at once.
#[test]
fn a_run_killed_while_waiting_for_review_resumes_to_the_same_result() {
    const REVIEW_OPT: &str = "max_metric_calls = 140\nminibatch_size = 3\nproposals_per_round = 1\nseed = 3\n\n\
                              [review]\nmutations = \"approve\"\nmax_pending = 1";
    let comparable = |mut r: gepa_tui::engine::RunResult| {
        r.wall_seconds = 0.0;
        r.run_id.clear();
        r
    };
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    common::write_project(&a, REVIEW_OPT);
    common::write_project(&b, REVIEW_OPT);
    let (_, uninterrupted) = review_life(&a, None, &mut 0, None);
    let uninterrupted = comparable(uninterrupted.expect("finished"));

    let mut queued = 0;
    let (id, first) = review_life(&b, None, &mut queued, Some(1));
    assert!(first.is_none(), "no review was ever waited for");
    let (_, second) = review_life(&b, Some(&id), &mut queued, Some(3));
    assert!(second.is_none(), "only {queued} reviews were queued");
    let (_, last) = review_life(&b, Some(&id), &mut queued, None);
    assert_eq!(comparable(last.expect("finished")), uninterrupted);
}

// ---------------------------------------------------------------------------------------------
// 2b. Steering a run from outside (`gepa-tui steer`, the run folder's inbox)

/// Feeds the run replies until its seed is scored (its first `round_finished` is in the log).
fn feed_until_seed_scored(gate: &Gate, dir: &Path, run: &str, child: &mut Running) {
    let log = dir.join(".gepa/runs").join(run).join("events.jsonl");
    gate.feed_until(child, "its seed was scored", || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("\"event\":\"round_finished\"")
    });
}

fn steer_command(dir: &Path, run: &str, args: &[&str]) -> Command {
    let mut all = vec!["steer", dir.to_str().unwrap(), "--run", run];
    all.extend_from_slice(args);
    gepa(&all)
}

/// `gepa-tui steer DIR --run RUN <args…>`.
fn steer(dir: &Path, run: &str, args: &[&str]) -> Output {
    steer_command(dir, run, args).output().unwrap()
}

/// `steer` to a live run whose replies `gate` holds: the run is fed replies one at a time until
/// the steer command has its answer (a run takes a request when it plans its next round), so the
/// run is live when it answers however busy the machine is.
fn steer_live(gate: &Gate, child: &mut Running, dir: &Path, run: &str, args: &[&str]) -> Output {
    let lines = || run_file_lines(dir, run, gepa_tui::engine::steer::INBOX);
    let before = lines();
    let mut cmd = steer_command(dir, run, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // No reply goes until the request is in the inbox (or the command ended, refusing it before
    // sending): however long the command takes to start, the run waits for it, not the reverse.
    let deadline = Instant::now() + Duration::from_secs(120);
    while lines() == before && cmd.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "`steer {}` never wrote its request", args.join(" "));
        std::thread::sleep(Duration::from_millis(1));
    }
    gate.feed_until(child, &format!("`steer {}` was answered", args.join(" ")), || cmd.try_wait().unwrap().is_some());
    cmd.wait_with_output().unwrap()
}

/// A guide and a protection handed to a live headless run are taken and answered; what the run
/// cannot take is refused with why, a finished or unknown run is refused, and the guide is in the
/// result.
#[test]
fn steer_hands_decisions_to_a_live_headless_run_and_refuses_what_it_cannot_take() {
    let gate = Gate::new();
    let server = FaultServer::start(gate.holding(Plan::default()));
    // Budget enough that the run is live through every command below however many rounds the
    // guide waits for its parent (the replies go only while a command waits for its answer).
    let opt = OPT.replace("max_metric_calls = 160", "max_metric_calls = 600");
    let p = project_at(&server.base_url(), &opt, FAST_MODEL);
    let err_path = p.dir.join("stderr.txt");
    let mut child = spawn_headless(&p.dir, &[], &err_path);
    let run = wait_for_run_start(&p.dir, &mut child);
    feed_until_seed_scored(&gate, &p.dir, &run, &mut child);
    let mut live = |args: &[&str]| steer_live(&gate, &mut child, &p.dir, &run, args);

    let out = live(&["guide", "0", "every group has its own rule", "--example", "ex105"]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert!(said.contains(&format!("taken by run {run}: recorded with round ")), "{said}");
    let out = live(&["protect", "instruction", "Answer the item."]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    // The same again: refused, by the run itself while the round that took the first is in flight
    // ("refused by run …"), or here once it has committed ("refused: …").
    let out = live(&["protect", "instruction", "Answer the item."]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("is already protected"), "{}", text(&out.stdout));
    // Refused before anything is sent: what is not in any candidate, a candidate that does not
    // exist; an example the run does not have is a usage error.
    let out = live(&["protect", "instruction", "not in any prompt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("refused: \"not in any prompt\" is not in component `instruction`"),
        "{}",
        text(&out.stdout)
    );
    let out = live(&["guide", "99", "look"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("no candidate 99"), "{}", text(&out.stdout));
    let out = live(&["guide", "0", "look", "--example", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("run {run} has no train or val example `nope`")),
        "{}",
        text(&out.stderr)
    );

    gate.open();
    let (code, err) = wait_exit(&mut child, &err_path);
    assert_eq!(code, Some(0), "{err}");
    // The headless run's own log says what it took.
    assert!(
        err.contains("a reflection on #0 with val example ex105, guided by \"every group has its own rule\""),
        "{err}"
    );
    assert!(err.contains("\"Answer the item.\" protected in instruction"), "{err}");
    let r = read_result(&p.dir, &run);
    assert_eq!(r["guided_proposals"], 1, "{r}");
    let log = std::fs::read_to_string(p.dir.join(".gepa/runs").join(&run).join("events.jsonl")).unwrap();
    let humans: Vec<Value> =
        log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v["event"] == "human").collect();
    assert!(
        humans.iter().any(|h| h["action"]["action"] == "guide"
            && h["action"]["example"]["id"] == "ex105"
            && h["request"].is_string()),
        "{humans:?}"
    );
    assert!(humans.iter().any(|h| h["action"]["action"] == "protect" && h["request"].is_string()), "{humans:?}");

    // Finished, or never there: refused, naming the run and why.
    let out = steer(&p.dir, &run, &["guide", "0", "too late"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!("run {run} is finished")), "{}", text(&out.stderr));
    let out = steer(&p.dir, "20990101-000000-none", &["protect", "instruction", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no run `20990101-000000-none`"), "{}", text(&out.stderr));
    assert_no_panic(&text(&out.stderr));
}

/// `steer … exclude` and `steer … fix` reach a live headless run as the Traces keys do: both are
/// taken, recorded with the request's id, and listed in result.json; a bad value or an example
/// the run lacks is refused before anything is sent, and the data files are not touched.
#[test]
fn steer_excludes_and_fixes_examples_of_a_live_headless_run() {
    let gate = Gate::new();
    let server = FaultServer::start(gate.holding(Plan::default()));
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    let val_before = std::fs::read(p.dir.join("data/val.jsonl")).unwrap();
    let err_path = p.dir.join("stderr.txt");
    let mut child = spawn_headless(&p.dir, &[], &err_path);
    let run = wait_for_run_start(&p.dir, &mut child);
    feed_until_seed_scored(&gate, &p.dir, &run, &mut child);
    let mut live = |args: &[&str]| steer_live(&gate, &mut child, &p.dir, &run, args);

    let out = live(&["exclude", "ex103", "--reason", "the label is wrong"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    // The evaluator's reference field by default.
    let out = live(&["fix", "ex104", "--expected", "E-ok"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    // Excluded already: refused (by the run, or here once it committed); no such example: an error.
    let out = live(&["exclude", "ex103", "--reason", "again"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    let out = live(&["fix", "nope", "--expected", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no train or val example `nope`"), "{}", text(&out.stderr));

    gate.open();
    let (code, err) = wait_exit(&mut child, &err_path);
    assert_eq!(code, Some(0), "{err}");
    let r = read_result(&p.dir, &run);
    let excluded = r["excluded_examples"].as_array().expect("excluded_examples");
    assert_eq!(excluded.len(), 1, "{r}");
    assert_eq!(excluded[0]["id"], "ex103");
    assert_eq!(excluded[0]["reason"], "the label is wrong");
    let fixes = r["data_fixes"].as_array().expect("data_fixes");
    assert_eq!(fixes.len(), 1, "{r}");
    assert_eq!((fixes[0]["id"].as_str(), fixes[0]["field"].as_str()), (Some("ex104"), Some("expected")));
    assert_eq!(fixes[0]["new"], "E-ok");
    // Both recorded with their request ids, once each in what the run kept (the raw log also
    // holds a request taken by a round planned ahead and voided, then taken again: timing), and
    // each answered as taken by the round that kept it.
    let run_dir = p.dir.join(".gepa/runs").join(&run);
    let kept = common::committed(&gepa_tui::engine::run::load_events(&run_dir, false).unwrap().0);
    let taken: Vec<&str> = kept
        .iter()
        .filter_map(|e| match e {
            gepa_tui::engine::Event::Human { request: Some(id), .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(taken.len(), 2, "{taken:?}");
    let recorded = gepa_tui::engine::steer::recorded_requests(&kept);
    assert_eq!(recorded.len(), 2, "{taken:?}");
    let answers = gepa_tui::engine::steer::answers(&run_dir);
    assert!(
        recorded.iter().all(|(id, round)| answers.get(id).is_some_and(|a| a.accepted && a.round == Some(*round))),
        "{recorded:?} {answers:?}"
    );
    assert_eq!(std::fs::read(p.dir.join("data/val.jsonl")).unwrap(), val_before, "the data file is untouched");
    assert_no_panic(&err);
}

/// Starts a run and kills it the moment it has started (before its seed is scored), then leaves
/// a protection and two guides in its inbox, as `gepa-tui steer` does for a run that is not
/// running: the resumed run takes them when it plans its first round. Returns the run's id.
/// (The server's replies must be held by a gate, so the seed cannot be scored before the kill.)
fn a_run_stopped_with_steering_waiting(p: &TestProject, stderr_to: &Path) -> String {
    use gepa_tui::engine::event::{GuideExample, HumanAction};
    use gepa_tui::project::Split;
    let mut child = spawn_headless(&p.dir, &[], stderr_to);
    let id = wait_for_run_start(&p.dir, &mut child);
    assert!(kill_9(&mut child), "the run ended before the kill");
    let run_dir = p.dir.join(".gepa/runs").join(&id);
    let log = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert!(
        !log.contains("\"event\":\"round_finished\""),
        "killed after the seed was scored: the test needs a slower server"
    );
    let guide = |note: &str, split: Split, id: &str| HumanAction::Guide {
        candidate: 0,
        note: note.into(),
        example: Some(GuideExample { split, id: id.into() }),
        component: None,
    };
    for a in [
        HumanAction::Protect { component: "instruction".into(), text: "Answer the item.".into() },
        guide("every group has its own rule: name it", Split::Val, "ex106"),
        guide("a train example too", Split::Train, "ex5"),
    ] {
        gepa_tui::engine::steer::send(&run_dir, a).unwrap();
    }
    id
}

/// `kill -9` at seeded random moments of a run with guides and a protection in its log (and its
/// inbox), resumed each time: the result is that of the same steered run never killed.
#[test]
fn a_steered_run_killed_with_sigkill_resumes_to_the_same_result() {
    use rand::SeedableRng;
    let logs = tempfile::tempdir().unwrap();
    let clean_gate = Gate::new();
    let clean_server = FaultServer::start(clean_gate.holding(Plan::default()));
    let clean = project_at(&clean_server.base_url(), OPT, FAST_MODEL);
    let id = a_run_stopped_with_steering_waiting(&clean, &logs.path().join("clean.txt"));
    clean_gate.open();
    let out = run_headless(&clean.dir, &["--resume", &id]);
    assert_finished(&out);
    let reference = read_result(&clean.dir, &id);
    assert_eq!(reference["guided_proposals"], 2, "{reference}");
    assert!(reference["best_texts"]["instruction"].as_str().unwrap().contains("Answer the item."), "{reference}");
    let reference = comparable(reference);

    let gate = Gate::new();
    let server = FaultServer::start(gate.holding(Plan::default()));
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    let id = a_run_stopped_with_steering_waiting(&p, &logs.path().join("first.txt"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let mut landed = 0;
    // At most 8 x 16 replies in all, fewer than the run needs: every kill lands mid-run.
    for attempt in 0..8 {
        let err_path = logs.path().join(format!("{attempt}.txt"));
        let mut child = spawn_headless(&p.dir, &["--resume", &id], &err_path);
        gate.kill_after_random_replies(&mut child, &mut rng, &format!("kill {attempt}"), &err_path);
        landed += 1;
    }
    gate.open();
    let out = run_headless(&p.dir, &["--resume", &id]);
    assert_finished(&out);
    assert_eq!(comparable(read_result(&p.dir, &id)), reference, "after {landed} kills");
    // Each request is recorded once in what the run kept, and answered.
    let events = gepa_tui::engine::run::load_events(&p.dir.join(".gepa/runs").join(&id), false).unwrap().0;
    let recorded = gepa_tui::engine::steer::recorded_requests(&common::committed(&events));
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    let answers = gepa_tui::engine::steer::answers(&p.dir.join(".gepa/runs").join(&id));
    assert!(recorded.keys().all(|r| answers.get(r).is_some_and(|a| a.accepted)), "{answers:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. Disk

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn sh(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// A folder made read-only by its permission bits for as long as this lives (no mount, no
/// privilege). Root ignores permission bits, so a test run as root starts the binary with
/// `run_headless_bound` (without the capabilities that let root write anyway).
struct ReadOnly(Vec<(PathBuf, std::fs::Permissions)>);

impl ReadOnly {
    fn make(dir: &Path) -> ReadOnly {
        use std::os::unix::fs::PermissionsExt;
        let mut saved = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(p) = stack.pop() {
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            }
            if !meta.file_type().is_symlink() {
                saved.push((p.clone(), meta.permissions()));
                let mode = if meta.is_dir() { 0o555 } else { 0o444 };
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        ReadOnly(saved)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        // Parents before children, so every folder can be entered again.
        for (p, perm) in self.0.iter() {
            let _ = std::fs::set_permissions(p, perm.clone());
        }
    }
}

/// `run_headless`, bound by permission bits even when the test runs as root: the child drops
/// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set before it starts, so a root
/// process keeps only an owner's rights (root can always do this; it needs no mount rights).
fn run_headless_bound(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--headless", "--json", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut cmd = gepa(&args);
    if is_root() {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure only calls prctl, which is async-signal-safe, and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                // 1 = CAP_DAC_OVERRIDE, 2 = CAP_DAC_READ_SEARCH (linux/capability.h).
                for cap in [1, 2] {
                    if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot start gepa-tui without CAP_DAC_OVERRIDE (root must shed it to honour a read-only folder): {e}")
    })
}

/// Starts a run, kills it mid-way (after 60 replies: the seed and a few rounds; the server holds
/// the rest), and returns its id: a resumable run to be mistreated. The gate is open afterwards.
fn interrupted_run(dir: &Path, gate: &Gate) -> String {
    let err = dir.parent().unwrap().join("first-stderr.txt");
    let mut child = spawn_headless(dir, &[], &err);
    let id = wait_for_run_start(dir, &mut child);
    gate.let_through(60, &mut child);
    assert!(kill_9(&mut child), "the run finished before it could be interrupted");
    gate.open();
    id
}

fn assert_clear_error(out: &Output, expect: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert_no_panic(&stderr);
    assert!(stderr.contains("error: "), "{stderr}");
    assert!(expect.iter().any(|e| stderr.contains(e)), "expected one of {expect:?} in:\n{stderr}");
}

const READ_ONLY: &[&str] = &["Read-only file system", "Permission denied"];

/// Resuming into a read-only run folder is a clear error that changes nothing; once the folder is
/// writable again the run resumes to the uninterrupted run's result.
#[test]
fn a_read_only_run_folder_is_a_clear_error_and_the_run_stays_resumable() {
    let gate = Gate::new();
    let server = FaultServer::start(gate.holding(Plan::default()));
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    let id = interrupted_run(&p.dir, &gate);
    let run_dir = p.dir.join(".gepa/runs").join(&id);
    let before = std::fs::read(run_dir.join("events.jsonl")).unwrap();
    {
        let _ro = ReadOnly::make(&run_dir);
        let out = run_headless_bound(&p.dir, &["--resume", &id]);
        assert_clear_error(&out, READ_ONLY);
        eprintln!("{}", text(&out.stderr));
    }
    assert_eq!(std::fs::read(run_dir.join("events.jsonl")).unwrap(), before, "a failed resume changed the log");
    let out = run_headless(&p.dir, &["--resume", &id]);
    assert_finished(&out);
    assert_eq!(comparable(read_result(&p.dir, &id)), *reference());
}

/// A run resumed in another folder, or after the response cache was cleared, has no replies to
/// replay: it asks the server again for what it needs (at least what a resume with the cache
/// asks) and ends with the uninterrupted run's result. The requests are counted and printed.
#[test]
fn a_run_resumed_without_its_response_cache_ends_as_the_uninterrupted_run() {
    // What a fresh, uninterrupted run asks.
    let fresh_server = FaultServer::start(Plan::default());
    let fresh = project_at(&fresh_server.base_url(), OPT, FAST_MODEL);
    assert_finished(&run_headless(&fresh.dir, &[]));
    let asked_fresh = fresh_server.attempts().len();

    let gate = Gate::new();
    let server = FaultServer::start(gate.holding(Plan::default()));
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    let id = interrupted_run(&p.dir, &gate);
    // The same interrupted run twice: one keeps its cache, one loses it.
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("proj");
    common::copy_tree(&p.dir, &bare, &[]);
    std::fs::remove_dir_all(bare.join(".gepa/cache")).unwrap();

    let before = server.attempts().len();
    assert_finished(&run_headless(&p.dir, &["--resume", &id]));
    let asked_with_cache = server.attempts().len() - before;
    let before = server.attempts().len();
    assert_finished(&run_headless(&bare, &["--resume", &id]));
    let asked_without = server.attempts().len() - before;
    figure(format!(
        "asked: {asked_fresh} by a fresh run; on resume {asked_with_cache} with the cache, {asked_without} without"
    ));

    assert_eq!(comparable(read_result(&bare, &id)), *reference());
    assert_eq!(comparable(read_result(&p.dir, &id)), *reference());
    // Not asserted: asked_without >= asked_with_cache, nor that the resume asks fewer requests
    // than a fresh run. With the lag left to the engine, both counts are mostly work planned ahead
    // and dropped, which depends on timing (whether and when the engine plans ahead depends on
    // how fast the replies come: its gauge leaves out replies under 10 ms as served from the
    // cache): measured 2026-12-07, a fresh run asked 353 to 459 (198 at pipeline_lag = 1), the
    // resume 311 to 406. With the lag pinned to 1 the counts are exact: see the next test.
}

/// What a resume asks is what the uninterrupted run asks, less the replies it already has. With
/// one round in flight (`pipeline_lag = 1`: no work is planned ahead and dropped) the requests
/// are the same whatever the timing, so the fault server's log counts them exactly. A first life
/// is killed once 60 replies are answered and kept in the response cache (none in transit); the
/// resume then asks 60 fewer requests than the whole run, each once, none of the 60 again, only
/// the ones the first life was still waiting for; without the cache it asks more (the kept
/// replies of the round cut short), and still each once.
fn resume_asks_the_rest(sampling: bool) {
    let opt = format!("{OPT}\npipeline_lag = 1");
    // A timeout no busy machine reaches, so no request is asked twice for being slow.
    let model = "request_timeout_secs = 120.0\nmax_retries = 8\nretry_base_delay_secs = 0.01";
    let project = |url: &str| {
        let p = project_at(url, &opt, model);
        if sampling {
            // Both models sample: each call is a draw, cached by its place in the run.
            let toml = std::fs::read_to_string(p.dir.join("gepa.toml")).unwrap();
            assert_eq!(toml.matches("temperature = 0.0").count(), 2);
            std::fs::write(p.dir.join("gepa.toml"), toml.replace("temperature = 0.0", "temperature = 0.7")).unwrap();
        }
        p
    };
    let bodies = |attempts: &[fault_server::Attempt]| -> Vec<String> {
        let mut b: Vec<String> = attempts.iter().map(|a| a.body_hash.clone()).collect();
        b.sort();
        let n = b.len();
        b.dedup();
        assert_eq!(b.len(), n, "a request was asked twice");
        b
    };
    let fresh_server = FaultServer::start(Plan::default());
    let fresh = project(&fresh_server.base_url());
    assert_finished(&run_headless(&fresh.dir, &[]));
    let whole = bodies(&fresh_server.attempts());

    let gate = Gate::new();
    let server = FaultServer::start(gate.holding(Plan::default()));
    let p = project(&server.base_url());
    let err = p.dir.parent().unwrap().join("first-stderr.txt");
    let mut child = spawn_headless(&p.dir, &[], &err);
    let id = wait_for_run_start(&p.dir, &mut child);
    gate.let_through(60, &mut child);
    // Killed once the 60 replies are kept (one cache file each).
    fn count(d: &Path) -> usize {
        let Ok(rd) = std::fs::read_dir(d) else { return 0 };
        rd.flatten()
            .map(|e| match e.path() {
                p if p.is_dir() => count(&p),
                p if p.extension().is_some_and(|x| x == "json") => 1,
                _ => 0,
            })
            .sum()
    }
    let cache = p.dir.join(".gepa/cache");
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&cache) < 60 {
        assert!(Instant::now() < deadline, "the run kept {} of the 60 replies it got", count(&cache));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(kill_9(&mut child), "the run finished before it could be interrupted");
    gate.open();
    assert_eq!(count(&cache), 60);
    let first = bodies(&server.attempts());
    let bare = p.dir.parent().unwrap().join("bare");
    common::copy_tree(&p.dir, &bare, &[]);
    std::fs::remove_dir_all(bare.join(".gepa/cache")).unwrap();

    let at = server.attempts().len();
    assert_finished(&run_headless(&p.dir, &["--resume", &id]));
    let resumed = bodies(&server.attempts()[at..]);
    let again = resumed.iter().filter(|b| first.binary_search(b).is_ok()).count();
    eprintln!(
        "asked: {} by the whole run; {} by the first life (60 answered); {} by the resume, {again} of them asked \
         before",
        whole.len(),
        first.len(),
        resumed.len()
    );
    assert_eq!(
        resumed.len(),
        whole.len() - 60,
        "the resume asked {} requests, the whole run {}",
        resumed.len(),
        whole.len()
    );
    // Of the first life's requests, only those it never got an answer to.
    assert_eq!(again, first.len() - 60);
    if !sampling {
        // A model that does not sample gets the very requests the whole run sends (a sampling
        // one is asked for this run's own draws).
        assert!(
            resumed.iter().all(|b| whole.binary_search(b).is_ok()),
            "the resume asked a request the whole run does not"
        );
    }
    let fresh_result = comparable(read_result(&fresh.dir, &only_run(&fresh.dir)));
    if !sampling {
        assert_eq!(comparable(read_result(&p.dir, &id)), fresh_result);
    }

    let at = server.attempts().len();
    assert_finished(&run_headless(&bare, &["--resume", &id]));
    let without = bodies(&server.attempts()[at..]);
    eprintln!("{} without the cache", without.len());
    // The kill fell inside a round: some kept replies were of a round the resume ran again, and
    // the cache, not the log, spared asking them.
    assert!(without.len() > resumed.len() && without.len() <= whole.len(), "{} without the cache", without.len());
    if !sampling {
        // (A sampling model's lost draws are drawn again: other replies, so another result.)
        assert_eq!(comparable(read_result(&bare, &id)), fresh_result);
    }
}

#[test]
fn a_resume_asks_the_uninterrupted_run_s_requests_less_the_replies_it_kept() {
    resume_asks_the_rest(false);
}

#[test]
fn a_resume_of_a_sampling_run_asks_no_kept_draw_again() {
    resume_asks_the_rest(true);
}

/// A read-only project folder cannot hold a new run: a clear error, no stray files. A read-only
/// cache only costs the cache: the run completes with the same result.
#[test]
fn a_read_only_project_folder_is_a_clear_error_and_a_read_only_cache_is_survivable() {
    let server = FaultServer::start(Plan::default());
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    {
        let _ro = ReadOnly::make(&p.dir);
        let out = run_headless_bound(&p.dir, &[]);
        assert_clear_error(&out, READ_ONLY);
        eprintln!("{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("cannot create the run folder"), "{}", text(&out.stderr));
    }
    assert!(!p.dir.join(".gepa").exists());

    let cache = p.dir.join(".gepa/cache");
    std::fs::create_dir_all(&cache).unwrap();
    {
        let _ro = ReadOnly::make(&cache);
        let out = run_headless_bound(&p.dir, &[]);
        assert_finished(&out);
    }
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0, "the read-only cache was written to");
    assert_eq!(comparable(read_result(&p.dir, &only_run(&p.dir))), *reference());
}

/// A small tmpfs mounted for as long as this lives. Mounting needs root with mount rights (as CI
/// has): None elsewhere, after reporting the missing prerequisite for `test` (a failure under CI).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(test: &str, at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok =
            is_root() && sh("mount", &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", at.to_str().unwrap()]);
        if !ok {
            common::missing_prerequisite(test, "mount rights for a small tmpfs (root with CAP_SYS_ADMIN)");
        }
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        assert!(sh("mount", &["-o", &format!("remount,size={size}"), self.0.to_str().unwrap()]));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        sh("umount", &["-l", self.0.to_str().unwrap()]);
    }
}

/// On a full disk an append fails; it must not leave half a line that a later append (once some
/// space is free again) buries in the middle of the log, where no resume can repair it.
#[test]
fn a_failed_append_never_leaves_damage_in_the_middle_of_the_log() {
    use gepa_tui::store::{read_log, EventLog};
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) =
        Tmpfs::mount("a_failed_append_never_leaves_damage_in_the_middle_of_the_log", &tmp.path().join("disk"), "64k")
    else {
        return;
    };
    let filler = fs.0.join("filler");
    std::fs::write(&filler, vec![0u8; 40 * 1024]).unwrap();
    let path = fs.0.join("events.jsonl");
    let mut log = EventLog::create(&path).unwrap();
    let line = serde_json::json!({"event": "minibatch_evaluated", "padding": "x".repeat(1500)});
    let mut written = 0;
    let err = loop {
        match log.append(&line) {
            Ok(()) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 1000, "the tmpfs never filled up");
    };
    assert!(err.to_string().contains("No space left on device"), "{err}");
    // Space comes back (a temp file is deleted, another program exits)…
    std::fs::remove_file(&filler).unwrap();
    // …and whether or not the log takes further events, what it holds reads back whole.
    let _ = log.append(&line);
    let _ = log.append(&line);
    let read =
        read_log::<serde_json::Value>(&path, true).unwrap_or_else(|e| panic!("the log is damaged in the middle: {e}"));
    assert!(read.values.len() >= written, "{} of {written} events survived", read.values.len());
}

fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    total
}

/// The disk fills up mid-run: the run stops with a clear error; once there is room again it
/// resumes to the uninterrupted run's result.
#[test]
fn a_full_disk_stops_the_run_with_a_clear_error_and_it_resumes_once_there_is_room() {
    let tmp = tempfile::tempdir().unwrap();
    let test = "a_full_disk_stops_the_run_with_a_clear_error_and_it_resumes_once_there_is_room";
    let Some(fs) = Tmpfs::mount(test, &tmp.path().join("disk"), "400k") else { return };
    let server = FaultServer::start(Plan::default());
    let dir = fs.0.join("proj");
    write_project_in(&dir, &server.base_url(), OPT, FAST_MODEL);
    let out = run_headless(&dir, &[]);
    assert_clear_error(&out, &["No space left on device"]);
    eprintln!("{}", text(&out.stderr));
    let id = only_run(&dir);
    figure(format!("full at {} bytes", du(&dir)));

    fs.resize("64m");
    let out = run_headless(&dir, &["--resume", &id]);
    assert_finished(&out);
    assert_eq!(comparable(read_result(&dir, &id)), *reference());
}

/// The same with a per-file size limit (RLIMIT_FSIZE, the shell's `ulimit -f`, no root needed):
/// events.jsonl cannot grow past 40 kB, the run stops with a clear error, and resumes without it.
#[test]
fn a_file_size_limit_stops_the_run_with_a_clear_error_and_it_resumes_without_it() {
    let server = FaultServer::start(Plan::default());
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    // 78 blocks of 512 bytes (POSIX `ulimit -f` units) = 39,936 bytes. SIGXFSZ ignored (as the
    // shell's trap leaves it across exec), so the write fails with EFBIG.
    let out = Command::new("sh")
        .args(["-c", "ulimit -f 78 && trap '' XFSZ && exec \"$0\" \"$@\""])
        .args([bin(), "run", "--headless", "--json", p.dir.to_str().unwrap()])
        .env(KEY_ENV, FAKE_KEY)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_clear_error(&out, &["File too large"]);
    assert!(text(&out.stderr).contains("the run stays resumable"), "{}", text(&out.stderr));
    let id = only_run(&p.dir);
    let log = p.dir.join(".gepa/runs").join(&id).join("events.jsonl");
    assert!(file_len(&log) <= 40_000);

    let out = run_headless(&p.dir, &["--resume", &id]);
    assert_finished(&out);
    assert_eq!(comparable(read_result(&p.dir, &id)), *reference());
}

// ---------------------------------------------------------------------------------------------
// 4. Hostile input: every parser of outside text, fed garbage and near-misses. No panics, and
// errors that say where.

mod hostile {
    use super::*;
    use gepa_tui::engine::run::load_events;
    use gepa_tui::engine::RunState;
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    /// Text that looks like what the parsers meet: JSON and TOML punctuation, fences, digits,
    /// line breaks of both kinds, escapes, multi-byte and bidi characters, and anything else.
    fn messy_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => any::<String>(),
            2 => "[a-z_]{1,8}",
            2 => prop::sample::select(vec![
                "{", "}", "[", "]", "[[", "]]", "\"", "'", "'''", "\"\"\"", ":", ",", "=", ".", "#", "\\",
                "\n", "\r\n", "\r", "\t", " ", "```", "```json\n", "Score:", "score = ", "/10", " out of ",
                "10", "7", "0.5", "-3", "1e309", "NaN", "é", "€", "😀", "\u{202e}", "\u{1b}[31m",
                "\u{1b}]0;t\u{7}", "\u{0}", "\u{85}", "null", "true", "[models.task]", "[[components]]",
                "choices", "content", "message", "usage", "{{", "}}",
            ]).prop_map(str::to_string),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    /// `base` with a few random edits: a deleted range, inserted junk, a repeated or dropped line.
    fn mutated(base: String) -> impl Strategy<Value = String> {
        let edit = (any::<prop::sample::Index>(), any::<prop::sample::Index>(), messy_text(), 0..5u8);
        prop::collection::vec(edit, 1..5).prop_map(move |edits| {
            let mut s = base.clone();
            for (a, b, junk, kind) in edits {
                let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
                let (i, j) = (a.get(&bounds), b.get(&bounds));
                let (lo, hi) = ((*i).min(*j), (*i).max(*j));
                let lines: Vec<&str> = s.split_inclusive('\n').collect();
                s = match kind {
                    0 => {
                        let end = bounds.iter().copied().find(|&b| b >= hi.min(lo + 40)).unwrap_or(s.len());
                        format!("{}{}", &s[..lo], &s[end..])
                    }
                    1 => format!("{}{junk}{}", &s[..lo], &s[lo..]),
                    2 if !lines.is_empty() => {
                        let k = a.index(lines.len());
                        let mut out: Vec<&str> = lines.clone();
                        out.insert(k, lines[k]);
                        out.concat()
                    }
                    3 if !lines.is_empty() => {
                        let k = a.index(lines.len());
                        lines.iter().enumerate().filter(|(n, _)| *n != k).map(|(_, l)| *l).collect()
                    }
                    _ => format!("{}{junk}{}", &s[..lo], &s[hi..]),
                };
            }
            s
        })
    }

    /// Replies shaped like a judge's: short lines of prose (some multi-byte), "\n" or "\r\n"
    /// between them, often a grade at the end.
    fn judge_like() -> impl Strategy<Value = String> {
        let line = prop::sample::select(vec![
            "",
            " ",
            "é",
            "Good.",
            "Too rude — €5 off.",
            "😀 fine",
            "7",
            "**8**",
            "0.5",
            "Score: 7/10",
            "4 out of 5",
            "score: 12",
            "Mostly right",
            "`9`.",
            "-2",
            "\u{202e}ok",
        ]);
        let sep = prop::sample::select(vec!["\n", "\r\n", "\r\n\r\n", "\n\n"]);
        prop::collection::vec((line, sep), 1..8)
            .prop_map(|parts| parts.into_iter().map(|(l, s)| format!("{l}{s}")).collect::<String>())
            .prop_flat_map(|s| {
                prop::sample::select(vec!["", "7", "8\r\n", "**3**"]).prop_map(move |end| format!("{s}{end}"))
            })
    }

    fn config() -> Config {
        Config { cases: 256, failure_persistence: None, ..Config::default() }
    }

    /// The scripted project's gepa.toml, plus its prompts and data, in one reusable folder.
    fn valid_toml() -> String {
        let tmp = tempfile::tempdir().unwrap();
        common::write_project(tmp.path(), OPT);
        std::fs::read_to_string(tmp.path().join("gepa.toml")).unwrap()
    }

    fn assert_clean_message(msg: &str) {
        assert!(!msg.trim().is_empty(), "an empty error message");
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn gepa_toml_text_never_panics(text in prop_oneof![messy_text(), mutated(valid_toml())]) {
            if let Err(e) = gepa_tui::project::config::parse(&text) {
                let msg = e.to_string();
                assert_clean_message(&msg);
                prop_assert!(msg.starts_with("gepa.toml"), "{msg}");
            }
        }

        #[test]
        fn project_load_never_panics_on_a_mangled_project(
            toml in mutated(valid_toml()),
            data in prop_oneof![messy_text(), mutated("{\"id\": \"a\", \"input\": \"x\", \"expected\": \"y\"}\n".repeat(3))],
            bytes in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            common::write_project(tmp.path(), "");
            std::fs::write(tmp.path().join("gepa.toml"), &toml).unwrap();
            std::fs::write(tmp.path().join("data/val.jsonl"), &data).unwrap();
            std::fs::write(tmp.path().join("data/test.jsonl"), &bytes).unwrap();
            if let Err(e) = gepa_tui::project::Project::load(tmp.path()) {
                for p in e.problems() {
                    assert_clean_message(&p);
                }
            }
        }

        #[test]
        fn jsonl_lines_never_panic_and_errors_name_the_line(
            text in prop_oneof![messy_text(), mutated("{\"id\": 1, \"q\": \"é\"}\n{\"id\": \"b\", \"q\": [1, {\"x\": null}]}\n".into())]
        ) {
            match gepa_tui::project::data::parse_jsonl("data/train.jsonl", &text) {
                Ok(examples) => {
                    let ids: std::collections::HashSet<_> = examples.iter().map(|e| &e.id).collect();
                    prop_assert_eq!(ids.len(), examples.len(), "ids are unique");
                }
                Err(e) => {
                    for p in e.problems() {
                        prop_assert!(p.starts_with("data/train.jsonl"), "{}", p);
                    }
                }
            }
        }

        #[test]
        fn provider_replies_never_panic_and_bad_ones_are_retryable(
            body in prop_oneof![
                messy_text(),
                mutated(r#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#.into()),
                mutated(r#"{"content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}"#.into()),
            ],
            cut in any::<prop::sample::Index>(),
        ) {
            use gepa_tui::llm::{anthropic, openai, AttemptError};
            let bounds: Vec<usize> = body.char_indices().map(|(i, _)| i).chain([body.len()]).collect();
            let cut_body = &body[..*cut.get(&bounds)];
            for b in [body.as_str(), cut_body] {
                for result in [openai::parse_reply(b, Some("sk-secret")), anthropic::parse_reply(b, Some("sk-secret"))] {
                    if let Err(e) = result {
                        // A 200 whose body is unusable is worth another attempt, never fatal.
                        prop_assert!(matches!(e, AttemptError::Retryable { .. }), "{e:?}");
                        let msg = e.to_string();
                        prop_assert!(msg.starts_with("malformed reply"), "{msg}");
                        prop_assert!(!msg.contains("sk-secret"));
                        prop_assert!(msg.chars().count() < 600, "{} chars", msg.chars().count());
                        prop_assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
                    }
                }
            }
        }

        #[test]
        fn fence_extraction_never_panics_and_returns_part_of_the_answer(answer in messy_text()) {
            let text = gepa_tui::engine::reflect::extract_instruction(&answer);
            prop_assert!(answer.contains(&text), "{text:?} is not part of {answer:?}");
        }

        #[test]
        fn judge_scores_never_panic_and_stay_in_range(reply in prop_oneof![messy_text(), judge_like()]) {
            if let Some(v) = gepa_tui::eval::judge::parse_judge_score(&reply) {
                prop_assert!((0.0..=1.0).contains(&v.score), "{}", v.score);
                prop_assert!(!v.reasoning.is_empty());
            }
        }

        #[test]
        fn sanitized_text_holds_no_escapes_or_controls(
            text in prop_oneof![messy_text(), any::<String>(), prop::collection::vec(any::<char>(), 0..200).prop_map(|v| v.into_iter().collect())]
        ) {
            let out = gepa_tui::text::sanitize(&text);
            for c in out.chars() {
                prop_assert!(c == '\n' || c == '\t' || !c.is_control(), "{c:?} survived in {out:?}");
                prop_assert!(!matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}'), "bidi {c:?}");
            }
            // Sanitizing is idempotent: what it lets through is already safe.
            prop_assert_eq!(gepa_tui::text::sanitize(&out), out.clone());
        }
    }

    /// A model answer of several megabytes on one line, thick with colour codes, title-setting
    /// OSC sequences, hyperlinks and bidi overrides: all of it goes, the words stay.
    #[test]
    fn a_huge_hostile_line_is_sanitized_whole() {
        let unit = "ok \u{1b}[31;1mred\u{1b}[0m \u{1b}]0;pwned title\u{7}\u{202e}txet\u{202c} \
                    \u{1b}]8;;http://evil.example\u{1b}\\link\u{1b}]8;;\u{1b}\\ \u{9b}2J\u{0}\r";
        let line = unit.repeat(50_000);
        assert!(line.len() > 4_000_000);
        let out = gepa_tui::text::sanitize(&line);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
        assert!(!out.contains("pwned title") && !out.contains("evil.example"));
        assert_eq!(out.matches("ok red txet link").count(), 50_000, "{}", &out[..200]);
    }

    /// A small finished run's events.jsonl, made in-process with the scripted models.
    fn real_log() -> &'static [u8] {
        static LOG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        LOG.get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            common::write_project(tmp.path(), "max_metric_calls = 60\nproposals_per_round = 2\nseed = 3\nmerge = true");
            let (project, task) = common::load(tmp.path());
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let dir = rt.block_on(async {
                let (engine, _) = gepa_tui::engine::Engine::create(project, task, Default::default()).unwrap();
                engine.run().await.unwrap().run_dir
            });
            std::fs::read(dir.join("events.jsonl")).unwrap()
        })
    }

    fn mutated_log() -> impl Strategy<Value = Vec<u8>> {
        let log = String::from_utf8(real_log().to_vec()).unwrap();
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            mutated(log.clone()).prop_map(String::into_bytes),
            // Numbers changed: ids, indexes and counts that point nowhere.
            (any::<prop::sample::Index>(), 0..40u64).prop_map(move |(i, n)| {
                let spots: Vec<usize> = log.match_indices(|c: char| c.is_ascii_digit()).map(|(k, _)| k).collect();
                let k = *i.get(&spots);
                format!("{}{n}{}", &log[..k], &log[k + 1..]).into_bytes()
            }),
        ]
    }

    proptest! {
        #![proptest_config(Config { cases: 128, ..config() })]

        /// Reading a damaged log: the events, or an error naming the file; never a panic.
        #[test]
        fn a_damaged_event_log_never_panics_on_read(bytes in mutated_log()) {
            let tmp = tempfile::tempdir().unwrap();
            std::fs::write(tmp.path().join("events.jsonl"), &bytes).unwrap();
            for repair in [false, true] {
                if let Err(e) = load_events(tmp.path(), repair) {
                    prop_assert!(format!("{e:#}").contains("events.jsonl"), "{e:#}");
                }
            }
        }

        /// Folding a damaged log that still reads: never a panic.
        #[test]
        fn a_damaged_event_log_never_panics_on_fold(bytes in mutated_log()) {
            let tmp = tempfile::tempdir().unwrap();
            std::fs::write(tmp.path().join("events.jsonl"), &bytes).unwrap();
            if let Ok((events, _)) = load_events(tmp.path(), false) {
                let s = RunState::from_events(&events);
                let _ = (s.best_val(), s.front_sets(), s.fronts_held());
            }
        }

        /// Events that parse but do not fit together (a candidate id that skips, a parent or a
        /// scored candidate that does not exist, scores missing or one too many): an error naming
        /// the file, the event's number and kind, and what does not fit.
        #[test]
        fn an_event_that_does_not_fit_the_run_is_an_error_naming_it(misfit in misfit_log()) {
            let (bytes, line, kind, why) = misfit;
            let tmp = tempfile::tempdir().unwrap();
            std::fs::write(tmp.path().join("events.jsonl"), &bytes).unwrap();
            let err = format!("{:#}", load_events(tmp.path(), false).map(|_| ()).unwrap_err());
            let want = format!("events.jsonl: event {line} ({kind}) does not fit the run: {why}");
            prop_assert!(err.contains(&want), "expected `{}` in `{}`", want, err);
        }
    }

    /// The real log with one event changed so that it cannot fit: the bytes, that event's 1-based
    /// number and kind, and the reason the fold must give.
    fn misfit_log() -> impl Strategy<Value = (Vec<u8>, usize, &'static str, String)> {
        let lines: Vec<Value> =
            String::from_utf8(real_log().to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let at = |kind: &str| -> Vec<usize> {
            lines.iter().enumerate().filter(|(_, v)| v["event"] == kind).map(|(i, _)| i).collect()
        };
        let (added, scored) = (at("candidate_added"), at("val_evaluated"));
        let n_val = lines[0]["val_ids"].as_array().unwrap().len();
        // How many candidates came before line i (the fold's "next id" there).
        let before = {
            let lines = lines.clone();
            move |i: usize| lines[..i].iter().filter(|v| v["event"] == "candidate_added").count()
        };
        let join = |lines: &[Value]| lines.iter().map(|v| format!("{v}\n")).collect::<String>().into_bytes();
        let (l1, l2, l3, b1, b2) = (lines.clone(), lines.clone(), lines, before.clone(), before);
        prop_oneof![
            // A candidate id that skips ahead.
            (prop::sample::select(added.clone()), 1..50usize).prop_map(move |(i, skip)| {
                let mut l = l1.clone();
                let next = b1(i);
                l[i]["id"] = (next + skip).into();
                (join(&l), i + 1, "candidate_added", format!("candidate id {}, but the next id is {next}", next + skip))
            }),
            // Scores for a candidate that does not exist yet.
            (prop::sample::select(scored.clone()), 0..50usize).prop_map(move |(i, extra)| {
                let mut l = l2.clone();
                let n = b2(i);
                l[i]["candidate"] = (n + extra).into();
                (join(&l), i + 1, "val_evaluated", format!("candidate {} does not exist ({n} so far)", n + extra))
            }),
            // One score too few or one too many.
            (prop::sample::select(scored), any::<bool>()).prop_map(move |(i, more)| {
                let mut l = l3.clone();
                let evals = l[i]["evals"].as_array_mut().unwrap();
                if more {
                    evals.push(evals[0].clone());
                } else {
                    evals.pop();
                }
                let got = if more { n_val + 1 } else { n_val - 1 };
                (join(&l), i + 1, "val_evaluated", format!("{got} scores for {n_val} val examples"))
            }),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Containment: a project folder from someone else can neither reach outside itself through its
// paths nor smuggle a shell into its commands.

mod containment {
    use super::*;
    use gepa_tui::project::Project;

    /// The scripted project in `tmp/proj`, with a secret file next to it (outside the project).
    fn setup() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("proj");
        common::write_project(&dir, "");
        std::fs::write(tmp.path().join("outside.md"), "TOP SECRET outside the project").unwrap();
        std::fs::write(tmp.path().join("outside.jsonl"), "{\"id\": 1, \"input\": \"TOP SECRET\"}\n").unwrap();
        (tmp, dir)
    }

    fn load_error(dir: &Path) -> String {
        match Project::load(dir) {
            Ok(_) => panic!("{} loaded", dir.display()),
            Err(e) => e.to_string(),
        }
    }

    fn set_toml(dir: &Path, from: &str, to: &str) {
        let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
        assert!(toml.contains(from), "{from}");
        std::fs::write(dir.join("gepa.toml"), toml.replacen(from, to, 1)).unwrap();
    }

    #[test]
    fn component_and_data_paths_cannot_leave_the_project_folder() {
        let cases: &[(&str, &str, &str)] = &[
            ("file = \"prompts/instruction.md\"", "file = \"../outside.md\"", "outside the project folder"),
            ("file = \"prompts/instruction.md\"", "file = \"prompts/../../outside.md\"", "outside the project folder"),
            ("file = \"prompts/instruction.md\"", "file = \"/etc/hostname\"", "relative to the project folder"),
            ("val = \"data/val.jsonl\"", "val = \"../outside.jsonl\"", "outside the project folder"),
            ("val = \"data/val.jsonl\"", "val = \"/etc/passwd\"", "relative to the project folder"),
            (
                "[optimizer]",
                "[reflection]\ntemplate_file = \"../outside.md\"\n[optimizer]",
                "outside the project folder",
            ),
        ];
        for (from, to, why) in cases {
            let (tmp, dir) = setup();
            set_toml(&dir, from, to);
            let err = load_error(&dir);
            assert!(err.contains(why), "{to}: {err}");
            assert!(err.contains("gepa.toml:"), "{to}: the error names no line: {err}");
            assert!(!err.contains("TOP SECRET"), "{to}: the outside file leaked: {err}");
            drop(tmp);
        }
    }

    #[test]
    fn symlinks_out_of_the_project_are_refused_and_symlinks_within_it_are_fine() {
        let (tmp, dir) = setup();
        std::os::unix::fs::symlink(tmp.path().join("outside.md"), dir.join("prompts/link.md")).unwrap();
        set_toml(&dir, "file = \"prompts/instruction.md\"", "file = \"prompts/link.md\"");
        let err = load_error(&dir);
        assert!(err.contains("leads outside the project folder (through a symlink"), "{err}");
        assert!(!err.contains("TOP SECRET"), "{err}");

        // A whole data folder linked out.
        let (tmp2, dir2) = setup();
        std::fs::create_dir(tmp2.path().join("elsewhere")).unwrap();
        std::fs::copy(dir2.join("data/val.jsonl"), tmp2.path().join("elsewhere/val.jsonl")).unwrap();
        std::os::unix::fs::symlink(tmp2.path().join("elsewhere"), dir2.join("linked")).unwrap();
        set_toml(&dir2, "val = \"data/val.jsonl\"", "val = \"linked/val.jsonl\"");
        assert!(load_error(&dir2).contains("leads outside the project folder"));

        // A link that stays inside is an ordinary file.
        let (_tmp3, dir3) = setup();
        std::os::unix::fs::symlink("instruction.md", dir3.join("prompts/alias.md")).unwrap();
        set_toml(&dir3, "file = \"prompts/instruction.md\"", "file = \"prompts/alias.md\"");
        assert_eq!(Project::load(&dir3).unwrap().seed["instruction"], "Answer the item. rule A");
    }

    /// A project whose system and evaluator are external programs.
    fn command_project(system: &[&str], evaluator: &[&str], timeout: f64) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("proj");
        std::fs::create_dir_all(dir.join("prompts")).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("prompts/instruction.md"), "Be brief.").unwrap();
        let line = "{\"id\": \"a\", \"input\": \"$(touch pwned-by-data)\", \"expected\": \"x\"}\n";
        std::fs::write(dir.join("data/train.jsonl"), line).unwrap();
        std::fs::write(dir.join("data/val.jsonl"), line).unwrap();
        let argv = |a: &[&str]| serde_json::to_string(a).unwrap();
        std::fs::write(
            dir.join("gepa.toml"),
            format!(
                "[models]\n\n[[components]]\nname = \"instruction\"\nfile = \"prompts/instruction.md\"\n\n\
                 [system]\nkind = \"command\"\ncommand = {}\ntimeout_secs = {timeout}\n\n\
                 [data]\ntrain = \"data/train.jsonl\"\nval = \"data/val.jsonl\"\n\n\
                 [evaluator]\nkind = \"command\"\ncommand = {}\ntimeout_secs = {timeout}\n",
                argv(system),
                argv(evaluator)
            ),
        )
        .unwrap();
        (tmp, dir)
    }

    fn evaluate_seed(dir: &Path) -> gepa_tui::eval::ExampleEval {
        use std::sync::Arc;
        let project = Arc::new(Project::load(dir).unwrap());
        let models = gepa_tui::llm::Models::from_config(&project.config.models, Default::default()).unwrap();
        let task = gepa_tui::eval::Task::new(project.clone(), Arc::new(models)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(task.evaluate(&project.seed, &project.val[0], None)).unwrap()
    }

    fn pwned(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("pwned"))
            .collect()
    }

    #[test]
    fn commands_run_without_a_shell_and_their_arguments_stay_literal() {
        let hostile =
            "$(touch pwned1) `touch pwned2`; touch pwned3 && touch pwned4 | tee pwned5 > pwned6 {{instruction}}";
        let output = serde_json::json!({ "output": hostile }).to_string();
        let score = serde_json::json!({ "score": 1, "feedback": "$(touch pwned7)" }).to_string();
        let (_tmp, dir) = command_project(&["echo", &output], &["echo", &score], 10.0);
        let e = evaluate_seed(&dir);
        assert_eq!(e.error, None, "{e:?}");
        // Printed back exactly as written: nothing was expanded, substituted or filled in.
        assert_eq!(e.output, hostile);
        assert_eq!(e.score, 1.0);
        assert!(e.feedback.contains("$(touch pwned7)"), "{}", e.feedback);
        assert_eq!(pwned(&dir), Vec::<String>::new(), "a shell ran");
    }

    #[test]
    fn a_command_that_hangs_is_stopped_at_its_timeout() {
        let (_tmp, dir) = command_project(&["sleep", "30"], &["echo", "{\"score\": 1}"], 0.5);
        let started = Instant::now();
        let e = evaluate_seed(&dir);
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        assert_eq!(e.score, 0.0);
        let err = e.error.unwrap();
        assert!(err.contains("did not finish within 0.5 s"), "{err}");
    }

    /// Peak resident memory (kB) of a command run under `/usr/bin/time`, when it is installed.
    fn peak_rss_kb(stderr: &str) -> Option<u64> {
        stderr.lines().rev().find_map(|l| l.trim().strip_prefix("PEAK_RSS_KB=")).and_then(|v| v.parse().ok())
    }

    /// A system that prints 50 MB on stdout and a scorer that prints 50 MB on stderr cost a capped
    /// amount of memory, and say what happened.
    #[test]
    fn a_program_printing_fifty_megabytes_does_not_blow_memory() {
        let (_tmp, dir) = command_project(
            &["head", "-c", "52428800", "/dev/zero"],
            &["sh", "-c", "head -c 52428800 /dev/zero >&2; echo '{\"score\": 1}'"],
            60.0,
        );
        let e = evaluate_seed(&dir);
        assert_eq!(e.score, 0.0);
        assert!(e.error.as_deref().unwrap().contains("printed more than 1 MiB on stdout"), "{:?}", e.error);
        assert!(e.output.len() <= 1 << 20);

        // The scorer's 50 MB of stderr: only its tail is kept.
        let (_tmp2, dir2) = command_project(
            &["echo", "{\"output\": \"fine\"}"],
            &["sh", "-c", "head -c 52428800 /dev/zero | tr '\\0' 'e' >&2; echo '{\"score\": 1}'"],
            60.0,
        );
        let e = evaluate_seed(&dir2);
        assert_eq!((e.score, e.error.as_deref()), (1.0, None));

        // Measured in a process of its own: `gepa-tui eval` on the 50 MB project.
        if !Path::new("/usr/bin/time").exists() {
            let test = "a_program_printing_fifty_megabytes_does_not_blow_memory";
            common::missing_prerequisite(
                test,
                "GNU time at /usr/bin/time (to measure peak memory; apt-get install time)",
            );
            return;
        }
        let out = Command::new("/usr/bin/time")
            .args(["-f", "PEAK_RSS_KB=%M", bin(), "eval", dir.to_str().unwrap(), "--split", "val", "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_no_panic(&stderr);
        let kb = peak_rss_kb(&stderr).unwrap_or_else(|| panic!("no peak RSS in:\n{stderr}"));
        figure(format!("gepa-tui eval with a 50 MB-printing system: peak RSS {kb} kB"));
        assert!(kb < 100 * 1024, "peak RSS {kb} kB");
    }

    /// A server on 127.0.0.1 that answers every request with a 200 of `size` bytes, the start of a
    /// chat completion and then one endless string, written a MiB at a time (never held whole),
    /// with a Content-Length when `announce`, else ending at the close. Returns its base URL.
    fn huge_reply_server(size: usize, announce: bool) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 8192];
                    // The request: headers, then as many body bytes as they announce.
                    let body_len = loop {
                        let Ok(n) = stream.read(&mut buf) else { return };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break len.saturating_sub(seen.len() - end - 4);
                        }
                    };
                    let mut left = body_len;
                    while left > 0 {
                        let Ok(n) = stream.read(&mut buf[..left.min(8192)]) else { return };
                        if n == 0 {
                            return;
                        }
                        left -= n;
                    }
                    let length = if announce { format!("Content-Length: {size}\r\n") } else { String::new() };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n"
                    );
                    let opening = b"{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"";
                    if stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(opening)).is_err() {
                        return;
                    }
                    let chunk = vec![b'a'; 1 << 20];
                    let mut sent = opening.len();
                    while sent < size {
                        let n = chunk.len().min(size - sent);
                        if stream.write_all(&chunk[..n]).is_err() {
                            return; // the client hung up: refused
                        }
                        sent += n;
                    }
                });
            }
        });
        url
    }

    /// A 200 MB reply, announced or not, is refused by its size while it is read (a provider
    /// fault naming the size and the key), and `gepa-tui eval` stays far under 200 MB.
    #[test]
    fn a_two_hundred_megabyte_reply_is_refused_by_its_size() {
        const SIZE: usize = 200_000_000;
        if !Path::new("/usr/bin/time").exists() {
            common::missing_prerequisite(
                "a_two_hundred_megabyte_reply_is_refused_by_its_size",
                "GNU time at /usr/bin/time (to measure peak memory; apt-get install time)",
            );
            return;
        }
        for (announce, said) in [(true, "200000000 bytes (its Content-Length)"), (false, "over 16777216 bytes")] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("proj");
            write_project_in(
                &dir,
                &huge_reply_server(SIZE, announce),
                "",
                "max_retries = 1\nretry_base_delay_secs = 0.01",
            );
            let val = std::fs::read_to_string(dir.join("data/val.jsonl")).unwrap();
            std::fs::write(dir.join("data/val.jsonl"), val.lines().next().unwrap()).unwrap();
            let out = Command::new("/usr/bin/time")
                .args(["-f", "PEAK_RSS_KB=%M", bin(), "eval", dir.to_str().unwrap(), "--split", "val"])
                .env(KEY_ENV, FAKE_KEY)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = text(&out.stderr);
            assert_no_panic(&stderr);
            assert!(!out.status.success(), "a refused reply is not a score:\n{stderr}");
            let kb = peak_rss_kb(&stderr).unwrap_or_else(|| panic!("no peak RSS in:\n{stderr}"));
            figure(format!("a {SIZE}-byte reply (Content-Length announced: {announce}): peak RSS {kb} kB"));
            assert!(kb < 200 * 1024, "peak RSS {kb} kB");
            assert!(stderr.contains(said) && stderr.contains("max_reply_bytes = 16777216"), "{stderr}");
        }
    }

    /// `gepa-tui check` names every program a project would start, before anything runs.
    #[test]
    fn check_lists_every_external_command() {
        let (_tmp, dir) = command_project(&["python3", "system.py", "--mode", "a b"], &["echo", "{}"], 10.0);
        let toml = std::fs::read_to_string(dir.join("gepa.toml")).unwrap();
        let combined = toml.replace(
            "[evaluator]\nkind = \"command\"\ncommand = [\"echo\",\"{}\"]\ntimeout_secs = 10\n",
            "[evaluator]\nkind = \"combined\"\n\
             [[evaluator.parts]]\nkind = \"command\"\ncommand = [\"./score.sh\", \"--strict\"]\n\
             [[evaluator.parts]]\nkind = \"command\"\ncommand = [\"node\", \"judge.js\", \"\\u001b]0;hidden\\u0007x\"]\n\
             [[evaluator.parts]]\nkind = \"exact\"\nfield = \"expected\"\n",
        );
        assert_ne!(combined, toml, "the evaluator section was not replaced");
        std::fs::write(dir.join("gepa.toml"), combined).unwrap();
        let out = gepa(&["check", "--offline", dir.to_str().unwrap()]).output().unwrap();
        let stdout = text(&out.stdout);
        assert_no_panic(&text(&out.stderr));
        assert!(stdout.contains("External commands"), "{stdout}");
        for line in
            ["system     python3 system.py --mode 'a b'", "evaluator  ./score.sh --strict", "evaluator  node judge.js"]
        {
            assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
        }
        assert!(!stdout.contains('\u{1b}') && !stdout.contains('\u{7}'), "an escape reached the screen: {stdout:?}");
    }
}

/// A project folder that ships `.gepa` (or its runs/ or cache/) as a symlink out of the folder
/// would have a run write its store and cache wherever that points: refused, like any path out.
#[test]
fn a_symlinked_run_store_is_refused() {
    let server = FaultServer::start(Plan::default());
    for link in [".gepa", ".gepa/runs", ".gepa/cache"] {
        let p = project_at(&server.base_url(), "max_metric_calls = 20", FAST_MODEL);
        let outside = p.dir.parent().unwrap().join("somewhere-else");
        std::fs::create_dir(&outside).unwrap();
        std::fs::create_dir_all(p.dir.join(link).parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&outside, p.dir.join(link)).unwrap();
        let out = run_headless(&p.dir, &[]);
        assert_clear_error(&out, &[&format!("{link}: is a symlink to {}", outside.display())]);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "the run wrote outside the project folder");
    }
    // A link that stays inside the project is fine.
    let p = project_at(&server.base_url(), "max_metric_calls = 20", FAST_MODEL);
    std::fs::create_dir(p.dir.join("store")).unwrap();
    std::os::unix::fs::symlink("store", p.dir.join(".gepa")).unwrap();
    assert_finished(&run_headless(&p.dir, &[]));
}

/// A run folder copied from elsewhere (a shared project, a tarball) can carry symlinks: its
/// `lock`, `events.jsonl` or log pointing at one of the user's files. Resuming or listing it must
/// neither write through them nor read through them: a clear error names the link, the file
/// it points at is untouched, and once the link is gone the run resumes to the same result.
#[test]
fn links_planted_in_a_run_folder_are_refused_and_nothing_is_written_through_them() {
    let gate = Gate::new();
    let server = FaultServer::start(gate.holding(Plan::default()));
    let p = project_at(&server.base_url(), OPT, FAST_MODEL);
    let id = interrupted_run(&p.dir, &gate);
    let run_dir = p.dir.join(".gepa/runs").join(&id);
    let victim = p.dir.parent().unwrap().join("victim.txt");
    let precious = b"the user's own file\n";
    std::fs::write(&victim, precious).unwrap();
    for name in ["lock", "headless.log"] {
        let planted = run_dir.join(name);
        let _ = std::fs::remove_file(&planted);
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let out = run_headless(&p.dir, &["--resume", &id]);
        assert_clear_error(&out, &[&format!("{} is a symlink", planted.display())]);
        assert_eq!(std::fs::read(&victim).unwrap(), precious, "{name}: written through the link");
        // Listing the runs reads nothing through it either, and says what is wrong.
        let out = gepa(&["runs"]).arg(&p.dir).output().unwrap();
        assert!(text(&out.stdout).contains("is a symlink"), "{}", text(&out.stdout));
        std::fs::remove_file(&planted).unwrap();
    }
    // The events log itself as a link: refused before it is read, let alone repaired.
    let events = run_dir.join("events.jsonl");
    let moved = p.dir.parent().unwrap().join("events-elsewhere.jsonl");
    std::fs::rename(&events, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &events).unwrap();
    let before = std::fs::read(&moved).unwrap();
    let out = run_headless(&p.dir, &["--resume", &id]);
    assert_clear_error(&out, &[&format!("{} is a symlink", events.display())]);
    assert_eq!(std::fs::read(&moved).unwrap(), before, "the linked log was changed");
    std::fs::remove_file(&events).unwrap();
    std::fs::rename(&moved, &events).unwrap();

    let out = run_headless(&p.dir, &["--resume", &id]);
    assert_finished(&out);
    assert_eq!(comparable(read_result(&p.dir, &id)), *reference());
}

// ---------------------------------------------------------------------------------------------
// 6. Secrets

/// Every file under `root` whose bytes hold `needle`.
fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().filter_map(|e| e.ok()).map(|e| e.path()));
        } else if meta.is_file() {
            let bytes = std::fs::read(&p).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(p);
            }
        }
    }
    hits
}

/// A full run through faults whose error bodies quote the key back, one through a 401 that does
/// the same, and `check` pinging a model that refuses the key: the key is in no file of the
/// project (run store, cache, logs) and in nothing printed.
#[test]
fn the_api_key_reaches_no_file_and_no_output() {
    // Project A: 20% faults, error bodies quoting the Authorization header, and one request that
    // always fails, so a scrubbed server message ends up in the run's log and on stderr when the
    // run stops for it (after max_outage_secs).
    let a = FaultServer::start(Plan {
        seed: 5,
        fault_percent: 20,
        max_faults_per_request: 4,
        echo_key_in_errors: true,
        hang: Duration::from_secs(4),
        fail_rules: vec![FailRule {
            model: Some("scripted-task".into()),
            body_contains: "item 103 of".into(),
            fault: Fault::ServerError,
        }],
        ..Plan::default()
    });
    let opt_a = "max_metric_calls = 60\nproposals_per_round = 2\nseed = 1\nmax_outage_secs = 1";
    let pa = project_at(&a.base_url(), opt_a, FAST_MODEL);
    let run_a = run_headless(&pa.dir, &[]);
    assert_eq!(run_a.status.code(), Some(3), "{}", text(&run_a.stderr));
    assert!(text(&run_a.stderr).contains("Bearer [redacted]"), "{}", text(&run_a.stderr));

    // Project B: the reflection model and some task calls refuse the key with a 401.
    let b = FaultServer::start(Plan {
        echo_key_in_errors: true,
        fail_rules: vec![
            FailRule {
                model: Some("scripted-reflection".into()),
                body_contains: String::new(),
                fault: Fault::Unauthorized,
            },
            FailRule {
                model: Some("scripted-task".into()),
                body_contains: "item 3 of".into(),
                fault: Fault::Unauthorized,
            },
        ],
        ..Plan::default()
    });
    let pb = project_at(&b.base_url(), "max_metric_calls = 40\nproposals_per_round = 2\nseed = 1", FAST_MODEL);
    let run_b = run_headless(&pb.dir, &[]);
    assert_eq!(run_b.status.code(), Some(3), "a refused key stops the run: {}", text(&run_b.stderr));
    let check_b = gepa(&["check", pb.dir.to_str().unwrap()]).output().unwrap();
    assert_eq!(check_b.status.code(), Some(1), "check should report the refused key");

    // The key was really in play: sent on every request, and quoted back by the servers.
    for server in [&a, &b] {
        let attempts = server.attempts();
        assert!(!attempts.is_empty());
        for at in &attempts {
            assert_eq!(at.authorization.as_deref(), Some(format!("Bearer {FAKE_KEY}").as_str()));
            let body = at.raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
            assert!(!body.contains(FAKE_KEY), "the key was sent in a request body");
        }
    }
    assert!(a.fault_counts().get(&Fault::ServerError).is_some_and(|n| *n > 0));
    let auth_errors = text(&run_b.stderr);
    assert!(auth_errors.contains("refused the key (HTTP 401)") && auth_errors.contains(KEY_ENV), "{auth_errors}");

    // Nowhere: not whole, and not the distinctive tail on its own.
    let tail = &FAKE_KEY[FAKE_KEY.len() - 16..];
    for needle in [FAKE_KEY, tail] {
        for p in [&pa, &pb] {
            let hits = files_containing(p.dir.parent().unwrap(), needle.as_bytes());
            assert!(hits.is_empty(), "the key is in {hits:?}");
        }
        for out in [&run_a, &run_b, &check_b] {
            assert!(!text(&out.stdout).contains(needle) && !text(&out.stderr).contains(needle), "the key was printed");
        }
    }
    // What the scrubbing left in its place, where a server quoted the key.
    let redacted = files_containing(&pa.dir, b"Bearer [redacted]");
    assert!(!redacted.is_empty(), "no quoted server error was recorded, so scrubbing was not exercised");
}

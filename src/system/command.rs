//! A `command` system: an external program (argv, no shell) run in the project folder. It reads
//! `{"candidate":{…},"example":{…}}` on stdin and prints `{"output":…,"trace":…}` on stdout.
//!
//! The process runner here is shared with the `command` evaluator: at most `concurrency` programs
//! of one kind run at once, output is capped, a timeout kills the program (and is recorded as a
//! timeout), and every failure becomes a message with the tail of its stderr.

use super::{RunOutput, Trace};
use crate::project::{Candidate, Example, ProjectError};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// Bytes of stdout and of stderr kept from one process.
pub const OUTPUT_CAP: usize = 1024 * 1024;
/// Characters of stderr quoted in an error message.
const STDERR_TAIL_CHARS: usize = 2000;
/// After the program exits, how long its pipes may stay open (held by a child of its own).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct CommandSystem {
    argv: Vec<String>,
    root: PathBuf,
    timeout: Duration,
    slots: Arc<Semaphore>,
}

impl CommandSystem {
    /// `concurrency`: at most this many copies run at once (None: the machine's CPU count).
    pub fn new(
        argv: &[String],
        root: &Path,
        timeout_secs: f64,
        concurrency: Option<usize>,
    ) -> Result<CommandSystem, ProjectError> {
        if argv.first().is_none_or(|a| a.trim().is_empty()) {
            return Err(ProjectError::config(
                None,
                "[system] kind = \"command\" needs command = [\"program\", \"arg\", …]",
            ));
        }
        Ok(CommandSystem {
            argv: argv.to_vec(),
            root: root.to_path_buf(),
            timeout: secs(timeout_secs),
            slots: process_slots(concurrency),
        })
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    pub async fn run(&self, candidate: &Candidate, example: &Example) -> RunOutput {
        let input = json!({ "candidate": candidate, "example": example_json(example) });
        let stdin = match serde_json::to_vec(&input) {
            Ok(b) => b,
            Err(e) => return RunOutput::failed(format!("cannot encode the input: {e}"), Trace::default(), 0.0),
        };
        let done = match run_process(&self.argv, &self.root, stdin, self.timeout, &self.slots).await {
            Ok(done) => done,
            Err(failure) => {
                let trace =
                    Trace { stderr: Some(failure.stderr.clone()).filter(|s| !s.is_empty()), ..Trace::default() };
                return RunOutput {
                    timed_out: failure.timed_out,
                    ..RunOutput::failed(failure.to_string(), trace, 0.0)
                };
            }
        };
        let mut trace = Trace { stderr: Some(done.stderr.clone()).filter(|s| !s.is_empty()), ..Trace::default() };
        let reply = match parse_json_object(&done.stdout) {
            Some(v) => v,
            None => {
                let msg = done.explain(&format!(
                    "`{}` did not print a JSON object like {{\"output\": \"…\"}} on stdout",
                    self.argv[0]
                ));
                return RunOutput::failed(msg, trace, 0.0);
            }
        };
        trace.program_trace = reply.get("trace").cloned();
        let output = match reply.get("output") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => {
                let msg = done.explain(&format!("`{}` printed JSON without an \"output\" key", self.argv[0]));
                return RunOutput::failed(msg, trace, 0.0);
            }
            Some(other) => other.to_string(),
        };
        RunOutput { output, trace, error: None, cost_usd: 0.0, replayed_usd: 0.0, timed_out: false }
    }
}

/// The machine's CPU count: how many CPU-bound programs can run side by side without slowing
/// each other down (the default `concurrency` of `command` systems and scorers).
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The permits of one kind of program (a `command` system's, or an evaluator's scorers'): the
/// engine plans evaluations ahead, and without a cap they would all start at once and push
/// CPU-bound programs into their timeout.
pub(crate) fn process_slots(concurrency: Option<usize>) -> Arc<Semaphore> {
    let n = concurrency.unwrap_or_else(default_concurrency).clamp(1, Semaphore::MAX_PERMITS);
    Arc::new(Semaphore::new(n))
}

pub(crate) fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(60))
}

/// The example as programs see it: its fields, plus `id` when the data had none.
pub fn example_json(example: &Example) -> Value {
    let mut fields: Map<String, Value> = example.fields.clone();
    if !fields.contains_key("id") {
        fields.insert("id".to_string(), Value::String(example.id.clone()));
    }
    Value::Object(fields)
}

/// The JSON object a program printed: the whole of stdout, or else its last non-empty line (so
/// programs may log before answering).
pub(crate) fn parse_json_object(stdout: &str) -> Option<Map<String, Value>> {
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(stdout.trim()) {
        return Some(m);
    }
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty())?;
    match serde_json::from_str::<Value>(last.trim()) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// A program that ran to completion with exit status 0.
#[derive(Debug, Clone)]
pub(crate) struct ProcessDone {
    pub stdout: String,
    pub stderr: String,
}

impl ProcessDone {
    /// `what`, followed by the start of stdout and the tail of stderr.
    pub fn explain(&self, what: &str) -> String {
        let mut msg = what.to_string();
        let out = self.stdout.trim();
        msg.push_str(&if out.is_empty() {
            "; stdout was empty".to_string()
        } else {
            format!("; stdout began: {}", crate::text::truncate_chars(out, 300))
        });
        push_stderr_tail(&mut msg, &self.stderr);
        msg
    }
}

/// Why a program did not run to a clean exit.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}{}", stderr_suffix(.stderr))]
pub(crate) struct ProcessFailure {
    pub message: String,
    pub stderr: String,
    /// It ran out of its `timeout_secs` and was stopped.
    pub timed_out: bool,
}

fn stderr_suffix(stderr: &str) -> String {
    let mut s = String::new();
    push_stderr_tail(&mut s, stderr);
    s
}

fn push_stderr_tail(msg: &mut String, stderr: &str) {
    let err = stderr.trim();
    if err.is_empty() {
        return;
    }
    let count = err.chars().count();
    let tail: String = if count > STDERR_TAIL_CHARS {
        let skip = count - STDERR_TAIL_CHARS;
        format!("…{}", err.chars().skip(skip).collect::<String>())
    } else {
        err.to_string()
    };
    msg.push_str("; stderr:\n");
    msg.push_str(&tail);
}

/// What a reader collected from a pipe.
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

/// Reads a pipe to its end, keeping the first `cap` bytes (or the last, for `keep_tail`), and
/// keeps draining past the cap so the program never blocks on a full pipe.
async fn drain<R: AsyncRead + Unpin>(mut pipe: R, cap: usize, keep_tail: bool, into: Arc<Mutex<Captured>>) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Ok(mut c) = into.lock() else { return };
        if keep_tail {
            c.bytes.extend_from_slice(&chunk[..n]);
            if c.bytes.len() > 2 * cap {
                let cut = c.bytes.len() - cap;
                c.bytes.drain(..cut);
                c.truncated = true;
            }
        } else {
            let room = cap.saturating_sub(c.bytes.len());
            c.bytes.extend_from_slice(&chunk[..n.min(room)]);
            if n > room {
                c.truncated = true;
            }
        }
    }
}

fn take_text(c: &Arc<Mutex<Captured>>, cap: usize, keep_tail: bool) -> (String, bool) {
    let Ok(c) = c.lock() else {
        return (String::new(), false);
    };
    let bytes: &[u8] = if keep_tail && c.bytes.len() > cap { &c.bytes[c.bytes.len() - cap..] } else { &c.bytes };
    (String::from_utf8_lossy(bytes).into_owned(), c.truncated)
}

/// Kills a program's whole process group when dropped: on return (leftover background processes),
/// on timeout, and when the run is stopped mid-evaluation (the future is dropped).
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.0) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Runs `argv` in `cwd` with `input` on stdin, once one of `slots` is free (the timeout starts
/// when the program does, not while it waits its turn). A relative program path with a `/` is
/// taken relative to `cwd` (the project folder), as users write it in gepa.toml.
pub(crate) async fn run_process(
    argv: &[String],
    cwd: &Path,
    input: Vec<u8>,
    timeout: Duration,
    slots: &Semaphore,
) -> Result<ProcessDone, ProcessFailure> {
    let fail = |message: String| ProcessFailure { message, stderr: String::new(), timed_out: false };
    // Held until the program and everything it started are gone (dropped after `_group`).
    let Ok(_slot) = slots.acquire().await else {
        return Err(fail("the program's slots were closed".to_string()));
    };
    let Some(program) = argv.first() else {
        return Err(fail("no program to run (the command is empty)".to_string()));
    };
    let program_path = if program.contains('/') && Path::new(program).is_relative() {
        cwd.join(program)
    } else {
        PathBuf::from(program)
    };
    let mut child = tokio::process::Command::new(&program_path)
        .args(&argv[1..])
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so a timeout or a stopped run also ends what it started.
        .process_group(0)
        .spawn()
        .map_err(|e| {
            fail(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("cannot start `{program}`: program not found (is it installed and on PATH?)")
                }
                std::io::ErrorKind::PermissionDenied => {
                    format!("cannot start `{program}`: permission denied (is it executable?)")
                }
                _ => format!("cannot start `{program}`: {e}"),
            })
        })?;
    let _group = child.id().map(ProcessGroup);
    let out = Arc::new(Mutex::new(Captured::default()));
    let err = Arc::new(Mutex::new(Captured::default()));
    let mut readers = Vec::new();
    if let Some(pipe) = child.stdout.take() {
        readers.push(tokio::spawn(drain(pipe, OUTPUT_CAP, false, Arc::clone(&out))));
    }
    if let Some(pipe) = child.stderr.take() {
        readers.push(tokio::spawn(drain(pipe, OUTPUT_CAP, true, Arc::clone(&err))));
    }
    if let Some(mut stdin) = child.stdin.take() {
        // A program that does not read its input closes the pipe: that is its business.
        readers.push(tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        }));
    }
    let status = tokio::time::timeout(timeout, child.wait()).await;
    let timed_out = status.is_err();
    if timed_out {
        let _ = child.kill().await;
    }
    // Collect what the pipes still hold; a grandchild keeping them open does not hold us up.
    let all = futures::future::join_all(readers.iter_mut());
    if tokio::time::timeout(DRAIN_GRACE, all).await.is_err() {
        for r in &readers {
            r.abort();
        }
    }
    let (stdout, stdout_truncated) = take_text(&out, OUTPUT_CAP, false);
    let (stderr, _) = take_text(&err, OUTPUT_CAP, true);
    let with_stderr = |message: String| ProcessFailure { message, stderr: stderr.clone(), timed_out: false };
    match status {
        Err(_) => Err(ProcessFailure {
            timed_out: true,
            ..with_stderr(format!(
                "`{program}` timed out: it did not finish within {} s and was stopped (raise timeout_secs if it needs \
                 longer, or lower concurrency if it competes for the CPU)",
                timeout.as_secs_f64()
            ))
        }),
        Ok(Err(e)) => Err(with_stderr(format!("waiting for `{program}` failed: {e}"))),
        Ok(Ok(s)) if !s.success() => Err(with_stderr(match s.code() {
            Some(code) => format!("`{program}` exited with status {code}"),
            None => format!("`{program}` was killed by a signal"),
        })),
        Ok(Ok(_)) if stdout_truncated => {
            Err(with_stderr(format!("`{program}` printed more than {} MiB on stdout", OUTPUT_CAP / (1024 * 1024))))
        }
        Ok(Ok(_)) => Ok(ProcessDone { stdout, stderr }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    fn example() -> Example {
        let fields = serde_json::from_str::<Map<String, Value>>(r#"{"question":"2+2"}"#).unwrap();
        Example { id: "q1".into(), line: 1, fields }
    }

    fn candidate() -> Candidate {
        [("instruction".to_string(), "Be brief.".to_string())].into()
    }

    async fn run(script: &str, timeout: f64) -> RunOutput {
        let dir = std::env::temp_dir();
        let sys = CommandSystem::new(&sh(script), &dir, timeout, None).unwrap();
        sys.run(&candidate(), &example()).await
    }

    /// A program that times out is stopped with everything it started (its process group).
    #[tokio::test]
    async fn a_timeout_also_ends_the_program_s_children() {
        let pidfile = tempfile::NamedTempFile::new().unwrap();
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.path().display());
        let out = run(&script, 0.5).await;
        assert!(out.error.unwrap().contains("did not finish"));
        let pid: i32 = std::fs::read_to_string(pidfile.path()).unwrap().trim().parse().unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Gone, or a zombie waiting for whoever adopted it to reap it: either way not running.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let running =
            state.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_some_and(|s| s != "Z");
        assert!(!running, "the background `sleep` {pid} outlived the timeout: {state}");
    }

    #[tokio::test]
    async fn passes_candidate_and_example_and_reads_output() {
        // Echo the input back as the output: checks what the program receives.
        let out = run(r#"read -r line; printf '{"output": %s, "trace": {"n": 1}}' "$line""#, 10.0).await;
        assert_eq!(out.error, None);
        let got: Value = serde_json::from_str(&out.output).unwrap();
        assert_eq!(got, json!({"candidate": {"instruction": "Be brief."}, "example": {"question": "2+2", "id": "q1"}}));
        assert_eq!(out.trace.program_trace, Some(json!({"n": 1})));
    }

    #[tokio::test]
    async fn logging_before_the_answer_is_fine() {
        let out = run(r#"cat >/dev/null; echo 'working…'; echo '{"output": "4"}'"#, 10.0).await;
        assert_eq!(out.error, None);
        assert_eq!(out.output, "4");
    }

    #[tokio::test]
    async fn non_zero_exit_reports_stderr_tail() {
        let out = run("echo 'Traceback: boom' >&2; exit 3", 10.0).await;
        let err = out.error.unwrap();
        assert!(err.contains("exited with status 3"), "{err}");
        assert!(err.contains("Traceback: boom"), "{err}");
    }

    #[tokio::test]
    async fn bad_json_is_an_error() {
        let out = run("echo 'not json'", 10.0).await;
        let err = out.error.unwrap();
        assert!(err.contains("did not print a JSON object"), "{err}");
        assert!(err.contains("not json"), "{err}");
    }

    #[tokio::test]
    async fn timeout_kills_the_program() {
        let start = std::time::Instant::now();
        let out = run("sleep 30", 0.3).await;
        assert!(out.error.unwrap().contains("did not finish within"));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn missing_program() {
        let dir = std::env::temp_dir();
        let sys = CommandSystem::new(&["no-such-program-gepa".to_string()], &dir, 5.0, None).unwrap();
        let out = sys.run(&candidate(), &example()).await;
        assert!(out.error.unwrap().contains("program not found"));
    }

    #[tokio::test]
    async fn huge_stdout_is_capped() {
        let out = run("head -c 3000000 /dev/zero | tr '\\0' 'a'", 20.0).await;
        assert!(out.error.unwrap().contains("more than 1 MiB"));
    }
}

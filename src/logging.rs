//! Logs go to a file in the run folder (`<name>.log`), never to the terminal.
//!
//! One workbench session can open several runs (branching opens a new one), and a process can
//! install its logger only once: the logger writes to whichever run folder was opened last.

use std::path::Path;
use std::sync::{Mutex, Once};
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::fmt::writer::{MakeWriter, OptionalWriter};

/// Where log lines go now: the newest run folder's log, or nowhere.
static CURRENT: Mutex<Option<NonBlocking>> = Mutex::new(None);
static INSTALL: Once = Once::new();

struct CurrentLog;

impl<'a> MakeWriter<'a> for CurrentLog {
    type Writer = OptionalWriter<NonBlocking>;
    fn make_writer(&'a self) -> Self::Writer {
        match CURRENT.lock().ok().and_then(|c| c.clone()) {
            Some(w) => OptionalWriter::some(w),
            None => OptionalWriter::none(),
        }
    }
}

/// Starts logging to `run_dir/<file>` (instead of any earlier run folder); keep the guard alive
/// while the run goes on (it flushes on drop).
pub fn log_to_run_folder(run_dir: &Path, file: &str) -> Option<WorkerGuard> {
    // The appender follows links; a log planted as a symlink (a run copied from elsewhere) would
    // append to whatever it points at. No log then (opening the run says why).
    if crate::store::refuse_symlinks(run_dir).is_err() {
        stop_logging();
        return None;
    }
    let appender = tracing_appender::rolling::never(run_dir, file);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    *CURRENT.lock().ok()? = Some(writer);
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(CurrentLog)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    Some(guard)
}

/// Log lines go nowhere until the next `log_to_run_folder`.
fn stop_logging() {
    if let Ok(mut c) = CURRENT.lock() {
        *c = None;
    }
}

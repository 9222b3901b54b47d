//! Logs go to a file in the run folder (`<name>.log`), never to the terminal.

use std::path::Path;

/// Starts logging to `run_dir/<file>`; keep the guard alive while the run goes on (it flushes on drop).
/// Only the first call in a process installs the logger.
pub fn log_to_run_folder(run_dir: &Path, file: &str) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    // The appender follows links; a log planted as a symlink (a run copied from elsewhere) would
    // append to whatever it points at. No log then (opening the run says why).
    if crate::store::refuse_symlinks(run_dir).is_err() {
        return None;
    }
    let appender = tracing_appender::rolling::never(run_dir, file);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let subscriber =
        tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_max_level(tracing::Level::INFO).finish();
    tracing::subscriber::set_global_default(subscriber).ok().map(|_| guard)
}

use crate::cli::CommonArgs;
use std::path::Path;
use std::process::ExitCode;

pub fn run(
    _dir: &Path,
    _split: &str,
    _candidate: Option<&str>,
    _json: bool,
    _common: &CommonArgs,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`eval` is not built yet")
}

use crate::cli::CommonArgs;
use std::path::Path;
use std::process::ExitCode;

pub fn run(_dir: &Path, _common: &CommonArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`check` is not built yet")
}

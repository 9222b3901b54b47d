use std::path::Path;
use std::process::ExitCode;

pub fn run(_dir: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`init` is not built yet")
}

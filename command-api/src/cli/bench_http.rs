//! `ticketlog bench http` (needs the command service; see the report).

use std::process::ExitCode;

use super::BenchHttpArgs;

/// Runs the HTTP benchmark.
pub fn run(_args: BenchHttpArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench http is not built yet")
}

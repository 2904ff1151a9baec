//! `ticketlog bench append` and `ticketlog bench http`.

use std::process::ExitCode;

use anyhow::Context;
use event_store::bench::{run_append_bench, AppendBenchOptions};

use super::{BenchArgs, BenchHttpArgs};

/// Raw store appends, from the event store's own benchmark.
pub fn append(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let report = run_append_bench(AppendBenchOptions::default()).context("append benchmark")?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// HTTP commands end to end (see `bench_http`).
pub fn http(args: BenchHttpArgs) -> anyhow::Result<ExitCode> {
    super::bench_http::run(args)
}

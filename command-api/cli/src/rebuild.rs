//! `ticketlog rebuild`: folds the read model from position 1 on a stopped
//! server's data directory, with a progress bar, and saves it as the
//! projection snapshot so the next `serve` starts from it. (A running
//! server rebuilds beside its live model with `Projections::rebuild`; the
//! store admits one process at a time.)

use std::process::ExitCode;

use clap::Args;
use projections::model::ReadModel;
use projections::PROJECTION_NAMES;
use serde::Serialize;

use super::location::StoreLocation;
use super::offline;

/// `ticketlog rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    store: StoreLocation,
    /// Projection to rebuild (every view lives in one read model: `read_model`).
    #[arg(long)]
    projection: Option<String>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The summary printed at the end.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    projection: &'a str,
    events: u64,
    position: u64,
    fold_s: f64,
    snapshot_write_s: f64,
    snapshot_bytes: u64,
    events_per_s: f64,
}

/// The projection named by `--projection`, or a clear error listing the
/// valid names.
fn projection_name(requested: Option<&str>) -> anyhow::Result<&'static str> {
    match requested {
        None => Ok(PROJECTION_NAMES[0]),
        Some(name) => PROJECTION_NAMES
            .iter()
            .find(|n| **n == name)
            .copied()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown projection {name:?}; valid names: {} (every view — tickets, chat, statistics, audit — lives in it)",
                    PROJECTION_NAMES.join(", ")
                )
            }),
    }
}

/// Runs the rebuild.
pub fn run(args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let projection = projection_name(args.projection.as_deref())?;
    let runtime = offline::runtime()?;
    runtime.block_on(async {
        let store = offline::open_store(&args.store).await?;
        let bar = command_api::progress::events_bar("rebuilding", true);
        let folded = offline::fold_and_save(&store, ReadModel::default(), &bar).await;
        bar.finish_and_clear();
        let closed = store.close().await;
        let folded = folded?;
        closed?;
        let events_per_s = if folded.fold_s > 0.0 {
            folded.events as f64 / folded.fold_s
        } else {
            0.0
        };
        let summary = Summary {
            projection,
            events: folded.events,
            position: folded.position,
            fold_s: folded.fold_s,
            snapshot_write_s: folded.save_s,
            snapshot_bytes: folded.snapshot_bytes,
            events_per_s,
        };
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            println!(
                "rebuilt {projection}: {} events in {:.2} s ({:.0} events/s); snapshot at position {} written ({} bytes, {:.2} s)",
                summary.events,
                summary.fold_s,
                summary.events_per_s,
                summary.position,
                summary.snapshot_bytes,
                summary.snapshot_write_s
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_names_are_checked() {
        assert_eq!(projection_name(None).expect("default"), "read_model");
        assert_eq!(
            projection_name(Some("read_model")).expect("known"),
            "read_model"
        );
        let e = projection_name(Some("tickets")).expect_err("unknown");
        assert!(e.to_string().contains("valid names: read_model"), "{e}");
    }
}

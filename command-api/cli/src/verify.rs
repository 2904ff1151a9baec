//! `ticketlog verify`: walks the whole log (sled's in `--data`, or a
//! PostgreSQL one with `--database-url`) with a progress bar and says
//! plainly whether it is intact; exits 2 when it is not.

use std::process::ExitCode;

use anyhow::Context;
use event_store::{EventStore, SledOptions};
use indicatif::{ProgressBar, ProgressStyle};

use super::location::Create;
use super::VerifyArgs;

/// Exit code of a verification that found damage.
const EXIT_DAMAGED: u8 = 2;

/// Runs the verification.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Open without sled's tail check so a damaged tail is reported with
        // its position instead of refusing to open.
        let options = SledOptions {
            check_tail_on_open: false,
            ..SledOptions::default()
        };
        let store = args.store.open(Create::Never, options).await?;
        walk(store.as_ref()).await
    })
}

/// Verifies `store` with a progress bar, closes it and prints the verdict.
async fn walk(store: &dyn EventStore) -> anyhow::Result<ExitCode> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} verifying [{bar:40}] {pos}/{len} records ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let progress_bar = bar.clone();
    let report = store
        .verify(&move |done, total| {
            progress_bar.set_length(total);
            progress_bar.set_position(done);
        })
        .await;
    bar.finish_and_clear();
    store.close().await.ok();
    let report = report.context("reading the log")?;
    match &report.failure {
        None => {
            println!("OK: {} records verified, head position {}; checksums, contiguity and hash chain intact.", report.records, report.head);
            Ok(ExitCode::SUCCESS)
        }
        Some((position, reason)) => {
            println!("DAMAGED: record at position {position}: {reason} ({} records checked before it, head {}).", report.records, report.head);
            Ok(ExitCode::from(EXIT_DAMAGED))
        }
    }
}

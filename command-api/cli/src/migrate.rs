//! `ticketlog migrate-store`: copies the embedded store of a data
//! directory into a PostgreSQL database, so that `serve --database-url`
//! carries on where the embedded server stopped: the log byte for byte at
//! its positions (hashes unchanged) with its stream and command indexes,
//! every side tree (users, revocations, snapshots, checkpoints, …), and
//! the generated JWT secret, so that tokens issued before stay valid.
//!
//! Safe to run again: the database must hold a prefix of the embedded log
//! (the same hash at its head), and only what it lacks is copied; a
//! database holding another log is refused before anything is written. A
//! completed copy is marked in the database ([`MARKER_TREE_NAME`]), and a
//! later run copies nothing unless the embedded log has grown since, so
//! that it never sets back what a server on the database has changed.

mod trees;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use command_api::auth::secret::{
    GENERATED_SECRET_FILE_NAME, GENERATED_SECRET_KEY, SECRETS_TREE_NAME,
};
use command_api::progress::events_bar;
use event_store::{
    EventStore, Hash, KvProvider, PgOptions, PgStore, RecordedEvent, SledOptions, SledStore,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::location::{open_sled, Create};
use super::offline;

/// Records per import transaction (more, by less than one append, when an
/// append straddles the limit): large enough that a commit's round trips
/// and fsync are spread over many events.
pub const MIGRATE_BATCH_EVENTS_MAX: usize = 2000;
/// Record bytes per import transaction (same rule), so that a log of
/// large records does not make one huge transaction.
pub const MIGRATE_BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Batches read ahead of the one being imported (the reader and the
/// database work at the same time; memory stays bounded).
pub const MIGRATE_QUEUE_BATCHES: usize = 2;
/// Side tree of the database where a completed copy is recorded.
pub const MARKER_TREE_NAME: &str = "migrations";
/// Key of the completed copy from an embedded store in [`MARKER_TREE_NAME`].
const MARKER_KEY: &[u8] = b"embedded-store";

/// `ticketlog migrate-store`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Data directory holding the embedded store to copy (no server may be running on it).
    #[arg(long, env = "TICKETLOG_DATA", default_value = "./data")]
    data: PathBuf,
    /// PostgreSQL database to copy into (`postgres://USER@HOST:PORT/DB`); its schema is created if needed.
    #[arg(long, env = "TICKETLOG_DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The completed copy, as recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Marker {
    /// The embedded log's head when the copy completed.
    head: u64,
    /// Its hash, in hex.
    hash: String,
}

/// What a run did (printed at the end).
#[derive(Debug, Default, Serialize)]
struct Summary {
    /// Events copied by this run.
    events_copied: u64,
    /// The first position copied (0 if none).
    first_position: u64,
    /// The database's log head afterwards.
    head: u64,
    /// Seconds spent copying the log.
    log_s: f64,
    /// Events copied per second.
    events_per_s: f64,
    /// Side trees copied.
    trees: Vec<String>,
    /// Entries in those trees.
    tree_entries: u64,
    /// Entries written (missing or different in the database).
    tree_entries_written: u64,
    /// What happened to the generated JWT secret.
    jwt_secret: &'static str,
    /// Set when nothing was to be copied, and why.
    nothing_to_copy: Option<String>,
    /// Seconds for the whole run.
    total_s: f64,
}

/// Runs the copy.
pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let runtime = offline::runtime()?;
    let mut summary = runtime.block_on(async {
        // sled locks its directory: a running server's store is refused here.
        let sled = open_sled(&args.data, Create::Never, SledOptions::default())?;
        let pg = match PgStore::open(&args.database_url, PgOptions::default()).await {
            Ok(pg) => pg,
            Err(e) => {
                sled.close().await.ok();
                return Err(e).context("opening the PostgreSQL store");
            }
        };
        let copied = copy(&sled, &pg, &args.data).await;
        let closed = (pg.close().await, sled.close().await);
        let summary = copied?;
        closed.0.context("closing the PostgreSQL store")?;
        closed.1.context("closing the embedded store")?;
        Ok::<_, anyhow::Error>(summary)
    })?;
    summary.total_s = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary, &args.data);
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks that the database holds a prefix of the embedded log, then
/// copies what it lacks: the log, the side trees, the secret, the marker.
async fn copy(sled: &Arc<SledStore>, pg: &Arc<PgStore>, data: &Path) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let sled_head = sled.durable_head();
    let (pg_head, pg_hash) = pg.head_hash().await?;
    let kv: Arc<dyn KvProvider> = pg.clone();
    let marker = tokio::task::spawn_blocking(move || read_marker(kv.as_ref()))
        .await
        .context("marker task")??;
    if pg_head > sled_head {
        let at_sled_head = hash_at(pg.as_ref(), sled_head).await?;
        if at_sled_head != hash_at(sled.as_ref(), sled_head).await? {
            bail!(another_log(sled_head, &at_sled_head, sled.as_ref()).await?);
        }
        summary.head = pg_head;
        summary.nothing_to_copy = Some(format!(
            "the database holds the embedded log followed by {} more events (a server has \
             appended to it): nothing was copied",
            pg_head - sled_head
        ));
        summary.jwt_secret = "not copied";
        return Ok(summary);
    }
    if pg_head > 0 && hash_at(sled.as_ref(), pg_head).await? != pg_hash {
        bail!(another_log(pg_head, &pg_hash, sled.as_ref()).await?);
    }
    let sled_hash = hash_at(sled.as_ref(), sled_head).await?;
    let done = Marker {
        head: sled_head,
        hash: RecordedEvent::hex(&sled_hash),
    };
    if pg_head == sled_head && marker.as_ref() == Some(&done) {
        summary.head = pg_head;
        summary.nothing_to_copy = Some(format!(
            "the database holds this store, copied completely before (log head {pg_head}): \
             nothing was copied"
        ));
        summary.jwt_secret = "not copied";
        return Ok(summary);
    }

    let started = Instant::now();
    summary.head = copy_log(sled, pg, pg_head, sled_head).await?;
    summary.log_s = started.elapsed().as_secs_f64();
    summary.events_copied = summary.head - pg_head;
    summary.first_position = if summary.events_copied > 0 {
        pg_head + 1
    } else {
        0
    };
    summary.events_per_s = summary.events_copied as f64 / summary.log_s.max(f64::EPSILON);
    if pg.head_hash().await? != (sled_head, sled_hash) {
        bail!("after the copy the database's log head differs from the embedded store's");
    }

    let from: Arc<dyn KvProvider> = sled.clone();
    let to: Arc<dyn KvProvider> = pg.clone();
    let secret_file = data.join(GENERATED_SECRET_FILE_NAME);
    let summary = tokio::task::spawn_blocking(move || -> anyhow::Result<Summary> {
        for name in from.tree_names()? {
            let copied = trees::copy_tree(from.as_ref(), to.as_ref(), &name)
                .with_context(|| format!("copying the side tree {name}"))?;
            summary.tree_entries += copied.entries;
            summary.tree_entries_written += copied.written;
            summary.trees.push(name);
        }
        summary.jwt_secret = copy_secret(&secret_file, to.as_ref())?;
        let marker = serde_json::to_vec(&done)?;
        to.tree(MARKER_TREE_NAME)?
            .apply(vec![(MARKER_KEY.to_vec(), Some(marker))])?;
        Ok(summary)
    })
    .await
    .context("side-tree task")??;
    Ok(summary)
}

/// Copies the records after `from` up to `to` with a progress bar: a
/// blocking reader hands whole appends in batches to the importer, which
/// commits one transaction per batch. Returns the database's new head.
async fn copy_log(sled: &Arc<SledStore>, pg: &PgStore, from: u64, to: u64) -> anyhow::Result<u64> {
    let bar = events_bar("copying the log", true);
    bar.set_length(to);
    bar.set_position(from);
    let (batches, mut queue) = mpsc::channel(MIGRATE_QUEUE_BATCHES);
    let reader = {
        let sled = sled.clone();
        tokio::task::spawn_blocking(move || {
            let mut next = from + 1;
            while next <= to {
                let batch = sled.read_raw(next, MIGRATE_BATCH_EVENTS_MAX, MIGRATE_BATCH_BYTES_MAX);
                let last = match &batch {
                    Ok(records) => records.last().map(|r| r.position),
                    Err(_) => None,
                };
                let failed = batch.is_err();
                if batches.blocking_send(batch).is_err() || failed {
                    return;
                }
                match last {
                    Some(last) => next = last + 1,
                    None => return,
                }
            }
        })
    };
    let mut head = from;
    let imported = async {
        while let Some(batch) = queue.recv().await {
            let batch = batch.context("reading the embedded log")?;
            let count = batch.len() as u64;
            head = pg
                .import_records(batch)
                .await
                .context("writing the log into the database")?;
            bar.inc(count);
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    // Stop the reader before answering (dropping the queue ends it).
    drop(queue);
    reader.await.context("log reader task")?;
    bar.finish_and_clear();
    imported?;
    if head != to {
        bail!("the embedded log ended at position {head}, its head is {to}");
    }
    Ok(head)
}

/// The hash of the record at `position` (zeroes for position 0).
async fn hash_at(store: &dyn EventStore, position: u64) -> anyhow::Result<Hash> {
    if position == 0 {
        return Ok([0; 32]);
    }
    match store.read_all(position, 1).await?.first() {
        Some(rec) if rec.position == position => Ok(rec.hash),
        _ => bail!("record {position} is missing"),
    }
}

/// The refusal of a database whose record at `position` has hash `theirs`.
async fn another_log(position: u64, theirs: &Hash, sled: &SledStore) -> anyhow::Result<String> {
    let ours = hash_at(sled, position).await?;
    Ok(format!(
        "the database holds another log: its record {position} has hash {}, the embedded \
         store's has {}; nothing was copied (copy into an empty database)",
        RecordedEvent::hex(theirs),
        RecordedEvent::hex(&ours)
    ))
}

/// The completed copy recorded in the database, if any.
fn read_marker(kv: &dyn KvProvider) -> anyhow::Result<Option<Marker>> {
    match kv.tree(MARKER_TREE_NAME)?.get(MARKER_KEY)? {
        Some(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).context("reading the migration marker")?,
        )),
        None => Ok(None),
    }
}

/// Stores the data directory's generated JWT secret where a server on
/// the database reads it; says what it did.
fn copy_secret(file: &Path, kv: &dyn KvProvider) -> anyhow::Result<&'static str> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok("none in the data directory")
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    // As the server reads it (`auth::secret`): the file's text, trimmed.
    let secret = text.trim().as_bytes().to_vec();
    let tree = kv.tree(SECRETS_TREE_NAME)?;
    match tree.get(GENERATED_SECRET_KEY)? {
        Some(held) if held == secret => Ok("already in the database"),
        held => {
            tree.apply(vec![(GENERATED_SECRET_KEY.to_vec(), Some(secret))])?;
            Ok(if held.is_some() {
                "copied, replacing the database's own"
            } else {
                "copied"
            })
        }
    }
}

fn print_summary(s: &Summary, data: &Path) {
    if let Some(why) = &s.nothing_to_copy {
        println!("Nothing to copy: {why}.");
        return;
    }
    println!(
        "Log: {} events copied in {:.2} s ({:.0} events/s); the database's log ends at position {}, with the embedded store's hash.",
        s.events_copied, s.log_s, s.events_per_s, s.head
    );
    println!(
        "Side trees: {} ({}), {} entries, {} written.",
        s.trees.len(),
        s.trees.join(", "),
        s.tree_entries,
        s.tree_entries_written
    );
    match s.jwt_secret {
        "none in the data directory" => println!(
            "JWT secret: none generated in {}; give the server on the database the secret the embedded one was given.",
            data.display()
        ),
        what => println!("JWT secret: {what} (tokens issued by the embedded server stay valid)."),
    }
    println!("Done in {:.1} s.", s.total_s);
}

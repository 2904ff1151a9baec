//! The tailer: follows the log into the store's live broadcast, for its
//! subscribers. It wakes on the writer's commits, on `NOTIFY` from every
//! other writer of the database (a dedicated listening session), and on a
//! timer, and then reads from the table by position: a notification says
//! only "look", never what to deliver. Its payload (the notifying
//! commit's head) only spares a read: a notification of a head already
//! published, such as this process's own commit that the writer's wake-up
//! already had read, is not read for again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch, Notify};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use crate::limits::{PG_TAIL_POLL_MILLIS, READ_PAGE_MAX};

use super::{reads, Shared, NOTIFY_CHANNEL};

/// A listening session: the client (dropping it closes the session), the
/// wake-ups its notifications send, and the highest head they announced.
struct Listener {
    _client: Client,
    notified: mpsc::Receiver<()>,
    announced: Arc<AtomicU64>,
}

async fn listen(config: &Config) -> Result<Listener, tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // One pending wake-up is enough: the tailer reads everything new, and
    // the head of a dropped wake-up is kept in `announced`.
    let (wake, notified) = mpsc::channel(1);
    let announced = Arc::new(AtomicU64::new(0));
    let heads = announced.clone();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    // A payload that is not a head (someone else's NOTIFY
                    // on the channel) makes the tailer read.
                    let head = n.payload().parse::<u64>().unwrap_or(u64::MAX);
                    heads.fetch_max(head, Ordering::AcqRel);
                    let _ = wake.try_send(());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "listening session ended");
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
        .await?;
    Ok(Listener {
        _client: client,
        notified,
        announced,
    })
}

/// Runs until `stop` turns true: publishes every record after `published`.
pub(crate) async fn run(
    shared: Arc<Shared>,
    config: Config,
    mut published: u64,
    commits: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener: Option<Listener> = None;
    let mut read = true;
    loop {
        if listener.is_none() {
            match listen(&config).await {
                Ok(l) => listener = Some(l),
                Err(e) => tracing::debug!(error = %e, "cannot listen for commits yet"),
            }
        }
        // Listen first, then read: a commit between the two is read now.
        while read {
            match reads::read_all(&shared.pool, published + 1, READ_PAGE_MAX).await {
                Ok(page) if page.is_empty() => read = false,
                Ok(page) => {
                    let full = page.len() == READ_PAGE_MAX;
                    if let Some(last) = page.last() {
                        published = last.position;
                    }
                    shared.publish(page);
                    read = full;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tailer could not read the log");
                    read = false;
                }
            }
        }
        let poll = tokio::time::sleep(Duration::from_millis(PG_TAIL_POLL_MILLIS));
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.notified.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        read = true;
        tokio::select! {
            _ = stop.changed() => return,
            _ = commits.notified() => {}
            alive = notified => match listener.as_ref() {
                Some(l) if alive => read = l.announced.load(Ordering::Acquire) > published,
                _ => listener = None,
            },
            _ = poll => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

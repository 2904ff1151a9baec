//! The tailer: follows the log into the store's live broadcast, for its
//! subscribers. It wakes on the writer's commits, on `NOTIFY` from every
//! other writer of the database (a dedicated listening session), and on a
//! timer, and then reads from the table by position: a notification says
//! only "look", never what to deliver.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch, Notify};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use crate::limits::{PG_TAIL_POLL_MILLIS, READ_PAGE_MAX};

use super::{reads, Shared, NOTIFY_CHANNEL};

/// A listening session: the client (dropping it closes the session) and
/// the wake-ups its notifications send.
struct Listener {
    _client: Client,
    notified: mpsc::Receiver<()>,
}

async fn listen(config: &Config) -> Result<Listener, tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // One pending wake-up is enough: the tailer reads everything new.
    let (wake, notified) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
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
    loop {
        if listener.is_none() {
            match listen(&config).await {
                Ok(l) => listener = Some(l),
                Err(e) => tracing::debug!(error = %e, "cannot listen for commits yet"),
            }
        }
        // Listen first, then read: a commit between the two is read now.
        loop {
            match reads::read_all(&shared.pool, published + 1, READ_PAGE_MAX).await {
                Ok(page) if page.is_empty() => break,
                Ok(page) => {
                    let full = page.len() == READ_PAGE_MAX;
                    if let Some(last) = page.last() {
                        published = last.position;
                    }
                    shared.publish(page);
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tailer could not read the log");
                    break;
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
        tokio::select! {
            _ = stop.changed() => return,
            _ = commits.notified() => {}
            alive = notified => if !alive { listener = None },
            _ = poll => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

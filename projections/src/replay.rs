//! Folding a stretch of the log into a model that nobody reads yet (open,
//! rebuild): tasks read and decode pages concurrently while a blocking
//! thread folds them in order, so reading and folding use every core.

use std::sync::Arc;

use event_store::{EventStore, RecordedEvent, StoreError};
use futures::StreamExt;

use crate::error::ProjectionError;
use crate::limits::READ_PAGE_EVENTS;
use crate::model::ReadModel;
use crate::runner::Progress;

/// Pages read concurrently ahead of the fold (bounded so memory stays flat).
pub const READ_AHEAD_PAGES: usize = 4;

fn gap_error(expected: u64, got: u64) -> ProjectionError {
    ProjectionError::Store(StoreError::Corrupt {
        position: got,
        reason: format!("log skips from {expected} to {got}"),
    })
}

/// Folds events `model.position + 1 ..= until` into `model`.
pub async fn fold_into(
    mut model: ReadModel,
    store: Arc<dyn EventStore>,
    until: u64,
    progress: Option<Progress>,
) -> Result<ReadModel, ProjectionError> {
    if model.position >= until {
        return Ok(model);
    }
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<Result<Vec<RecordedEvent>, StoreError>>(READ_AHEAD_PAGES);
    let start = model.position + 1;
    // Positions are gapless, so every page's range is known up front and
    // pages can be read by several tasks at once, delivered in order.
    let reader = tokio::spawn(async move {
        let starts = (start..=until).step_by(READ_PAGE_EVENTS);
        let pages = futures::stream::iter(starts)
            .map(|from| {
                let store = store.clone();
                let want = usize::try_from(until - from + 1)
                    .unwrap_or(usize::MAX)
                    .min(READ_PAGE_EVENTS);
                tokio::spawn(async move { store.read_all(from, want).await })
            })
            .buffered(READ_AHEAD_PAGES);
        futures::pin_mut!(pages);
        while let Some(page) = pages.next().await {
            let page =
                page.unwrap_or_else(|e| Err(StoreError::Unavailable(format!("read task: {e}"))));
            let failed = page.is_err();
            if tx.send(page).await.is_err() || failed {
                break;
            }
        }
    });
    let folded = tokio::task::spawn_blocking(move || -> Result<ReadModel, ProjectionError> {
        while let Some(page) = rx.blocking_recv() {
            for e in page? {
                if e.position > until {
                    break;
                }
                model.apply(&e).map_err(|g| gap_error(g.expected, g.got))?;
            }
            if let Some(p) = &progress {
                p(model.position, until);
            }
        }
        Ok(model)
    })
    .await
    .map_err(|e| ProjectionError::Snapshot(format!("fold task: {e}")))?;
    reader.abort();
    let model = folded?;
    if model.position < until {
        return Err(gap_error(model.position + 1, until));
    }
    Ok(model)
}

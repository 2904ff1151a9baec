//! Folding a stretch of the log into a model that nobody reads yet (open,
//! rebuild): one task reads and decodes pages while a blocking thread
//! folds them, so the two halves of the work run on two cores.

use std::sync::Arc;

use event_store::{EventStore, RecordedEvent, StoreError};

use crate::error::ProjectionError;
use crate::limits::READ_PAGE_EVENTS;
use crate::model::ReadModel;
use crate::runner::Progress;

/// Pages read ahead of the fold (bounded so memory stays flat).
pub const READ_AHEAD_PAGES: usize = 8;

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
    let reader = tokio::spawn(async move {
        let mut next = start;
        while next <= until {
            let want = usize::try_from(until - next + 1)
                .unwrap_or(usize::MAX)
                .min(READ_PAGE_EVENTS);
            let page = store.read_all(next, want).await;
            let stop = match &page {
                Ok(p) => match p.last() {
                    None => true,
                    Some(last) => {
                        next = last.position + 1;
                        false
                    }
                },
                Err(_) => true,
            };
            if tx.send(page).await.is_err() || stop {
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

//! Loading a stream's audience from the log, for streams the hub has not
//! folded yet. The fold itself is `StreamAudience::apply` (event-store's).

use event_store::schema::StreamId;
use event_store::{EventStore, Pages, StoreError, StreamAudience};

/// The audience folded from the stream's events with a version below
/// `before_version` (all of them when `None`).
pub async fn load(
    store: &dyn EventStore,
    stream: StreamId,
    before_version: Option<u64>,
) -> Result<StreamAudience, StoreError> {
    let mut audience = StreamAudience::default();
    let mut pages = Pages::stream(store, stream, 1);
    if let Some(v) = before_version {
        pages = pages.until(v.saturating_sub(1));
    }
    while let Some(page) = pages.next_page().await? {
        for event in &page {
            audience.apply(event);
        }
    }
    Ok(audience)
}

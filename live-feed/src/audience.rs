//! Loading a stream's audience from the log, for streams the hub has not
//! folded yet. The fold itself is `StreamAudience::apply` (event-store's).

use event_store::limits::READ_PAGE_MAX;
use event_store::schema::StreamId;
use event_store::{EventStore, StoreError, StreamAudience};

/// The audience folded from the stream's events with a version below
/// `before_version` (all of them when `None`).
pub async fn load(
    store: &dyn EventStore,
    stream: StreamId,
    before_version: Option<u64>,
) -> Result<StreamAudience, StoreError> {
    let mut audience = StreamAudience::default();
    let mut from_version = 1;
    loop {
        let page = store
            .read_stream(stream, from_version, READ_PAGE_MAX)
            .await?;
        let Some(last) = page.last() else {
            return Ok(audience);
        };
        let next = last.stream_version + 1;
        for event in &page {
            if before_version.is_some_and(|v| event.stream_version >= v) {
                return Ok(audience);
            }
            audience.apply(event);
        }
        from_version = next;
    }
}

//! A command id is bound to the request it first answered: a retry with
//! the same request fingerprint gets the first outcome, another request
//! under the same id is refused and appends nothing, and records written
//! without a fingerprint (format 1, or the service's own commands) bind
//! nothing, as before fingerprints existed.

mod common;

use common::*;
use event_store::{ExpectedVersion, StoreError};
use uuid::Uuid;

fn fingerprinted(stream: Uuid, text: &str, fingerprint: Option<u8>) -> event_store::AppendRequest {
    event_store::AppendRequest {
        request_fingerprint: fingerprint.map(|b| [b; 32]),
        ..request(stream, ExpectedVersion::Any, vec![comment(text)])
    }
}

both_stores!(same_id_same_request_replays_and_another_request_is_refused_across_a_restart);
async fn same_id_same_request_replays_and_another_request_is_refused_across_a_restart(
    backend: Backend,
) {
    let mut fx = backend.fresh().await;
    let store = fx.store.clone();
    let ticket = create_ticket(store.as_ref(), 1).await;
    let other = create_ticket(store.as_ref(), 2).await;
    let first = fingerprinted(ticket, "first", Some(1));
    let original = store.append(first.clone()).await.expect("first");
    let head = store.head().await.expect("head");

    let retry = store.append(first.clone()).await.expect("exact retry");
    assert!(retry.duplicate && retry.position == original.position);
    // Another request under the same id: on the same stream or another one.
    for stream in [ticket, other] {
        let reused = event_store::AppendRequest {
            command_id: first.command_id,
            ..fingerprinted(stream, "second", Some(2))
        };
        match store.append(reused).await {
            Err(StoreError::CommandReused { command_id }) => {
                assert_eq!(command_id, first.command_id)
            }
            other => panic!("expected CommandReused, got {other:?}"),
        }
    }
    assert_eq!(store.head().await.expect("head"), head, "nothing appended");
    let prior = store
        .find_command(first.command_id)
        .await
        .expect("lookup")
        .expect("known");
    assert_eq!(prior.request_fingerprint, Some([1; 32]));
    assert!(prior.outcome.duplicate && prior.outcome.position == original.position);
    assert_eq!(
        store.find_command(Uuid::now_v7()).await.expect("lookup"),
        None
    );

    // After a restart the index is rebuilt from the log, fingerprints too.
    drop(store);
    fx.reopen().await;
    let store = fx.store.clone();
    let reused = event_store::AppendRequest {
        command_id: first.command_id,
        ..fingerprinted(ticket, "second", Some(2))
    };
    assert!(matches!(
        store.append(reused).await,
        Err(StoreError::CommandReused { .. })
    ));
    let retry = store
        .append(first)
        .await
        .expect("exact retry after restart");
    assert!(retry.duplicate && retry.position == original.position);
    let events = store.read_stream(ticket, 1, 10).await.expect("read");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].request_fingerprint, Some([1; 32]));
}

both_stores!(a_fingerprint_missing_on_either_side_binds_nothing);
async fn a_fingerprint_missing_on_either_side_binds_nothing(backend: Backend) {
    let fx = backend.fresh().await;
    let store = fx.store.clone();
    let ticket = create_ticket(store.as_ref(), 1).await;
    // Stored without one (as every record before fingerprints): any retry
    // under the id gets the first outcome, as it always did.
    let bare = fingerprinted(ticket, "bare", None);
    let original = store.append(bare.clone()).await.expect("bare");
    let later = event_store::AppendRequest {
        command_id: bare.command_id,
        ..fingerprinted(ticket, "other", Some(3))
    };
    let again = store.append(later).await.expect("binds nothing");
    assert!(again.duplicate && again.position == original.position);
    // Stored with one, retried without one (the service's own commands).
    let bound = fingerprinted(ticket, "bound", Some(4));
    let original = store.append(bound.clone()).await.expect("bound");
    let unbound = event_store::AppendRequest {
        command_id: bound.command_id,
        ..fingerprinted(ticket, "other", None)
    };
    let again = store.append(unbound).await.expect("binds nothing");
    assert!(again.duplicate && again.position == original.position);
}

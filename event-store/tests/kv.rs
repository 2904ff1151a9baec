//! Side trees: separate from the log, atomic, durable across reopen.

mod common;

use common::*;
use event_store::{EventStore, ExpectedVersion, KvProvider, SledOptions, SledStore, StoreError};
use uuid::Uuid;

#[tokio::test]
async fn side_trees_are_separate_atomic_and_durable() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SledStore::open(dir.path(), SledOptions::default()).expect("open");
    let ticket = Uuid::now_v7();
    store
        .append(request(ticket, ExpectedVersion::NoStream, vec![created(1)]))
        .await
        .expect("append");

    let snaps = store.tree("snapshots").expect("tree");
    let other = store.tree("projections").expect("tree");
    snaps
        .apply(vec![
            (b"a/1".to_vec(), Some(b"one".to_vec())),
            (b"a/2".to_vec(), Some(b"two".to_vec())),
            (b"b/1".to_vec(), Some(b"three".to_vec())),
        ])
        .expect("apply");
    // Keys that look like the log's never touch it.
    snaps
        .apply(vec![(b"H".to_vec(), Some(b"not the head".to_vec()))])
        .expect("apply");
    assert_eq!(snaps.get(b"a/1").expect("get"), Some(b"one".to_vec()));
    assert_eq!(other.get(b"a/1").expect("get"), None);
    assert_eq!(
        snaps.last_with_prefix(b"a/").expect("last"),
        Some((b"a/2".to_vec(), b"two".to_vec()))
    );
    assert_eq!(snaps.scan_prefix(b"a/", 1).expect("scan").len(), 1);
    snaps.apply(vec![(b"a/1".to_vec(), None)]).expect("delete");
    snaps.flush().expect("flush");
    assert!(matches!(store.tree("__log"), Err(StoreError::Invalid(_))));
    // Tree handles keep the database open; a reopen needs them gone.
    drop((snaps, other));
    close(store).await;

    let store = SledStore::open(dir.path(), SledOptions::default()).expect("reopen");
    assert!(store.verify(&|_, _| {}).await.expect("verify").ok());
    let snaps = store.tree("snapshots").expect("tree");
    assert_eq!(
        snaps.scan_prefix(b"", 10).expect("scan"),
        vec![
            (b"H".to_vec(), b"not the head".to_vec()),
            (b"a/2".to_vec(), b"two".to_vec()),
            (b"b/1".to_vec(), b"three".to_vec()),
        ]
    );
    snaps.clear().expect("clear");
    assert_eq!(snaps.get(b"a/2").expect("get"), None);
    store.drop_tree("projections").expect("drop");
}

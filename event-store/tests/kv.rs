//! Side trees: separate from the log and from each other, ordered
//! bytewise, atomic, durable across reopen, on both stores.

mod common;

use common::*;
use event_store::{ExpectedVersion, StoreError};
use uuid::Uuid;

async fn side_trees_are_separate_atomic_and_durable(backend: Backend) {
    let mut f = backend.fresh().await;
    let ticket = Uuid::now_v7();
    f.store
        .append(request(ticket, ExpectedVersion::NoStream, vec![created(1)]))
        .await
        .expect("append");

    let snaps = f.kv.tree("snapshots").expect("tree");
    let other = f.kv.tree("projections").expect("tree");
    snaps
        .apply(vec![
            (b"a/1".to_vec(), Some(b"one".to_vec())),
            (b"a/2".to_vec(), Some(b"two".to_vec())),
            (b"b/1".to_vec(), Some(b"three".to_vec())),
            // Bytes above 0x7f sort after ASCII, as raw bytes do.
            (vec![b'a', b'/', 0xff], Some(b"high".to_vec())),
            (vec![b'a', 0xff], Some(b"not in a/".to_vec())),
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
        Some((vec![b'a', b'/', 0xff], b"high".to_vec()))
    );
    assert_eq!(
        snaps.scan_prefix(b"a/", 10).expect("scan"),
        vec![
            (b"a/1".to_vec(), b"one".to_vec()),
            (b"a/2".to_vec(), b"two".to_vec()),
            (vec![b'a', b'/', 0xff], b"high".to_vec()),
        ]
    );
    assert_eq!(
        snaps.scan_prefix(&[b'a', 0xff], 10).expect("scan"),
        vec![(vec![b'a', 0xff], b"not in a/".to_vec())]
    );
    assert_eq!(snaps.scan_prefix(b"a/", 1).expect("scan").len(), 1);
    assert_eq!(snaps.last_with_prefix(b"zz").expect("last"), None);
    // A put and a delete in one apply; the overwrite wins.
    snaps
        .apply(vec![
            (b"a/1".to_vec(), None),
            (vec![b'a', b'/', 0xff], None),
            (vec![b'a', 0xff], None),
            (b"a/2".to_vec(), Some(b"TWO".to_vec())),
        ])
        .expect("delete");
    // Several writes of one key in one apply: the last one wins.
    snaps
        .apply(vec![
            (b"twice/put".to_vec(), Some(b"first".to_vec())),
            (b"twice/gone".to_vec(), Some(b"put".to_vec())),
            (b"twice/put".to_vec(), Some(b"second".to_vec())),
            (b"twice/gone".to_vec(), None),
        ])
        .expect("apply");
    assert_eq!(
        snaps.scan_prefix(b"twice/", 10).expect("scan"),
        vec![(b"twice/put".to_vec(), b"second".to_vec())]
    );
    snaps
        .apply(vec![(b"twice/put".to_vec(), None)])
        .expect("delete");
    snaps.flush().expect("flush");
    // The first value stored wins; later ones get it back.
    assert_eq!(
        snaps.insert_if_absent(b"secret", b"first").expect("insert"),
        b"first".to_vec()
    );
    assert_eq!(
        snaps
            .insert_if_absent(b"secret", b"second")
            .expect("insert"),
        b"first".to_vec()
    );
    assert!(matches!(f.kv.tree("__log"), Err(StoreError::Invalid(_))));
    assert!(matches!(f.kv.tree(""), Err(StoreError::Invalid(_))));
    // Tree handles keep sled's database open; a reopen needs them gone.
    drop((snaps, other));
    f.reopen().await;

    assert!(f.store.verify(&|_, _| {}).await.expect("verify").ok());
    assert_eq!(f.store.head().await.expect("head"), 1);
    let snaps = f.kv.tree("snapshots").expect("tree");
    assert_eq!(
        snaps.scan_prefix(b"", 10).expect("scan"),
        vec![
            (b"H".to_vec(), b"not the head".to_vec()),
            (b"a/2".to_vec(), b"TWO".to_vec()),
            (b"b/1".to_vec(), b"three".to_vec()),
            (b"secret".to_vec(), b"first".to_vec()),
        ]
    );
    let other = f.kv.tree("projections").expect("tree");
    other
        .apply(vec![(b"k".to_vec(), Some(b"v".to_vec()))])
        .expect("apply");
    snaps.clear().expect("clear");
    assert_eq!(snaps.get(b"a/2").expect("get"), None);
    assert_eq!(other.get(b"k").expect("get"), Some(b"v".to_vec()));
    f.kv.drop_tree("projections").expect("drop");
    assert_eq!(
        f.kv.tree("projections")
            .expect("tree")
            .get(b"k")
            .expect("get"),
        None
    );
}
both_stores!(side_trees_are_separate_atomic_and_durable);

/// Side trees are called from tokio's threads (the service, the
/// projections): many at once must neither block the runtime for good nor
/// lose a write.
async fn side_trees_take_concurrent_callers(backend: Backend) {
    let f = backend.fresh().await;
    let tree = f.kv.tree("users").expect("tree");
    let mut tasks = Vec::new();
    for task in 0..16u32 {
        let tree = tree.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20u32 {
                let key = format!("{task:02}/{i:02}").into_bytes();
                tree.apply(vec![(key.clone(), Some(i.to_be_bytes().to_vec()))])
                    .expect("apply");
                assert_eq!(tree.get(&key).expect("get"), Some(i.to_be_bytes().to_vec()));
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(tree.scan_prefix(b"", 1_000).expect("scan").len(), 16 * 20);
}
both_stores!(
    side_trees_take_concurrent_callers,
    flavor = "multi_thread",
    worker_threads = 4
);

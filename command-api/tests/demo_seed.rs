//! The demo seed writes the same story on every version: its log, with ids
//! numbered by first appearance and times in minutes since the first event,
//! is an insta snapshot; a second seed appends nothing.

mod http_common;

use event_store::both_stores;
use std::collections::HashMap;

use command_api::http::HttpOptions;
use http_common::{fresh_store, state_in, Backend};
use serde_json::Value;
use uuid::Uuid;

/// Most events the demo's log is read in one page.
const READ_EVENTS_MAX: usize = 10_000;

/// Replaces every UUID in `value` by `#n`, numbered by first appearance.
fn number_ids(value: &mut Value, ids: &mut HashMap<Uuid, usize>) {
    match value {
        Value::String(s) => {
            if let Ok(id) = Uuid::parse_str(s) {
                let n = ids.len();
                *s = format!("#{}", ids.entry(id).or_insert(n));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| number_ids(v, ids)),
        Value::Object(map) => map.values_mut().for_each(|v| number_ids(v, ids)),
        _ => {}
    }
}

both_stores!(
    the_demo_seeds_the_same_story_once,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn the_demo_seeds_the_same_story_once(backend: Backend) {
    let fresh = fresh_store(backend).await;
    let store = fresh.storage.clone();
    let state = state_in(&store, HttpOptions::default()).await;
    let summary = command_api::demo::seed(&state).await.expect("seed");
    assert_eq!(summary.tickets, 5);
    let head = store.head().await.expect("head");
    let again = command_api::demo::seed(&state).await.expect("seed again");
    assert_eq!(again.tickets, 5);
    assert_eq!(
        store.head().await.expect("head"),
        head,
        "a second seed appends"
    );

    let records = store.read_all(1, READ_EVENTS_MAX).await.expect("read");
    let mut ids = HashMap::new();
    for user in &summary.users {
        let n = ids.len();
        ids.entry(user.id).or_insert(n);
    }
    let start = records.first().map(|r| r.recorded_at).expect("events");
    let log: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut v = serde_json::json!({
                "position": r.position,
                "stream": r.stream_id.to_string(),
                "version": r.stream_version,
                "actor": r.actor.user_id.to_string(),
                "role": r.actor.role,
                "minute": (r.recorded_at - start).num_minutes(),
                "visibility": r.visibility,
                "payload": r.payload,
            });
            number_ids(&mut v, &mut ids);
            v
        })
        .collect();
    // Named: the body runs as `…::sled` and `…::postgres`, one snapshot.
    insta::assert_yaml_snapshot!("the_demo_seeds_the_same_story_once", log);
    state.shutdown().await;
    store.close().await.expect("close");
}

//! `ticketlog migrate-store` as a person runs it: a demo server on the
//! embedded store takes a few commands and issues a token, stops; the copy
//! into PostgreSQL holds the same log record for record and the same side
//! trees, `verify` passes on both, a second run copies nothing, and a
//! server on the database shows the same tickets to the same token and
//! answers a retried command as before. A database holding another log is
//! refused with nothing written.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use command_api::auth::secret::{
    GENERATED_SECRET_FILE_NAME, GENERATED_SECRET_KEY, SECRETS_TREE_NAME,
};
use command_api::config::store_path;
use event_store::testing::postgres::{stored_records, PgServer};
use event_store::{EventStore, KvEntry, KvProvider, PgOptions, PgStore, SledOptions, SledStore};
use serde_json::{json, Value};
use support::{get_ok, login, serve, stop, ticketlog_ok, ServerChild, BIN};
use uuid::Uuid;

/// `ticketlog migrate-store --json` from `data` into `url`.
fn migrate(data: &Path, url: &str) -> Output {
    migrate_with(data, url, &["--json"])
}

/// `ticketlog migrate-store` from `data` into `url` with `extra` flags.
fn migrate_with(data: &Path, url: &str, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("migrate-store")
        .args(extra)
        .args(["--database-url", url, "--data"])
        .arg(data)
        .env_remove("TICKETLOG_DATA")
        .env_remove("TICKETLOG_DATABASE_URL")
        .output()
        .expect("run ticketlog")
}

/// The JSON summary of a successful run.
fn summary(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "migrate-store exited {:?}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON summary")
}

/// `verify` on the database at `url`.
fn verify_database(url: &str) -> String {
    let out = Command::new(BIN)
        .args(["verify", "--database-url", url])
        .env_remove("TICKETLOG_DATA")
        .output()
        .expect("run ticketlog");
    assert!(out.status.success(), "verify: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

async fn post(
    client: &reqwest::Client,
    server: &ServerChild,
    token: &str,
    key: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = client
        .post(server.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.json().await.expect("json body"))
}

/// Every entry of every side tree of `kv` except `skip`, by tree (empty
/// trees left out: sled lists a tree once opened, PostgreSQL once written).
fn side_trees(kv: &dyn KvProvider, skip: &[&str]) -> Vec<(String, Vec<KvEntry>)> {
    let names = kv.tree_names().expect("tree names");
    let names = names.into_iter().filter(|n| !skip.contains(&n.as_str()));
    names
        .map(|name| {
            let entries = kv
                .tree(&name)
                .expect("tree")
                .scan_from(b"", usize::MAX)
                .expect("entries");
            (name, entries)
        })
        .filter(|(_, entries)| !entries.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_embedded_store_moves_to_postgres_with_its_tickets_and_tokens() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let client = reqwest::Client::new();

    // A demo server on the embedded store: a token, a ticket, a comment.
    let server = serve(&data, &["--demo"]).await;
    let (token, _) = login(&client, &server, "demo", "alice", "demo").await;
    let ticket = json!({"title": "moving", "description": "to PostgreSQL", "priority": "high", "kind": "incident"});
    let key = Uuid::now_v7().to_string();
    let (status, created) = post(
        &client,
        &server,
        &token,
        &key,
        "/api/v1/tickets",
        ticket.clone(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let comments = format!("/api/v1/tickets/{id}/comments");
    let (status, _) = post(
        &client,
        &server,
        &token,
        &Uuid::now_v7().to_string(),
        &comments,
        json!({"body": "before the move"}),
    )
    .await;
    assert_eq!(status, 200);
    let tickets = get_ok(&client, &server, &token, "/api/v1/tickets").await;
    let history = get_ok(&client, &server, &token, &format!("/api/v1/tickets/{id}")).await;
    stop(server).await;

    let pg = PgServer::shared().expect("start the test PostgreSQL");
    let url = pg.fresh_database().expect("create a database");
    let first = summary(&migrate(&data, &url));
    assert_eq!(first["jwt_secret"], "copied", "{first}");
    assert!(
        first["trees"].as_array().is_some_and(|t| t.len() >= 3),
        "{first}"
    );
    let head = first["head"].as_u64().expect("head");
    assert_eq!(
        (
            first["events_copied"].as_u64(),
            first["first_position"].as_u64()
        ),
        (Some(head), Some(1))
    );
    assert!(ticketlog_ok(&["verify"], &data).starts_with("OK"));
    let verified = verify_database(&url);
    assert!(
        verified.contains(&format!("OK: {head} records verified")),
        "{verified}"
    );

    // Record for record, tree for tree, and the secret where a server on
    // the database looks for it.
    {
        let sled = SledStore::open(store_path(&data), SledOptions::default()).expect("open sled");
        let pg_store = PgStore::open(&url, PgOptions::default())
            .await
            .expect("open database");
        let sled_log = sled.read_raw(1, usize::MAX, usize::MAX).expect("sled log");
        assert_eq!(sled_log.len() as u64, head);
        assert_eq!(stored_records(&url).await, sled_log);
        let sled_head = sled.read_all(head, 1).await.expect("head record").remove(0);
        assert_eq!(
            pg_store.head_hash().await.expect("head"),
            (head, sled_head.hash)
        );
        let sled_trees = side_trees(sled.as_ref(), &[]);
        assert_eq!(
            side_trees(pg_store.as_ref(), &[SECRETS_TREE_NAME, "migrations"]),
            sled_trees
        );
        let secret =
            std::fs::read_to_string(data.join(GENERATED_SECRET_FILE_NAME)).expect("secret file");
        let stored = pg_store
            .tree(SECRETS_TREE_NAME)
            .expect("tree")
            .get(GENERATED_SECRET_KEY)
            .expect("get");
        assert_eq!(stored, Some(secret.trim().as_bytes().to_vec()));
        pg_store.close().await.expect("close");
        sled.close().await.expect("close");
    }

    let again = summary(&migrate(&data, &url));
    assert_eq!(again["events_copied"], 0, "{again}");
    assert!(
        again["nothing_to_copy"]
            .as_str()
            .is_some_and(|w| w.contains("copied completely before")),
        "{again}"
    );

    // A server on the database: same token, same tickets, the same answer
    // to a retried command.
    let node = tempfile::tempdir().expect("node dir");
    let server = serve(node.path(), &["--database-url", &url]).await;
    assert_eq!(
        get_ok(&client, &server, &token, "/api/v1/tickets").await,
        tickets
    );
    assert_eq!(
        get_ok(&client, &server, &token, &format!("/api/v1/tickets/{id}")).await,
        history
    );
    let (status, retried) = post(&client, &server, &token, &key, "/api/v1/tickets", ticket).await;
    assert_eq!((status, &retried["id"]), (201, &created["id"]), "{retried}");
    let (status, _) = post(
        &client,
        &server,
        &token,
        &Uuid::now_v7().to_string(),
        &comments,
        json!({"body": "after the move"}),
    )
    .await;
    assert_eq!(status, 200);
    stop(server).await;

    // Once a server has appended to the database, a run copies nothing.
    let later = summary(&migrate(&data, &url));
    assert!(
        later["nothing_to_copy"]
            .as_str()
            .is_some_and(|w| w.contains("followed by 1 more events")),
        "{later}"
    );
}

/// A data directory whose embedded store holds a user and `tickets`
/// tickets created through a server (stopped again).
async fn embedded_store_with_tickets(data: &Path, tickets: usize) {
    support::add_admin(data, "acme", "root", "a long password");
    let server = serve(data, &[]).await;
    let client = reqwest::Client::new();
    let (token, _) = login(&client, &server, "acme", "root", "a long password").await;
    for n in 0..tickets {
        let ticket = json!({"title": format!("ours {n}"), "description": "embedded", "priority": "low", "kind": "incident"});
        let key = Uuid::now_v7().to_string();
        let (status, _) = post(&client, &server, &token, &key, "/api/v1/tickets", ticket).await;
        assert_eq!(status, 201);
    }
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_copy_is_completed_from_where_it_stopped() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    embedded_store_with_tickets(&data, 3).await;
    // What a run stopped after its first batch leaves: a prefix of the log.
    let url = PgServer::shared()
        .expect("start the test PostgreSQL")
        .fresh_database()
        .expect("create a database");
    let sled = SledStore::open(store_path(&data), SledOptions::default()).expect("open sled");
    let head = sled.durable_head();
    let prefix = sled.read_raw(1, 2, usize::MAX).expect("first appends");
    let store = PgStore::open(&url, PgOptions::default())
        .await
        .expect("open database");
    let copied = store.import_records(prefix).await.expect("import a prefix");
    assert!(copied >= 2 && copied < head, "{copied} of {head}");
    store.close().await.expect("close");
    sled.close().await.expect("close");
    drop(sled);

    // As a person reads it.
    let out = migrate_with(&data, &url, &[]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let copied_line = format!("Log: {} events copied in ", head - copied);
    assert!(text.contains(&copied_line), "{text}");
    let ends =
        format!("the database's log ends at position {head}, with the embedded store's hash");
    assert!(text.contains(&ends), "{text}");
    let secret = "JWT secret: copied (tokens issued by the embedded server stay valid).";
    assert!(text.contains(secret), "{text}");
    let verified = verify_database(&url);
    assert!(
        verified.contains(&format!("OK: {head} records verified")),
        "{verified}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_holding_another_log_is_refused_with_nothing_written() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    embedded_store_with_tickets(&data, 1).await;

    // Another log in the database: one ticket created there directly.
    let pg = PgServer::shared().expect("start the test PostgreSQL");
    let url = pg.fresh_database().expect("create a database");
    let store = PgStore::open(&url, PgOptions::default())
        .await
        .expect("open database");
    let request = event_store::AppendRequest {
        stream_id: Uuid::now_v7(),
        expected: event_store::ExpectedVersion::NoStream,
        events: vec![event_store::NewEvent::new(
            event_store::EventPayload::CommentPosted {
                comment_id: Uuid::now_v7(),
                body: "theirs".into(),
                internal: false,
            },
        )],
        command_id: Uuid::now_v7(),
        request_fingerprint: None,
        correlation_id: Uuid::now_v7(),
        tenant: "acme".into(),
        actor: event_store::Actor {
            user_id: Uuid::now_v7(),
            role: event_store::Role::Agent,
        },
        recorded_at: chrono::Utc::now(),
    };
    store.append(request).await.expect("append");
    let before = (
        store.head_hash().await.expect("head"),
        store.tree_names().expect("names"),
    );
    store.close().await.expect("close");
    drop(store);

    let out = migrate(&data, &url);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the database holds another log: its record 1 has hash"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was copied"), "{stderr}");
    let store = PgStore::open(&url, PgOptions::default())
        .await
        .expect("open database");
    let after = (
        store.head_hash().await.expect("head"),
        store.tree_names().expect("names"),
    );
    assert_eq!(after, before, "nothing written");
    assert!(after.1.is_empty(), "no side tree: {:?}", after.1);
    store.close().await.expect("close");
}

/// Events in the log [`measure_a_large_copy`] copies, unless
/// `TICKETLOG_MIGRATE_EVENTS` says otherwise.
const MEASURE_EVENTS_DEFAULT: u64 = 100_000;
/// Concurrent writers filling that log (each on its own ticket).
const MEASURE_WRITERS: u64 = 64;

/// Times `migrate-store` over a log of [`MEASURE_EVENTS_DEFAULT`] events
/// (one ticket per writer, then single-event comments): run it with
/// `cargo test -p ticketlog --test migrate_store -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a check"]
async fn measure_a_large_copy() {
    let events: u64 = std::env::var("TICKETLOG_MIGRATE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MEASURE_EVENTS_DEFAULT);
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let store = SledStore::open(store_path(&data), SledOptions::default()).expect("open sled");
    let filled = std::time::Instant::now();
    let writers: Vec<_> = (0..MEASURE_WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = Uuid::now_v7();
                let share = events / MEASURE_WRITERS + u64::from(w < events % MEASURE_WRITERS);
                for i in 0..share {
                    let payload = if i == 0 {
                        event_store::EventPayload::TicketCreated {
                            number: w + 1,
                            title: format!("ticket {w}"),
                            description: "measured".into(),
                            priority: event_store::Priority::Medium,
                            kind: event_store::TicketKind::Incident,
                            reporter: Uuid::now_v7(),
                            location: None,
                            tags: vec![],
                            device: None,
                        }
                    } else {
                        event_store::EventPayload::CommentPosted {
                            comment_id: Uuid::now_v7(),
                            body: format!("comment {i} on ticket {w}"),
                            internal: false,
                        }
                    };
                    let request = event_store::AppendRequest {
                        stream_id: stream,
                        expected: event_store::ExpectedVersion::Exact(i),
                        events: vec![event_store::NewEvent::new(payload)],
                        command_id: Uuid::now_v7(),
                        request_fingerprint: Some([7; 32]),
                        correlation_id: Uuid::now_v7(),
                        tenant: "demo".into(),
                        actor: event_store::Actor {
                            user_id: Uuid::from_u128(1),
                            role: event_store::Role::Agent,
                        },
                        recorded_at: chrono::Utc::now(),
                    };
                    store.append(request).await.expect("append");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    assert_eq!(store.head().await.expect("head"), events);
    let fill_s = filled.elapsed().as_secs_f64();
    store.close().await.expect("close");
    drop(store);

    let url = PgServer::shared()
        .expect("start the test PostgreSQL")
        .fresh_database()
        .expect("create a database");
    let started = std::time::Instant::now();
    let copied = summary(&migrate(&data, &url));
    let total_s = started.elapsed().as_secs_f64();
    assert_eq!(copied["events_copied"].as_u64(), Some(events), "{copied}");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "migrate-store: {events} events in {total_s:.1} s as a process ({:.1} s copying the log, \
         {:.0} events/s); log filled in {fill_s:.1} s; nproc {}; load average {}",
        copied["log_s"].as_f64().unwrap_or(0.0),
        copied["events_per_s"].as_f64().unwrap_or(0.0),
        std::thread::available_parallelism().map_or(0, usize::from),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

//! The operator commands of the `ticketlog` binary (`stats`, `replay`,
//! `rebuild`) run as a process against a data directory seeded with the
//! demo tenant, checking what a person would read.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use command_api::auth::JwtAuth;
use command_api::config::store_path;
use command_api::http::{AppState, HttpOptions};
use event_store::{EventStore, SledOptions, SledStore};
use support::{copy_dir, ticketlog, BIN};

/// A data directory holding the demo tenant, seeded once (argon2 makes
/// seeding the slow part) and copied for each test, since the store admits
/// one process at a time.
fn seeded_template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("template dir");
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let store = SledStore::open(store_path(dir.path()), SledOptions::default())
                    .expect("open store");
                let jwt = JwtAuth::hs256(b"cli-test-secret-cli-test-secret!", 3600).expect("jwt");
                let state =
                    AppState::open(store.clone(), store.clone(), jwt, HttpOptions::default())
                        .await
                        .expect("state");
                command_api::demo::seed(&state).await.expect("demo seed");
                state.shutdown().await;
                store.close().await.expect("close");
            });
            dir
        })
        .path()
}

/// A fresh copy of the seeded data directory.
fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("data dir");
    let data = dir.path().join("data");
    copy_dir(seeded_template(), &data);
    (dir, data)
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

#[test]
fn stats_exports_the_same_figures_as_csv_and_json() {
    let (_dir, data) = data_dir();
    let csv = stdout(&ticketlog(&["stats", "--format", "csv"], &data));
    let mut lines = csv.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("group,count,open,resolved,avg_s,p50_s"),
        "{header}"
    );
    let columns = header.split(',').count();
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.iter().all(|r| r.split(',').count() == columns),
        "{csv}"
    );
    let all = rows.last().expect("an `all` row");
    let fields: Vec<&str> = all.split(',').collect();
    assert_eq!(fields[0], "all");

    let json = stdout(&ticketlog(&["stats", "--format", "json"], &data));
    let report: serde_json::Value = serde_json::from_str(&json).expect("json");
    let count = report["total"]["count"].as_u64().expect("total count");
    assert!(count >= 3, "the demo has several tickets: {report}");
    assert_eq!(fields[1], count.to_string());
    assert_eq!(report["group_by"], "priority");

    let by_site = stdout(&ticketlog(
        &["stats", "--format", "csv", "--group-by", "site"],
        &data,
    ));
    assert!(
        by_site.lines().any(|l| l.starts_with("HQ,")),
        "demo tickets are at HQ: {by_site}"
    );
}

#[test]
fn stats_of_an_empty_window_counts_nothing_and_bad_flags_fail() {
    let (_dir, data) = data_dir();
    let csv = stdout(&ticketlog(
        &["stats", "--format", "csv", "--to", "2000-01-01T00:00:00Z"],
        &data,
    ));
    assert_eq!(csv.lines().nth(1).map(|l| &l[..6]), Some("all,0,"), "{csv}");
    let bad = ticketlog(&["stats", "--group-by", "colour"], &data);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("priority, kind"));
}

#[test]
fn replay_prints_the_whole_history_to_the_auditor() {
    let (_dir, data) = data_dir();
    let text = stdout(&ticketlog(&["replay", "--ticket", "1"], &data));
    assert!(text.contains("TicketCreated"), "{text}");
    // The auditor reads internal notes too.
    assert!(text.contains("Internal: likely the fuser unit"), "{text}");
    assert!(
        text.contains("status: \"assigned\" -> \"in_progress\""),
        "{text}"
    );
    assert!(text.contains("hash "), "{text}");
    let last = text.lines().last().expect("state line");
    assert!(
        last.starts_with("state: #1 \"Printer on floor 3 jams on every job\" in_progress"),
        "{last}"
    );

    // By id too, as JSON.
    let json = stdout(&ticketlog(&["replay", "--ticket", "#1", "--json"], &data));
    let report: serde_json::Value = serde_json::from_str(&json).expect("json");
    let id = report["ticket"]["id"].as_str().expect("id").to_string();
    let first = report["events"][0]["position"].as_u64().expect("position");
    let by_id = stdout(&ticketlog(&["replay", "--ticket", &id], &data));
    assert_eq!(by_id, text);

    // As of its creation: one event, the ticket still open and unassigned.
    let then = stdout(&ticketlog(
        &["replay", "--ticket", "1", "--as-of", &first.to_string()],
        &data,
    ));
    assert_eq!(
        then.lines().filter(|l| l.starts_with('#')).count(),
        1,
        "{then}"
    );
    assert!(
        then.contains("state: #1 \"Printer on floor 3 jams on every job\" open"),
        "{then}"
    );
}

#[test]
fn replay_of_an_unknown_ticket_fails_plainly() {
    let (_dir, data) = data_dir();
    let out = ticketlog(&["replay", "--ticket", "9999"], &data);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no ticket 9999 in tenant demo"), "{err}");
    // Another tenant's principal does not see demo's tickets.
    let out = ticketlog(&["replay", "--ticket", "1", "--tenant", "other"], &data);
    assert!(!out.status.success());
}

#[test]
fn rebuild_folds_the_whole_log_and_checks_the_projection_name() {
    let (_dir, data) = data_dir();
    let out = stdout(&ticketlog(&["rebuild", "--json"], &data));
    let summary: serde_json::Value = serde_json::from_str(&out).expect("json");
    let events = summary["events"].as_u64().expect("events");
    assert!(events > 10, "{summary}");
    assert_eq!(summary["position"].as_u64(), Some(events));
    assert_eq!(summary["projection"], "read_model");

    let text = stdout(&ticketlog(
        &["rebuild", "--projection", "read_model"],
        &data,
    ));
    assert!(
        text.starts_with(&format!("rebuilt read_model: {events} events")),
        "{text}"
    );

    let bad = ticketlog(&["rebuild", "--projection", "tickets"], &data);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("unknown projection \"tickets\"; valid names: read_model"),
        "{err}"
    );

    // The rebuilt snapshot serves the next reader.
    let replay = stdout(&ticketlog(&["replay", "--ticket", "1"], &data));
    assert!(replay.contains("Printer on floor 3"));
}

#[test]
fn commands_on_a_missing_data_directory_fail() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("nothing");
    for args in [&["stats"][..], &["replay", "--ticket", "1"], &["rebuild"]] {
        let out = ticketlog(args, &missing);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no event store"),
            "{args:?}"
        );
    }
}

#[test]
fn bench_all_outside_the_repository_says_where_to_run_it() {
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(BIN)
        .args(["bench", "all"])
        .current_dir(dir.path())
        .env_remove("TICKETLOG_REPO")
        .output()
        .expect("run ticketlog");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bench/run not found") && err.contains("TICKETLOG_REPO"),
        "{err}"
    );
}

#[test]
fn bench_dispatch_prints_its_figures_as_json() {
    let out = Command::new(BIN)
        .args([
            "bench",
            "dispatch",
            "--json",
            "--technicians",
            "500",
            "--choices",
            "200",
        ])
        .output()
        .expect("run ticketlog");
    let text = stdout(&out);
    let report: serde_json::Value = serde_json::from_str(text.trim()).expect("one json object");
    assert_eq!(report["technicians"], 500);
    assert!(
        report["choose_p99_ms"].as_f64().is_some_and(|p| p > 0.0),
        "{report}"
    );
}

/// Appends `count` single-event commands to one new ticket stream.
async fn append_tickets(store: &dyn EventStore, count: u64) {
    use event_store::{
        Actor, AppendRequest, EventPayload, ExpectedVersion, NewEvent, Priority, Role, TicketKind,
    };
    let stream = uuid::Uuid::now_v7();
    for number in 1..=count {
        let payload = if number == 1 {
            EventPayload::TicketCreated {
                number,
                title: "the printer".into(),
                description: "is on fire".into(),
                priority: Priority::High,
                kind: TicketKind::Incident,
                reporter: uuid::Uuid::from_u128(42),
                location: None,
                tags: vec![],
                device: None,
            }
        } else {
            EventPayload::CommentPosted {
                comment_id: uuid::Uuid::now_v7(),
                body: format!("still burning ({number})"),
                internal: false,
            }
        };
        let request = AppendRequest {
            stream_id: stream,
            expected: ExpectedVersion::Any,
            events: vec![NewEvent::new(payload)],
            command_id: uuid::Uuid::now_v7(),
            request_fingerprint: None,
            correlation_id: uuid::Uuid::now_v7(),
            tenant: "demo".into(),
            actor: Actor {
                user_id: uuid::Uuid::from_u128(7),
                role: Role::Agent,
            },
            recorded_at: chrono::Utc::now(),
        };
        store.append(request).await.expect("append");
    }
}

#[test]
fn verify_walks_a_postgres_log_and_names_a_damaged_record() {
    use event_store::testing::postgres::PgServer;
    use event_store::{PgOptions, PgStore};

    let server = PgServer::shared().expect("start the test PostgreSQL");
    let url = server.fresh_database().expect("create a database");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = PgStore::open(&url, PgOptions::default())
            .await
            .expect("open store");
        append_tickets(store.as_ref(), 5).await;
        store.close().await.expect("close");
    });
    let verify = |url: &str| {
        Command::new(BIN)
            .args(["verify", "--database-url", url])
            .env_remove("TICKETLOG_DATA")
            .output()
            .expect("run ticketlog")
    };

    let text = stdout(&verify(&url));
    assert!(
        text.contains("OK: 5 records verified, head position 5"),
        "{text}"
    );

    // Flip one byte inside record 3, as a disk or a hand edit would.
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        let connection = tokio::spawn(connection);
        let changed = client
            .execute(
                "UPDATE events SET record = set_byte(record, 20, get_byte(record, 20) # 255) \
                 WHERE position = 3",
                &[],
            )
            .await
            .expect("damage a record");
        assert_eq!(changed, 1);
        drop(client);
        connection.await.ok();
    });
    let out = verify(&url);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DAMAGED: record at position 3"), "{text}");
}

/// `--data` names node-local files beside a database (as `serve` takes
/// both); the log is the database's whenever a URL is given.
#[test]
fn verify_with_a_database_url_reads_the_database() {
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(BIN)
        .args(["verify", "--data"])
        .arg(dir.path())
        .args(["--database-url", "postgres://nobody@127.0.0.1:1/none"])
        .output()
        .expect("run ticketlog");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("opening the PostgreSQL store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

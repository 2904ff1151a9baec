//! Disk full, end to end (issue 8): `ticketlog serve` on a small, real
//! tmpfs. Once the disk is below the reserve, commands answer 503 with
//! `Retry-After` and append nothing while reads keep working; when space
//! returns, the same command goes through without a restart, and the log
//! passes `ticketlog verify` after a clean stop.
//!
//! Mounting needs root (CI runs as root); elsewhere the test says it cannot
//! mount and returns. The store's own tests cover the same rule in-process.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::{add_admin, healthy_head, login, serve, stop, ticketlog};

const DISK_MIB: u64 = 128;
const RESERVE_MIB: u64 = 32;
/// Free space the filler leaves: below the reserve, with room for the
/// server's reads and side trees.
const LEAVE_MIB: u64 = 16;
const MIB: u64 = 1024 * 1024;
const TENANT: &str = "full";
const ADMIN: &str = "root";
const PASSWORD: &str = "disk-full-password";

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("dir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={DISK_MIB}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Writes a file until fewer than `leave_bytes` are free on `dir`'s filesystem.
fn fill(dir: &Path, leave_bytes: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0x5Au8; 1024 * 1024];
    loop {
        let free = fs2::available_space(dir).expect("statvfs");
        if free < leave_bytes {
            return path;
        }
        let n = ((free - leave_bytes) as usize + 1).min(chunk.len());
        file.write_all(&chunk[..n]).expect("filler write");
        file.sync_data().expect("filler sync");
    }
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> (u16, Value, Option<String>) {
    let r = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, r.json().await.expect("json body"), retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_answers_503_and_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount() else {
        eprintln!("cannot mount a tmpfs here (needs root): skipped");
        return;
    };
    let data = disk.dir.path().join("data");
    add_admin(&data, TENANT, ADMIN, PASSWORD);
    let reserve = RESERVE_MIB.to_string();
    let server = serve(&data, &["--disk-reserve-mib", &reserve]).await;
    let client = reqwest::Client::new();
    healthy_head(&client, &server).await;
    let (token, _) = login(&client, &server, TENANT, ADMIN, PASSWORD).await;

    let ticket = json!({"title": "disk", "description": "filling up", "priority": "high", "kind": "incident"});
    let (s, created, _) = post(&client, server.url("/api/v1/tickets"), &token, ticket).await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let comments = server.url(&format!("/api/v1/tickets/{id}/comments"));
    let before = healthy_head(&client, &server).await;

    let filler = fill(disk.dir.path(), LEAVE_MIB * MIB);
    for _ in 0..3 {
        let (s, b, retry) = post(
            &client,
            comments.clone(),
            &token,
            json!({"body": "no room"}),
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (503, Some("store_unavailable")),
            "{b}"
        );
        assert_eq!(b["error"]["details"]["reason"], "storage_full", "{b}");
        assert!(retry.is_some(), "503 for a full disk carries Retry-After");
    }
    assert_eq!(
        healthy_head(&client, &server).await,
        before,
        "nothing was appended"
    );
    let r = client
        .get(server.url(&format!("/api/v1/tickets/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.status().as_u16(),
        200,
        "reads go on while the disk is full"
    );

    std::fs::remove_file(filler).expect("free the space");
    let (s, b, _) = post(&client, comments, &token, json!({"body": "room again"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(healthy_head(&client, &server).await, before + 1);

    stop(server).await;
    let verified = ticketlog(&["verify"], &data);
    assert!(verified.status.success(), "verify: {verified:?}");
}

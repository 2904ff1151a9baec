//! Login throttling: guessing from one address is stopped without locking
//! the owner out at another. The harness listens on 127.0.0.1; the
//! guessers connect from other loopback addresses (127.0.0.0/8 is all
//! loopback on Linux), so the server sees distinct TCP peers.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::StatusCode;
use serde_json::json;

use crate::support;

const TENANT: &str = "acme";
const OWNER: &str = "owner";
const PASSWORD: &str = "correct horse battery";

/// A client whose connections come from `127.0.0.<last>`.
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .expect("client")
}

async fn try_login(
    client: &reqwest::Client,
    server: &support::ServerChild,
    name: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(server.url("/api/v1/auth/token"))
        .json(&json!({"tenant": TENANT, "username": name, "password": password}))
        .send()
        .await
        .expect("login request")
}

#[tokio::test]
async fn fifty_wrong_passwords_from_one_address_do_not_lock_the_owner_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::add_admin(dir.path(), TENANT, OWNER, PASSWORD);
    let server = support::serve(dir.path(), &[]).await;
    let guesser = client_from(2);
    let mut refused = 0;
    for n in 0..50 {
        let r = try_login(&guesser, &server, OWNER, &format!("guess {n}")).await;
        match r.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("guess {n}: {other}"),
        }
    }
    assert!(refused > 0, "the guesser was never slowed down");
    // The owner, at another address, logs in at once.
    let r = try_login(&client_from(1), &server, OWNER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The guesser stays refused, even with the right password.
    let r = try_login(&guesser, &server, OWNER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    support::stop(server).await;
}

#[tokio::test]
async fn forty_names_from_one_address_are_refused_after_twenty_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::add_admin(dir.path(), TENANT, OWNER, PASSWORD);
    let server = support::serve(dir.path(), &[]).await;
    let sprayer = client_from(3);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for n in 0..40 {
        let r = try_login(&sprayer, &server, &format!("user{n}"), "Summer2024!").await;
        let status = r.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let secs: u64 = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .expect("Retry-After in seconds");
            retry_after.get_or_insert(secs);
            let body: serde_json::Value = r.json().await.expect("error body");
            assert_eq!(body["error"]["code"], "rate_limited");
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses[..20], [401; 20], "{statuses:?}");
    assert_eq!(statuses[20..], [429; 20], "{statuses:?}");
    let secs = retry_after.expect("a Retry-After");
    assert!((1..=15 * 60).contains(&secs), "{secs}");
    // An address without failures is not refused for it.
    let r = try_login(&client_from(4), &server, "user0", "Summer2024!").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = try_login(&client_from(1), &server, OWNER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    support::stop(server).await;
}

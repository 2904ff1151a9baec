//! Sessions that end: logout revokes the presenting token (401 on REST,
//! 4001 on `/ws`, also for a socket already open), a password change (API
//! or `ticketlog user passwd`) revokes every earlier token of the user, and
//! both survive a restart. The changes are in the log, without secrets.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::support;

const TENANT: &str = "acme";
const OWNER: &str = "owner";
const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "staple tangerine lighthouse";
/// How long a frame may take to arrive.
const FRAME_WAIT: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `GET /api/v1/me` with `token`: status and body.
async fn me(client: &reqwest::Client, server: &support::ServerChild, token: &str) -> (u16, Value) {
    let r = client
        .get(server.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("me");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn status_of(client: &reqwest::Client, server: &support::ServerChild, token: &str) -> u16 {
    me(client, server, token).await.0
}

async fn post(
    client: &reqwest::Client,
    server: &support::ServerChild,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> u16 {
    let mut req = client.post(server.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("post").status().as_u16()
}

async fn open_ws(server: &support::ServerChild, token: &str) -> Socket {
    let url = format!("ws://{}/ws?token={token}", server.addr);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade")
        .0
}

/// The next pong or close code of `ws` (`None`: a pong).
async fn pong_or_close(ws: &mut Socket) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(FRAME_WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).expect("json frame");
                if v["type"] == "pong" {
                    return None;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("neither a pong nor a close frame: {other:?}"),
        }
    }
}

async fn ping(ws: &mut Socket) -> Option<CloseCode> {
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .ok();
    pong_or_close(ws).await
}

/// (kind, actor id) of the user-stream events `/api/v1/events` shows
/// `token`, once the password change is among them; no answer carries a
/// hash or the new password.
async fn user_events(
    client: &reqwest::Client,
    server: &support::ServerChild,
    token: &str,
) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + FRAME_WAIT;
    loop {
        let text = client
            .get(server.url("/api/v1/events?limit=500"))
            .bearer_auth(token)
            .send()
            .await
            .expect("events")
            .text()
            .await
            .expect("events body");
        assert!(
            !text.contains("argon2") && !text.contains(NEW_PASSWORD),
            "{text}"
        );
        let events: Value = serde_json::from_str(&text).expect("json");
        let kinds: Vec<(String, String)> = events["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|e| {
                let kind = e["kind"].as_str()?;
                let actor = e["actor"]["id"].as_str()?;
                kind.starts_with("User")
                    .then(|| (kind.to_string(), actor.to_string()))
            })
            .collect();
        if kinds.iter().any(|(k, _)| k == "UserPasswordChanged") {
            return kinds;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not logged: {kinds:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn logout_ends_the_session_on_rest_and_on_the_live_feed() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::add_admin(dir.path(), TENANT, OWNER, PASSWORD);
    let server = support::serve(dir.path(), &[]).await;
    let client = reqwest::Client::new();
    let (token, _) = support::login(&client, &server, TENANT, OWNER, PASSWORD).await;
    let (other, _) = support::login(&client, &server, TENANT, OWNER, PASSWORD).await;
    let mut open = open_ws(&server, &token).await;
    assert_eq!(ping(&mut open).await, None, "the socket works before");

    let logout = "/api/v1/auth/logout";
    assert_eq!(post(&client, &server, logout, &token, None).await, 204);
    assert_eq!(status_of(&client, &server, &token).await, 401);
    // The socket already open with that token is closed with 4001.
    assert_eq!(
        pong_or_close(&mut open).await,
        Some(CloseCode::Library(4001))
    );
    let mut again = open_ws(&server, &token).await;
    assert_eq!(ping(&mut again).await, Some(CloseCode::Library(4001)));
    // Logging out twice is a 401; the user's other session is untouched.
    assert_eq!(post(&client, &server, logout, &token, None).await, 401);
    assert_eq!(status_of(&client, &server, &other).await, 200);

    // A restart forgets nothing.
    support::stop(server).await;
    let server = support::serve(dir.path(), &[]).await;
    assert_eq!(status_of(&client, &server, &token).await, 401);
    assert_eq!(status_of(&client, &server, &other).await, 200);
    support::stop(server).await;
}

#[tokio::test]
async fn a_password_change_revokes_every_earlier_token_and_is_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::add_admin(dir.path(), TENANT, OWNER, PASSWORD);
    let server = support::serve(dir.path(), &[]).await;
    let client = reqwest::Client::new();
    let (first, user_id) = support::login(&client, &server, TENANT, OWNER, PASSWORD).await;
    let (second, _) = support::login(&client, &server, TENANT, OWNER, PASSWORD).await;
    let change = "/api/v1/me/password";
    let wrong = json!({"current": "not it", "new": NEW_PASSWORD});
    assert_eq!(
        post(&client, &server, change, &first, Some(wrong)).await,
        403
    );
    let short = json!({"current": PASSWORD, "new": "short"});
    assert_eq!(
        post(&client, &server, change, &first, Some(short)).await,
        400
    );
    assert_eq!(
        status_of(&client, &server, &first).await,
        200,
        "nothing changed"
    );
    let good = json!({"current": PASSWORD, "new": NEW_PASSWORD});
    assert_eq!(
        post(&client, &server, change, &first, Some(good)).await,
        204
    );
    assert_eq!(status_of(&client, &server, &first).await, 401);
    assert_eq!(status_of(&client, &server, &second).await, 401);
    let (fresh, _) = support::login(&client, &server, TENANT, OWNER, NEW_PASSWORD).await;
    assert_eq!(status_of(&client, &server, &fresh).await, 200);

    // The log says who did what, and nothing secret.
    let kinds = user_events(&client, &server, &fresh).await;
    assert!(
        kinds
            .iter()
            .any(|(k, actor)| k == "UserCreated" && actor != &user_id),
        "created by the CLI's principal: {kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|(k, actor)| k == "UserPasswordChanged" && actor == &user_id),
        "changed by the user: {kinds:?}"
    );
    support::stop(server).await;
}

#[tokio::test]
async fn ticketlog_user_passwd_and_role_revoke_earlier_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::add_admin(dir.path(), TENANT, OWNER, PASSWORD);
    let server = support::serve(dir.path(), &[]).await;
    let client = reqwest::Client::new();
    let (before, _) = support::login(&client, &server, TENANT, OWNER, PASSWORD).await;
    support::stop(server).await;
    let args = [
        "user",
        "passwd",
        "--tenant",
        TENANT,
        "--name",
        OWNER,
        "--password",
        NEW_PASSWORD,
    ];
    support::ticketlog_ok(&args, dir.path());
    let server = support::serve(dir.path(), &[]).await;
    assert_eq!(status_of(&client, &server, &before).await, 401);
    let (after, _) = support::login(&client, &server, TENANT, OWNER, NEW_PASSWORD).await;
    assert_eq!(status_of(&client, &server, &after).await, 200);
    support::stop(server).await;
    // Tokens carry the role: a role change revokes them too.
    let args = [
        "user", "role", "--tenant", TENANT, "--name", OWNER, "--role", "auditor",
    ];
    support::ticketlog_ok(&args, dir.path());
    let server = support::serve(dir.path(), &[]).await;
    assert_eq!(status_of(&client, &server, &after).await, 401);
    let (token, _) = support::login(&client, &server, TENANT, OWNER, NEW_PASSWORD).await;
    let (status, body) = me(&client, &server, &token).await;
    assert_eq!((status, body["role"].as_str()), (200, Some("auditor")));
    support::stop(server).await;
}

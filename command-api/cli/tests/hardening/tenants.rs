//! Two tenants with their users, a started server and every user logged in,
//! for the tests of what one user may make of another (idempotency keys,
//! assignees).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::support::{add_user, login, serve, stop, ServerChild};

/// Every user's password (tests only).
const PASSWORD: &str = "hardening-pw-5c1e";

/// (tenant, name, role) of every user the world starts with.
const USERS: [(&str, &str, &str); 6] = [
    ("demo", "alice", "agent"),
    ("demo", "mia", "agent"),
    ("demo", "carol", "customer"),
    ("demo", "dave", "technician"),
    ("other", "olga", "agent"),
    ("other", "otto", "technician"),
];

/// A running server over a fresh data directory, its users logged in.
pub struct World {
    server: ServerChild,
    client: reqwest::Client,
    /// name → (token, user id).
    users: HashMap<&'static str, (String, String)>,
    _dir: tempfile::TempDir,
}

impl World {
    /// Adds [`USERS`], starts `serve` and logs everyone in.
    pub async fn start() -> World {
        let dir = tempfile::tempdir().expect("data dir");
        for (tenant, name, role) in USERS {
            add_user(dir.path(), tenant, name, role, PASSWORD);
        }
        let server = serve(dir.path(), &[]).await;
        let client = reqwest::Client::new();
        let mut users = HashMap::new();
        for (tenant, name, _) in USERS {
            users.insert(name, login(&client, &server, tenant, name, PASSWORD).await);
        }
        World {
            server,
            client,
            users,
            _dir: dir,
        }
    }

    /// `http://addr{path}` of the server.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// The world's HTTP client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The token of `name`.
    pub fn token(&self, name: &str) -> &str {
        &self.users[name].0
    }

    /// The user id of `name`.
    pub fn id(&self, name: &str) -> String {
        self.users[name].1.clone()
    }

    /// `method path` as `by`, with `body` and, if given, an `Idempotency-Key`;
    /// returns the status and the JSON answer.
    pub async fn send(
        &self,
        by: &str,
        method: reqwest::Method,
        path: &str,
        body: Value,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.server.url(path))
            .bearer_auth(&self.users[by].0)
            .json(&body);
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` as `by` (see [`World::send`]).
    pub async fn post(&self, by: &str, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
        self.send(by, reqwest::Method::POST, path, body, key).await
    }

    /// A new high-priority incident reported by carol (no automatic
    /// dispatch, so nothing else is appended); returns its id.
    pub async fn new_ticket(&self, title: &str) -> String {
        let body = json!({"title": title, "priority": "high", "kind": "incident"});
        let (status, answer) = self.post("carol", "/api/v1/tickets", body, None).await;
        assert_eq!(status, 201, "{answer}");
        answer["id"].as_str().expect("ticket id").to_string()
    }

    /// `POST /api/v1/tickets/{ticket}/comments` saying `text` as `by`.
    pub async fn comment(
        &self,
        by: &str,
        ticket: &str,
        text: &str,
        key: Option<&str>,
    ) -> (u16, Value) {
        let path = format!("/api/v1/tickets/{ticket}/comments");
        self.post(by, &path, json!({"body": text}), key).await
    }

    /// Log position of a fresh comment by alice on `ticket`: the log's head.
    pub async fn probe(&self, ticket: &str) -> u64 {
        let (status, answer) = self.comment("alice", ticket, "probe", None).await;
        assert_eq!(status, 200, "{answer}");
        answer["position"].as_u64().expect("position")
    }

    /// Stops the server cleanly.
    pub async fn stop(self) {
        stop(self.server).await;
    }

    /// Stops the server and keeps its data directory, for commands that
    /// open the store themselves.
    pub async fn stop_keeping_data(self) -> tempfile::TempDir {
        stop(self.server).await;
        self._dir
    }
}

//! Shared pieces of the browser tests: the WebDriver client, a restartable
//! in-process server, API calls for setting up data, and artifacts.

#![allow(dead_code)]

pub mod server;
pub mod webdriver;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

pub use server::Server;
pub use webdriver::{browser_paths, Driver, Session};

/// How long the UI may take to show something that is not timed by the contract.
pub const UI_WAIT: Duration = Duration::from_secs(10);

/// How long a page may take to come back after a server restart (its
/// reconnect backoff grows to several seconds).
pub const RECONNECT_WAIT: Duration = Duration::from_secs(30);

/// Desktop window.
pub const DESKTOP: (u32, u32) = (1280, 860);
/// Phone window.
pub const PHONE: (u32, u32) = (390, 844);

/// Directory of screenshots (`target/ui-screenshots`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("ui-screenshots")
}

/// Saves a screenshot as `target/ui-screenshots/<name>.png`.
pub async fn shoot(s: &Session, name: &str) {
    s.screenshot(&screenshot_dir().join(format!("{name}.png")))
        .await;
}

/// A signed-in API client for test setup.
pub struct Api {
    base: String,
    http: reqwest::Client,
    /// The bearer token.
    pub token: String,
    /// The user's id.
    pub user_id: String,
}

impl Api {
    /// Signs in as a demo user.
    pub async fn login(server: &Server, username: &str) -> Api {
        let http = reqwest::Client::new();
        let base = server.url("");
        let r: Value = http
            .post(format!("{base}/api/v1/auth/token"))
            .json(&json!({"tenant": "demo", "username": username, "password": "demo"}))
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token answer");
        Api {
            base,
            http,
            token: r["token"].as_str().expect("token").to_string(),
            user_id: r["user"]["id"].as_str().expect("user id").to_string(),
        }
    }

    /// Sends a request and returns the JSON answer, panicking on an error status.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("api request");
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Opens a ticket; returns its id.
    pub async fn create_ticket(&self, title: &str, priority: &str) -> String {
        let v = self
            .send(
                reqwest::Method::POST,
                "/api/v1/tickets",
                Some(
                    json!({"title": title, "description": format!("{title}: details"),
                    "priority": priority, "kind": "incident",
                    "location": {"site": "HQ", "building": "B", "floor": "3"}}),
                ),
            )
            .await;
        v["id"].as_str().expect("ticket id").to_string()
    }

    /// Posts a comment.
    pub async fn comment(&self, ticket: &str, body: &str, internal: bool) -> Value {
        self.send(
            reqwest::Method::POST,
            &format!("/api/v1/tickets/{ticket}/comments"),
            Some(json!({"body": body, "internal": internal})),
        )
        .await
    }

    /// Changes the status.
    pub async fn status(&self, ticket: &str, status: &str) -> Value {
        self.send(
            reqwest::Method::POST,
            &format!("/api/v1/tickets/{ticket}/status"),
            Some(json!({"status": status})),
        )
        .await
    }

    /// Assigns the ticket.
    pub async fn assign(&self, ticket: &str, assignee: &str) -> Value {
        self.send(
            reqwest::Method::POST,
            &format!("/api/v1/tickets/{ticket}/assign"),
            Some(json!({"assignee_id": assignee})),
        )
        .await
    }
}

/// Signs in through the login page.
pub async fn ui_login(s: &Session, server: &Server, username: &str) {
    s.goto(&server.url("/app/login")).await;
    let user = s.find("#username").await;
    s.type_into(&user, username).await;
    let pass = s.find("#password").await;
    s.type_into(&pass, "demo").await;
    s.click(&s.find("#login-submit").await).await;
    s.wait_for(
        "the console after signing in",
        "return !location.pathname.startsWith('/app/login') && document.readyState === 'complete';",
        json!([]),
        UI_WAIT,
    )
    .await;
}

/// Waits until the page's connection indicator says live.
pub async fn wait_live(s: &Session, what: &str) {
    wait_live_within(s, what, UI_WAIT).await;
}

/// Waits until the page's connection indicator says live, at most `timeout`.
pub async fn wait_live_within(s: &Session, what: &str, timeout: Duration) {
    s.wait_for(
        what,
        "const c = document.getElementById('conn'); return c && c.dataset.state === 'live';",
        json!([]),
        timeout,
    )
    .await;
}

/// Bubble texts in page order, with their positions: `[[position, text, internal]]`.
pub async fn bubbles(s: &Session) -> Vec<(u64, String, bool)> {
    let v = s
        .js(
            "return Array.from(document.querySelectorAll('#messages .msg[data-position]')).map(m =>
               [Number(m.dataset.position), m.querySelector('.bubble').textContent, m.classList.contains('internal')]);",
            json!([]),
        )
        .await;
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x[0].as_u64().unwrap_or_default(),
                        x[1].as_str().unwrap_or_default().to_string(),
                        x[2].as_bool().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

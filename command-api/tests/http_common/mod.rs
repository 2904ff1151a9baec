//! Shared harness of the HTTP integration tests: a real store (sled in a
//! temp directory or PostgreSQL in a fresh database), the router, a real
//! server on 127.0.0.1:0, and token helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use command_api::auth::{JwtAuth, NewUser, User};
use command_api::http::{AppState, HttpOptions};
use event_store::{Principal, Role, SledOptions, SledStore, Storage};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// The HS256 secret of the test servers (tests only).
pub const SECRET: &[u8] = b"integration-test-secret-0123456789abcdef";

pub use event_store::testing::stores::Backend;

/// A fresh, empty store of one backend, and the directory it lives in
/// (sled only; dropped after the store is closed).
pub struct FreshStore {
    pub storage: Arc<dyn Storage>,
    pub dir: Option<tempfile::TempDir>,
}

/// A fresh, empty store of `backend` with default options.
pub async fn fresh_store(backend: Backend) -> FreshStore {
    match backend {
        Backend::Sled => fresh_sled(SledOptions::default()),
        Backend::Postgres => {
            let (storage, _place) = backend.open_fresh().await;
            FreshStore { storage, dir: None }
        }
    }
}

/// A fresh sled store with `sled` options (tests of sled's own options).
pub fn fresh_sled(sled: SledOptions) -> FreshStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = SledStore::open(dir.path().join("store"), sled).expect("open store");
    FreshStore {
        storage,
        dir: Some(dir),
    }
}

/// Application state over `storage`, signed with [`SECRET`].
pub async fn state_in(storage: &Arc<dyn Storage>, options: HttpOptions) -> AppState {
    let jwt = JwtAuth::hs256(SECRET, 3600).expect("jwt");
    AppState::open(storage.clone(), storage.clone(), jwt, options)
        .await
        .expect("state")
}

/// A running test server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The log and side trees under the server.
    pub store: Arc<dyn Storage>,
    pub backend: Backend,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server with default options on `backend`.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, HttpOptions::default()).await
    }

    /// A server with the given options on `backend`.
    pub async fn start_with(backend: Backend, options: HttpOptions) -> Self {
        Self::start_on(backend, fresh_store(backend).await, options).await
    }

    /// A server on a sled store with `sled` options (fault injection and
    /// the disk reserve exist on sled only).
    pub async fn start_sled(options: HttpOptions, sled: SledOptions) -> Self {
        Self::start_on(Backend::Sled, fresh_sled(sled), options).await
    }

    async fn start_on(backend: Backend, fresh: FreshStore, options: HttpOptions) -> Self {
        let FreshStore { storage, dir } = fresh;
        let state = state_in(&storage, options).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let serve_state = state.clone();
        let task = tokio::spawn(async move {
            command_api::http::serve(listener, serve_state, async move {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestServer {
            addr,
            state,
            store: storage,
            backend,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }
}

impl TestServer {
    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Adds a user to the directory.
    pub fn add_user(&self, tenant: &str, name: &str, role: Role) -> User {
        self.state
            .users()
            .add(NewUser {
                tenant: tenant.into(),
                name: name.into(),
                role,
                password: "pw".into(),
            })
            .expect("add user")
    }

    /// A token for `user`, signed with the server's secret.
    pub fn token_for(&self, user: &User) -> String {
        let p = Principal {
            user_id: user.id,
            tenant: user.tenant.clone(),
            role: user.role,
            name: user.name.clone(),
        };
        self.state
            .jwt()
            .issue(&p, chrono::Utc::now())
            .expect("issue")
            .token
    }

    /// The log's head position.
    pub async fn head(&self) -> u64 {
        self.store.head().await.expect("head")
    }

    /// Sends a request and returns (status, headers, JSON body or Null).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let (status, headers, text) = self.send_text(method, path, token, body, headers).await;
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, headers, value)
    }

    /// Sends a request and returns (status, headers, body text).
    pub async fn send_text(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        (status, headers, text)
    }

    /// Stops the server and closes the store.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
        self.state.shutdown().await;
        self.store.close().await.expect("close");
    }
}

/// Asserts the contract's error shape and returns the code.
pub fn error_code(body: &Value) -> String {
    let e = &body["error"];
    assert!(e["code"].is_string(), "error.code in {body}");
    assert!(e["message"].is_string(), "error.message in {body}");
    assert!(e["details"].is_object(), "error.details in {body}");
    e["code"].as_str().unwrap_or_default().to_string()
}

/// A JSON body for creating a ticket.
pub fn ticket_body(title: &str) -> Value {
    json!({"title": title, "description": "it broke", "priority": "high", "kind": "incident"})
}

/// Replaces every UUID by `[uuid-N]` (numbered by first appearance, so
/// equal ids stay equal), every RFC 3339 time by `[time]` and JWTs by
/// `[jwt]`, for stable snapshots.
pub fn redact(value: &Value) -> Value {
    let mut seen: Vec<String> = vec![];
    redact_inner(value, &mut seen)
}

fn redact_inner(value: &Value, seen: &mut Vec<String>) -> Value {
    match value {
        Value::String(s) => {
            if uuid::Uuid::parse_str(s).is_ok() && s.len() == 36 {
                let n = match seen.iter().position(|x| x == s) {
                    Some(n) => n,
                    None => {
                        seen.push(s.clone());
                        seen.len() - 1
                    }
                };
                Value::String(format!("[uuid-{n}]"))
            } else if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
                Value::String("[time]".into())
            } else if s.starts_with("eyJ") && s.matches('.').count() == 2 {
                Value::String("[jwt]".into())
            } else {
                value.clone()
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| redact_inner(v, seen)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_inner(v, seen)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Users of one tenant with their tokens.
pub struct Cast {
    pub carol: (User, String),
    pub alice: (User, String),
    pub bob: (User, String),
    pub dave: (User, String),
    pub erin: (User, String),
    pub frank: (User, String),
    pub root: (User, String),
}

impl TestServer {
    /// One user per role in `tenant` (names as in the demo), with tokens.
    pub fn cast(&self, tenant: &str) -> Cast {
        let mk = |name: &str, role: Role| {
            let u = self.add_user(tenant, name, role);
            let t = self.token_for(&u);
            (u, t)
        };
        Cast {
            carol: mk("carol", Role::Customer),
            alice: mk("alice", Role::Agent),
            bob: mk("bob", Role::Agent),
            dave: mk("dave", Role::Technician),
            erin: mk("erin", Role::Auditor),
            frank: mk("frank", Role::Analyst),
            root: mk("root", Role::Admin),
        }
    }

    /// POST with a token.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let (s, _, b) = self
            .send(reqwest::Method::POST, path, Some(token), Some(body), &[])
            .await;
        (s, b)
    }

    /// GET with a token.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let (s, _, b) = self
            .send(reqwest::Method::GET, path, Some(token), None, &[])
            .await;
        (s, b)
    }

    /// Creates a ticket as `token`'s user and returns its id.
    pub async fn create_ticket(&self, token: &str, title: &str) -> String {
        let (s, b) = self
            .post("/api/v1/tickets", token, ticket_body(title))
            .await;
        assert_eq!(s, 201, "create: {b}");
        b["id"].as_str().expect("id").to_string()
    }
}

impl TestServer {
    /// Stops the server; the store may be unusable (fault injection), so
    /// closing it is best effort.
    pub async fn stop_without_close(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.state.shutdown().await;
        let _ = self.store.close().await;
    }
}

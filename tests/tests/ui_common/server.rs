//! A real server for browser tests: its own thread and runtime, a sled
//! store in a data directory, the demo users (without the demo tickets). Stopping drops the whole
//! runtime (open WebSockets included), so a restart on the same port and
//! data directory looks to a browser exactly like a process restart.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use chrono::{DateTime, Utc};
use command_api::auth::{JwtAuth, NewUser};
use command_api::config::store_path;
use command_api::http::{AppState, HttpOptions};
use event_store::{EventStore, KvProvider, Principal, SledOptions, SledStore};
use live_feed::{AuthRejected, Authenticate, FeedConfig, FeedState};
use tokio::sync::{oneshot, watch};
use tower::ServiceExt;

/// The same secret across restarts, so browsers' tokens stay valid.
const TEST_JWT_SECRET: &[u8] = b"ui-browser-tests-secret-0123456789abcdef";
/// Lifetime of tokens in these tests.
const TOKEN_TTL_SECS: u64 = 3600;
/// How long a stop waits for in-flight requests before dropping everything.
const GRACEFUL_STOP_SECS: u64 = 3;
/// How long binding a just-freed port may be retried.
const BIND_RETRY_SECS: u64 = 10;

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    data: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server on `addr` (port 0 for any) over `data`.
    pub fn start(data: &Path, addr: SocketAddr) -> Server {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<SocketAddr, String>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let dir = data.to_path_buf();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(run(dir, addr, ready_tx, stop_rx));
            runtime.shutdown_timeout(Duration::from_secs(1));
        });
        let addr = ready_rx
            .recv()
            .expect("server thread answers")
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        Server {
            addr,
            data: data.to_path_buf(),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://addr`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and its runtime; the store is closed cleanly.
    pub fn stop(mut self) -> (PathBuf, SocketAddr) {
        self.halt();
        (self.data.clone(), self.addr)
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread ends");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = std::time::Instant::now() + Duration::from_secs(BIND_RETRY_SECS);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn run(
    data: PathBuf,
    addr: SocketAddr,
    ready: mpsc::Sender<Result<SocketAddr, String>>,
    stop: oneshot::Receiver<()>,
) {
    let store = match SledStore::open(store_path(&data), SledOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(format!("store: {e}")));
            return;
        }
    };
    let jwt = JwtAuth::hs256(TEST_JWT_SECRET, TOKEN_TTL_SECS).expect("jwt config");
    let feed_jwt = JwtAuth::hs256(TEST_JWT_SECRET, TOKEN_TTL_SECS).expect("jwt config");
    let store_dyn: Arc<dyn EventStore> = store.clone();
    let kv: Arc<dyn KvProvider> = store.clone();
    let state = match AppState::open(store_dyn, kv, jwt, HttpOptions::default()).await {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(format!("state: {e}")));
            return;
        }
    };
    // The demo's users (not its tickets: each test makes its own data).
    let users = state.users().clone();
    let seeded = tokio::task::spawn_blocking(move || {
        command_api::demo::DEMO_USERS
            .iter()
            .try_for_each(|(name, role)| {
                users
                    .ensure(NewUser {
                        tenant: command_api::demo::DEMO_TENANT.into(),
                        name: (*name).into(),
                        role: *role,
                        password: command_api::demo::DEMO_PASSWORD.into(),
                    })
                    .map(|_| ())
            })
    })
    .await;
    if !matches!(seeded, Ok(Ok(()))) {
        let _ = ready.send(Err(format!("users: {seeded:?}")));
        return;
    }
    let listener = match bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("bind {addr}: {e}")));
            return;
        }
    };
    let local = listener.local_addr().expect("local addr");
    let (signal_tx, mut signal_rx) = watch::channel(false);
    let app = app(state.clone(), store.clone(), feed_jwt).await;
    let served = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = signal_rx.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );
    let _ = ready.send(Ok(local));
    let _ = stop.await;
    let _ = signal_tx.send(true);
    // Open WebSockets may keep a graceful stop waiting; a restart must not.
    let _ = tokio::time::timeout(Duration::from_secs(GRACEFUL_STOP_SECS), served).await;
    state.shutdown().await;
    let _ = store.close().await;
}

/// The API router; with the live feed merged in when the router does not
/// serve `/ws` itself yet (so the console can be tested while the wiring
/// of the binary is in progress).
async fn app(state: AppState, store: Arc<SledStore>, jwt: JwtAuth) -> Router {
    let router = command_api::http::router(state);
    let probe = router
        .clone()
        .oneshot(Request::get("/ws").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    if probe.status() != StatusCode::NOT_FOUND {
        return router;
    }
    let store: Arc<dyn EventStore> = store;
    let feed = FeedState::new(store, Arc::new(FeedAuth(jwt)), FeedConfig::default());
    router.merge(live_feed::router(feed))
}

struct FeedAuth(JwtAuth);

impl Authenticate for FeedAuth {
    fn principal(&self, token: &str) -> Result<(Principal, DateTime<Utc>), AuthRejected> {
        let p = self.0.verify(token).map_err(|_| AuthRejected)?;
        let ttl = i64::try_from(TOKEN_TTL_SECS).unwrap_or(i64::MAX);
        Ok((p, Utc::now() + chrono::Duration::seconds(ttl)))
    }
}

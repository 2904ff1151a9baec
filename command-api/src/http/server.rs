//! Running a router on a listener until a shutdown signal: hyper's HTTP/1
//! connections driven by hand (not `axum::serve`), so that every
//! connection has its timeouts (`http/timeouts.rs`): its task closes it
//! when its clock (`http/conn_clock.rs`) says the client took too long.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use super::body_deadline::DeadlineBody;
use super::conn_clock::{ClockedIo, ConnClock, IdleAfter};
use super::error::ApiError;
use super::routes::metrics_listener::metrics_router;
use super::routes::router;
use super::state::AppState;
use super::timeouts::Timeouts;

/// Pause after an accept error that is not the peer's (such as running out
/// of descriptors), so the loop does not spin while nothing can be accepted.
const ACCEPT_ERROR_BACKOFF_MS: u64 = 1_000;

/// Serves `state`'s router on `listener` until `shutdown` completes; then
/// stops accepting and lets in-flight requests finish before returning.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let timeouts = state.timeouts();
    let shutdown = async move {
        shutdown.await;
        // WebSockets never finish on their own: close them so the graceful
        // shutdown only waits for in-flight requests.
        state.close_live_connections();
    };
    serve_router(listener, app, timeouts, shutdown).await
}

/// Serves `/metrics` alone on `listener` (`--metrics-listen`) until
/// `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeouts = state.timeouts();
    serve_router(listener, metrics_router(state), timeouts, shutdown).await
}

async fn serve_router(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // `stop` tells connections to finish; every connection task holds a
    // `done` receiver, so `done_tx.closed()` is "all connections ended".
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            timeouts,
            stop_rx.clone(),
            done_rx.clone(),
        ));
    }
    drop(listener);
    stop_tx.send_replace(true);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)).await;
}

/// Serves one connection until it ends, its clock expires (the socket is
/// dropped: closed) or, after `stop`, its in-flight request is answered.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
    _done: watch::Receiver<()>,
) {
    let clock = Arc::new(ConnClock::new(timeouts));
    let io = TokioIo::new(ClockedIo::new(stream, clock.clone()));
    let service = ConnService {
        app,
        peer,
        clock: clock.clone(),
        body_read: timeouts.body_read,
        ws_handshake: timeouts.ws_handshake,
    };
    let conn = http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let expired = clock.expired();
    tokio::pin!(expired);
    let mut stopping = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            which = &mut expired => {
                tracing::debug!(timeout = ?which, "closing a connection whose client took too long");
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The router as one connection's hyper service: each request tells the
/// connection's clock, gets its body deadline, and its answer's end
/// starts the idle timeout.
#[derive(Clone)]
struct ConnService {
    app: Router,
    /// The client's address, handed to handlers as `ConnectInfo` (login
    /// throttling counts per client address: `extract::ClientAddr`).
    peer: SocketAddr,
    clock: Arc<ConnClock>,
    body_read: Duration,
    ws_handshake: Duration,
}

type Answer = Result<Response<IdleAfter>, Infallible>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<IdleAfter>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let upgrade = request.headers().contains_key(header::UPGRADE);
        if !self.clock.request_started(upgrade) {
            let mut refused = ApiError::handshake_timeout(self.ws_handshake).into_response();
            refused
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            let clock = self.clock.clone();
            return Box::pin(
                async move { Ok(refused.map(|body| IdleAfter::new(body, Some(clock)))) },
            );
        }
        let body_read = self.body_read;
        let mut request = request.map(|body| Body::new(DeadlineBody::new(body, body_read)));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let app = self.app.clone();
        let clock = self.clock.clone();
        Box::pin(async move {
            let response = match app.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            // After a 101 the connection is the live feed's: no idle clock.
            let clock = (response.status() != StatusCode::SWITCHING_PROTOCOLS).then_some(clock);
            Ok(response.map(|body| IdleAfter::new(body, clock)))
        })
    }
}

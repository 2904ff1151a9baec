//! Running the router on a listener until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use super::routes::router;
use super::state::AppState;

/// Serves `state`'s router on `listener` until `shutdown` completes; then
/// stops accepting and lets in-flight requests finish before returning.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let shutdown = async move {
        shutdown.await;
        // WebSockets never finish on their own: close them so the graceful
        // shutdown only waits for in-flight requests.
        state.close_live_connections();
    };
    // The peer address reaches handlers as `ConnectInfo` (login throttling
    // counts per client address; see `extract::ClientAddr`).
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

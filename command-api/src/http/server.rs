//! Running the router on a listener until a shutdown signal.

use std::future::Future;

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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

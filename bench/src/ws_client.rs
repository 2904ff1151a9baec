//! What the WebSocket clients of `bench fanout` and `bench soak` share: the
//! socket, what a message read means, and a clean close.

use std::time::Duration;

use futures::StreamExt;
use tokio::net::TcpStream;
use tokio::time::error::Elapsed;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for the server's close frame after the client's.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A client's connection.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the message `msg` means: `None` to read on (a text frame that
/// `frame` accepted, a ping), else the problem that ends the connection.
pub fn problem(
    msg: Option<Result<Message, Error>>,
    frame: impl FnOnce(&str) -> anyhow::Result<()>,
) -> Option<String> {
    match msg {
        Some(Ok(Message::Text(t))) => frame(t.as_str()).err().map(|e| format!("{e:#}")),
        Some(Ok(Message::Close(f))) => Some(format!("closed by the server: {f:?}")),
        // Pings are answered by tungstenite on the next read.
        Some(Ok(_)) => None,
        Some(Err(e)) => Some(format!("{e}")),
        None => Some("stream ended".to_string()),
    }
}

/// A clean close: the client's close frame, then the server's, within
/// [`CLOSE_TIMEOUT`].
pub async fn close(mut ws: Socket) -> Result<Result<(), Error>, Elapsed> {
    tokio::time::timeout(CLOSE_TIMEOUT, async {
        ws.close(None).await?;
        while let Some(msg) = ws.next().await {
            msg?;
        }
        Ok(())
    })
    .await
}

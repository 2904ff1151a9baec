//! A client flooding the live feed is closed with 4008, and receives that
//! close frame even though it was still sending (it used to get a TCP
//! reset: the server dropped the socket with the flood unread).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support;

/// Frames the client sends before it reads: far past the feed's burst.
const FLOOD_FRAMES: usize = 400;
/// Length of the room name of each frame: the server's refusal echoes it,
/// so its answers fill the client's small receive window and the close
/// frame has to wait behind them.
const ROOM_NAME_CHARS: usize = 4_000;
/// The client's receive buffer: small, as a slow link's window would be.
const CLIENT_RECV_BUFFER_BYTES: u32 = 4_096;
/// How long the client waits for the close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// The contract's close code for a client too fast or too slow.
const CLOSE_TOO_SLOW: u16 = 4008;

#[tokio::test]
async fn a_flooding_client_reads_the_4008_close_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::add_admin(dir.path(), "t", "root", "pw-root");
    let server = support::serve(dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let (token, _) = support::login(&http, &server, "t", "root", "pw-root").await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(CLIENT_RECV_BUFFER_BYTES)
        .expect("receive buffer");
    let stream = socket
        .connect(server.addr.parse().expect("address"))
        .await
        .expect("connect");
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("ws://{}/ws?token={token}", server.addr), stream)
            .await
            .expect("upgrade");
    let frame = serde_json::json!({"type": "subscribe", "room": "x".repeat(ROOM_NAME_CHARS)});
    for _ in 0..FLOOD_FRAMES {
        if ws.feed(Message::text(frame.to_string())).await.is_err() {
            break;
        }
    }
    let _ = ws.flush().await;
    let code = tokio::time::timeout(CLOSE_WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("an error instead of the close frame: {e}"),
                None => panic!("the end instead of the close frame"),
            }
        }
    })
    .await
    .expect("a close frame in time");
    assert_eq!(code, Some(CLOSE_TOO_SLOW));
    support::stop(server).await;
}

//! A client flooding the live feed is closed with 4008, and receives that
//! close frame even though it was still sending (it used to get a TCP
//! reset: the server dropped the socket with the flood unread).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support;

/// Frames the client sends before it reads: far past the feed's burst.
const FLOOD_FRAMES: usize = 5_000;
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
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={token}", server.addr))
            .await
            .expect("connect");
    for _ in 0..FLOOD_FRAMES {
        if ws.feed(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
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

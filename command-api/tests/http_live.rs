//! The live feed mounted on the API's port: `/ws` authenticates with the
//! same JWTs, sees commands posted over REST, and does not hold up a
//! graceful shutdown.

mod http_common;

use event_store::both_stores;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http_common::{Backend, TestServer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("stream open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("json frame");
        }
    }
}

both_stores!(ws_on_the_same_port_sees_rest_commands);
async fn ws_on_the_same_port_sees_rest_commands(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let ticket = server.create_ticket(&cast.carol.1, "live").await;

    let url = format!("ws://{}/ws?token={}", server.addr, cast.carol.1);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    ws.send(Message::Text(
        json!({"type": "subscribe", "room": format!("ticket:{ticket}")})
            .to_string()
            .into(),
    ))
    .await
    .expect("subscribe");
    let mut got_subscribed = false;
    while !got_subscribed {
        let frame = next_json(&mut ws).await;
        got_subscribed = frame["type"] == "subscribed";
    }
    let (s, _) = server
        .post(
            &format!("/api/v1/tickets/{ticket}/comments"),
            &cast.alice.1,
            json!({"body": "internal", "internal": true}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = server
        .post(
            &format!("/api/v1/tickets/{ticket}/comments"),
            &cast.alice.1,
            json!({"body": "hello carol"}),
        )
        .await;
    assert_eq!(s, 200);
    loop {
        let frame = next_json(&mut ws).await;
        // The ticket's creation may still be on its way to the hub when
        // carol joins (then it arrives live): the first comment is the test.
        if frame["type"] == "event" && frame["event"]["kind"] == "CommentPosted" {
            assert_eq!(
                frame["event"]["body"], "hello carol",
                "the internal note never reaches carol"
            );
            break;
        }
    }

    // A bad token is closed with 4001.
    let bad = format!("ws://{}/ws?token=not-a-token", server.addr);
    let (mut refused, _) = tokio_tungstenite::connect_async(bad)
        .await
        .expect("upgrade");
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(5), refused.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            _ => break None,
        }
    };
    assert_eq!(code, Some(4001));

    // Shutting down with a socket open still completes.
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("graceful shutdown is not held up by the open socket");
}

//! Authentication, Origin, token expiry and shutdown.

mod common;

use event_store::both_stores;
use std::time::Duration;

use common::{wait_until, Backend, Client, Harness};
use live_feed::{FeedConfig, OriginPolicy};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

both_stores!(missing_or_bad_tokens_are_closed_with_4001);
async fn missing_or_bad_tokens_are_closed_with_4001(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut none = Client::connect(&h.url()).await;
    assert_eq!(none.close_code().await, Some(4001));
    let mut bad = h.connect("forged").await;
    assert_eq!(bad.close_code().await, Some(4001));
    let mut bad_header = Client::with_header(&h.url(), "authorization", "Bearer forged")
        .await
        .expect("upgrade");
    assert_eq!(bad_header.close_code().await, Some(4001));
    wait_until("refused connections are gone", || {
        h.feed.stats().connections_open == 0
    })
    .await;
    assert_eq!(
        h.feed.stats().connections_total,
        0,
        "never counted as connected"
    );
}

both_stores!(token_in_header_or_subprotocol_is_accepted);
async fn token_in_header_or_subprotocol_is_accepted(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut by_header = Client::with_header(&h.url(), "authorization", "Bearer agent")
        .await
        .expect("upgrade");
    assert_eq!(
        by_header.subscribe("tickets", None).await["type"],
        "subscribed"
    );

    let mut req = h.url().into_client_request().expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("bearer, agent"),
    );
    let (ws, response) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.as_bytes()),
        Some(&b"bearer"[..]),
        "the subprotocol is echoed"
    );
    let mut by_protocol = Client { ws };
    assert_eq!(
        by_protocol.subscribe("tickets", None).await["type"],
        "subscribed"
    );
}

both_stores!(cross_origin_handshakes_are_refused_unless_allowed);
async fn cross_origin_handshakes_are_refused_unless_allowed(backend: Backend) {
    let h = Harness::start(backend).await;
    let url = format!("{}?token=agent", h.url());
    let same = format!("http://{}", h.addr);
    assert!(Client::with_header(&url, "origin", &same).await.is_ok());
    let refused = Client::with_header(&url, "origin", "http://evil.test").await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        Err(e) => panic!("expected HTTP 403, got {e}"),
        Ok(_) => panic!("cross-origin upgrade accepted"),
    }

    let h = Harness::start_with(
        backend,
        FeedConfig {
            origins: OriginPolicy::AllowList(vec!["https://app.example.com".into()]),
            ..FeedConfig::default()
        },
    )
    .await;
    let url = format!("{}?token=agent", h.url());
    assert!(
        Client::with_header(&url, "origin", "https://app.example.com")
            .await
            .is_ok()
    );
    assert!(
        Client::with_header(&url, "origin", "https://other.example.com")
            .await
            .is_err()
    );
}

both_stores!(a_connection_is_closed_when_its_token_expires);
async fn a_connection_is_closed_when_its_token_expires(backend: Backend) {
    let h = Harness::start(backend).await;
    h.auth.add(
        "short",
        h.agent.clone(),
        chrono::Utc::now() + chrono::Duration::milliseconds(600),
    );
    let mut c = h.connect("short").await;
    assert_eq!(c.subscribe("tickets", None).await["type"], "subscribed");
    assert_eq!(c.close_code().await, Some(4001));
    h.auth.add(
        "expired",
        h.agent.clone(),
        chrono::Utc::now() - chrono::Duration::seconds(1),
    );
    let mut expired = h.connect("expired").await;
    assert_eq!(expired.close_code().await, Some(4001));
}

both_stores!(shutdown_sends_every_socket_a_close_frame);
async fn shutdown_sends_every_socket_a_close_frame(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut clients = Vec::new();
    for token in ["agent", "customer", "technician"] {
        let mut c = h.connect(token).await;
        c.subscribe(&format!("user:{}", h.agent.user_id), None)
            .await;
        clients.push(c);
    }
    wait_until("all connected", || h.feed.stats().connections_open == 3).await;
    h.feed.shutdown();
    for c in &mut clients {
        assert_eq!(c.close_code().await, Some(1001));
    }
    tokio::time::timeout(Duration::from_secs(10), h.feed.closed())
        .await
        .expect("all connections closed");
    let mut late = h.connect("agent").await;
    assert_eq!(late.close_code().await, Some(1001));
}

both_stores!(a_client_close_is_answered_and_the_connection_released);
async fn a_client_close_is_answered_and_the_connection_released(backend: Backend) {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;

    let h = Harness::start(backend).await;
    let mut c = h.connect("agent").await;
    assert_eq!(c.subscribe("tickets", None).await["type"], "subscribed");
    c.ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .expect("send close");
    assert_eq!(c.close_code().await, Some(1000));
    wait_until("connection released", || {
        h.feed.stats().connections_open == 0
    })
    .await;
}

//! A refused Origin is answered with the contract's JSON error object
//! (issue 15), not a bare text body.

mod common;

use common::{Backend, Client, Harness};
use event_store::both_stores;
use serde_json::Value;

both_stores!(a_refused_origin_gets_the_json_error_object);
async fn a_refused_origin_gets_the_json_error_object(backend: Backend) {
    let h = Harness::start(backend).await;
    let url = format!("{}?token=agent", h.url());
    let refused = Client::with_header(&url, "origin", "http://evil.test").await;
    let response = match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r,
        Err(e) => panic!("expected HTTP 403, got {e}"),
        Ok(_) => panic!("cross-origin upgrade accepted"),
    };
    assert_eq!(response.status(), 403);
    let ctype = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let body: Value =
        serde_json::from_slice(response.body().as_deref().unwrap_or_default()).expect("JSON body");
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(body["error"]["details"]["reason"], "origin");
    assert!(body["error"]["message"].is_string());
}

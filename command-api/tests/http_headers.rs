//! Headers and error shapes every answer shares (issue 15): API answers and
//! JSON errors are never cached, nothing may be content-sniffed, and every
//! error the application makes is the contract's JSON object.

mod http_common;

use event_store::both_stores;
use event_store::Role;
use http_common::{Backend, TestServer};

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

both_stores!(api_answers_and_json_errors_are_no_store_and_nosniff);
async fn api_answers_and_json_errors_are_no_store_and_nosniff(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.add_user("acme", "ann", Role::Agent);
    let token = server.token_for(&user);
    let ok = server
        .client
        .get(server.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    let unauthorized = server
        .client
        .get(server.url("/api/v1/tickets"))
        .send()
        .await
        .expect("send");
    let unknown = server
        .client
        .get(server.url("/no/such/route"))
        .send()
        .await
        .expect("send");
    for (name, res, status) in [
        ("me", ok, 200),
        ("no token", unauthorized, 401),
        ("unknown route", unknown, 404),
    ] {
        assert_eq!(res.status().as_u16(), status, "{name}");
        assert_eq!(
            header(&res, "cache-control").as_deref(),
            Some("no-store"),
            "{name}"
        );
        assert_eq!(
            header(&res, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{name}"
        );
    }
    server.stop().await;
}

both_stores!(assets_and_pages_keep_their_caching_and_get_nosniff);
async fn assets_and_pages_keep_their_caching_and_get_nosniff(backend: Backend) {
    let server = TestServer::start(backend).await;
    for path in ["/assets/app.css", "/app/login"] {
        let res = server
            .client
            .get(server.url(path))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status().as_u16(), 200, "{path}");
        assert_eq!(
            header(&res, "cache-control").as_deref(),
            Some("no-cache"),
            "{path}"
        );
        assert_eq!(
            header(&res, "x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
    }
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        header(&metrics, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    server.stop().await;
}

both_stores!(a_missing_asset_is_the_json_error_object);
async fn a_missing_asset_is_the_json_error_object(backend: Backend) {
    let server = TestServer::start(backend).await;
    let res = server
        .client
        .get(server.url("/assets/nope.js"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(
        header(&res, "cache-control").as_deref(),
        Some("no-store"),
        "an error, not an asset"
    );
    let body: serde_json::Value = res.json().await.expect("JSON body");
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].is_string());
    assert!(body["error"]["details"].is_object());
    server.stop().await;
}

both_stores!(a_query_string_over_the_limit_is_414_before_routing);
async fn a_query_string_over_the_limit_is_414_before_routing(backend: Backend) {
    use command_api::http::limits::QUERY_BYTES_MAX;
    let server = TestServer::start(backend).await;
    let user = server.add_user("acme", "ann", Role::Agent);
    let token = server.token_for(&user);
    // At the limit: answered by the route (an unknown parameter or not, it
    // is not a 414).
    let at = format!("/api/v1/tickets?q={}", "a".repeat(QUERY_BYTES_MAX - 2));
    let res = server
        .client
        .get(server.url(&at))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_ne!(res.status().as_u16(), 414);
    // One byte over, even on a route that does not exist and without a
    // token: refused before routing and authentication.
    for path in ["/api/v1/tickets", "/no/such/route"] {
        let over = format!("{path}?q={}", "a".repeat(QUERY_BYTES_MAX - 1));
        let res = server
            .client
            .get(server.url(&over))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status().as_u16(), 414, "{path}");
        let body: serde_json::Value = res.json().await.expect("JSON body");
        assert_eq!(body["error"]["code"], "uri_too_long", "{path}");
        assert_eq!(
            body["error"]["details"]["limit_bytes"], QUERY_BYTES_MAX,
            "{path}"
        );
    }
    server.stop().await;
}

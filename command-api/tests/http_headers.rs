//! Headers and error shapes every answer shares (issue 15): API answers and
//! JSON errors are never cached, nothing may be content-sniffed, and every
//! error the application makes is the contract's JSON object.

mod http_common;

use event_store::Role;
use http_common::TestServer;

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn api_answers_and_json_errors_are_no_store_and_nosniff() {
    let server = TestServer::start().await;
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

#[tokio::test]
async fn assets_and_pages_keep_their_caching_and_get_nosniff() {
    let server = TestServer::start().await;
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

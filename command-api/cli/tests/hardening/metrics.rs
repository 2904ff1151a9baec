//! `/metrics` (with the log head) is behind credentials: the metrics
//! token or an admin's token on the API's listener, or only on the
//! `--metrics-listen` address.

use serde_json::Value;

use crate::support::{self, Launch, ServerChild};

/// The gauge that carries the log head.
const HEAD_GAUGE: &str = "ticketlog_log_head_position ";

/// Status, and the body as text.
async fn get(request: reqwest::RequestBuilder) -> (u16, String) {
    let r = request.send().await.expect("send");
    (r.status().as_u16(), r.text().await.expect("text"))
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn metrics_on_the_api_listener_need_the_metrics_token_or_an_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::add_admin(dir.path(), "t", "root", "pw-root");
    support::ticketlog_ok(
        &[
            "user",
            "add",
            "--tenant",
            "t",
            "--name",
            "alice",
            "--role",
            "agent",
            "--password",
            "pw-alice",
        ],
        dir.path(),
    );
    let server = support::serve(dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let (admin, _) = support::login(&http, &server, "t", "root", "pw-root").await;
    let (agent, _) = support::login(&http, &server, "t", "alice", "pw-alice").await;
    let url = server.url("/metrics");
    let (s, b) = get(http.get(&url)).await;
    assert_eq!((s, error_code(&b).as_str()), (401, "unauthorized"), "{b}");
    let (s, b) = get(http.get(&url).bearer_auth("not-the-token")).await;
    assert_eq!((s, error_code(&b).as_str()), (401, "unauthorized"), "{b}");
    let (s, b) = get(http.get(&url).bearer_auth(&agent)).await;
    assert_eq!((s, error_code(&b).as_str()), (403, "forbidden"), "{b}");
    for credential in [&admin, &server.metrics_token] {
        let (s, b) = get(http.get(&url).bearer_auth(credential)).await;
        assert_eq!(s, 200, "{b}");
        assert!(b.contains(HEAD_GAUGE), "{b}");
    }
    // Liveness stays public and shows no position.
    let (s, b) = get(http.get(server.url("/healthz"))).await;
    assert_eq!((s, b.as_str()), (200, r#"{"status":"ok"}"#));
    support::stop(server).await;
}

/// The address the server logged for its metrics listener.
fn metrics_addr(server: &ServerChild) -> String {
    server
        .log
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "metrics listening")
        .and_then(|v| v["fields"]["addr"].as_str().map(str::to_string))
        .expect("a metrics listening line")
}

#[tokio::test]
async fn with_metrics_listen_metrics_are_served_there_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let launch = |env| Launch {
        args: &["--metrics-listen", "127.0.0.1:0"],
        env,
        keep_log: true,
        ..Launch::default()
    };
    let http = reqwest::Client::new();
    // With the harness's metrics token: required on the metrics address too.
    let server = support::serve_with(dir.path(), launch(&[])).await;
    let separate = format!("http://{}/metrics", metrics_addr(&server));
    let (s, b) = get(server.metrics_request(&http)).await;
    assert_eq!((s, error_code(&b).as_str()), (404, "not_found"), "{b}");
    let (s, b) = get(http.get(&separate)).await;
    assert_eq!((s, error_code(&b).as_str()), (401, "unauthorized"), "{b}");
    let (s, b) = get(http.get(&separate).bearer_auth(&server.metrics_token)).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains(HEAD_GAUGE), "{b}");
    support::stop(server).await;
    // Without a token, the separate address is the credential.
    let server = support::serve_with(dir.path(), launch(&[("TICKETLOG_METRICS_TOKEN", "")])).await;
    let addr = metrics_addr(&server);
    let (s, b) = get(http.get(format!("http://{addr}/metrics"))).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains(HEAD_GAUGE), "{b}");
    let (s, b) = get(http.get(format!("http://{addr}/api/v1/me"))).await;
    assert_eq!((s, error_code(&b).as_str()), (404, "not_found"), "{b}");
    let (s, b) = get(http.get(server.url("/metrics"))).await;
    assert_eq!((s, error_code(&b).as_str()), (404, "not_found"), "{b}");
    support::stop(server).await;
}

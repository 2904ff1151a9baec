//! Security review of the routes (issue 8).
//!
//! 1. Every route the server serves has an authorization rule in [`ROUTES`]:
//!    the routes are read from the router's source text at build time, so a
//!    route added without an entry here fails the test.
//! 2. For each route: no token is 401 (or the route is public, by a
//!    documented reason), the role allowed by the contract gets its 2xx, and
//!    at least one role without the permission gets 403 when the resource is
//!    visible to it and 404 when it is not. A refusal appends nothing.
//!
//! `GET /metrics` needs an admin's token or the metrics token
//! (`command-api/src/http/metrics_access.rs`); the separate metrics
//! listener's router (`command-api/src/http/routes/metrics_listener.rs`)
//! serves it alone and is tested with the binary
//! (`command-api/cli/tests/hardening/metrics.rs`).
//!
//! That tokens and passwords never appear in the server's log output is
//! `command-api/cli/tests/log_secrets.rs` (it runs the binary).
//!
//! Public routes and why:
//! - `GET /healthz`: liveness only (`{"status":"ok"}`, no store read, no
//!   head position: issue 14).
//! - `POST /api/v1/auth/token`: the login itself.
//! - `POST /api/v1/auth/logout`, `POST /api/v1/me/password`: any
//!   principal, for their own session (each role presents a fresh token).
//! - `/`, `/app...`, `/assets/...`: static console shells and files; every
//!   datum they show is fetched from `/api/v1` with the user's token.
//! - `GET /ws`: the upgrade is public, the session is not: without a valid
//!   token the socket is closed with 4001 before any frame is served.

mod http_common;

use event_store::both_stores;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use event_store::Role;
use futures::{SinkExt, StreamExt};
use http_common::{error_code, Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// The router and the routers it merges, as compiled.
const ROUTER_SOURCES: [(&str, &str); 3] = [
    (
        "command-api/src/http/routes/mod.rs",
        include_str!("../src/http/routes/mod.rs"),
    ),
    (
        "command-api/src/ui/mod.rs",
        include_str!("../src/ui/mod.rs"),
    ),
    (
        "live-feed/src/lib.rs",
        include_str!("../../live-feed/src/lib.rs"),
    ),
];

/// The routers `routes::router` merges; any other `.merge(`/`.nest(` is a
/// router this review has not seen.
const KNOWN_MERGES: [&str; 2] = [
    ".merge(crate::ui::ui_router())",
    ".merge(live_feed::router(state.feed().clone()))",
];

/// What a fixture holds when a route's requests are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// A ticket reported by the customer `carol`.
    Ticket,
    /// That ticket, dispatched by an agent to the technician `dave`.
    Dispatched,
    /// That dispatch, accepted by `dave`.
    Accepted,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// No token needed; the anonymous request gets this status.
    Public(u16),
    /// Any valid principal (no permission); the request gets this status.
    Authenticated(u16),
    /// As `Authenticated`, but each role presents a fresh token of its own
    /// (the route ends or changes that session: logout, password change).
    OwnSession(u16),
    /// `permission` is required. `allowed` gets `ok`; each of `denied` gets
    /// its status (403 when it can see the resource, 404 when not).
    Permission {
        permission: &'static str,
        allowed: Role,
        ok: u16,
        denied: &'static [(Role, u16)],
    },
    /// The live feed: upgrade always, then close 4001 without a token.
    LiveFeed,
}

/// One route of the table.
#[derive(Debug, Clone, Copy)]
struct Route {
    method: &'static str,
    path: &'static str,
    rule: Rule,
    setup: Setup,
    /// JSON body; `{carol}`, `{alice}`, `{dave}` are replaced by user ids.
    body: Option<&'static str>,
}

const fn route(method: &'static str, path: &'static str, rule: Rule) -> Route {
    Route {
        method,
        path,
        rule,
        setup: Setup::Ticket,
        body: None,
    }
}

impl Route {
    /// The route called with this JSON body.
    const fn body(mut self, body: &'static str) -> Route {
        self.body = Some(body);
        self
    }

    /// The route called once the fixture holds `setup`.
    const fn after(mut self, setup: Setup) -> Route {
        self.setup = setup;
        self
    }
}

const fn perm(
    permission: &'static str,
    allowed: Role,
    ok: u16,
    denied: &'static [(Role, u16)],
) -> Rule {
    Rule::Permission {
        permission,
        allowed,
        ok,
        denied,
    }
}

use Role::{Admin, Agent, Analyst, Auditor, Customer, Technician};

/// A second customer of the same tenant: `mallory`.
const OTHER_CUSTOMER: Role = Role::Customer;

/// Roles refused a staff action on carol's ticket: she and the auditor see
/// it (403), the analyst does not (404).
const STAFF_ACTION_DENIED: &[(Role, u16)] = &[(Customer, 403), (Auditor, 403), (Analyst, 404)];
/// Reading carol's ticket: roles that cannot see it.
const VIEW_TICKET: Rule = perm(
    "tickets.view",
    Customer,
    200,
    &[(Analyst, 404), (Technician, 404)],
);
/// Changing carol's ticket.
const MANAGE_TICKET: Rule = perm("tickets.manage", Agent, 200, STAFF_ACTION_DENIED);
/// dave's answer to a dispatch: staff see it (403), the analyst does not.
const RESPOND: Rule = perm(
    "dispatch.respond",
    Technician,
    200,
    &[(Agent, 403), (Admin, 403), (Analyst, 404)],
);

/// Every route, with its rule. `(Customer, _)` in `denied` is `carol` (the
/// reporter); `mallory` (another customer) is checked on every
/// ticket-scoped route separately.
const ROUTES: &[Route] = &[
    route("GET", "/healthz", Rule::Public(200)),
    route(
        "GET",
        "/metrics",
        perm(
            "the admin role (or the metrics token)",
            Role::Admin,
            200,
            &[
                (Role::Customer, 403),
                (Role::Agent, 403),
                (Role::Auditor, 403),
                (Role::Analyst, 403),
            ],
        ),
    ),
    route("POST", "/api/v1/auth/token", Rule::Public(200))
        .body(r#"{"tenant":"demo","username":"carol","password":"pw"}"#),
    route("GET", "/api/v1/me", Rule::Authenticated(200)),
    route("POST", "/api/v1/auth/logout", Rule::OwnSession(204)),
    // A wrong current password: the token is fine (403, not 401), and the
    // cast keeps its passwords for the routes after this one.
    route("POST", "/api/v1/me/password", Rule::OwnSession(403))
        .body(r#"{"current":"wrong","new":"a long new password"}"#),
    route("GET", "/api/v1/users", Rule::Authenticated(200)),
    route(
        "GET",
        "/api/v1/tickets",
        perm("tickets.view", Customer, 200, &[(Analyst, 403)]),
    ),
    route(
        "POST",
        "/api/v1/tickets",
        perm(
            "tickets.create",
            Customer,
            201,
            &[(Technician, 403), (Auditor, 403), (Analyst, 403)],
        ),
    )
    .body(r#"{"title":"t","description":"d","priority":"low","kind":"question"}"#),
    route("GET", "/api/v1/tickets/{id}", VIEW_TICKET),
    route("PATCH", "/api/v1/tickets/{id}", MANAGE_TICKET).body(r#"{"title":"renamed"}"#),
    route("POST", "/api/v1/tickets/{id}/assign", MANAGE_TICKET)
        .body(r#"{"assignee_id":"{alice}"}"#),
    route("POST", "/api/v1/tickets/{id}/status", MANAGE_TICKET).body(r#"{"status":"assigned"}"#),
    route(
        "POST",
        "/api/v1/tickets/{id}/comments",
        perm(
            "tickets.comment",
            Customer,
            200,
            &[(Auditor, 403), (Analyst, 404), (Technician, 404)],
        ),
    )
    .body(r#"{"body":"hello"}"#),
    route(
        "POST",
        "/api/v1/tickets/{id}/dispatches",
        perm("dispatch.manage", Agent, 200, STAFF_ACTION_DENIED),
    )
    .body(r#"{"technician_id":"{dave}"}"#),
    route("POST", "/api/v1/dispatches/{id}/accept", RESPOND).after(Setup::Dispatched),
    route("POST", "/api/v1/dispatches/{id}/decline", RESPOND).after(Setup::Dispatched),
    route("POST", "/api/v1/dispatches/{id}/status", RESPOND)
        .body(r#"{"status":"en_route"}"#)
        .after(Setup::Accepted),
    route(
        "POST",
        "/api/v1/technicians/me/location",
        perm(
            "dispatch.respond",
            Technician,
            200,
            &[(Agent, 403), (Customer, 403), (Admin, 403)],
        ),
    )
    .body(r#"{"lat":52.5,"lon":13.4}"#),
    route("GET", "/api/v1/tickets/{id}/chat", VIEW_TICKET),
    route(
        "GET",
        "/api/v1/tickets/{id}/audit",
        perm(
            "audit.read",
            Auditor,
            200,
            &[(Agent, 403), (Customer, 403), (Analyst, 404)],
        ),
    ),
    route(
        "GET",
        "/api/v1/stats",
        perm(
            "stats.read",
            Analyst,
            200,
            &[(Customer, 403), (Auditor, 403), (Technician, 403)],
        ),
    ),
    route(
        "GET",
        "/api/v1/events",
        perm(
            "audit.read",
            Auditor,
            200,
            &[(Agent, 403), (Analyst, 403), (Customer, 403)],
        ),
    ),
    route("GET", "/", Rule::Public(303)),
    route("GET", "/app", Rule::Public(303)),
    route("GET", "/app/", Rule::Public(303)),
    route("GET", "/app/login", Rule::Public(200)),
    route("GET", "/app/tickets", Rule::Public(200)),
    route("GET", "/app/new", Rule::Public(200)),
    route("GET", "/app/stats", Rule::Public(200)),
    route("GET", "/app/tickets/{id}", Rule::Public(200)),
    route("GET", "/app/tickets/{id}/audit", Rule::Public(200)),
    route("GET", "/assets/{file}", Rule::Public(200)),
    route("GET", "/ws", Rule::LiveFeed),
];

const HTTP_METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "any",
];

/// The `(METHOD, path)` pairs of every `.route("path", ...)` call of `src`.
fn routes_in_source(src: &str) -> Vec<(String, String)> {
    let mut found = vec![];
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let (path, methods) = parse_route_call(rest);
        assert!(
            !methods.is_empty(),
            "no method found in .route({path:?}, ...)"
        );
        for m in methods {
            found.push((m.to_uppercase(), path.clone()));
        }
    }
    found
}

/// Parses `"path", <method router>)` at the start of `call`.
fn parse_route_call(call: &str) -> (String, Vec<String>) {
    let open = call.find('"').expect("a string literal path");
    let close = open + 1 + call[open + 1..].find('"').expect("closing quote");
    let path = call[open + 1..close].to_string();
    // The method router runs to the parenthesis closing `.route(`.
    let mut depth = 1i32;
    let mut end = call.len();
    for (i, c) in call[close + 1..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = close + 1 + i;
                    break;
                }
            }
            _ => {}
        }
    }
    let expr = &call[close + 1..end];
    let mut methods = vec![];
    let bytes = expr.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            let called = bytes.get(i) == Some(&b'(');
            // `page(Page::Login)` inside a closure is not a method: only
            // words at depth 0 of the method router (or chained) count.
            let depth_here = expr[..start].matches('(').count() as i64
                - expr[..start].matches(')').count() as i64;
            if called && depth_here == 0 && HTTP_METHODS.contains(&word) {
                methods.push(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    (path, methods)
}

#[test]
fn every_served_route_has_an_authorization_rule() {
    let mut served = BTreeSet::new();
    for (file, src) in ROUTER_SOURCES {
        let found = routes_in_source(src);
        assert!(!found.is_empty(), "no routes parsed from {file}");
        for r in found {
            assert!(served.insert(r.clone()), "{r:?} declared twice ({file})");
        }
        assert!(
            !src.contains(".nest("),
            "{file} nests a router this review has not seen"
        );
    }
    let (_, main_router) = ROUTER_SOURCES[0];
    let merges = main_router.matches(".merge(").count();
    assert_eq!(
        merges,
        KNOWN_MERGES.len(),
        "a router was merged that this review has not seen"
    );
    for m in KNOWN_MERGES {
        assert!(main_router.contains(m), "expected merge {m}");
    }
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(table.len(), ROUTES.len(), "the table lists a route twice");
    let missing: Vec<_> = served.difference(&table).collect();
    let stale: Vec<_> = table.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "routes served without an authorization rule in ROUTES: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "ROUTES lists routes no longer served: {stale:?}"
    );
}

#[test]
fn the_route_parser_reads_chained_methods_and_ignores_closures() {
    let src = r#"Router::new()
        .route("/a/{id}", get(q::get_ticket).patch(c::edit))
        .route("/b", get(|| page(Page::Login)))
        .route(
            "/c",
            post(c::create),
        )"#;
    assert_eq!(
        routes_in_source(src),
        vec![
            ("GET".into(), "/a/{id}".into()),
            ("PATCH".into(), "/a/{id}".into()),
            ("GET".into(), "/b".into()),
            ("POST".into(), "/c".into()),
        ]
    );
}

/// The users and ids one route's requests use.
struct Fixture {
    ticket: String,
    dispatch: Option<String>,
    mallory: String,
}

/// The cast member playing `role`: (user, token).
fn member(cast: &http_common::Cast, role: Role) -> &(command_api::auth::User, String) {
    match role {
        Customer => &cast.carol,
        Agent => &cast.alice,
        Technician => &cast.dave,
        Auditor => &cast.erin,
        Analyst => &cast.frank,
        Admin => &cast.root,
    }
}

fn token_of(cast: &http_common::Cast, role: Role) -> &str {
    &member(cast, role).1
}

async fn fixture(server: &TestServer, cast: &http_common::Cast, setup: Setup, n: usize) -> Fixture {
    let ticket = server
        .create_ticket(&cast.carol.1, &format!("route {n}"))
        .await;
    let mut dispatch = None;
    if setup != Setup::Ticket {
        let (s, b) = server
            .post(
                &format!("/api/v1/tickets/{ticket}/dispatches"),
                &cast.alice.1,
                json!({"technician_id": cast.dave.0.id}),
            )
            .await;
        assert_eq!(s, 200, "dispatch: {b}");
        dispatch = Some(b["dispatch_id"].as_str().expect("dispatch_id").to_string());
    }
    if setup == Setup::Accepted {
        let d = dispatch.as_deref().expect("dispatch");
        let (s, b) = server
            .post(
                &format!("/api/v1/dispatches/{d}/accept"),
                &cast.dave.1,
                json!({}),
            )
            .await;
        assert_eq!(s, 200, "accept: {b}");
    }
    Fixture {
        ticket,
        dispatch,
        mallory: String::new(),
    }
}

fn concrete_path(r: &Route, f: &Fixture) -> String {
    let id = if r.path.starts_with("/api/v1/dispatches/") {
        f.dispatch.clone().expect("a dispatch for a dispatch route")
    } else {
        f.ticket.clone()
    };
    r.path.replace("{id}", &id).replace("{file}", "app.css")
}

fn concrete_body(r: &Route, cast: &http_common::Cast) -> Option<Value> {
    r.body.map(|b| {
        let b = b
            .replace("{carol}", &cast.carol.0.id.to_string())
            .replace("{alice}", &cast.alice.0.id.to_string())
            .replace("{dave}", &cast.dave.0.id.to_string());
        serde_json::from_str(&b).expect("table body is JSON")
    })
}

async fn call(
    server: &TestServer,
    r: &Route,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let method = Method::from_bytes(r.method.as_bytes()).expect("method");
    // Do not follow the console's redirects: the status is the point.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut req = client.request(method, server.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn ws_close_code(server: &TestServer, query: &str) -> Option<CloseCode> {
    let url = format!("ws://{}/ws{query}", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the upgrade itself is public");
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .ok();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).expect("json frame");
                if v["type"] == "pong" {
                    return None;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) | Err(_) => break,
        }
    }
    panic!("neither a pong nor a close frame from /ws{query}");
}

both_stores!(every_route_enforces_its_rule);
async fn every_route_enforces_its_rule(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let mallory = server.add_user("demo", "mallory", OTHER_CUSTOMER);
    let mallory_token = server.token_for(&mallory);
    let mut failures = vec![];
    for (n, r) in ROUTES.iter().enumerate() {
        let mut f = fixture(&server, &cast, r.setup, n).await;
        f.mallory = mallory_token.clone();
        let path = concrete_path(r, &f);
        let body = concrete_body(r, &cast);
        let head = server.head().await;
        let what = format!("{} {}", r.method, r.path);
        match r.rule {
            Rule::LiveFeed => {
                let code = ws_close_code(&server, "").await;
                assert_eq!(
                    code,
                    Some(CloseCode::Library(4001)),
                    "{what} without a token"
                );
                let code = ws_close_code(&server, "?token=not-a-jwt").await;
                assert_eq!(
                    code,
                    Some(CloseCode::Library(4001)),
                    "{what} with a bad token"
                );
                for role in [Customer, Agent, Technician, Auditor, Analyst, Admin] {
                    let code =
                        ws_close_code(&server, &format!("?token={}", token_of(&cast, role))).await;
                    assert_eq!(code, None, "{what} as {role:?} answers ping");
                }
                continue;
            }
            Rule::Public(expected) => {
                let (s, b) = call(&server, r, &path, body.clone(), None).await;
                if s != expected {
                    failures.push(format!("{what} anonymous: {s} (want {expected}) {b}"));
                }
                continue;
            }
            Rule::Authenticated(_) | Rule::OwnSession(_) | Rule::Permission { .. } => {
                for token in [None, Some("not-a-jwt")] {
                    let (s, b) = call(&server, r, &path, body.clone(), token).await;
                    if s != 401 || error_code(&b) != "unauthorized" {
                        failures.push(format!("{what} token {token:?}: {s} (want 401) {b}"));
                    }
                }
            }
        }
        match r.rule {
            Rule::OwnSession(expected) => {
                for role in [Customer, Agent, Technician, Auditor, Analyst, Admin] {
                    let own = server.token_for(&member(&cast, role).0);
                    let (s, b) = call(&server, r, &path, body.clone(), Some(&own)).await;
                    if s != expected {
                        failures.push(format!("{what} as {role:?}: {s} (want {expected}) {b}"));
                    }
                }
            }
            Rule::Authenticated(expected) => {
                for role in [Customer, Agent, Technician, Auditor, Analyst, Admin] {
                    let (s, b) =
                        call(&server, r, &path, body.clone(), Some(token_of(&cast, role))).await;
                    if s != expected {
                        failures.push(format!("{what} as {role:?}: {s} (want {expected}) {b}"));
                    }
                }
            }
            Rule::Permission {
                permission,
                allowed,
                ok,
                denied,
            } => {
                let mut refusals: Vec<(String, &str, u16)> = denied
                    .iter()
                    .map(|(role, want)| (format!("{role:?}"), token_of(&cast, *role), *want))
                    .collect();
                if r.path.contains("{id}") {
                    refusals.push(("another customer".into(), f.mallory.as_str(), 404));
                }
                for (who, token, want) in refusals {
                    let (s, b) = call(&server, r, &path, body.clone(), Some(token)).await;
                    if s != want {
                        failures.push(format!(
                            "{what} as {who} without {permission}: {s} (want {want}) {b}"
                        ));
                    }
                }
                if server.head().await != head {
                    failures.push(format!("{what}: a refused request appended events"));
                }
                let (s, b) = call(
                    &server,
                    r,
                    &path,
                    body.clone(),
                    Some(token_of(&cast, allowed)),
                )
                .await;
                if s != ok {
                    failures.push(format!("{what} as {allowed:?}: {s} (want {ok}) {b}"));
                }
            }
            Rule::Public(_) | Rule::LiveFeed => {}
        }
    }
    server.stop().await;
    assert!(
        failures.is_empty(),
        "route rule violations:\n{}",
        failures.join("\n")
    );
}

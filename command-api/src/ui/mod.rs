//! The agent console: server-rendered page shells plus embedded plain
//! JavaScript that drives only the public API (`/api/v1`) and the live feed
//! (`/ws`), like any other client. No build step: the assets are compiled
//! into the binary.
//!
//! Mount with `router.merge(command_api::ui::ui_router())`; the optional
//! name directory the pages use is [`directory::list_users`] on
//! `GET /api/v1/users`.

pub mod assets;
pub mod directory;
pub mod pages;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use uuid::Uuid;

use pages::Page;

/// Where the console lives.
pub const UI_PREFIX: &str = "/app";

/// Content-Security-Policy of every page: scripts and styles only from our
/// own origin, so even a missed escape cannot run injected script. The
/// console only talks to its own origin (`connect-src 'self'` covers the
/// same-origin `ws:`/`wss:` feed), so injected code cannot send data away.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// The console's routes: `/`, `/app/...` pages and `/assets/...` files.
/// Stateless, so it merges into a router of any state.
pub fn ui_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(root))
        .route("/app", get(root))
        .route("/app/", get(root))
        .route("/app/login", get(|| page(Page::Login)))
        .route("/app/tickets", get(|| page(Page::Tickets)))
        .route("/app/new", get(|| page(Page::NewTicket)))
        .route("/app/stats", get(|| page(Page::Stats)))
        .route("/app/tickets/{id}", get(ticket))
        .route("/app/tickets/{id}/audit", get(audit))
        .route("/assets/{file}", get(assets::serve))
}

async fn root() -> Redirect {
    Redirect::to("/app/tickets")
}

async fn ticket(Path(id): Path<String>) -> Response {
    match Uuid::parse_str(&id) {
        Ok(id) => page(Page::Ticket(id)).await,
        Err(_) => not_found().await,
    }
}

async fn audit(Path(id): Path<String>) -> Response {
    match Uuid::parse_str(&id) {
        Ok(id) => page(Page::Audit(id)).await,
        Err(_) => not_found().await,
    }
}

async fn not_found() -> Response {
    let mut r = page(Page::NotFound).await;
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

async fn page(p: Page) -> Response {
    let mut r = Html(pages::render(&p)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str) -> (StatusCode, String, Option<String>) {
        let res = ui_router::<()>()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = res.status();
        let ctype = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned(), ctype)
    }

    #[tokio::test]
    async fn every_page_renders_with_its_script() {
        let id = Uuid::now_v7();
        for (path, script) in [
            ("/app/login".to_string(), "login.js"),
            ("/app/tickets".to_string(), "list.js"),
            ("/app/new".to_string(), "new.js"),
            ("/app/stats".to_string(), "stats.js"),
            (format!("/app/tickets/{id}"), "ticket.js"),
            (format!("/app/tickets/{id}/audit"), "audit.js"),
        ] {
            let (status, body, ctype) = get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(ctype.unwrap_or_default().starts_with("text/html"), "{path}");
            assert!(body.contains(&format!("/assets/{script}")), "{path}");
            assert!(body.contains("/assets/app.css"), "{path}");
        }
    }

    #[tokio::test]
    async fn ticket_id_must_be_a_uuid() {
        let (status, body, _) = get("/app/tickets/%3Cscript%3E").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!body.contains("<script>"));
    }

    #[tokio::test]
    async fn assets_are_served_with_types_and_unknown_ones_are_404() {
        for (file, ty) in [
            ("app.css", "text/css"),
            ("common.js", "text/javascript"),
            ("feed.js", "text/javascript"),
        ] {
            let (status, body, ctype) = get(&format!("/assets/{file}")).await;
            assert_eq!(status, StatusCode::OK, "{file}");
            assert!(ctype.unwrap_or_default().starts_with(ty), "{file}");
            assert!(!body.is_empty());
        }
        let (status, _, _) = get("/assets/../Cargo.toml").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get("/assets/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn pages_may_connect_to_their_own_origin_only() {
        let res = ui_router::<()>()
            .oneshot(
                Request::get("/app/login")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        let csp = res
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let connect = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("connect-src"))
            .unwrap_or_default();
        assert_eq!(connect, "connect-src 'self'", "{csp}");
    }

    #[tokio::test]
    async fn root_redirects_to_the_ticket_list() {
        let (status, _, _) = get("/").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
}

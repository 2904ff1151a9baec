//! A matrix of bad tokens: each is answered 401 in the contract's format,
//! on reads and on commands, and nothing is appended.

mod http_common;

use base64::Engine;
use event_store::both_stores;
use http_common::{error_code, Backend, TestServer, SECRET};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

// A throwaway Ed25519 key pair, generated for this test only.
const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDp8g7D6rpWIk7lg36yS1ohvWIvjxSGbt1kq9tyu8Ow+\n-----END PRIVATE KEY-----\n";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Base64url without padding, as JWT segments are written.
fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("sign")
}

fn with(mut v: Value, k: &str, x: Value) -> Value {
    v[k] = x;
    v
}

fn without(mut v: Value, k: &str) -> Value {
    v.as_object_mut().expect("object").remove(k);
    v
}

both_stores!(bad_token_matrix_is_401_and_appends_nothing);
async fn bad_token_matrix_is_401_and_appends_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let cast = server.cast("demo");
    let ticket = server.create_ticket(&cast.alice.1, "target").await;
    let alice = &cast.alice.0;
    let claims = json!({
        "sub": alice.id.to_string(), "tenant": "demo", "role": "admin",
        "exp": now() + 600, "iat": now(), "iss": "ticketlog", "aud": "ticketlog"
    });
    let good = sign(&claims);
    let parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let header_hs = parts[0].clone();
    let payload = |v: &Value| b64(serde_json::to_string(v).expect("json").as_bytes());

    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"JWT"}"#),
                payload(&claims)
            ),
        ),
        (
            "alg none with signature",
            format!(
                "{}.{}.{}",
                b64(br#"{"alg":"none"}"#),
                payload(&claims),
                parts[2]
            ),
        ),
        (
            "wrong alg HS512",
            encode(
                &Header::new(Algorithm::HS512),
                &claims,
                &EncodingKey::from_secret(SECRET),
            )
            .expect("sign"),
        ),
        (
            "wrong alg EdDSA",
            encode(
                &Header::new(Algorithm::EdDSA),
                &claims,
                &EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).expect("key"),
            )
            .expect("sign"),
        ),
        (
            "wrong key",
            encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(b"some-other-secret-some-other-secret"),
            )
            .expect("sign"),
        ),
        (
            "tampered payload",
            format!(
                "{header_hs}.{}.{}",
                payload(&with(claims.clone(), "tenant", json!("acme"))),
                parts[2]
            ),
        ),
        (
            "tampered signature",
            format!(
                "{header_hs}.{}.{}",
                parts[1],
                b64(b"not the signature at all, really")
            ),
        ),
        (
            "expired",
            sign(&with(claims.clone(), "exp", json!(now() - 3600))),
        ),
        ("missing exp", sign(&without(claims.clone(), "exp"))),
        ("missing sub", sign(&without(claims.clone(), "sub"))),
        ("missing aud", sign(&without(claims.clone(), "aud"))),
        ("missing iss", sign(&without(claims.clone(), "iss"))),
        ("missing tenant", sign(&without(claims.clone(), "tenant"))),
        ("missing role", sign(&without(claims.clone(), "role"))),
        (
            "wrong aud",
            sign(&with(claims.clone(), "aud", json!("someone-else"))),
        ),
        (
            "wrong iss",
            sign(&with(claims.clone(), "iss", json!("evil-idp"))),
        ),
        (
            "string exp",
            sign(&with(
                claims.clone(),
                "exp",
                json!((now() + 600).to_string()),
            )),
        ),
        (
            "unknown role",
            sign(&with(claims.clone(), "role", json!("superuser"))),
        ),
        (
            "non-uuid sub",
            sign(&with(claims.clone(), "sub", json!("alice"))),
        ),
        (
            "nil-tenant",
            sign(&with(claims.clone(), "tenant", json!(""))),
        ),
        (
            "not yet valid",
            sign(&with(claims.clone(), "nbf", json!(now() + 3600))),
        ),
        ("two segments", format!("{}.{}", parts[0], parts[1])),
        ("four segments", format!("{good}.{}", parts[2])),
        (
            "bad base64",
            format!("{}.{}$$.{}", parts[0], parts[1], parts[2]),
        ),
        (
            "16 KiB token",
            sign(&with(claims.clone(), "pad", json!("x".repeat(16 * 1024)))),
        ),
        ("garbage", "garbage".into()),
        ("random uuid", Uuid::now_v7().to_string()),
    ];
    assert!(cases.len() >= 20);
    let head = server.head().await;
    let comment = format!("/api/v1/tickets/{ticket}/comments");
    for (name, token) in &cases {
        for (method, path, body) in [
            (
                Method::POST,
                comment.as_str(),
                Some(json!({"body": "sneaky"})),
            ),
            (
                Method::POST,
                "/api/v1/tickets",
                Some(http_common::ticket_body("sneaky")),
            ),
            (Method::GET, "/api/v1/tickets", None),
        ] {
            let (status, headers, b) = server.send(method, path, Some(token), body, &[]).await;
            assert_eq!(status, 401, "{name} on {path}: {b}");
            assert_eq!(error_code(&b), "unauthorized", "{name}");
            assert!(
                headers.get("www-authenticate").is_some(),
                "{name}: WWW-Authenticate"
            );
        }
    }
    // Header shapes other than a bearer token.
    for header in ["Basic YWxpY2U6ZGVtbw==", "Bearer", "Bearer ", &good.clone()] {
        let resp = server
            .client
            .post(server.url(&comment))
            .header("authorization", header)
            .json(&json!({"body": "sneaky"}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 401, "{header}");
    }
    assert_eq!(server.head().await, head, "no bad token appended anything");
    // The good token works (so the matrix failed for the right reasons).
    let (s, b) = server.post(&comment, &good, json!({"body": "fine"})).await;
    assert_eq!(s, 200, "{b}");
    server.stop().await;
}

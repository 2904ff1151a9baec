//! Every connection has its timeouts: a raw socket for each, against a
//! server started with short ones (the defaults are checked on `--help`).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{self, ServerChild};

/// The short timeout the servers under test are given, seconds.
const SHORT_SECS: &str = "1";
/// A timeout that must not be the one that fires, seconds.
const LONG_SECS: &str = "30";
/// How long after its timeout a connection may still be open.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

/// `serve` with the header read, body read, idle and WebSocket handshake
/// timeouts given (seconds).
async fn serve_with_timeouts(
    data: &std::path::Path,
    [header, body, idle, ws]: [&str; 4],
) -> ServerChild {
    support::serve(
        data,
        &[
            "--header-read-timeout-secs",
            header,
            "--body-read-timeout-secs",
            body,
            "--idle-timeout-secs",
            idle,
            "--ws-handshake-timeout-secs",
            ws,
        ],
    )
    .await
}

/// Reads until the server closes the connection; returns what it sent and
/// when it closed. Fails if it is still open after `bound`.
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> (String, Instant) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed_at = tokio::time::timeout(bound, read_all)
        .await
        .unwrap_or_else(|_| panic!("still open after {bound:?}"));
    (String::from_utf8_lossy(&got).into_owned(), closed_at)
}

async fn connect(server: &ServerChild) -> TcpStream {
    TcpStream::connect(&server.addr).await.expect("connect")
}

/// The JSON body of a raw HTTP/1.1 answer.
fn json_body(answer: &str) -> serde_json::Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// Starts a server with `timeouts`, sends `request` on a new connection
/// and reads until the server closes it; returns the answer and the time
/// from the request to the close.
async fn send_until_closed(timeouts: [&str; 4], request: &[u8]) -> (String, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve_with_timeouts(dir.path(), timeouts).await;
    let mut stream = connect(&server).await;
    let sent = Instant::now();
    stream.write_all(request).await.expect("write");
    let (answer, closed) = read_until_closed(&mut stream, CLOSE_BOUND).await;
    support::stop(server).await;
    (answer, closed - sent)
}

/// Asserts a 408 with the JSON error object.
fn assert_408(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert_eq!(
        json_body(answer)["error"]["code"],
        "request_timeout",
        "{answer}"
    );
}

#[tokio::test]
async fn headers_without_their_blank_line_are_closed_after_the_header_read_timeout() {
    let timeouts = [SHORT_SECS, LONG_SECS, LONG_SECS, LONG_SECS];
    let request = b"GET /healthz HTTP/1.1\r\nHost: ticketlog\r\n";
    let (answer, open_for) = send_until_closed(timeouts, request).await;
    assert_eq!(answer, "", "no answer to a request never finished");
    assert!(open_for >= Duration::from_millis(900), "closed early");
}

#[tokio::test]
async fn a_body_short_of_its_length_gets_408_and_the_connection_closes() {
    let timeouts = [LONG_SECS, SHORT_SECS, LONG_SECS, LONG_SECS];
    let request = b"POST /api/v1/auth/token HTTP/1.1\r\nHost: ticketlog\r\n\
        Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"tenant\":";
    let (answer, _) = send_until_closed(timeouts, request).await;
    assert_408(&answer);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let timeouts = [LONG_SECS, LONG_SECS, SHORT_SECS, LONG_SECS];
    let request = b"GET /healthz HTTP/1.1\r\nHost: ticketlog\r\n\r\n";
    let (answer, _) = send_until_closed(timeouts, request).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert_eq!(json_body(&answer)["status"], "ok", "{answer}");
}

/// A WebSocket upgrade request for `/ws` (no token: the session would
/// close with 4001, after the handshake).
const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: ticketlog\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

#[tokio::test]
async fn a_websocket_handshake_past_its_timeout_gets_408_and_a_prompt_one_upgrades() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        serve_with_timeouts(dir.path(), [LONG_SECS, LONG_SECS, LONG_SECS, SHORT_SECS]).await;
    let mut prompt = connect(&server).await;
    prompt.write_all(UPGRADE).await.expect("write");
    let mut head = [0u8; 12];
    prompt.read_exact(&mut head).await.expect("answer");
    assert_eq!(&head, b"HTTP/1.1 101");
    // A client that connects and takes longer than the handshake timeout
    // to ask for the upgrade (its headers are still within theirs).
    let mut slow = connect(&server).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    slow.write_all(UPGRADE).await.expect("write");
    let (answer, _) = read_until_closed(&mut slow, CLOSE_BOUND).await;
    assert_408(&answer);
    support::stop(server).await;
}

#[test]
fn the_default_timeouts_are_10_30_60_and_10_seconds() {
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--help"])
        .output()
        .expect("serve --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, default) in [
        ("--header-read-timeout-secs", "10"),
        ("--body-read-timeout-secs", "30"),
        ("--idle-timeout-secs", "60"),
        ("--ws-handshake-timeout-secs", "10"),
    ] {
        let at = help
            .find(flag)
            .unwrap_or_else(|| panic!("{flag} in {help}"));
        let entry = &help[at + flag.len()..];
        let entry = &entry[..entry.find("\n  -").unwrap_or(entry.len())];
        assert!(
            entry.contains(&format!("[default: {default}]")),
            "{flag}: {entry}"
        );
    }
}

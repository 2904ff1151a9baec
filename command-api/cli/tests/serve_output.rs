//! What `ticketlog serve` writes for a person (issue 15): a log sent to a
//! pipe carries no ANSI colour codes, and `--demo`'s greeting names the
//! console's address beside the curl line.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::BIN;

/// How long the server may take to seed the demo and start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The log line that says the server is up.
const LISTENING: &str = "ticketlog listening";
/// The greeting's last line.
const GREETING_LAST: &str = "Then: curl";

/// Kills the child when the test ends, passing or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of `stream`, sent as they come.
fn lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lines of `rx` up to and including the first that contains `until`.
fn read_until(rx: &mpsc::Receiver<String>, until: &str, what: &str) -> Vec<String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(until);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(e) => panic!("{what}: no line with {until:?} ({e}); got {seen:#?}"),
        }
    }
}

/// `ticketlog serve` with a text log, stdout and stderr piped, `extra`
/// flags after the usual ones; the child is killed when the guard drops.
fn serve(
    extra: &[&str],
) -> (
    Killed,
    mpsc::Receiver<String>,
    mpsc::Receiver<String>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("data dir");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ticketlog serve");
    let stdout = lines(child.stdout.take().expect("stdout"));
    let stderr = lines(child.stderr.take().expect("stderr"));
    (Killed(child), stdout, stderr, dir)
}

#[test]
fn a_piped_text_log_has_no_colours() {
    let (_child, _stdout, stderr, _dir) = serve(&[]);
    let log = read_until(&stderr, LISTENING, "stderr").join("\n");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a piped log: {log:?}"
    );
    assert!(log.contains(" INFO "), "the text format: {log}");
}

#[test]
fn the_demo_greeting_names_the_console() {
    let (_child, stdout, _stderr, _dir) = serve(&["--demo"]);
    let greeting = read_until(&stdout, GREETING_LAST, "stdout").join("\n");
    // The address the server bound, as the curl line shows it.
    let curl = greeting
        .split("/api/v1/auth/token")
        .next()
        .and_then(|before| before.rsplit("http://").next())
        .expect("the curl line");
    assert!(curl.starts_with("127.0.0.1:"), "{greeting}");
    assert!(
        greeting.contains(&format!("http://{curl}/app/login")),
        "{greeting}"
    );
}

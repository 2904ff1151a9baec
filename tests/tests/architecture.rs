//! ARCHITECTURE.md stays true: every path it names exists.
//!
//! The map is only useful while it matches the tree; a file moved or
//! renamed without updating the map fails this test instead of misleading
//! the next reader. Paths are written from the repository root
//! (`command-api/src/http/routes/commands.rs`, not `commands.rs`), so a
//! bare file name fails too.

use std::path::{Path, PathBuf};

/// Extensions that mark a backticked span as a file name even without a `/`.
const FILE_EXTENSIONS: &[&str] = &[
    "rs", "md", "toml", "js", "css", "html", "sh", "py", "sql", "bin", "svg", "json", "lock",
];

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The backticked spans of `text`, in order.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Whether a code span names a path in the tree (as opposed to a route
/// such as `GET /ws`, a room such as `ticket:<id>` or an identifier).
fn names_a_path(span: &str) -> bool {
    let looks_like_other = span.is_empty()
        || span.starts_with('/')
        || span.starts_with('.') && !span.starts_with("./") && !span.starts_with(".ci")
        || span
            .chars()
            .any(|c| c.is_whitespace() || ":<>{}()*=?,\"'|&;$".contains(c));
    if looks_like_other {
        return false;
    }
    let has_extension = Path::new(span)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| FILE_EXTENSIONS.contains(&e));
    span.contains('/') || has_extension
}

/// The paths ARCHITECTURE.md names that do not exist.
fn missing_paths(doc: &str, root: &Path) -> Vec<String> {
    code_spans(doc)
        .into_iter()
        .filter(|s| names_a_path(s))
        .filter(|s| !root.join(s.trim_end_matches('/')).exists())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_path_in_architecture_md_exists() {
    let root = repository_root();
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("read ARCHITECTURE.md");
    let named = code_spans(&doc)
        .into_iter()
        .filter(|s| names_a_path(s))
        .count();
    assert!(
        named >= 20,
        "ARCHITECTURE.md names only {named} paths: is it still the map?"
    );
    let missing = missing_paths(&doc, &root);
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist (write them from the repository root): {missing:?}"
    );
}

#[test]
fn the_check_catches_a_moved_file_and_a_bare_name() {
    let root = repository_root();
    let doc = "`event-store/src/store.rs` holds the trait; `store.rs` is a bare name; \
               `event-store/src/no_such_file.rs` moved; `GET /ws` and `ticket:<id>` are not paths.";
    assert_eq!(
        missing_paths(doc, &root),
        vec![
            "store.rs".to_string(),
            "event-store/src/no_such_file.rs".to_string()
        ]
    );
}

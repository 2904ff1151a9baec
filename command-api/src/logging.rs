//! Log output: tracing with an env filter (`RUST_LOG`), text or JSON lines.

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?} (text, json)")),
        }
    }
}

/// Whether log lines get ANSI colours: only on a terminal. A file or a pipe
/// (systemd, `2> log`, a test harness) would otherwise keep escape codes
/// that make the text hard to read and to grep.
pub fn ansi_colours(writer_is_terminal: bool) -> bool {
    writer_is_terminal
}

/// Installs the global subscriber; `default_filter` applies without `RUST_LOG`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi_colours(std::io::stderr().is_terminal()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal() {
        assert!(ansi_colours(true));
        assert!(!ansi_colours(false));
    }
}

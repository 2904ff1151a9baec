//! Numbers a process's `/proc/<pid>/status` gives (Linux), for `/metrics`
//! and for the benchmarks that watch a `serve` child.

/// Which process to read.
#[derive(Debug, Clone, Copy)]
pub enum Pid {
    /// This process (`/proc/self`).
    This,
    /// Another one.
    Of(u32),
}

/// The first number of field `name` (such as `"VmRSS:"`, in KiB, or
/// `"Threads:"`), or `None` where it cannot be read (not Linux, the
/// process ended).
pub fn status_field(pid: Pid, name: &str) -> Option<u64> {
    let path = match pid {
        Pid::This => "/proc/self/status".to_string(),
        Pid::Of(pid) => format!("/proc/{pid}/status"),
    };
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident set size in bytes.
pub fn rss_bytes(pid: Pid) -> Option<u64> {
    status_field(pid, "VmRSS:").map(|kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_set_and_threads() {
        assert!(rss_bytes(Pid::This).is_some_and(|b| b > 0));
        assert!(status_field(Pid::Of(std::process::id()), "Threads:").is_some_and(|n| n >= 1));
        assert_eq!(status_field(Pid::This, "NoSuchField:"), None);
    }
}

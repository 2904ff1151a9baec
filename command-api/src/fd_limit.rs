//! The open-files limit: a server holding thousands of WebSocket
//! connections (and the bench holding their client ends) needs more
//! descriptors than the usual soft limit of 1,024.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The open-files limit after [`raise_to_hard`].
#[derive(Debug, Clone, Copy)]
pub struct NofileLimit {
    /// Soft limit now in force (`None`: unlimited).
    pub soft: Option<u64>,
    /// Hard limit (`None`: unlimited).
    pub hard: Option<u64>,
}

impl NofileLimit {
    /// Whether `needed` descriptors fit under the soft limit.
    pub fn allows(&self, needed: u64) -> bool {
        self.soft.is_none_or(|soft| soft >= needed)
    }
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit (children
/// inherit it). Failing to raise it is not an error: the old limit stays.
pub fn raise_to_hard() -> NofileLimit {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "could not raise the open-files limit");
        }
    }
    let now = getrlimit(Resource::Nofile);
    NofileLimit {
        soft: now.current,
        hard: now.maximum,
    }
}

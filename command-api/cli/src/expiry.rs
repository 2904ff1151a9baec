//! The server's dispatch clock: every `EXPIRE_INTERVAL_SECS` it times out
//! dispatch requests nobody answered, which re-dispatches their tickets
//! (`CommandService::expire_overdue`). The decision stays in the write
//! model; this task only supplies the time.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use command_api::service::CommandService;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Seconds between two looks for overdue dispatch requests (a request times
/// out at most this late after its deadline).
pub const EXPIRE_INTERVAL_SECS: u64 = 5;

/// The running task; [`Expiry::stop`] ends it after its current pass.
pub struct Expiry {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Starts the periodic expiry on the current runtime.
pub fn spawn(service: Arc<CommandService>) -> Expiry {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(EXPIRE_INTERVAL_SECS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tick.tick() => {}
            }
            match service.expire_overdue(Utc::now()).await {
                Ok(expired) => {
                    for e in expired {
                        tracing::info!(
                            dispatch = %e.dispatch_id,
                            ticket = %e.ticket_id,
                            technician = %e.technician,
                            redispatched = ?e.redispatched,
                            "dispatch request timed out"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "expiring overdue dispatch requests failed"),
            }
        }
    });
    Expiry { stop, task }
}

impl Expiry {
    /// Stops the task and waits for its current pass to finish (so no
    /// expiry is appending while the store closes).
    pub async fn stop(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "dispatch expiry task failed");
        }
    }
}

//! Per-tenant sequential ticket numbers, unique under concurrency.
//!
//! Each tenant has a counter stream whose version is the last number
//! handed out: allocating appends `TicketNumberAllocated { number: n }` at
//! exactly version n-1, so two allocations can never get the same number
//! (optimistic concurrency is the store's promise, on any backend). The
//! allocation's command id derives from the create command's id, so a
//! retried create gets its first number back instead of a new one.

use event_store::{
    Actor, AppendRequest, EventPayload, EventStore, ExpectedVersion, NewEvent, Principal,
    StoreError, StreamId, TicketId,
};
use uuid::Uuid;

use super::error::ServiceError;
use super::key::CommandKey;

/// Namespace of the uuid v5 ids derived by the service.
pub(super) const SERVICE_NAMESPACE: Uuid =
    Uuid::from_u128(0x5c1b_6a4e_8f0d_4b7e_9a3c_2d1e_0f4a_7b6c);
/// Most rounds an allocation retries on conflicts before giving up (each
/// round some allocation wins, so this bounds only pathological contention).
pub const ALLOCATION_ATTEMPTS_MAX: usize = 512;

/// Most tenants whose allocation lock is kept; past it, idle locks are
/// dropped (a dropped lock only costs fairness, never uniqueness).
pub const TENANT_LOCKS_MAX: usize = 10_000;

/// One fair async lock per tenant, for in-process allocations.
#[derive(Default)]
pub struct TenantLocks {
    locks:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl TenantLocks {
    /// The lock of `tenant`.
    pub fn of(&self, tenant: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.locks.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if locks.len() >= TENANT_LOCKS_MAX && !locks.contains_key(tenant) {
            locks.retain(|_, lock| std::sync::Arc::strong_count(lock) > 1);
        }
        locks.entry(tenant.to_string()).or_default().clone()
    }
}

/// The counter stream of `tenant`.
pub fn counter_stream(tenant: &str) -> StreamId {
    Uuid::new_v5(
        &SERVICE_NAMESPACE,
        format!("ticketlog/tenant-counter/{tenant}").as_bytes(),
    )
}

/// The allocation command id of the create command `command_id`.
pub fn allocation_command(command_id: Uuid) -> Uuid {
    Uuid::new_v5(
        &SERVICE_NAMESPACE,
        format!("ticketlog/allocate/{command_id}").as_bytes(),
    )
}

/// Takes the next number of the principal's tenant for `ticket`, for the
/// create command `create`. Returns the number and the ticket it was
/// allocated for (on a retried create, the ticket id of the first attempt).
pub async fn allocate(
    store: &dyn EventStore,
    principal: &Principal,
    ticket: TicketId,
    create: CommandKey,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(u64, TicketId), ServiceError> {
    let command_id = create.id;
    let stream = counter_stream(&principal.tenant);
    let allocation = allocation_command(command_id);
    let mut version = store.stream_version(stream).await?;
    for _ in 0..ALLOCATION_ATTEMPTS_MAX {
        let request = AppendRequest {
            stream_id: stream,
            expected: ExpectedVersion::Exact(version),
            events: vec![NewEvent::new(EventPayload::TicketNumberAllocated {
                number: version + 1,
                ticket,
            })],
            command_id: allocation,
            // Bound to the create's request: a retry of that create under
            // the same key with another body is refused here too.
            request_fingerprint: create.fingerprint,
            correlation_id: command_id,
            tenant: principal.tenant.clone(),
            actor: Actor {
                user_id: principal.user_id,
                role: principal.role,
            },
            recorded_at: at,
        };
        match store.append(request).await {
            Ok(outcome) if !outcome.duplicate => return Ok((outcome.version, ticket)),
            Ok(outcome) => return first_allocation(store, stream, outcome.version, ticket).await,
            Err(StoreError::Conflict { actual, .. }) => version = actual,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Unavailable(
        "ticket number allocation kept conflicting".into(),
    ))
}

/// The number and ticket of an earlier allocation at `version`.
async fn first_allocation(
    store: &dyn EventStore,
    stream: StreamId,
    version: u64,
    fallback: TicketId,
) -> Result<(u64, TicketId), ServiceError> {
    let events = store.read_stream(stream, version, 1).await?;
    match events.first().map(|e| &e.payload) {
        Some(EventPayload::TicketNumberAllocated { number, ticket }) => Ok((*number, *ticket)),
        _ => Ok((version, fallback)),
    }
}

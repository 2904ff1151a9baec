//! The command service: the one way commands reach the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use event_store::{
    Actor, AppendOutcome, AppendRequest, EventPayload, EventStore, ExpectedVersion, NewEvent,
    Principal, StoreError, StreamId, TicketId,
};
use snapshots::{Loaded, SnapshotStore};
use uuid::Uuid;

use super::error::ServiceError;
use super::fleet::FleetIndex;
use super::numbers;
use crate::domain::limits::TRAVEL_SPEED_KMH_DEFAULT;
use crate::domain::{decide, Action, AppliedCommand, Command, DomainError, Target, TicketState};

/// Most stream states kept in memory between commands (the whole cache is
/// dropped when full: simple, bounded, and only ever costs a reload).
pub const STATE_CACHE_STREAMS_MAX: usize = 4096;

/// Default for [`ServiceConfig::attempts_max`].
pub const COMMAND_ATTEMPTS_MAX_DEFAULT: usize = 64;

/// Tunables of the command service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceConfig {
    /// Average technician travel speed for dispatch ETAs.
    pub speed_kmh: f64,
    /// Most times a command without `If-Match` is re-decided on fresh state
    /// after losing a race (each loss means someone else's command won).
    pub attempts_max: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            speed_kmh: TRAVEL_SPEED_KMH_DEFAULT,
            attempts_max: COMMAND_ATTEMPTS_MAX_DEFAULT,
        }
    }
}

/// Loads a stream's state (snapshot + tail), decides, appends at the
/// version it decided on. A command never succeeds on stale state: on a
/// version conflict it is re-decided on the fresh state (or, with
/// `If-Match`, refused with 409).
pub struct CommandService {
    store: Arc<dyn EventStore>,
    snapshots: SnapshotStore,
    fleet: Arc<FleetIndex>,
    config: ServiceConfig,
    /// States folded earlier; a load only reads the events appended since.
    cache: Mutex<HashMap<StreamId, Loaded<TicketState>>>,
}

impl CommandService {
    /// A service over `store`, keeping ticket snapshots in `snapshots`.
    pub fn new(
        store: Arc<dyn EventStore>,
        snapshots: SnapshotStore,
        config: ServiceConfig,
    ) -> Self {
        CommandService {
            store,
            snapshots,
            fleet: Arc::new(FleetIndex::new()),
            config,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The event store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The dispatch and technician index.
    pub fn fleet(&self) -> &Arc<FleetIndex> {
        &self.fleet
    }

    /// The state of stream `stream` with its version (no visibility check):
    /// the cached state or the latest snapshot, plus the stream's tail.
    pub async fn load(&self, stream: StreamId) -> Result<Loaded<TicketState>, ServiceError> {
        let store = self.store.as_ref();
        let cached = self.cache_guard().get(&stream).cloned();
        let loaded = match cached {
            Some(from) => self.snapshots.catch_up(store, stream, from).await?,
            None => self.snapshots.load::<TicketState>(store, stream).await?,
        };
        if loaded.version > 0 {
            let mut cache = self.cache_guard();
            if cache.len() >= STATE_CACHE_STREAMS_MAX && !cache.contains_key(&stream) {
                cache.clear();
            }
            let newer = cache
                .get(&stream)
                .is_none_or(|c| c.version < loaded.version);
            if newer {
                cache.insert(stream, loaded.clone());
            }
        }
        Ok(loaded)
    }

    /// The state cache; every write is a single insert or a clear, so a
    /// lock poisoned by a panic elsewhere still holds consistent entries.
    fn cache_guard(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Loaded<TicketState>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ticket `id` as the write model sees it, if `principal` may see it
    /// (else `NotFound`, whether it exists or not).
    pub async fn ticket(
        &self,
        principal: &Principal,
        id: TicketId,
    ) -> Result<TicketState, ServiceError> {
        let loaded = self.load(id).await?;
        let visible = loaded.state.ticket.is_some()
            && event_store::can_see_stream(principal, &loaded.state.audience);
        if visible {
            Ok(loaded.state)
        } else {
            Err(DomainError::NotFound.into())
        }
    }

    /// Executes `action` for `principal`. `command_id` is the idempotency
    /// key (a retry returns the first outcome with `duplicate: true` and
    /// appends nothing); `expected` is the client's `If-Match` version.
    pub async fn execute(
        &self,
        principal: &Principal,
        action: Action,
        command_id: Uuid,
        expected: Option<u64>,
    ) -> Result<AppendOutcome, ServiceError> {
        let mut command = Command {
            principal: principal.clone(),
            at: Utc::now(),
            action,
        };
        if let Action::AssignDispatch(a) = &mut command.action {
            a.speed_kmh = self.config.speed_kmh;
            a.technicians = self
                .fleet
                .technicians(self.store.as_ref(), &principal.tenant)
                .await?;
        }
        match command.target() {
            Target::NewTicket(id) => self.create(command, id, command_id, expected).await,
            Target::Ticket(id) | Target::Technician(id) => {
                self.on_stream(id, &command, command_id, expected).await
            }
            Target::Dispatch(dispatch) => {
                match self.fleet.ticket_of(self.store.as_ref(), dispatch).await? {
                    Some(ticket) => self.on_stream(ticket, &command, command_id, expected).await,
                    None => Err(DomainError::NotFound.into()),
                }
            }
        }
    }

    /// Load, decide, append on an existing (or technician) stream.
    async fn on_stream(
        &self,
        stream: StreamId,
        command: &Command,
        command_id: Uuid,
        expected: Option<u64>,
    ) -> Result<AppendOutcome, ServiceError> {
        let mut last = ServiceError::VersionConflict {
            expected: expected.unwrap_or(0),
            actual: 0,
        };
        for _ in 0..self.config.attempts_max.max(1) {
            let loaded = self.load(stream).await?;
            if let Some(applied) = loaded.state.applied(command_id) {
                return Ok(duplicate(stream, applied));
            }
            if let Some(v) = expected {
                if v != loaded.version {
                    return Err(ServiceError::VersionConflict {
                        expected: v,
                        actual: loaded.version,
                    });
                }
            }
            let events = decide(&loaded.state, command)?;
            if events.is_empty() {
                // Nothing changes: answer with where the stream stands.
                return Ok(AppendOutcome {
                    stream_id: stream,
                    version: loaded.version,
                    first_position: loaded.state.position,
                    position: loaded.state.position,
                    duplicate: false,
                });
            }
            match self
                .append(stream, loaded.version, events, command, command_id)
                .await
            {
                Ok(outcome) => return Ok(outcome),
                Err(StoreError::Conflict { actual, .. }) => {
                    last = ServiceError::VersionConflict {
                        expected: loaded.version,
                        actual,
                    };
                    if expected.is_some() {
                        return Err(last);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last)
    }

    /// Creating a ticket: validate first (so a refused create takes no
    /// number), allocate the number, then append the ticket's first event.
    async fn create(
        &self,
        mut command: Command,
        ticket_id: TicketId,
        command_id: Uuid,
        expected: Option<u64>,
    ) -> Result<AppendOutcome, ServiceError> {
        let loaded = self.load(ticket_id).await?;
        if let Some(applied) = loaded.state.applied(command_id) {
            return Ok(duplicate(ticket_id, applied));
        }
        if let Some(v) = expected.filter(|v| *v != loaded.version) {
            return Err(ServiceError::VersionConflict {
                expected: v,
                actual: loaded.version,
            });
        }
        decide(&loaded.state, &command)?;
        let (number, ticket) = numbers::allocate(
            self.store.as_ref(),
            &command.principal,
            ticket_id,
            command_id,
            command.at,
        )
        .await?;
        let loaded = if ticket == ticket_id {
            loaded
        } else {
            // A retry of a create whose first attempt chose another id.
            let loaded = self.load(ticket).await?;
            if let Some(applied) = loaded.state.applied(command_id) {
                return Ok(duplicate(ticket, applied));
            }
            loaded
        };
        if let Action::CreateTicket(c) = &mut command.action {
            c.number = number;
            c.ticket_id = ticket;
        }
        let events = decide(&loaded.state, &command)?;
        self.append(ticket, loaded.version, events, &command, command_id)
            .await
            .map_err(ServiceError::from)
    }

    async fn append(
        &self,
        stream: StreamId,
        version: u64,
        events: Vec<EventPayload>,
        command: &Command,
        command_id: Uuid,
    ) -> Result<AppendOutcome, StoreError> {
        self.store
            .append(AppendRequest {
                stream_id: stream,
                expected: ExpectedVersion::Exact(version),
                events: events.into_iter().map(NewEvent::new).collect(),
                command_id,
                correlation_id: command_id,
                tenant: command.principal.tenant.clone(),
                actor: Actor {
                    user_id: command.principal.user_id,
                    role: command.principal.role,
                },
                recorded_at: command.at,
            })
            .await
    }
}

fn duplicate(stream: StreamId, applied: AppliedCommand) -> AppendOutcome {
    AppendOutcome {
        stream_id: stream,
        version: applied.version,
        first_position: applied.first_position,
        position: applied.position,
        duplicate: true,
    }
}

//! The command service: the one way commands reach the log.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use event_store::{
    reader_stream_id, same_request, Actor, AppendOutcome, AppendRequest, DispatchId, EventPayload,
    EventStore, ExpectedVersion, NewEvent, Principal, Priority, RecordedEvent, StoreError,
    StreamId, Tenant, TicketId, TicketKind, UserId, Visibility,
};
use snapshots::{Loaded, SnapshotStore};
use uuid::Uuid;

use super::error::ServiceError;
use super::fleet::FleetIndex;
use super::key::CommandKey;
use super::members::{Members, StaticMembers};
use super::numbers;
use super::outcome::{Appended, CommandOutcome, Created};
use super::system::{derived_command, system_principal, FollowUpKind};
use crate::domain::decide::read;
use crate::domain::limits::{DISPATCH_ANSWER_TIMEOUT_SECS_DEFAULT, TRAVEL_SPEED_KMH_DEFAULT};
use crate::domain::{
    check_create, decide, Action, AppliedCommand, AssignDispatch, Command, Context, DispatchPhase,
    DispatchResponse, DomainError, ExpireDispatch, RecordRead, Target, TicketState,
};

/// Most stream states kept in memory between commands (the whole cache is
/// dropped when full: simple, bounded, and only ever costs a reload).
pub const STATE_CACHE_STREAMS_MAX: usize = 4096;

/// Default for [`ServiceConfig::attempts_max`].
pub const COMMAND_ATTEMPTS_MAX_DEFAULT: usize = 64;

/// Most overdue dispatch requests one [`CommandService::expire_overdue`]
/// call expires (the rest wait for the next tick), so a tick stays short.
pub const EXPIRE_DISPATCHES_PER_CALL_MAX: usize = 256;

/// Tunables of the command service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// Average technician travel speed for dispatch ETAs.
    pub speed_kmh: f64,
    /// Most times a command without `If-Match` is re-decided on fresh state
    /// after losing a race (each loss means someone else's command won).
    pub attempts_max: usize,
    /// How long a technician has to answer a dispatch request before
    /// [`CommandService::expire_overdue`] passes it to the next nearest.
    pub dispatch_timeout_secs: u64,
    /// Whether critical incidents with a location are dispatched on
    /// creation, for tenants not named in `auto_dispatch_tenants`.
    pub auto_dispatch_default: bool,
    /// Per-tenant override of `auto_dispatch_default`.
    pub auto_dispatch_tenants: BTreeMap<Tenant, bool>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            speed_kmh: TRAVEL_SPEED_KMH_DEFAULT,
            attempts_max: COMMAND_ATTEMPTS_MAX_DEFAULT,
            dispatch_timeout_secs: DISPATCH_ANSWER_TIMEOUT_SECS_DEFAULT,
            auto_dispatch_default: true,
            auto_dispatch_tenants: BTreeMap::new(),
        }
    }
}

impl ServiceConfig {
    /// Whether `tenant`'s critical incidents are dispatched on creation.
    pub fn auto_dispatches(&self, tenant: &str) -> bool {
        self.auto_dispatch_tenants
            .get(tenant)
            .copied()
            .unwrap_or(self.auto_dispatch_default)
    }
}

/// A request [`CommandService::expire_overdue`] timed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredDispatch {
    /// The request that timed out.
    pub dispatch_id: DispatchId,
    /// Its ticket.
    pub ticket_id: TicketId,
    /// The technician who did not answer.
    pub technician: UserId,
    /// The dispatch to the next nearest (or broadcast), when one was made.
    pub redispatched: Option<DispatchId>,
}

/// What the service does on its own after a command succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowUp {
    /// Dispatch a new critical incident to the nearest technician.
    AutoDispatch,
    /// Dispatch to the next nearest after `after` was declined or timed out.
    Redispatch { after: DispatchId },
}

/// Loads a stream's state (snapshot + tail), decides, appends at the
/// version it decided on. A command never succeeds on stale state: on a
/// version conflict it is re-decided on the fresh state (or, with
/// `If-Match`, refused with 409).
pub struct CommandService {
    store: Arc<dyn EventStore>,
    snapshots: SnapshotStore,
    fleet: Arc<FleetIndex>,
    /// Whom commands may name to take work (looked up per command).
    members: Arc<dyn Members>,
    config: ServiceConfig,
    /// States folded earlier; a load only reads the events appended since.
    cache: Mutex<HashMap<StreamId, Loaded<TicketState>>>,
    /// Held from reading the fleet to appending by every command that
    /// changes it (dispatches, answers, completions, locations), so a
    /// choice is made on the fleet exactly as the log has it before the
    /// choice's event: replaying the log re-makes every choice, and no
    /// technician is sent on two dispatches by racing commands.
    fleet_lock: tokio::sync::Mutex<()>,
    /// Serializes this process's ticket-number allocations per tenant.
    /// Optimistic concurrency alone keeps numbers unique, but with many
    /// concurrent creates one of them can lose every round and starve;
    /// tokio's mutex is fair (FIFO), so in-process creates never conflict.
    number_locks: numbers::TenantLocks,
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
            members: Arc::new(StaticMembers::default()),
            config,
            cache: Mutex::new(HashMap::new()),
            fleet_lock: tokio::sync::Mutex::new(()),
            number_locks: numbers::TenantLocks::default(),
        }
    }

    /// The service asking `members` who may be named as an assignee or a
    /// technician (without one, nobody may: every assignment is refused).
    pub fn with_members(mut self, members: Arc<dyn Members>) -> Self {
        self.members = members;
        self
    }

    /// The service's configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The event store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The log's head position (the last event's), for health checks and
    /// read-your-writes waits.
    pub async fn log_head(&self) -> Result<u64, StoreError> {
        self.store.head().await
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
        if loaded.version > 0 && self.cache_wants(stream, loaded.version) {
            self.cache_insert(stream, loaded.clone());
        }
        Ok(loaded)
    }

    /// Whether the cache holds nothing as new as `version` of `stream`.
    fn cache_wants(&self, stream: StreamId, version: u64) -> bool {
        self.cache_guard()
            .get(&stream)
            .is_none_or(|c| c.version < version)
    }

    /// Caches `loaded` unless the cache already holds a newer state.
    fn cache_insert(&self, stream: StreamId, loaded: Loaded<TicketState>) {
        let mut cache = self.cache_guard();
        if cache.len() >= STATE_CACHE_STREAMS_MAX && !cache.contains_key(&stream) {
            cache.clear();
        }
        let newer = cache
            .get(&stream)
            .is_none_or(|c| c.version < loaded.version);
        if newer {
            cache.insert(stream, loaded);
        }
    }

    /// Caches the state `loaded` advanced by the records of a successful
    /// append on it, so the next command on the stream reads nothing back.
    fn remember(
        &self,
        stream: StreamId,
        loaded: Loaded<TicketState>,
        records: &[Arc<RecordedEvent>],
    ) {
        if records.is_empty() {
            return;
        }
        match self
            .snapshots
            .advance(stream, loaded, records.iter().map(Arc::as_ref))
        {
            Ok(advanced) => self.cache_insert(stream, advanced),
            // Not the next events of this state: the next load reads the log.
            Err(e) => tracing::debug!(%stream, error = %e, "appended records not cached"),
        }
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

    /// Whether `principal` may record the receipt `c` now (see
    /// [`read::check`]): the ticket's state, the log's event at the
    /// position and the reader's stream decide; `pending` is a later
    /// position accepted for the same reader and ticket but not yet stored.
    /// Answers the visibility of the event read.
    pub async fn check_read(
        &self,
        principal: &Principal,
        c: &RecordRead,
        pending: u64,
    ) -> Result<Visibility, ServiceError> {
        let ticket = self.load(c.ticket_id).await?.state;
        let named = match c.position {
            0 => None,
            p => self.store.read_all(p, 1).await?.into_iter().next(),
        };
        let reader = reader_stream_id(&principal.tenant, principal.user_id);
        let stored = self.load(reader).await?.state.read_up_to;
        let last = stored.get(&c.ticket_id).copied().unwrap_or(0).max(pending);
        Ok(read::check(&ticket, named.as_ref(), last, principal, c)?)
    }

    /// Executes `action` for `principal`. `command_id` is the idempotency
    /// key (a retry appends nothing and answers with the first attempt's
    /// positions and ids, as [`Appended::Earlier`]); `expected` is the
    /// client's `If-Match` version.
    ///
    /// Some commands have a follow-up the service issues itself, as the
    /// system actor, with a command id derived from `command_id` (so a
    /// retry never doubles it): a critical incident with a location is
    /// dispatched on creation (per [`ServiceConfig::auto_dispatches`]), and
    /// a declined request goes to the next nearest technician. The answer
    /// is the command's own outcome; a failed follow-up is logged, never
    /// turned into the command's failure (its events are acknowledged).
    pub async fn execute(
        &self,
        principal: &Principal,
        action: Action,
        key: impl Into<CommandKey>,
        expected: Option<u64>,
    ) -> Result<CommandOutcome, ServiceError> {
        self.execute_at(principal, action, key, expected, Utc::now())
            .await
    }

    /// [`CommandService::execute`] decided at `at` instead of now (the
    /// service's timer and tests pass their own clock).
    ///
    /// A principal who is shown no versions (`Principal::sees_versions`)
    /// may not send one: its `If-Match` is refused as malformed, and a
    /// conflict it meets is [`ServiceError::Contended`], without versions.
    pub async fn execute_at(
        &self,
        principal: &Principal,
        action: Action,
        key: impl Into<CommandKey>,
        expected: Option<u64>,
        at: DateTime<Utc>,
    ) -> Result<CommandOutcome, ServiceError> {
        let sees_versions = principal.sees_versions();
        if expected.is_some() && !sees_versions {
            return Err(DomainError::invalid(
                "If-Match",
                "versions are not shown to this principal; send no If-Match",
            )
            .into());
        }
        self.execute_with_follow_up(principal, action, key.into(), expected, at)
            .await
            .map(|(outcome, _)| outcome)
            .map_err(|e| match e {
                ServiceError::VersionConflict { .. } if !sees_versions => ServiceError::Contended,
                other => other,
            })
    }

    /// Times out every dispatch request unanswered for
    /// [`ServiceConfig::dispatch_timeout_secs`] at `now` (at most
    /// [`EXPIRE_DISPATCHES_PER_CALL_MAX`] per call, oldest first): records
    /// `DispatchDeclined { reason: "timeout" }` by the system actor and
    /// dispatches the ticket to the next nearest technician. Meant to be
    /// called periodically; calling it twice for the same request, or
    /// racing the technician's answer, appends nothing more.
    pub async fn expire_overdue(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<ExpiredDispatch>, ServiceError> {
        let overdue = self
            .fleet
            .overdue_dispatches(self.store.as_ref(), now, self.config.dispatch_timeout_secs)
            .await?;
        let mut expired = Vec::new();
        for o in overdue.into_iter().take(EXPIRE_DISPATCHES_PER_CALL_MAX) {
            let action = Action::ExpireDispatch(ExpireDispatch {
                dispatch_id: o.dispatch_id,
            });
            let command_id = derived_command(FollowUpKind::Expire, o.dispatch_id);
            let principal = system_principal(&o.tenant);
            match self
                .execute_with_follow_up(&principal, action, command_id.into(), None, now)
                .await
            {
                Ok((_, redispatched)) => expired.push(ExpiredDispatch {
                    dispatch_id: o.dispatch_id,
                    ticket_id: o.ticket_id,
                    technician: o.technician,
                    redispatched,
                }),
                // The ticket moved on meanwhile (answered, or gone): nothing to expire.
                Err(ServiceError::Domain(e)) => {
                    tracing::debug!(dispatch = %o.dispatch_id, error = %e, "dispatch not expired");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    /// Executes the command, then its follow-up; returns the command's
    /// outcome and the follow-up's dispatch, if one was made.
    async fn execute_with_follow_up(
        &self,
        principal: &Principal,
        action: Action,
        key: CommandKey,
        expected: Option<u64>,
        at: DateTime<Utc>,
    ) -> Result<(CommandOutcome, Option<DispatchId>), ServiceError> {
        let follow_up = self.follow_up_of(principal, &action);
        let outcome = self
            .execute_one(principal, action, key, expected, at)
            .await?;
        let command_id = key.id;
        let Some(follow_up) = follow_up else {
            return Ok((outcome, None));
        };
        match self
            .run_follow_up(principal, follow_up, outcome.stream_id, command_id, at)
            .await
        {
            Ok(dispatched) => Ok((outcome, dispatched)),
            Err(error) => {
                tracing::warn!(
                    ticket = %outcome.stream_id,
                    %command_id,
                    ?follow_up,
                    %error,
                    "follow-up dispatch failed; the command itself succeeded"
                );
                Ok((outcome, None))
            }
        }
    }

    /// The follow-up `action` calls for, if any.
    fn follow_up_of(&self, principal: &Principal, action: &Action) -> Option<FollowUp> {
        match action {
            Action::CreateTicket(c) => {
                let located = c
                    .location
                    .as_ref()
                    .is_some_and(|l| (l.lat.is_some() && l.lon.is_some()) || l.site.is_some());
                (c.priority == Priority::Critical
                    && c.kind == TicketKind::Incident
                    && located
                    && self.config.auto_dispatches(&principal.tenant))
                .then_some(FollowUp::AutoDispatch)
            }
            Action::RespondDispatch(r) if r.response == DispatchResponse::Decline => {
                Some(FollowUp::Redispatch {
                    after: r.dispatch_id,
                })
            }
            Action::ExpireDispatch(e) => Some(FollowUp::Redispatch {
                after: e.dispatch_id,
            }),
            _ => None,
        }
    }

    /// Dispatches `ticket` to the nearest available technician as the
    /// system actor, if it still calls for it: for an auto-dispatch, the
    /// ticket has never been dispatched; for a re-dispatch, its latest
    /// dispatch is still the declined one (else someone already acted, or
    /// this is a retry whose follow-up already ran).
    async fn run_follow_up(
        &self,
        principal: &Principal,
        follow_up: FollowUp,
        ticket: TicketId,
        cause: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<DispatchId>, ServiceError> {
        let kind = match follow_up {
            FollowUp::AutoDispatch => FollowUpKind::AutoDispatch,
            FollowUp::Redispatch { .. } => FollowUpKind::Redispatch,
        };
        let command_id = derived_command(kind, cause);
        let state = self.load(ticket).await?.state;
        if state.applied(command_id).is_none() {
            let Some(t) = state.ticket.as_ref() else {
                return Ok(None);
            };
            let due = match follow_up {
                FollowUp::AutoDispatch => t.dispatches.is_empty(),
                FollowUp::Redispatch { after } => t
                    .dispatches
                    .last()
                    .is_some_and(|d| d.id == after && d.phase == DispatchPhase::Declined),
            };
            if !due || t.active_dispatch().is_some() {
                return Ok(None);
            }
        }
        // A re-dispatch searches as far as the declined request did.
        let radius_km = match follow_up {
            FollowUp::AutoDispatch => None,
            FollowUp::Redispatch { after } => state
                .ticket
                .as_ref()
                .and_then(|t| t.dispatches.iter().find(|d| d.id == after))
                .map(|d| d.radius_km),
        };
        let action = Action::AssignDispatch(AssignDispatch {
            ticket_id: ticket,
            dispatch_id: Uuid::now_v7(),
            technician_id: None,
            radius_km,
        });
        let system = system_principal(&principal.tenant);
        let outcome = self
            .execute_one(&system, action, command_id.into(), None, at)
            .await?;
        Ok(outcome.created.dispatch_id)
    }

    /// One command: gather what the service knows, load, decide, append.
    async fn execute_one(
        &self,
        principal: &Principal,
        action: Action,
        key: CommandKey,
        expected: Option<u64>,
        at: DateTime<Utc>,
    ) -> Result<CommandOutcome, ServiceError> {
        let command = Command {
            principal: principal.clone(),
            at,
            action,
        };
        let _fleet_guard = if changes_fleet(&command.action) {
            Some(self.fleet_lock.lock().await)
        } else {
            None
        };
        let mut context = Context {
            ticket_number: None,
            fleet: Vec::new(),
            speed_kmh: self.config.speed_kmh,
            dispatch_timeout_secs: self.config.dispatch_timeout_secs,
            members: BTreeMap::new(),
        };
        if let Some(user) = command.action.named_user() {
            if let Some(role) = self.members.role_in(&principal.tenant, user)? {
                context.members.insert(user, role);
            }
        }
        if let Action::AssignDispatch(_) = &command.action {
            context.fleet = self
                .fleet
                .technicians(self.store.as_ref(), &principal.tenant)
                .await?;
        }
        match command.target() {
            Target::NewTicket(id) => self.create(command, context, id, key, expected).await,
            Target::Ticket(id) | Target::Technician(id) => {
                self.on_stream(id, &command, &context, key, expected).await
            }
            Target::Reader(stream) => {
                // No receipt is stored unchecked against its ticket.
                if let Action::RecordRead(c) = &command.action {
                    self.check_read(principal, c, 0).await?;
                }
                self.on_stream(stream, &command, &context, key, expected)
                    .await
            }
            Target::Dispatch(dispatch) => {
                match self.fleet.ticket_of(self.store.as_ref(), dispatch).await? {
                    Some(ticket) => {
                        self.on_stream(ticket, &command, &context, key, expected)
                            .await
                    }
                    None => Err(DomainError::NotFound.into()),
                }
            }
        }
    }

    /// Load, decide, append on an existing (or technician) stream.
    ///
    /// The first try decides on the cached state without asking the store
    /// whether it is still current: its append at the cached version
    /// succeeds only if it was (the store checks the version under its
    /// lock), so a decision that lands was made on the true state. Any other
    /// outcome of a cached try (a conflict, a refusal, nothing to do, an
    /// `If-Match` that differs) is decided again on a fresh load before it
    /// is answered: another process may have appended since.
    async fn on_stream(
        &self,
        stream: StreamId,
        command: &Command,
        context: &Context,
        key: CommandKey,
        expected: Option<u64>,
    ) -> Result<CommandOutcome, ServiceError> {
        let mut last = ServiceError::VersionConflict {
            expected: expected.unwrap_or(0),
            actual: 0,
        };
        let mut cached = self.cache_guard().get(&stream).cloned();
        let mut attempts = 0;
        while attempts < self.config.attempts_max.max(1) {
            let from_cache = cached.is_some();
            let loaded = match cached.take() {
                Some(loaded) => loaded,
                None => {
                    attempts += 1;
                    self.load(stream).await?
                }
            };
            if let Some(applied) = loaded.state.applied(key.id) {
                return self.retried(stream, applied, key).await;
            }
            if let Some(v) = expected {
                if v != loaded.version {
                    if from_cache {
                        continue;
                    }
                    return Err(ServiceError::VersionConflict {
                        expected: v,
                        actual: loaded.version,
                    });
                }
            }
            let events = match decide(&loaded.state, command, context) {
                Ok(events) if !(events.is_empty() && from_cache) => events,
                Err(refused) if !from_cache => return Err(refused.into()),
                _ => continue,
            };
            if events.is_empty() {
                // Nothing changes: answer with where the stream stands.
                return Ok(CommandOutcome {
                    stream_id: stream,
                    version: loaded.version,
                    first_position: loaded.state.position,
                    position: loaded.state.position,
                    appended: Appended::Nothing,
                    created: Created::default(),
                });
            }
            let version = loaded.version;
            match self.append(stream, loaded, events, command, key).await {
                Ok(outcome) => return Ok(outcome),
                Err(AppendError::Store(StoreError::Conflict { actual, .. })) => {
                    last = ServiceError::VersionConflict {
                        expected: version,
                        actual,
                    };
                    if expected.is_some() && !from_cache {
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
        mut context: Context,
        ticket_id: TicketId,
        key: CommandKey,
        expected: Option<u64>,
    ) -> Result<CommandOutcome, ServiceError> {
        // The number is allocated on another stream before the ticket's
        // first event: a key used for another request must be refused
        // before that, or the refusal would leave a number taken.
        if let Some(prior) = self.store.find_command(key.id).await? {
            if !same_request(prior.request_fingerprint.as_ref(), key.fingerprint.as_ref()) {
                return Err(ServiceError::IdempotencyKeyReused);
            }
        }
        let loaded = self.load(ticket_id).await?;
        if let Some(applied) = loaded.state.applied(key.id) {
            return self.retried(ticket_id, applied, key).await;
        }
        if let Some(v) = expected.filter(|v| *v != loaded.version) {
            return Err(ServiceError::VersionConflict {
                expected: v,
                actual: loaded.version,
            });
        }
        if let Action::CreateTicket(c) = &command.action {
            check_create(&loaded.state, &command.principal, c)?;
        }
        let tenant_lock = self.number_locks.of(&command.principal.tenant);
        let _allocating = tenant_lock.lock().await;
        let (number, ticket) = numbers::allocate(
            self.store.as_ref(),
            &command.principal,
            ticket_id,
            key,
            command.at,
        )
        .await?;
        let loaded = if ticket == ticket_id {
            loaded
        } else {
            // A retry of a create whose first attempt chose another id.
            let loaded = self.load(ticket).await?;
            if let Some(applied) = loaded.state.applied(key.id) {
                return self.retried(ticket, applied, key).await;
            }
            loaded
        };
        if let Action::CreateTicket(c) = &mut command.action {
            c.ticket_id = ticket;
        }
        context.ticket_number = Some(number);
        let events = decide(&loaded.state, &command, &context)?;
        self.append(ticket, loaded, events, &command, key)
            .await
            .map_err(ServiceError::from)
    }

    /// The outcome of a command an earlier attempt applied at `applied`:
    /// its positions, and the ids its events name (read back from the log,
    /// as this attempt's own ids were never used). Refused when the earlier
    /// attempt answered another request under the same key.
    async fn retried(
        &self,
        stream: StreamId,
        applied: AppliedCommand,
        key: CommandKey,
    ) -> Result<CommandOutcome, ServiceError> {
        // One command's events are appended together: contiguous positions.
        let count = applied.position.saturating_sub(applied.first_position) + 1;
        let first_version = applied.version.saturating_sub(count - 1).max(1);
        let records = self
            .store
            .read_stream(stream, first_version, count as usize)
            .await?;
        let first: Vec<&RecordedEvent> = records
            .iter()
            .filter(|r| r.command_id == applied.command_id)
            .collect();
        let same = first
            .iter()
            .all(|r| same_request(r.request_fingerprint.as_ref(), key.fingerprint.as_ref()));
        if !same {
            return Err(ServiceError::IdempotencyKeyReused);
        }
        let payloads = first.iter().map(|r| &r.payload);
        Ok(CommandOutcome {
            stream_id: stream,
            version: applied.version,
            first_position: applied.first_position,
            position: applied.position,
            appended: Appended::Earlier,
            created: Created::of(stream, payloads),
        })
    }

    /// Appends `events` on top of `loaded` (at exactly its version) and
    /// caches the state they lead to. A version conflict comes back as the
    /// store's error, so [`CommandService::on_stream`] can re-decide.
    async fn append(
        &self,
        stream: StreamId,
        loaded: Loaded<TicketState>,
        events: Vec<EventPayload>,
        command: &Command,
        key: CommandKey,
    ) -> Result<CommandOutcome, AppendError> {
        let command_id = key.id;
        let appended = self
            .store
            .append_recorded(AppendRequest {
                stream_id: stream,
                expected: ExpectedVersion::Exact(loaded.version),
                events: events.into_iter().map(NewEvent::new).collect(),
                command_id,
                request_fingerprint: key.fingerprint,
                correlation_id: command_id,
                tenant: command.principal.tenant.clone(),
                actor: Actor {
                    user_id: command.principal.user_id,
                    role: command.principal.role,
                },
                recorded_at: command.at,
            })
            .await?;
        let AppendOutcome {
            stream_id: appended_to,
            version,
            first_position,
            position,
            duplicate,
        } = appended.outcome;
        if duplicate {
            // The store knew the command id (its first attempt raced this
            // one, or appended to another stream: it answers from there).
            let applied = AppliedCommand {
                command_id,
                version,
                first_position,
                position,
            };
            return self
                .retried(appended_to, applied, key)
                .await
                .map_err(AppendError::Service);
        }
        let created = Created::of(stream, appended.records.iter().map(|r| &r.payload));
        let events = appended.records.len();
        self.remember(stream, loaded, &appended.records);
        Ok(CommandOutcome {
            stream_id: stream,
            version,
            first_position,
            position,
            appended: Appended::Now { events },
            created,
        })
    }
}

/// Why an append failed: the store refused it (a conflict can be
/// re-decided), or reading back a retry's first attempt failed.
enum AppendError {
    Store(StoreError),
    Service(ServiceError),
}

impl From<StoreError> for AppendError {
    fn from(e: StoreError) -> Self {
        AppendError::Store(e)
    }
}

impl From<AppendError> for ServiceError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Store(e) => e.into(),
            AppendError::Service(e) => e,
        }
    }
}

/// Whether `action`'s events can change a technician's position or
/// availability (the input of every dispatch choice).
fn changes_fleet(action: &Action) -> bool {
    matches!(
        action,
        Action::AssignDispatch(_)
            | Action::RespondDispatch(_)
            | Action::ProgressDispatch(_)
            | Action::ReportLocation(_)
            | Action::ExpireDispatch(_)
    )
}

//! The writer: group commit of concurrent appends through the log head.
//!
//! One task per store drains up to `BATCH_APPENDS_MAX` queued appends and
//! carries them in ONE transaction: it locks the single `log_head` row
//! (`FOR UPDATE`) and, in the same round trip, reads the heads of the
//! batch's streams and the outcomes of its command ids; it checks every
//! append in order against that state as the batch changes it (so one
//! append's conflict fails it alone), writes the accepted records, stream
//! heads, command outcomes and the new head, and answers only once COMMIT
//! returned (`synchronous_commit = on`).
//!
//! Why the lock and not a sequence: PostgreSQL makes a commit visible
//! before it releases the transaction's locks, so with every writer of
//! every process queued on the head row, positions become visible in
//! order and without gaps, and a reader tailing `position > N` never skips
//! an event that commits late.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Row, Statement};
use uuid::Uuid;

use crate::appending::{self, AppendReply, StreamHead, WriterMsg};
use crate::codec;
use crate::error::StoreError;
use crate::limits::{
    BATCH_APPENDS_MAX, PG_HEAD_LOCK_TIMEOUT_MILLIS, PG_OUTCOME_LOOKUP_WAIT_MILLIS,
    PG_RECONNECT_PAUSE_MILLIS, RECORD_BYTES_MAX,
};
use crate::record::{AppendOutcome, AppendRequest, Appended, Hash, PriorCommand};
use crate::schema::{StreamId, StreamKind};

use super::batch_rows::BatchRows;
use super::rows::{col, hash_of, kind_from_name, prior_command};
use super::session::{connect, is_db_answer};
use super::NOTIFY_CHANNEL;

/// Statement parameters, kept in locals so pipelined futures can borrow them.
pub(super) type Params<'a, const N: usize> = [&'a (dyn ToSql + Sync); N];

// The statements of an append, shared with `import` so that an imported
// log has exactly the rows its appends would have written.

/// Locks the log head: (position, hash).
pub(super) const LOCK_HEAD_SQL: &str = "SELECT position, hash FROM log_head FOR UPDATE";
/// The heads of streams `$1`: (stream_id, version, kind, tenant).
pub(super) const SELECT_STREAMS_SQL: &str =
    "SELECT stream_id, version, kind, tenant FROM streams WHERE stream_id = ANY($1)";
/// Inserts records: positions, streams, versions, command ids, bytes.
pub(super) const INSERT_EVENTS_SQL: &str =
    "INSERT INTO events (position, stream_id, stream_version, command_id, record) \
     SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::uuid[], $5::bytea[])";
/// Inserts first outcomes: command ids, streams, first positions, last
/// positions, last versions, request fingerprints.
pub(super) const INSERT_COMMANDS_SQL: &str =
    "INSERT INTO commands (command_id, stream_id, first_position, position, version, \
     request_fingerprint) SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], \
     $4::bigint[], $5::bigint[], $6::bytea[])";
/// Inserts new streams: ids, versions, kinds, tenants.
pub(super) const INSERT_STREAMS_SQL: &str =
    "INSERT INTO streams (stream_id, version, kind, tenant) \
     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[])";
/// Moves stream heads: ids, versions read, new versions.
pub(super) const UPDATE_STREAMS_SQL: &str = "UPDATE streams s SET version = u.version \
     FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS u(stream_id, old, version) \
     WHERE s.stream_id = u.stream_id AND s.version = u.old";
/// Moves the log head: new position, new hash, position read.
pub(super) const SET_HEAD_SQL: &str =
    "UPDATE log_head SET position = $1, hash = $2 WHERE position = $3";

/// The writer's session with its prepared statements.
struct Session {
    client: Client,
    head: Statement,
    streams: Statement,
    commands: Statement,
    insert_events: Statement,
    insert_commands: Statement,
    insert_streams: Statement,
    update_streams: Statement,
    set_head: Statement,
    notify: Statement,
}

impl Session {
    async fn open(config: &Config) -> Result<Session, StoreError> {
        let client = connect(config).await?;
        // Waiting on a head held by a dead writer ends once the server
        // notices (keepalives, idle timeout); the batch must not wait longer.
        client
            .batch_execute(&format!("SET lock_timeout = {PG_HEAD_LOCK_TIMEOUT_MILLIS}"))
            .await?;
        let (head, streams, commands, insert_events, insert_commands) = futures::try_join!(
            client.prepare(LOCK_HEAD_SQL),
            client.prepare(SELECT_STREAMS_SQL),
            client.prepare(
                "SELECT command_id, stream_id, first_position, position, version, \
                 request_fingerprint FROM commands WHERE command_id = ANY($1)"
            ),
            client.prepare(INSERT_EVENTS_SQL),
            client.prepare(INSERT_COMMANDS_SQL),
        )?;
        let (insert_streams, update_streams, set_head, notify) = futures::try_join!(
            client.prepare(INSERT_STREAMS_SQL),
            client.prepare(UPDATE_STREAMS_SQL),
            client.prepare(SET_HEAD_SQL),
            client.prepare("SELECT pg_notify($1, $2)"),
        )?;
        Ok(Session {
            client,
            head,
            streams,
            commands,
            insert_events,
            insert_commands,
            insert_streams,
            update_streams,
            set_head,
            notify,
        })
    }
}

/// The single writer of one store.
pub(crate) struct Writer {
    config: Config,
    session: Option<Session>,
    /// Wakes the tailer after each commit.
    tail: Arc<Notify>,
}

/// An append of the batch with its stream kind (shape already checked).
struct Pending {
    req: AppendRequest,
    kind: StreamKind,
    reply: AppendReply,
}

/// The state a batch is checked against, as it changes append by append.
struct Running {
    head: u64,
    hash: Hash,
    /// Stream heads: as the database has them, then as the batch leaves them.
    streams: HashMap<StreamId, Option<StreamHead>>,
    /// Versions the database has for the batch's streams (0: none).
    stored_versions: HashMap<StreamId, u64>,
    /// First outcomes of the batch's command ids: stored, or appended by
    /// the batch (then `true`).
    commands: HashMap<Uuid, (PriorCommand, bool)>,
}

/// A batch checked and encoded, not yet committed.
#[derive(Default)]
struct Staged {
    /// One answer per pending append, in order.
    results: Vec<Result<Appended, StoreError>>,
    /// Whether each answer holds only if the batch commits (it appended,
    /// or it replays an append of this batch).
    depends: Vec<bool>,
    positions: Vec<i64>,
    streams: Vec<Uuid>,
    versions: Vec<i64>,
    commands: Vec<Uuid>,
    records: Vec<Vec<u8>>,
    /// The accepted appends: outcome, command id, fingerprint.
    outcomes: Vec<(AppendOutcome, Uuid, Option<Hash>)>,
    /// Stream heads the batch moves: (stream, version stored, new head).
    stream_heads: Vec<(StreamId, u64, StreamHead)>,
    start_head: u64,
    head: u64,
    hash: Hash,
}

/// How a batch failed.
enum Failure {
    /// Nothing was committed.
    NotCommitted(StoreError),
    /// The connection dropped during COMMIT: it may have happened.
    CommitLost(Box<Staged>, StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::NotCommitted(e.into())
    }
}

impl Writer {
    pub(crate) fn new(config: Config, tail: Arc<Notify>) -> Writer {
        Writer {
            config,
            session: None,
            tail,
        }
    }

    /// Runs until the queue closes or a `Close` arrives.
    pub(crate) async fn run(mut self, mut queue: mpsc::Receiver<WriterMsg>) {
        let mut msgs = Vec::with_capacity(BATCH_APPENDS_MAX);
        loop {
            if queue.recv_many(&mut msgs, BATCH_APPENDS_MAX).await == 0 {
                return;
            }
            let (appends, close) = appending::sort_messages(msgs.drain(..));
            if !appends.is_empty() {
                self.commit(appends).await;
            }
            if let Some(reply) = close {
                appending::refuse_queued(&mut queue);
                let _ = reply.send(Ok(()));
                return;
            }
        }
    }

    /// The writer's session, opened (again) if needed.
    async fn session(&mut self) -> Result<&Session, StoreError> {
        if self.session.as_ref().is_some_and(|s| s.client.is_closed()) {
            self.session = None;
        }
        if self.session.is_none() {
            self.session = Some(Session::open(&self.config).await?);
        }
        self.session
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("no database session".into()))
    }

    /// Checks, writes and commits one batch, then replies.
    async fn commit(&mut self, appends: Vec<(Box<AppendRequest>, AppendReply)>) {
        let mut pending = Vec::with_capacity(appends.len());
        for (req, reply) in appends {
            match appending::validate_shape(&req) {
                Ok(kind) => pending.push(Pending {
                    req: *req,
                    kind,
                    reply,
                }),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        if pending.is_empty() {
            return;
        }
        let results = match self.attempt(&pending).await {
            Ok(staged) => {
                if !staged.outcomes.is_empty() {
                    self.tail.notify_one();
                }
                staged.results
            }
            Err(Failure::NotCommitted(e)) => {
                if self.session.as_ref().is_some_and(|s| s.client.is_closed()) {
                    self.session = None;
                }
                vec![Err(e); pending.len()]
            }
            Err(Failure::CommitLost(staged, e)) => {
                self.session = None;
                tracing::warn!(error = %e, "connection lost during COMMIT; looking the batch up");
                match self.resolve(&staged).await {
                    Ok(true) => {
                        self.tail.notify_one();
                        staged.results
                    }
                    Ok(false) => staged.fail_dependents(&e),
                    Err(unknown) => staged.fail_dependents(&unknown),
                }
            }
        };
        for (p, result) in pending.into_iter().zip(results) {
            let _ = p.reply.send(result);
        }
    }

    /// One try at the batch: lock the head and look up, check and encode,
    /// write, commit.
    async fn attempt(&mut self, pending: &[Pending]) -> Result<Staged, Failure> {
        let session = self.session().await.map_err(Failure::NotCommitted)?;
        let client = &session.client;
        let stream_ids: Vec<Uuid> = pending.iter().map(|p| p.req.stream_id).collect();
        let command_ids: Vec<Uuid> = pending.iter().map(|p| p.req.command_id).collect();
        // One round trip: BEGIN, the head lock, then the lookups under it.
        let (streams_p, commands_p): (Params<1>, Params<1>) = ([&stream_ids], [&command_ids]);
        let looked_up = futures::try_join!(
            client.batch_execute("BEGIN"),
            client.query_one(&session.head, &[]),
            client.query(&session.streams, &streams_p),
            client.query(&session.commands, &commands_p),
        );
        let (_, head, streams, commands) = match looked_up {
            Ok(rows) => rows,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(e.into());
            }
        };
        let running = match running_state(&head, &streams, &commands) {
            Ok(r) => r,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(Failure::NotCommitted(e));
            }
        };
        let staged = stage(pending, running);
        if staged.outcomes.is_empty() {
            client.batch_execute("ROLLBACK").await?;
            return Ok(staged);
        }
        if let Err(e) = write(session, &staged).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(Failure::NotCommitted(e));
        }
        match client.batch_execute("COMMIT").await {
            Ok(()) => Ok(staged),
            Err(e) if is_db_answer(&e) => Err(e.into()),
            Err(e) => Err(Failure::CommitLost(Box::new(staged), e.into())),
        }
    }

    /// Whether a batch whose COMMIT lost its connection is in the log:
    /// reconnects, waits for the head lock (the old session's transaction
    /// has ended by then, one way or the other) and looks the command ids
    /// up. `OutcomeUnknown` if that cannot be done in time.
    async fn resolve(&mut self, staged: &Staged) -> Result<bool, StoreError> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(PG_OUTCOME_LOOKUP_WAIT_MILLIS);
        let ids: Vec<Uuid> = staged.outcomes.iter().map(|(_, id, _)| *id).collect();
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            let looked_up = tokio::time::timeout_at(deadline, async {
                let session = self.session().await?;
                let client = &session.client;
                let ids_p: Params<1> = [&ids];
                let found = futures::try_join!(
                    client.batch_execute("BEGIN"),
                    client.query_one(&session.head, &[]),
                    client.query(&session.commands, &ids_p),
                );
                let _ = client.batch_execute("ROLLBACK").await;
                let (_, _, rows) = found?;
                let mut firsts = HashMap::new();
                for row in &rows {
                    let prior = prior_command(row)?;
                    firsts.insert(col::<Uuid>(row, 0)?, prior.outcome.first_position);
                }
                Ok::<_, StoreError>(firsts)
            })
            .await;
            match looked_up {
                Ok(Ok(firsts)) => {
                    let committed = staged
                        .outcomes
                        .iter()
                        .filter(|(outcome, id, _)| firsts.get(id) == Some(&outcome.first_position));
                    let n = committed.count();
                    if n == staged.outcomes.len() {
                        return Ok(true);
                    }
                    if n == 0
                        && staged
                            .outcomes
                            .iter()
                            .all(|(_, id, _)| !firsts.contains_key(id))
                    {
                        return Ok(false);
                    }
                    return Err(StoreError::OutcomeUnknown(
                        "the batch is partly in the log under other positions".into(),
                    ));
                }
                Ok(Err(e)) => {
                    self.session = None;
                    last = e.to_string();
                }
                Err(_) => break,
            }
            tokio::time::sleep(Duration::from_millis(PG_RECONNECT_PAUSE_MILLIS)).await;
        }
        Err(StoreError::OutcomeUnknown(format!(
            "the connection dropped during COMMIT and the batch could not be looked up \
             within {PG_OUTCOME_LOOKUP_WAIT_MILLIS} ms: {last}"
        )))
    }
}

impl Staged {
    /// The answers when the batch did not commit (or may not have): `e`
    /// for every append whose answer depended on it.
    fn fail_dependents(self, e: &StoreError) -> Vec<Result<Appended, StoreError>> {
        self.results
            .into_iter()
            .zip(self.depends)
            .map(|(r, depends)| if depends { Err(e.clone()) } else { r })
            .collect()
    }
}

/// The batch's starting state from the locked head and the lookups.
fn running_state(head: &Row, streams: &[Row], commands: &[Row]) -> Result<Running, StoreError> {
    let position = col::<i64>(head, 0)? as u64;
    let hash = hash_of(col::<Vec<u8>>(head, 1)?, 0)?;
    let mut running = Running {
        head: position,
        hash,
        streams: HashMap::new(),
        stored_versions: HashMap::new(),
        commands: HashMap::new(),
    };
    for row in streams {
        let id: Uuid = col(row, 0)?;
        let version = col::<i64>(row, 1)? as u64;
        let head = StreamHead {
            version,
            kind: kind_from_name(&col::<String>(row, 2)?)?,
            tenant: col(row, 3)?,
        };
        running.streams.insert(id, Some(head));
        running.stored_versions.insert(id, version);
    }
    for row in commands {
        running
            .commands
            .insert(col(row, 0)?, (prior_command(row)?, false));
    }
    Ok(running)
}

/// Checks every append in order against the running state, as the batch
/// changes it, and encodes the accepted ones. A refused append changes
/// nothing and fails alone.
fn stage(pending: &[Pending], mut running: Running) -> Staged {
    let mut staged = Staged {
        start_head: running.head,
        ..Staged::default()
    };
    for p in pending {
        let (result, depends) = stage_one(p, &mut running, &mut staged);
        staged.results.push(result);
        staged.depends.push(depends);
    }
    staged.head = running.head;
    staged.hash = running.hash;
    // The stream heads the batch leaves, for `write`.
    for (id, head) in running.streams {
        let Some(head) = head else { continue };
        let stored = running.stored_versions.get(&id).copied().unwrap_or(0);
        if head.version != stored {
            staged.stream_heads.push((id, stored, head));
        }
    }
    staged
}

fn stage_one(
    p: &Pending,
    running: &mut Running,
    staged: &mut Staged,
) -> (Result<Appended, StoreError>, bool) {
    let req = &p.req;
    if let Some((first, in_batch)) = running.commands.get(&req.command_id) {
        let answer = appending::replay(req, *first).map(|outcome| Appended {
            outcome,
            records: Vec::new(),
        });
        return (answer, *in_batch);
    }
    let head = running.streams.get(&req.stream_id).cloned().flatten();
    let actual = match appending::check_stream(req, p.kind, head.as_ref()) {
        Ok(v) => v,
        Err(e) => return (Err(e), false),
    };
    let mut prev_hash = running.hash;
    let mut records = Vec::with_capacity(req.events.len());
    let mut encoded = Vec::with_capacity(req.events.len());
    for (i, ev) in req.events.iter().enumerate() {
        let at = i as u64 + 1;
        let mut rec =
            appending::new_record(req, ev.clone(), running.head + at, actual + at, prev_hash);
        let (bytes, hash) = match codec::encode(&rec) {
            Ok(b) => b,
            Err(e) => return (Err(e), false),
        };
        if bytes.len() > RECORD_BYTES_MAX {
            return (
                Err(StoreError::Invalid(format!(
                    "event {i} encodes to {} bytes, more than {RECORD_BYTES_MAX}",
                    bytes.len()
                ))),
                false,
            );
        }
        rec.hash = hash;
        prev_hash = hash;
        encoded.push(bytes);
        records.push(Arc::new(rec));
    }
    let count = records.len() as u64;
    let outcome = AppendOutcome {
        stream_id: req.stream_id,
        version: actual + count,
        first_position: running.head + 1,
        position: running.head + count,
        duplicate: false,
    };
    for (rec, bytes) in records.iter().zip(encoded) {
        staged.positions.push(rec.position as i64);
        staged.streams.push(rec.stream_id);
        staged.versions.push(rec.stream_version as i64);
        staged.commands.push(rec.command_id);
        staged.records.push(bytes);
    }
    staged
        .outcomes
        .push((outcome, req.command_id, req.request_fingerprint));
    running.head += count;
    running.hash = prev_hash;
    running.streams.insert(
        req.stream_id,
        Some(StreamHead {
            version: outcome.version,
            kind: p.kind,
            tenant: req.tenant.clone(),
        }),
    );
    running.commands.insert(
        req.command_id,
        (
            PriorCommand {
                outcome,
                request_fingerprint: req.request_fingerprint,
            },
            true,
        ),
    );
    (Ok(Appended { outcome, records }), true)
}

/// Writes a staged batch inside the open transaction (one round trip),
/// checking that every stream head moved from where it was read.
async fn write(session: &Session, staged: &Staged) -> Result<(), StoreError> {
    let client = &session.client;
    let mut rows = BatchRows::default();
    for (outcome, id, fingerprint) in &staged.outcomes {
        rows.command(
            *id,
            outcome.stream_id,
            (outcome.first_position, outcome.position),
            outcome.version,
            fingerprint.as_ref(),
        );
    }
    for (id, stored, head) in &staged.stream_heads {
        rows.stream_head(*id, *stored, head.version, head.kind, &head.tenant);
    }
    let head = staged.head as i64;
    let start = staged.start_head as i64;
    let hash = staged.hash.to_vec();
    let head_text = staged.head.to_string();
    let events_p: Params<5> = [
        &staged.positions,
        &staged.streams,
        &staged.versions,
        &staged.commands,
        &staged.records,
    ];
    let (commands_p, new_p, up_p) = (rows.commands(), rows.new_streams(), rows.moved_streams());
    let head_p: Params<3> = [&head, &hash, &start];
    let notify_p: Params<2> = [&NOTIFY_CHANNEL, &head_text];
    let (_, _, _, updated, moved, _) = futures::try_join!(
        client.execute(&session.insert_events, &events_p),
        client.execute(&session.insert_commands, &commands_p),
        client.execute(&session.insert_streams, &new_p),
        client.execute(&session.update_streams, &up_p),
        client.execute(&session.set_head, &head_p),
        client.query_one(&session.notify, &notify_p),
    )?;
    rows.check_moved(updated, moved)
}

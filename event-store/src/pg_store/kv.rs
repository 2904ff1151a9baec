//! Side trees on PostgreSQL: every tree is the rows of the `kv` table with
//! its name, ordered by key (`bytea` compares bytewise, as sled's keys do).
//!
//! [`KvTree`] is synchronous, as sled is, and its callers run on tokio's
//! threads, where a runtime cannot be blocked on. So the trees' statements
//! run on a few threads of their own ([`PG_KV_SESSIONS`]), each with its own
//! session and a single-threaded runtime; a caller hands its statement over
//! a bounded queue and waits for the answer. Every call is one statement or
//! one transaction, committed with `synchronous_commit` on before it
//! answers: `flush` has nothing left to do.

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config};

use crate::error::StoreError;
use crate::kv::{KvEntry, KvProvider, KvTree};
use crate::limits::{PG_KV_ANSWER_WAIT_MILLIS, PG_KV_QUEUE_DEPTH, PG_KV_SESSIONS};

use super::session;

/// One statement for a side tree.
enum Op {
    Get(Vec<u8>),
    Last(Vec<u8>),
    Scan(Vec<u8>, usize),
    From(Vec<u8>, usize),
    Apply(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    InsertIfAbsent(Vec<u8>, Vec<u8>),
    Clear,
    /// The names of every tree (the job's tree is unused).
    Names,
}

/// What a statement answered.
enum Answer {
    Value(Option<Vec<u8>>),
    Entries(Vec<KvEntry>),
    Names(Vec<String>),
    Done,
}

/// A statement, the tree it is for and where to answer.
struct Job {
    tree: Arc<str>,
    op: Op,
    reply: SyncSender<Result<Answer, StoreError>>,
}

/// The queue of the threads that run side-tree statements. The threads
/// end when the last handle (the store's, each tree's) is dropped.
pub(crate) struct KvSessions {
    jobs: SyncSender<Job>,
}

impl KvSessions {
    /// Starts the threads; each connects when its first statement arrives.
    pub(crate) fn start(config: Config) -> Result<Arc<KvSessions>, StoreError> {
        let (jobs, queue) = sync_channel::<Job>(PG_KV_QUEUE_DEPTH);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..PG_KV_SESSIONS {
            let queue = queue.clone();
            let config = config.clone();
            std::thread::Builder::new()
                .name(format!("ticketlog-pg-kv-{i}"))
                .spawn(move || run(config, queue))
                .map_err(|e| StoreError::Unavailable(format!("side-tree thread: {e}")))?;
        }
        Ok(Arc::new(KvSessions { jobs }))
    }

    /// Runs `op` on `tree` and waits for its answer.
    fn call(&self, tree: &Arc<str>, op: Op) -> Result<Answer, StoreError> {
        let (reply, answer) = sync_channel(1);
        self.jobs
            .send(Job {
                tree: tree.clone(),
                op,
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        match answer.recv_timeout(Duration::from_millis(PG_KV_ANSWER_WAIT_MILLIS)) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => Err(StoreError::Unavailable(
                "the database did not answer a side-tree statement in time".into(),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(StoreError::Closed),
        }
    }
}

/// One side-tree thread: takes jobs until the queue closes.
fn run(config: Config, queue: Arc<Mutex<Receiver<Job>>>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "side-tree thread has no runtime");
            return;
        }
    };
    let mut client: Option<Client> = None;
    loop {
        // The lock is held only while waiting, so one thread waits at a time.
        let job = match queue.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let answer = runtime.block_on(execute(&config, &mut client, &job.tree, job.op));
        let _ = job.reply.send(answer);
    }
}

/// Runs one statement, reconnecting first if the session is gone. Every
/// statement may be run twice (puts, deletes and reads are idempotent), so
/// a statement whose session broke is retried once on a new session.
async fn execute(
    config: &Config,
    client: &mut Option<Client>,
    tree: &str,
    op: Op,
) -> Result<Answer, StoreError> {
    let mut last_error = None;
    for _ in 0..2 {
        if client.as_ref().is_none_or(Client::is_closed) {
            *client = Some(session::connect(config).await?);
        }
        let Some(session) = client.as_mut() else {
            continue;
        };
        match statement(session, tree, &op).await {
            Ok(answer) => return Ok(answer),
            Err(e) if session::is_db_answer(&e) => return Err(e.into()),
            Err(e) => {
                *client = None;
                last_error = Some(e);
            }
        }
    }
    Err(last_error.map_or(StoreError::Closed, StoreError::from))
}

/// The smallest key above every key that starts with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// `WHERE` clause and parameters of the keys starting with `prefix`.
fn range_sql(prefix: &[u8]) -> (&'static str, Option<Vec<u8>>) {
    match prefix_end(prefix) {
        Some(end) => ("tree = $1 AND key >= $2 AND key < $3", Some(end)),
        None => ("tree = $1 AND key >= $2", None),
    }
}

async fn statement(
    client: &mut Client,
    tree: &str,
    op: &Op,
) -> Result<Answer, tokio_postgres::Error> {
    match op {
        Op::Get(key) => {
            let row = client
                .query_opt(
                    "SELECT value FROM kv WHERE tree = $1 AND key = $2",
                    &[&tree, key],
                )
                .await?;
            Ok(Answer::Value(row.map(|r| r.get(0))))
        }
        Op::Last(prefix) | Op::Scan(prefix, _) => {
            let (range, end) = range_sql(prefix);
            let (order, limit) = match op {
                Op::Scan(_, limit) => ("ASC", i64::try_from(*limit).unwrap_or(i64::MAX)),
                _ => ("DESC", 1),
            };
            let sql = format!(
                "SELECT key, value FROM kv WHERE {range} ORDER BY key {order} LIMIT {limit}"
            );
            let rows = match &end {
                Some(end) => client.query(&sql, &[&tree, prefix, end]).await?,
                None => client.query(&sql, &[&tree, prefix]).await?,
            };
            Ok(Answer::Entries(
                rows.into_iter().map(|r| (r.get(0), r.get(1))).collect(),
            ))
        }
        Op::From(start, limit) => {
            let limit = i64::try_from(*limit).unwrap_or(i64::MAX);
            let rows = client
                .query(
                    "SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 ORDER BY key LIMIT $3",
                    &[&tree, start, &limit],
                )
                .await?;
            Ok(Answer::Entries(
                rows.into_iter().map(|r| (r.get(0), r.get(1))).collect(),
            ))
        }
        Op::Names => {
            let rows = client
                .query("SELECT DISTINCT tree FROM kv ORDER BY tree", &[])
                .await?;
            Ok(Answer::Names(rows.into_iter().map(|r| r.get(0)).collect()))
        }
        Op::Apply(writes) => {
            // In the order given, the last write of a key wins: kept per
            // key, so that two set-based statements do the whole apply.
            let last: BTreeMap<&Vec<u8>, Option<&Vec<u8>>> =
                writes.iter().map(|(k, v)| (k, v.as_ref())).collect();
            let (mut put_keys, mut put_values, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
            for (key, value) in last {
                match value {
                    Some(value) => {
                        put_keys.push(key);
                        put_values.push(value);
                    }
                    None => deletes.push(key),
                }
            }
            let delete_p: [&(dyn ToSql + Sync); 2] = [&tree, &deletes];
            let put_p: [&(dyn ToSql + Sync); 3] = [&tree, &put_keys, &put_values];
            let tx = client.transaction().await?;
            futures::try_join!(
                tx.execute(
                    "DELETE FROM kv WHERE tree = $1 AND key = ANY($2)",
                    &delete_p,
                ),
                tx.execute(
                    "INSERT INTO kv (tree, key, value)
                     SELECT $1, k, v FROM unnest($2::bytea[], $3::bytea[]) AS u(k, v)
                     ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value",
                    &put_p,
                ),
            )?;
            tx.commit().await?;
            Ok(Answer::Done)
        }
        Op::InsertIfAbsent(key, value) => {
            // Not an append: a side value several processes may race to create.
            client
                .execute(
                    "INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&tree, key, value],
                )
                .await?;
            let row = client
                .query_one(
                    "SELECT value FROM kv WHERE tree = $1 AND key = $2",
                    &[&tree, key],
                )
                .await?;
            Ok(Answer::Value(Some(row.get(0))))
        }
        Op::Clear => {
            client
                .execute("DELETE FROM kv WHERE tree = $1", &[&tree])
                .await?;
            Ok(Answer::Done)
        }
    }
}

/// A side tree in the `kv` table.
pub struct PgKvTree {
    sessions: Arc<KvSessions>,
    name: Arc<str>,
}

fn unexpected() -> StoreError {
    StoreError::Unavailable("unexpected answer from a side-tree thread".into())
}

impl KvTree for PgKvTree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.sessions.call(&self.name, Op::Get(key.to_vec()))? {
            Answer::Value(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<KvEntry>, StoreError> {
        match self.sessions.call(&self.name, Op::Last(prefix.to_vec()))? {
            Answer::Entries(mut e) => Ok(e.pop()),
            _ => Err(unexpected()),
        }
    }

    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        match self
            .sessions
            .call(&self.name, Op::Scan(prefix.to_vec(), limit))?
        {
            Answer::Entries(e) => Ok(e),
            _ => Err(unexpected()),
        }
    }

    fn scan_from(&self, start: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        match self
            .sessions
            .call(&self.name, Op::From(start.to_vec(), limit))?
        {
            Answer::Entries(e) => Ok(e),
            _ => Err(unexpected()),
        }
    }

    fn apply(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.sessions
            .call(&self.name, Op::Apply(writes))
            .map(|_| ())
    }

    fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        match self
            .sessions
            .call(&self.name, Op::InsertIfAbsent(key.to_vec(), value.to_vec()))?
        {
            Answer::Value(Some(v)) => Ok(v),
            _ => Err(unexpected()),
        }
    }

    fn clear(&self) -> Result<(), StoreError> {
        self.sessions.call(&self.name, Op::Clear).map(|_| ())
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Each call above committed durably before it answered.
        Ok(())
    }
}

/// Checks a tree's name as sled's side trees do (`__` is the log's).
fn checked_name(name: &str) -> Result<Arc<str>, StoreError> {
    if name.is_empty() || name.starts_with("__") {
        return Err(StoreError::Invalid(format!(
            "side tree name {name:?} is reserved"
        )));
    }
    Ok(Arc::from(name))
}

impl KvProvider for super::PgStore {
    fn tree(&self, name: &str) -> Result<Arc<dyn KvTree>, StoreError> {
        Ok(Arc::new(PgKvTree {
            sessions: self.kv.clone(),
            name: checked_name(name)?,
        }))
    }

    fn drop_tree(&self, name: &str) -> Result<(), StoreError> {
        let name = checked_name(name)?;
        self.kv.call(&name, Op::Clear).map(|_| ())
    }

    fn tree_names(&self) -> Result<Vec<String>, StoreError> {
        match self.kv.call(&Arc::from(""), Op::Names)? {
            Answer::Names(names) => Ok(names),
            _ => Err(unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_key_range() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}

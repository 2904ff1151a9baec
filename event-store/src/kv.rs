//! Side storage for other crates (snapshots, projection state), kept behind
//! the event store's API so that nothing above it touches sled.

use crate::error::StoreError;

/// One entry of a side tree: (key, value).
pub type KvEntry = (Vec<u8>, Vec<u8>);

/// A named, ordered key-value tree owned by one consumer (never the log's keys).
pub trait KvTree: Send + Sync + 'static {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// The last entry whose key starts with `prefix`.
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<KvEntry>, StoreError>;
    /// Entries whose key starts with `prefix`, in key order, at most `limit`.
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError>;
    /// Entries whose key is `start` or after it, in key order, at most
    /// `limit` (to walk a whole tree page by page).
    fn scan_from(&self, start: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError>;
    /// Applies puts (`Some`) and deletes (`None`) atomically.
    fn apply(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError>;
    /// Stores `value` at `key` unless the key holds a value already, and
    /// returns the value the key holds afterwards (for values several
    /// processes may create at once, such as a generated secret).
    fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError>;
    /// Removes every entry.
    fn clear(&self) -> Result<(), StoreError>;
    /// Makes everything applied so far durable.
    fn flush(&self) -> Result<(), StoreError>;
}

/// Opens side trees by name. (With the sled backend a tree handle keeps the
/// database open: drop handles before reopening the same directory.)
pub trait KvProvider: Send + Sync + 'static {
    /// The tree called `name` (created empty if absent). Names starting with
    /// `__` are reserved for the log.
    fn tree(&self, name: &str) -> Result<std::sync::Arc<dyn KvTree>, StoreError>;
    /// Drops the tree called `name`.
    fn drop_tree(&self, name: &str) -> Result<(), StoreError>;
    /// The names of the trees the store holds, in order (a tree that was
    /// opened but never written may be listed or not, depending on the store).
    fn tree_names(&self) -> Result<Vec<String>, StoreError>;
}

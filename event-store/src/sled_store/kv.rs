//! Side trees for other crates: separate sled trees named `kv/<name>`, so
//! they can never touch the log's keys.

use std::sync::Arc;

use crate::error::StoreError;
use crate::kv::{KvEntry, KvProvider, KvTree};

use super::SledStore;

/// Prefix of every side tree's sled name.
pub const SIDE_TREE_PREFIX: &str = "kv/";

/// A side tree backed by one sled tree.
pub struct SledKvTree {
    db: sled::Db,
    tree: sled::Tree,
}

impl KvTree for SledKvTree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<KvEntry>, StoreError> {
        match self.tree.scan_prefix(prefix).next_back() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((k.to_vec(), v.to_vec())))
            }
        }
    }

    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .take(limit)
            .map(|item| {
                let (k, v) = item?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn scan_from(&self, start: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        self.tree
            .range(start..)
            .take(limit)
            .map(|item| {
                let (k, v) = item?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn apply(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (key, value) in writes {
            match value {
                Some(v) => batch.insert(key, v),
                None => batch.remove(key),
            }
        }
        Ok(self.tree.apply_batch(batch)?)
    }

    fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        match self
            .tree
            .compare_and_swap(key, None::<&[u8]>, Some(value))?
        {
            Ok(()) => Ok(value.to_vec()),
            Err(sled::CompareAndSwapError { current, .. }) => Ok(current
                .map(|v| v.to_vec())
                .unwrap_or_else(|| value.to_vec())),
        }
    }

    fn clear(&self) -> Result<(), StoreError> {
        Ok(self.tree.clear()?)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn checked_name(name: &str) -> Result<String, StoreError> {
    if name.is_empty() || name.starts_with("__") {
        return Err(StoreError::Invalid(format!(
            "side tree name {name:?} is reserved"
        )));
    }
    Ok(format!("{SIDE_TREE_PREFIX}{name}"))
}

impl KvProvider for SledStore {
    fn tree(&self, name: &str) -> Result<Arc<dyn KvTree>, StoreError> {
        let tree = self.shared.db.open_tree(checked_name(name)?)?;
        Ok(Arc::new(SledKvTree {
            db: self.shared.db.clone(),
            tree,
        }))
    }

    fn drop_tree(&self, name: &str) -> Result<(), StoreError> {
        self.shared.db.drop_tree(checked_name(name)?)?;
        Ok(())
    }

    fn tree_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self
            .shared
            .db
            .tree_names()
            .iter()
            .filter_map(|name| name.strip_prefix(SIDE_TREE_PREFIX.as_bytes()))
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        names.sort();
        Ok(names)
    }
}

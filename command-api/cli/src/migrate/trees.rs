//! Copying side trees from one store to another, page by page: an entry
//! is written only where the destination lacks it or holds another value,
//! so a copy run again writes nothing, and entries only the destination
//! has are left alone.

use std::collections::VecDeque;

use event_store::{KvEntry, KvProvider, KvTree, StoreError};

/// Entries read per page before the first page of a tree shows how large
/// its entries are.
const TREE_PAGE_ENTRIES_FIRST: usize = 16;
/// Most entries read per page, whatever their size.
const TREE_PAGE_ENTRIES_MAX: usize = 1024;
/// Bytes a page aims at (pages are sized from the entries seen so far:
/// a projection snapshot's chunks are 1 MiB each, a user record is small).
const TREE_PAGE_BYTES_TARGET: usize = 8 * 1024 * 1024;

/// What copying one tree did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeCopied {
    /// Entries in the source tree.
    pub entries: u64,
    /// Entries written to the destination (missing or different there).
    pub written: u64,
}

/// Copies every entry of the tree `name` of `from` into the tree of the
/// same name of `to` (blocking: run it off the async threads).
pub fn copy_tree(
    from: &dyn KvProvider,
    to: &dyn KvProvider,
    name: &str,
) -> Result<TreeCopied, StoreError> {
    let source = from.tree(name)?;
    let target = to.tree(name)?;
    let mut held = Cursor::new(target.as_ref());
    let mut copied = TreeCopied::default();
    let mut start = Vec::new();
    let mut limit = TREE_PAGE_ENTRIES_FIRST;
    loop {
        let page = source.scan_from(&start, limit)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        start = successor(last);
        let bytes: usize = page.iter().map(|(k, v)| k.len() + v.len()).sum();
        limit = page_entries(bytes, page.len());
        let mut writes = Vec::new();
        for (key, value) in page {
            copied.entries += 1;
            if held.value_at(&key)?.as_ref() != Some(&value) {
                writes.push((key, Some(value)));
            }
        }
        copied.written += writes.len() as u64;
        target.apply(writes)?;
    }
    target.flush()?;
    Ok(copied)
}

/// Entries for the next page, from a page of `entries` holding `bytes`.
fn page_entries(bytes: usize, entries: usize) -> usize {
    let per_entry = (bytes / entries.max(1)).max(1);
    (TREE_PAGE_BYTES_TARGET / per_entry).clamp(1, TREE_PAGE_ENTRIES_MAX)
}

/// The smallest key after `key` (bytewise order).
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Reads a tree forward in pages, for lookups in increasing key order.
struct Cursor<'a> {
    tree: &'a dyn KvTree,
    page: VecDeque<KvEntry>,
    /// Where the next page starts; `None` once the tree is read to its end.
    next: Option<Vec<u8>>,
    limit: usize,
}

impl<'a> Cursor<'a> {
    fn new(tree: &'a dyn KvTree) -> Self {
        Cursor {
            tree,
            page: VecDeque::new(),
            next: Some(Vec::new()),
            limit: TREE_PAGE_ENTRIES_FIRST,
        }
    }

    /// The value the tree holds at `key`, skipping every key before it
    /// (keys must be asked for in increasing order).
    fn value_at(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        loop {
            while self.page.front().is_some_and(|(k, _)| k.as_slice() < key) {
                self.page.pop_front();
            }
            if let Some((k, v)) = self.page.front() {
                return Ok((k.as_slice() == key).then(|| v.clone()));
            }
            let Some(from) = self.next.take() else {
                return Ok(None);
            };
            let page = self.tree.scan_from(&from, self.limit)?;
            if let Some((last, _)) = page.last() {
                if page.len() == self.limit {
                    self.next = Some(successor(last));
                }
                let bytes: usize = page.iter().map(|(k, v)| k.len() + v.len()).sum();
                self.limit = page_entries(bytes, page.len());
            }
            self.page = page.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_store::testing::MemoryKv;

    #[test]
    fn a_copy_writes_what_differs_and_keeps_what_only_the_target_has() {
        let from = MemoryKv::new();
        let to = MemoryKv::new();
        let source = from.tree("t").expect("tree");
        let target = to.tree("t").expect("tree");
        let big = vec![7u8; TREE_PAGE_BYTES_TARGET / 2];
        let mut entries: Vec<KvEntry> = (0u16..100)
            .map(|i| (i.to_be_bytes().to_vec(), vec![1; usize::from(i)]))
            .collect();
        entries.push((vec![0xff, 0], big.clone()));
        entries.push((vec![0xff, 1], big));
        let puts = entries.iter().map(|(k, v)| (k.clone(), Some(v.clone())));
        source.apply(puts.collect()).expect("apply");
        target
            .apply(vec![
                (5u16.to_be_bytes().to_vec(), Some(vec![1; 5])),
                (6u16.to_be_bytes().to_vec(), Some(b"other".to_vec())),
                (b"only-target".to_vec(), Some(b"kept".to_vec())),
            ])
            .expect("apply");

        let copied = copy_tree(from.as_ref(), to.as_ref(), "t").expect("copy");
        assert_eq!(
            copied,
            TreeCopied {
                entries: 102,
                written: 101
            }
        );
        let mut expected = entries.clone();
        expected.push((b"only-target".to_vec(), b"kept".to_vec()));
        expected.sort();
        assert_eq!(target.scan_from(b"", 1000).expect("scan"), expected);
        let again = copy_tree(from.as_ref(), to.as_ref(), "t").expect("copy");
        assert_eq!(
            again,
            TreeCopied {
                entries: 102,
                written: 0
            }
        );
    }
}

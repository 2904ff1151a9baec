//! Both real stores for other crates' tests: [`Backend`] names one,
//! [`TestStore`] is a place for a fresh one (a temporary directory, or a
//! fresh database of the process's shared [`PgServer`]) that can be opened
//! again after a close, and [`both_stores!`](crate::both_stores) runs one
//! test body on each.

use std::sync::Arc;

use super::postgres::PgServer;
use crate::{PgOptions, PgStore, SledOptions, SledStore, Storage};

/// The stores every backend-agnostic test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded sled store in a temporary directory.
    Sled,
    /// The PostgreSQL store in a fresh database of this test binary's
    /// server (`PgServer::shared()`: one server per process).
    Postgres,
}

/// Where a fresh store lives, so that it can be opened again after a close.
pub enum TestStore {
    /// sled's directory (deleted when dropped).
    Dir(tempfile::TempDir),
    /// The database's URL.
    Url(String),
}

impl Backend {
    /// A place for a fresh, empty store of this backend.
    pub async fn place(self) -> TestStore {
        match self {
            Backend::Sled => TestStore::Dir(tempfile::tempdir().expect("tempdir")),
            // Starting the server and creating the database run programs and
            // wait for them: off the test's runtime threads.
            Backend::Postgres => TestStore::Url(
                tokio::task::spawn_blocking(|| {
                    let server = PgServer::shared().expect("start the test PostgreSQL");
                    server.fresh_database().expect("create a database")
                })
                .await
                .expect("create a database"),
            ),
        }
    }

    /// A fresh store with default options, and its place (keep it as long
    /// as the store is used).
    pub async fn open_fresh(self) -> (Arc<dyn Storage>, TestStore) {
        let place = self.place().await;
        let store = place.open().await;
        (store, place)
    }
}

impl TestStore {
    /// The store at this place, with default options.
    pub async fn open(&self) -> Arc<dyn Storage> {
        self.open_with(SledOptions::default(), PgOptions::default())
            .await
    }

    /// The store at this place: `sled` or `pg` options, whichever applies.
    pub async fn open_with(&self, sled: SledOptions, pg: PgOptions) -> Arc<dyn Storage> {
        match self {
            TestStore::Dir(dir) => SledStore::open(dir.path(), sled).expect("open sled store"),
            TestStore::Url(url) => PgStore::open(url, pg).await.expect("open PostgreSQL store"),
        }
    }

    /// The database's URL (PostgreSQL only).
    pub fn url(&self) -> Option<&str> {
        match self {
            TestStore::Dir(_) => None,
            TestStore::Url(url) => Some(url),
        }
    }
}

/// One test per backend: `both_stores!(name)` (or with `tokio::test`
/// arguments after the name, e.g. `flavor = "multi_thread"`) runs
/// `async fn name(Backend)` as `name::sled` and `name::postgres`.
#[macro_export]
macro_rules! both_stores {
    ($name:ident $(, $($arg:tt)*)?) => {
        mod $name {
            #[tokio::test($($($arg)*)?)]
            async fn sled() {
                super::$name($crate::testing::stores::Backend::Sled).await
            }
            #[tokio::test($($($arg)*)?)]
            async fn postgres() {
                super::$name($crate::testing::stores::Backend::Postgres).await
            }
        }
    };
}

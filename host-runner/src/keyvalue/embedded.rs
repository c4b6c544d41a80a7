//! The embedded store: one redb file, `STATE_DIR/keyvalue.redb`, that needs
//! no server.
//!
//! redb is ACID: every write is one transaction committed with
//! `Durability::Immediate` (fsync) before the guest is answered, so what a
//! client was told is stored survives `kill -9` and power loss. Write
//! transactions are serialised by redb, which makes a compare-and-swap a
//! read, a comparison and a write inside one of them. The file is locked
//! while open: a second process on the same state directory is refused at
//! startup, by name. redb's calls block (fsync), so they run on tokio's
//! blocking pool, not on the threads that run guests.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition};

use super::{OpenError, StoreError, LIST_PAGE};

/// Every bucket's pairs, keyed by (bucket, key).
const TABLE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("keyvalue");

/// The file's name under the state directory.
pub const FILE: &str = "keyvalue.redb";

/// The open database.
pub struct Embedded {
    db: Arc<Database>,
    path: PathBuf,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {e}"))
}

impl Embedded {
    /// Opens (creating) `dir/keyvalue.redb`, locking it for this process.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        let path = dir.join(FILE);
        let fail = |message: String| OpenError::Embedded {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        let db = Database::create(&path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => fail(
                "it is open in another host-runner process (one process per --state-dir; \
                 use Redis, --keyvalue-redis, to share state between nodes)"
                    .into(),
            ),
            e => fail(e.to_string()),
        })?;
        let txn = db.begin_write().map_err(|e| fail(e.to_string()))?;
        txn.open_table(TABLE).map_err(|e| fail(e.to_string()))?;
        txn.commit().map_err(|e| fail(e.to_string()))?;
        Ok(Embedded {
            db: Arc::new(db),
            path,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(unavailable)?
    }

    /// Writes in one committed transaction.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut redb::Table<(&str, &str), &[u8]>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            let out = {
                let mut table = txn.open_table(TABLE).map_err(unavailable)?;
                f(&mut table)?
            };
            txn.commit().map_err(unavailable)?;
            Ok(out)
        })
        .await
    }

    pub(super) async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut many = self.get_many(bucket, vec![key.to_string()]).await?;
        Ok(many.pop().flatten())
    }

    pub(super) async fn get_many(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let bucket = bucket.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(TABLE).map_err(unavailable)?;
            keys.iter()
                .map(|k| {
                    Ok(table
                        .get((bucket.as_str(), k.as_str()))
                        .map_err(unavailable)?
                        .map(|v| v.value().to_vec()))
                })
                .collect()
        })
        .await
    }

    pub(super) async fn set_many(
        &self,
        bucket: &str,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let bucket = bucket.to_string();
        self.write(move |table| {
            for (k, v) in &pairs {
                table
                    .insert((bucket.as_str(), k.as_str()), v.as_slice())
                    .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn delete_many(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<(), StoreError> {
        let bucket = bucket.to_string();
        self.write(move |table| {
            for k in &keys {
                table
                    .remove((bucket.as_str(), k.as_str()))
                    .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn list_keys(
        &self,
        bucket: &str,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let bucket = bucket.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(TABLE).map_err(unavailable)?;
            let start = match &cursor {
                Some(c) => Bound::Excluded((bucket.as_str(), c.as_str())),
                None => Bound::Included((bucket.as_str(), "")),
            };
            let range = table
                .range::<(&str, &str)>((start, Bound::Unbounded))
                .map_err(unavailable)?;
            let mut keys = Vec::new();
            for entry in range {
                let (k, _) = entry.map_err(unavailable)?;
                let (b, key) = k.value();
                if b != bucket {
                    break;
                }
                keys.push(key.to_string());
                if keys.len() == LIST_PAGE {
                    break;
                }
            }
            let next = (keys.len() == LIST_PAGE).then(|| keys[LIST_PAGE - 1].clone());
            Ok((keys, next))
        })
        .await
    }

    pub(super) async fn compare_and_swap(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.write(move |table| {
            let k = (bucket.as_str(), key.as_str());
            let current = table
                .get(k)
                .map_err(unavailable)?
                .map(|v| v.value().to_vec());
            if current != expected {
                return Ok(false);
            }
            table.insert(k, value.as_slice()).map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    pub(super) async fn increment(
        &self,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, StoreError> {
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.write(move |table| {
            let k = (bucket.as_str(), key.as_str());
            let current = match table.get(k).map_err(unavailable)? {
                Some(v) => parse_integer(v.value())?,
                None => 0,
            };
            let next = current.checked_add(delta).ok_or_else(|| {
                StoreError::Invalid(format!("{current} + {delta} overflows a 64-bit integer"))
            })?;
            table
                .insert(k, next.to_string().as_bytes())
                .map_err(unavailable)?;
            Ok(next)
        })
        .await
    }
}

/// A counter as stored: a decimal integer, as Redis's INCRBY keeps it.
pub(super) fn parse_integer(bytes: &[u8]) -> Result<i64, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::Invalid("the value is not a decimal 64-bit integer".into()))
}

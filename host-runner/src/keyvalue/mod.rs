//! `-S keyvalue`: the key-value stores guests reach through `wasi:keyvalue`.
//!
//! Two versions of the interface are linked side by side (Wasmtime's linker
//! never matches pre-release versions across drafts):
//! - `wasi:keyvalue@0.2.0-draft2` (store, atomics with `cas`, batch), the
//!   version Spin serves, implemented here ([`draft2`]) over a shared,
//!   durable [`Backend`]: the embedded store ([`embedded`], a redb file
//!   under `--state-dir`) or Redis ([`redis`], `--keyvalue-redis`) when
//!   several nodes share state;
//! - `wasi:keyvalue@0.2.0-draft`, exactly as `wasmtime serve` 48 links it
//!   (wasmtime-wasi-keyvalue: bucket `""` only, a private in-memory copy of
//!   the `-S keyvalue-in-memory-data` seed per open), so components written
//!   for Wasmtime's interface run unchanged.
//!
//! Buckets are named by the host (`--keyvalue-bucket`, `default` unless
//! given); opening any other is `no-such-store`. A backend that is down
//! answers `other("store unavailable: ...")` within [`OPERATION_TIMEOUT`],
//! never a hang; the guest turns it into a 503. Every operation is counted
//! and timed per backend in `/metrics`, and failed swaps as CAS conflicts.

pub mod draft2;
pub mod embedded;
pub mod redis;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// The longest a store operation may take before the guest is told the
/// store is unavailable.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// Keys listed per `list-keys` page.
pub const LIST_PAGE: usize = 1000;

/// The bucket served when `--keyvalue-bucket` is not given (Spin's name).
pub const DEFAULT_BUCKET: &str = "default";

/// Why a store operation failed, as the guest is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or failed (a 503 for the guest).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The stored value is not what the operation needs (e.g. not an
    /// integer for `increment`).
    #[error("{0}")]
    Invalid(String),
}

/// Why the store could not be opened at startup.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The embedded store's file.
    #[error("cannot open the key-value store {path}: {message}")]
    Embedded {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A bad Redis address or URL file.
    #[error("{0}")]
    Redis(String),
    /// A bucket name other than 1 to 64 ASCII letters, digits, `-`, `_`.
    #[error("bucket name {0:?}: use 1 to 64 ASCII letters, digits, '-' or '_'")]
    BadBucket(String),
}

/// Where `wasi:keyvalue@0.2.0-draft2` keeps its data.
#[derive(Debug, Clone)]
pub enum BackendSettings {
    /// The embedded store: `DIR/keyvalue.redb`.
    Embedded {
        /// `--state-dir`.
        state_dir: PathBuf,
    },
    /// Redis.
    Redis(redis::RedisSettings),
}

/// The stores' settings (`-S keyvalue` and the `--keyvalue-*` flags).
#[derive(Debug, Clone)]
pub struct KeyValueSettings {
    /// The backend of draft2.
    pub backend: BackendSettings,
    /// The buckets guests may open.
    pub buckets: Vec<String>,
    /// `-S keyvalue-in-memory-data=K=V`: the draft's seed.
    pub in_memory_data: Vec<(String, String)>,
}

/// A durable store behind draft2.
pub enum Backend {
    /// redb.
    Embedded(embedded::Embedded),
    /// Redis.
    Redis(Box<redis::RedisStore>),
}

impl Backend {
    /// The backend's label in metrics.
    fn label(&self) -> &'static str {
        match self {
            Backend::Embedded(_) => "embedded",
            Backend::Redis(_) => "redis",
        }
    }
}

/// What every instance shares: the backend, the bucket names, the draft's
/// seed and the metrics.
pub struct KeyValue {
    backend: Backend,
    buckets: BTreeSet<String>,
    draft: wasmtime_wasi_keyvalue::WasiKeyValueCtx,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyValue")
            .field("backend", &self.backend.label())
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

/// A bucket name the host accepts.
fn check_bucket(name: &str) -> Result<(), OpenError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(())
        .ok_or_else(|| OpenError::BadBucket(name.into()))
}

impl KeyValue {
    /// Opens the backend (the embedded file is locked for this process;
    /// Redis is connected lazily, so a node may start before its Redis).
    pub fn open(settings: &KeyValueSettings, metrics: Arc<Metrics>) -> Result<Self, OpenError> {
        let buckets: BTreeSet<String> = if settings.buckets.is_empty() {
            [DEFAULT_BUCKET.to_string()].into()
        } else {
            settings.buckets.iter().cloned().collect()
        };
        for b in &buckets {
            check_bucket(b)?;
        }
        let backend = match &settings.backend {
            BackendSettings::Embedded { state_dir } => {
                Backend::Embedded(embedded::Embedded::open(state_dir)?)
            }
            BackendSettings::Redis(r) => Backend::Redis(Box::new(redis::RedisStore::new(r)?)),
        };
        Ok(KeyValue {
            backend,
            buckets,
            draft: wasmtime_wasi_keyvalue::WasiKeyValueCtxBuilder::new()
                .in_memory_data(settings.in_memory_data.iter().cloned())
                .build(),
            metrics,
        })
    }

    /// One line for the startup log: the backend and buckets, no secrets.
    pub fn summary(&self) -> String {
        let where_ = match &self.backend {
            Backend::Embedded(e) => format!("embedded store {}", e.path().display()),
            Backend::Redis(r) => format!("Redis {}", r.display()),
        };
        let buckets: Vec<&str> = self.buckets.iter().map(String::as_str).collect();
        format!(
            "wasi:keyvalue@0.2.0-draft2 on the {where_} (buckets: {}); \
             wasi:keyvalue@0.2.0-draft in memory per instance",
            buckets.join(", ")
        )
    }

    /// The draft's context (`wasmtime serve`'s semantics).
    pub fn draft(&self) -> &wasmtime_wasi_keyvalue::WasiKeyValueCtx {
        &self.draft
    }

    /// Whether guests may open `bucket`.
    pub fn has_bucket(&self, bucket: &str) -> bool {
        self.buckets.contains(bucket)
    }

    /// Runs one operation under the timeout, counting and timing it.
    async fn run<T>(
        &self,
        operation: &'static str,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let start = Instant::now();
        let result = match tokio::time::timeout(OPERATION_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {} ms",
                OPERATION_TIMEOUT.as_millis()
            ))),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(StoreError::Unavailable(_)) => "unavailable",
            Err(StoreError::Invalid(_)) => "invalid",
        };
        self.metrics
            .keyvalue(self.backend.label(), operation, outcome, start.elapsed());
        if let Err(StoreError::Unavailable(e)) = &result {
            tracing::warn!(
                backend = self.backend.label(),
                operation,
                "key-value store: {e}"
            );
        }
        result
    }

    /// The value of `key`.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run("get", async {
            match &self.backend {
                Backend::Embedded(e) => e.get(bucket, key).await,
                Backend::Redis(r) => r.get(bucket, key).await,
            }
        })
        .await
    }

    /// Sets `key`.
    pub async fn set(&self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.set_many(bucket, vec![(key.to_string(), value)]).await
    }

    /// Sets every pair, all or nothing on the embedded store.
    pub async fn set_many(
        &self,
        bucket: &str,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        self.run("set", async {
            match &self.backend {
                Backend::Embedded(e) => e.set_many(bucket, pairs).await,
                Backend::Redis(r) => r.set_many(bucket, pairs).await,
            }
        })
        .await
    }

    /// Deletes the keys (absent ones are not an error).
    pub async fn delete_many(&self, bucket: &str, keys: Vec<String>) -> Result<(), StoreError> {
        self.run("delete", async {
            match &self.backend {
                Backend::Embedded(e) => e.delete_many(bucket, keys).await,
                Backend::Redis(r) => r.delete_many(bucket, keys).await,
            }
        })
        .await
    }

    /// Whether `key` exists.
    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self.get_many(bucket, vec![key.to_string()]).await?[0].is_some())
    }

    /// The values of `keys`, in order.
    pub async fn get_many(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.run("get", async {
            match &self.backend {
                Backend::Embedded(e) => e.get_many(bucket, keys).await,
                Backend::Redis(r) => r.get_many(bucket, keys).await,
            }
        })
        .await
    }

    /// A page of keys after `cursor`, and the cursor of the next page.
    pub async fn list_keys(
        &self,
        bucket: &str,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        self.run("list", async {
            match &self.backend {
                Backend::Embedded(e) => e.list_keys(bucket, cursor).await,
                Backend::Redis(r) => r.list_keys(bucket, cursor).await,
            }
        })
        .await
    }

    /// Sets `key` to `value` if it still holds `expected` (`None`: if it is
    /// absent), atomically; whether it did.
    pub async fn compare_and_swap(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let swapped = self
            .run("cas", async {
                match &self.backend {
                    Backend::Embedded(e) => e.compare_and_swap(bucket, key, expected, value).await,
                    Backend::Redis(r) => r.compare_and_swap(bucket, key, expected, value).await,
                }
            })
            .await?;
        if !swapped {
            self.metrics.keyvalue_cas_conflict(self.backend.label());
        }
        Ok(swapped)
    }

    /// Adds `delta` to the decimal integer at `key` (0 when absent).
    pub async fn increment(&self, bucket: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.run("increment", async {
            match &self.backend {
                Backend::Embedded(e) => e.increment(bucket, key, delta).await,
                Backend::Redis(r) => r.increment(bucket, key, delta).await,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(check_bucket("default").is_ok());
        assert!(check_bucket("a-b_C9").is_ok());
        for bad in ["", "a:b", "a*", &"x".repeat(65)] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_embedded_store_swaps_only_what_it_saw() {
        let dir = std::env::temp_dir().join(format!("kv-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let metrics = Arc::new(Metrics::default());
        let kv = KeyValue::open(
            &KeyValueSettings {
                backend: BackendSettings::Embedded {
                    state_dir: dir.clone(),
                },
                buckets: vec![],
                in_memory_data: vec![],
            },
            Arc::clone(&metrics),
        )
        .unwrap();
        assert!(kv.has_bucket("default") && !kv.has_bucket("other"));
        let b = "default";
        assert!(kv
            .compare_and_swap(b, "k", None, b"1".to_vec())
            .await
            .unwrap());
        assert!(!kv
            .compare_and_swap(b, "k", None, b"2".to_vec())
            .await
            .unwrap());
        assert!(!kv
            .compare_and_swap(b, "k", Some(b"0".to_vec()), b"2".to_vec())
            .await
            .unwrap());
        assert!(kv
            .compare_and_swap(b, "k", Some(b"1".to_vec()), b"2".to_vec())
            .await
            .unwrap());
        assert_eq!(kv.get(b, "k").await.unwrap(), Some(b"2".to_vec()));
        assert_eq!(kv.increment(b, "n", 5).await.unwrap(), 5);
        assert_eq!(kv.increment(b, "n", -7).await.unwrap(), -2);
        assert!(matches!(
            kv.increment(b, "k", 1).await,
            Ok(3) // "2" is a decimal integer too
        ));
        kv.set_many(
            b,
            (0..2500).map(|i| (format!("p{i:05}"), vec![1])).collect(),
        )
        .await
        .unwrap();
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let (keys, next) = kv.list_keys(b, cursor).await.unwrap();
            all.extend(keys);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(all.len(), 2502, "every key once: k, n and 2,500 more");
        kv.delete_many(b, vec!["k".into(), "absent".into()])
            .await
            .unwrap();
        assert!(!kv.exists(b, "k").await.unwrap());
        // A second process (here: a second open) is refused by name.
        let err = embedded::Embedded::open(&dir).err().expect("locked");
        assert!(err.to_string().contains("another"), "{err}");
        let text = metrics.render();
        assert!(
            text.contains("host_runner_keyvalue_cas_conflicts_total{backend=\"embedded\"} 2"),
            "{text}"
        );
        drop(kv);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

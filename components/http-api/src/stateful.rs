//! The stateful build's `/vectors` glue: `wasi:keyvalue@0.2.0-draft2` as the
//! API's [`Store`], `wasi:random` and `wasi:clocks` as its [`Env`]. Every
//! decision is [`vecproc_core::api::vectors`]'s.

use crate::bindings::wasi::clocks::{monotonic_clock, wall_clock};
use crate::bindings::wasi::http::types::IncomingRequest;
use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::bindings::wasi::random::random;
use crate::imported::Imported;
use crate::io;
use vecproc_core::api::handler::{Reply, RequestHead};
use vecproc_core::api::vectors::{self, Env, Store, StoreFault};
use vecproc_core::api::{ApiError, ErrorCode};

/// The bucket the service keeps its vectors in (Spin's default store's
/// name; host-runner serves it unless `--keyvalue-bucket` names others).
const BUCKET: &str = "default";

/// Answers a `/vectors` request.
pub(crate) fn respond(request: IncomingRequest, head: &RequestHead) -> Reply {
    let mut pending = match vectors::begin(head, vecproc_guest::max_body_bytes()) {
        Ok(p) => p,
        Err(e) => return Reply::error(&e),
    };
    if pending.needs_body() {
        if let Err(e) = io::read_body(request, |chunk| pending.push(chunk)) {
            return Reply::error(&e);
        }
    } else {
        drop(request);
    }
    let bucket = match store::open(BUCKET) {
        Ok(b) => b,
        Err(e) => {
            return Reply::error(&ApiError {
                retry_after: Some(vectors::RETRY_AFTER_S),
                ..ApiError::new(
                    ErrorCode::StoreUnavailable,
                    format!(
                        "the key-value store {BUCKET:?} cannot be opened: {}",
                        describe(&e)
                    ),
                )
            })
        }
    };
    pending.run(&Kv(bucket), &Wasi, &Imported)
}

fn describe(e: &store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "the host serves no such bucket".into(),
        store::Error::AccessDenied => "access denied".into(),
        store::Error::Other(m) => m.clone(),
    }
}

fn fault(e: store::Error) -> StoreFault {
    StoreFault(describe(&e))
}

struct Kv(store::Bucket);

impl Store for Kv {
    type Cas = atomics::Cas;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreFault> {
        self.0.get(key).map_err(fault)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreFault> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let found = batch::get_many(&self.0, keys).map_err(fault)?;
        Ok(found.into_iter().map(|(_, v)| v).collect())
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreFault> {
        if pairs.is_empty() {
            return Ok(());
        }
        batch::set_many(&self.0, &pairs).map_err(fault)
    }

    fn delete_many(&self, keys: Vec<String>) -> Result<(), StoreFault> {
        if keys.is_empty() {
            return Ok(());
        }
        batch::delete_many(&self.0, &keys).map_err(fault)
    }

    fn list_keys(
        &self,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), StoreFault> {
        let page = self.0.list_keys(cursor.as_deref()).map_err(fault)?;
        Ok((page.keys, page.cursor))
    }

    fn watch(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Cas), StoreFault> {
        let cas = atomics::Cas::new(&self.0, key).map_err(fault)?;
        let current = cas.current().map_err(fault)?;
        Ok((current, cas))
    }

    fn swap(&self, cas: Self::Cas, value: Vec<u8>) -> Result<bool, StoreFault> {
        match atomics::swap(cas, &value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(fault(e)),
        }
    }
}

struct Wasi;

impl Env for Wasi {
    fn random16(&self) -> [u8; 16] {
        random::get_random_bytes(16)
            .try_into()
            .expect("get-random-bytes returns the length asked for")
    }

    fn random8(&self) -> [u8; 8] {
        random::get_random_u64().to_le_bytes()
    }

    fn now_ms(&self) -> u64 {
        let now = wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
    }

    fn pause_ms(&self, ms: u64) {
        monotonic_clock::subscribe_duration(ms * 1_000_000).block();
    }
}

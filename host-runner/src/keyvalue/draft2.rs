//! `wasi:keyvalue@0.2.0-draft2` for guests: the bindings (from the WIT that
//! `cargo xtask` fetches into `wit/deps/keyvalue-2024-10-17/`) and the host
//! side of `store`, `atomics` and `batch` over [`KeyValue`].
//!
//! A `cas` handle remembers the value it saw; `swap` stores the new value
//! only if the key still holds exactly that (the backend compares and sets
//! atomically), and a lost race is `cas-failed` with a fresh handle on the
//! value now stored, never a silent success.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceTableError};

use super::{KeyValue, StoreError};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/deps/keyvalue-2024-10-17",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => super::Error,
        },
    });
}

use generated::wasi::keyvalue::{atomics, batch, store};

/// An open bucket.
pub struct Bucket {
    name: String,
}

/// A compare-and-swap in progress: the key and the value it saw.
pub struct Cas {
    bucket: String,
    key: String,
    current: Option<Vec<u8>>,
}

/// A store error, or a trap.
pub enum Error {
    /// `no-such-store`.
    NoSuchStore,
    /// `other(message)`.
    Other(String),
    /// Not the guest's to see: the call traps.
    Trap(wasmtime::Error),
}

impl From<ResourceTableError> for Error {
    fn from(e: ResourceTableError) -> Self {
        Error::Trap(e.into())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Other(e.to_string())
    }
}

/// What the host functions see: the shared stores and the instance's table.
pub struct View<'a> {
    kv: &'a Arc<KeyValue>,
    table: &'a mut ResourceTable,
}

impl<'a> View<'a> {
    /// A view for one call.
    pub fn new(kv: &'a Arc<KeyValue>, table: &'a mut ResourceTable) -> Self {
        View { kv, table }
    }

    fn bucket(&self, bucket: &Resource<Bucket>) -> Result<String, Error> {
        Ok(self.table.get(bucket)?.name.clone())
    }
}

impl store::Host for View<'_> {
    async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, Error> {
        if !self.kv.has_bucket(&identifier) {
            return Err(Error::NoSuchStore);
        }
        Ok(self.table.push(Bucket { name: identifier })?)
    }

    fn convert_error(&mut self, err: Error) -> wasmtime::Result<store::Error> {
        match err {
            Error::NoSuchStore => Ok(store::Error::NoSuchStore),
            Error::Other(e) => Ok(store::Error::Other(e)),
            Error::Trap(e) => Err(e),
        }
    }
}

impl store::HostBucket for View<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        let b = self.bucket(&bucket)?;
        Ok(self.kv.get(&b, &key).await?)
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        let b = self.bucket(&bucket)?;
        Ok(self.kv.set(&b, &key, value).await?)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), Error> {
        let b = self.bucket(&bucket)?;
        Ok(self.kv.delete_many(&b, vec![key]).await?)
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, Error> {
        let b = self.bucket(&bucket)?;
        Ok(self.kv.exists(&b, &key).await?)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, Error> {
        let b = self.bucket(&bucket)?;
        let (keys, cursor) = self.kv.list_keys(&b, cursor).await?;
        Ok(store::KeyResponse { keys, cursor })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for View<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Result<i64, Error> {
        let b = self.bucket(&bucket)?;
        Ok(self.kv.increment(&b, &key, delta).await?)
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas {
            bucket,
            key,
            current,
        } = self.table.delete(cas)?;
        match self
            .kv
            .compare_and_swap(&bucket, &key, current, value)
            .await
        {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                // Lost the race: hand back a handle on what is stored now,
                // so the guest can decide again.
                let fresh = match self.kv.get(&bucket, &key).await {
                    Ok(v) => v,
                    Err(e) => {
                        return Ok(Err(atomics::CasError::StoreError(store::Error::Other(
                            e.to_string(),
                        ))))
                    }
                };
                let handle = self.table.push(Cas {
                    bucket,
                    key,
                    current: fresh,
                })?;
                Ok(Err(atomics::CasError::CasFailed(handle)))
            }
            Err(e) => Ok(Err(atomics::CasError::StoreError(store::Error::Other(
                e.to_string(),
            )))),
        }
    }
}

impl atomics::HostCas for View<'_> {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Result<Resource<Cas>, Error> {
        let b = self.bucket(&bucket)?;
        let current = self.kv.get(&b, &key).await?;
        Ok(self.table.push(Cas {
            bucket: b,
            key,
            current,
        })?)
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.table.get(&cas)?.current.clone())
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for View<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, Error> {
        let b = self.bucket(&bucket)?;
        let values = self.kv.get_many(&b, keys.clone()).await?;
        Ok(keys.into_iter().zip(values).collect())
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Error> {
        let b = self.bucket(&bucket)?;
        Ok(self.kv.set_many(&b, key_values).await?)
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), Error> {
        let b = self.bucket(&bucket)?;
        Ok(self.kv.delete_many(&b, keys).await?)
    }
}

struct HasView;

impl HasData for HasView {
    type Data<'a> = View<'a>;
}

/// Links `store`, `atomics` and `batch` at `0.2.0-draft2`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> View<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasView>(linker, view)?;
    atomics::add_to_linker::<_, HasView>(linker, view)?;
    batch::add_to_linker::<_, HasView>(linker, view)?;
    Ok(())
}

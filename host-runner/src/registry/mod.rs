//! Components by registry reference: `oci://HOST:PORT/REPO:TAG` or
//! `...@sha256:HEX` wherever a component file is accepted, pulled, verified
//! and cached before anything is compiled.
//!
//! Every pull is verified: the manifest against its digest (and the pinned
//! digest when one is given), the Wasm artifact layout (`artifact`), the
//! layer against its declared size, the size cap and its digest, and, with
//! `--verify-key`, a cosign signature naming exactly that manifest digest
//! (`signature`). Anything else is refused with one line naming the
//! reference and the problem.
//!
//! Pull policy (`--pull`):
//! - `missing` (default): a digest reference found in the cache needs no
//!   network; a tag is resolved with the registry, and if the registry is
//!   unreachable the last digest seen for the tag is used, with a warning;
//! - `always`: every reference is resolved with the registry, and any
//!   registry failure is an error (blobs already cached are still reused,
//!   as their digests prove them);
//! - `never`: only the cache; a tag means the last digest seen for it.
//!
//! Submodules: `reference` (parsing), `digest`, `artifact` (layout
//! checks), `cache` (content-addressed, verified on read), `credentials`,
//! `auth` (challenges and where credentials may go), `signature` (cosign
//! key-pair format) and `client` (the network). All but `client` are pure
//! and unit-tested without a registry.

pub mod artifact;
pub mod auth;
pub mod cache;
pub mod client;
pub mod credentials;
pub mod digest;
pub mod image;
pub mod reference;
pub mod signature;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use artifact::{Descriptor, Manifest, WasmArtifact, OCI_MANIFEST, WASM_CONFIG, WASM_LAYER};
use cache::{Cache, Lookup};
use client::{NetError, RegistryClient};
pub use digest::Digest;
pub use reference::{OciReference, Source};
use signature::{PrivateKey, PublicKey, StoredSignature};

/// Largest signature payload or config blob read (they are a few hundred bytes).
const MAX_SMALL_BLOB: u64 = 1024 * 1024;
/// Signature layers considered at most, as cosign since GHSA-vfp6-jrw2-99g9:
/// a signature manifest with more is refused before any layer is fetched.
const MAX_SIGNATURE_LAYERS: usize = 1000;

/// When the registry is consulted; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Always ask the registry.
    Always,
    /// Use the cache for digests; ask the registry for tags, falling back
    /// to the last digest seen when it is unreachable.
    #[default]
    Missing,
    /// Never ask the registry.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Self::Always),
            "missing" => Ok(Self::Missing),
            "never" => Ok(Self::Never),
            _ => Err(format!(
                "{s:?} is not a pull policy (always, missing, never)"
            )),
        }
    }
}

/// How references are resolved.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// The cache directory; `None` for the default.
    pub cache_dir: Option<PathBuf>,
    /// The pull policy.
    pub pull: PullPolicy,
    /// Registries (`host:port`) spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// Trusted public keys; when non-empty every component must carry a
    /// signature by one of them.
    pub verify_keys: Vec<PathBuf>,
    /// Connect and read time limit for each registry request.
    pub timeout: Duration,
    /// Largest component layer accepted.
    pub max_component_size: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            pull: PullPolicy::Missing,
            insecure: Vec::new(),
            verify_keys: Vec::new(),
            timeout: Duration::from_secs(30),
            max_component_size: 256 * 1024 * 1024,
        }
    }
}

/// A reference that could not be resolved: one line naming it and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{reference}: {problem}")]
pub struct FetchError {
    /// The reference (or key file) as given.
    pub reference: String,
    /// What went wrong.
    pub problem: String,
    /// Whether the registry said the manifest does not exist.
    pub not_found: bool,
}

/// Where a component's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The local file system.
    File,
    /// The pull cache, without asking the registry for the layer.
    Cache,
    /// The registry.
    Registry,
}

/// A component ready to compile.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// How to name it in messages: the path, or the reference.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The manifest digest, for registry components.
    pub digest: Option<Digest>,
    /// Where the bytes came from.
    pub origin: Origin,
}

/// Reads a component file (the message matches `wasmtime serve`'s).
pub fn read_file(path: &std::path::Path) -> Result<Fetched, FetchError> {
    let bytes = std::fs::read(path).map_err(|e| {
        fail(
            &format!(
                "failed to open wasm module {:?}",
                path.display().to_string()
            ),
            e.to_string(),
        )
    })?;
    Ok(Fetched {
        name: path.display().to_string(),
        bytes,
        digest: None,
        origin: Origin::File,
    })
}

/// Resolves component sources for one command.
pub struct Fetcher {
    options: RegistryOptions,
    cache: Option<Cache>,
    client: RegistryClient,
    keys: Vec<PublicKey>,
    runtime: tokio::runtime::Runtime,
}

/// The cache record naming the last verified digest of `r`'s tag.
fn tag_key(r: &OciReference) -> Option<String> {
    r.tag
        .as_ref()
        .map(|t| format!("tag {}/{}:{t}", r.registry, r.repository))
}

fn fail(reference: &impl std::fmt::Display, problem: impl Into<String>) -> FetchError {
    FetchError {
        reference: reference.to_string(),
        problem: problem.into(),
        not_found: false,
    }
}

impl Fetcher {
    /// Opens the cache and loads the trusted keys.
    pub fn new(options: RegistryOptions) -> Result<Self, FetchError> {
        let mut keys = Vec::new();
        for path in &options.verify_keys {
            keys.push(
                PublicKey::load(path)
                    .map_err(|e| fail(&format!("--verify-key {}", e.path.display()), e.problem))?,
            );
        }
        let cache = match options.cache_dir.clone().or_else(Cache::default_dir) {
            Some(dir) => Some(Cache::open(&dir).map_err(|e| {
                fail(
                    &format!("--cache-dir {}", dir.display()),
                    e.source.to_string(),
                )
            })?),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(&"registry client", e.to_string()))?;
        Ok(Self {
            client: RegistryClient::new(&options.insecure, options.timeout),
            options,
            cache,
            keys,
            runtime,
        })
    }

    /// Reads a file, or pulls and verifies a registry component.
    pub fn fetch(&self, source: &Source) -> Result<Fetched, FetchError> {
        match source {
            Source::File(path) if !self.keys.is_empty() => Err(fail(
                &path.display(),
                "--verify-key requires every component to come from a registry \
                 (oci://...), and a local file carries no signature",
            )),
            Source::File(path) => read_file(path),
            Source::Oci(r) => {
                let started = Instant::now();
                let fetched = self.runtime.block_on(self.pull(r)).map_err(|mut e| {
                    e.problem = self.client.scrub(&e.problem);
                    e
                })?;
                tracing::info!(
                    "{r}: {} ({} bytes) from the {} in {} ms",
                    fetched
                        .digest
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    fetched.bytes.len(),
                    if fetched.origin == Origin::Cache {
                        "cache"
                    } else {
                        "registry"
                    },
                    started.elapsed().as_millis()
                );
                Ok(fetched)
            }
        }
    }

    fn cached(&self, digest: &Digest) -> Option<Vec<u8>> {
        let cache = self.cache.as_ref()?;
        match cache.blob(digest) {
            Ok(Lookup::Hit(bytes)) => Some(bytes),
            Ok(Lookup::Miss) => None,
            Ok(Lookup::Corrupt) => {
                tracing::warn!(
                    "cache entry {digest} in {} did not match its digest; removed it and will pull it again",
                    cache.root().display()
                );
                None
            }
            Err(e) => {
                tracing::warn!("{e}; pulling instead");
                None
            }
        }
    }

    fn remember(&self, digest: &Digest, bytes: &[u8]) {
        if let Some(cache) = &self.cache {
            if let Err(e) = cache.put_blob(digest, bytes) {
                tracing::warn!("{e}");
            }
        }
    }

    fn record(&self, key: &str) -> Option<Digest> {
        self.cache.as_ref()?.record(key).ok().flatten()
    }

    fn put_record(&self, key: &str, digest: &Digest) {
        if let Some(cache) = &self.cache {
            if let Err(e) = cache.put_record(key, digest) {
                tracing::warn!("{e}");
            }
        }
    }

    /// The manifest bytes and digest for `r`, from the cache or the
    /// registry as the policy says.
    async fn manifest(&self, r: &OciReference) -> Result<(Vec<u8>, Digest), FetchError> {
        let policy = self.options.pull;
        let tag_key = tag_key(r);
        let cached_manifest = |digest: &Digest| self.cached(digest).map(|b| (b, digest.clone()));

        if policy != PullPolicy::Always {
            let known = r.digest.clone().or_else(|| {
                (policy == PullPolicy::Never)
                    .then(|| tag_key.as_deref().and_then(|k| self.record(k)))
                    .flatten()
            });
            if let Some(found) = known.as_ref().and_then(cached_manifest) {
                return Ok(found);
            }
            if policy == PullPolicy::Never {
                return Err(fail(
                    r,
                    "not in the cache, and --pull never forbids asking the registry",
                ));
            }
        }
        match self.client.manifest(r).await {
            Ok((bytes, digest)) => {
                // The tag's record waits for the whole pull to verify
                // ([`Self::pull`]): a refused manifest must not replace the
                // last good digest, which offline runs trust.
                self.remember(&digest, &bytes);
                Ok((bytes, digest))
            }
            Err(e) if e.is_unreachable() && policy == PullPolicy::Missing && r.digest.is_none() => {
                let last = tag_key.as_deref().and_then(|k| self.record(k));
                match last.as_ref().and_then(cached_manifest) {
                    Some(found) => {
                        tracing::warn!(
                            "{r}: {e}; using {}, the last digest seen for this tag",
                            found.1
                        );
                        Ok(found)
                    }
                    None => Err(fail(
                        r,
                        format!("{e}, and the cache has no copy of this tag"),
                    )),
                }
            }
            Err(e) if e.is_unreachable() => Err(fail(
                r,
                if r.digest.is_some() && policy != PullPolicy::Always {
                    format!("{e}, and the cache has no copy of this digest")
                } else {
                    e.to_string()
                },
            )),
            Err(NetError::NotFound) => Err(FetchError {
                reference: r.to_string(),
                problem: match (&r.digest, &r.tag) {
                    (Some(d), _) => format!("manifest {d} not found in the registry"),
                    (None, Some(t)) => format!("tag {t} not found in the registry"),
                    (None, None) => "not found in the registry".into(),
                },
                not_found: true,
            }),
            Err(e) => Err(fail(r, e.to_string())),
        }
    }

    /// A blob of `r`'s repository, from the cache or the registry.
    async fn blob(
        &self,
        r: &OciReference,
        media_type: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<(Vec<u8>, Origin), FetchError> {
        if let Some(bytes) = self.cached(digest) {
            return Ok((bytes, Origin::Cache));
        }
        if self.options.pull == PullPolicy::Never {
            return Err(fail(
                r,
                format!("blob {digest} is not in the cache, and --pull never forbids asking the registry"),
            ));
        }
        let bytes = self
            .client
            .blob(r, media_type, digest, size)
            .await
            .map_err(|e| match e {
                NetError::NotFound => fail(r, format!("blob {digest} not found in the registry")),
                e if e.is_unreachable() => {
                    fail(r, format!("blob {digest} is not in the cache, and {e}"))
                }
                e => fail(r, e.to_string()),
            })?;
        self.remember(digest, &bytes);
        Ok((bytes, Origin::Registry))
    }

    async fn pull(&self, r: &OciReference) -> Result<Fetched, FetchError> {
        let (manifest, digest) = self.manifest(r).await?;
        let artifact = WasmArtifact::from_manifest(&manifest, self.options.max_component_size)
            .map_err(|e| fail(r, e.to_string()))?;
        if !self.keys.is_empty() {
            let key = self.verify_signature(r, &digest).await?;
            tracing::info!("{r}: signature on {digest} verified with {key}");
        }
        let (bytes, origin) = self
            .blob(r, WASM_LAYER, &artifact.layer_digest, artifact.layer_size)
            .await?;
        // Layout, signature and layer all verified: now the tag may point
        // at this digest.
        if let Some(key) = tag_key(r) {
            self.put_record(&key, &digest);
        }
        Ok(Fetched {
            name: r.to_string(),
            bytes,
            digest: Some(digest),
            origin,
        })
    }

    async fn verify_signature(
        &self,
        r: &OciReference,
        digest: &Digest,
    ) -> Result<String, FetchError> {
        let tag = signature::signature_tag(digest);
        let sig_ref = OciReference {
            tag: Some(tag.clone()),
            digest: None,
            ..r.clone()
        };
        let sig_key = format!("sig {}/{}@{digest}", r.registry, r.repository);
        let cached = self
            .record(&sig_key)
            .and_then(|d| self.cached(&d).map(|b| (b, d)));
        let (manifest, manifest_digest) = match cached {
            Some(found) if self.options.pull != PullPolicy::Always => found,
            _ if self.options.pull == PullPolicy::Never => {
                return Err(fail(
                    r,
                    format!("refused: no signature for {digest} in the cache, and --pull never forbids asking the registry"),
                ))
            }
            _ => match self.client.manifest_if_any(&sig_ref).await {
                Ok(Some(found)) => found,
                Ok(None) => {
                    return Err(fail(
                        r,
                        format!("refused: {}", signature::SignatureError::Unsigned { tag }),
                    ))
                }
                Err(e) => return Err(fail(r, format!("cannot fetch its signature {tag}: {e}"))),
            },
        };
        let parsed: Manifest = serde_json::from_slice(&manifest).map_err(|e| {
            fail(
                r,
                format!("refused: the signature manifest {tag} is malformed: {e}"),
            )
        })?;
        if parsed.layers.len() > MAX_SIGNATURE_LAYERS {
            return Err(fail(
                r,
                format!(
                    "refused: the signature manifest {tag} has {} layers, more than the \
                     {MAX_SIGNATURE_LAYERS} considered",
                    parsed.layers.len()
                ),
            ));
        }
        // One layer at a time: fetched, checked, dropped. A layer that cannot
        // be fetched or does not match its digest is skipped (logged), so it
        // cannot hide a valid signature after it.
        let mut verifier = signature::Verifier::new(&self.keys, digest);
        let mut verified = None;
        for layer in &parsed.layers {
            if layer.media_type != signature::PAYLOAD_MEDIA_TYPE || layer.size > MAX_SMALL_BLOB {
                continue;
            }
            let Ok(layer_digest) = Digest::parse(&layer.digest) else {
                verifier.unreadable();
                continue;
            };
            let payload = match self
                .blob(&sig_ref, &layer.media_type, &layer_digest, layer.size)
                .await
            {
                Ok((payload, _)) => payload,
                Err(e) => {
                    tracing::warn!(
                        "{r}: skipping signature layer {layer_digest}: {}",
                        e.problem
                    );
                    verifier.unreadable();
                    continue;
                }
            };
            let stored = StoredSignature {
                payload,
                signature: layer
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(signature::SIGNATURE_ANNOTATION).cloned()),
            };
            if let Some(key) = verifier.check(&stored) {
                verified = Some(key);
                break;
            }
        }
        let key = verified.ok_or_else(|| fail(r, format!("refused: {}", verifier.refusal())))?;
        self.remember(&manifest_digest, &manifest);
        self.put_record(&sig_key, &manifest_digest);
        Ok(key)
    }

    /// The manifest `r` names, always from the registry (for `sign` and
    /// `inspect`); a missing one is a `not_found` error.
    async fn resolve(&self, r: &OciReference) -> Result<(Vec<u8>, Digest), FetchError> {
        self.client.manifest(r).await.map_err(|e| match e {
            NetError::NotFound => FetchError {
                reference: r.to_string(),
                problem: "not found in the registry".into(),
                not_found: true,
            },
            e => fail(r, self.client.scrub(&e.to_string())),
        })
    }

    /// Signs the manifest `r` resolves to with `key` and stores the
    /// signature under cosign's tag, keeping signatures already there.
    /// Returns the signed digest and the signature tag.
    pub fn sign(&self, r: &OciReference, key: &PrivateKey) -> Result<(Digest, String), FetchError> {
        self.runtime.block_on(async {
            let (manifest, digest) = self.resolve(r).await?;
            WasmArtifact::from_manifest(&manifest, u64::MAX).map_err(|e| fail(r, e.to_string()))?;
            let tag = signature::signature_tag(&digest);
            let sig_ref = OciReference {
                tag: Some(tag.clone()),
                digest: None,
                ..r.clone()
            };
            let payload = signature::payload(&r.docker_reference(), &digest);
            let signature = key.sign(&payload);
            let net = |e: NetError| fail(&sig_ref, e.to_string());

            let mut layers: Vec<Descriptor> = match self.client.manifest_if_any(&sig_ref).await.map_err(net)? {
                Some((bytes, _)) => serde_json::from_slice::<Manifest>(&bytes)
                    .map(|m| m.layers)
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let payload_digest = Digest::of(&payload);
            let already = layers.iter().any(|l| {
                l.digest == payload_digest.to_string()
                    && l.annotations.as_ref().and_then(|a| a.get(signature::SIGNATURE_ANNOTATION))
                        == Some(&signature)
            });
            if !already {
                let size = payload.len() as u64;
                self.client.push_blob(&sig_ref, payload).await.map_err(net)?;
                layers.push(Descriptor {
                    media_type: signature::PAYLOAD_MEDIA_TYPE.into(),
                    digest: payload_digest.to_string(),
                    size,
                    annotations: Some([(signature::SIGNATURE_ANNOTATION.to_string(), signature)].into()),
                });
                // The image config cosign writes: one rootfs diff id per layer.
                let config = serde_json::to_vec(&serde_json::json!({
                    "architecture": "",
                    "created": "0001-01-01T00:00:00Z",
                    "history": [{"created": "0001-01-01T00:00:00Z"}],
                    "os": "",
                    "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
                    "config": {},
                }))
                .expect("JSON serialises");
                let config_size = config.len() as u64;
                let config_digest = self.client.push_blob(&sig_ref, config).await.map_err(net)?;
                let manifest = serde_json::to_vec(&Manifest {
                    schema_version: 2,
                    media_type: Some(OCI_MANIFEST.into()),
                    config: Descriptor {
                        media_type: "application/vnd.oci.image.config.v1+json".into(),
                        digest: config_digest.to_string(),
                        size: config_size,
                        annotations: None,
                    },
                    layers,
                    annotations: None,
                })
                .expect("JSON serialises");
                self.client.push_manifest(&sig_ref, manifest).await.map_err(net)?;
            }
            Ok((digest, tag))
        })
    }

    /// Pushes `image` ([`image::Image`]) under `r`; returns the manifest's
    /// digest.
    pub fn push_image(&self, r: &OciReference, image: image::Image) -> Result<Digest, FetchError> {
        self.runtime.block_on(async {
            let net = |e: NetError| fail(r, self.client.scrub(&e.to_string()));
            self.client.push_blob(r, image.layer).await.map_err(net)?;
            self.client.push_blob(r, image.config).await.map_err(net)?;
            let digest = Digest::of(&image.manifest);
            self.client
                .push_manifest(r, image.manifest)
                .await
                .map_err(net)?;
            Ok(digest)
        })
    }

    /// The manifest digest, manifest and config of `r`, always asking the
    /// registry; for scripts (`host-runner inspect`).
    pub fn inspect(&self, r: &OciReference) -> Result<serde_json::Value, FetchError> {
        self.runtime.block_on(async {
            let (manifest, digest) = self.resolve(r).await?;
            let artifact = WasmArtifact::from_manifest(&manifest, u64::MAX)
                .map_err(|e| fail(r, e.to_string()))?;
            let config = self
                .client
                .blob(
                    r,
                    WASM_CONFIG,
                    &artifact.config_digest,
                    artifact.manifest.config.size.min(MAX_SMALL_BLOB),
                )
                .await
                .map_err(|e| fail(r, e.to_string()))?;
            let config: serde_json::Value = serde_json::from_slice(&config)
                .map_err(|e| fail(r, format!("the config blob is not JSON: {e}")))?;
            Ok(serde_json::json!({
                "reference": r.to_string(),
                "digest": digest.to_string(),
                "pinned": r.pinned(&digest).to_string(),
                "manifest": serde_json::to_value(&artifact.manifest).expect("serialises"),
                "config": config,
            }))
        })
    }
}

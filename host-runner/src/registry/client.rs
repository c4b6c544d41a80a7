//! The network side: the OCI distribution API through `oci-client`, with
//! time limits on every request, a size cap while streaming a layer, and
//! the client's errors sorted into the few cases a user can act on.
//!
//! TLS is rustls with the ring provider (already in the tree through
//! wasmtime-wasi-http), system roots through rustls-platform-verifier;
//! plain HTTP is used only for registries named in `insecure`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;

use super::artifact::{MAX_MANIFEST_BYTES, OCI_MANIFEST};
use super::credentials::{self, Credentials};
use super::digest::{Digest, Hasher};
use super::reference::OciReference;

/// A failed registry operation, sorted by what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The registry has no such manifest or blob.
    #[error("not found in the registry")]
    NotFound,
    /// The registry refused the credentials, or wants some.
    #[error("{0}")]
    Unauthorized(String),
    /// No connection (refused, no route, DNS).
    #[error("the registry is unreachable: {0}")]
    Unreachable(String),
    /// The registry did not answer in time.
    #[error("the registry did not answer within {0:?} (--registry-timeout)")]
    TimedOut(Duration),
    /// A layer arrived too slowly to finish by its deadline.
    #[error(
        "the registry sent {got} of {size} bytes in {allowed:?}, slower than 64 KiB/s \
         (a layer may take --registry-timeout plus a second per 64 KiB)"
    )]
    Stalled {
        /// Bytes received.
        got: u64,
        /// Bytes declared.
        size: u64,
        /// The layer's deadline.
        allowed: Duration,
    },
    /// The TLS handshake failed on the protocol, not the certificate: what
    /// a plain-HTTP registry answers to HTTPS.
    #[error("TLS with the registry failed ({0}); if it serves plain HTTP, name it with --insecure-registry {1}")]
    Tls(String, String),
    /// The registry's certificate was refused. Not "unreachable": no cached
    /// copy stands in, and plain HTTP (which would carry credentials in
    /// the clear) is not suggested.
    #[error(
        "the registry's TLS certificate was refused ({0}); trust its CA in the system's \
         certificate store, or fix the certificate"
    )]
    Certificate(String),
    /// The registry sent bytes that are not what was asked for.
    #[error("{0}")]
    Integrity(String),
    /// Anything else the registry or the client reported.
    #[error("registry error: {0}")]
    Other(String),
    /// Credentials are configured but unusable.
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
}

impl NetError {
    /// Whether the registry could not be reached at all (a cached copy may
    /// then stand in), as opposed to a definite answer.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::TimedOut(_) | Self::Stalled { .. } | Self::Tls(..)
        )
    }
}

/// A registry client shared by every reference of one command.
pub struct RegistryClient {
    /// Built on first use: building it loads the system's TLS roots (about
    /// 4 ms), which a digest found in the cache never needs.
    client: OnceLock<oci_client::Client>,
    insecure: Vec<String>,
    timeout: Duration,
    auths: Mutex<HashMap<String, Credentials>>,
}

impl RegistryClient {
    /// A client speaking HTTPS except to the `insecure` registries
    /// (`host:port`, exactly as written in references), with `timeout` for
    /// connecting and for each read.
    pub fn new(insecure: &[String], timeout: Duration) -> Self {
        Self {
            client: OnceLock::new(),
            insecure: insecure.to_vec(),
            timeout,
            auths: Mutex::new(HashMap::new()),
        }
    }

    /// The HTTP client, built on first use.
    fn client(&self) -> &oci_client::Client {
        self.client.get_or_init(|| {
            // One process-wide provider; an error only means it is already set.
            let _ = rustls::crypto::ring::default_provider().install_default();
            oci_client::Client::new(ClientConfig {
                protocol: if self.insecure.is_empty() {
                    ClientProtocol::Https
                } else {
                    ClientProtocol::HttpsExcept(self.insecure.clone())
                },
                read_timeout: Some(self.timeout),
                connect_timeout: Some(self.timeout),
                // An index is not a Wasm artifact: refuse it rather than pick a platform.
                platform_resolver: None,
                user_agent: concat!("host-runner/", env!("CARGO_PKG_VERSION")),
                ..Default::default()
            })
        })
    }

    fn credentials(&self, registry: &str) -> Result<Credentials, NetError> {
        let mut auths = self.auths.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = auths.get(registry) {
            return Ok(c.clone());
        }
        let c = credentials::lookup(registry)?;
        auths.insert(registry.to_string(), c.clone());
        Ok(c)
    }

    /// `text` with every password this client holds replaced by `***`: a
    /// last line of defence for messages built from registry answers.
    pub fn scrub(&self, text: &str) -> String {
        let auths = self.auths.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = text.to_string();
        for c in auths.values() {
            if let Credentials::Basic { password, .. } = c {
                if !password.expose().is_empty() {
                    text = text.replace(password.expose(), "***");
                }
            }
        }
        text
    }

    fn auth(&self, registry: &str) -> Result<(RegistryAuth, Credentials), NetError> {
        let creds = self.credentials(registry)?;
        let auth = match &creds {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic {
                username, password, ..
            } => RegistryAuth::Basic(username.clone(), password.expose().to_string()),
        };
        Ok((auth, creds))
    }

    async fn limited<T>(
        &self,
        r: &OciReference,
        creds: &Credentials,
        fut: impl std::future::Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, NetError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(NetError::TimedOut(self.timeout)),
            Ok(result) => result.map_err(|e| classify(e, r, creds, self.timeout)),
        }
    }

    /// Fetches the manifest `r` names (its digest if pinned, else its tag)
    /// and returns its bytes and their digest, checked against the pin.
    pub async fn manifest(&self, r: &OciReference) -> Result<(Vec<u8>, Digest), NetError> {
        let (auth, creds) = self.auth(&r.registry)?;
        let reference = oci_reference(r);
        let (bytes, _) = self
            .limited(
                r,
                &creds,
                self.client()
                    .pull_manifest_raw(&reference, &auth, &[OCI_MANIFEST]),
            )
            .await?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(NetError::Integrity(format!(
                "the manifest is {} bytes, over the {MAX_MANIFEST_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let digest = Digest::of(&bytes);
        if let Some(pinned) = &r.digest {
            if *pinned != digest {
                return Err(NetError::Integrity(format!(
                    "the registry sent a manifest with digest {digest}, not the pinned {pinned}"
                )));
            }
        }
        Ok((bytes.to_vec(), digest))
    }

    /// Like [`Self::manifest`], but a missing manifest is `None`.
    pub async fn manifest_if_any(
        &self,
        r: &OciReference,
    ) -> Result<Option<(Vec<u8>, Digest)>, NetError> {
        match self.manifest(r).await {
            Ok(m) => Ok(Some(m)),
            Err(NetError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Streams the blob `digest` of declared `size` from `r`'s repository,
    /// refusing more than `size` bytes and bytes that do not hash to `digest`.
    pub async fn blob(
        &self,
        r: &OciReference,
        media_type: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<Vec<u8>, NetError> {
        let (auth, creds) = self.auth(&r.registry)?;
        let reference = oci_reference(r);
        self.client()
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        let descriptor = OciDescriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let mut stream = self
            .limited(
                r,
                &creds,
                self.client().pull_blob_stream(&reference, &descriptor),
            )
            .await?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(64 << 20));
        let mut hasher = Hasher::default();
        // Each read waits at most the timeout, and the whole layer at most
        // its deadline: a registry sending a byte just inside the timeout
        // each time must not hold startup for ever.
        let allowed = layer_deadline(self.timeout, size);
        let deadline = tokio::time::Instant::now() + allowed;
        loop {
            let wait = self
                .timeout
                .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            let chunk = match tokio::time::timeout(wait, stream.next()).await {
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(NetError::Stalled {
                        got: bytes.len() as u64,
                        size,
                        allowed,
                    })
                }
                Err(_) => return Err(NetError::TimedOut(self.timeout)),
                Ok(None) => break,
                Ok(Some(chunk)) => chunk.map_err(|e| {
                    let digest_failed = e
                        .get_ref()
                        .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>());
                    if digest_failed {
                        NetError::Integrity(format!(
                            "layer digest mismatch: the registry sent bytes that do not hash \
                             to {digest} ({})",
                            error_chain(&e)
                        ))
                    } else if e.kind() == std::io::ErrorKind::TimedOut {
                        NetError::TimedOut(self.timeout)
                    } else {
                        NetError::Unreachable(error_chain(&e))
                    }
                })?,
            };
            if bytes.len() as u64 + chunk.len() as u64 > size {
                return Err(NetError::Integrity(format!(
                    "the registry sent more than the {size} bytes the manifest declares for {digest}"
                )));
            }
            hasher.update(&chunk);
            bytes.extend_from_slice(&chunk);
        }
        if bytes.len() as u64 != size {
            return Err(NetError::Integrity(format!(
                "the registry sent {} bytes for {digest}, whose manifest declares {size}",
                bytes.len()
            )));
        }
        let actual = hasher.finish();
        if actual != *digest {
            return Err(NetError::Integrity(format!(
                "layer digest mismatch: the registry sent bytes hashing to {actual} for {digest}"
            )));
        }
        Ok(bytes)
    }

    /// Uploads `bytes` as a blob in `r`'s repository; returns its digest.
    pub async fn push_blob(&self, r: &OciReference, bytes: Vec<u8>) -> Result<Digest, NetError> {
        let (auth, creds) = self.auth(&r.registry)?;
        let reference = oci_reference(r);
        let digest = Digest::of(&bytes);
        self.client()
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        self.limited(
            r,
            &creds,
            self.client()
                .push_blob(&reference, bytes, &digest.to_string()),
        )
        .await?;
        Ok(digest)
    }

    /// Stores `manifest` (an OCI image manifest) under `r`'s tag.
    pub async fn push_manifest(&self, r: &OciReference, manifest: Vec<u8>) -> Result<(), NetError> {
        let (auth, creds) = self.auth(&r.registry)?;
        let reference = oci_reference(r);
        self.client()
            .store_auth_if_needed(reference.resolve_registry(), &auth)
            .await;
        let content_type = http::HeaderValue::from_static(OCI_MANIFEST);
        self.limited(
            r,
            &creds,
            self.client()
                .push_manifest_raw(&reference, manifest, content_type),
        )
        .await?;
        Ok(())
    }
}

fn oci_reference(r: &OciReference) -> Reference {
    match (&r.digest, &r.tag) {
        (Some(d), _) => {
            Reference::with_digest(r.registry.clone(), r.repository.clone(), d.to_string())
        }
        (None, Some(t)) => Reference::with_tag(r.registry.clone(), r.repository.clone(), t.clone()),
        (None, None) => unreachable!("a parsed reference has a tag or a digest"),
    }
}

fn unauthorized(r: &OciReference, creds: &Credentials) -> NetError {
    NetError::Unauthorized(match creds {
        Credentials::Anonymous => format!(
            "the registry {} requires credentials: set {} and {}, or add an auths entry \
             for {} to the docker config ({})",
            r.registry,
            credentials::USERNAME_VAR,
            credentials::PASSWORD_VAR,
            r.registry,
            credentials::docker_config_path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "$DOCKER_CONFIG/config.json".into()),
        ),
        Credentials::Basic {
            username, origin, ..
        } => format!(
            "the registry {} refused the credentials of user {username:?} (from {origin})",
            r.registry
        ),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let s = cause.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = cause.source();
    }
    text
}

/// How long a layer of `size` bytes may take in all: the per-read timeout
/// plus one second per 64 KiB (a registry slower than 64 KiB/s counts as
/// stalled).
pub fn layer_deadline(timeout: Duration, size: u64) -> Duration {
    timeout.saturating_add(Duration::from_secs(size.div_ceil(64 << 10)))
}

/// The rustls error in `e`'s chain, if any. `io::Error` does not report its
/// inner error as a `source`, so it is unwrapped on the way.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(tls) = rustls_error(inner) {
                return Some(tls);
            }
        }
        current = err.source();
    }
    None
}

fn classify(
    e: OciDistributionError,
    r: &OciReference,
    creds: &Credentials,
    timeout: Duration,
) -> NetError {
    use OciDistributionError as E;
    let not_found = |code: &OciErrorCode| {
        matches!(
            code,
            OciErrorCode::ManifestUnknown
                | OciErrorCode::NameUnknown
                | OciErrorCode::BlobUnknown
                | OciErrorCode::NotFound
        )
    };
    match e {
        E::ImageManifestNotFoundError(_) => NetError::NotFound,
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => unauthorized(r, creds),
        E::RegistryError { envelope, .. } => {
            if envelope.errors.iter().any(|e| not_found(&e.code)) {
                NetError::NotFound
            } else if envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                unauthorized(r, creds)
            } else {
                let messages: Vec<String> = envelope
                    .errors
                    .iter()
                    .map(|e| format!("{:?}: {}", e.code, e.message))
                    .collect();
                NetError::Other(messages.join("; "))
            }
        }
        E::ServerError { code: 404, .. } => NetError::NotFound,
        E::ServerError {
            code: 401 | 403, ..
        } => unauthorized(r, creds),
        E::ServerError { code, message, .. } => NetError::Other(format!(
            "HTTP {code}: {}",
            message.trim().chars().take(200).collect::<String>()
        )),
        E::DigestError(d) => NetError::Integrity(d.to_string()),
        E::RequestError(req) => {
            let chain = error_chain(&req);
            let certificate = matches!(
                rustls_error(&req),
                Some(
                    rustls::Error::InvalidCertificate(_)
                        | rustls::Error::InvalidCertRevocationList(_)
                        | rustls::Error::NoCertificatesPresented
                        | rustls::Error::UnsupportedNameType
                )
            );
            if req.is_timeout() {
                NetError::TimedOut(timeout)
            } else if certificate {
                NetError::Certificate(chain)
            } else if rustls_error(&req).is_some() {
                NetError::Tls(chain, r.registry.clone())
            } else if req.is_connect() || req.is_request() {
                NetError::Unreachable(chain)
            } else {
                NetError::Other(chain)
            }
        }
        other => NetError::Other(error_chain(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_gets_the_timeout_plus_a_second_per_64_kib() {
        let t = Duration::from_secs(30);
        assert_eq!(layer_deadline(t, 0), t);
        assert_eq!(layer_deadline(t, 1), t + Duration::from_secs(1));
        assert_eq!(layer_deadline(t, 150 << 10), t + Duration::from_secs(3));
        assert_eq!(layer_deadline(t, 64 << 20), t + Duration::from_secs(1024));
        assert_eq!(layer_deadline(Duration::MAX, u64::MAX), Duration::MAX);
    }
}

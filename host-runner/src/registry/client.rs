//! The network side: the five OCI distribution API calls host-runner makes
//! (pull a manifest, pull a blob, push a blob, push a manifest, and the
//! token exchange before them) over reqwest, with a time limit on every
//! request, a size cap on every body it reads (manifests, token replies,
//! error pages and layers alike, counted while streaming), and its errors
//! sorted into the few cases a user can act on.
//!
//! Authentication follows the distribution spec's challenge: a request is
//! made, a `401` names Basic or a Bearer token realm, and the request is
//! made once more with the answer, which is kept per registry, repository
//! and access. Where credentials may go is decided in `auth` (the realm
//! rule); the password is read from `credentials` and only ever sent in an
//! `Authorization` header marked sensitive.
//!
//! TLS is rustls with the ring provider (already in the tree through
//! wasmtime-wasi-http), system roots through rustls-platform-verifier;
//! plain HTTP is used only for registries named in `insecure`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use super::artifact::{MAX_MANIFEST_BYTES, OCI_MANIFEST};
use super::auth::{self, Challenge};
use super::credentials::{self, Credentials, Secret};
use super::digest::Digest;
use super::reference::OciReference;

/// The most of an error page or a refused request's body that is read.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// The most of a token endpoint's answer that is read (tokens are a few KiB).
const MAX_TOKEN_REPLY: u64 = 256 * 1024;

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

/// Which access a request needs (the token scope it asks for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Access {
    Pull,
    Push,
}

/// A registry client shared by every reference of one command.
pub struct RegistryClient {
    /// Built on first use: building it loads the system's TLS roots (about
    /// 4 ms), which a digest found in the cache never needs.
    http: OnceLock<Result<reqwest::Client, String>>,
    insecure: Vec<String>,
    timeout: Duration,
    auths: Mutex<HashMap<String, Credentials>>,
    /// The `Authorization` value that answered each registry's challenge,
    /// by registry, repository and access.
    grants: Mutex<HashMap<(String, String, Access), Secret>>,
}

impl RegistryClient {
    /// A client speaking HTTPS except to the `insecure` registries
    /// (`host:port`, exactly as written in references), with `timeout` for
    /// connecting and for each read.
    pub fn new(insecure: &[String], timeout: Duration) -> Self {
        Self {
            http: OnceLock::new(),
            insecure: insecure.to_vec(),
            timeout,
            auths: Mutex::new(HashMap::new()),
            grants: Mutex::new(HashMap::new()),
        }
    }

    /// The HTTP client, built on first use.
    fn http(&self) -> Result<&reqwest::Client, NetError> {
        let built = self.http.get_or_init(|| {
            // One process-wide provider; an error only means it is already set.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .connect_timeout(self.timeout)
                .read_timeout(self.timeout)
                .redirect(reqwest::redirect::Policy::limited(5))
                .user_agent(concat!("host-runner/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| error_chain(&e))
        });
        built
            .as_ref()
            .map_err(|e| NetError::Other(format!("cannot set up the HTTP client: {e}")))
    }

    fn plain_http(&self, registry: &str) -> bool {
        self.insecure.iter().any(|i| i == registry)
    }

    /// `http(s)://REGISTRY/v2/REPOSITORY/`.
    fn base(&self, r: &OciReference) -> String {
        let scheme = if self.plain_http(&r.registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}/", r.registry, r.repository)
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

    /// Sends one request within the timeout.
    async fn exchange(&self, request: RequestBuilder) -> Result<Response, NetError> {
        match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => Err(NetError::TimedOut(self.timeout)),
            Ok(result) => result.map_err(|e| self.classify(&e)),
        }
    }

    /// Sends the request `make` builds, answering the registry's challenge
    /// once if it asks for one, and returns the response if it succeeded.
    async fn send(
        &self,
        r: &OciReference,
        access: Access,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, NetError> {
        let http = self.http()?;
        let key = (r.registry.clone(), r.repository.clone(), access);
        let held = self
            .grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let response = self.exchange(with_grant(make(http), held.as_ref())).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return self.succeeded(r, response).await;
        }
        let creds = self.credentials(&r.registry)?;
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let Some(challenge) = challenge else {
            return Err(unauthorized(r, &creds));
        };
        let grant = self.answer(r, access, &challenge, &creds).await?;
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, grant.clone());
        let response = self.exchange(with_grant(make(http), Some(&grant))).await?;
        self.succeeded(r, response).await
    }

    /// The `Authorization` value that answers `challenge`.
    async fn answer(
        &self,
        r: &OciReference,
        access: Access,
        challenge: &str,
        creds: &Credentials,
    ) -> Result<Secret, NetError> {
        let challenge =
            auth::parse_challenge(challenge).map_err(|e| NetError::Other(e.to_string()))?;
        match (challenge, creds) {
            (Challenge::Basic, Credentials::Anonymous) => Err(unauthorized(r, creds)),
            (Challenge::Basic, Credentials::Basic { .. }) => Ok(Secret::new(basic(creds))),
            (Challenge::Bearer { realm, service }, _) => {
                let with_credentials = matches!(creds, Credentials::Basic { .. });
                let mut url = auth::check_realm(
                    &realm,
                    &r.registry,
                    self.plain_http(&r.registry),
                    with_credentials,
                )
                .map_err(|e| NetError::Unauthorized(e.to_string()))?;
                url.query_pairs_mut()
                    .append_pair("scope", &auth::scope(&r.repository, access == Access::Push));
                if let Some(service) = &service {
                    url.query_pairs_mut().append_pair("service", service);
                }
                let mut request = self.http()?.get(url);
                if with_credentials {
                    request = with_grant(request, Some(&Secret::new(basic(creds))));
                }
                let response = self.exchange(request).await?;
                let status = response.status();
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(unauthorized(r, creds));
                }
                if !status.is_success() {
                    let body = self.read_error_body(response).await;
                    return Err(NetError::Other(format!(
                        "the token endpoint answered HTTP {}: {}",
                        status.as_u16(),
                        excerpt(&body)
                    )));
                }
                let body = self
                    .read_capped(response, MAX_TOKEN_REPLY)
                    .await
                    .map_err(|e| e.into_net("the token endpoint's answer", MAX_TOKEN_REPLY))?;
                let token =
                    auth::token_from_reply(&body).map_err(|e| NetError::Other(e.to_string()))?;
                Ok(Secret::new(format!("Bearer {token}")))
            }
        }
    }

    /// `response` if it succeeded, else the error its status and body say.
    async fn succeeded(&self, r: &OciReference, response: Response) -> Result<Response, NetError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = self.read_error_body(response).await;
        let codes = error_codes(&body);
        let has = |wanted: &[&str]| codes.iter().any(|(c, _)| wanted.contains(&c.as_str()));
        if status == StatusCode::NOT_FOUND
            || has(&[
                "MANIFEST_UNKNOWN",
                "NAME_UNKNOWN",
                "BLOB_UNKNOWN",
                "NOT_FOUND",
            ])
        {
            return Err(NetError::NotFound);
        }
        if status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
            || has(&["UNAUTHORIZED", "DENIED"])
        {
            return Err(unauthorized(r, &self.credentials(&r.registry)?));
        }
        let detail = if codes.is_empty() {
            excerpt(&body)
        } else {
            codes
                .iter()
                .map(|(c, m)| format!("{c}: {m}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        Err(NetError::Other(format!(
            "HTTP {}: {detail}",
            status.as_u16()
        )))
    }

    /// Up to [`MAX_ERROR_BODY`] bytes of a failed response's body; the rest
    /// is never read, and a body that does not come is given up on.
    async fn read_error_body(&self, response: Response) -> Vec<u8> {
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while (body.len() as u64) < MAX_ERROR_BODY {
            match tokio::time::timeout(self.timeout, stream.next()).await {
                Ok(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(MAX_ERROR_BODY as usize);
        body
    }

    /// The whole body if it is at most `limit` bytes: refused from its
    /// `content-length` before a byte is read, else as soon as the bytes
    /// read pass the limit. Each read waits at most the timeout, and the
    /// whole body at most the deadline of `limit` bytes ([`layer_deadline`]).
    async fn read_capped(&self, response: Response, limit: u64) -> Result<Vec<u8>, BodyError> {
        if let Some(declared) = response.content_length().filter(|n| *n > limit) {
            return Err(BodyError::TooLarge(declared));
        }
        let expected = response.content_length().unwrap_or(0);
        let allowed = layer_deadline(self.timeout, limit);
        let deadline = tokio::time::Instant::now() + allowed;
        let mut stream = response.bytes_stream();
        let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(64 << 20));
        loop {
            let wait = self
                .timeout
                .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(wait, stream.next()).await {
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(BodyError::Stalled {
                        got: bytes.len() as u64,
                        allowed,
                    })
                }
                Err(_) => return Err(BodyError::Net(NetError::TimedOut(self.timeout))),
                Ok(None) => return Ok(bytes),
                Ok(Some(Err(e))) => return Err(BodyError::Net(self.classify(&e))),
                Ok(Some(Ok(chunk))) => {
                    if bytes.len() as u64 + chunk.len() as u64 > limit {
                        return Err(BodyError::TooLarge(bytes.len() as u64 + chunk.len() as u64));
                    }
                    bytes.extend_from_slice(&chunk);
                }
            }
        }
    }

    /// Fetches the manifest `r` names (its digest if pinned, else its tag)
    /// and returns its bytes and their digest, checked against the pin.
    pub async fn manifest(&self, r: &OciReference) -> Result<(Vec<u8>, Digest), NetError> {
        let url = format!("{}manifests/{}", self.base(r), reference_part(r));
        let response = self
            .send(r, Access::Pull, |http| {
                http.get(&url).header(reqwest::header::ACCEPT, OCI_MANIFEST)
            })
            .await?;
        let bytes = self
            .read_capped(response, MAX_MANIFEST_BYTES as u64)
            .await
            .map_err(|e| e.into_net("the manifest", MAX_MANIFEST_BYTES as u64))?;
        let digest = Digest::of(&bytes);
        if let Some(pinned) = &r.digest {
            if *pinned != digest {
                return Err(NetError::Integrity(format!(
                    "the registry sent a manifest with digest {digest}, not the pinned {pinned}"
                )));
            }
        }
        Ok((bytes, digest))
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

    /// Fetches the blob `digest` of declared `size` from `r`'s repository,
    /// refusing more than `size` bytes and bytes that do not hash to `digest`.
    pub async fn blob(
        &self,
        r: &OciReference,
        media_type: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<Vec<u8>, NetError> {
        let url = format!("{}blobs/{digest}", self.base(r));
        let response = self
            .send(r, Access::Pull, |http| {
                http.get(&url).header(reqwest::header::ACCEPT, media_type)
            })
            .await?;
        let bytes = self
            .read_capped(response, size)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge(_) => NetError::Integrity(format!(
                "the registry sent more than the {size} bytes the manifest declares for {digest}"
            )),
                BodyError::Stalled { got, allowed } => NetError::Stalled { got, size, allowed },
                BodyError::Net(e) => e,
            })?;
        if bytes.len() as u64 != size {
            return Err(NetError::Integrity(format!(
                "the registry sent {} bytes for {digest}, whose manifest declares {size}",
                bytes.len()
            )));
        }
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(NetError::Integrity(format!(
                "layer digest mismatch: the registry sent bytes hashing to {actual} for {digest}"
            )));
        }
        Ok(bytes)
    }

    /// Uploads `bytes` as a blob in `r`'s repository (one monolithic
    /// upload: `POST` then `PUT ?digest=`); returns its digest.
    pub async fn push_blob(&self, r: &OciReference, bytes: Vec<u8>) -> Result<Digest, NetError> {
        let digest = Digest::of(&bytes);
        let start = format!("{}blobs/uploads/", self.base(r));
        let response = self
            .send(r, Access::Push, |http| {
                http.post(&start).header(reqwest::header::CONTENT_LENGTH, 0)
            })
            .await?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                NetError::Other("the registry started an upload without a Location".into())
            })?;
        let mut url = reqwest::Url::parse(&start)
            .and_then(|base| base.join(location))
            .map_err(|e| {
                NetError::Other(format!(
                    "the upload Location {location:?} is not a URL: {e}"
                ))
            })?;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let body = Bytes::from(bytes);
        self.send(r, Access::Push, |http| {
            http.put(url.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(body.clone())
        })
        .await?;
        Ok(digest)
    }

    /// Stores `manifest` (an OCI image manifest) under `r`'s tag.
    pub async fn push_manifest(&self, r: &OciReference, manifest: Vec<u8>) -> Result<(), NetError> {
        let url = format!("{}manifests/{}", self.base(r), reference_part(r));
        let body = Bytes::from(manifest);
        self.send(r, Access::Push, |http| {
            http.put(&url)
                .header(CONTENT_TYPE, OCI_MANIFEST)
                .body(body.clone())
        })
        .await?;
        Ok(())
    }

    /// Sorts a transport error into what the user can do about it.
    fn classify(&self, e: &reqwest::Error) -> NetError {
        let chain = error_chain(e);
        let tls = rustls_error(e);
        let certificate = matches!(
            tls,
            Some(
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::InvalidCertRevocationList(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::UnsupportedNameType
            )
        );
        let registry = e
            .url()
            .map(|u| match u.port() {
                Some(port) => format!("{}:{port}", u.host_str().unwrap_or_default()),
                None => u.host_str().unwrap_or_default().to_string(),
            })
            .unwrap_or_default();
        if e.is_timeout() {
            NetError::TimedOut(self.timeout)
        } else if certificate {
            NetError::Certificate(chain)
        } else if tls.is_some() {
            NetError::Tls(chain, registry)
        } else if e.is_connect() || e.is_request() {
            NetError::Unreachable(chain)
        } else {
            NetError::Other(chain)
        }
    }
}

/// A body that could not be read whole.
enum BodyError {
    /// More than the limit (declared or sent).
    TooLarge(u64),
    /// Not finished by its deadline.
    Stalled { got: u64, allowed: Duration },
    /// The transport failed.
    Net(NetError),
}

impl BodyError {
    fn into_net(self, what: &str, limit: u64) -> NetError {
        match self {
            Self::TooLarge(n) => NetError::Integrity(format!(
                "{what} is {n} bytes or more, over the {limit}-byte limit"
            )),
            Self::Stalled { got, allowed } => NetError::Stalled {
                got,
                size: limit,
                allowed,
            },
            Self::Net(e) => e,
        }
    }
}

/// `request` with `grant` as its `Authorization`, marked sensitive.
fn with_grant(request: RequestBuilder, grant: Option<&Secret>) -> RequestBuilder {
    match grant.and_then(|g| HeaderValue::from_str(g.expose()).ok()) {
        Some(mut value) => {
            value.set_sensitive(true);
            request.header(AUTHORIZATION, value)
        }
        None => request,
    }
}

/// `Basic base64(user:password)` for Basic credentials.
fn basic(creds: &Credentials) -> String {
    match creds {
        Credentials::Anonymous => String::new(),
        Credentials::Basic {
            username, password, ..
        } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose()))
        ),
    }
}

/// The manifest path segment: the digest if pinned, else the tag.
fn reference_part(r: &OciReference) -> String {
    match (&r.digest, &r.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => unreachable!("a parsed reference has a tag or a digest"),
    }
}

/// The `(code, message)` pairs of a distribution-spec error body, if it is one.
fn error_codes(body: &[u8]) -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: String,
        #[serde(default)]
        message: String,
    }
    serde_json::from_slice::<Envelope>(body)
        .map(|e| {
            e.errors
                .into_iter()
                .map(|e| (e.code, e.message.chars().take(200).collect()))
                .collect()
        })
        .unwrap_or_default()
}

/// The first 200 characters of a body, for a message.
fn excerpt(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(200)
        .collect();
    if text.is_empty() {
        "(no body)".into()
    } else {
        text
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

/// How long a body of `size` bytes may take in all: the per-read timeout
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

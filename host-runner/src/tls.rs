//! TLS on the serving listener (`--tls-cert`, `--tls-key`): rustls with the
//! ring provider already in the tree, TLS 1.2 and 1.3, ALPN `h2` and
//! `http/1.1`, a certificate that can be replaced while serving, and
//! optionally client certificates checked against `--tls-client-ca` (mutual
//! TLS between a proxy and the host).
//!
//! The certificate chain and key are read from PEM files at startup, where
//! any problem (a missing file, a file without a certificate or key, a key
//! rustls cannot use, a key that is not the certificate's) stops startup
//! with one line naming the file. [`Certificates::reload`] reads them again
//! (the CLI calls it on SIGHUP): a good pair is used for every handshake
//! from then on, open connections keep theirs, and a bad pair is refused
//! with the same messages while the old one stays in use.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The PEM files a certificate is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--tls-cert`: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// `--tls-key`: the leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a certificate or key cannot be used. Messages name the flag and
/// the file; key material never appears in them.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no usable certificate.
    #[error("--tls-cert {}: {problem}", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The key file is unreadable or holds no usable key.
    #[error("--tls-key {}: {problem}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The client CA file is unreadable or holds no usable certificate.
    #[error("--tls-client-ca {}: {problem}", path.display())]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The key is not the one the certificate names.
    #[error(
        "--tls-key {} is not the private key of the certificate in --tls-cert {}",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a certificate chain and its key.
pub fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_error = |problem: String| TlsError::Cert {
        path: files.cert.clone(),
        problem,
    };
    let key_error = |problem: String| TlsError::Key {
        path: files.key.clone(),
        problem,
    };
    let chain = read_pem(&files.cert).map_err(cert_error)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(format!("not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(cert_error("holds no PEM certificate".into()));
    }
    let key = read_pem(&files.key).map_err(key_error)?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
        key_error(match e {
            rustls::pki_types::pem::Error::NoItemsFound => "holds no PEM private key".into(),
            other => format!("not a PEM private key ({other})"),
        })
    })?;
    let key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_error(format!("rustls cannot use this key ({e})")))?;
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        }),
        Err(e) => Err(cert_error(format!("not a usable certificate ({e})"))),
    }
}

/// A PEM file's bytes, refusing anything larger than 1 MiB (a chain is a
/// few KiB) so a wrong path cannot make startup read a disk image.
fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(1 << 20 | 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() > 1 << 20 {
        return Err("is over 1 MiB, too large for a PEM file".into());
    }
    Ok(bytes)
}

/// The certificate in use, replaceable while serving.
pub struct Certificates {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Loads `files` (see [`load`]).
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let current = load(&files)?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(current),
        }))
    }

    /// Reads the files again; on success the new pair serves every later
    /// handshake, on failure the old one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The files, for log lines.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// TLS for one listener: the acceptor and its handshake time limit.
#[derive(Clone)]
pub struct Tls {
    /// Accepts TLS connections with the current certificate.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// A client that has not finished its handshake by then is dropped.
    pub handshake_timeout: Duration,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// TLS 1.2 and 1.3 with `certificates`, offering `h2` then `http/1.1`;
    /// with `client_ca`, every client must present a certificate issued by
    /// one of the CA certificates in that PEM file.
    pub fn new(
        certificates: Arc<Certificates>,
        handshake_timeout: Duration,
        client_ca: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("the ring provider supports TLS 1.2 and 1.3");
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => builder.with_client_cert_verifier(client_verifier(path)?),
        };
        let mut config = builder.with_cert_resolver(certificates);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            handshake_timeout,
        })
    }
}

/// The CA certificates in the PEM file at `path` (for `--tls-client-ca`
/// and `--outbound-ca`), or what is wrong with it.
pub(crate) fn read_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let pem = read_pem(path)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate ({e})"))?;
        roots
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate ({e})"))?;
    }
    if roots.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(roots)
}

/// A verifier that accepts only client certificates issued by the CAs in
/// the PEM file at `path`.
fn client_verifier(
    path: &Path,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let error = |problem: String| TlsError::ClientCa {
        path: path.to_path_buf(),
        problem,
    };
    let roots = read_roots(path).map_err(error)?;
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| error(format!("cannot verify clients with it ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("host-runner-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn missing_and_empty_files_name_the_flag_and_the_file() {
        let d = dir("bad");
        let files = TlsFiles {
            cert: d.join("absent.pem"),
            key: d.join("absent.key"),
        };
        let err = load(&files).unwrap_err().to_string();
        assert!(err.starts_with("--tls-cert "), "{err}");
        assert!(err.contains("absent.pem: cannot read it"), "{err}");

        let empty = write(&d, "empty.pem", "no pem here\n");
        let err = load(&TlsFiles {
            cert: empty.clone(),
            key: empty,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("empty.pem: holds no PEM certificate"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }
}

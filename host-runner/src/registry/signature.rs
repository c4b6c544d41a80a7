//! cosign key-pair signatures: the "simple signing" payload, ECDSA P-256
//! over SHA-256, and the tag-based storage scheme.
//!
//! What `cosign sign --key` stores for a manifest `sha256:H` in repository
//! `R`, and what [`verify`] checks:
//! - a manifest tagged `sha256-H.sig` in `R`, one layer per signature, each
//!   of media type `application/vnd.dev.cosign.simplesigning.v1+json`;
//! - the layer blob is the payload: JSON naming the signed manifest,
//!   `{"critical":{"identity":{"docker-reference":R},"image":
//!   {"docker-manifest-digest":"sha256:H"},"type":"cosign container image
//!   signature"},"optional":null}`;
//! - the layer's `dev.cosignproject.cosign/signature` annotation is the
//!   base64 of the ASN.1 DER ECDSA signature of the payload bytes.
//!
//! A signature counts only if it verifies under one of the trusted keys AND
//! its payload names exactly the digest being verified (a valid signature
//! copied onto another artifact's tag is refused).
//!
//! Keys: the private key is PKCS#8 PEM (`openssl genpkey -algorithm EC
//! -pkeyopt ec_paramgen_curve:P-256`), the public key SubjectPublicKeyInfo
//! PEM (`openssl pkey -pubout`; the format of `cosign.pub`).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use serde::Deserialize;

use super::digest::Digest;

/// Media type of a simple-signing payload layer.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `critical.type` of a cosign image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The tag cosign stores signatures of `digest` under.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// The simple-signing payload for `digest` in `docker_reference`
/// (`registry/repository`), as cosign writes it.
pub fn payload(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    // Field order and `"optional":null` as cosign's encoder writes them.
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    }))
    .expect("a JSON value always serialises")
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct KeyError {
    /// The key file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

/// A private signing key.
pub struct PrivateKey(SigningKey);

impl PrivateKey {
    /// Reads a PKCS#8 PEM P-256 private key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bad = |problem: String| KeyError {
            path: path.to_path_buf(),
            problem,
        };
        let pem = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read the signing key: {e}")))?;
        // The parse error is deliberately not included: it could quote key material.
        SigningKey::from_pkcs8_pem(&pem).map(Self).map_err(|_| {
            bad("not a PKCS#8 PEM ECDSA P-256 private key \
                 (make one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)"
                .into())
        })
    }

    /// Signs `payload`: base64 of the DER signature, as the annotation holds it.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: Signature = self.0.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self, name: &str) -> PublicKey {
        PublicKey {
            name: name.to_string(),
            key: *self.0.verifying_key(),
        }
    }
}

/// A trusted public key.
#[derive(Clone)]
pub struct PublicKey {
    /// The file it came from, for messages.
    pub name: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM P-256 public key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bad = |problem: String| KeyError {
            path: path.to_path_buf(),
            problem,
        };
        let pem = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read the verification key: {e}")))?;
        let key = VerifyingKey::from_public_key_pem(&pem).map_err(|e| {
            bad(format!(
                "not a PEM SubjectPublicKeyInfo ECDSA P-256 public key ({e})"
            ))
        })?;
        Ok(Self {
            name: path.display().to_string(),
            key,
        })
    }

    fn verifies(&self, payload: &[u8], signature_b64: &str) -> bool {
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()) else {
            return false;
        };
        let Ok(signature) = Signature::from_der(&der) else {
            return false;
        };
        self.key.verify(payload, &signature).is_ok()
    }
}

/// One signature as stored: the payload bytes and the annotation value.
#[derive(Debug, Clone)]
pub struct StoredSignature {
    /// The payload blob.
    pub payload: Vec<u8>,
    /// The base64 signature, if the layer had the annotation.
    pub signature: Option<String>,
}

/// Why no signature was accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature manifest at all.
    #[error("it is not signed (no {tag} signature in the registry)")]
    Unsigned {
        /// The tag that was looked up.
        tag: String,
    },
    /// A signature verified, but for another artifact.
    #[error("its signature by {key} is for {signed}, not {expected}")]
    WrongDigest {
        /// The key that verified it.
        key: String,
        /// The digest the payload names.
        signed: String,
        /// The digest being verified.
        expected: Digest,
    },
    /// Signatures exist, none by a trusted key.
    #[error("none of its {count} signature(s) verifies with {keys}")]
    UntrustedKey {
        /// Signatures checked.
        count: usize,
        /// The trusted key files.
        keys: String,
    },
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// Checks stored signatures one at a time, as they are fetched, so none
/// needs to be held once checked and a bad one cannot hide a good one.
pub struct Verifier<'a> {
    keys: &'a [PublicKey],
    digest: &'a Digest,
    checked: usize,
    wrong_digest: Option<SignatureError>,
}

impl<'a> Verifier<'a> {
    /// A verifier of signatures on `digest` by any of `keys`.
    pub fn new(keys: &'a [PublicKey], digest: &'a Digest) -> Self {
        Self {
            keys,
            digest,
            checked: 0,
            wrong_digest: None,
        }
    }

    /// Counts one signature that could not even be read (a layer the
    /// registry would not serve, or whose bytes did not match its digest).
    pub fn unreadable(&mut self) {
        self.checked += 1;
    }

    /// The trusted key's name when `stored` is a valid signature of the
    /// digest by one of the keys.
    pub fn check(&mut self, stored: &StoredSignature) -> Option<String> {
        self.checked += 1;
        let sig = stored.signature.as_ref()?;
        let key = self
            .keys
            .iter()
            .find(|k| k.verifies(&stored.payload, sig))?;
        let named = serde_json::from_slice::<Payload>(&stored.payload)
            .ok()
            .filter(|p| p.critical.kind == SIGNATURE_TYPE)
            .map(|p| p.critical.image.digest);
        match named {
            Some(d) if d == self.digest.to_string() => Some(key.name.clone()),
            other => {
                self.wrong_digest
                    .get_or_insert(SignatureError::WrongDigest {
                        key: key.name.clone(),
                        signed: other.unwrap_or_else(|| "no image digest".into()),
                        expected: self.digest.clone(),
                    });
                None
            }
        }
    }

    /// Why nothing checked so far verified.
    pub fn refusal(self) -> SignatureError {
        self.wrong_digest
            .unwrap_or_else(|| SignatureError::UntrustedKey {
                count: self.checked,
                keys: self
                    .keys
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The name of the first key that verifies a signature in `signatures`
/// naming `digest`, or why none does.
pub fn verify(
    keys: &[PublicKey],
    digest: &Digest,
    signatures: &[StoredSignature],
) -> Result<String, SignatureError> {
    let mut verifier = Verifier::new(keys, digest);
    for stored in signatures {
        if let Some(key) = verifier.check(stored) {
            return Ok(key);
        }
    }
    Err(verifier.refusal())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey(SigningKey::from_slice(&[seed; 32]).unwrap())
    }

    #[test]
    fn payload_is_cosigns_shape() {
        let d = Digest::of(b"x");
        let p: serde_json::Value =
            serde_json::from_slice(&payload("127.0.0.1:5000/vecproc/svc", &d)).unwrap();
        assert_eq!(
            p["critical"]["identity"]["docker-reference"],
            "127.0.0.1:5000/vecproc/svc"
        );
        assert_eq!(
            p["critical"]["image"]["docker-manifest-digest"],
            d.to_string()
        );
        assert_eq!(p["critical"]["type"], SIGNATURE_TYPE);
        assert!(p["optional"].is_null());
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", d.hex()));
    }

    #[test]
    fn a_bad_signature_does_not_hide_a_good_one() {
        let signer = key(7);
        let trusted = signer.public_key("trusted.pub");
        let d = Digest::of(b"component manifest");
        let p = payload("r/x", &d);
        let good = StoredSignature {
            signature: Some(signer.sign(&p)),
            payload: p.clone(),
        };
        let elsewhere = payload("r/x", &Digest::of(b"another manifest"));
        let misdirected = StoredSignature {
            signature: Some(signer.sign(&elsewhere)),
            payload: elsewhere,
        };
        let garbage = StoredSignature {
            signature: Some("not base64 at all".into()),
            payload: b"{}".to_vec(),
        };
        let keys = std::slice::from_ref(&trusted);
        let mut v = Verifier::new(keys, &d);
        v.unreadable();
        assert_eq!(v.check(&garbage), None);
        assert_eq!(v.check(&misdirected), None);
        assert_eq!(v.check(&good).as_deref(), Some("trusted.pub"));
        // With no good one, the refusal names the misdirected signature,
        // and otherwise counts every signature considered.
        let mut v = Verifier::new(keys, &d);
        v.check(&garbage);
        v.check(&misdirected);
        assert!(matches!(v.refusal(), SignatureError::WrongDigest { .. }));
        let mut v = Verifier::new(keys, &d);
        v.unreadable();
        v.check(&garbage);
        assert!(matches!(
            v.refusal(),
            SignatureError::UntrustedKey { count: 2, .. }
        ));
    }

    #[test]
    fn verifies_only_the_right_key_and_digest() {
        let signer = key(7);
        let trusted = signer.public_key("trusted.pub");
        let other = key(9).public_key("other.pub");
        let d = Digest::of(b"component manifest");
        let p = payload("r/x", &d);
        let good = StoredSignature {
            signature: Some(signer.sign(&p)),
            payload: p.clone(),
        };
        assert_eq!(
            verify(
                std::slice::from_ref(&trusted),
                &d,
                std::slice::from_ref(&good)
            )
            .unwrap(),
            "trusted.pub"
        );
        // Any of several trusted keys will do.
        assert!(verify(
            &[other.clone(), trusted.clone()],
            &d,
            std::slice::from_ref(&good)
        )
        .is_ok());

        let err = verify(
            std::slice::from_ref(&other),
            &d,
            std::slice::from_ref(&good),
        )
        .unwrap_err();
        assert!(
            matches!(err, SignatureError::UntrustedKey { count: 1, .. }),
            "{err}"
        );

        // A valid signature of another digest, stored under this one's tag.
        let e = Digest::of(b"another manifest");
        let err = verify(
            std::slice::from_ref(&trusted),
            &e,
            std::slice::from_ref(&good),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(&format!("is for {d}, not {e}")),
            "{err}"
        );

        // A tampered payload or signature does not verify.
        let mut tampered = good.clone();
        tampered.payload[10] ^= 1;
        assert!(verify(std::slice::from_ref(&trusted), &d, &[tampered]).is_err());
        let bad_sig = StoredSignature {
            signature: Some("AAAA".into()),
            payload: p,
        };
        assert!(verify(std::slice::from_ref(&trusted), &d, &[bad_sig, good]).is_ok());
    }
}

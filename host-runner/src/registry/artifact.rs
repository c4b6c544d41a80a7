//! The CNCF "Wasm OCI artifact" layout, checked before anything is pulled:
//! an OCI image manifest whose config is `application/vnd.wasm.config.v0+json`
//! and which has exactly one `application/wasm` layer, no larger than the cap.
//!
//! This is the layout wkg, runwasi's wasmtime shim, containerd-shim-spin and
//! wasmCloud all read; anything else (a container image, an index, a
//! multi-layer artifact) is refused with one line saying what differs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

/// `mediaType` of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `mediaType` of the config blob of a Wasm artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// `mediaType` of the one component layer.
pub const WASM_LAYER: &str = "application/wasm";
/// Manifests larger than this are refused unread (the spec suggests 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// What the blob is.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Its digest, as the manifest states it.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Annotations, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image manifest, as much of it as the checks read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The manifest's own media type.
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations (`org.opencontainers.image.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest that passed the layout checks.
#[derive(Debug, Clone)]
pub struct WasmArtifact {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The config descriptor's digest.
    pub config_digest: Digest,
    /// The component layer's digest.
    pub layer_digest: Digest,
    /// The component layer's declared size.
    pub layer_size: u64,
}

/// How a manifest differs from the Wasm artifact layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// Too big to be a manifest.
    #[error("the manifest is {0} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not JSON of the right shape.
    #[error("the manifest is not an OCI image manifest: {0}")]
    Malformed(String),
    /// Wrong `schemaVersion`.
    #[error("the manifest has schemaVersion {0}, not 2")]
    SchemaVersion(u32),
    /// Wrong or missing manifest media type.
    #[error("the manifest media type is {0}, not {OCI_MANIFEST}")]
    MediaType(String),
    /// The config is not a Wasm config.
    #[error("the config media type is {0}, not {WASM_CONFIG}: not a Wasm component artifact")]
    ConfigMediaType(String),
    /// Not exactly one layer.
    #[error("the artifact has {0} layers; a Wasm component artifact has exactly one")]
    LayerCount(usize),
    /// The layer is not a component.
    #[error("the layer media type is {0}, not {WASM_LAYER}")]
    LayerMediaType(String),
    /// The layer is over the cap.
    #[error(
        "the component layer is {size} bytes, over the {cap}-byte limit (--max-component-size)"
    )]
    LayerTooLarge {
        /// Declared size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// A descriptor digest is malformed.
    #[error("the manifest names a bad digest: {0}")]
    BadDigest(String),
}

impl WasmArtifact {
    /// Parses `bytes` as a manifest and checks the Wasm artifact layout, with
    /// the component layer capped at `max_layer_bytes`.
    pub fn from_manifest(bytes: &[u8], max_layer_bytes: u64) -> Result<Self, ArtifactError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ArtifactError::TooLarge(bytes.len()));
        }
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ArtifactError::Malformed(e.to_string()))?;
        if manifest.schema_version != 2 {
            return Err(ArtifactError::SchemaVersion(manifest.schema_version));
        }
        match manifest.media_type.as_deref() {
            Some(OCI_MANIFEST) => {}
            other => {
                return Err(ArtifactError::MediaType(
                    other.unwrap_or("missing").to_string(),
                ))
            }
        }
        if manifest.config.media_type != WASM_CONFIG {
            return Err(ArtifactError::ConfigMediaType(
                manifest.config.media_type.clone(),
            ));
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(ArtifactError::LayerCount(manifest.layers.len()));
        };
        if layer.media_type != WASM_LAYER {
            return Err(ArtifactError::LayerMediaType(layer.media_type.clone()));
        }
        if layer.size > max_layer_bytes {
            return Err(ArtifactError::LayerTooLarge {
                size: layer.size,
                cap: max_layer_bytes,
            });
        }
        let digest = |d: &str| Digest::parse(d).map_err(|e| ArtifactError::BadDigest(e.0));
        Ok(Self {
            config_digest: digest(&manifest.config.digest)?,
            layer_digest: digest(&layer.digest)?,
            layer_size: layer.size,
            manifest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn manifest(media_type: &str, config: &str, layers: &[(&str, u64)]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|(t, size)| serde_json::json!({"mediaType": t, "digest": D, "size": size}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config, "digest": D, "size": 10},
            "layers": layers,
            "annotations": {"org.opencontainers.image.version": "0.1.0"},
        }))
        .unwrap()
    }

    #[test]
    fn accepts_the_wasm_layout() {
        let a = WasmArtifact::from_manifest(
            &manifest(OCI_MANIFEST, WASM_CONFIG, &[(WASM_LAYER, 100)]),
            100,
        )
        .unwrap();
        assert_eq!(a.layer_size, 100);
        assert_eq!(a.layer_digest.to_string(), D);
        assert_eq!(
            a.manifest.annotations.unwrap()["org.opencontainers.image.version"],
            "0.1.0"
        );
    }

    #[test]
    fn refuses_everything_else() {
        let cases = [
            (
                manifest(
                    "application/vnd.oci.image.index.v1+json",
                    WASM_CONFIG,
                    &[(WASM_LAYER, 1)],
                ),
                "media type is application/vnd.oci.image.index.v1+json",
            ),
            (
                manifest(
                    OCI_MANIFEST,
                    "application/vnd.oci.image.config.v1+json",
                    &[(WASM_LAYER, 1)],
                ),
                "not a Wasm component artifact",
            ),
            (manifest(OCI_MANIFEST, WASM_CONFIG, &[]), "0 layers"),
            (
                manifest(
                    OCI_MANIFEST,
                    WASM_CONFIG,
                    &[(WASM_LAYER, 1), (WASM_LAYER, 1)],
                ),
                "2 layers",
            ),
            (
                manifest(
                    OCI_MANIFEST,
                    WASM_CONFIG,
                    &[("application/vnd.oci.image.layer.v1.tar+gzip", 1)],
                ),
                "layer media type",
            ),
            (
                manifest(OCI_MANIFEST, WASM_CONFIG, &[(WASM_LAYER, 101)]),
                "101 bytes, over the 100-byte limit",
            ),
            (b"{}".to_vec(), "not an OCI image manifest"),
            (b"not json".to_vec(), "not an OCI image manifest"),
        ];
        for (bytes, needle) in cases {
            let err = WasmArtifact::from_manifest(&bytes, 100)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
        }
    }
}

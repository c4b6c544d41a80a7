//! An OCI image whose root filesystem holds one component, with the
//! entrypoint naming it: what node runtimes pull and run through a Wasm
//! shim when they cannot unpack a Wasm OCI artifact (containerd before
//! 1.6.25 / 1.7.7, and `ctr run` on every version).
//!
//! Reproducible: the layer is an uncompressed tar with one file at the root
//! (owner 0, mode 0644, time 0), the config has no creation time, so the
//! same component always gives the same digests. The platform is
//! `wasip2/wasm` ([`OS`], [`ARCHITECTURE`]): the image is a single manifest,
//! not an index, so containerd pulls it whatever platform it runs on and
//! leaves the choice of runtime to the RuntimeClass.

use serde_json::json;

use super::artifact::{Descriptor, Manifest};
use super::Digest;

/// The layer's media type: an uncompressed tar.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// The config's media type: an ordinary image config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The manifest's media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config's `os`.
pub const OS: &str = "wasip2";
/// The config's `architecture`.
pub const ARCHITECTURE: &str = "wasm";

/// An image's blobs and manifest, ready to push.
#[derive(Debug, Clone)]
pub struct Image {
    /// The layer (a tar holding the component).
    pub layer: Vec<u8>,
    /// The image config.
    pub config: Vec<u8>,
    /// The manifest naming both.
    pub manifest: Vec<u8>,
}

/// Why an image cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The file name is not a plain `NAME.wasm` at the root.
    #[error("{0:?} cannot name the component in an image: use a plain file name ending in .wasm")]
    BadFileName(String),
    /// The bytes are not a component (a core module, or not Wasm): the
    /// image's shim serves components only.
    #[error("not a WebAssembly component (an image's shim serves components)")]
    NotAComponent,
}

/// The preamble of a component binary: magic, version 0x0d, layer 1.
const COMPONENT_PREAMBLE: &[u8; 8] = b"\0asm\x0d\0\x01\0";

impl Image {
    /// The image holding `component` as `/FILE_NAME`, its entrypoint.
    pub fn new(file_name: &str, component: &[u8]) -> Result<Self, ImageError> {
        let plain = !file_name.is_empty()
            && file_name.len() <= 100
            && file_name.ends_with(".wasm")
            && !file_name.starts_with('.')
            && file_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !plain {
            return Err(ImageError::BadFileName(file_name.to_string()));
        }
        if !component.starts_with(COMPONENT_PREAMBLE) {
            return Err(ImageError::NotAComponent);
        }
        let layer = tar_of(file_name, component);
        let layer_digest = Digest::of(&layer);
        let config = serde_json::to_vec(&json!({
            "architecture": ARCHITECTURE,
            "os": OS,
            "config": { "Entrypoint": [format!("/{file_name}")] },
            "rootfs": { "type": "layers", "diff_ids": [layer_digest.to_string()] },
            "history": [{ "created_by": "host-runner image" }],
        }))
        .expect("JSON serialises");
        let manifest = serde_json::to_vec(&Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            config: Descriptor {
                media_type: CONFIG_MEDIA_TYPE.into(),
                digest: Digest::of(&config).to_string(),
                size: config.len() as u64,
                annotations: None,
            },
            layers: vec![Descriptor {
                media_type: LAYER_MEDIA_TYPE.into(),
                digest: layer_digest.to_string(),
                size: layer.len() as u64,
                annotations: None,
            }],
            annotations: None,
        })
        .expect("JSON serialises");
        Ok(Self {
            layer,
            config,
            manifest,
        })
    }
}

/// A tar with one regular file.
fn tar_of(file_name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_data(&mut header, file_name, bytes)
        .expect("a checked name and in-memory bytes always fit a tar");
    builder.into_inner().expect("writing to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_holds_the_component_at_the_entrypoint() {
        let component = b"\0asm\x0d\0\x01\0 and more".to_vec();
        let image = Image::new("vector-service.wasm", &component).unwrap();
        let mut archive = tar::Archive::new(image.layer.as_slice());
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("vector-service.wasm"));
        assert_eq!(entry.header().mode().unwrap(), 0o644);
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut read).unwrap();
        assert_eq!(read, component);
        drop(entry);
        assert!(entries.next().is_none());

        let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
        assert_eq!(config["os"], "wasip2");
        assert_eq!(config["architecture"], "wasm");
        assert_eq!(config["config"]["Entrypoint"][0], "/vector-service.wasm");
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            Digest::of(&image.layer).to_string()
        );
        let manifest: Manifest = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(
            manifest.config.digest,
            Digest::of(&image.config).to_string()
        );
        assert_eq!(manifest.layers.len(), 1);
        assert_eq!(manifest.layers[0].media_type, LAYER_MEDIA_TYPE);
        assert_eq!(manifest.layers[0].size, image.layer.len() as u64);
    }

    #[test]
    fn the_same_component_gives_the_same_digests() {
        let a = Image::new("a.wasm", COMPONENT_PREAMBLE).unwrap();
        let b = Image::new("a.wasm", COMPONENT_PREAMBLE).unwrap();
        assert_eq!(Digest::of(&a.manifest), Digest::of(&b.manifest));
        assert_ne!(
            Digest::of(&a.manifest),
            Digest::of(&Image::new("b.wasm", COMPONENT_PREAMBLE).unwrap().manifest)
        );
    }

    #[test]
    fn names_that_are_not_plain_files_are_refused() {
        for bad in ["", "../x.wasm", "dir/x.wasm", "x.txt", ".wasm", "x y.wasm"] {
            assert_eq!(
                Image::new(bad, COMPONENT_PREAMBLE).unwrap_err(),
                ImageError::BadFileName(bad.into())
            );
        }
    }

    #[test]
    fn only_components_are_packed() {
        // A core module (version 1), a truncated header, not Wasm at all.
        for bytes in [&b"\0asm\x01\0\0\0"[..], b"\0asm", b"ELF"] {
            assert_eq!(
                Image::new("x.wasm", bytes).unwrap_err(),
                ImageError::NotAComponent
            );
        }
    }
}

//! The content-addressed pull cache.
//!
//! Layout under the cache directory (`--cache-dir`, else
//! `$XDG_CACHE_HOME/host-runner/oci`, else `~/.cache/host-runner/oci`):
//! - `blobs/sha256/<hex>`: manifests, configs, component layers and
//!   signature payloads, each stored under the digest of its bytes;
//! - `refs/<hex of sha256(key)>`: small records mapping a name to a digest:
//!   the last manifest digest seen for a tag (`tag <registry>/<repo>:<tag>`),
//!   and the signature manifest seen for a manifest digest
//!   (`sig <registry>/<repo>@sha256:...`).
//!
//! Invariants: a blob file only ever appears complete and verified (written
//! to a temporary file in the same directory, checked, then renamed), and a
//! blob is re-hashed on every read, so a corrupted or truncated entry is
//! found, removed and reported as missing rather than used. A tag's record
//! is what the tag means offline (`--pull never`, or a registry that is
//! down): the trust root for tags there, so it is written only after the
//! pull it comes from verified everything (layout, signature, layer), and
//! whatever it points to is still re-hashed like any other blob.
//!
//! The directory is private: created 0700 (components pulled with
//! credentials are not world-readable), and an existing one that others
//! can write to is refused, one that others can read is narrowed to 0700
//! (which fails, and is refused, if another user owns it). Temporary files
//! are created with `O_CREAT | O_EXCL` (`create_new`), mode 0600, so a name
//! planted in advance, a symlink included, is never written through.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::digest::Digest;

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// A cache operation that failed; names the path.
#[derive(Debug, thiserror::Error)]
#[error("cache {path}: {source}")]
pub struct CacheError {
    /// The file or directory.
    pub path: PathBuf,
    /// The I/O error.
    pub source: io::Error,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A verified entry.
    Hit(Vec<u8>),
    /// No entry.
    Miss,
    /// An entry whose bytes did not match its digest; it has been removed.
    Corrupt,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Cache {
    /// The default cache directory, if a home or XDG cache directory is known.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| Path::new(&h).join(".cache"))
            })?;
        Some(base.join("host-runner").join("oci"))
    }

    /// Opens (creating if needed, mode 0700) a cache rooted at `root`;
    /// refuses a directory other users can write to or that is not ours.
    pub fn open(root: &Path) -> Result<Self, CacheError> {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError { path, source }
        };
        for dir in [root.join("blobs").join("sha256"), root.join("refs")] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(err(&dir))?;
        }
        for dir in [
            root.to_path_buf(),
            root.join("blobs"),
            root.join("blobs").join("sha256"),
            root.join("refs"),
        ] {
            let meta = fs::symlink_metadata(&dir).map_err(err(&dir))?;
            let mode = meta.permissions().mode() & 0o777;
            if !meta.is_dir() || mode & 0o022 != 0 {
                return Err(CacheError {
                    path: dir,
                    source: io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "not a private directory (mode {mode:o}): other users could \
                             plant components in it; use a directory only you can write \
                             (--cache-dir)"
                        ),
                    ),
                });
            }
            if mode & 0o077 != 0 {
                // Narrowing fails unless the directory is ours.
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(err(&dir))?;
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// Reads and verifies the blob with `digest`. A blob whose bytes do not
    /// hash to its name is removed and reported as [`Lookup::Corrupt`].
    pub fn blob(&self, digest: &Digest) -> Result<Lookup, CacheError> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Miss),
            Err(source) => return Err(CacheError { path, source }),
        };
        if digest.matches(&bytes) {
            return Ok(Lookup::Hit(bytes));
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(Lookup::Corrupt),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Lookup::Corrupt),
            Err(source) => Err(CacheError { path, source }),
        }
    }

    /// Stores `bytes` under `digest`, refusing bytes that do not match it.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), CacheError> {
        let path = self.blob_path(digest);
        if !digest.matches(bytes) {
            return Err(CacheError {
                path,
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("refusing to store bytes that do not hash to {digest}"),
                ),
            });
        }
        write_atomically(&path, bytes)
    }

    /// The digest recorded under `key`, if any.
    pub fn record(&self, key: &str) -> Result<Option<Digest>, CacheError> {
        let path = self.record_path(key);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError { path, source }),
        };
        // First line: the digest; second: the key, so a hash collision or a
        // hand-edited file cannot point one name at another name's record.
        let mut lines = text.lines();
        let digest = lines.next().and_then(|l| Digest::parse(l).ok());
        if lines.next() != Some(key) {
            return Ok(None);
        }
        Ok(digest)
    }

    /// Records `digest` under `key`.
    pub fn put_record(&self, key: &str, digest: &Digest) -> Result<(), CacheError> {
        write_atomically(
            &self.record_path(key),
            format!("{digest}\n{key}\n").as_bytes(),
        )
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.root
            .join("refs")
            .join(Digest::of(key.as_bytes()).hex())
    }
}

/// Creates `path` for writing, mode 0600: never an existing file, and
/// never through a symlink planted at that name (`O_CREAT | O_EXCL`).
fn create_new_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let temp = dir.join(format!(
        ".{name}.{}.{}.{nanos:x}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = create_new_private(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    result.map_err(|source| {
        let _ = fs::remove_file(&temp);
        CacheError {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_cache(name: &str) -> Cache {
        let dir = std::env::temp_dir().join(format!(
            "host-runner-cache-test-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        Cache::open(&dir).unwrap()
    }

    #[test]
    fn blobs_round_trip_and_corruption_is_detected() {
        let cache = temp_cache("blobs");
        let bytes = b"component bytes".to_vec();
        let digest = Digest::of(&bytes);
        assert_eq!(cache.blob(&digest).unwrap(), Lookup::Miss);
        cache.put_blob(&digest, &bytes).unwrap();
        assert_eq!(cache.blob(&digest).unwrap(), Lookup::Hit(bytes.clone()));

        // Flip one byte on disk: the next read finds it, removes it, and
        // the one after is a plain miss.
        let path = cache.blob_path(&digest);
        let mut on_disk = fs::read(&path).unwrap();
        on_disk[0] ^= 1;
        fs::write(&path, &on_disk).unwrap();
        assert_eq!(cache.blob(&digest).unwrap(), Lookup::Corrupt);
        assert!(!path.exists());
        assert_eq!(cache.blob(&digest).unwrap(), Lookup::Miss);

        // Bytes that do not match their digest are never stored.
        assert!(cache.put_blob(&digest, b"other").is_err());
        assert!(!path.exists());
        // No temporary files are left behind.
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(cache.root()).unwrap();
    }

    #[test]
    fn records() {
        let cache = temp_cache("records");
        let key = "tag 127.0.0.1:5000/vecproc/vector-service:0.1.0";
        assert_eq!(cache.record(key).unwrap(), None);
        let d1 = Digest::of(b"one");
        let d2 = Digest::of(b"two");
        cache.put_record(key, &d1).unwrap();
        assert_eq!(cache.record(key).unwrap(), Some(d1));
        cache.put_record(key, &d2).unwrap();
        assert_eq!(cache.record(key).unwrap(), Some(d2.clone()));
        // A record whose stored key differs is ignored.
        fs::write(cache.record_path(key), format!("{d2}\nsomething else\n")).unwrap();
        assert_eq!(cache.record(key).unwrap(), None);
        fs::remove_dir_all(cache.root()).unwrap();
    }

    #[test]
    fn the_directory_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let cache = temp_cache("private");
        for dir in ["", "blobs", "blobs/sha256", "refs"] {
            assert_eq!(mode(&cache.root().join(dir)), 0o700, "{dir}");
        }
        // Readable by others: narrowed on open.
        fs::set_permissions(cache.root(), fs::Permissions::from_mode(0o755)).unwrap();
        Cache::open(cache.root()).unwrap();
        assert_eq!(mode(cache.root()), 0o700);
        // Writable by others: refused, and the message says why.
        fs::set_permissions(cache.root().join("refs"), fs::Permissions::from_mode(0o777)).unwrap();
        let e = Cache::open(cache.root()).unwrap_err();
        assert!(e.to_string().contains("not a private directory"), "{e}");
        fs::remove_dir_all(cache.root()).unwrap();
    }

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        use std::os::unix::fs::PermissionsExt as _;
        let cache = temp_cache("symlink");
        let victim = cache.root().join("victim");
        fs::write(&victim, b"untouched").unwrap();
        let planted = cache.root().join("refs").join(".planted.tmp");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let e = create_new_private(&planted).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        // A fresh name is created private.
        let fresh = cache.root().join("refs").join(".fresh.tmp");
        drop(create_new_private(&fresh).unwrap());
        let mode = fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::remove_dir_all(cache.root()).unwrap();
    }
}

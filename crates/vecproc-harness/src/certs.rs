//! Test certificates made with the `openssl` CLI: a self-signed certificate
//! for 127.0.0.1, and a CA with a certificate it issued (for a server or a
//! client). Used by the TLS suites and the protocol benchmark; the keys live
//! in the caller's temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `openssl` failed: the arguments and what it printed.
#[derive(Debug, thiserror::Error)]
#[error("openssl {args:?}: {message}")]
pub struct OpensslError {
    /// The arguments.
    pub args: Vec<String>,
    /// Its stderr, or why it did not start.
    pub message: String,
}

/// Runs `openssl ARGS`, which must succeed.
pub fn openssl(args: &[&str]) -> Result<(), OpensslError> {
    let error = |message: String| OpensslError {
        args: args.iter().map(|a| a.to_string()).collect(),
        message,
    };
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| error(format!("cannot run it ({e}); apt-get install openssl")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(error(String::from_utf8_lossy(&out.stderr).into_owned()))
    }
}

/// The key type of a new certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// ECDSA P-256.
    Ec,
    /// RSA 2048.
    Rsa,
}

impl Key {
    fn newkey(self) -> &'static [&'static str] {
        match self {
            Key::Rsa => &["-newkey", "rsa:2048"],
            Key::Ec => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A self-signed certificate with subject `CN=cn` for `IP:127.0.0.1`, as
/// `DIR/NAME.crt` and `DIR/NAME.key`: `(cert, key)`.
pub fn self_signed(
    dir: &Path,
    name: &str,
    key: Key,
    cn: &str,
) -> Result<(PathBuf, PathBuf), OpensslError> {
    let (cert, key_file) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let subject = format!("/CN={cn}");
    openssl(
        &[
            &["req", "-x509"][..],
            key.newkey(),
            &["-nodes", "-days", "1", "-subj", &subject],
            &["-addext", "subjectAltName=IP:127.0.0.1"],
            &["-keyout", path(&key_file), "-out", path(&cert)],
        ]
        .concat(),
    )?;
    Ok((cert, key_file))
}

/// What a certificate issued by [`issued`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A server for `IP:127.0.0.1`.
    Server,
    /// A TLS client.
    Client,
}

/// A CA (`DIR/NAME-ca.crt`) and an ECDSA certificate it issued for
/// `usage` (`DIR/NAME.crt`, `DIR/NAME.key`; a v3 certificate, as webpki
/// requires): `(ca, cert, key)`.
pub fn issued(
    dir: &Path,
    name: &str,
    usage: Usage,
) -> Result<(PathBuf, PathBuf, PathBuf), OpensslError> {
    let (ca_cert, ca_key) =
        self_signed(dir, &format!("{name}-ca"), Key::Ec, &format!("{name} CA"))?;
    let file = |ext: &str| dir.join(format!("{name}.{ext}"));
    let (csr, key, cert, ext) = (file("csr"), file("key"), file("crt"), file("ext"));
    let cn = format!("/CN={name}");
    openssl(
        &[
            &["req", "-new"][..],
            Key::Ec.newkey(),
            &[
                "-nodes",
                "-subj",
                &cn,
                "-keyout",
                path(&key),
                "-out",
                path(&csr),
            ],
        ]
        .concat(),
    )?;
    let extensions = match usage {
        Usage::Server => {
            "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n"
        }
        Usage::Client => "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    };
    std::fs::write(&ext, extensions).map_err(|e| OpensslError {
        args: vec![],
        message: format!("writing {}: {e}", ext.display()),
    })?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        path(&csr),
        "-CA",
        path(&ca_cert),
        "-CAkey",
        path(&ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        path(&ext),
        "-out",
        path(&cert),
    ])?;
    Ok((ca_cert, cert, key))
}

//! Where host-runner listens: `--addr` (repeatable) names TCP addresses
//! (`127.0.0.1:8080`, `[::1]:8080`) and Unix sockets (`unix:/run/app.sock`).
//!
//! A Unix socket is created with `--unix-socket-mode` (0660 by default, so
//! a proxy in the same group can connect) and removed when host-runner
//! exits. A stale socket left by a process that died is replaced; a path
//! where something still listens, or that is not a socket, stops startup
//! with one line naming it. Parsing is pure and unit-tested; binding is in
//! [`Listener::bind`].
//!
//! `--systemd-listenfd` (`wasmtime serve`'s flag from Wasmtime 50; 48 has none) takes
//! the listening sockets a service manager passed instead: systemd's
//! `LISTEN_FDS` and `LISTEN_PID` protocol, read with the listenfd crate
//! before any thread starts ([`inherited`]). Those sockets belong to the
//! manager, so a Unix socket file is left in place at exit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// One `--addr` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix domain socket at this path.
    Unix(PathBuf),
}

impl std::str::FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, as in unix:/run/host-runner.sock".into());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        s.parse::<SocketAddr>().map(Self::Tcp).map_err(|e| {
            format!("{s:?} is not a socket address (HOST:PORT, [V6]:PORT) or unix:PATH ({e})")
        })
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Parses `--unix-socket-mode` (octal, as chmod takes it).
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| format!("{s:?} is not an octal mode such as 660"))?;
    if mode > 0o777 {
        return Err(format!("{s:?} has bits beyond 0777"));
    }
    Ok(mode)
}

/// A bound listener.
pub enum Listener {
    /// TCP.
    Tcp(tokio::net::TcpListener),
    /// A Unix socket; the guard, for a socket this process made, removes
    /// its file when dropped.
    Unix(tokio::net::UnixListener, Option<SocketFile>),
}

/// A listening socket a service manager passed, not yet on the runtime.
pub enum Inherited {
    /// A TCP listener.
    Tcp(std::net::TcpListener),
    /// A Unix socket listener.
    Unix(std::os::unix::net::UnixListener),
}

/// The listening sockets passed by systemd's socket activation protocol
/// (`LISTEN_FDS` sockets from fd 3, for this process if `LISTEN_PID` says
/// so), in order; empty when none were passed. Call it before any thread
/// starts: it removes the two variables from the environment, so neither
/// reaches a guest. A passed descriptor that is not a listening TCP or
/// Unix stream socket is an error naming its number.
pub fn inherited() -> Result<Vec<Inherited>, String> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut out = Vec::with_capacity(fds.len());
    for idx in 0..fds.len() {
        let fd = 3 + idx;
        if let Ok(Some(l)) = fds.take_tcp_listener(idx) {
            out.push(Inherited::Tcp(l));
            continue;
        }
        match fds.take_unix_listener(idx) {
            Ok(Some(l)) => out.push(Inherited::Unix(l)),
            Ok(None) => {}
            Err(e) => {
                return Err(format!(
                    "--systemd-listenfd: descriptor {fd} (LISTEN_FDS) is not a listening \
                     TCP or Unix stream socket: {e}"
                ))
            }
        }
    }
    Ok(out)
}

impl Listener {
    /// An inherited socket on the runtime.
    pub fn adopt(inherited: Inherited) -> std::io::Result<Self> {
        match inherited {
            Inherited::Tcp(l) => {
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l).map(Self::Tcp)
            }
            Inherited::Unix(l) => {
                l.set_nonblocking(true)?;
                tokio::net::UnixListener::from_std(l).map(|l| Self::Unix(l, None))
            }
        }
    }
}

/// Removes a Unix socket's file when dropped (the listener closing does
/// not), if it is still the socket this process made.
pub struct SocketFile {
    path: PathBuf,
    inode: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt as _;
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Why a listener could not be bound. One line naming the address.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The OS refused (in use, no permission, no such interface).
    #[error("failed to bind {addr}: {source}")]
    Os {
        /// The address as given.
        addr: ListenAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The socket path is taken by something that is not a stale socket.
    #[error("failed to bind {addr}: {why}")]
    Taken {
        /// The address as given.
        addr: ListenAddr,
        /// What is there.
        why: String,
    },
}

impl Listener {
    /// Binds `addr`; a Unix socket gets `mode`.
    pub async fn bind(addr: &ListenAddr, mode: u32) -> Result<Self, BindError> {
        let os = |source| BindError::Os {
            addr: addr.clone(),
            source,
        };
        match addr {
            ListenAddr::Tcp(a) => tokio::net::TcpListener::bind(a)
                .await
                .map(Self::Tcp)
                .map_err(os),
            ListenAddr::Unix(path) => {
                clear_stale(path).map_err(|why| BindError::Taken {
                    addr: addr.clone(),
                    why,
                })?;
                let listener = tokio::net::UnixListener::bind(path).map_err(os)?;
                use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(os)?;
                let inode = std::fs::symlink_metadata(path).map_err(os)?.ino();
                Ok(Self::Unix(
                    listener,
                    Some(SocketFile {
                        path: path.clone(),
                        inode,
                    }),
                ))
            }
        }
    }

    /// What `--addr` this listener answers on, with the port the OS chose
    /// for port 0, as the serving line shows it.
    pub fn url(&self, tls: bool) -> String {
        match self {
            Self::Tcp(l) => {
                let scheme = if tls { "https" } else { "http" };
                match l.local_addr() {
                    Ok(addr) => format!("{scheme}://{addr}/"),
                    Err(_) => format!("{scheme}://?/"),
                }
            }
            Self::Unix(l, _) => match l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
            {
                Some(path) => format!("unix:{path}"),
                None => "unix:(unnamed)".into(),
            },
        }
    }
}

/// Makes room for a socket at `path`: nothing there is fine, a socket no
/// one listens on (a crashed server's) is removed, anything else is refused.
fn clear_stale(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt as _;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{} exists and is not a socket; remove it or choose another path",
            path.display()
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(format!(
            "{} is in use: another server listens on it",
            path.display()
        ));
    }
    std::fs::remove_file(path).map_err(|e| format!("cannot remove the stale socket: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_as_tcp_or_unix() {
        assert_eq!(
            "127.0.0.1:8080".parse::<ListenAddr>(),
            Ok(ListenAddr::Tcp("127.0.0.1:8080".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:0".parse::<ListenAddr>(),
            Ok(ListenAddr::Tcp("[::1]:0".parse().unwrap()))
        );
        assert_eq!(
            "unix:/run/x.sock".parse::<ListenAddr>(),
            Ok(ListenAddr::Unix("/run/x.sock".into()))
        );
        assert_eq!(
            "unix:rel.sock".parse::<ListenAddr>().unwrap().to_string(),
            "unix:rel.sock"
        );
        assert!("unix:"
            .parse::<ListenAddr>()
            .unwrap_err()
            .contains("needs a path"));
        let err = "localhost:80".parse::<ListenAddr>().unwrap_err();
        assert!(err.contains("not a socket address"), "{err}");
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("0o777"), Ok(0o777));
        assert!(parse_mode("999").is_err());
        assert!(parse_mode("1777").is_err());
    }

    #[test]
    fn a_path_that_is_not_a_socket_is_refused_and_left_alone() {
        let dir = std::env::temp_dir().join(format!("host-runner-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("regular");
        std::fs::write(&file, "keep me").unwrap();
        let err = clear_stale(&file).unwrap_err();
        assert!(err.contains("exists and is not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
        assert_eq!(clear_stale(&dir.join("absent")), Ok(()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

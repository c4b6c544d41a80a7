//! What a guest is granted beyond the `wasi:http/proxy` world, as
//! `wasmtime serve` grants it: `-S cli` links every WASI p2 interface
//! (environment, arguments, exit, filesystem, sockets, terminals) and with
//! it the environment (`--env`, `-S inherit-env`, `INSTANCE_ID`), preopened
//! directories (`--dir HOST[::GUEST]`) and the network (`-S inherit-network`,
//! `allow-ip-name-lookup`, `tcp`, `udp`).
//!
//! The environment follows `wasmtime serve` exactly: it reaches any guest
//! that imports `wasi:cli/environment`. The p2 proxy world has no such
//! import, so a p2 guest sees the environment only with `-S cli`; WASI 0.3's
//! `wasi:cli` is linked for p3 guests in both modes (as `wasmtime serve` 48
//! links it), so a p3 guest sees `--env`, `-S inherit-env` and
//! `INSTANCE_ID` without `-S cli`. host-runner's registry secrets are never
//! in it (`-S inherit-env` skips them).
//!
//! The default stays the proxy world with no ambient capabilities. Every
//! grant is explicit and [`Capabilities::summary`] lists them for the one
//! startup log line; environment values are never logged, only names.
//! Resolving (`--env NAME` reads the host's value, `--dir` checks the host
//! directory) happens once, at startup, so a bad flag fails before binding.

use std::path::PathBuf;

use crate::options::WasiOptions;

/// A preopened directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// The host directory.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
}

/// Socket permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    /// `-S inherit-network`: any address (implies tcp and udp).
    pub inherit: bool,
    /// `-S allow-ip-name-lookup`.
    pub ip_name_lookup: Option<bool>,
    /// `-S tcp`.
    pub tcp: Option<bool>,
    /// `-S udp`.
    pub udp: Option<bool>,
}

/// Everything granted to each instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `-S cli`: link every WASI p2 interface, not just the proxy world's.
    pub cli: bool,
    /// Environment variables, in the order they are set (later wins).
    pub env: Vec<(String, String)>,
    /// Names given with a bare `--env NAME` that the host does not have.
    pub env_unset: Vec<String>,
    /// Preopened directories.
    pub preopens: Vec<Preopen>,
    /// Socket permissions.
    pub network: Network,
    /// `-S network-error-code`.
    pub network_error_code: bool,
    /// `-S max-random-size`.
    pub max_random_size: Option<u64>,
    /// `-S cwd`.
    pub cwd: Option<String>,
}

/// A `--env` or `--dir` that cannot be granted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CapabilityError {
    /// `--env` with an empty name.
    #[error("--env {0:?}: the variable name is empty")]
    EmptyEnvName(String),
    /// A host variable that is not UTF-8.
    #[error("environment variable `{0}` not valid utf-8")]
    NotUtf8(String),
    /// `--dir` whose host side is not a directory.
    #[error("--dir {arg:?}: {host} is not a directory ({why})")]
    NotADirectory {
        /// The flag value.
        arg: String,
        /// The host path.
        host: String,
        /// Why.
        why: String,
    },
}

/// Reads a host variable for `--env NAME` or `-S inherit-env`.
type HostEnv<'a> = &'a dyn Fn(&str) -> Option<std::ffi::OsString>;

impl Capabilities {
    /// Resolves the grants of `-S` options, `--env` and `--dir` values
    /// against the host environment (`host_env`, and `host_vars` for
    /// `-S inherit-env`).
    pub fn resolve(
        wasi: &WasiOptions,
        envs: &[String],
        dirs: &[String],
        host_env: HostEnv<'_>,
        host_vars: &[(std::ffi::OsString, std::ffi::OsString)],
    ) -> Result<Self, CapabilityError> {
        let mut caps = Capabilities {
            cli: wasi.cli,
            network: Network {
                inherit: wasi.inherit_network,
                ip_name_lookup: wasi.allow_ip_name_lookup,
                tcp: wasi.tcp,
                udp: wasi.udp,
            },
            network_error_code: wasi.network_error_code,
            max_random_size: wasi.max_random_size,
            cwd: wasi.cwd.clone(),
            ..Default::default()
        };
        if wasi.inherit_env {
            for (k, v) in host_vars {
                let k = k
                    .to_str()
                    .ok_or_else(|| CapabilityError::NotUtf8(k.to_string_lossy().into()))?;
                let v = v
                    .to_str()
                    .ok_or_else(|| CapabilityError::NotUtf8(k.to_string()))?;
                caps.env.push((k.to_string(), v.to_string()));
            }
        }
        for arg in envs {
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            if name.is_empty() {
                return Err(CapabilityError::EmptyEnvName(arg.clone()));
            }
            let value = match value {
                Some(v) => v,
                None => match host_env(name) {
                    Some(v) => v
                        .into_string()
                        .map_err(|_| CapabilityError::NotUtf8(name.to_string()))?,
                    None => {
                        // As `wasmtime serve`: the variable stays unset.
                        caps.env_unset.push(name.to_string());
                        continue;
                    }
                },
            };
            caps.env.push((name.to_string(), value));
        }
        for arg in dirs {
            let (host, guest) = match arg.split_once("::") {
                Some((host, guest)) => (host, guest),
                None => (arg.as_str(), arg.as_str()),
            };
            match std::fs::metadata(host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(CapabilityError::NotADirectory {
                        arg: arg.clone(),
                        host: host.into(),
                        why: "it is a file".into(),
                    })
                }
                Err(e) => {
                    return Err(CapabilityError::NotADirectory {
                        arg: arg.clone(),
                        host: host.into(),
                        why: e.to_string(),
                    })
                }
            }
            caps.preopens.push(Preopen {
                host: PathBuf::from(host),
                guest: guest.to_string(),
            });
        }
        Ok(caps)
    }

    /// Grants that take effect only with `-S cli`, when it is off. `p3`:
    /// the served component is a WASI 0.3 one, which sees the environment
    /// without `-S cli` (see the module docs).
    pub fn inert_without_cli(&self, p3: bool) -> Vec<&'static str> {
        if self.cli {
            return Vec::new();
        }
        let mut inert = Vec::new();
        if !p3 && (!self.env.is_empty() || !self.env_unset.is_empty()) {
            inert.push("--env / -S inherit-env");
        }
        if !self.preopens.is_empty() {
            inert.push("--dir");
        }
        if self.network != Network::default() {
            inert.push("-S inherit-network / tcp / udp / allow-ip-name-lookup");
        }
        inert
    }

    /// One line per grant, for the startup log (variable names, never
    /// values); nothing for the default, which grants nothing beyond the
    /// proxy world (so the startup output stays `wasmtime serve`'s).
    pub fn summary(&self) -> Vec<String> {
        if !self.cli {
            return Vec::new();
        }
        let mut lines =
            vec!["-S cli: wasi:cli, wasi:filesystem and wasi:sockets are linked".into()];
        let mut names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        names.dedup();
        lines.push(format!(
            "environment: {}INSTANCE_ID",
            names.iter().map(|n| format!("{n}, ")).collect::<String>()
        ));
        for name in &self.env_unset {
            lines.push(format!(
                "environment: {name} is not set on the host, so it stays unset"
            ));
        }
        for p in &self.preopens {
            lines.push(format!(
                "directory: {} as {} (read-write)",
                p.host.display(),
                p.guest
            ));
        }
        if self.preopens.is_empty() {
            lines.push("directories: none (--dir HOST[::GUEST] grants one)".into());
        }
        let n = &self.network;
        lines.push(if n.inherit {
            format!(
                "network: any address (-S inherit-network), tcp {}, udp {}, name lookup {}",
                on(n.tcp.unwrap_or(true)),
                on(n.udp.unwrap_or(true)),
                on(n.ip_name_lookup.unwrap_or(false)),
            )
        } else {
            "network: every address denied (-S inherit-network grants it)".into()
        });
        lines
    }

    /// Configures one instance's WASI context.
    pub fn apply(
        &self,
        builder: &mut wasmtime_wasi::WasiCtxBuilder,
        instance_id: u64,
    ) -> wasmtime::Result<()> {
        for (k, v) in &self.env {
            builder.env(k, v);
        }
        builder.env("INSTANCE_ID", instance_id.to_string());
        for p in &self.preopens {
            builder.preopened_dir(&p.host, &p.guest, wasmtime_wasi::FsPerms::ReadWrite)?;
        }
        if let Some(cwd) = &self.cwd {
            builder.initial_cwd(cwd);
        }
        let n = &self.network;
        if n.inherit {
            builder.inherit_network();
            builder.allow_tcp(true).allow_udp(true);
        }
        if let Some(enable) = n.ip_name_lookup {
            builder.allow_ip_name_lookup(enable);
        }
        if let Some(enable) = n.tcp {
            builder.allow_tcp(enable);
        }
        if let Some(enable) = n.udp {
            builder.allow_udp(enable);
        }
        if let Some(max) = self.max_random_size {
            builder.max_random_size(max);
        }
        Ok(())
    }
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> Option<std::ffi::OsString> {
        (name == "HOSTVAR").then(|| "from-host".into())
    }

    #[test]
    fn env_follows_wasmtime() {
        let wasi = WasiOptions {
            cli: true,
            ..Default::default()
        };
        let envs = [
            "A=1".to_string(),
            "B=x=y".into(),
            "HOSTVAR".into(),
            "MISSING".into(),
        ];
        let caps = Capabilities::resolve(&wasi, &envs, &[], &host, &[]).unwrap();
        assert_eq!(
            caps.env,
            [
                ("A".to_string(), "1".to_string()),
                ("B".into(), "x=y".into()),
                ("HOSTVAR".into(), "from-host".into()),
            ]
        );
        assert_eq!(caps.env_unset, ["MISSING"]);
        assert!(caps
            .summary()
            .iter()
            .any(|l| l == "environment: A, B, HOSTVAR, INSTANCE_ID"));
        assert!(caps.summary().iter().all(|l| !l.contains("from-host")));
        assert_eq!(
            Capabilities::resolve(&wasi, &["=v".into()], &[], &host, &[]),
            Err(CapabilityError::EmptyEnvName("=v".into()))
        );

        // -S inherit-env copies everything first; --env is applied after it.
        let wasi = WasiOptions {
            cli: true,
            inherit_env: true,
            ..Default::default()
        };
        let vars = [("A".into(), "host".into()), ("PATH".into(), "/bin".into())];
        let caps = Capabilities::resolve(&wasi, &["A=flag".into()], &[], &host, &vars).unwrap();
        assert_eq!(
            caps.env.last().unwrap(),
            &("A".to_string(), "flag".to_string())
        );
        assert_eq!(caps.env.len(), 3);
    }

    #[test]
    fn env_is_inert_without_cli_for_p2_only() {
        let envs = ["A=1".to_string()];
        let caps = Capabilities::resolve(&WasiOptions::default(), &envs, &[], &host, &[]).unwrap();
        assert_eq!(caps.inert_without_cli(false), ["--env / -S inherit-env"]);
        assert!(caps.inert_without_cli(true).is_empty());
    }

    #[test]
    fn dirs_are_checked_at_startup() {
        let wasi = WasiOptions::default();
        let tmp = std::env::temp_dir();
        let t = tmp.display().to_string();
        let caps =
            Capabilities::resolve(&wasi, &[], &[t.clone(), format!("{t}::/data")], &host, &[])
                .unwrap();
        assert_eq!(caps.preopens[0].guest, t);
        assert_eq!(caps.preopens[1].guest, "/data");
        assert_eq!(caps.inert_without_cli(false), ["--dir"]);
        let err = Capabilities::resolve(&wasi, &[], &["/no/such/dir::/d".into()], &host, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--dir \"/no/such/dir::/d\": /no/such/dir is not a directory"),
            "{err}"
        );
    }

    #[test]
    fn default_grants_nothing() {
        let caps = Capabilities::resolve(&WasiOptions::default(), &[], &[], &host, &[]).unwrap();
        assert!(!caps.cli);
        assert!(caps.inert_without_cli(false).is_empty());
        assert!(caps.summary().is_empty());
    }
}

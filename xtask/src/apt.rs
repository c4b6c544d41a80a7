//! Debian packages the suites need (Chromium, the OCI registry), installed
//! with apt-get when their binary is missing.
//!
//! A package that starts a system service on install (docker-registry does,
//! with its packaged config listening on every interface at :5000) has that
//! service stopped and disabled at once: the suites start their own
//! instances on loopback, and nothing of ours listens beyond it.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use crate::run::{run, step};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A system service a package starts on install.
pub struct Service {
    /// The service name (systemd unit and init script).
    pub name: &'static str,
    /// A command-line fragment only the packaged instance has (its config
    /// path), to kill it if no init system manages it.
    pub packaged_cmdline: &'static str,
}

/// Debian's Redis (the keyvalue suite and the stateful benchmark start
/// their own on free loopback ports); the packaged service, on
/// 127.0.0.1:6379, is stopped at once.
pub fn ensure_redis() -> Result<()> {
    ensure(
        "/usr/bin/redis-server",
        &["redis-server"],
        &[Service {
            name: "redis-server",
            packaged_cmdline: "^/usr/bin/redis-server 127.0.0.1:6379",
        }],
    )
}

/// Debian's containerd (a service only where an init system runs).
pub const CONTAINERD: Service = Service {
    name: "containerd",
    packaged_cmdline: "^/usr/bin/containerd$",
};

/// Debian's HAProxy (its packaged service proxies nothing, but listens
/// where an init system starts it).
pub const HAPROXY: Service = Service {
    name: "haproxy",
    packaged_cmdline: "/etc/haproxy/haproxy.cfg",
};

/// Debian's OCI registry, whose packaged service listens on `*:5000`.
pub fn ensure_registry() -> Result<()> {
    ensure(
        "/usr/bin/docker-registry",
        &["docker-registry", "apache2-utils"],
        &[Service {
            name: "docker-registry",
            packaged_cmdline: "/etc/docker/registry/config.yml",
        }],
    )
}

/// What the containerd shim's build needs: `protoc` (its task API's
/// protobufs) and libseccomp's headers and library (youki's libcontainer),
/// found through pkg-config.
pub fn ensure_shim_build() -> Result<()> {
    ensure("/usr/bin/protoc", &["protobuf-compiler"], &[])?;
    ensure("/usr/bin/pkg-config", &["pkg-config"], &[])?;
    ensure("/usr/include/seccomp.h", &["libseccomp-dev"], &[])
}

/// Installs `packages` when `binary` is missing; then stops and disables
/// each of `services` the install may have started.
pub fn ensure(binary: &str, packages: &[&str], services: &[Service]) -> Result<()> {
    install(binary, packages, services, true)
}

/// [`ensure`] without the packages' recommendations (Prometheus recommends
/// the node exporter, one more service that would listen on every
/// interface).
pub fn ensure_without_recommends(
    binary: &str,
    packages: &[&str],
    services: &[Service],
) -> Result<()> {
    install(binary, packages, services, false)
}

fn install(binary: &str, packages: &[&str], services: &[Service], recommends: bool) -> Result<()> {
    if Path::new(binary).exists() {
        return Ok(());
    }
    let list = packages.join(" ");
    if !is_root() {
        bail!(
            "{binary} is missing and installing it needs root: run \
             `sudo apt-get install -y {list}` and try again"
        );
    }
    step(&format!("installing {list} (apt-get install -y)"));
    let install = || {
        let mut cmd = Command::new("apt-get");
        cmd.args(["install", "-y"]);
        if !recommends {
            cmd.arg("--no-install-recommends");
        }
        cmd.args(packages).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    if run(&mut install()).is_err() {
        step("apt-get install failed; refreshing the package lists and retrying");
        run(Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        run(&mut install())?;
    }
    for service in services {
        stop_service(service);
    }
    if !Path::new(binary).exists() {
        bail!("apt-get installed {list} but {binary} is still missing");
    }
    Ok(())
}

/// Stops and disables a system service by every means this machine may
/// have (systemd, sysvinit), and kills a process still running from its
/// packaged binary. Failures are ignored: most containers run no init.
fn stop_service(service: &Service) {
    let Service {
        name,
        packaged_cmdline,
    } = service;
    step(&format!(
        "stopping the {name} system service the package may have started"
    ));
    let quiet = |cmd: &mut Command| {
        let _ = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    };
    quiet(Command::new("systemctl").args(["disable", "--now", name]));
    quiet(Command::new("invoke-rc.d").args([name, "stop"]));
    quiet(Command::new("update-rc.d").args([name, "disable"]));
    quiet(Command::new("pkill").args(["-f", packaged_cmdline]));
}

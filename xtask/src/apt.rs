//! Debian packages the tasks need, each found by one file it installs and
//! installed with apt-get (as root) when that file is missing.
//!
//! A package that starts a system service on install (docker-registry does,
//! with its packaged config listening on every interface at :5000) has that
//! service stopped and disabled at once: the suites start their own
//! instances on loopback, and nothing of ours listens beyond it.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Result};

use crate::run::{run, step};

/// Packages found by a file they install, with the system services they
/// may start: (service name, a command-line fragment only the packaged
/// instance has, to kill it where no init system manages it).
pub struct Need {
    /// The file that tells the packages are installed.
    pub file: &'static str,
    packages: &'static [&'static str],
    services: &'static [(&'static str, &'static str)],
    /// `--no-install-recommends` (Prometheus recommends the node exporter,
    /// one more service that would listen on every interface).
    bare: bool,
}

const fn need(file: &'static str, packages: &'static [&'static str]) -> Need {
    Need {
        file,
        packages,
        services: &[],
        bare: false,
    }
}

/// Debian's Redis; the packaged service, on 127.0.0.1:6379, is stopped.
pub const REDIS: Need = Need {
    services: &[("redis-server", "^/usr/bin/redis-server 127.0.0.1:6379")],
    ..need("/usr/bin/redis-server", &["redis-server"])
};
/// Debian's OCI registry (its service listens on `*:5000`) and htpasswd.
pub const REGISTRY: Need = Need {
    services: &[("docker-registry", "/etc/docker/registry/config.yml")],
    ..need("/usr/bin/docker-registry", &["docker-registry"])
};
pub const HTPASSWD: Need = need("/usr/bin/htpasswd", &["apache2-utils"]);
/// containerd and runc (a service only where an init system runs).
pub const CONTAINERD: Need = Need {
    services: &[("containerd", "^/usr/bin/containerd$")],
    ..need("/usr/bin/containerd", &["containerd", "runc"])
};
pub const HAPROXY: Need = Need {
    services: &[("haproxy", "/etc/haproxy/haproxy.cfg")],
    ..need("/usr/sbin/haproxy", &["haproxy"])
};
/// Prometheus, whose packaged service listens on every interface at :9090.
pub const PROMETHEUS: Need = Need {
    services: &[("prometheus", "^/usr/bin/prometheus$")],
    bare: true,
    ..need("/usr/bin/prometheus", &["prometheus"])
};
pub const CURL: Need = need("/usr/bin/curl", &["curl"]);
pub const CHROMIUM: Need = need("/usr/bin/chromium", &["chromium"]);
pub const WRK: Need = need("/usr/bin/wrk", &["wrk"]);
pub const H2LOAD: Need = need("/usr/bin/h2load", &["nghttp2-client"]);
/// What the containerd shim's build needs: `protoc` (its task API's
/// protobufs), pkg-config and libseccomp (youki's libcontainer).
pub const SHIM_BUILD: [Need; 3] = [
    need("/usr/bin/protoc", &["protobuf-compiler"]),
    need("/usr/bin/pkg-config", &["pkg-config"]),
    need("/usr/include/seccomp.h", &["libseccomp-dev"]),
];

/// Installs each of `needs` whose file is missing, then stops and disables
/// the services the install may have started.
pub fn ensure(needs: &[Need]) -> Result<()> {
    for need in needs.iter().filter(|n| !Path::new(n.file).exists()) {
        install(need)?;
    }
    Ok(())
}

fn install(need: &Need) -> Result<()> {
    let list = need.packages.join(" ");
    let root = Command::new("id").arg("-u").output();
    if !root.is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0") {
        bail!(
            "{} is missing and installing it needs root: run \
             `sudo apt-get install -y {list}` and try again",
            need.file
        );
    }
    step(&format!("installing {list} (apt-get install -y)"));
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    let mut args = vec!["install", "-y"];
    if need.bare {
        args.push("--no-install-recommends");
    }
    args.extend(need.packages);
    if run(&mut apt(&args)).is_err() {
        step("apt-get install failed; refreshing the package lists and retrying");
        run(&mut apt(&["update"]))?;
        run(&mut apt(&args))?;
    }
    for (name, packaged_cmdline) in need.services {
        // By every means this machine may have (systemd, sysvinit, a
        // bare process); failures are ignored: most containers run no init.
        step(&format!(
            "stopping the {name} service the package may have started"
        ));
        for args in [
            &["systemctl", "disable", "--now", name][..],
            &["invoke-rc.d", name, "stop"],
            &["update-rc.d", name, "disable"],
            &["pkill", "-f", packaged_cmdline],
        ] {
            let _ = Command::new(args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    if !Path::new(need.file).exists() {
        bail!(
            "apt-get installed {list} but {} is still missing",
            need.file
        );
    }
    Ok(())
}

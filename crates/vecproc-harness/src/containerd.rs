//! A real containerd: Debian's `containerd` 1.6 started as a child process
//! with everything under a temporary directory (root, state, its gRPC,
//! ttrpc and debug sockets), the CRI plugin off (nothing listens on TCP),
//! and the directory holding host-runner's shim first on its `PATH`, so
//! runtime `io.containerd.host-runner.v1` finds
//! `containerd-shim-host-runner-v1`. [`Containerd::ctr`] drives it with
//! Debian's `ctr` in a namespace of its own.
//!
//! When dropped, every task in the namespace is killed and deleted, the
//! containers and images removed, containerd stopped, and what the shims
//! left under `/run/containerd/` (they put their sockets there whatever the
//! config says) and the temporary directory removed. Needs root.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::temp_dir;

/// Debian's binaries.
pub const CONTAINERD: &str = "/usr/bin/containerd";
/// Debian's client.
pub const CTR: &str = "/usr/bin/ctr";
/// The runtime host-runner's shim serves.
pub const RUNTIME: &str = "io.containerd.host-runner.v1";
/// Where shims put their sockets, whatever containerd's config says.
const SHIM_SOCKETS: &str = "/run/containerd/s";
/// Where host-runner's shim (runwasi's library) keeps per-namespace state.
const SHIM_STATE: &str = "/run/containerd/host-runner";

/// Why containerd did not come up.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    /// Not installed.
    #[error("{CONTAINERD} is missing: `apt-get install containerd runc` (cargo xtask test does)")]
    Missing,
    /// Not root: containerd needs it for mounts, namespaces and cgroups.
    #[error("containerd needs root (mounts, namespaces, cgroups); this test runs as uid {0}")]
    NotRoot(String),
    /// The shim is not built.
    #[error(
        "{0} is missing: `cargo build -p containerd-shim-host-runner` (cargo xtask test does)"
    )]
    NoShim(PathBuf),
    /// Writing its config or starting it failed.
    #[error("starting containerd: {0}")]
    Io(#[from] std::io::Error),
    /// `ctr version` got no answer within 20 s.
    #[error("containerd did not answer on {socket} within 20 s; its log:\n{log}")]
    NoAnswer {
        /// The socket.
        socket: String,
        /// What it printed.
        log: String,
    },
}

/// Why a `ctr` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtrError {
    /// `ctr` could not be started.
    #[error("ctr {args}: {source}")]
    Spawn {
        /// The arguments given.
        args: String,
        /// Why.
        source: std::io::Error,
    },
    /// `ctr` ran and failed.
    #[error("ctr {args} failed ({status}): {output}")]
    Failed {
        /// The arguments given.
        args: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed (stderr, then stdout).
        output: String,
    },
}

/// A running containerd.
pub struct Containerd {
    child: Option<Child>,
    /// The temporary directory (config, root, state, sockets, log).
    pub dir: PathBuf,
    /// Its gRPC socket.
    pub socket: PathBuf,
    /// The namespace [`Containerd::ctr`] works in.
    pub namespace: String,
    shim_sockets_before: Vec<PathBuf>,
}

impl Containerd {
    /// Starts containerd with `shim` (the built
    /// `containerd-shim-host-runner-v1`) on its `PATH`.
    pub fn try_start(shim: &Path) -> Result<Containerd, ContainerdError> {
        if !Path::new(CONTAINERD).exists() || !Path::new(CTR).exists() {
            return Err(ContainerdError::Missing);
        }
        let uid = crate::cmd::output(Command::new("id").arg("-u")).unwrap_or_default();
        if uid.trim() != "0" {
            return Err(ContainerdError::NotRoot(uid.trim().to_string()));
        }
        if !shim.exists() {
            return Err(ContainerdError::NoShim(shim.to_path_buf()));
        }
        let dir = temp_dir("containerd");
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\n\
                 root = \"{root}\"\n\
                 state = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n\
                 [ttrpc]\n  address = \"{sock}.ttrpc\"\n\
                 [debug]\n  address = \"{debug}\"\n  level = \"info\"\n\
                 [metrics]\n  address = \"\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                sock = socket.display(),
                debug = dir.join("debug.sock").display(),
            ),
        )?;
        let shim_dir = shim.parent().unwrap_or(Path::new("."));
        let path = format!(
            "{}:{}",
            shim_dir.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        let log = std::fs::File::create(dir.join("containerd.log"))?;
        let child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(&config)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut containerd = Containerd {
            child: Some(child),
            dir: dir.clone(),
            socket,
            // One per instance, not per process: the shim's state
            // directory is per namespace, and is removed on drop.
            namespace: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "vecproc".into()),
            shim_sockets_before: shim_sockets(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answered = containerd
                .ctr()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                return Ok(containerd);
            }
            let exited = containerd
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || Instant::now() > deadline {
                let log = containerd.log();
                containerd.stop();
                return Err(ContainerdError::NoAnswer {
                    socket: containerd.socket.display().to_string(),
                    log,
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `ctr --address SOCKET --namespace NS`.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new(CTR);
        cmd.arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(&self.namespace);
        cmd
    }

    /// Runs `ctr ARGS...`: its stdout, or why it failed.
    pub fn ctr_output(&self, args: &[&str]) -> Result<String, CtrError> {
        let shown = args.join(" ");
        let out = self
            .ctr()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| CtrError::Spawn {
                args: shown.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(CtrError::Failed {
                args: shown,
                status: out.status,
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&out.stdout)
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ctr run --rm --runtime io.containerd.host-runner.v1 --net-host
    /// [--env K=V]... EXTRA... IMAGE ID [ARGS...]`, not yet started: run in
    /// the foreground, its stdout and stderr are the task's.
    pub fn run_command(
        &self,
        image: &str,
        id: &str,
        env: &[(&str, &str)],
        extra: &[&str],
        args: &[&str],
    ) -> Command {
        let mut cmd = self.ctr();
        cmd.args(["run", "--rm", "--runtime", RUNTIME, "--net-host"]);
        for (name, value) in env {
            cmd.arg("--env").arg(format!("{name}={value}"));
        }
        cmd.args(extra).arg(image).arg(id).args(args);
        cmd
    }

    /// What containerd has logged so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("containerd.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Kills every task of the namespace and deletes it with its container.
    pub fn remove_all(&self) {
        let ids = |what: &str| -> Vec<String> {
            self.ctr_output(&[what, "ls", "-q"])
                .unwrap_or_default()
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        };
        for id in ids("tasks") {
            let _ = self.ctr_output(&["tasks", "kill", "-a", "-s", "SIGKILL", &id]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && self.ctr_output(&["tasks", "delete", &id]).is_err() {
                thread::sleep(Duration::from_millis(100));
            }
        }
        for id in ids("containers") {
            let _ = self.ctr_output(&["containers", "delete", &id]);
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // A shim whose task would not go (and the container process forked
        // from it, which carries the same command line) is killed by the
        // socket it names: nothing of a test outlives it.
        let ours = self.socket.display().to_string();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("containerd-shim") && cmdline.contains(&ours) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(entry.file_name())
                    .status();
            }
        }
        for socket in shim_sockets() {
            if !self.shim_sockets_before.contains(&socket) {
                let _ = std::fs::remove_file(&socket);
            }
        }
        // The shim library's per-namespace state directory.
        let _ = std::fs::remove_dir_all(Path::new(SHIM_STATE).join(&self.namespace));
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.remove_all();
        for image in self
            .ctr_output(&["images", "ls", "-q"])
            .unwrap_or_default()
            .lines()
        {
            let _ = self.ctr_output(&["images", "rm", image.trim()]);
        }
        self.stop();
        // Snapshots are unmounted once their tasks are gone; anything left
        // mounted under the directory is unmounted before it is removed.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let dir = self.dir.display().to_string();
            let mut inside: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|m| m.starts_with(&dir))
                .collect();
            inside.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for mount in inside {
                let _ = Command::new("umount").arg("-l").arg(mount).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn shim_sockets() -> Vec<PathBuf> {
    std::fs::read_dir(SHIM_SOCKETS)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

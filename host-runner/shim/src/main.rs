//! `containerd-shim-host-runner-v1`: containerd's runtime
//! `io.containerd.host-runner.v1`, serving a container's Wasm HTTP component
//! with host-runner.
//!
//! runwasi's `containerd-shim-wasm` does the containerd side (the task API,
//! the container's namespaces, cgroup and rootfs, the image's Wasm layers);
//! inside the container's process [`Sandbox::run_wasi`] finds the component
//! (the entrypoint file in the rootfs, or the image's Wasm layer, whose
//! digest containerd has verified), takes the container's environment as the
//! process's own, and runs `host-runner serve` through the library with the
//! command line [`host_runner::container::launch::serve_argv`] builds. So a
//! container is served exactly as the command line serves a file: p2 and
//! p3, limits, admission, `/metrics` and `/healthz` on `HOST_RUNNER_ADMIN_ADDR`,
//! access logs on the container's stderr, the memory budget from the
//! container's memory limit, and a drain on SIGTERM. The exit status is one
//! of [`host_runner::container::launch`]'s, never the library's bare 137.

use std::path::PathBuf;

use containerd_shim_wasm::sandbox::context::{RuntimeContext, Source};
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::shim::{version, Cli as _, Shim, Version};
use host_runner::container::launch::{self, EXIT_BAD_SETTINGS, EXIT_FAILED};

struct HostRunnerShim;

#[derive(Default)]
struct HostRunnerSandbox;

impl Shim for HostRunnerShim {
    type Sandbox = HostRunnerSandbox;

    fn name() -> &'static str {
        "host-runner"
    }

    fn version() -> Version {
        version!()
    }
}

impl Sandbox for HostRunnerSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> anyhow::Result<i32> {
        let envs = ctx.envs().to_vec();
        let args = ctx.args().get(1..).unwrap_or_default().to_vec();
        let component = match component_path(ctx) {
            Ok(path) => path,
            Err(line) => {
                eprintln!("host-runner: {line}");
                return Ok(EXIT_FAILED);
            }
        };
        // host-runner runs its own Tokio runtimes (the server's, the
        // registry's), which cannot start on this one's threads: it gets a
        // thread of its own, and this task waits for its exit status.
        let (done, status) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = done.send(serve(&envs, &args, &component));
        });
        Ok(status.await.unwrap_or(EXIT_FAILED))
    }

    /// Everything that is not a Linux executable (those run as plain
    /// containers, as a pod's pause container does) is ours, so a missing or
    /// malformed component gets host-runner's own error line and exit status
    /// rather than containerd's generic refusal.
    async fn can_handle(&self, _ctx: &impl RuntimeContext) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The component's path: the entrypoint file in the rootfs, or the image's
/// one Wasm layer written to a file of this container's.
fn component_path(ctx: &impl RuntimeContext) -> Result<String, String> {
    let entrypoint = ctx.entrypoint();
    match entrypoint.source {
        Source::File(path) if path.as_os_str().is_empty() => {
            Err("the container has no entrypoint: set the image's entrypoint (or the container's command) to the component's path".into())
        }
        Source::File(path) => Ok(path.to_string_lossy().into_owned()),
        Source::Oci([layer]) => {
            let dir = std::env::temp_dir().join("host-runner");
            let path: PathBuf = dir.join("component.wasm");
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&path, &layer.layer))
                .map_err(|e| {
                    format!(
                        "cannot write the image's Wasm layer ({}) to {}: {e}",
                        layer.config.digest(),
                        path.display()
                    )
                })?;
            Ok(path.to_string_lossy().into_owned())
        }
        Source::Oci(layers) => Err(format!(
            "the image has {} Wasm layers; host-runner serves one component (compose them first, with `host-runner compose` or wac)",
            layers.len()
        )),
    }
}

/// Runs `host-runner serve` for the container; its exit status.
fn serve(envs: &[String], args: &[String], component: &str) -> i32 {
    let argv = match launch::serve_argv(envs, args, component) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("host-runner: {e}");
            return EXIT_BAD_SETTINGS;
        }
    };
    // The container's environment becomes the process's own (the library
    // leaves it to the shim), as an exec would make it: host-runner reads
    // HOST_RUNNER_LOG, the registry credentials and OTEL_* from it, and
    // `-S inherit-env` hands it to the guest. Nothing else runs on this
    // process's threads that reads the environment.
    for (name, _) in std::env::vars_os() {
        std::env::remove_var(name);
    }
    for (name, value) in envs.iter().filter_map(|e| e.split_once('=')) {
        std::env::set_var(name, value);
    }
    i32::from(host_runner::cli::status(argv))
}

fn main() {
    HostRunnerShim::run(None);
}

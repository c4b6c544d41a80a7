//! host-runner's containerd shim (`containerd-shim-host-runner-v1`, runtime
//! `io.containerd.host-runner.v1`) under Debian's real containerd 1.6,
//! started on a private socket by [`vecproc_harness::containerd`]: images
//! pushed by `host-runner image` to Debian's registry on loopback, pulled
//! with `ctr image pull --plain-http`, and run with `ctr run --runtime
//! io.containerd.host-runner.v1 --net-host`, whose output is the task's.
//!
//! - the vector service answers the API matrix exactly as `wasmtime serve`
//!   does, with its access log on the task's stderr; so does the Wasm OCI
//!   artifact pushed by the real wkg, fetched into containerd's content
//!   store and run through the gRPC API the kubelet uses;
//! - bad input: each a line on the task's stderr and a documented exit
//!   status ([`host_runner::container::launch`]'s, not the library's 137);
//! - SIGTERM (`ctr task kill`) drains: 50 slow requests in flight all
//!   answer 200, new connections are refused, the task exits 0; with the
//!   drain off (what a shim that exits on SIGTERM does) they are dropped;
//! - a guest trap, loop and memory hog are stopped inside the container,
//!   which keeps serving, under the container's memory limit (the budget
//!   given as a pod's downward API would give it).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vecproc_harness::containerd::Containerd;
use vecproc_harness::{shim_bin, Registry};
use vecproc_tests::{artifact, get, host_runner_bin, Launch, Server};

use crate::compat::api_matrix;

/// A registry with the images, and containerd with them pulled.
struct Node {
    containerd: Containerd,
    _registry: Registry,
}

/// Pushes `component` as an OCI image with `host-runner image`; its
/// reference (`HOST:PORT/REPO:TAG`).
fn push_image(registry: &Registry, component: &std::path::Path, repo: &str) -> String {
    registry
        .push_image(&host_runner_bin(), component, &format!("{repo}:0.1.0"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// containerd with the service's and the fixture's images pulled from the
/// registry.
fn node() -> (Node, String, String) {
    let registry = Registry::anonymous();
    let service = push_image(
        &registry,
        &artifact("vector-service.wasm"),
        "vecproc/vector-service-image",
    );
    let fixture = push_image(
        &registry,
        &artifact("fixtures/misbehaving.wasm"),
        "vecproc/misbehaving-image",
    );
    let containerd = Containerd::try_start(&shim_bin()).unwrap_or_else(|e| panic!("{e}"));
    for image in [&service, &fixture] {
        containerd
            .ctr_output(&["images", "pull", "--plain-http", image])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    (
        Node {
            containerd,
            _registry: registry,
        },
        service,
        fixture,
    )
}

fn container_id(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{what}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// `ctr run` of `image` as a server on 127.0.0.1 (port 0), ready at its
/// serving line.
fn serve(node: &Node, image: &str, id: &str, env: &[(&str, &str)], extra: &[&str]) -> Server {
    let mut vars = vec![
        ("HOST_RUNNER_ADDR", "127.0.0.1:0"),
        ("HOST_RUNNER_ADMIN_ADDR", "127.0.0.1:0"),
    ];
    vars.extend_from_slice(env);
    Launch::new(node.containerd.run_command(image, id, &vars, extra, &[]))
        .timeout(Duration::from_secs(120))
        .start()
        .unwrap_or_else(|e| panic!("{e}\ncontainerd's log:\n{}", node.containerd.log()))
}

/// Runs `image` to its exit: (status, what the task printed).
fn run_to_exit(
    node: &Node,
    image: &str,
    env: &[(&str, &str)],
    extra: &[&str],
    args: &[&str],
) -> (Option<i32>, String) {
    let id = container_id("exit");
    let out = node
        .containerd
        .run_command(image, &id, env, extra, args)
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The API matrix sent to `base` and to `wasmtime serve` on the same
/// component: the same status, content type and body for every request.
fn answers_as_wasmtime_serve_does(base: &str, what: &str) {
    let reference = Server::wasmtime(&artifact("vector-service.wasm"), &[]);
    for (method, path, headers, body) in api_matrix() {
        let a = vecproc_tests::request(method, &reference.url(path), &headers, body.as_deref());
        let b = vecproc_tests::request(method, &format!("{base}{path}"), &headers, body.as_deref());
        let what = format!("{method} {path}: wasmtime serve vs {what}");
        assert_eq!(a.status, b.status, "{what}");
        assert_eq!(a.content_type, b.content_type, "{what}");
        assert!(a.body == b.body, "{what}: bodies differ");
    }
}

#[test]
fn the_image_from_the_registry_serves_the_api_as_wasmtime_serve_does() {
    let (node, service, _) = node();
    let id = container_id("service");
    let server = serve(
        &node,
        &service,
        &id,
        &[("HOST_RUNNER_ACCESS_LOG", "1")],
        &[],
    );
    answers_as_wasmtime_serve_does(&server.url(""), "the image in the shim");
    // The access log reaches ctr's output, the task's stderr.
    assert!(
        server.wait_for_output(
            "method=GET path=/compute?n=1000 status=200",
            Duration::from_secs(5)
        ),
        "{}",
        server.stderr()
    );
    // The admin endpoints answer from inside the container.
    let admin = format!("http://{}", server.admin_authority());
    assert_eq!(get(&format!("{admin}/healthz")).status, 200);
    let metrics = String::from_utf8(get(&format!("{admin}/metrics")).body).unwrap();
    assert!(metrics.contains("host_runner_requests_total"), "{metrics}");
}

#[test]
fn bad_input_is_a_line_on_stderr_and_a_documented_status() {
    let (node, service, _) = node();
    let dir = vecproc_harness::temp_dir("shim-bad-input");
    let not_a_component = dir.join("module.wasm");
    std::fs::write(&not_a_component, b"\0asm\x01\0\0\0").unwrap();
    let mount = format!(
        "type=bind,src={},dst=/module.wasm,options=rbind:ro",
        not_a_component.display()
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    // What, environment, ctr flags, arguments, exit status, words on stderr.
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<&'a str>,
        Vec<&'a str>,
        i32,
        &'a str,
    );
    let cases: [Case; 5] = [
        (
            "a missing entrypoint",
            vec![],
            vec![],
            vec!["/missing.wasm"],
            1,
            "/missing.wasm",
        ),
        (
            "a core module, not a component",
            vec![],
            vec!["--mount", &mount],
            vec!["/module.wasm"],
            1,
            "requires a component",
        ),
        (
            "a port in use",
            vec![("HOST_RUNNER_ADDR", &taken_addr)],
            vec![],
            vec![],
            1,
            &taken_addr,
        ),
        (
            "a variable that names no flag",
            vec![("HOST_RUNNER_PORT", "8080")],
            vec![],
            vec![],
            2,
            "HOST_RUNNER_PORT: host-runner serve has no flag --port",
        ),
        (
            "an unknown -W option",
            vec![("HOST_RUNNER_WASM", "nope=1")],
            vec![],
            vec![],
            1,
            "nope",
        ),
    ];
    for (what, env, extra, args, status, needle) in cases {
        let started = Instant::now();
        let (code, output) = run_to_exit(&node, &service, &env, &extra, &args);
        assert_eq!(code, Some(status), "{what}: {output}");
        assert!(output.contains(needle), "{what}: {output}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: took {:?}",
            started.elapsed()
        );
    }
    drop(taken);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A raw HTTP/1.1 GET on its own connection: the status, or `None` when
/// the connection failed or closed without an answer.
fn raw_get(authority: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(authority).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    reply.split_whitespace().nth(1)?.parse().ok()
}

/// 50 requests that each take `ms`, started together; SIGTERM once all are
/// in flight. (answered 200, failed, task exit status, time to exit).
fn sigterm_with_requests_in_flight(
    node: &Node,
    image: &str,
    drain_timeout: &str,
    ms: u64,
) -> (usize, usize, Option<i32>, Duration, bool) {
    let id = container_id("drain");
    let mut server = serve(
        node,
        image,
        &id,
        &[
            ("HOST_RUNNER_DRAIN_TIMEOUT", drain_timeout),
            ("HOST_RUNNER_MAX_CONCURRENT_REQUESTS", "100"),
        ],
        &[],
    );
    let authority = server.authority().to_string();
    let path = format!("/sleep?ms={ms}");
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let authority = authority.clone();
            let path = path.clone();
            std::thread::spawn(move || raw_get(&authority, &path))
        })
        .collect();
    // All 50 accepted and running in their guests.
    let admin = format!("http://{}", server.admin_authority());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = String::from_utf8(get(&format!("{admin}/metrics")).body).unwrap();
        let in_flight = metrics
            .lines()
            .find_map(|l| l.strip_prefix("host_runner_requests_in_flight "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if in_flight >= 50.0 {
            break;
        }
        assert!(Instant::now() < deadline, "never 50 in flight:\n{metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Instant::now();
    node.containerd
        .ctr_output(&["tasks", "kill", "-s", "SIGTERM", &id])
        .unwrap_or_else(|e| panic!("{e}"));
    // New connections are refused once the drain has begun.
    std::thread::sleep(Duration::from_millis(200));
    let refused = TcpStream::connect(&authority).is_err() || raw_get(&authority, "/ok").is_none();
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let code = server.wait_exit(Duration::from_secs(60));
    let exited = killed.elapsed();
    let ok = results.iter().filter(|r| **r == Some(200)).count();
    (ok, results.len() - ok, code, exited, refused)
}

#[test]
fn sigterm_drains_every_request_in_flight_and_exits_zero() {
    let (node, _, fixture) = node();
    let (ok, failed, code, exited, refused) =
        sigterm_with_requests_in_flight(&node, &fixture, "30s", 3_000);
    assert_eq!((ok, failed), (50, 0), "every request in flight answered");
    assert_eq!(code, Some(0), "exit status after the drain");
    assert!(refused, "a new connection was accepted during the drain");
    assert!(exited < Duration::from_secs(30), "exited after {exited:?}");
    eprintln!("drain: 50 of 50 answered, exit 0 after {exited:?}");

    // Without the drain, what a shim that exits on SIGTERM gives users.
    let (ok, failed, code, exited, _) =
        sigterm_with_requests_in_flight(&node, &fixture, "0s", 3_000);
    assert_eq!(ok + failed, 50);
    assert!(
        failed > 0,
        "with no drain, requests in flight are dropped ({ok} answered)"
    );
    eprintln!("no drain: {ok} of 50 answered, {failed} dropped, exit {code:?} after {exited:?}");
}

#[test]
fn guest_faults_are_contained_in_the_container() {
    let (node, _, fixture) = node();
    let id = container_id("faults");
    let server = serve(
        &node,
        &fixture,
        &id,
        &[
            ("HOST_RUNNER_WASM", "timeout=1s\nmax-memory-size=67108864"),
            // Half the container's limit, as host-runner's default takes
            // where it can read the limit: containerd mounts no cgroupfs in
            // the container, so it is given (the rest is host-runner's own).
            ("HOST_RUNNER_MEMORY_BUDGET", "268435456"),
        ],
        &["--memory-limit", "536870912"],
    );
    for (route, message) in [
        ("/trap", "wasm trap"),
        ("/loop", "guest timed out"),
        ("/alloc", "worker failed"),
    ] {
        crate::faults::assert_fault_contained(&server, "in containerd", route, message);
    }
    // The memory budget given (256 MiB), inside the container's 512 MiB.
    let admin = format!("http://{}", server.admin_authority());
    let metrics = String::from_utf8(get(&format!("{admin}/metrics")).body).unwrap();
    assert!(
        metrics.contains("host_runner_memory_budget_bytes 268435456"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("budget"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A container created and started over containerd's gRPC API, as the
/// kubelet's CRI plugin creates one: `Containers.Create` with the runtime,
/// the image and an OCI runtime spec, then `Tasks.Create` and `Start`, the
/// task's stdout and stderr in files. containerd 1.6.20 cannot unpack a
/// Wasm OCI artifact into a snapshot, so the rootfs is an empty directory
/// and the shim reads the component from the image's Wasm layer.
mod grpc {
    use std::path::{Path, PathBuf};

    use containerd_client::services::v1::container::Runtime;
    use containerd_client::services::v1::containers_client::ContainersClient;
    use containerd_client::services::v1::tasks_client::TasksClient;
    use containerd_client::services::v1::{
        Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
        DeleteTaskRequest, KillRequest, StartRequest, WaitRequest,
    };
    use containerd_client::with_namespace;
    use tonic::Request;

    use vecproc_harness::containerd::{Containerd, RUNTIME};

    /// A started task.
    pub struct Task {
        pub id: String,
        pub stderr: PathBuf,
        namespace: String,
        socket: PathBuf,
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn spec(rootfs: &Path, env: &[String], cgroup: &str) -> String {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "user": {"uid": 0, "gid": 0},
                "args": ["/component.wasm"],
                "env": env,
                "cwd": "/",
                "noNewPrivileges": true,
            },
            "root": {"path": rootfs, "readonly": false},
            "hostname": "wasm",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            ],
            "linux": {
                "cgroupsPath": cgroup,
                // No network namespace: the host's, as `ctr run --net-host`.
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            },
        })
        .to_string()
    }

    /// Creates and starts `id` from `image` (already in containerd's
    /// content store) with `env`.
    pub fn start(containerd: &Containerd, image: &str, id: &str, env: &[&str]) -> Task {
        let dir = containerd.dir.join(format!("grpc-{id}"));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
        for f in [&stdout, &stderr] {
            std::fs::File::create(f).unwrap();
        }
        let namespace = containerd.namespace.clone();
        let env: Vec<String> = env.iter().map(ToString::to_string).collect();
        let spec = spec(&rootfs, &env, &format!("/{namespace}/{id}"));
        runtime().block_on(async {
            let channel = containerd_client::connect(&containerd.socket)
                .await
                .unwrap();
            let container = Container {
                id: id.to_string(),
                image: image.to_string(),
                runtime: Some(Runtime {
                    name: RUNTIME.to_string(),
                    options: None,
                }),
                spec: Some(prost_types::Any {
                    type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                    value: spec.into_bytes(),
                }),
                ..Default::default()
            };
            let req = CreateContainerRequest {
                container: Some(container),
            };
            ContainersClient::new(channel.clone())
                .create(with_namespace!(req, namespace))
                .await
                .expect("Containers.Create");
            let mut tasks = TasksClient::new(channel);
            let req = CreateTaskRequest {
                container_id: id.to_string(),
                stdout: stdout.display().to_string(),
                stderr: stderr.display().to_string(),
                ..Default::default()
            };
            tasks
                .create(with_namespace!(req, namespace))
                .await
                .expect("Tasks.Create");
            let req = StartRequest {
                container_id: id.to_string(),
                ..Default::default()
            };
            tasks
                .start(with_namespace!(req, namespace))
                .await
                .expect("Tasks.Start");
        });
        Task {
            id: id.to_string(),
            stderr,
            namespace,
            socket: containerd.socket.clone(),
        }
    }

    impl Task {
        /// What the task wrote to stderr so far.
        pub fn stderr(&self) -> String {
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        }

        /// `Tasks.Kill` with SIGTERM, `Wait`, `Delete`, then the container:
        /// the exit status.
        pub fn stop(self) -> u32 {
            let (id, namespace) = (self.id.clone(), self.namespace.clone());
            runtime().block_on(async move {
                let channel = containerd_client::connect(&self.socket).await.unwrap();
                let mut tasks = TasksClient::new(channel.clone());
                let wait = {
                    let mut tasks = tasks.clone();
                    let req = WaitRequest {
                        container_id: id.clone(),
                        ..Default::default()
                    };
                    let req = with_namespace!(req, namespace);
                    tokio::spawn(async move { tasks.wait(req).await })
                };
                let req = KillRequest {
                    container_id: id.clone(),
                    signal: 15,
                    ..Default::default()
                };
                tasks
                    .kill(with_namespace!(req, namespace))
                    .await
                    .expect("Tasks.Kill");
                let status = wait
                    .await
                    .unwrap()
                    .expect("Tasks.Wait")
                    .into_inner()
                    .exit_status;
                let req = DeleteTaskRequest {
                    container_id: id.clone(),
                };
                tasks
                    .delete(with_namespace!(req, namespace))
                    .await
                    .expect("Tasks.Delete");
                let req = DeleteContainerRequest { id: id.clone() };
                ContainersClient::new(channel)
                    .delete(with_namespace!(req, namespace))
                    .await
                    .expect("Containers.Delete");
                status
            })
        }
    }
}

/// The Wasm OCI artifact `cargo xtask publish` pushes (with the real wkg),
/// fetched into containerd's content store and run through the gRPC path
/// the kubelet uses: the component comes from the image's Wasm layer,
/// whose digest containerd verified, and answers as the image's does.
#[test]
fn the_wasm_artifact_runs_through_the_grpc_path_kubelet_uses() {
    let registry = Registry::anonymous();
    let reference = format!("{}/vecproc/vector-service:0.1.0", registry.addr);
    let out = std::process::Command::new(vecproc_tests::tool("VECPROC_WKG", "wkg"))
        .args(["oci", "push", "--insecure", &registry.addr, &reference])
        .arg(artifact("vector-service.wasm"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wkg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let containerd = Containerd::try_start(&shim_bin()).unwrap_or_else(|e| panic!("{e}"));
    // `ctr image pull` would fail to unpack the artifact (containerd <
    // 1.6.25); fetching stores the manifest, config and layer, verified.
    containerd
        .ctr_output(&["content", "fetch", "--plain-http", &reference])
        .unwrap_or_else(|e| panic!("{e}"));
    let id = container_id("artifact");
    let task = grpc::start(
        &containerd,
        &reference,
        &id,
        &["HOST_RUNNER_ADDR=127.0.0.1:0", "HOST_RUNNER_ACCESS_LOG=1"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let base = loop {
        let stderr = task.stderr();
        if let Some(url) = stderr
            .lines()
            .find_map(|l| l.strip_prefix("Serving HTTP on "))
        {
            break url.trim_end_matches('/').to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no serving line; task stderr:\n{stderr}\ncontainerd:\n{}",
            containerd.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    answers_as_wasmtime_serve_does(&base, "the artifact in the shim");
    let stderr_path = task.stderr.clone();
    assert_eq!(task.stop(), 0, "exit status after SIGTERM");
    let stderr = std::fs::read_to_string(stderr_path).unwrap();
    assert!(stderr.contains("path=/health status=200"), "{stderr}");
}

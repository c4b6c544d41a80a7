//! Distribution through a real OCI registry (Debian's `docker-registry` on a
//! free loopback port): `vecproc-publish` (what `cargo xtask publish` runs)
//! with the real `wkg`, an independent `wkg oci pull`, the Wasm artifact
//! layout Kubernetes runtimes read, and host-runner serving and composing by reference with verified
//! digests, its cache, credentials and cosign signatures. Every failure case
//! asserts the message and the exit code.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use vecproc_tests::registry::{
    key_pair, publish_bin, run_for, temp_dir, wkg_bin, Answer, Output, Registry, Scripted,
};
use vecproc_tests::{artifact, host_runner_bin, post_json, Server};

use crate::composition::interface;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const NAMES: [&str; 4] = [
    "vector-processor",
    "http-api",
    "vector-service",
    "vector-store-service",
];
const LIMIT: Duration = Duration::from_secs(120);

/// `vecproc-publish --registry ADDR [extra]`: what `cargo xtask publish`
/// runs once the components are built.
fn publish(registry: &Registry, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(publish_bin());
    cmd.args(["--registry", &registry.addr])
        .args(extra)
        .env("VECPROC_HOST_RUNNER", host_runner_bin())
        .env("VECPROC_WKG", wkg_bin())
        .env_remove("HOST_RUNNER_REGISTRY_USERNAME")
        .env_remove("HOST_RUNNER_REGISTRY_PASSWORD")
        .env_remove("HOST_RUNNER_REGISTRY")
        .env("DOCKER_CONFIG", temp_dir("no-docker-config"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_for(cmd, Duration::from_secs(300))
}

/// Publishes and returns the four printed references, in `NAMES` order.
fn publish_ok(registry: &Registry, extra: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let out = publish(registry, extra, env);
    assert_eq!(
        out.code, 0,
        "publish failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    let (images, refs): (Vec<String>, Vec<String>) = out
        .stdout
        .lines()
        .map(str::to_string)
        .partition(|l| l.contains("-image:"));
    assert_eq!(refs.len(), NAMES.len(), "{}", out.stdout);
    // Beside each composed service, the OCI image node runtimes pull.
    assert_eq!(images.len(), 2, "{}", out.stdout);
    for (image, name) in images
        .iter()
        .zip(["vector-service", "vector-store-service"])
    {
        let prefix = format!("oci://{}/vecproc/{name}-image:0.1.0@sha256:", registry.addr);
        assert!(
            image.starts_with(&prefix),
            "{image} does not start with {prefix}"
        );
        // Read back anonymously (the authenticated runs push the same bytes).
        if registry.auth.is_none() {
            image_holds(registry, &format!("vecproc/{name}-image"), name);
        }
    }
    for (r, name) in refs.iter().zip(NAMES) {
        let prefix = format!("oci://{}/vecproc/{name}:0.1.0@sha256:", registry.addr);
        assert!(r.starts_with(&prefix), "{r} does not start with {prefix}");
        assert_eq!(r.len(), prefix.len() + 64, "{r}");
    }
    refs
}

/// The image in `repo` is an ordinary one-layer OCI image whose tar holds
/// `/NAME.wasm`, byte-identical to the built component, as its entrypoint.
fn image_holds(registry: &Registry, repo: &str, name: &str) {
    let (m, _) = manifest(registry, repo, "0.1.0");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(m["layers"].as_array().unwrap().len(), 1, "{m}");
    let layer = &m["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    let blob = |digest: &serde_json::Value| {
        let (status, body) =
            registry.get(&format!("{repo}/blobs/{}", digest.as_str().unwrap()), "*/*");
        assert_eq!(status, 200);
        body
    };
    let config: serde_json::Value = serde_json::from_slice(&blob(&m["config"]["digest"])).unwrap();
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("wasip2"), Some("wasm"))
    );
    assert_eq!(config["config"]["Entrypoint"][0], format!("/{name}.wasm"));
    // The tar, read by the system's tar as an independent reader.
    let dir = temp_dir("image-layer");
    std::fs::write(dir.join("layer.tar"), blob(&layer["digest"])).unwrap();
    let out = Command::new("tar")
        .arg("-xf")
        .arg(dir.join("layer.tar"))
        .arg("-C")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(dir.join(format!("{name}.wasm"))).unwrap()
            == std::fs::read(artifact(&format!("{name}.wasm"))).unwrap(),
        "{repo}: the image holds other bytes"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn digest_of(reference: &str) -> &str {
    reference.split_once('@').expect("a pinned reference").1
}

fn without_digest(reference: &str) -> &str {
    reference.split_once('@').map_or(reference, |(r, _)| r)
}

/// `host-runner ARGS` with a clean credential environment.
fn host_runner(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(host_runner_bin());
    cmd.args(args)
        .env_remove("HOST_RUNNER_REGISTRY_USERNAME")
        .env_remove("HOST_RUNNER_REGISTRY_PASSWORD")
        .env_remove("HOST_RUNNER_REGISTRY")
        .env("DOCKER_CONFIG", temp_dir("no-docker-config"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_for(cmd, LIMIT)
}

/// Asserts a failed start: the exit code and one `Error:` line containing
/// every needle, and no serving line.
fn assert_refused(out: &Output, code: i32, needles: &[&str]) {
    assert!(!out.stderr.contains("Serving HTTP on"), "{}", out.stderr);
    assert_eq!(out.code, code, "{}", out.stderr);
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no Error: line in\n{}", out.stderr));
    for needle in needles {
        assert!(error.contains(needle), "{error:?} lacks {needle:?}");
    }
}

fn serve(reference: &str, flags: &[&str]) -> Server {
    let mut cmd = Command::new(host_runner_bin());
    cmd.arg("serve")
        .arg("--addr=127.0.0.1:0")
        .args(flags)
        .arg(reference)
        .env_remove("HOST_RUNNER_REGISTRY_USERNAME")
        .env_remove("HOST_RUNNER_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", temp_dir("no-docker-config"));
    Server::start(cmd)
}

fn assert_stats(server: &Server) {
    let reply = post_json(&server.url("/stats"), "[3, 1, 2]");
    assert_eq!(reply.status, 200);
    let v = reply.json();
    assert_eq!(
        (v["count"].as_u64(), v["mean"].as_f64()),
        (Some(3), Some(2.0))
    );
}

fn manifest(registry: &Registry, repo: &str, reference: &str) -> (serde_json::Value, Vec<u8>) {
    let (status, body) = registry.get(&format!("{repo}/manifests/{reference}"), OCI_MANIFEST);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    (serde_json::from_slice(&body).unwrap(), body)
}

fn sha256_hex(bytes: &[u8]) -> String {
    // openssl as an independent hash, so the test shares no code with the host.
    let dir = temp_dir("hash");
    let file = dir.join("blob");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn flags<'a>(registry: &'a Registry, cache: &'a Path) -> Vec<String> {
    vec![
        "--insecure-registry".into(),
        registry.addr.clone(),
        "--cache-dir".into(),
        cache.display().to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn publish_round_trips_byte_identical_in_the_layout_kubernetes_pulls() {
    let registry = Registry::anonymous();
    let keys = temp_dir("keys");
    let (private, public) = key_pair(&keys, "release");
    let refs = publish_ok(
        &registry,
        &[
            "--sign",
            private.to_str().unwrap(),
            "--source",
            "https://example.org/vecproc",
        ],
        &[],
    );

    for (reference, name) in refs.iter().zip(NAMES) {
        let file = artifact(&format!("{name}.wasm"));
        let wasm = std::fs::read(&file).unwrap();
        let repo = format!("vecproc/{name}");

        // An independent pull with the real wkg gives the same bytes.
        let out_dir = temp_dir("wkg-pull");
        let pulled = out_dir.join("pulled.wasm");
        let mut cmd = Command::new(wkg_bin());
        cmd.args(["oci", "pull", "--insecure", &registry.addr])
            .arg(format!("{}/{repo}:0.1.0", registry.addr))
            .arg("-o")
            .arg(&pulled);
        let out = run_for(cmd, LIMIT);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            std::fs::read(&pulled).unwrap() == wasm,
            "{name}: wkg pulled other bytes"
        );
        let _ = std::fs::remove_dir_all(&out_dir);

        // The manifest: by tag its digest is the one publish printed.
        let (m, raw) = manifest(&registry, &repo, "0.1.0");
        assert_eq!(format!("sha256:{}", sha256_hex(&raw)), digest_of(reference));
        assert_eq!(m["mediaType"], OCI_MANIFEST);
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.wasm.config.v0+json"
        );
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{m}");
        assert_eq!(layers[0]["mediaType"], "application/wasm");
        let layer_digest = format!("sha256:{}", sha256_hex(&wasm));
        assert_eq!(layers[0]["digest"], layer_digest.as_str());
        assert_eq!(layers[0]["size"], wasm.len());
        let a = &m["annotations"];
        assert_eq!(a["org.opencontainers.image.version"], "0.1.0");
        assert_eq!(a["org.opencontainers.image.licenses"], "Apache-2.0");
        assert_eq!(
            a["org.opencontainers.image.source"],
            "https://example.org/vecproc"
        );
        assert!(
            a["org.opencontainers.image.description"]
                .as_str()
                .unwrap()
                .len()
                > 20,
            "{a}"
        );
        assert_eq!(
            a["org.opencontainers.image.revision"]
                .as_str()
                .unwrap()
                .len(),
            40,
            "{a}"
        );

        // The config: what runwasi and containerd-shim-spin read.
        let config_digest = m["config"]["digest"].as_str().unwrap();
        let (status, config) = registry.get(&format!("{repo}/blobs/{config_digest}"), "*/*");
        assert_eq!(status, 200);
        let c: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(c["architecture"], "wasm");
        assert_eq!(c["os"], "wasip2");
        assert_eq!(c["layerDigests"], serde_json::json!([layer_digest]));
        let (imports, exports) = interface(&format!("{name}.wasm"));
        let sorted = |v: &serde_json::Value| {
            let mut v: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        };
        let mut imports = imports;
        let mut exports = exports;
        imports.sort();
        exports.sort();
        assert_eq!(sorted(&c["component"]["imports"]), imports, "{name}");
        assert_eq!(sorted(&c["component"]["exports"]), exports, "{name}");
        if name == "vector-processor" {
            // What users get is the interface and nothing else: no
            // benchmark code in the published processor.
            assert_eq!(
                c["component"]["exports"],
                serde_json::json!(["vecproc:vector/vector-processor@0.1.0"])
            );
        }

        // The signature, checked by openssl as an independent verifier, and
        // its payload in the shape `cosign verify --key` expects.
        let hex = digest_of(reference).trim_start_matches("sha256:");
        let (sig, _) = manifest(&registry, &repo, &format!("sha256-{hex}.sig"));
        let layer = &sig["layers"][0];
        assert_eq!(
            layer["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        let (status, payload) = registry.get(
            &format!("{repo}/blobs/{}", layer["digest"].as_str().unwrap()),
            "*/*",
        );
        assert_eq!(status, 200);
        let p: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(p["critical"]["type"], "cosign container image signature");
        assert_eq!(
            p["critical"]["image"]["docker-manifest-digest"],
            digest_of(reference)
        );
        assert_eq!(
            p["critical"]["identity"]["docker-reference"],
            format!("{}/{repo}", registry.addr)
        );
        let b64 = layer["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap();
        let work = temp_dir("openssl-verify");
        std::fs::write(work.join("payload.json"), &payload).unwrap();
        std::fs::write(work.join("sig.b64"), b64).unwrap();
        let decoded = Command::new("openssl")
            .args(["base64", "-d", "-A", "-in"])
            .arg(work.join("sig.b64"))
            .arg("-out")
            .arg(work.join("sig.der"))
            .status()
            .unwrap();
        assert!(decoded.success());
        let verified = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public)
            .arg("-signature")
            .arg(work.join("sig.der"))
            .arg(work.join("payload.json"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&verified.stdout).trim(),
            "Verified OK",
            "{}",
            String::from_utf8_lossy(&verified.stderr)
        );
        let _ = std::fs::remove_dir_all(&work);
    }

    // Publishing the same version again is refused before anything is pushed.
    let again = publish(&registry, &[], &[]);
    assert_ne!(again.code, 0);
    assert!(
        again
            .stderr
            .contains("vecproc:vector-processor@0.1.0 is already published")
            && again.stderr.contains("bump `version`"),
        "{}",
        again.stderr
    );
    let _ = std::fs::remove_dir_all(&keys);
}

#[test]
fn serves_and_composes_by_reference_and_refuses_wrong_names() {
    let registry = Registry::anonymous();
    let refs = publish_ok(&registry, &[], &[]);
    let cache = temp_dir("cache-serve");
    let f = flags(&registry, &cache);

    // The composed service by tag.
    let service = serve(without_digest(&refs[2]), &strs(&f));
    assert_stats(&service);
    drop(service);

    // http-api by digest, composed in-process with the processor by tag:
    // what `wac` cannot do from a registry.
    let mut plug = strs(&f);
    plug.extend(["--plug", without_digest(&refs[0])]);
    let composed = serve(
        &format!(
            "oci://{}/vecproc/http-api@{}",
            registry.addr,
            digest_of(&refs[1])
        ),
        &plug,
    );
    assert_stats(&composed);
    drop(composed);

    // `compose` from references writes a file that serves the same API.
    let out_dir = temp_dir("compose-out");
    let out_file = out_dir.join("service.wasm");
    let mut args = vec![
        "compose",
        without_digest(&refs[1]),
        "--plug",
        without_digest(&refs[0]),
        "-o",
    ];
    let out_str = out_file.display().to_string();
    args.push(&out_str);
    args.extend(strs(&f));
    let out = host_runner(&args, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let from_file = Server::host_runner(&out_file, &[]);
    assert_stats(&from_file);
    drop(from_file);

    // `pull` prints the pinned reference.
    let mut args = vec!["pull", without_digest(&refs[2])];
    args.extend(strs(&f));
    let out = host_runner(&args, &[]);
    assert_eq!(
        (out.code, out.stdout.trim()),
        (0, refs[2].as_str()),
        "{}",
        out.stderr
    );

    // A tag or a digest the registry does not have: exit 3, one line.
    let wrong_tag = format!("oci://{}/vecproc/vector-service:9.9.9", registry.addr);
    let mut args = vec!["serve", "--addr=127.0.0.1:0", &wrong_tag];
    args.extend(strs(&f));
    assert_refused(
        &host_runner(&args, &[]),
        3,
        &[&wrong_tag, "tag 9.9.9 not found in the registry"],
    );

    let zero = format!("sha256:{}", "0".repeat(64));
    let wrong_digest = format!("oci://{}/vecproc/vector-service@{zero}", registry.addr);
    let mut args = vec!["serve", "--addr=127.0.0.1:0", &wrong_digest];
    args.extend(strs(&f));
    assert_refused(
        &host_runner(&args, &[]),
        3,
        &[
            &wrong_digest,
            &format!("manifest {zero} not found in the registry"),
        ],
    );

    // A malformed reference is a usage error naming it.
    let out = host_runner(&["serve", "oci://127.0.0.1:1/Bad/Name"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("oci://127.0.0.1:1/Bad/Name"),
        "{}",
        out.stderr
    );

    // Plain HTTP is used only for registries named with --insecure-registry.
    let mut args = vec!["serve", "--addr=127.0.0.1:0", without_digest(&refs[2])];
    args.extend(["--cache-dir", cache.to_str().unwrap(), "--pull", "always"]);
    assert_refused(
        &host_runner(&args, &[]),
        1,
        &[
            "TLS with the registry failed",
            &format!("--insecure-registry {}", registry.addr),
        ],
    );
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn cache_serves_while_the_registry_is_down_and_corrupt_entries_are_pulled_again() {
    let mut registry = Registry::anonymous();
    let refs = publish_ok(&registry, &[], &[]);
    let cache = temp_dir("cache-offline");
    let f = flags(&registry, &cache);
    let by_tag = without_digest(&refs[2]).to_string();
    let by_digest = format!(
        "oci://{}/vecproc/vector-service@{}",
        registry.addr,
        digest_of(&refs[2])
    );

    // --pull never with an empty cache: nothing to serve.
    let mut args = vec!["serve", "--addr=127.0.0.1:0", "--pull", "never", &by_digest];
    args.extend(strs(&f));
    assert_refused(
        &host_runner(&args, &[]),
        1,
        &[&by_digest, "not in the cache", "--pull never"],
    );

    // A first serve fills the cache.
    let server = serve(&by_tag, &strs(&f));
    assert_stats(&server);
    drop(server);

    // Corrupt the cached component: the next start notices, drops it and
    // pulls it again.
    let layer = format!(
        "sha256:{}",
        sha256_hex(&std::fs::read(artifact("vector-service.wasm")).unwrap())
    );
    let cached = cache
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&cached).expect("the layer is cached");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&cached, &bytes).unwrap();
    let server = serve(&by_digest, &strs(&f));
    assert!(
        server.stderr().contains(&format!("cache entry {layer}"))
            && server.stderr().contains("did not match its digest"),
        "{}",
        server.stderr()
    );
    assert_stats(&server);
    drop(server);
    assert_eq!(
        sha256_hex(&std::fs::read(&cached).unwrap()),
        layer.trim_start_matches("sha256:")
    );

    // The registry goes away.
    registry.stop();
    // A digest in the cache needs no network.
    let server = serve(&by_digest, &strs(&f));
    assert!(
        server.stderr().contains("from the cache"),
        "{}",
        server.stderr()
    );
    assert_stats(&server);
    drop(server);
    // A tag falls back to the last digest seen for it, with a warning.
    let server = serve(&by_tag, &strs(&f));
    assert!(
        server.stderr().contains("the registry is unreachable")
            && server.stderr().contains(&format!(
                "using {}, the last digest seen",
                digest_of(&refs[2])
            )),
        "{}",
        server.stderr()
    );
    assert_stats(&server);
    drop(server);
    // A digest the cache does not have: a clear error.
    let unknown = format!(
        "oci://{}/vecproc/vector-service@sha256:{}",
        registry.addr,
        "1".repeat(64)
    );
    let mut args = vec!["serve", "--addr=127.0.0.1:0", &unknown];
    args.extend(strs(&f));
    assert_refused(
        &host_runner(&args, &[]),
        1,
        &[
            &unknown,
            "the registry is unreachable",
            "the cache has no copy of this digest",
        ],
    );
    // --pull always never falls back.
    let mut args = vec!["serve", "--addr=127.0.0.1:0", "--pull", "always", &by_tag];
    args.extend(strs(&f));
    assert_refused(
        &host_runner(&args, &[]),
        1,
        &[&by_tag, "the registry is unreachable"],
    );
    let _ = std::fs::remove_dir_all(&cache);
}

/// The cache's tag record is what a tag means offline (`--pull never`,
/// or a registry down): it is written only after a pull verified
/// everything, so a manifest host-runner refuses cannot replace the last
/// good digest.
#[test]
fn a_refused_manifest_does_not_replace_the_tags_last_good_digest() {
    let registry = Registry::anonymous();
    let refs = publish_ok(&registry, &[], &[]);
    let cache = temp_dir("cache-refused-tag");
    let f = flags(&registry, &cache);
    let by_tag = without_digest(&refs[2]).to_string();
    let tag = by_tag.rsplit(':').next().unwrap().to_string();
    let mut always = vec!["pull", "--pull", "always", &by_tag];
    always.extend(strs(&f));
    let out = host_runner(&always, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // The tag moves to a manifest that is not a Wasm component's layout.
    let (mut moved, _) = manifest(&registry, "vecproc/vector-service", &tag);
    moved["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    assert_eq!(
        registry.put_manifest(
            "vecproc/vector-service",
            &tag,
            &serde_json::to_vec(&moved).unwrap()
        ),
        201
    );
    let out = host_runner(&always, &[]);
    assert_eq!(out.code, 1, "the moved tag was accepted: {}", out.stdout);

    // Offline, the tag still means the last digest that verified.
    let mut never = vec!["pull", "--pull", "never", &by_tag];
    never.extend(strs(&f));
    let out = host_runner(&never, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(digest_of(&refs[2])), "{}", out.stdout);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn a_tampered_blob_in_the_registry_is_refused() {
    let registry = Registry::anonymous();
    // Its own component, so no other test's blob is touched.
    let fixture = artifact("fixtures/misbehaving.wasm");
    let reference = format!("{}/tamper/misbehaving:1", registry.addr);
    let mut cmd = Command::new(wkg_bin());
    cmd.args(["oci", "push", "--insecure", &registry.addr, &reference])
        .arg(&fixture);
    let out = run_for(cmd, LIMIT);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let wasm = std::fs::read(&fixture).unwrap();
    let layer = format!("sha256:{}", sha256_hex(&wasm));
    let stored = registry.blob_file(&layer);
    let mut bytes = std::fs::read(&stored).expect("the registry stores the layer");
    bytes[100] ^= 0x01;
    std::fs::write(&stored, &bytes).unwrap();

    let cache = temp_dir("cache-tamper");
    let oci = format!("oci://{reference}");
    let mut args = vec!["pull", &oci];
    let f = flags(&registry, &cache);
    args.extend(strs(&f));
    let out = host_runner(&args, &[]);
    assert_refused(&out, 1, &[&oci, "layer digest mismatch", &layer]);
    // Nothing unverified is cached.
    assert!(!cache
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"))
        .exists());
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn credentials_come_from_the_environment_or_the_docker_config_and_never_leak() {
    let registry = Registry::with_auth("vecproc", "correct-horse-battery");
    let creds = [
        ("HOST_RUNNER_REGISTRY_USERNAME", "vecproc"),
        ("HOST_RUNNER_REGISTRY_PASSWORD", "correct-horse-battery"),
    ];
    let refs = publish_ok(&registry, &[], &creds);
    let cache = temp_dir("cache-auth");
    let f = flags(&registry, &cache);
    let by_tag = without_digest(&refs[2]).to_string();
    let mut args = vec!["pull", "--pull", "always", &by_tag];
    args.extend(strs(&f));

    // No credentials.
    assert_refused(
        &host_runner(&args, &[]),
        1,
        &[
            &by_tag,
            "requires credentials",
            "HOST_RUNNER_REGISTRY_USERNAME",
        ],
    );
    // Wrong password: refused, and the password appears nowhere.
    let out = host_runner(
        &args,
        &[
            ("HOST_RUNNER_REGISTRY_USERNAME", "vecproc"),
            ("HOST_RUNNER_REGISTRY_PASSWORD", "wrong-password-value"),
        ],
    );
    assert_refused(
        &out,
        1,
        &[&by_tag, "refused the credentials of user \"vecproc\""],
    );
    assert!(
        !out.stderr.contains("wrong-password-value")
            && !out.stdout.contains("wrong-password-value")
    );
    // Only half of the pair.
    assert_refused(
        &host_runner(&args, &[("HOST_RUNNER_REGISTRY_USERNAME", "vecproc")]),
        1,
        &["set both HOST_RUNNER_REGISTRY_USERNAME and HOST_RUNNER_REGISTRY_PASSWORD"],
    );
    // The environment pair works.
    let out = host_runner(&args, &creds);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("correct-horse-battery"));

    // The pair goes to one registry: a command that also names another (a
    // third party's plug) is refused before any request, unless
    // HOST_RUNNER_REGISTRY names the registry the pair is for.
    let plug = "oci://127.0.0.1:9/third-party/plug:1";
    let mut two = vec!["serve", "--addr=127.0.0.1:0", &by_tag, "--plug", plug];
    two.extend(strs(&f));
    assert_refused(
        &host_runner(&two, &creds),
        1,
        &["names several registries", "HOST_RUNNER_REGISTRY=HOST:PORT"],
    );
    let named = [
        creds[0],
        creds[1],
        ("HOST_RUNNER_REGISTRY", registry.addr.as_str()),
    ];
    let out = host_runner(&two, &named);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        !out.stderr.contains("names several registries") && out.stderr.contains("127.0.0.1:9"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("correct-horse-battery"));

    // A docker-style config file works too (what `docker login` writes).
    let docker = temp_dir("docker-config");
    let auth = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"vecproc:correct-horse-battery")?;
            child.wait_with_output()
        })
        .unwrap();
    let auth = String::from_utf8(auth.stdout).unwrap();
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {registry.addr.clone(): {"auth": auth.trim()}}}).to_string(),
    )
    .unwrap();
    let mut cmd = Command::new(host_runner_bin());
    cmd.arg("serve")
        .arg("--addr=127.0.0.1:0")
        .args(&f)
        .arg(&by_tag)
        .env_remove("HOST_RUNNER_REGISTRY_USERNAME")
        .env_remove("HOST_RUNNER_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", &docker);
    let server = Server::start(cmd);
    assert_stats(&server);
    drop(server);
    let _ = std::fs::remove_dir_all(&docker);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn verify_key_refuses_unsigned_foreign_and_misdirected_signatures() {
    let registry = Registry::anonymous();
    let keys = temp_dir("keys-verify");
    let (private, public) = key_pair(&keys, "trusted");
    let (_, other_public) = key_pair(&keys, "other");
    let refs = publish_ok(&registry, &["--sign", private.to_str().unwrap()], &[]);
    let cache = temp_dir("cache-verify");
    let mut f = flags(&registry, &cache);
    f.extend(["--verify-key".into(), public.display().to_string()]);

    // Signed by the trusted key: served, plugs verified as well.
    let server = serve(without_digest(&refs[2]), &strs(&f));
    assert!(
        server.stderr().contains("signature on"),
        "{}",
        server.stderr()
    );
    assert_stats(&server);
    drop(server);
    let mut plug = strs(&f);
    plug.extend(["--plug", without_digest(&refs[0])]);
    let server = serve(without_digest(&refs[1]), &plug);
    assert_stats(&server);
    drop(server);

    // Push the fixture unsigned, into the service's repository and another.
    let fixture = artifact("fixtures/misbehaving.wasm");
    for reference in [
        format!("{}/vecproc/vector-service:evil", registry.addr),
        format!("{}/other/unsigned:1", registry.addr),
    ] {
        let mut cmd = Command::new(wkg_bin());
        cmd.args(["oci", "push", "--insecure", &registry.addr, &reference])
            .arg(&fixture);
        let out = run_for(cmd, LIMIT);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let serve_args = |reference: &str, extra: &[&str]| {
        let mut args = vec![
            "serve".to_string(),
            "--addr=127.0.0.1:0".into(),
            reference.into(),
        ];
        args.extend(f.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    // Unsigned.
    let unsigned = format!("oci://{}/other/unsigned:1", registry.addr);
    let out = host_runner(&strs(&serve_args(&unsigned, &[])), &[]);
    assert_refused(
        &out,
        1,
        &[&unsigned, "refused: it is not signed", ".sig signature"],
    );

    // An unsigned plug is refused even when the socket is signed.
    let out = host_runner(
        &strs(&serve_args(
            without_digest(&refs[1]),
            &["--plug", &unsigned],
        )),
        &[],
    );
    assert_refused(&out, 1, &[&unsigned, "not signed"]);

    // Signed, but by another key.
    let mut other = serve_args(without_digest(&refs[2]), &[]);
    let at = other
        .iter()
        .position(|a| *a == public.display().to_string())
        .unwrap();
    other[at] = other_public.display().to_string();
    let out = host_runner(&strs(&other), &[]);
    assert_refused(
        &out,
        1,
        &[
            "refused: none of its 1 signature(s) verifies with",
            "other.pub",
        ],
    );

    // A valid signature copied onto another artifact's signature tag.
    let service_hex = digest_of(&refs[2])
        .trim_start_matches("sha256:")
        .to_string();
    let (_, sig_manifest) = manifest(
        &registry,
        "vecproc/vector-service",
        &format!("sha256-{service_hex}.sig"),
    );
    let (_, evil_manifest) = manifest(&registry, "vecproc/vector-service", "evil");
    let evil_hex = sha256_hex(&evil_manifest);
    assert_eq!(
        registry.put_manifest(
            "vecproc/vector-service",
            &format!("sha256-{evil_hex}.sig"),
            &sig_manifest
        ),
        201
    );
    let evil = format!("oci://{}/vecproc/vector-service:evil", registry.addr);
    let out = host_runner(&strs(&serve_args(&evil, &[])), &[]);
    assert_refused(
        &out,
        1,
        &[
            &evil,
            &format!("is for sha256:{service_hex}, not sha256:{evil_hex}"),
        ],
    );

    // A local file carries no signature.
    let file = artifact("vector-service.wasm");
    let out = host_runner(&strs(&serve_args(file.to_str().unwrap(), &[])), &[]);
    assert_refused(
        &out,
        1,
        &["--verify-key requires every component to come from a registry"],
    );
    let _ = std::fs::remove_dir_all(&keys);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn a_registry_that_never_answers_fails_startup_within_the_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    // Accept connections and hold them open without a byte of answer.
    let holder = thread::spawn(move || {
        let mut held = Vec::new();
        silent.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Ok((conn, _)) = silent.accept() {
                held.push(conn);
            }
            thread::sleep(Duration::from_millis(10));
        }
    });
    let cache = temp_dir("cache-silent");
    let reference = format!("oci://{addr}/vecproc/vector-service:0.1.0");
    let started = Instant::now();
    let out = host_runner(
        &[
            "serve",
            "--addr=127.0.0.1:0",
            "--insecure-registry",
            &addr,
            "--cache-dir",
            cache.to_str().unwrap(),
            "--registry-timeout",
            "1s",
            &reference,
        ],
        &[],
    );
    let took = started.elapsed();
    assert_refused(
        &out,
        1,
        &[&reference, "did not answer within 1s", "--registry-timeout"],
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    drop(holder);
    let _ = std::fs::remove_dir_all(&cache);
}

/// A registry whose certificate is not trusted is told apart from a
/// plain-HTTP registry spoken to over HTTPS: the first is a certificate
/// error with no `--insecure-registry` hint (that would send credentials in
/// the clear), the second suggests it. Neither falls back silently.
#[test]
fn a_certificate_error_is_not_a_plain_http_hint() {
    let dir = temp_dir("tls-registry");
    let (cert, key) = vecproc_harness::certs::self_signed(
        &dir,
        "registry",
        vecproc_harness::certs::Key::Ec,
        "127.0.0.1",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut tls = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        thread::sleep(Duration::from_millis(50));
    }
    let untrusted = format!("oci://127.0.0.1:{port}/vecproc/vector-service:0.1.0");
    let cache = temp_dir("cache-tls");
    let cache_arg = cache.display().to_string();
    let out = host_runner(&["pull", "--cache-dir", &cache_arg, &untrusted], &[]);
    let _ = tls.kill();
    let _ = tls.wait();
    assert_refused(&out, 1, &[&untrusted, "TLS certificate was refused"]);
    assert!(
        !out.stderr.contains("--insecure-registry"),
        "{}",
        out.stderr
    );

    // Plain HTTP answering a TLS client: the hint is right there.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = plain.local_addr().unwrap();
    plain.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = thread::spawn({
        let stop = std::sync::Arc::clone(&stop);
        move || {
            use std::io::{Read, Write};
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match plain.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        let mut buf = [0u8; 1024];
                        let _ = conn.read(&mut buf);
                        let _ = conn
                            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    });
    let http = format!("oci://{addr}/vecproc/vector-service:0.1.0");
    let out = host_runner(&["pull", "--cache-dir", &cache_arg, &http], &[]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = server.join();
    assert_refused(&out, 1, &[&http, &format!("--insecure-registry {addr}")]);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&cache);
}

/// A registry that sends a layer one byte at a time, each just inside
/// `--registry-timeout`, cannot hold startup for ever: a layer may take the
/// timeout plus a second per 64 KiB in all.
#[test]
fn a_layer_dripping_in_byte_by_byte_is_stopped_at_its_deadline() {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let layer_size = 4096;
    let layer_digest = format!("sha256:{}", "ab".repeat(32));
    let config_digest = format!("sha256:{}", "cd".repeat(32));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/wasm", "digest": layer_digest, "size": layer_size}],
    })
    .to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    listener.set_nonblocking(true).unwrap();
    let server = thread::spawn({
        let stop = std::sync::Arc::clone(&stop);
        move || {
            let mut drips = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((conn, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                        break;
                    }
                }
                let mut conn = conn;
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                if path.contains("/manifests/") {
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                        manifest.len(),
                        manifest
                    );
                } else if path.contains("/blobs/") {
                    let stop = std::sync::Arc::clone(&stop);
                    drips.push(thread::spawn(move || {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {layer_size}\r\n\r\n"
                        );
                        for _ in 0..layer_size {
                            if stop.load(std::sync::atomic::Ordering::Relaxed)
                                || conn.write_all(b"x").and_then(|()| conn.flush()).is_err()
                            {
                                break;
                            }
                            thread::sleep(Duration::from_millis(300));
                        }
                    }));
                } else {
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                }
            }
            for d in drips {
                let _ = d.join();
            }
        }
    });
    let cache = temp_dir("cache-drip");
    let cache_arg = cache.display().to_string();
    let reference = format!("oci://{addr}/vecproc/vector-service:0.1.0");
    let started = Instant::now();
    let out = host_runner(
        &[
            "pull",
            "--insecure-registry",
            &addr,
            "--registry-timeout",
            "1s",
            "--cache-dir",
            &cache_arg,
            &reference,
        ],
        &[],
    );
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = server.join();
    assert_refused(&out, 1, &[&reference, "slower than 64 KiB/s"]);
    // The deadline is 1 s + 1 s for 4 KiB; the byte-by-byte layer would
    // take 20 minutes.
    assert!(took < Duration::from_secs(30), "{took:?}");
    let _ = std::fs::remove_dir_all(&cache);
}

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// `host-runner pull` of `oci://ADDR/REPO:0.1.0` from a plain-HTTP
/// registry, with `env`.
fn pull_from(addr: &str, repo: &str, env: &[(&str, &str)]) -> (String, Output) {
    let cache = temp_dir("cache-scripted");
    let reference = format!("oci://{addr}/{repo}:0.1.0");
    let out = host_runner(
        &[
            "pull",
            "--insecure-registry",
            addr,
            "--registry-timeout",
            "5s",
            "--cache-dir",
            cache.to_str().unwrap(),
            &reference,
        ],
        env,
    );
    let _ = std::fs::remove_dir_all(&cache);
    (reference, out)
}

/// The distribution API lets a registry name any URL as its token realm,
/// and a client then sends the password there. host-runner sends
/// credentials only to the registry's own host (or a sibling under its
/// parent domain): a realm on another host gets nothing, and the same flow
/// with a realm on the registry's host obtains a scoped token and uses it.
#[test]
fn credentials_never_go_to_a_token_realm_on_another_host() {
    let password = "s3cret-realm-pw";
    let creds = [
        ("HOST_RUNNER_REGISTRY_USERNAME", "alice"),
        ("HOST_RUNNER_REGISTRY_PASSWORD", password),
    ];
    let token_server = Scripted::start(|seen| {
        let body = if seen.header("authorization").is_some() {
            br#"{"token":"t0k3n"}"#.to_vec()
        } else {
            b"{}".to_vec()
        };
        Answer::Full(200, vec![header("content-type", "application/json")], body)
    });
    let token_port = token_server.addr().rsplit_once(':').unwrap().1.to_string();
    let not_found = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no such manifest"}]}"#;
    for (realm_host, allowed) in [("localhost", false), ("127.0.0.1", true)] {
        let realm = format!("http://{realm_host}:{token_port}/token");
        let registry = Scripted::start(move |seen| match seen.header("authorization") {
            Some("Bearer t0k3n") => Answer::Full(404, vec![], not_found.to_vec()),
            _ => Answer::Full(
                401,
                vec![header(
                    "www-authenticate",
                    &format!(r#"Bearer realm="{realm}",service="scripted""#),
                )],
                Vec::new(),
            ),
        });
        let before = token_server.seen().len();
        let (reference, out) = pull_from(registry.addr(), "vecproc/vector-service", &creds);
        assert!(!out.stderr.contains(password), "{}", out.stderr);
        let token_requests: Vec<_> = token_server.seen().split_off(before);
        if allowed {
            // Authorised, and told the tag does not exist (exit 3).
            assert_refused(
                &out,
                3,
                &[&reference, "tag 0.1.0 not found in the registry"],
            );
            assert_eq!(token_requests.len(), 1, "{token_requests:?}");
            let asked = &token_requests[0];
            assert!(
                asked
                    .target
                    .contains("scope=repository%3Avecproc%2Fvector-service%3Apull"),
                "{asked:?}"
            );
            assert!(asked.target.contains("service=scripted"), "{asked:?}");
            // Basic alice:s3cret-realm-pw.
            assert_eq!(
                asked.header("authorization"),
                Some("Basic YWxpY2U6czNjcmV0LXJlYWxtLXB3")
            );
            assert!(registry
                .seen()
                .iter()
                .any(|s| s.header("authorization") == Some("Bearer t0k3n")));
        } else {
            assert_refused(
                &out,
                1,
                &[&reference, "token realm", "on the host localhost"],
            );
            assert!(token_requests.is_empty(), "{token_requests:?}");
            // The registry itself never saw the password either.
            assert!(registry
                .seen()
                .iter()
                .all(|s| s.header("authorization").is_none()));
        }
    }
}

/// Manifests, token replies and error pages are read only up to their
/// caps: a registry streaming an endless body gets a one-line refusal, and
/// host-runner stops reading (the bytes it accepted stay near the cap, not
/// the 256 MiB on offer).
#[test]
fn endless_manifests_token_replies_and_error_pages_are_cut_at_their_caps() {
    const OFFER: u64 = 256 << 20;
    let realm_addr = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let registry = Scripted::start({
        let realm_addr = std::sync::Arc::clone(&realm_addr);
        move |seen| {
            let path = seen.target.as_str();
            if path.starts_with("/token") {
                Answer::Endless(200, vec![header("content-type", "application/json")], OFFER)
            } else if path.contains("/big-manifest/") {
                Answer::Endless(200, vec![header("content-type", OCI_MANIFEST)], OFFER)
            } else if path.contains("/declared-manifest/") {
                Answer::Full(
                    200,
                    vec![header("content-type", OCI_MANIFEST)],
                    vec![b' '; (4 << 20) + 1],
                )
            } else if path.contains("/big-error/") {
                Answer::Endless(500, vec![header("content-type", "text/plain")], OFFER)
            } else if path.contains("/big-token/") {
                let realm = format!("http://{}/token", realm_addr.get().unwrap());
                Answer::Full(
                    401,
                    vec![header(
                        "www-authenticate",
                        &format!(r#"Bearer realm="{realm}""#),
                    )],
                    Vec::new(),
                )
            } else {
                Answer::Full(404, vec![], Vec::new())
            }
        }
    });
    realm_addr.set(registry.addr().to_string()).unwrap();
    let cases = [
        (
            "big-manifest",
            "the manifest is",
            "over the 4194304-byte limit",
        ),
        (
            "declared-manifest",
            "the manifest is 4194305 bytes",
            "over the 4194304-byte limit",
        ),
        (
            "big-token",
            "the token endpoint's answer is",
            "over the 262144-byte limit",
        ),
        ("big-error", "HTTP 500: xxxx", ""),
    ];
    for (repo, first, second) in cases {
        let before = registry.body_bytes_sent();
        let started = Instant::now();
        let (reference, out) = pull_from(registry.addr(), &format!("vecproc/{repo}"), &[]);
        assert_refused(&out, 1, &[&reference, first, second]);
        assert!(started.elapsed() < Duration::from_secs(30), "{repo}");
        // The cap plus what the sockets buffered before the client let go.
        let accepted = registry.body_bytes_sent() - before;
        assert!(accepted < 64 << 20, "{repo}: {accepted} bytes were taken");
    }
}

//! `cargo xtask publish --registry HOST:PORT [--sign KEY.pem]`: push the four
//! components to an OCI registry with the real `wkg`, as the packages
//! `vecproc:vector-processor`, `vecproc:http-api`, `vecproc:vector-service`
//! and `vecproc:vector-store-service` (the stateful service) at the crate
//! version, i.e. `HOST:PORT/vecproc/<name>:<version>`.
//!
//! - `wkg oci push` writes the CNCF Wasm artifact (config
//!   `application/vnd.wasm.config.v0+json`, one `application/wasm` layer) and
//!   takes the manifest annotations from here: version, description,
//!   licenses, revision and, when the crate names a repository (or git has
//!   an `origin`), source.
//! - A version that is already in the registry is an error before anything
//!   is pushed: a registry would silently move the tag.
//! - Credentials come from `HOST_RUNNER_REGISTRY_USERNAME` /
//!   `HOST_RUNNER_REGISTRY_PASSWORD` (handed to wkg as `WKG_OCI_USERNAME` /
//!   `WKG_OCI_PASSWORD` in its environment) or the docker config, never argv.
//! - Plain HTTP for a loopback registry, as wkg does for localhost; HTTPS
//!   otherwise unless `--insecure`.
//! - `--sign` signs each pushed manifest digest with `host-runner sign`
//!   (cosign key-pair format, stored under `sha256-<hex>.sig`).
//! - Beside the two composed services, an OCI image for node runtimes that
//!   cannot unpack a Wasm artifact (containerd before 1.6.25 / 1.7.7):
//!   `HOST:PORT/vecproc/<name>-image:<version>`, pushed by `host-runner
//!   image` (the component as `/<name>.wasm` in the rootfs, the entrypoint
//!   set, platform `wasip2/wasm`). Not signed: `--verify-key` checks
//!   artifacts; containerd checks the image's digests as it pulls.
//!
//! Prints one line per component and image on stdout:
//! `oci://HOST:PORT/vecproc/<name>:<version>@sha256:<hex>`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::run::{output, step};
use crate::{build, tools};

/// Options of `cargo xtask publish`.
#[derive(clap::Args)]
pub struct Args {
    /// The registry, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    registry: String,
    /// Sign each pushed manifest with this private key (PKCS#8 PEM, P-256).
    #[arg(long, value_name = "KEY.pem")]
    sign: Option<PathBuf>,
    /// Speak plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    insecure: bool,
    /// Publish what target/wasm/ holds instead of building first.
    #[arg(long)]
    no_build: bool,
    /// The org.opencontainers.image.source annotation [default: the crates'
    /// `repository`, else git's `origin` URL].
    #[arg(long, value_name = "URL")]
    source: Option<String>,
}

/// One component to publish.
struct Package {
    /// The package and repository name.
    name: &'static str,
    /// The crate whose version, description and license it carries.
    krate: &'static str,
    /// Overrides the crate's description (the composition has no crate).
    description: Option<&'static str>,
}

const PACKAGES: [Package; 4] = [
    Package {
        name: "vector-processor",
        krate: "vector-processor",
        description: None,
    },
    Package {
        name: "http-api",
        krate: "http-api",
        description: None,
    },
    Package {
        name: "vector-service",
        krate: "http-api",
        description: Some(
            "The vector processor's JSON HTTP API: http-api composed with vector-processor, \
             a wasi:http/proxy component.",
        ),
    },
    Package {
        name: "vector-store-service",
        krate: "http-api",
        description: Some(
            "The vector processor's JSON HTTP API plus the stateful /vectors API over \
             wasi:keyvalue@0.2.0-draft2 (host-runner -S keyvalue, Spin): http-api's stateful \
             build composed with vector-processor.",
        ),
    },
];

/// The fields of a crate the annotations come from.
struct CrateMeta {
    version: String,
    description: String,
    license: String,
    repository: Option<String>,
}

fn crate_meta(root: &Path, krate: &str) -> Result<CrateMeta> {
    let json = output(
        crate::run::cargo()
            .args([
                "metadata",
                "--no-deps",
                "--offline",
                "--format-version",
                "1",
                "--manifest-path",
            ])
            .arg(root.join("components/Cargo.toml")),
    )
    .context("cargo metadata failed for components/Cargo.toml")?;
    let meta: serde_json::Value = serde_json::from_str(&json)?;
    let pkg = meta["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == krate))
        .with_context(|| format!("components/ has no crate {krate}"))?;
    let field = |name: &str| pkg[name].as_str().map(str::to_string);
    Ok(CrateMeta {
        version: field("version").context("crate version")?,
        description: field("description").unwrap_or_default(),
        license: field("license").unwrap_or_default(),
        repository: field("repository"),
    })
}

fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Publishes the three components.
pub fn publish(root: &Path, args: Args) -> Result<()> {
    if args.registry.contains('/') || args.registry.is_empty() {
        bail!(
            "--registry takes HOST:PORT (for example 127.0.0.1:5000), not {:?}",
            args.registry
        );
    }
    if let Some(key) = &args.sign {
        if !key.is_file() {
            bail!("--sign {}: no such key file", key.display());
        }
    }
    if !args.no_build {
        build::build(root)?;
    }
    let wkg = tools::ensure(&tools::WKG)?;
    let host_runner = build::host_runner(root)?;
    let plain_http = args.insecure || is_loopback(&args.registry);
    let registry_flags: Vec<String> = if plain_http {
        vec!["--insecure-registry".into(), args.registry.clone()]
    } else {
        Vec::new()
    };
    let revision = output(
        Command::new("git")
            .current_dir(root)
            .args(["rev-parse", "HEAD"]),
    )
    .map(|s| s.trim().to_string());
    let git_origin = output(
        Command::new("git")
            .current_dir(root)
            .args(["remote", "get-url", "origin"]),
    )
    .map(|s| s.trim().to_string())
    .filter(|s| !s.is_empty());

    // Everything is checked before anything is pushed.
    let mut plan = Vec::new();
    for pkg in &PACKAGES {
        let meta = crate_meta(root, pkg.krate)?;
        let file = crate::paths::wasm().join(format!("{}.wasm", pkg.name));
        if !file.is_file() {
            bail!("{} is missing: run cargo xtask build first", file.display());
        }
        let reference = format!("{}/vecproc/{}:{}", args.registry, pkg.name, meta.version);
        let out = Command::new(&host_runner)
            .arg("inspect")
            .arg(format!("oci://{reference}"))
            .args(&registry_flags)
            .args(["--registry-timeout", "15s"])
            .output()
            .with_context(|| format!("could not run {}", host_runner.display()))?;
        match out.status.code() {
            Some(0) => {
                let described: serde_json::Value =
                    serde_json::from_slice(&out.stdout).unwrap_or_default();
                bail!(
                    "vecproc:{}@{} is already published as {} ({}): a registry would silently \
                     move the tag, so bump `version` in components/Cargo.toml first",
                    pkg.name,
                    meta.version,
                    reference,
                    described["digest"].as_str().unwrap_or("unknown digest")
                );
            }
            // host-runner's status for "the registry has no such manifest".
            Some(3) => {}
            _ => bail!(
                "cannot check {reference}: {}",
                String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .trim_start_matches("Error: ")
            ),
        }
        plan.push((pkg, meta, file, reference));
    }

    let mut published = Vec::new();
    for (pkg, meta, file, reference) in plan {
        step(&format!(
            "publishing vecproc:{}@{} to {reference} (wkg oci push)",
            pkg.name, meta.version
        ));
        let mut annotations = vec![
            ("org.opencontainers.image.version", meta.version.clone()),
            (
                "org.opencontainers.image.description",
                pkg.description
                    .map(str::to_string)
                    .unwrap_or(meta.description.clone()),
            ),
            ("org.opencontainers.image.licenses", meta.license.clone()),
            (
                "org.opencontainers.image.title",
                format!("vecproc:{}", pkg.name),
            ),
        ];
        if let Some(source) = args
            .source
            .clone()
            .or(meta.repository.clone())
            .or(git_origin.clone())
        {
            annotations.push(("org.opencontainers.image.source", source));
        }
        if let Some(revision) = &revision {
            annotations.push(("org.opencontainers.image.revision", revision.clone()));
        }
        let mut cmd = Command::new(&wkg);
        cmd.args(["oci", "push"]);
        if plain_http {
            cmd.args(["--insecure", &args.registry]);
        }
        for (key, value) in &annotations {
            cmd.arg("--annotation").arg(format!("{key}={value}"));
        }
        cmd.arg(&reference).arg(&file);
        // Credentials travel in the environment, never on the command line.
        if let (Ok(user), Ok(pass)) = (
            std::env::var("HOST_RUNNER_REGISTRY_USERNAME"),
            std::env::var("HOST_RUNNER_REGISTRY_PASSWORD"),
        ) {
            cmd.env("WKG_OCI_USERNAME", user)
                .env("WKG_OCI_PASSWORD", pass);
        }
        let out = cmd
            .output()
            .with_context(|| format!("could not run {}", wkg.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "wkg oci push {reference} failed ({}): {}{}",
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let digest = stdout
            .lines()
            .find_map(|l| l.strip_prefix("digest: "))
            .map(str::trim)
            .filter(|d| d.starts_with("sha256:"))
            .with_context(|| format!("wkg printed no manifest digest for {reference}: {stdout}"))?
            .to_string();
        let pinned = format!("oci://{reference}@{digest}");
        if let Some(key) = &args.sign {
            step(&format!("signing {digest} (host-runner sign)"));
            let out = Command::new(&host_runner)
                .arg("sign")
                .arg("--key")
                .arg(key)
                .arg(&pinned)
                .args(&registry_flags)
                .output()
                .with_context(|| format!("could not run {}", host_runner.display()))?;
            if !out.status.success() {
                bail!(
                    "signing {pinned} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        published.push(pinned);
        // Beside each composed service, the OCI image node runtimes pull
        // (`host-runner image`): the component in the rootfs, the
        // entrypoint set. Its tag is new whenever the artifact's is, which
        // was checked above.
        if pkg.name.ends_with("service") {
            let image = format!(
                "oci://{}/vecproc/{}-image:{}",
                args.registry, pkg.name, meta.version
            );
            step(&format!(
                "pushing the OCI image {image} (host-runner image)"
            ));
            let out = Command::new(&host_runner)
                .arg("image")
                .arg(&file)
                .arg(&image)
                .args(&registry_flags)
                .output()
                .with_context(|| format!("could not run {}", host_runner.display()))?;
            if !out.status.success() {
                bail!(
                    "pushing {image} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            published.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
    }
    for line in &published {
        println!("{line}");
    }
    Ok(())
}

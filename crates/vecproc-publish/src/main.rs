//! `vecproc-publish --registry HOST:PORT [--sign KEY.pem]`: pushes the four
//! components of `<target>/wasm/` to an OCI registry with the real `wkg`,
//! as `HOST:PORT/vecproc/<name>:<version>` ([`vecproc_publish::PACKAGES`]).
//! `cargo xtask publish` builds the components, wkg and host-runner, then
//! runs this; the registry suite runs it directly.
//!
//! - `wkg oci push` writes the CNCF Wasm artifact (config
//!   `application/vnd.wasm.config.v0+json`, one `application/wasm` layer)
//!   with the annotations [`vecproc_publish::annotations`] gives.
//! - A version already in the registry is an error before anything is
//!   pushed (`host-runner inspect`): a registry would silently move the tag.
//! - Credentials come from `HOST_RUNNER_REGISTRY_USERNAME` /
//!   `HOST_RUNNER_REGISTRY_PASSWORD` (handed to wkg as `WKG_OCI_USERNAME` /
//!   `WKG_OCI_PASSWORD` in its environment) or the docker config, never argv.
//! - Plain HTTP for a loopback registry, as wkg does for localhost; HTTPS
//!   otherwise unless `--insecure`.
//! - `--sign` signs each pushed manifest digest with `host-runner sign`
//!   (cosign key-pair format, stored under `sha256-<hex>.sig`).
//! - Beside each composed service, an OCI image for node runtimes that
//!   cannot unpack a Wasm artifact (containerd before 1.6.25 / 1.7.7),
//!   `HOST:PORT/vecproc/<name>-image:<version>`, pushed by `host-runner
//!   image`. Not signed: `--verify-key` checks artifacts; containerd checks
//!   the image's digests as it pulls.
//!
//! Prints one line per component and image on stdout:
//! `oci://HOST:PORT/vecproc/<name>:<version>@sha256:<hex>`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};
use clap::Parser;
use vecproc_harness::cmd::{output, step};
use vecproc_publish::{
    annotations, is_loopback, pushed_digest, registry_error, CrateMeta, Provenance, PACKAGES,
};

#[derive(Parser)]
#[command(
    name = "vecproc-publish",
    about = "Publish the components to an OCI registry with wkg"
)]
struct Args {
    /// The registry, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    registry: String,
    /// Sign each pushed manifest with this private key (PKCS#8 PEM, P-256).
    #[arg(long, value_name = "KEY.pem")]
    sign: Option<PathBuf>,
    /// Speak plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    insecure: bool,
    /// The org.opencontainers.image.source annotation [default: the crates'
    /// `repository`, else git's `origin` URL].
    #[arg(long, value_name = "URL")]
    source: Option<String>,
    /// The wkg executable.
    #[arg(long, env = "VECPROC_WKG", default_value = "wkg")]
    wkg: PathBuf,
    /// The host-runner executable (inspect, sign, image).
    #[arg(long, env = "VECPROC_HOST_RUNNER", default_value = "host-runner")]
    host_runner: PathBuf,
    /// Where the components are [default: `<target>/wasm`].
    #[arg(long, value_name = "DIR")]
    wasm_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(message) = registry_error(&args.registry) {
        bail!(message);
    }
    if let Some(key) = &args.sign {
        if !key.is_file() {
            bail!("--sign {}: no such key file", key.display());
        }
    }
    let root = vecproc_harness::repo_root();
    let wasm_dir = args
        .wasm_dir
        .clone()
        .unwrap_or_else(|| vecproc_harness::target_dir().join("wasm"));
    let plain_http = args.insecure || is_loopback(&args.registry);
    let registry_flags: Vec<&str> = if plain_http {
        vec!["--insecure-registry", &args.registry]
    } else {
        Vec::new()
    };
    let git = |words: &[&str]| {
        output(Command::new("git").current_dir(&root).args(words))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let provenance = Provenance {
        source: args.source.clone(),
        origin: git(&["remote", "get-url", "origin"]),
        revision: git(&["rev-parse", "HEAD"]),
    };
    let host_runner = |words: &[&str]| -> Result<Output> {
        Command::new(&args.host_runner)
            .args(words)
            .args(&registry_flags)
            .output()
            .with_context(|| format!("could not run {}", args.host_runner.display()))
    };

    // Everything is checked before anything is pushed.
    let metadata = crate_metadata(&root)?;
    let mut plan = Vec::new();
    for pkg in &PACKAGES {
        let meta = crate_meta(&metadata, pkg.krate)?;
        let file = wasm_dir.join(format!("{}.wasm", pkg.name));
        if !file.is_file() {
            bail!("{} is missing: run cargo xtask build first", file.display());
        }
        let reference = format!("{}/vecproc/{}:{}", args.registry, pkg.name, meta.version);
        let out = host_runner(&[
            "inspect",
            &format!("oci://{reference}"),
            "--registry-timeout",
            "15s",
        ])?;
        match out.status.code() {
            Some(0) => {
                let described: serde_json::Value =
                    serde_json::from_slice(&out.stdout).unwrap_or_default();
                bail!(
                    "vecproc:{}@{} is already published as {reference} ({}): a registry would \
                     silently move the tag, so bump `version` in components/Cargo.toml first",
                    pkg.name,
                    meta.version,
                    described["digest"].as_str().unwrap_or("unknown digest")
                );
            }
            // host-runner's status for "the registry has no such manifest".
            Some(3) => {}
            _ => bail!("cannot check {reference}: {}", stderr_of(&out)),
        }
        plan.push((pkg, meta, file, reference));
    }

    let mut published = Vec::new();
    for (pkg, meta, file, reference) in plan {
        step(&format!(
            "publishing vecproc:{}@{} to {reference} (wkg oci push)",
            pkg.name, meta.version
        ));
        let mut cmd = Command::new(&args.wkg);
        cmd.args(["oci", "push"]);
        if plain_http {
            cmd.args(["--insecure", &args.registry]);
        }
        for (key, value) in annotations(pkg, &meta, &provenance) {
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
            .with_context(|| format!("could not run {}", args.wkg.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "wkg oci push {reference} failed ({}): {}{}",
                out.status,
                stdout.trim(),
                stderr_of(&out)
            );
        }
        let digest = pushed_digest(&stdout)
            .with_context(|| format!("wkg printed no manifest digest for {reference}: {stdout}"))?;
        let pinned = format!("oci://{reference}@{digest}");
        if let Some(key) = &args.sign {
            step(&format!("signing {digest} (host-runner sign)"));
            let key = key.to_string_lossy();
            let out = host_runner(&["sign", "--key", &key, &pinned])?;
            if !out.status.success() {
                bail!("signing {pinned} failed: {}", stderr_of(&out));
            }
        }
        published.push(pinned);
        // Its tag is new whenever the artifact's is, which was checked above.
        if pkg.is_service() {
            let image = format!(
                "oci://{}/vecproc/{}-image:{}",
                args.registry, pkg.name, meta.version
            );
            step(&format!(
                "pushing the OCI image {image} (host-runner image)"
            ));
            let out = host_runner(&["image", &file.to_string_lossy(), &image])?;
            if !out.status.success() {
                bail!("pushing {image} failed: {}", stderr_of(&out));
            }
            published.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
    }
    for line in &published {
        println!("{line}");
    }
    Ok(())
}

/// What a failed command said, without anyhow's `Error: ` prefix.
fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .trim()
        .trim_start_matches("Error: ")
        .to_string()
}

/// `cargo metadata` of the guest workspace (`components/`).
fn crate_metadata(root: &Path) -> Result<serde_json::Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let json = output(
        Command::new(cargo)
            .args([
                "metadata",
                "--no-deps",
                "--offline",
                "--format-version",
                "1",
            ])
            .arg("--manifest-path")
            .arg(root.join("components/Cargo.toml")),
    )
    .context("cargo metadata failed for components/Cargo.toml")?;
    Ok(serde_json::from_str(&json)?)
}

/// The annotated fields of crate `krate` in `metadata`.
fn crate_meta(metadata: &serde_json::Value, krate: &str) -> Result<CrateMeta> {
    let pkg = metadata["packages"]
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

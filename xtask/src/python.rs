//! Pinned Python tools from PyPI, each in a venv of its own under the
//! target directory: schemathesis (`contract`), kubernetes-validate
//! (`deploy/`'s manifests).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{output, run, step};

/// `<target>/<package>-venv/bin/<bin>`, pip-installing `package==version`
/// (under `constraints`, if given) when that version is not there.
pub fn venv_tool(
    package: &str,
    bin: &str,
    version: &str,
    constraints: Option<&Path>,
) -> Result<PathBuf> {
    let venv = crate::paths::target().join(format!("{package}-venv"));
    let path = venv.join("bin").join(bin);
    let installed = output(Command::new(&path).arg("--version"))
        .is_some_and(|v| v.split_whitespace().any(|w| w == version));
    if installed {
        eprintln!("    {package} {version} is installed");
        return Ok(path);
    }
    step(&format!(
        "installing {package} {version} into {} (pip, about 10 s)",
        venv.display()
    ));
    let python = std::env::var("VECPROC_PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv)).with_context(|| {
        format!("creating a venv with {python} (on Debian: apt-get install python3-venv)")
    })?;
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check"]);
    if let Some(constraints) = constraints {
        pip.arg("-c").arg(constraints);
    }
    run(pip.arg(format!("{package}=={version}")))
        .with_context(|| format!("installing {package}"))?;
    Ok(path)
}

/// kubernetes-validate's version: Kubernetes 1.37's schemas.
const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";

/// Validates `deploy/*.yaml` against Kubernetes' schemas, strictly
/// (unknown fields are errors).
pub fn validate_manifests(root: &Path) -> Result<()> {
    let validate = venv_tool(
        "kubernetes-validate",
        "kubernetes-validate",
        KUBERNETES_VALIDATE_VERSION,
        None,
    )?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("deploy"))
        .context("reading deploy/")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    step(&format!(
        "validating {} Kubernetes manifests in deploy/ (kubernetes-validate {KUBERNETES_VALIDATE_VERSION} --strict)",
        files.len()
    ));
    run(Command::new(validate).arg("--strict").args(&files))
}

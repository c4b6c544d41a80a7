//! Pinned Python tools from PyPI, each in a venv of its own under the
//! target directory, for the suites that run them (`tests/tests/e2e/`'s
//! `contract` and `manifests`), which take them by path.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{output, run, step};

/// schemathesis (the contract suite), with its dependencies pinned by
/// `tests/contract/constraints.txt`.
pub fn schemathesis(root: &Path) -> Result<PathBuf> {
    let constraints = root.join("tests/contract/constraints.txt");
    venv_tool("schemathesis", "4.32.5", Some(&constraints))
}

/// kubernetes-validate with Kubernetes 1.37's schemas (the manifests
/// suite).
pub fn kubernetes_validate() -> Result<PathBuf> {
    venv_tool("kubernetes-validate", "1.37.0", None)
}

/// `<target>/<package>-venv/bin/<package>`, pip-installing
/// `package==version` (under `constraints`, if given) when that version is
/// not there.
fn venv_tool(package: &str, version: &str, constraints: Option<&Path>) -> Result<PathBuf> {
    let venv = crate::paths::target().join(format!("{package}-venv"));
    let path = venv.join("bin").join(package);
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

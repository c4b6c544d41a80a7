//! `deploy/`'s Kubernetes manifests, validated against Kubernetes' own
//! schemas by kubernetes-validate (pinned; `cargo xtask test` installs it
//! into a venv and passes it as `$VECPROC_KUBERNETES_VALIDATE`), strictly:
//! an unknown or misspelt field is an error, not ignored as `kubectl apply`
//! would.

use std::process::Command;

use vecproc_tests::{repo_root, tool};

#[test]
fn the_deploy_manifests_are_valid_kubernetes_objects() {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("deploy"))
        .expect("reading deploy/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "deploy/ has {} manifests", files.len());
    let validate = tool("VECPROC_KUBERNETES_VALIDATE", "kubernetes-validate");
    let out = Command::new(&validate)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): `cargo xtask test` installs kubernetes-validate and \
                 passes it as VECPROC_KUBERNETES_VALIDATE",
                validate.display()
            )
        });
    assert!(
        out.status.success(),
        "kubernetes-validate --strict rejected deploy/ ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

//! The HTTP contract, checked by a third-party client. schemathesis (pinned
//! with its dependencies in `tests/contract/constraints.txt`; `cargo xtask
//! test` installs it into a venv and passes it as `$VECPROC_SCHEMATHESIS`)
//! generates requests from `components/http-api/openapi.yaml`, with the
//! hooks of `tests/contract/vecproc_hooks.py`, and runs all its checks:
//! the stateless routes against the composed service under the real
//! `wasmtime serve`, the `/vectors` operations against the stateful service
//! under host-runner with `-S keyvalue` and a fresh embedded store
//! (settings in `tests/contract/vectors.toml`).
//!
//! Bounded in examples and in time, and reproducible: 300 examples per
//! operation and phase, seed 20261201, killed after 300 s; the variables
//! `VECPROC_CONTRACT_EXAMPLES`, `VECPROC_CONTRACT_SEED` and
//! `VECPROC_CONTRACT_TIMEOUT` (seconds) change them, as `cargo xtask
//! contract --max-examples N --seed S --timeout T` does.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use vecproc_harness::process::Child;
use vecproc_tests::{
    artifact, host_runner_bin, repo_root, serve_command, target_dir, tool, wasmtime_bin, Launch,
};

#[test]
fn the_stateless_routes_hold_the_contract_under_wasmtime_serve() {
    check(
        "wasmtime-serve",
        serve_command(&wasmtime_bin(), &artifact("vector-service.wasm"), &[]),
        "--exclude-path-regex=^/vectors",
        None,
    );
}

#[test]
fn the_vectors_routes_hold_the_contract_under_host_runner_keyvalue() {
    let state = vecproc_harness::temp_dir("contract-state");
    let state_arg = state.display().to_string();
    check(
        "host-runner-keyvalue",
        serve_command(
            &host_runner_bin(),
            &artifact("vector-store-service.wasm"),
            &["-Skeyvalue", "--state-dir", &state_arg],
        ),
        "--include-path-regex=^/vectors",
        Some(&repo_root().join("tests/contract/vectors.toml")),
    );
    let _ = std::fs::remove_dir_all(&state);
}

/// A setting from `VECPROC_CONTRACT_<name>`, else `default`.
fn setting(name: &str, default: u64) -> u64 {
    let var = format!("VECPROC_CONTRACT_{name}");
    match std::env::var(&var) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

/// One schemathesis run against the server `cmd` starts: the operations
/// `filter` selects, with `config` if given. Panics with schemathesis'
/// report if it finds a failure or an error, or does not finish in time.
fn check(label: &str, mut cmd: Command, filter: &str, config: Option<&Path>) {
    let (examples, seed, timeout) = (
        setting("EXAMPLES", 300),
        setting("SEED", 20261201),
        setting("TIMEOUT", 300),
    );
    let root = repo_root();
    let reports = target_dir().join("contract").join(label);
    let _ = std::fs::remove_dir_all(&reports);
    std::fs::create_dir_all(&reports).expect("creating the report directory");
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    let server = Launch::new(cmd)
        .discard_output()
        .start()
        .unwrap_or_else(|e| panic!("{e}"));

    let schemathesis = tool("VECPROC_SCHEMATHESIS", "schemathesis");
    let log = reports.join("schemathesis.log");
    let mut command = Command::new(&schemathesis);
    command
        .current_dir(&reports)
        .env("PYTHONPATH", root.join("tests/contract"))
        // No __pycache__ in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("SCHEMATHESIS_HOOKS", "vecproc_hooks");
    if let Some(config) = config {
        command.arg("--config-file").arg(config);
    }
    command
        .arg("run")
        .arg(root.join("components/http-api/openapi.yaml"))
        .arg(format!("--url={}", server.base))
        .arg(filter)
        .args(["--checks", "all", "--mode", "all", "--no-color"])
        .arg(format!("--max-examples={examples}"))
        .arg(format!("--seed={seed}"))
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "10"])
        .args(["--report", "junit", "--report-dir"])
        .arg(reports.join("report"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("creating the log"))
        .stderr(Stdio::inherit());
    let mut child = Child::new(command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start {} ({e}): `cargo xtask test` installs schemathesis and passes it as \
             VECPROC_SCHEMATHESIS",
            schemathesis.display()
        )
    }));

    let status = child.wait_for(Duration::from_secs(timeout));
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: String = {
        let lines: Vec<&str> = report.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    };
    match status {
        None => panic!("schemathesis did not finish within {timeout} s against {label} (killed); its output:\n{tail}"),
        Some(s) if !s.success() => panic!(
            "schemathesis found contract failures or errors against {label} ({s}); the end of its report ({}):\n{tail}",
            log.display()
        ),
        Some(_) => eprintln!(
            "contract holds against {label} ({examples} examples, seed {seed}); report in {}",
            log.display()
        ),
    }
}

//! The command line a container is served with, and what its exit status
//! means.
//!
//! A shim hands over the container's environment (`KEY=VALUE` strings, as
//! the OCI runtime spec lists them), the arguments after the entrypoint and
//! the component's path; [`serve_argv`] turns them into `host-runner serve
//! FLAGS... ARGS... COMPONENT`, which [`crate::cli::status`] runs exactly as
//! the binary would. The flags come first from the `HOST_RUNNER_*`
//! variables ([`super::env`]), then from the container's arguments, so a
//! pod's `args:` can add flags to what its `env:` says (a single-valued flag
//! given in both is refused, as on the command line).

use super::env::{serve_args, EnvError};

/// The container stopped cleanly: SIGTERM or SIGINT, then the drain.
pub const EXIT_STOPPED: i32 = 0;
/// host-runner could not start or failed while serving: the component is
/// missing or not a component, an option is refused, an address is in use.
/// The reason is one line on the container's stderr.
pub const EXIT_FAILED: i32 = 1;
/// The settings are malformed: a `HOST_RUNNER_*` variable that names no
/// flag or has a bad value, or a bad argument (clap's message on stderr).
pub const EXIT_BAD_SETTINGS: i32 = 2;
/// A registry said a referenced component (`--plug oci://...`) does not
/// exist ([`crate::cli::EXIT_NOT_FOUND`]).
pub const EXIT_NOT_FOUND: i32 = crate::cli::EXIT_NOT_FOUND as i32;

/// The variable that names the component to serve instead of the
/// entrypoint: an `oci://` reference host-runner pulls itself, so that
/// `HOST_RUNNER_VERIFY_KEY` (a key file mounted into the container) checks
/// its cosign signature before anything runs.
pub const COMPONENT_VAR: &str = super::env::COMPONENT_VAR;

/// `host-runner serve`'s command line (program name first) for a container
/// with environment `envs` (`KEY=VALUE`; entries without `=` are ignored),
/// the arguments after its entrypoint, and `component` (unless
/// [`COMPONENT_VAR`] names another).
pub fn serve_argv(
    envs: &[String],
    args: &[String],
    component: &str,
) -> Result<Vec<String>, EnvError> {
    let vars: Vec<(String, String)> = envs
        .iter()
        .filter_map(|entry| {
            let (name, value) = entry.split_once('=')?;
            Some((name.to_string(), value.to_string()))
        })
        .collect();
    let component = vars
        .iter()
        .find(|(name, value)| name == COMPONENT_VAR && !value.is_empty())
        .map_or(component, |(_, value)| value.as_str())
        .to_string();
    let mut argv = vec!["host-runner".to_string(), "serve".to_string()];
    argv.extend(serve_args(vars)?);
    argv.extend(args.iter().cloned());
    argv.push(component);
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn environment_then_arguments_then_the_component() {
        let argv = serve_argv(
            &strings(&[
                "PATH=/usr/bin",
                "HOST_RUNNER_ADDR=127.0.0.1:8080",
                "HOST_RUNNER_REQUEST_TIMEOUT=5s",
                "NOT_A_PAIR",
                "HOST_RUNNER_LOG=debug",
                "HOST_RUNNER_LOG_FORMAT=json",
            ]),
            &strings(&["--h2c", "--max-memory-size", "1048576"]),
            "/vector-service.wasm",
        )
        .unwrap();
        assert_eq!(
            argv,
            strings(&[
                "host-runner",
                "serve",
                "--addr=127.0.0.1:8080",
                "--log-format=json",
                "--request-timeout=5s",
                "--h2c",
                "--max-memory-size",
                "1048576",
                "/vector-service.wasm",
            ])
        );
        crate::cli::serve_command()
            .try_get_matches_from(&argv[1..])
            .expect("serve accepts the command line");
    }

    #[test]
    fn a_reference_in_the_environment_replaces_the_entrypoint() {
        let argv = serve_argv(
            &strings(&[
                "HOST_RUNNER_COMPONENT=oci://registry.example:5000/vecproc/vector-service@sha256:00",
                "HOST_RUNNER_VERIFY_KEY=/keys/release.pub",
            ]),
            &[],
            "/component.wasm",
        )
        .unwrap();
        assert_eq!(
            argv,
            strings(&[
                "host-runner",
                "serve",
                "--verify-key=/keys/release.pub",
                "oci://registry.example:5000/vecproc/vector-service@sha256:00",
            ])
        );
    }

    #[test]
    fn a_bad_variable_is_an_error_naming_it() {
        let err = serve_argv(&strings(&["HOST_RUNNER_PORT=80"]), &[], "/a.wasm").unwrap_err();
        assert_eq!(
            err.to_string(),
            "HOST_RUNNER_PORT: host-runner serve has no flag --port"
        );
    }
}

//! `host-runner serve`'s flags from environment variables, the way a
//! container is configured: `HOST_RUNNER_<FLAG>`, the flag's long name
//! upper-cased with `-` as `_` (`HOST_RUNNER_ADMIN_ADDR=127.0.0.1:9090` is
//! `--admin-addr=127.0.0.1:9090`, `HOST_RUNNER_WASI=keyvalue` is `-S
//! keyvalue`).
//!
//! - A switch takes `1`, `true`, `yes` or `on` (given) and `0`, `false`,
//!   `no`, `off` or nothing (not given).
//! - A repeatable flag takes one value per line (`--outbound-allow`,
//!   `--env`, `--dir`, `--addr`, `-S`, ...), since values may hold commas
//!   (`-S cli,inherit-network`) and spaces (paths).
//! - Any other `HOST_RUNNER_` variable that names no flag is an error naming
//!   the variable, so a typo is not silently ignored. host-runner's own
//!   variables that are not flags are left alone: `HOST_RUNNER_LOG`,
//!   `HOST_RUNNER_COMPONENT` and the registry's `HOST_RUNNER_REGISTRY*`
//!   credentials (which never become
//!   arguments, where another process could read them).
//!
//! The flags' names and kinds come from the `serve` command itself
//! ([`crate::cli::serve_command`]), so a new flag is configurable this way
//! with no change here.

use clap::ArgAction;

/// The prefix of the variables read.
pub const PREFIX: &str = "HOST_RUNNER_";

/// A variable with the prefix that is not a flag: the log filter.
const NOT_A_FLAG: &str = "HOST_RUNNER_LOG";
/// The component to serve instead of the entrypoint (see
/// [`super::launch::COMPONENT_VAR`]): not a flag either.
pub const COMPONENT_VAR: &str = "HOST_RUNNER_COMPONENT";
/// Variables starting with this are not flags: the registry credentials.
const NOT_FLAGS_PREFIX: &str = "HOST_RUNNER_REGISTRY_";

/// A variable that cannot become a flag. Values are never shown: they may
/// be secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// No flag of `serve` has this name.
    #[error("{name}: host-runner serve has no flag --{flag}")]
    UnknownFlag {
        /// The variable.
        name: String,
        /// The flag it would be.
        flag: String,
    },
    /// A switch's value is not one of the accepted spellings.
    #[error("{name}: --{flag} is a switch: use 1, true, yes, on, or 0, false, no, off")]
    NotASwitch {
        /// The variable.
        name: String,
        /// The flag.
        flag: String,
    },
    /// A flag that cannot be set from the environment (the component, help).
    #[error("{name}: --{flag} cannot be set from the environment")]
    NotSettable {
        /// The variable.
        name: String,
        /// The flag.
        flag: String,
    },
}

/// The flags `vars` give, for `host-runner serve` (before the component),
/// in the variables' name order so the result does not depend on how the
/// environment was listed.
pub fn serve_args(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, EnvError> {
    args_for(&crate::cli::serve_command(), vars)
}

/// [`serve_args`] for any command's flags.
fn args_for(
    command: &clap::Command,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, EnvError> {
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .filter(|(name, _)| {
            name != NOT_A_FLAG && name != COMPONENT_VAR && !name.starts_with(NOT_FLAGS_PREFIX)
        })
        .collect();
    vars.sort();
    let mut args = Vec::new();
    for (name, value) in vars {
        let flag = name[PREFIX.len()..].to_ascii_lowercase().replace('_', "-");
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(flag.as_str()))
        else {
            return Err(EnvError::UnknownFlag { name, flag });
        };
        match arg.get_action() {
            ArgAction::SetTrue => match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => args.push(format!("--{flag}")),
                "" | "0" | "false" | "no" | "off" => {}
                _ => return Err(EnvError::NotASwitch { name, flag }),
            },
            ArgAction::Append => args.extend(
                value
                    .lines()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("--{flag}={v}")),
            ),
            ArgAction::Set => args.push(format!("--{flag}={value}")),
            _ => return Err(EnvError::NotSettable { name, flag }),
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variables_become_the_flags_they_name() {
        let args = serve_args(vars(&[
            ("PATH", "/usr/bin"),
            ("HOST_RUNNER_ADMIN_ADDR", "127.0.0.1:9090"),
            ("HOST_RUNNER_ADDR", "127.0.0.1:8080\n127.0.0.1:8081\n"),
            ("HOST_RUNNER_WASI", "keyvalue\ncli,inherit-network"),
            ("HOST_RUNNER_H2C", "true"),
            ("HOST_RUNNER_NO_CACHE", "0"),
            ("HOST_RUNNER_DRAIN_TIMEOUT", "25s"),
            ("HOST_RUNNER_LOG", "debug"),
            ("HOST_RUNNER_REGISTRY_PASSWORD", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(
            args,
            [
                "--addr=127.0.0.1:8080",
                "--addr=127.0.0.1:8081",
                "--admin-addr=127.0.0.1:9090",
                "--drain-timeout=25s",
                "--h2c",
                "--wasi=keyvalue",
                "--wasi=cli,inherit-network",
            ]
        );
        // What comes out is a command line `serve` accepts.
        let mut argv = vec!["serve".to_string()];
        argv.extend(args);
        argv.push("app.wasm".into());
        crate::cli::serve_command()
            .try_get_matches_from(argv)
            .expect("serve accepts the flags");
    }

    #[test]
    fn mistakes_name_the_variable_and_never_the_value() {
        let err = serve_args(vars(&[("HOST_RUNNER_ADRR", "s3cret")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HOST_RUNNER_ADRR: host-runner serve has no flag --adrr"
        );
        let err = serve_args(vars(&[("HOST_RUNNER_H2C", "maybe")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HOST_RUNNER_H2C: --h2c is a switch"),
            "{err}"
        );
        assert!(serve_args(vars(&[("HOST_RUNNER_HELP", "1")])).is_err());
    }
}

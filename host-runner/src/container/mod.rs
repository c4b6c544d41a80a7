//! What host-runner needs to run as a container runtime's workload (issue
//! 20: a containerd shim, a Kubernetes RuntimeClass), kept free of any
//! container runtime so it is tested here: settings from the container's
//! environment ([`env`]), the command line and exit statuses
//! ([`launch`]). The shim (`host-runner/shim/`) only finds the component and
//! runs [`crate::cli::status`] with the command line [`launch::serve_argv`]
//! gives, so a container is served exactly as the command line serves it
//! (limits, admission, metrics, drain on SIGTERM).

pub mod env;
pub mod launch;

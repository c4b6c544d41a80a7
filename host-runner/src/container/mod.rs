//! What host-runner needs to run as a container runtime's workload (issue
//! 20: a containerd shim, a Kubernetes RuntimeClass), kept free of any
//! container runtime so it is tested here: settings from the container's
//! environment ([`env`]). The shim itself then only finds the component and
//! calls [`crate::cli::run`] with `serve`, the flags [`env::serve_args`]
//! gives and the component, so a container is served exactly as the command
//! line serves it (limits, admission, metrics, drain on SIGTERM).

pub mod env;

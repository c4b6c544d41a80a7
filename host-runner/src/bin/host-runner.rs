//! The `host-runner` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    host_runner::cli::main()
}

//! `cargo xtask publish --registry HOST:PORT [--sign KEY.pem] [--insecure]
//! [--source URL]`: builds the components (unless `--no-build`), installs
//! the pinned wkg, builds host-runner and `vecproc-publish` (release), and
//! runs `vecproc-publish` with the other options. What is published, under
//! which names and annotations, lives there (`crates/vecproc-publish`).

use std::path::Path;

use anyhow::Result;

use crate::run::{cargo_in, run, step};
use crate::{build, paths, tools};

/// Options of `cargo xtask publish`.
#[derive(clap::Args)]
pub struct Args {
    /// Publish what `<target>/wasm/` holds, without building.
    #[arg(long)]
    no_build: bool,
    /// The options for `vecproc-publish` (`--registry HOST:PORT`, `--sign
    /// KEY.pem`, `--insecure`, `--source URL`; `--help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Builds what is published and publishes it.
pub fn publish(root: &Path, args: Args) -> Result<()> {
    if !args.no_build {
        build::build(root)?;
    }
    let wkg = tools::ensure(&tools::WKG)?;
    let host_runner = build::host_runner(root)?;
    step("building vecproc-publish (release)");
    run(&mut cargo_in(
        root,
        "build --quiet --release -p vecproc-publish",
    ))?;
    run(
        std::process::Command::new(paths::target().join("release/vecproc-publish"))
            .arg("--wkg")
            .arg(wkg)
            .arg("--host-runner")
            .arg(host_runner)
            .args(args.args),
    )
}

//! host-runner's `wasi:keyvalue@0.2.0-draft2` bindings (`src/keyvalue/draft2.rs`)
//! read the WIT that `cargo xtask` fetches from crates.io into the ignored
//! `wit/deps/`: say so plainly when it is missing, instead of a macro error.

fn main() {
    let wit =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/deps/keyvalue-2024-10-17");
    println!("cargo:rerun-if-changed={}", wit.display());
    if !wit.join("store.wit").is_file() {
        panic!(
            "{} is missing: it is fetched from crates.io (the spin-sdk package) by \
             `cargo xtask fetch-wit`, which every cargo xtask build, serve and test runs first",
            wit.display()
        );
    }
}

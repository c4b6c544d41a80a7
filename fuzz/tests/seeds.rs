//! Replays the committed seed inputs (`fuzz/seeds/<target>/`) through each
//! target's properties on stable Rust, so `cargo xtask test` runs every
//! target's checks on known edge cases (and on any crash input added there)
//! without libFuzzer or a nightly toolchain.

use std::fs;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} fails its check",
            path.display()
        );
        seen += 1;
    }
    assert!(
        seen >= 5,
        "{target}: only {seen} seeds in {}",
        dir.display()
    );
}

#[test]
fn json_body_seeds() {
    replay("json_body", vecproc_fuzz::json_body::check_input);
}

#[test]
fn binary_body_seeds() {
    replay("binary_body", vecproc_fuzz::binary_body::check_input);
}

#[test]
fn router_seeds() {
    replay("router", vecproc_fuzz::router::check_input);
}

#[test]
fn statistics_seeds() {
    replay("statistics", vecproc_fuzz::statistics::check_input);
}

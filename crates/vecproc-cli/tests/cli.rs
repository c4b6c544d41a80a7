//! The native `vecproc` binary end to end: input formats, output bytes,
//! messages and exit codes. (The same binary built for wasm32-wasip1 is
//! compared across runtimes in `js/test/wasi.test.mjs`.)

use std::io::Write;
use std::process::{Command, Output, Stdio};

const STATS_4132: &str = r#"{"count":4,"sum":10.0,"mean":2.5,"min":1.0,"max":4.0,"variance":1.25,"stddev":1.118033988749895,"sample_variance":1.6666666666666667,"sample_stddev":1.2909944487358056,"median":2.5,"p25":1.75,"p75":3.25,"p90":3.7,"p99":3.9699999999999998}"#;

fn vecproc(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vecproc"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vecproc starts");
    let mut input = child.stdin.take().expect("piped stdin");
    // A run refused for its arguments may exit before reading stdin; the
    // broken pipe is then expected, and the exit code tells the rest.
    match input.write_all(stdin) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.expect("write stdin"),
    }
    drop(input);
    child.wait_with_output().expect("vecproc runs")
}

fn ok(args: &[&str], stdin: &[u8]) -> String {
    let out = vecproc(args, stdin);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Exit code and stderr of a refused run; stdout must stay empty.
fn refused(args: &[&str], stdin: &[u8]) -> (i32, String) {
    let out = vecproc(args, stdin);
    assert!(out.stdout.is_empty(), "{args:?}: stdout not empty");
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    )
}

fn f64le(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn statistics_of_every_input_format_are_the_api_body() {
    let want = format!("{STATS_4132}\n");
    assert_eq!(ok(&[], b"[4, 1, 3, 2]"), want);
    assert_eq!(ok(&[], br#"{"values": [4, 1, 3, 2]}"#), want);
    assert_eq!(ok(&["--format", "lines"], b"4\n1\n\n3\n2\n"), want);
    assert_eq!(
        ok(&["--format", "f64le"], &f64le(&[4.0, 1.0, 3.0, 2.0])),
        want
    );
    assert_eq!(ok(&["-"], b"[4,1,3,2]"), want);
}

#[test]
fn empty_input_gives_nulls() {
    let out = ok(&["--format", "lines"], b"");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["count"], 0);
    assert!(v["mean"].is_null() && v["p99"].is_null());
    assert_eq!(ok(&[], b"[]"), out);
}

#[test]
fn compensated_sum() {
    let out = ok(&[], b"[1e16, 1.0, -1e16]");
    assert!(out.starts_with(r#"{"count":3,"sum":1.0,"#), "{out}");
}

#[test]
fn sort_orders() {
    assert_eq!(ok(&["--sort"], b"[3, 1.5, -2, 8]"), "[-2.0,1.5,3.0,8.0]\n");
    assert_eq!(
        ok(&["--sort", "asc"], b"[3, 1.5, -2, 8]"),
        "[-2.0,1.5,3.0,8.0]\n"
    );
    assert_eq!(
        ok(&["--sort=desc"], b"[3, 1.5, -2, 8]"),
        "[8.0,3.0,1.5,-2.0]\n"
    );
    assert_eq!(
        ok(
            &["--sort", "desc", "--format", "f64le"],
            &f64le(&[2.5, 0.5, 1.0])
        ),
        "[2.5,1.0,0.5]\n"
    );
    assert_eq!(ok(&["--sort"], b"[]"), "[]\n");
}

#[test]
fn a_file_argument() {
    let dir = std::env::temp_dir().join(format!("vecproc-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("values.txt");
    std::fs::write(&file, "2\n1\n").unwrap();
    let path = file.to_str().unwrap();
    let out = ok(&["--format", "lines", "--sort", "desc", path], b"ignored");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out, "[2.0,1.0]\n");
}

#[test]
fn bad_input_exits_1_and_names_the_problem() {
    let cases: &[(&[&str], &[u8], &str)] = &[
        (&[], b"[1, \"two\"]", "vecproc: error: stdin: invalid type: string \"two\", expected a number at line 1 column 9 (not_a_number)\n"),
        (&[], b"[1,", "(bad_json)"),
        (&[], b"", "(bad_json)"),
        (&[], b"[1e400]", "(non_finite)"),
        (&["--format", "f64le"], b"abc", "binary body is 3 bytes, not a multiple of 8"),
        (&["--format", "f64le"], &f64le(&[1.0, f64::NAN]), "value at index 1 is NaN"),
        (&["--format", "lines"], b"1\n2\nthree\n", "vecproc: error: stdin: line 3: \"three\" is not a number (not_a_number)\n"),
        (&["--format", "lines"], b"inf\n", "line 1: \"inf\" is not a finite number"),
    ];
    for (args, stdin, want) in cases {
        let (code, stderr) = refused(args, stdin);
        assert_eq!(code, 1, "{args:?} {stdin:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr:?} lacks {want:?}");
    }
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["--sort", "sideways"][..],
        &["--format", "csv"],
        &["--bogus"],
        &["a", "b"],
    ] {
        let (code, stderr) = refused(args, b"[1]");
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    let (code, stderr) = refused(&["/nonexistent/values.json"], b"");
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("vecproc: error: cannot read /nonexistent/values.json: "),
        "{stderr}"
    );
}

#[test]
fn help_and_version() {
    let help = ok(&["--help"], b"");
    assert!(
        help.contains("--sort [<ORDER>]") && help.contains("--format <FORMAT>"),
        "{help}"
    );
    assert_eq!(
        ok(&["--version"], b""),
        format!("vecproc {}\n", env!("CARGO_PKG_VERSION"))
    );
}

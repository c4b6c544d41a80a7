//! What a host provides beyond the request, through the `platform` fixture
//! (`tests/fixtures/platform`): `wasi:config/store` under both servers
//! (`-S config`, `-S config-var`) and host-runner's other sources
//! (`--config-file`, `--config-env-prefix`); and guests' outbound HTTP
//! under host-runner's policy: denied by default, allowed by rule, pooled
//! (connections counted by the upstream, beside `wasmtime serve`'s one per
//! request), timed out, capped, and over HTTPS with a test CA
//! (`--outbound-ca`). The upstreams are `vecproc_tests::upstream` and
//! host-runner itself over TLS.

use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use vecproc_harness::certs;
use vecproc_tests::registry::{run_for, temp_dir};
use vecproc_tests::upstream::{Mode, Upstream};
use vecproc_tests::{artifact, get, host_runner_bin, wasmtime_bin, Reply, Server};

fn fixture() -> PathBuf {
    artifact("fixtures/platform.wasm")
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn serve(binary: PathBuf, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(binary);
    cmd.args(["serve", "--addr=127.0.0.1:0"])
        .args(extra)
        .arg(fixture())
        .envs(env.iter().copied());
    Server::start(cmd)
}

/// `-S config` with `-S config-var`: the same answers from both servers,
/// a missing key answered `none` (404 here), not a trap.
#[test]
fn config_vars_read_the_same_under_both_servers() {
    let flags = [
        "-Sconfig",
        "-Sconfig-var=greeting=hello",
        "-Sconfig-var=url=http://example.test/?a=b",
        "-Sconfig-var=greeting=hello again",
    ];
    let servers = [
        ("wasmtime serve", serve(wasmtime_bin(), &flags, &[])),
        ("host-runner", serve(host_runner_bin(), &flags, &[])),
    ];
    for (name, server) in &servers {
        let got: Vec<(u16, String)> = [
            "/config?key=greeting",
            "/config?key=url",
            "/config?key=absent",
            "/config-all",
        ]
        .iter()
        .map(|p| {
            let r = get(&server.url(p));
            (r.status, text(&r))
        })
        .collect();
        assert_eq!(
            got,
            [
                (200, "hello again".to_string()),
                (200, "http://example.test/?a=b".into()),
                (404, "missing\n".into()),
                (
                    200,
                    "greeting=hello again\nurl=http://example.test/?a=b\n".into()
                ),
            ],
            "{name}"
        );
    }
    // Without -S config neither links it, and both say so at startup.
    for binary in [wasmtime_bin(), host_runner_bin()] {
        let mut cmd = Command::new(&binary);
        cmd.args(["serve", "--addr=127.0.0.1:0"]).arg(fixture());
        let out = run_for(cmd, Duration::from_secs(60));
        assert_eq!(out.code, 1, "{}: {}", binary.display(), out.stderr);
        assert!(
            out.stderr.contains("wasi:config/store"),
            "{}: {}",
            binary.display(),
            out.stderr
        );
    }
}

/// host-runner's own sources: a TOML file, an env file, a prefix of the
/// host environment; later sources win; a bad file stops startup with a
/// line naming it and the line; values never reach the log.
#[test]
fn config_files_and_the_environment_feed_the_store() {
    let dir = temp_dir("wasi-config");
    let toml = dir.join("app.toml");
    std::fs::write(
        &toml,
        "greeting = \"from toml\"\nsecret = \"s3cr3t-value\"\nretries = 3\n[db]\nhost = \"db.internal\"\n",
    )
    .unwrap();
    let server = serve(
        host_runner_bin(),
        &[
            "-Sconfig",
            "--config-file",
            toml.to_str().unwrap(),
            "--config-env-prefix",
            "VECPROC_CFG_",
            "-Sconfig-var=retries=5",
        ],
        &[("VECPROC_CFG_GREETING", "from env")],
    );
    let all = get(&server.url("/config-all"));
    assert_eq!(
        text(&all),
        "db.host=db.internal\ngreeting=from env\nretries=5\nsecret=s3cr3t-value\n"
    );
    let log = server.stderr();
    assert!(
        log.contains("wasi:config: 4 values (db.host, greeting, retries, secret)"),
        "{log}"
    );
    assert!(
        !log.contains("s3cr3t-value"),
        "a value reached the log: {log}"
    );

    let env = dir.join("app.env");
    std::fs::write(&env, "# deployment\nexport MODE=\"blue green\"\nLEVEL=3\n").unwrap();
    let server = serve(
        host_runner_bin(),
        &["-Sconfig", "--config-file", env.to_str().unwrap()],
        &[],
    );
    assert_eq!(
        text(&get(&server.url("/config-all"))),
        "LEVEL=3\nMODE=blue green\n"
    );

    let bad = dir.join("bad.env");
    std::fs::write(&bad, "A=1\nthis is not an assignment\n").unwrap();
    let mut cmd = Command::new(host_runner_bin());
    cmd.args(["serve", "--addr=127.0.0.1:0", "-Sconfig", "--config-file"])
        .arg(&bad)
        .arg(fixture());
    let out = run_for(cmd, Duration::from_secs(60));
    assert_eq!(
        (out.code, out.stderr.trim()),
        (
            1,
            format!(
                "Error: --config-file {}, line 2: not KEY=VALUE",
                bad.display()
            )
            .as_str()
        )
    );
}

/// host-runner on the fixture with `-S config`, an admin address and
/// `--outbound-allow RULE`.
fn allowing(rule: &str) -> Server {
    serve(
        host_runner_bin(),
        &[
            "-Sconfig",
            "--admin-addr=127.0.0.1:0",
            "--outbound-allow",
            rule,
        ],
        &[],
    )
}

fn metric(server: &Server, name: &str) -> u64 {
    let metrics = text(&get(&format!(
        "http://{}/metrics",
        server.admin_authority()
    )));
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Denied without a rule (and by a rule for another host or port),
/// allowed by one, with each outcome counted.
#[test]
fn outbound_requests_need_a_rule() {
    let upstream = Upstream::start(Mode::Hello);
    let fetch = |server: &Server, url: &str| {
        let r = get(&server.url(&format!("/fetch?url={url}")));
        (r.status, text(&r))
    };
    let closed = serve(
        host_runner_bin(),
        &["-Sconfig", "--admin-addr=127.0.0.1:0"],
        &[],
    );
    assert_eq!(
        fetch(&closed, &upstream.url("/a")),
        (502, "error: ErrorCode::HttpRequestDenied\n".into())
    );
    assert!(closed.wait_for_output(
        &format!(
            "outbound request to http://127.0.0.1:{} denied: no --outbound-allow rule allows it",
            upstream.port
        ),
        Duration::from_secs(5)
    ));
    assert_eq!(
        metric(
            &closed,
            "host_runner_outbound_requests_total{outcome=\"denied\"}"
        ),
        1
    );

    let rule = format!("http://127.0.0.1:{}", upstream.port);
    let open = allowing(&rule);
    assert_eq!(
        fetch(&open, &upstream.url("/a")),
        (200, "200 hello /a\n".into())
    );
    // The same host by name, and another port, are not what the rule says.
    let by_name = format!("http://localhost:{}/a", upstream.port);
    assert_eq!(
        fetch(&open, &by_name).1,
        "error: ErrorCode::HttpRequestDenied\n"
    );
    assert_eq!(
        fetch(&open, "http://127.0.0.1:9/a").1,
        "error: ErrorCode::HttpRequestDenied\n"
    );
    assert_eq!(upstream.connections(), 1, "a denied request reached it");
    assert_eq!(
        metric(
            &open,
            "host_runner_outbound_requests_total{outcome=\"sent\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &open,
            "host_runner_outbound_requests_total{outcome=\"denied\"}"
        ),
        2
    );
}

/// host-runner keeps connections alive across requests and guests;
/// `wasmtime serve` opens one per request. Measured by the upstream.
#[test]
fn outbound_connections_are_pooled() {
    const REQUESTS: usize = 40;
    let mut opened = Vec::new();
    for name in ["wasmtime serve", "host-runner"] {
        let upstream = Upstream::start(Mode::Hello);
        let rule = format!("http://127.0.0.1:{}", upstream.port);
        let server = match name {
            "wasmtime serve" => serve(wasmtime_bin(), &["-Sconfig"], &[]),
            _ => allowing(&rule),
        };
        // Four guest requests of ten outbound requests each.
        for round in 0..REQUESTS / 10 {
            let r = get(&server.url(&format!(
                "/fetch?url={}&n=10",
                upstream.url(&format!("/r{round}"))
            )));
            assert_eq!(r.status, 200, "{name}: {}", text(&r));
            assert_eq!(
                text(&r),
                format!("200 hello /r{round}\n").repeat(10),
                "{name}"
            );
        }
        if name == "host-runner" {
            assert_eq!(
                metric(&server, "host_runner_outbound_connections_total") as usize,
                upstream.connections()
            );
        }
        opened.push((name, upstream.connections()));
    }
    eprintln!("connections opened for {REQUESTS} outbound requests: {opened:?}");
    assert_eq!(opened[0].1, REQUESTS, "wasmtime serve: one per request");
    // A guest's next request may start before the previous connection is
    // back in the pool, so a second one can open; never more.
    assert!(
        (1..=2).contains(&opened[1].1),
        "host-runner opened {} connections",
        opened[1].1
    );
}

/// The guest's first-byte timeout (capped by the host's) ends a request
/// to an upstream that never answers with connection-read-timeout; the
/// host's connect timeout ends a TLS handshake that never completes with
/// connection-timeout; `--outbound-max-concurrent` refuses the request
/// over the cap with connection-limit-reached.
#[test]
fn outbound_timeouts_and_the_concurrency_cap() {
    let silent = Upstream::start(Mode::Silent);
    let rule = format!("127.0.0.1:{}", silent.port);
    let server = serve(
        host_runner_bin(),
        &[
            "-Sconfig",
            "--admin-addr=127.0.0.1:0",
            "--outbound-allow",
            &rule,
            "--outbound-connect-timeout=500ms",
            "--outbound-max-concurrent=1",
        ],
        &[],
    );
    let started = Instant::now();
    let r = get(&server.url(&format!(
        "/fetch?url={}&first-byte-ms=300",
        silent.url("/slow")
    )));
    assert_eq!(
        (r.status, text(&r)),
        (502, "error: ErrorCode::ConnectionReadTimeout\n".into())
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // HTTPS to a server that never speaks TLS: the handshake is part of
    // the connect, which the host caps at 500 ms.
    let https = format!("https://127.0.0.1:{}/tls", silent.port);
    let r = get(&server.url(&format!("/fetch?url={https}")));
    assert_eq!(
        (r.status, text(&r)),
        (502, "error: ErrorCode::ConnectionTimeout\n".into())
    );

    // One request holds the only permit while the upstream stays silent.
    let holder = {
        let url = server.url(&format!(
            "/fetch?url={}&first-byte-ms=3000",
            silent.url("/hold")
        ));
        thread::spawn(move || get(&url))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while silent.connections() < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let r = get(&server.url(&format!("/fetch?url={}", silent.url("/second"))));
    assert_eq!(
        (r.status, text(&r)),
        (502, "error: ErrorCode::ConnectionLimitReached\n".into())
    );
    let held = holder.join().unwrap();
    assert_eq!(text(&held), "error: ErrorCode::ConnectionReadTimeout\n");
    assert_eq!(
        metric(
            &server,
            "host_runner_outbound_requests_total{outcome=\"limited\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &server,
            "host_runner_outbound_requests_total{outcome=\"timeout\"}"
        ),
        3
    );
}

/// An HTTPS upstream (host-runner serving the vector service with a
/// certificate from a test CA): refused as untrusted by default, served
/// with `--outbound-ca`; a CA file that is not one stops startup naming it.
#[test]
fn outbound_https_trusts_the_given_ca() {
    let dir = temp_dir("outbound-ca");
    let (ca, cert, key) =
        certs::issued(&dir, "upstream", certs::Usage::Server).unwrap_or_else(|e| panic!("{e}"));
    let upstream = Server::host_runner(
        &artifact("vector-service.wasm"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let health = format!("https://{}/health", upstream.authority());
    let rule = format!("https://{}", upstream.authority());
    let untrusting = serve(
        host_runner_bin(),
        &["-Sconfig", "--outbound-allow", &rule],
        &[],
    );
    let r = get(&untrusting.url(&format!("/fetch?url={health}")));
    assert_eq!(
        (r.status, text(&r)),
        (502, "error: ErrorCode::TlsCertificateError\n".into())
    );
    let trusting = serve(
        host_runner_bin(),
        &[
            "-Sconfig",
            "--outbound-allow",
            &rule,
            "--outbound-ca",
            ca.to_str().unwrap(),
        ],
        &[],
    );
    let r = get(&trusting.url(&format!("/fetch?url={health}&n=2")));
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(text(&r).starts_with("200 {"), "{}", text(&r));

    let mut cmd = Command::new(host_runner_bin());
    cmd.args(["serve", "--addr=127.0.0.1:0", "-Sconfig", "--outbound-ca"])
        .arg(&key)
        .arg(fixture());
    let out = run_for(cmd, Duration::from_secs(60));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "Error: --outbound-ca {}: holds no PEM certificate",
            key.display()
        )
    );
}

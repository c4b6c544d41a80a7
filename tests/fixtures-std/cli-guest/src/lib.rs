//! A `wasi:http/incoming-handler` written against Rust std, the way most
//! guests are written: it reads the environment, prints, touches preopened
//! directories, opens sockets and exits through std, so the component imports
//! `wasi:cli/*`, `wasi:filesystem/*` and `wasi:sockets/*` and is servable only
//! with `-S cli`. Every route answers `text/plain`.
//!
//! Routes: `/env` (sorted `K=V` lines), `/headers` (names and value sizes),
//! `/big-header?n=N` (a header of N bytes), `/args`, `/cwd`, `/stdio` (a line on
//! each stream), `/read?path=P`, `/write?path=P` (the request body), `/list?path=P`,
//! `/connect?addr=A`, `/sleep?ms=N`, `/echo` (the body back), `/double-echo`
//! (twice), `/check-write` (what the host's outgoing-body stream permits in
//! one write, also printed to stderr), `/exit?code=N`.

use std::io::{Read, Write};

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Guest;

fn query(path: &str, key: &str) -> Option<String> {
    let (_, q) = path.split_once('?')?;
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.replace("%2F", "/").replace("%3A", ":"))
    })
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let Ok(body) = request.consume() else {
        return Vec::new();
    };
    let Ok(stream) = body.stream() else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        bytes.extend_from_slice(&chunk);
    }
    drop(stream);
    drop(body);
    bytes
}

/// Sends `status` and `body`, writing in pieces the stream permits.
fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::from_list(&[(
        "content-type".to_string(),
        b"text/plain; charset=utf-8".to_vec(),
    )])
    .expect("a valid header");
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let outgoing = response.body().expect("the body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().expect("the stream is taken once");
    for piece in body.chunks(4096) {
        if stream.blocking_write_and_flush(piece).is_err() {
            return; // the client went away
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}

fn handle(request: &IncomingRequest) -> (u16, Vec<u8>) {
    let path = request.path_with_query().unwrap_or_default();
    let route = path.split('?').next().unwrap_or("").to_string();
    let ok = |s: String| (200, s.into_bytes());
    match route.as_str() {
        "/env" => {
            let mut vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            vars.sort();
            ok(vars.join("\n") + "\n")
        }
        "/headers" => {
            // Names and value lengths of the request headers, sorted.
            let mut lines: Vec<String> = request
                .headers()
                .entries()
                .into_iter()
                .map(|(name, value)| format!("{name}: {} bytes", value.len()))
                .collect();
            lines.sort();
            ok(lines.join("\n") + "\n")
        }
        "/big-header" => {
            // A response header of `n` bytes, which the host's field size
            // limit may refuse.
            let n: usize = query(&path, "n").and_then(|v| v.parse().ok()).unwrap_or(0);
            let fields = Fields::new();
            match fields.append("x-big", &vec![b'x'; n]) {
                Ok(()) => ok(format!("appended {n} bytes\n")),
                Err(e) => (431, format!("{e:?}\n").into_bytes()),
            }
        }
        "/args" => ok(format!("{:?}\n", std::env::args().collect::<Vec<_>>())),
        "/cwd" => ok(format!(
            "{:?}\n",
            std::env::current_dir().map_err(|e| e.kind())
        )),
        "/stdio" => {
            println!("to stdout from the guest");
            eprintln!("to stderr from the guest");
            let _ = std::io::stdout().flush();
            ok("printed\n".into())
        }
        "/read" => match std::fs::read_to_string(query(&path, "path").unwrap_or_default()) {
            Ok(text) => ok(text),
            Err(e) => (404, format!("{:?}\n", e.kind()).into_bytes()),
        },
        "/write" => {
            let body = read_body(request);
            match std::fs::write(query(&path, "path").unwrap_or_default(), &body) {
                Ok(()) => ok(format!("wrote {} bytes\n", body.len())),
                Err(e) => (403, format!("{:?}\n", e.kind()).into_bytes()),
            }
        }
        "/list" => match std::fs::read_dir(query(&path, "path").unwrap_or_default()) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                ok(names.join("\n") + "\n")
            }
            Err(e) => (404, format!("{:?}\n", e.kind()).into_bytes()),
        },
        "/connect" => {
            match std::net::TcpStream::connect(query(&path, "addr").unwrap_or_default()) {
                Ok(mut conn) => {
                    let mut greeting = String::new();
                    let _ = conn.read_to_string(&mut greeting);
                    ok(format!("connected: {greeting}\n"))
                }
                Err(e) => (502, format!("{:?}\n", e.kind()).into_bytes()),
            }
        }
        "/sleep" => {
            let ms: u64 = query(&path, "ms").and_then(|v| v.parse().ok()).unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            ok(format!("slept {ms} ms\n"))
        }
        "/echo" => (200, read_body(request)),
        "/double-echo" => {
            let body = read_body(request);
            (200, [body.as_slice(), body.as_slice()].concat())
        }
        "/exit" => {
            let code: i32 = query(&path, "code")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            std::process::exit(code);
        }
        _ => (404, b"no such route\n".to_vec()),
    }
}

impl wasi::exports::http::incoming_handler::Guest for Guest {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        if path == "/check-write" {
            // What one write may carry: the host's outgoing-body chunk size
            // (`-S http-outgoing-body-chunk-size`), before anything is written.
            let headers = Fields::new();
            let response = OutgoingResponse::new(headers);
            let outgoing = response.body().expect("the body is taken once");
            ResponseOutparam::set(out, Ok(response));
            let stream = outgoing.write().expect("the stream is taken once");
            let permit = stream.check_write().unwrap_or(0);
            eprintln!("check-write permits {permit} bytes");
            let text = format!("{permit}\n");
            let _ = stream.blocking_write_and_flush(text.as_bytes());
            drop(stream);
            let _ = OutgoingBody::finish(outgoing, None);
            return;
        }
        let (status, body) = handle(&request);
        respond(out, status, &body);
    }
}

wasi::http::proxy::export!(Guest);

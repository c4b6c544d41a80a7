//! A small HTTP/1.1 server on 127.0.0.1 for suites that need something on
//! the other end of host-runner: an upstream for guests' outbound requests,
//! or a receiver for OTLP exports. It counts the connections it accepts and
//! records every request (path, headers, body), keeping connections alive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `200` with the body `hello PATH`.
    Hello,
    /// `200` with an empty `application/x-protobuf` body (an OTLP
    /// receiver's success).
    Empty,
    /// Accepts connections and never reads or answers.
    Silent,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The request target (`/v1/traces`).
    pub path: String,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (read by `content-length`).
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The running server; its threads end with the test process.
pub struct Upstream {
    /// Its port on 127.0.0.1.
    pub port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Upstream {
    /// Listens on a free loopback port.
    pub fn start(mode: Mode) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (Arc::clone(&connections), Arc::clone(&requests));
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let log = Arc::clone(&log);
                thread::spawn(move || serve(stream, mode, &log));
            }
        });
        Upstream {
            port,
            connections,
            requests,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for `done` to hold over the requests received.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Recorded]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.requests()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(25));
        }
    }
}

fn serve(stream: TcpStream, mode: Mode, log: &Mutex<Vec<Recorded>>) {
    if mode == Mode::Silent {
        // Hold the connection open without reading or answering.
        thread::sleep(Duration::from_secs(30));
        return;
    }
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line.split(' ').nth(1).unwrap_or("?").to_string();
        let answer = match mode {
            Mode::Hello => {
                let body = format!("hello {path}");
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            _ => "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
                .to_string(),
        };
        log.lock().unwrap().push(Recorded {
            path,
            headers,
            body,
        });
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

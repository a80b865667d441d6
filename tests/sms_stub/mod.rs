//! The SMS gateway stand-in for the integration tests: a real HTTP/1.1 server on loopback
//! (no mock inside navbat) that answers 500 to the first request carrying a given
//! `Idempotency-Key` and 200 to every later one, and keeps what it received. Shared by
//! `tests/sms.rs` and `tests/surge_callbacks.rs`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

/// One request the stub gateway received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `Idempotency-Key` header.
    pub key: String,
    /// The request body.
    pub body: String,
    /// What the stub answered.
    pub status: u16,
}

/// A tiny HTTP/1.1 server: 500 for the first request with a given `Idempotency-Key`, 200
/// for every later one.
pub struct StubGateway {
    /// Where it listens on 127.0.0.1.
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl StubGateway {
    /// Starts it on a free loopback port, on its own thread.
    pub fn start() -> StubGateway {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stub gateway");
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers: HashMap<String, String> = HashMap::new();
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let key = headers.get("idempotency-key").cloned().unwrap_or_default();
                let mut log = log.lock().unwrap();
                let status = if log.iter().any(|r| r.key == key) {
                    200
                } else {
                    500
                };
                log.push(Received {
                    key,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    status,
                });
                drop(log);
                let reason = if status == 200 {
                    "OK"
                } else {
                    "Internal Server Error"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        StubGateway { port, received }
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

//! An `https://` SMS gateway (issue 7, D12): the real navbat binary sends a missed-call SMS
//! over TLS to a real HTTPS server in the test on loopback. The server's certificate is
//! issued by a test CA made with the `openssl` command; navbat trusts it through
//! `sms.gateway.ca_file` (on top of the Mozilla roots).
//!
//! No timing assertions: every wait is a poll on an event with a generous bound.

mod common;

use common::{Navbat, TestConfig, DTM_DID};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A test CA and a certificate for 127.0.0.1 signed by it: (ca.pem, leaf.pem, leaf.key).
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&ec);
    ca.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=navbat test CA",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend_from_slice(&ec);
    csr.extend_from_slice(&[
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// An HTTPS server answering 200 to every request; returns its port and what it received.
fn https_stub(dir: &Path) -> (u16, Arc<Mutex<Vec<String>>>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("leaf.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("leaf.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = received.clone();
    thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut reader = BufReader::new(&mut tls);
            let mut line = String::new();
            let mut len = 0usize;
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.trim().eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, received)
}

#[test]
fn a_missed_call_sms_goes_to_an_https_gateway() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let (port, received) = https_stub(certs.path());
    let config = TestConfig::default()
        .operators(vec![])
        .tenant_extra(&format!(
            r#"
[sms]
enabled = true
first_backoff_secs = 1
max_backoff_secs = 5
max_attempts = 5

[sms.gateway]
url = "https://127.0.0.1:{port}/sms"
ca_file = {ca:?}
body = '{{"id":"{{id}}","to":"{{to}}","text":"{{text}}"}}'
timeout_secs = 5

[sms.templates]
missed_call = {{ uz = "Uzr, javob bera olmadik", ru = "Извините, мы не смогли ответить" }}
"#,
            ca = certs.path().join("ca.pem").display().to_string(),
        ));
    let navbat = Navbat::start("surge_sms_tls", config);
    let mut caller = navbat.caller("caller", "caller_abandon.xml", DTM_DID, 1_000);
    caller.wait();
    let sent = navbat.wait_for_event("sms_status", Duration::from_secs(60), |e| {
        e["status"] == "sent" || e["status"] == "failed"
    });
    assert_eq!(sent["status"], "sent", "{sent}");
    assert_eq!(sent["attempts"], 1, "{sent}");
    let seen = received.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let body: serde_json::Value = serde_json::from_str(&seen[0]).unwrap();
    assert_eq!(body["to"], "+998900000001");
}

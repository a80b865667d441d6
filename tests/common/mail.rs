//! Real mail servers for the e-mail channel's tests, on free loopback ports in temporary
//! directories, stopped (their whole process group) when dropped.
//!
//! * [`Dovecot`]: Debian's `dovecot` (package `dovecot-imapd`) with a config of its own in
//!   the test directory: IMAP on 127.0.0.1 only, TLS only when started with a [`TestCa`]
//!   (STARTTLS on the IMAP port plus an IMAPS port), one user from a passwd-file,
//!   Maildir storage in the directory, sockets (`base_dir`), state and log there too. It
//!   never reads `/etc/dovecot`, so a system Dovecot (running or not) does not matter.
//!   As root the master runs as root, as Dovecot is designed to, and every process that
//!   can drop privileges does: `default_internal_user` and `default_login_user` are
//!   `nobody`, and the mail user's uid/gid are `nobody`'s (Dovecot refuses uid 0 for mail
//!   access). As another user everything runs as that user (a "rootless" Dovecot: no
//!   chroot for `imap-login` and `anvil`).
//! * [`SmtpSink`]: an aiosmtpd server (package `python3-aiosmtpd`) run by a small script
//!   the harness writes into the test directory (aiosmtpd's `SMTP` protocol with our
//!   handler, rather than `python3 -m aiosmtpd -c ...`, which would need the handler as an
//!   importable module): every message received is written as `NNNNNN.eml` with its
//!   envelope beside it in `NNNNNN.json`; recipients listed as refused get `550 5.1.1`.
//!   With a [`TestCa`] it speaks STARTTLS (required) or TLS from the first byte. It
//!   prints `ready` once listening, which is what the harness waits for.
//!
//! Waits are polls with generous deadlines; nothing here measures time.

use super::{free_port, tail, wait_until, TestDir};
use navbat::mail::{ImapSettings, Secret, SmtpSettings, TlsMode};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections (a busy machine).
pub const SERVER_DEADLINE: Duration = Duration::from_secs(30);
/// The IMAP login the tests use.
pub const IMAP_USER: &str = "support";
/// Its password.
pub const IMAP_PASSWORD: &str = "support-test-password";

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `(uid, gid, user name, group name)` of `id` for `who` (`None`: this process).
fn ids_of(who: Option<&str>) -> (u32, u32, String, String) {
    let id = |flag: &str| {
        let mut c = Command::new("id");
        c.arg(flag);
        if let Some(who) = who {
            c.arg(who);
        }
        let out = c.output().expect("run id");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    (
        id("-u").parse().expect("numeric uid"),
        id("-g").parse().expect("numeric gid"),
        id("-un"),
        id("-gn"),
    )
}

/// A child in its own process group, killed with its whole group on drop.
struct Group {
    child: Child,
    name: &'static str,
}

impl Group {
    fn spawn(mut command: Command, name: &'static str) -> Group {
        command.process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Group { child, name }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM to the group, up to 10 s to exit, then SIGKILL.
    fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.exited().is_some() {
                // Stragglers of the group (Dovecot's children) go too.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &group])
                    .stderr(Stdio::null())
                    .status();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A unique file name for a Maildir delivery.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}.P{}Q{n}.navbat-test", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Dovecot

/// A Dovecot IMAP server owned by one test.
pub struct Dovecot {
    group: Option<Group>,
    /// The IMAP port on 127.0.0.1 (STARTTLS offered when started with a certificate).
    pub port: u16,
    /// The IMAPS (implicit TLS) port, when started with a certificate.
    pub imaps_port: Option<u16>,
    tls: Option<TestCa>,
    maildir: PathBuf,
    conf: PathBuf,
    log: PathBuf,
    mail_owner: Option<(u32, u32)>,
    /// Dropped last: the files outlive the server.
    dir: TestDir,
}

impl Dovecot {
    /// Writes the config and starts Dovecot without TLS; returns once it greets. Panics
    /// with its log when it does not start.
    pub fn start() -> Dovecot {
        Dovecot::start_with(None)
    }

    /// Dovecot with TLS: STARTTLS on [`Dovecot::port`] and implicit TLS on
    /// [`Dovecot::imaps_port`], with a certificate for 127.0.0.1 and `localhost` from `ca`.
    pub fn start_tls(ca: &TestCa) -> Dovecot {
        Dovecot::start_with(Some(ca.clone()))
    }

    fn start_with(tls: Option<TestCa>) -> Dovecot {
        assert!(
            Path::new("/usr/sbin/dovecot").exists() || which("dovecot"),
            "dovecot not found; fix: install Debian package `dovecot-imapd` (tests/run-all.sh \
             does)"
        );
        let version = Command::new(dovecot_bin())
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        assert!(
            version.starts_with("2.3") || version.starts_with("2.2"),
            "dovecot {version:?}: this harness writes a Dovecot 2.3 config (Debian 12); 2.4 \
             renamed most settings (extend Dovecot::write_config for it)"
        );
        let dir = TestDir::new("dovecot");
        let root = running_as_root();
        // nobody must reach the maildir and the users file through the directory.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let (mail_uid, mail_gid, internal_user, internal_group) = if root {
            ids_of(Some("nobody"))
        } else {
            ids_of(None)
        };
        let maildir = dir.path().join("mail").join(IMAP_USER);
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        let mail_owner = root.then_some((mail_uid, mail_gid));
        if let Some((uid, gid)) = mail_owner {
            for path in [
                dir.path().join("mail"),
                maildir.clone(),
                maildir.join("cur"),
                maildir.join("new"),
                maildir.join("tmp"),
            ] {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            }
        }
        let users = dir.path().join("users");
        fs::write(
            &users,
            format!(
                "{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}:{mail_uid}:{mail_gid}::{home}::\n",
                home = dir.path().join("mail").join(IMAP_USER).display()
            ),
        )
        .unwrap();
        fs::set_permissions(&users, fs::Permissions::from_mode(0o644)).unwrap();

        let mut dovecot = Dovecot {
            group: None,
            port: 0,
            imaps_port: None,
            tls,
            maildir,
            conf: dir.path().join("dovecot.conf"),
            log: dir.path().join("dovecot.log"),
            mail_owner,
            dir,
        };
        // A port found free may be taken before Dovecot binds it: then it says so in its
        // log and exits, and it is started again on another port.
        for attempt in 1..=3 {
            dovecot.port = free_port();
            dovecot.imaps_port = dovecot.tls.is_some().then(free_port);
            dovecot.write_config(&internal_user, &internal_group);
            if dovecot.launch() {
                return dovecot;
            }
            eprintln!(
                "dovecot could not bind port {} (attempt {attempt})",
                dovecot.port
            );
        }
        panic!(
            "dovecot could not bind a port in 3 attempts; its log:\n{}",
            tail(&dovecot.log, 40)
        );
    }

    fn write_config(&self, internal_user: &str, internal_group: &str) {
        let d = self.dir.path().display();
        let port = self.port;
        let (ssl, imaps_port) = match (&self.tls, self.imaps_port) {
            (Some(ca), Some(imaps)) => (
                format!(
                    "ssl = yes\nssl_cert = <{}\nssl_key = <{}",
                    ca.cert.display(),
                    ca.key.display()
                ),
                imaps,
            ),
            _ => ("ssl = no".to_string(), 0),
        };
        // Dovecot 2.3 syntax (Debian 12). Nothing from /etc/dovecot is included.
        let conf = format!(
            r#"# Written by tests/common/mail.rs for one test.
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = navbat-test-{port}
log_path = {d}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {internal_user}
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
"#
        );
        fs::write(&self.conf, conf).unwrap();
    }

    /// Starts the server on `self.port`; false when the port was taken.
    fn launch(&mut self) -> bool {
        let out = fs::File::create(self.dir.path().join("dovecot.out")).unwrap();
        let mut command = Command::new(dovecot_bin());
        command
            .arg("-F")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let mut group = Group::spawn(command, "dovecot");
        let until = Instant::now() + SERVER_DEADLINE;
        loop {
            if imap_greets(self.port) {
                self.group = Some(group);
                return true;
            }
            if let Some(status) = group.exited() {
                let log = fs::read_to_string(&self.log).unwrap_or_default()
                    + &fs::read_to_string(self.dir.path().join("dovecot.out")).unwrap_or_default();
                if log.contains("Address already in use") {
                    return false;
                }
                panic!("dovecot exited ({status}) before greeting; its log:\n{log}");
            }
            if Instant::now() >= until {
                panic!(
                    "dovecot did not greet on 127.0.0.1:{} within {SERVER_DEADLINE:?}; its log:\n{}",
                    self.port,
                    tail(&self.log, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (as an outage would); the mail stays.
    pub fn stop(&mut self) {
        if let Some(mut group) = self.group.take() {
            group.stop();
        }
    }

    /// Starts the stopped server again on the same port and mail.
    pub fn restart(&mut self) {
        assert!(self.group.is_none(), "restart() of a running dovecot");
        assert!(
            self.launch(),
            "port {} was taken while dovecot was down",
            self.port
        );
    }

    /// Settings for navbat's IMAP reader: plain text on loopback, a short poll.
    pub fn imap_settings(&self) -> ImapSettings {
        let mut imap = ImapSettings::new("127.0.0.1", IMAP_USER, Secret::new(IMAP_PASSWORD));
        imap.port = self.port;
        imap.tls = TlsMode::None;
        imap.poll_interval = Duration::from_millis(200);
        imap
    }

    /// Delivers a message the way an MTA does: written into the Maildir's `tmp/`, then
    /// renamed into `new/`. Dovecot sees it on the reader's next command.
    pub fn deliver_to_mailbox(&self, raw: &[u8]) {
        let name = unique_name();
        let tmp = self.maildir.join("tmp").join(&name);
        fs::write(&tmp, raw).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = self.mail_owner {
            std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).unwrap();
        }
        fs::rename(&tmp, self.maildir.join("new").join(&name)).unwrap();
    }

    /// Whether the message holding `needle` (say its Message-ID) is flagged `\Seen`, read
    /// from the Maildir file names (`...:2,S`), not through IMAP: an oracle independent of
    /// the code under test. `None` when no such message is there.
    pub fn seen(&self, needle: &str) -> Option<bool> {
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(bytes) = fs::read(entry.path()) else {
                    continue;
                };
                if !contains(&bytes, needle.as_bytes()) {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let flags = name.rsplit_once(":2,").map(|(_, f)| f).unwrap_or("");
                return Some(flags.contains('S'));
            }
        }
        None
    }

    /// `(seen, all)`: how many messages of the Maildir are flagged `\Seen`, and how many
    /// there are, from the file names alone (one directory listing, no file read), so a
    /// benchmark can poll it with thousands of messages where [`Dovecot::seen`] would read
    /// every file per message.
    pub fn seen_count(&self) -> (usize, usize) {
        let (mut seen, mut all) = (0, 0);
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                all += 1;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let flags = name.rsplit_once(":2,").map(|(_, f)| f).unwrap_or("");
                if flags.contains('S') {
                    seen += 1;
                }
            }
        }
        (seen, all)
    }

    /// Dovecot's log, for failure messages.
    pub fn log(&self) -> String {
        tail(&self.log, 60)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("dovecot's log:\n{}", tail(&self.log, 40));
        }
        self.stop();
    }
}

fn dovecot_bin() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/dovecot");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("dovecot")
    }
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// True once Dovecot's greeting says it is ready (its first line may be "Waiting for
/// authentication process to respond").
fn imap_greets(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if contains(&got, b"ready.") {
            let _ = s.write_all(b"z LOGOUT\r\n");
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// A test CA

/// A private CA and a server certificate it signed for `127.0.0.1` and `localhost`, made
/// with the `openssl` command (EC P-256, valid two days), as a private mail server has.
#[derive(Clone, Debug)]
pub struct TestCa {
    /// The CA certificate (PEM): what `ca_file` points at.
    pub ca_pem: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

impl TestCa {
    /// Makes the CA and the server certificate in `dir`.
    pub fn make(dir: &Path) -> TestCa {
        // Each command is one line of blank-separated arguments (none contains a blank).
        let run = |line: &str| {
            let args: Vec<&str> = line.split_whitespace().collect();
            let out = Command::new("openssl")
                .args(&args)
                .current_dir(dir)
                .output()
                .expect("run openssl; fix: install Debian package `openssl`");
            assert!(
                out.status.success(),
                "openssl {line}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        run(&format!(
            "req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=navbat-mail-test-CA"
        ));
        run(&format!(
            "req {ec} -keyout server.key -out server.csr -subj /CN=localhost"
        ));
        fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
             -out server.pem -days 2 -extfile ext.cnf",
        );
        // Dovecot's config process and aiosmtpd read the key; as root the former may run
        // as root, as another user as that user: readable by the owner is enough.
        TestCa {
            ca_pem: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SMTP sink

/// The aiosmtpd server script: writes every message and its envelope into the directory.
const SMTP_SINK_PY: &str = r#"# Written by tests/common/mail.rs: an SMTP server that keeps what it receives.
import asyncio, json, os, sys
from aiosmtpd.smtp import SMTP

out_dir, port, refused_file, tls_mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
context = None
if tls_mode != "none":
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[5], sys.argv[6])
with open(refused_file, encoding="utf-8") as f:
    refused = {line.strip().lower() for line in f if line.strip()}

class Sink:
    def __init__(self):
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in refused:
            return "550 5.1.1 <%s>: Recipient address rejected: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%06d" % self.count
        with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_to": envelope.rcpt_tos}, f)
        tmp = os.path.join(out_dir, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(out_dir, name + ".eml"))
        return "250 2.0.0 OK queued as " + name

async def main():
    loop = asyncio.get_running_loop()
    sink = Sink()
    if tls_mode == "starttls":
        # STARTTLS offered and required before MAIL.
        factory = lambda: SMTP(sink, hostname="sink.navbat.test", enable_SMTPUTF8=True,
                               decode_data=False, tls_context=context, require_starttls=True)
        server = await loop.create_server(factory, "127.0.0.1", port)
    else:
        factory = lambda: SMTP(sink, hostname="sink.navbat.test", enable_SMTPUTF8=True,
                               decode_data=False)
        # tls: TLS from the first byte (SMTPS); none: plain.
        server = await loop.create_server(factory, "127.0.0.1", port, ssl=context)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"#;

/// One message the SMTP sink received.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// `MAIL FROM`.
    pub mail_from: String,
    /// `RCPT TO`, accepted ones.
    pub rcpt_to: Vec<String>,
    /// The message as transmitted (after dot-unstuffing).
    pub raw: Vec<u8>,
}

/// An aiosmtpd server owned by one test.
pub struct SmtpSink {
    group: Option<Group>,
    /// The SMTP port on 127.0.0.1.
    pub port: u16,
    inbox: PathBuf,
    dir: TestDir,
}

impl SmtpSink {
    /// A sink accepting every recipient.
    pub fn start() -> SmtpSink {
        SmtpSink::start_refusing(&[])
    }

    /// A sink answering `550 5.1.1` to `RCPT TO` for each of `refused`.
    pub fn start_refusing(refused: &[&str]) -> SmtpSink {
        SmtpSink::launch(refused, TlsMode::None, None, None)
    }

    /// A sink on a port chosen before (a relay that comes up after its client started).
    pub fn start_on(port: u16) -> SmtpSink {
        SmtpSink::launch(&[], TlsMode::None, None, Some(port))
    }

    /// A sink with TLS (`StartTls`: STARTTLS required; `Tls`: TLS from the first byte)
    /// and a certificate from `ca`.
    pub fn start_tls(mode: TlsMode, ca: &TestCa) -> SmtpSink {
        SmtpSink::launch(&[], mode, Some(ca), None)
    }

    fn launch(refused: &[&str], mode: TlsMode, ca: Option<&TestCa>, port: Option<u16>) -> SmtpSink {
        let python = python_with_aiosmtpd();
        let dir = TestDir::new("smtp");
        let inbox = dir.path().join("received");
        fs::create_dir_all(&inbox).unwrap();
        let script = dir.path().join("smtp_sink.py");
        fs::write(&script, SMTP_SINK_PY).unwrap();
        let refused_file = dir.path().join("refused.txt");
        fs::write(&refused_file, refused.join("\n")).unwrap();
        let mut sink = SmtpSink {
            group: None,
            port: 0,
            inbox,
            dir,
        };
        for attempt in 1..=3 {
            sink.port = port.unwrap_or_else(free_port);
            let stdout = sink.dir.path().join("smtp.out");
            let stderr = sink.dir.path().join("smtp.err");
            let mut command = Command::new(&python);
            command
                .arg(&script)
                .arg(&sink.inbox)
                .arg(sink.port.to_string())
                .arg(&refused_file)
                .arg(mode.as_str());
            if let Some(ca) = ca {
                command.arg(&ca.cert).arg(&ca.key);
            }
            command
                .stdin(Stdio::null())
                .stdout(fs::File::create(&stdout).unwrap())
                .stderr(fs::File::create(&stderr).unwrap());
            let mut group = Group::spawn(command, "aiosmtpd");
            let until = Instant::now() + SERVER_DEADLINE;
            let started = loop {
                if fs::read_to_string(&stdout)
                    .unwrap_or_default()
                    .contains("ready")
                {
                    break true;
                }
                if let Some(status) = group.exited() {
                    let err = fs::read_to_string(&stderr).unwrap_or_default();
                    if err.contains("Address already in use") {
                        break false;
                    }
                    panic!("the SMTP sink exited ({status}) before it was ready:\n{err}");
                }
                assert!(
                    Instant::now() < until,
                    "the SMTP sink was not ready within {SERVER_DEADLINE:?}:\n{}",
                    tail(&stderr, 40)
                );
                std::thread::sleep(Duration::from_millis(50));
            };
            if started {
                sink.group = Some(group);
                return sink;
            }
            eprintln!(
                "the SMTP sink could not bind port {} (attempt {attempt})",
                sink.port
            );
        }
        panic!("the SMTP sink could not bind a port in 3 attempts");
    }

    /// Settings for navbat's sender: plain SMTP on loopback, no login.
    pub fn smtp_settings(&self, from_addr: &str, from_name: &str) -> SmtpSettings {
        let mut smtp = SmtpSettings::new("127.0.0.1", from_addr, from_name);
        smtp.port = self.port;
        smtp.tls = TlsMode::None;
        smtp
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mut names: Vec<PathBuf> = fs::read_dir(&self.inbox)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let envelope: serde_json::Value =
                    serde_json::from_slice(&fs::read(eml.with_extension("json")).unwrap()).unwrap();
                ReceivedMail {
                    mail_from: envelope["mail_from"].as_str().unwrap_or("").to_string(),
                    rcpt_to: envelope["rcpt_to"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    raw: fs::read(&eml).unwrap(),
                }
            })
            .collect()
    }

    /// Waits until at least `count` messages arrived; panics after `deadline`.
    pub fn wait_for(&self, count: usize, deadline: Duration) -> Vec<ReceivedMail> {
        wait_until(
            &format!("{count} message(s) at the SMTP sink"),
            deadline,
            || {
                let got = self.received();
                (got.len() >= count).then_some(got)
            },
        )
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "the SMTP sink's stderr:\n{}",
                tail(&self.dir.path().join("smtp.err"), 40)
            );
        }
        if let Some(mut group) = self.group.take() {
            group.stop();
        }
    }
}

/// A python3 that can import aiosmtpd: `NAVBAT_PYTHON`, else Debian's `/usr/bin/python3`
/// (a pyenv or venv `python3` first on PATH does not see Debian's packages), else `python3`.
fn python_with_aiosmtpd() -> PathBuf {
    let candidates: Vec<PathBuf> = match std::env::var_os("NAVBAT_PYTHON") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![PathBuf::from("/usr/bin/python3"), PathBuf::from("python3")],
    };
    for python in &candidates {
        let ok = Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python.clone();
        }
    }
    panic!(
        "no python3 with aiosmtpd among {candidates:?}; fix: install Debian package \
         `python3-aiosmtpd` (tests/run-all.sh does) or set NAVBAT_PYTHON"
    );
}

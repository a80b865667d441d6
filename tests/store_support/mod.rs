//! Real Postgres and Redis servers for the store and presence tests, started from the
//! installed binaries on free loopback ports in temporary directories.
//!
//! `initdb` and `postgres` refuse to run as root. When the tests run as root (a fresh CI
//! container) the server runs as the unprivileged user `nobody` through `runuser`, on a data
//! directory handed to that user; as any other user it runs as that user. Set
//! `NAVBAT_PG_BIN` to a directory holding `initdb` and `pg_ctl` to choose a version; otherwise
//! the newest `/usr/lib/postgresql/*/bin` is used, then `PATH`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (bound, read and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NAVBAT_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match found {
        Some(path) if !path.is_empty() => Path::new(&path).parent().unwrap().to_path_buf(),
        _ => panic!(
            "initdb not found under /usr/lib/postgresql/*/bin nor on PATH; fix: install the \
             `postgresql` package (tests/run-all.sh does) or set NAVBAT_PG_BIN"
        ),
    }
}

/// A Postgres server owned by one test; stopped (immediately) when dropped.
pub struct Postgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    root: bool,
    fsync: bool,
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        command_as(self.root, &self.bin.join(program))
    }

    /// initdb + start with `fsync=off` (tests: the data need not survive a power cut),
    /// waiting until it accepts connections.
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// initdb + start; `fsync` as a production server has it (benchmarks).
    pub fn start_with(fsync: bool) -> Postgres {
        let root = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("navbat-pg-")
            .tempdir()
            .expect("temp dir");
        let home = dir.path().join("pg");
        std::fs::create_dir(&home).unwrap();
        if root {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let (uid, gid) = nobody();
            std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
        }
        let pg = Postgres {
            data: home.join("data"),
            log: home.join("server.log"),
            bin: pg_bin_dir(),
            port: free_port(),
            _dir: dir,
            root,
            fsync,
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args(["-U", "navbat", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        pg.resume();
        pg
    }

    /// `postgres://navbat@127.0.0.1:port/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://navbat@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn resume(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync={} -c max_connections=50",
            self.port,
            if self.fsync { "on" } else { "off" }
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &opts, "-l"])
            .arg(&self.log)
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Stops the server (fast shutdown: sessions are cut, as in an outage).
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn nobody() -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "nobody"])
            .output()
            .expect("id nobody");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .expect("nobody's id")
    };
    (id("-u"), id("-g"))
}

fn command_as(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A Redis server owned by one test; killed when dropped.
pub struct Redis {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

impl Redis {
    /// Starts `redis-server` without persistence and waits until it answers PING.
    pub fn start() -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("navbat-redis-")
            .tempdir()
            .expect("temp dir");
        let mut r = Redis {
            dir,
            child: None,
            port: free_port(),
        };
        r.resume();
        r
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL (its data is gone: no persistence).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server; fix: install the redis-server package");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if ping(self.port) {
                return;
            }
            assert!(Instant::now() < until, "redis-server did not answer PING");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `probe` until it returns `Some`, panicking with `what` after `deadline`. For waiting
/// on a state, never for measuring time.
pub fn wait_for<T>(what: &str, deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + deadline;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The config sections of one of several nodes sharing `redis` and the Postgres at `pg`
/// (fast heartbeats, so tests converge quickly).
/// `key_file`: the recording key file every node sharing the database must use (callers'
/// personal data is sealed with keys derived from it).
pub fn shared_sections(node: &str, redis: &str, pg: &str, key_file: &Path) -> String {
    let key_file = key_file.display();
    format!(
        r#"
[node]
id = "{node}"

[recordings]
key_file = "{key_file}"

[database]
url = "{pg}"

[presence]
backend = "redis"
redis_url = "{redis}"
heartbeat_secs = 1
expiry_secs = 5
"#
    )
}

/// Personal data keys ([`navbat::pii`]) from a recording key file in `dir`
/// (`dir/keys/recordings.key`, made if missing), as navbat derives them.
pub fn pii_keys(dir: &Path) -> std::sync::Arc<navbat::pii::Pii> {
    let path = dir.join("keys/recordings.key");
    if !path.exists() {
        navbat::recordings::seal::Keys::generate(&path, 0).expect("make a key file");
    }
    std::sync::Arc::new(navbat::pii::Pii::load(&path).expect("read the key file"))
}

impl Postgres {
    /// The server's data directory (its heap files and WAL), for tests that read raw bytes.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

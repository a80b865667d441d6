//! Intake of requests from the outside (issue 14): 10,000 customer e-mails through the support
//! tenant's real mailbox and 10,000 posts of the public web form, against the release build of
//! `navbat` on loopback, each counted in the database at the end.
//!
//! Method (one navbat, one SQLite database, the phases one after the other):
//!
//! 1. **E-mail backlog.** A real Dovecot (the test harness's, `tests/common/mail.rs`) gets
//!    `MAILS` distinct plain-text mails written into its Maildir *before navbat starts*, as a
//!    mailbox looks after an outage. Then navbat starts with the support tenant's
//!    `[tenant.requests.mail]` (IMAP on loopback, `poll_secs = 1`, the default 20 messages per
//!    fetch). Timed from the spawn of navbat (its start-up, reported apart, is inside) until
//!    the database holds `MAILS` e-mail requests **and** every message in the Maildir is
//!    flagged seen (read from the file names, not through IMAP). Sampled every 100 ms.
//! 2. **Web form.** `CLIENTS` threads share `FORMS` forms; for each, a thread GETs
//!    `/r/support` (a fresh one-time token) and POSTs it filled in (name, phone, organisation,
//!    the 9-digit STIR the support tenant requires, category, subject, text; a phone but no
//!    e-mail address, so no acknowledgement mail is sent), over its own keep-alive HTTP/1.1
//!    connection. Every POST must answer 200 with a request number, and the numbers must be
//!    distinct. Reported: the wall time of all posts (navbat answers once the request is
//!    fsynced in the journal), the POST latency p50/p90/p99/max, and the time until the
//!    database holds all `FORMS` (its writer drains the journal behind the answers).
//!
//! For each phase: CPU time (utime + stime from `/proc`) of navbat, of Dovecot and the SMTP
//! sink (this process's other children and theirs), of this process (the clients and the
//! polling), the whole machine's busy time (`/proc/stat`: anything else running too) and
//! the load average. Every loop is bounded by its count and by one hard limit (`NAVBAT_BENCH_SECS`,
//! default 600 s) after which the bench stops and says how far it got; nothing asserts a time.
//!
//! Run: `cargo bench --bench requests_intake` (`NAVBAT_BENCH_MAILS`, `NAVBAT_BENCH_FORMS`,
//! `NAVBAT_BENCH_CLIENTS` change the counts, up to 100,000 / 100,000 / 64). Needs Debian's
//! `dovecot-imapd` and `python3-aiosmtpd` (the SMTP relay the tenant's mail settings name; it
//! receives nothing here).

#[path = "../tests/common/mod.rs"]
mod common;

use common::desk::{form, with_desk};
use common::mail::{Dovecot, SmtpSink};
use common::requests::{channels, mail};
use common::{navbat_bin, Navbat, TestConfig};
use navbat::config::DatabaseUrl;
use navbat::store::db::Db;
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How often the database and the Maildir are looked at while waiting.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Longest wait for one HTTP read or write.
const HTTP_IO: Duration = Duration::from_secs(30);
/// navbat's own default log filter (`src/main.rs`), unless `RUST_LOG` says otherwise.
const PRODUCTION_LOG: &str = "info,actix_server=warn,actix_web=warn";

fn knob(name: &str, default: usize, max: usize) -> usize {
    match std::env::var(name) {
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => panic!("{name}={text:?}: give a whole number from 1 to {max}"),
        },
        Err(_) => default,
    }
}

fn main() {
    // A failed run still stops navbat, Dovecot and the sink (their drops) before exiting.
    if !run() {
        std::process::exit(1);
    }
}

/// Both phases; false when one did not finish or the database does not hold what it should.
fn run() -> bool {
    let mails = knob("NAVBAT_BENCH_MAILS", 10_000, 100_000);
    let forms = knob("NAVBAT_BENCH_FORMS", 10_000, 100_000);
    let clients = knob("NAVBAT_BENCH_CLIENTS", 8, 64);
    let limit = Duration::from_secs(knob("NAVBAT_BENCH_SECS", 600, 3_600) as u64);
    let deadline = Instant::now() + limit;
    if std::env::var_os("RUST_LOG").is_none() {
        // Before any thread starts; the harness passes RUST_LOG on to navbat.
        std::env::set_var("RUST_LOG", PRODUCTION_LOG);
    }
    let bin = navbat_bin();
    println!("navbat binary: {}", bin.display());
    if !bin.components().any(|c| c.as_os_str() == "release") {
        println!("WARNING: not an optimised build; run through `cargo bench`");
    }
    println!(
        "{mails} mails, {forms} forms from {clients} clients, hard limit {}s; load average {}",
        limit.as_secs(),
        loadavg()
    );

    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start();
    let delivering = Instant::now();
    for i in 0..mails {
        dovecot.deliver_to_mailbox(&customer_mail(i));
    }
    println!(
        "delivered {mails} mails into the Maildir in {:.2} s (before navbat starts)",
        delivering.elapsed().as_secs_f64()
    );

    let config = with_desk(TestConfig::default(), "").extra_toml(&format!(
        "{}\n[requests]\nform_per_source_per_hour = 1000000\n",
        channels(Some(&dovecot), Some(&smtp), None)
    ));
    let machine = Cpu::machine();
    let me = Cpu::of("self");
    let helpers = helpers_cpu(0);
    let spawned = Instant::now();
    let nav = Navbat::start("bench-requests-intake", config);
    let ready = spawned.elapsed();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the database client");
    let _inside = rt.enter();
    let db_path = nav.dir.path().join("data/navbat.db");
    let db = Db::connect_lazy(&DatabaseUrl::Sqlite(format!(
        "sqlite://{}",
        db_path.display()
    )))
    .expect("open navbat's SQLite database");
    let count = |channel: &str| -> usize {
        let sql = format!("SELECT COUNT(*) FROM requests WHERE channel = '{channel}'");
        rt.block_on(db.scalar(&sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}")) as usize
    };

    // ---- e-mail ------------------------------------------------------------------------
    let pid = nav.pid().to_string();
    let mut milestones = Milestones::new(mails);
    let (mut seen, mut all) = (0, 0);
    let mail_done = loop {
        let stored = count("email");
        // Listing 10,000 file names costs a few ms: only when the count passed a mark.
        if stored >= milestones.next_mark().min(mails) {
            (seen, all) = dovecot.seen_count();
        }
        let at = spawned.elapsed();
        milestones.note(stored.min(seen), at);
        if stored >= mails && seen >= mails && all == mails {
            break Some(at);
        }
        if Instant::now() >= deadline {
            (seen, all) = dovecot.seen_count();
            println!(
                "GAVE UP after {:.1} s: {stored} e-mail requests in the database, {seen} of \
                 {all} mails seen",
                at.as_secs_f64()
            );
            break None;
        }
        thread::sleep(SAMPLE_EVERY);
    };
    let nav_cpu = Cpu::of(&pid);
    let (machine_busy, me_cpu) = (machine.busy_since(), me.since());
    let helpers = helpers_cpu(nav.pid()) - helpers;
    let stored = count("email");
    println!("\n== e-mail: {mails} mails waiting in the mailbox when navbat starts ==");
    println!(
        "navbat ready after {:.2} s; reader from its start",
        ready.as_secs_f64()
    );
    if let Some(done) = mail_done {
        let secs = done.as_secs_f64();
        println!(
            "all {mails} in the database and seen after {secs:.2} s: {:.0} e-mails/s \
             (from navbat ready: {:.0}/s)",
            mails as f64 / secs,
            mails as f64 / (secs - ready.as_secs_f64())
        );
    }
    milestones.print();
    println!(
        "database: {stored} e-mail requests; CPU: navbat {:.2} s ({:.2} ms per mail), \
         Dovecot and the SMTP sink {helpers:.2} s, bench {me_cpu:.2} s, machine busy {:.2} of \
         {:.2} core-seconds; load average {}",
        nav_cpu.secs(),
        nav_cpu.secs() * 1000.0 / stored.max(1) as f64,
        machine_busy.0,
        machine_busy.1,
        loadavg()
    );
    if mail_done.is_none() {
        return false;
    }

    // ---- web form ----------------------------------------------------------------------
    let machine = Cpu::machine();
    let me = Cpu::of("self");
    let nav_before = Cpu::of(&pid);
    let helpers = helpers_cpu(nav.pid());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (next, addr) = (next.clone(), nav.http);
            thread::spawn(move || post_forms(addr, &next, forms, deadline))
        })
        .collect();
    let mut done = FormResults::default();
    for w in workers {
        done.absorb(w.join().expect("a form client panicked"));
    }
    let posted = started.elapsed();
    let web_done = loop {
        let stored = count("web");
        if stored >= done.numbers.len() {
            break Some((started.elapsed(), stored));
        }
        if Instant::now() >= deadline {
            println!("GAVE UP: {stored} web requests in the database");
            break None;
        }
        thread::sleep(SAMPLE_EVERY);
    };
    let nav_cpu = Cpu::of(&pid).minus(&nav_before);
    let (machine_busy, me_cpu) = (machine.busy_since(), me.since());
    let helpers = helpers_cpu(nav.pid()) - helpers;
    let distinct: HashSet<&String> = done.numbers.iter().collect();
    println!("\n== web form: {forms} forms, {clients} clients, keep-alive ==");
    println!(
        "{} answered with a number ({} distinct), {} failed, {} connections opened",
        done.numbers.len(),
        distinct.len(),
        done.failures,
        done.connections
    );
    let secs = posted.as_secs_f64();
    println!(
        "all posts answered after {secs:.2} s: {:.0} requests/s (GET + POST each)",
        done.numbers.len() as f64 / secs
    );
    if let Some((at, stored)) = web_done {
        println!(
            "database holds {stored} web requests after {:.2} s: {:.0} requests/s",
            at.as_secs_f64(),
            stored as f64 / at.as_secs_f64()
        );
    }
    print_latency("POST /r/support", &mut done.post);
    print_latency("GET  /r/support", &mut done.get);
    println!(
        "CPU: navbat {:.2} s ({:.2} ms per form), Dovecot and the SMTP sink {helpers:.2} s, \
         bench {me_cpu:.2} s, machine busy {:.2} of {:.2} core-seconds; load average {}",
        nav_cpu.secs(),
        nav_cpu.secs() * 1000.0 / done.numbers.len().max(1) as f64,
        machine_busy.0,
        machine_busy.1,
        loadavg()
    );
    let stored = count("web");
    println!("database: SELECT COUNT(*) FROM requests WHERE channel='web' -> {stored}");
    let complete = stored == forms && distinct.len() == forms && done.failures == 0;
    if !complete {
        println!("INCOMPLETE: expected exactly {forms} web requests");
    }
    complete
}

/// Mail `i` of the backlog: its own Message-ID and sender, a Russian or Uzbek text of a few
/// hundred bytes, like the support line's real mail.
fn customer_mail(i: usize) -> Vec<u8> {
    let (subject, body) = if i.is_multiple_of(2) {
        (
            format!("Вопрос о кодах маркировки №{i}"),
            format!(
                "Здравствуйте!\r\nМы получили коды маркировки для партии {i}, но в личном \
                 кабинете они показаны как неактивные. Что нужно сделать, чтобы их \
                 активировать? ИНН организации 30{i:07}.\r\nС уважением, бухгалтерия"
            ),
        )
    } else {
        (
            format!("Markirovka kodlari bo'yicha savol {i}"),
            format!(
                "Assalomu alaykum!\r\n{i}-partiya uchun markirovka kodlarini oldik, lekin \
                 shaxsiy kabinetda ular faol emas deb ko'rsatilmoqda. Ularni faollashtirish \
                 uchun nima qilish kerak? Tashkilot STIR: 30{i:07}.\r\nHurmat bilan, buxgalteriya"
            ),
        )
    };
    mail(
        &format!("bench-{i}@mijoz.example.uz"),
        &format!("mijoz{i}@mijoz.example.uz"),
        &subject,
        &body,
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// The form clients

#[derive(Default)]
struct FormResults {
    post: Vec<Duration>,
    get: Vec<Duration>,
    numbers: Vec<String>,
    failures: usize,
    connections: usize,
}

impl FormResults {
    fn absorb(&mut self, other: FormResults) {
        self.post.extend(other.post);
        self.get.extend(other.get);
        self.numbers.extend(other.numbers);
        self.failures += other.failures;
        self.connections += other.connections;
    }
}

/// One client: takes form numbers from `next` until `total` are taken or `deadline` passes.
fn post_forms(
    addr: SocketAddr,
    next: &AtomicUsize,
    total: usize,
    deadline: Instant,
) -> FormResults {
    let mut out = FormResults::default();
    let mut http = Http::new(addr);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total || Instant::now() >= deadline {
            break;
        }
        let lang = if i.is_multiple_of(2) { "ru" } else { "uz" };
        let t = Instant::now();
        let page = http.exchange("GET", &format!("/r/support?lang={lang}"), None);
        out.get.push(t.elapsed());
        let token = match &page {
            Ok((200, body)) => between(body, "name=\"token\" value=\"", "\""),
            _ => None,
        };
        let Some(token) = token.filter(|t| t.len() == 32) else {
            eprintln!("form {i}: no token in the page: {:?}", short(&page));
            out.failures += 1;
            continue;
        };
        let body = form(&[
            ("token", token.as_str()),
            ("lang", lang),
            ("name", &format!("Mijoz {i}")),
            ("email", ""),
            ("phone", &format!("+99890{:07}", i % 10_000_000)),
            ("organisation", &format!("\"Savdo {i}\" MChJ")),
            ("stir", &format!("{:09}", 300_000_000 + i % 100_000_000)),
            ("category", ["question", "complaint", "suggestion"][i % 3]),
            ("subject", &format!("Markirovka kodlari {i}")),
            (
                "text",
                &format!(
                    "{i}-partiya uchun markirovka kodlari shaxsiy kabinetda faol emas. \
                     Iltimos, qanday faollashtirishni tushuntiring."
                ),
            ),
        ]);
        let t = Instant::now();
        let answer = http.exchange(
            "POST",
            "/r/support",
            Some(("application/x-www-form-urlencoded", &body)),
        );
        out.post.push(t.elapsed());
        match &answer {
            Ok((200, page)) => match between(page, "id=\"request-number\">", "<") {
                Some(number) if !number.is_empty() => out.numbers.push(number),
                _ => {
                    eprintln!("form {i}: 200 without a number");
                    out.failures += 1;
                }
            },
            other => {
                eprintln!("form {i}: {:?}", short(other));
                out.failures += 1;
            }
        }
    }
    out.connections = http.opened;
    out
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_owned())
}

fn short(r: &io::Result<(u16, String)>) -> String {
    match r {
        Ok((status, body)) => format!("{status} {}", body.chars().take(200).collect::<String>()),
        Err(e) => e.to_string(),
    }
}

/// A plain HTTP/1.1 client on one keep-alive connection, reopened when the server closes it.
struct Http {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
    opened: usize,
}

impl Http {
    fn new(addr: SocketAddr) -> Http {
        Http {
            addr,
            conn: None,
            opened: 0,
        }
    }

    /// One request and its response `(status, body)`. A request on a reused connection that
    /// fails before any answer is sent once more on a fresh one (the server may have closed
    /// an idle connection); a form post is safe to repeat, its token makes it one request.
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> io::Result<(u16, String)> {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        match body {
            Some((ctype, text)) => request.push_str(&format!(
                "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            )),
            None => request.push_str("\r\n"),
        }
        let reused = self.conn.is_some();
        match self.once(request.as_bytes()) {
            Err(e) if reused && e.kind() != io::ErrorKind::TimedOut => {
                self.conn = None;
                self.once(request.as_bytes())
            }
            other => other,
        }
    }

    fn once(&mut self, request: &[u8]) -> io::Result<(u16, String)> {
        if self.conn.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, HTTP_IO)?;
            stream.set_read_timeout(Some(HTTP_IO))?;
            stream.set_write_timeout(Some(HTTP_IO))?;
            stream.set_nodelay(true)?;
            self.conn = Some(BufReader::new(stream));
            self.opened += 1;
        }
        let conn = self.conn.as_mut().expect("opened above");
        conn.get_mut().write_all(request)?;
        let answer = read_response(conn);
        match &answer {
            Ok((_, _, keep)) if *keep => {}
            _ => self.conn = None,
        }
        answer.map(|(status, body, _)| (status, body))
    }
}

/// Reads one response: `(status, body, whether the connection stays open)`.
fn read_response(conn: &mut BufReader<TcpStream>) -> io::Result<(u16, String, bool)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before answering",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let (mut length, mut chunked, mut keep) = (None, false, true);
    // A bounded head: at most 100 header lines.
    for _ in 0..100 {
        line.clear();
        conn.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            let body = if chunked {
                read_chunked(conn)?
            } else {
                let mut body = vec![0; length.unwrap_or(0)];
                conn.read_exact(&mut body)?;
                body
            };
            return Ok((status, String::from_utf8_lossy(&body).into_owned(), keep));
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    Err(bad("more than 100 header lines"))
}

fn read_chunked(conn: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    // Bounded: a form page is a few kilobytes; 10,000 chunks is far more than any answer.
    for _ in 0..10_000 {
        line.clear();
        conn.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        let mut chunk = vec![0; size + 2];
        conn.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "too many chunks",
    ))
}

// ---------------------------------------------------------------------------------------------
// Reporting

/// The time at which a quarter, half, three quarters and all of a count were reached.
struct Milestones {
    total: usize,
    reached: Vec<(usize, Duration)>,
}

impl Milestones {
    fn new(total: usize) -> Milestones {
        Milestones {
            total,
            reached: Vec::new(),
        }
    }

    /// The next mark not reached yet (past the total once all are).
    fn next_mark(&self) -> usize {
        (1..=4)
            .map(|quarter| self.total * quarter / 4)
            .find(|mark| !self.reached.iter().any(|(m, _)| m == mark))
            .unwrap_or(usize::MAX)
    }

    fn note(&mut self, done: usize, at: Duration) {
        for quarter in 1..=4 {
            let mark = self.total * quarter / 4;
            if done >= mark && !self.reached.iter().any(|(m, _)| *m == mark) {
                self.reached.push((mark, at));
            }
        }
    }

    fn print(&self) {
        let mut last = (0, Duration::ZERO);
        for &(mark, at) in &self.reached {
            let rate = (mark - last.0) as f64 / (at - last.1).as_secs_f64().max(1e-3);
            println!(
                "  {mark:>6} stored and seen at {:>7.2} s ({rate:.0}/s since the previous mark)",
                at.as_secs_f64()
            );
            last = (mark, at);
        }
    }
}

fn print_latency(what: &str, times: &mut [Duration]) {
    if times.is_empty() {
        return;
    }
    times.sort_unstable();
    let q = |f: f64| times[((times.len() as f64 * f) as usize).min(times.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: n={} p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        ms(q(0.50)),
        ms(q(0.90)),
        ms(q(0.99)),
        ms(times[times.len() - 1])
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// `(ppid, utime + stime)` from a `/proc/<pid>/stat` line.
fn parent_and_ticks(stat: &str) -> Option<(u32, u64)> {
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((num(1)? as u32, num(11)? + num(12)?))
}

/// CPU seconds of this process's live descendants outside `except`'s tree: Dovecot's
/// master and its `imap` process, and the SMTP sink.
fn helpers_cpu(except: u32) -> f64 {
    let me = std::process::id();
    let procs: std::collections::HashMap<u32, (u32, u64)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            Some((pid, parent_and_ticks(&stat)?))
        })
        .collect();
    let mut ticks = 0;
    for (&pid, &(parent, own)) in &procs {
        let (mut at, mut up) = (pid, parent);
        // Bounded walk up the tree.
        for _ in 0..64 {
            if at == except || at == me || up <= 1 {
                break;
            }
            if up == me {
                ticks += own;
                break;
            }
            at = up;
            up = procs.get(&up).map(|p| p.0).unwrap_or(0);
        }
    }
    ticks as f64 / TICKS_PER_SEC
}

/// CPU time from `/proc`, in clock ticks (USER_HZ, 100 on Linux).
struct Cpu {
    ticks: u64,
    total: u64,
}

const TICKS_PER_SEC: f64 = 100.0;

impl Cpu {
    /// utime + stime of process `pid` (or `self`).
    fn of(pid: &str) -> Cpu {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ticks = parent_and_ticks(&stat).map(|p| p.1).unwrap_or(0);
        Cpu { ticks, total: 0 }
    }

    /// The machine's busy and total ticks over every CPU (`/proc/stat`).
    fn machine() -> Cpu {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let values: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let total: u64 = values.iter().take(8).sum();
        let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
        Cpu {
            ticks: total - idle,
            total,
        }
    }

    fn secs(&self) -> f64 {
        self.ticks as f64 / TICKS_PER_SEC
    }

    fn minus(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            ticks: self.ticks.saturating_sub(earlier.ticks),
            total: self.total.saturating_sub(earlier.total),
        }
    }

    /// This process's CPU seconds since `self` was taken.
    fn since(&self) -> f64 {
        Cpu::of("self").minus(self).secs()
    }

    /// `(busy, available)` core-seconds of the machine since `self` was taken.
    fn busy_since(&self) -> (f64, f64) {
        let d = Cpu::machine().minus(self);
        (
            d.ticks as f64 / TICKS_PER_SEC,
            d.total as f64 / TICKS_PER_SEC,
        )
    }
}

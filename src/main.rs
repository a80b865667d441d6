//! The `navbat` binary: run the router, check a configuration, compute HA1.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use navbat::actors::call::HangUpNow;
use navbat::actors::Router;
use navbat::config::Config;
use navbat::sip::{SipListeners, SipSettings, SipStack};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// mimalloc instead of glibc malloc: freed memory goes back to the pages it came from, so
/// RSS follows the live heap after a burst of calls, and allocation is cheaper on the
/// packet and message paths (BENCHMARKS.md, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Switches transparent huge pages off for this process, before any thread starts.
///
/// mimalloc asks the kernel for huge pages on its arenas (`MADV_HUGEPAGE`), so on a system
/// with THP at `madvise` or `always` one live 100-byte record can keep 2 MiB resident, and
/// navbat's heap (many small records that live from milliseconds to the 32 s of a SIP
/// transaction) is spread thin: at 1,000 calls/s RSS was about 50 MB higher with them, and
/// the CPU per call no lower (BENCHMARKS.md, "The SIP core's footprint", ninth session). A
/// kernel without the flag leaves things as they were.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        let _ = nix::sys::prctl::set_thp_disable(true);
    }
}

#[derive(Parser)]
#[command(
    name = "navbat",
    version,
    about = "Contact-centre call router: SIP trunk, IVR, skill queues, operators"
)]
struct Cli {
    /// Configuration file (TOML). Without it navbat runs the embedded demo
    /// configuration (config/navbat.toml at build time), on loopback.
    #[arg(long, short, global = true, env = "NAVBAT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router (the default).
    Run,
    /// Validate the configuration; print every problem with file, field and fix.
    CheckConfig,
    /// Apply the database migrations (database.url, else DATABASE_URL, else data/navbat.db),
    /// then seal the callers' personal data an older navbat left in plain text (database rows
    /// and the undrained journal; with the router stopped), and exit. `navbat run` applies
    /// the migrations and seals the database's rows at start-up too.
    Migrate,
    /// Print the HA1 to put in an operator's `ha1` field. The password is read from standard
    /// input (one line), or asked for without echo on a terminal; never from the command line,
    /// where other users and the shell's history would see it.
    Ha1 {
        /// The extension (SIP user name).
        ext: String,
        /// The SIP realm (sip.realm).
        #[arg(long, default_value = "navbat")]
        realm: String,
    },
    /// Manage the web desk's accounts (in the configured database). Passwords are read from
    /// standard input (one line) or asked for without echo; never from the command line.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Add a new random recording key to FILE (creating it), which then encrypts new
    /// recordings; the file's older keys stay for the recordings made with them. Default
    /// FILE: the configuration's [recordings] key_file.
    Keygen {
        /// The key file.
        file: Option<PathBuf>,
    },
    /// The monthly statistics (D20) and the invoice (D24) of a tenant, from the configured
    /// database. Months are local months in the tenant's time zone.
    Report {
        #[command(subcommand)]
        action: ReportAction,
    },
    /// Quality assurance (D17): draw a week's QA sample by hand, through the running router
    /// (its http.listen, with http.admin_token), which records it through its journal.
    Qa {
        #[command(subcommand)]
        action: QaAction,
    },
}

#[derive(Subcommand)]
enum QaAction {
    /// Draw the QA sample of a week (the tenant's local ISO week): per operator
    /// [tenant.qa] sample_per_operator_week calls at random plus every complaint, unresolved
    /// and disputed call. A week already drawn keeps its draw (only new mandatory calls are
    /// added). Prints the seed, the candidates' digest and the calls added.
    Sample {
        /// The week, YYYY-Www (e.g. 2026-W49).
        #[arg(long)]
        week: String,
        /// The tenant id (default: every tenant with a scorecard).
        #[arg(long)]
        tenant: Option<String>,
        /// The seed of the draw (default: a random one, recorded).
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ReportAction {
    /// Write a month's report: an Excel workbook, an HTML page, a directory of CSV files
    /// (one per table) and/or JSON. Prints the headline figures.
    Month {
        /// The month, YYYY-MM.
        month: String,
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Write the workbook here.
        #[arg(long)]
        xlsx: Option<PathBuf>,
        /// Write the HTML page here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Write one CSV file per table into this directory.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write the whole report as JSON here (for scripts and checks).
        #[arg(long)]
        json: Option<PathBuf>,
        /// The desk's address, so that the HTML page's call links open it
        /// (e.g. https://navbat.example.uz).
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Print a month's invoice ([tenant.billing]): billable volume, tier, unit price, total.
    Billing {
        /// The month, YYYY-MM.
        month: String,
        /// The tenant id.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create an account.
    Add {
        /// Login name (a-z, 0-9, '.', '_', '-').
        username: String,
        /// operator, supervisor, editor, officer or admin.
        #[arg(long)]
        role: String,
        /// Tenant ids separated by commas, or * (admins).
        #[arg(long)]
        tenants: String,
        /// The operator's or supervisor's SIP extension.
        #[arg(long)]
        ext: Option<String>,
        /// The name pages show (default: the username).
        #[arg(long)]
        name: Option<String>,
        /// Language of the pages: uz or ru.
        #[arg(long, default_value = "uz")]
        language: String,
    },
    /// Set an account's password (its sessions stay until they expire; disable to end them).
    Passwd {
        /// Login name.
        username: String,
    },
    /// Disable an account: it cannot log in; its sessions and tokens stop working.
    Disable {
        /// Login name.
        username: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Login name.
        username: String,
    },
    /// Give an officer or supervisor account a SIP identity, so its softphone may listen to
    /// live calls of its tenants by feature code (`*51<ext>`; supervisor accounts also
    /// `*52`/`*53`). The SIP password is read like a web password; only its digest HA1s for
    /// sip.realm are stored. The extension may be no configured operator's nor another
    /// account's.
    Sip {
        /// Login name.
        username: String,
        /// The SIP user name the softphone authenticates as.
        #[arg(long, required_unless_present = "remove")]
        ext: Option<String>,
        /// Remove the account's SIP identity instead.
        #[arg(long, conflicts_with = "ext")]
        remove: bool,
    },
    /// List the accounts.
    List,
    /// Print the argon2id hash of a password, for `password_hash` in an [[account]] section.
    Hash,
}

fn load(path: &Option<PathBuf>) -> Result<Config, navbat::config::ConfigErrors> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::embedded_default()),
    }
}

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Ha1 { ext, realm } => match read_password(&format!("password for {ext}: ")) {
            Ok(password) if !password.is_empty() => {
                println!("{}", navbat::sip::digest::ha1(&ext, &realm, &password));
                std::process::ExitCode::SUCCESS
            }
            Ok(_) => {
                eprintln!(
                    "navbat ha1: the password is empty; fix: type it, or pipe it in: \
                           printf '%s\\n' \"$PASSWORD\" | navbat ha1 {ext}"
                );
                std::process::ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("navbat ha1: cannot read the password: {e}");
                std::process::ExitCode::from(1)
            }
        },
        Command::User { action } => match load(&cli.config) {
            Ok(config) => match user(&config, action) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("navbat user: {e:#}");
                    std::process::ExitCode::from(1)
                }
            },
            Err(errors) => {
                eprintln!("{errors}");
                std::process::ExitCode::from(1)
            }
        },
        Command::Report { action } => match load(&cli.config) {
            Ok(config) => match report(&config, action) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("navbat report: {e:#}");
                    std::process::ExitCode::from(1)
                }
            },
            Err(errors) => {
                eprintln!("{errors}");
                std::process::ExitCode::from(1)
            }
        },
        Command::Qa { action } => match load(&cli.config) {
            Ok(config) => match qa(&config, action) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("navbat qa: {e:#}");
                    std::process::ExitCode::from(1)
                }
            },
            Err(errors) => {
                eprintln!("{errors}");
                std::process::ExitCode::from(1)
            }
        },
        Command::Keygen { file } => {
            let file = match file {
                Some(f) => f,
                None => match load(&cli.config) {
                    Ok(config) => config.recordings.key_file.clone(),
                    Err(errors) => {
                        eprintln!("{errors}");
                        return std::process::ExitCode::from(1);
                    }
                },
            };
            match navbat::recordings::seal::Keys::generate(
                &file,
                jiff::Timestamp::now().as_millisecond(),
            ) {
                Ok(id) => {
                    println!(
                        "{}: key {id} added; it encrypts new recordings",
                        file.display()
                    );
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("navbat keygen: {e}");
                    std::process::ExitCode::from(1)
                }
            }
        }
        Command::CheckConfig => match load(&cli.config) {
            Ok(c) => {
                let origin = cli
                    .config
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "embedded config/navbat.toml".into());
                println!(
                    "{origin}: ok ({} tenants, {} queues, {} operators)",
                    c.tenants.len(),
                    c.queues.len(),
                    c.operators.len()
                );
                std::process::ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                std::process::ExitCode::from(1)
            }
        },
        Command::Migrate => {
            init_logging();
            match load(&cli.config) {
                Ok(config) => match migrate(&config) {
                    Ok(()) => std::process::ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("navbat migrate: {e:#}");
                        std::process::ExitCode::from(1)
                    }
                },
                Err(errors) => {
                    eprintln!("{errors}");
                    std::process::ExitCode::from(1)
                }
            }
        }
        Command::Run => {
            init_logging();
            let config = match load(&cli.config) {
                Ok(c) => c,
                Err(errors) => {
                    eprintln!("{errors}");
                    return std::process::ExitCode::from(1);
                }
            };
            raise_open_files_limit();
            match run(config, cli.config.is_none()) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("navbat: {e:#}");
                    std::process::ExitCode::from(1)
                }
            }
        }
    }
}

/// Raises the soft limit of open descriptors to the hard one. Each call holds four RTP/RTCP
/// sockets (and ended calls' pairs wait to be handed out again), so 300 channels alone pass
/// the soft limit of 1,024 that systemd and most shells give; servers raise it as they start.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "open files limit raised"),
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "open files limit could not be raised; fix: raise LimitNOFILE (systemd) or ulimit -n")
            }
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "open files limit could not be read"),
    }
}

/// One line from standard input, without its line end. On a terminal `prompt` is shown on
/// standard error and the typing is not echoed.
fn read_password(prompt: &str) -> std::io::Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let mut line = String::new();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        let saved = tcgetattr(&stdin).map_err(std::io::Error::from)?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(std::io::Error::from)?;
        let read = stdin.lock().read_line(&mut line);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
        eprintln!();
        read?;
    } else {
        stdin.lock().read_line(&mut line)?;
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn init_logging() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,actix_server=warn,actix_web=warn")
    });
    // rsipstack logs whole SIP messages (callers' numbers in From) at info and
    // below. D18: numbers never reach a log, whatever RUST_LOG says, unless an
    // engineer debugging SIP explicitly opts in.
    if std::env::var_os("NAVBAT_DANGER_LOG_SIP_MESSAGES").is_none() {
        if let Ok(cap) = "rsipstack=warn".parse() {
            filter = filter.add_directive(cap);
        }
    }
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // The SIP parser's warnings are held to a burst per source (issue 18: one deep-folded
    // request wrote thousands of lines).
    tracing_subscriber::registry()
        .with(filter)
        .with(navbat::sip::warn_limit::ParserWarnings)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
}

fn database_url(config: &Config) -> anyhow::Result<navbat::config::DatabaseUrl> {
    let env = std::env::var("DATABASE_URL").ok();
    Ok(config.database.resolve_url(env.as_deref())?)
}

/// Reads a new password twice on a terminal, once from a pipe, and checks its length.
fn new_password(username: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let first = read_password(&format!("new password for {username}: "))?;
    if std::io::stdin().is_terminal() {
        let again = read_password("again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ; nothing changed");
    }
    navbat::accounts::check_password(&first)
        .map_err(|e| anyhow::anyhow!("{e}; fix: choose a longer password"))?;
    Ok(first)
}

fn user(config: &Config, action: UserAction) -> anyhow::Result<()> {
    use navbat::accounts::{self, db, Account, Lang, Role, Tenants};
    if let UserAction::Hash = action {
        let pw = new_password("the account")?;
        println!("{}", accounts::hash_password(&pw));
        return Ok(());
    }
    let url = database_url(config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    let now = navbat::store::db::now_ms();
    let shell =
        |action: &str, target: &str, detail: Option<String>| navbat::store::people::AuditEntry {
            actor: "shell".into(),
            role: None,
            tenant: None,
            action: action.into(),
            target: Some(target.into()),
            source: None,
            detail,
        };
    rt.block_on(async {
        let store = navbat::store::db::Db::connect_lazy(&url)?;
        store.migrate().await?;
        let pool = store.pool().clone();
        let result: anyhow::Result<()> = async {
            match action {
                UserAction::Add { username, role, tenants, ext, name, language } => {
                    accounts::check_username(&username)?;
                    let role = Role::parse(&role).ok_or_else(|| accounts::AccountError::Role(role.clone()))?;
                    let tenants = Tenants::parse(&tenants);
                    match &tenants {
                        Tenants::All if role != Role::Admin => anyhow::bail!("only an admin may have every tenant (*); fix: list the tenant ids"),
                        Tenants::Some(ids) => {
                            anyhow::ensure!(!ids.is_empty(), "no tenant given; fix: --tenants dtm,support");
                            for id in ids {
                                anyhow::ensure!(config.tenants.iter().any(|t| &t.id == id), "no tenant {id} in the configuration; fix: use one of {}", config.tenants.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", "));
                            }
                        }
                        Tenants::All => {}
                    }
                    if let Some(e) = &ext {
                        anyhow::ensure!(config.operators.iter().any(|o| &o.ext == e), "no operator with extension {e} in the configuration");
                    }
                    let language = Lang::parse(&language).ok_or_else(|| anyhow::anyhow!("language {language:?}: use uz or ru"))?;
                    let pw = new_password(&username)?;
                    let new = db::NewAccount {
                        account: Account { display_name: name.unwrap_or_else(|| username.clone()), username: username.clone(), role, tenants, operator_ext: ext, language, disabled: false },
                        password_hash: accounts::hash_password(&pw),
                    };
                    anyhow::ensure!(db::add(&pool, &new, now).await?, "{username} exists (or its extension belongs to another account); nothing changed");
                    db::audit_direct(&pool, &shell("account_added", &username, Some(format!("role {role}"))), now).await?;
                    println!("{username}: added ({role})");
                }
                UserAction::Passwd { username } => {
                    anyhow::ensure!(db::get(&pool, &username).await?.is_some(), "no account {username}");
                    let pw = new_password(&username)?;
                    db::set_password(&pool, &username, &accounts::hash_password(&pw), now).await?;
                    db::audit_direct(&pool, &shell("password_set", &username, None), now).await?;
                    println!("{username}: password set");
                }
                UserAction::Disable { username } => {
                    anyhow::ensure!(db::set_disabled(&pool, &username, true, now).await?, "no account {username}");
                    db::audit_direct(&pool, &shell("account_disabled", &username, None), now).await?;
                    println!("{username}: disabled (sessions ended)");
                }
                UserAction::Enable { username } => {
                    anyhow::ensure!(db::set_disabled(&pool, &username, false, now).await?, "no account {username}");
                    db::audit_direct(&pool, &shell("account_enabled", &username, None), now).await?;
                    println!("{username}: enabled");
                }
                UserAction::Sip { username, ext, remove } => {
                    let account = db::get(&pool, &username).await?.ok_or_else(|| anyhow::anyhow!("no account {username}; fix: navbat user add {username} ..."))?;
                    if remove {
                        anyhow::ensure!(db::remove_sip(&pool, &username).await?, "{username} has no SIP identity; nothing changed");
                        db::audit_direct(&pool, &shell("sip_identity_removed", &username, None), now).await?;
                        println!("{username}: SIP identity removed");
                        return Ok(());
                    }
                    let ext = ext.unwrap_or_default();
                    anyhow::ensure!(
                        navbat::recordings::access::LIVE_ROLES.contains(&account.role),
                        "{username} is an {} account; only officer and supervisor accounts listen by feature code; fix: give the SIP identity to such an account",
                        account.role
                    );
                    anyhow::ensure!(
                        (1..=32).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()),
                        "extension {ext:?}: use 1-32 letters or digits; fix: --ext 1950"
                    );
                    anyhow::ensure!(
                        config.operator(&ext).is_none(),
                        "extension {ext} is a configured operator's ([[operator]] ext); fix: choose an extension no operator has"
                    );
                    if let Some(owner) = db::ext_owner(&pool, &ext).await? {
                        anyhow::ensure!(owner == username, "extension {ext} belongs to account {owner}; fix: choose another extension");
                    }
                    let pw = new_password(&format!("{username}'s SIP extension {ext}"))?;
                    let realm = &config.sip.realm;
                    let md5 = navbat::sip::digest::ha1(&ext, realm, &pw);
                    let sha256 = {
                        use sha2::Digest;
                        hex::encode(sha2::Sha256::digest(format!("{ext}:{realm}:{pw}").as_bytes()))
                    };
                    db::set_sip(&pool, &username, &ext, realm, &md5, &sha256, now).await?;
                    db::audit_direct(&pool, &shell("sip_identity_set", &username, Some(format!("extension {ext}, realm {realm}"))), now).await?;
                    println!("{username}: SIP identity {ext} set (realm {realm}); its softphone dials *51<operator ext> to listen");
                }
                UserAction::List => {
                    for a in db::list(&pool).await? {
                        println!("{}\t{}\t{}\t{}\t{}{}", a.username, a.role, a.tenants.to_stored(), a.operator_ext.unwrap_or_else(|| "-".into()), a.language.as_str(), if a.disabled { "\tdisabled" } else { "" });
                    }
                }
                UserAction::Hash => {}
            }
            Ok(())
        }
        .await;
        store.close().await;
        result
    })
}

/// `navbat qa sample`: asks the running router (`POST /api/qa/sample`) so the sample goes
/// through its journal like every other record.
fn qa(config: &Config, action: QaAction) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let QaAction::Sample { week, tenant, seed } = action;
    navbat::qa::sample::Week::parse(&week)?;
    let token = config.http.admin_token.as_deref().context(
        "http.admin_token is not set: navbat qa asks the running router with it; set it in the \
         configuration",
    )?;
    let tenants: Vec<String> = match tenant {
        Some(t) => vec![t],
        None => config
            .tenants
            .iter()
            .filter(|t| t.qa.is_some())
            .map(|t| t.id.clone())
            .collect(),
    };
    anyhow::ensure!(
        !tenants.is_empty(),
        "no tenant has a scorecard ([tenant.qa])"
    );
    let mut addr = config.http.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    for tenant in tenants {
        let mut body = serde_json::json!({"tenant": tenant, "week": week});
        if let Some(seed) = seed {
            body["seed"] = seed.into();
        }
        let body = body.to_string();
        let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("cannot reach the router's HTTP at {addr}; is it running?"))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        write!(
            stream,
            "POST /api/qa/sample HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let (head, text) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let ok = head.starts_with("HTTP/1.1 200");
        // Chunked or not, the JSON object is the part between the outer braces.
        let json = match (text.find('{'), text.rfind('}')) {
            (Some(a), Some(b)) if b > a => &text[a..=b],
            _ => text,
        };
        anyhow::ensure!(ok, "{tenant}: {}", json.trim());
        println!("{json}");
    }
    Ok(())
}

fn report(config: &Config, action: ReportAction) -> anyhow::Result<()> {
    use navbat::report::{self, Month};
    let (month, tenant) = match &action {
        ReportAction::Month { month, tenant, .. } | ReportAction::Billing { month, tenant } => {
            (Month::parse(month)?, tenant.clone())
        }
    };
    navbat::report::Context::from_config(config, &tenant, month)?;
    let url = database_url(config)?;
    // Callers' numbers are sealed: the report opens them with the key file's sub-keys.
    let pii = navbat::pii::Pii::load(&config.recordings.key_file)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    let r = rt.block_on(async {
        let db = navbat::store::db::Db::connect_lazy(&url)?;
        db.migrate().await?;
        let r = report::build(db.pool(), Some(&pii), config, &tenant, month).await;
        db.close().await;
        anyhow::Ok(r?)
    })?;
    match action {
        ReportAction::Billing { .. } => match report::invoice_text(&r) {
            Some(text) => print!("{text}"),
            None => anyhow::bail!(
                "tenant {tenant} has no [tenant.billing]; fix: add one to the configuration \
                 (currency, billable outcomes, price tiers: see config/navbat.toml)"
            ),
        },
        ReportAction::Month {
            xlsx,
            html,
            csv,
            json,
            base_url,
            ..
        } => {
            if let Some(path) = &xlsx {
                report::xlsx::write_file(&r, path)?;
                println!("xlsx: {}", path.display());
            }
            if let Some(path) = &html {
                let view = report::html::View {
                    base_url: base_url.clone(),
                    ..report::html::View::default()
                };
                std::fs::write(path, report::html::document(&r, &view))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("html: {}", path.display());
            }
            if let Some(dir) = &csv {
                let files = report::csv::write_dir(&r, dir)?;
                println!("csv: {} ({} files)", dir.display(), files.len());
            }
            if let Some(path) = &json {
                let text = serde_json::to_string_pretty(&r).context("report as JSON")?;
                std::fs::write(path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("json: {}", path.display());
            }
            let s = &r.summary;
            println!(
                "{} {}: offered {}, answered {}, missed {}, deflected {}, callback requested {}, \
                 service level {:.2}% ({} s), wait p50/p90/p95 {:.1}/{:.1}/{:.1} s",
                r.tenant,
                r.month,
                s.offered,
                s.answered,
                s.missed,
                s.deflected,
                s.callback_requested,
                s.service_level_pct,
                s.sl_target_secs,
                report::secs(s.wait_p50_ms),
                report::secs(s.wait_p90_ms),
                report::secs(s.wait_p95_ms)
            );
            if let Some(text) = report::invoice_text(&r) {
                print!("{text}");
            }
        }
    }
    Ok(())
}

/// Schema migrations, then callers' personal data of an older navbat sealed: the database's
/// rows and the undrained journal (which needs the router stopped: it takes the journal's
/// lock). Idempotent: a second run seals nothing and says so.
fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = database_url(config)?;
    // The key file must exist: sealing never falls back to plain text (`navbat keygen`).
    let pii = navbat::pii::Pii::load(&config.recordings.key_file)?;
    let journal_dir = &config.database.journal_dir;
    let _lock = navbat::store::journal::lock_dir(journal_dir)?;
    let journal_entries = navbat::store::sealing::seal_journal(journal_dir, &pii)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    let (ran, sealed) = rt.block_on(async {
        let db = navbat::store::db::Db::connect_lazy(&url)?;
        let result = async {
            let ran = db.migrate().await?;
            let sealed = navbat::store::sealing::ready(&db, &pii).await?;
            Ok::<_, navbat::store::StoreError>((ran, sealed))
        }
        .await;
        db.close().await;
        result
    })?;
    println!(
        "{url}: {ran} migration(s) applied; schema version {}",
        navbat::store::db::schema_version()
    );
    println!(
        "personal data sealed with key {} of {}: {} call record(s), {} disposition(s), \
         {} SMS, {} callback request(s), {} request(s), {} request message(s), \
         {} journal entr(y/ies) in {}",
        pii.current(),
        pii.path().display(),
        sealed.call_records,
        sealed.dispositions,
        sealed.sms,
        sealed.callbacks,
        sealed.requests,
        sealed.request_messages,
        journal_entries,
        journal_dir.display()
    );
    Ok(())
}

/// Runs the router. `embedded_prompts`: the embedded demo configuration is running, so its
/// prompts come from the binary when `media.prompts_dir` is not there.
fn run(config: Config, embedded_prompts: bool) -> anyhow::Result<()> {
    let config = Arc::new(config);
    // The store runs its own runtime and must open outside actix's: it replays the journal
    // and, if the database answers, migrates it before the first call.
    let url = database_url(&config)?;
    // Recordings and callers' personal data are encrypted at rest; no key file, no start (a
    // demo run makes one). The store seals with sub-keys of the same key file.
    let keys =
        navbat::recordings::seal::load_for_run(&config, jiff::Timestamp::now().as_millisecond())?;
    let pii = Arc::new(navbat::pii::Pii::from_keys(&keys));
    let store =
        navbat::store::Store::open(navbat::store::StoreSettings::from_config(&config, url, pii))?;
    let presence = match &config.presence.backend {
        navbat::config::PresenceBackend::Memory => navbat::presence::Presence::default(),
        navbat::config::PresenceBackend::Redis { url } => {
            navbat::presence::Presence::new(Some(navbat::presence::shared::SharedPresence::start(
                url,
                &config.node.id,
                config.presence.heartbeat,
                config.presence.expiry,
            )?))
        }
    };
    let router_store = store.clone();
    // SIP runs on its own runtime (`[sip] threads` workers, one by default); the actors on
    // actix's.
    let sip_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.sip.threads)
        .thread_name("navbat-sip")
        .enable_all()
        .build()
        .context("cannot start the SIP runtime")?;
    let sip_handle = sip_rt.handle().clone();
    // Media (RTP pacing, relay, recording queue) on its own runtime, off the actix thread.
    let media_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("navbat-media")
        .enable_all()
        .build()
        .context("cannot start the media runtime")?;
    let media = navbat::media::MediaEngine::new(
        media_rt.handle().clone(),
        &navbat::media::MediaSettings {
            prompts_dir: config.media.prompts_dir.clone(),
            embedded_prompts,
            recordings_dir: config.media.recordings_dir.clone(),
            recorder_queue: 16_384,
        },
    )?;
    let mut media = media;
    media.recorder = media
        .recorder
        .clone()
        .with_node_url(Some(navbat::recordings::node_url(&config)))
        .with_keys(Arc::new(keys));
    let system = actix::System::new();
    let result = system.block_on(async move {
        if config.trunk_networks().is_empty() && !config.sip.is_loopback_only() {
            tracing::warn!(
                "no trunk named (tenant trunk_sources, [sip.door] trunk_sources): every source \
                 gets the door's trunk caps, so one flooding address is held only by the \
                 channel limits; name the trunk to give other sources the per-source caps"
            );
        }
        let settings = SipSettings {
            udp: config.sip.udp,
            tcp: config.sip.tcp,
            realm: config.sip.realm.clone(),
            nonce_ttl: config.sip.nonce_ttl,
            register_min_expires: config.sip.register_min_expires,
            register_max_expires: config.sip.register_max_expires,
            public_ip: config.sip.public_ip,
            user_agent: config.sip.user_agent.clone(),
            auth_policy: {
                let g = config.sip.auth_guard;
                let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                navbat::sip::auth::AuthPolicy {
                    window_ms: ms(g.window),
                    account_throttle_after: g.account_throttle_after,
                    account_max_throttle_ms: ms(g.account_max_throttle),
                    source_ban_after: g.source_ban_after,
                    source_ban_ms: ms(g.source_ban),
                }
            },
            door: {
                let d = &config.sip.door;
                navbat::sip::door::DoorPolicy {
                    source: navbat::sip::door::Caps {
                        invites_per_sec: d.source_invites_per_sec,
                        burst: d.source_burst,
                        calls: d.source_calls,
                    },
                    trunk: navbat::sip::door::Caps {
                        invites_per_sec: d.trunk_invites_per_sec,
                        burst: d.trunk_burst,
                        calls: d.trunk_calls,
                    },
                    answers_per_sec: d.answers_per_sec,
                    queue: d.queue,
                    max_sources: d.max_sources,
                    retry_after_secs: u32::try_from(config.limits.retry_after.as_secs())
                        .unwrap_or(u32::MAX),
                }
            },
            trunk_networks: config.trunk_networks(),
            tcp_policy: {
                let t = config.sip.tcp_limits;
                navbat::sip::tcp::TcpPolicy {
                    per_source: t.per_source,
                    total: t.total,
                    header_deadline: t.header_deadline,
                    idle: t.idle,
                    max_message: t.max_message_bytes,
                    queue: config.sip.door.queue,
                }
            },
        };
        // Every port is bound before the first actor starts: a port in use is one clear
        // error, not a panic of half-started actors torn down with their runtime.
        let bind_settings = settings.clone();
        let listeners = sip_handle
            .spawn(async move { SipListeners::bind(&bind_settings).await })
            .await
            .context("SIP start-up task failed")??;
        let http_listener = std::net::TcpListener::bind(config.http.listen).map_err(|e| {
            anyhow::anyhow!(
                "cannot listen for HTTP on {} ({e}); fix: choose a free port in http.listen \
                 or stop what holds it",
                config.http.listen
            )
        })?;

        // The accounts of [[account]] (the demo's: README) that the store does not have yet.
        if !config.desk.accounts.is_empty() {
            let pool = router_store.db().pool().clone();
            let seeds = config.desk.accounts.clone();
            let seeded = tokio::time::timeout(
                Duration::from_secs(10),
                router_store.run(async move { navbat::desk::seed_accounts(&pool, &seeds).await }),
            )
            .await;
            match seeded {
                Ok(Ok(Ok(n))) if n > 0 => tracing::info!(created = n, "accounts from [[account]] created"),
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "cannot create the [[account]] accounts; the desk has no logins until the database answers"),
                _ => tracing::warn!("the database did not answer; the [[account]] accounts were not created"),
            }
        }
        let router = Router::start_with(config.clone(), 200_000, Some(router_store), presence)?;
        let _ = router.shared.media.set(media);
        let app: Arc<dyn navbat::sip::SipApplication> = Arc::new(router.clone());
        let sip = sip_handle
            .spawn(SipStack::serve(listeners, settings, app))
            .await
            .context("SIP start-up task failed")??;
        let _ = router.shared.sip.set(sip.clone());

        let data = actix_web::web::Data::new(router.clone());
        let http = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .configure(navbat::http::routes)
        })
        .workers(1)
        .disable_signals()
        .listen(http_listener)
        .with_context(|| format!("cannot serve HTTP on {}", config.http.listen))?
        .run();
        let http_handle = http.handle();
        actix::spawn(http);
        if let Some(store) = router.shared.store.clone() {
            actix::spawn(navbat::recordings::retention::job(
                store.clone(),
                config.clone(),
            ));
            actix::spawn(navbat::qa::job::job(store, config.clone()));
        }

        // Printed whatever the log level: scripts and tests wait for this line.
        eprintln!(
            "navbat ready: sip {} http {} ({} tenants, {} queues, {} operators)",
            sip.local_addrs().join(", "),
            config.http.listen,
            config.tenants.len(),
            config.queues.len(),
            config.operators.len()
        );

        wait_for_signal().await;
        drain(&router, config.shutdown.drain).await;
        http_handle.stop(true).await;
        sip.shutdown();
        anyhow::Ok(())
    });
    // Everything emitted is fsynced within one group commit; give the database a moment to
    // take the rest (what it does not take is replayed at the next start).
    if !store.flush(Duration::from_secs(5)) {
        tracing::warn!(health = ?store.health(), "database behind at shutdown; the journal keeps the rest");
    }
    sip_rt.shutdown_timeout(Duration::from_secs(2));
    media_rt.shutdown_timeout(Duration::from_secs(2));
    result
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: draining"),
    }
}

/// Graceful shutdown: new INVITEs get 503 from now on; calls in progress may
/// finish until the deadline; then the rest are hung up.
async fn drain(router: &Router, deadline: Duration) {
    let gate = router.shared.gate.clone();
    gate.start_draining();
    let start = Instant::now();
    while gate.in_use() > 0 && start.elapsed() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Callback dial-outs hold no inbound channel: end them with the calls.
    let callbacks = router
        .acd
        .send(navbat::actors::acd_host::HangUpCallbacks)
        .await
        .unwrap_or(0);
    let left = router.shared.live_calls();
    if callbacks > 0 && left.is_empty() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !left.is_empty() {
        tracing::info!(calls = left.len(), "drain deadline reached: hanging up");
        for call in left {
            call.do_send(HangUpNow);
        }
        // Give the BYEs a moment to leave.
        let until = Instant::now() + Duration::from_secs(2);
        while gate.in_use() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tracing::info!("navbat stopped");
}

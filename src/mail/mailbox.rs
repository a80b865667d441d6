//! Reading the support folder over IMAP, by UID, without marking anything seen until the
//! caller says its request is safe.
//!
//! `fetch_unseen` searches `UNSEEN UNDELETED` and fetches `BODY.PEEK[]` (plain `BODY[]`
//! would set `\Seen` as a side effect of reading); `mark_seen` stores `+FLAGS.SILENT
//! (\Seen)` for one UID. UIDs are only meaningful within one UIDVALIDITY of the folder, so a
//! [`Uid`] carries it, and `mark_seen` refuses a UID from an earlier incarnation of the
//! folder rather than flag another message.
//!
//! Every network step has a timeout. After a failed step the connection is dropped; the next
//! call opens a new one (the poller paces those attempts with its backoff).

use super::error::quote_server;
use super::{MailError, MailSettings, TlsMode};
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A message's place in the folder: its UID within the folder's UIDVALIDITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid {
    /// The folder's UIDVALIDITY when the UID was read.
    pub validity: u32,
    /// The message's UID.
    pub uid: u32,
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.validity, self.uid)
    }
}

/// The TCP or TLS stream under the IMAP session.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open, logged-in session with the folder selected.
struct Open {
    session: Session<Stream>,
    validity: u32,
}

/// The support folder on the IMAP server.
pub struct Mailbox {
    settings: MailSettings,
    server: String,
    open: Option<Open>,
    /// Set while a command is in flight: if its future is dropped (the poller was
    /// cancelled) the session is mid-exchange, and the next call must start afresh.
    busy: bool,
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("server", &self.server)
            .field("mailbox", &self.settings.imap.mailbox)
            .field("connected", &self.open.is_some())
            .finish()
    }
}

impl Mailbox {
    /// Connects, logs in and selects the folder; fails with an error naming what to check.
    pub async fn connect(settings: &MailSettings) -> Result<Mailbox, MailError> {
        let mut mailbox = Mailbox {
            settings: settings.clone(),
            server: settings.imap.server(),
            open: None,
            busy: false,
        };
        mailbox.ensure_open().await?;
        Ok(mailbox)
    }

    /// `host:port` of the server.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Up to `limit` unseen messages, lowest UID (oldest) first, with their raw bytes.
    /// Fetching does not mark them seen.
    pub async fn fetch_unseen(&mut self, limit: usize) -> Result<Vec<(Uid, Vec<u8>)>, MailError> {
        let server = self.server.clone();
        let timeout = self.settings.io_timeout;
        self.ensure_open().await?;
        self.busy = true;
        let open = self.open.as_mut().expect("opened above");
        let validity = open.validity;
        let session = &mut open.session;
        let result = async {
            // NOOP lets the server report mail delivered since the last command.
            step(&server, timeout, "NOOP", session.noop()).await?;
            let found = step(
                &server,
                timeout,
                "UID SEARCH",
                session.uid_search("UNSEEN UNDELETED"),
            )
            .await?;
            let mut uids: Vec<u32> = found.into_iter().collect();
            uids.sort_unstable();
            uids.truncate(limit);
            if uids.is_empty() {
                return Ok(Vec::new());
            }
            let set = uids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let fetched = step(&server, timeout, "UID FETCH", async {
                let stream = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
            let mut messages: Vec<(Uid, Vec<u8>)> = fetched
                .iter()
                .filter_map(|f| {
                    let uid = f.uid?;
                    // Unsolicited FETCH responses (flag changes) carry no body.
                    let body = f.body()?;
                    uids.contains(&uid)
                        .then(|| (Uid { validity, uid }, body.to_vec()))
                })
                .collect();
            messages.sort_by_key(|(uid, _)| *uid);
            messages.dedup_by_key(|(uid, _)| *uid);
            Ok(messages)
        }
        .await;
        self.keep_if_healthy(result)
    }

    /// Marks one message seen: call it only once the message is safely stored.
    pub async fn mark_seen(&mut self, uid: Uid) -> Result<(), MailError> {
        let server = self.server.clone();
        let timeout = self.settings.io_timeout;
        let mailbox_name = self.settings.imap.mailbox.clone();
        self.ensure_open().await?;
        let open = self.open.as_mut().expect("opened above");
        if open.validity != uid.validity {
            return Err(MailError::UidValidityChanged {
                server,
                mailbox: mailbox_name,
            });
        }
        self.busy = true;
        let session = &mut open.session;
        let result = step(&server, timeout, "UID STORE", async {
            let stream = session
                .uid_store(uid.uid.to_string(), "+FLAGS.SILENT (\\Seen)")
                .await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await
        .map(|_| ());
        self.keep_if_healthy(result)
    }

    /// Appends a raw message to the folder, unseen (tests use it to deliver mail).
    pub async fn append(&mut self, raw: &[u8]) -> Result<(), MailError> {
        let server = self.server.clone();
        let timeout = self.settings.io_timeout;
        let mailbox_name = self.settings.imap.mailbox.clone();
        self.ensure_open().await?;
        self.busy = true;
        let open = self.open.as_mut().expect("opened above");
        let result = step(
            &server,
            timeout,
            "APPEND",
            open.session.append(&mailbox_name, None, None, raw),
        )
        .await;
        self.keep_if_healthy(result)
    }

    /// Logs out politely (bounded by the timeout); the connection is closed either way.
    pub async fn logout(mut self) {
        if self.busy {
            return;
        }
        if let Some(mut open) = self.open.take() {
            let _ = tokio::time::timeout(self.settings.io_timeout, open.session.logout()).await;
        }
    }

    /// Drops the connection after any failure, so that the next call starts afresh rather
    /// than read the leftovers of a half-finished exchange.
    fn keep_if_healthy<T>(&mut self, result: Result<T, MailError>) -> Result<T, MailError> {
        self.busy = false;
        if result.is_err() {
            self.open = None;
        }
        result
    }

    async fn ensure_open(&mut self) -> Result<(), MailError> {
        if self.busy {
            self.open = None;
            self.busy = false;
        }
        if self.open.is_none() {
            self.open = Some(open(&self.settings).await?);
        }
        Ok(())
    }
}

/// One IMAP step with the timeout, its error named.
async fn step<T>(
    server: &str,
    timeout: Duration,
    during: &'static str,
    fut: impl Future<Output = async_imap::error::Result<T>>,
) -> Result<T, MailError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(MailError::Imap {
            server: server.to_string(),
            during,
            detail: quote_server(&e.to_string()),
        }),
        Err(_) => Err(MailError::ImapTimeout {
            server: server.to_string(),
            during,
            secs: timeout.as_secs(),
        }),
    }
}

/// Connect (TCP, TLS or STARTTLS), greeting, login, select.
async fn open(settings: &MailSettings) -> Result<Open, MailError> {
    let imap = &settings.imap;
    let server = imap.server();
    let timeout = settings.io_timeout;
    let timed_out = |during: &'static str| MailError::ImapTimeout {
        server: server.clone(),
        during,
        secs: timeout.as_secs(),
    };
    let connect_failed = |detail: String| MailError::ImapConnect {
        server: server.clone(),
        detail,
    };
    let tls_failed = |detail: String| MailError::ImapTls {
        server: server.clone(),
        detail,
    };

    let tcp = tokio::time::timeout(timeout, TcpStream::connect((imap.host.as_str(), imap.port)))
        .await
        .map_err(|_| timed_out("connect"))?
        .map_err(|e| connect_failed(e.to_string()))?;
    let _ = tcp.set_nodelay(true);

    let client = match imap.tls {
        TlsMode::None => {
            let mut client = Client::new(Stream::Plain(tcp));
            greeting(&mut client, &server, timeout).await?;
            client
        }
        TlsMode::Tls => {
            let tls = tls_handshake(settings, tcp).await?;
            let mut client = Client::new(Stream::Tls(Box::new(tls)));
            greeting(&mut client, &server, timeout).await?;
            client
        }
        TlsMode::StartTls => {
            let mut plain = Client::new(Stream::Plain(tcp));
            greeting(&mut plain, &server, timeout).await?;
            tokio::time::timeout(timeout, plain.run_command_and_check_ok("STARTTLS", None))
                .await
                .map_err(|_| timed_out("STARTTLS"))?
                .map_err(|e| {
                    tls_failed(format!(
                        "the server refused STARTTLS ({}); use tls on port 993 if it has no \
                         STARTTLS",
                        quote_server(&e.to_string())
                    ))
                })?;
            let Stream::Plain(tcp) = plain.into_inner() else {
                unreachable!("the stream before STARTTLS is plain TCP");
            };
            // No greeting after STARTTLS (RFC 3501 6.2.1).
            Client::new(Stream::Tls(Box::new(tls_handshake(settings, tcp).await?)))
        }
    };

    let mut session = tokio::time::timeout(
        timeout,
        client.login(imap.user.as_str(), imap.password.expose()),
    )
    .await
    .map_err(|_| timed_out("LOGIN"))?
    .map_err(|(e, _client)| MailError::ImapLogin {
        server: server.clone(),
        user: imap.user.clone(),
        detail: quote_server(&e.to_string()),
    })?;

    let selected = tokio::time::timeout(timeout, session.select(imap.mailbox.as_str()))
        .await
        .map_err(|_| timed_out("SELECT"))?
        .map_err(|e| MailError::ImapMailbox {
            server: server.clone(),
            mailbox: imap.mailbox.clone(),
            detail: quote_server(&e.to_string()),
        })?;
    let validity = selected
        .uid_validity
        .ok_or_else(|| MailError::ImapMailbox {
            server: server.clone(),
            mailbox: imap.mailbox.clone(),
            detail: "the server gives no UIDVALIDITY, so messages cannot be tracked by UID".into(),
        })?;
    Ok(Open { session, validity })
}

/// Reads the server's greeting; `* BYE` or a closed connection is an error.
async fn greeting(
    client: &mut Client<Stream>,
    server: &str,
    timeout: Duration,
) -> Result<(), MailError> {
    let failed = |detail: String| MailError::ImapConnect {
        server: server.to_string(),
        detail,
    };
    let response = tokio::time::timeout(timeout, client.read_response())
        .await
        .map_err(|_| MailError::ImapTimeout {
            server: server.to_string(),
            during: "the greeting",
            secs: timeout.as_secs(),
        })?
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| failed("the server closed the connection before greeting".into()))?;
    match response.parsed() {
        async_imap::imap_proto::Response::Data {
            status: async_imap::imap_proto::Status::Bye,
            outcome,
        } => Err(failed(format!(
            "the server said BYE: {}",
            quote_server(outcome.information.as_deref().unwrap_or(""))
        ))),
        _ => Ok(()),
    }
}

async fn tls_handshake(
    settings: &MailSettings,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, MailError> {
    let imap = &settings.imap;
    let server = imap.server();
    let config = super::tls::client_config(&server, imap.ca_file.as_deref())?;
    let name = rustls::pki_types::ServerName::try_from(imap.host.clone()).map_err(|e| {
        MailError::ImapTls {
            server: server.clone(),
            detail: format!("{:?} is not a host name for TLS: {e}", imap.host),
        }
    })?;
    let connector = tokio_rustls::TlsConnector::from(config);
    tokio::time::timeout(settings.io_timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| MailError::ImapTimeout {
            server: server.clone(),
            during: "the TLS handshake",
            secs: settings.io_timeout.as_secs(),
        })?
        .map_err(|e| MailError::ImapTls {
            server,
            detail: e.to_string(),
        })
}

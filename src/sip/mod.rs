//! navbat's face over the SIP stack (rsipstack, pinned): transports,
//! transactions, dialogs, the registrar and the B2BUA legs. Over UDP the legs of
//! calls (feature codes too), REGISTER and OPTIONS run on navbat's own transaction layer
//! (`txn`, `own`), RFC 2543 peers' too; rsipstack keeps TCP.
//!
//! Nothing outside this module sees an rsipstack type. The router plugs in
//! through [`SipApplication`]: it is asked for credentials, told about
//! registrations, and decides synchronously whether a new INVITE is admitted.
//! Each admitted call gets a [`CallerLeg`]; operators are rung through
//! [`SipStack::call_operator`], which returns an [`OperatorLeg`]. Everything
//! that happens on a leg reaches the call's actor as a [`LegMsg`].

pub mod auth;
mod authenticate;
pub mod digest;
pub mod door;
pub mod features;
pub mod guard;
mod inspect;
mod legs;
mod own;
mod registrar;
pub mod sdp;
mod tag;
pub mod tcp;
pub mod txn;
pub mod warn_limit;

pub use authenticate::AuthFailure;
pub use guard::{GuardCounters, ALLOW};
pub use legs::{CallerLeg, LegEvent, LegMsg, OperatorLeg};
// Kept reachable here: SIP code names it beside `ContactBinding`.
pub use crate::binding::StoredBinding;

use crate::privacy::PhoneNumber;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Method, StatusCode};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::Transaction;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TcpListenerConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// SIP settings taken from the configuration.
#[derive(Clone, Debug)]
pub struct SipSettings {
    /// UDP listen address.
    pub udp: Option<SocketAddr>,
    /// TCP listen address.
    pub tcp: Option<SocketAddr>,
    /// Digest realm.
    pub realm: String,
    /// How long a nonce stays fresh.
    pub nonce_ttl: Duration,
    /// Shortest registration accepted (423 below it).
    pub register_min_expires: Duration,
    /// Longest registration granted (clamped to it).
    pub register_max_expires: Duration,
    /// The address advertised in Contact headers; default: the listen IP.
    pub public_ip: Option<IpAddr>,
    /// Limits on failed authentications (`[sip.auth_guard]`).
    pub auth_policy: auth::AuthPolicy,
    /// The `User-Agent` of navbat's messages (`sip.user_agent`).
    pub user_agent: String,
    /// Per-source admission of new INVITEs (`[sip.door]`).
    pub door: door::DoorPolicy,
    /// The trunk networks, whose sources get the door's trunk caps (empty: every source).
    pub trunk_networks: Vec<crate::config::Network>,
    /// Caps and deadlines of SIP over TCP (`[sip.tcp_limits]`).
    pub tcp_policy: tcp::TcpPolicy,
}

/// Errors starting or using the SIP layer.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// A listener could not be bound.
    #[error("cannot listen for SIP on {transport} {addr} ({error}); fix: choose a free port in sip.{transport} or stop what holds it")]
    Bind {
        /// "udp" or "tcp"
        transport: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error (in the message, not as a source: printed once).
        error: std::io::Error,
    },
    /// Neither UDP nor TCP configured.
    #[error("no SIP listener configured; fix: set sip.udp or sip.tcp")]
    NoListener,
    /// The stack refused an operation.
    #[error("SIP stack: {0}")]
    Stack(String),
}

impl From<rsipstack::Error> for SipError {
    fn from(e: rsipstack::Error) -> SipError {
        SipError::Stack(e.to_string())
    }
}

/// Where a registered phone can be reached: its Contact and the address its
/// REGISTER came from (used as the destination, which also works behind NAT).
#[derive(Clone, Debug)]
pub struct ContactBinding {
    /// The Contact URI as registered.
    pub uri: String,
    /// Where the REGISTER came from ("udp 127.0.0.1:5070").
    pub source: String,
    target: SipAddr,
    contact: rsipstack::sip::Uri,
}

impl ContactBinding {
    /// The phone's address when it is reached over UDP at an IP address (the operator leg
    /// then runs on navbat's own transactions).
    fn udp_peer(&self) -> Option<SocketAddr> {
        if !matches!(
            self.target.r#type,
            None | Some(rsipstack::sip::Transport::Udp)
        ) {
            return None;
        }
        let host = self.target.addr.host.to_string();
        let ip: IpAddr = host.trim_matches(['[', ']']).parse().ok()?;
        let port = self.target.addr.port.as_ref().map_or(5060, |p| p.value());
        Some(SocketAddr::new(ip, port))
    }

    /// The serialisable form.
    pub fn stored(&self) -> StoredBinding {
        StoredBinding {
            uri: self.uri.clone(),
            transport: self
                .target
                .r#type
                .map(|t| t.to_string().to_ascii_lowercase()),
            host: self.target.addr.host.to_string(),
            port: self.target.addr.port.as_ref().map(|p| p.value()),
        }
    }

    /// Rebuilds a binding from its stored form; `None` if the URI or address do not parse.
    pub fn from_stored(stored: &StoredBinding) -> Option<ContactBinding> {
        let contact = rsipstack::sip::Uri::try_from(stored.uri.clone()).ok()?;
        let hostport = match stored.port {
            Some(port) if stored.host.contains(':') => format!("[{}]:{port}", stored.host),
            Some(port) => format!("{}:{port}", stored.host),
            None => stored.host.clone(),
        };
        let addr = rsipstack::sip::HostWithPort::try_from(hostport).ok()?;
        let transport = match stored.transport.as_deref() {
            Some(t) => Some(rsipstack::sip::Transport::try_from(t).ok()?),
            None => None,
        };
        let target = SipAddr {
            r#type: transport,
            addr,
        };
        Some(ContactBinding {
            uri: stored.uri.clone(),
            source: target.to_string(),
            target,
            contact,
        })
    }
}

/// A new INVITE offered to the application.
#[derive(Debug)]
pub struct IncomingCall {
    /// The dialled number (Request-URI user, else To user).
    pub did: String,
    /// The caller's number from From (personal data).
    pub caller: PhoneNumber,
    /// "udp" or "tcp".
    pub transport: &'static str,
    /// The address it came from (the top Via with the `received` the transport wrote).
    pub source: Option<IpAddr>,
}

/// A function that starts the call's actor once the leg exists.
pub type StartCall = Box<dyn FnOnce(CallerLeg) -> actix::Recipient<LegMsg> + Send>;

/// The application's decision on a new INVITE.
pub enum Admission {
    /// Take the call: the closure starts its actor.
    Accept(StartCall),
    /// Refuse it with this status (e.g. 404, 503 with Retry-After, 480).
    Reject {
        /// SIP status code.
        status: u16,
        /// Seconds for a Retry-After header.
        retry_after: Option<u32>,
    },
}

/// The router side of the SIP layer.
pub trait SipApplication: Send + Sync + 'static {
    /// The HA1 of an extension, if it exists.
    fn credentials(&self, ext: &str) -> Option<String>;
    /// The SHA-256 HA1 of an extension (RFC 7616), if it has one.
    fn credentials_sha256(&self, ext: &str) -> Option<String> {
        let _ = ext;
        None
    }
    /// Whether SHA-256 is offered (to every user alike, so the challenge does not tell which
    /// accounts exist; the config has it for all operators or none).
    fn offers_sha256(&self) -> bool {
        false
    }
    /// The HA1 of user `ext` for a request of `method` ("REGISTER", or "INVITE" for a
    /// feature code). By default [`SipApplication::credentials`]; an application may know
    /// users who may dial feature codes but not register (officers' softphones).
    fn credentials_for(&self, method: &str, ext: &str) -> Option<String> {
        let _ = method;
        self.credentials(ext)
    }
    /// A phone registered or refreshed its binding.
    fn registered(&self, ext: &str, binding: ContactBinding, expires_secs: u32);
    /// A phone removed its binding.
    fn unregistered(&self, ext: &str);
    /// A REGISTER or feature-code INVITE failed authentication (already logged; reports are
    /// rate-limited).
    fn auth_failed(&self, failure: AuthFailure) {
        let _ = failure;
    }
    /// Decide on a new INVITE, synchronously.
    fn admit(&self, call: IncomingCall) -> Admission;
    /// The cheap look the UDP guard takes at a new INVITE before the stack spends a
    /// transaction on it (an unknown number, a foreign trunk, full channels are answered
    /// statelessly). None: every INVITE the door admits goes on to [`Self::admit`].
    fn call_screen(&self) -> Option<Arc<dyn guard::CallScreen>> {
        None
    }
    /// Decide on an authenticated feature-code INVITE (a supervisor joining a live call,
    /// D17), synchronously. By default there is no such feature: 404.
    fn admit_monitor(&self, dial: features::MonitorDial) -> Admission {
        let _ = dial;
        Admission::Reject {
            status: 404,
            retry_after: None,
        }
    }
}

/// Counters kept by the SIP layer (the metrics issue exports them).
#[derive(Default, Debug)]
pub struct SipCounters {
    /// The UDP guard's counters.
    pub guard: Arc<GuardCounters>,
    /// SIP over TCP: connections, refusals, messages handed to the stack.
    pub tcp: Arc<tcp::TcpCounters>,
    /// Requests received, by method (index = [`method_index`]).
    pub requests: [AtomicU64; 16],
    /// INVITEs refused at the door.
    pub invites_rejected: AtomicU64,
    /// Successful registrations.
    pub registrations: AtomicU64,
    /// Failed authentications (challenged again).
    pub auth_failures: AtomicU64,
    /// Attempts refused unchecked: a banned source, or an account inside its delay.
    pub auth_refused: AtomicU64,
    /// Source addresses banned.
    pub auth_bans: AtomicU64,
    /// Responses that repeated a nonce count (replays).
    pub auth_replays: AtomicU64,
    /// Successful authentications by digest algorithm: MD5, SHA-256.
    pub auth_succeeded: [AtomicU64; 2],
    /// Transactions alive on navbat's own transaction layer (`own.rs`).
    pub own_transactions: AtomicU64,
    /// Bytes that layer holds (its tables and the responses it keeps).
    pub own_transaction_bytes: AtomicU64,
    /// Call legs (callers' and operators') alive on that layer.
    pub own_call_legs: AtomicU64,
    /// That layer's datagrams the kernel's send buffer had no room for (dropped; the peer
    /// retransmits).
    pub own_send_dropped: AtomicU64,
}

/// The stack's name of the TCP listening address.
fn tcp_sip_addr(addr: SocketAddr) -> SipAddr {
    SipAddr {
        r#type: Some(rsipstack::sip::Transport::Tcp),
        addr: addr.into(),
    }
}

/// Position of a method in [`SipCounters::requests`].
pub fn method_index(m: &str) -> usize {
    match m {
        "INVITE" => 0,
        "ACK" => 1,
        "BYE" => 2,
        "CANCEL" => 3,
        "OPTIONS" => 4,
        "REGISTER" => 5,
        "INFO" => 6,
        "UPDATE" => 7,
        "PRACK" => 8,
        "SUBSCRIBE" => 9,
        "NOTIFY" => 10,
        "PUBLISH" => 11,
        "MESSAGE" => 12,
        "REFER" => 13,
        _ => 15,
    }
}

/// The running SIP layer. Cheap to clone.
#[derive(Clone)]
pub struct SipStack {
    inner: Arc<StackInner>,
}

struct StackInner {
    /// Kept so the endpoint outlives every leg that uses it.
    _endpoint: EndpointInnerRef,
    dialogs: Arc<DialogLayer>,
    rt: tokio::runtime::Handle,
    /// Our Contact for dialogs on UDP (or the only listener).
    contact: rsipstack::sip::Uri,
    /// Our Contact for dialogs that came over TCP (`;transport=tcp`, the TCP listener's
    /// port), so the peer's ACK, BYE and re-INVITEs stay on TCP (RFC 3261 §8.1.1.8).
    contact_tcp: Option<rsipstack::sip::Uri>,
    counters: Arc<SipCounters>,
    cancel: CancellationToken,
    local_addrs: Vec<String>,
    gate: Arc<guard::DoorGate>,
    /// navbat's own transactions (UDP), where operator legs over UDP run.
    own: Option<(Arc<own::OwnTransactions>, own::Local)>,
    admitter: Arc<Admitter>,
}

/// SIP's sockets, bound and not yet served: binding comes first, so a port in use is a
/// clean start-up error before anything else has started.
pub struct SipListeners {
    udp: Option<(tokio::net::UdpSocket, SocketAddr)>,
    tcp: Option<(tokio::net::TcpListener, SocketAddr)>,
}

impl SipListeners {
    /// Binds the configured listeners on the current tokio runtime.
    pub async fn bind(settings: &SipSettings) -> Result<SipListeners, SipError> {
        if settings.udp.is_none() && settings.tcp.is_none() {
            return Err(SipError::NoListener);
        }
        let udp = match settings.udp {
            Some(addr) => {
                let bind_error = |error| SipError::Bind {
                    transport: "udp",
                    addr,
                    error,
                };
                let socket = bind_udp(addr).map_err(bind_error)?;
                let bound = socket.local_addr().map_err(bind_error)?;
                Some((socket, bound))
            }
            None => None,
        };
        let tcp = match settings.tcp {
            Some(addr) => {
                let bind_error = |error| SipError::Bind {
                    transport: "tcp",
                    addr,
                    error,
                };
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(bind_error)?;
                let bound = listener.local_addr().map_err(bind_error)?;
                Some((listener, bound))
            }
            None => None,
        };
        Ok(SipListeners { udp, tcp })
    }
}

impl SipStack {
    /// Binds the listeners and starts serving on the current tokio runtime
    /// (which must be multi-threaded and outlive the stack).
    pub async fn start(
        settings: SipSettings,
        app: Arc<dyn SipApplication>,
    ) -> Result<SipStack, SipError> {
        let listeners = SipListeners::bind(&settings).await?;
        SipStack::serve(listeners, settings, app).await
    }

    /// Starts serving on listeners already bound, on the current tokio runtime (which must be
    /// multi-threaded and outlive the stack).
    pub async fn serve(
        listeners: SipListeners,
        settings: SipSettings,
        app: Arc<dyn SipApplication>,
    ) -> Result<SipStack, SipError> {
        let cancel = CancellationToken::new();
        let transport = TransportLayer::new(cancel.clone());
        let counters = Arc::new(SipCounters::default());
        let gate = Arc::new(
            guard::DoorGate::new(settings.door, settings.trunk_networks.clone())
                .with_calls(app.call_screen()),
        );
        let secret: [u8; 16] = rand::random();
        // One authenticator for both doors: a guess at REGISTER and one at a feature code
        // count against the same account and source.
        let auth = Arc::new(authenticate::Authenticator::new(
            settings.realm.clone(),
            digest::NonceSigner::new(secret, settings.nonce_ttl.as_secs()),
            settings.auth_policy,
            app.clone(),
            counters.clone(),
        ));
        let registrar = Arc::new(registrar::Registrar::new(
            settings.clone(),
            auth.clone(),
            app.clone(),
            counters.clone(),
        ));
        let features = Arc::new(features::FeatureDoor::new(auth, counters.clone()));
        let admitter = Arc::new(Admitter {
            gate: gate.clone(),
            app: app.clone(),
            features,
            counters: counters.clone(),
        });
        let mut local_addrs = Vec::new();
        let mut own_layer = None;
        let mut contact_addr = None;
        let mut tcp_addr = None;
        // navbat reads SIP itself, UDP (`guard.rs`) and TCP (`tcp.rs`): what passes the
        // screen enters the stack parsed, through this channel, served by the stack like any
        // connection. The stack parses nothing a second time.
        let (feed, feed_rx) = tokio::sync::mpsc::unbounded_channel();
        let (unused_tx, _) = tokio::sync::mpsc::unbounded_channel();
        let feeder = rsipstack::transport::channel::ChannelConnection::create_connection(
            feed_rx,
            unused_tx,
            SipAddr {
                r#type: None,
                addr: SocketAddr::from(([0, 0, 0, 0], 0)).into(),
            },
            None,
        )
        .await?;
        transport.add_connection(feeder.into());
        if let Some((socket, bound)) = listeners.udp {
            let guarded = Arc::new(guard::GuardedUdpSocket::new(
                socket,
                counters.guard.clone(),
                gate.clone(),
            ));
            // The stack sends through this connection and never reads it.
            let conn =
                UdpConnection::from_socket(guarded.clone(), None, Some(cancel.child_token()))
                    .await?;
            transport.add_transport(conn.clone().into());
            // Out-of-dialog REGISTER and OPTIONS are answered on navbat's own transactions.
            let own = own::OwnTransactions::start(
                guarded.clone(),
                registrar.clone(),
                admitter.clone(),
                counters.clone(),
                settings.user_agent.clone(),
                cancel.child_token(),
            );
            own_layer = Some(own.clone());
            tokio::spawn(guarded.serve(conn, feed.clone(), Some(own), cancel.child_token()));
            local_addrs.push(format!("udp {bound}"));
            contact_addr = Some(bound);
        }
        let mut tcp_listener = None;
        let mut late_listener: Option<guard::LateListener> = None;
        if let Some((listener, addr)) = listeners.tcp {
            // The listener's address names our Via on TCP. It joins the stack's listeners
            // once the stack has started them (never to be served by it: ours accepts).
            let named = TcpListenerConnection::new(addr, None).await?;
            let layer = transport.inner.clone();
            late_listener = Some(Box::new(move || layer.add_listener(named.into())));
            local_addrs.push(format!("tcp {addr}"));
            contact_addr.get_or_insert(addr);
            tcp_addr = Some(addr);
            tcp_listener = Some(listener);
        }
        let contact_addr = contact_addr.ok_or(SipError::NoListener)?;
        let ip = settings.public_ip.unwrap_or(contact_addr.ip());
        let host = match ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let contact: rsipstack::sip::Uri =
            rsipstack::sip::Uri::try_from(format!("sip:navbat@{host}:{}", contact_addr.port()))
                .map_err(|e| SipError::Stack(e.to_string()))?;
        // The operator legs' Via and Contact: the UDP listener, which is `contact_addr`
        // whenever UDP is configured.
        let own = own_layer.map(|own| {
            let sent_by = format!("{host}:{}", contact_addr.port());
            let local = own::Local {
                contact: format!("sip:navbat@{sent_by}"),
                sent_by,
            };
            own.set_local(local.clone());
            (own, local)
        });
        let contact_tcp = tcp_addr
            .map(|addr| {
                rsipstack::sip::Uri::try_from(format!(
                    "sip:navbat@{host}:{};transport=tcp",
                    addr.port()
                ))
                .map_err(|e| SipError::Stack(e.to_string()))
            })
            .transpose()?;

        let endpoint = EndpointBuilder::new()
            .with_transport_layer(transport)
            .with_cancel_token(cancel.clone())
            .with_user_agent(&settings.user_agent)
            .with_transport_inspector(Box::new(guard::StreamGuard::new(
                counters.guard.clone(),
                gate.clone(),
                tcp_addr.map(|addr| guard::StreamTcp {
                    local: tcp_sip_addr(addr),
                    counters: counters.tcp.clone(),
                    late: std::sync::Mutex::new(late_listener.take()),
                }),
            )))
            .with_inspector(Box::new(inspect::MetricsInspector::new()))
            .with_allows(vec![
                Method::Invite,
                Method::Ack,
                Method::Cancel,
                Method::Bye,
                Method::Options,
                Method::Info,
                Method::Register,
                Method::Update,
                Method::PRack,
            ])
            .build();
        let mut incoming = endpoint.incoming_transactions()?;
        let endpoint_inner = endpoint.inner.clone();
        let serve = endpoint_inner.clone();
        tokio::spawn(async move {
            if let Err(e) = serve.serve().await {
                tracing::error!(error = %e, "SIP endpoint stopped");
            }
        });
        if let (Some(listener), Some(addr)) = (tcp_listener, tcp_addr) {
            let server = tcp::TcpServer {
                policy: settings.tcp_policy,
                counters: counters.tcp.clone(),
                guard: counters.guard.clone(),
                feed,
                endpoint: endpoint_inner.clone(),
                local: tcp_sip_addr(addr),
                cancel: cancel.child_token(),
            };
            tokio::spawn(tcp::serve(listener, server));
        }
        let dialogs = Arc::new(DialogLayer::new(endpoint_inner.clone()));
        let stack = SipStack {
            inner: Arc::new(StackInner {
                _endpoint: endpoint_inner,
                dialogs,
                rt: tokio::runtime::Handle::current(),
                contact,
                contact_tcp,
                counters,
                cancel: cancel.clone(),
                local_addrs,
                gate,
                own,
                admitter,
            }),
        };
        let dispatcher = stack.clone();
        tokio::spawn(async move {
            // Keep the endpoint alive as long as the dispatcher runs.
            let _endpoint = endpoint;
            while let Some(tx) = incoming.recv().await {
                dispatcher.dispatch(tx, &registrar);
            }
        });
        Ok(stack)
    }

    /// The addresses SIP listens on, for the start-up line.
    pub fn local_addrs(&self) -> &[String] {
        &self.inner.local_addrs
    }

    /// The SIP layer's counters.
    pub fn counters(&self) -> Arc<SipCounters> {
        self.inner.counters.clone()
    }

    /// Calls in progress the door counts for `ip`'s source (an IPv6 address: its /64).
    pub fn door_calls_of(&self, ip: IpAddr) -> u32 {
        self.inner.gate.calls_of(ip)
    }

    /// Stops the listeners and the endpoint.
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }

    fn dispatch(&self, mut tx: Transaction, registrar: &Arc<registrar::Registrar>) {
        let method = tx.original.method;
        self.inner.counters.requests[method_index(&method.to_string())]
            .fetch_add(1, Ordering::Relaxed);
        let has_to_tag = own::has_to_tag(&tx.original);
        match method {
            Method::Register => {
                let registrar = registrar.clone();
                tokio::spawn(async move { registrar.handle(tx).await });
            }
            Method::Invite if !has_to_tag => self.new_invite(tx),
            _ => {
                if let Some(mut dialog) = self.inner.dialogs.match_dialog(&tx) {
                    tokio::spawn(async move {
                        if let Err(e) = dialog.handle(&mut tx).await {
                            tracing::debug!(error = %e, "in-dialog request");
                        }
                    });
                    return;
                }
                tokio::spawn(async move {
                    let result = match method {
                        Method::Ack => Ok(()),
                        Method::Options => {
                            tx.reply_with(StatusCode::OK, allow_headers(), None).await
                        }
                        Method::Subscribe
                        | Method::Publish
                        | Method::Message
                        | Method::Notify
                        | Method::Refer => {
                            tx.reply_with(StatusCode::MethodNotAllowed, allow_headers(), None)
                                .await
                        }
                        _ => tx.reply(StatusCode::CallTransactionDoesNotExist).await,
                    };
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "out-of-dialog reply failed");
                    }
                });
            }
        }
    }

    /// A new INVITE on an rsipstack transaction (over TCP): the same decision as on navbat's
    /// own transactions (a feature code's digest first), carried out on the transaction.
    fn new_invite(&self, tx: Transaction) {
        let transport = match tx.connection.as_ref().map(|c| c.transport()) {
            Some(rsipstack::sip::Transport::Tcp) => "tcp",
            _ => "udp",
        };
        let decision = match features::parse(&dialled(&tx.original)) {
            Some(code) => self.inner.admitter.decide_feature(&tx.original, code),
            None => self.inner.admitter.decide(&tx.original, transport),
        };
        match decision {
            Decision::Reject {
                status,
                retry_after,
            } => self.reject_invite(tx, status, retry_after),
            Decision::Challenge { offers } => {
                let headers = offers
                    .into_iter()
                    .map(|v| rsipstack::sip::Header::ProxyAuthenticate(v.into()))
                    .collect();
                self.answer_invite(tx, StatusCode::ProxyAuthenticationRequired, headers);
            }
            Decision::Accept { start, ticket } => self.accept_invite(tx, start, ticket),
        }
    }

    /// Refuses a new INVITE with `status` (and Retry-After).
    fn reject_invite(&self, tx: Transaction, status: u16, retry_after: Option<u32>) {
        let headers = retry_after
            .map(|secs| rsipstack::sip::Header::RetryAfter(secs.to_string().into()))
            .into_iter()
            .collect();
        self.answer_invite(tx, StatusCode::from(status), headers);
    }

    /// Answers a new INVITE finally with `status` and `headers`, and drives its transaction
    /// (the answer is retransmitted until the ACK).
    fn answer_invite(
        &self,
        mut tx: Transaction,
        status: StatusCode,
        headers: Vec<rsipstack::sip::Header>,
    ) {
        tokio::spawn(async move {
            if let Err(e) = tx.reply_with(status, headers, None).await {
                tracing::debug!(error = %e, "INVITE answer failed");
            }
            while tx.receive().await.is_some() {}
        });
    }

    /// Takes a new INVITE as a [`CallerLeg`] and starts its actor with `start`.
    fn accept_invite(
        &self,
        mut tx: Transaction,
        start: StartCall,
        ticket: Option<guard::DoorTicket>,
    ) {
        let (state_tx, state_rx) = self.inner.dialogs.new_dialog_state_channel();
        let contact = match tx.connection.as_ref().map(|c| c.transport()) {
            Some(rsipstack::sip::Transport::Tcp) => self.inner.contact_tcp.clone(),
            _ => None,
        }
        .unwrap_or_else(|| self.inner.contact.clone());
        let dialog =
            match self
                .inner
                .dialogs
                .get_or_create_server_invite(&tx, state_tx, None, Some(contact))
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create dialog");
                    tokio::spawn(async move {
                        let _ = tx.reply(StatusCode::ServerInternalError).await;
                        while tx.receive().await.is_some() {}
                    });
                    return;
                }
            };
        let leg = CallerLeg::new(self.clone(), dialog.clone(), &tx.original);
        let recipient = start(leg.clone());
        tokio::spawn(legs::pump_caller(
            state_rx,
            recipient,
            leg,
            self.clone(),
            ticket,
        ));
        let mut dialog = dialog;
        tokio::spawn(async move {
            if let Err(e) = dialog.handle(&mut tx).await {
                tracing::debug!(error = %e, "INVITE transaction ended with error");
            }
        });
    }

    /// Rings an operator's phone for a call. Events come back as [`LegMsg`]
    /// tagged with `attempt`.
    pub fn call_operator(
        &self,
        binding: &ContactBinding,
        caller: &PhoneNumber,
        sdp_offer: String,
        attempt: u64,
        to: actix::Recipient<LegMsg>,
    ) -> Result<OperatorLeg, SipError> {
        if let (Some((own, local)), Some(peer)) = (&self.inner.own, binding.udp_peer()) {
            let uri = binding.contact.to_string();
            let leg = own.call(local, peer, &uri, caller.expose(), sdp_offer, attempt, to)?;
            return Ok(OperatorLeg::own(leg));
        }
        legs::call_operator(self, binding, caller, sdp_offer, attempt, to)
    }
}

/// The door's count and the application's decision on a new INVITE, on either transaction
/// layer (rsipstack's, or navbat's own over UDP).
pub(crate) struct Admitter {
    gate: Arc<guard::DoorGate>,
    app: Arc<dyn SipApplication>,
    /// Feature-code INVITEs: digest first, then the application's monitor decision.
    features: Arc<features::FeatureDoor>,
    counters: Arc<SipCounters>,
}

/// What becomes of a new INVITE.
pub(crate) enum Decision {
    /// Refused with this status (and Retry-After seconds).
    Reject {
        /// SIP status code.
        status: u16,
        /// Seconds for a Retry-After header.
        retry_after: Option<u32>,
    },
    /// A feature-code INVITE without the right digest: 407 with these Proxy-Authenticate
    /// values.
    Challenge {
        /// The challenges offered (one per digest algorithm).
        offers: Vec<String>,
    },
    /// Taken: `start` starts the call's actor; `ticket` counts the call at the door while
    /// its dialog lives.
    Accept {
        /// Starts the call's actor.
        start: StartCall,
        /// The source's place at the door.
        ticket: Option<guard::DoorTicket>,
    },
}

impl Admitter {
    /// Decides on a new INVITE that came over `transport` ("udp" or "tcp").
    pub(crate) fn decide(
        &self,
        req: &rsipstack::sip::Request,
        transport: &'static str,
    ) -> Decision {
        let did = dialled(req);
        let caller = req
            .from_header()
            .ok()
            .and_then(|f| f.uri().ok())
            .and_then(|u| u.user().map(str::to_string))
            .unwrap_or_default();
        let source = authenticate::source_of(req)
            .as_ref()
            .and_then(authenticate::source_ip);
        // The exact count of the source's calls: the guard's look was taken before this
        // INVITE and others from the same source reached the stack.
        let ticket = match source.map(|ip| self.gate.start_call(ip)) {
            Some(Err(_)) => {
                self.counters
                    .invites_rejected
                    .fetch_add(1, Ordering::Relaxed);
                return Decision::Reject {
                    status: 503,
                    retry_after: Some(self.gate.policy().retry_after_secs),
                };
            }
            Some(Ok(ticket)) => Some(ticket),
            None => None,
        };
        let call = IncomingCall {
            did,
            caller: PhoneNumber::new(caller),
            transport,
            source,
        };
        match self.app.admit(call) {
            Admission::Reject {
                status,
                retry_after,
            } => {
                self.counters
                    .invites_rejected
                    .fetch_add(1, Ordering::Relaxed);
                Decision::Reject {
                    status,
                    retry_after,
                }
            }
            Admission::Accept(start) => Decision::Accept { start, ticket },
        }
    }

    /// Decides on a feature-code INVITE (`code` is what it dialled).
    pub(crate) fn decide_feature(
        &self,
        req: &rsipstack::sip::Request,
        code: features::FeatureCode,
    ) -> Decision {
        self.features.decide(req, code, self.app.as_ref())
    }
}

/// Kernel receive/send buffer asked for on the SIP UDP socket. The default
/// (about 200 KiB) overflows in bursts of a few hundred calls per second,
/// and a dropped ACK ends an answered call 32 s later (64*T1).
const SIP_SOCKET_BUFFER: usize = 8 * 1024 * 1024;

fn bind_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.rmem_max / wmem_max.
    if let Err(e) = socket.set_recv_buffer_size(SIP_SOCKET_BUFFER) {
        tracing::warn!(error = %e, "cannot enlarge the SIP receive buffer");
    }
    let _ = socket.set_send_buffer_size(SIP_SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let granted = socket.recv_buffer_size().unwrap_or(0);
    if granted < SIP_SOCKET_BUFFER / 2 {
        tracing::info!(
            granted,
            wanted = SIP_SOCKET_BUFFER,
            "SIP receive buffer capped by the kernel; raise net.core.rmem_max for high call rates"
        );
    }
    tokio::net::UdpSocket::from_std(socket.into())
}

/// The dialled number of an INVITE: the Request-URI user, else the To user.
fn dialled(req: &rsipstack::sip::Request) -> String {
    req.uri
        .user()
        .map(str::to_string)
        .or_else(|| {
            req.to_header()
                .ok()
                .and_then(|t| t.uri().ok())
                .and_then(|u| u.user().map(str::to_string))
        })
        .unwrap_or_default()
}

fn allow_headers() -> Vec<rsipstack::sip::Header> {
    vec![
        rsipstack::sip::Header::Allow(ALLOW.into()),
        rsipstack::sip::Header::Accept(
            "application/sdp, application/dtmf-relay, application/dtmf".into(),
        ),
    ]
}

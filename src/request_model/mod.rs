//! The requests' data model: a request's [`Head`], its thread's [`Message`]s, each
//! [`Change`] and the [`RequestStep`] the journal carries, with the words of [`types`].
//!
//! Plain data, below the store: the store journals and writes these steps, and the requests
//! service (`requests`, above the store) makes them; `requests` re-exports all of it.

pub mod attach;
pub mod types;

use serde::{Deserialize, Serialize};
pub use types::{Channel, Direction, Kind, Priority, Requester, Status};

/// A request's state: what the inbox lists and the SLA clocks read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// `support-261206-0007`.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Where it came from.
    pub channel: Channel,
    /// Ordinary or catalogue-card moderation.
    pub kind: Kind,
    /// How urgent.
    pub priority: Priority,
    /// Where it is.
    pub status: Status,
    /// `question`, `complaint`, `suggestion`, `application`.
    #[serde(default)]
    pub category: Option<String>,
    /// A topic from the tenant's classifier.
    #[serde(default)]
    pub topic: Option<String>,
    /// One line about it.
    pub subject: String,
    /// Who asked (personal data).
    pub requester: Requester,
    /// `uz` or `ru`: the language answers go out in.
    pub language: String,
    /// Username of who works it.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The intake key that made it.
    #[serde(default)]
    pub intake_key: Option<String>,
    /// Registered (Unix ms).
    pub registered_at_ms: i64,
    /// First answer to the customer (C4, C5).
    #[serde(default)]
    pub first_answer_at_ms: Option<i64>,
    /// Resolved (C6), cleared when it reopens.
    #[serde(default)]
    pub resolved_at_ms: Option<i64>,
    /// Closed.
    #[serde(default)]
    pub closed_at_ms: Option<i64>,
    /// Moderation (C7): when the card was last submitted (the 5 days start here).
    #[serde(default)]
    pub submitted_at_ms: Option<i64>,
    /// Times spent waiting for the customer.
    #[serde(default)]
    pub pauses: Vec<Pause>,
    /// Calls about it (`node:boot:call`).
    #[serde(default)]
    pub calls: Vec<String>,
    /// Forwarded to the chancellery (D15).
    #[serde(default)]
    pub forwarded_at_ms: Option<i64>,
    /// The chancellery's reference number for its answer.
    #[serde(default)]
    pub chancellery_ref: Option<String>,
    /// External id of the customer's last message (e-mail Message-ID), for threading replies.
    #[serde(default)]
    pub thread_ref: Option<String>,
    /// Every external id of the thread, oldest first (the `References` of a reply), at most
    /// [`MAX_REFERENCES`].
    #[serde(default)]
    pub references: Vec<String>,
    /// Messages so far (numbers the next one).
    #[serde(default)]
    pub messages: u32,
    /// SLA clocks already recorded as breached (`first_answer`, `resolution`, `moderation`).
    #[serde(default)]
    pub breaches: Vec<String>,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
    /// Grows with every step.
    pub version: i64,
}

/// How many external ids a head keeps for `References`.
pub const MAX_REFERENCES: usize = 20;

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Request({} {} {} {} v{})",
            self.id, self.channel, self.priority, self.status, self.version
        )
    }
}

/// A stretch of waiting for the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Started (Unix ms).
    pub from_ms: i64,
    /// Ended, or still waiting.
    pub to_ms: Option<i64>,
}

/// One message of a request's thread.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `<request>-m<n>`.
    pub uid: String,
    /// Which way.
    pub direction: Direction,
    /// By which channel (an outbound one goes by the request's channel or e-mail).
    pub channel: Channel,
    /// Username for outbound messages, notes and letters.
    #[serde(default)]
    pub author: Option<String>,
    /// The text.
    pub body: String,
    /// The e-mail Message-ID or `tg:<chat>:<message>`.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Files.
    #[serde(default)]
    pub attachments: Vec<attach::Attachment>,
    /// Where an outbound message or letter goes (an address), if not the requester.
    #[serde(default)]
    pub to: Option<String>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Message({} {} {} {} B)",
            self.uid,
            self.direction,
            self.channel,
            self.body.len()
        )
    }
}

/// What a step changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Registered, with the customer's first message if any.
    Opened {
        /// The first message.
        #[serde(default)]
        message: Option<Message>,
    },
    /// A message of the thread (inbound, outbound, note or letter).
    Message {
        /// The message.
        message: Message,
    },
    /// The status moved.
    Status {
        /// From.
        from: Status,
        /// To.
        to: Status,
    },
    /// Assigned (or unassigned).
    Assigned {
        /// Before.
        from: Option<String>,
        /// After.
        to: Option<String>,
    },
    /// Priority, category or topic set.
    Classified {
        /// Priority.
        priority: Priority,
        /// Category.
        category: Option<String>,
        /// Topic.
        topic: Option<String>,
    },
    /// A call linked to it.
    CallLinked {
        /// `node:boot:call`.
        call_uid: String,
    },
    /// The chancellery's answer recorded (D15).
    ChancelleryAnswer {
        /// Their reference number.
        reference: String,
    },
    /// A returned moderation card was resubmitted: a fresh 5 days (C7).
    Resubmitted,
    /// An outbound message was delivered or given up.
    Delivery {
        /// The message.
        message_uid: String,
        /// `sent` or `failed`.
        state: String,
        /// The server's answer when it failed.
        #[serde(default)]
        detail: Option<String>,
    },
    /// An SLA clock ran out (recorded once per clock).
    Breached {
        /// `first_answer`, `resolution`, `moderation`.
        clock: String,
    },
}

impl Change {
    /// The step's name in `request_steps.kind`.
    pub fn name(&self) -> &'static str {
        match self {
            Change::Opened { .. } => "opened",
            Change::Message { message } => match message.direction {
                Direction::In => "message_in",
                Direction::Out => "message_out",
                Direction::Note => "note",
                Direction::Letter => "letter",
            },
            Change::Status { .. } => "status",
            Change::Assigned { .. } => "assigned",
            Change::Classified { .. } => "classified",
            Change::CallLinked { .. } => "call_linked",
            Change::ChancelleryAnswer { .. } => "chancellery_answer",
            Change::Resubmitted => "resubmitted",
            Change::Delivery { .. } => "delivery",
            Change::Breached { .. } => "breached",
        }
    }

    /// The message this step adds to the thread, if any.
    pub fn message(&self) -> Option<&Message> {
        match self {
            Change::Opened { message } => message.as_ref(),
            Change::Message { message } => Some(message),
            _ => None,
        }
    }
}

/// One change of a request as the journal carries it: the new head and what changed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStep {
    /// The request after the change.
    pub head: Head,
    /// What changed.
    pub change: Change,
    /// Username, `customer`, `system`.
    pub actor: String,
    /// When (Unix ms).
    pub at_ms: i64,
}

impl std::fmt::Debug for RequestStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestStep({:?} {})", self.head, self.change.name())
    }
}

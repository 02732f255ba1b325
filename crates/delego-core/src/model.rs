//! The nouns of an outsourcing floor: clients and their users, requesters, workers,
//! engagements, work items, tasks and audit events.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::engine::ItemState;
use crate::id::{
    ApiTokenId, AttachmentId, AuditEventId, ClientId, EngagementId, MessageId, OfferId,
    RequesterId, TaskId, UserId, WorkItemId, WorkerId,
};
use crate::routing::{Channel, Exclusions, Relaxation};
use crate::values::{EmailAddress, Key, Language, Name, PhoneNumber, Priority, SkillLevel};

/// A customer company of the provider: the tenant boundary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub id: ClientId,
    pub name: Name,
    pub created_at: Timestamp,
}

/// A customer of a client (a caller, a claimant, a contact on a list). Requesters have no
/// account: they are reached by e-mail, a web form or a signed link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub id: RequesterId,
    pub client_id: ClientId,
    pub name: Option<Name>,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
}

/// Whether a worker can take work now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Presence {
    Available,
    Busy,
    /// Finishing the last task's after-work; takes new work again from `until`.
    WrapUp {
        until: Timestamp,
    },
    Break {
        reason: String,
    },
    #[default]
    Offline,
}

/// A person at the provider who does human steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worker {
    pub id: WorkerId,
    pub name: Name,
    pub skills: BTreeMap<Key, SkillLevel>,
    pub languages: BTreeSet<Language>,
    /// The clients whose work this worker may see.
    pub clearances: BTreeSet<ClientId>,
    /// Qualifications some steps require (e.g. `cfa`, `licensed_adjuster`).
    #[serde(default)]
    pub certifications: BTreeSet<Key>,
    /// Ethical walls: clients and engagements this worker must never see.
    #[serde(default)]
    pub exclusions: Exclusions,
    /// How many tasks the worker may hold at once on each channel; none on a channel
    /// that is not listed.
    pub capacity: BTreeMap<Channel, u32>,
    pub presence: Presence,
    /// Since when the worker has been free for more work: longest-idle routing reads it.
    #[serde(default)]
    pub idle_since: Option<Timestamp>,
    /// Seconds of after-work following each task, during which no new task is given.
    #[serde(default)]
    pub wrap_up_secs: u32,
    /// The team the worker belongs to: metrics add up per team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Key>,
}

impl Worker {
    pub fn capacity_on(&self, channel: Channel) -> u32 {
        self.capacity.get(&channel).copied().unwrap_or(0)
    }
}

/// A client's contract for one service, pinned to one version of its definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engagement {
    pub id: EngagementId,
    pub client_id: ClientId,
    pub name: Name,
    pub service_key: Key,
    pub service_version: u32,
    #[serde(default)]
    pub settings: EngagementSettings,
    pub created_at: Timestamp,
}

/// How an engagement tunes its pinned process without a new version of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngagementSettings {
    /// Its share of workers it shares with other engagements, relative to theirs
    /// (1 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// A timer per wait step, replacing the definition's: e.g. how long a ticket waits
    /// for the requester before it closes itself. Applies to waits begun after the change.
    #[serde(default)]
    pub wait_timers: BTreeMap<Key, jiff::SignedDuration>,
    /// The business hours its SLA clocks and step deadlines count in; always open if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<crate::calendar::BusinessCalendar>,
    /// SLA targets replacing the service's defaults, each one only where set.
    #[serde(default, skip_serializing_if = "crate::sla::SlaOverrides::is_empty")]
    pub sla: crate::sla::SlaOverrides,
    /// Cells replacing those of the service's priority matrix: every impact × urgency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_matrix: Option<crate::definition::MatrixCells>,
    /// Its e-mail channel, if requesters reach it by mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<MailSettings>,
}

/// An engagement's e-mail channel: the address requesters write to and replies come
/// from, and how a mail becomes an item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// Lower-cased; no other engagement has it.
    pub address: EmailAddress,
    /// The name replies come from, e.g. `ACME Help Desk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
    /// Appended to every mail below a `-- ` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Whether mail from an address the client has never had as a requester opens an
    /// item; when not, it is kept aside for someone to look at.
    #[serde(default)]
    pub open_from_unknown: bool,
    /// The intake field a mail's subject goes to.
    #[serde(default = "MailSettings::default_subject_field")]
    pub subject_field: Key,
    /// The intake field a mail's text goes to.
    #[serde(default = "MailSettings::default_body_field")]
    pub body_field: Key,
    /// Intake values of every item a mail opens, for the fields a mail does not give
    /// (an IT ticket's type, impact and urgency).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub defaults: Map<String, Json>,
    /// The most messages taken in from one sender in an hour; more are kept aside, which
    /// stops a loop with a misconfigured autoresponder.
    #[serde(default = "MailSettings::default_hourly_limit")]
    pub hourly_limit: u32,
}

impl MailSettings {
    pub const DEFAULT_HOURLY_LIMIT: u32 = 20;

    /// Mail at `address`, every other setting its default.
    pub fn new(address: EmailAddress) -> Self {
        Self {
            address,
            from_name: None,
            signature: None,
            open_from_unknown: false,
            subject_field: Self::default_subject_field(),
            body_field: Self::default_body_field(),
            defaults: Map::new(),
            hourly_limit: Self::DEFAULT_HOURLY_LIMIT,
        }
    }

    fn default_subject_field() -> Key {
        Key::parse("subject").expect("a valid key")
    }

    fn default_body_field() -> Key {
        Key::parse("description").expect("a valid key")
    }

    fn default_hourly_limit() -> u32 {
        Self::DEFAULT_HOURLY_LIMIT
    }
}

/// One entry of a register: reference data an item's field may name (an asset of the
/// client's asset register, an insurance policy, a number not to call). An entry belongs
/// to a client, or to no client: a provider-wide entry, which every client's lookups fall
/// back to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterEntry {
    pub register: Key,
    pub client_id: Option<ClientId>,
    /// As given, trimmed; compared without regard to case (see [`RegisterEntry::match_key`]).
    pub key: String,
    pub data: Map<String, Json>,
    pub updated_at: Timestamp,
}

impl RegisterEntry {
    /// The longest key, in characters.
    pub const MAX_KEY_CHARS: usize = 200;

    /// An entry key as given: trimmed, 1 to 200 characters, without control characters.
    pub fn parse_key(raw: &str) -> Result<String, crate::values::InvalidValue> {
        let key = raw.trim();
        let chars = key.chars().count();
        if chars == 0 || chars > Self::MAX_KEY_CHARS || key.chars().any(char::is_control) {
            return Err(crate::values::InvalidValue(format!(
                "a key is 1 to {} characters without control characters",
                Self::MAX_KEY_CHARS
            )));
        }
        Ok(key.to_owned())
    }

    /// The form keys are compared in: trimmed and lower-cased, so that `LAP-0042` and
    /// ` lap-0042 ` name one asset. Computed here rather than by SQL `lower()`, which the
    /// databases do differently outside ASCII.
    pub fn match_key(key: &str) -> String {
        key.trim().to_lowercase()
    }
}

/// One unit of work: a ticket, a contact to call, a claim, a document batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    /// The definition version the item started on; it finishes on the same one.
    pub service_key: Key,
    pub service_version: u32,
    pub requester_id: Option<RequesterId>,
    pub state: ItemState,
    /// Incremented by every change: the optimistic-concurrency token (the ETag).
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WorkItem {
    pub fn id(&self) -> WorkItemId {
        self.state.id
    }
}

/// One human step of one item, waiting for or held by one worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub item_id: WorkItemId,
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    pub step: Key,
    /// Which entry into the step this task serves: a stale submission names an old one.
    pub visit: u32,
    pub skill: Key,
    pub min_level: SkillLevel,
    pub language: Option<Language>,
    #[serde(default)]
    pub certifications: BTreeSet<Key>,
    #[serde(default)]
    pub channel: Channel,
    /// Requirements that relax while the task waits.
    #[serde(default)]
    pub relax: Vec<Relaxation>,
    /// The worker who must not take it (four eyes: the author of the work under review).
    pub excluded_worker: Option<WorkerId>,
    /// Kept for this worker (who did the step before) until the instant.
    pub reserved_for: Option<(WorkerId, Timestamp)>,
    pub priority: Priority,
    pub queued_at: Timestamp,
    pub due_at: Option<Timestamp>,
    /// Its place in line (see [`crate::routing::serve_by`]).
    pub serve_by: Timestamp,
    pub status: TaskStatus,
    /// While claimed: when the claim lapses unless the holder renews it.
    #[serde(default)]
    pub lease_until: Option<Timestamp>,
    /// Push routing: how long an offered worker has to accept (`None`: pulled only).
    #[serde(default)]
    pub offer_timeout: Option<jiff::SignedDuration>,
    /// Which eligible worker is offered the task first.
    #[serde(default)]
    pub worker_order: crate::routing::WorkerOrder,
    /// When it may be taken, for a step with hours (calling hours in the contact's zone).
    #[serde(default)]
    pub window: Option<Window>,
}

/// The stretch of time within which a task may be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub opens: Timestamp,
    pub closes: Timestamp,
}

impl Window {
    pub fn contains(&self, at: Timestamp) -> bool {
        self.opens <= at && at < self.closes
    }
}

/// A task offered to one worker, who accepts or rejects it before it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub task: Task,
    pub worker_id: WorkerId,
    pub offered_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Claimed {
        worker: WorkerId,
        at: Timestamp,
    },
    Done {
        worker: WorkerId,
        outcome: Key,
        at: Timestamp,
    },
    Cancelled,
}

impl TaskStatus {
    pub fn name(&self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Claimed { .. } => "claimed",
            TaskStatus::Done { .. } => "done",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// The engine or a background job.
    System,
    /// A signed-in person or an API token acting for one.
    User(UserId),
    Worker(WorkerId),
    Requester(RequesterId),
    /// Someone at the command line, by the name they gave.
    Operator(String),
}

/// An append-only record of one change, written in the same transaction as the change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: AuditEventId,
    /// `None` for provider-level changes such as a new worker.
    pub client_id: Option<ClientId>,
    pub item_id: Option<WorkItemId>,
    pub actor: Actor,
    /// What happened, e.g. `item.created`, `step.entered`, `task.claimed`.
    pub action: String,
    pub detail: Map<String, Json>,
    pub at: Timestamp,
}

/// A machine credential acting as its user. Only a hash of the secret is stored; the
/// secret is shown once, at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub user_id: UserId,
    pub name: Name,
    /// The first characters of the secret, so a person can tell tokens apart.
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A stored file, scoped like the item it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    pub client_id: ClientId,
    pub item_id: Option<WorkItemId>,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the content, for integrity checks and de-duplication.
    pub sha256: String,
    pub uploaded_by: Actor,
    pub created_at: Timestamp,
}

/// Who may read a message on an item's thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Seen by the requester and the client.
    Public,
    /// Provider staff only.
    Internal,
}

/// One entry of an item's conversation: a public reply, an internal note or a
/// requester's message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub item_id: WorkItemId,
    pub client_id: ClientId,
    pub author: Actor,
    pub visibility: Visibility,
    pub body: String,
    pub attachments: Vec<AttachmentId>,
    pub created_at: Timestamp,
    /// The duplicate this message was written on before that item was merged into this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<WorkItemId>,
    /// The history an e-mail quoted below the new text: kept, shown folded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted: Option<String>,
}

/// A requester's satisfaction rating of a finished item, from 1 (bad) to 5 (great).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsatResponse {
    pub item_id: WorkItemId,
    pub rating: u8,
    pub comment: Option<String>,
    pub at: Timestamp,
}

/// A message in a user's in-app inbox: an SLA escalation, say.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: crate::id::NotificationId,
    pub user_id: UserId,
    pub item_id: Option<WorkItemId>,
    /// `sla.warning` or `sla.breached`.
    pub kind: String,
    pub title: String,
    pub detail: serde_json::Map<String, serde_json::Value>,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}

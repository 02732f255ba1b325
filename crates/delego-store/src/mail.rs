//! The e-mail channel's records: which messages came in to an engagement and what became
//! of them (so a message delivered twice is handled once, and a reply finds its item by
//! its threading ids), the outgoing mail queue that survives a restart, and the messages
//! kept aside because they could not be read or taken in. Implemented for both backends
//! by `sql_mail.rs`.

use async_trait::async_trait;
use delego_core::id::{AttachmentId, ClientId, EngagementId, WorkItemId};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use crate::Result;

/// What became of an inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Being taken in: claimed by one node (see [`Mail::claim_inbound`]).
    Pending,
    /// It opened a new item.
    Opened,
    /// It went on an existing item's thread as the requester's reply.
    Replied,
    /// A delivery report: recorded on the item whose mail bounced.
    Bounce,
    /// An automatic message (an out-of-office reply) noted on its item, never answered.
    Automatic,
    /// Kept aside: it still counts towards its sender's hourly limit, so that a loop stays
    /// stopped while it goes on.
    KeptAside,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Opened => "opened",
            Self::Replied => "replied",
            Self::Bounce => "bounce",
            Self::Automatic => "automatic",
            Self::KeptAside => "kept_aside",
        }
    }
}

/// An inbound message taken in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMail {
    pub engagement_id: EngagementId,
    /// Its `Message-ID`, or a digest of its bytes when it has none.
    pub message_id: String,
    /// The item it opened or went on; none for a bounce of mail no item sent.
    pub item_id: Option<WorkItemId>,
    /// Lower-cased.
    pub from_address: String,
    pub disposition: Disposition,
    /// The sender asked for no automatic replies (`X-Auto-Response-Suppress`).
    pub no_auto_reply: bool,
}

/// A mail to queue for an item's requester.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutboundMail {
    pub item_id: WorkItemId,
    /// Without angle brackets; unique.
    pub message_id: String,
    pub to_address: String,
    pub to_name: Option<String>,
    pub subject: String,
    /// The body; the engagement's signature is added when it is sent.
    pub text: String,
    pub in_reply_to: Option<String>,
    /// Oldest first.
    pub references: Vec<String>,
    /// An acknowledgement or another notice nobody wrote: marked `Auto-Submitted`.
    pub automatic: bool,
    /// Files of the item sent with it (those of an agent's reply).
    pub attachments: Vec<AttachmentId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MailStatus {
    /// Waiting for its (next) attempt.
    Queued,
    Sent,
    /// Refused for good by the relay, or out of attempts.
    Failed,
    /// Sent, then reported undeliverable by the requester's side.
    Bounced,
}

impl MailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Bounced => "bounced",
        }
    }
}

/// A queued or delivered mail.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OutboundMail {
    pub id: Uuid,
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    pub item_id: WorkItemId,
    pub message_id: String,
    pub to_address: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub text: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub automatic: bool,
    pub status: MailStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When a queued mail is next tried.
    pub next_attempt_at: Option<Timestamp>,
    /// The last failure or the bounce, as the relay or the report worded it.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub attachments: Vec<AttachmentId>,
}

/// A message kept aside: unreadable, from an unknown sender, over a sender's rate limit,
/// or automatic with no item to note it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKeptAside {
    pub engagement_id: Option<EngagementId>,
    pub client_id: Option<ClientId>,
    /// `maildir` or `api`.
    pub source: String,
    /// Why, in words for the admin reading the list.
    pub reason: String,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub raw: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeptAside {
    pub id: Uuid,
    pub engagement_id: Option<EngagementId>,
    pub client_id: Option<ClientId>,
    pub source: String,
    pub reason: String,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    /// The message's size in bytes.
    pub size: u64,
    pub received_at: Timestamp,
}

#[async_trait]
pub trait Mail: Send + Sync {
    /// Claims a message for taking in, before anything is done with it: `true` for the one
    /// caller that may go on, `false` when it came in before (a duplicate) or another node
    /// is taking it in now. A claim older than `stale_after` that was never recorded (its
    /// node died midway) may be claimed again. Claimed messages count towards their
    /// sender's hourly limit.
    async fn claim_inbound(
        &self,
        engagement: EngagementId,
        message_id: &str,
        from_address: &str,
        stale_after: SignedDuration,
    ) -> Result<bool>;

    /// Records what became of an inbound message, claimed or not, at the store's now,
    /// audited on its item (`mail.received`). A message already recorded keeps its first
    /// record: the call changes nothing and answers `false`.
    async fn record_inbound(&self, mail: InboundMail) -> Result<bool>;

    /// The engagement's item whose reference (the last 8 hex digits of its id, as
    /// `WorkItemId::reference` gives it) is `reference`.
    async fn item_by_reference(
        &self,
        engagement: EngagementId,
        reference: &str,
    ) -> Result<Option<WorkItemId>>;

    /// The item of the engagement that a mail with one of these ids (newest first) came in
    /// to or went out from; the first id that names one wins.
    async fn thread_item(
        &self,
        engagement: EngagementId,
        ids: &[String],
    ) -> Result<Option<WorkItemId>>;

    /// How many messages from the address came in to the engagement at or after `since`
    /// (a sender's rate limit).
    async fn inbound_from_since(
        &self,
        engagement: EngagementId,
        from_address: &str,
        since: Timestamp,
    ) -> Result<u64>;

    /// The message ids of an item's mail, oldest first: what it sent and what people wrote
    /// to it (not bounces or automatic replies), the `References` of its next reply.
    async fn item_message_ids(&self, item: WorkItemId) -> Result<Vec<String>>;

    /// Whether the latest message a person wrote to the item asked for no automatic
    /// replies: then its notices are not mailed.
    async fn refuses_auto_replies(&self, item: WorkItemId) -> Result<bool>;

    /// Queues a mail for its first attempt now; the item's client and engagement are the
    /// mail's. An unknown item is `NotFound`.
    async fn queue_mail(&self, mail: NewOutboundMail) -> Result<OutboundMail>;

    /// Up to `limit` queued mails whose attempt is due, oldest first, each counted as an
    /// attempt and put off by `lease`, so that no other node sends it meanwhile. A node
    /// that dies mid-send leaves it to be tried again when the lease ends.
    async fn take_due_mail(&self, limit: u32, lease: SignedDuration) -> Result<Vec<OutboundMail>>;

    /// The relay took the mail.
    async fn mail_sent(&self, id: Uuid) -> Result<()>;

    /// An attempt failed: the mail is tried again at `retry_at`, or with `None` it has
    /// failed for good, audited on its item (`mail.failed`).
    async fn mail_failed(&self, id: Uuid, error: &str, retry_at: Option<Timestamp>) -> Result<()>;

    /// The outbound mail with this message id, if any.
    async fn outbound_mail(&self, message_id: &str) -> Result<Option<OutboundMail>>;

    /// A delivery report says the mail did not arrive: audited on its item
    /// (`mail.bounced`) with the report's words.
    async fn mail_bounced(&self, id: Uuid, detail: &str) -> Result<()>;

    /// The item's outbound mail, oldest first.
    async fn item_mail(&self, item: WorkItemId) -> Result<Vec<OutboundMail>>;

    /// Keeps a message aside with the reason, never losing it.
    async fn keep_aside(&self, message: NewKeptAside) -> Result<KeptAside>;

    /// Messages kept aside, newest first; of one client only, or (with `None`) all of them,
    /// including those of no engagement.
    async fn kept_aside(&self, client: Option<ClientId>, limit: u32) -> Result<Vec<KeptAside>>;

    /// One message kept aside with its bytes; an unknown id is `NotFound`.
    async fn kept_aside_message(&self, id: Uuid) -> Result<(KeptAside, Vec<u8>)>;
}

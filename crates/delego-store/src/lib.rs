//! Persistence for Delego: the [`Store`] trait and its two implementations, embedded
//! SQLite (one node) and PostgreSQL (several nodes).
//!
//! Architecture invariants:
//! - only this crate knows SQL;
//! - every change to a work item, and the audit event that records it, commit in one
//!   transaction;
//! - both backends pass the same conformance suite (`tests/conformance.rs`).
//!
//! Both backends share one implementation of the store logic (`sql.rs`), instantiated for
//! each database type; the dialects differ only in a handful of statements.

use std::sync::Arc;

use async_trait::async_trait;
use delego_core::clock::Clock;
use delego_core::definition::{FieldError, Problem, ServiceDefinition};
use delego_core::engine::{Event, Rejection};
use delego_core::id::{
    AttachmentId, ClientId, EngagementId, RequesterId, TaskId, WorkItemId, WorkerId,
};
use delego_core::model::{
    Actor, AuditEvent, Client, CsatResponse, Engagement, EngagementSettings, Message, Presence,
    Task, Visibility, WorkItem, Worker,
};
use delego_core::values::{Key, Name, Priority};
use serde_json::{Map, Value as Json};

// `sql` defines the macro the backends instantiate, so it comes first.
#[macro_use]
mod sql;
#[macro_use]
mod sql_directory;
#[macro_use]
mod sql_registers;
#[macro_use]
mod sql_mail;
mod directory;
mod group;
mod lock;
mod mail;
mod postgres;
mod registers;
mod rows;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use directory::{Directory, NewUser, ServiceVersion};
pub use mail::{
    Disposition, InboundMail, KeptAside, Mail, MailStatus, NewKeptAside, NewOutboundMail,
    OutboundMail,
};
pub use postgres::{DEFAULT_MAX_CONNECTIONS, PgStore};
pub use registers::{NewEntry, Registers};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller's version is stale, or the object changed under it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The engine refused the change (stale task, bad outcome, four eyes, …).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("the data has {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("the service definition has {} problem(s)", .0.len())]
    InvalidDefinition(Vec<Problem>),
    /// Another process holds the SQLite database.
    #[error("{0}")]
    Locked(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not decode: the database was changed outside Delego.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The longest window [`Store::metric_facts`] reads, so a metrics request stays bounded.
pub const MAX_METRICS_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(31 * 24);

/// Offers a worker may let lapse in a row before being put on a break.
pub const MISSED_OFFERS_BEFORE_BREAK: i64 = 3;

/// A new work item as submitted.
#[derive(Clone, Debug)]
pub struct NewItem {
    pub engagement_id: EngagementId,
    pub data: Map<String, Json>,
    pub priority: Priority,
    pub requester_id: Option<RequesterId>,
    /// The same key on the same client returns the first item instead of making a twin.
    pub idempotency_key: Option<String>,
}

/// The result of a create that may have been a replay of an earlier one.
#[derive(Clone, Debug)]
pub struct Created<T> {
    pub value: T,
    /// False when the idempotency key matched an existing object.
    pub created: bool,
}

/// Which items to list. `None` filters nothing.
#[derive(Clone, Debug, Default)]
pub struct ItemFilter {
    pub client_id: Option<ClientId>,
    /// Only items of these clients (a caller's scope).
    pub client_ids: Option<Vec<ClientId>>,
    pub engagement_id: Option<EngagementId>,
    /// `active`, `waiting`, `completed` or `cancelled`.
    pub status: Option<String>,
    /// Text in the item's `subject`, or 8 or more hex digits of its id (the reference
    /// people read off a page). Case is ignored for ASCII letters, and for others where the
    /// database's `lower()` knows them (not on SQLite).
    pub text: Option<String>,
    /// Items after this one in the list order (newest first): the cursor of the last page.
    pub after: Option<WorkItemId>,
    pub limit: u32,
}

/// A message to add to an item's thread.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub item_id: WorkItemId,
    pub author: Actor,
    pub visibility: Visibility,
    pub body: String,
    pub attachments: Vec<AttachmentId>,
    /// The engine event this message is, if the item waits for it (a requester's reply
    /// is `requester_reply`): the item moves on in the same transaction.
    pub event: Option<Key>,
    /// The history an e-mail quoted below the new text, kept but shown folded.
    pub quoted: Option<String>,
}

/// How long a node has to deliver the outbox messages it took.
pub const OUTBOX_LEASE: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// A message the engine or an agent queued for the requester.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub id: uuid::Uuid,
    pub client_id: ClientId,
    pub item_id: WorkItemId,
    /// `{"kind": "notify_requester", "template": …}`, `{"kind": "csat_request"}` or
    /// `{"kind": "reply", "message": …}`.
    pub message: Json,
}

/// One queue (an engagement's step) at a glance, read from counters kept with every task
/// change rather than counted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    pub engagement_id: EngagementId,
    pub step: String,
    /// Tasks waiting for a worker.
    pub open: u64,
    /// Tasks held by workers.
    pub held: u64,
    /// When the longest-waiting open task was queued.
    pub oldest_queued_at: Option<jiff::Timestamp>,
    /// Open or held tasks past their SLA deadline (to the minute).
    pub breached: u64,
    /// Open or held tasks due within the risk window.
    pub at_risk: u64,
}

/// Both items of a merge, as it left them.
#[derive(Clone, Debug)]
pub struct Merged {
    pub duplicate: WorkItem,
    pub survivor: WorkItem,
}

/// An item's place among linked items: the parent it follows (a major incident) and the
/// children that follow it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ItemLinks {
    pub parent: Option<WorkItemId>,
    /// Oldest first.
    pub children: Vec<LinkedItem>,
}

/// A linked item at a glance.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LinkedItem {
    pub id: WorkItemId,
    /// `active`, `waiting`, `completed` or `cancelled`.
    pub status: String,
}

/// A worker's task handed out by a claim.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub task: Task,
    pub item: WorkItem,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Answers when the database does: for readiness checks.
    async fn ping(&self) -> Result<()>;

    /// Stores a version of a service definition. Publishing the same text again is a no-op;
    /// a different text under an existing key and version is a conflict: published versions
    /// never change, so items in flight keep their process.
    async fn publish_service(&self, source: &str) -> Result<Arc<ServiceDefinition>>;
    async fn service(&self, key: &Key, version: u32) -> Result<Arc<ServiceDefinition>>;

    async fn create_client(&self, name: Name, actor: &Actor) -> Result<Client>;
    async fn client(&self, id: ClientId) -> Result<Client>;
    async fn clients(&self) -> Result<Vec<Client>>;

    async fn create_worker(&self, worker: &Worker, actor: &Actor) -> Result<()>;
    async fn worker(&self, id: WorkerId) -> Result<Worker>;
    async fn set_presence(&self, id: WorkerId, presence: Presence, actor: &Actor)
    -> Result<Worker>;

    async fn create_engagement(
        &self,
        client_id: ClientId,
        name: Name,
        service_key: &Key,
        service_version: u32,
        settings: EngagementSettings,
        actor: &Actor,
    ) -> Result<Engagement>;
    async fn engagement(&self, id: EngagementId) -> Result<Engagement>;
    /// Replaces an engagement's settings; items already waiting keep their timers.
    async fn set_engagement_settings(
        &self,
        id: EngagementId,
        settings: EngagementSettings,
        actor: &Actor,
    ) -> Result<Engagement>;

    /// Validates the intake data (register fields must name entries of the client's
    /// registers), runs the engine to the item's first resting step and stores the item,
    /// its tasks, timers, messages and audit events in one transaction.
    async fn create_item(&self, new: NewItem, actor: &Actor) -> Result<Created<WorkItem>>;
    async fn item(&self, id: WorkItemId) -> Result<WorkItem>;
    async fn items(&self, filter: &ItemFilter) -> Result<Vec<WorkItem>>;
    /// Changes some intake fields, if the item is still at `expected_version`. A changed
    /// impact or urgency sets the priority anew by the service's priority matrix.
    async fn update_item_data(
        &self,
        id: WorkItemId,
        expected_version: i64,
        changes: Map<String, Json>,
        actor: &Actor,
    ) -> Result<WorkItem>;
    /// Applies an engine event, if the item is still at `expected_version` (when given).
    async fn apply_event(
        &self,
        id: WorkItemId,
        expected_version: Option<i64>,
        event: Event,
        actor: &Actor,
    ) -> Result<WorkItem>;
    /// The item's audit trail, oldest first.
    async fn item_history(&self, id: WorkItemId) -> Result<Vec<AuditEvent>>;
    /// Links an unfinished item to an unfinished parent of the same client (a major
    /// incident), or unlinks it (`None`). When a parent completes, its unfinished children
    /// follow with its resolution in the same transaction. Links are one level deep: a
    /// parent has no parent and a child no children (`Invalid`, field `parent`, as is the
    /// item itself); a parent of another client is `NotFound`, a finished parent a
    /// `Conflict`. The change bumps the item's version and is audited on both items
    /// (`item.linked` and `item.child_linked`, or `item.unlinked` and `item.child_unlinked`).
    async fn set_parent(
        &self,
        id: WorkItemId,
        parent: Option<WorkItemId>,
        actor: &Actor,
    ) -> Result<ItemLinks>;
    /// The item's parent and children.
    async fn item_links(&self, id: WorkItemId) -> Result<ItemLinks>;

    /// Atomically hands the worker the best task it is eligible for, if any.
    async fn claim_next_task(&self, worker_id: WorkerId) -> Result<Option<Claimed>>;
    /// Completes a held task with an outcome and the step form's values. A value of an
    /// `article` field that names no article of the item's engagement is `Invalid`.
    async fn submit_task(
        &self,
        task_id: TaskId,
        worker_id: WorkerId,
        outcome: Key,
        data: Map<String, Json>,
    ) -> Result<WorkItem>;
    /// Completes a held task as [`Store::submit_task`] does, after writing `article` to the
    /// knowledge base of the item's engagement and naming it in the step form's one
    /// `article` field, all in one transaction: the item's data says which article
    /// resolved it, and a refused submission leaves no article behind. A form without one
    /// article field, or an article chosen as well, is `Invalid` (field `new_article`).
    async fn submit_task_with_article(
        &self,
        task_id: TaskId,
        worker_id: WorkerId,
        outcome: Key,
        data: Map<String, Json>,
        article: delego_core::knowledge::ArticleDraft,
    ) -> Result<WorkItem>;
    /// Hands a held task back; it keeps its place in line.
    async fn release_task(&self, task_id: TaskId, worker_id: WorkerId) -> Result<Task>;
    /// How long a claim holds before it must be renewed (5 minutes unless set).
    fn set_task_lease(&self, lease: jiff::SignedDuration);
    /// Extends the holder's lease on a task by the lease duration from now.
    async fn renew_lease(&self, task_id: TaskId, worker_id: WorkerId) -> Result<Task>;
    /// Puts tasks whose lease lapsed back in their place in line; returns how many.
    async fn expire_leases(&self) -> Result<usize>;
    /// Withdraws the tasks whose hours closed before anyone took them, moving each item
    /// where its step sends it after hours; returns how many.
    async fn close_after_hours(&self) -> Result<usize>;
    /// Puts every held task back in line, kept for its holder for `keep_for`: a single
    /// node shutting down does this so its work is not stuck until the leases lapse.
    async fn hand_back_held_tasks(&self, keep_for: jiff::SignedDuration) -> Result<usize>;
    /// Changes whenever tasks may have become claimable, on this node or (PostgreSQL)
    /// any node: waiting workers watch it instead of polling.
    fn wake_ups(&self) -> tokio::sync::watch::Receiver<u64>;
    async fn item_tasks(&self, id: WorkItemId) -> Result<Vec<Task>>;
    /// The tasks a worker holds now, oldest claim first.
    async fn held_tasks(&self, worker: WorkerId) -> Result<Vec<Task>>;
    /// The item's SLA clocks against its engagement's targets and calendar, now.
    async fn sla_status(&self, item: &WorkItem) -> Result<Vec<delego_core::sla::SlaStatus>>;
    /// The tasks a worker holds, per channel.
    async fn worker_load(&self, worker: WorkerId) -> Result<delego_core::routing::Load>;
    async fn task(&self, id: TaskId) -> Result<Task>;
    /// Records that the holder began work on the task (handle time counts from here).
    async fn start_task(&self, task_id: TaskId, worker_id: WorkerId) -> Result<Task>;

    /// Adds a message to an item's thread; a public reply from the provider is queued for
    /// delivery to the requester.
    async fn add_message(&self, message: NewMessage) -> Result<(Message, WorkItem)>;
    /// The thread, oldest first; internal notes only when asked for.
    async fn messages(&self, item: WorkItemId, include_internal: bool) -> Result<Vec<Message>>;

    /// Merges `duplicate` into `survivor` in one transaction: the duplicate ends cancelled
    /// as `merged`, pointing to the survivor (its tasks withdrawn, its requester's notice
    /// queued); its messages, keeping author and time and marked as coming from it, and its
    /// attachments move to the survivor, which gets an internal note by `actor` naming the
    /// duplicate's reference. Both are audited (`item.merged`, `item.merged_in`). Refuses
    /// the same item twice or items of two clients (`Invalid`, field `into`) and a finished
    /// item (`Rejected`).
    async fn merge_items(
        &self,
        duplicate: WorkItemId,
        survivor: WorkItemId,
        actor: &Actor,
    ) -> Result<Merged>;

    /// Records a requester's rating of a finished item; a second rating is a conflict.
    async fn record_csat(
        &self,
        item: WorkItemId,
        rating: u8,
        comment: Option<String>,
    ) -> Result<CsatResponse>;
    async fn csat(&self, item: WorkItemId) -> Result<Option<CsatResponse>>;

    /// Takes up to `limit` undelivered outbox messages for [`OUTBOX_LEASE`], so that no
    /// other node takes them meanwhile. Each stays in the outbox until the taker says it
    /// is delivered: one taken by a node that died is taken again when its lease ends.
    async fn take_outgoing(&self, limit: u32) -> Result<Vec<Outgoing>>;
    /// An outbox message taken is delivered: it is never taken again.
    async fn outgoing_delivered(&self, id: uuid::Uuid) -> Result<()>;

    /// Offers open push tasks to their best available workers (one pending offer per
    /// worker), expiring lapsed offers first; returns how many offers were made.
    async fn dispatch_offers(&self) -> Result<usize>;
    /// The worker's offers that are still open.
    async fn pending_offers(&self, worker: WorkerId) -> Result<Vec<delego_core::model::Offer>>;
    /// Accepts (claiming the task) or rejects an offer; the next worker is offered a
    /// rejected task on the next dispatch.
    async fn answer_offer(
        &self,
        offer: delego_core::id::OfferId,
        worker: WorkerId,
        accept: bool,
    ) -> Result<Option<Claimed>>;

    /// Every queue with work in it, at `now`: tasks due within `risk_window` are at risk.
    async fn queues(&self, risk_window: jiff::SignedDuration) -> Result<Vec<QueueStats>>;
    /// The waiting and held tasks of one queue (an engagement's step), most urgent first:
    /// by deadline (none last), then serve-by.
    async fn queue_tasks(&self, engagement: EngagementId, step: &Key) -> Result<Vec<Task>>;
    /// How many tasks each worker holds now; workers holding none are left out.
    async fn tasks_in_hand(&self) -> Result<std::collections::BTreeMap<WorkerId, u64>>;
    /// Folds the counters' ledger into their totals; returns how many changes it folded.
    /// Every node runs it now and then; only one compacts at a time.
    async fn compact_queue_counts(&self) -> Result<usize>;

    /// Looks at the SLA clocks of the items due a look (changed since, or reaching a
    /// warning share or a target by now) and makes the escalations their engagement's
    /// targets call for, once each. Returns how many items escalated.
    async fn escalate_sla(&self) -> Result<usize>;
    /// Items the engagement received in each of `count` intervals of `interval` from
    /// `from`: the history a forecast reads.
    async fn arrivals(
        &self,
        engagement: EngagementId,
        from: jiff::Timestamp,
        interval: jiff::SignedDuration,
        count: usize,
    ) -> Result<Vec<u32>>;
    /// The user's inbox, newest first.
    async fn notifications(
        &self,
        user: delego_core::id::UserId,
        unread_only: bool,
        limit: u32,
    ) -> Result<Vec<delego_core::model::Notification>>;
    /// Marks one of the user's notifications read (again is fine); another user's is not
    /// found.
    async fn read_notification(
        &self,
        user: delego_core::id::UserId,
        id: delego_core::id::NotificationId,
    ) -> Result<delego_core::model::Notification>;
    /// Recounts the queues from the tasks and lists every counter that disagrees: empty
    /// when the counters are right (they are kept in the same transactions as the tasks).
    async fn verify_queue_counts(&self) -> Result<Vec<String>>;

    /// The facts operational metrics are computed from, for the window `[from, to)` (at
    /// most [`MAX_METRICS_WINDOW`] long), of one client or all. Presence is read only for
    /// all clients: a worker's time belongs to no one client.
    async fn metric_facts(
        &self,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
        client: Option<ClientId>,
    ) -> Result<delego_core::metrics::Facts>;

    /// Fires every timer due by now; returns how many items moved.
    async fn fire_due_timers(&self) -> Result<usize>;

    /// Adds an article to an engagement's knowledge base. Audited as `article.created`.
    async fn create_article(
        &self,
        engagement: EngagementId,
        draft: delego_core::knowledge::ArticleDraft,
        actor: &Actor,
    ) -> Result<delego_core::knowledge::Article>;
    async fn article(
        &self,
        id: delego_core::id::ArticleId,
    ) -> Result<delego_core::knowledge::Article>;
    /// The engagement's articles whose title, body or tags contain every word of `query`
    /// (any case; all articles when it is blank), most recently updated first, at most
    /// `limit` (1–200).
    async fn articles(
        &self,
        engagement: EngagementId,
        query: &str,
        limit: u32,
    ) -> Result<Vec<delego_core::knowledge::Article>>;
    /// Replaces an article's title, body and tags, if it is still at `expected_version`
    /// (when given; else a `Conflict`). Audited as `article.updated`.
    async fn update_article(
        &self,
        id: delego_core::id::ArticleId,
        draft: delego_core::knowledge::ArticleDraft,
        expected_version: Option<i64>,
        actor: &Actor,
    ) -> Result<delego_core::knowledge::Article>;
}

/// Everything a backend offers: the work engine's store, the directory of people and
/// files, the registers and the mail records, behind one trait object.
pub trait Backend: Store + Directory + Registers + Mail {}

impl<T: Store + Directory + Registers + Mail> Backend for T {}

/// A short fingerprint of the PostgreSQL migrations: test harnesses name their migrated
/// template database after it, so a schema change gets a fresh template.
pub fn postgres_migrations_fingerprint() -> String {
    let checksums = postgres::MIGRATOR
        .iter()
        .flat_map(|m| m.checksum.iter().copied());
    format!("{:016x}", delego_core::hashing::fnv1a(checksums))
}

/// Opens the store a database URL names: `sqlite://PATH` (or a plain path) or
/// `postgres://…`. Migrations are applied on open. `max_connections` bounds a PostgreSQL
/// node's pool; SQLite's pool is fixed, since it has one writer anyway.
pub async fn open(
    url: &str,
    clock: Arc<dyn Clock>,
    max_connections: u32,
) -> Result<Arc<dyn Backend>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PgStore::open_with_pool(url, clock, max_connections).await?,
        ))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Arc::new(SqliteStore::open(path.as_ref(), clock).await?))
    }
}

//! The store logic both backends share, written once and instantiated per database type by
//! [`impl_store!`]. SQL here is the common dialect of SQLite and PostgreSQL (`$n`
//! placeholders, `RETURNING`, `ON CONFLICT`, partial indexes); what differs is passed in:
//! how a write transaction begins, row locking, and how a JSON list becomes a set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use delego_core::definition::ServiceDefinition;
use delego_core::id::EngagementId;
use delego_core::model::EngagementSettings;
use delego_core::values::Key;

/// Parsed service definitions by key and version. Published versions never change, so an
/// entry never goes stale.
#[derive(Default)]
pub struct ServiceCache {
    published: Mutex<HashMap<(Key, u32), Arc<ServiceDefinition>>>,
    /// Definitions as an engagement runs them, with the settings they were tuned by: a
    /// write looks its definition up instead of copying it, and changed settings miss.
    tuned: Mutex<TunedDefinitions>,
}

type TunedDefinitions =
    HashMap<(EngagementId, Key, u32), (EngagementSettings, Arc<ServiceDefinition>)>;

impl ServiceCache {
    pub fn get(&self, key: &Key, version: u32) -> Option<Arc<ServiceDefinition>> {
        lock(&self.published).get(&(key.clone(), version)).cloned()
    }

    pub fn insert(&self, definition: Arc<ServiceDefinition>) {
        lock(&self.published).insert((definition.key.clone(), definition.version), definition);
    }

    /// `definition` as `engagement` runs it under `settings`.
    pub fn tuned(
        &self,
        engagement: EngagementId,
        definition: Arc<ServiceDefinition>,
        settings: &EngagementSettings,
    ) -> Result<Arc<ServiceDefinition>, String> {
        if *settings == EngagementSettings::default() {
            return Ok(definition);
        }
        let key = (engagement, definition.key.clone(), definition.version);
        if let Some((tuned_by, tuned)) = lock(&self.tuned).get(&key)
            && tuned_by == settings
        {
            return Ok(tuned.clone());
        }
        let tuned = Arc::new(definition.tuned(settings)?);
        lock(&self.tuned).insert(key, (settings.clone(), tuned.clone()));
        Ok(tuned)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

macro_rules! item_columns {
    () => {
        "id, client_id, engagement_id, service_key, service_version, requester_id, state, version, created_at, updated_at"
    };
}

macro_rules! task_columns {
    () => {
        "id, item_id, client_id, engagement_id, step, visit, skill, min_level, language, excluded_worker, priority, queued_at, due_at, status, worker_id, claimed_at, outcome, done_at, certifications, channel, relax, reserved_worker, reserved_until, serve_by, lease_until, offer_timeout_secs, worker_order, opens_at, closes_at"
    };
}

macro_rules! article_columns {
    () => {
        "id, client_id, engagement_id, title, body, tags, created_by, updated_by, created_at, updated_at, version"
    };
}

macro_rules! worker_columns {
    () => {
        "id, name, skills, languages, clearances, capacity, presence, certifications, exclusions, idle_since, wrap_up_secs, team"
    };
}

/// How long a claim holds before its holder must renew it, unless the server sets another.
pub const DEFAULT_LEASE_MICROS: i64 = 5 * 60 * 1_000_000;

/// The queue counters: the compacted totals plus the ledger not yet folded into them.
pub const QUEUE_COUNTS: &str = "SELECT engagement_id, step, status, due_minute, CAST(SUM(n) AS BIGINT) FROM ( \
     SELECT engagement_id, step, status, due_minute, n FROM queue_counts \
     UNION ALL SELECT engagement_id, step, status, due_minute, delta FROM queue_count_changes) AS counts \
     GROUP BY engagement_id, step, status, due_minute ORDER BY engagement_id, step";

/// A `LIKE … ESCAPE '\'` pattern matching values that contain `text` literally.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// [`delego_core::routing::CLAIM_BATCH`], as SQL binds it.
pub const CLAIM_BATCH: i64 = delego_core::routing::CLAIM_BATCH as i64;

/// Implements [`crate::Store`] for `$store`, a struct with fields `pool` and `writer` (both
/// `sqlx::Pool<$db>`), `clock: Arc<dyn Clock>`, `services: ServiceCache`, `wake`,
/// `lease_micros` and `claims` (see the SQLite and PostgreSQL stores).
macro_rules! impl_store {
    (
        store = $store:ident,
        db = $db:ty,
        backend = $backend:literal,
        begin_write = $begin_write:literal,
        for_update = $for_update:literal,
        skip_locked = $skip_locked:literal,
        notify_sql = $notify_sql:literal,
        compaction_lock = $compaction_lock:literal,
        seq_in_list = $seq_in_list:literal,
        client_in_list = $client_in_list:literal,
        id_hex = $id_hex:literal,
        data_text = $data_text:literal,
        engagement_in_list = $engagement_in_list:literal $(,)?
    ) => {
        use std::sync::Arc;

        use delego_core::definition::{Completeness, LookupKind, ServiceDefinition, load_definition, validate_form};
        use delego_core::model::EngagementSettings;
        use delego_core::engine::{self, Effect, Event, Outcome};
        use delego_core::id::{
            AuditEventId, ClientId, EngagementId, MessageId,
            TaskId, WorkItemId, WorkerId,
        };
        use delego_core::model::{
            Actor, AuditEvent, Client,
            CsatResponse, Engagement, Message, Presence, Task, TaskStatus, Visibility,
            WorkItem, Worker,
        };
        use delego_core::routing;
        use delego_core::values::{Key, Name};
        use serde_json::{Map, Value as Json, json};
        use sqlx::types::Json as SqlJson;
        use sqlx::{Row as _, Transaction};
        use uuid::Uuid;

        use crate::rows::{self, micros, timestamp};
        use crate::Directory as _;
        use crate::Store as _;
        use crate::sql::{CLAIM_BATCH, QUEUE_COUNTS};
        use crate::{
            Claimed, Created, ItemFilter,
            NewItem, NewMessage, Outgoing, Result, StoreError,
        };

        type Tx = Transaction<'static, $db>;
        type DbRow = <$db as sqlx::Database>::Row;

        impl $store {
            async fn begin_write(&self) -> Result<Tx> {
                Ok(self.writer.begin_with($begin_write).await?)
            }

            fn now(&self) -> jiff::Timestamp {
                self.clock.now()
            }

            fn client_from_row(row: &DbRow) -> Result<Client> {
                Ok(Client {
                    id: ClientId::from_uuid(row.try_get(0)?),
                    name: Name::parse(&row.try_get::<String, _>(1)?)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    created_at: timestamp(row.try_get(2)?)?,
                })
            }

            fn worker_from_row(row: &DbRow) -> Result<Worker> {
                Ok(Worker {
                    id: WorkerId::from_uuid(row.try_get(0)?),
                    name: Name::parse(&row.try_get::<String, _>(1)?)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    skills: rows::from_json(row.try_get::<SqlJson<Json>, _>(2)?.0)?,
                    languages: rows::from_json(row.try_get::<SqlJson<Json>, _>(3)?.0)?,
                    clearances: rows::from_json(row.try_get::<SqlJson<Json>, _>(4)?.0)?,
                    capacity: rows::from_json(row.try_get::<SqlJson<Json>, _>(5)?.0)?,
                    presence: rows::from_json(row.try_get::<SqlJson<Json>, _>(6)?.0)?,
                    certifications: rows::from_json(row.try_get::<SqlJson<Json>, _>(7)?.0)?,
                    exclusions: rows::from_json(row.try_get::<SqlJson<Json>, _>(8)?.0)?,
                    idle_since: rows::optional_timestamp(row.try_get(9)?)?,
                    wrap_up_secs: u32::try_from(row.try_get::<i64, _>(10)?)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    team: row.try_get::<Option<String>, _>(11)?.map(rows::key).transpose()?,
                })
            }

            fn engagement_from_row(row: &DbRow) -> Result<Engagement> {
                Ok(Engagement {
                    id: EngagementId::from_uuid(row.try_get(0)?),
                    client_id: ClientId::from_uuid(row.try_get(1)?),
                    name: Name::parse(&row.try_get::<String, _>(2)?)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    service_key: rows::key(row.try_get(3)?)?,
                    service_version: rows::version(row.try_get(4)?)?,
                    created_at: timestamp(row.try_get(5)?)?,
                    settings: rows::from_json(row.try_get::<SqlJson<Json>, _>(6)?.0)?,
                })
            }

            /// The definition an engagement's items run on: its pinned version, tuned by the
            /// engagement's settings.
            async fn tuned_definition(
                &self,
                engagement: &Engagement,
            ) -> Result<Arc<ServiceDefinition>> {
                let definition = self.service(&engagement.service_key, engagement.service_version).await?;
                self.tune(engagement.id, definition, &engagement.settings)
            }

            fn tune(
                &self,
                engagement: EngagementId,
                definition: Arc<ServiceDefinition>,
                settings: &EngagementSettings,
            ) -> Result<Arc<ServiceDefinition>> {
                self.services.tuned(engagement, definition, settings).map_err(StoreError::Corrupt)
            }

            /// The definition `item` runs on, read through the caller's open transaction: a
            /// second pool connection here would let a full pool of writers wait on each other.
            async fn definition_for(&self, tx: &mut Tx, item: &WorkItem) -> Result<Arc<ServiceDefinition>> {
                let engagement = Self::fetch_engagement(&mut **tx, item.engagement_id).await?;
                let definition = match self.services.get(&engagement.service_key, engagement.service_version) {
                    Some(definition) => definition,
                    None => {
                        self.fetch_service(&mut **tx, &engagement.service_key, engagement.service_version)
                            .await?
                    }
                };
                self.tune(engagement.id, definition, &engagement.settings)
            }

            async fn fetch_engagement<'c, E: sqlx::Executor<'c, Database = $db>>(
                executor: E,
                id: EngagementId,
            ) -> Result<Engagement> {
                let row = sqlx::query(
                    "SELECT id, client_id, name, service_key, service_version, created_at, settings \
                     FROM engagements WHERE id = $1",
                )
                .bind(id.as_uuid())
                .fetch_optional(executor)
                .await?
                .ok_or(StoreError::NotFound("engagement"))?;
                Self::engagement_from_row(&row)
            }

            /// Loads a published service version and keeps it in the cache.
            async fn fetch_service<'c, E: sqlx::Executor<'c, Database = $db>>(
                &self,
                executor: E,
                key: &Key,
                version: u32,
            ) -> Result<Arc<ServiceDefinition>> {
                let source: String = sqlx::query_scalar(
                    "SELECT source FROM services WHERE key = $1 AND version = $2",
                )
                .bind(key.as_str())
                .bind(i64::from(version))
                .fetch_optional(executor)
                .await?
                .ok_or(StoreError::NotFound("service version"))?;
                // Published under the rules of its day, which later rules may be stricter than.
                let definition = Arc::new(delego_core::definition::reload_definition(&source).map_err(|problems| {
                    StoreError::Corrupt(format!("stored service {key} v{version}: {problems:?}"))
                })?);
                self.services.insert(definition.clone());
                Ok(definition)
            }

            /// The client's requester whose address the definition's requester field holds;
            /// a malformed address is left to the form validation to report.
            async fn requester_named_by(
                &self,
                definition: &ServiceDefinition,
                client_id: ClientId,
                data: &Map<String, Json>,
            ) -> Result<Option<delego_core::id::RequesterId>> {
                let address = definition
                    .requester_field
                    .as_ref()
                    .and_then(|field| data.get(field.as_str()))
                    .and_then(Json::as_str)
                    .and_then(|text| delego_core::values::EmailAddress::parse(text).ok());
                match address {
                    Some(email) => Ok(Some(self.requester_for_email(client_id, &email, None).await?.id)),
                    None => Ok(None),
                }
            }

            fn check_settings(definition: &ServiceDefinition, settings: &EngagementSettings) -> Result<()> {
                let invalid = |field: &str, message| {
                    StoreError::Invalid(vec![delego_core::definition::FieldError {
                        field: field.into(),
                        code: "invalid".into(),
                        message,
                    }])
                };
                // Checked apart from the rest of the tuning, so that its problem names it.
                if let Some(cells) = &settings.priority_matrix {
                    definition.matrix_with(cells).map_err(|m| invalid("settings.priority_matrix", m))?;
                }
                definition.tuned(settings).map(|_| ()).map_err(|m| invalid("settings.wait_timers", m))
            }

            fn item_from_row(row: &DbRow) -> Result<WorkItem> {
                Ok(WorkItem {
                    client_id: ClientId::from_uuid(row.try_get(1)?),
                    engagement_id: EngagementId::from_uuid(row.try_get(2)?),
                    service_key: rows::key(row.try_get(3)?)?,
                    service_version: rows::version(row.try_get(4)?)?,
                    requester_id: row
                        .try_get::<Option<Uuid>, _>(5)?
                        .map(delego_core::id::RequesterId::from_uuid),
                    state: rows::from_json(row.try_get::<SqlJson<Json>, _>(6)?.0)?,
                    version: row.try_get(7)?,
                    created_at: timestamp(row.try_get(8)?)?,
                    updated_at: timestamp(row.try_get(9)?)?,
                })
            }

            /// Applies a system event (a timer, closed hours) to the item in `tx`, by the
            /// system, and commits: the engine's rejection when the item moved on first.
            async fn apply_system_event(
                &self,
                mut tx: Tx,
                item_id: WorkItemId,
                event: &Event,
                now: jiff::Timestamp,
            ) -> Result<Option<engine::Rejection>> {
                let item = Self::load_item(&mut tx, item_id).await?;
                let definition = self.definition_for(&mut tx, &item).await?;
                let item = Self::with_facts(&mut tx, &definition, item).await?;
                match engine::apply(&definition, &item.state, event, now) {
                    Ok(outcome) => {
                        self.commit_outcome(tx, item, &definition, outcome, &Actor::System, now).await?;
                        Ok(None)
                    }
                    Err(rejection) => {
                        tx.commit().await?;
                        Ok(Some(rejection))
                    }
                }
            }

            /// Withdraws one task whose hours closed, if it is still untaken, and moves its
            /// item on. The task is locked before the item, as a claim locks them.
            async fn close_task_after_hours(&self, id: TaskId, now: jiff::Timestamp) -> Result<bool> {
                let mut tx = self.begin_write().await?;
                let row = sqlx::query(concat!(
                    "SELECT ", task_columns!(), " FROM tasks WHERE id = $1 AND status = 'open' AND closes_at <= $2 \
                     AND (reserved_until IS NULL OR reserved_until <= $2)", $skip_locked
                ))
                .bind(id.as_uuid())
                .bind(micros(now))
                .fetch_optional(&mut *tx)
                .await?;
                // Taken meanwhile, or being taken on another node: the call goes on.
                let Some(task) = row.as_ref().map(Self::task_from_row).transpose()? else {
                    tx.commit().await?;
                    return Ok(false);
                };
                let event = Event::HoursClosed {
                    step: task.step.clone(),
                    visit: task.visit,
                };
                match self.apply_system_event(tx, task.item_id, &event, now).await? {
                    None => Ok(true),
                    Some(engine::Rejection::Stale | engine::Rejection::Finished) => {
                        // The item is no longer at that step: a stray task, withdrawn.
                        tracing::warn!(item = %task.item_id, "a task outside its item's step closed; withdrawing it");
                        let mut tx = self.begin_write().await?;
                        let withdrawn = sqlx::query(
                            "UPDATE tasks SET status = 'cancelled', done_at = $2 WHERE id = $1 AND status = 'open'",
                        )
                        .bind(task.id.as_uuid())
                        .bind(micros(now))
                        .execute(&mut *tx)
                        .await?;
                        if withdrawn.rows_affected() > 0 {
                            Self::recount_move(&mut tx, &task, Some("open"), None).await?;
                        }
                        tx.commit().await?;
                        Ok(false)
                    }
                    Some(other) => Err(StoreError::Corrupt(format!(
                        "closing task {} after hours: {other}",
                        task.id
                    ))),
                }
            }

            fn task_from_row(row: &DbRow) -> Result<Task> {
                let worker = row.try_get::<Option<Uuid>, _>(14)?.map(WorkerId::from_uuid);
                let status: String = row.try_get(13)?;
                let status = match (status.as_str(), worker) {
                    ("open", _) => TaskStatus::Open,
                    ("claimed", Some(worker)) => TaskStatus::Claimed {
                        worker,
                        at: timestamp(row.try_get::<Option<i64>, _>(15)?.unwrap_or_default())?,
                    },
                    ("done", Some(worker)) => TaskStatus::Done {
                        worker,
                        outcome: rows::key(row.try_get::<Option<String>, _>(16)?.unwrap_or_default())?,
                        at: timestamp(row.try_get::<Option<i64>, _>(17)?.unwrap_or_default())?,
                    },
                    ("cancelled", _) => TaskStatus::Cancelled,
                    (other, _) => return Err(StoreError::Corrupt(format!("task status {other}"))),
                };
                Ok(Task {
                    id: TaskId::from_uuid(row.try_get(0)?),
                    item_id: WorkItemId::from_uuid(row.try_get(1)?),
                    client_id: ClientId::from_uuid(row.try_get(2)?),
                    engagement_id: EngagementId::from_uuid(row.try_get(3)?),
                    step: rows::key(row.try_get(4)?)?,
                    visit: u32::try_from(row.try_get::<i64, _>(5)?)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    skill: rows::key(row.try_get(6)?)?,
                    min_level: rows::skill_level(row.try_get(7)?)?,
                    language: rows::language(row.try_get(8)?)?,
                    excluded_worker: row.try_get::<Option<Uuid>, _>(9)?.map(WorkerId::from_uuid),
                    priority: rows::priority(row.try_get(10)?)?,
                    queued_at: timestamp(row.try_get(11)?)?,
                    due_at: rows::optional_timestamp(row.try_get(12)?)?,
                    certifications: rows::from_json(row.try_get::<SqlJson<Json>, _>(18)?.0)?,
                    channel: rows::from_json(Json::String(row.try_get(19)?))?,
                    relax: rows::from_json(row.try_get::<SqlJson<Json>, _>(20)?.0)?,
                    reserved_for: match (
                        row.try_get::<Option<Uuid>, _>(21)?,
                        rows::optional_timestamp(row.try_get(22)?)?,
                    ) {
                        (Some(worker), Some(until)) => Some((WorkerId::from_uuid(worker), until)),
                        _ => None,
                    },
                    serve_by: timestamp(row.try_get(23)?)?,
                    lease_until: rows::optional_timestamp(row.try_get(24)?)?,
                    offer_timeout: row
                        .try_get::<Option<i64>, _>(25)?
                        .map(jiff::SignedDuration::from_secs),
                    worker_order: rows::from_json(Json::String(row.try_get(26)?))?,
                    window: match (
                        rows::optional_timestamp(row.try_get(27)?)?,
                        rows::optional_timestamp(row.try_get(28)?)?,
                    ) {
                        (Some(opens), Some(closes)) => Some(delego_core::model::Window { opens, closes }),
                        _ => None,
                    },
                    status,
                })
            }

            fn audit_from_row(row: &DbRow) -> Result<AuditEvent> {
                Ok(AuditEvent {
                    id: AuditEventId::from_uuid(row.try_get(0)?),
                    client_id: row.try_get::<Option<Uuid>, _>(1)?.map(ClientId::from_uuid),
                    item_id: row.try_get::<Option<Uuid>, _>(2)?.map(WorkItemId::from_uuid),
                    actor: rows::from_json(row.try_get::<SqlJson<Json>, _>(3)?.0)?,
                    action: row.try_get(4)?,
                    detail: rows::from_json(row.try_get::<SqlJson<Json>, _>(5)?.0)?,
                    at: timestamp(row.try_get(6)?)?,
                })
            }

            #[allow(clippy::too_many_arguments)]
            async fn insert_audit(
                tx: &mut Tx,
                client_id: Option<ClientId>,
                item_id: Option<WorkItemId>,
                actor: &Actor,
                action: &str,
                detail: Map<String, Json>,
                at: jiff::Timestamp,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO audit_events (id, client_id, item_id, actor, action, detail, at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(AuditEventId::new().as_uuid())
                .bind(client_id.map(|c| c.as_uuid()))
                .bind(item_id.map(|i| i.as_uuid()))
                .bind(SqlJson(rows::to_json(actor)))
                .bind(action)
                .bind(SqlJson(Json::Object(detail)))
                .bind(micros(at))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            async fn load_item(tx: &mut Tx, id: WorkItemId) -> Result<WorkItem> {
                let row = sqlx::query(concat!(
                    "SELECT ", item_columns!(), " FROM work_items WHERE id = $1", $for_update
                ))
                .bind(id.as_uuid())
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(StoreError::NotFound("work item"))?;
                Self::item_from_row(&row)
            }

            async fn load_task(tx: &mut Tx, id: TaskId) -> Result<Task> {
                let row = sqlx::query(concat!(
                    "SELECT ", task_columns!(), " FROM tasks WHERE id = $1", $for_update
                ))
                .bind(id.as_uuid())
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(StoreError::NotFound("task"))?;
                Self::task_from_row(&row)
            }

            /// When the escalation sweep must next look at `item`, seen at `now`: now if an
            /// escalation is due, else when a running clock crosses its warning share or its
            /// target, else never (until the item changes again).
            fn next_sla_look(item: &WorkItem, definition: &ServiceDefinition, now: jiff::Timestamp) -> i64 {
                if item.state.position.is_terminal() {
                    return i64::MAX;
                }
                let targets = definition.sla.targets();
                let statuses = delego_core::sla::status(&item.state.sla, &targets, &definition.calendar, now);
                if !delego_core::sla::due_escalations(&item.state.sla, &targets, &statuses).is_empty() {
                    return micros(now);
                }
                delego_core::sla::next_check(&statuses, &targets, &definition.calendar, now)
                    .map_or(i64::MAX, micros)
            }

            /// Writes the item's new state if nobody changed it since `expected_version`,
            /// with when its SLA clocks next need a look.
            async fn write_item(
                tx: &mut Tx,
                item: &WorkItem,
                expected_version: i64,
                definition: &ServiceDefinition,
            ) -> Result<()> {
                let state = &item.state;
                let updated = sqlx::query(
                    "UPDATE work_items SET status = $1, step = $2, priority = $3, state = $4, \
                     version = $5, updated_at = $6, sla_check_at = $9 WHERE id = $7 AND version = $8",
                )
                .bind(state.position.status())
                .bind(state.position.step().map(|s| s.as_str().to_owned()))
                .bind(state.priority.rank())
                .bind(SqlJson(rows::to_json(state)))
                .bind(item.version)
                .bind(micros(item.updated_at))
                .bind(item.id().as_uuid())
                .bind(expected_version)
                .bind(Self::next_sla_look(item, definition, item.updated_at))
                .execute(&mut **tx)
                .await?;
                if updated.rows_affected() == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Conflict(format!(
                        "work item {} changed since version {expected_version}",
                        item.id()
                    )))
                }
            }

            /// The service's lookups for an item of `client` and `engagement` with `data`, as
            /// its decisions read them. Counts reach back from `at` (the item's arrival) and
            /// leave `item` itself out once it exists.
            #[allow(clippy::too_many_arguments)]
            async fn facts_of(
                conn: &mut <$db as sqlx::Database>::Connection,
                definition: &ServiceDefinition,
                client: ClientId,
                engagement: EngagementId,
                item: Option<WorkItemId>,
                data: &Map<String, Json>,
                at: jiff::Timestamp,
            ) -> Result<Map<String, Json>> {
                let mut facts = Map::new();
                for lookup in &definition.lookups {
                    let text = |field: &Key| match data.get(field.as_str()) {
                        None | Some(Json::Null) => None,
                        Some(Json::String(text)) => Some(text.trim().to_owned()),
                        Some(other) => Some(other.to_string()),
                    };
                    let value = match &lookup.kind {
                        LookupKind::Register { register, key } => match text(key) {
                            Some(key) => Self::register_fact(conn, register, client, &key).await?,
                            None => Json::Null,
                        },
                        LookupKind::CountItems { field, within } => match text(field) {
                            Some(value) => {
                                let since = at.checked_sub(*within).unwrap_or(at);
                                let count: i64 = sqlx::query_scalar(concat!(
                                    "SELECT count(*) FROM work_items WHERE engagement_id = $1 AND id <> $2 \
                                     AND created_at >= $3 AND created_at <= $4 AND ", $data_text, " = $5"
                                ))
                                .bind(engagement.as_uuid())
                                .bind(item.map_or(Uuid::nil(), |item| item.as_uuid()))
                                .bind(micros(since))
                                .bind(micros(at))
                                .bind(value)
                                .bind(field.as_str())
                                .fetch_one(&mut *conn)
                                .await?;
                                json!(count)
                            }
                            None => json!(0),
                        },
                    };
                    facts.insert(lookup.name.to_string(), value);
                }
                Ok(facts)
            }

            /// The item with its lookups read afresh, so that a decision sees today's
            /// registers (a contact added to a do-not-call list since, say).
            async fn with_facts(
                conn: &mut <$db as sqlx::Database>::Connection,
                definition: &ServiceDefinition,
                mut item: WorkItem,
            ) -> Result<WorkItem> {
                if !definition.lookups.is_empty() {
                    item.state.facts = Self::facts_of(
                        conn,
                        definition,
                        item.client_id,
                        item.engagement_id,
                        Some(item.id()),
                        &item.state.data,
                        item.created_at,
                    )
                    .await?;
                }
                Ok(item)
            }

            /// Adds a message to the item's thread, audited. A person's public message goes
            /// out to the requester as a reply; the system's own notices are already the
            /// delivery of an outbox message.
            #[allow(clippy::too_many_arguments)]
            async fn insert_message(
                tx: &mut Tx,
                item: &WorkItem,
                author: Actor,
                visibility: Visibility,
                body: String,
                attachments: Vec<delego_core::id::AttachmentId>,
                quoted: Option<String>,
                now: jiff::Timestamp,
            ) -> Result<Message> {
                let from_person = matches!(author, Actor::User(_) | Actor::Worker(_) | Actor::Operator(_));
                let message = Message {
                    id: MessageId::new(),
                    item_id: item.id(),
                    client_id: item.client_id,
                    author,
                    visibility,
                    body,
                    attachments,
                    created_at: now,
                    merged_from: None,
                    quoted,
                };
                let visibility = match message.visibility {
                    Visibility::Public => "public",
                    Visibility::Internal => "internal",
                };
                sqlx::query(
                    "INSERT INTO messages (id, item_id, client_id, author, visibility, body, attachments, created_at, quoted) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(message.id.as_uuid())
                .bind(item.id().as_uuid())
                .bind(item.client_id.as_uuid())
                .bind(SqlJson(rows::to_json(&message.author)))
                .bind(visibility)
                .bind(&message.body)
                .bind(SqlJson(rows::to_json(&message.attachments)))
                .bind(micros(now))
                .bind(&message.quoted)
                .execute(&mut **tx)
                .await?;
                let detail = json!({"message": message.id, "visibility": visibility});
                Self::insert_audit(
                    tx,
                    Some(item.client_id),
                    Some(item.id()),
                    &message.author,
                    "message.added",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                if message.visibility == Visibility::Public && from_person {
                    let outbound = json!({"kind": "reply", "message": message.id});
                    Self::enqueue(tx, item, outbound, now).await?;
                }
                Ok(message)
            }

            /// Makes the engine's effects true, in the caller's transaction. Returns whether
            /// a task was opened, so that waiting workers are woken after the commit.
            async fn apply_effects(
                tx: &mut Tx,
                item: &WorkItem,
                effects: Vec<Effect>,
                actor: &Actor,
                now: jiff::Timestamp,
            ) -> Result<bool> {
                let mut opened = false;
                for effect in effects {
                    match effect {
                        Effect::OpenTask(spec) => {
                            opened = true;
                            Self::count(tx, item.engagement_id, spec.step.as_str(), spec.due_at, "open", 1).await?;
                            sqlx::query(concat!(
                                "INSERT INTO tasks (", task_columns!(), ") VALUES \
                                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'open', NULL, NULL, NULL, NULL, \
                                 $14, $15, $16, $17, $18, $19, NULL, $20, $21, $22, $23)"
                            ))
                            .bind(TaskId::new().as_uuid())
                            .bind(item.id().as_uuid())
                            .bind(item.client_id.as_uuid())
                            .bind(item.engagement_id.as_uuid())
                            .bind(spec.step.as_str())
                            .bind(i64::from(spec.visit))
                            .bind(spec.skill.as_str())
                            .bind(i64::from(spec.min_level.get()))
                            .bind(spec.language.as_ref().map(|l| l.as_str().to_owned()))
                            .bind(spec.excluded_worker.map(|w| w.as_uuid()))
                            .bind(spec.priority.rank())
                            .bind(micros(now))
                            .bind(spec.due_at.map(micros))
                            .bind(SqlJson(rows::to_json(&spec.certifications)))
                            .bind(spec.channel.as_str())
                            .bind(SqlJson(rows::to_json(&spec.relax)))
                            .bind(spec.reserved_for.map(|(worker, _)| worker.as_uuid()))
                            .bind(spec.reserved_for.map(|(_, until)| micros(until)))
                            .bind(micros(spec.serve_by))
                            .bind(spec.offer_timeout.map(|t| t.as_secs()))
                            .bind(rows::to_json(&spec.worker_order).as_str().unwrap_or("longest_idle").to_owned())
                            .bind(spec.window.map(|window| micros(window.opens)))
                            .bind(spec.window.map(|window| micros(window.closes)))
                            .execute(&mut **tx)
                            .await?;
                        }
                        Effect::CancelTasks => {
                            let live = sqlx::query(concat!(
                                "SELECT ", task_columns!(), " FROM tasks WHERE item_id = $1 AND status IN ('open', 'claimed')"
                            ))
                            .bind(item.id().as_uuid())
                            .fetch_all(&mut **tx)
                            .await?;
                            for row in &live {
                                let task = Self::task_from_row(row)?;
                                Self::recount_move(tx, &task, Some(task.status.name()), None).await?;
                            }
                            sqlx::query(
                                "UPDATE tasks SET status = 'cancelled', done_at = $2 \
                                 WHERE item_id = $1 AND status IN ('open', 'claimed')",
                            )
                            .bind(item.id().as_uuid())
                            .bind(micros(now))
                            .execute(&mut **tx)
                            .await?;
                            sqlx::query("DELETE FROM timers WHERE item_id = $1")
                                .bind(item.id().as_uuid())
                                .execute(&mut **tx)
                                .await?;
                        }
                        Effect::ScheduleTimer { step, visit, at } => {
                            sqlx::query(
                                "INSERT INTO timers (item_id, step, visit, due_at) VALUES ($1, $2, $3, $4)",
                            )
                            .bind(item.id().as_uuid())
                            .bind(step.as_str())
                            .bind(i64::from(visit))
                            .bind(micros(at))
                            .execute(&mut **tx)
                            .await?;
                        }
                        Effect::Send(message) => {
                            Self::enqueue(tx, item, rows::to_json(&message), now).await?;
                        }
                        Effect::PostMessage { visibility, body } => {
                            Self::insert_message(tx, item, actor.clone(), visibility, body, Vec::new(), None, now)
                                .await?;
                        }
                        Effect::SetRegisterEntry { register, key, data } => {
                            Self::set_register_entry_in(tx, &register, item.client_id, &key, data, actor, now)
                                .await?;
                        }
                        Effect::Audit(record) => {
                            let mut detail = record.detail;
                            detail.insert("before".into(), rows::to_json(&record.before));
                            detail.insert("after".into(), rows::to_json(&record.after));
                            Self::insert_audit(
                                tx,
                                Some(item.client_id),
                                Some(item.id()),
                                actor,
                                record.action,
                                detail,
                                now,
                            )
                            .await?;
                        }
                    }
                }
                if opened {
                    Self::announce_tasks(tx).await?;
                }
                Ok(opened)
            }

            /// Queues an outbound message for delivery after commit.
            async fn enqueue(
                tx: &mut Tx,
                item: &WorkItem,
                message: Json,
                now: jiff::Timestamp,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO outbox (id, client_id, item_id, message, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(Uuid::now_v7())
                .bind(item.client_id.as_uuid())
                .bind(item.id().as_uuid())
                .bind(SqlJson(message))
                .bind(micros(now))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            fn message_from_row(row: &DbRow) -> Result<Message> {
                let visibility: String = row.try_get(4)?;
                Ok(Message {
                    id: MessageId::from_uuid(row.try_get(0)?),
                    item_id: WorkItemId::from_uuid(row.try_get(1)?),
                    client_id: ClientId::from_uuid(row.try_get(2)?),
                    author: rows::from_json(row.try_get::<SqlJson<Json>, _>(3)?.0)?,
                    visibility: rows::from_json(Json::String(visibility))?,
                    body: row.try_get(5)?,
                    attachments: rows::from_json(row.try_get::<SqlJson<Json>, _>(6)?.0)?,
                    created_at: timestamp(row.try_get(7)?)?,
                    merged_from: row.try_get::<Option<Uuid>, _>(8)?.map(WorkItemId::from_uuid),
                    quoted: row.try_get(9)?,
                })
            }

            fn csat_from_row(row: &DbRow) -> Result<CsatResponse> {
                Ok(CsatResponse {
                    item_id: WorkItemId::from_uuid(row.try_get(0)?),
                    rating: u8::try_from(row.try_get::<i64, _>(1)?)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    comment: row.try_get(2)?,
                    at: timestamp(row.try_get(3)?)?,
                })
            }

            /// Stores the outcome of an engine call on an existing item.
            #[allow(clippy::too_many_arguments)]
            async fn commit_outcome(
                &self,
                mut tx: Tx,
                mut item: WorkItem,
                definition: &ServiceDefinition,
                outcome: Outcome,
                actor: &Actor,
                now: jiff::Timestamp,
            ) -> Result<WorkItem> {
                // What the provider told the requester as it resolved: the children's too.
                let note = outcome.effects.iter().rev().find_map(|effect| match effect {
                    Effect::PostMessage { visibility: Visibility::Public, body } => Some(body.clone()),
                    _ => None,
                });
                let opened = Self::store_outcome(&mut tx, &mut item, definition, outcome, actor, now).await?;
                if let delego_core::engine::Position::Completed { resolution, .. } = &item.state.position {
                    self.children_follow(&mut tx, &item, resolution, note, actor, now).await?;
                }
                tx.commit().await?;
                if opened {
                    self.wake();
                }
                Ok(item)
            }

            /// Writes the outcome of an engine call on `item` and makes its effects true, in
            /// `tx`. Returns whether a task was opened.
            async fn store_outcome(
                tx: &mut Tx,
                item: &mut WorkItem,
                definition: &ServiceDefinition,
                outcome: Outcome,
                actor: &Actor,
                now: jiff::Timestamp,
            ) -> Result<bool> {
                let expected = item.version;
                item.state = outcome.state;
                item.version += 1;
                item.updated_at = now;
                Self::write_item(tx, item, expected, definition).await?;
                Self::apply_effects(tx, item, outcome.effects, actor, now).await
            }

            /// The unfinished children of `parent`, which just completed, follow it in its
            /// transaction and by its actor: each ends with its resolution and tells its
            /// requester so, passing on the parent's public answer.
            async fn children_follow(
                &self,
                tx: &mut Tx,
                parent: &WorkItem,
                resolution: &Key,
                note: Option<String>,
                actor: &Actor,
                now: jiff::Timestamp,
            ) -> Result<()> {
                let children: Vec<Uuid> = sqlx::query_scalar(
                    "SELECT id FROM work_items WHERE parent_id = $1 AND status IN ('active', 'waiting') ORDER BY id",
                )
                .bind(parent.id().as_uuid())
                .fetch_all(&mut **tx)
                .await?;
                for child in children {
                    let mut item = Self::load_item(tx, WorkItemId::from_uuid(child)).await?;
                    let definition = self.definition_for(tx, &item).await?;
                    let event = Event::FollowParent {
                        parent: parent.id(),
                        resolution: resolution.clone(),
                        note: note.clone(),
                    };
                    let outcome = engine::apply(&definition, &item.state, &event, now)?;
                    Self::store_outcome(tx, &mut item, &definition, outcome, actor, now).await?;
                }
                Ok(())
            }

            async fn find_by_idempotency_key(
                &self,
                client_id: ClientId,
                key: &str,
            ) -> Result<Option<WorkItem>> {
                sqlx::query(concat!(
                    "SELECT ", item_columns!(),
                    " FROM work_items WHERE client_id = $1 AND idempotency_key = $2"
                ))
                .bind(client_id.as_uuid())
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
                .map(|row| Self::item_from_row(&row))
                .transpose()
            }

            /// Moves `delta` tasks of a queue (engagement and step) into or out of a status,
            /// appending to the counters' ledger in the caller's transaction.
            async fn count(
                tx: &mut Tx,
                engagement: EngagementId,
                step: &str,
                due_at: Option<jiff::Timestamp>,
                status: &str,
                delta: i64,
            ) -> Result<()> {
                let due_minute = due_at.map_or(-1, |due| due.as_second().div_euclid(60));
                sqlx::query(
                    "INSERT INTO queue_count_changes (engagement_id, step, status, due_minute, delta) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(engagement.as_uuid())
                .bind(step)
                .bind(status)
                .bind(due_minute)
                .bind(delta)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Moves a task between statuses in the counters (one statement for a move, as
            /// every claim makes one).
            async fn recount_move(tx: &mut Tx, task: &Task, from: Option<&str>, to: Option<&str>) -> Result<()> {
                let (from, to) = match (from, to) {
                    (Some(from), Some(to)) => (from, to),
                    (Some(from), None) => return Self::count(tx, task.engagement_id, task.step.as_str(), task.due_at, from, -1).await,
                    (None, Some(to)) => return Self::count(tx, task.engagement_id, task.step.as_str(), task.due_at, to, 1).await,
                    (None, None) => return Ok(()),
                };
                sqlx::query(
                    "INSERT INTO queue_count_changes (engagement_id, step, status, due_minute, delta) \
                     VALUES ($1, $2, $3, $4, -1), ($1, $2, $5, $4, 1)",
                )
                .bind(task.engagement_id.as_uuid())
                .bind(task.step.as_str())
                .bind(from)
                .bind(task.due_at.map_or(-1, |due| due.as_second().div_euclid(60)))
                .bind(to)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Puts a held task back in its place in line (its serve-by is unchanged), kept for
            /// `reserve` if given, and audits why.
            async fn requeue(
                tx: &mut Tx,
                mut task: Task,
                action: &str,
                reserve: Option<(WorkerId, jiff::Timestamp)>,
                now: jiff::Timestamp,
            ) -> Result<Task> {
                let holder = match task.status {
                    TaskStatus::Claimed { worker, .. } => Some(worker),
                    _ => None,
                };
                sqlx::query(
                    "UPDATE tasks SET status = 'open', worker_id = NULL, claimed_at = NULL, lease_until = NULL, \
                     reserved_worker = $2, reserved_until = $3 WHERE id = $1 AND status = 'claimed'",
                )
                .bind(task.id.as_uuid())
                .bind(reserve.map(|(worker, _)| worker.as_uuid()))
                .bind(reserve.map(|(_, until)| micros(until)))
                .execute(&mut **tx)
                .await?;
                Self::recount_move(tx, &task, Some("claimed"), Some("open")).await?;
                Self::announce_tasks(tx).await?;
                let detail = json!({"task": task.id, "step": task.step, "worker": holder});
                let actor = holder.map_or(Actor::System, Actor::Worker);
                Self::insert_audit(
                    tx,
                    Some(task.client_id),
                    Some(task.item_id),
                    &actor,
                    action,
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                task.status = TaskStatus::Open;
                task.lease_until = None;
                task.reserved_for = reserve;
                Ok(task)
            }

            /// Expires lapsed offers; a worker who lets too many lapse in a row is put on a
            /// break, so that work stops waiting on someone who is not there.
            async fn expire_offers(tx: &mut Tx, now: jiff::Timestamp) -> Result<()> {
                let lapsed = sqlx::query(concat!(
                    "SELECT id, task_id, worker_id FROM offers WHERE outcome = 'pending' AND expires_at <= $1",
                    $skip_locked
                ))
                .bind(micros(now))
                .fetch_all(&mut **tx)
                .await?;
                for row in lapsed {
                    let (offer, task, worker): (Uuid, Uuid, Uuid) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                    sqlx::query("UPDATE offers SET outcome = 'expired', decided_at = $1 WHERE id = $2")
                        .bind(micros(now))
                        .bind(offer)
                        .execute(&mut **tx)
                        .await?;
                    let still_waiting = sqlx::query(
                        "UPDATE tasks SET reserved_worker = NULL, reserved_until = NULL \
                         WHERE id = $1 AND reserved_worker = $2 AND status = 'open'",
                    )
                    .bind(task)
                    .bind(worker)
                    .execute(&mut **tx)
                    .await?;
                    if still_waiting.rows_affected() == 0 {
                        continue; // the task moved on (cancelled, say): nobody missed anything
                    }
                    let missed: i64 = sqlx::query_scalar(
                        "UPDATE workers SET missed_offers = missed_offers + 1 WHERE id = $1 RETURNING missed_offers",
                    )
                    .bind(worker)
                    .fetch_one(&mut **tx)
                    .await?;
                    if missed >= crate::MISSED_OFFERS_BEFORE_BREAK {
                        let presence = Presence::Break { reason: format!("missed {missed} offers in a row") };
                        sqlx::query("UPDATE workers SET missed_offers = 0, idle_since = NULL WHERE id = $1")
                            .bind(worker)
                            .execute(&mut **tx)
                            .await?;
                        Self::change_presence(tx, WorkerId::from_uuid(worker), &presence, now).await?;
                    }
                }
                Ok(())
            }

            /// Workers who may be offered a task now: accepting work and without a pending
            /// offer, with what they hold.
            async fn offer_pool(tx: &mut Tx, now: jiff::Timestamp) -> Result<Vec<(Worker, routing::Load)>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", worker_columns!(), " FROM workers w WHERE NOT EXISTS \
                     (SELECT 1 FROM offers o WHERE o.worker_id = w.id AND o.outcome = 'pending')"
                ))
                .fetch_all(&mut **tx)
                .await?;
                let mut pool = Vec::new();
                for row in rows {
                    let worker = Self::worker_from_row(&row)?;
                    if routing::worker_ineligibility(&worker, now).is_none() {
                        let load = Self::load_of(tx, worker.id).await?;
                        pool.push((worker, load));
                    }
                }
                Ok(pool)
            }

            /// Claims one given task for a worker (an accepted offer), if it is still open
            /// and the worker may take it; commits.
            async fn claim_specific(
                &self,
                mut tx: Tx,
                task: Task,
                worker_id: WorkerId,
                now: jiff::Timestamp,
            ) -> Result<Claimed> {
                let row = sqlx::query(concat!("SELECT ", worker_columns!(), " FROM workers WHERE id = $1", $for_update))
                    .bind(worker_id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await?;
                let worker = Self::worker_from_row(&row)?;
                let load = Self::load_of(&mut tx, worker_id).await?;
                let mut unreserved = task;
                unreserved.reserved_for = None;
                if unreserved.status != TaskStatus::Open {
                    return Err(StoreError::Conflict(format!("task {} is {}", unreserved.id, unreserved.status.name())));
                }
                if let Some(reason) = routing::ineligibility(&worker, &load, &unreserved, now) {
                    return Err(StoreError::Conflict(format!("worker {worker_id} may not take task {}: {reason}", unreserved.id)));
                }
                let claimed = self
                    .hand_over(&mut tx, &unreserved, &worker, json!({"rule": {"rule": "offer"}}), now)
                    .await?
                    .ok_or_else(|| StoreError::Conflict(format!("task {} was just taken", unreserved.id)))?;
                tx.commit().await?;
                Ok(claimed)
            }

            /// Hands an open task to a worker on a lease and records in the audit log why
            /// (`why` joins the record); `None` if the task is no longer open.
            async fn hand_over(
                &self,
                tx: &mut Tx,
                task: &Task,
                worker: &Worker,
                why: Json,
                now: jiff::Timestamp,
            ) -> Result<Option<Claimed>> {
                let worker_id = worker.id;
                if !$skip_locked.is_empty() {
                    // Waiting on a task another transaction is claiming could close a lock
                    // cycle with a group of claims on another node: pass it over instead.
                    let free = sqlx::query(concat!("SELECT id FROM tasks WHERE id = $1 AND status = 'open'", $skip_locked))
                        .bind(task.id.as_uuid())
                        .fetch_optional(&mut **tx)
                        .await?;
                    if free.is_none() {
                        return Ok(None);
                    }
                }
                let lease_until = now.checked_add(self.lease()).unwrap_or(now);
                let updated = sqlx::query(
                    "UPDATE tasks SET status = 'claimed', worker_id = $1, claimed_at = $2, lease_until = $3 \
                     WHERE id = $4 AND status = 'open'",
                )
                .bind(worker_id.as_uuid())
                .bind(micros(now))
                .bind(micros(lease_until))
                .bind(task.id.as_uuid())
                .execute(&mut **tx)
                .await?;
                if updated.rows_affected() == 0 {
                    return Ok(None);
                }
                Self::recount_move(tx, task, Some("open"), Some("claimed")).await?;
                if worker.idle_since.is_some() {
                    sqlx::query("UPDATE workers SET idle_since = NULL WHERE id = $1")
                        .bind(worker_id.as_uuid())
                        .execute(&mut **tx)
                        .await?;
                }
                // Why this task: the record managers read when they ask.
                let mut detail = json!({
                    "task": task.id,
                    "step": task.step,
                    "worker": worker_id,
                    "serve_by": task.serve_by,
                    "waited_seconds": now.duration_since(task.queued_at).as_secs(),
                });
                if let (Some(detail), Json::Object(why)) = (detail.as_object_mut(), why) {
                    detail.extend(why);
                }
                Self::insert_audit(
                    tx,
                    Some(task.client_id),
                    Some(task.item_id),
                    &Actor::Worker(worker_id),
                    "task.claimed",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                let item = Self::load_item(tx, task.item_id).await?;
                let mut task = task.clone();
                task.status = TaskStatus::Claimed { worker: worker_id, at: now };
                task.lease_until = Some(lease_until);
                Ok(Some(Claimed { task, item }))
            }

            /// The best task for one worker, claimed inside `tx`: one member of a group.
            /// `served` carries the engagement shares the group's earlier claims charged;
            /// the group writes them when it ends.
            async fn claim_in(
                &self,
                tx: &mut Tx,
                worker_id: WorkerId,
                served: &mut std::collections::BTreeMap<EngagementId, u64>,
                now: jiff::Timestamp,
            ) -> Result<Option<Claimed>> {
                let row = sqlx::query(concat!(
                    "SELECT ", worker_columns!(), " FROM workers WHERE id = $1", $for_update
                ))
                .bind(worker_id.as_uuid())
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(StoreError::NotFound("worker"))?;
                let worker = Self::worker_from_row(&row)?;
                if routing::worker_ineligibility(&worker, now).is_some() {
                    return Ok(None);
                }
                let load = Self::load_of(tx, worker_id).await?;
                let skills: Vec<String> = worker.skills.keys().map(|k| k.as_str().to_owned()).collect();
                // Tasks another transaction is claiming right now: passed over, not waited on.
                let mut busy: std::collections::HashSet<TaskId> = std::collections::HashSet::new();
                let mut after: Option<Task> = None;
                loop {
                    let page = Self::open_tasks(tx, &skills, after.as_ref(), now).await?;
                    let batch: Vec<Task> = page.iter().filter(|task| !busy.contains(&task.id)).cloned().collect();
                    let mut shares = Self::shares_of(tx, &batch).await?;
                    shares.served.extend(served.iter().map(|(engagement, charged)| (*engagement, *charged)));
                    let Some(pick) = routing::pick(&worker, &load, &batch, &shares, routing::FAIRNESS_BAND, now) else {
                        if (page.len() as i64) < CLAIM_BATCH {
                            return Ok(None);
                        }
                        after = page.last().cloned();
                        continue;
                    };
                    let why = json!({
                        "rule": pick.rule,
                        "eligible_tasks": pick.eligible,
                        "engagement_service": pick.charged,
                    });
                    let Some(claimed) = self.hand_over(tx, pick.task, &worker, why, now).await? else {
                        // Another transaction holds or took it since we read: look again.
                        busy.insert(pick.task.id);
                        after = None;
                        continue;
                    };
                    if pick.task.offer_timeout.is_some() {
                        // Pulling a task offered to you is accepting the offer.
                        sqlx::query(
                            "UPDATE offers SET outcome = 'accepted', decided_at = $1 WHERE task_id = $2 AND outcome = 'pending'",
                        )
                        .bind(micros(now))
                        .bind(pick.task.id.as_uuid())
                        .execute(&mut **tx)
                        .await?;
                    }
                    served.insert(pick.task.engagement_id, pick.charged);
                    return Ok(Some(claimed));
                }
            }

            /// Claims for each worker of a group in one transaction. Any claim's failure
            /// fails the whole group (its transaction rolls back); the caller then tries each
            /// claim alone. Failures are rare, so no claim pays for a savepoint.
            ///
            /// Row locks are taken in an order that cannot form a cycle between nodes: a
            /// task is locked without waiting (one held elsewhere is passed over), and the
            /// engagement shares, the only rows claims wait on, are written last, sorted.
            async fn claim_all(&self, workers: &[WorkerId], now: jiff::Timestamp) -> Result<Vec<Option<Claimed>>> {
                let mut tx = self.begin_write().await?;
                let mut served = std::collections::BTreeMap::new();
                let mut answers = Vec::with_capacity(workers.len());
                for worker in workers {
                    answers.push(self.claim_in(&mut tx, *worker, &mut served, now).await?);
                }
                if served.is_empty() {
                    return Ok(answers);
                }
                for (engagement, charged) in served {
                    sqlx::query(
                        "INSERT INTO engagement_shares (engagement_id, served) VALUES ($1, $2) \
                         ON CONFLICT (engagement_id) DO UPDATE SET served = excluded.served",
                    )
                    .bind(engagement.as_uuid())
                    .bind(i64::try_from(charged).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(answers)
            }

            /// Runs one group of claims and answers each caller. If the group fails (one
            /// caller's unknown worker, a deadlock with another node), each claim is tried
            /// again on its own, so that one caller's trouble is not everyone's.
            async fn claim_group(&self, group: Vec<crate::group::Request<WorkerId, Result<Option<Claimed>>>>) {
                let now = self.now();
                let workers: Vec<WorkerId> = group.iter().map(|request| request.input).collect();
                let answers = match self.claim_all(&workers, now).await {
                    Ok(answers) => answers.into_iter().map(Ok).collect(),
                    Err(error) if workers.len() == 1 => vec![Err(error)],
                    Err(error) => {
                        tracing::debug!(%error, claims = workers.len(), "a group of claims failed; trying each alone");
                        let mut answers = Vec::with_capacity(workers.len());
                        for worker in &workers {
                            let alone = self.claim_all(std::slice::from_ref(worker), now).await;
                            answers.push(alone.map(|mut answer| answer.pop().flatten()));
                        }
                        answers
                    }
                };
                for (request, answer) in group.into_iter().zip(answers) {
                    let _ = request.reply.send(answer);
                }
            }

            /// Makes one SLA escalation of `item` (already locked in `tx`) and records it.
            async fn escalate(
                &self,
                tx: &mut Tx,
                item: &mut WorkItem,
                definition: &ServiceDefinition,
                escalation: &delego_core::sla::Escalation,
                now: jiff::Timestamp,
            ) -> Result<()> {
                use delego_core::sla::{EscalationAction, SlaKind, SlaState};
                let clock = match escalation.kind {
                    SlaKind::FirstResponse => "First response",
                    SlaKind::NextResponse => "Next response",
                    SlaKind::Resolution => "Resolution",
                };
                let (kind, title) = match escalation.level {
                    SlaState::Breached => ("sla.breached", format!("{clock} SLA breached")),
                    _ => ("sla.warning", format!("{clock} SLA at risk")),
                };
                let mut notified = 0;
                for action in &escalation.actions {
                    match action {
                        EscalationAction::NotifyTeamLead => {
                            notified += Self::notify_leads(tx, item, kind, &title, escalation, now).await?;
                        }
                        EscalationAction::RaisePriority => {
                            let raised = item.state.priority.raised();
                            if raised != item.state.priority {
                                self.reprioritise(tx, item, definition, raised, &title, now).await?;
                            }
                        }
                        EscalationAction::Reassign => {
                            let held = sqlx::query(concat!(
                                "SELECT ", task_columns!(), " FROM tasks WHERE item_id = $1 AND status = 'claimed'"
                            ))
                            .bind(item.id().as_uuid())
                            .fetch_all(&mut **tx)
                            .await?;
                            for row in held {
                                let task = Self::task_from_row(&row)?;
                                let holder = match task.status {
                                    TaskStatus::Claimed { worker, .. } => Some(worker),
                                    _ => None,
                                };
                                let task = Self::requeue(tx, task, "task.reassigned", None, now).await?;
                                // Someone else's turn: the holder may not take it straight back
                                // (unless the task already keeps another worker away, as a
                                // review keeps its author).
                                sqlx::query("UPDATE tasks SET excluded_worker = $1 WHERE id = $2 AND excluded_worker IS NULL")
                                    .bind(holder.map(|w| w.as_uuid()))
                                    .bind(task.id.as_uuid())
                                    .execute(&mut **tx)
                                    .await?;
                            }
                        }
                    }
                }
                item.state.sla.escalated.insert(escalation.key.clone());
                let detail = json!({
                    "clock": escalation.kind,
                    "level": escalation.level,
                    "actions": escalation.actions,
                    "notified": notified,
                });
                Self::insert_audit(
                    tx,
                    Some(item.client_id),
                    Some(item.id()),
                    &Actor::System,
                    "sla.escalated",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await
            }

            /// A notification for the leads of the teams holding the item's work, else for
            /// every team lead cleared for the item's client (and not walled off from it),
            /// else for every manager; returns how many.
            async fn notify_leads(
                tx: &mut Tx,
                item: &WorkItem,
                kind: &str,
                title: &str,
                escalation: &delego_core::sla::Escalation,
                now: jiff::Timestamp,
            ) -> Result<usize> {
                let rows = sqlx::query(
                    "SELECT u.id, w.clearances, w.exclusions, w.team FROM users u JOIN workers w ON w.id = u.worker_id \
                     WHERE u.role = 'team_lead'",
                )
                .fetch_all(&mut **tx)
                .await?;
                let mut cleared = Vec::new();
                for row in rows {
                    let clearances: std::collections::BTreeSet<ClientId> =
                        rows::from_json(row.try_get::<SqlJson<Json>, _>(1)?.0)?;
                    let walls: routing::Exclusions = rows::from_json(row.try_get::<SqlJson<Json>, _>(2)?.0)?;
                    let walled = walls.clients.contains(&item.client_id) || walls.engagements.contains(&item.engagement_id);
                    if clearances.contains(&item.client_id) && !walled {
                        cleared.push((row.try_get::<Uuid, _>(0)?, row.try_get::<Option<String>, _>(3)?));
                    }
                }
                // Whoever holds the work answers to their own team's lead, where it has one.
                let holding_teams: Vec<String> = sqlx::query_scalar(
                    "SELECT w.team FROM tasks t JOIN workers w ON w.id = t.worker_id \
                     WHERE t.item_id = $1 AND t.status = 'claimed' AND w.team IS NOT NULL",
                )
                .bind(item.id().as_uuid())
                .fetch_all(&mut **tx)
                .await?;
                let team_leads: Vec<Uuid> = cleared
                    .iter()
                    .filter(|(_, team)| team.as_ref().is_some_and(|team| holding_teams.contains(team)))
                    .map(|(id, _)| *id)
                    .collect();
                let mut leads = if team_leads.is_empty() {
                    cleared.into_iter().map(|(id, _)| id).collect()
                } else {
                    team_leads
                };
                if leads.is_empty() {
                    leads = sqlx::query_scalar("SELECT id FROM users WHERE role = 'manager'")
                        .fetch_all(&mut **tx)
                        .await?;
                }
                let detail = json!({
                    "item": item.id(),
                    "client": item.client_id,
                    "engagement": item.engagement_id,
                    "clock": escalation.kind,
                    "level": escalation.level,
                });
                for lead in &leads {
                    sqlx::query(
                        "INSERT INTO notifications (id, user_id, item_id, kind, title, detail, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(delego_core::id::NotificationId::new().as_uuid())
                    .bind(lead)
                    .bind(item.id().as_uuid())
                    .bind(kind)
                    .bind(title)
                    .bind(SqlJson(&detail))
                    .bind(micros(now))
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(leads.len())
            }

            /// Changes the item's priority through the engine (so that the change is
            /// audited like any other) and moves its open tasks up the line with it.
            async fn reprioritise(
                &self,
                tx: &mut Tx,
                item: &mut WorkItem,
                definition: &ServiceDefinition,
                priority: delego_core::values::Priority,
                reason: &str,
                now: jiff::Timestamp,
            ) -> Result<()> {
                let event = Event::Reprioritise { priority, reason: reason.to_owned() };
                let outcome = engine::apply(definition, &item.state, &event, now)?;
                item.state = outcome.state;
                Self::apply_effects(tx, item, outcome.effects, &Actor::System, now).await?;
                let open = sqlx::query(concat!(
                    "SELECT ", task_columns!(), " FROM tasks WHERE item_id = $1 AND status = 'open'"
                ))
                .bind(item.id().as_uuid())
                .fetch_all(&mut **tx)
                .await?;
                for row in open {
                    let task = Self::task_from_row(&row)?;
                    let policy = definition
                        .step(&task.step)
                        .and_then(delego_core::definition::Step::work)
                        .map(|work| work.routing.clone())
                        .unwrap_or_default();
                    let serve_by = routing::serve_by(priority, task.queued_at, task.due_at, &policy);
                    sqlx::query("UPDATE tasks SET priority = $1, serve_by = $2 WHERE id = $3")
                        .bind(priority.rank())
                        .bind(micros(serve_by.min(task.serve_by)))
                        .bind(task.id.as_uuid())
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            fn notification_from_row(row: &DbRow) -> Result<delego_core::model::Notification> {
                Ok(delego_core::model::Notification {
                    id: delego_core::id::NotificationId::from_uuid(row.try_get(0)?),
                    user_id: delego_core::id::UserId::from_uuid(row.try_get(1)?),
                    item_id: row.try_get::<Option<Uuid>, _>(2)?.map(WorkItemId::from_uuid),
                    kind: row.try_get(3)?,
                    title: row.try_get(4)?,
                    detail: rows::from_json(row.try_get::<SqlJson<Json>, _>(5)?.0)?,
                    created_at: timestamp(row.try_get(6)?)?,
                    read_at: rows::optional_timestamp(row.try_get(7)?)?,
                })
            }

            /// A presence change the system makes (wrap-up, a break after missed offers), with
            /// its audit record.
            async fn change_presence(tx: &mut Tx, worker: WorkerId, presence: &Presence, now: jiff::Timestamp) -> Result<()> {
                sqlx::query("UPDATE workers SET presence = $1, updated_at = $2 WHERE id = $3")
                    .bind(SqlJson(rows::to_json(presence)))
                    .bind(micros(now))
                    .bind(worker.as_uuid())
                    .execute(&mut **tx)
                    .await?;
                let detail = json!({"worker": worker, "presence": presence});
                Self::insert_audit(
                    tx,
                    None,
                    None,
                    &Actor::System,
                    "worker.presence",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await
            }

            /// Tells other nodes, on commit, that tasks became claimable (PostgreSQL NOTIFY;
            /// SQLite has no other nodes).
            async fn announce_tasks(tx: &mut Tx) -> Result<()> {
                if !$notify_sql.is_empty() {
                    sqlx::query($notify_sql).execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Wakes this node's workers waiting for a task.
            fn wake(&self) {
                self.wake.send_modify(|n| *n = n.wrapping_add(1));
            }

            fn lease(&self) -> jiff::SignedDuration {
                jiff::SignedDuration::from_micros(self.lease_micros.load(std::sync::atomic::Ordering::Relaxed))
            }

            /// After a task: the worker's wrap-up begins (if it has one), and with no task
            /// left in hand its idle clock starts when the wrap-up ends.
            async fn after_task(tx: &mut Tx, worker_id: WorkerId, now: jiff::Timestamp) -> Result<()> {
                let row = sqlx::query(concat!("SELECT ", worker_columns!(), " FROM workers WHERE id = $1", $for_update))
                    .bind(worker_id.as_uuid())
                    .fetch_one(&mut **tx)
                    .await?;
                let worker = Self::worker_from_row(&row)?;
                let still_holding: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM tasks WHERE worker_id = $1 AND status = 'claimed'",
                )
                .bind(worker_id.as_uuid())
                .fetch_one(&mut **tx)
                .await?;
                let wrap_up = jiff::SignedDuration::from_secs(i64::from(worker.wrap_up_secs));
                let until = now.checked_add(wrap_up).unwrap_or(now);
                let accepting = matches!(worker.presence, Presence::Available | Presence::Busy);
                if accepting && worker.wrap_up_secs > 0 {
                    Self::change_presence(tx, worker_id, &Presence::WrapUp { until }, now).await?;
                }
                if still_holding == 0 {
                    sqlx::query("UPDATE workers SET idle_since = $1 WHERE id = $2")
                        .bind(micros(until))
                        .bind(worker_id.as_uuid())
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            /// The tasks a worker holds, per channel.
            async fn load_of(tx: &mut Tx, worker: WorkerId) -> Result<routing::Load> {
                let rows = sqlx::query(
                    "SELECT channel, COUNT(*) FROM tasks WHERE worker_id = $1 AND status = 'claimed' GROUP BY channel",
                )
                .bind(worker.as_uuid())
                .fetch_all(&mut **tx)
                .await?;
                let mut load = routing::Load::new();
                for row in rows {
                    let channel: routing::Channel = rows::from_json(Json::String(row.try_get(0)?))?;
                    load.insert(channel, u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(u32::MAX));
                }
                Ok(load)
            }

            /// The service received and the weights of the engagements of `tasks`.
            async fn shares_of(tx: &mut Tx, tasks: &[Task]) -> Result<routing::Shares> {
                let engagements: std::collections::BTreeSet<EngagementId> =
                    tasks.iter().map(|t| t.engagement_id).collect();
                let mut shares = routing::Shares::default();
                if engagements.is_empty() {
                    return Ok(shares);
                }
                let rows = sqlx::query(concat!(
                    "SELECT e.id, e.settings, s.served FROM engagements e \
                     LEFT JOIN engagement_shares s ON s.engagement_id = e.id WHERE ", $engagement_in_list
                ))
                .bind(serde_json::to_string(&engagements).unwrap_or_default())
                .fetch_all(&mut **tx)
                .await?;
                for row in rows {
                    let engagement = EngagementId::from_uuid(row.try_get(0)?);
                    let settings: EngagementSettings = rows::from_json(row.try_get::<SqlJson<Json>, _>(1)?.0)?;
                    if let Some(weight) = settings.weight {
                        shares.weights.insert(engagement, weight);
                    }
                    if let Some(served) = row.try_get::<Option<i64>, _>(2)? {
                        shares.served.insert(engagement, u64::try_from(served).unwrap_or(0));
                    }
                }
                Ok(shares)
            }

            /// Open tasks needing one of `skills`, best first, after the position `after`.
            ///
            /// One index range per skill, merged: `skill IN (…) ORDER BY serve_by` would sort
            /// every open task of those skills on each claim.
            async fn open_tasks(
                tx: &mut Tx,
                skills: &[String],
                after: Option<&Task>,
                now: jiff::Timestamp,
            ) -> Result<Vec<Task>> {
                let (serve_by, queued_at, id) = after.map_or((i64::MIN, i64::MIN, Uuid::nil()), |t| {
                    (micros(t.serve_by), micros(t.queued_at), t.id.as_uuid())
                });
                if skills.is_empty() {
                    return Ok(Vec::new());
                }
                // Tasks outside their hours are left out here rather than passed over one
                // by one: a campaign's evening may hold many.
                let now_at = skills.len() + 5;
                let ranges: Vec<String> = (0..skills.len())
                    .map(|n| {
                        format!(
                            concat!(
                                "SELECT * FROM (SELECT ", task_columns!(), " FROM tasks WHERE status = 'open' \
                                 AND skill = ${} AND (serve_by > $1 OR (serve_by = $1 AND (queued_at > $2 \
                                 OR (queued_at = $2 AND id > $3)))) \
                                 AND (opens_at IS NULL OR opens_at <= ${now} OR reserved_until > ${now}) \
                                 AND (closes_at IS NULL OR closes_at > ${now} OR reserved_until > ${now}) \
                                 ORDER BY serve_by, queued_at, id LIMIT $4) AS s{}"
                            ),
                            n + 5,
                            n,
                            now = now_at
                        )
                    })
                    .collect();
                let sql = format!("{} ORDER BY serve_by, queued_at, id LIMIT $4", ranges.join(" UNION ALL "));
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(serve_by)
                    .bind(queued_at)
                    .bind(id)
                    .bind(CLAIM_BATCH);
                for skill in skills {
                    query = query.bind(skill.as_str());
                }
                let rows = query.bind(micros(now)).fetch_all(&mut **tx).await?;
                rows.iter().map(Self::task_from_row).collect()
            }

            fn article_from_row(row: &DbRow) -> Result<delego_core::knowledge::Article> {
                Ok(delego_core::knowledge::Article {
                    id: delego_core::id::ArticleId::from_uuid(row.try_get(0)?),
                    client_id: ClientId::from_uuid(row.try_get(1)?),
                    engagement_id: EngagementId::from_uuid(row.try_get(2)?),
                    title: row.try_get(3)?,
                    body: row.try_get(4)?,
                    tags: rows::from_json(row.try_get::<SqlJson<Json>, _>(5)?.0)?,
                    created_by: rows::from_json(row.try_get::<SqlJson<Json>, _>(6)?.0)?,
                    updated_by: rows::from_json(row.try_get::<SqlJson<Json>, _>(7)?.0)?,
                    created_at: timestamp(row.try_get(8)?)?,
                    updated_at: timestamp(row.try_get(9)?)?,
                    version: row.try_get(10)?,
                })
            }

            async fn load_article(
                tx: &mut Tx,
                id: delego_core::id::ArticleId,
            ) -> Result<delego_core::knowledge::Article> {
                let row = sqlx::query(concat!(
                    "SELECT ", article_columns!(), " FROM articles WHERE id = $1", $for_update
                ))
                .bind(id.as_uuid())
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(StoreError::NotFound("article"))?;
                Self::article_from_row(&row)
            }

            /// Adds an article to `engagement`'s knowledge base in the caller's transaction,
            /// audited on the item it was written for, if any.
            #[allow(clippy::too_many_arguments)]
            async fn insert_article(
                tx: &mut Tx,
                (client, engagement): (ClientId, EngagementId),
                item: Option<WorkItemId>,
                draft: &delego_core::knowledge::ArticleDraft,
                actor: &Actor,
                now: jiff::Timestamp,
            ) -> Result<delego_core::knowledge::Article> {
                let article = delego_core::knowledge::Article {
                    id: delego_core::id::ArticleId::new(),
                    client_id: client,
                    engagement_id: engagement,
                    title: draft.title.clone(),
                    body: draft.body.clone(),
                    tags: draft.tags.clone(),
                    created_by: actor.clone(),
                    updated_by: actor.clone(),
                    created_at: now,
                    updated_at: now,
                    version: 1,
                };
                sqlx::query(
                    "INSERT INTO articles (id, client_id, engagement_id, title, body, tags, search_text, \
                     created_by, updated_by, created_at, updated_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $9, 1)",
                )
                .bind(article.id.as_uuid())
                .bind(article.client_id.as_uuid())
                .bind(article.engagement_id.as_uuid())
                .bind(&article.title)
                .bind(&article.body)
                .bind(SqlJson(rows::to_json(&article.tags)))
                .bind(draft.search_text())
                .bind(SqlJson(rows::to_json(actor)))
                .bind(micros(now))
                .execute(&mut **tx)
                .await?;
                let detail = json!({
                    "article": article.id,
                    "engagement": engagement,
                    "title": article.title,
                });
                Self::insert_audit(
                    tx,
                    Some(client),
                    item,
                    actor,
                    "article.created",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                Ok(article)
            }

            /// Refuses values of the form's article fields in `data` that name no article of
            /// the engagement's knowledge base, one error per value.
            async fn check_articles(
                tx: &mut Tx,
                engagement: EngagementId,
                form: &delego_core::definition::Form,
                data: &Map<String, Json>,
            ) -> Result<()> {
                use delego_core::definition::{FieldError, FieldType};
                let mut errors = Vec::new();
                for field in &form.fields {
                    let name = field.name.as_str();
                    let values: Vec<(String, &Json)> = match (&field.kind, data.get(name)) {
                        (FieldType::Article, Some(value)) if !value.is_null() => {
                            vec![(name.to_owned(), value)]
                        }
                        (FieldType::List(item), Some(Json::Array(values)))
                            if **item == FieldType::Article =>
                        {
                            values
                                .iter()
                                .enumerate()
                                .map(|(n, value)| (format!("{name}[{n}]"), value))
                                .collect()
                        }
                        _ => continue,
                    };
                    for (path, value) in values {
                        let id = value.as_str().and_then(|text| Uuid::parse_str(text).ok());
                        let found = match id {
                            Some(id) => sqlx::query(
                                "SELECT 1 FROM articles WHERE id = $1 AND engagement_id = $2",
                            )
                            .bind(id)
                            .bind(engagement.as_uuid())
                            .fetch_optional(&mut **tx)
                            .await?
                            .is_some(),
                            None => false,
                        };
                        if !found {
                            errors.push(FieldError {
                                field: path,
                                code: "unknown".into(),
                                message: "no such article in this engagement's knowledge base".into(),
                            });
                        }
                    }
                }
                if errors.is_empty() { Ok(()) } else { Err(StoreError::Invalid(errors)) }
            }

            /// Completes a held task; with `new_article`, first writes it to the knowledge
            /// base and names it in the step form's one article field, in the same
            /// transaction, so that a refused submission leaves no article behind.
            async fn submit(
                &self,
                task_id: TaskId,
                worker_id: WorkerId,
                outcome: Key,
                mut data: Map<String, Json>,
                new_article: Option<delego_core::knowledge::ArticleDraft>,
            ) -> Result<WorkItem> {
                let mut tx = self.begin_write().await?;
                let task = Self::load_task(&mut tx, task_id).await?;
                if !matches!(task.status, TaskStatus::Claimed { worker, .. } if worker == worker_id) {
                    return Err(StoreError::Conflict(format!(
                        "task {task_id} is {} and not held by worker {worker_id}",
                        task.status.name()
                    )));
                }
                let item = Self::load_item(&mut tx, task.item_id).await?;
                let definition = self.definition_for(&mut tx, &item).await?;
                let now = self.now();
                let form = definition.step(&task.step).and_then(|step| step.work()).map(|work| &work.form);
                if let Some(draft) = &new_article {
                    let refuse = |message: &str| {
                        StoreError::Invalid(vec![delego_core::definition::FieldError {
                            field: "new_article".into(),
                            code: "not_allowed".into(),
                            message: message.into(),
                        }])
                    };
                    let field = form
                        .and_then(|form| form.article_field())
                        .map(|field| field.name.as_str())
                        .ok_or_else(|| {
                            refuse("this step's form has no one article field to name a new article in")
                        })?;
                    let chosen = data
                        .get(field)
                        .is_some_and(|value| {
                            !value.is_null() && value.as_str().is_none_or(|text| !text.trim().is_empty())
                        });
                    if chosen {
                        return Err(refuse("choose an existing article or write a new one, not both"));
                    }
                    // The item names its client and engagement: no need to read them again.
                    let article = Self::insert_article(
                        &mut tx,
                        (item.client_id, item.engagement_id),
                        Some(item.id()),
                        draft,
                        &Actor::Worker(worker_id),
                        now,
                    )
                    .await?;
                    data.insert(field.to_owned(), json!(article.id));
                }
                let unknown = match form {
                    Some(form) => Self::register_problems(&mut tx, form, item.client_id, &data).await?,
                    None => Vec::new(),
                };
                let event = Event::TaskSubmitted {
                    step: task.step.clone(),
                    visit: task.visit,
                    worker: worker_id,
                    outcome: outcome.clone(),
                    data,
                };
                let item = Self::with_facts(&mut tx, &definition, item).await?;
                let result = Self::judged(engine::apply(&definition, &item.state, &event, now), unknown)?;
                if let Some(form) = form {
                    Self::check_articles(&mut tx, item.engagement_id, form, &result.state.data).await?;
                }
                sqlx::query(
                    "UPDATE tasks SET status = 'done', outcome = $1, done_at = $2 WHERE id = $3",
                )
                .bind(outcome.as_str())
                .bind(micros(now))
                .bind(task_id.as_uuid())
                .execute(&mut *tx)
                .await?;
                Self::recount_move(&mut tx, &task, Some("claimed"), None).await?;
                Self::after_task(&mut tx, worker_id, now).await?;
                self.commit_outcome(tx, item, &definition, result, &Actor::Worker(worker_id), now)
                    .await
            }
        }

        #[async_trait::async_trait]
        impl crate::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn publish_service(&self, source: &str) -> Result<Arc<ServiceDefinition>> {
                let definition =
                    Arc::new(load_definition(source).map_err(StoreError::InvalidDefinition)?);
                let mut tx = self.begin_write().await?;
                // Nodes starting together all publish the built-in catalog: the first insert
                // wins, the others find the same text and carry on.
                let inserted = sqlx::query(
                    "INSERT INTO services (key, version, source, published_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (key, version) DO NOTHING",
                )
                .bind(definition.key.as_str())
                .bind(i64::from(definition.version))
                .bind(source)
                .bind(micros(self.now()))
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 1 {
                    let detail = json!({"service": definition.key, "version": definition.version});
                    Self::insert_audit(
                        &mut tx,
                        None,
                        None,
                        &Actor::System,
                        "service.published",
                        detail.as_object().cloned().unwrap_or_default(),
                        self.now(),
                    )
                    .await?;
                } else {
                    let stored: String = sqlx::query_scalar(
                        "SELECT source FROM services WHERE key = $1 AND version = $2",
                    )
                    .bind(definition.key.as_str())
                    .bind(i64::from(definition.version))
                    .fetch_one(&mut *tx)
                    .await?;
                    if stored != source {
                        return Err(StoreError::Conflict(format!(
                            "service {} version {} is already published with other content; \
                             publish it as a new version",
                            definition.key, definition.version
                        )));
                    }
                }
                tx.commit().await?;
                self.services.insert(definition.clone());
                Ok(definition)
            }

            async fn service(&self, key: &Key, version: u32) -> Result<Arc<ServiceDefinition>> {
                if let Some(definition) = self.services.get(key, version) {
                    return Ok(definition);
                }
                self.fetch_service(&self.pool, key, version).await
            }

            async fn create_client(&self, name: Name, actor: &Actor) -> Result<Client> {
                let client = Client {
                    id: ClientId::new(),
                    name,
                    created_at: self.now(),
                };
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO clients (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(client.id.as_uuid())
                    .bind(client.name.as_str())
                    .bind(micros(client.created_at))
                    .execute(&mut *tx)
                    .await?;
                let detail = json!({"name": client.name});
                Self::insert_audit(
                    &mut tx,
                    Some(client.id),
                    None,
                    actor,
                    "client.created",
                    detail.as_object().cloned().unwrap_or_default(),
                    client.created_at,
                )
                .await?;
                tx.commit().await?;
                Ok(client)
            }

            async fn client(&self, id: ClientId) -> Result<Client> {
                let row = sqlx::query("SELECT id, name, created_at FROM clients WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound("client"))?;
                Self::client_from_row(&row)
            }

            async fn clients(&self) -> Result<Vec<Client>> {
                let rows = sqlx::query("SELECT id, name, created_at FROM clients ORDER BY name, id")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::client_from_row).collect()
            }

            async fn create_worker(&self, worker: &Worker, actor: &Actor) -> Result<()> {
                let now = self.now();
                let mut tx = self.begin_write().await?;
                sqlx::query(concat!(
                    "INSERT INTO workers (", worker_columns!(), ", updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                ))
                .bind(worker.id.as_uuid())
                .bind(worker.name.as_str())
                .bind(SqlJson(rows::to_json(&worker.skills)))
                .bind(SqlJson(rows::to_json(&worker.languages)))
                .bind(SqlJson(rows::to_json(&worker.clearances)))
                .bind(SqlJson(rows::to_json(&worker.capacity)))
                .bind(SqlJson(rows::to_json(&worker.presence)))
                .bind(SqlJson(rows::to_json(&worker.certifications)))
                .bind(SqlJson(rows::to_json(&worker.exclusions)))
                .bind(worker.idle_since.map(micros))
                .bind(i64::from(worker.wrap_up_secs))
                .bind(worker.team.as_ref().map(|team| team.as_str().to_owned()))
                .bind(micros(now))
                .execute(&mut *tx)
                .await?;
                let detail = json!({"worker": worker.id, "name": worker.name});
                Self::insert_audit(
                    &mut tx,
                    None,
                    None,
                    actor,
                    "worker.created",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn worker(&self, id: WorkerId) -> Result<Worker> {
                let row = sqlx::query(concat!("SELECT ", worker_columns!(), " FROM workers WHERE id = $1"))
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound("worker"))?;
                Self::worker_from_row(&row)
            }

            async fn set_presence(
                &self,
                id: WorkerId,
                presence: Presence,
                actor: &Actor,
            ) -> Result<Worker> {
                let now = self.now();
                let mut tx = self.begin_write().await?;
                // Becoming available starts the idle clock (unless it runs already); a break
                // or going offline stops it.
                let row = sqlx::query(concat!(
                    "UPDATE workers SET presence = $1, updated_at = $2, \
                     idle_since = CASE WHEN $4 THEN COALESCE(idle_since, $2) ELSE NULL END \
                     WHERE id = $3 RETURNING ", worker_columns!()
                ))
                .bind(SqlJson(rows::to_json(&presence)))
                .bind(micros(now))
                .bind(id.as_uuid())
                .bind(matches!(presence, Presence::Available))
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound("worker"))?;
                let worker = Self::worker_from_row(&row)?;
                let detail = json!({"worker": id, "presence": presence});
                Self::insert_audit(
                    &mut tx,
                    None,
                    None,
                    actor,
                    "worker.presence",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(worker)
            }

            async fn create_engagement(
                &self,
                client_id: ClientId,
                name: Name,
                service_key: &Key,
                service_version: u32,
                settings: EngagementSettings,
                actor: &Actor,
            ) -> Result<Engagement> {
                self.client(client_id).await?;
                let definition = self.service(service_key, service_version).await?;
                Self::check_settings(&definition, &settings)?;
                let engagement = Engagement {
                    id: EngagementId::new(),
                    client_id,
                    name,
                    service_key: service_key.clone(),
                    service_version,
                    settings,
                    created_at: self.now(),
                };
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO engagements (id, client_id, name, service_key, service_version, created_at, settings) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(engagement.id.as_uuid())
                .bind(client_id.as_uuid())
                .bind(engagement.name.as_str())
                .bind(service_key.as_str())
                .bind(i64::from(service_version))
                .bind(micros(engagement.created_at))
                .bind(SqlJson(rows::to_json(&engagement.settings)))
                .execute(&mut *tx)
                .await?;
                let detail = json!({
                    "engagement": engagement.id,
                    "service": service_key,
                    "version": service_version,
                });
                Self::insert_audit(
                    &mut tx,
                    Some(client_id),
                    None,
                    actor,
                    "engagement.created",
                    detail.as_object().cloned().unwrap_or_default(),
                    engagement.created_at,
                )
                .await?;
                tx.commit().await?;
                Ok(engagement)
            }

            async fn set_engagement_settings(
                &self,
                id: EngagementId,
                settings: EngagementSettings,
                actor: &Actor,
            ) -> Result<Engagement> {
                let mut engagement = self.engagement(id).await?;
                let definition = self.service(&engagement.service_key, engagement.service_version).await?;
                Self::check_settings(&definition, &settings)?;
                let mut tx = self.begin_write().await?;
                sqlx::query("UPDATE engagements SET settings = $1 WHERE id = $2")
                    .bind(SqlJson(rows::to_json(&settings)))
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                // New targets or a new calendar move every open item's next SLA look.
                sqlx::query(
                    "UPDATE work_items SET sla_check_at = NULL \
                     WHERE engagement_id = $1 AND status IN ('active', 'waiting')",
                )
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
                let detail = json!({"before": engagement.settings, "after": settings});
                Self::insert_audit(
                    &mut tx,
                    Some(engagement.client_id),
                    None,
                    actor,
                    "engagement.settings_changed",
                    detail.as_object().cloned().unwrap_or_default(),
                    self.now(),
                )
                .await?;
                tx.commit().await?;
                engagement.settings = settings;
                Ok(engagement)
            }

            async fn engagement(&self, id: EngagementId) -> Result<Engagement> {
                Self::fetch_engagement(&self.pool, id).await
            }

            async fn create_item(&self, new: NewItem, actor: &Actor) -> Result<Created<WorkItem>> {
                let engagement = self.engagement(new.engagement_id).await?;
                if let Some(key) = &new.idempotency_key
                    && let Some(existing) = self.find_by_idempotency_key(engagement.client_id, key).await?
                {
                    return Ok(Created { value: existing, created: false });
                }
                let definition = self.tuned_definition(&engagement).await?;
                let requester_id = match new.requester_id {
                    Some(id) => Some(id),
                    None => self.requester_named_by(&definition, engagement.client_id, &new.data).await?,
                };
                let now = self.now();
                let mut conn = self.pool.acquire().await?;
                let unknown =
                    Self::register_problems(&mut conn, &definition.intake, engagement.client_id, &new.data).await?;
                // Lookups read the values as the item will store them (a phone number in
                // E.164), and only for data the engine will take: refused data needs none.
                let facts = match validate_form(&definition.intake, &new.data, Completeness::Whole) {
                    Ok(normalised) => {
                        Self::facts_of(&mut conn, &definition, engagement.client_id, engagement.id, None, &normalised, now)
                            .await?
                    }
                    Err(_) => Map::new(),
                };
                drop(conn);
                let started =
                    engine::start_with_facts(&definition, WorkItemId::new(), &new.data, new.priority, facts, now);
                let outcome = Self::judged(started, unknown)?;
                let item = WorkItem {
                    client_id: engagement.client_id,
                    engagement_id: engagement.id,
                    service_key: engagement.service_key.clone(),
                    service_version: engagement.service_version,
                    requester_id,
                    state: outcome.state,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                };
                let mut tx = self.begin_write().await?;
                let inserted = sqlx::query(concat!(
                    "INSERT INTO work_items (", item_columns!(), ", status, step, priority, idempotency_key, sla_check_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                     ON CONFLICT (client_id, idempotency_key) DO NOTHING"
                ))
                .bind(item.id().as_uuid())
                .bind(item.client_id.as_uuid())
                .bind(item.engagement_id.as_uuid())
                .bind(item.service_key.as_str())
                .bind(i64::from(item.service_version))
                .bind(item.requester_id.map(|r| r.as_uuid()))
                .bind(SqlJson(rows::to_json(&item.state)))
                .bind(item.version)
                .bind(micros(now))
                .bind(micros(now))
                .bind(item.state.position.status())
                .bind(item.state.position.step().map(|s| s.as_str().to_owned()))
                .bind(item.state.priority.rank())
                .bind(new.idempotency_key.as_deref())
                .bind(Self::next_sla_look(&item, &definition, now))
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    // A concurrent create with the same key won the race: answer with its item.
                    tx.rollback().await?;
                    let key = new.idempotency_key.as_deref().unwrap_or_default();
                    let existing = self
                        .find_by_idempotency_key(engagement.client_id, key)
                        .await?
                        .ok_or_else(|| StoreError::Conflict("idempotency key in use".into()))?;
                    return Ok(Created { value: existing, created: false });
                }
                let opened = Self::apply_effects(&mut tx, &item, outcome.effects, actor, now).await?;
                tx.commit().await?;
                if opened {
                    self.wake();
                }
                Ok(Created { value: item, created: true })
            }

            async fn item(&self, id: WorkItemId) -> Result<WorkItem> {
                let row = sqlx::query(concat!("SELECT ", item_columns!(), " FROM work_items WHERE id = $1"))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound("work item"))?;
                Self::item_from_row(&row)
            }

            async fn items(&self, filter: &ItemFilter) -> Result<Vec<WorkItem>> {
                let text = filter.text.as_deref().map(str::trim).filter(|text| !text.is_empty());
                // Fewer digits would find ids by chance rather than by their reference.
                let id_digits = text
                    .map(|text| text.replace('-', "").to_ascii_lowercase())
                    .filter(|digits| digits.len() >= 8 && digits.chars().all(|c| c.is_ascii_hexdigit()));
                let rows = sqlx::query(concat!(
                    "SELECT ", item_columns!(), " FROM work_items \
                     WHERE ($1 IS NULL OR client_id = $1) AND ($2 IS NULL OR engagement_id = $2) \
                     AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id < $4) \
                     AND ($6 IS NULL OR ", $client_in_list, ") \
                     AND ($7 IS NULL OR lower(state -> 'data' ->> 'subject') LIKE $7 ESCAPE '\\' \
                          OR ", $id_hex, " LIKE $8) \
                     ORDER BY id DESC LIMIT $5"
                ))
                .bind(filter.client_id.map(|c| c.as_uuid()))
                .bind(filter.engagement_id.map(|e| e.as_uuid()))
                .bind(filter.status.as_deref())
                .bind(filter.after.map(|a| a.as_uuid()))
                .bind(i64::from(filter.limit.clamp(1, 1000)))
                .bind(filter.client_ids.as_ref().map(|ids| {
                    serde_json::to_string(&ids.iter().map(|id| id.to_string()).collect::<Vec<_>>())
                        .unwrap_or_default()
                }))
                .bind(text.map(|text| crate::sql::contains_pattern(&text.to_lowercase())))
                .bind(id_digits.map(|digits| crate::sql::contains_pattern(&digits)))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::item_from_row).collect()
            }

            async fn update_item_data(
                &self,
                id: WorkItemId,
                expected_version: i64,
                changes: Map<String, Json>,
                actor: &Actor,
            ) -> Result<WorkItem> {
                let mut tx = self.begin_write().await?;
                let mut item = Self::load_item(&mut tx, id).await?;
                if item.version != expected_version {
                    return Err(StoreError::Conflict(format!(
                        "work item {id} is at version {}, not {expected_version}",
                        item.version
                    )));
                }
                if item.state.position.is_terminal() {
                    return Err(StoreError::Rejected(engine::Rejection::Finished));
                }
                let definition = self.definition_for(&mut tx, &item).await?;
                let unknown = Self::register_problems(&mut tx, &definition.intake, item.client_id, &changes).await?;
                let checked = validate_form(&definition.intake, &changes, Completeness::Partial)
                    .map_err(engine::Rejection::InvalidData);
                let values = Self::judged(checked, unknown)?;
                let before: Map<String, Json> = values
                    .keys()
                    .map(|k| (k.clone(), item.state.data.get(k).cloned().unwrap_or(Json::Null)))
                    .collect();
                item.state.data.extend(values.clone());
                let now = self.now();
                let detail = json!({"before": before, "after": values});
                Self::insert_audit(
                    &mut tx,
                    Some(item.client_id),
                    Some(id),
                    actor,
                    "item.updated",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                // A changed impact or urgency ranks the item anew by the priority matrix.
                if let Some(matrix) = &definition.priority_matrix
                    && [&matrix.impact_field, &matrix.urgency_field].iter().any(|f| values.contains_key(f.as_str()))
                    && let Some(priority) = matrix.priority(&item.state.data)
                    && priority != item.state.priority
                {
                    let reason = format!(
                        "impact {} × urgency {}",
                        item.state.data[matrix.impact_field.as_str()].as_str().unwrap_or_default(),
                        item.state.data[matrix.urgency_field.as_str()].as_str().unwrap_or_default(),
                    );
                    self.reprioritise(&mut tx, &mut item, &definition, priority, &reason, now).await?;
                }
                item.version += 1;
                item.updated_at = now;
                Self::write_item(&mut tx, &item, expected_version, &definition).await?;
                tx.commit().await?;
                Ok(item)
            }

            async fn apply_event(
                &self,
                id: WorkItemId,
                expected_version: Option<i64>,
                event: Event,
                actor: &Actor,
            ) -> Result<WorkItem> {
                let mut tx = self.begin_write().await?;
                let item = Self::load_item(&mut tx, id).await?;
                if let Some(expected) = expected_version
                    && expected != item.version
                {
                    return Err(StoreError::Conflict(format!(
                        "work item {id} is at version {}, not {expected}",
                        item.version
                    )));
                }
                let definition = self.definition_for(&mut tx, &item).await?;
                let now = self.now();
                let item = Self::with_facts(&mut tx, &definition, item).await?;
                let outcome = engine::apply(&definition, &item.state, &event, now)?;
                self.commit_outcome(tx, item, &definition, outcome, actor, now).await
            }

            async fn item_history(&self, id: WorkItemId) -> Result<Vec<AuditEvent>> {
                let rows = sqlx::query(
                    "SELECT id, client_id, item_id, actor, action, detail, at FROM audit_events \
                     WHERE item_id = $1 ORDER BY seq",
                )
                .bind(id.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::audit_from_row).collect()
            }

            async fn set_parent(
                &self,
                id: WorkItemId,
                parent: Option<WorkItemId>,
                actor: &Actor,
            ) -> Result<crate::ItemLinks> {
                let refuse = |message: &str| {
                    StoreError::Invalid(vec![delego_core::definition::FieldError {
                        field: "parent".into(),
                        code: "invalid".into(),
                        message: message.into(),
                    }])
                };
                if parent == Some(id) {
                    return Err(refuse("an item cannot be its own parent"));
                }
                let now = self.now();
                let mut tx = self.begin_write().await?;
                // The parent is locked before the child, as a resolving parent locks its
                // children, so that the two can never wait on each other.
                let new_parent = match parent {
                    Some(parent) => Some(Self::load_item(&mut tx, parent).await?),
                    None => None,
                };
                let item = Self::load_item(&mut tx, id).await?;
                if item.state.position.is_terminal() {
                    return Err(StoreError::Rejected(engine::Rejection::Finished));
                }
                const PARENT_OF: &str = "SELECT parent_id FROM work_items WHERE id = $1";
                let current: Option<Uuid> =
                    sqlx::query_scalar(PARENT_OF).bind(id.as_uuid()).fetch_one(&mut *tx).await?;
                let current = current.map(WorkItemId::from_uuid);
                if current == parent {
                    // Read after the transaction: a write holds one connection.
                    tx.rollback().await?;
                    return self.item_links(id).await;
                }
                if let Some(new_parent) = &new_parent {
                    // Another client's item answers like a missing one.
                    if new_parent.client_id != item.client_id {
                        return Err(StoreError::NotFound("work item"));
                    }
                    if new_parent.state.position.is_terminal() {
                        return Err(StoreError::Conflict(format!(
                            "{} is finished: only an open item takes linked items",
                            new_parent.id().reference()
                        )));
                    }
                    let grandparent: Option<Uuid> = sqlx::query_scalar(PARENT_OF)
                        .bind(new_parent.id().as_uuid())
                        .fetch_one(&mut *tx)
                        .await?;
                    if grandparent.is_some() {
                        return Err(refuse("that item is itself linked to a parent; link to its parent instead"));
                    }
                    let has_children = sqlx::query("SELECT 1 FROM work_items WHERE parent_id = $1 LIMIT 1")
                        .bind(id.as_uuid())
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_some();
                    if has_children {
                        return Err(refuse("this item has linked items of its own, so it cannot follow another"));
                    }
                }
                sqlx::query("UPDATE work_items SET parent_id = $1, version = version + 1, updated_at = $2 WHERE id = $3")
                    .bind(parent.map(|p| p.as_uuid()))
                    .bind(micros(now))
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                let mut records = Vec::new();
                if let Some(old) = current {
                    records.push((id, "item.unlinked", json!({"parent": old})));
                    records.push((old, "item.child_unlinked", json!({"child": id})));
                }
                if let Some(new) = parent {
                    records.push((id, "item.linked", json!({"parent": new})));
                    records.push((new, "item.child_linked", json!({"child": id})));
                }
                for (on, action, detail) in records {
                    let detail = detail.as_object().cloned().unwrap_or_default();
                    Self::insert_audit(&mut tx, Some(item.client_id), Some(on), actor, action, detail, now)
                        .await?;
                }
                tx.commit().await?;
                self.item_links(id).await
            }

            async fn item_links(&self, id: WorkItemId) -> Result<crate::ItemLinks> {
                let parent: Option<Uuid> =
                    sqlx::query_scalar::<_, Option<Uuid>>("SELECT parent_id FROM work_items WHERE id = $1")
                        .bind(id.as_uuid())
                        .fetch_optional(&self.pool)
                        .await?
                        .ok_or(StoreError::NotFound("work item"))?;
                let rows = sqlx::query("SELECT id, status FROM work_items WHERE parent_id = $1 ORDER BY id")
                    .bind(id.as_uuid())
                    .fetch_all(&self.pool)
                    .await?;
                let children = rows
                    .iter()
                    .map(|row| {
                        Ok(crate::LinkedItem {
                            id: WorkItemId::from_uuid(row.try_get(0)?),
                            status: row.try_get(1)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(crate::ItemLinks {
                    parent: parent.map(WorkItemId::from_uuid),
                    children,
                })
            }

            async fn claim_next_task(&self, worker_id: WorkerId) -> Result<Option<Claimed>> {
                self.claims.submit(worker_id, |group| self.claim_group(group)).await
            }

            async fn submit_task(
                &self,
                task_id: TaskId,
                worker_id: WorkerId,
                outcome: Key,
                data: Map<String, Json>,
            ) -> Result<WorkItem> {
                self.submit(task_id, worker_id, outcome, data, None).await
            }

            async fn submit_task_with_article(
                &self,
                task_id: TaskId,
                worker_id: WorkerId,
                outcome: Key,
                data: Map<String, Json>,
                article: delego_core::knowledge::ArticleDraft,
            ) -> Result<WorkItem> {
                self.submit(task_id, worker_id, outcome, data, Some(article)).await
            }

            async fn release_task(&self, task_id: TaskId, worker_id: WorkerId) -> Result<Task> {
                let mut tx = self.begin_write().await?;
                let task = Self::load_task(&mut tx, task_id).await?;
                if !matches!(task.status, TaskStatus::Claimed { worker, .. } if worker == worker_id) {
                    return Err(StoreError::Conflict(format!(
                        "task {task_id} is {} and not held by worker {worker_id}",
                        task.status.name()
                    )));
                }
                let task = Self::requeue(&mut tx, task, "task.released", None, self.now()).await?;
                tx.commit().await?;
                self.wake();
                Ok(task)
            }

            fn set_task_lease(&self, lease: jiff::SignedDuration) {
                let micros = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX).max(1);
                self.lease_micros.store(micros, std::sync::atomic::Ordering::Relaxed);
            }

            fn wake_ups(&self) -> tokio::sync::watch::Receiver<u64> {
                self.wake.subscribe()
            }

            async fn renew_lease(&self, task_id: TaskId, worker_id: WorkerId) -> Result<Task> {
                let now = self.now();
                let until = now.checked_add(self.lease()).unwrap_or(now);
                let mut tx = self.begin_write().await?;
                let mut task = Self::load_task(&mut tx, task_id).await?;
                let renewed = sqlx::query(
                    "UPDATE tasks SET lease_until = $1 WHERE id = $2 AND worker_id = $3 AND status = 'claimed'",
                )
                .bind(micros(until))
                .bind(task_id.as_uuid())
                .bind(worker_id.as_uuid())
                .execute(&mut *tx)
                .await?;
                if renewed.rows_affected() == 0 {
                    return Err(StoreError::Conflict(format!(
                        "task {task_id} is {} and not held by worker {worker_id}: its lease may have lapsed",
                        task.status.name()
                    )));
                }
                tx.commit().await?;
                task.lease_until = Some(until);
                Ok(task)
            }

            async fn expire_leases(&self) -> Result<usize> {
                let now = self.now();
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(concat!(
                    "SELECT ", task_columns!(), " FROM tasks WHERE status = 'claimed' AND lease_until < $1 \
                     ORDER BY lease_until LIMIT 500", $skip_locked
                ))
                .bind(micros(now))
                .fetch_all(&mut *tx)
                .await?;
                let lapsed = rows.iter().map(Self::task_from_row).collect::<Result<Vec<_>>>()?;
                let count = lapsed.len();
                for task in lapsed {
                    Self::requeue(&mut tx, task, "task.lease_expired", None, now).await?;
                }
                tx.commit().await?;
                if count > 0 {
                    self.wake();
                }
                Ok(count)
            }

            async fn hand_back_held_tasks(&self, keep_for: jiff::SignedDuration) -> Result<usize> {
                let now = self.now();
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(concat!(
                    "SELECT ", task_columns!(), " FROM tasks WHERE status = 'claimed'", $skip_locked
                ))
                .fetch_all(&mut *tx)
                .await?;
                let held = rows.iter().map(Self::task_from_row).collect::<Result<Vec<_>>>()?;
                let count = held.len();
                let until = now.checked_add(keep_for).unwrap_or(now);
                for task in held {
                    let holder = match task.status {
                        TaskStatus::Claimed { worker, .. } => Some((worker, until)),
                        _ => None,
                    };
                    Self::requeue(&mut tx, task, "task.handed_back", holder, now).await?;
                }
                tx.commit().await?;
                Ok(count)
            }

            async fn item_tasks(&self, id: WorkItemId) -> Result<Vec<Task>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", task_columns!(), " FROM tasks WHERE item_id = $1 ORDER BY visit"
                ))
                .bind(id.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::task_from_row).collect()
            }

            async fn held_tasks(&self, worker: WorkerId) -> Result<Vec<Task>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", task_columns!(),
                    " FROM tasks WHERE worker_id = $1 AND status = 'claimed' ORDER BY claimed_at, id"
                ))
                .bind(worker.as_uuid())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::task_from_row).collect()
            }

            async fn sla_status(&self, item: &WorkItem) -> Result<Vec<delego_core::sla::SlaStatus>> {
                let engagement = self.engagement(item.engagement_id).await?;
                let definition = self.tuned_definition(&engagement).await?;
                Ok(delego_core::sla::status(
                    &item.state.sla,
                    &definition.sla.targets(),
                    &definition.calendar,
                    self.now(),
                ))
            }

            async fn worker_load(&self, worker: WorkerId) -> Result<routing::Load> {
                let mut tx = self.pool.begin().await?;
                let load = Self::load_of(&mut tx, worker).await?;
                tx.commit().await?;
                Ok(load)
            }

            async fn task(&self, id: TaskId) -> Result<Task> {
                let row = sqlx::query(concat!("SELECT ", task_columns!(), " FROM tasks WHERE id = $1"))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound("task"))?;
                Self::task_from_row(&row)
            }

            async fn start_task(&self, task_id: TaskId, worker_id: WorkerId) -> Result<Task> {
                let mut tx = self.begin_write().await?;
                let task = Self::load_task(&mut tx, task_id).await?;
                if !matches!(task.status, TaskStatus::Claimed { worker, .. } if worker == worker_id) {
                    return Err(StoreError::Conflict(format!(
                        "task {task_id} is {} and not held by worker {worker_id}",
                        task.status.name()
                    )));
                }
                let now = self.now();
                // Starting twice keeps the first start: handle time runs from there.
                sqlx::query("UPDATE tasks SET started_at = COALESCE(started_at, $1) WHERE id = $2")
                    .bind(micros(now))
                    .bind(task_id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                let detail = json!({"task": task_id, "step": task.step});
                Self::insert_audit(
                    &mut tx,
                    Some(task.client_id),
                    Some(task.item_id),
                    &Actor::Worker(worker_id),
                    "task.started",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(task)
            }

            async fn add_message(&self, new: NewMessage) -> Result<(Message, WorkItem)> {
                let mut tx = self.begin_write().await?;
                let mut item = Self::load_item(&mut tx, new.item_id).await?;
                let now = self.now();
                // The requester's messages start the next-response clock; the provider's
                // public answers stop the response clocks.
                let from_person = matches!(new.author, Actor::User(_) | Actor::Worker(_) | Actor::Operator(_));
                let clocks_before = item.state.sla.clone();
                if !item.state.position.is_terminal() {
                    if new.event.is_some() {
                        item.state.sla.requester_wrote(now);
                    } else if new.visibility == Visibility::Public && from_person {
                        item.state.sla.responded(now);
                    }
                }
                let clocks_changed = item.state.sla != clocks_before;
                let message = Self::insert_message(
                    &mut tx,
                    &item,
                    new.author.clone(),
                    new.visibility,
                    new.body,
                    new.attachments,
                    new.quoted,
                    now,
                )
                .await?;
                let waiting_for_it = new.event.filter(|_| {
                    matches!(item.state.position, delego_core::engine::Position::Waiting { .. })
                });
                if waiting_for_it.is_none() && !clocks_changed {
                    tx.commit().await?;
                    return Ok((message, item));
                }
                let definition = self.definition_for(&mut tx, &item).await?;
                // Waiting, but for something else: the message is kept, the item stays.
                let outcome = waiting_for_it
                    .and_then(|name| engine::apply(&definition, &item.state, &Event::External { name }, now).ok());
                match outcome {
                    Some(outcome) => {
                        let item = self.commit_outcome(tx, item, &definition, outcome, &new.author, now).await?;
                        Ok((message, item))
                    }
                    None if clocks_changed => {
                        let expected = item.version;
                        item.version += 1;
                        item.updated_at = now;
                        Self::write_item(&mut tx, &item, expected, &definition).await?;
                        tx.commit().await?;
                        Ok((message, item))
                    }
                    None => {
                        tx.commit().await?;
                        Ok((message, item))
                    }
                }
            }

            async fn messages(&self, item: WorkItemId, include_internal: bool) -> Result<Vec<Message>> {
                let rows = sqlx::query(
                    "SELECT id, item_id, client_id, author, visibility, body, attachments, created_at, merged_from, \
                     quoted FROM messages WHERE item_id = $1 AND ($2 OR visibility = 'public') \
                     ORDER BY created_at, id",
                )
                .bind(item.as_uuid())
                .bind(include_internal)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::message_from_row).collect()
            }

            async fn merge_items(
                &self,
                duplicate: WorkItemId,
                survivor: WorkItemId,
                actor: &Actor,
            ) -> Result<crate::Merged> {
                let refused = |code: &str, message: &str| {
                    StoreError::Invalid(vec![delego_core::definition::FieldError {
                        field: "into".into(),
                        code: code.into(),
                        message: message.into(),
                    }])
                };
                if duplicate == survivor {
                    return Err(refused("same_item", "an item cannot be merged into itself"));
                }
                let mut tx = self.begin_write().await?;
                // Locked in id order, so that two merges of the same pair wait rather than
                // deadlock.
                let (low, high) = (duplicate.min(survivor), duplicate.max(survivor));
                let low = Self::load_item(&mut tx, low).await?;
                let high = Self::load_item(&mut tx, high).await?;
                let (mut merged, kept) = if low.id() == duplicate { (low, high) } else { (high, low) };
                if merged.client_id != kept.client_id {
                    return Err(refused("other_client", "both items must be of the same client"));
                }
                if kept.state.position.is_terminal() {
                    return Err(StoreError::Rejected(engine::Rejection::Finished));
                }
                let definition = self.definition_for(&mut tx, &merged).await?;
                let now = self.now();
                let outcome = engine::apply(&definition, &merged.state, &Event::Merge { into: survivor }, now)?;
                let expected = merged.version;
                merged.state = outcome.state;
                merged.version += 1;
                merged.updated_at = now;
                Self::write_item(&mut tx, &merged, expected, &definition).await?;
                Self::apply_effects(&mut tx, &merged, outcome.effects, actor, now).await?;
                // A message moved before, from an earlier duplicate, keeps its first origin.
                let messages = sqlx::query(
                    "UPDATE messages SET item_id = $1, merged_from = COALESCE(merged_from, $2) WHERE item_id = $2",
                )
                .bind(survivor.as_uuid())
                .bind(duplicate.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let attachments = sqlx::query("UPDATE attachments SET item_id = $1 WHERE item_id = $2")
                    .bind(survivor.as_uuid())
                    .bind(duplicate.as_uuid())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let reference = duplicate.reference();
                let note = format!("Merged {reference} into this item: its conversation and files are here now.");
                Self::insert_message(&mut tx, &kept, actor.clone(), Visibility::Internal, note, Vec::new(), None, now)
                    .await?;
                let detail = json!({
                    "from": duplicate,
                    "reference": reference,
                    "messages": messages,
                    "attachments": attachments,
                });
                Self::insert_audit(
                    &mut tx,
                    Some(kept.client_id),
                    Some(survivor),
                    actor,
                    "item.merged_in",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(crate::Merged { duplicate: merged, survivor: kept })
            }

            async fn record_csat(
                &self,
                item_id: WorkItemId,
                rating: u8,
                comment: Option<String>,
            ) -> Result<CsatResponse> {
                if !(1..=5).contains(&rating) {
                    return Err(StoreError::Invalid(vec![delego_core::definition::FieldError {
                        field: "rating".into(),
                        code: "out_of_range".into(),
                        message: "a rating is 1 to 5".into(),
                    }]));
                }
                let mut tx = self.begin_write().await?;
                let item = Self::load_item(&mut tx, item_id).await?;
                if !matches!(item.state.position, delego_core::engine::Position::Completed { .. }) {
                    return Err(StoreError::Conflict("only a finished item can be rated".into()));
                }
                let now = self.now();
                let inserted = sqlx::query(
                    "INSERT INTO csat_responses (item_id, rating, comment, at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (item_id) DO NOTHING",
                )
                .bind(item_id.as_uuid())
                .bind(i64::from(rating))
                .bind(comment.as_deref())
                .bind(micros(now))
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::Conflict("this item was already rated".into()));
                }
                let detail = json!({"rating": rating});
                let requester = item.requester_id.map_or(Actor::System, Actor::Requester);
                Self::insert_audit(
                    &mut tx,
                    Some(item.client_id),
                    Some(item_id),
                    &requester,
                    "csat.recorded",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(CsatResponse { item_id, rating, comment, at: now })
            }

            async fn csat(&self, item: WorkItemId) -> Result<Option<CsatResponse>> {
                sqlx::query("SELECT item_id, rating, comment, at FROM csat_responses WHERE item_id = $1")
                    .bind(item.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| Self::csat_from_row(&row))
                    .transpose()
            }

            async fn take_outgoing(&self, limit: u32) -> Result<Vec<Outgoing>> {
                let now = self.now();
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(concat!(
                    "SELECT id, client_id, item_id, message FROM outbox WHERE sent_at IS NULL \
                     AND (lease_until IS NULL OR lease_until <= $2) ORDER BY created_at, id LIMIT $1", $skip_locked
                ))
                .bind(i64::from(limit))
                .bind(micros(now))
                .fetch_all(&mut *tx)
                .await?;
                let lease_until = micros(now.checked_add(crate::OUTBOX_LEASE).unwrap_or(now));
                let mut taken = Vec::with_capacity(rows.len());
                for row in rows {
                    let id: Uuid = row.try_get(0)?;
                    sqlx::query("UPDATE outbox SET lease_until = $1 WHERE id = $2")
                        .bind(lease_until)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    taken.push(Outgoing {
                        id,
                        client_id: ClientId::from_uuid(row.try_get(1)?),
                        item_id: WorkItemId::from_uuid(row.try_get(2)?),
                        message: row.try_get::<SqlJson<Json>, _>(3)?.0,
                    });
                }
                tx.commit().await?;
                Ok(taken)
            }

            async fn outgoing_delivered(&self, id: Uuid) -> Result<()> {
                sqlx::query("UPDATE outbox SET sent_at = $1 WHERE id = $2")
                    .bind(micros(self.now()))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn queues(&self, risk_window: jiff::SignedDuration) -> Result<Vec<crate::QueueStats>> {
                let now_minute = self.now().as_second().div_euclid(60);
                let risk_minutes = risk_window.as_secs().div_euclid(60).max(0);
                let rows = sqlx::query(QUEUE_COUNTS).fetch_all(&self.pool).await?;
                let mut queues: std::collections::BTreeMap<(Uuid, String), crate::QueueStats> = Default::default();
                for row in rows {
                    let engagement: Uuid = row.try_get(0)?;
                    let step: String = row.try_get(1)?;
                    let status: String = row.try_get(2)?;
                    let due_minute: i64 = row.try_get(3)?;
                    let n = u64::try_from(row.try_get::<i64, _>(4)?).unwrap_or(0);
                    let queue = queues.entry((engagement, step.clone())).or_insert_with(|| crate::QueueStats {
                        engagement_id: EngagementId::from_uuid(engagement),
                        step,
                        open: 0,
                        held: 0,
                        oldest_queued_at: None,
                        breached: 0,
                        at_risk: 0,
                    });
                    match status.as_str() {
                        "open" => queue.open += n,
                        _ => queue.held += n,
                    }
                    // A minute bucket counts as breached once it has wholly passed.
                    if due_minute >= 0 && due_minute < now_minute {
                        queue.breached += n;
                    } else if due_minute >= 0 && due_minute <= now_minute + risk_minutes {
                        queue.at_risk += n;
                    }
                }
                for ((engagement, step), queue) in &mut queues {
                    let oldest: Option<i64> = sqlx::query_scalar(
                        "SELECT MIN(queued_at) FROM tasks WHERE engagement_id = $1 AND step = $2 AND status = 'open'",
                    )
                    .bind(*engagement)
                    .bind(step.as_str())
                    .fetch_one(&self.pool)
                    .await?;
                    queue.oldest_queued_at = rows::optional_timestamp(oldest)?;
                }
                Ok(queues.into_values().filter(|q| q.open + q.held > 0).collect())
            }

            async fn queue_tasks(&self, engagement: EngagementId, step: &Key) -> Result<Vec<Task>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", task_columns!(), " FROM tasks WHERE engagement_id = $1 AND step = $2 \
                     AND status IN ('open', 'claimed')"
                ))
                .bind(engagement.as_uuid())
                .bind(step.as_str())
                .fetch_all(&self.pool)
                .await?;
                let mut tasks = rows.iter().map(Self::task_from_row).collect::<Result<Vec<_>>>()?;
                // Sorted here: the two databases put NULL deadlines at opposite ends.
                tasks.sort_by_key(|t| (t.due_at.is_none(), t.due_at, t.serve_by, t.id));
                Ok(tasks)
            }

            async fn tasks_in_hand(&self) -> Result<std::collections::BTreeMap<WorkerId, u64>> {
                let rows = sqlx::query(
                    "SELECT worker_id, COUNT(*) FROM tasks WHERE status = 'claimed' GROUP BY worker_id",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut held = std::collections::BTreeMap::new();
                for row in rows {
                    if let Some(worker) = row.try_get::<Option<Uuid>, _>(0)? {
                        held.insert(WorkerId::from_uuid(worker), u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0));
                    }
                }
                Ok(held)
            }

            async fn verify_queue_counts(&self) -> Result<Vec<String>> {
                let counted = sqlx::query(QUEUE_COUNTS).fetch_all(&self.pool).await?;
                let recounted = sqlx::query(
                    "SELECT engagement_id, step, status, \
                     CASE WHEN due_at IS NULL THEN -1 ELSE due_at / 60000000 END AS due_minute, COUNT(*) \
                     FROM tasks WHERE status IN ('open', 'claimed') \
                     GROUP BY engagement_id, step, status, due_minute",
                )
                .fetch_all(&self.pool)
                .await?;
                type Counts = std::collections::BTreeMap<(Uuid, String, String, i64), i64>;
                let read = |rows: &[DbRow]| -> Result<Counts> {
                    rows.iter()
                        .map(|row| {
                            Ok((
                                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?),
                                row.try_get(4)?,
                            ))
                        })
                        .collect()
                };
                let (counted, recounted) = (read(&counted)?, read(&recounted)?);
                let keys: std::collections::BTreeSet<_> = counted.keys().chain(recounted.keys()).collect();
                Ok(keys
                    .into_iter()
                    .filter_map(|key| {
                        let (kept, actual) = (counted.get(key).copied().unwrap_or(0), recounted.get(key).copied().unwrap_or(0));
                        (kept != actual).then(|| {
                            format!("{} {} {} due minute {}: counter {kept}, tasks {actual}", key.0, key.1, key.2, key.3)
                        })
                    })
                    .collect())
            }

            async fn metric_facts(
                &self,
                from: jiff::Timestamp,
                to: jiff::Timestamp,
                client: Option<ClientId>,
            ) -> Result<delego_core::metrics::Facts> {
                use delego_core::metrics::{Facts, ItemEnd, ItemFact, TaskFact, WorkerPresence};
                let too_long = to.duration_since(from) > crate::MAX_METRICS_WINDOW;
                if from >= to || too_long {
                    let message = if too_long {
                        format!("a window is at most {} days", crate::MAX_METRICS_WINDOW.as_hours() / 24)
                    } else {
                        "the window ends after it starts".to_owned()
                    };
                    return Err(StoreError::Invalid(vec![delego_core::definition::FieldError {
                        field: "to".into(),
                        code: "window".into(),
                        message,
                    }]));
                }
                let (start, end, client) = (micros(from), micros(to), client.map(|c| c.as_uuid()));

                // Items that arrived in the window, or ended in it (an ended item is not
                // updated after its end, so `updated_at` bounds when that was).
                let rows = sqlx::query(
                    "SELECT id, client_id, engagement_id, state, created_at \
                     FROM work_items WHERE created_at < $2 AND ($3 IS NULL OR client_id = $3) \
                     AND (created_at >= $1 OR (status IN ('completed', 'cancelled') AND updated_at >= $1))",
                )
                .bind(start)
                .bind(end)
                .bind(client)
                .fetch_all(&self.pool)
                .await?;
                let mut definitions: std::collections::HashMap<EngagementId, Arc<ServiceDefinition>> = Default::default();
                let mut items = Vec::with_capacity(rows.len());
                let mut results = Vec::new();
                for row in &rows {
                    let engagement_id = EngagementId::from_uuid(row.try_get(2)?);
                    let state: engine::ItemState = rows::from_json(row.try_get::<SqlJson<Json>, _>(3)?.0)?;
                    if let engine::Position::Completed { at, resolution, .. } = &state.position {
                        results.push(delego_core::metrics::ResultFact {
                            client_id: ClientId::from_uuid(row.try_get(1)?),
                            engagement_id,
                            at: *at,
                            result: delego_core::metrics::WorkResult::Resolution(resolution.clone()),
                        });
                    }
                    let ended = match state.position {
                        engine::Position::Cancelled { at, merged_into: Some(_), .. } => Some(ItemEnd::Merged { at }),
                        engine::Position::Cancelled { at, .. } => Some(ItemEnd::Cancelled { at }),
                        engine::Position::Completed { at, .. } => {
                            // Judged under its engagement's targets and calendar of today, as
                            // `sla_status` does.
                            let definition = match definitions.get(&engagement_id) {
                                Some(definition) => definition.clone(),
                                None => {
                                    let engagement = self.engagement(engagement_id).await?;
                                    let definition = self.tuned_definition(&engagement).await?;
                                    definitions.insert(engagement_id, definition.clone());
                                    definition
                                }
                            };
                            let resolution_met = delego_core::sla::status(&state.sla, &definition.sla.targets(), &definition.calendar, at)
                                .into_iter()
                                .find(|clock| clock.kind == delego_core::sla::SlaKind::Resolution)
                                .map(|clock| !clock.breached);
                            Some(ItemEnd::Completed { at, resolution_met })
                        }
                        _ => None,
                    };
                    items.push(ItemFact {
                        client_id: ClientId::from_uuid(row.try_get(1)?),
                        engagement_id,
                        created_at: timestamp(row.try_get(4)?)?,
                        ended,
                    });
                }

                // Tasks waiting or held now, and tasks that ended in or after the window
                // (cancelled ones from before `done_at` recorded cancellations are left out).
                let rows = sqlx::query(
                    "SELECT client_id, engagement_id, worker_id, queued_at, claimed_at, started_at, done_at, status, step, outcome \
                     FROM tasks WHERE queued_at < $2 AND ($3 IS NULL OR client_id = $3) \
                     AND (status IN ('open', 'claimed') OR done_at >= $1)",
                )
                .bind(start)
                .bind(end)
                .bind(client)
                .fetch_all(&self.pool)
                .await?;
                let mut tasks = Vec::with_capacity(rows.len());
                for row in &rows {
                    let status: String = row.try_get(7)?;
                    let done_at = rows::optional_timestamp(row.try_get(6)?)?;
                    if let (Some(at), Some(outcome)) = (done_at, row.try_get::<Option<String>, _>(9)?)
                        && status == "done"
                    {
                        results.push(delego_core::metrics::ResultFact {
                            client_id: ClientId::from_uuid(row.try_get(0)?),
                            engagement_id: EngagementId::from_uuid(row.try_get(1)?),
                            at,
                            result: delego_core::metrics::WorkResult::Outcome {
                                step: rows::key(row.try_get(8)?)?,
                                outcome: rows::key(outcome)?,
                            },
                        });
                    }
                    tasks.push(TaskFact {
                        client_id: ClientId::from_uuid(row.try_get(0)?),
                        engagement_id: EngagementId::from_uuid(row.try_get(1)?),
                        worker_id: row.try_get::<Option<Uuid>, _>(2)?.map(WorkerId::from_uuid),
                        queued_at: timestamp(row.try_get(3)?)?,
                        claimed_at: rows::optional_timestamp(row.try_get(4)?)?,
                        started_at: rows::optional_timestamp(row.try_get(5)?)?,
                        ended_at: rows::optional_timestamp(row.try_get(6)?)?,
                        done: status == "done",
                    });
                }

                let mut workers = Vec::new();
                if client.is_none() {
                    let current = sqlx::query("SELECT id, presence FROM workers ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                    let changes = sqlx::query(
                        "SELECT presence_worker, detail, at FROM audit_events \
                         WHERE action = 'worker.presence' AND at >= $1 AND at < $2 ORDER BY at, seq",
                    )
                    .bind(start)
                    .bind(end)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut changed: std::collections::HashMap<String, Vec<(jiff::Timestamp, Presence)>> = Default::default();
                    for row in &changes {
                        let Some(worker) = row.try_get::<Option<String>, _>(0)? else { continue };
                        let detail = row.try_get::<SqlJson<Json>, _>(1)?.0;
                        let presence: Presence = rows::from_json(detail.get("presence").cloned().unwrap_or_default())?;
                        changed.entry(worker).or_default().push((timestamp(row.try_get(2)?)?, presence));
                    }
                    for row in &current {
                        let worker_id = WorkerId::from_uuid(row.try_get(0)?);
                        let key = worker_id.to_string();
                        let before: Option<SqlJson<Json>> = sqlx::query_scalar(
                            "SELECT detail FROM audit_events WHERE action = 'worker.presence' \
                             AND presence_worker = $1 AND at < $2 ORDER BY at DESC, seq DESC LIMIT 1",
                        )
                        .bind(key.as_str())
                        .bind(start)
                        .fetch_optional(&self.pool)
                        .await?;
                        let at_start = match before {
                            Some(detail) => rows::from_json(detail.0.get("presence").cloned().unwrap_or_default())?,
                            None => {
                                // Never changed before the window: if it never changed since
                                // either, today's presence held all along; else it is unknown,
                                // and offline is the guess that invents no time.
                                let later: i64 = sqlx::query_scalar(
                                    "SELECT COUNT(*) FROM audit_events WHERE action = 'worker.presence' \
                                     AND presence_worker = $1 AND at >= $2",
                                )
                                .bind(key.as_str())
                                .bind(start)
                                .fetch_one(&self.pool)
                                .await?;
                                if later == 0 {
                                    rows::from_json(row.try_get::<SqlJson<Json>, _>(1)?.0)?
                                } else {
                                    Presence::Offline
                                }
                            }
                        };
                        workers.push(WorkerPresence {
                            worker_id,
                            at_start,
                            changes: changed.remove(&key).unwrap_or_default(),
                        });
                    }
                }
                let teams = sqlx::query("SELECT id, team FROM workers WHERE team IS NOT NULL")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|row| Ok((WorkerId::from_uuid(row.try_get(0)?), rows::key(row.try_get(1)?)?)))
                    .collect::<Result<_>>()?;
                let rows = sqlx::query(
                    "SELECT w.client_id, w.engagement_id, c.rating, c.at FROM csat_responses c \
                     JOIN work_items w ON w.id = c.item_id \
                     WHERE c.at >= $1 AND c.at < $2 AND ($3 IS NULL OR w.client_id = $3) ORDER BY c.at, c.item_id",
                )
                .bind(start)
                .bind(end)
                .bind(client)
                .fetch_all(&self.pool)
                .await?;
                let csat = rows
                    .iter()
                    .map(|row| {
                        Ok(delego_core::metrics::CsatFact {
                            client_id: ClientId::from_uuid(row.try_get(0)?),
                            engagement_id: EngagementId::from_uuid(row.try_get(1)?),
                            rating: u8::try_from(row.try_get::<i64, _>(2)?)
                                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                            at: timestamp(row.try_get(3)?)?,
                        })
                    })
                    .collect::<Result<_>>()?;
                Ok(Facts { from, to, as_of: self.now(), items, tasks, workers, csat, results, teams })
            }

            async fn dispatch_offers(&self) -> Result<usize> {
                let now = self.now();
                let mut tx = self.begin_write().await?;
                Self::expire_offers(&mut tx, now).await?;
                // A task is offered only if the offer can be accepted before its hours close.
                let rows = sqlx::query(concat!(
                    "SELECT ", task_columns!(), " FROM tasks WHERE status = 'open' AND offer_timeout_secs IS NOT NULL \
                     AND (reserved_until IS NULL OR reserved_until <= $1) AND (opens_at IS NULL OR opens_at <= $1) \
                     AND (closes_at IS NULL OR closes_at > $1 + COALESCE(offer_timeout_secs, 30) * 1000000) \
                     ORDER BY serve_by LIMIT 50", $skip_locked
                ))
                .bind(micros(now))
                .fetch_all(&mut *tx)
                .await?;
                let tasks = rows.iter().map(Self::task_from_row).collect::<Result<Vec<_>>>()?;
                if tasks.is_empty() {
                    tx.commit().await?;
                    return Ok(0);
                }
                let mut pool = Self::offer_pool(&mut tx, now).await?;
                let mut made = 0;
                for task in &tasks {
                    let tried: Vec<Uuid> = sqlx::query_scalar("SELECT worker_id FROM offers WHERE task_id = $1")
                        .bind(task.id.as_uuid())
                        .fetch_all(&mut *tx)
                        .await?;
                    let candidates: Vec<(Worker, routing::Load)> = pool
                        .iter()
                        .filter(|(worker, _)| !tried.contains(&worker.id.as_uuid()))
                        .cloned()
                        .collect();
                    let ranked = routing::rank_workers(task, &candidates, task.worker_order, now);
                    let Some((chosen, _)) = ranked.first() else { continue };
                    let worker_id = chosen.id;
                    let timeout = task.offer_timeout.unwrap_or(jiff::SignedDuration::from_secs(30));
                    let expires = now.checked_add(timeout).unwrap_or(now);
                    let offer = delego_core::id::OfferId::new();
                    sqlx::query(
                        "INSERT INTO offers (id, task_id, worker_id, offered_at, expires_at, outcome) \
                         VALUES ($1, $2, $3, $4, $5, 'pending')",
                    )
                    .bind(offer.as_uuid())
                    .bind(task.id.as_uuid())
                    .bind(worker_id.as_uuid())
                    .bind(micros(now))
                    .bind(micros(expires))
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE tasks SET reserved_worker = $1, reserved_until = $2 WHERE id = $3")
                        .bind(worker_id.as_uuid())
                        .bind(micros(expires))
                        .bind(task.id.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                    let detail = json!({"task": task.id, "offer": offer, "worker": worker_id, "expires_at": expires});
                    Self::insert_audit(
                        &mut tx,
                        Some(task.client_id),
                        Some(task.item_id),
                        &Actor::System,
                        "task.offered",
                        detail.as_object().cloned().unwrap_or_default(),
                        now,
                    )
                    .await?;
                    // One offer at a time per worker.
                    pool.retain(|(worker, _)| worker.id != worker_id);
                    made += 1;
                }
                tx.commit().await?;
                if made > 0 {
                    self.wake();
                }
                Ok(made)
            }

            async fn pending_offers(&self, worker: WorkerId) -> Result<Vec<delego_core::model::Offer>> {
                let rows = sqlx::query(
                    "SELECT id, task_id, offered_at, expires_at FROM offers \
                     WHERE worker_id = $1 AND outcome = 'pending' AND expires_at > $2 ORDER BY offered_at",
                )
                .bind(worker.as_uuid())
                .bind(micros(self.now()))
                .fetch_all(&self.pool)
                .await?;
                let mut offers = Vec::with_capacity(rows.len());
                for row in rows {
                    offers.push(delego_core::model::Offer {
                        id: delego_core::id::OfferId::from_uuid(row.try_get(0)?),
                        task: self.task(TaskId::from_uuid(row.try_get(1)?)).await?,
                        worker_id: worker,
                        offered_at: timestamp(row.try_get(2)?)?,
                        expires_at: timestamp(row.try_get(3)?)?,
                    });
                }
                Ok(offers)
            }

            async fn answer_offer(
                &self,
                offer: delego_core::id::OfferId,
                worker_id: WorkerId,
                accept: bool,
            ) -> Result<Option<Claimed>> {
                let now = self.now();
                let mut tx = self.begin_write().await?;
                let row = sqlx::query(concat!(
                    "SELECT task_id FROM offers WHERE id = $1 AND worker_id = $2 AND outcome = 'pending' \
                     AND expires_at > $3", $for_update
                ))
                .bind(offer.as_uuid())
                .bind(worker_id.as_uuid())
                .bind(micros(now))
                .fetch_optional(&mut *tx)
                .await?
                // Unknown, someone else's, answered or expired: there is no such offer for you.
                .ok_or(StoreError::NotFound("offer"))?;
                let task = Self::load_task(&mut tx, TaskId::from_uuid(row.try_get(0)?)).await?;
                sqlx::query("UPDATE offers SET outcome = $1, decided_at = $2 WHERE id = $3")
                    .bind(if accept { "accepted" } else { "rejected" })
                    .bind(micros(now))
                    .bind(offer.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE workers SET missed_offers = 0 WHERE id = $1")
                    .bind(worker_id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE tasks SET reserved_worker = NULL, reserved_until = NULL WHERE id = $1")
                    .bind(task.id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                if !accept {
                    let detail = json!({"task": task.id, "offer": offer, "worker": worker_id});
                    Self::insert_audit(
                        &mut tx,
                        Some(task.client_id),
                        Some(task.item_id),
                        &Actor::Worker(worker_id),
                        "task.offer_rejected",
                        detail.as_object().cloned().unwrap_or_default(),
                        now,
                    )
                    .await?;
                    tx.commit().await?;
                    self.wake();
                    return Ok(None);
                }
                let claimed = self.claim_specific(tx, task, worker_id, now).await?;
                Ok(Some(claimed))
            }

            async fn arrivals(
                &self,
                engagement: EngagementId,
                from: jiff::Timestamp,
                interval: jiff::SignedDuration,
                count: usize,
            ) -> Result<Vec<u32>> {
                let step = interval.as_micros() as i64;
                if step <= 0 {
                    return Err(StoreError::Invalid(vec![delego_core::definition::FieldError {
                        field: "interval".into(),
                        code: "invalid".into(),
                        message: "an interval must be longer than zero".into(),
                    }]));
                }
                let to = micros(from).saturating_add(step.saturating_mul(count as i64));
                let rows = sqlx::query(
                    "SELECT (created_at - $2) / $3 AS bucket, COUNT(*) FROM work_items \
                     WHERE engagement_id = $1 AND created_at >= $2 AND created_at < $4 GROUP BY bucket",
                )
                .bind(engagement.as_uuid())
                .bind(micros(from))
                .bind(step)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
                let mut counts = vec![0u32; count];
                for row in rows {
                    let bucket = usize::try_from(row.try_get::<i64, _>(0)?).unwrap_or(usize::MAX);
                    if let Some(slot) = counts.get_mut(bucket) {
                        *slot = u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(u32::MAX);
                    }
                }
                Ok(counts)
            }

            async fn escalate_sla(&self) -> Result<usize> {
                let now = self.now();
                let due: Vec<Uuid> = sqlx::query_scalar(
                    "SELECT id FROM work_items WHERE status IN ('active', 'waiting') \
                     AND (sla_check_at IS NULL OR sla_check_at <= $1) LIMIT 200",
                )
                .bind(micros(now))
                .fetch_all(&self.pool)
                .await?;
                let mut escalated = 0;
                for id in due {
                    let mut tx = self.begin_write().await?;
                    let mut item = Self::load_item(&mut tx, WorkItemId::from_uuid(id)).await?;
                    let definition = self.definition_for(&mut tx, &item).await?;
                    let targets = definition.sla.targets();
                    let statuses = delego_core::sla::status(&item.state.sla, &targets, &definition.calendar, now);
                    let due = delego_core::sla::due_escalations(&item.state.sla, &targets, &statuses);
                    if due.is_empty() {
                        // Looked at early (another node got there first, or a row from
                        // before escalations): only when to look next changes.
                        sqlx::query("UPDATE work_items SET sla_check_at = $1 WHERE id = $2")
                            .bind(Self::next_sla_look(&item, &definition, now))
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    } else {
                        let expected = item.version;
                        for escalation in &due {
                            self.escalate(&mut tx, &mut item, &definition, escalation, now).await?;
                        }
                        item.version += 1;
                        item.updated_at = now;
                        Self::write_item(&mut tx, &item, expected, &definition).await?;
                        escalated += 1;
                    }
                    tx.commit().await?;
                }
                if escalated > 0 {
                    self.wake();
                }
                Ok(escalated)
            }

            async fn notifications(
                &self,
                user: delego_core::id::UserId,
                unread_only: bool,
                limit: u32,
            ) -> Result<Vec<delego_core::model::Notification>> {
                let rows = sqlx::query(
                    "SELECT id, user_id, item_id, kind, title, detail, created_at, read_at FROM notifications \
                     WHERE user_id = $1 AND ($2 = 0 OR read_at IS NULL) ORDER BY created_at DESC, id DESC LIMIT $3",
                )
                .bind(user.as_uuid())
                .bind(i64::from(unread_only))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::notification_from_row).collect()
            }

            async fn read_notification(
                &self,
                user: delego_core::id::UserId,
                id: delego_core::id::NotificationId,
            ) -> Result<delego_core::model::Notification> {
                let row = sqlx::query(
                    "UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE id = $2 AND user_id = $3 \
                     RETURNING id, user_id, item_id, kind, title, detail, created_at, read_at",
                )
                .bind(micros(self.now()))
                .bind(id.as_uuid())
                .bind(user.as_uuid())
                .fetch_optional(&self.writer)
                .await?
                .ok_or(StoreError::NotFound("notification"))?;
                Self::notification_from_row(&row)
            }

            async fn compact_queue_counts(&self) -> Result<usize> {
                let mut tx = self.begin_write().await?;
                if !$compaction_lock.is_empty() {
                    let ours: bool = sqlx::query_scalar($compaction_lock).fetch_one(&mut *tx).await?;
                    if !ours {
                        return Ok(0); // another node is compacting
                    }
                }
                let rows = sqlx::query(
                    "SELECT seq, engagement_id, step, status, due_minute, delta FROM queue_count_changes \
                     ORDER BY seq LIMIT 10000",
                )
                .fetch_all(&mut *tx)
                .await?;
                let mut totals: std::collections::BTreeMap<(Uuid, String, String, i64), i64> = Default::default();
                let mut folded = Vec::with_capacity(rows.len());
                for row in &rows {
                    folded.push(row.try_get::<i64, _>(0)?);
                    let key = (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
                    *totals.entry(key).or_default() += row.try_get::<i64, _>(5)?;
                }
                // In key order, so that concurrent compactions could never deadlock.
                for ((engagement, step, status, due_minute), delta) in totals {
                    sqlx::query(
                        "INSERT INTO queue_counts (engagement_id, step, status, due_minute, n) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (engagement_id, step, status, due_minute) DO UPDATE SET n = queue_counts.n + excluded.n",
                    )
                    .bind(engagement)
                    .bind(&step)
                    .bind(&status)
                    .bind(due_minute)
                    .bind(delta)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("DELETE FROM queue_counts WHERE n = 0").execute(&mut *tx).await?;
                // Exactly the changes read: one committed meanwhile with a lower number stays.
                sqlx::query(concat!("DELETE FROM queue_count_changes WHERE ", $seq_in_list))
                    .bind(serde_json::to_string(&folded).unwrap_or_default())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(folded.len())
            }

            async fn fire_due_timers(&self) -> Result<usize> {
                let now = self.now();
                let due = sqlx::query(
                    "SELECT item_id, step, visit FROM timers WHERE due_at <= $1 ORDER BY due_at LIMIT 500",
                )
                .bind(micros(now))
                .fetch_all(&self.pool)
                .await?;
                let mut moved = 0;
                for row in due {
                    let item_id = WorkItemId::from_uuid(row.try_get(0)?);
                    let step = rows::key(row.try_get(1)?)?;
                    let visit: i64 = row.try_get(2)?;
                    let mut tx = self.begin_write().await?;
                    let deleted = sqlx::query("DELETE FROM timers WHERE item_id = $1 AND visit = $2")
                        .bind(item_id.as_uuid())
                        .bind(visit)
                        .execute(&mut *tx)
                        .await?;
                    if deleted.rows_affected() == 0 {
                        continue; // another node fired it
                    }
                    let event = Event::TimerFired {
                        step,
                        visit: u32::try_from(visit).unwrap_or_default(),
                    };
                    // The item moved on before the timer fired: dropping the timer is all.
                    if self.apply_system_event(tx, item_id, &event, now).await?.is_none() {
                        moved += 1;
                    }
                }
                Ok(moved)
            }

            async fn close_after_hours(&self) -> Result<usize> {
                let now = self.now();
                let closed = sqlx::query(
                    "SELECT id FROM tasks WHERE status = 'open' AND closes_at <= $1 \
                     AND (reserved_until IS NULL OR reserved_until <= $1) ORDER BY closes_at LIMIT 500",
                )
                .bind(micros(now))
                .fetch_all(&self.pool)
                .await?;
                let mut moved = 0;
                for row in closed {
                    let id = TaskId::from_uuid(row.try_get(0)?);
                    // One item's trouble must not hold back the closes after it.
                    match self.close_task_after_hours(id, now).await {
                        Ok(true) => moved += 1,
                        Ok(false) => {}
                        Err(error) => {
                            tracing::warn!(task = %id, %error, "closing a task after hours failed; retrying next tick");
                        }
                    }
                }
                Ok(moved)
            }

            async fn create_article(
                &self,
                engagement: EngagementId,
                draft: delego_core::knowledge::ArticleDraft,
                actor: &Actor,
            ) -> Result<delego_core::knowledge::Article> {
                let mut tx = self.begin_write().await?;
                let engagement = Self::fetch_engagement(&mut *tx, engagement).await?;
                let article = Self::insert_article(&mut tx, (engagement.client_id, engagement.id), None, &draft, actor, self.now())
                    .await?;
                tx.commit().await?;
                Ok(article)
            }

            async fn article(&self, id: delego_core::id::ArticleId) -> Result<delego_core::knowledge::Article> {
                let row = sqlx::query(concat!("SELECT ", article_columns!(), " FROM articles WHERE id = $1"))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound("article"))?;
                Self::article_from_row(&row)
            }

            async fn articles(
                &self,
                engagement: EngagementId,
                query: &str,
                limit: u32,
            ) -> Result<Vec<delego_core::knowledge::Article>> {
                // One fixed slot per word keeps the statement static; unused slots are NULL.
                const _: () = assert!(delego_core::knowledge::MAX_SEARCH_WORDS == 8);
                let words = delego_core::knowledge::search_words(query);
                let mut statement = sqlx::query(concat!(
                    "SELECT ", article_columns!(), " FROM articles WHERE engagement_id = $1 \
                     AND ($2 IS NULL OR search_text LIKE $2 ESCAPE '\\') \
                     AND ($3 IS NULL OR search_text LIKE $3 ESCAPE '\\') \
                     AND ($4 IS NULL OR search_text LIKE $4 ESCAPE '\\') \
                     AND ($5 IS NULL OR search_text LIKE $5 ESCAPE '\\') \
                     AND ($6 IS NULL OR search_text LIKE $6 ESCAPE '\\') \
                     AND ($7 IS NULL OR search_text LIKE $7 ESCAPE '\\') \
                     AND ($8 IS NULL OR search_text LIKE $8 ESCAPE '\\') \
                     AND ($9 IS NULL OR search_text LIKE $9 ESCAPE '\\') \
                     ORDER BY updated_at DESC, id DESC LIMIT $10"
                ))
                .bind(engagement.as_uuid());
                for slot in 0..delego_core::knowledge::MAX_SEARCH_WORDS {
                    statement = statement.bind(words.get(slot).map(|word| crate::sql::contains_pattern(word)));
                }
                let rows = statement
                    .bind(i64::from(limit.clamp(1, 200)))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::article_from_row).collect()
            }

            async fn update_article(
                &self,
                id: delego_core::id::ArticleId,
                draft: delego_core::knowledge::ArticleDraft,
                expected_version: Option<i64>,
                actor: &Actor,
            ) -> Result<delego_core::knowledge::Article> {
                let mut tx = self.begin_write().await?;
                let current = Self::load_article(&mut tx, id).await?;
                if expected_version.is_some_and(|expected| expected != current.version) {
                    return Err(StoreError::Conflict(format!(
                        "article {id} is at version {}, not {}",
                        current.version,
                        expected_version.unwrap_or_default()
                    )));
                }
                let now = self.now();
                let article = delego_core::knowledge::Article {
                    title: draft.title.clone(),
                    body: draft.body.clone(),
                    tags: draft.tags.clone(),
                    updated_by: actor.clone(),
                    updated_at: now,
                    version: current.version + 1,
                    ..current
                };
                sqlx::query(
                    "UPDATE articles SET title = $1, body = $2, tags = $3, search_text = $4, \
                     updated_by = $5, updated_at = $6, version = $7 WHERE id = $8",
                )
                .bind(&article.title)
                .bind(&article.body)
                .bind(SqlJson(rows::to_json(&article.tags)))
                .bind(draft.search_text())
                .bind(SqlJson(rows::to_json(actor)))
                .bind(micros(now))
                .bind(article.version)
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
                let detail = json!({"article": id, "version": article.version});
                Self::insert_audit(
                    &mut tx,
                    Some(article.client_id),
                    None,
                    actor,
                    "article.updated",
                    detail.as_object().cloned().unwrap_or_default(),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(article)
            }
        }

    };
}

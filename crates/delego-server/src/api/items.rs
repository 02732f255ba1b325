//! Work items: create (one or a batch), read, list, update with If-Match, the thread of
//! replies and notes, cancel, history.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use delego_core::engine::Event;
use delego_core::id::{AttachmentId, EngagementId, WorkItemId};
use delego_core::identity::{Role, Scope};
use delego_core::model::{AuditEvent, Engagement, Message, Task, Visibility, WorkItem};
use delego_core::values::{Key, Priority};
use delego_store::{ItemFilter, NewItem, NewMessage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};

use super::{in_scope, parse_id};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;

/// A work item as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ItemView {
    #[schema(value_type = String)]
    id: WorkItemId,
    /// The short reference people read out and search by: the id's last 8 digits.
    reference: String,
    #[schema(value_type = String)]
    client_id: delego_core::id::ClientId,
    #[schema(value_type = String)]
    engagement_id: EngagementId,
    service_key: String,
    service_version: u32,
    /// `active`, `waiting`, `completed` or `cancelled`.
    status: &'static str,
    /// The step the item is at, if any.
    step: Option<String>,
    #[schema(value_type = String)]
    priority: Priority,
    #[schema(value_type = Object)]
    data: Map<String, Json>,
    #[schema(value_type = Object)]
    position: delego_core::engine::Position,
    /// What the service's lookups read for the item when it last moved (a policy from the
    /// client's register, a count of related items); absent for services without any.
    #[serde(skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    facts: Map<String, Json>,
    /// The concurrency token; also sent as the `ETag` header.
    version: i64,
    #[schema(value_type = String, format = DateTime)]
    created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: jiff::Timestamp,
    /// Its SLA clocks (first response, next response, resolution) against the
    /// engagement's targets, in business time: `state` is `met`, `paused`, `running`,
    /// `warning` or `breached`; durations in seconds. Shown on a single item.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    sla: Option<Vec<SlaView>>,
    /// The requester's satisfaction rating (1–5) and comment, once given. Shown on a
    /// single item.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    csat: Option<delego_core::model::CsatResponse>,
    /// The parent it follows (a major incident) and the children that follow it, each
    /// child with its status. Shown on a single item.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    links: Option<delego_store::ItemLinks>,
    /// The register entries its register fields name, by field (`null` for an entry
    /// removed since). Shown on a single item.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    register_entries:
        Option<std::collections::BTreeMap<String, Option<delego_core::model::RegisterEntry>>>,
}

/// One SLA clock as the API shows it.
#[derive(Serialize)]
struct SlaView {
    kind: delego_core::sla::SlaKind,
    state: delego_core::sla::SlaState,
    target_seconds: i64,
    elapsed_seconds: i64,
    /// Negative once breached.
    remaining_seconds: i64,
    breached: bool,
    /// When a running clock breaches if nothing changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    due_at: Option<jiff::Timestamp>,
}

impl From<delego_core::sla::SlaStatus> for SlaView {
    fn from(status: delego_core::sla::SlaStatus) -> Self {
        Self {
            kind: status.kind,
            state: status.state,
            target_seconds: status.target.as_secs(),
            elapsed_seconds: status.elapsed.as_secs(),
            remaining_seconds: status.remaining.as_secs(),
            breached: status.breached,
            due_at: status.due_at,
        }
    }
}

impl From<WorkItem> for ItemView {
    fn from(item: WorkItem) -> Self {
        Self {
            id: item.id(),
            reference: item.id().reference(),
            client_id: item.client_id,
            engagement_id: item.engagement_id,
            service_key: item.service_key.to_string(),
            service_version: item.service_version,
            status: item.state.position.status(),
            step: item.state.position.step().map(ToString::to_string),
            priority: item.state.priority,
            data: item.state.data,
            facts: item.state.facts,
            position: item.state.position,
            version: item.version,
            created_at: item.created_at,
            updated_at: item.updated_at,
            sla: None,
            csat: None,
            links: None,
            register_entries: None,
        }
    }
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The item with its `ETag`.
fn item_response(status: StatusCode, item: WorkItem) -> Response {
    view_response(status, ItemView::from(item))
}

fn view_response(status: StatusCode, view: ItemView) -> Response {
    let tag = etag(view.version);
    let location = format!("/api/v1/items/{}", view.id);
    let mut response = (status, axum::Json(view)).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&location)
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The version an `If-Match` header names: `"3"`, `W/"3"` or `3`.
pub(crate) fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse().map(Some).map_err(|_| {
        ApiError::BadRequest(format!(
            "If-Match must be an ETag of this item, like \"3\"; got `{text}`"
        ))
    })
}

pub(crate) async fn visible_item(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> ApiResult<WorkItem> {
    let item = state.store.item(parse_id(raw, "work item")?).await?;
    in_scope(caller, item.client_id, item.clone(), "work item")
}

pub(crate) async fn visible_engagement(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> ApiResult<Engagement> {
    let engagement = state.store.engagement(parse_id(raw, "engagement")?).await?;
    in_scope(
        caller,
        engagement.client_id,
        engagement.clone(),
        "engagement",
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItemBody {
    /// Values for the service's intake form.
    #[schema(value_type = Object)]
    pub(crate) data: Map<String, Json>,
    /// `low`, `normal` (default), `high` or `urgent`.
    #[schema(value_type = Option<String>)]
    pub(crate) priority: Option<Priority>,
}

/// A new item from a request body, after checking that its attachment fields name the
/// client's own attachments. (The store links the requester the definition names.)
async fn new_item(
    state: &AppState,
    engagement: &Engagement,
    body: NewItemBody,
    idempotency_key: Option<String>,
) -> ApiResult<NewItem> {
    let definition = state
        .store
        .service(&engagement.service_key, engagement.service_version)
        .await?;
    super::attachments::check_attachment_fields(
        state,
        engagement.client_id,
        &definition.intake,
        &body.data,
    )
    .await?;
    Ok(NewItem {
        engagement_id: engagement.id,
        data: body.data,
        priority: body.priority.unwrap_or_default(),
        requester_id: None,
        idempotency_key,
    })
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let key = value.to_str().unwrap_or_default().trim();
            if key.is_empty() || key.len() > 200 {
                return Err(ApiError::BadRequest(
                    "Idempotency-Key must be 1 to 200 visible characters".into(),
                ));
            }
            Ok(Some(key.to_owned()))
        }
    }
}

/// Submits a work item to an engagement. With an `Idempotency-Key`, a repeat returns the
/// first item (200) instead of making a second one.
#[utoipa::path(post, path = "/engagements/{id}/items", tag = "items",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = NewItemBody,
    responses((status = 201, body = ItemView), (status = 200, body = ItemView), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewItemBody>,
) -> ApiResult<Response> {
    let engagement = visible_engagement(&state, &caller, &id).await?;
    let key = idempotency_key(&headers)?;
    let created = submit_item(&state, &caller, &engagement, body, key).await?;
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(item_response(status, created.value))
}

/// Creates an item from a request body: the API's and the client portal's intake.
pub(crate) async fn submit_item(
    state: &AppState,
    caller: &Caller,
    engagement: &Engagement,
    body: NewItemBody,
    idempotency_key: Option<String>,
) -> ApiResult<delego_store::Created<WorkItem>> {
    let new = new_item(state, engagement, body, idempotency_key).await?;
    Ok(state.store.create_item(new, &caller.actor()).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// At most 500 items.
    items: Vec<BatchEntry>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchEntry {
    #[serde(flatten)]
    item: NewItemBody,
    idempotency_key: Option<String>,
}

/// The fate of one entry of a batch.
#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    index: usize,
    /// 201 created, 200 an idempotent repeat, 422 invalid.
    status: u16,
    item: Option<ItemView>,
    #[schema(value_type = Option<Object>)]
    errors: Option<Vec<delego_core::definition::FieldError>>,
}

/// Submits many items at once; each succeeds or fails on its own.
#[utoipa::path(post, path = "/engagements/{id}/items/batch", tag = "items", params(("id" = String, Path)),
    request_body = BatchBody,
    responses((status = 200, body = Vec<BatchResult>), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BatchBody>,
) -> ApiResult<axum::Json<Vec<BatchResult>>> {
    let engagement = visible_engagement(&state, &caller, &id).await?;
    if body.items.len() > 500 {
        return Err(ApiError::field(
            "items",
            "too_many_items",
            "send at most 500 items per batch",
        ));
    }
    let mut results = Vec::with_capacity(body.items.len());
    for (index, entry) in body.items.into_iter().enumerate() {
        let new = match new_item(&state, &engagement, entry.item, entry.idempotency_key).await {
            Ok(new) => new,
            // A bad entry fails alone, like one the store refuses.
            Err(ApiError::Validation { errors, .. }) => {
                results.push(BatchResult {
                    index,
                    status: 422,
                    item: None,
                    errors: Some(errors),
                });
                continue;
            }
            Err(other) => return Err(other),
        };
        let result = match state.store.create_item(new, &caller.actor()).await {
            Ok(created) => BatchResult {
                index,
                status: if created.created { 201 } else { 200 },
                item: Some(created.value.into()),
                errors: None,
            },
            Err(delego_store::StoreError::Invalid(errors)) => BatchResult {
                index,
                status: 422,
                item: None,
                errors: Some(errors),
            },
            Err(other) => return Err(other.into()),
        };
        results.push(result);
    }
    Ok(axum::Json(results))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    engagement_id: Option<String>,
    client_id: Option<String>,
    /// `active`, `waiting`, `completed` or `cancelled`.
    status: Option<String>,
    /// Text in the item's subject, or its reference (8 or more digits of its id).
    q: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 200, default 50.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ItemPage {
    items: Vec<ItemView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// Lists items the caller may see, newest first, a page at a time.
#[utoipa::path(get, path = "/items", tag = "items", params(ListQuery),
    responses((status = 200, body = ItemPage), (status = 422, body = Problem)))]
pub async fn list_items(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<ItemPage>> {
    let Query(query) = query.map_err(|e| ApiError::field("query", "invalid", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range", "use 1 to 200"));
    }
    if let Some(status) = &query.status
        && !["active", "waiting", "completed", "cancelled"].contains(&status.as_str())
    {
        return Err(ApiError::field(
            "status",
            "not_allowed",
            "use active, waiting, completed or cancelled",
        ));
    }
    fn parse<T: std::str::FromStr>(raw: &Option<String>, field: &str) -> ApiResult<Option<T>> {
        raw.as_deref()
            .map(|s| {
                s.parse()
                    .map_err(|_| ApiError::field(field, "invalid", "not an id"))
            })
            .transpose()
    }
    let filter = ItemFilter {
        client_id: parse(&query.client_id, "client_id")?,
        client_ids: None,
        engagement_id: parse(&query.engagement_id, "engagement_id")?,
        status: query.status,
        text: query.q,
        after: parse(&query.cursor, "cursor")?,
        limit,
    };
    let items = visible_items(&state, &caller, filter).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|i| i.id().to_string()))
        .flatten();
    Ok(axum::Json(ItemPage {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// The items of `filter` within the caller's scope, newest first.
pub(crate) async fn visible_items(
    state: &AppState,
    caller: &Caller,
    filter: ItemFilter,
) -> ApiResult<Vec<WorkItem>> {
    let client_ids = match &caller.scope {
        Scope::AllClients => None,
        Scope::Clients(clients) => Some(clients.iter().copied().collect()),
    };
    Ok(state
        .store
        .items(&ItemFilter {
            client_ids,
            ..filter
        })
        .await?)
}

/// One item, with its version as the `ETag`.
#[utoipa::path(get, path = "/items/{id}", tag = "items", params(("id" = String, Path)),
    responses((status = 200, body = ItemView), (status = 404, body = Problem)))]
pub async fn get_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let item = visible_item(&state, &caller, &id).await?;
    let sla = state.store.sla_status(&item).await?;
    let csat = state.store.csat(item.id()).await?;
    let links = state.store.item_links(item.id()).await?;
    let register_entries = super::registers::named_entries(&state, &item).await?;
    let mut view = ItemView::from(item);
    view.sla = Some(sla.into_iter().map(SlaView::from).collect());
    view.csat = csat;
    view.links = Some(links);
    view.register_entries = Some(register_entries);
    Ok(view_response(StatusCode::OK, view))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// Intake fields to change; `null` clears an optional field.
    #[schema(value_type = Object)]
    data: Map<String, Json>,
}

/// Changes intake fields. Requires `If-Match` with the item's ETag: without it 428, with
/// a stale one 412.
#[utoipa::path(patch, path = "/items/{id}", tag = "items",
    params(("id" = String, Path), ("If-Match" = String, Header)), request_body = UpdateBody,
    responses((status = 200, body = ItemView), (status = 404, body = Problem), (status = 412, body = Problem),
        (status = 428, body = Problem), (status = 422, body = Problem)))]
pub async fn update_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult<Response> {
    let item = visible_item(&state, &caller, &id).await?;
    let expected = if_match(&headers)?.ok_or_else(|| {
        ApiError::PreconditionRequired(
            "send If-Match with the ETag you read, so no change is lost".into(),
        )
    })?;
    let updated = change_data(&state, &caller, &item, expected, body.data).await?;
    Ok(item_response(StatusCode::OK, updated))
}

/// Changes intake fields of `item` if it is still at version `expected`, after checking
/// that its attachment fields name the client's own attachments.
pub(crate) async fn change_data(
    state: &AppState,
    caller: &Caller,
    item: &WorkItem,
    expected: i64,
    data: Map<String, Json>,
) -> ApiResult<WorkItem> {
    if expected != item.version {
        return Err(stale(item.version));
    }
    let definition = state
        .store
        .service(&item.service_key, item.service_version)
        .await?;
    super::attachments::check_attachment_fields(state, item.client_id, &definition.intake, &data)
        .await?;
    state
        .store
        .update_item_data(item.id(), expected, data, &caller.actor())
        .await
        .map_err(|e| match e {
            delego_store::StoreError::Conflict(_) => stale(expected + 1),
            other => other.into(),
        })
}

fn stale(current: i64) -> ApiError {
    ApiError::PreconditionFailed(format!(
        "the item changed since you read it (it is at version {current}); read it again and retry"
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessageBody {
    /// `public` (the requester and the client see it) or `internal` (staff only).
    #[schema(value_type = String)]
    pub(crate) visibility: Visibility,
    pub(crate) body: String,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub(crate) attachments: Vec<AttachmentId>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageAdded {
    #[schema(value_type = Object)]
    message: Message,
    item: ItemView,
}

/// Adds a public reply or an internal note. A client user's message is public and counts
/// as the requester's reply: an item waiting for one moves on.
#[utoipa::path(post, path = "/items/{id}/messages", tag = "items", params(("id" = String, Path)),
    request_body = NewMessageBody,
    responses((status = 201, body = MessageAdded), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn add_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewMessageBody>,
) -> ApiResult<(StatusCode, axum::Json<MessageAdded>)> {
    let item = visible_item(&state, &caller, &id).await?;
    let (message, item) = post_message(&state, &caller, &item, body).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(MessageAdded {
            message,
            item: item.into(),
        }),
    ))
}

/// Adds a message to `item`'s thread: the API's and the client portal's replies.
pub(crate) async fn post_message(
    state: &AppState,
    caller: &Caller,
    item: &WorkItem,
    body: NewMessageBody,
) -> ApiResult<(Message, WorkItem)> {
    let text = body.body.trim();
    if text.is_empty() || text.chars().count() > 50_000 {
        return Err(ApiError::field(
            "body",
            "invalid",
            "write 1 to 50,000 characters",
        ));
    }
    let from_client = caller.role() == Role::ClientUser;
    if from_client && body.visibility == Visibility::Internal {
        return Err(ApiError::field(
            "visibility",
            "not_allowed",
            "client users write public messages",
        ));
    }
    for (n, attachment) in body.attachments.iter().enumerate() {
        let found = state.store.attachment(*attachment).await.ok();
        if found.is_none_or(|a| a.client_id != item.client_id) {
            return Err(ApiError::field(
                &format!("attachments[{n}]"),
                "unknown",
                "no such attachment on this client",
            ));
        }
    }
    Ok(state
        .store
        .add_message(NewMessage {
            item_id: item.id(),
            author: caller.actor(),
            visibility: body.visibility,
            body: text.to_owned(),
            attachments: body.attachments,
            event: from_client
                .then(|| Key::parse("requester_reply"))
                .and_then(Result::ok),
            quoted: None,
        })
        .await?)
}

/// The item's thread, oldest first. Client users see public messages only.
#[utoipa::path(get, path = "/items/{id}/messages", tag = "items", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 404, body = Problem)))]
pub async fn list_messages(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<Message>>> {
    let item = visible_item(&state, &caller, &id).await?;
    Ok(axum::Json(thread(&state, &caller, &item).await?))
}

/// `item`'s thread as `caller` may read it: client users see public messages only.
pub(crate) async fn thread(
    state: &AppState,
    caller: &Caller,
    item: &WorkItem,
) -> ApiResult<Vec<Message>> {
    let internal = caller.role() != Role::ClientUser;
    Ok(state.store.messages(item.id(), internal).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    reason: String,
}

/// Cancels an item and withdraws its open tasks. `If-Match` is honoured when sent.
#[utoipa::path(post, path = "/items/{id}/cancel", tag = "items",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)), request_body = CancelBody,
    responses((status = 200, body = ItemView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 412, body = Problem)))]
pub async fn cancel_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CancelBody>,
) -> ApiResult<Response> {
    let item = visible_item(&state, &caller, &id).await?;
    let expected = if_match(&headers)?;
    if expected.is_some_and(|v| v != item.version) {
        return Err(stale(item.version));
    }
    if body.reason.trim().is_empty() {
        return Err(ApiError::field(
            "reason",
            "required",
            "say why the item is cancelled",
        ));
    }
    let event = Event::Cancel {
        reason: body.reason.trim().to_owned(),
    };
    let item = state
        .store
        .apply_event(item.id(), expected, event, &caller.actor())
        .await?;
    Ok(item_response(StatusCode::OK, item))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The id of the item this one duplicates, which stays.
    into: String,
}

#[derive(Serialize, ToSchema)]
pub struct MergeResult {
    /// This item, cancelled as `merged`; its `position.merged_into` names the survivor.
    duplicate: ItemView,
    /// The item that stays, now holding the duplicate's thread and attachments.
    survivor: ItemView,
}

/// Merges this item, a duplicate, into another unfinished item of the same client: it ends
/// cancelled as `merged`, pointing there; its messages (marked `merged_from`) and
/// attachments move there; the survivor gets an internal note naming its reference; its
/// requester is told. For the provider's staff who can see both items.
#[utoipa::path(post, path = "/items/{id}/merge", tag = "items", params(("id" = String, Path)),
    request_body = MergeBody,
    responses((status = 200, body = MergeResult), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn merge_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MergeBody>,
) -> ApiResult<axum::Json<MergeResult>> {
    let merged = merge(&state, &caller, &id, &body.into).await?;
    Ok(axum::Json(MergeResult {
        duplicate: merged.duplicate.into(),
        survivor: merged.survivor.into(),
    }))
}

/// Merges the item `id` into the item `into` (ids as the caller gave them): the API's and
/// the pages' merge. Either item outside the caller's scope is not found.
pub(crate) async fn merge(
    state: &AppState,
    caller: &Caller,
    id: &str,
    into: &str,
) -> ApiResult<delego_store::Merged> {
    if caller.role() == Role::ClientUser {
        return Err(ApiError::Forbidden(
            "only the provider's staff merge items".into(),
        ));
    }
    let duplicate = visible_item(state, caller, id).await?;
    let survivor = visible_item(state, caller, into).await?;
    Ok(state
        .store
        .merge_items(duplicate.id(), survivor.id(), &caller.actor())
        .await?)
}

/// The item's audit trail, oldest first.
#[utoipa::path(get, path = "/items/{id}/history", tag = "items", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 404, body = Problem)))]
pub async fn item_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<AuditEvent>>> {
    let item = visible_item(&state, &caller, &id).await?;
    Ok(axum::Json(state.store.item_history(item.id()).await?))
}

/// The item's tasks, one per entry into a human or review step.
#[utoipa::path(get, path = "/items/{id}/tasks", tag = "items", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 404, body = Problem)))]
pub async fn item_tasks(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<Task>>> {
    let item = visible_item(&state, &caller, &id).await?;
    Ok(axum::Json(state.store.item_tasks(item.id()).await?))
}

/// The links a requester uses to follow and answer an item, for an agent to pass on by
/// phone or chat. The CSAT link is there once the item is finished.
#[derive(Serialize, ToSchema)]
pub struct RequesterLinks {
    reply: String,
    csat: Option<String>,
}

/// Signed requester links for the item.
#[utoipa::path(get, path = "/items/{id}/requester-links", tag = "items", params(("id" = String, Path)),
    responses((status = 200, body = RequesterLinks), (status = 404, body = Problem)))]
pub async fn requester_links(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RequesterLinks>> {
    let item = visible_item(&state, &caller, &id).await?;
    let finished = matches!(
        item.state.position,
        delego_core::engine::Position::Completed { .. }
    );
    let csat = if finished {
        Some(crate::runtime::link(&state, crate::links::Purpose::Csat, item.id()).await?)
    } else {
        None
    };
    Ok(axum::Json(RequesterLinks {
        reply: crate::runtime::link(&state, crate::links::Purpose::Reply, item.id()).await?,
        csat,
    }))
}

//! Routes for requesters, who have no account: each takes a signed link token naming one
//! item. An invalid, expired or altered token is a 404, like an unknown item.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use delego_core::engine::Position;
use delego_core::id::WorkItemId;
use delego_core::model::{Actor, CsatResponse, Message, Visibility};
use delego_core::values::Key;
use delego_store::NewMessage;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;
use crate::links::{self, Purpose};

async fn item_of(state: &AppState, purpose: Purpose, token: &str) -> ApiResult<WorkItemId> {
    let key = state.store.secret(links::SIGNING_KEY).await?;
    links::verify(&key, purpose, token, state.clock.now()).ok_or(ApiError::NotFound("link"))
}

/// What a requester sees of their item.
#[derive(Serialize, ToSchema)]
pub struct RequesterView {
    subject: Option<String>,
    /// `active`, `waiting`, `completed` or `cancelled`.
    status: &'static str,
    #[schema(value_type = Vec<Object>)]
    messages: Vec<Message>,
    #[schema(value_type = Option<Object>)]
    csat: Option<CsatResponse>,
}

async fn requester_view(state: &AppState, item: WorkItemId) -> ApiResult<RequesterView> {
    let item = state.store.item(item).await?;
    Ok(RequesterView {
        subject: item
            .state
            .data
            .get("subject")
            .and_then(Json::as_str)
            .map(str::to_owned),
        status: item.state.position.status(),
        messages: state.store.messages(item.id(), false).await?,
        csat: state.store.csat(item.id()).await?,
    })
}

/// The requester's view of the item a CSAT link names.
#[utoipa::path(get, path = "/public/csat/{token}", tag = "requesters", params(("token" = String, Path)),
    responses((status = 200, body = RequesterView), (status = 404, body = Problem)))]
pub async fn csat_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<axum::Json<RequesterView>> {
    let item = item_of(&state, Purpose::Csat, &token).await?;
    Ok(axum::Json(requester_view(&state, item).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rating {
    /// 1 (bad) to 5 (great).
    rating: u8,
    comment: Option<String>,
}

/// Records the requester's rating; an item is rated once.
#[utoipa::path(post, path = "/public/csat/{token}", tag = "requesters", params(("token" = String, Path)),
    request_body = Rating,
    responses((status = 201, body = Object), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn rate(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ApiJson(rating): ApiJson<Rating>,
) -> ApiResult<(StatusCode, axum::Json<CsatResponse>)> {
    let item = item_of(&state, Purpose::Csat, &token).await?;
    let response = record_rating(&state, item, rating.rating, rating.comment).await?;
    Ok((StatusCode::CREATED, axum::Json(response)))
}

/// Records a finished item's rating, once: the requester's through a signed link, or a
/// client user's in the portal.
pub(crate) async fn record_rating(
    state: &AppState,
    item: WorkItemId,
    rating: u8,
    comment: Option<String>,
) -> ApiResult<CsatResponse> {
    let comment = comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|c| c.chars().count() > 5_000) {
        return Err(ApiError::field(
            "comment",
            "too_long",
            "keep the comment under 5,000 characters",
        ));
    }
    Ok(state.store.record_csat(item, rating, comment).await?)
}

/// The requester's view of the item a reply link names.
#[utoipa::path(get, path = "/public/replies/{token}", tag = "requesters", params(("token" = String, Path)),
    responses((status = 200, body = RequesterView), (status = 404, body = Problem)))]
pub async fn thread(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<axum::Json<RequesterView>> {
    let item = item_of(&state, Purpose::Reply, &token).await?;
    Ok(axum::Json(requester_view(&state, item).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    body: String,
}

/// Adds the requester's reply; an item waiting for it goes back to the agents. A reply to a
/// merged duplicate goes to the item it was merged into.
#[utoipa::path(post, path = "/public/replies/{token}", tag = "requesters", params(("token" = String, Path)),
    request_body = Reply,
    responses((status = 201, body = Object), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn reply(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ApiJson(reply): ApiJson<Reply>,
) -> ApiResult<(StatusCode, axum::Json<Message>)> {
    let item_id = item_of(&state, Purpose::Reply, &token).await?;
    let body = reply.body.trim();
    if body.is_empty() || body.chars().count() > 50_000 {
        return Err(ApiError::field(
            "body",
            "invalid",
            "write 1 to 50,000 characters",
        ));
    }
    let mut item = state.store.item(item_id).await?;
    let author = item.requester_id.map_or(Actor::System, Actor::Requester);
    // A merged duplicate's conversation goes on in the item it was merged into (a later
    // merge may have moved that one on again; merges never form a loop).
    while let Position::Cancelled {
        merged_into: Some(into),
        ..
    } = item.state.position
    {
        item = state.store.item(into).await?;
    }
    let (message, _) = state
        .store
        .add_message(NewMessage {
            item_id: item.id(),
            author,
            visibility: Visibility::Public,
            body: body.to_owned(),
            attachments: Vec::new(),
            event: Key::parse("requester_reply").ok(),
            quoted: None,
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(message)))
}

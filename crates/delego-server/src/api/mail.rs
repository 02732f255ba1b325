//! The e-mail channel's routes: the inbound endpoint a mail server pipes messages to, the
//! messages kept aside, and an item's outgoing mail with its delivery status (see
//! `crate::mail` for what happens to a message).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use delego_core::id::ClientId;
use delego_store::{KeptAside, OutboundMail};
use serde::Deserialize;
use utoipa::IntoParams;

use super::items::visible_item;
use super::parse_id;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::mail::{self, Intake, Source};

/// Takes in one e-mail message (RFC 5322, the raw bytes as the body), for the engagement
/// whose address is among its recipients. Managers and admins only: it is how the
/// provider's mail server hands mail over. A message that cannot be taken in is kept
/// aside (`outcome: kept_aside`, with the reason), not refused; the same message sent
/// again is a `duplicate`.
#[utoipa::path(post, path = "/mail/inbound", tag = "mail",
    request_body(content = Vec<u8>, description = "The message", content_type = "message/rfc822"),
    responses((status = 200, body = Intake), (status = 403, body = Problem), (status = 413, body = Problem),
        (status = 422, body = Problem)))]
pub async fn inbound(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<axum::Json<Intake>> {
    caller.require_manager()?;
    let raw = axum::body::to_bytes(body, delego_mail::MAX_MESSAGE_SIZE)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!(
                "a message has at most {} bytes",
                delego_mail::MAX_MESSAGE_SIZE
            ))
        })?;
    if raw.is_empty() {
        return Err(ApiError::field(
            "body",
            "required",
            "send the message's bytes as the request body",
        ));
    }
    Ok(axum::Json(
        mail::take_in(&state, &raw, Source::Api, None).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeptAsideQuery {
    /// Only this client's.
    client_id: Option<String>,
    /// At most this many, newest first (1 to 500, default 100).
    limit: Option<u32>,
}

/// Messages kept aside, newest first, with why: unreadable, unknown sender, over a
/// sender's hourly limit, automatic with no item. Managers and admins only.
#[utoipa::path(get, path = "/mail/kept-aside", tag = "mail", params(KeptAsideQuery),
    responses((status = 200, body = Vec<Object>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn kept_aside(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<KeptAsideQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Vec<KeptAside>>> {
    caller.require_manager()?;
    let Query(query) = query.map_err(|e| ApiError::field("query", "invalid", e.body_text()))?;
    let client: Option<ClientId> = query
        .client_id
        .map(|raw| parse_id(&raw, "client"))
        .transpose()?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range", "use 1 to 500"));
    }
    Ok(axum::Json(state.store.kept_aside(client, limit).await?))
}

/// One message kept aside, as it came (`message/rfc822`). Managers and admins only.
#[utoipa::path(get, path = "/mail/kept-aside/{id}", tag = "mail", params(("id" = String, Path)),
    responses((status = 200, content_type = "message/rfc822", body = Vec<u8>), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn kept_aside_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require_manager()?;
    let id: uuid::Uuid = id.parse().map_err(|_| ApiError::NotFound("message"))?;
    let (_, raw) = state
        .store
        .kept_aside_message(id)
        .await
        .map_err(|e| match e {
            delego_store::StoreError::NotFound(_) => ApiError::NotFound("message"),
            other => other.into(),
        })?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "message/rfc822")],
        raw,
    )
        .into_response())
}

/// The mail sent, queued or failed for an item's requester, oldest first, with each one's
/// delivery status. The relay's own words (`last_error`) are the provider's: a client user
/// sees the status alone.
#[utoipa::path(get, path = "/items/{id}/mail", tag = "mail", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Object>), (status = 404, body = Problem)))]
pub async fn item_mail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<OutboundMail>>> {
    let item = visible_item(&state, &caller, &id).await?;
    let mut mail = state.store.item_mail(item.id()).await?;
    if caller.role() == delego_core::identity::Role::ClientUser {
        for sent in &mut mail {
            sent.last_error = None;
        }
    }
    Ok(axum::Json(mail))
}

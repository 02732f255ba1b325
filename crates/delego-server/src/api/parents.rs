//! Links between items: the incidents that follow a major incident. When the parent is
//! resolved, its open children are resolved with it, each requester told (see
//! `Store::set_parent`).

use axum::extract::{Path, State};
use delego_core::identity::Role;
use delego_store::ItemLinks;
use serde::Deserialize;
use utoipa::ToSchema;

use super::items::visible_item;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParentBody {
    /// The id of the major incident: an unfinished item of the same client.
    parent: String,
}

/// Links are set by the provider's staff, who run the incidents.
fn require_staff(caller: &Caller) -> ApiResult<()> {
    if caller.role() == Role::ClientUser {
        return Err(ApiError::Forbidden(
            "only the provider's staff link items".into(),
        ));
    }
    Ok(())
}

/// Links the item to a parent (a major incident) whose resolution it then follows: when
/// the parent is resolved, so is the item, and its requester is told. Links are one level
/// deep. A parent the caller cannot see answers 404.
#[utoipa::path(post, path = "/items/{id}/parent", tag = "items", params(("id" = String, Path)),
    request_body = ParentBody,
    responses((status = 200, body = Object, description = "`parent` and `children` of the item"),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn set_parent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ParentBody>,
) -> ApiResult<axum::Json<ItemLinks>> {
    require_staff(&caller)?;
    let item = visible_item(&state, &caller, &id).await?;
    let parent = visible_item(&state, &caller, &body.parent).await?;
    Ok(axum::Json(
        state
            .store
            .set_parent(item.id(), Some(parent.id()), &caller.actor())
            .await?,
    ))
}

/// Unlinks the item from its parent; it then runs on its own.
#[utoipa::path(delete, path = "/items/{id}/parent", tag = "items", params(("id" = String, Path)),
    responses((status = 200, body = Object, description = "`parent` and `children` of the item"),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn unlink_parent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ItemLinks>> {
    require_staff(&caller)?;
    let item = visible_item(&state, &caller, &id).await?;
    Ok(axum::Json(
        state
            .store
            .set_parent(item.id(), None, &caller.actor())
            .await?,
    ))
}

//! The caller's in-app inbox: SLA warnings and breaches for team leads, and whatever else
//! the floor needs to tell a person. Each user sees only their own notifications.

use axum::extract::{Path, Query, State};
use delego_core::model::Notification;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::api::parse_id;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Only notifications not read yet.
    #[serde(default)]
    unread: bool,
    /// At most this many, newest first (1–500, default 100).
    limit: Option<u32>,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/notifications", tag = "notifications", params(InboxQuery),
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Vec<Notification>>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::field("query", "invalid", rejection.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range", "use 1 to 500"));
    }
    Ok(axum::Json(
        state
            .store
            .notifications(caller.user.id, query.unread, limit)
            .await?,
    ))
}

/// Marks one of the caller's notifications read. Another user's answers 404, like an
/// unknown one.
#[utoipa::path(post, path = "/notifications/{id}/read", tag = "notifications", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn read_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Notification>> {
    let id = parse_id(&id, "notification")?;
    Ok(axum::Json(
        state.store.read_notification(caller.user.id, id).await?,
    ))
}

//! The floor's pages for team leads and managers: live queues.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::{Ctx, Web, page};
use crate::AppState;
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new().route("/queues", get(queues))
}

#[derive(Template)]
#[template(path = "queues.html")]
struct QueuesPage {
    ctx: Ctx,
    queues: Vec<QueueRow>,
}

struct QueueRow {
    engagement: String,
    step: String,
    open: u64,
    held: u64,
    oldest: String,
    at_risk: u64,
    breached: u64,
}

/// Backlog per engagement and step.
async fn queues(State(state): State<AppState>, web: Web) -> Result<Response, ApiError> {
    web.require_floor()?;
    let risk = jiff::SignedDuration::from_hours(1);
    let queues = crate::api::tasks::queue_views(&state, &web.caller, risk)
        .await?
        .into_iter()
        .map(|queue| QueueRow {
            engagement: queue.engagement,
            step: queue.step,
            open: queue.open,
            held: queue.held,
            oldest: queue
                .oldest_age_seconds
                .map(|age| web.ctx.duration(age))
                .unwrap_or_else(|| "–".to_owned()),
            at_risk: queue.at_risk,
            breached: queue.breached,
        })
        .collect();
    page(&QueuesPage {
        ctx: web.ctx,
        queues,
    })
}

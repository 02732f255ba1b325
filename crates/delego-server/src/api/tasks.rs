//! Tasks: claim the next one, start, submit an outcome, release.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use delego_core::definition::ServiceDefinition;
use delego_core::id::WorkerId;
use delego_core::model::{Task, WorkItem};
use delego_core::values::Key;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use super::items::ItemView;
use super::{in_scope, parse_id};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;

#[derive(Serialize, ToSchema)]
pub struct ClaimedTask {
    #[schema(value_type = Object)]
    task: Task,
    item: ItemView,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NextQuery {
    /// Seconds to wait for a task when none is ready (0–60, default 0): the answer comes
    /// as soon as one becomes eligible, on any node.
    wait: Option<u64>,
}

/// The longest a worker may wait in one request for a task.
const MAX_WAIT_SECONDS: u64 = 60;

fn wait_seconds(
    query: Result<axum::extract::Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<u64> {
    let axum::extract::Query(query) =
        query.map_err(|e| ApiError::field("query", "invalid", e.body_text()))?;
    let wait = query.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(ApiError::field(
            "wait",
            "out_of_range",
            format!("wait at most {MAX_WAIT_SECONDS} seconds"),
        ));
    }
    Ok(wait)
}

/// Claims the best task the caller is eligible for (see the routing rules), holding it on
/// a lease the client renews. With `wait`, waits for one; 204 when there is none.
#[utoipa::path(post, path = "/tasks/next", tag = "tasks", params(NextQuery),
    responses((status = 200, body = ClaimedTask), (status = 204), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
pub async fn claim_next(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<axum::extract::Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let wait = wait_seconds(query)?;
    let worker = caller.worker()?.id;
    let claimed = wait_for(&state, wait, || async {
        Ok(state.store.claim_next_task(worker).await?)
    })
    .await?;
    match claimed {
        Some(claimed) => Ok(axum::Json(ClaimedTask {
            task: claimed.task,
            item: claimed.item.into(),
        })
        .into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Tries `attempt` until it yields something or `wait` seconds pass, trying again whenever
/// the store announces new work (and every `wake_poll_interval` as a fallback).
async fn wait_for<T, F, Fut>(state: &AppState, wait: u64, mut attempt: F) -> ApiResult<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ApiResult<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
    let mut wake_ups = state.store.wake_ups();
    let mut draining = state.draining.subscribe();
    loop {
        // Mark what we have seen before looking, so work announced meanwhile wakes us.
        wake_ups.borrow_and_update();
        if let Some(found) = attempt().await? {
            return Ok(Some(found));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline || *draining.borrow_and_update() {
            return Ok(None);
        }
        let nap = (deadline - now).min(state.config.wake_poll_interval);
        tokio::select! {
            changed = wake_ups.changed() => {
                if changed.is_err() {
                    // The store is gone: fall back to the timer alone.
                    tokio::time::sleep(nap).await;
                }
            }
            _ = tokio::time::sleep(nap) => {}
            _ = draining.changed() => {}
        }
    }
}

/// Renews the lease on a held task: the client calls this while the worker works on it.
#[utoipa::path(post, path = "/tasks/{id}/lease", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn renew_lease(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Task>> {
    let task = visible_task(&state, &caller, &id).await?;
    let worker = caller.worker()?;
    Ok(axum::Json(
        state.store.renew_lease(task.id, worker.id).await?,
    ))
}

async fn visible_task(state: &AppState, caller: &Caller, raw: &str) -> ApiResult<Task> {
    let task = state.store.task(parse_id(raw, "task")?).await?;
    in_scope(caller, task.client_id, task.clone(), "task")
}

/// One task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn get_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Task>> {
    Ok(axum::Json(visible_task(&state, &caller, &id).await?))
}

/// Marks the start of work on a held task; handle time counts from here.
#[utoipa::path(post, path = "/tasks/{id}/start", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn start_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Task>> {
    let task = visible_task(&state, &caller, &id).await?;
    let worker = caller.worker()?;
    Ok(axum::Json(
        state.store.start_task(task.id, worker.id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// One of the step's outcomes (for a review: `approve` or `reject`).
    outcome: String,
    /// Values for the step's form.
    #[serde(default)]
    #[schema(value_type = Object)]
    data: Map<String, Json>,
    /// A knowledge-base article to write now and name in the step form's `article` field
    /// (leave that field out), in the same transaction as the submission.
    new_article: Option<super::articles::ArticleBody>,
}

/// Completes a held task with an outcome; the item moves on.
#[utoipa::path(post, path = "/tasks/{id}/submit", tag = "tasks", params(("id" = String, Path)),
    request_body = Submission,
    responses((status = 200, body = ItemView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn submit_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(submission): ApiJson<Submission>,
) -> ApiResult<axum::Json<ItemView>> {
    let task = visible_task(&state, &caller, &id).await?;
    let worker = caller.worker()?;
    let outcome =
        Key::parse(&submission.outcome).map_err(|e| ApiError::field("outcome", "invalid", e.0))?;
    let item = state.store.item(task.item_id).await?;
    let definition = state
        .store
        .service(&item.service_key, item.service_version)
        .await?;
    let item = submit(
        &state,
        &task,
        worker.id,
        &definition,
        outcome,
        submission.data,
        submission.new_article.as_ref(),
    )
    .await?;
    Ok(axum::Json(item.into()))
}

/// Completes a held task as its worker: attachment fields of the step's form must name
/// the client's own attachments, and a new article is written in the submission's
/// transaction. The API and the agent's workspace both submit through here.
pub(crate) async fn submit(
    state: &AppState,
    task: &Task,
    worker: WorkerId,
    definition: &ServiceDefinition,
    outcome: Key,
    data: Map<String, Json>,
    new_article: Option<&super::articles::ArticleBody>,
) -> ApiResult<WorkItem> {
    if let Some(work) = definition.step(&task.step).and_then(|step| step.work()) {
        super::attachments::check_attachment_fields(state, task.client_id, &work.form, &data)
            .await?;
    }
    Ok(match new_article {
        Some(article) => {
            let draft = article.draft("new_article.")?;
            state
                .store
                .submit_task_with_article(task.id, worker, outcome, data, draft)
                .await?
        }
        None => {
            state
                .store
                .submit_task(task.id, worker, outcome, data)
                .await?
        }
    })
}

/// Hands a held task back; it keeps its place in line.
#[utoipa::path(post, path = "/tasks/{id}/release", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn release_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Task>> {
    let task = visible_task(&state, &caller, &id).await?;
    let worker = caller.worker()?;
    Ok(axum::Json(
        state.store.release_task(task.id, worker.id).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EligibilityQuery {
    /// The worker to check; yourself when left out.
    worker: Option<String>,
}

/// Whether a worker may take a task now, and if not, the requirement that fails.
#[derive(Serialize, ToSchema)]
pub struct Eligibility {
    #[schema(value_type = String)]
    worker: delego_core::id::WorkerId,
    eligible: bool,
    /// The first requirement that fails, e.g. `{"reason": "skill_too_low", …}`.
    #[schema(value_type = Option<Object>)]
    reason: Option<delego_core::routing::Ineligible>,
    /// The skill level asked for now, after any relaxation for waiting.
    min_level_now: u8,
    /// Whether the task's language is still required.
    language_required: bool,
}

/// Why a worker is or is not eligible for a task. Managers and team leads ask about any
/// worker; others about themselves.
#[utoipa::path(get, path = "/tasks/{id}/eligibility", tag = "tasks",
    params(("id" = String, Path), EligibilityQuery),
    responses((status = 200, body = Eligibility), (status = 404, body = Problem)))]
pub async fn eligibility(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<EligibilityQuery>,
) -> ApiResult<axum::Json<Eligibility>> {
    let task = visible_task(&state, &caller, &id).await?;
    let worker_id = match query.worker {
        Some(raw) => parse_id(&raw, "worker")?,
        None => caller.worker()?.id,
    };
    let may_ask = caller.role().manages()
        || caller.role() == delego_core::identity::Role::TeamLead
        || caller.user.worker_id == Some(worker_id);
    if !may_ask {
        return Err(ApiError::NotFound("worker"));
    }
    let worker = state.store.worker(worker_id).await?;
    let now = state.clock.now();
    let load = state.store.worker_load(worker_id).await?;
    let reason = delego_core::routing::ineligibility(&worker, &load, &task, now);
    let (level, language_required) = delego_core::routing::requirements_at(&task, now);
    Ok(axum::Json(Eligibility {
        worker: worker_id,
        eligible: reason.is_none(),
        reason,
        min_level_now: level.get(),
        language_required,
    }))
}

/// Who took a task and by which rule, as recorded when it was claimed.
#[derive(Serialize, ToSchema)]
pub struct Assignment {
    #[schema(value_type = Object)]
    actor: delego_core::model::Actor,
    #[schema(value_type = String, format = DateTime)]
    at: jiff::Timestamp,
    /// `preferred`, `earliest` or `fair_share`, with the serve-by instant, the wait, how
    /// many tasks the worker was eligible for and the engagement's service so far.
    #[schema(value_type = Object)]
    why: Map<String, Json>,
}

/// Why this task went to its worker: the rule and the figures behind it.
#[utoipa::path(get, path = "/tasks/{id}/assignment", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = Assignment), (status = 404, body = Problem)))]
pub async fn assignment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Assignment>> {
    let task = visible_task(&state, &caller, &id).await?;
    let task_id = Json::String(task.id.to_string());
    let claim = state
        .store
        .item_history(task.item_id)
        .await?
        .into_iter()
        .rev()
        .find(|event| event.action == "task.claimed" && event.detail.get("task") == Some(&task_id))
        .ok_or(ApiError::NotFound("assignment"))?;
    Ok(axum::Json(Assignment {
        actor: claim.actor,
        at: claim.at,
        why: claim.detail,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueuesQuery {
    /// Tasks due within this many minutes count as at risk (default 60).
    risk_minutes: Option<u32>,
}

/// One queue at a glance.
#[derive(Serialize, ToSchema)]
pub struct QueueView {
    #[schema(value_type = String)]
    pub engagement_id: delego_core::id::EngagementId,
    pub engagement: String,
    #[schema(value_type = String)]
    pub client_id: delego_core::id::ClientId,
    pub step: String,
    /// The step's title in the engagement's service definition.
    pub step_title: String,
    pub open: u64,
    pub held: u64,
    /// How long the longest-waiting open task has waited.
    pub oldest_age_seconds: Option<i64>,
    pub breached: u64,
    pub at_risk: u64,
}

/// Backlog per engagement and step: waiting and held tasks, the oldest wait, and tasks
/// past or near their SLA deadline. Read from counters, so it is cheap to poll.
#[utoipa::path(get, path = "/queues", tag = "tasks", params(QueuesQuery),
    responses((status = 200, body = Vec<QueueView>), (status = 422, body = Problem)))]
pub async fn queues(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<axum::extract::Query<QueuesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Vec<QueueView>>> {
    let axum::extract::Query(query) =
        query.map_err(|e| ApiError::field("query", "invalid", e.body_text()))?;
    let risk = jiff::SignedDuration::from_mins(i64::from(query.risk_minutes.unwrap_or(60)));
    Ok(axum::Json(queue_views(&state, &caller, risk).await?))
}

/// The queues of the engagements the caller may see, with tasks due within `risk` at risk.
pub async fn queue_views(
    state: &AppState,
    caller: &Caller,
    risk: jiff::SignedDuration,
) -> ApiResult<Vec<QueueView>> {
    let engagements: std::collections::BTreeMap<_, _> = state
        .store
        .engagements(None)
        .await?
        .into_iter()
        .filter(|e| caller.scope.allows(e.client_id))
        .map(|e| (e.id, e))
        .collect();
    let now = state.clock.now();
    let mut views = Vec::new();
    for queue in state.store.queues(risk).await? {
        let Some(engagement) = engagements.get(&queue.engagement_id) else {
            continue;
        };
        // Definitions are cached by the store: one lookup per queue costs no query.
        let definition = state
            .store
            .service(&engagement.service_key, engagement.service_version)
            .await?;
        let step_title = Key::parse(&queue.step)
            .ok()
            .and_then(|step| definition.step(&step).map(|step| step.title.clone()))
            .unwrap_or_else(|| queue.step.clone());
        views.push(QueueView {
            engagement_id: engagement.id,
            engagement: engagement.name.to_string(),
            client_id: engagement.client_id,
            step: queue.step,
            step_title,
            open: queue.open,
            held: queue.held,
            oldest_age_seconds: queue
                .oldest_queued_at
                .map(|at| now.duration_since(at).as_secs()),
            breached: queue.breached,
            at_risk: queue.at_risk,
        });
    }
    Ok(views)
}

#[derive(Serialize, ToSchema)]
pub struct OfferView {
    #[schema(value_type = String)]
    id: delego_core::id::OfferId,
    #[schema(value_type = Object)]
    task: Task,
    #[schema(value_type = String, format = DateTime)]
    expires_at: jiff::Timestamp,
}

/// The caller's open offers (push routing). With `wait`, waits until there is one.
#[utoipa::path(get, path = "/offers", tag = "tasks", params(NextQuery),
    responses((status = 200, body = Vec<OfferView>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn my_offers(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<axum::extract::Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Vec<OfferView>>> {
    let wait = wait_seconds(query)?;
    let worker = caller.worker()?.id;
    let offers = wait_for(&state, wait, || async {
        let offers = state.store.pending_offers(worker).await?;
        Ok((!offers.is_empty()).then_some(offers))
    })
    .await?
    .unwrap_or_default();
    Ok(axum::Json(
        offers
            .into_iter()
            .map(|offer| OfferView {
                id: offer.id,
                task: offer.task,
                expires_at: offer.expires_at,
            })
            .collect(),
    ))
}

/// Accepts an offer: the task is claimed on a lease, as with `POST /tasks/next`.
#[utoipa::path(post, path = "/offers/{id}/accept", tag = "tasks", params(("id" = String, Path)),
    responses((status = 200, body = ClaimedTask), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn accept_offer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let worker = caller.worker()?.id;
    let claimed = state
        .store
        .answer_offer(parse_id(&id, "offer")?, worker, true)
        .await?
        .ok_or(ApiError::NotFound("offer"))?;
    Ok(axum::Json(ClaimedTask {
        task: claimed.task,
        item: claimed.item.into(),
    })
    .into_response())
}

/// Rejects an offer; the next best worker is offered the task.
#[utoipa::path(post, path = "/offers/{id}/reject", tag = "tasks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn reject_offer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let worker = caller.worker()?.id;
    state
        .store
        .answer_offer(parse_id(&id, "offer")?, worker, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

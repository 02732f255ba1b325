//! The agent's workspace: presence, the next task or an offer, the task in hand with its
//! step's form, and the agent's own day.
//!
//! A task taken here starts at once: the agent sees it as soon as it is theirs, so its
//! handle time runs from the claim.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use delego_core::definition::{AGENT_NAME, ServiceDefinition, Step, fill};
use delego_core::id::TaskId;
use delego_core::model::{Presence, Task, TaskStatus, WorkItem, Worker};
use delego_core::values::Key;
use serde::Deserialize;

use super::forms::{self, FieldView, Posted};
use super::item::{self, ItemDetail, MergeForm, MergePosted};
use super::{Ctx, Web, knowledge, render};
use crate::AppState;
use crate::api::metrics::{MetricsQuery, metrics_view};
use crate::api::parse_id;
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/work", get(workspace))
        .route("/work/presence", post(set_presence))
        .route("/work/next", post(take_next))
        .route("/work/offers/{id}/{answer}", post(answer_offer))
        .route("/work/tasks/{id}", get(task_page).post(submit))
        .route("/work/tasks/{id}/release", post(release))
        .route("/work/tasks/{id}/merge", post(merge))
}

#[derive(Template)]
#[template(path = "work.html")]
struct WorkPage {
    ctx: Ctx,
    presence: &'static str,
    reason: String,
    reason_error: Option<String>,
    notice: Option<String>,
    offers: Vec<OfferRow>,
    held: Vec<TaskRow>,
    day: DayStats,
}

struct OfferRow {
    id: String,
    title: String,
    expires: String,
}

struct TaskRow {
    href: String,
    title: String,
    reference: String,
    step: String,
    due: Option<String>,
}

/// The agent's own figures for today (in their time zone).
pub struct DayStats {
    pub handled: String,
    pub average_handle_time: String,
    pub quality: String,
}

#[derive(Deserialize)]
struct WorkQuery {
    /// Set after a task was submitted or released, or no task was waiting.
    notice: Option<String>,
}

fn worker(web: &Web) -> Result<&Worker, ApiError> {
    // Only people with a worker profile have a workspace; to anyone else it is not there.
    web.caller.worker.as_ref().ok_or(ApiError::NotFound("page"))
}

fn presence_name(presence: &Presence) -> &'static str {
    match presence {
        Presence::Break { .. } => "break",
        Presence::Offline => "offline",
        _ => "available",
    }
}

async fn workspace(
    State(state): State<AppState>,
    web: Web,
    Query(query): Query<WorkQuery>,
) -> Result<Response, ApiError> {
    let notice = query
        .notice
        .filter(|id| {
            ["submitted", "released", "no-task", "offer-gone", "merged"].contains(&id.as_str())
        })
        .map(|id| web.ctx.t(&format!("work-notice-{id}")));
    workspace_page(&state, web, StatusCode::OK, notice, None).await
}

async fn workspace_page(
    state: &AppState,
    web: Web,
    status: StatusCode,
    notice: Option<String>,
    reason_error: Option<(String, String)>,
) -> Result<Response, ApiError> {
    let worker = state.store.worker(worker(&web)?.id).await?;
    let tr = &web.ctx.tr;
    let mut offers = Vec::new();
    for offer in state.store.pending_offers(worker.id).await? {
        let (title, _) = task_title(state, &offer.task).await?;
        offers.push(OfferRow {
            id: offer.id.to_string(),
            title,
            expires: tr.date_time(offer.expires_at),
        });
    }
    let mut held = Vec::new();
    for task in state.store.held_tasks(worker.id).await? {
        let (title, reference) = task_title(state, &task).await?;
        held.push(TaskRow {
            href: format!("/work/tasks/{}", task.id),
            title,
            reference,
            step: task.step.to_string(),
            due: task.due_at.map(|at| tr.date_time(at)),
        });
    }
    let day = agent_day(state, &web, worker.id).await?;
    let (reason, reason_error) = match reason_error {
        Some((typed, error)) => (typed, Some(error)),
        None => match &worker.presence {
            Presence::Break { reason } => (reason.clone(), None),
            _ => (String::new(), None),
        },
    };
    let page = WorkPage {
        presence: if reason_error.is_some() {
            "break"
        } else {
            presence_name(&worker.presence)
        },
        reason,
        reason_error,
        notice,
        offers,
        held,
        day,
        ctx: web.ctx,
    };
    Ok(render(status, &page))
}

/// Today's handled tasks and average handle time, as the metrics API counts them for
/// the worker's own row; today is the user's day, in their time zone.
async fn agent_day(
    state: &AppState,
    web: &Web,
    worker: delego_core::id::WorkerId,
) -> Result<DayStats, ApiError> {
    let today = state
        .clock
        .now()
        .to_zoned_datetime(web.ctx.zone().clone())
        .start_of_day()
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("the day's start: {error}")))?;
    let tomorrow = today
        .tomorrow()
        .and_then(|day| day.start_of_day())
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("the day's end: {error}")))?;
    let query = MetricsQuery {
        from: today.timestamp().to_string(),
        to: tomorrow.timestamp().to_string(),
        by: Some("worker".into()),
        ..Default::default()
    };
    let view = metrics_view(state, &web.caller, query).await?;
    let own = view.rows.iter().filter(|row| row.worker_id == Some(worker));
    let (handled, seconds) = own.fold((0, 0.0), |(handled, seconds), row| {
        (handled + row.handled, seconds + row.handle_seconds)
    });
    let tr = &web.ctx.tr;
    Ok(DayStats {
        handled: tr.int(i64::try_from(handled).unwrap_or(i64::MAX)),
        average_handle_time: if handled == 0 {
            "–".to_owned()
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let average = (seconds / handled as f64).round() as i64;
            tr.duration(average)
        },
        // Quality reviews are not scored yet; the card says so rather than showing zero.
        quality: tr.t("work-no-quality-score"),
    })
}

/// The task's item subject and reference.
async fn task_title(state: &AppState, task: &Task) -> Result<(String, String), ApiError> {
    let item = state.store.item(task.item_id).await?;
    let definition = state
        .store
        .service(&item.service_key, item.service_version)
        .await?;
    Ok((item::title(&item, &definition), item.id().reference()))
}

#[derive(Deserialize)]
struct PresenceForm {
    csrf: String,
    presence: String,
    #[serde(default)]
    reason: String,
}

async fn set_presence(
    State(state): State<AppState>,
    web: Web,
    Form(form): Form<PresenceForm>,
) -> Result<Response, ApiError> {
    web.check_csrf(&form.csrf)?;
    let worker = worker(&web)?.id;
    let presence = match form.presence.as_str() {
        "available" => Presence::Available,
        "offline" => Presence::Offline,
        "break" if form.reason.trim().is_empty() => {
            let error = web.ctx.t("work-break-reason-required");
            return workspace_page(
                &state,
                web,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some((form.reason, error)),
            )
            .await;
        }
        "break" => Presence::Break {
            reason: form.reason.trim().to_owned(),
        },
        _ => return Err(ApiError::BadRequest(web.ctx.t("work-unknown-presence"))),
    };
    state
        .store
        .set_presence(worker, presence, &web.caller.actor())
        .await?;
    Ok(Redirect::to("/work").into_response())
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

async fn take_next(
    State(state): State<AppState>,
    web: Web,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ApiError> {
    web.check_csrf(&form.csrf)?;
    let worker = worker(&web)?.id;
    match state.store.claim_next_task(worker).await? {
        Some(claimed) => started(&state, claimed.task.id, worker).await,
        None => Ok(Redirect::to("/work?notice=no-task").into_response()),
    }
}

/// Starts a task just taken and opens it.
async fn started(
    state: &AppState,
    task: TaskId,
    worker: delego_core::id::WorkerId,
) -> Result<Response, ApiError> {
    state.store.start_task(task, worker).await?;
    Ok(Redirect::to(&format!("/work/tasks/{task}")).into_response())
}

async fn answer_offer(
    State(state): State<AppState>,
    web: Web,
    Path((id, answer)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ApiError> {
    web.check_csrf(&form.csrf)?;
    let worker = worker(&web)?.id;
    let accept = match answer.as_str() {
        "accept" => true,
        "reject" => false,
        _ => return Err(ApiError::NotFound("page")),
    };
    let offer = parse_id(&id, "offer")?;
    match state.store.answer_offer(offer, worker, accept).await {
        Ok(Some(claimed)) => started(&state, claimed.task.id, worker).await,
        Ok(None) => Ok(Redirect::to("/work").into_response()),
        // Expired or taken meanwhile: the agent just sees it gone.
        Err(delego_store::StoreError::NotFound(_) | delego_store::StoreError::Conflict(_)) => {
            Ok(Redirect::to("/work?notice=offer-gone").into_response())
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    ctx: Ctx,
    task_id: String,
    step: String,
    /// Reference, step and status in one line under the title.
    line: String,
    fields: Vec<FieldView>,
    outcomes: Vec<(String, String)>,
    replies: Vec<ReplyLink>,
    item: ItemDetail,
    error: Option<String>,
    merge: Option<MergeForm>,
    /// The knowledge base, for a step whose form names an article.
    knowledge: Option<knowledge::Knowledge>,
    /// How often the open page renews the task's lease: a third of the lease, so that a
    /// missed renewal or two does not lose it.
    renew_every_ms: u128,
}

struct ReplyLink {
    href: String,
    title: String,
}

/// A task the caller holds; any other task, held by someone else or outside their
/// scope, is not there for them.
async fn held_task(state: &AppState, web: &Web, raw: &str) -> Result<Task, ApiError> {
    let worker = worker(web)?.id;
    let task = state.store.task(parse_id(raw, "task")?).await?;
    match task.status {
        TaskStatus::Claimed { worker: holder, .. }
            if holder == worker && web.caller.scope.allows(task.client_id) =>
        {
            Ok(task)
        }
        _ => Err(ApiError::NotFound("task")),
    }
}

#[derive(Deserialize)]
struct TaskQuery {
    /// A canned reply to start the reply field with.
    reply: Option<String>,
    /// A knowledge-base search.
    kb: Option<String>,
    /// An article picked from the knowledge base, for the form's article field.
    article: Option<String>,
}

async fn task_page(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    Query(query): Query<TaskQuery>,
) -> Result<Response, ApiError> {
    let task = held_task(&state, &web, &id).await?;
    let mut current = serde_json::Map::new();
    let item = state.store.item(task.item_id).await?;
    let definition = state
        .store
        .service(&item.service_key, item.service_version)
        .await?;
    if let Some(reply) = query
        .reply
        .as_deref()
        .and_then(|key| definition.canned_reply(key))
    {
        let agent = web.caller.user.name.to_string();
        let text = fill(&reply.body, &item.state.data, &[(AGENT_NAME, &agent)]);
        current.insert(reply.field.to_string(), serde_json::Value::String(text));
    }
    let article_field = definition
        .step(&task.step)
        .and_then(Step::work)
        .and_then(|work| work.form.article_field());
    if let (Some(field), Some(article)) = (article_field, query.article) {
        current.insert(field.name.to_string(), serde_json::Value::String(article));
    }
    let kb = query.kb.unwrap_or_default();
    let page = task_view(
        &state,
        web,
        &task,
        &item,
        &definition,
        None,
        &current,
        &[],
        &kb,
    )
    .await?;
    Ok(render(StatusCode::OK, &page))
}

/// The task's page: its step's form (as posted, or with `current` values), the item, the
/// merge form, and the knowledge base searched for `kb`.
#[allow(clippy::too_many_arguments)]
async fn task_view(
    state: &AppState,
    web: Web,
    task: &Task,
    item: &WorkItem,
    definition: &ServiceDefinition,
    posted: Option<&Posted>,
    current: &serde_json::Map<String, serde_json::Value>,
    errors: &[delego_core::definition::FieldError],
    kb: &str,
) -> Result<TaskPage, ApiError> {
    let step = definition
        .step(&task.step)
        .ok_or(ApiError::NotFound("task"))?;
    let form = step.work().map(|work| &work.form);
    let fields = form
        .map(|form| forms::views(form, posted, current, errors, &web.ctx, false))
        .unwrap_or_default();
    let outcomes = outcomes(&web, step);
    let replies = definition
        .canned_replies
        .iter()
        .map(|reply| ReplyLink {
            href: format!("/work/tasks/{}?reply={}", task.id, reply.key),
            title: reply.title.clone(),
        })
        .collect();
    let knowledge = match form {
        Some(form) => {
            knowledge::panel(state, &web, task, item, form, kb, posted, current, errors).await?
        }
        None => None,
    };
    let detail = ItemDetail::load(state, &web.ctx, item, definition).await?;
    let error = (!errors.is_empty()).then(|| web.ctx.t("work-fix-fields"));
    let line = web.ctx.t_args(
        "work-task-line",
        &[
            ("reference", detail.reference.as_str()),
            ("step", step.title.as_str()),
            ("status", detail.status.as_str()),
        ],
    );
    Ok(TaskPage {
        renew_every_ms: state.config.task_lease.unsigned_abs().as_millis() / 3,
        line,
        task_id: task.id.to_string(),
        step: step.title.clone(),
        fields,
        outcomes,
        replies,
        item: detail,
        error,
        merge: MergeForm::offered(item, merge_action(task)),
        knowledge,
        ctx: web.ctx,
    })
}

fn merge_action(task: &Task) -> String {
    format!("/work/tasks/{}/merge", task.id)
}

/// The step's outcomes as buttons: (value, label). A label comes from the language file
/// when it has one (`outcome-replied`), else from the outcome's own name.
fn outcomes(web: &Web, step: &Step) -> Vec<(String, String)> {
    step.successors()
        .into_iter()
        .map(|(outcome, _)| {
            let id = format!("outcome-{}", outcome.replace('_', "-"));
            let label = if web.ctx.has(&id) {
                web.ctx.t(&id)
            } else {
                let spaced = outcome.replace('_', " ");
                let mut letters = spaced.chars();
                letters
                    .next()
                    .map(|first| first.to_uppercase().chain(letters).collect())
                    .unwrap_or_default()
            };
            (outcome.to_owned(), label)
        })
        .collect()
}

async fn submit(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let posted = Posted(pairs);
    web.check_csrf(posted.first("csrf").unwrap_or_default())?;
    let task = held_task(&state, &web, &id).await?;
    let worker = worker(&web)?.id;
    let outcome = Key::parse(posted.first("outcome").unwrap_or_default())
        .map_err(|error| ApiError::BadRequest(error.0))?;
    let item = state.store.item(task.item_id).await?;
    let definition: std::sync::Arc<ServiceDefinition> = state
        .store
        .service(&item.service_key, item.service_version)
        .await?;
    let data = definition
        .step(&task.step)
        .and_then(Step::work)
        .map(|work| forms::values(&work.form, &posted, web.ctx.zone()))
        .unwrap_or_default();
    let article = knowledge::posted_article(&posted);
    let submitted = crate::api::tasks::submit(
        &state,
        &task,
        worker,
        &definition,
        outcome,
        data,
        article.as_ref(),
    )
    .await;
    match submitted {
        Ok(_) => Ok(Redirect::to("/work?notice=submitted").into_response()),
        Err(ApiError::Validation { errors, .. }) => {
            let none = serde_json::Map::new();
            let page = task_view(
                &state,
                web,
                &task,
                &item,
                &definition,
                Some(&posted),
                &none,
                &errors,
                "",
            )
            .await?;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(other) => Err(other),
    }
}

/// Merges the task's item, a duplicate, into the one named (its task goes with it); a
/// refusal comes back beside the field.
async fn merge(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    Form(form): Form<MergePosted>,
) -> Result<Response, ApiError> {
    web.check_csrf(&form.csrf)?;
    let task = held_task(&state, &web, &id).await?;
    let item = state.store.item(task.item_id).await?;
    let action = merge_action(&task);
    match item::merge_into(&state, &web, &item, action, &form.into).await? {
        Ok(_) => Ok(Redirect::to("/work?notice=merged").into_response()),
        Err(refused) => {
            let definition = state
                .store
                .service(&item.service_key, item.service_version)
                .await?;
            let none = serde_json::Map::new();
            let mut page =
                task_view(&state, web, &task, &item, &definition, None, &none, &[], "").await?;
            page.merge = Some(refused);
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

async fn release(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ApiError> {
    web.check_csrf(&form.csrf)?;
    let task = held_task(&state, &web, &id).await?;
    state.store.release_task(task.id, worker(&web)?.id).await?;
    Ok(Redirect::to("/work?notice=released").into_response())
}

//! The floor's pages for team leads and managers: the dashboard (live queues, workers,
//! today's charts), the queues, each queue's tasks, and an item as the floor sees it.
//!
//! Every figure comes from the API's own functions for the same caller, so a page never
//! shows more, or other numbers, than the API would.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use delego_core::id::WorkerId;
use delego_core::metrics::{INTERVAL_MINUTES, Row};
use delego_core::model::{Task, TaskStatus, Worker};
use delego_core::values::Key;
use delego_store::ItemFilter;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::chart::{Chart, Drawing, Mark, Scale, Series, Target};
use super::item::{self, ItemDetail, MergeForm, MergePosted};
use super::{Ctx, Web, page, render};
use crate::AppState;
use crate::api::{directory, items, metrics, tasks};
use crate::error::ApiError;
use crate::i18n::Tr;

/// Tasks due within this count as at risk, on every floor page alike.
const RISK: SignedDuration = SignedDuration::from_hours(1);
/// The service level drawn as the goal: the common 80 % answered within the metrics'
/// default answer target of 20 s.
const SERVICE_LEVEL_GOAL: f64 = 0.8;
/// How often the dashboard of today reloads itself, for a screen on the wall.
const REFRESH_SECONDS: &str = "60";
/// The most items a queue page reads, in one read, for its tasks' subjects; a task of an
/// item beyond them still lists, under its item's id.
const QUEUE_ITEMS: u32 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(dashboard))
        .route("/queues", get(queues))
        .route("/queues/{engagement}/{step}", get(queue))
        .route("/items/{id}", get(floor_item))
        .route("/items/{id}/merge", post(merge))
}

/// One queue's row, on the dashboard and the queues page.
struct QueueRow {
    engagement: String,
    engagement_id: String,
    step: String,
    href: String,
    open: String,
    held: String,
    oldest: String,
    at_risk: String,
    breached: String,
    risky: bool,
    late: bool,
}

async fn queue_rows(state: &AppState, web: &Web) -> Result<Vec<QueueRow>, ApiError> {
    let tr = &web.ctx;
    let rows = tasks::queue_views(state, &web.caller, RISK)
        .await?
        .into_iter()
        .map(|queue| QueueRow {
            href: format!("/queues/{}/{}", queue.engagement_id, queue.step),
            engagement: queue.engagement,
            engagement_id: queue.engagement_id.to_string(),
            step: queue.step_title,
            open: count(tr, queue.open),
            held: count(tr, queue.held),
            oldest: queue
                .oldest_age_seconds
                .map(|age| tr.duration(age))
                .unwrap_or_else(|| "–".to_owned()),
            at_risk: count(tr, queue.at_risk),
            breached: count(tr, queue.breached),
            risky: queue.at_risk > 0,
            late: queue.breached > 0,
        })
        .collect();
    Ok(rows)
}

fn count(tr: &Tr, n: u64) -> String {
    tr.int(i64::try_from(n).unwrap_or(i64::MAX))
}

#[derive(Template)]
#[template(path = "queues.html")]
struct QueuesPage {
    ctx: Ctx,
    queues: Vec<QueueRow>,
}

/// Backlog per engagement and step.
async fn queues(State(state): State<AppState>, web: Web) -> Result<Response, ApiError> {
    web.require_floor()?;
    let queues = queue_rows(&state, &web).await?;
    page(&QueuesPage {
        ctx: web.ctx,
        queues,
    })
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    ctx: Ctx,
    /// The day shown, as the date input holds it (`YYYY-MM-DD`).
    date: String,
    interval: u32,
    intervals: [u32; 3],
    queues: Vec<QueueRow>,
    /// `None` for a caller the API shows no workers (all but managers and admins).
    workers: Option<WorkersView>,
    csat: CsatCard,
    /// The day's rates of each engagement whose service defines some.
    results: Vec<ResultRow>,
    charts: Vec<Drawing>,
}

/// One rate of one engagement over the day (a campaign's contact rate).
struct ResultRow {
    engagement: String,
    key: String,
    title: String,
    help: String,
    /// The share, or `–` when nothing was done that it is a share of.
    share: String,
    counted: String,
}

/// The day's rates per engagement, added up over the intervals' counts.
async fn result_rows(state: &AppState, tr: &Tr, rows: &[Row]) -> Result<Vec<ResultRow>, ApiError> {
    let mut totals: BTreeMap<delego_core::id::EngagementId, BTreeMap<&str, (u64, u64)>> =
        BTreeMap::new();
    for row in rows {
        let Some(engagement) = row.engagement_id else {
            continue;
        };
        let sums = totals.entry(engagement).or_default();
        for (key, measured) in &row.rates {
            let (count, of) = sums.entry(key.as_str()).or_default();
            *count += measured.count;
            *of += measured.of;
        }
    }
    let mut results = Vec::new();
    for (engagement, sums) in totals.into_iter().filter(|(_, sums)| !sums.is_empty()) {
        let engagement = state.store.engagement(engagement).await?;
        let definition = state
            .store
            .service(&engagement.service_key, engagement.service_version)
            .await?;
        for rate in &definition.rates {
            let (count, of) = sums.get(rate.key.as_str()).copied().unwrap_or_default();
            results.push(ResultRow {
                engagement: engagement.name.to_string(),
                key: rate.key.to_string(),
                title: rate.title.clone(),
                help: rate.help.clone().unwrap_or_default(),
                #[allow(clippy::cast_precision_loss)] // day counts far below 2^52
                share: if of > 0 {
                    tr.percent(count as f64 / of as f64)
                } else {
                    "–".to_owned()
                },
                counted: tr.t_args(
                    "dash-results-counted",
                    &[("count", &self::count(tr, count)), ("of", &self::count(tr, of))],
                ),
            });
        }
    }
    Ok(results)
}

/// The day's customer satisfaction, added up over its intervals.
struct CsatCard {
    responses: String,
    /// The average rating of 5; none without ratings.
    average: Option<String>,
    /// The share rated 4 or 5.
    satisfied: Option<String>,
}

fn csat_card(tr: &Tr, rows: &[Row]) -> CsatCard {
    let (responses, sum, satisfied) = rows.iter().fold((0, 0, 0), |(n, sum, happy), row| {
        (
            n + row.csat_responses,
            sum + row.csat_sum,
            happy + row.csat_satisfied,
        )
    });
    let per_response = |total: u64| (responses > 0).then(|| total as f64 / responses as f64);
    CsatCard {
        responses: count(tr, responses),
        average: per_response(sum).map(|average| tr.decimal(average, 1)),
        satisfied: per_response(satisfied).map(|share| tr.percent(share)),
    }
}

struct WorkersView {
    /// Per presence state: (state, its name, how many).
    summary: Vec<(&'static str, String, String)>,
    rows: Vec<WorkerRow>,
}

struct WorkerRow {
    name: String,
    team: String,
    state: &'static str,
    presence: String,
    in_hand: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DashboardQuery {
    /// The day to chart, in the user's time zone (default today).
    date: Option<String>,
    /// Minutes per interval (default 60).
    interval: Option<u32>,
}

/// The floor at a glance: queues, workers and the day's charts.
async fn dashboard(
    State(state): State<AppState>,
    web: Web,
    query: Result<Query<DashboardQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    web.require_floor()?;
    let Query(query) = query.map_err(|e| ApiError::field("query", "invalid", e.body_text()))?;
    let zone = web.ctx.zone().clone();
    let today = state.clock.now().to_zoned_datetime(zone.clone()).date();
    let date = match query.date.as_deref().filter(|raw| !raw.is_empty()) {
        Some(raw) => raw
            .parse::<jiff::civil::Date>()
            .map_err(|_| ApiError::field("date", "invalid", "use a date as YYYY-MM-DD"))?,
        None => today,
    };
    let interval = query.interval.unwrap_or(60);
    let day_start = |date: jiff::civil::Date| {
        date.to_zoned_datetime(zone.clone())
            .map(|start| start.timestamp())
            .map_err(|e| ApiError::field("date", "invalid", e.to_string()))
    };
    let (from, to) = (
        day_start(date)?,
        day_start(date.tomorrow().unwrap_or(date))?,
    );
    // The day's charts, and its results per engagement beside them.
    let (view, by_engagement) = metrics::metrics_views(
        &state,
        &web.caller,
        metrics::MetricsQuery {
            from: from.to_string(),
            to: to.to_string(),
            interval: Some(interval),
            ..Default::default()
        },
        Some(delego_core::metrics::Breakdown::Engagement),
    )
    .await?;
    let results = result_rows(&state, &web.ctx, &by_engagement).await?;

    let queues = queue_rows(&state, &web).await?;
    let workers = match floor_workers(&state, &web).await? {
        Some(workers) => {
            let in_hand = state.store.tasks_in_hand().await?;
            Some(workers_view(&web.ctx, &workers, &in_hand))
        }
        None => None,
    };
    let charts = charts(&web.ctx, interval, from, &view.rows);
    let csat = csat_card(&web.ctx, &view.rows);
    let mut response = page(&DashboardPage {
        date: date.to_string(),
        interval,
        intervals: INTERVAL_MINUTES,
        queues,
        workers,
        csat,
        results,
        charts,
        ctx: web.ctx,
    })?;
    if date == today {
        response
            .headers_mut()
            .insert(header::REFRESH, HeaderValue::from_static(REFRESH_SECONDS));
    }
    Ok(response)
}

/// What a worker's presence is called, and its state's key for styles and counts.
/// The workers the API lists for the caller: all of them for managers and admins, none
/// for team leads.
async fn floor_workers(state: &AppState, web: &Web) -> Result<Option<Vec<Worker>>, ApiError> {
    match directory::all_workers(state, &web.caller).await {
        Ok(workers) => Ok(Some(workers)),
        Err(ApiError::Forbidden(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Names of the workers the caller may see listed, to say who holds a task.
async fn worker_names(state: &AppState, web: &Web) -> Result<HashMap<WorkerId, String>, ApiError> {
    let workers = floor_workers(state, web).await?.unwrap_or_default();
    Ok(workers
        .into_iter()
        .map(|worker| (worker.id, worker.name.to_string()))
        .collect())
}

fn workers_view(tr: &Tr, workers: &[Worker], in_hand: &BTreeMap<WorkerId, u64>) -> WorkersView {
    let rows: Vec<WorkerRow> = workers
        .iter()
        .map(|worker| {
            let (state, presence) = super::presence(tr, &worker.presence);
            WorkerRow {
                name: worker.name.to_string(),
                team: worker
                    .team
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                state,
                presence,
                in_hand: count(tr, in_hand.get(&worker.id).copied().unwrap_or(0)),
            }
        })
        .collect();
    let summary = ["available", "busy", "wrap-up", "break", "offline"]
        .into_iter()
        .map(|state| {
            let n = rows.iter().filter(|row| row.state == state).count();
            let name = tr.t(&format!("dash-presence-{state}"));
            (state, name, count(tr, n as u64))
        })
        .collect();
    WorkersView { summary, rows }
}

/// The three charts of the day from the metrics' rows (one per interval, in order).
fn charts(tr: &Tr, interval: u32, from: Timestamp, rows: &[Row]) -> Vec<Drawing> {
    let intervals: Vec<(Timestamp, String)> = rows
        .iter()
        .map(|row| {
            let local = row.start.to_zoned_datetime(tr.zone().clone());
            let label = tr.t_args(
                "dash-time",
                &[
                    ("hour", &local.hour().to_string()),
                    ("hour2", &format!("{:02}", local.hour())),
                    ("minute", &format!("{:02}", local.minute())),
                ],
            );
            (row.start, label)
        })
        .collect();
    let description = tr.t_args(
        "dash-chart-description",
        &[
            ("minutes", &interval.to_string()),
            ("day", &tr.date(from)),
            ("zone", &tr.time_zone()),
        ],
    );
    let series = |key, name: &str, mark, value: fn(&Row) -> Option<f64>| Series {
        key,
        name: tr.t(name),
        mark,
        values: rows.iter().map(value).collect(),
    };
    let chart = |id, title: &str, scale, series, target| Chart {
        id,
        title: tr.t(title),
        description: description.clone(),
        scale,
        intervals: intervals.clone(),
        series,
        target,
    };
    let counts = |v: f64| tr.int(v.round() as i64);
    let shares = |v: f64| tr.percent(v);
    let seconds = |v: f64| tr.duration(v.round() as i64);
    let volume = chart(
        "chart-volume",
        "dash-chart-volume",
        Scale::Count,
        vec![
            series("arrivals", "dash-arrivals", Mark::Bars, |r| {
                Some(r.arrivals as f64)
            }),
            series("handled", "dash-handled", Mark::Bars, |r| {
                Some(r.handled as f64)
            }),
        ],
        None,
    );
    let service_level = chart(
        "chart-service-level",
        "dash-chart-service-level",
        Scale::Share,
        vec![series(
            "service_level",
            "dash-service-level",
            Mark::Line,
            |r| r.service_level,
        )],
        Some(Target {
            value: SERVICE_LEVEL_GOAL,
            label: tr.t_arg("dash-goal", "value", tr.percent(SERVICE_LEVEL_GOAL)),
        }),
    );
    let handle_time = chart(
        "chart-handle-time",
        "dash-chart-handle-time",
        Scale::Seconds,
        vec![series("aht", "dash-aht", Mark::Bars, |r| r.aht_seconds)],
        None,
    );
    vec![
        volume.draw(&counts),
        service_level.draw(&shares),
        handle_time.draw(&seconds),
    ]
}

/// How close a deadline is: `breached`, `warning` (within [`RISK`]) or `running`.
fn urgency(due: Option<Timestamp>, now: Timestamp) -> &'static str {
    match due {
        Some(due) if due < now => "breached",
        Some(due) if due <= now + RISK => "warning",
        _ => "running",
    }
}

/// Who holds or did a task.
fn worker_of(task: &Task) -> Option<WorkerId> {
    match &task.status {
        TaskStatus::Claimed { worker, .. } | TaskStatus::Done { worker, .. } => Some(*worker),
        TaskStatus::Open | TaskStatus::Cancelled => None,
    }
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    ctx: Ctx,
    engagement: String,
    step: String,
    tasks: Vec<QueueTask>,
}

struct QueueTask {
    href: String,
    reference: String,
    subject: String,
    priority: String,
    holder: String,
    held: bool,
    waiting: String,
    due: String,
    urgency: &'static str,
}

/// One queue's waiting and held tasks, most urgent first, each linking to its item.
async fn queue(
    State(state): State<AppState>,
    web: Web,
    Path((engagement, step)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    web.require_floor()?;
    let engagement = items::visible_engagement(&state, &web.caller, &engagement).await?;
    let definition = state
        .store
        .service(&engagement.service_key, engagement.service_version)
        .await?;
    let step = Key::parse(&step)
        .ok()
        .and_then(|key| definition.step(&key))
        .ok_or(ApiError::NotFound("queue"))?;
    let tasks = state.store.queue_tasks(engagement.id, &step.id).await?;
    let filter = ItemFilter {
        engagement_id: Some(engagement.id),
        status: Some("active".into()),
        limit: QUEUE_ITEMS,
        ..ItemFilter::default()
    };
    let items: HashMap<_, _> = items::visible_items(&state, &web.caller, filter)
        .await?
        .into_iter()
        .map(|item| (item.id(), item))
        .collect();
    let names = worker_names(&state, &web).await?;
    let now = state.clock.now();
    let tr = &web.ctx;
    let tasks = tasks
        .iter()
        .map(|task| {
            let item = items.get(&task.item_id);
            QueueTask {
                href: format!("/items/{}", task.item_id),
                reference: task.item_id.reference(),
                subject: item.map_or_else(String::new, |item| item::title(item, &definition)),
                priority: tr.t(&format!("dash-priority-{}", task.priority.as_str())),
                holder: match worker_of(task).map(|worker| names.get(&worker)) {
                    None => tr.t("dash-task-waiting"),
                    Some(Some(name)) => tr.t_arg("dash-task-held-by", "name", name),
                    Some(None) => tr.t("dash-task-held"),
                },
                held: worker_of(task).is_some(),
                waiting: tr.duration(now.duration_since(task.queued_at).as_secs()),
                due: task
                    .due_at
                    .map_or_else(|| "–".to_owned(), |due| tr.date_time(due)),
                urgency: urgency(task.due_at, now),
            }
        })
        .collect();
    page(&QueuePage {
        engagement: engagement.name.to_string(),
        step: step.title.clone(),
        tasks,
        ctx: web.ctx,
    })
}

#[derive(Template)]
#[template(path = "floor_item.html")]
struct ItemPage {
    ctx: Ctx,
    engagement: String,
    item: ItemDetail,
    tasks: Vec<TaskRow>,
    merge: Option<MergeForm>,
}

struct TaskRow {
    step: String,
    status: String,
    worker: String,
    queued: String,
    due: String,
    urgency: &'static str,
}

/// An item as the floor sees it: its data, SLA clocks, tasks, thread and history.
async fn floor_item(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    web.require_floor()?;
    let item = items::visible_item(&state, &web.caller, &id).await?;
    let merge = MergeForm::offered(&item, merge_action(&item));
    item_page(&state, web, &item, merge, StatusCode::OK).await
}

fn merge_action(item: &delego_core::model::WorkItem) -> String {
    format!("/items/{}/merge", item.id())
}

/// Merges the item, a duplicate, into the one named and shows that one; a refusal comes
/// back beside the field.
async fn merge(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    Form(form): Form<MergePosted>,
) -> Result<Response, ApiError> {
    web.require_floor()?;
    web.check_csrf(&form.csrf)?;
    let item = items::visible_item(&state, &web.caller, &id).await?;
    match item::merge_into(&state, &web, &item, merge_action(&item), &form.into).await? {
        Ok(merged) => Ok(Redirect::to(&format!("/items/{}", merged.survivor.id())).into_response()),
        Err(refused) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            item_page(&state, web, &item, Some(refused), status).await
        }
    }
}

async fn item_page(
    state: &AppState,
    web: Web,
    item: &delego_core::model::WorkItem,
    merge: Option<MergeForm>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let engagement = state.store.engagement(item.engagement_id).await?;
    let definition = state
        .store
        .service(&item.service_key, item.service_version)
        .await?;
    let tasks = state.store.item_tasks(item.id()).await?;
    let detail = ItemDetail::load(state, &web.ctx, item, &definition).await?;
    let names = worker_names(state, &web).await?;
    let now = state.clock.now();
    let tr = &web.ctx;
    let tasks = tasks
        .iter()
        .map(|task| {
            let live = matches!(task.status, TaskStatus::Open | TaskStatus::Claimed { .. });
            TaskRow {
                step: definition
                    .step(&task.step)
                    .map_or_else(|| task.step.to_string(), |s| s.title.clone()),
                status: tr.t(&format!("dash-task-{}", task.status.name())),
                worker: worker_of(task)
                    .and_then(|worker| names.get(&worker).cloned())
                    .unwrap_or_default(),
                queued: tr.date_time(task.queued_at),
                due: task
                    .due_at
                    .map_or_else(|| "–".to_owned(), |due| tr.date_time(due)),
                urgency: if live { urgency(task.due_at, now) } else { "" },
            }
        })
        .collect();
    let page = ItemPage {
        engagement: engagement.name.to_string(),
        item: detail,
        tasks,
        merge,
        ctx: web.ctx,
    };
    Ok(render(status, &page))
}

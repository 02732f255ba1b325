//! Operational metrics per interval (see `delego_core::metrics` for what each measure
//! means), scoped like everything else: a client user sees its own client only and never
//! a worker's figures; staff cleared for some clients see those clients' work and, per
//! worker, only their own row; managers and admins see everything.

use axum::extract::State;
use delego_core::definition::Rate;
use delego_core::id::{ClientId, EngagementId};
use delego_core::identity::{Role, Scope};
use delego_core::metrics::{self, Breakdown, IntervalMinutes, Row};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{in_scope, parse_id};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};

#[derive(Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// The window's start (RFC 3339); the first interval starts here.
    pub(crate) from: String,
    /// The window's end (RFC 3339), at most 31 days after `from`.
    pub(crate) to: String,
    /// Minutes per interval: 15, 30 or 60 (default 60).
    pub(crate) interval: Option<u32>,
    /// `total` (default), `client`, `engagement`, `worker` or `team` (managers only).
    pub(crate) by: Option<String>,
    /// Only this client's work.
    pub(crate) client_id: Option<String>,
    /// The service level's answer target in seconds (default 20).
    pub(crate) answer_target_seconds: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct MetricsView {
    #[schema(value_type = String, format = DateTime)]
    from: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    to: jiff::Timestamp,
    interval_minutes: u32,
    by: String,
    answer_target_seconds: u32,
    /// One per interval and dimension: counts, sums and ratios (`null` when there was
    /// nothing to divide by).
    #[schema(value_type = Vec<Object>)]
    pub(crate) rows: Vec<Row>,
}

/// Arrivals, handled, abandoned, backlog, AHT, ASA, service level, SLA attainment,
/// occupancy, utilisation, CSAT, and the outcomes and resolutions recorded, per interval,
/// in total or per client, engagement or worker.
#[utoipa::path(get, path = "/metrics", tag = "metrics", params(MetricsQuery),
    responses((status = 200, body = MetricsView), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn metrics(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<axum::extract::Query<MetricsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<MetricsView>> {
    let axum::extract::Query(query) =
        query.map_err(|e| ApiError::field("query", "invalid", e.body_text()))?;
    Ok(axum::Json(metrics_view(&state, &caller, query).await?))
}

/// The metrics the caller may see for a query: the API's and the dashboard's charts'.
pub(crate) async fn metrics_view(
    state: &AppState,
    caller: &Caller,
    query: MetricsQuery,
) -> ApiResult<MetricsView> {
    Ok(metrics_views(state, caller, query, None).await?.0)
}

/// The view `query` asks for and, with `also`, the rows of the same window and intervals
/// broken down another way (the dashboard's per engagement), from one read of the facts.
pub(crate) async fn metrics_views(
    state: &AppState,
    caller: &Caller,
    query: MetricsQuery,
    also: Option<Breakdown>,
) -> ApiResult<(MetricsView, Vec<Row>)> {
    let instant = |field: &str, raw: &str| {
        raw.parse::<jiff::Timestamp>()
            .map_err(|e| ApiError::field(field, "invalid", format!("not an RFC 3339 instant: {e}")))
    };
    let (from, to) = (instant("from", &query.from)?, instant("to", &query.to)?);
    let interval_minutes = query.interval.unwrap_or(60);
    let interval = IntervalMinutes::parse(interval_minutes)
        .map_err(|e| ApiError::field("interval", "invalid", e.0))?;
    let by_name = query.by.unwrap_or_else(|| "total".into());
    let by: Breakdown = by_name
        .parse()
        .map_err(|e: delego_core::values::InvalidValue| ApiError::field("by", "invalid", e.0))?;
    let answer_target_seconds = query.answer_target_seconds.unwrap_or(20);

    let client = match &query.client_id {
        Some(raw) => {
            let id: ClientId = parse_id(raw, "client")?;
            let client = state.store.client(id).await?;
            Some(in_scope(caller, client.id, client.id, "client")?)
        }
        None => match (&caller.scope, caller.role()) {
            // A client user's figures are always its client's alone.
            (Scope::Clients(clients), Role::ClientUser) => clients.first().copied(),
            _ => None,
        },
    };
    // Worker figures are the provider's: a client user has none to see, and staff short of
    // managers see their own row only.
    let own_worker = match (&caller.scope, by) {
        (Scope::AllClients, _)
        | (_, Breakdown::Total | Breakdown::Client | Breakdown::Engagement) => None,
        (Scope::Clients(_), Breakdown::Worker) => match &caller.worker {
            Some(worker) if caller.role() != Role::ClientUser => Some(worker.id),
            _ => return Err(ApiError::NotFound("metrics")),
        },
        // A team's figures are several people's: the managers'.
        (Scope::Clients(_), Breakdown::Team) => return Err(ApiError::NotFound("metrics")),
    };

    let mut facts = state.store.metric_facts(from, to, client).await?;
    if let Scope::Clients(_) = caller.scope {
        facts.items.retain(|i| caller.scope.allows(i.client_id));
        facts.tasks.retain(|t| caller.scope.allows(t.client_id));
        facts.csat.retain(|c| caller.scope.allows(c.client_id));
        facts.results.retain(|r| caller.scope.allows(r.client_id));
        // Presence covers work for every client: only a worker's own, on its own row.
        facts.workers.retain(|w| Some(w.worker_id) == own_worker);
    }
    let settings = metrics::Settings {
        interval,
        by,
        answer_target: jiff::SignedDuration::from_secs(i64::from(answer_target_seconds)),
    };
    let rows_by = async |by: Breakdown| -> ApiResult<Vec<Row>> {
        let mut rows = metrics::compute(&facts, &metrics::Settings { by, ..settings });
        if own_worker.is_some() {
            rows.retain(|row| row.worker_id == own_worker);
        }
        measure_rates(state, &mut rows).await?;
        Ok(rows)
    };
    let rows = rows_by(by).await?;
    let other = match also {
        // Worker rows are only ever the caller's own: no other breakdown goes with them.
        Some(also) if own_worker.is_none() => rows_by(also).await?,
        _ => Vec::new(),
    };
    let view = MetricsView {
        from,
        to,
        interval_minutes,
        by: by_name,
        answer_target_seconds,
        rows,
    };
    Ok((view, other))
}

/// Fills in each engagement row's rates, as the engagement's service defines them.
async fn measure_rates(state: &AppState, rows: &mut [Row]) -> ApiResult<()> {
    let mut rates: std::collections::HashMap<EngagementId, Vec<Rate>> = Default::default();
    for row in rows {
        let Some(engagement) = row.engagement_id else {
            continue;
        };
        if !rates.contains_key(&engagement) {
            let engagement = state.store.engagement(engagement).await?;
            let definition = state
                .store
                .service(&engagement.service_key, engagement.service_version)
                .await?;
            rates.insert(engagement.id, definition.rates.clone());
        }
        row.rates = rates[&engagement]
            .iter()
            .map(|rate| (rate.key.to_string(), rate.measure(&row.outcomes)))
            .collect();
    }
    Ok(())
}

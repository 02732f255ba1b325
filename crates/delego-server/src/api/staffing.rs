//! Workforce planning for an engagement: arrivals forecast from its own history, the
//! agents each interval needs (Erlang C, or Erlang A with a patience), how many to
//! schedule after shrinkage, and the gaps against a roster the manager proposes.

use std::time::Duration;

use axum::extract::{Path, State};
use delego_core::definition::StepKind;
use delego_core::forecast::{self, ForecastConfig};
use delego_core::staffing::{self, Model, Shrinkage, Target};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::{in_scope, invalid, parse_id};
use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::json::ApiJson;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// 15, 30 or 60.
    interval_minutes: u32,
    /// Whole weeks of history to forecast from (2 to 26, default 4).
    history_weeks: Option<u32>,
    /// Intervals to plan from the current one on (1 to one week's worth; default a day).
    horizon_intervals: Option<usize>,
    /// Average handle time; default: the handle times of the service's human steps.
    aht_seconds: Option<f64>,
    /// E.g. 80 (of contacts answered within `target_seconds`).
    target_percent: f64,
    target_seconds: f64,
    /// Share of paid time not available for contacts, as a decimal string, e.g. "0.3".
    shrinkage: String,
    /// 0–1; optional.
    max_occupancy: Option<f64>,
    /// Mean patience before a contact abandons: present means Erlang A.
    patience_seconds: Option<f64>,
    /// Agents rostered per interval, as many as the horizon: the answer shows the gaps.
    rostered: Option<Vec<u32>>,
}

#[derive(Serialize, ToSchema)]
pub struct Plan {
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
    interval_minutes: u32,
    model: &'static str,
    aht_seconds: f64,
    /// The forecast's error on the last week of history (weighted absolute percentage
    /// error), and seasonal naive's on the same week: the figure it has to beat.
    holdout_wape: Option<f64>,
    baseline_wape: Option<f64>,
    rows: Vec<PlanRow>,
}

#[derive(Serialize, ToSchema)]
pub struct PlanRow {
    #[schema(value_type = String, format = DateTime)]
    start: Timestamp,
    /// Expected arrivals.
    arrivals: f64,
    agents: u32,
    scheduled: u64,
    service_level: Option<f64>,
    occupancy: Option<f64>,
    rostered: Option<u32>,
    /// Agents short (positive) or over (negative) of the roster.
    gap: Option<i64>,
}

/// A staffing plan for the engagement (managers): the forecast of its arrivals per
/// interval, the agents each needs and the gaps against a proposed roster.
#[utoipa::path(post, path = "/engagements/{id}/staffing-plan", tag = "engagements",
    params(("id" = String, Path)), request_body = PlanRequest,
    responses((status = 200, body = Plan), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn staffing_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<PlanRequest>,
) -> ApiResult<axum::Json<Plan>> {
    let engagement = state.store.engagement(parse_id(&id, "engagement")?).await?;
    let engagement = in_scope(&caller, engagement.client_id, engagement, "engagement")?;
    caller.require_manager()?;
    if ![15, 30, 60].contains(&request.interval_minutes) {
        return Err(invalid("interval_minutes", "use 15, 30 or 60"));
    }
    let interval = SignedDuration::from_mins(i64::from(request.interval_minutes));
    let history_weeks = request.history_weeks.unwrap_or(4);
    if !(2..=26).contains(&history_weeks) {
        return Err(invalid("history_weeks", "use 2 to 26 weeks"));
    }
    let week = (7 * 24 * 60 / request.interval_minutes) as usize;
    let horizon = request.horizon_intervals.unwrap_or(week / 7);
    if !(1..=week).contains(&horizon) {
        return Err(invalid("horizon_intervals", format!("use 1 to {week}")));
    }
    let target = Target::new(
        request.target_percent / 100.0,
        seconds("target_seconds", request.target_seconds)?,
    )
    .map_err(|e| invalid("target_percent", e))?;
    let target = match request.max_occupancy {
        Some(max) => target
            .with_max_occupancy(max)
            .map_err(|e| invalid("max_occupancy", e))?,
        None => target,
    };
    let shrinkage: Shrinkage = request
        .shrinkage
        .parse()
        .map_err(|e| invalid("shrinkage", e))?;
    let model = match request.patience_seconds {
        Some(patience) => Model::ErlangA {
            patience: seconds("patience_seconds", patience)?,
        },
        None => Model::ErlangC,
    };
    let aht = match request.aht_seconds {
        Some(aht) => seconds("aht_seconds", aht)?,
        None => {
            let service = state
                .store
                .service(&engagement.service_key, engagement.service_version)
                .await?;
            let planned: SignedDuration = service
                .steps
                .iter()
                .filter_map(|step| match &step.kind {
                    StepKind::Human { work, .. } => Some(work.handle_time),
                    _ => None,
                })
                .sum();
            Duration::try_from(planned)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    invalid("aht_seconds", "the service plans no handle time: give one")
                })?
        }
    };

    // The plan starts with the current interval; history is the whole weeks before it.
    let now = state.clock.now();
    let step = interval.as_secs();
    let from = Timestamp::from_second(now.as_second().div_euclid(step) * step)
        .map_err(|e| invalid("interval_minutes", e))?;
    let history_len = week * history_weeks as usize;
    let history_from = from - SignedDuration::from_secs(step * history_len as i64);
    let history = state
        .store
        .arrivals(engagement.id, history_from, interval, history_len)
        .await?;
    let config =
        ForecastConfig::weekly(interval, horizon).map_err(|e| invalid("interval_minutes", e))?;
    let forecast = forecast::forecast(&history, config).map_err(|e| invalid("history_weeks", e))?;
    let length = Duration::from_secs(step as u64);
    let rows = staffing::plan(&forecast.values, length, aht, model, &target, shrinkage)
        .map_err(|e| invalid("target_percent", e))?;
    let gaps = match &request.rostered {
        Some(rostered) => {
            let agents: Vec<u32> = rows.iter().map(|row| row.agents).collect();
            Some(staffing::plan_gaps(&agents, rostered).map_err(|e| invalid("rostered", e))?)
        }
        None => None,
    };
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(n, row)| PlanRow {
            start: from + SignedDuration::from_secs(step * n as i64),
            arrivals: (row.arrivals * 1000.0).round() / 1000.0,
            agents: row.agents,
            scheduled: row.scheduled,
            service_level: row.performance.map(|p| p.service_level),
            occupancy: row.performance.map(|p| p.occupancy),
            rostered: request.rostered.as_ref().map(|r| r[n]),
            gap: gaps.as_ref().map(|g| g[n]),
        })
        .collect();
    Ok(axum::Json(Plan {
        from,
        interval_minutes: request.interval_minutes,
        model: model.name(),
        aht_seconds: aht.as_secs_f64(),
        holdout_wape: forecast.holdout_wape,
        baseline_wape: forecast.baseline_wape,
        rows,
    }))
}

fn seconds(field: &str, value: f64) -> ApiResult<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
        return Err(invalid(
            field,
            "use a number of seconds above 0, at most a day",
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

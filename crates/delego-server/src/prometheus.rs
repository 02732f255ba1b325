//! `GET /metrics`: the floor at a glance in the Prometheus text format, for the provider's
//! operators. It sits outside `/api/v1` and its OpenAPI document, behind its own bearer
//! token; without a configured token, or with any other credential, it answers the same
//! 404 as an unknown path, so its existence is not revealed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::auth::same_secret;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Tasks due within this long count as at risk, as on `GET /api/v1/queues` by default.
const RISK_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_mins(60);

/// A queue gauge's value, if the queue has one.
type Gauge = fn(&delego_store::QueueStats, jiff::Timestamp) -> Option<f64>;

pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let expected = state.config.metrics_token.as_deref();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match (expected, given) {
        (Some(expected), Some(given)) if same_secret(expected, given) => {}
        _ => return Err(ApiError::NotFound("route")),
    }
    let mut out = String::new();
    let now = state.clock.now();
    let engagements: BTreeMap<_, _> = state
        .store
        .engagements(None)
        .await?
        .into_iter()
        .map(|e| (e.id, e.client_id))
        .collect();
    let queues = state.store.queues(RISK_WINDOW).await?;
    let gauges: [(&str, &str, Gauge); 5] = [
        (
            "delego_queue_open_tasks",
            "Tasks waiting for a worker.",
            |q, _| Some(q.open as f64),
        ),
        (
            "delego_queue_held_tasks",
            "Tasks held by workers.",
            |q, _| Some(q.held as f64),
        ),
        (
            "delego_queue_breached_tasks",
            "Open or held tasks past their deadline.",
            |q, _| Some(q.breached as f64),
        ),
        (
            "delego_queue_at_risk_tasks",
            "Open or held tasks due within the next hour.",
            |q, _| Some(q.at_risk as f64),
        ),
        (
            "delego_queue_oldest_wait_seconds",
            "How long the longest-waiting open task has waited.",
            |q, now| {
                q.oldest_queued_at
                    .map(|at| now.duration_since(at).as_secs_f64().max(0.0))
            },
        ),
    ];
    for (name, help, value) in gauges {
        header_lines(&mut out, name, help);
        for queue in &queues {
            let Some(value) = value(queue, now) else {
                continue;
            };
            let client = engagements
                .get(&queue.engagement_id)
                .map(ToString::to_string)
                .unwrap_or_default();
            let labels = [
                ("client_id", client.as_str()),
                ("engagement_id", &queue.engagement_id.to_string()),
                ("step", queue.step.as_str()),
            ];
            sample(&mut out, name, &labels, value);
        }
    }

    let mut presence: BTreeMap<&str, u64> = ["available", "busy", "wrap_up", "break", "offline"]
        .into_iter()
        .map(|p| (p, 0))
        .collect();
    let workers = state.store.workers().await?;
    for worker in &workers {
        *presence.entry(presence_name(&worker.presence)).or_default() += 1;
    }
    header_lines(&mut out, "delego_workers", "Workers per presence state.");
    for (state, count) in presence {
        sample(
            &mut out,
            "delego_workers",
            &[("presence", state)],
            count as f64,
        );
    }
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

fn presence_name(presence: &delego_core::model::Presence) -> &'static str {
    use delego_core::model::Presence;
    match presence {
        Presence::Available => "available",
        Presence::Busy => "busy",
        Presence::WrapUp { .. } => "wrap_up",
        Presence::Break { .. } => "break",
        Presence::Offline => "offline",
    }
}

fn header_lines(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    let labels: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
        .collect();
    let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
}

/// Label values escape backslash, double quote and line feed (the exposition format).
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("step", "a\"b\\c\nd")], 2.0);
        assert_eq!(out, "m{step=\"a\\\"b\\\\c\\nd\"} 2\n");
    }

    #[test]
    fn only_the_same_secret_matches() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cret", "s3cre"));
        assert!(!same_secret("s3cret", ""));
    }
}

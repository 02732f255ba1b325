//! The floor's pages: the dashboard (queues, workers, the day's charts), a queue's tasks
//! and an item, for team leads and managers only, within their scope, with charts that
//! show exactly what the metrics API shows the same user.

use delego_core::identity::Role;
use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};
use thirtyfour::prelude::*;

use crate::browser::{assert_inputs_are_labelled, in_browser, screenshots, sign_in, start_driver};
use crate::harness::{Session, TestServer};
use crate::metrics::item;

crate::on_both_backends!(
    the_floor_sees_queues_workers_charts_and_items,
    floor_pages_are_not_found_outside_the_floor_and_its_scope,
    a_managers_dashboard_charts_equal_the_metrics_api_in_a_browser,
);

/// A morning's work on one engagement, on the harness' fixed clock (08:00 UTC): three
/// items arrive; the oldest is claimed after 30 s and resolved 5 minutes later; the next
/// is held, with an internal note.
struct Floor {
    engagement: String,
    resolved: String,
    held: String,
    waiting: String,
}

async fn floor(server: &TestServer) -> Floor {
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let worker = server.worker(&[client]).await;
    let agent = server.sign_in(Role::Agent, None, Some(worker)).await;
    let resolved = item(&agent, &engagement, "Where is my parcel?").await;
    let held = item(&agent, &engagement, "Refund please").await;
    let waiting = item(&agent, &engagement, "Password reset").await;
    server.db.advance(SignedDuration::from_secs(30));
    let (_, claimed) = agent.post("/api/v1/tasks/next", json!({})).await;
    assert_eq!(
        claimed["item"]["id"],
        Json::from(resolved.as_str()),
        "{claimed}"
    );
    let task = claimed["task"]["id"].as_str().unwrap();
    server.db.advance(SignedDuration::from_mins(5));
    let (status, body) = agent
        .post(
            &format!("/api/v1/tasks/{task}/submit"),
            json!({"outcome": "resolved", "data": {"reply": "It is on its way."}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, claimed) = agent.post("/api/v1/tasks/next", json!({})).await;
    assert_eq!(
        claimed["item"]["id"],
        Json::from(held.as_str()),
        "{claimed}"
    );
    let (status, body) = agent
        .post(
            &format!("/api/v1/items/{held}/messages"),
            json!({"visibility": "internal", "body": "Checked the order: paid twice."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Floor {
        engagement,
        resolved,
        held,
        waiting,
    }
}

/// The metrics API's rows for the harness' day in UTC, per `interval` minutes.
async fn day_metrics(session: &Session, interval: u32) -> Vec<Json> {
    let (status, body) = session
        .get(&format!(
            "/api/v1/metrics?from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z&interval={interval}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["rows"].as_array().unwrap().clone()
}

/// How a chart's mark spells a value of the API: the same number, shortest form.
fn mark(series: &str, row: &Json, value: &Json) -> String {
    format!(
        "data-series=\"{series}\" data-interval=\"{}\" data-value=\"{}\"",
        row["start"].as_str().unwrap(),
        value.as_f64().unwrap()
    )
}

async fn the_floor_sees_queues_workers_charts_and_items(server: TestServer) {
    let floor = floor(&server).await;
    let manager = server.sign_in(Role::Manager, None, None).await;

    let (status, html) = manager.page("/dashboard").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let drill_down = format!("href=\"/queues/{}/answer\"", floor.engagement);
    for expected in [
        "id=\"queues\"",
        drill_down.as_str(),
        "id=\"presence-summary\"",
        "id=\"workers\"",
        "Jana Nováková",
        "id=\"chart-volume\"",
        "id=\"chart-service-level\"",
        "id=\"chart-handle-time\"",
        "class=\"target\" data-value=\"0.8\"",
        "<label for=\"date\">",
        "<label for=\"interval\">",
        "value=\"2026-03-02\"",
    ] {
        assert!(html.contains(expected), "{expected} is missing from {html}");
    }
    // The worker holds one task.
    let row = &html[html.find("Jana Nováková").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("<td class=\"number\">1</td>"), "{row}");

    // Every mark of the day is the metrics API's value for its interval.
    let rows = day_metrics(&manager, 60).await;
    assert_eq!(rows.len(), 24);
    for row in &rows {
        for series in ["arrivals", "handled"] {
            assert!(
                html.contains(&mark(series, row, &row[series])),
                "{series} {row}"
            );
        }
        // A ratio without anything to divide by is no mark at all.
        for (series, field) in [("aht", "aht_seconds"), ("service_level", "service_level")] {
            if row[field].is_null() {
                let start = row["start"].as_str().unwrap();
                let at = format!("data-series=\"{series}\" data-interval=\"{start}\"");
                assert!(!html.contains(&at), "{series} {row}");
            } else {
                assert!(
                    html.contains(&mark(series, row, &row[field])),
                    "{series} {row}"
                );
            }
        }
    }
    let eight = &rows[8];
    assert_eq!(
        (eight["arrivals"].as_u64(), eight["handled"].as_u64()),
        (Some(3), Some(1))
    );
    assert!(html.contains(&mark("aht", eight, &json!(300.0))));

    // Another day and half hours, from the form's query.
    let (status, html) = manager.page("/dashboard?date=2026-03-02&interval=30").await;
    assert_eq!(status, StatusCode::OK);
    let rows = day_metrics(&manager, 30).await;
    assert_eq!(rows.len(), 48);
    assert!(
        html.contains(&mark("arrivals", &rows[16], &json!(3))),
        "{html}"
    );
    assert!(html.contains("<option value=\"30\" selected>"));
    let (status, _) = manager.page("/dashboard?date=2026-03-01").await;
    assert_eq!(status, StatusCode::OK);
    for bad in ["date=yesterday", "interval=20", "colour=red"] {
        let (status, html) = manager.page(&format!("/dashboard?{bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {html}");
        assert!(html.contains("id=\"error-title\""));
    }

    // The queues page links each queue to its tasks.
    let (_, html) = manager.page("/queues").await;
    assert!(html.contains(&drill_down), "{html}");
    let (status, html) = manager
        .page(&format!("/queues/{}/answer", floor.engagement))
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"queue-tasks\""));
    for item in [&floor.held, &floor.waiting] {
        assert!(html.contains(&format!("href=\"/items/{item}\"")), "{html}");
    }
    assert!(
        !html.contains(&floor.resolved),
        "a finished item is in no queue"
    );
    assert!(html.contains("Refund please") && html.contains("Password reset"));
    assert!(html.contains("data-held=\"true\""));
    assert!(html.contains("in hand: Jana Nováková"), "{html}");

    // An item as the floor reads it: data, SLA clocks, tasks, thread, history.
    let (status, html) = manager.page(&format!("/items/{}", floor.held)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for expected in [
        "id=\"item-title\"",
        "Refund please",
        "id=\"item-tasks\"",
        "id=\"sla\"",
        "id=\"item-data\"",
        "Checked the order: paid twice.",
        "id=\"history\"",
        // Times in the user's zone (UTC here): claimed at 08:05:30.
        "2 Mar 2026, 08:05",
    ] {
        assert!(html.contains(expected), "{expected} is missing from {html}");
    }
    let (status, html) = manager.page(&format!("/items/{}", floor.resolved)).await;
    assert_eq!(status, StatusCode::OK, "{html}");

    // In Slovak, with Slovak numbers and times.
    let slovak = manager
        .request(Method::GET, "/dashboard")
        .header("accept-language", "sk");
    let (_, html, _) = manager.browse(slovak).await;
    for expected in [
        "<html lang=\"sk\">",
        "Prijaté",
        "Úroveň služby",
        ">8:00<",
        "80,0\u{a0}%",
    ] {
        assert!(html.contains(expected), "{expected} is missing from {html}");
    }
}

async fn floor_pages_are_not_found_outside_the_floor_and_its_scope(server: TestServer) {
    let home = server.client("Home").await;
    let home_engagement = server.engagement(home).await;
    let away = server.client("Away").await;
    let away_engagement = server.engagement(away).await;
    let both = server.worker(&[home, away]).await;
    let agent = server.sign_in(Role::Agent, None, Some(both)).await;
    let home_item = item(&agent, &home_engagement, "ours").await;
    let away_item = item(&agent, &away_engagement, "theirs").await;

    let lead_worker = server.worker(&[home]).await;
    let lead = server
        .sign_in(Role::TeamLead, None, Some(lead_worker))
        .await;
    let (status, not_found) = lead.page(&format!("/items/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Another client's item or queue looks exactly like one that does not exist.
    for path in [
        format!("/items/{away_item}"),
        "/items/not-an-id".to_owned(),
        format!("/queues/{away_engagement}/answer"),
        format!("/queues/{}/answer", uuid::Uuid::now_v7()),
        format!("/queues/{home_engagement}/no_such_step"),
        "/no-such-page".to_owned(),
    ] {
        let (status, html) = lead.page(&path).await;
        assert_eq!(
            (status, &html),
            (StatusCode::NOT_FOUND, &not_found),
            "{path}"
        );
    }
    let (status, html) = lead.page(&format!("/items/{home_item}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("ours"));
    let (status, html) = lead
        .page(&format!("/queues/{home_engagement}/answer"))
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(&home_item));
    // A team lead's dashboard: their clients' queues; the workers are the managers'.
    let (status, html) = lead.page("/dashboard").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(&home_engagement));
    assert!(!html.contains(&away_engagement));
    assert!(html.contains("id=\"workers-managers-only\""));
    assert!(!html.contains("id=\"workers\""));

    // Agents and client users have no floor pages at all.
    let client_user = server.sign_in(Role::ClientUser, Some(home), None).await;
    for session in [&agent, &client_user] {
        for path in [
            "/dashboard".to_owned(),
            "/queues".to_owned(),
            format!("/queues/{home_engagement}/answer"),
            format!("/items/{home_item}"),
        ] {
            let (status, html) = session.page(&path).await;
            assert_eq!(
                (status, &html),
                (StatusCode::NOT_FOUND, &not_found),
                "{path}"
            );
        }
    }
}

/// The values and intervals of a chart's marks of one series, as the browser has them.
async fn chart_marks(page: &WebDriver, series: &str) -> WebDriverResult<Vec<(String, f64)>> {
    let script = "return [...document.querySelectorAll(`[data-series='${arguments[0]}'][data-value]`)]\
                  .map(e => [e.dataset.interval, e.dataset.value]);";
    let marks: Vec<(String, String)> =
        page.execute(script, vec![json!(series)]).await?.convert()?;
    Ok(marks
        .into_iter()
        .map(|(interval, value)| (interval, value.parse().unwrap()))
        .collect())
}

async fn a_managers_dashboard_charts_equal_the_metrics_api_in_a_browser(server: TestServer) {
    let Some(driver) = start_driver().await else {
        return;
    };
    let floor = floor(&server).await;
    let user = server.user(Role::Manager, None, None).await;
    // The manager's own API session, for the numbers the charts must show.
    let api = server.sign_in_as(&user).await;
    let mut expected = Vec::new();
    for row in day_metrics(&api, 60).await {
        let start = row["start"].as_str().unwrap().to_owned();
        let values = ["arrivals", "handled"].map(|field| row[field].as_f64().unwrap());
        expected.push((start, values));
    }
    assert!(expected.iter().any(|(start, [arrivals, handled])| {
        start == "2026-03-02T08:00:00Z" && *arrivals == 3.0 && *handled == 1.0
    }));

    let (base, email) = (server.base.as_str(), user.email.as_str());
    let expected = &expected;
    let floor = &floor;
    in_browser(&driver, "en-US,en", |page| async move {
        sign_in(&page, base, email).await?;
        // A manager starts on the dashboard.
        page.query(By::Id("chart-volume")).first().await?;
        assert_inputs_are_labelled(&page).await?;
        for (index, series) in ["arrivals", "handled"].into_iter().enumerate() {
            let marks = chart_marks(&page, series).await?;
            let api: Vec<(String, f64)> = expected
                .iter()
                .map(|(start, values)| (start.clone(), values[index]))
                .collect();
            assert_eq!(marks, api, "{series}");
        }
        page.screenshot(&screenshots().join("dashboard-manager.png"))
            .await?;
        let charts = page.find(By::ClassName("charts")).await?;
        charts.scroll_into_view().await?;
        charts
            .screenshot(&screenshots().join("dashboard-charts.png"))
            .await?;

        // Half-hour intervals, chosen in the form.
        let interval = page.find(By::Id("interval")).await?;
        thirtyfour::components::SelectElement::new(&interval)
            .await?
            .select_by_value("30")
            .await?;
        page.find(By::Id("chart-show")).await?.click().await?;
        page.query(By::Css("option[value='30'][selected]"))
            .first()
            .await?;
        assert_eq!(chart_marks(&page, "arrivals").await?.len(), 48);
        page.screenshot(&screenshots().join("dashboard-half-hours.png"))
            .await?;

        // From the queue to its tasks to an item.
        let queue = format!("a[href='/queues/{}/answer']", floor.engagement);
        page.find(By::Css(queue)).await?.click().await?;
        let link = format!("a[href='/items/{}']", floor.held);
        page.query(By::Css(link)).first().await?.click().await?;
        let title = page.query(By::Id("item-title")).first().await?;
        assert_eq!(title.text().await?, "Refund please");
        page.screenshot(&screenshots().join("item-floor.png"))
            .await?;
        Ok(())
    })
    .await;
}

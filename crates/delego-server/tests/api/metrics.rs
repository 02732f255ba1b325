//! Metrics through the API, scoped like everything else, and the Prometheus scrape behind
//! its own token.

use delego_core::identity::Role;
use delego_server::Config;
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::harness::{Session, TestServer};

crate::on_both_backends!(
    metrics_count_the_floors_work_per_interval_within_the_callers_scope,
    bad_metrics_queries_are_problems_and_worker_figures_are_staffs_own,
    the_prometheus_scrape_answers_only_its_own_token,
);

/// An item for `engagement` made by `session`; its id.
pub async fn item(session: &Session, engagement: &str, subject: &str) -> String {
    let (status, item) = session
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            json!({"data": {"subject": subject, "description": "d", "requester_email": "r@x.example"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    item["id"].as_str().unwrap().to_owned()
}

fn window(from: Timestamp, minutes: i64) -> String {
    let to = from + SignedDuration::from_mins(minutes);
    format!("from={from}&to={to}")
}

async fn metrics_count_the_floors_work_per_interval_within_the_callers_scope(server: TestServer) {
    let from = server.db.clock_now();
    let home = server.client("Home").await;
    let home_engagement = server.engagement(home).await;
    let away = server.client("Away").await;
    let away_engagement = server.engagement(away).await;
    let worker = server.worker(&[home, away]).await;
    let agent = server.sign_in(Role::Agent, None, Some(worker)).await;
    item(&agent, &home_engagement, "first").await;
    item(&agent, &home_engagement, "second").await;
    item(&agent, &away_engagement, "theirs").await;
    // The oldest task waits 30 s, is held for 5 minutes and handled.
    server.db.advance(SignedDuration::from_secs(30));
    let (_, claimed) = agent.post("/api/v1/tasks/next", json!({})).await;
    let task = claimed["task"]["id"].as_str().unwrap();
    server.db.advance(SignedDuration::from_mins(5));
    let (status, body) = agent
        .post(
            &format!("/api/v1/tasks/{task}/submit"),
            json!({"outcome": "resolved", "data": {"reply": "done"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let admin = server.sign_in(Role::Admin, None, None).await;
    let (status, body) = admin
        .get(&format!(
            "/api/v1/metrics?{}&interval=30&answer_target_seconds=60",
            window(from, 60)
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{body}");
    let first = &rows[0];
    assert_eq!(first["arrivals"], 3, "{first}");
    assert_eq!(first["handled"], 1);
    assert_eq!(first["aht_seconds"], 300.0);
    assert_eq!(first["asa_seconds"], 30.0);
    assert_eq!(first["service_level"], 1.0);
    // Held from the claim to the submit, available all along.
    assert_eq!(first["busy_seconds"], 300.0);
    assert!(first["occupancy"].as_f64().unwrap() > 0.0);
    assert!(rows[1]["backlog"].as_u64().unwrap() >= 2, "{body}");

    // A client user sees its own client's engagement and nothing of the other's.
    let client_user = server.sign_in(Role::ClientUser, Some(home), None).await;
    let (status, body) = client_user
        .get(&format!(
            "/api/v1/metrics?{}&by=engagement",
            window(from, 60)
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!(rows[0]["engagement_id"], Json::from(home_engagement));
    assert_eq!(rows[0]["arrivals"], 2);
    assert!(!body.to_string().contains(&away.to_string()));
    assert!(!body.to_string().contains(&worker.to_string()));
    assert!(rows[0]["occupancy"].is_null());

    // Staff cleared for the other client only: none of this one's work, outcomes included.
    let away_worker = server.worker(&[away]).await;
    let away_agent = server.sign_in(Role::Agent, None, Some(away_worker)).await;
    let (status, body) = away_agent
        .get(&format!("/api/v1/metrics?{}", window(from, 60)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = &body["rows"][0];
    assert_eq!(
        (first["arrivals"].as_u64(), first["handled"].as_u64()),
        (Some(1), Some(0)),
        "{first}"
    );
    assert_eq!(first["outcomes"], json!({}), "{first}");
}

async fn bad_metrics_queries_are_problems_and_worker_figures_are_staffs_own(server: TestServer) {
    let from = server.db.clock_now();
    let home = server.client("Home").await;
    let away = server.client("Away").await;
    let admin = server.sign_in(Role::Admin, None, None).await;
    let day = window(from, 24 * 60);
    for (query, field) in [
        (format!("{day}&interval=20"), "interval"),
        (format!("{day}&by=department"), "by"),
        (format!("from=yesterday&to={from}"), "from"),
        (window(from, -60), "to"),
        (window(from, 40 * 24 * 60), "to"),
        (format!("{day}&colour=red"), "query"),
        ("by=total".into(), "query"),
    ] {
        let (status, body) = admin.get(&format!("/api/v1/metrics?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["type"], "urn:delego:problem:validation");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }

    let client_user = server.sign_in(Role::ClientUser, Some(home), None).await;
    for query in [
        format!("{day}&by=worker"),
        format!("{day}&client_id={away}"),
        format!("{day}&client_id={}", uuid::Uuid::now_v7()),
    ] {
        let (status, body) = client_user.get(&format!("/api/v1/metrics?{query}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{query}: {body}");
    }

    let me = server.worker(&[home]).await;
    let colleague = server.worker(&[home]).await;
    let agent = server.sign_in(Role::Agent, None, Some(me)).await;
    // Both are available for ten minutes.
    server.db.advance(SignedDuration::from_mins(10));
    let (status, body) = agent.get(&format!("/api/v1/metrics?{day}&by=worker")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["worker_id"] == me.to_string()));
    assert!(!body.to_string().contains(&colleague.to_string()));
    let (_, body) = admin.get(&format!("/api/v1/metrics?{day}&by=worker")).await;
    assert!(body.to_string().contains(&colleague.to_string()), "{body}");
    // Team figures are several people's: a manager's to see.
    let (status, _) = agent.get(&format!("/api/v1/metrics?{day}&by=team")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = admin.get(&format!("/api/v1/metrics?{day}&by=team")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn the_prometheus_scrape_answers_only_its_own_token(server: TestServer) {
    let config = Config {
        metrics_token: Some("scrape-secret".into()),
        ..Config::default()
    };
    let node = server.another_node(server.store().clone(), config).await;
    let client = node.client("Acme").await;
    let engagement = node.engagement(client).await;
    let worker = node.worker(&[client]).await;
    let agent = node.sign_in(Role::Agent, None, Some(worker)).await;
    item(&agent, &engagement, "waiting").await;

    let scraper = node.anonymous().with_token("scrape-secret");
    let response = scraper
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE delego_queue_open_tasks gauge"),
        "{text}"
    );
    let open =
        format!("delego_queue_open_tasks{{client_id=\"{client}\",engagement_id=\"{engagement}\",");
    let line = text
        .lines()
        .find(|l| l.starts_with(&open))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.ends_with(" 1"), "{line}");
    assert!(
        text.contains("delego_workers{presence=\"available\"} 1\n"),
        "{text}"
    );

    let (_, unknown) = node.anonymous().get("/no-such-path").await;
    let admin = node.sign_in(Role::Admin, None, None).await;
    let (_, token) = admin.post("/api/v1/tokens", json!({"name": "ops"})).await;
    let admin_token = token["secret"].as_str().unwrap();
    let mut callers = vec![
        node.anonymous(),
        node.anonymous().with_token("wrong-secret"),
        node.anonymous().with_token("scrape-secre"),
        node.anonymous().with_token(admin_token),
        admin,
    ];
    // Without a configured token the endpoint does not exist, whatever is sent.
    callers.push(server.anonymous().with_token("scrape-secret"));
    for caller in &callers {
        let (status, body) = caller.get("/metrics").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body, unknown);
    }
}

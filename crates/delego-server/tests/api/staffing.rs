//! A manager plans staff from an engagement's own history: the forecast, the agents each
//! interval needs, and the gaps against a proposed roster.

use delego_core::identity::Role;
use delego_core::model::Actor;
use delego_core::values::Priority;
use delego_store::NewItem;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestServer;

crate::on_both_backends!(a_plan_forecasts_the_busy_intervals_staffs_them_and_shows_the_roster_gaps);

/// Midnight of Monday 2026-03-02, the harness's first day (its clock starts at 08:00).
const MONDAY: i64 = 1_772_409_600;

/// Weekdays bring 20 items at 10:00 and 20 at 10:30, nothing else.
async fn three_weeks_of_mornings(server: &TestServer, engagement: &str) {
    let engagement = engagement.parse().unwrap();
    let clock = server.db.clock();
    for day in 0..21 {
        let weekday = day % 7 < 5;
        for half_hour in [0, 30] {
            let at =
                jiff::Timestamp::from_second(MONDAY + day * 86_400 + 10 * 3600 + half_hour * 60)
                    .unwrap();
            if !weekday {
                continue;
            }
            clock.set(at);
            for n in 0..20 {
                let data = json!({
                    "subject": format!("Order {day}-{half_hour}-{n}"),
                    "description": "Where is it?",
                    "requester_email": "ann@example.com",
                });
                server
                    .store()
                    .create_item(
                        NewItem {
                            engagement_id: engagement,
                            data: data.as_object().cloned().unwrap(),
                            priority: Priority::Normal,
                            requester_id: None,
                            idempotency_key: None,
                        },
                        &Actor::System,
                    )
                    .await
                    .unwrap();
            }
        }
    }
    // Monday of the fourth week, 00:00: the plan covers that day.
    clock.set(jiff::Timestamp::from_second(MONDAY + 21 * 86_400).unwrap());
}

async fn a_plan_forecasts_the_busy_intervals_staffs_them_and_shows_the_roster_gaps(
    server: TestServer,
) {
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    three_weeks_of_mornings(&server, &engagement).await;
    let manager = server.sign_in(Role::Manager, None, None).await;
    let path = format!("/api/v1/engagements/{engagement}/staffing-plan");
    let mut rostered = vec![0u32; 48];
    rostered[20] = 2;
    rostered[21] = 9;
    let (status, plan) = manager
        .post(
            &path,
            json!({
                "interval_minutes": 30, "history_weeks": 3, "horizon_intervals": 48,
                "aht_seconds": 180, "target_percent": 80, "target_seconds": 20,
                "shrinkage": "0.3", "rostered": rostered,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["from"], "2026-03-23T00:00:00Z");
    assert_eq!(plan["model"], "erlang-c");
    let rows = plan["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 48);
    // 20 contacts of 180 s in 30 minutes: 2 Erlangs, which 80/20 staffs with 4 agents.
    for busy in [20, 21] {
        let arrivals = rows[busy]["arrivals"].as_f64().unwrap();
        assert!((arrivals - 20.0).abs() < 0.5, "{}", rows[busy]);
        assert_eq!(rows[busy]["agents"], 4, "{}", rows[busy]);
        assert_eq!(rows[busy]["scheduled"], 6, "4 agents at 30 % shrinkage");
    }
    assert_eq!(rows[20]["gap"], 2, "two short");
    assert_eq!(rows[21]["gap"], -5, "five over");
    assert!(
        rows.iter()
            .enumerate()
            .all(|(n, row)| [20, 21].contains(&n) || row["agents"] == 0)
    );
    assert!(plan["holdout_wape"].as_f64().unwrap() < 0.05, "{plan}");

    // Errors name the field; the plan is for managers.
    let (status, problem) = manager
        .post(&path, json!({"interval_minutes": 20, "target_percent": 80, "target_seconds": 20, "shrinkage": "0.3"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem.to_string().contains("interval_minutes"),
        "{problem}"
    );
    let (status, problem) = manager
        .post(
            &path,
            json!({"interval_minutes": 30, "target_percent": 80, "target_seconds": 20,
                            "shrinkage": "0.3", "rostered": [1, 2]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problem.to_string().contains("rostered"), "{problem}");
    let worker = server.worker(&[client]).await;
    let agent = server.sign_in(Role::Agent, None, Some(worker)).await;
    let (status, _) = agent
        .post(&path, json!({"interval_minutes": 30, "target_percent": 80, "target_seconds": 20, "shrinkage": "0.3"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

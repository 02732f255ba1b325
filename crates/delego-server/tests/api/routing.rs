//! Workers waiting for work are woken by notifications, on one node and across nodes; a
//! lapsed lease brings a task back.

use std::time::{Duration, Instant};

use delego_core::identity::Role;
use delego_server::Config;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestServer;

/// Fallback polling an hour apart: only a notification can answer a waiting worker in
/// time, so these tests prove the notification path.
fn notify_only() -> Config {
    Config {
        wake_poll_interval: Duration::from_secs(3600),
        ..Config::default()
    }
}

fn ticket() -> serde_json::Value {
    json!({"data": {"subject": "Help", "description": "d", "requester_email": "r@example.com"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_worker_gets_a_new_task_without_polling_on_sqlite() {
    a_waiting_worker_gets_a_new_task_without_polling(
        delego_store::testing::Harness::sqlite().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_worker_gets_a_new_task_without_polling_on_postgres() {
    let Some(db) = delego_store::testing::Harness::postgres().await else {
        return;
    };
    a_waiting_worker_gets_a_new_task_without_polling(db).await;
}

async fn a_waiting_worker_gets_a_new_task_without_polling(db: delego_store::testing::Harness) {
    let server = TestServer::start_with(db, notify_only()).await;
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let profile = server.worker(&[client]).await;
    let agent = server.sign_in(Role::Agent, None, Some(profile)).await;
    let submitter = server.sign_in(Role::ClientUser, Some(client), None).await;

    let (status, _) = agent.post("/api/v1/tasks/next?wait=0", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "nothing yet");
    let waiting = tokio::spawn(async move {
        let (status, claimed) = agent.post("/api/v1/tasks/next?wait=20", json!({})).await;
        (status, claimed, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, created) = submitter
        .post(&format!("/api/v1/engagements/{engagement}/items"), ticket())
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let created_at = Instant::now();
    let (status, claimed, answered_at) = waiting.await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "woken by the notification, not the hourly poll"
    );
    assert_eq!(claimed["item"]["id"], created["id"]);
    let delay = answered_at.saturating_duration_since(created_at);
    assert!(
        delay < Duration::from_secs(5),
        "answered {delay:?} after the task opened"
    );
}

/// Two nodes on one PostgreSQL database: a worker waiting on one hears of a task created
/// through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_waiting_on_one_node_gets_a_task_created_on_another() {
    let Some(db) = delego_store::testing::Harness::postgres().await else {
        return;
    };
    let second_store = db.another_node().await.unwrap();
    let first = TestServer::start_with(db, notify_only()).await;
    let second = first.another_node(second_store, notify_only()).await;
    let client = first.client("Acme").await;
    let engagement = first.engagement(client).await;
    let profile = first.worker(&[client]).await;
    let agent = first.sign_in(Role::Agent, None, Some(profile)).await;
    let submitter = second.sign_in(Role::ClientUser, Some(client), None).await;
    // Let the second node's notification listener connect.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let waiting =
        tokio::spawn(async move { agent.post("/api/v1/tasks/next?wait=20", json!({})).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (status, created) = submitter
        .post(&format!("/api/v1/engagements/{engagement}/items"), ticket())
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, claimed) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "LISTEN/NOTIFY woke the other node");
    assert_eq!(claimed["item"]["id"], created["id"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

crate::on_both_backends!(
    a_task_whose_lease_lapses_goes_back_to_the_queue_and_a_renewed_one_stays,
    a_pushed_task_is_offered_to_a_waiting_worker_who_accepts_it,
);

async fn a_task_whose_lease_lapses_goes_back_to_the_queue_and_a_renewed_one_stays(
    server: TestServer,
) {
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let careless_profile = server.worker(&[client]).await;
    let careless = server
        .sign_in(Role::Agent, None, Some(careless_profile))
        .await;
    let diligent_profile = server.worker(&[client]).await;
    let diligent = server
        .sign_in(Role::Agent, None, Some(diligent_profile))
        .await;
    careless
        .post(&format!("/api/v1/engagements/{engagement}/items"), ticket())
        .await;
    diligent
        .post(&format!("/api/v1/engagements/{engagement}/items"), ticket())
        .await;
    let (_, lost) = careless.post("/api/v1/tasks/next", json!({})).await;
    let (_, kept) = diligent.post("/api/v1/tasks/next", json!({})).await;
    let kept_id = kept["task"]["id"].as_str().unwrap();

    server.db.advance(jiff::SignedDuration::from_mins(4));
    let (status, renewed) = diligent
        .post(&format!("/api/v1/tasks/{kept_id}/lease"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    server.db.advance(jiff::SignedDuration::from_mins(2));
    assert_eq!(server.store().expire_leases().await.unwrap(), 1);
    let (_, again) = diligent.post("/api/v1/tasks/next", json!({})).await;
    assert_eq!(
        again["task"]["id"], lost["task"]["id"],
        "the lapsed task is back, first in line"
    );
    let (status, _) = careless
        .post(
            &format!(
                "/api/v1/tasks/{}/lease",
                lost["task"]["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "its old holder lost it");
}

/// Customer support with its answer step pushed: offers that wait 20 seconds.
pub fn pushed_support() -> String {
    crate::harness::CUSTOMER_SUPPORT
        .replace("key = \"customer-support\"", "key = \"pushed-support\"")
        .replace(
            "channel = \"email\"",
            "channel = \"email\"\noffer_timeout = \"20s\"",
        )
}

async fn a_pushed_task_is_offered_to_a_waiting_worker_who_accepts_it(server: TestServer) {
    let service = server
        .store()
        .publish_service(&pushed_support())
        .await
        .unwrap();
    let client = server.client("Acme").await;
    let engagement = server
        .store()
        .create_engagement(
            client,
            delego_core::values::Name::parse("Pushed").unwrap(),
            &delego_core::values::Key::parse("pushed-support").unwrap(),
            service.version,
            Default::default(),
            &delego_core::model::Actor::System,
        )
        .await
        .unwrap();
    let profile = server.worker(&[client]).await;
    let agent = server.sign_in(Role::Agent, None, Some(profile)).await;
    let submitter = server.sign_in(Role::ClientUser, Some(client), None).await;

    let waiting = tokio::spawn(async move {
        let (status, offers) = agent.get("/api/v1/offers?wait=20").await;
        (agent, status, offers)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, created) = submitter
        .post(
            &format!("/api/v1/engagements/{}/items", engagement.id),
            json!({"data": {"subject": "Pushed", "description": "d", "requester_email": "r@example.com", "language": "en"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (agent, status, offers) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let offer = offers[0]["id"]
        .as_str()
        .expect("an offer arrived")
        .to_owned();
    assert_eq!(offers[0]["task"]["item_id"], created["id"]);
    let (status, claimed) = agent
        .post(&format!("/api/v1/offers/{offer}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["item"]["id"], created["id"]);
    let (status, _) = agent
        .post(&format!("/api/v1/offers/{offer}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an answered offer is gone");
}

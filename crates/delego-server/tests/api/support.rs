//! Customer support end to end through the HTTP API, with two clients sharing the floor.

use delego_core::identity::Role;
use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::harness::TestServer;

crate::on_both_backends!(
    a_ticket_goes_from_intake_through_reply_and_requester_answer_to_resolution_and_csat,
    a_ticket_without_a_reply_closes_itself_after_the_quiet_period,
    an_engagement_sets_its_own_quiet_period,
    a_manager_sees_why_a_task_went_to_a_worker_and_why_another_could_not_take_it,
);

fn ticket(subject: &str, requester: &str) -> Json {
    json!({
        "data": {
            "subject": subject,
            "description": "The parcel arrived with a broken seal.",
            "requester_email": requester,
            "channel": "web",
            "category": "problem",
            "language": "en",
        },
        "priority": "high",
    })
}

/// The public message bodies of an item's thread, as its client sees them.
async fn thread(session: &crate::harness::Session, item: &str) -> Vec<String> {
    let (status, messages) = session.get(&format!("/api/v1/items/{item}/messages")).await;
    assert_eq!(status, StatusCode::OK);
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

async fn deliver(server: &TestServer) {
    delego_server::runtime::deliver_outgoing(&server.state)
        .await
        .unwrap();
}

/// The URL path of the first link in a text.
pub(crate) fn link_path(text: &str, base: &str) -> String {
    let start = text.find(base).unwrap() + base.len();
    text[start..].split_whitespace().next().unwrap().to_owned()
}

async fn a_ticket_goes_from_intake_through_reply_and_requester_answer_to_resolution_and_csat(
    server: TestServer,
) {
    let acme = server.client("Acme Retail").await;
    let globex = server.client("Globex Bank").await;
    let acme_support = server.engagement(acme).await;
    let globex_support = server.engagement(globex).await;
    let acme_user = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let globex_user = server.sign_in(Role::ClientUser, Some(globex), None).await;
    let acme_agent_profile = server.worker(&[acme]).await;
    let agent = server
        .sign_in(Role::Agent, None, Some(acme_agent_profile))
        .await;

    // Both clients submit; the Acme agent only ever sees Acme's ticket.
    let (status, created) = acme_user
        .post(
            &format!("/api/v1/engagements/{acme_support}/items"),
            ticket("Broken seal", "jane@customer.example"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let item = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["step"], "answer",
        "acknowledged and waiting for an agent"
    );
    let stored = server.store().item(item.parse().unwrap()).await.unwrap();
    let requester_id = stored.requester_id.expect("linked by requester_field");
    let requester = server.store().requester(requester_id).await.unwrap();
    assert_eq!(requester.email.unwrap().as_str(), "jane@customer.example");
    assert_eq!(requester.client_id, acme);
    let (status, _) = globex_user
        .post(
            &format!("/api/v1/engagements/{globex_support}/items"),
            ticket("Card blocked", "joe@bank.example"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    deliver(&server).await;
    let acknowledgement = thread(&acme_user, &item).await;
    assert_eq!(acknowledgement.len(), 1);
    assert!(
        acknowledgement[0].contains("We have received “Broken seal”"),
        "{acknowledgement:?}"
    );
    let reply_link = link_path(&acknowledgement[0], &server.base);

    let (status, claimed) = agent.post("/api/v1/tasks/next", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{claimed}");
    assert_eq!(claimed["item"]["id"], item.as_str());
    let task = claimed["task"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        agent.post("/api/v1/tasks/next", json!({})).await.0,
        StatusCode::NO_CONTENT,
        "Globex is not cleared"
    );

    // An internal note stays internal; the public reply sends the ticket to wait.
    let (status, _) = agent
        .post(
            &format!("/api/v1/items/{item}/messages"),
            json!({"visibility": "internal", "body": "Customer is a VIP."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        agent
            .post(&format!("/api/v1/tasks/{task}/start"), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    let (status, after_reply) = agent
        .post(
            &format!("/api/v1/tasks/{task}/submit"),
            json!({"outcome": "replied", "data": {"reply": "Sorry! A replacement is on its way."}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{after_reply}");
    assert_eq!(after_reply["status"], "waiting");
    let seen_by_client = thread(&acme_user, &item).await;
    assert!(
        seen_by_client.iter().all(|m| !m.contains("VIP")),
        "internal notes are not shown to the client"
    );

    // The requester answers through the signed link; the ticket returns to the queue.
    let requester = server.anonymous();
    let (status, _) = requester
        .post(&reply_link, json!({"body": "Thanks, when will it arrive?"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, current) = acme_user.get(&format!("/api/v1/items/{item}")).await;
    assert_eq!(
        (current["status"].as_str(), current["step"].as_str()),
        (Some("active"), Some("answer"))
    );

    let (_, claimed) = agent.post("/api/v1/tasks/next", json!({})).await;
    let task = claimed["task"]["id"].as_str().unwrap().to_owned();
    let (status, resolved) = agent
        .post(
            &format!("/api/v1/tasks/{task}/submit"),
            json!({"outcome": "resolved", "data": {"reply": "Tomorrow before noon."}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["status"], "completed");
    assert_eq!(resolved["position"]["resolution"], "resolved");

    // The CSAT request reaches the thread; the requester rates once through its link.
    deliver(&server).await;
    let messages = thread(&acme_user, &item).await;
    let csat = messages
        .iter()
        .find(|m| m.contains("How did we do"))
        .expect("a CSAT request");
    let csat_link = link_path(csat, &server.base);
    let (status, rated) = requester
        .post(
            &csat_link,
            json!({"rating": 5, "comment": "Quick and kind."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rated}");
    assert_eq!(
        requester.post(&csat_link, json!({"rating": 1})).await.0,
        StatusCode::CONFLICT
    );
    let (_, page) = requester.get(&csat_link).await;
    assert_eq!(page["csat"]["rating"], 5);
    let forged = csat_link.replace(&item, created["engagement_id"].as_str().unwrap());
    assert_eq!(requester.get(&forged).await.0, StatusCode::NOT_FOUND);

    let (_, history) = acme_user
        .get(&format!("/api/v1/items/{item}/history"))
        .await;
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "item.created",
        "task.claimed",
        "task.started",
        "task.submitted",
        "event.received",
        "csat.recorded",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

async fn a_ticket_without_a_reply_closes_itself_after_the_quiet_period(server: TestServer) {
    let client = server.client("Initech").await;
    let engagement = server.engagement(client).await;
    let profile = server.worker(&[client]).await;
    let agent = server.sign_in(Role::Agent, None, Some(profile)).await;
    let (_, created) = agent
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            ticket("Login loop", "amy@initech.example"),
        )
        .await;
    let item = created["id"].as_str().unwrap().to_owned();
    let (_, claimed) = agent.post("/api/v1/tasks/next", json!({})).await;
    let task = claimed["task"]["id"].as_str().unwrap();
    agent
        .post(
            &format!("/api/v1/tasks/{task}/submit"),
            json!({"outcome": "replied", "data": {"reply": "Clear your cookies?"}}),
        )
        .await;

    server.db.advance(SignedDuration::from_hours(71));
    server.store().fire_due_timers().await.unwrap();
    // Three days on, the morning's session has expired: sign in again.
    assert_eq!(agent.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    let agent = server.sign_in(Role::Agent, None, Some(profile)).await;
    assert_eq!(
        agent.get(&format!("/api/v1/items/{item}")).await.1["status"],
        "waiting"
    );
    server.db.advance(SignedDuration::from_hours(1));
    server.store().fire_due_timers().await.unwrap();
    let (_, closed) = agent
        .call(Method::GET, &format!("/api/v1/items/{item}"), None)
        .await;
    assert_eq!(closed["status"], "completed");
    assert_eq!(closed["position"]["resolution"], "auto_resolved");
    deliver(&server).await;
    let messages = thread(&agent, &item).await;
    assert!(
        messages.iter().any(|m| m.contains("we closed it")),
        "{messages:?}"
    );
}

async fn an_engagement_sets_its_own_quiet_period(server: TestServer) {
    let client = server.client("Initech").await;
    let engagement = server.engagement(client).await;
    let manager = server.sign_in(Role::Manager, None, None).await;
    let settings = format!("/api/v1/engagements/{engagement}/settings");
    let (status, problem) = manager
        .call(
            Method::PUT,
            &settings,
            Some(json!({"wait_timers": {"answer": "1h"}})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "only wait steps with a timer"
    );
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a wait step"),
        "{problem}"
    );
    let (status, problem) = manager
        .call(
            Method::PUT,
            &settings,
            Some(json!({"wait_timers": {"await_reply": "soon"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem["errors"][0]["field"],
        "settings.wait_timers.await_reply"
    );
    let (status, updated) = manager
        .call(
            Method::PUT,
            &settings,
            Some(json!({"wait_timers": {"await_reply": "1d"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");

    let profile = server.worker(&[client]).await;
    let agent = server.sign_in(Role::Agent, None, Some(profile)).await;
    let (_, created) = agent
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            ticket("Printer", "amy@initech.example"),
        )
        .await;
    let item = created["id"].as_str().unwrap().to_owned();
    let (_, claimed) = agent.post("/api/v1/tasks/next", json!({})).await;
    let task = claimed["task"]["id"].as_str().unwrap();
    let (_, waiting) = agent
        .post(
            &format!("/api/v1/tasks/{task}/submit"),
            json!({"outcome": "replied", "data": {"reply": "Is it on?"}}),
        )
        .await;
    let until: jiff::Timestamp = waiting["position"]["until"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        until,
        server.db.clock_now() + SignedDuration::from_hours(24)
    );
    server.db.advance(SignedDuration::from_hours(24));
    server.store().fire_due_timers().await.unwrap();
    let closed = server.store().item(item.parse().unwrap()).await.unwrap();
    assert_eq!(closed.state.position.status(), "completed");
}

async fn a_manager_sees_why_a_task_went_to_a_worker_and_why_another_could_not_take_it(
    server: TestServer,
) {
    let client = server.client("Acme").await;
    let other = server.client("Globex").await;
    let engagement = server.engagement(client).await;
    let profile = server.worker(&[client]).await;
    let agent = server.sign_in(Role::Agent, None, Some(profile)).await;
    let outsider = server.worker(&[other]).await;
    let manager = server.sign_in(Role::Manager, None, None).await;
    agent
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            ticket("Why me", "w@example.com"),
        )
        .await;
    let (_, claimed) = agent.post("/api/v1/tasks/next", json!({})).await;
    let task = claimed["task"]["id"].as_str().unwrap();

    let (status, why) = manager
        .get(&format!("/api/v1/tasks/{task}/assignment"))
        .await;
    assert_eq!(status, StatusCode::OK, "{why}");
    assert_eq!(why["why"]["rule"]["rule"], "earliest");
    assert_eq!(why["why"]["eligible_tasks"], 1);
    assert_eq!(why["actor"]["id"], profile.to_string());

    let (_, mine) = agent
        .get(&format!("/api/v1/tasks/{task}/eligibility"))
        .await;
    assert_eq!(mine["eligible"], true, "the holder meets every requirement");
    assert_eq!(
        mine["language_required"], true,
        "the English ticket has not waited 30 minutes"
    );
    let (status, not_cleared) = manager
        .get(&format!(
            "/api/v1/tasks/{task}/eligibility?worker={outsider}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(not_cleared["eligible"], false);
    assert_eq!(not_cleared["reason"]["reason"], "not_cleared");
    let (status, _) = agent
        .get(&format!(
            "/api/v1/tasks/{task}/eligibility?worker={outsider}"
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an agent asks only about itself"
    );
}

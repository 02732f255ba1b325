//! Isolation in the web UI, page by page: every page that names another client's object
//! answers an outsider exactly as it answers an unknown id, for reading and for forms
//! posted with a valid token, and changes nothing.

use delego_core::identity::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::harness::{Session, TestServer};

crate::on_both_backends!(every_page_about_another_clients_work_looks_like_an_unknown_one);

const UNKNOWN: &str = "0190a0b0-0000-7000-8000-000000000000";

type Case<'a> = (
    &'a Session,
    Method,
    String,
    String,
    &'a [(&'a str, &'a str)],
);

/// Asks for a page as a browser, or posts a form with the session's form token.
async fn open(
    session: &Session,
    method: Method,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    if method == Method::POST {
        let (status, html, _) = session.submit_form("/settings", path, fields).await;
        (status, html)
    } else {
        session.page(path).await
    }
}

async fn every_page_about_another_clients_work_looks_like_an_unknown_one(server: TestServer) {
    let acme = server.client("Acme").await;
    let globex = server.client("Globex").await;
    let acme_engagement = server.engagement(acme).await;
    let acme_user = server.sign_in(Role::ClientUser, Some(acme), None).await;
    let (status, item) = acme_user
        .post(
            &format!("/api/v1/engagements/{acme_engagement}/items"),
            json!({"data": {"subject": "Acme's secret", "description": "d",
                            "requester_email": "ann@example.com"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let item = item["id"].as_str().unwrap().to_owned();
    let acme_agent = server
        .sign_in(Role::Agent, None, Some(server.worker(&[acme]).await))
        .await;
    let (_, claimed) = acme_agent.post("/api/v1/tasks/next", json!({})).await;
    let task = claimed["task"]["id"].as_str().unwrap().to_owned();

    let globex_user = server.sign_in(Role::ClientUser, Some(globex), None).await;
    let globex_lead = server
        .sign_in(Role::TeamLead, None, Some(server.worker(&[globex]).await))
        .await;
    // The acknowledgement first: the background runtime posts it within a second.
    let mut thread_before = Json::Null;
    for _ in 0..50 {
        let (_, thread) = acme_user
            .get(&format!("/api/v1/items/{item}/messages"))
            .await;
        thread_before = thread;
        if thread_before.as_array().is_some_and(|t| !t.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        thread_before.as_array().map(Vec::len),
        Some(1),
        "{thread_before}"
    );

    // Who tries, how, the path with Acme's id, the same path with an unknown id, fields.
    let reply = [("body", "Leaked?")];
    let rating = [("rating", "1"), ("comment", "")];
    let outcome = [("outcome", "resolved"), ("reply", "Stolen")];
    let cases: Vec<Case> = vec![
        (
            &globex_lead,
            Method::GET,
            format!("/items/{item}"),
            format!("/items/{UNKNOWN}"),
            &[],
        ),
        (
            &globex_lead,
            Method::GET,
            format!("/queues/{acme_engagement}/answer"),
            format!("/queues/{UNKNOWN}/answer"),
            &[],
        ),
        (
            &globex_lead,
            Method::GET,
            format!("/work/tasks/{task}"),
            format!("/work/tasks/{UNKNOWN}"),
            &[],
        ),
        (
            &globex_lead,
            Method::POST,
            format!("/work/tasks/{task}"),
            format!("/work/tasks/{UNKNOWN}"),
            &outcome,
        ),
        (
            &globex_lead,
            Method::POST,
            format!("/work/tasks/{task}/release"),
            format!("/work/tasks/{UNKNOWN}/release"),
            &[],
        ),
        (
            &globex_user,
            Method::GET,
            format!("/portal/items/{item}"),
            format!("/portal/items/{UNKNOWN}"),
            &[],
        ),
        (
            &globex_user,
            Method::POST,
            format!("/portal/items/{item}/reply"),
            format!("/portal/items/{UNKNOWN}/reply"),
            &reply,
        ),
        (
            &globex_user,
            Method::POST,
            format!("/portal/items/{item}/rating"),
            format!("/portal/items/{UNKNOWN}/rating"),
            &rating,
        ),
        (
            &globex_user,
            Method::GET,
            format!("/portal/engagements/{acme_engagement}/new"),
            format!("/portal/engagements/{UNKNOWN}/new"),
            &[],
        ),
        // The floor's item page is not a client's, whatever the item.
        (
            &globex_user,
            Method::GET,
            format!("/items/{item}"),
            format!("/items/{UNKNOWN}"),
            &[],
        ),
        // Nor is the agent's workspace a team lead's for another client's task.
        (
            &acme_user,
            Method::GET,
            format!("/work/tasks/{task}"),
            format!("/work/tasks/{UNKNOWN}"),
            &[],
        ),
    ];
    for (outsider, method, hidden, unknown, fields) in cases {
        let seen = open(outsider, method.clone(), &hidden, fields).await;
        let expected = open(outsider, method.clone(), &unknown, fields).await;
        assert_eq!(
            seen.0,
            StatusCode::NOT_FOUND,
            "{method} {hidden}: {}",
            seen.1
        );
        assert_eq!(
            seen, expected,
            "{method} {hidden} tells itself apart from an unknown id"
        );
    }

    // Nothing changed: the thread is as it was and the task is still the agent's.
    let (_, thread_after) = acme_user
        .get(&format!("/api/v1/items/{item}/messages"))
        .await;
    assert_eq!(thread_before, thread_after);
    assert_eq!(
        acme_agent.page(&format!("/work/tasks/{task}")).await.0,
        StatusCode::OK
    );
}

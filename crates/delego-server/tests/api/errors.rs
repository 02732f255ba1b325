//! Bad input gets a clear problem document, never a 500; concurrency and identity rules
//! answer with the statuses clients rely on.

use delego_core::identity::Role;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value as Json, json};

use crate::harness::{PASSWORD, TestServer};

crate::on_both_backends!(
    malformed_requests_get_problem_documents_naming_what_is_wrong,
    updates_need_if_match_and_a_stale_version_is_refused,
    an_idempotency_key_returns_the_first_item_instead_of_a_twin,
    sign_in_is_throttled_and_sessions_and_tokens_authenticate,
    a_batch_keeps_its_valid_items_and_lists_page_with_a_cursor,
);

fn problem_of(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap_or_default() == "application/problem+json")
}

async fn malformed_requests_get_problem_documents_naming_what_is_wrong(server: TestServer) {
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let manager = server.sign_in(Role::Manager, None, None).await;
    let items = format!("/api/v1/engagements/{engagement}/items");

    let response = manager
        .request(Method::POST, &items)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"data\": {")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(problem_of(response.headers()));
    let problem: Json = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:delego:problem:bad-request");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    let (status, problem) = manager
        .post(&items, json!({"data": {}, "colour": "red"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "colour");
    assert_eq!(problem["errors"][0]["code"], "unknown_field");

    let (status, problem) = manager
        .post(
            &items,
            json!({"data": {"subject": 42, "requester_email": "not-an-address", "mood": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in ["subject", "requester_email", "mood", "description"] {
        assert!(fields.contains(&field), "{field} not named in {problem}");
    }

    let (status, problem) = manager
        .post(&items, json!({"data": {}, "priority": "asap"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "priority");

    let (_, token) = manager.post("/api/v1/tokens", json!({"name": "raw"})).await;
    let secret = token["secret"].as_str().unwrap();
    assert_eq!(
        announced_body_of(&server, &items, secret, 2 * 1024 * 1024).await,
        413
    );

    let response = manager
        .request(Method::POST, &items)
        .body("subject=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    for path in [
        "/api/v1/items/not-an-id",
        "/api/v1/items/00000000-0000-0000-0000-000000000000",
        "/api/v1/nowhere",
    ] {
        let response = manager.request(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(problem_of(response.headers()), "{path}");
    }
    let (status, problem) = manager.get("/api/v1/items?limit=100000").await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("limit"))
    );
    let (status, _) = manager.get("/api/v1/items?limit=ten").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Garbage in every body-taking route: a 4xx each time, never a 500.
    let (_, openapi) = manager.get("/api/v1/openapi.json").await;
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        let path = path
            .replace("{id}", &engagement)
            .replace("{token}", "x")
            .replace("{key}", "k")
            .replace("{version}", "1");
        for method in operations.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for body in ["null", "[]", "{\"data\": 1}", "\u{0}", "{\"outcome\": {}}"] {
                let response = manager
                    .request(method.clone(), &path)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    response.status().as_u16() < 500,
                    "{method} {path} with {body:?}: {}",
                    response.status()
                );
            }
        }
    }
}

async fn updates_need_if_match_and_a_stale_version_is_refused(server: TestServer) {
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let user = server.sign_in(Role::ClientUser, Some(client), None).await;
    let (_, item) = user
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            json!({"data": {"subject": "Old", "description": "d", "requester_email": "r@example.com"}}),
        )
        .await;
    let path = format!("/api/v1/items/{}", item["id"].as_str().unwrap());
    let response = user.request(Method::GET, &path).send().await.unwrap();
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(etag, "\"1\"");

    let change = json!({"data": {"subject": "New"}});
    let response = user
        .request(Method::PATCH, &path)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_REQUIRED);
    let response = user
        .request(Method::PATCH, &path)
        .header(header::IF_MATCH, &etag)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::ETAG], "\"2\"");
    let response = user
        .request(Method::PATCH, &path)
        .header(header::IF_MATCH, &etag)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    let problem: Json = response.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("version 2"),
        "{problem}"
    );
    let (_, current) = user.get(&path).await;
    assert_eq!(current["data"]["subject"], "New");
}

async fn an_idempotency_key_returns_the_first_item_instead_of_a_twin(server: TestServer) {
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let user = server.sign_in(Role::ClientUser, Some(client), None).await;
    let body = json!({"data": {"subject": "Once", "description": "d", "requester_email": "r@example.com"}});
    let send = || {
        user.request(
            Method::POST,
            &format!("/api/v1/engagements/{engagement}/items"),
        )
        .header("Idempotency-Key", "order-7781")
        .json(&body)
        .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Json = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: Json = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let (_, page) = user.get("/api/v1/items").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

async fn sign_in_is_throttled_and_sessions_and_tokens_authenticate(server: TestServer) {
    let anonymous = server.anonymous();
    assert_eq!(
        anonymous.get("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    let user = server.user(Role::Manager, None, None).await;
    let email = user.email.to_string();
    let wrong = json!({"email": email, "password": "not the password"});
    let (status, problem) = anonymous.post("/api/v1/auth/login", wrong.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, unknown) = anonymous
        .post(
            "/api/v1/auth/login",
            json!({"email": "nobody@example.com", "password": "whatever"}),
        )
        .await;
    assert_eq!(
        problem["detail"], unknown["detail"],
        "no hint whether the account exists"
    );
    for _ in 0..4 {
        anonymous.post("/api/v1/auth/login", wrong.clone()).await;
    }
    let response = anonymous
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(response.headers().contains_key(header::RETRY_AFTER));

    let session = server.sign_in(Role::Manager, None, None).await;
    let response = session
        .request(Method::GET, "/api/v1/me")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, created) = session.post("/api/v1/tokens", json!({"name": "CRM"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("dlg_"));
    let machine = session.with_token(secret);
    assert_eq!(machine.get("/api/v1/me").await.0, StatusCode::OK);
    let (_, listed) = session.get("/api/v1/tokens").await;
    assert!(
        !listed.to_string().contains(secret),
        "a secret is shown once"
    );

    assert_eq!(
        session.post("/api/v1/auth/logout", json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(session.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    let id = created["token"]["id"].as_str().unwrap();
    let other = server.sign_in(Role::Manager, None, None).await;
    assert_eq!(
        other
            .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        machine
            .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        machine.get("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );
}

/// The status a server answers to a request announcing a body of `length` bytes. Written on
/// a raw socket: the server answers from the headers alone, before any body is sent, so a
/// client streaming the body would race the closing connection.
async fn announced_body_of(server: &TestServer, path: &str, token: &str, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {token}\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut head))
        .await
        .expect("the server answers before the body arrives")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..read]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Rate limits live in each node's memory, whatever the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_past_its_rate_limit_is_answered_with_429() {
    let db = delego_store::testing::Harness::sqlite().await;
    let limited = TestServer::start_with(
        db,
        delego_server::Config {
            token_requests_per_minute: 3,
            ..Default::default()
        },
    )
    .await;
    let session = limited.sign_in(Role::Manager, None, None).await;
    let (_, created) = session
        .post("/api/v1/tokens", json!({"name": "busy robot"}))
        .await;
    let robot = session.with_token(created["secret"].as_str().unwrap());
    for _ in 0..3 {
        assert_eq!(robot.get("/api/v1/me").await.0, StatusCode::OK);
    }
    let response = robot
        .request(Method::GET, "/api/v1/me")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(problem_of(response.headers()));
    assert_eq!(
        session.get("/api/v1/me").await.0,
        StatusCode::OK,
        "the person's session is not limited"
    );
    limited.db.advance(jiff::SignedDuration::from_secs(61));
    assert_eq!(
        robot.get("/api/v1/me").await.0,
        StatusCode::OK,
        "a new minute, a new allowance"
    );
}

async fn a_batch_keeps_its_valid_items_and_lists_page_with_a_cursor(server: TestServer) {
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let user = server.sign_in(Role::ClientUser, Some(client), None).await;
    let entry = |n: u32| json!({"data": {"subject": format!("Ticket {n}"), "description": "d", "requester_email": "r@example.com"}});
    let mut entries: Vec<Json> = (0..6).map(entry).collect();
    entries[3] = json!({"data": {"subject": "No description"}});
    entries[5]["idempotency_key"] = json!("batch-5");
    let (status, results) = user
        .post(
            &format!("/api/v1/engagements/{engagement}/items/batch"),
            json!({"items": entries}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    let statuses: Vec<u64> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 201, 201, 422, 201, 201]);
    assert_eq!(results[3]["errors"][0]["field"], "description");
    let (_, again) = user
        .post(
            &format!("/api/v1/engagements/{engagement}/items/batch"),
            json!({"items": [entries[5]]}),
        )
        .await;
    assert_eq!(again[0]["status"], 200, "an idempotent repeat");

    let mut subjects = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = user.get(&format!("/api/v1/items?limit=2{cursor}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().unwrap() {
            subjects.push(item["data"]["subject"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(
        subjects,
        ["Ticket 5", "Ticket 4", "Ticket 2", "Ticket 1", "Ticket 0"]
    );
    let (_, waiting) = user.get("/api/v1/items?status=waiting").await;
    assert!(waiting["items"].as_array().unwrap().is_empty());
}

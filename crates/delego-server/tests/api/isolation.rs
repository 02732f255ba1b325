//! Isolation, route by route: every route of the OpenAPI document is called as each role
//! whose scope is limited, against the objects of a client outside that scope. Foreign
//! objects answer 404 exactly like unknown ones, lists leave them out, and no value of a
//! foreign object appears in any response body. A route without a case fails the test.

use std::collections::BTreeSet;

use delego_core::identity::Role;
use delego_core::model::Actor;
use delego_core::values::Name;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::harness::{Session, TestServer};

crate::on_both_backends!(no_route_lets_a_limited_role_see_or_change_another_clients_data);

/// The ids and words that belong to the foreign client and must never be shown.
struct Foreign {
    client: String,
    engagement: String,
    item: String,
    task: String,
    worker: String,
    token: String,
    /// An offer (or notification) id that is not the caller's.
    offer: String,
    attachment: String,
    /// An article of the foreign engagement's knowledge base.
    article: String,
    /// A requester link for a home item, bent to name the foreign item.
    forged_token: String,
    /// An item of the caller's own client, to pair with the foreign one.
    home_item: String,
    secrets: Vec<String>,
}

/// What a route may answer a limited role that names foreign objects.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The foreign object is invisible: 404, as if unknown.
    Hidden,
    /// A list or a personal view: 200, with nothing foreign in it.
    Shown,
    /// A provider-only action refused for the role itself (it reveals nothing).
    Refused,
    /// Only the listed status, for routes whose answer depends on the role.
    Status(u16),
}

struct Case {
    method: Method,
    template: String,
    path: String,
    body: Option<Json>,
    expect: Expect,
}

/// A day around the test clock's start (08:00), for the metrics routes.
const METRICS_WINDOW: &str = "from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z";

/// An entry of the foreign client's asset register.
const FOREIGN_ASSET: &str = "FOREIGN-SECRET-ASSET";

fn cases(foreign: &Foreign, role: Role) -> Vec<Case> {
    let f = foreign;
    let item_body =
        json!({"data": {"subject": "x", "description": "y", "requester_email": "a@b.example"}});
    let works = role.works_tasks();
    let staff = role != Role::ClientUser;
    let version = crate::harness::customer_support_version();
    let case = |method: Method, template: &str, path: String, body: Option<Json>, expect| Case {
        method,
        template: template.to_owned(),
        path,
        body,
        expect,
    };
    use Expect::*;
    let mut cases = vec![
        case(
            Method::POST,
            "/api/v1/auth/login",
            "/api/v1/auth/login".into(),
            Some(json!({"email": "foreign-user@foreign.example", "password": "wrong password!"})),
            Status(401),
        ),
        case(Method::GET, "/api/v1/me", "/api/v1/me".into(), None, Shown),
        case(
            Method::POST,
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Some(json!({"name": "mine"})),
            Status(201),
        ),
        case(
            Method::GET,
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            None,
            Shown,
        ),
        case(
            Method::DELETE,
            "/api/v1/tokens/{id}",
            format!("/api/v1/tokens/{}", f.token),
            None,
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/clients",
            "/api/v1/clients".into(),
            None,
            Shown,
        ),
        case(
            Method::POST,
            "/api/v1/clients",
            "/api/v1/clients".into(),
            Some(json!({"name": "New"})),
            Refused,
        ),
        case(
            Method::GET,
            "/api/v1/clients/{id}",
            format!("/api/v1/clients/{}", f.client),
            None,
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/users",
            "/api/v1/users".into(),
            None,
            Shown,
        ),
        case(
            Method::POST,
            "/api/v1/users",
            "/api/v1/users".into(),
            Some(
                json!({"email": "n@example.com", "name": "N", "role": "client_user", "client_id": f.client}),
            ),
            Refused,
        ),
        case(
            Method::GET,
            "/api/v1/workers",
            "/api/v1/workers".into(),
            None,
            Refused,
        ),
        case(
            Method::POST,
            "/api/v1/workers",
            "/api/v1/workers".into(),
            Some(
                json!({"name": "W", "skills": {}, "capacity": {"back_office": 1}, "clearances": [f.client]}),
            ),
            Refused,
        ),
        case(
            Method::GET,
            "/api/v1/workers/{id}",
            format!("/api/v1/workers/{}", f.worker),
            None,
            Hidden,
        ),
        case(
            Method::PUT,
            "/api/v1/workers/{id}/presence",
            format!("/api/v1/workers/{}/presence", f.worker),
            Some(json!({"state": "offline"})),
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/services",
            "/api/v1/services".into(),
            None,
            Shown,
        ),
        case(
            Method::GET,
            "/api/v1/services/{key}/versions/{version}",
            format!("/api/v1/services/customer-support/versions/{version}"),
            None,
            Shown,
        ),
        case(
            Method::GET,
            "/api/v1/engagements",
            "/api/v1/engagements".into(),
            None,
            Shown,
        ),
        case(
            Method::POST,
            "/api/v1/engagements",
            "/api/v1/engagements".into(),
            Some(
                json!({"client_id": f.client, "name": "E", "service_key": "customer-support", "service_version": version}),
            ),
            Refused,
        ),
        case(
            Method::GET,
            "/api/v1/engagements/{id}",
            format!("/api/v1/engagements/{}", f.engagement),
            None,
            Hidden,
        ),
        case(
            Method::PUT,
            "/api/v1/engagements/{id}/settings",
            format!("/api/v1/engagements/{}/settings", f.engagement),
            Some(json!({"wait_timers": {"await_reply": "1m"}})),
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/engagements/{id}/items",
            format!("/api/v1/engagements/{}/items", f.engagement),
            Some(item_body.clone()),
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/engagements/{id}/items/batch",
            format!("/api/v1/engagements/{}/items/batch", f.engagement),
            Some(json!({"items": [item_body]})),
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/engagements/{id}/items/import",
            format!("/api/v1/engagements/{}/items/import", f.engagement),
            None,
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/items",
            "/api/v1/items".into(),
            None,
            Shown,
        ),
        case(
            Method::GET,
            "/api/v1/items",
            format!("/api/v1/items?client_id={}", f.client),
            None,
            Shown,
        ),
        case(
            Method::GET,
            "/api/v1/items",
            format!("/api/v1/items?engagement_id={}", f.engagement),
            None,
            Shown,
        ),
        case(
            Method::GET,
            "/api/v1/items/{id}",
            format!("/api/v1/items/{}", f.item),
            None,
            Hidden,
        ),
        case(
            Method::PATCH,
            "/api/v1/items/{id}",
            format!("/api/v1/items/{}", f.item),
            Some(json!({"data": {"subject": "changed"}})),
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/items/{id}/messages",
            format!("/api/v1/items/{}/messages", f.item),
            None,
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/items/{id}/messages",
            format!("/api/v1/items/{}/messages", f.item),
            Some(json!({"visibility": "public", "body": "hello"})),
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/items/{id}/cancel",
            format!("/api/v1/items/{}/cancel", f.item),
            Some(json!({"reason": "mine now"})),
            Hidden,
        ),
    ];
    // Merging and linking are the staff's: another client's item, on either side (the
    // duplicate or the one that stays, the child or the parent), is unknown.
    let staff_only = if staff { Hidden } else { Refused };
    for (action, field) in [("merge", "into"), ("parent", "parent")] {
        for (item, other) in [(&f.item, &f.home_item), (&f.home_item, &f.item)] {
            cases.push(case(
                Method::POST,
                &format!("/api/v1/items/{{id}}/{action}"),
                format!("/api/v1/items/{item}/{action}"),
                Some(json!({ field: other })),
                staff_only,
            ));
        }
    }
    cases.push(case(
        Method::DELETE,
        "/api/v1/items/{id}/parent",
        format!("/api/v1/items/{}/parent", f.item),
        None,
        staff_only,
    ));
    // Another client's register is unknown, for reading and for writing alike; the
    // provider-wide registers are the managers'.
    let client_scope = (
        "/api/v1/clients/{id}",
        format!("/api/v1/clients/{}", f.client),
        FOREIGN_ASSET,
        Hidden,
    );
    let provider_scope = ("/api/v1", "/api/v1".to_owned(), "VPN", Refused);
    for (template_scope, scope, entry, expect) in [client_scope, provider_scope] {
        for (method, route, body) in [
            (Method::GET, "entries", None),
            (Method::GET, "entries/{key}", None),
            (
                Method::PUT,
                "entries/{key}",
                Some(json!({"data": {"owner": "planted"}})),
            ),
            (Method::DELETE, "entries/{key}", None),
            (Method::POST, "import", None),
        ] {
            cases.push(case(
                method,
                &format!("{template_scope}/registers/{{register}}/{route}"),
                format!("{scope}/registers/assets/{}", route.replace("{key}", entry)),
                body,
                expect,
            ));
        }
    }
    cases.extend([
        case(
            Method::GET,
            "/api/v1/items/{id}/history",
            format!("/api/v1/items/{}/history", f.item),
            None,
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/items/{id}/tasks",
            format!("/api/v1/items/{}/tasks", f.item),
            None,
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/items/{id}/requester-links",
            format!("/api/v1/items/{}/requester-links", f.item),
            None,
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/items/{id}/attachments",
            format!("/api/v1/items/{}/attachments?filename=mine.json", f.item),
            Some(json!({"planted": true})),
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/items/{id}/attachments",
            format!("/api/v1/items/{}/attachments", f.item),
            None,
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/attachments/{id}",
            format!("/api/v1/attachments/{}", f.attachment),
            None,
            Hidden,
        ),
        // Mail: an item's outgoing mail is the item's; taking mail in and the messages kept
        // aside are the provider's own.
        case(
            Method::GET,
            "/api/v1/items/{id}/mail",
            format!("/api/v1/items/{}/mail", f.item),
            None,
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/mail/inbound",
            "/api/v1/mail/inbound".into(),
            Some(json!({"planted": true})),
            Refused,
        ),
        case(
            Method::GET,
            "/api/v1/mail/kept-aside",
            "/api/v1/mail/kept-aside".into(),
            None,
            Refused,
        ),
        case(
            Method::GET,
            "/api/v1/mail/kept-aside/{id}",
            format!("/api/v1/mail/kept-aside/{}", f.item),
            None,
            Refused,
        ),
        case(
            Method::GET,
            "/api/v1/attachments/{id}/content",
            format!("/api/v1/attachments/{}/content", f.attachment),
            None,
            Hidden,
        ),
        // The knowledge base: another client's engagement or article is unknown, for
        // reading and for writing alike.
        case(
            Method::GET,
            "/api/v1/engagements/{id}/articles",
            format!("/api/v1/engagements/{}/articles?q=secret", f.engagement),
            None,
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/engagements/{id}/articles",
            format!("/api/v1/engagements/{}/articles", f.engagement),
            Some(json!({"title": "Planted", "body": "Planted article"})),
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/articles/{id}",
            format!("/api/v1/articles/{}", f.article),
            None,
            Hidden,
        ),
        case(
            Method::PUT,
            "/api/v1/articles/{id}",
            format!("/api/v1/articles/{}", f.article),
            Some(json!({"title": "Changed", "body": "Changed article"})),
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/tasks/next",
            "/api/v1/tasks/next".into(),
            None,
            if works { Status(204) } else { Refused },
        ),
        case(
            Method::GET,
            "/api/v1/tasks/{id}",
            format!("/api/v1/tasks/{}", f.task),
            None,
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/tasks/{id}/eligibility",
            format!("/api/v1/tasks/{}/eligibility?worker={}", f.task, f.worker),
            None,
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/tasks/{id}/assignment",
            format!("/api/v1/tasks/{}/assignment", f.task),
            None,
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/tasks/{id}/start",
            format!("/api/v1/tasks/{}/start", f.task),
            None,
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/tasks/{id}/submit",
            format!("/api/v1/tasks/{}/submit", f.task),
            Some(json!({"outcome": "resolved", "data": {"reply": "x"}})),
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/tasks/{id}/release",
            format!("/api/v1/tasks/{}/release", f.task),
            None,
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/tasks/{id}/lease",
            format!("/api/v1/tasks/{}/lease", f.task),
            None,
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/queues",
            "/api/v1/queues".into(),
            None,
            Shown,
        ),
        // Metrics: one's own clients' figures only; a foreign client is unknown; worker
        // figures are staff's own row, and none at all for a client user.
        case(
            Method::GET,
            "/api/v1/metrics",
            format!("/api/v1/metrics?{METRICS_WINDOW}&by=engagement&interval=15"),
            None,
            Shown,
        ),
        case(
            Method::GET,
            "/api/v1/metrics",
            format!(
                "/api/v1/metrics?{METRICS_WINDOW}&by=client&client_id={}",
                f.client
            ),
            None,
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/metrics",
            format!("/api/v1/metrics?{METRICS_WINDOW}&by=worker"),
            None,
            if works { Shown } else { Hidden },
        ),
        // The Prometheus scrape is the operators' alone: for every user it does not exist.
        case(Method::GET, "/metrics", "/metrics".into(), None, Hidden),
        // Offers are personal: anyone else's (or none) is the same unknown offer.
        case(
            Method::GET,
            "/api/v1/offers",
            "/api/v1/offers".into(),
            None,
            if works { Shown } else { Refused },
        ),
        case(
            Method::POST,
            "/api/v1/offers/{id}/accept",
            format!("/api/v1/offers/{}/accept", f.offer),
            None,
            if works { Hidden } else { Refused },
        ),
        case(
            Method::POST,
            "/api/v1/offers/{id}/reject",
            format!("/api/v1/offers/{}/reject", f.offer),
            None,
            if works { Hidden } else { Refused },
        ),
        case(
            Method::GET,
            "/api/v1/public/csat/{token}",
            format!("/api/v1/public/csat/{}", f.forged_token),
            None,
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/public/csat/{token}",
            format!("/api/v1/public/csat/{}", f.forged_token),
            Some(json!({"rating": 1})),
            Hidden,
        ),
        case(
            Method::GET,
            "/api/v1/public/replies/{token}",
            format!("/api/v1/public/replies/{}", f.forged_token),
            None,
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/public/replies/{token}",
            format!("/api/v1/public/replies/{}", f.forged_token),
            Some(json!({"body": "let me in"})),
            Hidden,
        ),
        case(
            Method::POST,
            "/api/v1/engagements/{id}/staffing-plan",
            format!("/api/v1/engagements/{}/staffing-plan", f.engagement),
            Some(
                json!({"interval_minutes": 30, "target_percent": 80, "target_seconds": 20,
                        "shrinkage": "0.3"}),
            ),
            Hidden,
        ),
        // The inbox is personal: a list of one's own, anyone else's is unknown.
        case(
            Method::GET,
            "/api/v1/notifications",
            "/api/v1/notifications".into(),
            None,
            Shown,
        ),
        case(
            Method::POST,
            "/api/v1/notifications/{id}/read",
            format!("/api/v1/notifications/{}/read", f.offer),
            None,
            Hidden,
        ),
        // Last: it ends the session.
        case(
            Method::POST,
            "/api/v1/auth/logout",
            "/api/v1/auth/logout".into(),
            None,
            Status(204),
        ),
    ]);
    cases
}

async fn foreign_floor(server: &TestServer) -> Foreign {
    let client = server
        .store()
        .create_client(Name::parse("Foreign Secret Corp").unwrap(), &Actor::System)
        .await
        .unwrap();
    let engagement = server.engagement(client.id).await;
    let worker = server.worker(&[client.id]).await;
    let foreign_agent = server.sign_in(Role::Agent, None, Some(worker)).await;
    let (status, item) = foreign_agent
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            json!({"data": {"subject": "Foreign secret subject", "description": "Foreign secret description",
                            "requester_email": "foreign.requester@foreign.example"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let (_, claimed) = foreign_agent.post("/api/v1/tasks/next", json!({})).await;
    let (_, token) = foreign_agent
        .post("/api/v1/tokens", json!({"name": "foreign"}))
        .await;
    let (_, me) = foreign_agent.get("/api/v1/me").await;
    let item_id = item["id"].as_str().unwrap().to_owned();
    let uploaded = foreign_agent
        .request(
            Method::POST,
            &format!("/api/v1/items/{item_id}/attachments?filename=foreign-secret-contract.txt"),
        )
        .header("content-type", "text/plain")
        .body("Foreign secret contract")
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let attachment: Json = uploaded.json().await.unwrap();
    let attachment = attachment["id"].as_str().unwrap().to_owned();
    let (status, article) = foreign_agent
        .post(
            &format!("/api/v1/engagements/{engagement}/articles"),
            json!({"title": "Foreign secret article", "body": "Foreign secret fix"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{article}");
    let article = article["id"].as_str().unwrap().to_owned();
    let asset = delego_store::NewEntry {
        key: FOREIGN_ASSET.into(),
        data: json!({"owner": "Foreign secret owner"})
            .as_object()
            .cloned()
            .unwrap(),
    };
    server
        .store()
        .upsert_register_entries(&assets(), Some(client.id), vec![asset], &Actor::System)
        .await
        .unwrap();
    let secrets = vec![
        FOREIGN_ASSET.into(),
        "Foreign secret owner".into(),
        client.id.to_string(),
        client.name.to_string(),
        engagement.clone(),
        item_id.clone(),
        "Foreign secret subject".into(),
        "foreign.requester@foreign.example".into(),
        worker.to_string(),
        me["user"]["id"].as_str().unwrap().to_owned(),
        me["user"]["email"].as_str().unwrap().to_owned(),
        token["token"]["id"].as_str().unwrap().to_owned(),
        attachment.clone(),
        "foreign-secret-contract.txt".into(),
        "Foreign secret contract".into(),
        article.clone(),
        "Foreign secret article".into(),
        "Foreign secret fix".into(),
    ];
    Foreign {
        client: client.id.to_string(),
        engagement,
        task: claimed["task"]["id"].as_str().unwrap().to_owned(),
        worker: worker.to_string(),
        offer: uuid::Uuid::now_v7().to_string(),
        token: token["token"]["id"].as_str().unwrap().to_owned(),
        forged_token: String::new(),
        home_item: String::new(),
        attachment,
        article,
        item: item_id,
        secrets,
    }
}

/// A home item and a valid reply link of it with its item id swapped for the foreign one.
async fn forged_link(
    server: &TestServer,
    home_engagement: &str,
    foreign_item: &str,
    agent: &Session,
) -> (String, String) {
    let (_, home) = agent
        .post(
            &format!("/api/v1/engagements/{home_engagement}/items"),
            json!({"data": {"subject": "Home", "description": "d", "requester_email": "h@home.example"}}),
        )
        .await;
    let home_item = home["id"].as_str().unwrap();
    let (_, links) = agent
        .get(&format!("/api/v1/items/{home_item}/requester-links"))
        .await;
    let reply = links["reply"].as_str().unwrap();
    let token = reply.rsplit('/').next().unwrap();
    assert!(
        server
            .anonymous()
            .get(&format!("/api/v1/public/replies/{token}"))
            .await
            .0
            .is_success()
    );
    (
        home_item.to_owned(),
        token.replacen(home_item, foreign_item, 1),
    )
}

async fn no_route_lets_a_limited_role_see_or_change_another_clients_data(server: TestServer) {
    let mut foreign = foreign_floor(&server).await;
    let home = server.client("Home Client").await;
    let home_engagement = server.engagement(home).await;
    let home_worker = server.worker(&[home]).await;
    let home_agent = server.sign_in(Role::Agent, None, Some(home_worker)).await;
    (foreign.home_item, foreign.forged_token) =
        forged_link(&server, &home_engagement, &foreign.item, &home_agent).await;
    // The home agent holds the one home task, so "next task" finds nothing for anyone.
    home_agent.post("/api/v1/tasks/next", json!({})).await;

    let (_, openapi) = server.anonymous().get("/api/v1/openapi.json").await;
    let mut documented = BTreeSet::new();
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    assert!(
        documented.len() >= 40,
        "the OpenAPI document lists {} operations",
        documented.len()
    );

    let mut calls = 0;
    for role in [
        Role::ClientUser,
        Role::Agent,
        Role::TeamLead,
        Role::Expert,
        Role::QaReviewer,
    ] {
        let (client, worker) = match role {
            Role::ClientUser => (Some(home), None),
            _ => (None, Some(server.worker(&[home]).await)),
        };
        let session = server.sign_in(role, client, worker).await;
        let cases = cases(&foreign, role);
        let covered: BTreeSet<(String, String)> = cases
            .iter()
            .map(|c| (c.method.to_string(), c.template.clone()))
            .collect();
        let uncovered: Vec<_> = documented.difference(&covered).collect();
        assert!(
            uncovered.is_empty(),
            "routes without an isolation case: {uncovered:?}"
        );

        for case in cases {
            let (status, text) = call(&session, &case, &case.path).await;
            let context = format!("{role} {} {}", case.method, case.path);
            let allowed: &[u16] = match case.expect {
                Expect::Hidden => &[404],
                Expect::Shown => &[200],
                Expect::Refused => &[403],
                Expect::Status(status) => &[status],
            };
            assert!(
                allowed.contains(&status),
                "{context}: status {status}, body {text}"
            );
            for secret in &foreign.secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{context}: the answer shows `{secret}`: {text}"
                );
            }
            if matches!(case.expect, Expect::Hidden) {
                // Foreign ids in the body too (a merge's `into`) become unknown ones.
                let unknown = Case {
                    method: case.method.clone(),
                    template: case.template.clone(),
                    path: unknown_path(&case.path, &foreign),
                    body: case.body.as_ref().map(|body| {
                        serde_json::from_str(&unknown_path(&body.to_string(), &foreign)).unwrap()
                    }),
                    expect: case.expect,
                };
                let (unknown_status, unknown_body) = call(&session, &unknown, &unknown.path).await;
                assert_eq!(
                    (unknown_status, unknown_body.as_str()),
                    (status, text.as_str()),
                    "{context}: a foreign object must answer exactly like an unknown one"
                );
            }
            calls += 1;
        }
    }
    // The foreign item is untouched by all of it.
    let item = server
        .store()
        .item(foreign.item.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(item.state.data["subject"], "Foreign secret subject");
    assert_eq!(item.state.position.status(), "active");
    let home = server
        .store()
        .item(foreign.home_item.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(home.state.position.status(), "active", "nor merged away");
    let home_links = server.store().item_links(home.id()).await.unwrap();
    assert_eq!(home_links.parent, None, "nor linked to it");
    let asset = server
        .store()
        .register_entry(
            &assets(),
            Some(foreign.client.parse().unwrap()),
            FOREIGN_ASSET,
        )
        .await
        .unwrap();
    assert_eq!(asset.data["owner"], "Foreign secret owner");
    assert!(calls >= 200, "{calls} calls");
}

fn assets() -> delego_core::values::Key {
    delego_core::values::Key::parse("assets").unwrap()
}

async fn call(session: &Session, case: &Case, path: &str) -> (u16, String) {
    let mut request = session.request(case.method.clone(), path);
    if case.method == Method::PATCH {
        request = request.header("If-Match", "\"1\"");
    }
    if let Some(body) = &case.body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The same path with every foreign id (and a forged token) replaced by unknown ones.
fn unknown_path(path: &str, foreign: &Foreign) -> String {
    let mut path = path.replace(
        &foreign.forged_token,
        "00000000-0000-7000-8000-000000000000.1.00",
    );
    for id in [
        &foreign.client,
        &foreign.engagement,
        &foreign.item,
        &foreign.task,
        &foreign.worker,
        &foreign.token,
        &foreign.attachment,
        &foreign.article,
        &foreign.offer,
    ] {
        path = path.replace(id.as_str(), &uuid::Uuid::now_v7().to_string());
    }
    path
}

//! Technical support end to end through the HTTP API: tickets enter the tier their
//! category and customer tier call for, escalate by hand and by elapsed business time,
//! are never taken by an agent below the tier's level, and are resolved with an article
//! of the engagement's knowledge base, found there or written on the spot.

use delego_core::id::{ClientId, WorkerId};
use delego_core::identity::Role;
use delego_core::values::{Key, Name, SkillLevel};
use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::harness::{Session, TEST_DAY, TestServer, metric_total};

crate::on_both_backends!(
    tickets_climb_the_tiers_by_rule_by_hand_and_by_time_and_resolve_with_an_article,
    the_knowledge_base_is_read_by_the_client_and_written_by_staff,
    an_agent_searches_picks_or_writes_an_article_beside_the_task,
);

const TECHNICAL_SUPPORT: &str = include_str!("../../../../catalog/technical-support.toml");

/// Acme's technical support in office hours (Monday to Friday, 09:00–17:00 UTC; the test
/// clock starts on Monday at 08:00), and a user of Acme's.
struct Helpdesk {
    client: ClientId,
    engagement: String,
    customer: Session,
}

async fn helpdesk(server: &TestServer) -> Helpdesk {
    server
        .store()
        .publish_service(TECHNICAL_SUPPORT)
        .await
        .unwrap();
    let client = server.client("Acme Software").await;
    let manager = server.sign_in(Role::Manager, None, None).await;
    let day = json!(["09:00-17:00"]);
    let (status, engagement) = manager
        .post(
            "/api/v1/engagements",
            json!({"client_id": client, "name": "Helpdesk", "service_key": "technical-support",
                   "service_version": 1, "settings": {"calendar": {"zone": "UTC",
                   "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{engagement}");
    Helpdesk {
        client,
        engagement: engagement["id"].as_str().unwrap().to_owned(),
        customer: server.sign_in(Role::ClientUser, Some(client), None).await,
    }
}

/// A signed-in agent with technical support at `level`, answering e-mail for `client`.
async fn agent(server: &TestServer, client: ClientId, level: u8) -> (WorkerId, Session) {
    let worker = server
        .worker_like(&[client], |worker| {
            worker.name = Name::parse(&format!("Level {level} agent")).unwrap();
            worker.skills = [(
                Key::parse("technical_support").unwrap(),
                SkillLevel::new(level).unwrap(),
            )]
            .into();
        })
        .await;
    let role = if level == 5 {
        Role::Expert
    } else {
        Role::Agent
    };
    (worker, server.sign_in(role, None, Some(worker)).await)
}

/// Submits a ticket as the client's user: its id, step and priority.
async fn ticket(desk: &Helpdesk, subject: &str, category: &str, tier: &str) -> (String, Json) {
    let item = desk
        .customer
        .raise(
            &desk.engagement,
            json!({"data": {"subject": subject, "description": "It stopped working this morning.",
                            "requester_email": "it@acme.example", "category": category,
                            "customer_tier": tier}}),
        )
        .await;
    (item["id"].as_str().unwrap().to_owned(), item)
}

async fn submit(agent: &Session, task: &str, body: Json) -> (StatusCode, Json) {
    agent
        .post(&format!("/api/v1/tasks/{task}/submit"), body)
        .await
}

async fn step_of(session: &Session, item: &str) -> Json {
    session.get(&format!("/api/v1/items/{item}")).await.1["step"].clone()
}

/// The `field` and `code` of each error of a refusal.
fn field_errors(problem: &Json) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn article(
    staff: &Session,
    engagement: &str,
    title: &str,
    body: &str,
    tags: &[&str],
) -> String {
    let (status, created) = staff
        .post(
            &format!("/api/v1/engagements/{engagement}/articles"),
            json!({"title": title, "body": body, "tags": tags}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// The titles and ids of the engagement's articles matching `query`.
async fn search(session: &Session, engagement: &str, query: &str) -> Vec<(String, String)> {
    let (status, found) = session
        .get(&format!(
            "/api/v1/engagements/{engagement}/articles?q={query}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["title"].as_str().unwrap().to_owned(),
                a["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn tickets_climb_the_tiers_by_rule_by_hand_and_by_time_and_resolve_with_an_article(
    server: TestServer,
) {
    let desk = helpdesk(&server).await;
    let (_, level_1) = agent(&server, desk.client, 1).await;
    let (_, level_3) = agent(&server, desk.client, 3).await;
    let (_, level_5) = agent(&server, desk.client, 5).await;
    let manager = server.sign_in(Role::Manager, None, None).await;
    let vpn_article = article(
        &level_3,
        &desk.engagement,
        "VPN drops every hour",
        "The DHCP lease runs out: renew it, or set the VPN client to keep it.",
        &["vpn", "network"],
    )
    .await;
    let sso_article = article(
        &level_5,
        &desk.engagement,
        "Single sign-on with Azure AD",
        "Register the app, then map the groups to roles.",
        &["sso"],
    )
    .await;

    // By rule at intake: an outage and an enterprise customer start at level 2.
    let (vpn, created) = ticket(&desk, "VPN drops", "bug", "standard").await;
    assert_eq!(
        (&created["step"], &created["priority"]),
        (&json!("l1"), &json!("normal"))
    );
    server.db.advance(SignedDuration::from_mins(1));
    let (outage, created) = ticket(&desk, "Portal down", "outage", "standard").await;
    assert_eq!(
        (&created["step"], &created["priority"]),
        (&json!("l2"), &json!("urgent"))
    );
    server.db.advance(SignedDuration::from_mins(1));
    let (sso, created) = ticket(&desk, "Set up SSO", "question", "enterprise").await;
    assert_eq!(created["step"], "l2");

    // Level 1 gets only the level-1 ticket, urgent work above its level notwithstanding.
    let (l1_task, item) = level_1.next_task().await.expect("the VPN ticket");
    assert_eq!(item, vpn);
    assert_eq!(level_1.next_task().await, None, "level 2 asks level 3");
    let (_, tasks) = manager.get(&format!("/api/v1/items/{outage}/tasks")).await;
    let outage_task = tasks[0]["id"].as_str().unwrap();
    let (_, why_not) = level_1
        .get(&format!("/api/v1/tasks/{outage_task}/eligibility"))
        .await;
    assert_eq!(why_not["reason"]["reason"], "skill_too_low", "{why_not}");

    // Escalation by hand needs a reason, which stays an internal note.
    server.db.advance(SignedDuration::from_mins(3));
    let (status, refused) = submit(&level_1, &l1_task, json!({"outcome": "escalate"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        field_errors(&refused),
        [("reply".into(), "required".into())]
    );
    let reason = "Drops on the hour: needs a look at the DHCP server.";
    let escalated = level_1
        .submit_ok(&l1_task, "escalate", json!({"reply": reason}))
        .await;
    assert_eq!(escalated["step"], "l2");
    let (_, notes) = manager.get(&format!("/api/v1/items/{vpn}/messages")).await;
    assert!(
        notes
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["body"] == reason && m["visibility"] == "internal"),
        "{notes}"
    );
    let (_, seen) = desk
        .customer
        .get(&format!("/api/v1/items/{vpn}/messages"))
        .await;
    assert!(
        !seen.to_string().contains(reason),
        "the client never sees a note"
    );

    // Level 2 takes the outage first. Resolving needs an article: this one is new, written
    // with the resolution, and joins the knowledge base.
    let (task, item) = level_3.next_task().await.expect("the outage");
    assert_eq!(item, outage);
    let (status, refused) = submit(
        &level_3,
        &task,
        json!({"outcome": "resolved", "data": {"reply": "Back up."}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        field_errors(&refused),
        [("article".into(), "required".into())]
    );
    let (status, resolved) = submit(
        &level_3,
        &task,
        json!({"outcome": "resolved", "data": {"reply": "Back up: the certificate is renewed."},
               "new_article": {"title": "Portal down after certificate expiry",
                               "body": "Renew the TLS certificate and restart the proxy.",
                               "tags": ["outage", "TLS"]}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["status"], "completed");
    let written = resolved["data"]["article"].as_str().unwrap().to_owned();
    let (_, found) = level_3.get(&format!("/api/v1/articles/{written}")).await;
    assert_eq!(
        (&found["engagement_id"], &found["tags"]),
        (&json!(desk.engagement), &json!(["outage", "tls"]))
    );
    assert_eq!(
        search(&level_3, &desk.engagement, "certificate").await,
        [("Portal down after certificate expiry".to_owned(), written)]
    );

    // The enterprise question goes on to level 3 by hand; level 2 never gets it back.
    let (task, item) = level_3.next_task().await.expect("the SSO question");
    assert_eq!(item, sso);
    level_3
        .submit_ok(
            &task,
            "escalate",
            json!({"reply": "Needs an identity expert."}),
        )
        .await;
    assert_eq!(step_of(&manager, &sso).await, "l3");
    let (task, item) = level_3.next_task().await.expect("the VPN ticket");
    assert_eq!(item, vpn, "not the level-3 question");

    // The resolver finds the article and resolves with it.
    let found = search(&level_3, &desk.engagement, "vpn").await;
    assert_eq!(
        found,
        [("VPN drops every hour".to_owned(), vpn_article.clone())]
    );
    let resolved = level_3
        .submit_ok(
            &task,
            "resolved",
            json!({"reply": "Your VPN client now keeps its lease.", "article": found[0].1}),
        )
        .await;
    assert_eq!(resolved["data"]["article"], json!(vpn_article));

    let (task, item) = level_5.next_task().await.expect("the SSO question");
    assert_eq!(item, sso);
    let (_, found) = level_5
        .get(&format!(
            "/api/v1/engagements/{}/articles?q=sign-on%20AZURE",
            desk.engagement
        ))
        .await;
    assert_eq!(found[0]["id"], json!(sso_article));
    level_5
        .submit_ok(
            &task,
            "resolved",
            json!({"reply": "SSO is on.", "article": sso_article}),
        )
        .await;

    // By elapsed time: a level-1 ticket nobody touches moves up after two business
    // hours; it arrived before opening (at 08:05), so they run 09:00–11:00.
    let (printer, _) = ticket(&desk, "Printer offline", "how_to", "premium").await;
    server.db.advance(SignedDuration::from_mins(174)); // 10:59
    server.store().fire_due_timers().await.unwrap();
    assert_eq!(step_of(&manager, &printer).await, "l1");
    server.db.advance(SignedDuration::from_mins(1)); // 11:00
    server.store().fire_due_timers().await.unwrap();
    assert_eq!(step_of(&manager, &printer).await, "l2");
    let escalation = manager.history_entry(&printer, "step.escalated").await;
    assert_eq!(
        (&escalation["detail"]["step"], &escalation["detail"]["to"]),
        (&json!("l1"), &json!("l2"))
    );
    assert_eq!(level_1.next_task().await, None, "gone from level 1");

    // The day's figures count the handled work: two escalations by hand and three
    // resolutions (the ticket escalated by time was not handled).
    let (status, metrics) = manager
        .get(&format!("/api/v1/metrics?{TEST_DAY}&by=engagement"))
        .await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    let total = |measure| metric_total(&metrics, Some(&desk.engagement), measure);
    assert_eq!(
        (total("arrivals"), total("handled"), total("resolved")),
        (4, 5, 3),
        "{metrics}"
    );
}

async fn the_knowledge_base_is_read_by_the_client_and_written_by_staff(server: TestServer) {
    let desk = helpdesk(&server).await;
    let (_, staff) = agent(&server, desk.client, 1).await;
    let id = article(
        &staff,
        &desk.engagement,
        "Reset a password",
        "Use the portal.",
        &[],
    )
    .await;
    let articles = format!("/api/v1/engagements/{}/articles", desk.engagement);

    // The client's users read, never write.
    assert_eq!(
        search(&desk.customer, &desk.engagement, "password").await,
        [("Reset a password".to_owned(), id.clone())]
    );
    let (status, _) = desk
        .customer
        .post(&articles, json!({"title": "Mine", "body": "b"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = desk
        .customer
        .call(
            Method::PUT,
            &format!("/api/v1/articles/{id}"),
            Some(json!({"title": "Mine", "body": "b"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Every problem of an article is named; tags are keys.
    let (status, refused) = staff
        .post(
            &articles,
            json!({"title": " ", "body": "b", "tags": ["two words"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_errors(&refused),
        [
            ("title".into(), "required".into()),
            ("tags[0]".into(), "invalid".into())
        ]
    );

    // An update may be conditioned on the version read, as items are.
    let path = format!("/api/v1/articles/{id}");
    let update = |version: &str, title: &str| {
        staff
            .request(Method::PUT, &path)
            .header("If-Match", version)
            .json(&json!({"title": title, "body": "Use the portal's reset link.", "tags": ["account"]}))
    };
    let answer = update("\"7\"", "Stale").send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::PRECONDITION_FAILED);
    let answer = update("\"1\"", "Reset a forgotten password")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["etag"], "\"2\"");
    let (_, read) = desk.customer.get(&path).await;
    assert_eq!(
        (&read["title"], &read["version"], &read["tags"]),
        (
            &json!("Reset a forgotten password"),
            &json!(2),
            &json!(["account"])
        )
    );
    assert_eq!(
        search(&desk.customer, &desk.engagement, "FORGOTTEN")
            .await
            .len(),
        1
    );
    assert_eq!(
        staff.get(&format!("{articles}?limit=0")).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

/// Every input, text area and select of a page with an id has a `<label for>` naming it.
fn assert_labelled(html: &str) {
    for tag in ["<input", "<textarea", "<select"] {
        for (at, _) in html.match_indices(tag) {
            let element = &html[at..at + html[at..].find('>').unwrap()];
            if element.contains("type=\"hidden\"") {
                continue;
            }
            let id = element
                .split("id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no id: {element}"));
            assert!(
                html.contains(&format!("<label for=\"{id}\"")),
                "no label for {id}"
            );
        }
    }
}

async fn an_agent_searches_picks_or_writes_an_article_beside_the_task(server: TestServer) {
    let desk = helpdesk(&server).await;
    let (_, agent) = agent(&server, desk.client, 3).await;
    let vpn = article(
        &agent,
        &desk.engagement,
        "VPN drops every hour",
        "Renew the DHCP lease.",
        &["vpn"],
    )
    .await;
    ticket(&desk, "VPN drops", "outage", "standard").await;
    ticket(&desk, "Portal down", "outage", "standard").await;

    let (status, html, task) = agent.submit_form("/work", "/work/next", &[]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(task.starts_with("/work/tasks/"), "{task}");
    assert!(html.contains("id=\"kb-query\""), "{html}");
    assert!(html.contains("id=\"field-article\""));
    assert!(html.contains("id=\"new-article-title\""));
    assert_labelled(&html);

    // A search lists the matching articles, each with a link that fills the field.
    let html = agent.page_ok(&format!("{task}?kb=dhcp")).await;
    let link = format!("{task}?kb=dhcp&#38;article={vpn}");
    assert!(html.contains(&link), "{html}");
    assert!(html.contains("VPN drops every hour"));
    let html = agent.page_ok(&format!("{task}?kb=printer")).await;
    assert!(html.contains("id=\"kb-none\""), "{html}");
    let html = agent
        .page_ok(&format!("{task}?kb=dhcp&article={vpn}"))
        .await;
    assert!(
        html.contains(&format!("name=\"article\" value=\"{vpn}\"")),
        "{html}"
    );
    assert!(html.contains("Chosen article: VPN drops every hour"));

    // The task's form, posted with the outcome `resolved` and `fields`.
    let resolve = async |task: &str, fields: &[(&str, &str)]| {
        let mut form = vec![("outcome", "resolved")];
        form.extend_from_slice(fields);
        agent.submit_form(task, task, &form).await
    };
    // Resolving without an article is refused beside the field, with what was typed.
    let reply = ("reply", "Fixed it.");
    let (status, html, _) = resolve(&task, &[reply]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let error = html.find("id=\"field-article-error\"").unwrap();
    assert!(html[error..].contains("`resolved`"), "{html}");
    assert!(html.contains("Fixed it.</textarea>"));

    // Resolved with the article picked.
    let (_, html, url) = resolve(&task, &[reply, ("article", &vpn)]).await;
    assert_eq!(url, "/work?notice=submitted", "{html}");

    // The next one is resolved with an article written beside the form; a half-written
    // one comes back with its error.
    let (_, _, task) = agent.submit_form("/work", "/work/next", &[]).await;
    let half_written = [
        ("reply", "Back up."),
        (
            "new_article_title",
            "Portal down after a certificate expired",
        ),
    ];
    let (status, html, _) = resolve(&task, &half_written).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let error = html.find("id=\"new-article-body-error\"").unwrap();
    assert!(html[error..].contains("is required"), "{html}");
    assert!(html.contains("value=\"Portal down after a certificate expired\""));
    let written = [
        (
            "new_article_body",
            "Renew the certificate, restart the proxy.",
        ),
        ("new_article_tags", "outage, TLS"),
    ];
    let (_, html, url) = resolve(&task, &[&half_written[..], &written].concat()).await;
    assert_eq!(url, "/work?notice=submitted", "{html}");
    let found = search(&agent, &desk.engagement, "certificate").await;
    assert_eq!(found.len(), 1);
    let (_, written) = agent.get(&format!("/api/v1/articles/{}", found[0].1)).await;
    assert_eq!(written["tags"], json!(["outage", "tls"]));
}

//! A morning of customer support as an engagement runs it: tickets arrive by the API and by
//! the client portal's form and are acknowledged in the definition's words; each goes to an
//! agent with the skill who speaks its language; an agent keeps a note the requester never
//! sees, answers from a canned reply, which stops the first-response clock; a duplicate is
//! merged into the ticket it repeats; tickets are resolved and rated through the
//! requesters' own links; and the day's metrics and dashboard report the handled work, the
//! SLA attainment and the satisfaction.

use delego_core::identity::Role;
use delego_core::values::{Key, Language, Name, SkillLevel};
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::harness::{Session, TEST_DAY, TestServer, metric_total, sla_clock};
use crate::support::link_path;
use crate::web_portal::submit_intake;

crate::on_both_backends!(a_morning_of_support_from_intake_to_merge_resolution_csat_and_metrics);

fn ticket(subject: &str, requester: &str, language: &str) -> Json {
    json!({"data": {
        "subject": subject,
        "description": "The box was crushed and the order is missing a part.",
        "requester_email": requester,
        "channel": "api",
        "category": "problem",
        "language": language,
    }})
}

/// The item's public thread as its client sees it, once `count` messages are there: the
/// runtime delivers notices on its own as well, so a message taken by it may land a moment
/// after `deliver_outgoing` returns.
async fn public_thread(
    server: &TestServer,
    client: &Session,
    item: &str,
    count: usize,
) -> Vec<Json> {
    delego_server::runtime::deliver_outgoing(&server.state)
        .await
        .unwrap();
    for _ in 0..50 {
        let (status, messages) = client.get(&format!("/api/v1/items/{item}/messages")).await;
        assert_eq!(status, StatusCode::OK, "{messages}");
        let messages = messages.as_array().unwrap().clone();
        if messages.len() >= count {
            assert_eq!(messages.len(), count, "{messages:#?}");
            return messages;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{item} never had {count} public messages");
}

fn body(message: &Json) -> &str {
    message["body"].as_str().unwrap()
}

/// An SLA clock's state on the item as `session` reads it.
async fn clock(session: &Session, item: &str, kind: &str) -> String {
    let (_, item) = session.get(&format!("/api/v1/items/{item}")).await;
    sla_clock(&item, kind)
}

/// What a text area of a page holds, as a browser would post it.
fn text_area(html: &str, name: &str) -> String {
    let field = html
        .find(&format!("<textarea id=\"field-{name}\""))
        .unwrap();
    let start = field + html[field..].find('>').unwrap() + 1;
    let end = start + html[start..].find("</textarea>").unwrap();
    html[start..end]
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

async fn claim(agent: &Session) -> (String, String) {
    agent.next_task().await.expect("a task for the agent")
}

async fn submit(agent: &Session, task: &str, outcome: &str, reply: &str) -> Json {
    agent
        .submit_ok(task, outcome, json!({ "reply": reply }))
        .await
}

async fn a_morning_of_support_from_intake_to_merge_resolution_csat_and_metrics(server: TestServer) {
    let acme = server.client("Acme Retail").await;
    let engagement = server.engagement(acme).await;
    let client = server.sign_in(Role::ClientUser, Some(acme), None).await;
    // The floor: Jana answers in English, Peter in Slovak, Eva does billing only.
    let jana = server.worker(&[acme]).await;
    let peter = server
        .worker_like(&[acme], |worker| {
            worker.name = Name::parse("Peter Horváth").unwrap();
            worker.languages = [Language::parse("sk").unwrap()].into();
        })
        .await;
    let eva = server
        .worker_like(&[acme], |worker| {
            worker.skills = [(Key::parse("billing").unwrap(), SkillLevel::new(5).unwrap())].into();
        })
        .await;
    let jana = server.sign_in(Role::Agent, None, Some(jana)).await;
    let peter = server.sign_in(Role::Agent, None, Some(peter)).await;
    let eva = server.sign_in(Role::Agent, None, Some(eva)).await;
    let lead_profile = server.worker(&[acme]).await;
    let lead = server
        .sign_in(Role::TeamLead, None, Some(lead_profile))
        .await
        .stopping_at_redirects();
    let manager = server.sign_in(Role::Manager, None, None).await;

    // 08:00 and 08:02: two tickets through the client's API integration.
    let raise = async |subject, requester, language| {
        let item = client
            .raise(&engagement, ticket(subject, requester, language))
            .await;
        item["id"].as_str().unwrap().to_owned()
    };
    let parcel = raise("Parcel arrived damaged", "jane@customer.example", "en").await;
    server.db.advance(SignedDuration::from_mins(2));
    let order = raise("Objednávka neprišla", "peter@zakaznik.example", "sk").await;
    // 08:05: the same customer writes again through the portal's form, with a photo.
    server.db.advance(SignedDuration::from_mins(3));
    let photo: &[u8] = b"\xff\xd8\xff\xe0 a crushed box";
    let (status, html, location) = submit_intake(
        &client.stopping_at_redirects(),
        &engagement,
        &[
            ("subject", "Damaged parcel, photo attached"),
            ("description", "Here is the box as it came."),
            ("requester_email", "jane@customer.example"),
            ("channel", "web"),
            ("category", "complaint"),
            ("language", "en"),
        ],
        &[("attachments", "box.jpg", "image/jpeg", photo)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let duplicate = location.strip_prefix("/portal/items/").unwrap().to_owned();
    let reference = |item: &str| {
        let id: delego_core::id::WorkItemId = item.parse().unwrap();
        id.reference()
    };
    let (_, shown) = client.get(&format!("/api/v1/items/{parcel}")).await;
    assert_eq!(
        shown["reference"],
        reference(&parcel),
        "the API shows the reference"
    );

    // Each requester is acknowledged in the definition's words, with their reference and a
    // link to add to their request.
    let mut reply_links = Vec::new();
    for (item, subject) in [
        (&parcel, "Parcel arrived damaged"),
        (&order, "Objednávka neprišla"),
        (&duplicate, "Damaged parcel, photo attached"),
    ] {
        let thread = public_thread(&server, &client, item, 1).await;
        let reference = reference(item);
        let expected = format!(
            "We have received your request {reference}\n\n\
             We have received “{subject}” and will answer soon. Your reference is {reference}.\n\
             To add anything, reply here: {}/api/v1/public/replies/",
            server.base
        );
        assert!(body(&thread[0]).starts_with(&expected), "{thread:#?}");
        assert_eq!(thread[0]["author"]["type"], "system");
        let link = link_path(body(&thread[0]), &server.base);
        let (status, view) = server.anonymous().get(&link).await;
        assert_eq!(
            (status, view["subject"].as_str()),
            (StatusCode::OK, Some(subject))
        );
        reply_links.push(link);
    }

    // Routing by skill and language: Eva has no customer-support skill; Peter, who speaks
    // Slovak, gets the Slovak ticket though an English one came first; Jana the oldest
    // English one.
    assert_eq!(eva.next_task().await, None);
    let (peters_task, peters_item) = claim(&peter).await;
    assert_eq!(peters_item, order);
    let (task, item) = claim(&jana).await;
    assert_eq!(item, parcel);

    // 08:09: Peter solves his at once.
    server.db.advance(SignedDuration::from_mins(4));
    let solved = submit(
        &peter,
        &peters_task,
        "resolved",
        "Objednávku sme poslali znova.",
    )
    .await;
    assert_eq!(solved["status"], "completed");
    // Jana keeps a note for the team: no answer to the requester, so the clock runs on.
    let noted = submit(
        &jana,
        &task,
        "noted",
        "Second ticket from this customer about this parcel; courier asked for photos.",
    )
    .await;
    assert_eq!(
        (noted["status"].as_str(), noted["step"].as_str()),
        (Some("active"), Some("answer"))
    );
    assert_eq!(clock(&client, &parcel, "first_response").await, "running");

    // The ticket stays with her; she starts her answer from a canned reply.
    let (task, item) = claim(&jana).await;
    assert_eq!(item, parcel, "kept for the agent who had it");
    let jana_web = jana.stopping_at_redirects();
    let page = format!("/work/tasks/{task}?reply=received");
    let reply = text_area(&jana_web.page_ok(&page).await, "reply");
    assert!(
        reply.starts_with(
            "Hello,\n\nthank you for writing to us about \"Parcel arrived damaged\". We are looking into it"
        ),
        "{reply}"
    );
    // Signed with the agent's own name (the harness names its users so).
    assert!(reply.ends_with("Kind regards,\nTest User"), "{reply}");
    // 08:12: she sends it.
    server.db.advance(SignedDuration::from_mins(3));
    let (status, html, address) = jana_web
        .submit_form(
            &page,
            &format!("/work/tasks/{task}"),
            &[("outcome", "replied"), ("reply", &reply)],
        )
        .await;
    assert_eq!(
        (status, address.as_str()),
        (StatusCode::SEE_OTHER, "/work?notice=submitted"),
        "{html}"
    );
    assert_eq!(clock(&client, &parcel, "first_response").await, "met");
    // The requester and the client see the answer, never the note.
    let thread = public_thread(&server, &client, &parcel, 2).await;
    assert_eq!(body(&thread[1]), reply);
    let (_, requester_view) = server.anonymous().get(&reply_links[0]).await;
    let seen = requester_view["messages"].to_string();
    assert!(
        seen.contains("We are looking into it") && !seen.contains("courier"),
        "{seen}"
    );

    // The lead merges the portal ticket into the first: a mistyped reference comes back
    // beside the field, the right one (as typed, in lower case) merges.
    let floor_page = format!("/items/{duplicate}");
    let merge = format!("/items/{duplicate}/merge");
    let (status, html, _) = lead
        .submit_form(&floor_page, &merge, &[("into", "DEADBEEF")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let error = &html[html.find("id=\"merge-into-error\"").unwrap()..];
    assert!(
        error.starts_with("id=\"merge-into-error\" role=\"alert\">No item of this client has that reference or id."),
        "{error}"
    );
    assert!(
        html.contains("value=\"DEADBEEF\""),
        "what was typed is kept"
    );
    let (status, _, address) = lead
        .submit_form(
            &floor_page,
            &merge,
            &[("into", &reference(&parcel).to_lowercase())],
        )
        .await;
    assert_eq!(
        (status, address),
        (StatusCode::SEE_OTHER, format!("/items/{parcel}"))
    );

    let (_, merged) = client.get(&format!("/api/v1/items/{duplicate}")).await;
    assert_eq!(merged["status"], "cancelled");
    assert_eq!(
        (
            &merged["position"]["reason"],
            &merged["position"]["merged_into"]
        ),
        (&json!("merged"), &json!(parcel))
    );
    // Staff find the whole story on the ticket that stays: the duplicate's messages, marked
    // as its, a note naming it, and its photo.
    let (_, staff_thread) = jana.get(&format!("/api/v1/items/{parcel}/messages")).await;
    let staff_thread = staff_thread.as_array().unwrap();
    let moved: Vec<&Json> = staff_thread
        .iter()
        .filter(|m| m["merged_from"] == json!(duplicate))
        .collect();
    assert_eq!(moved.len(), 1, "{staff_thread:#?}");
    assert!(body(moved[0]).contains("Damaged parcel, photo attached"));
    let note = staff_thread.last().unwrap();
    assert_eq!(note["visibility"], "internal");
    assert!(body(note).contains(&reference(&duplicate)), "{note}");
    let (_, files) = jana
        .get(&format!("/api/v1/items/{parcel}/attachments"))
        .await;
    assert_eq!(files[0]["filename"], "box.jpg", "{files}");
    let floor_view = lead.page_ok(&format!("/items/{parcel}")).await;
    assert!(floor_view.contains(&format!("from {}", reference(&duplicate))));
    // Nobody is offered the duplicate's work any more.
    assert_eq!(jana.next_task().await, None);
    // Its requester is told where the conversation goes on, with a link to it.
    let told = public_thread(&server, &client, &duplicate, 1).await;
    assert!(
        body(&told[0]).starts_with(&format!(
            "Your request {} continues as {}",
            reference(&duplicate),
            reference(&parcel)
        )),
        "{told:#?}"
    );
    let (_, continued) = server
        .anonymous()
        .get(&link_path(body(&told[0]), &server.base))
        .await;
    assert_eq!(continued["subject"], "Parcel arrived damaged");

    // 09:00: the customer answers through the link of her second, merged request: the
    // answer reaches the ticket that stays and sends it back to Jana, who resolves it at
    // 09:02.
    server.db.advance(SignedDuration::from_mins(48));
    let (status, answer) = server
        .anonymous()
        .post(&reply_links[2], json!({"body": "Will you send a new one?"}))
        .await;
    assert_eq!(
        (status, &answer["item_id"]),
        (StatusCode::CREATED, &json!(parcel))
    );
    let (task, item) = claim(&jana).await;
    assert_eq!(item, parcel);
    server.db.advance(SignedDuration::from_mins(2));
    let resolved = submit(&jana, &task, "resolved", "Yes: a new one ships today.").await;
    assert_eq!(resolved["position"]["resolution"], "resolved");
    assert_eq!(clock(&client, &parcel, "resolution").await, "met");

    // Both requesters rate through the link their satisfaction request carries, once.
    for (item, count, rating) in [(&parcel, 6, 5), (&order, 3, 3)] {
        let thread = public_thread(&server, &client, item, count).await;
        let request = thread.last().unwrap();
        assert!(body(request).contains("How did we do with"), "{thread:#?}");
        let link = link_path(body(request), &server.base);
        let (status, rated) = server
            .anonymous()
            .post(&link, json!({"rating": rating, "comment": "Thanks."}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{rated}");
        assert_eq!(
            server.anonymous().post(&link, json!({"rating": 1})).await.0,
            StatusCode::CONFLICT
        );
    }
    let (_, rated) = client.get(&format!("/api/v1/items/{parcel}")).await;
    assert_eq!(
        (&rated["csat"]["rating"], &rated["csat"]["comment"]),
        (&json!(5), &json!("Thanks."))
    );

    // The day as the manager reads it: three arrived, four answers handled, none given up
    // (a merged duplicate is not abandoned), both resolutions within target, CSAT 4 of 5
    // with half satisfied.
    let (status, metrics) = manager.get(&format!("/api/v1/metrics?{TEST_DAY}")).await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    let rows = metrics["rows"].as_array().unwrap();
    let sum = |field| metric_total(&metrics, None, field);
    assert_eq!(
        [
            sum("arrivals"),
            sum("handled"),
            sum("abandoned"),
            sum("resolved"),
            sum("sla_measured"),
            sum("sla_met"),
            sum("csat_responses"),
            sum("csat_sum"),
            sum("csat_satisfied"),
        ],
        [3, 4, 0, 2, 2, 2, 2, 8, 1]
    );
    let nine = rows
        .iter()
        .find(|row| row["start"] == "2026-03-02T09:00:00Z")
        .unwrap();
    assert_eq!(
        (
            &nine["csat_average"],
            &nine["csat_satisfied_share"],
            &nine["sla_attainment"]
        ),
        (&json!(4.0), &json!(0.5), &json!(1.0)),
        "ratings count in the hour they were given"
    );
    // The client reads the same figures of its own service.
    let (_, own) = client
        .get(&format!("/api/v1/metrics?{TEST_DAY}&by=client"))
        .await;
    let own_nine = own["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["start"] == "2026-03-02T09:00:00Z")
        .unwrap();
    assert_eq!(own_nine["csat_average"], 4.0);
    // The dashboard's card for the day says the same.
    let dashboard = manager.page_ok("/dashboard?date=2026-03-02").await;
    let card = &dashboard[dashboard.find("id=\"csat\"").unwrap()..];
    let card = &card[..card.find("</ul>").unwrap()];
    for value in [
        "<span class=\"value\">4.0</span>",
        "<span class=\"value\">50.0%</span>",
        "<span class=\"value\">2</span>",
    ] {
        assert!(card.contains(value), "{value} is missing from {card}");
    }
}

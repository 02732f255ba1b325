//! The telemarketing service as a campaign runs it, through the API: the contact list
//! imported from CSV (a bad row reported), numbers on the client's and on the
//! provider-wide do-not-call list never reaching an agent, dispositions recorded, an
//! unanswered call tried again later, a callback coming back at its time, a contact
//! called only within calling hours in their own time zone (a call still untaken when
//! they close waits for the next day's), and a contact given up after five attempts.

use std::collections::BTreeMap;

use delego_core::identity::Role;
use delego_core::routing::Channel;
use delego_core::values::{Key, SkillLevel};
use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::harness::{Session, TEST_DAY, TestServer};

crate::on_both_backends!(
    a_campaign_calls_its_contacts_within_the_do_not_call_lists_and_the_attempt_cap
);

const TELEMARKETING: &str = include_str!("../../../../catalog/telemarketing.toml");

/// The contact list: row 6 has a number that is none.
const CONTACTS: &str = "contact_name,phone,time_zone,email
Ann Novak,+421 905 000 001,Europe/Bratislava,
Bea Horak,+421 905 000 002,Europe/Bratislava,
Cyril Kral,+421 905 000 003,Europe/Bratislava,cyril@example.com
Emil Zak,+421 905 000 005,Europe/Bratislava,
Dora Nova,call me maybe,Europe/Bratislava,
Fero Mak,+421 905 000 006,Europe/Vienna,
Gita Lenz,+421 905 000 007,Europe/Prague,
Hana Ruiz,+1 212 555 0100,America/New_York,
";

async fn import(session: &Session, engagement: &str, key: &str) -> Json {
    let response = session
        .request(
            Method::POST,
            &format!("/api/v1/engagements/{engagement}/items/import"),
        )
        .header("content-type", "text/csv")
        .header("idempotency-key", key)
        .body(CONTACTS)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Puts a number on a do-not-call list: the client's (`/api/v1/clients/{id}`) or the
/// provider-wide one (`/api/v1`). Keys are E.164, as the `phone` field stores numbers.
async fn do_not_call(session: &Session, scope: &str, number: &str) {
    let number = number.replace('+', "%2B");
    let (status, entry) = session
        .call(
            Method::PUT,
            &format!("{scope}/registers/do_not_call/entries/{number}"),
            Some(json!({"data": {"reason": "asked not to be called"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
}

/// The next call the agent may take: its task and item.
async fn next(agent: &Session) -> Option<(String, String)> {
    let (status, claimed) = agent.post("/api/v1/tasks/next", json!({})).await;
    if status == StatusCode::NO_CONTENT {
        return None;
    }
    assert_eq!(status, StatusCode::OK, "{claimed}");
    Some((
        claimed["task"]["id"].as_str().unwrap().to_owned(),
        claimed["item"]["id"].as_str().unwrap().to_owned(),
    ))
}

/// Every call the agent can take now, by contact, each answered with the disposition
/// `dispose` picks for it.
async fn call_all(
    agent: &Session,
    contacts: &BTreeMap<String, String>,
    mut dispose: impl FnMut(&str) -> (&'static str, Json),
) -> Vec<String> {
    let mut called = Vec::new();
    while let Some((task, item)) = next(agent).await {
        let name = contacts[&item].clone();
        let (outcome, data) = dispose(&name);
        let (status, answer) = agent
            .post(
                &format!("/api/v1/tasks/{task}/submit"),
                json!({"outcome": outcome, "data": data}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name} {outcome}: {answer}");
        called.push(name);
    }
    called.sort();
    called
}

/// Later by `by`, with the timers that fell due fired.
async fn later(server: &TestServer, by: SignedDuration) {
    server.db.advance(by);
    server.store().fire_due_timers().await.unwrap();
}

async fn a_campaign_calls_its_contacts_within_the_do_not_call_lists_and_the_attempt_cap(
    server: TestServer,
) {
    let service = server.store().publish_service(TELEMARKETING).await.unwrap();
    let acme_id = server.client("Acme Energy").await;
    let engagement = server
        .engagement_on(acme_id, "Winter campaign", &service.key, service.version)
        .await;
    let acme = server.sign_in(Role::ClientUser, Some(acme_id), None).await;
    let manager = server.sign_in(Role::Manager, None, None).await;
    let worker = server
        .worker_like(&[acme_id], |worker| {
            worker.skills = [(
                Key::parse("telemarketing").unwrap(),
                SkillLevel::new(2).unwrap(),
            )]
            .into();
            worker.capacity = [(Channel::Voice, 1)].into();
        })
        .await;
    let agent = server.sign_in(Role::Agent, None, Some(worker)).await;

    // Ann asked Acme not to call her; Bea is on the provider's list for every client.
    do_not_call(
        &acme,
        &format!("/api/v1/clients/{acme_id}"),
        "+421905000001",
    )
    .await;
    do_not_call(&manager, "/api/v1", "+421905000002").await;

    // The list: the good rows become contacts, the bad one is reported by row and field.
    let report = import(&acme, &engagement, "winter-list-1").await;
    assert_eq!(report["rows"], 8, "{report}");
    assert_eq!(report["created"], 7, "{report}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["errors"][0]["row"], 6);
    assert_eq!(report["errors"][0]["field"], "phone");
    assert_eq!(report["errors"][0]["code"], "invalid");
    let names: Vec<&str> = CONTACTS
        .lines()
        .map(|line| line.split(',').next().unwrap())
        .collect();
    let mut contacts: BTreeMap<String, String> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let line = row["row"].as_u64().unwrap() as usize;
            (
                row["id"].as_str().unwrap().to_owned(),
                names[line - 1].to_owned(),
            )
        })
        .collect();
    let item = |name: &str| {
        contacts
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| id.clone())
            .unwrap()
    };
    // Sent again with the same key, it makes no contact twice.
    let again = import(&acme, &engagement, "winter-list-1").await;
    assert_eq!(
        (again["created"].as_u64(), again["repeated"].as_u64()),
        (Some(0), Some(7))
    );

    // Neither listed number reaches an agent.
    for name in ["Ann Novak", "Bea Horak"] {
        assert_eq!(manager.position(&item(name)).await, "do_not_call", "{name}");
        let (_, tasks) = manager
            .get(&format!("/api/v1/items/{}/tasks", item(name)))
            .await;
        assert_eq!(tasks.as_array().unwrap().len(), 0, "{name}: {tasks}");
    }

    // Monday 08:00 UTC: 09:00 in central Europe, calling hours; 03:00 in New York, not.
    later(&server, SignedDuration::ZERO).await;
    assert_eq!(manager.position(&item("Hana Ruiz")).await, "calling_window");

    // First round: Emil asks to be called back at 18:00 his time.
    let called = call_all(&agent, &contacts, |name| match name {
        "Emil Zak" => (
            "callback",
            json!({"callback_at": "2026-03-02T18:00:00+01:00", "call_notes": "busy at work"}),
        ),
        "Cyril Kral" => ("no_answer", json!({})),
        _ => ("busy", json!({})),
    })
    .await;
    assert_eq!(called, ["Cyril Kral", "Emil Zak", "Fero Mak", "Gita Lenz"]);
    assert_eq!(manager.position(&item("Emil Zak")).await, "await_callback");
    assert_eq!(manager.position(&item("Cyril Kral")).await, "retry_later");

    // Meanwhile Gita asks Acme never to call her: the next attempt never happens.
    do_not_call(
        &acme,
        &format!("/api/v1/clients/{acme_id}"),
        "+421905000007",
    )
    .await;

    // Nothing is tried again before its time.
    later(&server, SignedDuration::from_mins(90)).await;
    assert!(next(&agent).await.is_none());
    later(&server, SignedDuration::from_mins(30)).await;
    assert_eq!(manager.position(&item("Gita Lenz")).await, "do_not_call");
    let called = call_all(&agent, &contacts, |name| match name {
        "Cyril Kral" => (
            "interested",
            json!({"call_notes": "wants the offer by e-mail"}),
        ),
        _ => ("no_answer", json!({})),
    })
    .await;
    assert_eq!(called, ["Cyril Kral", "Fero Mak"]);
    assert_eq!(manager.position(&item("Cyril Kral")).await, "converted");

    // Fero never answers: after his fifth attempt (16:00) he is given up. Hana's first
    // call comes at 14:00 UTC, 09:00 in New York.
    for attempt in 3..=5 {
        later(&server, SignedDuration::from_hours(2)).await;
        let called = call_all(&agent, &contacts, |name| match name {
            "Hana Ruiz" => ("interested", json!({})),
            _ => ("no_answer", json!({})),
        })
        .await;
        let expected: &[&str] = match attempt {
            4 => &["Fero Mak", "Hana Ruiz"],
            _ => &["Fero Mak"],
        };
        assert_eq!(called, expected, "attempt {attempt}");
    }
    assert_eq!(manager.position(&item("Hana Ruiz")).await, "converted");
    assert_eq!(manager.position(&item("Fero Mak")).await, "unreachable");
    let (_, tasks) = manager
        .get(&format!("/api/v1/items/{}/tasks", item("Fero Mak")))
        .await;
    assert_eq!(tasks.as_array().unwrap().len(), 5, "{tasks}");

    // Emil's callback comes back at 17:00 UTC, not before.
    later(&server, SignedDuration::from_mins(50)).await;
    assert!(next(&agent).await.is_none());
    assert_eq!(manager.position(&item("Emil Zak")).await, "await_callback");
    later(&server, SignedDuration::from_mins(10)).await;
    // He asks never to be called again: his number goes on Acme's list, and a new
    // contact with it ends at once.
    let called = call_all(&agent, &contacts, |_| ("do_not_call", json!({}))).await;
    assert_eq!(called, ["Emil Zak"]);
    assert_eq!(manager.position(&item("Emil Zak")).await, "do_not_call");
    let (status, entry) = acme
        .get(&format!(
            "/api/v1/clients/{acme_id}/registers/do_not_call/entries/%2B421905000005"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["data"]["item"], item("Emil Zak").as_str());
    let (status, again) = acme
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            json!({"data": {"contact_name": "Emil Zak", "phone": "+421 905 000 005", "time_zone": "Europe/Bratislava"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["position"]["resolution"], "do_not_call", "{again}");

    // The campaign's results in the metrics: its dispositions and results, and the rates
    // its service defines over them.
    let (status, metrics) = acme
        .get(&format!("/api/v1/metrics?{TEST_DAY}&by=engagement"))
        .await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    let counted = |map: &str| {
        let mut sums: BTreeMap<String, u64> = BTreeMap::new();
        for row in metrics["rows"].as_array().unwrap() {
            assert_eq!(row["engagement_id"], engagement.as_str());
            for (key, count) in row[map].as_object().unwrap() {
                *sums.entry(key.clone()).or_default() += count.as_u64().unwrap();
            }
        }
        sums
    };
    let expected = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    };
    assert_eq!(
        counted("outcomes"),
        expected(&[
            ("call.busy", 2),
            ("call.callback", 1),
            ("call.interested", 2),
            ("call.do_not_call", 1),
            ("call.no_answer", 5),
        ])
    );
    assert_eq!(
        counted("resolutions"),
        expected(&[("converted", 2), ("do_not_call", 5), ("unreachable", 1),])
    );
    // 4 of 11 calls reached the contact; 2 of the 3 contacts who gave an answer (a
    // callback is none yet) were interested.
    let rate = |key: &str| {
        let rows = metrics["rows"].as_array().unwrap();
        let sum = |part: &str| {
            rows.iter()
                .map(|row| row["rates"][key][part].as_u64().unwrap())
                .sum::<u64>()
        };
        (sum("count"), sum("of"))
    };
    assert_eq!(rate("contact_rate"), (4, 11));
    assert_eq!(rate("conversion"), (2, 3));
    let busiest = metrics["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["rates"]["contact_rate"]["of"] == 4)
        .expect("the first round's hour");
    assert_eq!(busiest["rates"]["contact_rate"]["value"], 0.25, "{busiest}");
    // The floor's dashboard shows them for the day.
    let html = manager.page_ok("/dashboard?date=2026-03-02").await;
    let result = |rate: &str| {
        let start = html
            .find(&format!("data-rate=\"{rate}\""))
            .unwrap_or_else(|| panic!("no {rate} on the dashboard"));
        html[start..start + html[start..].find("</tr>").unwrap()].to_owned()
    };
    assert!(
        result("contact_rate").contains("4 of 11"),
        "{}",
        result("contact_rate")
    );
    assert!(
        result("conversion").contains("2 of 3"),
        "{}",
        result("conversion")
    );

    // A contact added at 19:59 in Bratislava is put in line, but at 20:00 nobody
    // may take the call any more, and it waits for the next morning.
    later(&server, SignedDuration::from_mins(119)).await;
    let (status, late) = acme
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            json!({"data": {"contact_name": "Ivo Blaha", "phone": "+421 905 000 009", "time_zone": "Europe/Bratislava"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{late}");
    let late = late["id"].as_str().unwrap().to_owned();
    later(&server, SignedDuration::ZERO).await;
    assert_eq!(manager.position(&late).await, "call");
    let (_, tasks) = manager.get(&format!("/api/v1/items/{late}/tasks")).await;
    let task = tasks[0]["id"].as_str().unwrap().to_owned();
    later(&server, SignedDuration::from_mins(1)).await;
    assert!(next(&agent).await.is_none(), "a call taken after 20:00");
    let (status, why) = manager
        .get(&format!("/api/v1/tasks/{task}/eligibility?worker={worker}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{why}");
    assert_eq!(why["reason"]["reason"], "outside_hours", "{why}");
    assert_eq!(server.store().close_after_hours().await.unwrap(), 1);
    assert_eq!(manager.position(&late).await, "calling_window");
    let closed = manager.history_entry(&late, "task.after_hours").await;
    assert_eq!(closed["detail"]["step"], "call", "{closed}");
    // 09:00 the next day (08:00 UTC), signed in afresh: the call is taken.
    later(&server, SignedDuration::from_hours(13)).await;
    let agent = server.sign_in(Role::Agent, None, Some(worker)).await;
    contacts.insert(late, "Ivo Blaha".to_owned());
    let called = call_all(&agent, &contacts, |_| ("not_interested", json!({}))).await;
    assert_eq!(called, ["Ivo Blaha"]);
}

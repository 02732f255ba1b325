//! The insurance claims service as an insurer's claims desk runs it, through the API:
//! the client's policy register imported, first notices of loss checked for coverage,
//! fraud rules, adjudication within each adjuster's authority, four-eyes review of large
//! settlements and denials (for fraud too), and the decision letter each claimant receives.

use delego_core::id::ClientId;
use delego_core::identity::Role;
use delego_core::values::{Key, SkillLevel};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::harness::{Session, TEST_DAY, TestServer};

crate::on_both_backends!(
    claims_are_checked_flagged_adjudicated_within_authority_reviewed_and_answered
);

const CLAIMS: &str = include_str!("../../../../catalog/insurance-claims.toml");

/// The client's policies: the test clock starts on 2026-03-02.
const POLICIES: &str = "key,holder,start,end,covered
POL-1,Ann Novak,2025-01-01,2026-12-31,water fire theft
POL-2,Bea Horak,2025-06-01,2026-05-31,water fire
POL-3,Cyril Kral,2025-01-01,2026-12-31,theft
POL-NEW,Dora Nova,2026-02-20,2027-02-19,water
POL-4,Emil Zak,2025-01-01,2026-12-31,water glass
POL-OLD,Fero Mak,2020-01-01,2020-12-31,water
bad row without enough columns
";

fn claim(policy: &str, loss_type: &str, loss_date: &str, amount: &str) -> Json {
    json!({"data": {
        "policy_number": policy,
        "claimant_name": "Ann Novak",
        "claimant_email": "claimant@example.com",
        "loss_date": loss_date,
        "loss_type": loss_type,
        "amount": {"amount": amount, "currency": "EUR"},
        "description": format!("{loss_type} damage"),
    }})
}

/// An adjuster of `client`'s claims at `level`.
async fn adjuster(server: &TestServer, client: ClientId, level: u8) -> Session {
    let worker = server
        .worker_like(&[client], |worker| {
            worker.skills = [(
                Key::parse("claims_handling").unwrap(),
                SkillLevel::new(level).unwrap(),
            )]
            .into();
        })
        .await;
    server.sign_in(Role::Agent, None, Some(worker)).await
}

/// Submits `task` and returns the status: refusals are part of the story.
async fn submit(worker: &Session, task: &str, outcome: &str, data: Json) -> (StatusCode, Json) {
    worker
        .post(
            &format!("/api/v1/tasks/{task}/submit"),
            json!({"outcome": outcome, "data": data}),
        )
        .await
}

/// The letter the claimant got: the last public message, once the outbox delivered it
/// (the runtime delivers on its own too, so it may land a moment later).
async fn letter(server: &TestServer, session: &Session, item: &str, expected: &str) -> String {
    delego_server::runtime::deliver_outgoing(&server.state)
        .await
        .unwrap();
    for _ in 0..50 {
        let (_, messages) = session.get(&format!("/api/v1/items/{item}/messages")).await;
        let last = messages
            .as_array()
            .and_then(|all| all.last())
            .and_then(|message| message["body"].as_str())
            .unwrap_or_default()
            .to_owned();
        if last.contains(expected) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{item} never got a letter saying {expected:?}");
}

async fn claims_are_checked_flagged_adjudicated_within_authority_reviewed_and_answered(
    server: TestServer,
) {
    let service = server.store().publish_service(CLAIMS).await.unwrap();
    let insurer_id = server.client("Union Insurance").await;
    let engagement = server
        .engagement_on(insurer_id, "Home claims", &service.key, service.version)
        .await;
    let insurer = server
        .sign_in(Role::ClientUser, Some(insurer_id), None)
        .await;

    // The insurer keeps its own policy register; a broken row is reported, the rest kept.
    let response = insurer
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/clients/{insurer_id}/registers/policies/import"),
        )
        .header("content-type", "text/csv")
        .body(POLICIES)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let imported: Json = response.json().await.unwrap();
    assert_eq!(imported["imported"], 6, "{imported}");
    assert_eq!(
        imported["errors"].as_array().unwrap().len(),
        1,
        "{imported}"
    );

    let junior = adjuster(&server, insurer_id, 1).await;
    // Level 3: may adjudicate and review, so four eyes is what keeps them off their own.
    let adjuster3 = adjuster(&server, insurer_id, 3).await;
    let reviewer = adjuster(&server, insurer_id, 3).await;
    let senior = adjuster(&server, insurer_id, 4).await;
    let second_senior = adjuster(&server, insurer_id, 4).await;

    // Coverage: no such policy, a loss the policy does not cover, a lapsed policy.
    for (policy, loss_type) in [("POL-X", "water"), ("POL-3", "water"), ("POL-OLD", "water")] {
        let item = insurer
            .raise(
                &engagement,
                claim(policy, loss_type, "2026-02-25", "900.00"),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(insurer.position(&item).await, "not_covered", "{policy}");
        let text = letter(&server, &insurer, &item, "does not cover").await;
        assert!(text.contains(policy), "{text}");
    }

    // A small claim: an adjuster's authority, settled in full without a second person.
    let small = insurer
        .raise(
            &engagement,
            claim("POL-1", "water", "2026-02-25", "1200.00"),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(insurer.position(&small).await, "adjudicate");
    assert!(
        junior.next_task().await.is_none(),
        "level 1 has no authority to adjudicate"
    );
    let (task, item) = adjuster3.next_task().await.unwrap();
    assert_eq!(item, small);
    let (status, refused) = submit(&adjuster3, &task, "settle", json!({})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a settlement needs its amount"
    );
    assert!(
        refused.to_string().contains("settlement_amount"),
        "{refused}"
    );
    adjuster3
        .submit_ok(&task, "settle", json!({"settlement_amount": "1200.00"}))
        .await;
    assert_eq!(insurer.position(&small).await, "approved");
    let text = letter(&server, &insurer, &small, "approved your claim").await;
    assert!(text.contains("EUR 1200.00"), "{text}");

    // A partial settlement above EUR 2,000 waits for a second person, never its author.
    let partial = insurer
        .raise(&engagement, claim("POL-2", "fire", "2026-02-25", "4000.00"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (task, _) = adjuster3.next_task().await.unwrap();
    let settled = json!({"settlement_amount": "2500.00", "decision_reason": "The old carpet was not insured at new value."});
    adjuster3.submit_ok(&task, "settle", settled).await;
    assert_eq!(insurer.position(&partial).await, "review");
    assert!(
        adjuster3.next_task().await.is_none(),
        "four eyes: not the adjuster's own settlement"
    );
    let (review, _) = reviewer.next_task().await.unwrap();
    reviewer.submit_ok(&review, "approve", json!({})).await;
    assert_eq!(insurer.position(&partial).await, "partially_approved");
    let text = letter(&server, &insurer, &partial, "in part").await;
    assert!(
        text.contains("EUR 2500.00") && text.contains("new value"),
        "{text}"
    );

    // Above the adjuster's authority: only a senior may decide, and a denial says why.
    let large = insurer
        .raise(
            &engagement,
            claim("POL-3", "theft", "2026-02-25", "12000.00"),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(insurer.position(&large).await, "adjudicate_senior");
    assert!(
        adjuster3.next_task().await.is_none(),
        "an adjuster's authority ends at EUR 5,000"
    );
    let (task, _) = senior.next_task().await.unwrap();
    assert_eq!(
        submit(&senior, &task, "deny", json!({})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a denial needs its reason"
    );
    let reason =
        json!({"decision_reason": "The bicycle was left unlocked, which the policy excludes."});
    senior.submit_ok(&task, "deny", reason).await;
    // Denying EUR 12,000 takes a second senior, never the one who decided.
    assert_eq!(insurer.position(&large).await, "review_senior_denial");
    assert!(
        senior.next_task().await.is_none(),
        "four eyes on a denial too"
    );
    let (review, _) = second_senior.next_task().await.unwrap();
    second_senior.submit_ok(&review, "approve", json!({})).await;
    assert_eq!(insurer.position(&large).await, "denied");
    let text = letter(&server, &insurer, &large, "not to pay").await;
    assert!(
        text.contains("left unlocked") && text.contains("appeal"),
        "{text}"
    );

    // Fraud rules: a loss nine days after the policy began goes to an investigator.
    let early = insurer
        .raise(
            &engagement,
            claim("POL-NEW", "water", "2026-03-01", "800.00"),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(insurer.position(&early).await, "investigate");
    // The policy the rules read is on the item for the investigator to see.
    let (_, shown) = insurer.get(&format!("/api/v1/items/{early}")).await;
    assert_eq!(shown["facts"]["policy"]["start"], "2026-02-20", "{shown}");
    assert_eq!(shown["facts"]["prior_claims"], 0);
    assert!(
        adjuster3.next_task().await.is_none(),
        "investigations are for seniors"
    );
    let (task, _) = senior.next_task().await.unwrap();
    let findings = json!({"investigation_note": "Pipe photos predate the policy.",
                          "decision_reason": "The damage began before the policy did."});
    senior
        .submit_ok(&task, "fraudulent", findings.clone())
        .await;
    assert_eq!(insurer.position(&early).await, "denied");
    letter(&server, &insurer, &early, "began before the policy").await;
    // A denial for fraud above the threshold waits for a second senior, as any denial.
    let large_early = insurer
        .raise(
            &engagement,
            claim("POL-NEW", "water", "2026-03-01", "3000.00"),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (task, _) = senior.next_task().await.unwrap();
    senior.submit_ok(&task, "fraudulent", findings).await;
    assert_eq!(insurer.position(&large_early).await, "review_fraud_denial");
    assert!(senior.next_task().await.is_none(), "four eyes");
    let (review, _) = second_senior.next_task().await.unwrap();
    second_senior.submit_ok(&review, "approve", json!({})).await;
    assert_eq!(insurer.position(&large_early).await, "denied");

    // ...and so does a third claim on one policy within a year; once cleared, it goes on
    // to an adjuster as any other.
    for loss_type in ["storm", "fire"] {
        let item = insurer
            .raise(
                &engagement,
                claim("POL-4", loss_type, "2026-01-10", "300.00"),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(insurer.position(&item).await, "not_covered");
    }
    let third = insurer
        .raise(&engagement, claim("POL-4", "glass", "2026-02-27", "450.00"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(insurer.position(&third).await, "investigate");
    let (task, _) = senior.next_task().await.unwrap();
    let cleared = json!({"investigation_note": "Three different rooms; all genuine."});
    senior.submit_ok(&task, "cleared", cleared).await;
    assert_eq!(insurer.position(&third).await, "adjudicate");
    let (task, item) = adjuster3.next_task().await.unwrap();
    assert_eq!(item, third);
    adjuster3
        .submit_ok(&task, "settle", json!({"settlement_amount": "450.00"}))
        .await;
    assert_eq!(insurer.position(&third).await, "approved");

    // The insurer's figures for the day: every claim arrived, every one was decided.
    let (status, metrics) = insurer
        .get(&format!("/api/v1/metrics?{TEST_DAY}&by=engagement"))
        .await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    let rows = metrics["rows"].as_array().unwrap();
    let total = |measure: &str| {
        rows.iter()
            .map(|row| row[measure].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(total("arrivals"), 11);
    assert_eq!(total("resolved"), 11);
}

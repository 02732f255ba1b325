//! The agent's workspace in the web UI: presence, the next task, the step's form with its
//! errors beside the fields, canned replies, the agent's day; and that nobody reaches a
//! task that is not theirs.

use delego_core::id::ClientId;
use delego_core::identity::Role;
use reqwest::StatusCode;
use serde_json::json;
use thirtyfour::prelude::*;

use crate::browser::{
    assert_inputs_are_labelled, in_browser, screenshots, sign_in, start_driver, tab_to,
};
use crate::harness::{CUSTOMER_SUPPORT, Session, TestServer};

crate::on_both_backends!(
    an_agent_takes_the_next_task_starts_from_a_canned_reply_and_sends_it,
    a_wrong_value_comes_back_beside_its_field_with_what_was_typed,
    a_break_needs_a_reason_and_stops_taking_tasks,
    a_task_is_only_reachable_by_the_agent_holding_it,
    an_offer_is_accepted_or_rejected_from_the_workspace,
    browser_an_agent_takes_and_submits_a_task_with_the_keyboard_alone,
    an_agent_merges_the_duplicate_in_hand_into_the_ticket_it_repeats,
);

/// A client, its support engagement, an agent cleared for it, and a requester.
struct Floor {
    client: ClientId,
    agent: Session,
    requester: Session,
    engagement: String,
    agent_email: String,
}

async fn floor(server: &TestServer) -> Floor {
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let worker = server.worker(&[client]).await;
    let user = server.user(Role::Agent, None, Some(worker)).await;
    let agent = server.sign_in_as(&user).await;
    let requester = server.sign_in(Role::ClientUser, Some(client), None).await;
    Floor {
        client,
        agent,
        requester,
        engagement,
        agent_email: user.email.to_string(),
    }
}

async fn new_item(floor: &Floor, engagement: &str, subject: &str) -> String {
    let (status, item) = floor
        .requester
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            json!({"data": {"subject": subject, "description": "It broke.",
                            "requester_email": "ann@example.com"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    item["id"].as_str().unwrap().to_owned()
}

async fn an_agent_takes_the_next_task_starts_from_a_canned_reply_and_sends_it(server: TestServer) {
    let floor = floor(&server).await;
    let item = new_item(&floor, &floor.engagement, "Parcel never came").await;

    let (status, html) = floor.agent.page("/work").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"no-tasks\""), "{html}");
    let (status, html, task_url) = floor.agent.submit_form("/work", "/work/next", &[]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(task_url.starts_with("/work/tasks/"), "{task_url}");
    assert!(html.contains("Parcel never came"));
    assert!(html.contains("id=\"field-reply\""));
    // The item's details and its SLA clock are beside the form.
    assert!(html.contains("It broke."));
    assert!(html.contains("data-state=\"running\""), "{html}");

    // A canned reply fills the reply field, placeholders and all.
    let (status, html) = floor
        .agent
        .page(&format!("{task_url}?reply=received"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("about &#34;Parcel never came&#34;")
            || html.contains("about &quot;Parcel never came&quot;"),
        "{html}"
    );
    assert!(html.contains("Test User</textarea>"), "{html}");

    let (status, html, url) = floor
        .agent
        .submit_form(
            &task_url,
            &task_url,
            &[("outcome", "replied"), ("reply", "We found your parcel.")],
        )
        .await;
    assert_eq!(
        (status, url.as_str()),
        (StatusCode::OK, "/work?notice=submitted"),
        "{html}"
    );
    assert!(html.contains("id=\"notice\""));
    assert!(html.contains("id=\"day-handled\">1<"), "{html}");

    // The requester sees the reply; the task is no longer the agent's.
    let (_, messages) = floor
        .requester
        .get(&format!("/api/v1/items/{item}/messages"))
        .await;
    assert!(
        messages.to_string().contains("We found your parcel."),
        "{messages}"
    );
    let (status, _) = floor.agent.page(&task_url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn a_wrong_value_comes_back_beside_its_field_with_what_was_typed(server: TestServer) {
    // Support whose reply is required and short, so that a long one is refused.
    let strict = CUSTOMER_SUPPORT
        .replace("key = \"customer-support\"", "key = \"strict-support\"")
        .replace(
            "{ name = \"reply\", label = \"Reply\", type = \"long_text\", max_length = 50000,",
            "{ name = \"reply\", label = \"Reply\", type = \"long_text\", max_length = 20, required = true,",
        );
    let definition = server.store().publish_service(&strict).await.unwrap();
    let floor = floor(&server).await;
    let key = delego_core::values::Key::parse("strict-support").unwrap();
    let strict_engagement = server
        .engagement_on(floor.client, "Strict", &key, definition.version)
        .await;
    new_item(&floor, &strict_engagement, "Too long an answer").await;
    let (_, _, task_url) = floor.agent.submit_form("/work", "/work/next", &[]).await;

    let typed = "This answer is far longer than twenty characters.";
    let (status, html, _) = floor
        .agent
        .submit_form(
            &task_url,
            &task_url,
            &[("outcome", "replied"), ("reply", typed)],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let error_at = html.find("id=\"field-reply-error\"").unwrap();
    assert!(html[error_at..].contains("20"), "{html}");
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(html.contains(&format!("{typed}</textarea>")), "{html}");
}

async fn a_break_needs_a_reason_and_stops_taking_tasks(server: TestServer) {
    let floor = floor(&server).await;
    let (status, html, _) = floor
        .agent
        .submit_form(
            "/work",
            "/work/presence",
            &[("presence", "break"), ("reason", " ")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Say why you take a break."));

    let (status, html, _) = floor
        .agent
        .submit_form(
            "/work",
            "/work/presence",
            &[("presence", "break"), ("reason", "Lunch")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"presence-break\" name=\"presence\" value=\"break\" checked"));
    assert!(html.contains("value=\"Lunch\""));
    assert!(html.contains("id=\"take-next\" disabled"));
    new_item(&floor, &floor.engagement, "While away").await;
    let (_, html, url) = floor.agent.submit_form("/work", "/work/next", &[]).await;
    assert_eq!(
        url, "/work?notice=no-task",
        "an agent on a break takes no task: {html}"
    );

    let (_, html, _) = floor
        .agent
        .submit_form("/work", "/work/presence", &[("presence", "available")])
        .await;
    assert!(!html.contains("id=\"take-next\" disabled"));
}

async fn a_task_is_only_reachable_by_the_agent_holding_it(server: TestServer) {
    let floor = floor(&server).await;
    new_item(&floor, &floor.engagement, "Mine").await;
    let (_, _, task_url) = floor.agent.submit_form("/work", "/work/next", &[]).await;
    assert!(task_url.starts_with("/work/tasks/"));

    // A colleague cleared for the same client, a manager and the client's user: none of
    // them finds the task in someone else's hands; it looks like an unknown task.
    let colleague_worker = server.worker(&[floor.client]).await;
    let colleague = server
        .sign_in(Role::Agent, None, Some(colleague_worker))
        .await;
    let (_, unknown) = colleague
        .page("/work/tasks/0190a0b0-0000-7000-8000-000000000000")
        .await;
    for session in [&colleague, &floor.requester] {
        let (status, html) = session.page(&task_url).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        if std::ptr::eq(session, &colleague) {
            assert_eq!(html, unknown);
        }
    }
    // Client users and managers without a worker profile have no workspace at all.
    for session in [
        &floor.requester,
        &server.sign_in(Role::Manager, None, None).await,
    ] {
        assert_eq!(session.page("/work").await.0, StatusCode::NOT_FOUND);
    }
    // A form posted without this browser's token changes nothing.
    let (status, _, _) = floor
        .agent
        .post_form(&format!("{task_url}/release"), &[("csrf", "forged")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(floor.agent.page(&task_url).await.0, StatusCode::OK);
}

async fn an_offer_is_accepted_or_rejected_from_the_workspace(server: TestServer) {
    let service = server
        .store()
        .publish_service(&crate::routing::pushed_support())
        .await
        .unwrap();
    let floor = floor(&server).await;
    let pushed = server
        .engagement_on(floor.client, "Pushed", &service.key, service.version)
        .await;
    new_item(&floor, &pushed, "Offered first").await;
    new_item(&floor, &pushed, "Offered second").await;

    server.store().dispatch_offers().await.unwrap();
    let (_, html) = floor.agent.page("/work").await;
    let offer_action = |html: &str, answer: &str| {
        let end = html
            .find(&format!("/{answer}\""))
            .expect("an offer is shown");
        let start = html[..end].rfind("action=\"").unwrap() + "action=\"".len();
        format!("{}/{answer}", &html[start..end])
    };
    assert!(html.contains("id=\"offers\""), "{html}");
    let reject = offer_action(&html, "reject");
    let (_, html, url) = floor.agent.submit_form("/work", &reject, &[]).await;
    assert_eq!(url, "/work");
    let rejected = reject.trim_end_matches("/reject");
    assert!(!html.contains(rejected), "a rejected offer is gone: {html}");

    // The next offer comes once the last one is answered; accepting opens the task.
    server.store().dispatch_offers().await.unwrap();
    let (_, html) = floor.agent.page("/work").await;
    let accept = offer_action(&html, "accept");
    let (status, html, url) = floor.agent.submit_form("/work", &accept, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.starts_with("/work/tasks/"), "{url}");
    assert!(html.contains("Offered"));
    // Answering it again finds it gone, and says so.
    let (_, html, url) = floor.agent.submit_form("/work", &accept, &[]).await;
    assert_eq!(url, "/work?notice=offer-gone");
    assert!(html.contains("no longer open"), "{html}");
}

async fn browser_an_agent_takes_and_submits_a_task_with_the_keyboard_alone(server: TestServer) {
    let Some(driver) = start_driver().await else {
        return;
    };
    let floor = floor(&server).await;
    let item = new_item(&floor, &floor.engagement, "Keyboard only").await;
    let base = server.base.as_str();
    let email = floor.agent_email.as_str();
    in_browser(&driver, "en-US,en", |page| async move {
        sign_in(&page, base, email).await?;
        page.query(By::Id("take-next")).first().await?;
        assert_inputs_are_labelled(&page).await?;
        page.screenshot(&screenshots().join("work-en.png")).await?;

        tab_to(&page, "take-next").await?;
        page.action_chain().send_keys(Key::Enter).perform().await?;
        page.query(By::Id("task-title")).first().await?;
        assert_inputs_are_labelled(&page).await?;
        tab_to(&page, "field-reply").await?;
        page.action_chain()
            .send_keys("Typed without a mouse.")
            .perform()
            .await?;
        page.screenshot(&screenshots().join("task-en.png")).await?;
        tab_to(&page, "outcome-replied").await?;
        page.action_chain().send_keys(Key::Enter).perform().await?;
        let notice = page.query(By::Id("notice")).first().await?;
        assert!(notice.text().await?.contains("Submitted"));
        assert_eq!(page.find(By::Id("day-handled")).await?.text().await?, "1");
        Ok(())
    })
    .await;
    let (_, messages) = floor
        .requester
        .get(&format!("/api/v1/items/{item}/messages"))
        .await;
    assert!(messages.to_string().contains("Typed without a mouse."));
}

async fn an_agent_merges_the_duplicate_in_hand_into_the_ticket_it_repeats(server: TestServer) {
    let floor = floor(&server).await;
    let first = new_item(&floor, &floor.engagement, "Parcel never came").await;
    let duplicate = new_item(&floor, &floor.engagement, "Still no parcel").await;
    floor.agent.submit_form("/work", "/work/next", &[]).await;
    let (_, _, task_url) = floor.agent.submit_form("/work", "/work/next", &[]).await;
    let page = floor.agent.page_ok(&task_url).await;
    assert!(page.contains("Still no parcel") && page.contains("<label for=\"merge-into\">"));

    // Its own reference is refused beside the field, with what was typed.
    let own: delego_core::id::WorkItemId = duplicate.parse().unwrap();
    let merge = format!("{task_url}/merge");
    let (status, html, _) = floor
        .agent
        .submit_form(&task_url, &merge, &[("into", &own.reference())])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(
        html.contains("role=\"alert\">An item cannot be merged into itself.</p>"),
        "{html}"
    );
    assert!(html.contains(&format!("value=\"{}\"", own.reference())));

    // By the other's id it merges; the duplicate's task leaves the agent's hands.
    let (status, html, url) = floor
        .agent
        .submit_form(&task_url, &merge, &[("into", &first)])
        .await;
    assert_eq!(
        (status, url.as_str()),
        (StatusCode::OK, "/work?notice=merged"),
        "{html}"
    );
    assert!(html.contains("Merged: the duplicate"), "{html}");
    assert_eq!(floor.agent.page(&task_url).await.0, StatusCode::NOT_FOUND);
    let (_, merged) = floor
        .requester
        .get(&format!("/api/v1/items/{duplicate}"))
        .await;
    assert_eq!(
        merged["position"]["merged_into"],
        first.as_str(),
        "{merged}"
    );
}

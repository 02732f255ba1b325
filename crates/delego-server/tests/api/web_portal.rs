//! The client portal as a client user meets it: pages asked for as a browser does, forms
//! posted with the page's token (the intake form as multipart/form-data with a file),
//! and one walk through it in a real browser.

use delego_core::id::{ClientId, WorkerId};
use delego_core::identity::Role;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value as Json, json};
use thirtyfour::prelude::*;

use crate::browser::{
    assert_inputs_are_labelled, in_browser, screenshots, sign_in, start_driver, tab_to,
};
use crate::harness::{Session, TestServer, csrf_of, input_value};

crate::on_both_backends!(
    a_client_user_submits_an_item_with_a_file_and_finds_it_listed_shown_and_downloadable,
    a_form_missing_a_required_field_comes_back_with_the_error_beside_it_and_the_values_kept,
    a_search_finds_items_by_subject_or_reference_and_the_status_filter_narrows_the_list,
    another_clients_item_an_unknown_item_and_a_malformed_id_give_the_same_not_found_page,
    a_reply_reaches_the_thread_an_internal_note_does_not_and_the_resolved_item_is_rated_once,
    a_client_user_submits_and_follows_an_item_in_the_browser,
);

/// A user signed in to a browser that leaves redirects unfollowed, so that each answer
/// can be checked.
async fn signed_in(
    server: &TestServer,
    role: Role,
    client: Option<ClientId>,
    worker: Option<WorkerId>,
) -> Session {
    let session = server.sign_in(role, client, worker).await;
    session.stopping_at_redirects()
}

/// Fills in the intake form of `engagement` as a fresh page gives it.
pub(crate) async fn submit_intake(
    session: &Session,
    engagement: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &str, &[u8])],
) -> (StatusCode, String, String) {
    let form = intake_form(session, engagement).await;
    post_intake(session, engagement, &form, fields, files).await
}

/// The intake form's hidden fields: its token and its submission.
async fn intake_form(session: &Session, engagement: &str) -> [(&'static str, String); 2] {
    let html = session
        .page_ok(&format!("/portal/engagements/{engagement}/new"))
        .await;
    [
        ("csrf", csrf_of(&html)),
        ("submission", input_value(&html, "submission")),
    ]
}

/// Posts the intake form as multipart/form-data, as a browser sends it: the hidden
/// fields, then `fields`, then `files` as (field, name, type, content).
async fn post_intake(
    session: &Session,
    engagement: &str,
    hidden_fields: &[(&'static str, String); 2],
    fields: &[(&str, &str)],
    files: &[(&str, &str, &str, &[u8])],
) -> (StatusCode, String, String) {
    let path = format!("/portal/engagements/{engagement}/new");
    let boundary = "delego-test-boundary-7f3a";
    let mut body = Vec::new();
    let texts = hidden_fields
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .chain(fields.iter().copied());
    for (name, value) in texts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, filename, content_type, content) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                 Content-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let request = session
        .request(Method::POST, &path)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body);
    session.browse(request).await
}

/// The address of the link with `id`, as a browser reads it.
fn href_of(html: &str, id: &str) -> String {
    let marker = "href=\"";
    let link = html.find(&format!("id=\"{id}\"")).unwrap();
    let start = html[..link].rfind(marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].replace("&#38;", "&")
}

/// The reference the pages show for an item: its id's last 8 digits.
fn reference(id: &str) -> String {
    id[id.len() - 8..].to_uppercase()
}

fn ticket(subject: &str) -> Json {
    json!({"data": {
        "subject": subject,
        "description": "The parcel arrived with a broken seal.",
        "requester_email": "jane@customer.example",
        "language": "en",
    }})
}

const TICKET_FIELDS: &[(&str, &str)] = &[
    ("subject", "Broken seal"),
    ("description", "The parcel arrived with a broken seal."),
    ("requester_email", "jane@customer.example"),
    ("channel", "web"),
    ("category", "problem"),
    ("language", "en"),
];

async fn a_client_user_submits_an_item_with_a_file_and_finds_it_listed_shown_and_downloadable(
    server: TestServer,
) {
    let acme = server.client("Acme Retail").await;
    let engagement = server.engagement(acme).await;
    let portal = signed_in(&server, Role::ClientUser, Some(acme), None).await;

    let list = portal.page_ok("/portal").await;
    assert!(
        list.contains(&format!("href=\"/portal/engagements/{engagement}/new\"")),
        "{list}"
    );
    assert!(list.contains("id=\"no-items\""));

    let receipt = b"Order 1234, paid 2026-11-20.\n";
    let form = intake_form(&portal, &engagement).await;
    let upload: &[(&str, &str, &str, &[u8])] =
        &[("attachments", "receipt.txt", "text/plain", receipt)];
    let (status, html, location) =
        post_intake(&portal, &engagement, &form, TICKET_FIELDS, upload).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let id = location.strip_prefix("/portal/items/").unwrap().to_owned();

    // The item holds the stored file in its attachment field, as if sent through the API.
    let (_, item) = portal.get(&format!("/api/v1/items/{id}")).await;
    let files = item["data"]["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{item}");
    let file = files[0].as_str().unwrap();

    let page = portal.page_ok(&location).await;
    assert!(
        page.contains("<h1 id=\"subject\">Broken seal</h1>"),
        "{page}"
    );
    assert!(page.contains(&reference(&id)));
    assert!(page.contains("data-stage=\"received\">Received"), "{page}");
    let link = format!("/api/v1/attachments/{file}/content");
    assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    assert!(page.contains("receipt.txt"));
    assert!(page.contains("The parcel arrived with a broken seal."));

    let download = portal.request(Method::GET, &link).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().as_ref(), receipt);

    let list = portal.page_ok("/portal").await;
    assert!(list.contains(&format!("href=\"{location}\"")), "{list}");
    assert!(list.contains("Broken seal") && list.contains(&reference(&id)));
    assert!(
        list.contains(">Support<"),
        "the engagement is named: {list}"
    );

    // The same form posted again (a second click) finds the item made by the first,
    // and stores its file only once.
    let (status, _, again) = post_intake(&portal, &engagement, &form, TICKET_FIELDS, upload).await;
    assert_eq!((status, again), (StatusCode::SEE_OTHER, location));
    let (_, all) = portal.get("/api/v1/items").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let (_, stored) = portal.get(&format!("/api/v1/items/{id}/attachments")).await;
    assert_eq!(stored.as_array().unwrap().len(), 1, "{stored}");
    assert_ne!(
        intake_form(&portal, &engagement).await[1].1,
        form[1].1,
        "each form its own"
    );
}

async fn a_form_missing_a_required_field_comes_back_with_the_error_beside_it_and_the_values_kept(
    server: TestServer,
) {
    let acme = server.client("Acme Retail").await;
    let engagement = server.engagement(acme).await;
    let portal = signed_in(&server, Role::ClientUser, Some(acme), None).await;

    let without_description: Vec<(&str, &str)> = TICKET_FIELDS
        .iter()
        .copied()
        .filter(|(name, _)| *name != "description")
        .collect();
    let (status, html, _) = submit_intake(
        &portal,
        &engagement,
        &without_description,
        &[("attachments", "receipt.txt", "text/plain", b"kept back")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let description = html.find("id=\"field-description\"").unwrap();
    let control = &html[description..description + html[description..].find('>').unwrap()];
    assert!(control.contains("aria-invalid=\"true\""), "{control}");
    let error = html.find("id=\"field-description-error\"").unwrap();
    let error = &html[error..error + html[error..].find("</p>").unwrap()];
    assert!(
        !error.contains("hidden") && error.contains("required"),
        "{error}"
    );
    assert!(
        html.contains("value=\"Broken seal\""),
        "the subject is kept"
    );
    assert!(html.contains("value=\"jane@customer.example\""));
    assert!(
        html.contains("<option selected>problem</option>"),
        "the category is kept"
    );
    assert!(html.contains("id=\"form-errors\"") && html.contains("id=\"choose-again\""));
    // Only the description is wrong.
    assert_eq!(html.matches("aria-invalid=\"true\"").count(), 1, "{html}");

    // Nothing was stored: no item, no file.
    let (_, all) = portal.get("/api/v1/items").await;
    assert!(all["items"].as_array().unwrap().is_empty());
    // (The blob store keeps `tmp/` for files being written; anything else is a file.)
    let stored = std::fs::read_dir(server.data_dir.path().join("attachments"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().file_name() != "tmp")
        .count();
    assert_eq!(stored, 0, "no file is kept for a refused form");

    // A file of a type the upload refuses is named beside its field, before anything is
    // stored.
    let (status, html, _) = submit_intake(
        &portal,
        &engagement,
        TICKET_FIELDS,
        &[(
            "attachments",
            "tool.exe",
            "application/octet-stream",
            b"MZ\x90\0",
        )],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = html.find("id=\"field-attachments-error\"").unwrap();
    assert!(
        html[error..]
            .starts_with("id=\"field-attachments-error\" role=\"alert\">Files like “tool.exe”"),
        "{html}"
    );
    let (_, all) = portal.get("/api/v1/items").await;
    assert!(all["items"].as_array().unwrap().is_empty());
}

async fn a_search_finds_items_by_subject_or_reference_and_the_status_filter_narrows_the_list(
    server: TestServer,
) {
    let acme = server.client("Acme Retail").await;
    let globex = server.client("Globex Bank").await;
    let engagement = server.engagement(acme).await;
    let globex_engagement = server.engagement(globex).await;
    let portal = signed_in(&server, Role::ClientUser, Some(acme), None).await;
    let globex_user = signed_in(&server, Role::ClientUser, Some(globex), None).await;
    let mut ids = Vec::new();
    for subject in ["Broken seal", "Card blocked", "Invoice 50% wrong"] {
        let (status, item) = portal
            .post(
                &format!("/api/v1/engagements/{engagement}/items"),
                ticket(subject),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{item}");
        ids.push(item["id"].as_str().unwrap().to_owned());
    }
    let (status, _) = globex_user
        .post(
            &format!("/api/v1/engagements/{globex_engagement}/items"),
            ticket("Broken seal at Globex"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let everything = portal.page_ok("/portal").await;
    let order: Vec<usize> = ["Invoice 50% wrong", "Card blocked", "Broken seal"]
        .iter()
        .map(|subject| everything.find(subject).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "newest first");
    assert!(
        !everything.contains("Globex"),
        "another client's items are not listed"
    );

    let found = portal.page_ok("/portal?q=SEAL").await;
    assert!(found.contains("Broken seal"), "{found}");
    assert!(!found.contains("Card blocked") && !found.contains("at Globex"));
    assert!(
        found.contains("value=\"SEAL\""),
        "the search is kept in its box"
    );

    // Wildcards are text: 50% is not "50 and anything".
    let found = portal.page_ok("/portal?q=50%25").await;
    assert!(found.contains("Invoice 50% wrong") && !found.contains("Broken seal"));

    let by_reference = portal
        .page_ok(&format!("/portal?q={}", reference(&ids[1])))
        .await;
    assert!(by_reference.contains("Card blocked"), "{by_reference}");
    assert!(!by_reference.contains("Broken seal") && !by_reference.contains("Invoice"));

    let none = portal.page_ok("/portal?q=parcel+tracking").await;
    assert!(none.contains("id=\"no-items\"") && none.contains("No request matches."));

    // All three wait for an agent; none waits for the client.
    let waiting = portal.page_ok("/portal?status=waiting").await;
    assert!(waiting.contains("id=\"no-items\""));
    let open = portal.page_ok("/portal?status=active&q=card").await;
    assert!(open.contains("Card blocked") && !open.contains("Broken seal"));
    assert!(
        open.contains("<option value=\"active\" selected>"),
        "{open}"
    );

    // A page holds 25; the next keeps the filter and goes on with the older ones.
    for n in 0..23 {
        let (status, _) = portal
            .post(
                &format!("/api/v1/engagements/{engagement}/items"),
                ticket(&format!("Filler {n}")),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let first = portal.page_ok("/portal?status=active").await;
    assert_eq!(first.matches("class=\"portal-subject\"").count(), 25);
    assert!(!first.contains("Broken seal") && !first.contains("id=\"first-page\""));
    let next = href_of(&first, "next-page");
    assert!(
        next.starts_with("/portal?q=&status=active&after="),
        "{next}"
    );
    let second = portal.page_ok(&next).await;
    assert_eq!(second.matches("class=\"portal-subject\"").count(), 1);
    assert!(second.contains("Broken seal") && second.contains("id=\"first-page\""));
    assert!(!second.contains("id=\"next-page\""));

    // The API searches the same way.
    let (status, page) = portal.get("/api/v1/items?q=seal").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let subjects: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["data"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["Broken seal"]);
}

async fn another_clients_item_an_unknown_item_and_a_malformed_id_give_the_same_not_found_page(
    server: TestServer,
) {
    let acme = server.client("Acme Retail").await;
    let globex = server.client("Globex Bank").await;
    server.engagement(acme).await;
    let globex_engagement = server.engagement(globex).await;
    let portal = signed_in(&server, Role::ClientUser, Some(acme), None).await;
    let globex_user = signed_in(&server, Role::ClientUser, Some(globex), None).await;
    let (_, item) = globex_user
        .post(
            &format!("/api/v1/engagements/{globex_engagement}/items"),
            ticket("Card blocked"),
        )
        .await;
    let foreign = item["id"].as_str().unwrap();
    assert_eq!(
        globex_user
            .page(&format!("/portal/items/{foreign}"))
            .await
            .0,
        StatusCode::OK
    );

    let unknown = uuid::Uuid::now_v7().to_string();
    let mut bodies = Vec::new();
    for path in [
        format!("/portal/items/{foreign}"),
        format!("/portal/items/{unknown}"),
        "/portal/items/not-an-id".to_owned(),
        format!("/portal/engagements/{globex_engagement}/new"),
        "/portal/nowhere".to_owned(),
    ] {
        let (status, html) = portal.page(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        bodies.push(html);
    }
    // Posting to another client's item finds nothing either, whatever was posted.
    let (status, html, _) = portal
        .submit_form(
            "/portal",
            &format!("/portal/items/{foreign}/reply"),
            &[("body", "Hello?")],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    bodies.push(html);
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "{bodies:#?}"
    );
    assert!(!bodies[0].contains("Card blocked") && !bodies[0].contains(foreign));

    // The portal is the client users' alone.
    let worker = server.worker(&[acme]).await;
    let agent = signed_in(&server, Role::Agent, None, Some(worker)).await;
    let (status, html) = agent.page("/portal").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(html, bodies[0]);
    let manager = signed_in(&server, Role::Manager, None, None).await;
    assert_eq!(
        manager.page(&format!("/portal/items/{foreign}")).await.0,
        StatusCode::NOT_FOUND
    );
}

/// Claims the next task as `agent` and submits it with `outcome` and a reply.
async fn answer(agent: &Session, outcome: &str, reply: &str) -> Json {
    let (task, _) = agent.next_task().await.expect("a task for the agent");
    agent
        .submit_ok(&task, outcome, json!({ "reply": reply }))
        .await
}

async fn a_reply_reaches_the_thread_an_internal_note_does_not_and_the_resolved_item_is_rated_once(
    server: TestServer,
) {
    let acme = server.client("Acme Retail").await;
    let engagement = server.engagement(acme).await;
    let portal = signed_in(&server, Role::ClientUser, Some(acme), None).await;
    let worker = server.worker(&[acme]).await;
    let agent = server.sign_in(Role::Agent, None, Some(worker)).await;
    let (_, item) = portal
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            ticket("Broken seal"),
        )
        .await;
    let id = item["id"].as_str().unwrap().to_owned();
    let path = format!("/portal/items/{id}");

    let (status, _) = agent
        .post(
            &format!("/api/v1/items/{id}/messages"),
            json!({"visibility": "internal", "body": "Customer is a VIP."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    answer(&agent, "replied", "Sorry! Which colour was the parcel?").await;
    delego_server::runtime::deliver_outgoing(&server.state)
        .await
        .unwrap();

    let page = portal.page_ok(&path).await;
    assert!(
        page.contains("Sorry! Which colour was the parcel?"),
        "{page}"
    );
    assert!(
        !page.contains("VIP"),
        "internal notes stay with the provider"
    );
    assert!(
        page.contains("data-stage=\"waiting\">Waiting for you"),
        "{page}"
    );
    assert!(page.contains("aria-current=\"step\""));
    assert!(
        !page.contains("id=\"rating-form\""),
        "no survey before the item is resolved"
    );

    // An empty reply comes back with its error; a real one joins the thread.
    let (status, html, _) = portal
        .submit_form(&path, &format!("{path}/reply"), &[("body", "  ")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Write a reply of 1 to 50,000 characters."));
    let (status, html, sent) = portal
        .submit_form(&path, &format!("{path}/reply"), &[("body", "It was blue.")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(sent, format!("{path}?done=reply"));
    let page = portal.page_ok(&format!("{path}?done=reply")).await;
    assert!(page.contains("Your reply is sent."));
    let reply = page.find("It was blue.").unwrap();
    let message = &page[page[..reply].rfind("<li").unwrap()..reply];
    assert!(
        message.starts_with("<li class=\"portal-mine\">")
            && message.contains("<strong>You</strong>"),
        "{message}"
    );
    assert!(
        page.contains("data-stage=\"in-progress\">In progress"),
        "the reply moved the item on: {page}"
    );
    let (_, thread) = agent.get(&format!("/api/v1/items/{id}/messages")).await;
    assert!(
        thread
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["body"] == "It was blue." && m["visibility"] == "public")
    );

    // Resolved: the survey, answered once.
    answer(&agent, "resolved", "A new parcel is on its way.").await;
    let page = portal.page_ok(&path).await;
    assert!(page.contains("data-stage=\"resolved\">Resolved"));
    assert!(page.contains("id=\"rating-form\"") && page.contains("<legend>"));
    for n in 1..=5 {
        assert!(
            page.contains(&format!("<label for=\"rating-{n}\">")),
            "{page}"
        );
    }
    assert!(
        !page.contains("id=\"reply-form\""),
        "a finished item takes no replies"
    );
    let (status, html, _) = portal
        .submit_form(&path, &format!("{path}/rating"), &[("comment", "Quick!")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Choose a rating from 1 to 5.") && html.contains("Quick!"));
    let (status, html, _) = portal
        .submit_form(
            &path,
            &format!("{path}/rating"),
            &[("rating", "4"), ("comment", "Quick and kind.")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let csat = server
        .store()
        .csat(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (csat.rating, csat.comment.as_deref()),
        (4, Some("Quick and kind."))
    );
    let page = portal.page_ok(&path).await;
    assert!(
        page.contains("id=\"rating-given\">You rated this request “4 – well”"),
        "{page}"
    );
    assert!(!page.contains("id=\"rating-form\""));
    let (status, page, _) = portal
        .submit_form(&path, &format!("{path}/rating"), &[("rating", "1")])
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "an item is rated once");
    assert!(
        page.contains("id=\"rating-given\">You rated this request “4 – well”"),
        "the page says what was rated: {page}"
    );
}

async fn a_client_user_submits_and_follows_an_item_in_the_browser(server: TestServer) {
    let Some(driver) = start_driver().await else {
        return;
    };
    let acme = server.client("Acme Retail").await;
    let globex = server.client("Globex Bank").await;
    let engagement = server.engagement(acme).await;
    let globex_engagement = server.engagement(globex).await;
    let globex_user = server.sign_in(Role::ClientUser, Some(globex), None).await;
    let (_, foreign) = globex_user
        .post(
            &format!("/api/v1/engagements/{globex_engagement}/items"),
            ticket("Card blocked"),
        )
        .await;
    let foreign = foreign["id"].as_str().unwrap().to_owned();
    let user = server.user(Role::ClientUser, Some(acme), None).await;
    let worker = server.worker(&[acme]).await;
    let agent = server.sign_in(Role::Agent, None, Some(worker)).await;
    let files = tempfile::tempdir().unwrap();
    let receipt = files.path().join("receipt.txt");
    std::fs::write(&receipt, "Order 1234\n").unwrap();

    let (base, email, server, agent) = (server.base.as_str(), user.email.as_str(), &server, &agent);
    let (engagement, foreign, receipt) = (&engagement, &foreign, &receipt);
    in_browser(&driver, "en-US,en", |page| async move {
        sign_in(&page, base, email).await?;
        page.query(By::Id("new-requests")).first().await?;
        assert_inputs_are_labelled(&page).await?;

        // Keyboard alone, from the list to the form and through it.
        tab_to(&page, &format!("new-{engagement}")).await?;
        page.action_chain().send_keys(Key::Enter).perform().await?;
        page.query(By::Id("intake")).first().await?;
        assert_inputs_are_labelled(&page).await?;
        for (field, text) in [
            ("field-subject", "Broken seal"),
            ("field-description", "The parcel arrived with a broken seal."),
            ("field-requester_email", "jane@customer.example"),
        ] {
            tab_to(&page, field).await?;
            page.action_chain().send_keys(text).perform().await?;
        }
        // A file is chosen by handing the control its path, as a file dialog would.
        page.find(By::Id("field-attachments"))
            .await?
            .send_keys(receipt.display().to_string())
            .await?;
        page.screenshot(&screenshots().join("portal-new-en.png")).await?;
        tab_to(&page, "submit").await?;
        page.action_chain().send_keys(Key::Enter).perform().await?;

        let subject = page.query(By::Id("subject")).first().await?;
        assert_eq!(subject.text().await?, "Broken seal");
        assert_eq!(page.find(By::Id("status")).await?.text().await?, "Received");
        let file = page.find(By::Css("#files a")).await?;
        assert_eq!(file.text().await?, "receipt.txt");
        page.screenshot(&screenshots().join("portal-item-en.png")).await?;
        let item_url = page.current_url().await?;

        // The agent answers; the page shows it once reloaded.
        answer(agent, "replied", "Which colour was the parcel?").await;
        delego_server::runtime::deliver_outgoing(&server.state).await.unwrap();
        page.refresh().await?;
        assert_eq!(page.query(By::Id("status")).first().await?.text().await?, "Waiting for you");
        let steps = page.find_all(By::Css("#progress li")).await?;
        let mut states = Vec::new();
        for step in &steps {
            states.push(step.attr("data-state").await?.unwrap_or_default());
        }
        assert_eq!(states, ["done", "done", "current", "next"]);
        let current = page.find(By::Css("#progress li[aria-current=step]")).await?;
        assert!(current.text().await?.contains("Waiting for you"));
        let thread = page.find(By::Id("thread")).await?.text().await?;
        assert!(thread.contains("Which colour was the parcel?"), "{thread}");
        assert_inputs_are_labelled(&page).await?;
        page.screenshot(&screenshots().join("portal-item-answered-en.png")).await?;

        // Another client's item looks exactly like one that does not exist.
        page.goto(format!("{base}/portal/items/{foreign}")).await?;
        let foreign_page = page.source().await?;
        page.goto(format!("{base}/portal/items/{}", uuid::Uuid::now_v7())).await?;
        assert_eq!(page.source().await?, foreign_page);
        assert!(!foreign_page.contains("Card blocked"));
        page.screenshot(&screenshots().join("portal-not-found-en.png")).await?;

        page.goto(format!("{base}/portal")).await?;
        let listed = page.query(By::Css("#items li")).first().await?.text().await?;
        assert!(listed.contains("Broken seal") && listed.contains("Waiting for you"), "{listed}");
        page.screenshot(&screenshots().join("portal-list-en.png")).await?;

        // And on a phone-sized window the item page still reads top to bottom.
        page.set_window_rect(0, 0, 390, 844).await?;
        page.goto(item_url.as_str()).await?;
        page.query(By::Id("thread")).first().await?;
        page.screenshot(&screenshots().join("portal-item-phone-en.png")).await?;
        let overflow = page
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                Vec::new(),
            )
            .await?;
        assert_eq!(overflow.json(), &json!(0), "nothing runs off a phone's screen");
        Ok(())
    })
    .await;
}

//! The admin area of the web UI as a browser meets it: pages fetched as HTML, forms
//! posted with the page's token, and what they change read back through the API.

use delego_core::identity::Role;
use reqwest::StatusCode;
use serde_json::Value as Json;
use thirtyfour::prelude::*;

use crate::browser::{
    assert_inputs_are_labelled, in_browser, screenshots, sign_in, start_driver, tab_to,
};
use crate::harness::{PASSWORD, Session, TestServer, csrf_of};

crate::on_both_backends!(
    an_admin_adds_a_client_an_engagement_a_worker_and_a_user_through_the_forms,
    problems_are_shown_beside_their_fields_and_the_form_keeps_what_was_typed,
    a_token_is_shown_once_works_as_a_bearer_token_and_is_revoked,
    only_admins_and_managers_find_the_admin_pages_and_only_admins_add_users,
    a_post_without_the_page_token_is_refused_and_changes_nothing,
    an_admin_adds_a_client_with_the_keyboard_in_the_browser,
);

const PAGES: [&str; 6] = [
    "/admin",
    "/admin/clients",
    "/admin/engagements",
    "/admin/workers",
    "/admin/users",
    "/admin/tokens",
];

/// Posts `fields` to the list at `path` and expects to land back on it, told it is done:
/// the HTML.
async fn add(session: &Session, path: &str, fields: &[(&str, &str)]) -> String {
    let (status, html, landed) = session.post_form(path, fields).await;
    let done = format!("{path}?done=true");
    assert_eq!(
        (status, landed.as_str()),
        (StatusCode::OK, done.as_str()),
        "{html}"
    );
    html
}

fn named<'a>(list: &'a Json, key: &str, value: &str) -> &'a Json {
    list.as_array()
        .unwrap()
        .iter()
        .find(|entry| entry[key] == value)
        .unwrap_or_else(|| panic!("no {key} {value} in {list}"))
}

async fn an_admin_adds_a_client_an_engagement_a_worker_and_a_user_through_the_forms(
    server: TestServer,
) {
    let admin = server.sign_in(Role::Admin, None, None).await;
    let (status, overview) = admin.page("/admin").await;
    assert_eq!(status, StatusCode::OK);
    for link in &PAGES[1..] {
        assert!(overview.contains(&format!(r#"href="{link}""#)), "{link}");
    }

    let token = csrf_of(&admin.page_ok("/admin/clients").await);
    let html = add(
        &admin,
        "/admin/clients",
        &[("csrf", &token), ("name", "Acme Retail")],
    )
    .await;
    assert!(html.contains(r#"id="notice""#) && html.contains("Acme Retail"));
    let (_, clients) = admin.get("/api/v1/clients").await;
    let acme = named(&clients, "name", "Acme Retail")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (_, services) = admin.get("/api/v1/services").await;
    let version = named(&services, "key", "customer-support")["version"].clone();
    let service = format!("customer-support:{version}");
    let (_, form) = admin.page("/admin/engagements").await;
    assert!(form.contains(&format!(r#"value="{service}""#)), "{form}");
    let html = add(
        &admin,
        "/admin/engagements",
        &[
            ("csrf", &token),
            ("client_id", &acme),
            ("service", &service),
            ("name", "Acme support"),
        ],
    )
    .await;
    let (_, engagements) = admin.get("/api/v1/engagements").await;
    let engagement = named(&engagements, "name", "Acme support");
    assert_eq!(engagement["client_id"], acme.as_str());
    assert_eq!(engagement["service_key"], "customer-support");
    assert_eq!(engagement["service_version"], version);
    let row = html.split("Acme support").next().unwrap();
    let shown = format!("Customer support, version {version}");
    assert!(
        row.contains("Acme Retail") && row.contains(&shown),
        "{html}"
    );

    let html = add(
        &admin,
        "/admin/workers",
        &[
            ("csrf", &token),
            ("name", "Eva Malá"),
            ("team", "billing-nights"),
            ("skills", "customer_support:3, billing:2"),
            ("languages", "en, sk"),
            ("clearances", &acme),
            ("capacity_voice", ""),
            ("capacity_chat", "3"),
            ("capacity_email", "5"),
            ("capacity_back_office", ""),
        ],
    )
    .await;
    for shown in [
        "Eva Malá",
        "billing-nights",
        "customer_support: 3",
        "en, sk",
        "offline",
    ] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    let (_, workers) = admin.get("/api/v1/workers").await;
    let worker = named(&workers, "name", "Eva Malá");
    assert_eq!(
        worker["skills"],
        serde_json::json!({"billing": 2, "customer_support": 3})
    );
    assert_eq!(worker["languages"], serde_json::json!(["en", "sk"]));
    assert_eq!(worker["clearances"], serde_json::json!([acme]));
    assert_eq!(
        worker["capacity"],
        serde_json::json!({"chat": 3, "email": 5})
    );
    assert_eq!(worker["team"], "billing-nights");
    let worker_id = worker["id"].as_str().unwrap().to_owned();

    let password = "a long initial password";
    let html = add(
        &admin,
        "/admin/users",
        &[
            ("csrf", &token),
            ("email", "eva@example.com"),
            ("name", "Eva Malá"),
            ("role", "agent"),
            ("client_id", ""),
            ("worker_id", &worker_id),
            ("password", password),
        ],
    )
    .await;
    assert!(html.contains("eva@example.com"));
    let (_, users) = admin.get("/api/v1/users").await;
    let user = named(&users, "email", "eva@example.com");
    assert_eq!(user["role"], "agent");
    assert_eq!(user["worker_id"], worker_id.as_str());
    // The new user signs in with the password the admin gave.
    let (status, _) = server
        .anonymous()
        .post(
            "/api/v1/auth/login",
            serde_json::json!({"email": "eva@example.com", "password": password}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn problems_are_shown_beside_their_fields_and_the_form_keeps_what_was_typed(
    server: TestServer,
) {
    let admin = server.sign_in(Role::Admin, None, None).await;
    let token = csrf_of(&admin.page_ok("/admin/workers").await);
    let worker = |skills: &'static str| {
        [
            ("csrf", token.clone()),
            ("name", "Eva Malá".to_owned()),
            ("team", "billing-nights".to_owned()),
            ("skills", skills.to_owned()),
            ("languages", "en, sk".to_owned()),
            ("capacity_email", "5".to_owned()),
        ]
    };
    // A skill the API refuses, and one that is not written as `skill:level` at all.
    for (skills, named) in [
        ("customer_support:3, Billing Team:2", "Billing Team"),
        ("customer_support:high", "customer_support:high"),
    ] {
        let fields = worker(skills);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, html, _) = admin.post_form("/admin/workers", &fields).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
        assert!(
            html.contains(&format!(
                r#"<input id="skills" name="skills" type="text" value="{skills}" aria-describedby="skills-hint skills-error" aria-invalid="true">"#
            )),
            "{html}"
        );
        let error = html
            .split(r#"<p class="field-error" id="skills-error">"#)
            .nth(1)
            .unwrap();
        assert!(error.starts_with(&format!("Check “{named}”")), "{error}");
        assert!(
            html.contains(r##"<a href="#skills">"##),
            "the summary links the field"
        );
        // Everything else as typed, and nothing else marked.
        assert!(html.contains(r#"value="Eva Malá""#) && html.contains(r#"value="billing-nights""#));
        assert!(html.contains(r#"value="en, sk""#) && html.contains(r#"value="5""#));
        assert_eq!(html.matches(r#"aria-invalid="true""#).count(), 1, "{html}");
    }
    let (_, workers) = admin.get("/api/v1/workers").await;
    assert_eq!(workers, serde_json::json!([]));

    // A user's problems, each beside its field; the password is never sent back.
    let (status, html, _) = admin
        .post_form(
            "/admin/users",
            &[
                ("csrf", &token),
                ("email", "not an address"),
                ("name", "Ann"),
                ("role", "admin"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains(r#"id="email-error""#), "{html}");
    assert!(html.contains(r#"value="not an address""#) && html.contains(r#"value="Ann""#));
    assert!(!html.contains(r#"value="short""#));
    let admin_user = server.user(Role::Admin, None, None).await;
    let (status, html, _) = admin
        .post_form(
            "/admin/users",
            &[
                ("csrf", &token),
                ("email", admin_user.email.as_str()),
                ("name", "Ann"),
                ("role", "client_user"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // The client user without a client is the role's problem, found before the address.
    assert!(html.contains(r#"id="role-error""#), "{html}");
    assert!(
        html.contains(r#"<option value="client_user" selected>"#),
        "{html}"
    );
    let acme = server.client("Acme").await.to_string();
    let (status, html, _) = admin
        .post_form(
            "/admin/users",
            &[
                ("csrf", &token),
                ("email", admin_user.email.as_str()),
                ("name", "Ann"),
                ("role", "client_user"),
                ("client_id", &acme),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains(r#"id="email-error">A user with this email address already exists."#),
        "{html}"
    );

    // An engagement needs a name.
    let (status, html, _) = admin
        .post_form(
            "/admin/engagements",
            &[
                ("csrf", &token),
                ("client_id", &acme),
                ("service", "customer-support:1"),
                ("name", " "),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains(r#"id="name-error""#), "{html}");
    let (_, engagements) = admin.get("/api/v1/engagements").await;
    assert_eq!(engagements, serde_json::json!([]));
}

async fn a_token_is_shown_once_works_as_a_bearer_token_and_is_revoked(server: TestServer) {
    let user = server.user(Role::Manager, None, None).await;
    let manager = server.sign_in_as(&user).await;
    let token = csrf_of(&manager.page_ok("/admin/tokens").await);
    let (status, html, landed) = manager
        .post_form(
            "/admin/tokens",
            &[("csrf", &token), ("name", "CRM integration")],
        )
        .await;
    assert_eq!((status, landed.as_str()), (StatusCode::OK, "/admin/tokens"));
    let secret = html
        .split(r#"<code id="token-secret">"#)
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap()
        .to_owned();
    assert!(
        secret.starts_with(delego_server::auth::TOKEN_PREFIX),
        "{secret}"
    );
    assert!(html.contains("it cannot be shown again"));

    let bearer = server.anonymous().with_token(&secret);
    let (status, me) = bearer.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["email"], user.email.as_str());

    // Afterwards the page shows the token by its prefix only.
    let (_, tokens) = manager.get("/api/v1/tokens").await;
    let listed = named(&tokens, "name", "CRM integration");
    let prefix = listed["prefix"].as_str().unwrap();
    let (status, html) = manager.page("/admin/tokens").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("<code>{prefix}…</code>")), "{html}");
    assert!(!html.contains(&secret) && !html.contains("token-secret"));

    let id = listed["id"].as_str().unwrap();
    let (status, html, landed) = manager
        .post_form(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &token)])
        .await;
    assert_eq!(
        (status, landed.as_str()),
        (StatusCode::OK, "/admin/tokens?done=true")
    );
    assert!(html.contains("The token is revoked."));
    assert!(!html.contains(&format!(r#"id="revoke-{id}""#)));
    let (status, _) = bearer.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Another user's token is no business of this one's: as unknown as a made-up id.
    let other = server.sign_in(Role::Admin, None, None).await;
    let other_token = csrf_of(&other.page_ok("/admin/tokens").await);
    let (status, _, _) = other
        .post_form(
            &format!("/admin/tokens/{id}/revoke"),
            &[("csrf", &other_token)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn only_admins_and_managers_find_the_admin_pages_and_only_admins_add_users(
    server: TestServer,
) {
    let acme = server.client("Acme").await;
    let worker = server.worker(&[acme]).await;
    let agent = server.sign_in(Role::Agent, None, Some(worker)).await;
    let requester = server.sign_in(Role::ClientUser, Some(acme), None).await;
    for (who, session) in [("agent", &agent), ("client user", &requester)] {
        let (status, home) = session.page("/settings").await;
        assert_eq!(status, StatusCode::OK);
        assert!(!home.contains(r#"id="nav-admin""#), "{who}");
        let token = csrf_of(&home);
        for path in PAGES {
            let (status, html) = session.page(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{who} {path}");
            assert!(
                html.contains(r#"data-status="404""#),
                "{who} {path}: {html}"
            );
        }
        for path in &PAGES[1..] {
            let (status, _, _) = session
                .post_form(path, &[("csrf", &token), ("name", "Mine")])
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{who} posts {path}");
        }
    }
    let (_, clients) = server
        .sign_in(Role::Admin, None, None)
        .await
        .get("/api/v1/clients")
        .await;
    assert_eq!(clients.as_array().unwrap().len(), 1);

    // A manager runs the floor's directory but adds no users, as in the API.
    let manager = server.sign_in(Role::Manager, None, None).await;
    let (status, overview) = manager.page("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(overview.contains(r#"id="nav-admin""#));
    let (status, users) = manager.page("/admin/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(users.contains(r#"id="admins-add-users""#) && !users.contains(r#"id="add-user""#));
    let (status, html, _) = manager
        .post_form(
            "/admin/users",
            &[
                ("csrf", &csrf_of(&users)),
                ("email", "new@example.com"),
                ("name", "New"),
                ("role", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    let (_, users) = manager.get("/api/v1/users").await;
    assert!(!users.to_string().contains("new@example.com"));
}

async fn a_post_without_the_page_token_is_refused_and_changes_nothing(server: TestServer) {
    let admin = server.sign_in(Role::Admin, None, None).await;
    let token = csrf_of(&admin.page_ok("/admin/clients").await);
    let forged = "f".repeat(64);
    for csrf in [None, Some(""), Some(forged.as_str())] {
        for (path, fields) in [
            ("/admin/clients", vec![("name", "Forged")]),
            ("/admin/engagements", vec![("name", "Forged")]),
            (
                "/admin/workers",
                vec![("name", "Forged"), ("skills", "billing:1")],
            ),
            (
                "/admin/users",
                vec![
                    ("email", "forged@example.com"),
                    ("name", "Forged"),
                    ("role", "admin"),
                ],
            ),
            ("/admin/tokens", vec![("name", "Forged")]),
        ] {
            let mut fields = fields;
            if let Some(csrf) = csrf {
                fields.push(("csrf", csrf));
            }
            let (status, html, _) = admin.post_form(path, &fields).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} {csrf:?}");
            assert!(html.contains("The form expired"), "{html}");
        }
    }
    for list in ["clients", "engagements", "workers", "tokens"] {
        let (_, listed) = admin.get(&format!("/api/v1/{list}")).await;
        assert_eq!(listed, serde_json::json!([]), "{list}");
    }
    let (_, users) = admin.get("/api/v1/users").await;
    assert!(!users.to_string().contains("forged@example.com"));

    // A token revoked only with the page's own form token.
    let (_, html, landed) = admin
        .post_form("/admin/tokens", &[("csrf", &token), ("name", "Kept")])
        .await;
    assert_eq!(landed, "/admin/tokens", "{html}");
    let (_, tokens) = admin.get("/api/v1/tokens").await;
    let id = tokens[0]["id"].as_str().unwrap();
    let (status, _, _) = admin
        .post_form(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &forged)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, tokens) = admin.get("/api/v1/tokens").await;
    assert_eq!(tokens[0]["revoked_at"], Json::Null);
}

async fn an_admin_adds_a_client_with_the_keyboard_in_the_browser(server: TestServer) {
    let Some(driver) = start_driver().await else {
        return;
    };
    let admin = server.user(Role::Admin, None, None).await;
    server.worker(&[server.client("Globex").await]).await;
    let (base, email) = (server.base.as_str(), admin.email.as_str());
    in_browser(&driver, "en-US,en", |page| async move {
        sign_in(&page, base, email).await?;
        tab_to(&page, "nav-admin").await?;
        page.action_chain().send_keys(Key::Enter).perform().await?;
        page.query(By::Id("admin-clients")).first().await?;
        assert_inputs_are_labelled(&page).await?;
        page.screenshot(&screenshots().join("admin-overview.png"))
            .await?;

        tab_to(&page, "admin-clients").await?;
        page.action_chain().send_keys(Key::Enter).perform().await?;
        page.query(By::Id("name")).first().await?;
        assert_inputs_are_labelled(&page).await?;
        tab_to(&page, "name").await?;
        page.action_chain()
            .send_keys("Acme Retail")
            .send_keys(Key::Enter)
            .perform()
            .await?;
        page.query(By::Id("notice")).first().await?;
        let clients = page.find(By::Id("clients")).await?.text().await?;
        assert!(clients.contains("Acme Retail"), "{clients}");
        page.screenshot(&screenshots().join("admin-clients.png"))
            .await?;

        for name in ["engagements", "workers", "users", "tokens"] {
            page.goto(format!("{base}/admin/{name}")).await?;
            page.query(By::Id("add")).first().await?;
            assert_inputs_are_labelled(&page).await?;
            page.screenshot(&screenshots().join(format!("admin-{name}.png")))
                .await?;
        }
        // On a phone the tables scroll within their own box and the form fits.
        page.set_window_rect(0, 0, 390, 844).await?;
        page.goto(format!("{base}/admin/workers")).await?;
        page.screenshot(&screenshots().join("admin-workers-phone.png"))
            .await?;
        // Whatever sticks out past the right edge, outside the scrolling tables.
        let wider: Vec<String> = page
            .execute(
                "return [...document.querySelectorAll('body *')]
                   .filter(e => !e.closest('.table-wrap')
                             && e.getBoundingClientRect().right > window.innerWidth)
                   .map(e => e.outerHTML.slice(0, 80));",
                vec![],
            )
            .await?
            .convert()?;
        assert!(wider.is_empty(), "wider than the screen: {wider:#?}");
        Ok(())
    })
    .await;
}

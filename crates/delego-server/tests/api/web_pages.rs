//! Every page of the web UI, as its users open it in a real browser, on a wide screen and
//! on a phone: every input is labelled and nothing runs off the screen. Screenshots of
//! each land in `target/browser-screenshots/page-*.png`.

use delego_core::identity::Role;
use jiff::SignedDuration;
use serde_json::json;
use thirtyfour::prelude::*;

use crate::browser::{assert_inputs_are_labelled, in_browser, screenshots, sign_in, start_driver};
use crate::harness::TestServer;

crate::on_both_backends!(
    browser_every_page_is_labelled_and_fits_a_wide_screen_and_a_phone,
    browser_an_open_task_keeps_its_lease_and_says_at_once_when_it_is_lost,
);

/// Elements that stick out past the window's right edge, outside the tables that scroll
/// in their own box.
async fn sticking_out(page: &WebDriver) -> WebDriverResult<Vec<String>> {
    let found = page
        .execute(
            "return [...document.querySelectorAll('body *')]
               .filter(e => !e.closest('.table-wrap')
                         && e.getBoundingClientRect().right > window.innerWidth + 1)
               .map(e => e.outerHTML.slice(0, 100));",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(found.json().clone()).unwrap_or_default())
}

async fn browser_every_page_is_labelled_and_fits_a_wide_screen_and_a_phone(server: TestServer) {
    let Some(driver) = start_driver().await else {
        return;
    };
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let worker = server.worker(&[client]).await;
    let agent = server.user(Role::Agent, None, Some(worker)).await;
    let admin = server.user(Role::Admin, None, None).await;
    let requester = server.user(Role::ClientUser, Some(client), None).await;
    let requester_api = server.sign_in(Role::ClientUser, Some(client), None).await;
    let (_, item) = requester_api
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            json!({"data": {"subject": "A page of every kind", "description": "d",
                            "requester_email": "ann@example.com"}}),
        )
        .await;
    let item = item["id"].as_str().unwrap().to_owned();

    let base = server.base.as_str();
    let pages: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            admin.email.as_str(),
            vec![
                ("dashboard", "/dashboard".into()),
                ("queues", "/queues".into()),
                ("queue", format!("/queues/{engagement}/answer")),
                ("item", format!("/items/{item}")),
                ("settings", "/settings".into()),
                ("admin", "/admin".into()),
                ("admin-clients", "/admin/clients".into()),
                ("admin-engagements", "/admin/engagements".into()),
                ("admin-workers", "/admin/workers".into()),
                ("admin-users", "/admin/users".into()),
                ("admin-tokens", "/admin/tokens".into()),
                ("admin-mail", "/admin/mail".into()),
                ("not-found", "/no/such/page".into()),
            ],
        ),
        (agent.email.as_str(), vec![("work", "/work".into())]),
        (
            requester.email.as_str(),
            vec![
                ("portal", "/portal".into()),
                (
                    "portal-new",
                    format!("/portal/engagements/{engagement}/new"),
                ),
                ("portal-item", format!("/portal/items/{item}")),
            ],
        ),
    ];
    for (email, list) in pages {
        in_browser(&driver, "en-US,en", |page| async move {
            sign_in(&page, base, email).await?;
            let mut list = list;
            if list[0].0 == "work" {
                // The agent takes the task in the browser, and its page joins the list.
                page.find(By::Id("take-next")).await?.click().await?;
                page.query(By::Id("task-title")).first().await?;
                let url = page.current_url().await?;
                list.push(("task", url.path().to_owned()));
            }
            for (width, height, size) in [(1280, 800, "wide"), (390, 844, "phone")] {
                page.set_window_rect(0, 0, width, height).await?;
                for (name, path) in &list {
                    page.goto(format!("{base}{path}")).await?;
                    page.query(By::Tag("main")).first().await?;
                    assert_inputs_are_labelled(&page).await?;
                    let wide = sticking_out(&page).await?;
                    assert!(wide.is_empty(), "{path} on a {size} screen: {wide:?}");
                    page.screenshot(&screenshots().join(format!("page-{name}-{size}.png")))
                        .await?;
                }
            }
            Ok(())
        })
        .await;
    }
}

async fn browser_an_open_task_keeps_its_lease_and_says_at_once_when_it_is_lost(server: TestServer) {
    let Some(driver) = start_driver().await else {
        return;
    };
    // A node whose leases last 3 s, so that the open page renews every second.
    let config = delego_server::Config {
        task_lease: SignedDuration::from_secs(3),
        ..Default::default()
    };
    let node = server.another_node(server.db.store.clone(), config).await;
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let worker = server.worker(&[client]).await;
    let agent = server.user(Role::Agent, None, Some(worker)).await;
    let agent_api = server.sign_in(Role::Agent, None, Some(worker)).await;
    let requester = server.sign_in(Role::ClientUser, Some(client), None).await;
    requester
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            json!({"data": {"subject": "Long answer", "description": "d",
                            "requester_email": "ann@example.com"}}),
        )
        .await;
    let (base, email) = (node.base.as_str(), agent.email.as_str());
    let (db, store) = (&server.db, server.db.store.clone());
    in_browser(&driver, "en-US,en", |page| async move {
        sign_in(&page, base, email).await?;
        page.find(By::Id("take-next")).await?.click().await?;
        page.query(By::Id("task-title")).first().await?;
        let task = page
            .current_url()
            .await?
            .path()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let lease = |task: serde_json::Value| task["lease_until"].as_str().unwrap().to_owned();
        let before = lease(agent_api.get(&format!("/api/v1/tasks/{task}")).await.1);
        // Time passes within the lease; the page renews it without being touched.
        db.advance(SignedDuration::from_secs(1));
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        let after = lease(agent_api.get(&format!("/api/v1/tasks/{task}")).await.1);
        assert!(
            after > before,
            "the open page renewed the lease: {before} → {after}"
        );

        // Taken away behind the page's back: the page says so at the next renewal.
        store
            .release_task(task.parse().unwrap(), worker)
            .await
            .unwrap();
        let lost = page
            .query(By::Id("lease-lost"))
            .and_displayed()
            .first()
            .await?;
        assert!(lost.text().await?.contains("no longer yours"));
        Ok(())
    })
    .await;
}

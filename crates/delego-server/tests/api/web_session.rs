//! What every page shares: error pages for browsers, the sign-in redirect, and each
//! user's own language and time zone.

use delego_core::identity::Role;
use reqwest::StatusCode;

use crate::harness::TestServer;

crate::on_both_backends!(
    browsers_get_error_pages_and_an_unknown_page_looks_like_a_hidden_one,
    a_users_language_and_time_zone_follow_them_from_page_to_page,
);

async fn browsers_get_error_pages_and_an_unknown_page_looks_like_a_hidden_one(server: TestServer) {
    let anonymous = server.anonymous();
    // Pages need a session: the browser is sent to sign in.
    let response = anonymous
        .request(reqwest::Method::GET, "/work")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.url().path(), "/login");

    let manager = server.sign_in(Role::Manager, None, None).await;
    let (status, unknown) = manager.page("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(unknown.contains("<html lang=\"en\">"), "{unknown}");
    assert!(unknown.contains("id=\"error-title\""));
    // The Prometheus scrape without its token is not there, exactly like any unknown page.
    let (status, metrics) = manager.page("/metrics").await;
    assert_eq!(
        (status, metrics.as_str()),
        (StatusCode::NOT_FOUND, unknown.as_str())
    );
    // API clients keep their problem documents.
    let response = manager
        .request(reqwest::Method::GET, "/no/such/page")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    // A Slovak browser reads the page in Slovak.
    let response = manager
        .request(reqwest::Method::GET, "/no/such/page")
        .header("accept", "text/html")
        .header("accept-language", "sk-SK,sk;q=0.9")
        .send()
        .await
        .unwrap();
    assert!(response.text().await.unwrap().contains("Nenašlo sa"));
    // A form posted without the page's token is refused with a page that says why.
    let response = manager
        .request(reqwest::Method::POST, "/settings")
        .header("accept", "text/html")
        .form(&[("csrf", "forged"), ("language", "sk"), ("time_zone", "UTC")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("The form expired"));
}

async fn a_users_language_and_time_zone_follow_them_from_page_to_page(server: TestServer) {
    let manager = server.sign_in(Role::Manager, None, None).await;
    let (status, html) = manager.page("/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<option selected>UTC</option>"), "{html}");

    let (status, html, _) = manager
        .submit_form(
            "/settings",
            "/settings",
            &[("language", "xx"), ("time_zone", "Europe/Bratislava")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"error\""));
    let (status, html, _) = manager
        .submit_form(
            "/settings",
            "/settings",
            &[("language", "sk"), ("time_zone", "Mars/Olympus")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Mars/Olympus"));

    let (status, html, _) = manager
        .submit_form(
            "/settings",
            "/settings",
            &[("language", "sk"), ("time_zone", "Europe/Bratislava")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Slovak now, whatever the browser asks for, with Slovak dates.
    assert!(html.contains("<html lang=\"sk\">"), "{html}");
    assert!(html.contains("id=\"saved\""));
    assert!(html.contains("<option selected>Europe/Bratislava</option>"));
    let (_, other_page) = manager.page("/queues").await;
    assert!(other_page.contains("<html lang=\"sk\">"));
    // The choice is the user's: signed out, this browser still shows it.
    let (_, html, url) = manager.submit_form("/settings", "/logout", &[]).await;
    assert_eq!(url, "/login");
    assert!(html.contains("<html lang=\"sk\">"), "{html}");
}

//! What every page shares: error pages for browsers, the sign-in redirect, and each
//! user's own language and time zone.

use delego_core::identity::Role;
use reqwest::{Method, StatusCode};

use crate::harness::TestServer;

crate::on_both_backends!(
    browsers_get_error_pages_and_an_unknown_page_looks_like_a_hidden_one,
    a_users_language_and_time_zone_follow_them_from_page_to_page,
);

async fn browsers_get_error_pages_and_an_unknown_page_looks_like_a_hidden_one(server: TestServer) {
    let anonymous = server.anonymous();
    // Pages need a session: the browser is sent to sign in.
    let (_, _, address) = anonymous
        .browse(anonymous.request(Method::GET, "/work"))
        .await;
    assert_eq!(address, "/login");

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
        .request(Method::GET, "/no/such/page")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    // A Slovak browser reads the page in Slovak.
    let slovak = manager
        .request(Method::GET, "/no/such/page")
        .header("accept-language", "sk-SK,sk;q=0.9");
    let (_, html, _) = manager.browse(slovak).await;
    assert!(html.contains("Nenašlo sa"));
    // A form posted without the page's token is refused with a page that says why.
    let (status, html, _) = manager
        .post_form(
            "/settings",
            &[("csrf", "forged"), ("language", "sk"), ("time_zone", "UTC")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("The form expired"));
}

async fn a_users_language_and_time_zone_follow_them_from_page_to_page(server: TestServer) {
    let manager = server.sign_in(Role::Manager, None, None).await;
    let (status, html) = manager.page("/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<option selected>UTC</option>"), "{html}");

    // A language or a time zone the server does not know is refused and shown.
    for (language, time_zone, shown) in [
        ("xx", "Europe/Bratislava", "id=\"error\""),
        ("sk", "Mars/Olympus", "Mars/Olympus"),
    ] {
        let fields = [("language", language), ("time_zone", time_zone)];
        let (status, html, _) = manager.submit_form("/settings", "/settings", &fields).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{language} {time_zone}"
        );
        assert!(html.contains(shown), "{html}");
    }

    let fields = [("language", "sk"), ("time_zone", "Europe/Bratislava")];
    let (status, html, _) = manager.submit_form("/settings", "/settings", &fields).await;
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

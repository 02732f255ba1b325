//! The web UI in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! driven with thirtyfour), one browser at a time. Screenshots are written to
//! `target/browser-screenshots/`. Outside CI the test is skipped where chromedriver is not
//! installed; under `CI=true` a missing browser fails it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use delego_core::identity::Role;
use reqwest::StatusCode;
use thirtyfour::{ChromiumLikeCapabilities, prelude::*};

use crate::harness::{PASSWORD, TestServer};

crate::on_both_backends!(a_user_signs_in_and_out_with_the_keyboard_in_english_and_slovak);

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The browser itself: `/usr/bin/chromium` is a shell wrapper.
const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// chromedriver on a free port, killed when the test ends however it ends.
pub struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn start_driver() -> Option<Driver> {
    if !std::path::Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs chromium and chromium-driver (apt-get install chromium chromium-driver)"
        );
        eprintln!("chromedriver is not installed: skipping the browser test");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = reqwest::get(format!("{}/status", driver.url)).await;
        if let Ok(response) = status
            && let Ok(body) = response.json::<serde_json::Value>().await
            && body["value"]["ready"] == true
        {
            return Some(driver);
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn browser(driver: &Driver, languages: &str, profile: &tempfile::TempDir) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(CHROMIUM).unwrap();
    for arg in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,800",
    ] {
        caps.add_arg(arg).unwrap();
    }
    caps.add_arg(&format!("--user-data-dir={}", profile.path().display()))
        .unwrap();
    caps.add_experimental_option(
        "prefs",
        serde_json::json!({ "intl.accept_languages": languages }),
    )
    .unwrap();
    WebDriver::new(&driver.url, caps).await.unwrap()
}

/// Every visible input has a label a screen reader can read.
pub async fn assert_inputs_are_labelled(page: &WebDriver) -> WebDriverResult<()> {
    for input in page
        .find_all(By::Css("input:not([type=hidden]), select, textarea"))
        .await?
    {
        let aria = input.attr("aria-label").await?.unwrap_or_default();
        let id = input.attr("id").await?.unwrap_or_default();
        let label = match page
            .find_all(By::Css(format!("label[for='{id}']")))
            .await?
            .first()
        {
            Some(label) if !id.is_empty() => label.text().await?,
            _ => String::new(),
        };
        assert!(
            !aria.trim().is_empty() || !label.trim().is_empty(),
            "input {:?} has no label",
            input.attr("name").await?
        );
    }
    Ok(())
}

/// Presses Tab until the element with `id` has the focus, as a keyboard user would.
pub async fn tab_to(page: &WebDriver, id: &str) -> WebDriverResult<()> {
    for _ in 0..60 {
        if page.active_element().await?.id().await?.as_deref() == Some(id) {
            return Ok(());
        }
        page.action_chain().send_keys(Key::Tab).perform().await?;
    }
    panic!("Tab never reaches #{id}");
}

/// Runs `scenario` in a fresh browser profile and quits the browser before judging, so
/// that no browser outlives a failed test.
pub async fn in_browser<F, Fut>(driver: &Driver, languages: &str, scenario: F)
where
    F: FnOnce(WebDriver) -> Fut,
    Fut: std::future::Future<Output = WebDriverResult<()>>,
{
    let profile = tempfile::tempdir().unwrap();
    let page = browser(driver, languages, &profile).await;
    let outcome = tokio::time::timeout(Duration::from_secs(90), scenario(page.clone())).await;
    page.quit().await.unwrap();
    outcome.expect("the browser took too long").unwrap();
}

/// Signs in on the login page with the keyboard alone.
pub async fn sign_in(page: &WebDriver, base: &str, email: &str) -> WebDriverResult<()> {
    page.goto(format!("{base}/login")).await?;
    tab_to(page, "email").await?;
    page.action_chain()
        .send_keys(email)
        .send_keys(Key::Tab)
        .send_keys(PASSWORD)
        .send_keys(Key::Enter)
        .perform()
        .await?;
    page.query(By::Id("signed-in")).first().await?;
    Ok(())
}

async fn sign_in_and_out(
    page: &WebDriver,
    base: &str,
    email: &str,
    language: &str,
    title: &str,
) -> WebDriverResult<()> {
    page.goto(format!("{base}/login")).await?;
    let html = page.find(By::Tag("html")).await?;
    assert_eq!(html.attr("lang").await?.as_deref(), Some(language));
    assert_eq!(page.find(By::Tag("h1")).await?.text().await?, title);
    assert_inputs_are_labelled(page).await?;
    page.screenshot(&screenshots().join(format!("login-{language}.png")))
        .await?;

    // Keyboard only. The address field has the focus when the page opens.
    assert_eq!(
        page.active_element().await?.id().await?.as_deref(),
        Some("email")
    );
    page.action_chain()
        .send_keys(email)
        .send_keys(Key::Tab)
        .send_keys(PASSWORD)
        .send_keys(Key::Enter)
        .perform()
        .await?;
    let signed_in = page.query(By::Id("signed-in")).first().await?;
    assert!(signed_in.text().await?.contains("Test User"));
    assert_inputs_are_labelled(page).await?;
    page.screenshot(&screenshots().join(format!("dashboard-{language}.png")))
        .await?;

    // The queues, by keyboard: a link of the navigation.
    tab_to(page, "nav-queues").await?;
    page.action_chain().send_keys(Key::Enter).perform().await?;
    let table = page.query(By::Id("queues")).first().await?;
    let row = table.find(By::Css("tbody tr")).await?.text().await?;
    assert!(row.starts_with("Support Answer the requester 1 0"), "{row}");
    page.screenshot(&screenshots().join(format!("queues-{language}.png")))
        .await?;

    // Signing out, from any page.
    tab_to(page, "logout").await?;
    page.action_chain().send_keys(Key::Enter).perform().await?;
    page.query(By::Id("email")).first().await?;
    Ok(())
}

async fn a_user_signs_in_and_out_with_the_keyboard_in_english_and_slovak(server: TestServer) {
    // A form post without the page's token is refused, whoever sends it.
    let response = reqwest::Client::new()
        .post(format!("{}/login", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=forged&email=a%40example.com&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let Some(driver) = start_driver().await else {
        return;
    };
    let user = server.user(Role::Manager, None, None).await;
    let client = server.client("Acme").await;
    let engagement = server.engagement(client).await;
    let requester = server.sign_in(Role::ClientUser, Some(client), None).await;
    let (status, item) = requester
        .post(
            &format!("/api/v1/engagements/{engagement}/items"),
            serde_json::json!({"data": {"subject": "Where is my parcel?", "description": "Ordered last week.",
                                        "requester_email": "ann@example.com"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    // The floor's queues are no client's business: the page is not there for them.
    let response = requester
        .request(reqwest::Method::GET, "/queues")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    for (languages, language, title) in [
        ("en-US,en", "en", "Sign in"),
        ("sk-SK,sk", "sk", "Prihlásenie"),
    ] {
        let (base, email) = (server.base.as_str(), user.email.as_str());
        in_browser(&driver, languages, |page| async move {
            sign_in_and_out(&page, base, email, language, title).await
        })
        .await;
    }
}

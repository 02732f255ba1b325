//! `delego bench pages`: how long the web UI's pages take on the demo data.
//!
//! Setup (not timed) seeds the demo floor into a temporary SQLite database and runs its
//! flow for a while, so that queues, threads, histories and the day's metrics have
//! content; then a server starts in this process. Each page is fetched as its user
//! would (signed in, `Accept: text/html`) a few times to warm up, then `--requests` times
//! one after another; the figures are the time from sending the request to having read
//! the whole page, over loopback.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use delego_core::clock::{Clock, SystemClock};
use delego_store::{Backend, SqliteStore};
use serde_json::json;

use super::{HttpServer, TempDir, percentile};
use crate::demo::{self, DEMO_PASSWORD};

#[derive(clap::Args, Debug, Clone)]
pub struct PagesArgs {
    /// Rounds of the demo's flow run before measuring (a ticket every other round).
    #[arg(long, default_value_t = 2_000)]
    pub rounds: u64,
    /// Timed requests per page.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The budget a page must stay well under: the p95 is checked against it.
const BUDGET: Duration = Duration::from_millis(100);
const WARM_UP: u64 = 3;

struct PageTiming {
    page: String,
    user: &'static str,
    bytes: usize,
    p50: Duration,
    p95: Duration,
    max: Duration,
}

pub async fn pages(args: PagesArgs) -> anyhow::Result<ExitCode> {
    let setup_started = Instant::now();
    let temp = TempDir::create()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let path = temp.path().join("pages.db");
    let store: Arc<dyn Backend> = Arc::new(
        SqliteStore::open(&path, clock.clone())
            .await
            .with_context(|| format!("cannot open {}", path.display()))?,
    );
    eprintln!(
        "seeding the demo floor and {} rounds of its flow …",
        args.rounds
    );
    demo::seed_with_history(store.as_ref(), args.rounds).await?;
    let items = store
        .items(&delego_store::ItemFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .await?
        .len();
    let server = HttpServer::start(store.clone(), clock, temp.path()).await?;
    let outcome = measure(&server, &args).await;
    server.stop().await;
    let timings = outcome?;
    let setup_seconds = setup_started.elapsed().as_secs_f64();

    let over: Vec<&PageTiming> = timings.iter().filter(|t| t.p95 >= BUDGET).collect();
    if args.json {
        let pages: Vec<_> = timings
            .iter()
            .map(|t| {
                json!({
                    "page": t.page, "user": t.user, "bytes": t.bytes,
                    "p50_ms": ms(t.p50), "p95_ms": ms(t.p95), "max_ms": ms(t.max),
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "backend": "sqlite", "items": items, "requests_per_page": args.requests,
                "budget_ms": ms(BUDGET), "pages": pages, "over_budget": over.len(),
                "setup_seconds": setup_seconds,
            })
        );
    } else {
        println!(
            "Web pages on the demo data ({items} items, SQLite, {} requests each after {WARM_UP} to warm up)",
            args.requests
        );
        println!(
            "{:<34} {:<10} {:>8} {:>9} {:>9} {:>9}",
            "page", "user", "bytes", "p50 ms", "p95 ms", "max ms"
        );
        for t in &timings {
            println!(
                "{:<34} {:<10} {:>8} {:>9.2} {:>9.2} {:>9.2}",
                t.page,
                t.user,
                t.bytes,
                ms(t.p50),
                ms(t.p95),
                ms(t.max)
            );
        }
        println!("setup (not timed): {setup_seconds:.1} s");
    }
    if over.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for t in over {
            eprintln!(
                "{} ({}) has a p95 of {:.1} ms, over the {} ms budget",
                t.page,
                t.user,
                ms(t.p95),
                BUDGET.as_millis()
            );
        }
        Ok(ExitCode::FAILURE)
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// A browser-like client signed in as one demo user.
async fn signed_in(server: &HttpServer, email: &str) -> anyhow::Result<reqwest::Client> {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(60))
        .build()?;
    let response = client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"email": email, "password": DEMO_PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{email} cannot sign in: {}",
        response.status()
    );
    Ok(client)
}

async fn api(client: &reqwest::Client, url: String) -> anyhow::Result<serde_json::Value> {
    let response = client.get(&url).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

async fn measure(server: &HttpServer, args: &PagesArgs) -> anyhow::Result<Vec<PageTiming>> {
    let base = &server.base;
    let manager = signed_in(server, "manager@demo.delego.dev").await?;
    let admin = signed_in(server, "admin@demo.delego.dev").await?;
    let agent = signed_in(server, "jana@demo.delego.dev").await?;
    let requester = signed_in(server, "service@acme.example").await?;

    // Real addresses to open: a queue, an item of Acme's, a task the agent holds.
    let items = api(&requester, format!("{base}/api/v1/items?limit=1")).await?;
    let item = items["items"][0]["id"]
        .as_str()
        .ok_or_else(|| anyhow!("the client has no items: {items}"))?
        .to_owned();
    let engagement = items["items"][0]["engagement_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let presence = agent
        .put(format!(
            "{base}/api/v1/workers/{}/presence",
            api(&agent, format!("{base}/api/v1/me")).await?["worker"]["id"]
                .as_str()
                .unwrap_or_default()
        ))
        .json(&json!({"state": "available"}))
        .send()
        .await?;
    anyhow::ensure!(
        presence.status().is_success(),
        "the agent cannot become available: {}",
        presence.status()
    );
    let claimed = agent
        .post(format!("{base}/api/v1/tasks/next"))
        .send()
        .await?;
    anyhow::ensure!(
        claimed.status() == reqwest::StatusCode::OK,
        "the agent found no task: {}",
        claimed.status()
    );
    let task = claimed.json::<serde_json::Value>().await?["task"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let pages: Vec<(&str, &reqwest::Client, String)> = vec![
        ("manager", &manager, "/dashboard".into()),
        ("manager", &manager, "/queues".into()),
        ("manager", &manager, format!("/queues/{engagement}/answer")),
        ("manager", &manager, format!("/items/{item}")),
        ("agent", &agent, "/work".into()),
        ("agent", &agent, format!("/work/tasks/{task}")),
        ("client", &requester, "/portal".into()),
        ("client", &requester, format!("/portal/items/{item}")),
        ("admin", &admin, "/admin/workers".into()),
        ("admin", &admin, "/admin/users".into()),
        ("manager", &manager, "/settings".into()),
    ];
    let mut timings = Vec::new();
    let bar = indicatif::ProgressBar::new(pages.len() as u64 * (args.requests + WARM_UP));
    for (user, client, path) in pages {
        let mut latencies = Vec::new();
        let mut bytes = 0;
        for n in 0..args.requests + WARM_UP {
            let started = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .header("accept", "text/html")
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            let took = started.elapsed();
            anyhow::ensure!(status.is_success(), "{path} as {user}: {status}");
            bytes = body.len();
            if n >= WARM_UP {
                latencies.push(took);
            }
            bar.inc(1);
        }
        latencies.sort_unstable();
        let shown = path
            .replace(&item, "{item}")
            .replace(&engagement, "{engagement}")
            .replace(&task, "{task}");
        timings.push(PageTiming {
            page: shown,
            user,
            bytes,
            p50: percentile(&latencies, 50.0),
            p95: percentile(&latencies, 95.0),
            max: latencies.last().copied().unwrap_or_default(),
        });
    }
    bar.finish_and_clear();
    Ok(timings)
}

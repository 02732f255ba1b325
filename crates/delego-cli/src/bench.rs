//! `delego bench routing`: how many task claims per second the routing path sustains.
//!
//! Setup (not timed) seeds a floor: 5 clients with 20 engagements over 5 skills, workers
//! with random skills who are cleared for every client, and a backlog of queued tasks.
//! Then concurrent claimers take tasks for random workers until no worker finds one,
//! through `Store::claim_next_task` (store + ranking) or the real HTTP API
//! (`POST /api/v1/tasks/next`). Each claim's latency is recorded, and every task id is
//! checked to have been handed out once.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use delego_core::clock::{Clock, SystemClock};
use delego_core::id::{ClientId, EngagementId, TaskId, WorkItemId, WorkerId};
use delego_core::identity::Role;
use delego_core::model::{Actor, EngagementSettings, Presence, Worker};
use delego_core::routing::Channel;
use delego_core::values::{EmailAddress, Key, Language, Name, Priority, SkillLevel};
use delego_server::blobs::LocalDirectory;
use delego_server::{AppState, Config, auth};
use delego_store::{Backend, NewItem, NewUser, PgStore, SqliteStore};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Measure task claims per second and claim latency (build with --release).
    ///
    /// Setup, which is not timed, creates 5 clients with 20 engagements (one human step
    /// each, needing one of 5 skills at level 1 to 3), the workers (1 to 3 random skills
    /// at levels 1 to 5, cleared for every client, available, with room for a million
    /// back-office tasks so capacity never stops a claim) and the tasks, one work item
    /// each, created through `Store::create_item`.
    ///
    /// The timed phase runs --claimers concurrent clients. Each takes a random worker
    /// (seeded by --seed) and claims the next task for it — through the store and the
    /// routing rules (`Store::claim_next_task`, the path every claim takes), or with
    /// --http through the real HTTP API (`POST /api/v1/tasks/next` on a server started
    /// in this process, one signed-in session per worker). A worker that finds nothing
    /// twice in a row is done; the phase ends when every worker is done or after
    /// --claims claims. Latency is that of a successful claim as the client sees it.
    ///
    /// Then the wake-up phase: 4 workers with a skill of their own wait for work (in the
    /// store's wake-up channel, or with --http in `POST /api/v1/tasks/next?wait=60` on a
    /// server whose fallback polling is set to an hour, so that only notifications count)
    /// while --wakeups tasks are opened one at a time. On PostgreSQL the tasks are opened
    /// through a second store, as another node would, so the notice crosses nodes. A
    /// wake-up is the time from submitting the item to a waiting worker holding its task.
    ///
    /// The database is durable as in production: SQLite in WAL mode with
    /// synchronous=FULL (one fsync per claim), PostgreSQL with the server's settings.
    /// Without --database-url it is a temporary SQLite file, removed afterwards. With
    /// --database-url postgres://… the data is written into that database and left there:
    /// use a throwaway database. DELEGO_DATABASE_URL is deliberately not read.
    ///
    /// Prints a table, or with --json one JSON object: backend, mode, tasks, workers,
    /// claimers, claims, elapsed_seconds, claims_per_second, p50_ms, p90_ms, p99_ms and
    /// max_ms (claims that got a task), empty_claims with empty_p50_ms, empty_p99_ms and
    /// empty_max_ms (claims that found nothing for their worker), failed_claims and
    /// first_error, double_claims (tasks handed out more than once), wakeups,
    /// wake_p50_ms, wake_p99_ms, wake_max_ms and missed_wakeups (none within 10 s),
    /// setup_seconds and seed. Exits with status 1 if a claim failed, a task was handed
    /// out twice or a wake-up was missed; a run stops after 100 failed claims.
    Routing(RoutingArgs),
    /// Measure how long the web UI's pages take on the demo data (build with --release).
    ///
    /// Setup, which is not timed, seeds the demo floor (`delego demo`'s clients, users,
    /// workers and tickets) into a temporary SQLite database, runs --rounds rounds of its
    /// flow at once, and starts the server in this process. Then each page — the
    /// manager's dashboard, queues, a queue and an item; the agent's workspace and a task
    /// it holds; the client's portal and one of its items; the admin's worker and user
    /// lists; settings — is fetched by its user as a browser would, 3 times to warm up
    /// and --requests times measured, one request at a time.
    ///
    /// Prints a table (or with --json one JSON object) of p50, p95 and max per page.
    /// Exits with status 1 if a page's p95 reaches 100 ms.
    Pages(pages::PagesArgs),
}

mod pages;

#[derive(clap::Args, Debug, Clone)]
pub struct RoutingArgs {
    /// A PostgreSQL database to write into (postgres://…). Default: a temporary SQLite
    /// database.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// How many tasks to queue (one work item each), spread over the 20 engagements.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub tasks: u64,
    /// How many workers, each with 1 to 3 random skills (at least 5, so that every skill
    /// has a worker who may take all of its tasks).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(5..))]
    pub workers: u64,
    /// How many clients claim concurrently.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub claimers: u64,
    /// Stop after this many claims instead of when the queue runs dry.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub claims: Option<u64>,
    /// Claim through the HTTP API of a server started in this process, instead of calling
    /// the store directly.
    #[arg(long)]
    pub http: bool,
    /// After the claims, open this many tasks one at a time for workers already waiting
    /// for work, and report how long each took to reach one (0 skips this phase).
    #[arg(long, default_value_t = 200)]
    pub wakeups: u64,
    /// Seed of the random skills, priorities and worker choices.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        BenchCommand::Routing(args) => routing(args).await,
        BenchCommand::Pages(args) => pages::pages(args).await,
    }
}

/// The skills the engagements' steps need.
const SKILLS: [&str; 5] = ["billing", "claims", "kyc", "support", "underwriting"];
const CLIENTS: usize = 5;
const ENGAGEMENTS: usize = 20;
/// A worker that finds no task this many times in a row is done.
const DRY_AFTER: u32 = 2;
/// Concurrent requests while seeding.
const SETUP_JOBS: usize = 8;
/// Concurrent sign-ins: each checks an argon2 hash, which is CPU-bound.
const SIGN_IN_JOBS: usize = 4;

/// The bench service: one human step needing `{skill}` at `{level}`, outcome `done`.
const SERVICE_TEMPLATE: &str = r#"# The service `delego bench routing` queues its tasks with.
[service]
key = "bench-routing-{skill}-{level}"
version = 1
name = "Routing benchmark: {skill} at level {level}"
kind = "bpo"
skills = ["{skill}"]
start = "work"

[[intake]]
name = "reference"
type = "text"
required = true
max_length = 40

[[steps]]
id = "work"
kind = "human"
skill = "{skill}"
min_level = {level}
handle_time = "5m"
outcomes = ["done"]
on = { done = "finish" }

[[steps]]
id = "finish"
kind = "end"
"#;

/// The step of engagement `n`: its skill and minimum level.
fn engagement_step(n: usize) -> (&'static str, u8) {
    (SKILLS[n % SKILLS.len()], 1 + ((n / SKILLS.len()) % 3) as u8)
}

fn service_source(skill: &str, level: u8) -> String {
    SERVICE_TEMPLATE
        .replace("{skill}", skill)
        .replace("{level}", &level.to_string())
}

fn service_key(skill: &str, level: u8) -> anyhow::Result<Key> {
    key(&format!("bench-routing-{skill}-{level}"))
}

fn key(s: &str) -> anyhow::Result<Key> {
    Key::parse(s).map_err(|e| anyhow!("{e}"))
}

fn name(s: &str) -> anyhow::Result<Name> {
    Name::parse(s).map_err(|e| anyhow!("{e}"))
}

fn bench_actor() -> Actor {
    Actor::Operator("delego-bench".into())
}

/// A tiny deterministic generator (xorshift64*); no cryptographic use.
#[derive(Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that near seeds give unrelated streams; never 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("delego-bench-{}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn progress(len: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:<24} [{bar:32}] {human_pos}/{human_len} {per_sec:>12} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// Runs `job(0..count)` on `jobs` concurrent tasks; results in index order.
async fn in_parallel<T, F, Fut>(
    jobs: usize,
    count: usize,
    bar: &ProgressBar,
    job: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<T>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..jobs.clamp(1, count.max(1)) {
        let (job, next, failed, bar) = (job.clone(), next.clone(), failed.clone(), bar.clone());
        handles.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count || failed.load(Ordering::Relaxed) {
                    return Ok(done);
                }
                match job(n).await {
                    Ok(value) => done.push((n, value)),
                    Err(error) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(error);
                    }
                }
                bar.inc(1);
            }
        }));
    }
    let mut all = Vec::with_capacity(count);
    for handle in handles {
        all.extend(handle.await.context("a setup task panicked")??);
    }
    all.sort_by_key(|(n, _)| *n);
    Ok(all.into_iter().map(|(_, value)| value).collect())
}

/// What the claimers work with.
struct Floor {
    workers: Vec<WorkerId>,
    /// With --http: each worker's session cookie, by index.
    sessions: Vec<String>,
}

async fn routing(args: RoutingArgs) -> anyhow::Result<ExitCode> {
    let setup_started = Instant::now();
    let temp = TempDir::create()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // On PostgreSQL the wake-up tasks are opened through a second store, as another node.
    let (store, other_node, backend): (Arc<dyn Backend>, Arc<dyn Backend>, String) =
        match &args.database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                eprintln!(
                    "warning: the benchmark writes {} work items, {} workers and their users into \
                 the PostgreSQL database of --database-url and leaves them there; use a \
                 throwaway database",
                    args.tasks, args.workers
                );
                let store = PgStore::open(url, clock.clone())
                    .await
                    .context("cannot open the PostgreSQL database of --database-url")?;
                let other = PgStore::open(url, clock.clone())
                    .await
                    .context("cannot open the PostgreSQL database of --database-url")?;
                (Arc::new(store), Arc::new(other), "postgres".into())
            }
            Some(_) => {
                anyhow::bail!(
                    "--database-url takes a postgres:// URL; without it the benchmark uses a \
                 temporary SQLite database"
                )
            }
            None => {
                let path = temp.path().join("bench.db");
                let store = SqliteStore::open(&path, clock.clone())
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?;
                let store: Arc<dyn Backend> = Arc::new(store);
                (store.clone(), store, "sqlite".into())
            }
        };
    let mut rng = XorShift::new(args.seed);
    let run_tag = format!(
        "{:06x}",
        XorShift::new(clock.now().as_nanosecond() as u64).next() & 0xFF_FFFF
    );

    let engagements = seed_engagements(store.as_ref(), &run_tag).await?;
    let workers = seed_workers(&store, &args, &mut rng, &engagements).await?;
    seed_items(&store, &args, &mut rng, &engagements).await?;
    let mut waiting = seed_waiting_workers(&store, &run_tag).await?;
    let wake_tag = format!("{run_tag}-waiting");

    let mode = if args.http { "http" } else { "store" };
    let report = if args.http {
        let password = auth::random_secret()?;
        let hash = auth::hash_password(password.clone()).await?;
        seed_users(&store, &workers, &run_tag, &hash).await?;
        seed_users(&store, &waiting.workers, &wake_tag, &hash).await?;
        let server = HttpServer::start(store.clone(), clock.clone(), temp.path()).await?;
        let sessions = sign_in(&server, workers.len(), &run_tag, &password).await?;
        waiting.sessions = sign_in(&server, waiting.workers.len(), &wake_tag, &password).await?;
        let floor = Arc::new(Floor { workers, sessions });
        let setup = setup_started.elapsed();
        let target = Target::Http {
            client: server.client.clone(),
            next_url: format!("{}/api/v1/tasks/next", server.base),
        };
        let outcome = async {
            let measured = measure(&args, floor, target.clone()).await?;
            let wake_ups = measure_wake_ups(&args, &other_node, target, &waiting).await?;
            anyhow::Ok((measured, wake_ups))
        }
        .await;
        server.stop().await;
        let (measured, wake_ups) = outcome?;
        measured.report(&args, &backend, mode, setup, wake_ups)
    } else {
        let floor = Arc::new(Floor {
            workers,
            sessions: Vec::new(),
        });
        let setup = setup_started.elapsed();
        let target = Target::Store(store.clone());
        let measured = measure(&args, floor, target.clone()).await?;
        let wake_ups = measure_wake_ups(&args, &other_node, target, &waiting).await?;
        measured.report(&args, &backend, mode, setup, wake_ups)
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    drop(store);
    if report.double_claims > 0 {
        eprintln!(
            "error: {} task(s) were handed out twice",
            report.double_claims
        );
    }
    if report.failed_claims > 0 {
        eprintln!("error: {} claim(s) failed", report.failed_claims);
    }
    if report.wake_ups.missed > 0 {
        eprintln!(
            "error: {} task(s) reached no waiting worker within {} s",
            report.wake_ups.missed,
            WAKE_UP_LIMIT.as_secs()
        );
    }
    drop(other_node);
    Ok(
        if report.double_claims == 0 && report.failed_claims == 0 && report.wake_ups.missed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// Publishes the bench services and creates the clients and engagements.
async fn seed_engagements(
    store: &dyn Backend,
    run_tag: &str,
) -> anyhow::Result<Vec<(ClientId, EngagementId)>> {
    let actor = bench_actor();
    let steps: BTreeSet<(&str, u8)> = (0..ENGAGEMENTS).map(engagement_step).collect();
    for (skill, level) in steps {
        store
            .publish_service(&service_source(skill, level))
            .await
            .with_context(|| format!("cannot publish the bench service for {skill}"))?;
    }
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let client = store
            .create_client(
                name(&format!("Bench client {} ({run_tag})", n + 1))?,
                &actor,
            )
            .await?;
        clients.push(client.id);
    }
    let mut engagements = Vec::new();
    for n in 0..ENGAGEMENTS {
        let (skill, level) = engagement_step(n);
        let client = clients[n % CLIENTS];
        let settings = EngagementSettings {
            // Some engagements weigh more, so fairness between engagements has work to do.
            weight: (n % 4 == 0).then_some(2),
            ..Default::default()
        };
        let engagement = store
            .create_engagement(
                client,
                name(&format!("Bench engagement {} ({run_tag})", n + 1))?,
                &service_key(skill, level)?,
                1,
                settings,
                &actor,
            )
            .await?;
        engagements.push((client, engagement.id));
    }
    Ok(engagements)
}

/// Creates the workers: worker `n` has skill `n mod 5` (at level 5 for the first five, so
/// every task has someone who may take it) and up to two more, at random levels.
async fn seed_workers(
    store: &Arc<dyn Backend>,
    args: &RoutingArgs,
    rng: &mut XorShift,
    engagements: &[(ClientId, EngagementId)],
) -> anyhow::Result<Vec<WorkerId>> {
    let clients: BTreeSet<ClientId> = engagements.iter().map(|(client, _)| *client).collect();
    let english: BTreeSet<Language> = Language::parse("en").into_iter().collect();
    let count = usize::try_from(args.workers).context("too many workers")?;
    let mut workers = Vec::with_capacity(count);
    for n in 0..count {
        let mut skills = BTreeMap::new();
        let primary_level = if n < SKILLS.len() {
            5
        } else {
            1 + rng.below(5)
        };
        skills.insert(key(SKILLS[n % SKILLS.len()])?, level(primary_level)?);
        for _ in 0..rng.below(3) {
            skills
                .entry(key(SKILLS[rng.below(SKILLS.len())])?)
                .or_insert(level(1 + rng.below(5))?);
        }
        workers.push(Worker {
            id: WorkerId::new(),
            name: name(&format!("Bench worker {}", n + 1))?,
            skills,
            languages: english.clone(),
            clearances: clients.clone(),
            certifications: Default::default(),
            exclusions: Default::default(),
            capacity: [(Channel::BackOffice, 1_000_000)].into(),
            presence: Presence::Available,
            idle_since: None,
            wrap_up_secs: 0,
            team: None,
        });
    }
    let ids = workers.iter().map(|w| w.id).collect();
    let bar = progress(workers.len() as u64, "creating workers");
    let workers = Arc::new(workers);
    let store = store.clone();
    in_parallel(SETUP_JOBS, workers.len(), &bar, move |n| {
        let (store, workers) = (store.clone(), workers.clone());
        async move {
            store.create_worker(&workers[n], &bench_actor()).await?;
            Ok(())
        }
    })
    .await?;
    bar.finish_and_clear();
    Ok(ids)
}

fn level(n: usize) -> anyhow::Result<SkillLevel> {
    SkillLevel::new(u8::try_from(n).unwrap_or(u8::MAX)).map_err(|e| anyhow!("{e}"))
}

/// Queues `--tasks` work items round-robin over the engagements, with random priorities.
async fn seed_items(
    store: &Arc<dyn Backend>,
    args: &RoutingArgs,
    rng: &mut XorShift,
    engagements: &[(ClientId, EngagementId)],
) -> anyhow::Result<()> {
    const PRIORITIES: [Priority; 6] = [
        Priority::Low,
        Priority::Normal,
        Priority::Normal,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];
    let count = usize::try_from(args.tasks).context("too many tasks")?;
    let priorities: Arc<Vec<Priority>> = Arc::new(
        (0..count)
            .map(|_| PRIORITIES[rng.below(PRIORITIES.len())])
            .collect(),
    );
    let engagements: Arc<Vec<EngagementId>> =
        Arc::new(engagements.iter().map(|(_, e)| *e).collect());
    let bar = progress(count as u64, "queueing tasks");
    let store = store.clone();
    in_parallel(SETUP_JOBS, count, &bar, move |n| {
        let (store, priorities, engagements) =
            (store.clone(), priorities.clone(), engagements.clone());
        async move {
            let data = json!({ "reference": format!("BENCH-{n}") });
            store
                .create_item(
                    NewItem {
                        engagement_id: engagements[n % engagements.len()],
                        data: data.as_object().cloned().unwrap_or_default(),
                        priority: priorities[n],
                        requester_id: None,
                        idempotency_key: None,
                    },
                    &bench_actor(),
                )
                .await
                .context("cannot queue a task")?;
            Ok(())
        }
    })
    .await?;
    bar.finish_and_clear();
    Ok(())
}

/// Workers waiting for work in the wake-up phase, and the engagement whose tasks only
/// they may take (their skill is theirs alone).
struct Waiting {
    engagement: EngagementId,
    workers: Vec<WorkerId>,
    /// With --http: their session cookies.
    sessions: Vec<String>,
}

const WAITERS: usize = 4;
const WAITING_SKILL: &str = "waiting";
/// A task no waiting worker holds after this long is a missed wake-up.
const WAKE_UP_LIMIT: Duration = Duration::from_secs(10);

async fn seed_waiting_workers(store: &Arc<dyn Backend>, run_tag: &str) -> anyhow::Result<Waiting> {
    let actor = bench_actor();
    store
        .publish_service(&service_source(WAITING_SKILL, 1))
        .await
        .context("cannot publish the wake-up service")?;
    let client = store
        .create_client(name(&format!("Bench wake-up client ({run_tag})"))?, &actor)
        .await?;
    let engagement = store
        .create_engagement(
            client.id,
            name(&format!("Bench wake-up engagement ({run_tag})"))?,
            &service_key(WAITING_SKILL, 1)?,
            1,
            EngagementSettings::default(),
            &actor,
        )
        .await?;
    let mut workers = Vec::new();
    for n in 0..WAITERS {
        let worker = Worker {
            id: WorkerId::new(),
            name: name(&format!("Bench waiting worker {}", n + 1))?,
            skills: [(key(WAITING_SKILL)?, level(1)?)].into(),
            languages: Language::parse("en").into_iter().collect(),
            clearances: [client.id].into(),
            certifications: Default::default(),
            exclusions: Default::default(),
            capacity: [(Channel::BackOffice, 1_000_000)].into(),
            presence: Presence::Available,
            idle_since: None,
            wrap_up_secs: 0,
            team: None,
        };
        store.create_worker(&worker, &actor).await?;
        workers.push(worker.id);
    }
    Ok(Waiting {
        engagement: engagement.id,
        workers,
        sessions: Vec::new(),
    })
}

/// Wake-up latencies, and tasks that reached no waiting worker in time.
#[derive(Default)]
struct WakeUps {
    latencies: Vec<Duration>,
    missed: u64,
}

/// Opens `--wakeups` tasks one at a time (through `feeder`) while the waiting workers wait
/// through `target`, timing each from submission to a worker holding it.
async fn measure_wake_ups(
    args: &RoutingArgs,
    feeder: &Arc<dyn Backend>,
    target: Target,
    waiting: &Waiting,
) -> anyhow::Result<WakeUps> {
    let mut wake_ups = WakeUps::default();
    if args.wakeups == 0 {
        return Ok(wake_ups);
    }
    let (sender, mut held) = tokio::sync::mpsc::unbounded_channel();
    let mut waiters = Vec::new();
    for (n, worker) in waiting.workers.iter().copied().enumerate() {
        let (target, sender) = (target.clone(), sender.clone());
        let session = waiting.sessions.get(n).cloned().unwrap_or_default();
        waiters.push(tokio::spawn(async move {
            loop {
                let outcome = target.wait_for_task(worker, &session).await;
                let failed = outcome.is_err();
                let message = outcome
                    .map(|item| (item, Instant::now()))
                    .map_err(|e| format!("{e:#}"));
                if sender.send(message).is_err() || failed {
                    return;
                }
            }
        }));
    }
    let outcome = async {
        let bar = progress(args.wakeups, "waking waiting workers");
        // Round 0 warms the feeding node's caches (the service definition) and is not counted.
        for n in 0..=args.wakeups {
            // The figure is for workers already waiting: let them get back to it.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let submitted = Instant::now();
            let data = json!({ "reference": format!("WAKE-{n}") });
            let item = feeder
                .create_item(
                    NewItem {
                        engagement_id: waiting.engagement,
                        data: data.as_object().cloned().unwrap_or_default(),
                        priority: Priority::Normal,
                        requester_id: None,
                        idempotency_key: None,
                    },
                    &bench_actor(),
                )
                .await
                .context("cannot open a wake-up task")?
                .value
                .id();
            let deadline = tokio::time::Instant::from_std(submitted + WAKE_UP_LIMIT);
            loop {
                match tokio::time::timeout_at(deadline, held.recv()).await {
                    Ok(Some(Ok((claimed, at)))) if claimed == item => {
                        if n > 0 {
                            wake_ups
                                .latencies
                                .push(at.saturating_duration_since(submitted));
                        }
                        break;
                    }
                    // A task missed earlier, reaching someone late.
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(error))) => anyhow::bail!("a waiting worker failed: {error}"),
                    Ok(None) => anyhow::bail!("every waiting worker stopped"),
                    Err(_) => {
                        wake_ups.missed += 1;
                        break;
                    }
                }
            }
            bar.inc(u64::from(n > 0));
        }
        bar.finish_and_clear();
        Ok(())
    }
    .await;
    for waiter in waiters {
        waiter.abort();
    }
    outcome.map(|()| wake_ups)
}

fn user_email(run_tag: &str, n: usize) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(&format!("worker-{}@bench-{run_tag}.example", n + 1))
        .map_err(|e| anyhow!("{e}"))
}

/// One agent user per worker, all with the same password hash.
async fn seed_users(
    store: &Arc<dyn Backend>,
    workers: &[WorkerId],
    run_tag: &str,
    hash: &str,
) -> anyhow::Result<()> {
    let bar = progress(workers.len() as u64, "creating users");
    let (store, workers, run_tag, hash) = (
        store.clone(),
        Arc::new(workers.to_vec()),
        run_tag.to_owned(),
        hash.to_owned(),
    );
    in_parallel(SETUP_JOBS, workers.len(), &bar, move |n| {
        let (store, workers, run_tag, hash) = (
            store.clone(),
            workers.clone(),
            run_tag.clone(),
            hash.clone(),
        );
        async move {
            store
                .create_user(
                    NewUser {
                        email: user_email(&run_tag, n)?,
                        name: name(&format!("Bench worker {}", n + 1))?,
                        role: Role::Agent,
                        client_id: None,
                        worker_id: Some(workers[n]),
                        password_hash: Some(hash),
                    },
                    &bench_actor(),
                )
                .await?;
            Ok(())
        }
    })
    .await?;
    bar.finish_and_clear();
    Ok(())
}

/// The real server, in this process, on a free port of 127.0.0.1.
struct HttpServer {
    base: String,
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl HttpServer {
    async fn start(
        store: Arc<dyn Backend>,
        clock: Arc<dyn Clock>,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1")?;
        let base = format!("http://{}", listener.local_addr()?);
        let blobs = LocalDirectory::open(data_dir.join("attachments"))
            .await
            .context("cannot create the attachments directory")?;
        let config = Config {
            // Claimed tasks are never renewed here: a lapsing lease would put them back
            // in line and show up as a double claim.
            task_lease: jiff::SignedDuration::from_hours(24),
            // The claims were only measured: nothing to hand back when the server stops.
            hand_back_on_shutdown: false,
            // Waiting workers must be woken by the notification, not by a fallback poll.
            wake_poll_interval: Duration::from_secs(3600),
            ..Config::default()
        };
        let state = AppState::new(store, clock, Arc::new(blobs), config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(delego_server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            base,
            client,
            stop,
            task,
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(error = format!("{error:#}"), "the server"),
            Ok(Err(error)) => tracing::warn!(%error, "the server task"),
            Err(_) => tracing::warn!("the server did not stop within 30 s"),
        }
    }
}

/// Signs every worker's user in over HTTP; returns their session cookies.
async fn sign_in(
    server: &HttpServer,
    count: usize,
    run_tag: &str,
    password: &str,
) -> anyhow::Result<Vec<String>> {
    let bar = progress(count as u64, "signing in");
    let url = format!("{}/api/v1/auth/login", server.base);
    let (client, run_tag, password) = (
        server.client.clone(),
        run_tag.to_owned(),
        password.to_owned(),
    );
    let sessions = in_parallel(SIGN_IN_JOBS, count, &bar, move |n| {
        let (client, url, run_tag, password) = (
            client.clone(),
            url.clone(),
            run_tag.clone(),
            password.clone(),
        );
        async move {
            let email = user_email(&run_tag, n)?;
            let response = client
                .post(&url)
                .json(&json!({ "email": email.as_str(), "password": password }))
                .send()
                .await
                .context("cannot sign in")?;
            let status = response.status();
            let cookie = response
                .headers()
                .get_all(reqwest::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split(';').next())
                .find(|pair| pair.starts_with(auth::SESSION_COOKIE))
                .map(str::to_owned);
            match cookie {
                Some(cookie) if status.is_success() => Ok(cookie),
                _ => Err(anyhow!(
                    "signing in as {email} answered {status}: {}",
                    response.text().await.unwrap_or_default()
                )),
            }
        }
    })
    .await?;
    bar.finish_and_clear();
    Ok(sessions)
}

/// How a claim is made.
#[derive(Clone)]
enum Target {
    Store(Arc<dyn Backend>),
    Http {
        client: reqwest::Client,
        next_url: String,
    },
}

impl Target {
    /// Claims the next task for worker `n`; `None` when there is none for it.
    async fn claim(&self, floor: &Floor, n: usize) -> anyhow::Result<Option<TaskId>> {
        match self {
            Target::Store(store) => Ok(store
                .claim_next_task(floor.workers[n])
                .await
                .context("claim_next_task failed")?
                .map(|claimed| claimed.task.id)),
            Target::Http { client, next_url } => {
                let claimed = post_next(client, next_url, &floor.sessions[n]).await?;
                claimed
                    .map(|claimed| id_at(&claimed, "/task/id"))
                    .transpose()
            }
        }
    }

    /// Waits until `worker` (signed in with `session` over HTTP) holds a task; returns
    /// the task's item.
    async fn wait_for_task(&self, worker: WorkerId, session: &str) -> anyhow::Result<WorkItemId> {
        match self {
            Target::Store(store) => {
                let mut wake_ups = store.wake_ups();
                loop {
                    // Marked before looking, so that work announced meanwhile wakes us.
                    wake_ups.borrow_and_update();
                    if let Some(claimed) = store.claim_next_task(worker).await? {
                        return Ok(claimed.item.id());
                    }
                    wake_ups.changed().await.context("the store closed")?;
                }
            }
            Target::Http { client, next_url } => loop {
                let url = format!("{next_url}?wait=60");
                if let Some(claimed) = post_next(client, &url, session).await? {
                    return id_at(&claimed, "/item/id");
                }
            },
        }
    }
}

/// `POST /api/v1/tasks/next`: the claimed task and its item, or `None` on 204.
async fn post_next(
    client: &reqwest::Client,
    url: &str,
    session: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let response = client
        .post(url)
        .header(reqwest::header::COOKIE, session)
        .send()
        .await
        .context("POST /api/v1/tasks/next failed")?;
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Ok(None);
    }
    let body = response.bytes().await.context("reading the claimed task")?;
    if !status.is_success() {
        anyhow::bail!(
            "POST /api/v1/tasks/next answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    serde_json::from_slice(&body)
        .map(Some)
        .context("the claimed task is not JSON")
}

fn id_at<T: std::str::FromStr>(claimed: &serde_json::Value, pointer: &str) -> anyhow::Result<T> {
    claimed
        .pointer(pointer)
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse::<T>().ok())
        .ok_or_else(|| anyhow!("the claimed task has no {pointer}"))
}

/// Workers still finding work, shared by the claimers.
struct Live {
    workers: Vec<usize>,
    misses: Vec<u32>,
}

/// A claim that fails (a database error, an HTTP error status) is counted and reported;
/// after this many the run stops with the error.
const MAX_FAILED_CLAIMS: u64 = 100;

/// What the timed phase saw.
#[derive(Default)]
struct Measured {
    elapsed: Duration,
    /// Latency of each claim that got a task.
    latencies: Vec<Duration>,
    /// Latency of each claim that found no task for its worker.
    empty_latencies: Vec<Duration>,
    claimed: Vec<TaskId>,
    failed: u64,
    first_error: Option<String>,
}

impl Measured {
    fn absorb(&mut self, other: Measured) {
        self.latencies.extend(other.latencies);
        self.empty_latencies.extend(other.empty_latencies);
        self.claimed.extend(other.claimed);
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Counters shared by the claimers.
#[derive(Default)]
struct Progress {
    /// Claims begun (reserved against --claims) and claims that got a task.
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
}

async fn measure(
    args: &RoutingArgs,
    floor: Arc<Floor>,
    target: Target,
) -> anyhow::Result<Measured> {
    let live = Arc::new(Mutex::new(Live {
        workers: (0..floor.workers.len()).collect(),
        misses: vec![0; floor.workers.len()],
    }));
    let limit = args.claims.unwrap_or(u64::MAX);
    let counters = Arc::new(Progress::default());
    let bar = progress(
        args.claims.unwrap_or(args.tasks).min(args.tasks),
        "claiming",
    );
    let began = Instant::now();
    let mut handles = Vec::new();
    for claimer in 0..args.claimers {
        let (floor, target, live, counters, bar) = (
            floor.clone(),
            target.clone(),
            live.clone(),
            counters.clone(),
            bar.clone(),
        );
        let mut rng = XorShift::new(args.seed ^ (claimer + 1).wrapping_mul(0xA076_1D64_78BD_642F));
        handles.push(tokio::spawn(async move {
            let mut seen = Measured::default();
            loop {
                if counters.failed.load(Ordering::Relaxed) >= MAX_FAILED_CLAIMS {
                    break;
                }
                if counters.started.fetch_add(1, Ordering::AcqRel) >= limit {
                    counters.started.fetch_sub(1, Ordering::AcqRel);
                    if counters.succeeded.load(Ordering::Acquire) >= limit {
                        break;
                    }
                    // Claims in flight may still come back empty and free their slot.
                    tokio::time::sleep(Duration::from_micros(100)).await;
                    continue;
                }
                let worker = {
                    let live = live.lock().unwrap_or_else(|p| p.into_inner());
                    (!live.workers.is_empty()).then(|| live.workers[rng.below(live.workers.len())])
                };
                let Some(worker) = worker else {
                    counters.started.fetch_sub(1, Ordering::AcqRel);
                    break;
                };
                let t0 = Instant::now();
                let outcome = target.claim(&floor, worker).await;
                let latency = t0.elapsed();
                match outcome {
                    Ok(Some(task)) => {
                        seen.latencies.push(latency);
                        seen.claimed.push(task);
                        counters.succeeded.fetch_add(1, Ordering::AcqRel);
                        bar.inc(1);
                        live.lock().unwrap_or_else(|p| p.into_inner()).misses[worker] = 0;
                    }
                    Ok(None) => {
                        seen.empty_latencies.push(latency);
                        counters.started.fetch_sub(1, Ordering::AcqRel);
                        let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
                        live.misses[worker] += 1;
                        if live.misses[worker] >= DRY_AFTER
                            && let Some(at) = live.workers.iter().position(|w| *w == worker)
                        {
                            live.workers.swap_remove(at);
                        }
                    }
                    Err(error) => {
                        counters.started.fetch_sub(1, Ordering::AcqRel);
                        counters.failed.fetch_add(1, Ordering::AcqRel);
                        seen.failed += 1;
                        let message = format!("{error:#} (after {:.1} s)", latency.as_secs_f64());
                        bar.suspend(|| eprintln!("warning: a claim failed: {message}"));
                        seen.first_error.get_or_insert(message);
                    }
                }
            }
            seen
        }));
    }
    let mut measured = Measured::default();
    for handle in handles {
        measured.absorb(handle.await.context("a claimer panicked")?);
    }
    measured.elapsed = began.elapsed();
    bar.finish_and_clear();
    if measured.failed >= MAX_FAILED_CLAIMS {
        anyhow::bail!(
            "{} claims failed; the first: {}",
            measured.failed,
            measured.first_error.unwrap_or_default()
        );
    }
    Ok(measured)
}

/// The figures printed.
struct Report {
    backend: String,
    mode: &'static str,
    tasks: u64,
    workers: u64,
    claimers: u64,
    claims: u64,
    empty_claims: u64,
    failed_claims: u64,
    first_error: Option<String>,
    elapsed: Duration,
    claims_per_second: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    empty_p50: Duration,
    empty_p99: Duration,
    empty_max: Duration,
    double_claims: u64,
    wake_ups: WakeUpFigures,
    setup: Duration,
    seed: u64,
}

struct WakeUpFigures {
    measured: u64,
    missed: u64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `p`
/// percent of the values at or below it.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Measured {
    fn report(
        mut self,
        args: &RoutingArgs,
        backend: &str,
        mode: &'static str,
        setup: Duration,
        mut wake_ups: WakeUps,
    ) -> Report {
        self.latencies.sort_unstable();
        wake_ups.latencies.sort_unstable();
        self.empty_latencies.sort_unstable();
        let claims = self.claimed.len() as u64;
        let distinct: HashSet<TaskId> = self.claimed.iter().copied().collect();
        let seconds = self.elapsed.as_secs_f64();
        Report {
            backend: backend.to_owned(),
            mode,
            tasks: args.tasks,
            workers: args.workers,
            claimers: args.claimers,
            claims,
            empty_claims: self.empty_latencies.len() as u64,
            failed_claims: self.failed,
            first_error: self.first_error,
            elapsed: self.elapsed,
            claims_per_second: if seconds > 0.0 {
                claims as f64 / seconds
            } else {
                0.0
            },
            p50: percentile(&self.latencies, 50.0),
            p90: percentile(&self.latencies, 90.0),
            p99: percentile(&self.latencies, 99.0),
            max: self.latencies.last().copied().unwrap_or_default(),
            empty_p50: percentile(&self.empty_latencies, 50.0),
            empty_p99: percentile(&self.empty_latencies, 99.0),
            empty_max: self.empty_latencies.last().copied().unwrap_or_default(),
            double_claims: claims - distinct.len() as u64,
            wake_ups: WakeUpFigures {
                measured: wake_ups.latencies.len() as u64,
                missed: wake_ups.missed,
                p50: percentile(&wake_ups.latencies, 50.0),
                p99: percentile(&wake_ups.latencies, 99.0),
                max: wake_ups.latencies.last().copied().unwrap_or_default(),
            },
            setup,
            seed: args.seed,
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Report {
    fn durability(&self) -> &'static str {
        match self.backend.as_str() {
            "sqlite" => "temporary SQLite file, WAL, synchronous=FULL",
            _ => "PostgreSQL, server settings",
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "backend": self.backend,
            "mode": self.mode,
            "tasks": self.tasks,
            "workers": self.workers,
            "claimers": self.claimers,
            "claims": self.claims,
            "empty_claims": self.empty_claims,
            "failed_claims": self.failed_claims,
            "first_error": self.first_error,
            "elapsed_seconds": (self.elapsed.as_secs_f64() * 1e3).round() / 1e3,
            "claims_per_second": (self.claims_per_second * 10.0).round() / 10.0,
            "p50_ms": ms(self.p50),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "max_ms": ms(self.max),
            "empty_p50_ms": ms(self.empty_p50),
            "empty_p99_ms": ms(self.empty_p99),
            "empty_max_ms": ms(self.empty_max),
            "double_claims": self.double_claims,
            "wakeups": self.wake_ups.measured,
            "missed_wakeups": self.wake_ups.missed,
            "wake_p50_ms": ms(self.wake_ups.p50),
            "wake_p99_ms": ms(self.wake_ups.p99),
            "wake_max_ms": ms(self.wake_ups.max),
            "setup_seconds": (self.setup.as_secs_f64() * 10.0).round() / 10.0,
            "seed": self.seed,
        })
    }

    fn table(&self) -> String {
        let mode = match self.mode {
            "http" => "http (POST /api/v1/tasks/next, in-process server)",
            _ => "store (Store::claim_next_task + routing)",
        };
        let latency = |p50, p90, p99, max| {
            format!(
                "p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3} ms",
                ms(p50),
                ms(p90),
                ms(p99),
                ms(max)
            )
        };
        let mut rows = vec![
            (
                "backend",
                format!("{} ({})", self.backend, self.durability()),
            ),
            ("mode", mode.to_owned()),
            (
                "tasks",
                format!("{} over {ENGAGEMENTS} engagements", self.tasks),
            ),
            ("workers", self.workers.to_string()),
            ("claimers", self.claimers.to_string()),
            ("claims", self.claims.to_string()),
            ("elapsed", format!("{:.2} s", self.elapsed.as_secs_f64())),
            ("claims/s", format!("{:.1}", self.claims_per_second)),
            ("latency", latency(self.p50, self.p90, self.p99, self.max)),
            (
                "empty claims",
                format!(
                    "{} (p50 {:.3}  p99 {:.3}  max {:.3} ms)",
                    self.empty_claims,
                    ms(self.empty_p50),
                    ms(self.empty_p99),
                    ms(self.empty_max)
                ),
            ),
            ("failed claims", self.failed_claims.to_string()),
            ("double claims", self.double_claims.to_string()),
            (
                "wake-ups",
                format!(
                    "{} (p50 {:.3}  p99 {:.3}  max {:.3} ms{}), {} missed",
                    self.wake_ups.measured,
                    ms(self.wake_ups.p50),
                    ms(self.wake_ups.p99),
                    ms(self.wake_ups.max),
                    if self.backend == "postgres" {
                        ", across nodes"
                    } else {
                        ""
                    },
                    self.wake_ups.missed
                ),
            ),
            (
                "setup (untimed)",
                format!("{:.1} s", self.setup.as_secs_f64()),
            ),
        ];
        if let Some(error) = &self.first_error {
            rows.push(("first failure", error.clone()));
        }
        let mut out = String::from("delego bench routing\n");
        for (label, value) in rows {
            out.push_str(&format!("  {label:<16} {value}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&values, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&values[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn every_bench_service_loads() {
        for n in 0..ENGAGEMENTS {
            let (skill, level) = engagement_step(n);
            delego_core::definition::load_definition(&service_source(skill, level))
                .unwrap_or_else(|problems| panic!("{skill} {level}: {problems:?}"));
        }
    }

    #[test]
    fn xorshift_is_deterministic_and_spread() {
        let (mut a, mut b) = (XorShift::new(7), XorShift::new(7));
        let draws: Vec<usize> = (0..1000).map(|_| a.below(5)).collect();
        assert!(
            draws
                .iter()
                .zip((0..1000).map(|_| b.below(5)))
                .all(|(x, y)| *x == y)
        );
        assert!((0..5).all(|k| draws.contains(&k)));
    }
}

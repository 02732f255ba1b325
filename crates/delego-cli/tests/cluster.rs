//! Several `delego serve` processes on one PostgreSQL database, under heavy contention: few
//! open tasks, many concurrent claimers spread over the nodes. Midway one node is killed
//! with SIGKILL while its workers hold tasks. At the end the database and the audit log
//! must show that no task was ever held by two workers at once, that no task was lost,
//! and that the killed node's tasks came back when their lease lapsed and were finished
//! through the other nodes.
//!
//! The size is the number of tasks to finish, `DELEGO_CLUSTER_CLAIMS` (default 400; every
//! task is claimed at least once, so the run makes at least that many claims). Skipped
//! without `DELEGO_TEST_DATABASE_URL` outside CI, like every PostgreSQL test. A large run:
//!
//! ```text
//! DELEGO_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/delego_ci \
//! DELEGO_CLUSTER_CLAIMS=100000 cargo test --release -p delego-cli --test cluster -- --nocapture
//! ```

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use delego_core::clock::SystemClock;
use delego_core::id::{EngagementId, WorkerId};
use delego_core::identity::Role;
use delego_core::model::{Actor, Presence, Worker};
use delego_core::routing::Channel;
use delego_core::values::{EmailAddress, Key, Language, Name, Priority, SkillLevel};
use delego_store::{Directory, NewItem, NewUser, PgStore, Store};
use reqwest::StatusCode;
use serde_json::{Value as Json, json};
use sqlx::postgres::{PgPool, PgPoolOptions};

/// Server processes on the one database.
const NODES: usize = 4;
/// The node killed midway.
const DOOMED: usize = NODES - 1;
/// Concurrent claimers, each signed in as its own worker; claimer `i` starts on node
/// `i % NODES`.
const CLAIMERS: usize = 32;
/// The feeder keeps at most this many tasks open, so that claimers fight over them.
const OPEN_TASKS: i64 = 8;
/// `--lease-seconds` of every node (the smallest it accepts).
const LEASE_SECONDS: u64 = 5;
/// Claimers on the doomed node keep every `HOLD_EVERY`th task they claim, renewing its
/// lease as a worker's client does while the worker works on it…
const HOLD_EVERY: u64 = 4;
/// …up to this many at a time each. The kill abandons these: they must come back.
const HOLD_AT_MOST: usize = 2;
/// How often a holding claimer renews its leases (well inside `LEASE_SECONDS`).
const RENEW_EVERY: Duration = Duration::from_secs(1);
const DEFAULT_TASKS: usize = 400;
/// No claim for this long fails the test: with a lease of a few seconds nothing waits so
/// long.
const STALL: Duration = Duration::from_secs(60);
const PASSWORD: &str = "cluster test password";

const SERVICE: &str = r#"[service]
key = "cluster-test"
version = 1
name = "Cluster test"
kind = "bpo"
skills = ["bpo"]
start = "work"

[[intake]]
name = "reference"
type = "text"
required = true
max_length = 40

[[steps]]
id = "work"
kind = "human"
skill = "bpo"
handle_time = "5m"
outcomes = ["done"]
on = { done = "finish" }

[[steps]]
id = "finish"
kind = "end"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn nodes_under_contention_never_double_claim_lose_no_task_and_reclaim_a_dead_nodes_tasks() {
    let tasks = match std::env::var("DELEGO_CLUSTER_CLAIMS") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .replace('_', "")
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .unwrap_or_else(|| panic!("DELEGO_CLUSTER_CLAIMS must be a positive number: {v}")),
        _ => DEFAULT_TASKS,
    };
    assert!(
        tasks >= 100,
        "DELEGO_CLUSTER_CLAIMS must be at least 100 to kill a node midway"
    );
    // Generous: a debug build on two cores, or a large run in release.
    let limit = Duration::from_secs(240) + Duration::from_millis(20) * tasks as u32;

    let Some(database) = delego_store::testing::PostgresDatabase::fresh().await else {
        return; // PostgreSQL is not configured outside CI
    };
    let store = Arc::new(
        PgStore::open(&database.url, Arc::new(SystemClock))
            .await
            .expect("the test's own store opens (and migrates) the fresh database"),
    );
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&database.url)
        .await
        .expect("connect for the checks");

    // The floor: one service, one client, one engagement, a worker and a user per claimer.
    store.publish_service(SERVICE).await.unwrap();
    let client = store
        .create_client(Name::parse("Cluster client").unwrap(), &Actor::System)
        .await
        .unwrap();
    let engagement = store
        .create_engagement(
            client.id,
            Name::parse("Cluster engagement").unwrap(),
            &Key::parse("cluster-test").unwrap(),
            1,
            Default::default(),
            &Actor::System,
        )
        .await
        .unwrap()
        .id;
    let hash = delego_server::auth::hash_password(PASSWORD.into())
        .await
        .unwrap();
    for n in 0..CLAIMERS {
        let worker = Worker {
            id: WorkerId::new(),
            name: Name::parse(&format!("Cluster worker {n}")).unwrap(),
            skills: [(Key::parse("bpo").unwrap(), SkillLevel::new(3).unwrap())].into(),
            languages: [Language::parse("en").unwrap()].into(),
            clearances: [client.id].into(),
            certifications: Default::default(),
            exclusions: Default::default(),
            capacity: [(Channel::BackOffice, 1_000_000)].into(),
            presence: Presence::Available,
            idle_since: None,
            wrap_up_secs: 0,
            team: None,
        };
        store.create_worker(&worker, &Actor::System).await.unwrap();
        store
            .create_user(
                NewUser {
                    email: EmailAddress::parse(&email(n)).unwrap(),
                    name: Name::parse(&format!("Cluster worker {n}")).unwrap(),
                    role: Role::Agent,
                    client_id: None,
                    worker_id: Some(worker.id),
                    password_hash: Some(hash.clone()),
                },
                &Actor::System,
            )
            .await
            .unwrap();
    }

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let mut cluster = Cluster::start(&database.url, &http).await;
    let bases: Vec<String> = cluster.nodes.iter().map(|n| n.base.clone()).collect();

    // Each claimer signs in on its first node; sessions live in the database, so the
    // cookie works on every node, as a worker's client carries on through another node.
    let mut cookies = Vec::new();
    for n in 0..CLAIMERS {
        cookies.push(sign_in(&http, &bases[n % NODES], &email(n)).await);
    }

    let shared = Arc::new(Shared {
        bases,
        dead: (0..NODES).map(|_| AtomicBool::new(false)).collect(),
        stop: AtomicBool::new(false),
        holding: AtomicBool::new(true),
        claims: AtomicU64::new(0),
        held_now: AtomicUsize::new(0),
        claimed: tokio::sync::Notify::new(),
        abandoned: Mutex::new(Vec::new()),
        failure: Mutex::new(None),
        created: AtomicUsize::new(0),
        progress: Mutex::new((0, Instant::now())),
    });
    let started = Instant::now();
    let feeder = tokio::spawn(feed(
        store.clone(),
        pool.clone(),
        engagement,
        tasks,
        shared.clone(),
    ));
    let claimers: Vec<_> = cookies
        .into_iter()
        .enumerate()
        .map(|(n, cookie)| tokio::spawn(claimer(n, cookie, http.clone(), shared.clone())))
        .collect();

    // Midway, with the doomed node's workers holding tasks, kill it.
    let deadline = started + limit;
    loop {
        shared
            .check(deadline, "waiting to kill a node midway", &pool)
            .await;
        if shared.claims.load(Ordering::SeqCst) >= (tasks as u64).div_ceil(2)
            && shared.held_now.load(Ordering::SeqCst) > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held_at_kill = shared.held_now.load(Ordering::SeqCst);
    let claims_at_kill = shared.claims.load(Ordering::SeqCst);
    // Mark it dead first, so that a claimer whose request fails knows where not to go.
    shared.dead[DOOMED].store(true, Ordering::SeqCst);
    shared.holding.store(false, Ordering::SeqCst);
    cluster.kill(DOOMED);
    let killed_at_micros = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap();

    // Until every task is done (the database says so), or the time limit.
    loop {
        shared
            .check(deadline, "waiting for every task to be done", &pool)
            .await;
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status = 'done'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if feeder.is_finished() && done >= tasks as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    shared.stop.store(true, Ordering::SeqCst);
    let items = feeder.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
    let mut reports = Vec::new();
    for claimer in claimers {
        reports.push(claimer.await.unwrap());
    }
    if let Some(failure) = shared.failure() {
        panic!("{failure}");
    }
    // The surviving nodes are still up: none of them died under the load.
    cluster.assert_survivors_alive();

    // The database: every task done exactly once, none lost.
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM tasks GROUP BY status ORDER BY status")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        by_status,
        vec![("done".to_owned(), tasks as i64)],
        "every task done, none open, held or cancelled"
    );
    let items_by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM work_items GROUP BY status")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        items_by_status,
        vec![("completed".to_owned(), tasks as i64)],
        "every item completed"
    );
    assert_eq!(items.len(), tasks);
    let not_one_task: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT item_id FROM tasks GROUP BY item_id HAVING count(*) <> 1) t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(not_one_task, 0, "one task per item: none duplicated");
    let task_items: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT id::text, item_id::text FROM tasks")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let with_task: HashSet<&str> = task_items.values().map(String::as_str).collect();
    for item in &items {
        assert!(
            with_task.contains(item.as_str()),
            "item {item} has its task"
        );
    }

    // The audit log: per item, claims and their ends never overlap.
    let events: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT item_id::text, action, detail->>'worker', at FROM audit_events \
         WHERE action IN ('task.claimed', 'task.submitted', 'task.lease_expired', \
         'task.released', 'task.handed_back') ORDER BY item_id, seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut histories: HashMap<&str, History> = HashMap::new();
    let mut problems = Vec::new();
    for (item, action, worker, at) in &events {
        let history = histories.entry(item.as_str()).or_default();
        let worker = worker.clone().unwrap_or_default();
        match (action.as_str(), &history.holder) {
            ("task.claimed", None) => {
                history.claims += 1;
                history.holder = Some((worker, *at));
            }
            ("task.claimed", Some((holder, _))) => problems.push(format!(
                "item {item}: claimed by {worker} while held by {holder} (double claim)"
            )),
            ("task.submitted", Some((holder, _))) if *holder == worker => {
                history.submitted += 1;
                history.holder = None;
            }
            ("task.lease_expired", Some((holder, claimed_at))) if *holder == worker => {
                if at - claimed_at < LEASE_SECONDS as i64 * 1_000_000 {
                    problems.push(format!(
                        "item {item}: lease expired {} ms after the claim, before {LEASE_SECONDS} s",
                        (at - claimed_at) / 1000
                    ));
                }
                history.expired += 1;
                history.last_expired_at = Some(*at);
                history.holder = None;
            }
            ("task.released" | "task.handed_back", Some((holder, _))) if *holder == worker => {
                history.released += 1;
                history.holder = None;
            }
            (action, holder) => problems.push(format!(
                "item {item}: {action} by {worker} while held by {holder:?}"
            )),
        }
    }
    for item in &items {
        match histories.get(item.as_str()) {
            None => problems.push(format!("item {item}: never claimed")),
            Some(h) if h.submitted != 1 || h.holder.is_some() => problems.push(format!(
                "item {item}: submitted {} time(s), still held by {:?}",
                h.submitted, h.holder
            )),
            Some(_) => {}
        }
    }

    // What the claimers saw: a task handed out twice only after its lease lapsed (or it was
    // handed back) in between.
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for report in &reports {
        for task in &report.claimed {
            *seen.entry(task.as_str()).or_default() += 1;
        }
    }
    for (task, times) in &seen {
        let Some(item) = task_items.get(*task) else {
            problems.push(format!("task {task}: handed out but not in the database"));
            continue;
        };
        let h = &histories[item.as_str()];
        if *times > h.claims || *times > 1 + h.expired + h.released {
            problems.push(format!(
                "task {task}: handed out {times} times; the audit log has {} claim(s), {} lease \
                 expiries and {} release(s)",
                h.claims, h.expired, h.released
            ));
        }
    }

    // The killed node's held tasks came back after their lease and were finished elsewhere.
    let abandoned = shared.abandoned.lock().unwrap().clone();
    assert!(
        !abandoned.is_empty(),
        "the killed node's workers held tasks ({held_at_kill} at the kill)"
    );
    // Each came back when its lease lapsed, was claimed again and finished through another
    // node. Renewed while the node lived, their leases lapse after the kill, unless a
    // renewal came too late on a starved machine (counted apart; a few at most).
    let mut back_after = Vec::new();
    let mut lapsed_before_kill = 0;
    for task in &abandoned {
        let h = &histories[task_items[task].as_str()];
        match h.last_expired_at {
            Some(at) if h.claims >= 2 && at >= killed_at_micros => {
                back_after.push(Duration::from_micros((at - killed_at_micros) as u64));
            }
            Some(_) if h.claims >= 2 => lapsed_before_kill += 1,
            _ => problems.push(format!(
                "task {task}, held through the killed node: {} lease expiries, {} claims",
                h.expired, h.claims
            )),
        }
    }
    assert!(
        !back_after.is_empty(),
        "none of the {} tasks held through the killed node lapsed after the kill",
        abandoned.len()
    );
    let back_after = (
        back_after.iter().min().copied().unwrap_or_default(),
        back_after.iter().max().copied().unwrap_or_default(),
    );
    let summary_claims: u64 = histories.values().map(|h| h.claims).sum();
    let expired: u64 = histories.values().map(|h| h.expired).sum();
    let released: u64 = histories.values().map(|h| h.released).sum();
    assert!(
        problems.is_empty(),
        "{} problem(s), the first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(expired > 0, "the killed node's tasks expired");

    let answered: u64 = reports.iter().map(|r| r.claimed.len() as u64).sum();
    let late: u64 = reports.iter().map(|r| r.late_submits).sum();
    let lost_holds: u64 = reports.iter().map(|r| r.lost_holds).sum();
    let retried: u64 = reports.iter().map(|r| r.retried_submits).sum();
    let retried_done: u64 = reports.iter().map(|r| r.retried_done_already).sum();
    let errors: u64 = reports.iter().map(|r| r.transport_errors).sum();
    let empty: u64 = reports.iter().map(|r| r.empty).sum();
    eprintln!(
        "cluster: {tasks} tasks done through {NODES} nodes by {CLAIMERS} claimers (at most \
         {OPEN_TASKS} open): {summary_claims} claims ({answered} answered, {empty} empty \
         polls), {expired} lease expiries, {released} releases; node {DOOMED} SIGKILLed after \
         {claims_at_kill} claims holding {} tasks, back in line {:.1}-{:.1} s after the kill \
         ({lapsed_before_kill} lapsed before it); \
         {retried} submits retried on another node ({retried_done} had committed), {late} late \
         submits, {lost_holds} lost holds, {errors} transport errors; 0 double claims, 0 lost \
         tasks; {:.1} s, {:.0} claims/s",
        abandoned.len(),
        back_after.0.as_secs_f64(),
        back_after.1.as_secs_f64(),
        elapsed.as_secs_f64(),
        summary_claims as f64 / elapsed.as_secs_f64()
    );
    drop(cluster);
    pool.close().await;
    drop(store);
}

fn email(n: usize) -> String {
    format!("worker-{n}@cluster.example")
}

#[derive(Default)]
struct History {
    /// The worker holding the task and since when (µs), per the audit log.
    holder: Option<(String, i64)>,
    claims: u64,
    submitted: u64,
    expired: u64,
    /// When its lease last lapsed (µs).
    last_expired_at: Option<i64>,
    released: u64,
}

/// What the feeder, the claimers and the test share.
struct Shared {
    bases: Vec<String>,
    dead: Vec<AtomicBool>,
    stop: AtomicBool,
    /// While true, claimers on the doomed node keep some of their tasks.
    holding: AtomicBool,
    /// Successful claims, as the claimers saw them.
    claims: AtomicU64,
    /// Tasks the doomed node's claimers hold right now.
    held_now: AtomicUsize,
    /// A claim succeeded: the feeder may open more tasks.
    claimed: tokio::sync::Notify,
    /// Tasks held through the doomed node when it died.
    abandoned: Mutex<Vec<String>>,
    failure: Mutex<Option<String>>,
    /// Items the feeder created so far.
    created: AtomicUsize,
    /// The claim count when it last changed, and when.
    progress: Mutex<(u64, Instant)>,
}

/// What the tasks that are not done look like, for a failure message.
async fn diagnose(pool: &PgPool) -> String {
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM tasks GROUP BY status ORDER BY status")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    let tasks: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(t)::text FROM tasks t WHERE status <> 'done' ORDER BY queued_at LIMIT 10",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let workers: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(w)::text FROM workers w WHERE presence::text NOT LIKE '%available%' LIMIT 5",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', to_timestamp(at / 1e6)::text, action, item_id::text, detail::text) \
         FROM audit_events WHERE item_id IN (SELECT item_id FROM tasks WHERE status <> 'done' \
         ORDER BY queued_at LIMIT 3) ORDER BY item_id, seq",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    format!(
        "tasks by status: {counts:?}\nunfinished tasks:\n{}\nworkers not available:\n{}\n\
         the first unfinished items' audit trails:\n{}",
        tasks.join("\n"),
        workers.join("\n"),
        events.join("\n")
    )
}

impl Shared {
    fn fail(&self, message: String) {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert(message);
        self.stop.store(true, Ordering::SeqCst);
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Panics with the first failure, or when the time limit has passed or nothing has
    /// been claimed for [`STALL`], with what the database holds.
    async fn check(&self, deadline: Instant, doing: &str, pool: &PgPool) {
        if let Some(failure) = self.failure() {
            panic!("{failure}");
        }
        let claims = self.claims.load(Ordering::SeqCst);
        let stalled = {
            let mut progress = self.progress.lock().unwrap();
            if progress.0 != claims {
                *progress = (claims, Instant::now());
            }
            progress.1.elapsed() > STALL
        };
        if Instant::now() > deadline || stalled {
            self.stop.store(true, Ordering::SeqCst);
            let why = if stalled {
                format!("no claim for {} s", STALL.as_secs())
            } else {
                "the time limit passed".into()
            };
            panic!(
                "{why} while {doing}: {claims} claims so far, {} items created\n{}",
                self.created.load(Ordering::SeqCst),
                diagnose(pool).await
            );
        }
    }

    /// The node claimer `n` goes on through when its node fails: its survivors in turn,
    /// as a load balancer spreads the clients of a dead node.
    fn live_node_for(&self, n: usize) -> usize {
        let live: Vec<usize> = (0..NODES)
            .filter(|node| !self.dead[*node].load(Ordering::SeqCst))
            .collect();
        live[n % live.len()]
    }
}

/// Opens tasks as claimers take them, keeping at most [`OPEN_TASKS`] open, until `total`
/// items exist; returns the items' ids.
async fn feed(
    store: Arc<PgStore>,
    pool: PgPool,
    engagement: EngagementId,
    total: usize,
    shared: Arc<Shared>,
) -> Result<Vec<String>, String> {
    let mut items = Vec::with_capacity(total);
    while items.len() < total && !shared.stop.load(Ordering::SeqCst) {
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status = 'open'")
            .fetch_one(&pool)
            .await
            .map_err(|e| format!("counting open tasks: {e}"))?;
        let room = usize::try_from(OPEN_TASKS - open).unwrap_or(0);
        if room == 0 {
            tokio::select! {
                _ = shared.claimed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            continue;
        }
        let mut batch = tokio::task::JoinSet::new();
        for n in items.len()..(items.len() + room).min(total) {
            let store = store.clone();
            batch.spawn(async move {
                let data = json!({ "reference": format!("CLUSTER-{n}") });
                store
                    .create_item(
                        NewItem {
                            engagement_id: engagement,
                            data: data.as_object().cloned().unwrap_or_default(),
                            priority: Priority::Normal,
                            requester_id: None,
                            idempotency_key: None,
                        },
                        &Actor::System,
                    )
                    .await
                    .map(|created| created.value.id().to_string())
            });
        }
        while let Some(created) = batch.join_next().await {
            match created {
                Ok(Ok(id)) => {
                    items.push(id);
                    shared.created.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Err(e)) => {
                    let message = format!("the feeder could not create an item: {e}");
                    shared.fail(message.clone());
                    return Err(message);
                }
                Err(e) => return Err(format!("the feeder panicked: {e}")),
            }
        }
    }
    Ok(items)
}

#[derive(Default)]
struct ClaimerReport {
    /// Task ids this claimer was handed, in order.
    claimed: Vec<String>,
    empty: u64,
    /// A submit through another node after the first one's node died.
    retried_submits: u64,
    /// Of those, refused because the first one had committed before its node died.
    retried_done_already: u64,
    /// Submits refused because the lease lapsed first (a very slow machine).
    late_submits: u64,
    /// Held tasks whose renewal was refused (lapsed before it).
    lost_holds: u64,
    transport_errors: u64,
}

/// Claims and finishes tasks as worker `n` until told to stop. Claimers on the doomed
/// node keep some tasks and renew their leases through it, like a worker's client on that
/// node; when it dies they lose those (the lease must give them back) and go on elsewhere.
async fn claimer(
    n: usize,
    cookie: String,
    http: reqwest::Client,
    shared: Arc<Shared>,
) -> ClaimerReport {
    let mut report = ClaimerReport::default();
    let mut node = n % NODES;
    let mut held: Vec<String> = Vec::new();
    let mut renewed = Instant::now();
    let mut kept = 0u64;
    let post = |node: usize, path: String| {
        http.post(format!("{}/api/v1{path}", shared.bases[node]))
            .header(reqwest::header::COOKIE, &cookie)
    };
    // Moves off a dead node, abandoning what was held there.
    let switch = |node: &mut usize, held: &mut Vec<String>, report: &mut ClaimerReport| {
        report.transport_errors += 1;
        if !held.is_empty() {
            shared.held_now.fetch_sub(held.len(), Ordering::SeqCst);
            shared.abandoned.lock().unwrap().append(held);
        }
        *node = shared.live_node_for(n);
    };
    while !shared.stop.load(Ordering::SeqCst) {
        if !held.is_empty() && renewed.elapsed() >= RENEW_EVERY {
            renewed = Instant::now();
            let mut gone = false;
            let mut kept_held = Vec::new();
            for task in std::mem::take(&mut held) {
                match post(node, format!("/tasks/{task}/lease")).send().await {
                    Ok(r) if r.status() == StatusCode::OK => kept_held.push(task),
                    Ok(r) if r.status() == StatusCode::CONFLICT => {
                        report.lost_holds += 1;
                        shared.held_now.fetch_sub(1, Ordering::SeqCst);
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        shared.fail(format!("renewing a lease answered {status}: {body}"));
                        return report;
                    }
                    Err(_) => {
                        kept_held.push(task);
                        gone = true;
                    }
                }
                if gone {
                    break;
                }
            }
            held.extend(kept_held);
            if gone {
                switch(&mut node, &mut held, &mut report);
                continue;
            }
        }
        let response = match post(node, "/tasks/next?wait=1".into()).send().await {
            Ok(response) => response,
            Err(_) => {
                switch(&mut node, &mut held, &mut report);
                continue;
            }
        };
        let status = response.status();
        let body: Json = match response.text().await {
            Ok(text) => serde_json::from_str(&text).unwrap_or(Json::String(text)),
            Err(_) => {
                // The node died while answering: a claim may have been made; its lease
                // gives the task back.
                switch(&mut node, &mut held, &mut report);
                continue;
            }
        };
        match status {
            StatusCode::NO_CONTENT => {
                report.empty += 1;
                continue;
            }
            StatusCode::OK => {}
            _ => {
                shared.fail(format!("claiming on node {node} answered {status}: {body}"));
                return report;
            }
        }
        let Some(task) = body["task"]["id"].as_str().map(str::to_owned) else {
            shared.fail(format!("a claim without a task id: {body}"));
            return report;
        };
        report.claimed.push(task.clone());
        shared.claims.fetch_add(1, Ordering::SeqCst);
        shared.claimed.notify_one();
        if node == DOOMED && shared.holding.load(Ordering::SeqCst) && held.len() < HOLD_AT_MOST {
            kept += 1;
            if kept.is_multiple_of(HOLD_EVERY) {
                if held.is_empty() {
                    renewed = Instant::now();
                }
                held.push(task);
                shared.held_now.fetch_add(1, Ordering::SeqCst);
                continue;
            }
        }
        let submit = |node: usize| {
            post(node, format!("/tasks/{task}/submit")).json(&json!({ "outcome": "done" }))
        };
        let answer = match submit(node).send().await {
            Ok(r) => Some((r.status(), r.text().await.unwrap_or_default())),
            Err(_) => None,
        };
        match answer {
            Some((StatusCode::OK, _)) => {}
            Some((StatusCode::CONFLICT, _)) => report.late_submits += 1,
            Some((status, body)) => {
                shared.fail(format!(
                    "submitting task {task} on node {node} answered {status}: {body}"
                ));
                return report;
            }
            None => {
                // The node died under the submit, which may or may not have committed:
                // the client tries again through another node.
                switch(&mut node, &mut held, &mut report);
                report.retried_submits += 1;
                match submit(node).send().await.map(|r| r.status()) {
                    Ok(StatusCode::OK) => {}
                    Ok(StatusCode::CONFLICT) => report.retried_done_already += 1,
                    Ok(status) => {
                        shared.fail(format!("submitting again on node {node} answered {status}"));
                        return report;
                    }
                    Err(e) => {
                        shared.fail(format!("submitting again on node {node} failed: {e}"));
                        return report;
                    }
                }
            }
        }
    }
    report
}

async fn sign_in(http: &reqwest::Client, base: &str, email: &str) -> String {
    let response = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("sign-in answers");
    let status = response.status();
    let cookie = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(delego_server::auth::SESSION_COOKIE))
        .map(str::to_owned);
    match cookie {
        Some(cookie) if status.is_success() => cookie,
        _ => panic!(
            "signing in as {email} answered {status}: {}",
            response.text().await.unwrap_or_default()
        ),
    }
}

/// A fresh database on the test server, dropped afterwards.
struct Node {
    child: Option<Child>,
    base: String,
    log: PathBuf,
}

/// The `delego serve` processes; all killed when dropped, their logs shown on failure.
struct Cluster {
    nodes: Vec<Node>,
    url: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts the nodes together, as a rollout does (each publishes the built-in catalog
    /// on start, so this also covers concurrent publishing), and waits until each answers
    /// `/readyz`.
    async fn start(url: &str, http: &reqwest::Client) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Self {
            nodes: Vec::new(),
            url: url.to_owned(),
            dir,
        };
        for n in 0..NODES {
            let node = cluster.spawn(n, 0);
            cluster.nodes.push(node);
        }
        cluster.wait_until_ready(http).await;
        cluster
    }

    fn spawn(&self, n: usize, attempt: u32) -> Node {
        // A free port: the OS picks one, we let go of it and hand it to the node.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_dir = self.dir.path().join(format!("node-{n}"));
        let log = self.dir.path().join(format!("node-{n}-{attempt}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_delego"))
            .args(["serve", "--database-url", &self.url, "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--lease-seconds", &LEASE_SECONDS.to_string(), "--data-dir"])
            .arg(&data_dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the delego binary starts");
        Node {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Waits for `/readyz` on every node; a node that lost its port to another process
    /// before binding it is started again on another.
    async fn wait_until_ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(120);
        for n in 0..NODES {
            let mut attempt = 0;
            loop {
                if let Ok(r) = http
                    .get(format!("{}/readyz", self.nodes[n].base))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    && r.status() == StatusCode::OK
                {
                    break;
                }
                let node = &mut self.nodes[n];
                if let Some(status) = node.child.as_mut().unwrap().try_wait().unwrap() {
                    let log = read_log(&node.log);
                    if log.contains("cannot listen") && attempt < 3 {
                        attempt += 1;
                        self.nodes[n] = self.spawn(n, attempt);
                        continue;
                    }
                    panic!("node {n} exited with {status} before it was ready:\n{log}");
                }
                assert!(
                    Instant::now() < deadline,
                    "node {n} was not ready within 120 s:\n{}",
                    read_log(&node.log)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// SIGKILL: the node gets no chance to hand anything back.
    fn kill(&mut self, n: usize) {
        let mut child = self.nodes[n].child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn assert_survivors_alive(&mut self) {
        for (n, node) in self.nodes.iter_mut().enumerate() {
            if let Some(child) = node.child.as_mut()
                && let Some(status) = child.try_wait().unwrap()
            {
                panic!("node {n} exited with {status}:\n{}", read_log(&node.log));
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            // Keep the logs, and show what matters: slow-statement warnings are many under
            // this load and say little.
            let kept = std::env::temp_dir().join(format!("delego-cluster-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&kept);
            for (n, node) in self.nodes.iter().enumerate() {
                let log = read_log(&node.log);
                if let Some(name) = node.log.file_name() {
                    let _ = std::fs::write(kept.join(name), &log);
                }
                let slow = log.lines().filter(|l| l.contains("slow statement")).count();
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| !l.contains("slow statement"))
                    .collect();
                eprintln!(
                    "--- node {n} ({}): {slow} slow-statement warnings; the last other lines:\n{}",
                    node.base,
                    lines[lines.len().saturating_sub(30)..].join("\n")
                );
            }
            eprintln!("--- the nodes' logs are kept in {}", kept.display());
        }
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

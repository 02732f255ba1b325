//! The routing decision alone: choosing one worker's next task, with no database.
//!
//! A queue of 1,000,000 open tasks spread over 20 engagements (5 clients, 5 skills, random
//! priorities, ages, deadlines and minimum levels) is built once, outside the timed code,
//! and kept per skill in serve-by order, as the store's index keeps it. Two cases are timed:
//!
//! - `claim_round`: the whole decision a claim makes — take the first `CLAIM_BATCH` tasks
//!   of each of the worker's skills from the ordered queues, merge them, keep the first
//!   `CLAIM_BATCH`, and let `routing::pick` choose (what `Store::claim_next_task` does per
//!   round, minus the SQL);
//! - `full_queue`: all 1,000,000 tasks handed to `pick` unsorted by skill, which is what a
//!   claim would cost if the store did not pre-select and pre-sort.
//!
//! Run with `cargo bench -p delego-core --bench ranking`; divan prints the median per call.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use delego_core::id::{ClientId, EngagementId, TaskId, WorkItemId, WorkerId};
use delego_core::model::{Task, Worker};
use delego_core::routing::{
    self, CLAIM_BATCH, FAIRNESS_BAND, Load, RoutingPolicy, SHARE_UNIT, Shares,
};
use delego_core::values::{Key, Priority, SkillLevel};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

/// Tasks in the queue.
const QUEUE: usize = 1_000_000;
const ENGAGEMENTS: usize = 20;
const CLIENTS: usize = 5;
const SKILLS: [&str; 5] = ["billing", "claims", "kyc", "support", "underwriting"];

fn main() {
    // Build the queue before divan starts timing anything.
    LazyLock::force(&FLOOR);
    divan::main();
}

/// A tiny deterministic generator (xorshift64*), so every run ranks the same queue.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Engagement {
    id: EngagementId,
    client: ClientId,
    skill: Key,
    min_level: SkillLevel,
}

struct Floor {
    worker: Worker,
    load: Load,
    shares: Shares,
    now: Timestamp,
    /// Every task, in serve-by order.
    queue: Vec<Task>,
    /// The open tasks of each skill, in serve-by order: the store's index.
    by_skill: BTreeMap<Key, Vec<Task>>,
}

static FLOOR: LazyLock<Floor> = LazyLock::new(build_floor);

fn key(s: &str) -> Key {
    Key::parse(s).expect("a valid key")
}

fn level(n: u64) -> SkillLevel {
    SkillLevel::new(u8::try_from(n).expect("a small level")).expect("a level from 1 to 5")
}

fn build_floor() -> Floor {
    let mut rng = XorShift(0x5EED_2026_0D1E_6000);
    let now: Timestamp = "2026-03-02T12:00:00Z".parse().expect("a timestamp");
    let clients: Vec<ClientId> = (0..CLIENTS).map(|_| ClientId::new()).collect();
    let engagements: Vec<Engagement> = (0..ENGAGEMENTS)
        .map(|_| Engagement {
            id: EngagementId::new(),
            client: clients[rng.below(CLIENTS as u64) as usize],
            skill: key(SKILLS[rng.below(SKILLS.len() as u64) as usize]),
            min_level: level(1 + rng.below(3)),
        })
        .collect();

    // The worker: two skills at random levels, cleared for every client, free capacity.
    let mut skills = BTreeMap::new();
    while skills.len() < 2 {
        let skill = SKILLS[rng.below(SKILLS.len() as u64) as usize];
        skills.insert(skill.to_owned(), 1 + rng.below(5));
    }
    // Built from JSON so that fields added later with a default do not break the bench.
    let worker: Worker = serde_json::from_value(json!({
        "id": WorkerId::new(),
        "name": "Bench Worker",
        "skills": skills,
        "languages": ["en"],
        "clearances": clients,
        "capacity": {"back_office": 1_000_000},
        "presence": {"state": "available"},
    }))
    .expect("a worker");

    let template: Task = serde_json::from_value(json!({
        "id": TaskId::new(),
        "item_id": WorkItemId::new(),
        "client_id": clients[0],
        "engagement_id": engagements[0].id,
        "step": "work",
        "visit": 1,
        "skill": SKILLS[0],
        "min_level": 1,
        "language": null,
        "excluded_worker": null,
        "reserved_for": null,
        "priority": "normal",
        "queued_at": now,
        "due_at": null,
        "serve_by": now,
        "status": {"status": "open"},
    }))
    .expect("a task");

    let policy = RoutingPolicy::default();
    let priorities = [
        Priority::Low,
        Priority::Normal,
        Priority::Normal,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];
    let mut queue: Vec<Task> = (0..QUEUE)
        .map(|_| {
            let engagement = &engagements[rng.below(ENGAGEMENTS as u64) as usize];
            let waited = SignedDuration::from_secs(rng.below(8 * 3600) as i64);
            let queued_at = now - waited;
            // A third of the tasks carry a deadline from their step's SLA.
            let due_at = (rng.below(3) == 0)
                .then(|| queued_at + SignedDuration::from_secs(3600 + rng.below(7 * 3600) as i64));
            let priority = priorities[rng.below(priorities.len() as u64) as usize];
            let mut task = template.clone();
            task.id = TaskId::new();
            task.item_id = WorkItemId::new();
            task.client_id = engagement.client;
            task.engagement_id = engagement.id;
            task.skill = engagement.skill.clone();
            task.min_level = engagement.min_level;
            task.priority = priority;
            task.queued_at = queued_at;
            task.due_at = due_at;
            task.serve_by = routing::serve_by(priority, queued_at, due_at, &policy);
            task
        })
        .collect();
    queue.sort_by(routing::queue_order);

    let mut by_skill: BTreeMap<Key, Vec<Task>> = BTreeMap::new();
    for task in &queue {
        by_skill
            .entry(task.skill.clone())
            .or_default()
            .push(task.clone());
    }

    let mut shares = Shares::default();
    for (n, engagement) in engagements.iter().enumerate() {
        shares
            .served
            .insert(engagement.id, rng.below(1_000) * SHARE_UNIT);
        if n % 4 == 0 {
            shares.weights.insert(engagement.id, 2);
        }
    }

    Floor {
        worker,
        load: Load::from([(routing::Channel::BackOffice, 3)]),
        shares,
        now,
        queue,
        by_skill,
    }
}

/// One claim round over the indexed queue of 1,000,000 tasks: the heads of the worker's
/// skill queues, merged, then `pick`.
#[divan::bench]
fn claim_round(bencher: divan::Bencher) {
    let floor = &*FLOOR;
    bencher.bench(|| {
        let worker = divan::black_box(&floor.worker);
        let mut round: Vec<&Task> = worker
            .skills
            .keys()
            .filter_map(|skill| floor.by_skill.get(skill))
            .flat_map(|queue| queue.iter().take(CLAIM_BATCH))
            .collect();
        round.sort_by(|a, b| routing::queue_order(a, b));
        round.truncate(CLAIM_BATCH);
        let round: Vec<Task> = round.into_iter().cloned().collect();
        routing::pick(
            worker,
            &floor.load,
            &round,
            &floor.shares,
            FAIRNESS_BAND,
            floor.now,
        )
        .map(|pick| pick.task.id)
    });
}

/// `pick` over the whole queue of 1,000,000 tasks: what a claim would cost without the
/// store's skill filter and serve-by index.
#[divan::bench(sample_count = 20)]
fn full_queue(bencher: divan::Bencher) {
    let floor = &*FLOOR;
    let eligible = floor
        .queue
        .iter()
        .filter(|task| {
            routing::ineligibility(&floor.worker, &floor.load, task, floor.now).is_none()
        })
        .count();
    assert!(eligible > 0, "the worker can take some of the queue");
    bencher.bench(|| {
        routing::pick(
            divan::black_box(&floor.worker),
            &floor.load,
            divan::black_box(&floor.queue),
            &floor.shares,
            FAIRNESS_BAND,
            floor.now,
        )
        .map(|pick| pick.task.id)
    });
}

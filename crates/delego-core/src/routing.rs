//! Who may take which task, and which task comes first: pure functions shared by the
//! store's atomic claim, the offer (push) logic and the simulator.
//!
//! The queue is ordered by each task's *serve-by* instant, a virtual deadline fixed when
//! the task is queued: `queued_at − rank(priority) × aging`, or earlier when the SLA
//! deadline minus a lead time comes first. Because every later arrival gets a later
//! serve-by, a low-priority task is overtaken only by work that arrived at most
//! `3 × aging` after it: nothing starves, and an index on one column serves the queue.
//! Among tasks whose serve-by lies within a *fairness band* of the best one, the task of
//! the engagement that has received the least service for its weight wins.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::id::{ClientId, EngagementId, WorkerId};
use crate::model::{Presence, Task, Worker};
use crate::values::{Key, Language, Priority, SkillLevel};

/// How work reaches a worker; capacity is counted per channel.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Voice,
    Chat,
    Email,
    #[default]
    BackOffice,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Voice,
        Channel::Chat,
        Channel::Email,
        Channel::BackOffice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::BackOffice => "back_office",
        }
    }
}

/// How a step's tasks are queued and handed out. Set per step in the service definition;
/// every field has a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingPolicy {
    pub channel: Channel,
    /// Each `aging` of waiting counts as one priority level, so low priority never starves.
    pub aging: SignedDuration,
    /// A task with an SLA deadline is served as if it had arrived this long before it.
    pub urgency_lead: SignedDuration,
    /// Requirements that relax while a task waits; it keeps its place in line.
    pub relax: Vec<Relaxation>,
    /// Which eligible worker is offered a task first.
    pub worker_order: WorkerOrder,
    /// How long a task that returns to the queue is kept for the worker who had it.
    pub preferred_window: SignedDuration,
    /// Push: each task is offered to the best available worker, who has this long to
    /// accept before the next worker is offered it. `None`: workers pull their next task.
    pub offer_timeout: Option<SignedDuration>,
}

/// How many open tasks, at the head of the worker's queues in serve-by order, one claim
/// round ranks. Fairness between engagements plays out within this window; a larger one
/// costs every claim more rows to read (32 measured best in `delego bench routing`).
pub const CLAIM_BATCH: usize = 32;

/// Tasks within this much of the best serve-by compete on fairness between engagements.
pub const FAIRNESS_BAND: SignedDuration = SignedDuration::from_mins(5);

impl Default for RoutingPolicy {
    fn default() -> Self {
        Self {
            channel: Channel::BackOffice,
            aging: SignedDuration::from_mins(10),
            urgency_lead: SignedDuration::from_mins(30),
            relax: Vec::new(),
            worker_order: WorkerOrder::LongestIdle,
            preferred_window: SignedDuration::from_mins(2),
            offer_timeout: None,
        }
    }
}

/// From `after` of waiting on, the task asks less.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relaxation {
    pub after: SignedDuration,
    /// The skill level accepted from then on.
    pub min_level: Option<SkillLevel>,
    /// Whether any language is accepted from then on.
    #[serde(default)]
    pub any_language: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerOrder {
    /// The worker idle the longest: spreads work evenly.
    #[default]
    LongestIdle,
    /// The most skilled worker: quality first.
    BestSkill,
    /// The worker with the most free capacity on the task's channel.
    LeastLoaded,
}

/// The task's place in line; see the module documentation.
pub fn serve_by(
    priority: Priority,
    queued_at: Timestamp,
    due_at: Option<Timestamp>,
    policy: &RoutingPolicy,
) -> Timestamp {
    let lift = policy
        .aging
        .saturating_mul(i32::try_from(priority.rank()).unwrap_or(i32::MAX));
    let by_priority = queued_at.saturating_sub(lift).unwrap_or(queued_at);
    match due_at.map(|due| due.saturating_sub(policy.urgency_lead).unwrap_or(due)) {
        Some(by_deadline) => by_priority.min(by_deadline),
        None => by_priority,
    }
}

/// Tasks held by a worker, per channel.
pub type Load = BTreeMap<Channel, u32>;

/// The first requirement a worker fails for a task; `None` from [`ineligibility`] means
/// the worker may take it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Ineligible {
    /// Offline, on a break, or in wrap-up until the given time.
    #[error("the worker is not taking work now (offline, on a break or in wrap-up)")]
    NotAccepting { presence: Presence },
    /// An ethical wall keeps this worker away from the client or engagement.
    #[error("an ethical wall keeps the worker away from this client or engagement")]
    Excluded,
    #[error("the worker is not cleared for the task's client")]
    NotCleared { client: ClientId },
    #[error("the task needs the skill {skill} at level {}", needed.get())]
    MissingSkill { skill: Key, needed: SkillLevel },
    #[error("the task needs {skill} at level {}; the worker has level {}", needed.get(), has.get())]
    SkillTooLow {
        skill: Key,
        needed: SkillLevel,
        has: SkillLevel,
    },
    #[error("the task needs the language {}", language.as_str())]
    MissingLanguage { language: Language },
    #[error("the task needs the certification {certification}")]
    MissingCertification { certification: Key },
    /// No free capacity on the task's channel.
    #[error("the worker already holds {capacity} task(s) on the {} channel, the most allowed", channel.as_str())]
    AtCapacity { channel: Channel, capacity: u32 },
    /// Four eyes: the worker wrote the work under review.
    #[error("four eyes: the worker did the work under review")]
    OwnWork,
    /// The task's hours (a contact's calling hours) are closed.
    #[error("the task may only be taken from {} until {}", window.opens, window.closes)]
    OutsideHours { window: crate::model::Window },
    /// Kept for the worker who had it, for a short while.
    #[error("the task is kept for the worker who had it until {until}")]
    ReservedFor { worker: WorkerId, until: Timestamp },
}

/// Why `worker`, holding `load`, may take no task at all right now, or `None`.
pub fn worker_ineligibility(worker: &Worker, now: Timestamp) -> Option<Ineligible> {
    let accepting = match &worker.presence {
        Presence::Available | Presence::Busy => true,
        Presence::WrapUp { until } => *until <= now,
        Presence::Break { .. } | Presence::Offline => false,
    };
    (!accepting).then(|| Ineligible::NotAccepting {
        presence: worker.presence.clone(),
    })
}

/// What the task asks of a worker after `now`'s relaxations: the skill level, and
/// whether its language is still required.
pub fn requirements_at(task: &Task, now: Timestamp) -> (SkillLevel, bool) {
    let waited = now.duration_since(task.queued_at);
    task.relax.iter().filter(|step| waited >= step.after).fold(
        (task.min_level, true),
        |(level, language), step| {
            (
                step.min_level.map_or(level, |l| l.min(level)),
                language && !step.any_language,
            )
        },
    )
}

/// Why `worker`, holding `load`, may not take `task` at `now` — or `None`.
pub fn ineligibility(
    worker: &Worker,
    load: &Load,
    task: &Task,
    now: Timestamp,
) -> Option<Ineligible> {
    worker_ineligibility(worker, now).or_else(|| task_ineligibility(worker, load, task, now))
}

/// The requirements that belong to the task, whatever the worker's presence.
pub fn task_ineligibility(
    worker: &Worker,
    load: &Load,
    task: &Task,
    now: Timestamp,
) -> Option<Ineligible> {
    if worker.exclusions.clients.contains(&task.client_id)
        || worker.exclusions.engagements.contains(&task.engagement_id)
    {
        return Some(Ineligible::Excluded);
    }
    if !worker.clearances.contains(&task.client_id) {
        return Some(Ineligible::NotCleared {
            client: task.client_id,
        });
    }
    // A call its worker was in before a restart or a lapsed lease stays theirs to finish.
    let kept_for_worker = task
        .reserved_for
        .is_some_and(|(holder, until)| holder == worker.id && now < until);
    if let Some(window) = task.window
        && !window.contains(now)
        && !kept_for_worker
    {
        return Some(Ineligible::OutsideHours { window });
    }
    let (needed, language_required) = requirements_at(task, now);
    match worker.skills.get(&task.skill) {
        None => {
            return Some(Ineligible::MissingSkill {
                skill: task.skill.clone(),
                needed,
            });
        }
        Some(&has) if has < needed => {
            return Some(Ineligible::SkillTooLow {
                skill: task.skill.clone(),
                needed,
                has,
            });
        }
        Some(_) => {}
    }
    if language_required
        && let Some(language) = &task.language
        && !worker.languages.contains(language)
    {
        return Some(Ineligible::MissingLanguage {
            language: language.clone(),
        });
    }
    if let Some(certification) = task
        .certifications
        .iter()
        .find(|c| !worker.certifications.contains(*c))
    {
        return Some(Ineligible::MissingCertification {
            certification: certification.clone(),
        });
    }
    if task.excluded_worker == Some(worker.id) {
        return Some(Ineligible::OwnWork);
    }
    if let Some((holder, until)) = task.reserved_for
        && holder != worker.id
        && now < until
    {
        return Some(Ineligible::ReservedFor {
            worker: holder,
            until,
        });
    }
    let capacity = worker.capacity_on(task.channel);
    if load.get(&task.channel).copied().unwrap_or(0) >= capacity {
        return Some(Ineligible::AtCapacity {
            channel: task.channel,
            capacity,
        });
    }
    None
}

/// How much service each engagement has received, in units of `SHARE_UNIT / weight` per
/// task, and the engagements' weights (1 when not listed).
#[derive(Clone, Debug, Default)]
pub struct Shares {
    pub served: BTreeMap<EngagementId, u64>,
    pub weights: BTreeMap<EngagementId, u32>,
}

/// One task's worth of service for an engagement of weight 1.
pub const SHARE_UNIT: u64 = 1_000_000;

impl Shares {
    pub fn served(&self, engagement: EngagementId) -> u64 {
        self.served.get(&engagement).copied().unwrap_or(0)
    }

    pub fn weight(&self, engagement: EngagementId) -> u32 {
        self.weights.get(&engagement).copied().unwrap_or(1).max(1)
    }

    /// The engagement's service after one more task. An engagement that was idle starts
    /// from `floor` (the least-served competitor), so a long pause earns no burst later.
    pub fn charge(&self, engagement: EngagementId, floor: u64) -> u64 {
        self.served(engagement).max(floor) + SHARE_UNIT / u64::from(self.weight(engagement))
    }
}

/// Why a task was chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum PickRule {
    /// It had been this worker's, and came back to the queue.
    Preferred,
    /// The earliest serve-by of the eligible tasks.
    Earliest,
    /// Within the fairness band of the earliest, its engagement had the least service for
    /// its weight.
    FairShare,
}

/// The chosen task, why, and what to charge its engagement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pick<'t> {
    pub task: &'t Task,
    pub rule: PickRule,
    /// The engagement's service after this task (see [`Shares::charge`]).
    pub charged: u64,
    /// How many tasks were eligible.
    pub eligible: usize,
}

/// The task `worker` should take next among `candidates` (any order), or `None` when it
/// is eligible for none of them.
pub fn pick<'t>(
    worker: &Worker,
    load: &Load,
    candidates: &'t [Task],
    shares: &Shares,
    band: SignedDuration,
    now: Timestamp,
) -> Option<Pick<'t>> {
    if worker_ineligibility(worker, now).is_some() {
        return None;
    }
    let eligible: Vec<&Task> = candidates
        .iter()
        .filter(|task| task_ineligibility(worker, load, task, now).is_none())
        .collect();
    let earliest = eligible.iter().copied().min_by(|a, b| queue_order(a, b))?;
    let floor = |tasks: &[&Task]| {
        tasks
            .iter()
            .map(|t| shares.served(t.engagement_id))
            .min()
            .unwrap_or(0)
    };
    let preferred = eligible
        .iter()
        .copied()
        .filter(|task| {
            task.reserved_for
                .is_some_and(|(holder, until)| holder == worker.id && now < until)
        })
        .min_by(|a, b| queue_order(a, b));
    if let Some(task) = preferred {
        return Some(Pick {
            task,
            rule: PickRule::Preferred,
            charged: shares.charge(task.engagement_id, floor(&eligible)),
            eligible: eligible.len(),
        });
    }
    let band_end = earliest
        .serve_by
        .saturating_add(band)
        .unwrap_or(earliest.serve_by);
    let contenders: Vec<&Task> = eligible
        .iter()
        .copied()
        .filter(|t| t.serve_by <= band_end)
        .collect();
    let chosen = contenders
        .iter()
        .copied()
        .min_by(|a, b| {
            shares
                .served(a.engagement_id)
                .cmp(&shares.served(b.engagement_id))
                .then_with(|| queue_order(a, b))
        })
        .unwrap_or(earliest);
    Some(Pick {
        task: chosen,
        rule: if chosen.id == earliest.id {
            PickRule::Earliest
        } else {
            PickRule::FairShare
        },
        charged: shares.charge(chosen.engagement_id, floor(&contenders)),
        eligible: eligible.len(),
    })
}

/// Queue order: earliest serve-by, then the longest waiting, then by id so the order is
/// total.
pub fn queue_order(a: &Task, b: &Task) -> Ordering {
    queue_key(a).cmp(&queue_key(b))
}

/// A task's place in line as a sortable key: serve-by, then arrival, then id.
pub fn queue_key(task: &Task) -> (Timestamp, Timestamp, crate::id::TaskId) {
    (task.serve_by, task.queued_at, task.id)
}

/// A worker's standing for a task under a worker order; smaller comes first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WorkerStanding {
    /// 0 for the worker the task is reserved for, 1 otherwise.
    pub preferred: u8,
    /// The policy's measure, negated where more is better.
    pub score: i64,
    pub worker: WorkerId,
}

/// Eligible workers for `task`, best first: the reserved (last) worker, then by the
/// policy's order.
pub fn rank_workers<'w>(
    task: &Task,
    workers: &'w [(Worker, Load)],
    order: WorkerOrder,
    now: Timestamp,
) -> Vec<(&'w Worker, WorkerStanding)> {
    let mut ranked: Vec<(&Worker, WorkerStanding)> = workers
        .iter()
        .filter(|(worker, load)| ineligibility(worker, load, task, now).is_none())
        .map(|(worker, load)| {
            let score = match order {
                // A worker busy with a task (no idle clock) comes after every idle one.
                WorkerOrder::LongestIdle => {
                    worker.idle_since.map_or(i64::MAX, |t| t.as_microsecond())
                }
                WorkerOrder::BestSkill => {
                    -i64::from(worker.skills.get(&task.skill).map_or(0, |l| l.get()))
                }
                WorkerOrder::LeastLoaded => {
                    let free = i64::from(worker.capacity_on(task.channel))
                        - i64::from(load.get(&task.channel).copied().unwrap_or(0));
                    -free
                }
            };
            let preferred = u8::from(
                task.reserved_for
                    .is_none_or(|(holder, _)| holder != worker.id),
            );
            (
                worker,
                WorkerStanding {
                    preferred,
                    score,
                    worker: worker.id,
                },
            )
        })
        .collect();
    ranked.sort_by(|a, b| a.1.cmp(&b.1));
    ranked
}

/// The clients and engagements a worker must never see: an ethical wall.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusions {
    #[serde(default)]
    pub clients: BTreeSet<ClientId>,
    #[serde(default)]
    pub engagements: BTreeSet<EngagementId>,
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;

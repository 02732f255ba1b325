//! Who may take which task, and which task comes first: pure functions shared by the
//! store's atomic claim and by the simulator.

use std::cmp::Reverse;

use jiff::Timestamp;
use serde::Serialize;

use crate::id::{ClientId, WorkerId};
use crate::model::{Task, Worker};
use crate::values::{Key, Language, SkillLevel};

/// The first requirement a worker fails for a task; `None` from [`ineligibility`] means
/// the worker may take it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Ineligible {
    /// Offline, on a break or in wrap-up.
    NotAccepting,
    AtCapacity {
        capacity: u32,
    },
    NotCleared {
        client: ClientId,
    },
    MissingSkill {
        skill: Key,
        needed: SkillLevel,
    },
    SkillTooLow {
        skill: Key,
        needed: SkillLevel,
        has: SkillLevel,
    },
    MissingLanguage {
        language: Language,
    },
    /// Four eyes: the worker wrote the work under review.
    OwnWork {
        worker: WorkerId,
    },
}

/// Why `worker`, currently holding `held` tasks, may not take `task` — or `None`.
pub fn ineligibility(worker: &Worker, held: u32, task: &Task) -> Option<Ineligible> {
    worker_ineligibility(worker, held).or_else(|| task_ineligibility(worker, task))
}

/// Why `worker` may take no task at all right now, or `None`.
pub fn worker_ineligibility(worker: &Worker, held: u32) -> Option<Ineligible> {
    if !worker.presence.accepts_work() {
        Some(Ineligible::NotAccepting)
    } else if held >= worker.capacity {
        Some(Ineligible::AtCapacity {
            capacity: worker.capacity,
        })
    } else {
        None
    }
}

/// The requirements that belong to the task alone, whatever the worker's presence and load.
pub fn task_ineligibility(worker: &Worker, task: &Task) -> Option<Ineligible> {
    if !worker.clearances.contains(&task.client_id) {
        return Some(Ineligible::NotCleared {
            client: task.client_id,
        });
    }
    match worker.skills.get(&task.skill) {
        None => {
            return Some(Ineligible::MissingSkill {
                skill: task.skill.clone(),
                needed: task.min_level,
            });
        }
        Some(&has) if has < task.min_level => {
            return Some(Ineligible::SkillTooLow {
                skill: task.skill.clone(),
                needed: task.min_level,
                has,
            });
        }
        Some(_) => {}
    }
    if let Some(language) = &task.language
        && !worker.languages.contains(language)
    {
        return Some(Ineligible::MissingLanguage {
            language: language.clone(),
        });
    }
    if task.excluded_worker == Some(worker.id) {
        return Some(Ineligible::OwnWork { worker: worker.id });
    }
    None
}

/// The order in which tasks are served: higher priority first, then the longest waiting,
/// then by id so the order is total.
pub fn queue_order(task: &Task) -> impl Ord + use<> {
    (Reverse(task.priority), task.queued_at, task.id)
}

/// The task `worker` should take next among `open` tasks, or `None`.
pub fn next_task<'t>(
    worker: &Worker,
    held: u32,
    open: impl IntoIterator<Item = &'t Task>,
) -> Option<&'t Task> {
    if worker_ineligibility(worker, held).is_some() {
        return None;
    }
    open.into_iter()
        .filter(|task| task_ineligibility(worker, task).is_none())
        .min_by_key(|task| queue_order(task))
}

/// How long a task has waited, for queue views.
pub fn age_seconds(task: &Task, now: Timestamp) -> i64 {
    now.duration_since(task.queued_at).as_secs().max(0)
}

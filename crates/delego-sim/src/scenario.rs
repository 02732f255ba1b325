//! What to simulate: the scenario a manager writes (TOML or JSON), and the [`Plan`] it is
//! checked and compiled into.

use std::collections::{BTreeMap, BTreeSet};

use delego_core::id::{ClientId, EngagementId, TaskId, WorkItemId, WorkerId};
use delego_core::model::{Presence, Task, TaskStatus, Worker};
use delego_core::routing::{Channel, Exclusions, Relaxation, RoutingPolicy, WorkerOrder};
use delego_core::values::{Key, Language, Name, Priority, SkillLevel};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use uuid::Uuid;

use crate::draw::Draw;

/// A day (or any span) of contacts and the people who answer them.
///
/// Durations are written like `"30m"`, `"1h 30m"`, `"180s"` or `"PT3M"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// When the simulated span begins.
    pub start: Timestamp,
    /// How long contacts arrive for; a whole number of intervals.
    pub length: SignedDuration,
    /// The reporting interval; arrival rates are given per interval.
    pub interval: SignedDuration,
    /// Service level counts contacts answered within this wait (20 s when unset).
    #[serde(default = "default_target")]
    pub service_level_target: SignedDuration,
    pub streams: Vec<Stream>,
    pub workers: Vec<WorkerGroup>,
}

fn default_target() -> SignedDuration {
    SignedDuration::from_secs(20)
}

/// Contacts of one kind: one skill, level, language and priority. Every contact is a
/// voice task.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    pub name: String,
    pub skill: Key,
    /// The skill level a worker needs (1 when unset).
    #[serde(default = "lowest_level")]
    pub min_level: SkillLevel,
    #[serde(default)]
    pub language: Option<Language>,
    #[serde(default)]
    pub priority: Priority,
    /// The engagement the contacts belong to, for fair sharing between engagements; each
    /// stream is an engagement of its own when unset.
    #[serde(default)]
    pub engagement: Option<String>,
    /// The engagement's weight in fair sharing (1 when unset).
    #[serde(default)]
    pub weight: Option<u32>,
    /// Expected arrivals per interval (Poisson, constant within an interval): one figure
    /// per interval, or a single figure for every interval.
    pub rates: Vec<f64>,
    pub handle_time: Distribution,
    /// How long a caller waits before hanging up; callers never hang up when unset.
    #[serde(default)]
    pub patience: Option<Distribution>,
    /// An SLA deadline this long after arrival, which moves the contact up the queue by
    /// the routing's urgency rule.
    #[serde(default)]
    pub due_after: Option<SignedDuration>,
    #[serde(default)]
    pub routing: StreamRouting,
}

fn lowest_level() -> SkillLevel {
    SkillLevel::MIN
}

/// A random duration.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "distribution", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    Exponential {
        mean: SignedDuration,
    },
    Lognormal {
        mean: SignedDuration,
        sd: SignedDuration,
    },
}

/// The stream's routing policy; unset fields take the core's defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRouting {
    pub aging: Option<SignedDuration>,
    pub urgency_lead: Option<SignedDuration>,
    pub worker_order: Option<WorkerOrder>,
    #[serde(default)]
    pub relax: Vec<Relaxation>,
}

/// `count` interchangeable workers: the same skills, languages and shifts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerGroup {
    pub name: String,
    pub count: u32,
    pub skills: BTreeMap<Key, SkillLevel>,
    #[serde(default)]
    pub languages: BTreeSet<Language>,
    /// When the group works, as `[start, end)` offsets from the scenario's start; always
    /// when empty. A worker still on a contact at the end of a shift finishes it first.
    #[serde(default)]
    pub shifts: Vec<Shift>,
    /// After-call work following each contact, during which no new contact is given.
    #[serde(default)]
    pub wrap_up: SignedDuration,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub start: SignedDuration,
    pub end: SignedDuration,
}

/// Why a scenario cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("the scenario is not valid TOML: {0}")]
    Toml(String),
    #[error("the scenario is not valid JSON at `{path}`: {message}")]
    Json { path: String, message: String },
    #[error("`{field}`: {problem}")]
    Invalid { field: String, problem: String },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Toml(e.to_string()))
    }

    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let mut json = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut json).map_err(|e| ScenarioError::Json {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }
}

/// The longest span a duration in a scenario may have; it keeps every instant the
/// simulation computes far inside the representable range.
const MAX_SPAN: SignedDuration = SignedDuration::from_hours(366 * 24);
/// Aging counts up to four priority levels, so a quarter of the longest span.
const MAX_AGING: SignedDuration = SignedDuration::from_hours(90 * 24);
/// After the last arrival, queued contacts are served for at most this long.
pub(crate) const DRAIN: SignedDuration = SignedDuration::from_hours(7 * 24);
const MAX_INTERVALS: i64 = 100_000;
const MAX_WORKERS: u64 = 100_000;
const MAX_CONTACTS: f64 = 10_000_000.0;

// Simulated identities are numbered, not random, so that every tie the routing rules
// break by id is broken the same way in every run.
const CLIENT: u64 = 1;
const ENGAGEMENT: u64 = 2;
const WORKER: u64 = 3;
const TASK: u64 = 4;

pub(crate) fn worker_id(index: usize) -> WorkerId {
    WorkerId::from_uuid(Uuid::from_u64_pair(WORKER, index as u64))
}

pub(crate) fn worker_index(id: WorkerId) -> usize {
    id.as_uuid().as_u64_pair().1 as usize
}

pub(crate) fn task_ids(contact: usize) -> (TaskId, WorkItemId) {
    let uuid = Uuid::from_u64_pair(TASK, contact as u64);
    (TaskId::from_uuid(uuid), WorkItemId::from_uuid(uuid))
}

pub(crate) fn contact_index(id: TaskId) -> usize {
    id.as_uuid().as_u64_pair().1 as usize
}

/// A scenario checked and compiled for running: times in nanoseconds from the start.
#[derive(Clone, Debug)]
pub struct Plan {
    pub(crate) start: Timestamp,
    pub(crate) interval: i64,
    pub(crate) intervals: usize,
    pub(crate) horizon: i64,
    pub(crate) target: i64,
    pub(crate) streams: Vec<StreamPlan>,
    pub(crate) groups: Vec<GroupPlan>,
    /// How many distinct skills the streams need; queues are kept per skill.
    pub(crate) skills: usize,
    pub(crate) weights: BTreeMap<EngagementId, u32>,
}

#[derive(Clone, Debug)]
pub(crate) struct StreamPlan {
    pub(crate) skill: usize,
    /// The stream's task with everything but its identity and times filled in.
    pub(crate) template: Task,
    pub(crate) policy: RoutingPolicy,
    /// Expected arrivals per interval.
    pub(crate) rates: Vec<f64>,
    pub(crate) handle: Draw,
    pub(crate) patience: Option<Draw>,
    pub(crate) due_after: Option<SignedDuration>,
    /// When a waiting contact's requirements relax, after arrival, in nanoseconds.
    pub(crate) relax_after: Vec<i64>,
    /// The groups with the stream's skill: the only ones worth ranking.
    pub(crate) groups: Vec<usize>,
}

#[derive(Clone, Debug)]
pub(crate) struct GroupPlan {
    pub(crate) count: usize,
    pub(crate) template: Worker,
    /// The skills (indexes) whose queues the group's workers take from.
    pub(crate) skills: Vec<usize>,
    /// `[start, end)` in nanoseconds, sorted and apart; `i64::MAX` for no end.
    pub(crate) shifts: Vec<(i64, i64)>,
    pub(crate) wrap_up: i64,
}

/// A duration within `0..=max`, in nanoseconds.
fn span(value: SignedDuration, max: SignedDuration, field: &str) -> Result<i64, ScenarioError> {
    if value.is_negative() {
        return Err(invalid(field, format!("{value:#} is negative")));
    }
    if value > max {
        return Err(invalid(field, format!("{value:#} is longer than {max:#}")));
    }
    i64::try_from(value.as_nanos()).map_err(|_| invalid(field, "too long"))
}

fn positive(value: SignedDuration, field: &str) -> Result<i64, ScenarioError> {
    let nanos = span(value, MAX_SPAN, field)?;
    if nanos == 0 {
        return Err(invalid(field, "must be longer than zero"));
    }
    Ok(nanos)
}

fn distribution(d: &Distribution, field: &str) -> Result<Draw, ScenarioError> {
    Ok(match d {
        Distribution::Exponential { mean } => Draw::Exponential {
            mean: positive(*mean, &format!("{field}.mean"))? as f64 / 1e9,
        },
        Distribution::Lognormal { mean, sd } => Draw::lognormal(
            positive(*mean, &format!("{field}.mean"))? as f64 / 1e9,
            span(*sd, MAX_SPAN, &format!("{field}.sd"))? as f64 / 1e9,
        ),
    })
}

impl Plan {
    /// Checks the scenario; an error names the field at fault.
    pub fn new(scenario: &Scenario) -> Result<Self, ScenarioError> {
        let interval = positive(scenario.interval, "interval")?;
        let horizon = positive(scenario.length, "length")?;
        if horizon % interval != 0 {
            return Err(invalid(
                "length",
                format!(
                    "{:#} is not a whole number of {:#} intervals",
                    scenario.length, scenario.interval
                ),
            ));
        }
        let intervals = horizon / interval;
        if intervals > MAX_INTERVALS {
            return Err(invalid(
                "interval",
                format!("{intervals} intervals; at most {MAX_INTERVALS}"),
            ));
        }
        let intervals = intervals as usize;
        // Room on both sides for every instant a run computes (see `MAX_SPAN`).
        let room = MAX_SPAN * 3;
        if scenario.start.checked_add(room).is_err() || scenario.start.checked_sub(room).is_err() {
            return Err(invalid("start", "too close to the limits of the calendar"));
        }
        let target = span(
            scenario.service_level_target,
            MAX_SPAN,
            "service_level_target",
        )?;
        let client = ClientId::from_uuid(Uuid::from_u64_pair(CLIENT, 0));

        if scenario.streams.is_empty() {
            return Err(invalid("streams", "at least one stream is needed"));
        }
        // The skills the streams need, numbered: each has its own queue.
        let mut skills: Vec<&Key> = Vec::new();
        let stream_skills: Vec<usize> = scenario
            .streams
            .iter()
            .map(
                |stream| match skills.iter().position(|s| *s == &stream.skill) {
                    Some(known) => known,
                    None => {
                        skills.push(&stream.skill);
                        skills.len() - 1
                    }
                },
            )
            .collect();
        let groups = groups(&scenario.workers, &skills, client)?;
        let mut names = BTreeSet::new();
        let mut engagements: BTreeMap<&str, (EngagementId, Option<u32>)> = BTreeMap::new();
        let mut streams = Vec::with_capacity(scenario.streams.len());
        let mut expected = 0.0;
        for (index, stream) in scenario.streams.iter().enumerate() {
            let field = |name: &str| format!("streams[{index}].{name}");
            if Name::parse(&stream.name).is_err() {
                return Err(invalid(field("name"), "a stream needs a name"));
            }
            if !names.insert(stream.name.as_str()) {
                return Err(invalid(
                    field("name"),
                    format!("`{}` names two streams", stream.name),
                ));
            }
            let rates = match stream.rates.len() {
                1 => vec![stream.rates[0]; intervals],
                n if n == intervals => stream.rates.clone(),
                n => {
                    return Err(invalid(
                        field("rates"),
                        format!(
                            "{n} figures, but the scenario has {intervals} intervals (or give one figure for all)"
                        ),
                    ));
                }
            };
            if let Some(bad) = rates.iter().find(|r| !r.is_finite() || **r < 0.0) {
                return Err(invalid(
                    field("rates"),
                    format!("{bad} is not a number of contacts"),
                ));
            }
            expected += rates.iter().sum::<f64>();

            let engagement_name = stream.engagement.as_deref().unwrap_or(&stream.name);
            let next_id =
                EngagementId::from_uuid(Uuid::from_u64_pair(ENGAGEMENT, engagements.len() as u64));
            let (engagement, weight) = engagements
                .entry(engagement_name)
                .or_insert((next_id, None));
            if stream.weight == Some(0) {
                return Err(invalid(field("weight"), "must be at least 1"));
            }
            match (*weight, stream.weight) {
                (Some(a), Some(b)) if a != b => {
                    return Err(invalid(
                        field("weight"),
                        format!("engagement `{engagement_name}` already has weight {a}"),
                    ));
                }
                (None, Some(b)) => *weight = Some(b),
                _ => {}
            }

            let defaults = RoutingPolicy::default();
            let routing = &stream.routing;
            if let Some(aging) = routing.aging {
                span(aging, MAX_AGING, &field("routing.aging"))?;
            }
            if let Some(lead) = routing.urgency_lead {
                span(lead, MAX_SPAN, &field("routing.urgency_lead"))?;
            }
            let mut relax_after = Vec::new();
            for (n, step) in routing.relax.iter().enumerate() {
                let after = span(
                    step.after,
                    MAX_SPAN,
                    &field(&format!("routing.relax[{n}].after")),
                )?;
                // A relaxation from the first instant needs no event of its own.
                if after > 0 && !relax_after.contains(&after) {
                    relax_after.push(after);
                }
            }
            relax_after.sort_unstable();
            let policy = RoutingPolicy {
                channel: Channel::Voice,
                aging: routing.aging.unwrap_or(defaults.aging),
                urgency_lead: routing.urgency_lead.unwrap_or(defaults.urgency_lead),
                relax: routing.relax.clone(),
                worker_order: routing.worker_order.unwrap_or(defaults.worker_order),
                ..defaults
            };
            if let Some(due) = stream.due_after {
                span(due, MAX_SPAN, &field("due_after"))?;
            }

            let skill = stream_skills[index];
            let serving: Vec<usize> = (0..groups.len())
                .filter(|g| groups[*g].skills.contains(&skill))
                .collect();
            if serving.is_empty() {
                return Err(invalid(
                    field("skill"),
                    format!("no worker group has the skill `{}`", stream.skill),
                ));
            }
            let (id, item_id) = task_ids(0);
            let template = Task {
                id,
                item_id,
                client_id: client,
                engagement_id: *engagement,
                step: Key::parse("answer").expect("a constant key"),
                visit: 1,
                skill: stream.skill.clone(),
                min_level: stream.min_level,
                language: stream.language.clone(),
                certifications: BTreeSet::new(),
                channel: Channel::Voice,
                relax: policy.relax.clone(),
                excluded_worker: None,
                reserved_for: None,
                priority: stream.priority,
                queued_at: scenario.start,
                due_at: None,
                serve_by: scenario.start,
                status: TaskStatus::Open,
                lease_until: None,
                offer_timeout: None,
                window: None,
                worker_order: policy.worker_order,
            };
            streams.push(StreamPlan {
                skill,
                template,
                policy,
                rates,
                handle: distribution(&stream.handle_time, &field("handle_time"))?,
                patience: stream
                    .patience
                    .as_ref()
                    .map(|p| distribution(p, &field("patience")))
                    .transpose()?,
                due_after: stream.due_after,
                relax_after,
                groups: serving,
            });
        }
        if expected > MAX_CONTACTS {
            return Err(invalid(
                "streams",
                format!("{expected:.0} contacts expected; at most {MAX_CONTACTS:.0} per run"),
            ));
        }
        Ok(Self {
            start: scenario.start,
            interval,
            intervals,
            horizon,
            target,
            streams,
            groups,
            skills: skills.len(),
            weights: engagements
                .into_values()
                .filter_map(|(id, weight)| Some((id, weight?)))
                .collect(),
        })
    }

    /// How many workers the plan has, on shift or not.
    pub fn workers(&self) -> usize {
        self.groups.iter().map(|g| g.count).sum()
    }

    /// How many contacts arrive on average.
    pub fn expected_contacts(&self) -> f64 {
        self.streams.iter().flat_map(|s| &s.rates).sum()
    }

    /// The reporting intervals.
    pub fn intervals(&self) -> usize {
        self.intervals
    }
}

fn groups(
    scenario: &[WorkerGroup],
    skills: &[&Key],
    client: ClientId,
) -> Result<Vec<GroupPlan>, ScenarioError> {
    if scenario.is_empty() {
        return Err(invalid("workers", "at least one worker group is needed"));
    }
    let total: u64 = scenario.iter().map(|g| u64::from(g.count)).sum();
    if total > MAX_WORKERS {
        return Err(invalid(
            "workers",
            format!("{total} workers; at most {MAX_WORKERS}"),
        ));
    }
    let mut groups = Vec::with_capacity(scenario.len());
    for (index, group) in scenario.iter().enumerate() {
        let field = |name: &str| format!("workers[{index}].{name}");
        let name = Name::parse(&group.name).map_err(|e| invalid(field("name"), e.0))?;
        if group.skills.is_empty() {
            return Err(invalid(
                field("skills"),
                "a worker needs at least one skill",
            ));
        }
        let mut shifts: Vec<(i64, i64)> = Vec::with_capacity(group.shifts.len());
        for (n, shift) in group.shifts.iter().enumerate() {
            let start = span(shift.start, MAX_SPAN, &field(&format!("shifts[{n}].start")))?;
            let end = span(shift.end, MAX_SPAN, &field(&format!("shifts[{n}].end")))?;
            if end <= start {
                return Err(invalid(
                    field(&format!("shifts[{n}]")),
                    "a shift must end after it starts",
                ));
            }
            shifts.push((start, end));
        }
        shifts.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(shifts.len());
        for (start, end) in shifts {
            match merged.last_mut() {
                Some(last) if start < last.1 => {
                    return Err(invalid(field("shifts"), "shifts overlap"));
                }
                // Back-to-back shifts are one stretch of work.
                Some(last) if start == last.1 => last.1 = end,
                _ => merged.push((start, end)),
            }
        }
        if merged.is_empty() {
            merged.push((0, i64::MAX));
        }
        let wrap_up = span(group.wrap_up, MAX_SPAN, &field("wrap_up"))?;
        let template = Worker {
            id: worker_id(0),
            name,
            skills: group.skills.clone(),
            languages: group.languages.clone(),
            clearances: BTreeSet::from([client]),
            certifications: BTreeSet::new(),
            exclusions: Exclusions::default(),
            capacity: BTreeMap::from([(Channel::Voice, 1)]),
            presence: Presence::Available,
            idle_since: None,
            wrap_up_secs: u32::try_from(wrap_up / 1_000_000_000).unwrap_or(u32::MAX),
            team: None,
        };
        groups.push(GroupPlan {
            count: group.count as usize,
            template,
            skills: (0..skills.len())
                .filter(|s| group.skills.contains_key(skills[*s]))
                .collect(),
            shifts: merged,
            wrap_up,
        });
    }
    Ok(groups)
}

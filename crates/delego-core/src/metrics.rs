//! Operational metrics per interval: volumes, backlog, handle and answer times, service
//! level, SLA attainment, occupancy and utilisation, from the facts the store records
//! (items, tasks and presence changes).
//!
//! Definitions (every measure of a row covers the interval `[start, end)`):
//! - **arrivals**: items created in the interval.
//! - **handled**: tasks done (submitted with an outcome) in the interval.
//! - **abandoned**: items cancelled in the interval — by the client, the requester or the
//!   provider — before they were completed. Counted when cancelled. A duplicate merged into
//!   another item is not abandoned (its request lives on in the other item), nor resolved.
//! - **backlog**: tasks open or held at the interval's end (at `as_of` for an interval that
//!   has not ended yet); per worker, the tasks the worker held then.
//! - **AHT**: mean of done − started (or claimed, when never started) over handled tasks.
//! - **ASA**: mean of claimed − queued over tasks claimed in the interval (the claim that
//!   stood; a released claim is forgotten by the store).
//! - **service level**: tasks claimed within the answer target (a setting, 20 s unless
//!   given) ÷ (tasks claimed + tasks that ended unclaimed) in the interval: work given up
//!   in the queue counts against it.
//! - **SLA attainment**: items completed in the interval whose resolution clock was met ÷
//!   items completed in the interval that have a resolution target.
//! - **occupancy**: busy ÷ staffed time, where busy is holding at least one task or being
//!   in wrap-up, and staffed is available, busy or in wrap-up (breaks excluded).
//! - **utilisation**: busy ÷ signed-in time (any presence but offline, breaks included).
//! - **CSAT**: requesters' ratings (1–5) given in the interval, counted when given:
//!   responses, their sum, the average rating, and the share satisfied (rated
//!   [`SATISFIED_FROM`] or more).
//!
//! - **outcomes** and **resolutions**: tasks done in the interval by step and outcome
//!   (`"call.no_answer"`), and items completed in the interval by resolution (`converted`):
//!   a campaign's dispositions and results. Like CSAT, they appear on total, client and
//!   engagement rows.
//! - **rates**: shares of those outcomes a service defines (`[[rates]]`: a campaign's contact
//!   rate and conversion), with their counts; on engagement rows, filled in by the caller,
//!   which knows each engagement's service.
//!
//! Occupancy and utilisation are measures of workers: they appear on worker, team and total
//! rows, never on client or engagement rows (a worker's time is not one client's). CSAT rates
//! the client's service as a whole: it appears on total, client and engagement rows.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::id::{ClientId, EngagementId, WorkerId};
use crate::model::Presence;
use crate::values::InvalidValue;

/// The interval lengths metrics are kept in.
pub const INTERVAL_MINUTES: [u32; 3] = [15, 30, 60];

/// The answer target of the service level unless the caller sets one.
pub const DEFAULT_ANSWER_TARGET: SignedDuration = SignedDuration::from_secs(20);

/// The lowest rating of a satisfied requester: 4 and 5 of 5, as CSAT is commonly counted.
pub const SATISFIED_FROM: u8 = 4;

/// One of [`INTERVAL_MINUTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalMinutes(u32);

impl IntervalMinutes {
    pub fn parse(minutes: u32) -> Result<Self, InvalidValue> {
        if INTERVAL_MINUTES.contains(&minutes) {
            Ok(Self(minutes))
        } else {
            Err(InvalidValue(format!(
                "an interval is 15, 30 or 60 minutes, not {minutes}"
            )))
        }
    }

    pub fn duration(self) -> SignedDuration {
        SignedDuration::from_mins(i64::from(self.0))
    }
}

/// What each row is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breakdown {
    Total,
    Client,
    Engagement,
    Worker,
    /// By the team of the worker who held or did the work (workers without a team are
    /// left out).
    Team,
}

impl std::str::FromStr for Breakdown {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "total" => Ok(Breakdown::Total),
            "client" => Ok(Breakdown::Client),
            "engagement" => Ok(Breakdown::Engagement),
            "worker" => Ok(Breakdown::Worker),
            "team" => Ok(Breakdown::Team),
            other => Err(InvalidValue(format!(
                "`{other}` is not a breakdown; use total, client, engagement, worker or team"
            ))),
        }
    }
}

/// How an item ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemEnd {
    /// `resolution_met` is `None` when the item has no resolution target.
    Completed {
        at: Timestamp,
        resolution_met: Option<bool>,
    },
    Cancelled {
        at: Timestamp,
    },
    /// Cancelled as a duplicate of another item.
    Merged {
        at: Timestamp,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemFact {
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    pub created_at: Timestamp,
    pub ended: Option<ItemEnd>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFact {
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    /// The holder, or the worker who did it.
    pub worker_id: Option<WorkerId>,
    pub queued_at: Timestamp,
    pub claimed_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    /// When it was done or cancelled; `None` while open or held.
    pub ended_at: Option<Timestamp>,
    /// Done with an outcome (rather than cancelled).
    pub done: bool,
}

/// A requester's rating of an item, from 1 to 5, and when it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsatFact {
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    pub rating: u8,
    pub at: Timestamp,
}

/// A recorded result: a task done with an outcome, or an item completed with a resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultFact {
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    pub at: Timestamp,
    pub result: WorkResult,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkResult {
    /// A task of `step` done with `outcome`.
    Outcome {
        step: crate::values::Key,
        outcome: crate::values::Key,
    },
    /// An item completed with this resolution.
    Resolution(crate::values::Key),
}

/// A worker's presence at the window's start and its changes within the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerPresence {
    pub worker_id: WorkerId,
    pub at_start: Presence,
    /// Oldest first.
    pub changes: Vec<(Timestamp, Presence)>,
}

/// Everything the metrics of a window are computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub from: Timestamp,
    pub to: Timestamp,
    /// When the facts were read: held tasks and presence count until then.
    pub as_of: Timestamp,
    pub items: Vec<ItemFact>,
    pub tasks: Vec<TaskFact>,
    pub workers: Vec<WorkerPresence>,
    /// Ratings given in the window.
    pub csat: Vec<CsatFact>,
    /// Outcomes and resolutions recorded in the window.
    pub results: Vec<ResultFact>,
    /// The team of each worker that has one.
    pub teams: BTreeMap<WorkerId, crate::values::Key>,
}

#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub interval: IntervalMinutes,
    pub by: Breakdown,
    pub answer_target: SignedDuration,
}

/// One interval of one dimension. The sums and counts beside each ratio let a reader add
/// rows up (e.g. intervals into a day) without averaging averages.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engagement_id: Option<EngagementId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<WorkerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<crate::values::Key>,
    pub arrivals: u64,
    pub handled: u64,
    pub abandoned: u64,
    pub backlog: u64,
    pub handle_seconds: f64,
    pub aht_seconds: Option<f64>,
    pub answered: u64,
    pub answered_in_target: u64,
    /// Tasks that ended without ever being claimed.
    pub unanswered: u64,
    pub wait_seconds: f64,
    pub asa_seconds: Option<f64>,
    pub service_level: Option<f64>,
    pub resolved: u64,
    pub sla_measured: u64,
    pub sla_met: u64,
    pub sla_attainment: Option<f64>,
    pub busy_seconds: f64,
    pub staffed_seconds: f64,
    pub signed_in_seconds: f64,
    pub occupancy: Option<f64>,
    pub utilisation: Option<f64>,
    pub csat_responses: u64,
    pub csat_sum: u64,
    pub csat_average: Option<f64>,
    /// Ratings of [`SATISFIED_FROM`] or more.
    pub csat_satisfied: u64,
    pub csat_satisfied_share: Option<f64>,
    /// Tasks done in the interval by `"step.outcome"`.
    pub outcomes: BTreeMap<String, u64>,
    /// Items completed in the interval by resolution.
    pub resolutions: BTreeMap<String, u64>,
    /// The service's rates over `outcomes` (a campaign's contact rate and conversion), by
    /// key: on engagement rows, whose service defines them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rates: BTreeMap<String, crate::definition::Measured>,
}

/// Which dimension a fact counts towards; ordered so rows come out stably.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Dim<'f> {
    Total,
    Client(ClientId),
    Engagement(ClientId, EngagementId),
    Worker(WorkerId),
    Team(&'f crate::values::Key),
}

impl<'f> Dim<'f> {
    fn of(by: Breakdown, client: ClientId, engagement: EngagementId) -> Option<Dim<'f>> {
        match by {
            Breakdown::Total => Some(Dim::Total),
            Breakdown::Client => Some(Dim::Client(client)),
            Breakdown::Engagement => Some(Dim::Engagement(client, engagement)),
            Breakdown::Worker | Breakdown::Team => None,
        }
    }

    /// The row of a worker's work or time under `by`.
    fn of_worker(
        by: Breakdown,
        worker: WorkerId,
        teams: &'f BTreeMap<WorkerId, crate::values::Key>,
    ) -> Option<Dim<'f>> {
        match by {
            Breakdown::Worker => Some(Dim::Worker(worker)),
            Breakdown::Team => teams.get(&worker).map(Dim::Team),
            _ => Some(Dim::Total),
        }
    }
}

/// Sums kept in microseconds, so that adding intervals up is exact.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    arrivals: u64,
    handled: u64,
    abandoned: u64,
    backlog: u64,
    handle: i64,
    answered: u64,
    answered_in_target: u64,
    unanswered: u64,
    wait: i64,
    resolved: u64,
    sla_measured: u64,
    sla_met: u64,
    busy: i64,
    staffed: i64,
    signed_in: i64,
    csat_responses: u64,
    csat_sum: u64,
    csat_satisfied: u64,
}

/// The window cut into intervals: the first starts at `from`, the last may be shorter and
/// ends at `to`.
struct Grid {
    from: Timestamp,
    to: Timestamp,
    step: SignedDuration,
    count: usize,
}

impl Grid {
    fn new(from: Timestamp, to: Timestamp, interval: IntervalMinutes) -> Grid {
        let step = interval.duration();
        let span = to
            .as_microsecond()
            .saturating_sub(from.as_microsecond())
            .max(0);
        let step_micros = step.as_micros() as i64;
        let count = usize::try_from((span + step_micros - 1) / step_micros).unwrap_or(0);
        Grid {
            from,
            to,
            step,
            count,
        }
    }

    fn index(&self, at: Timestamp) -> Option<usize> {
        if at < self.from || at >= self.to {
            return None;
        }
        let offset = at.as_microsecond() - self.from.as_microsecond();
        usize::try_from(offset / self.step.as_micros() as i64).ok()
    }

    fn bounds(&self, index: usize) -> (Timestamp, Timestamp) {
        let start = self.from.as_microsecond() + self.step.as_micros() as i64 * index as i64;
        let end = (start + self.step.as_micros() as i64).min(self.to.as_microsecond());
        (micros(start), micros(end))
    }

    /// Adds each interval's share of `[a, b)` to `add`.
    fn spread(&self, a: Timestamp, b: Timestamp, mut add: impl FnMut(usize, i64)) {
        let (a, b) = (a.max(self.from), b.min(self.to));
        let mut at = a;
        while at < b {
            let Some(index) = self.index(at) else { return };
            let (_, end) = self.bounds(index);
            let until = end.min(b);
            add(index, until.as_microsecond() - at.as_microsecond());
            at = until;
        }
    }
}

fn micros(m: i64) -> Timestamp {
    Timestamp::from_microsecond(m).unwrap_or(Timestamp::MAX)
}

/// The metrics of `facts` per interval and dimension. Total rows come for every interval;
/// other rows only where something happened or was waiting.
pub fn compute(facts: &Facts, settings: &Settings) -> Vec<Row> {
    let grid = Grid::new(facts.from, facts.to, settings.interval);
    let by = settings.by;
    let mut tallies: BTreeMap<Dim, Vec<Tally>> = BTreeMap::new();
    let count = grid.count;
    if by == Breakdown::Total {
        slot(&mut tallies, Dim::Total, count);
    }

    for item in &facts.items {
        let Some(dim) = Dim::of(by, item.client_id, item.engagement_id) else {
            continue;
        };
        if let Some(i) = grid.index(item.created_at) {
            slot(&mut tallies, dim, count)[i].arrivals += 1;
        }
        match item.ended {
            Some(ItemEnd::Cancelled { at }) => {
                if let Some(i) = grid.index(at) {
                    slot(&mut tallies, dim, count)[i].abandoned += 1;
                }
            }
            Some(ItemEnd::Completed { at, resolution_met }) => {
                if let Some(i) = grid.index(at) {
                    let t = &mut slot(&mut tallies, dim, count)[i];
                    t.resolved += 1;
                    if let Some(met) = resolution_met {
                        t.sla_measured += 1;
                        t.sla_met += u64::from(met);
                    }
                }
            }
            Some(ItemEnd::Merged { .. }) | None => {}
        }
    }

    for rating in &facts.csat {
        let Some(dim) = Dim::of(by, rating.client_id, rating.engagement_id) else {
            continue;
        };
        if let Some(i) = grid.index(rating.at) {
            let t = &mut slot(&mut tallies, dim, count)[i];
            t.csat_responses += 1;
            t.csat_sum += u64::from(rating.rating);
            t.csat_satisfied += u64::from(rating.rating >= SATISFIED_FROM);
        }
    }

    let mut held: BTreeMap<WorkerId, Vec<(Timestamp, Timestamp)>> = BTreeMap::new();
    for task in &facts.tasks {
        if let (Some(worker), Some(claimed)) = (task.worker_id, task.claimed_at) {
            let end = task.ended_at.unwrap_or(facts.as_of);
            held.entry(worker).or_default().push((claimed, end));
        }
        let dim = match (by, task.worker_id) {
            (Breakdown::Worker | Breakdown::Team, Some(worker)) => {
                match Dim::of_worker(by, worker, &facts.teams) {
                    Some(dim) => dim,
                    None => continue,
                }
            }
            (Breakdown::Worker | Breakdown::Team, None) => continue,
            _ => match Dim::of(by, task.client_id, task.engagement_id) {
                Some(dim) => dim,
                None => continue,
            },
        };
        let rows = slot(&mut tallies, dim, count);
        if let (true, Some(done)) = (task.done, task.ended_at)
            && let Some(i) = grid.index(done)
        {
            rows[i].handled += 1;
            let began = task.started_at.or(task.claimed_at).unwrap_or(done);
            rows[i].handle += done.as_microsecond() - began.as_microsecond();
        }
        match (task.claimed_at, task.ended_at) {
            (Some(claimed), _) => {
                if let Some(i) = grid.index(claimed) {
                    let wait = claimed.duration_since(task.queued_at);
                    rows[i].answered += 1;
                    rows[i].answered_in_target += u64::from(wait <= settings.answer_target);
                    rows[i].wait += wait.as_micros() as i64;
                }
            }
            (None, Some(ended)) => {
                if let Some(i) = grid.index(ended) {
                    rows[i].unanswered += 1;
                }
            }
            (None, None) => {}
        }
        // A worker's backlog is what the worker held; the floor's is everything waiting
        // or held.
        let waiting_since = match by {
            Breakdown::Worker | Breakdown::Team => task.claimed_at,
            _ => Some(task.queued_at),
        };
        if let Some(since) = waiting_since {
            for (i, row) in rows.iter_mut().enumerate() {
                let (_, end) = grid.bounds(i);
                let at = end.min(facts.as_of);
                if since < at && task.ended_at.is_none_or(|ended| ended >= at) {
                    row.backlog += 1;
                }
            }
        }
    }

    if matches!(by, Breakdown::Total | Breakdown::Worker | Breakdown::Team) {
        for worker in &facts.workers {
            let spells = presence_spells(worker, facts.from, facts.to.min(facts.as_of));
            let holding = held.remove(&worker.worker_id).unwrap_or_default();
            let busy = union(
                holding
                    .into_iter()
                    .chain(spells.iter().filter(|s| s.2 == Spell::WrapUp).map(span)),
            );
            let staffed = union(
                busy.iter()
                    .copied()
                    .chain(spells.iter().filter(|s| s.2 != Spell::Break).map(span)),
            );
            let signed_in = union(busy.iter().copied().chain(spells.iter().map(span)));
            let Some(dim) = Dim::of_worker(by, worker.worker_id, &facts.teams) else {
                continue;
            };
            let rows = slot(&mut tallies, dim, count);
            for (a, b) in busy {
                grid.spread(a, b, |i, m| rows[i].busy += m);
            }
            for (a, b) in staffed {
                grid.spread(a, b, |i, m| rows[i].staffed += m);
            }
            for (a, b) in signed_in {
                grid.spread(a, b, |i, m| rows[i].signed_in += m);
            }
        }
    }

    // Outcomes and resolutions per dimension and interval.
    type Counts = (BTreeMap<String, u64>, BTreeMap<String, u64>);
    let mut results: BTreeMap<(Dim, usize), Counts> = BTreeMap::new();
    for fact in &facts.results {
        let (Some(dim), Some(i)) = (
            Dim::of(by, fact.client_id, fact.engagement_id),
            grid.index(fact.at),
        ) else {
            continue;
        };
        slot(&mut tallies, dim, count);
        let (outcomes, resolutions) = results.entry((dim, i)).or_default();
        match &fact.result {
            WorkResult::Outcome { step, outcome } => {
                *outcomes.entry(format!("{step}.{outcome}")).or_default() += 1;
            }
            WorkResult::Resolution(resolution) => {
                *resolutions.entry(resolution.to_string()).or_default() += 1;
            }
        }
    }

    let mut out = Vec::new();
    for (dim, rows) in tallies {
        for (i, t) in rows.into_iter().enumerate() {
            let counts = results.remove(&(dim, i));
            if dim != Dim::Total && t.is_empty() && counts.is_none() {
                continue;
            }
            let (start, end) = grid.bounds(i);
            let mut row = row(dim, start, end, &t);
            if let Some((outcomes, resolutions)) = counts {
                row.outcomes = outcomes;
                row.resolutions = resolutions;
            }
            out.push(row);
        }
    }
    out.sort_by_key(|r| r.start);
    out
}

/// The intervals of `dim`, made on first use.
fn slot<'t, 'f>(
    tallies: &'t mut BTreeMap<Dim<'f>, Vec<Tally>>,
    dim: Dim<'f>,
    count: usize,
) -> &'t mut Vec<Tally> {
    tallies
        .entry(dim)
        .or_insert_with(|| vec![Tally::default(); count])
}

impl Tally {
    fn is_empty(&self) -> bool {
        self.arrivals
            + self.handled
            + self.abandoned
            + self.backlog
            + self.answered
            + self.unanswered
            + self.resolved
            + self.csat_responses
            == 0
            && self.signed_in == 0
    }
}

fn row(dim: Dim<'_>, start: Timestamp, end: Timestamp, t: &Tally) -> Row {
    let (client_id, engagement_id, worker_id) = match dim {
        Dim::Total | Dim::Team(_) => (None, None, None),
        Dim::Client(c) => (Some(c), None, None),
        Dim::Engagement(c, e) => (Some(c), Some(e), None),
        Dim::Worker(w) => (None, None, Some(w)),
    };
    let team = match dim {
        Dim::Team(team) => Some(team.clone()),
        _ => None,
    };
    let seconds = |m: i64| m as f64 / 1_000_000.0;
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    Row {
        start,
        end,
        client_id,
        engagement_id,
        worker_id,
        team,
        arrivals: t.arrivals,
        handled: t.handled,
        abandoned: t.abandoned,
        backlog: t.backlog,
        handle_seconds: seconds(t.handle),
        aht_seconds: ratio(seconds(t.handle), t.handled as f64),
        answered: t.answered,
        answered_in_target: t.answered_in_target,
        unanswered: t.unanswered,
        wait_seconds: seconds(t.wait),
        asa_seconds: ratio(seconds(t.wait), t.answered as f64),
        service_level: ratio(
            t.answered_in_target as f64,
            (t.answered + t.unanswered) as f64,
        ),
        resolved: t.resolved,
        sla_measured: t.sla_measured,
        sla_met: t.sla_met,
        sla_attainment: ratio(t.sla_met as f64, t.sla_measured as f64),
        busy_seconds: seconds(t.busy),
        staffed_seconds: seconds(t.staffed),
        signed_in_seconds: seconds(t.signed_in),
        occupancy: ratio(seconds(t.busy), seconds(t.staffed)),
        utilisation: ratio(seconds(t.busy), seconds(t.signed_in)),
        csat_responses: t.csat_responses,
        csat_sum: t.csat_sum,
        csat_average: ratio(t.csat_sum as f64, t.csat_responses as f64),
        csat_satisfied: t.csat_satisfied,
        csat_satisfied_share: ratio(t.csat_satisfied as f64, t.csat_responses as f64),
        outcomes: BTreeMap::new(),
        resolutions: BTreeMap::new(),
        rates: BTreeMap::new(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spell {
    /// Available or busy: ready for work or at it.
    Ready,
    WrapUp,
    Break,
}

fn span(spell: &(Timestamp, Timestamp, Spell)) -> (Timestamp, Timestamp) {
    (spell.0, spell.1)
}

/// The worker's signed-in spells within `[from, until)`; offline time has none. A wrap-up
/// ends at its `until` even when no later change was recorded (the worker is ready again).
fn presence_spells(
    worker: &WorkerPresence,
    from: Timestamp,
    until: Timestamp,
) -> Vec<(Timestamp, Timestamp, Spell)> {
    let mut spells = Vec::new();
    let mut current = (from, &worker.at_start);
    let ends = worker
        .changes
        .iter()
        .map(|(at, presence)| (*at, Some(presence)))
        .chain([(until, None)]);
    for (at, next) in ends {
        let (start, end) = (current.0.max(from), at.min(until));
        if start < end {
            match current.1 {
                Presence::Available | Presence::Busy => spells.push((start, end, Spell::Ready)),
                Presence::WrapUp { until: ready_at } => {
                    let split = (*ready_at).clamp(start, end);
                    spells.push((start, split, Spell::WrapUp));
                    spells.push((split, end, Spell::Ready));
                }
                Presence::Break { .. } => spells.push((start, end, Spell::Break)),
                Presence::Offline => {}
            }
        }
        if let Some(presence) = next {
            current = (at, presence);
        }
    }
    spells.retain(|(a, b, _)| a < b);
    spells
}

/// The union of spans as sorted, disjoint spans.
fn union(spans: impl IntoIterator<Item = (Timestamp, Timestamp)>) -> Vec<(Timestamp, Timestamp)> {
    let mut spans: Vec<_> = spans.into_iter().filter(|(a, b)| a < b).collect();
    spans.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;

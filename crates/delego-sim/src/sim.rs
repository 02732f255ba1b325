//! The event loop.
//!
//! Routing follows the store. A contact that arrives is ranked against the idle workers
//! with `routing::rank_workers` and goes to the best, or waits in its skill's queue (kept
//! in serve-by order, like the store's index). A worker who becomes free reads the queues
//! of its skills in pages of [`CLAIM_BATCH`] tasks in serve-by order, as
//! `Store::claim_next_task` does, and `routing::pick` chooses from each page until one
//! holds a task the worker may take. Every hand-over goes through `pick`, whose
//! `charged` keeps the engagements' [`Shares`] for fair sharing.
//!
//! Since a free worker always takes the first task it may, an idle worker may take
//! nothing in the queue; so an arrival only needs the idle workers, and a waiting contact
//! needs them again only when its requirements relax.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Bound;

use delego_core::id::TaskId;
use delego_core::model::{Task, Worker};
use delego_core::routing::{
    self, CLAIM_BATCH, FAIRNESS_BAND, Load, Shares, WorkerStanding, queue_key,
};
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;

use crate::Options;
use crate::draw::{self, nanos, seconds};
use crate::report::{Assignment, Report, Row, Tally};
use crate::scenario::{DRAIN, Plan, contact_index, task_ids, worker_id, worker_index};

/// A task's place in its queue: `routing::queue_key`.
type QueueKey = (Timestamp, Timestamp, TaskId);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    /// The next contact of a stream arrives.
    Arrival(usize),
    /// A contact's patience runs out.
    Abandon(usize),
    /// A waiting contact asks less from now on.
    Relax(usize),
    /// A worker finishes talking.
    Done(usize),
    /// A worker finishes wrap-up.
    Ready(usize),
    ShiftStart(usize),
    ShiftEnd(usize),
}

/// An event at its time; the sequence number orders events at the same instant by when
/// they were scheduled, so a run never depends on the heap's internals.
#[derive(PartialEq, Eq)]
struct Scheduled {
    at: i64,
    seq: u64,
    event: Event,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap and the earliest event comes first.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Waiting(QueueKey),
    Answered,
    Abandoned,
}

struct Contact {
    stream: usize,
    arrival: i64,
    handle: i64,
    fate: Fate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Desk {
    Off,
    /// In its group's idle pool, at this slot.
    Idle(usize),
    /// On a contact or in its wrap-up.
    Busy,
}

struct Agent {
    group: usize,
    worker: Worker,
    on_shift: bool,
    desk: Desk,
    logged_in_at: i64,
}

struct Sim<'p> {
    plan: &'p Plan,
    options: &'p Options,
    now: i64,
    seq: u64,
    heap: BinaryHeap<Scheduled>,
    rngs: Vec<StdRng>,
    contacts: Vec<Contact>,
    agents: Vec<Agent>,
    /// Idle workers per group, as `rank_workers` takes them.
    idle: Vec<Vec<(Worker, Load)>>,
    /// Waiting tasks per skill.
    queues: Vec<BTreeMap<QueueKey, Task>>,
    shares: Shares,
    tallies: Vec<Tally>,
    assignments: Vec<Assignment>,
    events: u64,
    /// A free worker holds no task.
    no_load: Load,
}

impl Plan {
    /// Plays the plan out once.
    pub fn run(&self, options: &Options) -> Report {
        let mut sim = Sim::new(self, options);
        let stop = self
            .horizon
            .saturating_add(i64::try_from(DRAIN.as_nanos()).unwrap_or(i64::MAX));
        while let Some(Scheduled { at, event, .. }) = sim.heap.pop() {
            if at > stop {
                break;
            }
            sim.now = at;
            sim.events += 1;
            match event {
                Event::Arrival(stream) => sim.arrive(stream),
                Event::Abandon(contact) => sim.abandon(contact),
                Event::Relax(contact) => sim.relax(contact),
                Event::Done(agent) => sim.done(agent),
                Event::Ready(agent) => sim.ready(agent),
                Event::ShiftStart(agent) => sim.shift_start(agent),
                Event::ShiftEnd(agent) => sim.shift_end(agent),
            }
        }
        sim.report()
    }
}

impl<'p> Sim<'p> {
    fn new(plan: &'p Plan, options: &'p Options) -> Self {
        let mut agents = Vec::with_capacity(plan.workers());
        for (g, group) in plan.groups.iter().enumerate() {
            for _ in 0..group.count {
                let mut worker = group.template.clone();
                worker.id = worker_id(agents.len());
                agents.push(Agent {
                    group: g,
                    worker,
                    on_shift: false,
                    desk: Desk::Off,
                    logged_in_at: 0,
                });
            }
        }
        let mut sim = Self {
            plan,
            options,
            now: 0,
            seq: 0,
            heap: BinaryHeap::new(),
            rngs: (0..plan.streams.len())
                .map(|s| draw::stream_rng(options.seed, s))
                .collect(),
            contacts: Vec::with_capacity(plan.expected_contacts() as usize),
            agents,
            idle: vec![Vec::new(); plan.groups.len()],
            queues: vec![BTreeMap::new(); plan.skills],
            shares: Shares {
                served: BTreeMap::new(),
                weights: plan.weights.clone(),
            },
            tallies: vec![Tally::default(); plan.intervals],
            assignments: Vec::new(),
            events: 0,
            no_load: Load::new(),
        };
        for a in 0..sim.agents.len() {
            for &(start, end) in &plan.groups[sim.agents[a].group].shifts {
                sim.schedule(start, Event::ShiftStart(a));
                if end < i64::MAX {
                    sim.schedule(end, Event::ShiftEnd(a));
                }
            }
        }
        for s in 0..plan.streams.len() {
            if let Some(first) = sim.next_arrival(s, 0) {
                sim.schedule(first, Event::Arrival(s));
            }
        }
        sim
    }

    fn schedule(&mut self, at: i64, event: Event) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    fn timestamp(&self, at: i64) -> Timestamp {
        // `Plan::new` keeps the start far enough from the calendar's ends.
        self.plan.start + SignedDuration::from_nanos(at)
    }

    /// The stream's next arrival after `from`. Rates are constant within an interval, so
    /// the gap is exponential there; a gap that crosses the interval's end is drawn anew
    /// from the end, which memorylessness makes exact.
    fn next_arrival(&mut self, s: usize, mut from: i64) -> Option<i64> {
        let plan = self.plan;
        loop {
            let k = usize::try_from(from / plan.interval).ok()?;
            let rate = *plan.streams[s].rates.get(k)?;
            let end = (k as i64 + 1) * plan.interval;
            if rate > 0.0 {
                let gap =
                    draw::standard_exponential(&mut self.rngs[s]) * plan.interval as f64 / rate;
                let at = from.saturating_add(gap.round() as i64);
                if at < end {
                    return Some(at);
                }
            }
            from = end;
        }
    }

    fn arrive(&mut self, s: usize) {
        let plan = self.plan;
        let stream = &plan.streams[s];
        // Every draw is made whatever happens to the contact, so the callers are the
        // same whatever the staffing.
        let handle = nanos(stream.handle.seconds(&mut self.rngs[s]));
        let patience = stream
            .patience
            .as_ref()
            .map(|p| nanos(p.seconds(&mut self.rngs[s])));
        if let Some(next) = self.next_arrival(s, self.now) {
            self.schedule(next, Event::Arrival(s));
        }

        let c = self.contacts.len();
        let now = self.timestamp(self.now);
        let mut task = stream.template.clone();
        (task.id, task.item_id) = task_ids(c);
        task.queued_at = now;
        task.due_at = stream.due_after.map(|due| now + due);
        task.serve_by = routing::serve_by(task.priority, now, task.due_at, &stream.policy);
        self.contacts.push(Contact {
            stream: s,
            arrival: self.now,
            handle,
            fate: Fate::Waiting(queue_key(&task)),
        });
        let k = self.interval_of(self.now);
        self.tallies[k].offered += 1;

        if let Some((agent, charged)) = self.best_idle(s, &task, now) {
            self.shares.served.insert(task.engagement_id, charged);
            self.hand_over(agent, c);
            return;
        }
        if let Some(patience) = patience {
            self.schedule(self.now.saturating_add(patience), Event::Abandon(c));
        }
        for &after in &stream.relax_after {
            self.schedule(self.now.saturating_add(after), Event::Relax(c));
        }
        self.queues[stream.skill].insert(queue_key(&task), task);
    }

    /// The idle worker `routing::rank_workers` puts first for `task`, and what taking it
    /// charges the task's engagement.
    fn best_idle(&self, s: usize, task: &Task, now: Timestamp) -> Option<(usize, u64)> {
        let mut best: Option<WorkerStanding> = None;
        for &g in &self.plan.streams[s].groups {
            if self.idle[g].is_empty() {
                continue;
            }
            // Groups are ranked apart and their leaders compared: the standing is a total
            // order, so this is the ranking of all idle workers together.
            let leader = routing::rank_workers(task, &self.idle[g], task.worker_order, now)
                .into_iter()
                .next();
            if let Some((_, standing)) = leader
                && best.as_ref().is_none_or(|b| standing < *b)
            {
                best = Some(standing);
            }
        }
        let agent = worker_index(best?.worker);
        let pick = routing::pick(
            &self.agents[agent].worker,
            &self.no_load,
            std::slice::from_ref(task),
            &self.shares,
            FAIRNESS_BAND,
            now,
        )?;
        Some((agent, pick.charged))
    }

    fn hand_over(&mut self, a: usize, c: usize) {
        self.leave_pool(a);
        let contact = &mut self.contacts[c];
        contact.fate = Fate::Answered;
        let wait = self.now - contact.arrival;
        let (arrival, handle, stream) = (contact.arrival, contact.handle, contact.stream);
        let k = self.interval_of(arrival);
        let tally = &mut self.tallies[k];
        tally.answered += 1;
        tally.wait_secs += seconds(wait);
        if wait <= self.plan.target {
            tally.answered_in_target += 1;
        }

        let agent = &mut self.agents[a];
        agent.desk = Desk::Busy;
        let group = agent.group;
        let done = self.now.saturating_add(handle);
        let free = done.saturating_add(self.plan.groups[group].wrap_up);
        self.spread(self.now, free, |t| &mut t.busy_secs);
        self.schedule(done, Event::Done(a));
        if self.options.record_assignments {
            self.assignments.push(Assignment {
                contact: c as u64,
                stream,
                group,
                worker: a,
                arrived: SignedDuration::from_nanos(arrival),
                answered: SignedDuration::from_nanos(self.now),
            });
        }
    }

    fn done(&mut self, a: usize) {
        let wrap_up = self.plan.groups[self.agents[a].group].wrap_up;
        if wrap_up > 0 {
            self.schedule(self.now.saturating_add(wrap_up), Event::Ready(a));
        } else {
            self.ready(a);
        }
    }

    /// The worker may take work again: the next task from the queues, or the idle pool.
    fn ready(&mut self, a: usize) {
        if !self.agents[a].on_shift {
            self.log_out(a);
            return;
        }
        let now = self.timestamp(self.now);
        self.agents[a].worker.idle_since = Some(now);
        if let Some(c) = self.next_task(a, now) {
            self.hand_over(a, c);
            return;
        }
        let agent = &mut self.agents[a];
        let pool = &mut self.idle[agent.group];
        agent.desk = Desk::Idle(pool.len());
        pool.push((agent.worker.clone(), Load::new()));
    }

    /// The task `routing::pick` gives the worker, read page by page as the store does,
    /// taken off its queue.
    fn next_task(&mut self, a: usize, now: Timestamp) -> Option<usize> {
        let plan = self.plan;
        let skills = &plan.groups[self.agents[a].group].skills;
        let mut after: Option<QueueKey> = None;
        let mut page: Vec<Task> = Vec::new();
        loop {
            let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut keys: Vec<(QueueKey, usize)> = Vec::new();
            for &skill in skills {
                keys.extend(
                    self.queues[skill]
                        .range((lower, Bound::Unbounded))
                        .take(CLAIM_BATCH)
                        .map(|(key, _)| (*key, skill)),
                );
            }
            keys.sort_unstable();
            keys.truncate(CLAIM_BATCH);
            page.clear();
            page.extend(
                keys.iter()
                    .map(|(key, skill)| self.queues[*skill][key].clone()),
            );
            let picked = routing::pick(
                &self.agents[a].worker,
                &self.no_load,
                &page,
                &self.shares,
                FAIRNESS_BAND,
                now,
            )
            .map(|pick| (pick.task.engagement_id, pick.charged, queue_key(pick.task)));
            match picked {
                Some((engagement, charged, key)) => {
                    self.shares.served.insert(engagement, charged);
                    let c = contact_index(key.2);
                    self.queues[plan.streams[self.contacts[c].stream].skill].remove(&key);
                    return Some(c);
                }
                None if keys.len() < CLAIM_BATCH => return None,
                None => after = keys.last().map(|(key, _)| *key),
            }
        }
    }

    fn abandon(&mut self, c: usize) {
        let contact = &mut self.contacts[c];
        if let Fate::Waiting(key) = contact.fate {
            contact.fate = Fate::Abandoned;
            let (stream, arrival) = (contact.stream, contact.arrival);
            self.queues[self.plan.streams[stream].skill].remove(&key);
            let k = self.interval_of(arrival);
            self.tallies[k].abandoned += 1;
        }
    }

    /// A waiting contact's requirements have relaxed: an idle worker may now take it.
    fn relax(&mut self, c: usize) {
        let Fate::Waiting(key) = self.contacts[c].fate else {
            return;
        };
        let s = self.contacts[c].stream;
        let skill = self.plan.streams[s].skill;
        let now = self.timestamp(self.now);
        let found = self.queues[skill]
            .get(&key)
            .and_then(|task| Some((task.engagement_id, self.best_idle(s, task, now)?)));
        if let Some((engagement, (agent, charged))) = found {
            self.queues[skill].remove(&key);
            self.shares.served.insert(engagement, charged);
            self.hand_over(agent, c);
        }
    }

    fn shift_start(&mut self, a: usize) {
        let agent = &mut self.agents[a];
        agent.on_shift = true;
        // Still finishing a contact from before: already logged in.
        if agent.desk == Desk::Off {
            agent.logged_in_at = self.now;
            self.ready(a);
        }
    }

    fn shift_end(&mut self, a: usize) {
        self.agents[a].on_shift = false;
        // A busy worker leaves when the contact is done (see `ready`).
        if matches!(self.agents[a].desk, Desk::Idle(_)) {
            self.leave_pool(a);
            self.log_out(a);
        }
    }

    fn leave_pool(&mut self, a: usize) {
        let Desk::Idle(slot) = self.agents[a].desk else {
            return;
        };
        let pool = &mut self.idle[self.agents[a].group];
        pool.swap_remove(slot);
        if let Some((moved, _)) = pool.get(slot) {
            let moved = worker_index(moved.id);
            self.agents[moved].desk = Desk::Idle(slot);
        }
        self.agents[a].desk = Desk::Busy;
    }

    fn log_out(&mut self, a: usize) {
        let since = self.agents[a].logged_in_at;
        self.spread(since, self.now, |t| &mut t.staffed_secs);
        self.agents[a].desk = Desk::Off;
    }

    fn interval_of(&self, at: i64) -> usize {
        ((at / self.plan.interval) as usize).min(self.plan.intervals - 1)
    }

    /// Adds the part of `[from, to)` that falls in each interval to that interval.
    fn spread(&mut self, from: i64, to: i64, field: fn(&mut Tally) -> &mut f64) {
        let (mut at, to) = (from.max(0), to.min(self.plan.horizon));
        while at < to {
            let k = self.interval_of(at);
            let end = ((k as i64 + 1) * self.plan.interval).min(to);
            *field(&mut self.tallies[k]) += seconds(end - at);
            at = end;
        }
    }

    fn report(mut self) -> Report {
        for c in 0..self.contacts.len() {
            if let Fate::Waiting(_) = self.contacts[c].fate {
                let k = self.interval_of(self.contacts[c].arrival);
                self.tallies[k].unanswered += 1;
            }
        }
        for a in 0..self.agents.len() {
            if self.agents[a].desk != Desk::Off {
                let since = self.agents[a].logged_in_at;
                self.spread(since, i64::MAX, |t| &mut t.staffed_secs);
            }
        }
        let mut total = Tally::default();
        let intervals = self
            .tallies
            .iter()
            .enumerate()
            .map(|(k, tally)| {
                total.add(tally);
                let start = self.timestamp(k as i64 * self.plan.interval);
                let end = self.timestamp((k as i64 + 1) * self.plan.interval);
                Row::new(start, end, tally.clone())
            })
            .collect();
        Report {
            seed: self.options.seed,
            service_level_target_secs: seconds(self.plan.target),
            intervals,
            total: Row::new(self.plan.start, self.timestamp(self.plan.horizon), total),
            events: self.events,
            assignments: self.assignments,
        }
    }
}

//! The process engine: a pure state machine `(item, event, now) → (item', effects)`.
//!
//! The engine never performs anything. It returns [`Effect`]s — open a task, schedule a
//! timer, send a message, write an audit record — that the store applies in the same
//! transaction as the new state. Automatic and decision steps are passed through within
//! one call; an item rests only at a human or review step (a task is open), a wait step,
//! an end step, or cancelled.
//!
//! Every change of an item's [`Snapshot`] (its position and priority) yields exactly one
//! [`Effect::Audit`], whose `before` is the previous record's `after`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::definition::{
    Action, Completeness, ENTRIES, FieldError, ServiceDefinition, Step, StepKind, TIMEOUT, Work,
    validate_form, validate_submission,
};
use crate::id::{WorkItemId, WorkerId};
use crate::values::{Key, Language, Priority, SkillLevel};

/// What the engine knows of an item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemState {
    pub id: WorkItemId,
    pub priority: Priority,
    pub data: Map<String, Json>,
    pub position: Position,
    /// How many step entries the item has made: each entry gets the next number, so a
    /// task or timer of an earlier entry is recognised as stale.
    pub visits: u32,
    /// How many times the item has entered each step (decisions read it as `entries`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entries: BTreeMap<Key, u32>,
    /// Who last did each human or review step: a review excludes that worker.
    pub performers: BTreeMap<Key, WorkerId>,
    /// When its SLA clocks started, paused and stopped.
    #[serde(default)]
    pub sla: crate::sla::SlaClocks,
    /// The service's lookups as the store last read them (see `definition::Lookup`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub facts: Map<String, Json>,
}

/// Where an item is. Exactly one of these at any time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Position {
    /// In a step. At rest this is a human or review step with an open task; automatic and
    /// decision steps are only passed through.
    InStep { step: Key, visit: u32 },
    /// At a wait step, until an event arrives or the timer (if any) fires.
    Waiting {
        step: Key,
        visit: u32,
        until: Option<Timestamp>,
    },
    Completed {
        step: Key,
        resolution: Key,
        at: Timestamp,
    },
    Cancelled {
        reason: String,
        at: Timestamp,
        /// A duplicate merged into another item (reason `merged`) points to it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        merged_into: Option<WorkItemId>,
    },
}

impl Position {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Position::Completed { .. } | Position::Cancelled { .. }
        )
    }

    pub fn step(&self) -> Option<&Key> {
        match self {
            Position::InStep { step, .. }
            | Position::Waiting { step, .. }
            | Position::Completed { step, .. } => Some(step),
            Position::Cancelled { .. } => None,
        }
    }

    /// A short name for lists and filters: `active`, `waiting`, `completed`, `cancelled`.
    pub fn status(&self) -> &'static str {
        match self {
            Position::InStep { .. } => "active",
            Position::Waiting { .. } => "waiting",
            Position::Completed { .. } => "completed",
            Position::Cancelled { .. } => "cancelled",
        }
    }
}

/// The part of an item whose every change is audited as a state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub position: Position,
    pub priority: Priority,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A worker finished a human or review task with an outcome and its form's values.
    TaskSubmitted {
        step: Key,
        visit: u32,
        worker: WorkerId,
        outcome: Key,
        data: Map<String, Json>,
    },
    /// Something the item may be waiting for happened, e.g. `requester_reply`.
    External {
        name: Key,
    },
    TimerFired {
        step: Key,
        visit: u32,
    },
    /// The hours of a human step's task closed before anyone took it.
    HoursClosed {
        step: Key,
        visit: u32,
    },
    Cancel {
        reason: String,
    },
    /// The item is a duplicate of `into`: it ends cancelled as `merged`, pointing there, and
    /// its requester is told.
    Merge {
        into: WorkItemId,
    },
    /// The item's priority changes (an SLA escalation raised it, say).
    Reprioritise {
        priority: Priority,
        reason: String,
    },
    /// The item's parent (the major incident it is linked to) was resolved: the item ends
    /// with the same resolution, and its requester is told so.
    FollowParent {
        parent: WorkItemId,
        resolution: Key,
        /// The parent's public resolution note, passed on to the item's requester.
        note: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Queue a task for this entry into a human or review step.
    OpenTask(TaskSpec),
    /// Withdraw any open or held task of the item.
    CancelTasks,
    ScheduleTimer {
        step: Key,
        visit: u32,
        at: Timestamp,
    },
    /// Hand a message to the outbox.
    Send(Outbound),
    /// Add the worker's message to the item's thread; a public one also goes out to the
    /// requester as a reply.
    PostMessage {
        visibility: crate::model::Visibility,
        body: String,
    },
    /// Add or replace the entry `key` of the item's client's register `register`.
    SetRegisterEntry {
        register: Key,
        key: String,
        data: Map<String, Json>,
    },
    Audit(AuditRecord),
}

/// The engine's view of a task to open; the store gives it an id and the item's tenancy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskSpec {
    pub step: Key,
    pub visit: u32,
    pub skill: Key,
    pub min_level: SkillLevel,
    pub language: Option<Language>,
    pub certifications: std::collections::BTreeSet<Key>,
    pub channel: crate::routing::Channel,
    pub relax: Vec<crate::routing::Relaxation>,
    pub excluded_worker: Option<WorkerId>,
    /// The worker who last did this step, kept first in line for it for a short while
    /// (a review sent the work back, say).
    pub reserved_for: Option<(WorkerId, Timestamp)>,
    pub priority: Priority,
    pub due_at: Option<Timestamp>,
    pub serve_by: Timestamp,
    pub offer_timeout: Option<jiff::SignedDuration>,
    pub worker_order: crate::routing::WorkerOrder,
    /// When the task may be taken: its step's hours in the item's zone.
    pub window: Option<crate::model::Window>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outbound {
    NotifyRequester {
        template: Key,
    },
    CsatRequest,
    /// The requester of a duplicate learns which item carries on its conversation.
    Merged {
        into: WorkItemId,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    /// `item.created`, `task.submitted`, `event.received`, `timer.fired`, `step.escalated`,
    /// `step.entered`, `review.skipped`, `item.completed`, `item.cancelled`, `item.merged`.
    pub action: &'static str,
    pub before: Option<Snapshot>,
    pub after: Snapshot,
    pub detail: Map<String, Json>,
}

/// The new state and what must be done to make it true.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub state: ItemState,
    pub effects: Vec<Effect>,
}

/// The message a submission carries in the step's message field, if it has one: public
/// for the outcomes the step names, internal otherwise.
fn worker_message(
    work: &crate::definition::Work,
    outcome: &Key,
    values: &Map<String, Json>,
) -> Option<(crate::model::Visibility, String)> {
    let policy = work.message.as_ref()?;
    let body = values.get(policy.field.as_str())?.as_str()?.trim();
    if body.is_empty() {
        return None;
    }
    let visibility = if policy.public_on.contains(outcome) {
        crate::model::Visibility::Public
    } else {
        crate::model::Visibility::Internal
    };
    Some((visibility, body.to_owned()))
}

/// Why an event does not apply. The item is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the item is finished and cannot change")]
    Finished,
    #[error("the item is no longer at that step (it moved on or the task was superseded)")]
    Stale,
    #[error("`{outcome}` is not an outcome of this step; allowed: {}", allowed.join(", "))]
    UnknownOutcome {
        outcome: String,
        allowed: Vec<String>,
    },
    #[error("the data has {} problem(s)", .0.len())]
    InvalidData(Vec<FieldError>),
    #[error("four eyes: a review cannot be done by the worker whose work it reviews")]
    FourEyes,
    #[error("the item is not waiting for `{0}`")]
    NotWaitingFor(String),
    #[error("the definition has no step `{0}`")]
    UnknownStep(String),
    #[error("automatic steps ran in a loop; the definition should have been refused")]
    Runaway,
}

/// Creates an item: validates its intake data and runs it to its first resting position.
pub fn start(
    definition: &ServiceDefinition,
    id: WorkItemId,
    data: &Map<String, Json>,
    priority: Priority,
    now: Timestamp,
) -> Result<Outcome, Rejection> {
    start_with_facts(definition, id, data, priority, Map::new(), now)
}

/// [`start`] for a service with lookups: `facts` are what the store read for the new
/// item, which its first decisions may need.
pub fn start_with_facts(
    definition: &ServiceDefinition,
    id: WorkItemId,
    data: &Map<String, Json>,
    priority: Priority,
    facts: Map<String, Json>,
    now: Timestamp,
) -> Result<Outcome, Rejection> {
    let data = validate_form(&definition.intake, data, Completeness::Whole)
        .map_err(Rejection::InvalidData)?;
    // Where the service sets priority by impact and urgency, the matrix decides.
    let priority = definition
        .priority_matrix
        .as_ref()
        .and_then(|matrix| matrix.priority(&data))
        .unwrap_or(priority);
    let state = ItemState {
        id,
        priority,
        data,
        position: Position::InStep {
            step: definition.start.clone(),
            visit: 0,
        },
        visits: 0,
        entries: BTreeMap::new(),
        performers: BTreeMap::new(),
        sla: crate::sla::SlaClocks::started(now),
        facts,
    };
    let mut run = Run::new(definition, state, now);
    run.before = None;
    run.enter(&definition.start, "item.created", Map::new())?;
    Ok(run.finish())
}

/// Applies one event to an item.
pub fn apply(
    definition: &ServiceDefinition,
    state: &ItemState,
    event: &Event,
    now: Timestamp,
) -> Result<Outcome, Rejection> {
    if state.position.is_terminal() {
        return Err(Rejection::Finished);
    }
    let mut run = Run::new(definition, state.clone(), now);
    match event {
        Event::TaskSubmitted {
            step,
            visit,
            worker,
            outcome,
            data,
        } => {
            let current = run.current_step(step, *visit)?;
            let (work, target) = match &current.kind {
                StepKind::Human { work, on } => {
                    let target = on.iter().find(|t| &t.outcome == outcome).ok_or_else(|| {
                        Rejection::UnknownOutcome {
                            outcome: outcome.to_string(),
                            allowed: on.iter().map(|t| t.outcome.to_string()).collect(),
                        }
                    })?;
                    (work, &target.to)
                }
                StepKind::Review {
                    work,
                    reviews,
                    on_approve,
                    reject_to,
                    ..
                } => {
                    if run.state.performers.get(reviews) == Some(worker) {
                        return Err(Rejection::FourEyes);
                    }
                    let target = match outcome.as_str() {
                        crate::definition::APPROVE => on_approve,
                        crate::definition::REJECT => reject_to,
                        _ => {
                            return Err(Rejection::UnknownOutcome {
                                outcome: outcome.to_string(),
                                allowed: vec!["approve".into(), "reject".into()],
                            });
                        }
                    };
                    (work, target)
                }
                _ => return Err(Rejection::Stale),
            };
            let values = validate_submission(&work.form, outcome.as_str(), data)
                .map_err(Rejection::InvalidData)?;
            if let Some((visibility, body)) = worker_message(work, outcome, &values) {
                // A public answer is the provider's response: it stops the clocks that
                // wait for one, as a reply through the API does.
                if visibility == crate::model::Visibility::Public {
                    run.state.sla.responded(now);
                }
                run.effects.push(Effect::PostMessage { visibility, body });
            }
            run.state.data.extend(values);
            run.state.performers.insert(step.clone(), *worker);
            let detail = detail([
                ("step", json!(step)),
                ("outcome", json!(outcome)),
                ("worker", json!(worker)),
            ]);
            run.enter(target, "task.submitted", detail)?;
        }
        Event::External { name } => {
            let target = match &run.state.position {
                Position::Waiting { step, .. } => run
                    .step(step)?
                    .successors()
                    .into_iter()
                    .find(|(outcome, _)| *outcome == name.as_str() && *outcome != TIMEOUT)
                    .map(|(_, to)| to.clone()),
                _ => None,
            }
            .ok_or_else(|| Rejection::NotWaitingFor(name.to_string()))?;
            run.enter(&target, "event.received", detail([("event", json!(name))]))?;
        }
        Event::TimerFired { step, visit } => {
            let (target, action) = match (&run.state.position, &run.step(step)?.kind) {
                (
                    Position::Waiting {
                        step: s, visit: v, ..
                    },
                    StepKind::Wait { on, .. },
                ) if s == step && v == visit => {
                    let timeout = on.iter().find(|t| t.outcome.as_str() == TIMEOUT);
                    (timeout.ok_or(Rejection::Stale)?.to.clone(), "timer.fired")
                }
                (Position::InStep { step: s, visit: v }, StepKind::Human { work, .. })
                    if s == step && v == visit =>
                {
                    let escalation = work.escalation.as_ref().ok_or(Rejection::Stale)?;
                    // Nobody submitted in time: the task is withdrawn, from its holder too.
                    run.effects.push(Effect::CancelTasks);
                    (escalation.to.clone(), "step.escalated")
                }
                _ => return Err(Rejection::Stale),
            };
            run.enter(&target, action, detail([("step", json!(step))]))?;
        }
        Event::HoursClosed { step, visit } => {
            let hours = match (&run.state.position, &run.step(step)?.kind) {
                (Position::InStep { step: s, visit: v }, StepKind::Human { work, .. })
                    if s == step && v == visit =>
                {
                    work.hours.as_ref().ok_or(Rejection::Stale)?
                }
                _ => return Err(Rejection::Stale),
            };
            run.effects.push(Effect::CancelTasks);
            let after = hours.after.clone();
            run.enter(&after, "task.after_hours", detail([("step", json!(step))]))?;
        }
        Event::Cancel { reason } => {
            run.cancel(reason, None);
            run.audit("item.cancelled", detail([("reason", json!(reason))]));
        }
        Event::Merge { into } => {
            run.cancel(crate::definition::MERGED, Some(*into));
            run.effects
                .push(Effect::Send(Outbound::Merged { into: *into }));
            let detail = detail([
                ("reason", json!(crate::definition::MERGED)),
                ("into", json!(into)),
            ]);
            run.audit("item.merged", detail);
        }
        Event::Reprioritise { priority, reason } => {
            run.state.priority = *priority;
            run.audit("item.reprioritised", detail([("reason", json!(reason))]));
        }
        Event::FollowParent {
            parent,
            resolution,
            note,
        } => {
            run.effects.push(Effect::CancelTasks);
            // It ends where its own process ends with that resolution; a process without
            // such an end keeps the step the item was at.
            let end = definition.steps.iter().find(
                |step| matches!(&step.kind, StepKind::End { resolution: r } if r == resolution),
            );
            let step = match (end, run.state.position.step()) {
                (Some(end), _) => end.id.clone(),
                (None, Some(current)) => current.clone(),
                (None, None) => definition.start.clone(),
            };
            run.state.position = Position::Completed {
                step,
                resolution: resolution.clone(),
                at: now,
            };
            let mut body = format!(
                "Resolved together with the major incident {}.",
                parent.reference()
            );
            if let Some(note) = note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                body.push_str("\n\n");
                body.push_str(note);
            }
            run.state.sla.responded(now);
            run.effects.push(Effect::PostMessage {
                visibility: crate::model::Visibility::Public,
                body,
            });
            let detail = detail([("parent", json!(parent)), ("resolution", json!(resolution))]);
            run.audit("item.completed", detail);
        }
    }
    Ok(run.finish())
}

fn detail<const N: usize>(pairs: [(&str, Json); N]) -> Map<String, Json> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// One engine call in progress: the state so far and the effects it has produced.
struct Run<'d> {
    definition: &'d ServiceDefinition,
    state: ItemState,
    now: Timestamp,
    before: Option<Snapshot>,
    effects: Vec<Effect>,
}

impl<'d> Run<'d> {
    fn new(definition: &'d ServiceDefinition, state: ItemState, now: Timestamp) -> Self {
        let before = Some(snapshot(&state));
        Self {
            definition,
            state,
            now,
            before,
            effects: Vec::new(),
        }
    }

    fn step(&self, id: &Key) -> Result<&'d Step, Rejection> {
        self.definition
            .step(id)
            .ok_or_else(|| Rejection::UnknownStep(id.to_string()))
    }

    /// The step a task submission names, if the item is resting there on that visit.
    fn current_step(&self, step: &Key, visit: u32) -> Result<&'d Step, Rejection> {
        match &self.state.position {
            Position::InStep { step: s, visit: v } if s == step && *v == visit => self.step(step),
            _ => Err(Rejection::Stale),
        }
    }

    /// Ends the item cancelled, withdrawing its tasks.
    fn cancel(&mut self, reason: &str, merged_into: Option<WorkItemId>) {
        self.effects.push(Effect::CancelTasks);
        self.state.position = Position::Cancelled {
            reason: reason.to_owned(),
            at: self.now,
            merged_into,
        };
    }

    fn audit(&mut self, action: &'static str, detail: Map<String, Json>) {
        let after = snapshot(&self.state);
        let before = self.before.replace(after.clone());
        self.effects.push(Effect::Audit(AuditRecord {
            action,
            before,
            after,
            detail,
        }));
    }

    /// Enters `first` and keeps going through automatic, decision and unsampled review
    /// steps until the item comes to rest. Each entry is one audited state change.
    fn enter(
        &mut self,
        first: &Key,
        first_action: &'static str,
        mut first_detail: Map<String, Json>,
    ) -> Result<(), Rejection> {
        let mut next = first.clone();
        let mut action = first_action;
        // A loaded definition has no cycle of pass-through steps, so a chain of them is
        // at most as long as the list of steps.
        for _ in 0..=self.definition.steps.len() {
            let step = self.step(&next)?;
            self.state.visits += 1;
            let visit = self.state.visits;
            *self.state.entries.entry(step.id.clone()).or_default() += 1;
            let mut detail = std::mem::take(&mut first_detail);
            detail.insert("to".into(), json!(step.id));
            self.state.position = Position::InStep {
                step: step.id.clone(),
                visit,
            };
            let follow = match &step.kind {
                StepKind::Human { work, .. } => {
                    let task = self.task_spec(step, visit, work, None);
                    self.effects.push(Effect::OpenTask(task));
                    // Counted in business time, like the step's `due`.
                    let escalate_at = work
                        .escalation
                        .as_ref()
                        .and_then(|e| self.definition.calendar.add(self.now, e.after).ok());
                    if let Some(at) = escalate_at {
                        self.effects.push(Effect::ScheduleTimer {
                            step: step.id.clone(),
                            visit,
                            at,
                        });
                    }
                    None
                }
                StepKind::Review {
                    work,
                    reviews,
                    sample_percent,
                    on_approve,
                    ..
                } => {
                    if is_sampled(self.state.id, &step.id, visit, *sample_percent) {
                        let author = self.state.performers.get(reviews).copied();
                        let task = self.task_spec(step, visit, work, author);
                        self.effects.push(Effect::OpenTask(task));
                        None
                    } else {
                        detail.insert("sampled".into(), json!(false));
                        if action == "step.entered" {
                            action = "review.skipped";
                        }
                        Some(on_approve.clone())
                    }
                }
                StepKind::Automatic { action: job, next } => {
                    match job {
                        Action::SetPriority { priority } => self.state.priority = *priority,
                        Action::NotifyRequester { template } => {
                            self.effects.push(Effect::Send(Outbound::NotifyRequester {
                                template: template.clone(),
                            }));
                        }
                        Action::RequestCsat => {
                            self.effects.push(Effect::Send(Outbound::CsatRequest))
                        }
                        Action::AddToRegister {
                            register,
                            key_field,
                        } => {
                            let key = self
                                .state
                                .data
                                .get(key_field.as_str())
                                .and_then(Json::as_str)
                                .filter(|key| !key.trim().is_empty());
                            if let Some(key) = key {
                                let data = Map::from_iter([
                                    ("item".to_owned(), json!(self.state.id)),
                                    ("reference".to_owned(), json!(self.state.id.reference())),
                                    ("step".to_owned(), json!(step.id)),
                                ]);
                                self.effects.push(Effect::SetRegisterEntry {
                                    register: register.clone(),
                                    key: key.to_owned(),
                                    data,
                                });
                            }
                        }
                    }
                    Some(next.clone())
                }
                StepKind::Wait {
                    timer,
                    until_field,
                    until_open,
                    ..
                } => {
                    let text =
                        |field: &Key| self.state.data.get(field.as_str()).and_then(Json::as_str);
                    // A time the item's data names wins over the step's timer.
                    let named = until_field
                        .as_ref()
                        .and_then(text)
                        .and_then(|at| at.parse::<Timestamp>().ok());
                    let mut until =
                        named.or_else(|| timer.and_then(|t| self.now.checked_add(t).ok()));
                    // Within hours in the item's own zone: the end moves to their opening.
                    if let Some(hours) = until_open {
                        let from = until.unwrap_or(self.now).max(self.now);
                        let zone = text(&hours.zone_field);
                        until = hours.next_open(zone, &self.zone(), from).or(until);
                    }
                    if let Some(at) = until {
                        self.effects.push(Effect::ScheduleTimer {
                            step: step.id.clone(),
                            visit,
                            at,
                        });
                    }
                    self.state.position = Position::Waiting {
                        step: step.id.clone(),
                        visit,
                        until,
                    };
                    None
                }
                StepKind::Decision {
                    branches,
                    otherwise,
                } => {
                    let fields = self.definition.all_fields();
                    let priority = self.state.priority.as_str();
                    let facts = self.facts_with_entries(&fields);
                    let mut failures = Vec::new();
                    let chosen = branches.iter().find(|branch| {
                        match branch.when.evaluate(
                            fields.iter().copied(),
                            &self.state.data,
                            &facts,
                            priority,
                        ) {
                            Ok(answer) => answer,
                            Err(error) => {
                                failures.push(json!({
                                    "when": branch.when.source(),
                                    "error": error.to_string(),
                                }));
                                false
                            }
                        }
                    });
                    if !failures.is_empty() {
                        detail.insert("failed_branches".into(), Json::Array(failures));
                    }
                    Some(chosen.map_or(otherwise, |branch| &branch.to).clone())
                }
                StepKind::End { resolution } => {
                    self.state.position = Position::Completed {
                        step: step.id.clone(),
                        resolution: resolution.clone(),
                        at: self.now,
                    };
                    if action == "step.entered" {
                        action = "item.completed";
                    }
                    None
                }
            };
            self.audit(action, detail);
            match follow {
                Some(step) => {
                    next = step;
                    action = "step.entered";
                }
                None => return Ok(()),
            }
        }
        Err(Rejection::Runaway)
    }

    /// The lookups plus `entries`: how many times the item has entered each step of the
    /// service (0 for a step never entered). A field or lookup named `entries` wins.
    fn facts_with_entries(&self, fields: &[&crate::definition::Field]) -> Map<String, Json> {
        let mut facts = self.state.facts.clone();
        let shadowed = facts.contains_key(ENTRIES)
            || fields.iter().any(|field| field.name.as_str() == ENTRIES);
        if !shadowed {
            let entries = self
                .definition
                .steps
                .iter()
                .map(|step| {
                    let count = self.state.entries.get(&step.id).copied().unwrap_or(0);
                    (step.id.to_string(), json!(count))
                })
                .collect();
            facts.insert(ENTRIES.into(), Json::Object(entries));
        }
        facts
    }

    fn task_spec(
        &self,
        step: &Step,
        visit: u32,
        work: &Work,
        excluded_worker: Option<WorkerId>,
    ) -> TaskSpec {
        let language = self
            .definition
            .language_field
            .as_ref()
            .and_then(|field| self.state.data.get(field.as_str()))
            .and_then(Json::as_str)
            .and_then(|tag| Language::parse(tag).ok());
        let step_due = work
            .due
            .or(self.definition.sla.step)
            .and_then(|d| self.definition.calendar.add(self.now, d).ok());
        // A task opens where the item rests at a human step: its clocks run again.
        let mut clocks = self.state.sla.clone();
        clocks.resume(self.now);
        let item_due = crate::sla::earliest_breach(
            &clocks,
            &self.definition.sla.targets(),
            &self.definition.calendar,
            self.now,
        );
        let due_at = step_due.into_iter().chain(item_due).min();
        let policy = &work.routing;
        let window = work.hours.as_ref().and_then(|hours| {
            let zone = self
                .state
                .data
                .get(hours.hours.zone_field.as_str())
                .and_then(Json::as_str);
            let (opens, closes) = hours.hours.window(zone, &self.zone(), self.now)?;
            Some(crate::model::Window { opens, closes })
        });
        // A task whose hours open later waits in line from then, not from now.
        let in_line_from = window.map_or(self.now, |window| window.opens.max(self.now));
        let reserved_for = self
            .state
            .performers
            .get(&step.id)
            .filter(|_| policy.preferred_window.is_positive())
            .and_then(|worker| {
                Some((*worker, self.now.checked_add(policy.preferred_window).ok()?))
            });
        TaskSpec {
            step: step.id.clone(),
            visit,
            skill: work.skill.clone(),
            min_level: work.min_level,
            language,
            certifications: work.certifications.clone(),
            channel: policy.channel,
            relax: policy.relax.clone(),
            excluded_worker,
            reserved_for,
            priority: self.state.priority,
            due_at,
            serve_by: crate::routing::serve_by(self.state.priority, in_line_from, due_at, policy),
            offer_timeout: policy.offer_timeout,
            worker_order: policy.worker_order,
            window,
        }
    }

    /// The engagement calendar's zone: hours in an item's own zone fall back to it.
    fn zone(&self) -> String {
        crate::calendar::CalendarSpec::from(&self.definition.calendar).zone
    }

    fn finish(mut self) -> Outcome {
        // Only where the item came to rest matters to the clocks: waiting on the client
        // pauses them, finishing stops them.
        let now = self.now;
        match &self.state.position {
            Position::Waiting { .. } => self.state.sla.pause(now),
            Position::InStep { .. } => self.state.sla.resume(now),
            Position::Completed { .. } | Position::Cancelled { .. } => self.state.sla.resolve(now),
        }
        Outcome {
            state: self.state,
            effects: self.effects,
        }
    }
}

fn snapshot(state: &ItemState) -> Snapshot {
    Snapshot {
        position: state.position.clone(),
        priority: state.priority,
    }
}

/// Whether this entry into a review step is sampled: a stable hash of the item, step and
/// visit, so that the same item always gets the same answer and a rate of n % reviews
/// about n % of items.
pub fn is_sampled(item: WorkItemId, step: &Key, visit: u32, percent: u8) -> bool {
    if percent >= 100 {
        return true;
    }
    let bytes = item
        .as_uuid()
        .into_bytes()
        .into_iter()
        .chain(step.as_str().bytes())
        .chain(visit.to_le_bytes());
    crate::hashing::fnv1a(bytes) % 100 < u64::from(percent)
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

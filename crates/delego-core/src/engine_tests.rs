//! Property tests of the engine over random valid definitions and random event sequences.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Map, Value as Json, json};

use super::*;
use crate::definition::{
    Branch, Expression, Field, FieldType, Form, Rules, ServiceKind, SlaDefaults, Step, Transition,
};
use crate::values::Name;

fn key(s: &str) -> Key {
    Key::parse(s).unwrap()
}

/// The shape of one generated step; targets are indices into the step list, where
/// `len` and `len + 1` stand for the two end steps.
#[derive(Clone, Debug)]
enum Shape {
    Human {
        targets: Vec<usize>,
        /// Escalates by elapsed time to another human step, if there is one.
        escalates: bool,
    },
    Review {
        percent: u8,
        approve: usize,
        reject: usize,
    },
    Automatic {
        next: usize,
        priority: Option<Priority>,
    },
    Wait {
        timer: bool,
        events: Vec<usize>,
    },
    Decision {
        threshold: i64,
        yes: usize,
        no: usize,
    },
}

/// Random valid definitions: step `i` always leads on to `i + 1` (so every step is
/// reachable and an end is too), automatic and decision steps only lead forward (so every
/// cycle passes a human, review or wait step), and a review reviews an earlier human step.
fn definitions() -> impl Strategy<Value = ServiceDefinition> {
    (1usize..7)
        .prop_flat_map(|len| {
            let target = 0..len + 2;
            let shape = (
                0u8..5,
                prop::collection::vec(target.clone(), 0..3),
                target.clone(),
                0u8..=100,
                any::<bool>(),
                -5i64..5,
            );
            prop::collection::vec(shape, len)
        })
        .prop_map(|raw| build(&shapes(&raw)))
}

type RawShape = (u8, Vec<usize>, usize, u8, bool, i64);

fn shapes(raw: &[RawShape]) -> Vec<Shape> {
    let len = raw.len();
    let mut seen_human = false;
    raw.iter()
        .enumerate()
        .map(|(i, (kind, extra, other, percent, flag, threshold))| {
            let next = i + 1; // `len` is the first end step
            let forward = |t: usize| if t > i { t } else { next };
            let shape = match kind {
                0 => Shape::Human {
                    targets: std::iter::once(next).chain(extra.iter().copied()).collect(),
                    escalates: *flag,
                },
                1 if seen_human => Shape::Review {
                    percent: *percent,
                    approve: next,
                    reject: (*other).min(i),
                },
                2 => Shape::Automatic {
                    next,
                    priority: flag.then_some(Priority::High),
                },
                3 => Shape::Wait {
                    timer: *flag || extra.is_empty(),
                    events: std::iter::once(next).chain(extra.iter().copied()).collect(),
                },
                4 => Shape::Decision {
                    threshold: *threshold,
                    yes: forward(*other),
                    no: next,
                },
                _ => Shape::Human {
                    targets: vec![next, (*other).min(len + 1)],
                    escalates: false,
                },
            };
            seen_human |= matches!(shape, Shape::Human { .. });
            shape
        })
        .collect()
}

fn step_id(len: usize, i: usize) -> Key {
    match i.checked_sub(len) {
        None => key(&format!("s{i}")),
        Some(0) => key("done"),
        Some(_) => key("dropped"),
    }
}

fn work(form: Form) -> crate::definition::Work {
    crate::definition::Work {
        certifications: Default::default(),
        routing: Default::default(),
        skill: key("general"),
        min_level: SkillLevel::MIN,
        handle_time: SignedDuration::from_mins(5),
        due: None,
        form,
        message: None,
        escalation: None,
        hours: None,
    }
}

fn number_field(name: &str) -> Field {
    Field {
        name: key(name),
        label: name.into(),
        help: None,
        kind: FieldType::Integer,
        required: false,
        required_on: Default::default(),
        rules: Rules::default(),
    }
}

fn build(shapes: &[Shape]) -> ServiceDefinition {
    let len = shapes.len();
    let id = |i: usize| step_id(len, i);
    let last_human = |before: usize| {
        (0..before)
            .rev()
            .find(|&j| matches!(shapes[j], Shape::Human { .. }))
            .map(id)
    };
    // The next human step after `i`, wrapping around, that is not `i` itself.
    let other_human = |i: usize| {
        (1..len)
            .map(|k| (i + k) % len)
            .find(|&j| matches!(shapes[j], Shape::Human { .. }))
            .map(id)
    };
    let mut steps: Vec<Step> = shapes
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let kind = match shape {
                Shape::Human { targets, escalates } => StepKind::Human {
                    work: crate::definition::Work {
                        escalation: escalates.then(|| other_human(i)).flatten().map(|to| {
                            crate::definition::Escalation {
                                after: SignedDuration::from_mins(30),
                                to,
                            }
                        }),
                        ..work(Form {
                            fields: vec![number_field("score")],
                        })
                    },
                    on: targets
                        .iter()
                        .enumerate()
                        .map(|(n, t)| Transition {
                            outcome: key(&format!("o{n}")),
                            to: id(*t),
                        })
                        .collect(),
                },
                Shape::Review {
                    percent,
                    approve,
                    reject,
                } => StepKind::Review {
                    work: work(Form::default()),
                    reviews: last_human(i).unwrap_or_else(|| id(0)),
                    sample_percent: *percent,
                    on_approve: id(*approve),
                    reject_to: id(*reject),
                },
                Shape::Automatic { next, priority } => StepKind::Automatic {
                    action: match priority {
                        Some(priority) => crate::definition::Action::SetPriority {
                            priority: *priority,
                        },
                        None => crate::definition::Action::RequestCsat,
                    },
                    next: id(*next),
                },
                Shape::Wait { timer, events } => StepKind::Wait {
                    timer: timer.then_some(SignedDuration::from_hours(1)),
                    until_field: None,
                    until_open: None,
                    on: events
                        .iter()
                        .enumerate()
                        .map(|(n, t)| Transition {
                            outcome: key(&format!("e{n}")),
                            to: id(*t),
                        })
                        .chain(timer.then(|| Transition {
                            outcome: key("timeout"),
                            to: id(len + 1),
                        }))
                        .collect(),
                },
                Shape::Decision { threshold, yes, no } => StepKind::Decision {
                    branches: vec![Branch {
                        when: Expression::compile(&format!("score != null && score > {threshold}"))
                            .unwrap(),
                        to: id(*yes),
                    }],
                    otherwise: id(*no),
                },
            };
            Step {
                id: id(i),
                title: format!("step {i}"),
                kind,
            }
        })
        .collect();
    for (n, resolution) in ["resolved", "dropped"].iter().enumerate() {
        steps.push(Step {
            id: id(len + n),
            title: (*resolution).into(),
            kind: StepKind::End {
                resolution: key(resolution),
            },
        });
    }
    ServiceDefinition {
        key: key("generated"),
        version: 1,
        name: Name::parse("Generated").unwrap(),
        kind: ServiceKind::Bpo,
        description: String::new(),
        skills: vec![key("general")],
        sla: SlaDefaults::default(),
        calendar: Default::default(),
        language_field: None,
        requester_field: None,
        intake: Form {
            fields: vec![number_field("score")],
        },
        start: id(0),
        steps,
        canned_replies: Vec::new(),
        lookups: Vec::new(),
        templates: Vec::new(),
        priority_matrix: None,
        rates: Vec::new(),
    }
}

/// What a test driver may throw at an item.
#[derive(Clone, Debug)]
enum Poke {
    /// Submit the current task (or a stale one) with outcome `o{n}`/approve/reject.
    Submit {
        worker: u8,
        outcome: u8,
        stale: bool,
        score: i64,
    },
    External(u8),
    Timer {
        stale: bool,
    },
    Cancel,
    Merge,
    Later(u32),
}

fn pokes() -> impl Strategy<Value = Vec<Poke>> {
    let poke = prop_oneof![
        6 => (0u8..3, 0u8..4, prop::bool::weighted(0.1), -6i64..6)
            .prop_map(|(worker, outcome, stale, score)| Poke::Submit { worker, outcome, stale, score }),
        2 => (0u8..4).prop_map(Poke::External),
        2 => any::<bool>().prop_map(|stale| Poke::Timer { stale }),
        1 => Just(Poke::Cancel),
        1 => Just(Poke::Merge),
        2 => (1u32..7200).prop_map(Poke::Later),
    ];
    prop::collection::vec(poke, 0..40)
}

fn workers() -> [WorkerId; 3] {
    [
        WorkerId::from_uuid(uuid::Uuid::from_u128(1)),
        WorkerId::from_uuid(uuid::Uuid::from_u128(2)),
        WorkerId::from_uuid(uuid::Uuid::from_u128(3)),
    ]
}

fn event_for(definition: &ServiceDefinition, state: &ItemState, poke: &Poke) -> Option<Event> {
    let (step, visit) = match &state.position {
        Position::InStep { step, visit } | Position::Waiting { step, visit, .. } => {
            (step.clone(), *visit)
        }
        _ => (definition.start.clone(), 1),
    };
    Some(match poke {
        Poke::Submit {
            worker,
            outcome,
            stale,
            score,
        } => {
            let outcome = match definition.step(&step).map(|s| &s.kind) {
                Some(StepKind::Review { .. }) => if outcome % 2 == 0 {
                    "approve"
                } else {
                    "reject"
                }
                .to_owned(),
                _ => format!("o{outcome}"),
            };
            let data: Map<String, Json> = match definition.step(&step).and_then(Step::work) {
                Some(work) if !work.form.fields.is_empty() => {
                    Map::from_iter([("score".to_owned(), json!(score))])
                }
                _ => Map::new(),
            };
            Event::TaskSubmitted {
                step,
                visit: if *stale { visit.wrapping_sub(1) } else { visit },
                worker: workers()[usize::from(*worker)],
                outcome: key(&outcome),
                data,
            }
        }
        Poke::External(n) => Event::External {
            name: key(&format!("e{n}")),
        },
        Poke::Timer { stale } => Event::TimerFired {
            step,
            visit: if *stale { visit + 7 } else { visit },
        },
        Poke::Cancel => Event::Cancel {
            reason: "test".into(),
        },
        Poke::Merge => Event::Merge {
            into: WorkItemId::from_uuid(uuid::Uuid::from_u128(7)),
        },
        Poke::Later(_) => return None,
    })
}

fn check_resting(definition: &ServiceDefinition, state: &ItemState) -> Result<(), TestCaseError> {
    let kind = state
        .position
        .step()
        .map(|step| definition.step(step).map(|s| &s.kind));
    match (&state.position, kind) {
        (Position::InStep { .. }, Some(Some(StepKind::Human { .. } | StepKind::Review { .. })))
        | (Position::Waiting { .. }, Some(Some(StepKind::Wait { .. })))
        | (Position::Completed { .. }, Some(Some(StepKind::End { .. })))
        | (Position::Cancelled { .. }, None) => Ok(()),
        (position, kind) => Err(TestCaseError::fail(format!(
            "item rests in an impossible state: {position:?} at {kind:?}"
        ))),
    }
}

/// The audit records among an outcome's effects, in order.
fn audits(outcome: &Outcome) -> Vec<&AuditRecord> {
    outcome
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Audit(record) => Some(record),
            _ => None,
        })
        .collect()
}

/// The audit records of one call form a chain from the old snapshot to the new one, one
/// link per change.
fn check_audit_chain(before: &ItemState, outcome: &Outcome) -> Result<(), TestCaseError> {
    let audits = audits(outcome);
    prop_assert!(!audits.is_empty(), "a state change without an audit record");
    let mut expected = Some(snapshot(before));
    for record in &audits {
        prop_assert_eq!(&record.before, &expected);
        prop_assert_ne!(Some(&record.after), record.before.as_ref());
        expected = Some(record.after.clone());
    }
    prop_assert_eq!(expected, Some(snapshot(&outcome.state)));
    Ok(())
}

fn start_at() -> Timestamp {
    "2026-01-05T09:00:00Z".parse().unwrap()
}

/// An item of `definition` started with `data` at [`start_at`], at normal priority.
fn started_with(definition: &ServiceDefinition, data: &Map<String, Json>) -> Outcome {
    start(
        definition,
        WorkItemId::new(),
        data,
        Priority::Normal,
        start_at(),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_events_keep_every_item_in_one_valid_state_with_an_audited_history(
        definition in definitions(),
        score in -6i64..6,
        pokes in pokes(),
    ) {
        let mut now = start_at();
        let id = WorkItemId::from_uuid(uuid::Uuid::from_u128(42));
        let intake = Map::from_iter([("score".to_owned(), json!(score))]);
        let started = start(&definition, id, &intake, Priority::Normal, now).unwrap();
        check_resting(&definition, &started.state)?;
        let first = audits(&started).first().copied();
        prop_assert!(first.is_some_and(|r| r.before.is_none() && r.action == "item.created"));
        let mut state = started.state;

        for poke in &pokes {
            if let Poke::Later(seconds) = poke {
                now = now.checked_add(SignedDuration::from_secs(i64::from(*seconds))).unwrap();
                continue;
            }
            let Some(event) = event_for(&definition, &state, poke) else { continue };
            let result = apply(&definition, &state, &event, now);
            if state.position.is_terminal() {
                prop_assert_eq!(result, Err(Rejection::Finished), "terminal states are final");
                continue;
            }
            match result {
                Ok(outcome) => {
                    if let Event::TaskSubmitted { step, worker, .. } = &event
                        && let Some(StepKind::Review { reviews, .. }) =
                            definition.step(step).map(|s| &s.kind)
                    {
                        prop_assert_ne!(state.performers.get(reviews), Some(worker),
                            "a review was accepted from the author of the work");
                    }
                    check_resting(&definition, &outcome.state)?;
                    check_audit_chain(&state, &outcome)?;
                    check_sla_clocks(&outcome.state, now)?;
                    check_escalation(&definition, &state, &event, &outcome, now)?;
                    state = outcome.state;
                }
                Err(Rejection::Runaway | Rejection::UnknownStep(_)) => {
                    prop_assert!(false, "engine fault on a valid definition: {result:?}");
                }
                Err(_) => {}
            }
        }
    }
}

/// A human step that escalates schedules its timer with its task, in business time; when
/// the timer fires at that step, the task is withdrawn first and the move is audited.
fn check_escalation(
    definition: &ServiceDefinition,
    before: &ItemState,
    event: &Event,
    outcome: &Outcome,
    now: Timestamp,
) -> Result<(), TestCaseError> {
    let mut expected_timers = Vec::new();
    for effect in &outcome.effects {
        if let Effect::OpenTask(task) = effect
            && let Some(escalation) = definition
                .step(&task.step)
                .and_then(Step::work)
                .and_then(|work| work.escalation.as_ref())
        {
            let at = definition.calendar.add(now, escalation.after).unwrap();
            expected_timers.push((task.step.clone(), task.visit, at));
        }
    }
    let scheduled: Vec<_> = outcome
        .effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::ScheduleTimer { step, visit, at }
                if matches!(
                    definition.step(step).map(|s| &s.kind),
                    Some(StepKind::Human { .. })
                ) =>
            {
                Some((step.clone(), *visit, *at))
            }
            _ => None,
        })
        .collect();
    prop_assert_eq!(scheduled, expected_timers);
    let escalated = matches!(event, Event::TimerFired { .. })
        && matches!(before.position, Position::InStep { .. });
    if escalated {
        prop_assert_eq!(outcome.effects.first(), Some(&Effect::CancelTasks));
        let audit = audits(outcome).first().copied();
        prop_assert_eq!(audit.map(|record| record.action), Some("step.escalated"));
    }
    Ok(())
}

/// The SLA clocks agree with where the item rests: paused exactly while it waits,
/// stopped once it is finished, and every pause closed in the past.
fn check_sla_clocks(state: &ItemState, now: Timestamp) -> Result<(), TestCaseError> {
    let sla = &state.sla;
    prop_assert_eq!(
        sla.paused_since.is_some(),
        matches!(state.position, Position::Waiting { .. })
    );
    prop_assert_eq!(sla.resolved_at.is_some(), state.position.is_terminal());
    prop_assert!(sla.started_at.is_some());
    for pause in &sla.pauses {
        prop_assert!(pause.from < pause.to && pause.to <= now);
    }
    prop_assert!(sla.pauses.windows(2).all(|w| w[0].to <= w[1].from));
    Ok(())
}

#[test]
fn sampling_reviews_about_the_requested_share_of_items() {
    let step = key("check");
    let reviewed = (0..10_000u128)
        .filter(|n| {
            is_sampled(
                WorkItemId::from_uuid(uuid::Uuid::from_u128(n << 64 | 7)),
                &step,
                3,
                20,
            )
        })
        .count();
    assert!(
        (1_800..2_200).contains(&reviewed),
        "{reviewed} of 10000 at 20 %"
    );
    assert!(is_sampled(WorkItemId::new(), &step, 1, 100));
    assert!(!is_sampled(WorkItemId::new(), &step, 1, 0));
}

#[test]
fn a_decision_that_cannot_be_evaluated_takes_otherwise_and_says_why() {
    let mut definition = build(&[
        Shape::Decision {
            threshold: 0,
            yes: 1,
            no: 2,
        },
        Shape::Human {
            targets: vec![3],
            escalates: false,
        },
        Shape::Human {
            targets: vec![3],
            escalates: false,
        },
    ]);
    // `score > 0` on a missing score is an evaluation error in CEL (null > int).
    if let StepKind::Decision { branches, .. } = &mut definition.steps[0].kind {
        branches[0].when = Expression::compile("score > 0").unwrap();
    }
    let outcome = started_with(&definition, &Map::new());
    assert_eq!(outcome.state.position.step(), Some(&key("s2")));
    let audit = outcome.effects.iter().find_map(|e| match e {
        Effect::Audit(record) if record.detail.contains_key("failed_branches") => Some(record),
        _ => None,
    });
    assert!(
        audit.is_some(),
        "the failed branch is recorded in the audit trail"
    );
}

#[test]
fn performers_are_remembered_per_step_for_four_eyes() {
    let definition = build(&[
        Shape::Human {
            targets: vec![1],
            escalates: false,
        },
        Shape::Review {
            percent: 100,
            approve: 2,
            reject: 0,
        },
    ]);
    let [author, reviewer, _] = workers();
    let started = started_with(&definition, &Map::new());
    let submit = |state: &ItemState, worker, outcome: &str, data: Json| {
        submit_as(&definition, state, worker, outcome, data, start_at())
    };
    let answered = submit(&started.state, author, "o0", json!({"score": 3})).unwrap();
    let opened = answered
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::OpenTask(task) => Some(task),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        opened.excluded_worker,
        Some(author),
        "routing is told who wrote it"
    );
    assert_eq!(
        submit(&answered.state, author, "approve", json!({})),
        Err(Rejection::FourEyes)
    );
    let rejected = submit(&answered.state, reviewer, "reject", json!({})).unwrap();
    assert_eq!(
        rejected.state.position.step(),
        Some(&key("s0")),
        "reject returns to the named step"
    );
    assert_eq!(rejected.state.performers.get(&key("s1")), Some(&reviewer));
}

fn customer_support() -> ServiceDefinition {
    crate::definition::load_definition(include_str!("../../../catalog/customer-support.toml"))
        .unwrap()
}

/// The catalog's customer support, and a ticket of it started at [`start_at`], waiting for
/// an answer.
fn late_parcel() -> (ServiceDefinition, Outcome) {
    let definition = customer_support();
    let intake = json!({"subject": "Late parcel", "description": "Where is it?",
                        "requester_email": "ann@example.com"});
    let started = started_with(&definition, intake.as_object().unwrap());
    (definition, started)
}

#[test]
fn the_message_field_becomes_a_public_reply_or_an_internal_note_by_outcome() {
    let (definition, started) = late_parcel();
    let later = start_at() + SignedDuration::from_mins(10);
    let submit = |outcome: &str, reply: &str| {
        submit_at(
            &definition,
            &started.state,
            outcome,
            json!({ "reply": reply }),
            later,
        )
        .unwrap()
    };
    let posted = |outcome: &Outcome| {
        outcome
            .effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::PostMessage { visibility, body } => Some((*visibility, body.clone())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };

    let replied = submit("replied", "  It ships today. ");
    assert_eq!(
        posted(&replied),
        [(
            crate::model::Visibility::Public,
            "It ships today.".to_owned()
        )]
    );
    assert_eq!(replied.state.sla.first_response_at, Some(later));

    let noted = submit("noted", "VIP customer");
    assert_eq!(
        posted(&noted),
        [(
            crate::model::Visibility::Internal,
            "VIP customer".to_owned()
        )]
    );
    assert_eq!(
        noted.state.sla.first_response_at, None,
        "a note is no answer"
    );

    assert!(posted(&submit("replied", "   ")).is_empty());
}

#[test]
fn a_merged_duplicate_ends_cancelled_pointing_to_the_survivor_and_its_requester_is_told() {
    let (definition, started) = late_parcel();
    let survivor = WorkItemId::new();
    let later = start_at() + SignedDuration::from_mins(3);
    let merged = apply(
        &definition,
        &started.state,
        &Event::Merge { into: survivor },
        later,
    )
    .unwrap();
    assert_eq!(
        merged.state.position,
        Position::Cancelled {
            reason: "merged".into(),
            at: later,
            merged_into: Some(survivor),
        }
    );
    assert_eq!(
        merged.effects[0],
        Effect::CancelTasks,
        "its task is withdrawn"
    );
    assert!(
        merged
            .effects
            .contains(&Effect::Send(Outbound::Merged { into: survivor }))
    );
    let Some(Effect::Audit(record)) = merged.effects.last() else {
        panic!("{:?}", merged.effects)
    };
    assert_eq!(record.action, "item.merged");
    assert_eq!(record.detail["into"], json!(survivor));
    assert_eq!(
        apply(
            &definition,
            &merged.state,
            &Event::Merge { into: survivor },
            later
        ),
        Err(Rejection::Finished)
    );
}

/// Two tiers: the first escalates to the second by hand (`escalate`) or after two
/// business hours untouched; resolving names an article, escalating says why.
const TIERS: &str = r#"
[service]
key = "tiers"
version = 1
name = "Tiers"
kind = "bpo"
skills = ["tech"]
start = "l1"

[[steps]]
id = "l1"
kind = "human"
skill = "tech"
handle_time = "10m"
escalate_after = "2h"
escalate_to = "l2"
outcomes = ["resolved", "escalate"]
form = [
  { name = "article", type = "article", required_on = ["resolved"] },
  { name = "reason", type = "text", required_on = ["escalate"] },
]
on = { resolved = "done", escalate = "l2" }

[[steps]]
id = "l2"
kind = "human"
skill = "tech"
min_level = 3
handle_time = "20m"
outcomes = ["resolved"]
on = { resolved = "done" }

[[steps]]
id = "done"
kind = "end"
"#;

/// Monday to Friday, 09:00–17:00 UTC.
fn office_hours() -> crate::calendar::BusinessCalendar {
    let day = json!(["09:00-17:00"]);
    let spec: crate::calendar::CalendarSpec = serde_json::from_value(json!({
        "zone": "UTC",
        "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day},
    }))
    .unwrap();
    spec.try_into().unwrap()
}

/// Submits the task of the human step `state` is at, as `worker`, with `outcome` and
/// `data`, at `now`.
fn submit_as(
    definition: &ServiceDefinition,
    state: &ItemState,
    worker: WorkerId,
    outcome: &str,
    data: Json,
    now: Timestamp,
) -> Result<Outcome, Rejection> {
    let Position::InStep { step, visit } = &state.position else {
        panic!("not at a human step: {:?}", state.position)
    };
    let event = Event::TaskSubmitted {
        step: step.clone(),
        visit: *visit,
        worker,
        outcome: key(outcome),
        data: data.as_object().cloned().unwrap(),
    };
    apply(definition, state, &event, now)
}

/// [`submit_as`] the first of [`workers`].
fn submit_at(
    definition: &ServiceDefinition,
    state: &ItemState,
    outcome: &str,
    data: Json,
    now: Timestamp,
) -> Result<Outcome, Rejection> {
    submit_as(definition, state, workers()[0], outcome, data, now)
}

#[test]
fn an_untouched_task_escalates_after_business_time_and_a_submitted_one_does_not() {
    let mut definition = crate::definition::load_definition(TIERS).unwrap();
    definition.calendar = office_hours();
    let friday: Timestamp = "2026-01-09T16:00:00Z".parse().unwrap();
    let monday: Timestamp = "2026-01-12T10:00:00Z".parse().unwrap();
    let started = start(
        &definition,
        WorkItemId::new(),
        &Map::new(),
        Priority::Normal,
        friday,
    )
    .unwrap();
    let Position::InStep { step, visit } = started.state.position.clone() else {
        panic!("{:?}", started.state.position)
    };
    assert_eq!(step, key("l1"));
    let timers: Vec<_> = started
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::ScheduleTimer { step, visit, at } => Some((step.clone(), *visit, *at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        timers,
        [(key("l1"), visit, monday)],
        "Friday's last business hour and Monday's first"
    );

    let timer = Event::TimerFired {
        step: key("l1"),
        visit,
    };
    let escalated = apply(&definition, &started.state, &timer, monday).unwrap();
    assert_eq!(escalated.state.position.step(), Some(&key("l2")));
    assert_eq!(escalated.effects.first(), Some(&Effect::CancelTasks));
    let audit = audits(&escalated)[0];
    assert_eq!(audit.action, "step.escalated");
    assert_eq!(
        (&audit.detail["step"], &audit.detail["to"]),
        (&json!("l1"), &json!("l2"))
    );
    let opened = escalated.effects.iter().find_map(|e| match e {
        Effect::OpenTask(task) => Some(task),
        _ => None,
    });
    assert_eq!(
        opened.map(|task| (task.step.as_str(), task.min_level.get())),
        Some(("l2", 3))
    );
    assert!(
        !escalated
            .effects
            .iter()
            .any(|e| matches!(e, Effect::ScheduleTimer { .. })),
        "l2 does not escalate"
    );
    assert_eq!(
        apply(&definition, &escalated.state, &timer, monday),
        Err(Rejection::Stale),
        "a timer fires once"
    );

    // Escalated by hand before the time is up: the timer finds the item gone.
    let by_hand = submit_at(
        &definition,
        &started.state,
        "escalate",
        json!({"reason": "Needs a network engineer"}),
        friday + SignedDuration::from_mins(10),
    )
    .unwrap();
    assert_eq!(by_hand.state.position.step(), Some(&key("l2")));
    assert_eq!(
        apply(&definition, &by_hand.state, &timer, monday),
        Err(Rejection::Stale)
    );
}

#[test]
fn an_outcome_is_refused_without_the_fields_required_on_it() {
    let definition = crate::definition::load_definition(TIERS).unwrap();
    let started = started_with(&definition, &Map::new());
    let refused = |outcome: &str, data: Json| match submit_at(
        &definition,
        &started.state,
        outcome,
        data,
        start_at(),
    ) {
        Err(Rejection::InvalidData(errors)) => errors
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused("resolved", json!({"reason": "fixed"})),
        [("article".to_owned(), "required".to_owned())]
    );
    assert_eq!(
        refused("escalate", json!({"article": null})),
        [("reason".to_owned(), "required".to_owned())]
    );
    let article = "0190A3C4-7B2E-7C00-8000-000000000001";
    let resolved = submit_at(
        &definition,
        &started.state,
        "resolved",
        json!({ "article": article }),
        start_at(),
    )
    .unwrap();
    assert_eq!(
        resolved.state.data["article"],
        json!(article.to_lowercase())
    );
    assert!(resolved.state.position.is_terminal());
}

fn it_helpdesk() -> ServiceDefinition {
    crate::definition::load_definition(include_str!("../../../catalog/it-helpdesk.toml"))
        .unwrap_or_else(|problems| panic!("{problems:#?}"))
}

fn ticket(kind: &str, category: &str, impact: &str, urgency: &str) -> Map<String, Json> {
    json!({
        "type": kind, "subject": "VPN drops", "description": "Every ten minutes.",
        "requester_email": "eva@client.example", "category": category,
        "impact": impact, "urgency": urgency,
    })
    .as_object()
    .cloned()
    .unwrap()
}

#[test]
fn the_priority_matrix_sets_the_priority_at_start_and_an_engagement_may_replace_its_cells() {
    let definition = it_helpdesk();
    let start_with = |definition: &ServiceDefinition, data| {
        start(
            definition,
            WorkItemId::new(),
            &data,
            Priority::Low,
            start_at(),
        )
        .unwrap()
    };
    let urgent = start_with(&definition, ticket("incident", "network", "high", "high"));
    assert_eq!(
        urgent.state.priority,
        Priority::Urgent,
        "the matrix beats the asked priority"
    );
    assert_eq!(urgent.state.position.step().unwrap().as_str(), "resolve");
    assert_eq!(audits(&urgent)[0].after.priority, Priority::Urgent);
    let request = start_with(
        &definition,
        ticket("service_request", "access", "low", "medium"),
    );
    assert_eq!(request.state.priority, Priority::Low);
    assert_eq!(
        request.state.position.step().unwrap().as_str(),
        "prepare",
        "approval first"
    );
    let plain = start_with(
        &definition,
        ticket("service_request", "email", "medium", "low"),
    );
    assert_eq!(plain.state.position.step().unwrap().as_str(), "fulfil");

    let cells = |priority: &str| -> crate::definition::MatrixCells {
        serde_json::from_value(json!({
            "high": {"high": "urgent", "medium": priority, "low": priority},
            "medium": {"high": priority, "medium": priority, "low": priority},
            "low": {"high": priority, "medium": priority, "low": priority},
        }))
        .unwrap()
    };
    let settings = crate::model::EngagementSettings {
        priority_matrix: Some(cells("high")),
        ..Default::default()
    };
    let tuned = definition.tuned(&settings).unwrap();
    let own = start_with(&tuned, ticket("incident", "network", "low", "low"));
    assert_eq!(own.state.priority, Priority::High);

    let mut gap = cells("high");
    gap.get_mut("low").unwrap().remove("medium");
    let error = definition.matrix_with(&gap).unwrap_err();
    assert!(
        error.contains("impact `low` and urgency `medium`"),
        "{error}"
    );
    let mut stray = cells("low");
    stray.insert("huge".into(), Default::default());
    assert!(
        definition
            .matrix_with(&stray)
            .unwrap_err()
            .contains("`huge`")
    );
    let without = customer_support();
    assert!(without.tuned(&settings).is_err(), "no matrix to replace");
}

#[test]
fn an_item_following_its_parent_ends_with_its_resolution_and_its_requester_is_told() {
    let definition = it_helpdesk();
    let child = started_with(&definition, &ticket("incident", "network", "low", "low"));
    let parent = WorkItemId::new();
    let later = start_at() + SignedDuration::from_mins(30);
    let follow = |resolution: &str| Event::FollowParent {
        parent,
        resolution: key(resolution),
        note: Some(" The switch in room 2 is replaced. ".into()),
    };
    let followed = apply(&definition, &child.state, &follow("resolved"), later).unwrap();
    assert_eq!(
        followed.state.position,
        Position::Completed {
            step: key("resolved"),
            resolution: key("resolved"),
            at: later,
        }
    );
    assert_eq!(followed.state.sla.first_response_at, Some(later));
    assert!(followed.effects.contains(&Effect::CancelTasks));
    let message = followed.effects.iter().find_map(|e| match e {
        Effect::PostMessage { visibility, body } => Some((*visibility, body.clone())),
        _ => None,
    });
    assert_eq!(
        message,
        Some((
            crate::model::Visibility::Public,
            format!(
                "Resolved together with the major incident {}.\n\nThe switch in room 2 is replaced.",
                parent.reference()
            )
        ))
    );
    let audits = audits(&followed);
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].action, "item.completed");
    assert_eq!(audits[0].detail["parent"], json!(parent));

    // A resolution the child's own process has no end for: it ends where it was.
    let odd = apply(
        &definition,
        &child.state,
        &follow("escalated_to_vendor"),
        later,
    )
    .unwrap();
    assert!(matches!(
        &odd.state.position,
        Position::Completed { step, resolution, .. }
            if step.as_str() == "resolve" && resolution.as_str() == "escalated_to_vendor"
    ));
    assert_eq!(
        apply(&definition, &followed.state, &follow("resolved"), later),
        Err(Rejection::Finished)
    );
}

fn telemarketing() -> ServiceDefinition {
    crate::definition::load_definition(include_str!("../../../catalog/telemarketing.toml")).unwrap()
}

/// A new contact in `zone` at [`start_at`] (Monday 09:00 UTC).
fn contact_in(definition: &ServiceDefinition, zone: &str, dnc: Json) -> Outcome {
    let data =
        json!({"contact_name": "Jana Nováková", "phone": "+421 905 123 456", "time_zone": zone});
    let facts = Map::from_iter([("dnc".to_owned(), dnc)]);
    start_with_facts(
        definition,
        WorkItemId::new(),
        data.as_object().unwrap(),
        Priority::Normal,
        facts,
        start_at(),
    )
    .unwrap()
}

/// A new contact in Bratislava, past the calling-hours wait (10:00 there: open at once).
fn contact(definition: &ServiceDefinition, dnc: Json) -> Outcome {
    let started = contact_in(definition, "Europe/Bratislava", dnc);
    match &started.state.position {
        Position::Waiting { until, .. } => {
            assert_eq!(*until, Some(start_at()));
            fire(definition, &started.state)
        }
        _ => started,
    }
}

/// Fires the timer the item waits on, at its time.
fn fire(definition: &ServiceDefinition, state: &ItemState) -> Outcome {
    let Position::Waiting {
        step,
        visit,
        until: Some(at),
    } = &state.position
    else {
        panic!("not waiting on a timer: {:?}", state.position)
    };
    let event = Event::TimerFired {
        step: step.clone(),
        visit: *visit,
    };
    apply(definition, state, &event, *at).unwrap()
}

#[test]
fn a_contact_on_a_do_not_call_list_is_never_called() {
    let definition = telemarketing();
    let listed = contact(&definition, json!({"reason": "asked in 2025"}));
    assert!(matches!(
        &listed.state.position,
        Position::Completed { resolution, .. } if resolution.as_str() == "do_not_call"
    ));
    assert!(
        !listed
            .effects
            .iter()
            .any(|effect| matches!(effect, Effect::OpenTask(_)))
    );
    let free = contact(&definition, Json::Null);
    assert_eq!(free.state.position.step().unwrap().as_str(), "call");
}

#[test]
fn entries_count_the_attempts_and_the_fifth_unanswered_call_gives_up() {
    let definition = telemarketing();
    let mut state = contact(&definition, Json::Null).state;
    let mut now = start_at();
    for attempt in 1..=5 {
        assert_eq!(state.entries[&key("call")], attempt);
        now += SignedDuration::from_hours(3);
        let outcome = if attempt % 2 == 0 {
            "busy"
        } else {
            "no_answer"
        };
        let after = submit_at(&definition, &state, outcome, json!({}), now).unwrap();
        if attempt == 5 {
            assert!(matches!(
                &after.state.position,
                Position::Completed { resolution, .. } if resolution.as_str() == "unreachable"
            ));
            return;
        }
        let Position::Waiting { step, until, .. } = &after.state.position else {
            panic!("not waiting: {:?}", after.state.position)
        };
        assert_eq!(step.as_str(), "retry_later");
        // Two hours later, or the next morning when that is after 20:00 in Bratislava.
        let expected = match attempt {
            // 17:00 UTC + 2 h is 20:00 there, when calling stops.
            2 => "2026-01-06T08:00:00Z".parse().unwrap(),
            _ => now + SignedDuration::from_hours(2),
        };
        assert_eq!(*until, Some(expected), "attempt {attempt}");
        now = expected;
        state = fire(&definition, &after.state).state;
        assert_eq!(state.position.step().unwrap().as_str(), "call");
    }
}

#[test]
fn a_callback_waits_until_the_time_the_form_names() {
    let definition = telemarketing();
    let state = contact(&definition, Json::Null).state;
    let now = start_at() + SignedDuration::from_mins(5);
    assert!(matches!(
        submit_at(&definition, &state, "callback", json!({}), now),
        Err(Rejection::InvalidData(_))
    ));
    let back_at: Timestamp = "2026-01-07T16:30:00Z".parse().unwrap();
    let waiting = submit_at(
        &definition,
        &state,
        "callback",
        json!({"callback_at": "2026-01-07T17:30:00+01:00"}),
        now,
    )
    .unwrap();
    let Position::Waiting { step, until, visit } = &waiting.state.position else {
        panic!("not waiting: {:?}", waiting.state.position)
    };
    assert_eq!(step.as_str(), "await_callback");
    assert_eq!(*until, Some(back_at));
    assert!(waiting.effects.iter().any(|effect| matches!(
        effect,
        Effect::ScheduleTimer { at, visit: v, .. } if *at == back_at && v == visit
    )));
    let called_back = fire(&definition, &waiting.state);
    assert_eq!(called_back.state.position.step().unwrap().as_str(), "call");
    assert_eq!(called_back.state.entries[&key("call")], 2);
    assert_eq!(called_back.state.entries[&key("check_dnc")], 2);
}

#[test]
fn calls_wait_for_the_calling_hours_of_the_contacts_own_zone() {
    let definition = telemarketing();
    // 04:00 in New York: the first call waits until 09:00 there.
    let early = contact_in(&definition, "America/New_York", Json::Null);
    let Position::Waiting { step, until, .. } = &early.state.position else {
        panic!("not waiting: {:?}", early.state.position)
    };
    assert_eq!(step.as_str(), "calling_window");
    assert_eq!(*until, Some("2026-01-05T14:00:00Z".parse().unwrap()));
    let at_nine = fire(&definition, &early.state);
    assert_eq!(at_nine.state.position.step().unwrap().as_str(), "call");

    // A callback asked for on Saturday 21:30 there comes on Sunday at 09:00.
    let waiting = submit_at(
        &definition,
        &at_nine.state,
        "callback",
        json!({"callback_at": "2026-01-10T21:30:00-05:00"}),
        "2026-01-05T15:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let Position::Waiting { until, .. } = &waiting.state.position else {
        panic!("not waiting: {:?}", waiting.state.position)
    };
    assert_eq!(*until, Some("2026-01-11T14:00:00Z".parse().unwrap()));

    // A zone nobody knows falls back on the engagement calendar's (UTC here): open.
    let unknown = contact_in(&definition, "Mars/Olympus_Mons", Json::Null);
    assert!(matches!(
        unknown.state.position,
        Position::Waiting { until: Some(at), .. } if at == start_at()
    ));
}

#[test]
fn a_do_not_call_disposition_puts_the_number_on_the_clients_list() {
    let definition = telemarketing();
    let state = contact(&definition, Json::Null).state;
    let done = submit_at(&definition, &state, "do_not_call", json!({}), start_at()).unwrap();
    assert!(matches!(
        &done.state.position,
        Position::Completed { resolution, .. } if resolution.as_str() == "do_not_call"
    ));
    let written: Vec<_> = done
        .effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::SetRegisterEntry {
                register,
                key,
                data,
            } => Some((register.as_str(), key.as_str(), data["item"].clone())),
            _ => None,
        })
        .collect();
    assert_eq!(written, [("do_not_call", "+421905123456", json!(state.id))]);
}

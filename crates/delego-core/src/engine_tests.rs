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
    }
}

fn number_field(name: &str) -> Field {
    Field {
        name: key(name),
        label: name.into(),
        help: None,
        kind: FieldType::Integer,
        required: false,
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
    let mut steps: Vec<Step> = shapes
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let kind = match shape {
                Shape::Human { targets } => StepKind::Human {
                    work: work(Form {
                        fields: vec![number_field("score")],
                    }),
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
    Later(u32),
}

fn pokes() -> impl Strategy<Value = Vec<Poke>> {
    let poke = prop_oneof![
        6 => (0u8..3, 0u8..4, prop::bool::weighted(0.1), -6i64..6)
            .prop_map(|(worker, outcome, stale, score)| Poke::Submit { worker, outcome, stale, score }),
        2 => (0u8..4).prop_map(Poke::External),
        2 => any::<bool>().prop_map(|stale| Poke::Timer { stale }),
        1 => Just(Poke::Cancel),
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

/// The audit records of one call form a chain from the old snapshot to the new one, one
/// link per change.
fn check_audit_chain(before: &ItemState, outcome: &Outcome) -> Result<(), TestCaseError> {
    let audits: Vec<&AuditRecord> = outcome
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Audit(record) => Some(record),
            _ => None,
        })
        .collect();
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
        let first = started.effects.iter().find_map(|e| match e {
            Effect::Audit(record) => Some(record),
            _ => None,
        });
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
        Shape::Human { targets: vec![3] },
        Shape::Human { targets: vec![3] },
    ]);
    // `score > 0` on a missing score is an evaluation error in CEL (null > int).
    if let StepKind::Decision { branches, .. } = &mut definition.steps[0].kind {
        branches[0].when = Expression::compile("score > 0").unwrap();
    }
    let outcome = start(
        &definition,
        WorkItemId::new(),
        &Map::new(),
        Priority::Normal,
        start_at(),
    )
    .unwrap();
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
        Shape::Human { targets: vec![1] },
        Shape::Review {
            percent: 100,
            approve: 2,
            reject: 0,
        },
    ]);
    let [author, reviewer, _] = workers();
    let started = start(
        &definition,
        WorkItemId::new(),
        &Map::new(),
        Priority::Normal,
        start_at(),
    )
    .unwrap();
    let submit = |state: &ItemState, worker, outcome: &str, data: Map<String, Json>| {
        let Position::InStep { step, visit } = &state.position else {
            panic!()
        };
        apply(
            &definition,
            state,
            &Event::TaskSubmitted {
                step: step.clone(),
                visit: *visit,
                worker,
                outcome: key(outcome),
                data,
            },
            start_at(),
        )
    };
    let answered = submit(
        &started.state,
        author,
        "o0",
        Map::from_iter([("score".into(), json!(3))]),
    )
    .unwrap();
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
        submit(&answered.state, author, "approve", Map::new()),
        Err(Rejection::FourEyes)
    );
    let rejected = submit(&answered.state, reviewer, "reject", Map::new()).unwrap();
    assert_eq!(
        rejected.state.position.step(),
        Some(&key("s0")),
        "reject returns to the named step"
    );
    assert_eq!(rejected.state.performers.get(&key("s1")), Some(&reviewer));
}

#[test]
fn the_message_field_becomes_a_public_reply_or_an_internal_note_by_outcome() {
    let definition =
        crate::definition::load_definition(include_str!("../../../catalog/customer-support.toml"))
            .unwrap();
    let intake = json!({"subject": "Late parcel", "description": "Where is it?",
                        "requester_email": "ann@example.com"});
    let started = start(
        &definition,
        WorkItemId::new(),
        intake.as_object().unwrap(),
        Priority::Normal,
        start_at(),
    )
    .unwrap();
    let [agent, _, _] = workers();
    let later = start_at() + SignedDuration::from_mins(10);
    let submit = |outcome: &str, reply: &str| {
        let Position::InStep { step, visit } = &started.state.position else {
            panic!(
                "the ticket waits for an answer: {:?}",
                started.state.position
            )
        };
        apply(
            &definition,
            &started.state,
            &Event::TaskSubmitted {
                step: step.clone(),
                visit: *visit,
                worker: agent,
                outcome: key(outcome),
                data: Map::from_iter([("reply".into(), json!(reply))]),
            },
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

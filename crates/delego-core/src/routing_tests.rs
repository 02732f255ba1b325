//! Routing rules as properties: only eligible work is handed out, nothing starves,
//! engagements get their weighted share, relaxations keep a task's place in line.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::id::{ClientId, EngagementId, TaskId, WorkItemId, WorkerId};
use crate::model::{Presence, Task, TaskStatus, Window, Worker};
use crate::values::{Key, Language, Name, Priority, SkillLevel};

fn key(s: &str) -> Key {
    Key::parse(s).unwrap()
}

fn t0() -> Timestamp {
    "2026-06-01T08:00:00Z".parse().unwrap()
}

fn level(n: u8) -> SkillLevel {
    SkillLevel::new(n).unwrap()
}

fn client(n: u128) -> ClientId {
    ClientId::from_uuid(uuid::Uuid::from_u128(n))
}

fn engagement(n: u128) -> EngagementId {
    EngagementId::from_uuid(uuid::Uuid::from_u128(100 + n))
}

fn worker(level_: u8, clients: &[ClientId]) -> Worker {
    Worker {
        id: WorkerId::new(),
        name: Name::parse("W").unwrap(),
        skills: BTreeMap::from([(key("support"), level(level_))]),
        languages: BTreeSet::from([Language::parse("en").unwrap()]),
        clearances: clients.iter().copied().collect(),
        certifications: BTreeSet::new(),
        exclusions: Exclusions::default(),
        capacity: BTreeMap::from([(Channel::BackOffice, 1_000), (Channel::Chat, 3)]),
        presence: Presence::Available,
        idle_since: Some(t0()),
        wrap_up_secs: 0,
        team: None,
    }
}

struct Spec {
    priority: Priority,
    queued_at: Timestamp,
    level: u8,
    client: u128,
    engagement: u128,
    language: Option<&'static str>,
}

fn task(spec: Spec, policy: &RoutingPolicy) -> Task {
    Task {
        id: TaskId::new(),
        item_id: WorkItemId::new(),
        client_id: client(spec.client),
        engagement_id: engagement(spec.engagement),
        step: key("answer"),
        visit: 1,
        skill: key("support"),
        min_level: level(spec.level),
        language: spec.language.map(|l| Language::parse(l).unwrap()),
        certifications: BTreeSet::new(),
        channel: policy.channel,
        relax: policy.relax.clone(),
        excluded_worker: None,
        reserved_for: None,
        priority: spec.priority,
        queued_at: spec.queued_at,
        due_at: None,
        serve_by: serve_by(spec.priority, spec.queued_at, None, policy),
        status: TaskStatus::Open,
        lease_until: None,
        offer_timeout: None,
        window: None,
        worker_order: WorkerOrder::default(),
    }
}

fn plain(priority: Priority, queued_at: Timestamp, engagement_: u128) -> Task {
    task(
        Spec {
            priority,
            queued_at,
            level: 1,
            client: 1,
            engagement: engagement_,
            language: None,
        },
        &RoutingPolicy::default(),
    )
}

fn priorities() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn pick_hands_out_only_eligible_tasks_and_finds_one_whenever_one_is(
        worker_level in 1u8..=5,
        cleared in prop::collection::btree_set(1u128..4, 0..4),
        specs in prop::collection::vec((priorities(), 0i64..3600, 1u8..=5, 1u128..4, 0u128..3, any::<bool>()), 0..30),
        waited in 0i64..7200,
    ) {
        let policy = RoutingPolicy {
            relax: vec![Relaxation { after: SignedDuration::from_mins(30), min_level: Some(level(1)), any_language: true }],
            ..RoutingPolicy::default()
        };
        let clients: Vec<ClientId> = cleared.iter().map(|n| client(*n)).collect();
        let me = worker(worker_level, &clients);
        let tasks: Vec<Task> = specs
            .into_iter()
            .map(|(priority, offset, level_, client_, engagement_, slovak)| task(Spec {
                priority,
                queued_at: t0() + SignedDuration::from_secs(offset),
                level: level_,
                client: client_,
                engagement: engagement_,
                language: slovak.then_some("sk"),
            }, &policy))
            .collect();
        let now = t0() + SignedDuration::from_secs(3600 + waited);
        let eligible = tasks.iter().filter(|t| ineligibility(&me, &Load::new(), t, now).is_none()).count();
        let picked = pick(&me, &Load::new(), &tasks, &Shares::default(), FAIRNESS_BAND, now);
        prop_assert_eq!(picked.is_some(), eligible > 0);
        if let Some(pick) = picked {
            prop_assert!(ineligibility(&me, &Load::new(), pick.task, now).is_none());
            prop_assert_eq!(pick.eligible, eligible);
        }
    }

    /// With more work arriving than is served, every task is still served before all
    /// work that arrived more than `3 × aging + band` after it, across engagements too.
    #[test]
    fn work_arriving_much_later_never_overtakes_a_waiting_task(
        arrivals in prop::collection::vec((priorities(), 0u128..3), 40..120),
    ) {
        let policy = RoutingPolicy::default();
        let me = worker(5, &[client(1)]);
        let tick = SignedDuration::from_mins(1);
        let bound = policy.aging * 3 + FAIRNESS_BAND;
        let mut queue: Vec<Task> = Vec::new();
        let mut shares = Shares::default();
        let mut served: Vec<Task> = Vec::new();
        for (n, (priority, engagement_)) in arrivals.iter().enumerate() {
            let now = t0() + tick * i32::try_from(n).unwrap();
            // Two arrivals a minute, one served: the backlog only grows.
            queue.push(plain(*priority, now, *engagement_));
            queue.push(plain(Priority::Urgent, now, (*engagement_ + 1) % 3));
            let pick = pick(&me, &Load::new(), &queue, &shares, FAIRNESS_BAND, now).unwrap();
            let chosen = pick.task.id;
            shares.served.insert(pick.task.engagement_id, pick.charged);
            let index = queue.iter().position(|t| t.id == chosen).unwrap();
            served.push(queue.swap_remove(index));
        }
        for (position, early) in served.iter().enumerate() {
            for late in &served[..position] {
                prop_assert!(
                    late.queued_at <= early.queued_at + bound,
                    "a task queued at {} was served after one queued at {}", early.queued_at, late.queued_at
                );
            }
        }
        for waiting in &queue {
            for done in &served {
                prop_assert!(done.queued_at <= waiting.queued_at + bound);
            }
        }
    }

    #[test]
    fn engagements_sharing_workers_are_served_in_proportion_to_their_weights(
        weight_a in 1u32..5,
        weight_b in 1u32..5,
        rounds in 60usize..200,
    ) {
        let me = worker(5, &[client(1)]);
        let mut shares = Shares::default();
        shares.weights.insert(engagement(0), weight_a);
        shares.weights.insert(engagement(1), weight_b);
        let mut queue: Vec<Task> = (0..rounds)
            .flat_map(|_| [plain(Priority::Normal, t0(), 0), plain(Priority::Normal, t0(), 1)])
            .collect();
        let mut counts = [0usize; 2];
        for _ in 0..rounds {
            let pick = pick(&me, &Load::new(), &queue, &shares, FAIRNESS_BAND, t0()).unwrap();
            let (id, engagement_) = (pick.task.id, pick.task.engagement_id);
            shares.served.insert(engagement_, pick.charged);
            counts[usize::from(engagement_ == engagement(1))] += 1;
            queue.retain(|t| t.id != id);
        }
        let expected_a = rounds as f64 * f64::from(weight_a) / f64::from(weight_a + weight_b);
        prop_assert!((counts[0] as f64 - expected_a).abs() <= 1.0, "{counts:?} for weights {weight_a}:{weight_b}");
    }
}

#[test]
fn aging_lifts_a_low_task_over_newer_urgent_work_after_three_agings() {
    let policy = RoutingPolicy::default();
    let low = plain(Priority::Low, t0(), 0);
    let soon = plain(Priority::Urgent, t0() + SignedDuration::from_mins(29), 0);
    let later = plain(Priority::Urgent, t0() + SignedDuration::from_mins(31), 0);
    assert!(
        soon.serve_by < low.serve_by,
        "urgent work of the next half hour goes first"
    );
    assert!(
        low.serve_by < later.serve_by,
        "but not work that came later still"
    );
    let far = serve_by(
        Priority::Low,
        t0(),
        Some(t0() + SignedDuration::from_hours(4)),
        &policy,
    );
    assert_eq!(far, low.serve_by, "a distant deadline changes nothing");
    let near = serve_by(
        Priority::Low,
        t0(),
        Some(t0() + SignedDuration::from_mins(10)),
        &policy,
    );
    assert_eq!(
        near,
        t0() - SignedDuration::from_mins(20),
        "a near one lifts it: due minus the lead"
    );
}

#[test]
fn a_relaxed_requirement_admits_a_lower_level_without_moving_the_task_in_line() {
    let policy = RoutingPolicy {
        relax: vec![Relaxation {
            after: SignedDuration::from_secs(60),
            min_level: Some(level(2)),
            any_language: false,
        }],
        ..RoutingPolicy::default()
    };
    let demanding = task(
        Spec {
            priority: Priority::Normal,
            queued_at: t0(),
            level: 3,
            client: 1,
            engagement: 0,
            language: None,
        },
        &policy,
    );
    let place = demanding.serve_by;
    let junior = worker(2, &[client(1)]);
    let before = ineligibility(
        &junior,
        &Load::new(),
        &demanding,
        t0() + SignedDuration::from_secs(59),
    );
    assert_eq!(
        before,
        Some(Ineligible::SkillTooLow {
            skill: key("support"),
            needed: level(3),
            has: level(2)
        })
    );
    assert_eq!(
        ineligibility(
            &junior,
            &Load::new(),
            &demanding,
            t0() + SignedDuration::from_secs(60)
        ),
        None
    );
    assert_eq!(demanding.serve_by, place);
}

#[test]
fn a_worker_full_on_chat_still_takes_back_office_work() {
    let me = worker(3, &[client(1)]);
    let chat_policy = RoutingPolicy {
        channel: Channel::Chat,
        ..RoutingPolicy::default()
    };
    let chat = task(
        Spec {
            priority: Priority::Urgent,
            queued_at: t0(),
            level: 1,
            client: 1,
            engagement: 0,
            language: None,
        },
        &chat_policy,
    );
    let paperwork = plain(Priority::Low, t0(), 0);
    let full_on_chat = Load::from([(Channel::Chat, 3)]);
    let tasks = [chat.clone(), paperwork.clone()];
    let picked = pick(
        &me,
        &full_on_chat,
        &tasks,
        &Shares::default(),
        FAIRNESS_BAND,
        t0(),
    )
    .unwrap();
    assert_eq!(picked.task.id, paperwork.id);
    assert_eq!(
        ineligibility(&me, &full_on_chat, &chat, t0()),
        Some(Ineligible::AtCapacity {
            channel: Channel::Chat,
            capacity: 3
        })
    );
}

#[test]
fn walls_clearances_languages_certifications_and_presence_each_say_why() {
    let mut me = worker(3, &[client(1)]);
    let mut tsk = task(
        Spec {
            priority: Priority::Normal,
            queued_at: t0(),
            level: 1,
            client: 1,
            engagement: 0,
            language: Some("sk"),
        },
        &RoutingPolicy::default(),
    );
    let why = |me: &Worker, t: &Task| ineligibility(me, &Load::new(), t, t0());
    assert_eq!(
        why(&me, &tsk),
        Some(Ineligible::MissingLanguage {
            language: Language::parse("sk").unwrap()
        })
    );
    me.languages.insert(Language::parse("sk").unwrap());
    tsk.certifications.insert(key("gdpr"));
    assert_eq!(
        why(&me, &tsk),
        Some(Ineligible::MissingCertification {
            certification: key("gdpr")
        })
    );
    me.certifications.insert(key("gdpr"));
    assert_eq!(why(&me, &tsk), None);
    me.exclusions.engagements.insert(engagement(0));
    assert_eq!(
        why(&me, &tsk),
        Some(Ineligible::Excluded),
        "an ethical wall wins over clearance"
    );
    me.exclusions.engagements.clear();
    me.presence = Presence::WrapUp {
        until: t0() + SignedDuration::from_secs(30),
    };
    assert!(matches!(
        why(&me, &tsk),
        Some(Ineligible::NotAccepting { .. })
    ));
    assert_eq!(
        ineligibility(
            &me,
            &Load::new(),
            &tsk,
            t0() + SignedDuration::from_secs(30)
        ),
        None,
        "wrap-up ends by itself"
    );
    tsk.client_id = client(9);
    assert_eq!(
        why(
            &Worker {
                presence: Presence::Available,
                ..me
            },
            &tsk
        ),
        Some(Ineligible::NotCleared { client: client(9) })
    );
}

#[test]
fn a_task_sent_back_waits_for_its_previous_worker_during_the_window() {
    let first = worker(3, &[client(1)]);
    let other = worker(3, &[client(1)]);
    let mut returned = plain(Priority::Normal, t0() + SignedDuration::from_mins(5), 0);
    returned.reserved_for = Some((first.id, t0() + SignedDuration::from_mins(2)));
    let older = plain(Priority::Normal, t0(), 0);
    let tasks = [older.clone(), returned.clone()];
    let mine = pick(
        &first,
        &Load::new(),
        &tasks,
        &Shares::default(),
        FAIRNESS_BAND,
        t0(),
    )
    .unwrap();
    assert_eq!(
        (mine.task.id, mine.rule.clone()),
        (returned.id, PickRule::Preferred)
    );
    let theirs = pick(
        &other,
        &Load::new(),
        &tasks,
        &Shares::default(),
        FAIRNESS_BAND,
        t0(),
    )
    .unwrap();
    assert_eq!(theirs.task.id, older.id);
    let after = t0() + SignedDuration::from_mins(2);
    assert_eq!(
        ineligibility(&other, &Load::new(), &returned, after),
        None,
        "then anyone may"
    );
}

#[test]
fn a_task_with_hours_is_taken_only_within_them_even_when_first_in_line() {
    let agent = worker(3, &[client(1)]);
    let mut call = plain(Priority::High, t0(), 0);
    let (opens, closes) = (
        t0() + SignedDuration::from_hours(1),
        t0() + SignedDuration::from_hours(2),
    );
    call.window = Some(Window { opens, closes });
    let other = plain(Priority::Normal, t0() + SignedDuration::from_mins(5), 0);
    let tasks = [call.clone(), other.clone()];
    let at = |now| {
        pick(
            &agent,
            &Load::new(),
            &tasks,
            &Shares::default(),
            FAIRNESS_BAND,
            now,
        )
        .map(|p| p.task.id)
    };
    assert_eq!(at(t0()), Some(other.id), "before the hours open");
    assert_eq!(at(opens), Some(call.id), "at the opening");
    assert_eq!(at(closes - SignedDuration::from_secs(1)), Some(call.id));
    assert_eq!(at(closes), Some(other.id), "at the close");
    assert_eq!(
        ineligibility(&agent, &Load::new(), &call, closes),
        Some(Ineligible::OutsideHours {
            window: Window { opens, closes }
        })
    );
    // In words, for the problem a late acceptance of an offer gets.
    let why = ineligibility(&agent, &Load::new(), &call, closes)
        .unwrap()
        .to_string();
    assert_eq!(
        why,
        format!("the task may only be taken from {opens} until {closes}")
    );
}

#[test]
fn workers_are_ranked_by_the_policy_with_the_preferred_one_first() {
    let mut idle_long = worker(2, &[client(1)]);
    idle_long.idle_since = Some(t0() - SignedDuration::from_hours(1));
    let expert = worker(5, &[client(1)]);
    let busy = worker(3, &[client(1)]);
    let tsk = plain(Priority::Normal, t0(), 0);
    let pool = vec![
        (idle_long.clone(), Load::new()),
        (expert.clone(), Load::new()),
        (busy.clone(), Load::from([(Channel::BackOffice, 999)])),
    ];
    let order = |o| {
        rank_workers(&tsk, &pool, o, t0())
            .into_iter()
            .map(|(w, _)| w.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(order(WorkerOrder::LongestIdle)[0], idle_long.id);
    assert_eq!(order(WorkerOrder::BestSkill)[0], expert.id);
    assert_eq!(*order(WorkerOrder::LeastLoaded).last().unwrap(), busy.id);
    let mut reserved = tsk.clone();
    reserved.reserved_for = Some((busy.id, t0() + SignedDuration::from_mins(1)));
    let ranked = rank_workers(&reserved, &pool, WorkerOrder::BestSkill, t0());
    assert_eq!(ranked[0].0.id, busy.id, "the preferred worker first");
    assert_eq!(ranked.len(), 1, "the others must wait out the window");
}

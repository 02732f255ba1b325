//! Metrics from hand-built facts with known answers, and sums that do not depend on how
//! the window is cut.

use proptest::prelude::*;

use super::*;

/// 10:00 on a fixed day plus `minutes` and `seconds`.
fn at(minutes: i64, seconds: i64) -> Timestamp {
    let base: Timestamp = "2026-03-02T10:00:00Z".parse().unwrap();
    base.checked_add(SignedDuration::from_secs(minutes * 60 + seconds))
        .unwrap()
}

fn settings(interval: u32, by: Breakdown) -> Settings {
    Settings {
        interval: IntervalMinutes::parse(interval).unwrap(),
        by,
        answer_target: DEFAULT_ANSWER_TARGET,
    }
}

struct Floor {
    client: ClientId,
    engagement: EngagementId,
    worker: WorkerId,
    facts: Facts,
}

/// One hour, 10:00–11:00, read at 11:30; the comments give each fact's part in the answers.
fn floor() -> Floor {
    let client = ClientId::new();
    let engagement = EngagementId::new();
    let worker = WorkerId::new();
    let item = |created, ended| ItemFact {
        client_id: client,
        engagement_id: engagement,
        created_at: created,
        ended,
    };
    let task = |queued, claimed: Option<Timestamp>, started, ended, done| TaskFact {
        client_id: client,
        engagement_id: engagement,
        worker_id: claimed.map(|_| worker),
        queued_at: queued,
        claimed_at: claimed,
        started_at: started,
        ended_at: ended,
        done,
    };
    let facts = Facts {
        from: at(0, 0),
        to: at(60, 0),
        as_of: at(90, 0),
        items: vec![
            item(
                at(5, 0),
                Some(ItemEnd::Completed {
                    at: at(40, 0),
                    resolution_met: Some(true),
                }),
            ),
            item(at(10, 0), Some(ItemEnd::Cancelled { at: at(20, 0) })),
            item(at(35, 0), None),
            // Created before the window: only its breached resolution counts.
            item(
                at(-30, 0),
                Some(ItemEnd::Completed {
                    at: at(45, 0),
                    resolution_met: Some(false),
                }),
            ),
        ],
        tasks: vec![
            // Answered in 10 s, handled from 10:06 to 10:16.
            task(
                at(5, 0),
                Some(at(5, 10)),
                Some(at(6, 0)),
                Some(at(16, 0)),
                true,
            ),
            // Given up in the queue when its item was cancelled.
            task(at(10, 0), None, None, Some(at(20, 0)), false),
            // Answered in 60 s, still held.
            task(at(35, 0), Some(at(36, 0)), None, None, false),
        ],
        workers: vec![WorkerPresence {
            worker_id: worker,
            at_start: Presence::Available,
            changes: vec![
                (at(16, 0), Presence::WrapUp { until: at(17, 0) }),
                (
                    at(25, 0),
                    Presence::Break {
                        reason: "coffee".into(),
                    },
                ),
                (at(28, 0), Presence::Available),
                (at(50, 0), Presence::Offline),
            ],
        }],
        // Rated 5 and 2 in the first half hour, 4 in the second, and once after the window.
        csat: [
            (5, at(17, 0)),
            (2, at(29, 59)),
            (4, at(41, 0)),
            (1, at(75, 0)),
        ]
        .into_iter()
        .map(|(rating, at)| CsatFact {
            client_id: client,
            engagement_id: engagement,
            rating,
            at,
        })
        .collect(),
        results: Vec::new(),
        teams: Default::default(),
    };
    Floor {
        client,
        engagement,
        worker,
        facts,
    }
}

#[test]
fn intervals_are_fifteen_thirty_or_sixty_minutes() {
    for ok in [15, 30, 60] {
        assert!(IntervalMinutes::parse(ok).is_ok());
    }
    for bad in [0, 5, 20, 45, 120] {
        assert!(IntervalMinutes::parse(bad).is_err(), "{bad}");
    }
    assert_eq!("worker".parse::<Breakdown>().unwrap(), Breakdown::Worker);
    assert_eq!("team".parse::<Breakdown>().unwrap(), Breakdown::Team);
    assert!("department".parse::<Breakdown>().is_err());
}

#[test]
fn totals_per_half_hour_have_the_known_volumes_times_and_service_level() {
    let floor = floor();
    let rows = compute(&floor.facts, &settings(30, Breakdown::Total));
    assert_eq!(rows.len(), 2);
    let (first, second) = (&rows[0], &rows[1]);
    assert_eq!((first.start, first.end), (at(0, 0), at(30, 0)));

    assert_eq!(
        (
            first.arrivals,
            first.handled,
            first.abandoned,
            first.backlog
        ),
        (2, 1, 1, 0)
    );
    assert_eq!(first.aht_seconds, Some(600.0));
    assert_eq!(first.asa_seconds, Some(10.0));
    // One answered within 20 s, one given up: half.
    assert_eq!(first.service_level, Some(0.5));
    assert_eq!(first.sla_attainment, None);

    assert_eq!(
        (
            second.arrivals,
            second.handled,
            second.abandoned,
            second.backlog
        ),
        (1, 0, 0, 1)
    );
    assert_eq!(second.aht_seconds, None);
    assert_eq!(second.asa_seconds, Some(60.0));
    assert_eq!(second.service_level, Some(0.0));
    assert_eq!((second.resolved, second.sla_met), (2, 1));
    assert_eq!(second.sla_attainment, Some(0.5));
}

#[test]
fn csat_counts_ratings_when_given_with_their_average_and_the_share_satisfied() {
    let floor = floor();
    let rows = compute(&floor.facts, &settings(30, Breakdown::Total));
    let (first, second) = (&rows[0], &rows[1]);
    assert_eq!((first.csat_responses, first.csat_sum), (2, 7));
    assert_eq!(first.csat_average, Some(3.5));
    assert_eq!(first.csat_satisfied, 1);
    assert_eq!(first.csat_satisfied_share, Some(0.5));
    assert_eq!((second.csat_responses, second.csat_satisfied), (1, 1));
    assert_eq!(second.csat_satisfied_share, Some(1.0));
    // The client's own row has the same figures; a worker's has none.
    let client = compute(&floor.facts, &settings(60, Breakdown::Client));
    assert_eq!(
        (
            client[0].client_id,
            client[0].csat_responses,
            client[0].csat_average
        ),
        (Some(floor.client), 3, Some(11.0 / 3.0))
    );
    let worker = compute(&floor.facts, &settings(60, Breakdown::Worker));
    assert!(
        worker
            .iter()
            .all(|row| row.csat_responses == 0 && row.csat_average.is_none())
    );
}

#[test]
fn a_merged_duplicate_is_neither_abandoned_nor_resolved() {
    let mut floor = floor();
    floor.facts.items = vec![ItemFact {
        client_id: floor.client,
        engagement_id: floor.engagement,
        created_at: at(1, 0),
        ended: Some(ItemEnd::Merged { at: at(2, 0) }),
    }];
    let rows = compute(&floor.facts, &settings(60, Breakdown::Total));
    assert_eq!(
        (rows[0].arrivals, rows[0].abandoned, rows[0].resolved),
        (1, 0, 0)
    );
}

#[test]
fn occupancy_counts_held_tasks_and_wrap_up_against_staffed_time_without_breaks() {
    let floor = floor();
    let rows = compute(&floor.facts, &settings(30, Breakdown::Total));
    let (first, second) = (&rows[0], &rows[1]);
    // Busy: the task 10:05:10–10:16 and wrap-up 10:16–10:17; a 3-minute break.
    assert_eq!(first.busy_seconds, 710.0);
    assert_eq!(first.staffed_seconds, 1620.0);
    assert_eq!(first.signed_in_seconds, 1800.0);
    assert_eq!(first.occupancy, Some(710.0 / 1620.0));
    assert_eq!(first.utilisation, Some(710.0 / 1800.0));
    // Holding a task from 10:36, available until 10:50, then offline but still holding it.
    assert_eq!(second.busy_seconds, 1440.0);
    assert_eq!(second.staffed_seconds, 1800.0);
    assert_eq!(second.occupancy, Some(0.8));
    assert_eq!(second.utilisation, Some(0.8));
}

#[test]
fn worker_rows_count_only_what_the_worker_did_and_held() {
    let floor = floor();
    let rows = compute(&floor.facts, &settings(60, Breakdown::Worker));
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.worker_id, Some(floor.worker));
    assert_eq!(row.client_id, None);
    // Items are not a worker's: no arrivals, abandonment or SLA on worker rows.
    assert_eq!((row.arrivals, row.abandoned, row.resolved), (0, 0, 0));
    assert_eq!((row.handled, row.answered, row.unanswered), (1, 2, 0));
    assert_eq!(row.backlog, 1);
    assert_eq!(row.busy_seconds, 710.0 + 1440.0);
}

#[test]
fn engagement_rows_leave_worker_time_out() {
    let mut floor = floor();
    let other = EngagementId::new();
    floor.facts.items.push(ItemFact {
        client_id: floor.client,
        engagement_id: other,
        created_at: at(1, 0),
        ended: None,
    });
    let rows = compute(&floor.facts, &settings(60, Breakdown::Engagement));
    assert_eq!(rows.len(), 2);
    let mine = rows
        .iter()
        .find(|r| r.engagement_id == Some(floor.engagement))
        .unwrap();
    let theirs = rows
        .iter()
        .find(|r| r.engagement_id == Some(other))
        .unwrap();
    assert_eq!((mine.arrivals, theirs.arrivals), (3, 1));
    assert_eq!(theirs.client_id, Some(floor.client));
    assert_eq!((mine.busy_seconds, mine.occupancy), (0.0, None));
}

#[test]
fn a_window_that_is_not_a_whole_number_of_intervals_ends_with_a_short_one() {
    let mut floor = floor();
    floor.facts.to = at(50, 0);
    let rows = compute(&floor.facts, &settings(30, Breakdown::Total));
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[1].start, rows[1].end), (at(30, 0), at(50, 0)));
    assert_eq!(rows[1].signed_in_seconds, 1200.0);
}

prop_compose! {
    fn any_task(worker: WorkerId, client: ClientId, engagement: EngagementId)(
        queued in -3_600i64..7_200,
        wait in proptest::option::of(0i64..900),
        work in proptest::option::of(0i64..1_800),
        done in any::<bool>(),
    ) -> TaskFact {
        let queued_at = at(0, queued);
        let claimed_at = wait.map(|w| at(0, queued + w));
        let ended_at = work.map(|w| at(0, queued + wait.unwrap_or(0) + w));
        TaskFact {
            client_id: client,
            engagement_id: engagement,
            worker_id: claimed_at.map(|_| worker),
            queued_at,
            claimed_at,
            started_at: None,
            ended_at,
            done: done && claimed_at.is_some() && ended_at.is_some(),
        }
    }
}

fn any_presence() -> impl Strategy<Value = Presence> {
    prop_oneof![
        Just(Presence::Available),
        Just(Presence::Busy),
        Just(Presence::Offline),
        Just(Presence::Break {
            reason: "lunch".into()
        }),
        (0i64..7_200).prop_map(|s| Presence::WrapUp { until: at(0, s) }),
    ]
}

fn any_facts() -> impl Strategy<Value = Facts> {
    let workers = [WorkerId::new(), WorkerId::new()];
    let client = ClientId::new();
    let engagement = EngagementId::new();
    let items = proptest::collection::vec(
        (
            -3_600i64..7_200,
            proptest::option::of((0i64..7_200, any::<bool>(), any::<bool>())),
        ),
        0..20,
    );
    let tasks = proptest::collection::vec(
        (0..2usize).prop_flat_map(move |w| any_task(workers[w], client, engagement)),
        0..20,
    );
    let presence = proptest::collection::vec(
        (
            any_presence(),
            proptest::collection::vec((0i64..7_200, any_presence()), 0..6),
        ),
        2,
    );
    let ratings = proptest::collection::vec((1u8..=5, 0i64..7_200), 0..10);
    (items, tasks, presence, ratings).prop_map(move |(items, tasks, presence, ratings)| Facts {
        from: at(0, 0),
        to: at(120, 0),
        as_of: at(100, 0),
        items: items
            .into_iter()
            .map(|(created, end)| ItemFact {
                client_id: client,
                engagement_id: engagement,
                created_at: at(0, created),
                ended: end.map(|(after, completed, met)| {
                    let end_at = at(0, created + after);
                    if completed {
                        ItemEnd::Completed {
                            at: end_at,
                            resolution_met: Some(met),
                        }
                    } else {
                        ItemEnd::Cancelled { at: end_at }
                    }
                }),
            })
            .collect(),
        tasks,
        workers: workers
            .iter()
            .zip(presence)
            .map(|(worker, (at_start, mut changes))| {
                changes.sort_by_key(|c| c.0);
                WorkerPresence {
                    worker_id: *worker,
                    at_start,
                    changes: changes.into_iter().map(|(s, p)| (at(0, s), p)).collect(),
                }
            })
            .collect(),
        csat: ratings
            .into_iter()
            .map(|(rating, given)| CsatFact {
                client_id: client,
                engagement_id: engagement,
                rating,
                at: at(0, given),
            })
            .collect(),
        results: Vec::new(),
        // Every worker in a team, so that team rows must add up to the worker rows.
        teams: workers
            .iter()
            .enumerate()
            .map(|(n, worker)| {
                let team = if n % 2 == 0 { "red" } else { "blue" };
                (*worker, crate::values::Key::parse(team).unwrap())
            })
            .collect(),
    })
}

/// The additive measures of rows, summed.
fn sums(rows: &[Row]) -> [f64; 14] {
    rows.iter().fold([0.0; 14], |mut s, r| {
        let values = [
            r.arrivals as f64,
            r.handled as f64,
            r.abandoned as f64,
            r.handle_seconds,
            r.answered as f64,
            r.answered_in_target as f64,
            r.unanswered as f64,
            r.wait_seconds,
            r.sla_met as f64,
            r.busy_seconds,
            r.staffed_seconds,
            r.signed_in_seconds,
            r.csat_responses as f64,
            r.csat_sum as f64,
        ];
        for (sum, value) in s.iter_mut().zip(values) {
            *sum += value;
        }
        s
    })
}

proptest! {
    #[test]
    fn sums_over_intervals_do_not_depend_on_the_interval_or_the_breakdown(facts in any_facts()) {
        let quarter = compute(&facts, &settings(15, Breakdown::Total));
        let hour = compute(&facts, &settings(60, Breakdown::Total));
        let workers = compute(&facts, &settings(60, Breakdown::Worker));
        let teams = compute(&facts, &settings(60, Breakdown::Team));
        prop_assert_eq!(sums(&teams), sums(&workers), "teams add up their workers");
        prop_assert_eq!(quarter.len(), 8);
        prop_assert_eq!(sums(&quarter), sums(&hour));
        // Work and worker time add up over workers; items are not any worker's.
        let (by_worker, total) = (sums(&workers), sums(&hour));
        for i in [1, 3, 4, 5, 7, 9, 10, 11] {
            prop_assert_eq!(by_worker[i], total[i], "measure {}", i);
        }
        let arrived = facts.items.iter()
            .filter(|i| i.created_at >= facts.from && i.created_at < facts.to)
            .count() as f64;
        prop_assert_eq!(total[0], arrived);
        let rated = facts.csat.iter()
            .filter(|c| c.at >= facts.from && c.at < facts.to)
            .count() as f64;
        prop_assert_eq!(total[12], rated);
        // The backlog at 12:00 is the same however the hours before are cut.
        prop_assert_eq!(quarter[7].backlog, hour[1].backlog);
        for row in quarter.iter().chain(&workers) {
            let ratios = [row.occupancy, row.utilisation, row.service_level, row.csat_satisfied_share];
            for ratio in ratios.into_iter().flatten() {
                prop_assert!((0.0..=1.0).contains(&ratio), "{:?}", row);
            }
        }
    }
}

#[test]
fn outcomes_and_resolutions_are_counted_when_recorded_on_client_rows_not_worker_rows() {
    let mut floor = floor();
    let key = |text: &str| crate::values::Key::parse(text).unwrap();
    let result = |minute, result| ResultFact {
        client_id: floor.client,
        engagement_id: floor.engagement,
        at: at(minute, 0),
        result,
    };
    let call = |outcome: &str| WorkResult::Outcome {
        step: key("call"),
        outcome: key(outcome),
    };
    floor.facts.results = vec![
        result(5, call("no_answer")),
        result(10, call("no_answer")),
        result(20, call("interested")),
        result(20, WorkResult::Resolution(key("converted"))),
        result(45, call("busy")),
        // After the window: not counted.
        result(70, call("interested")),
    ];
    let rows = compute(&floor.facts, &settings(30, Breakdown::Engagement));
    let first = rows.iter().find(|row| row.start == at(0, 0)).unwrap();
    assert_eq!(
        first.outcomes,
        BTreeMap::from([
            ("call.interested".to_owned(), 1),
            ("call.no_answer".to_owned(), 2)
        ])
    );
    assert_eq!(
        first.resolutions,
        BTreeMap::from([("converted".to_owned(), 1)])
    );
    let second = rows.iter().find(|row| row.start == at(30, 0)).unwrap();
    assert_eq!(
        second.outcomes,
        BTreeMap::from([("call.busy".to_owned(), 1)])
    );
    assert!(second.resolutions.is_empty());
    for row in compute(&floor.facts, &settings(60, Breakdown::Worker)) {
        assert!(row.outcomes.is_empty() && row.resolutions.is_empty());
    }
}

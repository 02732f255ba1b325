//! Staffing against known answers (`shared/reference-figures.md`), against independent
//! calculations, and as properties.

use std::time::Duration;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// 100 contacts per 30 minutes at 180 s each: 10 Erlangs.
fn worked_example() -> Interval {
    Interval::new(100.0, secs(1800.0), secs(180.0)).unwrap()
}

/// An interval of `load` Erlangs with a 180 s AHT.
fn interval_with_load(load: f64) -> Interval {
    Interval::new(load * 10.0, secs(1800.0), secs(180.0)).unwrap()
}

fn shrinkage(text: &str) -> Shrinkage {
    text.parse().unwrap()
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

#[track_caller]
fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        close(actual, expected, tolerance),
        "{actual} is not within {tolerance} of {expected}"
    );
}

#[test]
fn erlang_c_reproduces_the_worked_example() {
    // (N, P(wait), SL(20 s), ASA, occupancy) as published, to the digits published.
    let table = [
        (13, 0.285270, 0.795595, 17.116, 0.769),
        (14, 0.174132, 0.888350, 7.836, 0.714),
    ];
    let interval = worked_example();
    assert_eq!(interval.load(), 10.0);
    for (agents, p_wait, service_level, asa, occupancy) in table {
        let got = erlang_c(&interval, agents, secs(20.0)).unwrap();
        assert_eq!(got.agents, agents);
        assert_close(got.p_wait, p_wait, 1e-6);
        assert_close(got.service_level, service_level, 1e-6);
        assert_close(got.asa_seconds, asa, 5e-4);
        assert_close(got.occupancy, occupancy, 5e-4);
        assert_eq!(got.p_abandon, None);
    }
}

#[test]
fn erlang_c_matches_the_closed_form_to_full_precision() {
    // Evaluated independently at 15 significant digits.
    let got = erlang_c(&worked_example(), 13, secs(20.0)).unwrap();
    assert_close(got.p_wait, 0.285_270_453_036_493, 1e-12);
    assert_close(got.service_level, 0.795_594_788_417_783, 1e-12);
    assert_close(got.asa_seconds, 17.116_227_182_189_58, 1e-9);
}

#[test]
fn a_load_of_two_on_three_agents_waits_four_ninths() {
    let interval = interval_with_load(2.0);
    let got = erlang_c(&interval, 3, Duration::ZERO).unwrap();
    assert_close(got.p_wait, 4.0 / 9.0, 1e-12);
    assert_close(got.service_level, 5.0 / 9.0, 1e-12);
    assert_close(erlang_b(2.0, 3), 4.0 / 19.0, 1e-15);
}

#[test]
fn erlang_c_refuses_no_more_agents_than_erlangs() {
    assert_eq!(
        erlang_c(&worked_example(), 10, secs(20.0)),
        Err(StaffingError::Unstable {
            agents: 10,
            load: 10.0
        })
    );
}

#[test]
fn eighty_twenty_needs_14_agents_and_20_scheduled_at_30_percent_shrinkage() {
    let target = Target::new(0.8, secs(20.0)).unwrap();
    let got = required_agents(&worked_example(), Model::ErlangC, &target).unwrap();
    assert_eq!(got.agents, 14);
    assert_eq!(shrinkage("0.3").scheduled(got.agents), Ok(20));
}

#[test]
fn one_agent_at_80_percent_shrinkage_is_5_scheduled_not_6() {
    assert_eq!(shrinkage("0.8").scheduled(1), Ok(5));
    assert_eq!(shrinkage("0.80").scheduled(1), Ok(5));
    assert_eq!(shrinkage("0").scheduled(7), Ok(7));
    assert_eq!(shrinkage("0.25").scheduled(7), Ok(10));
}

#[test]
fn a_maximum_occupancy_adds_agents_beyond_the_service_level() {
    let target = Target::new(0.8, secs(20.0))
        .unwrap()
        .with_max_occupancy(0.7)
        .unwrap();
    let got = required_agents(&worked_example(), Model::ErlangC, &target).unwrap();
    // 10 / 0.7 = 14.3, so 15.
    assert_eq!(got.agents, 15);
}

#[test]
fn an_occupancy_exactly_at_the_maximum_counts_as_met() {
    // 8 Erlangs on 10 agents is 80 % to the last bit only if rounding is forgiven.
    let interval = Interval::new(80.0, secs(1800.0), secs(180.0)).unwrap();
    let target = Target::new(0.1, secs(20.0))
        .unwrap()
        .with_max_occupancy(0.8)
        .unwrap();
    let got = required_agents(&interval, Model::ErlangC, &target).unwrap();
    assert_eq!(got.agents, 10);
}

#[test]
fn erlang_a_reproduces_the_published_abandonment_example() {
    let got = erlang_a(&worked_example(), 14, secs(180.0), secs(20.0)).unwrap();
    assert_close(got.p_wait, 0.1355, 5e-5);
    assert_close(got.p_abandon.unwrap(), 0.0187, 5e-5);
    // Abandonment shortens the queue: less waiting than Erlang C's 0.174 and 7.8 s.
    assert!(got.asa_seconds < 7.836);
    // ASA is the mean wait of all arrivals, and θ·E[wait] of them abandon.
    assert_close(got.p_abandon.unwrap(), got.asa_seconds / 180.0, 1e-15);
}

/// Poisson probabilities P(X = n) for n = 0..len.
fn poisson(mean: f64, len: usize) -> Vec<f64> {
    let mut pmf = vec![(-mean).exp()];
    for n in 1..len {
        pmf.push(pmf[n - 1] * mean / n as f64);
    }
    pmf
}

/// P(answered within t | k ahead), by uniformization of the tagged contact's chain:
/// k ahead leave at N·μ + j·θ, then an agent frees up at N·μ; it abandons at θ.
fn answered_within_by_uniformization(k: usize, n_mu: f64, theta: f64, t: f64) -> f64 {
    let rate = n_mu + (k as f64 + 1.0) * theta;
    let mut ahead = vec![0.0; k + 1];
    ahead[k] = 1.0;
    let (mut served, mut total, mut weight) = (0.0, 0.0, (-rate * t).exp());
    for step in 0..500 {
        total += weight * served;
        let mut next = vec![0.0; k + 1];
        for (j, &p) in ahead.iter().enumerate() {
            let leave = n_mu + j as f64 * theta;
            if j == 0 {
                served += p * leave / rate;
            } else {
                next[j - 1] += p * leave / rate;
            }
            next[j] += p * (1.0 - (leave + theta) / rate);
        }
        ahead = next;
        weight *= rate * t / (step as f64 + 1.0);
    }
    total
}

#[test]
fn erlang_a_with_patience_equal_to_handle_time_matches_an_independent_calculation() {
    // When θ = μ every contact leaves at rate μ whether served or waiting, so the number
    // in the system is Poisson(A), as in M/M/∞.
    let (load, agents, aht, t) = (10.0, 14_usize, 180.0, 20.0);
    let got = erlang_a(&worked_example(), agents as u32, secs(aht), secs(t)).unwrap();
    let pmf = poisson(load, 80);
    let p_wait: f64 = pmf[agents..].iter().sum();
    let mean_queue: f64 = pmf[agents..]
        .iter()
        .enumerate()
        .map(|(k, p)| k as f64 * p)
        .sum();
    let n_mu = agents as f64 / aht;
    let answered: f64 = pmf[agents..]
        .iter()
        .enumerate()
        .map(|(k, p)| p * answered_within_by_uniformization(k, n_mu, 1.0 / aht, t))
        .sum();
    assert_close(got.p_wait, p_wait, 1e-12);
    assert_close(got.p_abandon.unwrap(), mean_queue / load, 1e-12);
    assert_close(got.service_level, (1.0 - p_wait) + answered, 1e-12);
    assert_close(got.occupancy, (load - mean_queue) / agents as f64, 1e-12);
}

#[test]
fn erlang_a_tends_to_erlang_c_as_patience_grows() {
    let interval = worked_example();
    for agents in [11, 13, 14, 20] {
        let c = erlang_c(&interval, agents, secs(20.0)).unwrap();
        let a = erlang_a(&interval, agents, secs(1e10), secs(20.0)).unwrap();
        assert_close(a.p_wait, c.p_wait, 1e-6);
        assert_close(a.service_level, c.service_level, 1e-6);
        assert_close(a.asa_seconds, c.asa_seconds, 1e-6 * c.asa_seconds.max(1.0));
        assert_close(a.occupancy, c.occupancy, 1e-6);
        assert!(a.p_abandon.unwrap() < 1e-6);
    }
}

#[test]
fn erlang_a_without_answer_time_counts_only_contacts_answered_at_once() {
    let got = erlang_a(&worked_example(), 12, secs(60.0), Duration::ZERO).unwrap();
    assert_close(got.service_level, 1.0 - got.p_wait, 1e-15);
}

#[test]
fn erlang_a_copes_with_fewer_agents_than_erlangs() {
    // 10 Erlangs on 5 agents: the queue is kept finite only by callers hanging up.
    let got = erlang_a(&worked_example(), 5, secs(60.0), secs(20.0)).unwrap();
    assert!(got.p_wait > 0.8 && got.p_wait <= 1.0, "{got:?}");
    let p_abandon = got.p_abandon.unwrap();
    // Five agents carry at most five Erlangs, so at least half must abandon.
    assert!((0.5..1.0).contains(&p_abandon), "{got:?}");
    assert!(got.occupancy <= 1.0 + 1e-12, "{got:?}");
}

#[test]
fn erlang_a_stays_finite_on_a_huge_overloaded_queue() {
    // 2,000 Erlangs on 10 agents with an hour of patience: the queue peaks near 40,000,
    // far beyond where the weights of the states would overflow a float.
    let interval = Interval::new(20_000.0, secs(1800.0), secs(180.0)).unwrap();
    let got = erlang_a(&interval, 10, secs(3600.0), secs(20.0)).unwrap();
    assert!(got.p_wait > 0.999 && got.p_wait <= 1.0, "{got:?}");
    assert_close(got.p_abandon.unwrap(), 1.0 - 10.0 / 2000.0, 1e-6);
    assert!((0.0..1e-3).contains(&got.service_level), "{got:?}");
    assert!(got.occupancy > 0.999 && got.occupancy <= 1.0, "{got:?}");
}

#[test]
fn erlang_a_needs_no_more_agents_than_erlang_c_for_the_worked_example() {
    let target = Target::new(0.8, secs(20.0)).unwrap();
    let c = required_agents(&worked_example(), Model::ErlangC, &target).unwrap();
    let a = required_agents(
        &worked_example(),
        Model::ErlangA {
            patience: secs(180.0),
        },
        &target,
    )
    .unwrap();
    assert_eq!(c.agents, 14);
    assert!(a.agents <= c.agents, "{a:?}");
    assert!(a.service_level >= 0.8);
}

#[test]
fn erlang_b_survives_loads_whose_factorials_overflow() {
    // 170! is the last factorial a float holds; the recursion does not care.
    let b = erlang_b(1_000.0, 1_050);
    assert!(b > 0.0 && b < 0.02, "{b}");
    let c = erlang_c(&interval_with_load(1_000.0), 1_050, secs(20.0)).unwrap();
    assert!(c.p_wait > 0.0 && c.p_wait < 0.1, "{c:?}");
}

#[test]
fn inputs_outside_their_domain_are_refused_with_a_reason() {
    let minute = secs(60.0);
    for arrivals in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        let error = Interval::new(arrivals, minute, minute).unwrap_err();
        assert!(error.to_string().contains("arrivals"), "{error}");
    }
    assert!(Interval::new(1.0, Duration::ZERO, minute).is_err());
    assert!(Interval::new(1.0, minute, Duration::ZERO).is_err());
    for service_level in [0.0, 1.0, 1.2, -0.1, f64::NAN] {
        let error = Target::new(service_level, minute).unwrap_err();
        assert!(error.to_string().contains("service level"), "{error}");
    }
    let target = Target::new(0.8, minute).unwrap();
    for max in [0.0, 1.01, f64::NAN] {
        assert!(target.with_max_occupancy(max).is_err());
    }
    assert!(target.with_max_occupancy(1.0).is_ok());
    for text in ["1", "1.0", "-0.1", "abc", "0,3", ""] {
        let error = text.parse::<Shrinkage>().unwrap_err();
        assert!(error.to_string().contains("shrinkage"), "{error}");
    }
    assert!(erlang_a(&worked_example(), 14, Duration::ZERO, minute).is_err());
    assert!(erlang_a(&worked_example(), 0, minute, minute).is_err());
}

#[test]
fn back_office_staff_follows_the_work_content() {
    // (200 + 400) items × 6 min = 60 hours of work; 6 productive hours a worker.
    let workload = Workload {
        backlog: 200,
        arrivals: 400,
        aht: secs(360.0),
        productive_time: secs(6.0 * 3600.0),
    };
    let got = workload_staff(&workload, shrinkage("0.2")).unwrap();
    assert_eq!(got.agents, 10.0);
    assert_eq!(got.required, 10);
    // 10 ÷ 0.8 = 12.5.
    assert_eq!(got.scheduled, 13);

    let one_hour = Workload {
        backlog: 1,
        arrivals: 0,
        aht: secs(3600.0),
        productive_time: secs(3600.0),
    };
    let got = workload_staff(&one_hour, shrinkage("0.8")).unwrap();
    assert_eq!((got.required, got.scheduled), (1, 5));

    let nothing = Workload {
        backlog: 0,
        arrivals: 0,
        ..one_hour
    };
    let got = workload_staff(&nothing, shrinkage("0.3")).unwrap();
    assert_eq!((got.required, got.scheduled), (0, 0));

    let idle = Workload {
        productive_time: Duration::ZERO,
        ..one_hour
    };
    assert!(workload_staff(&idle, shrinkage("0.3")).is_err());
}

#[test]
fn plan_gaps_are_positive_where_the_roster_is_short() {
    assert_eq!(plan_gaps(&[14, 15, 10], &[14, 12, 11]), Ok(vec![0, 3, -1]));
    assert_eq!(
        plan_gaps(&[14, 15], &[14]),
        Err(StaffingError::PlanMismatch {
            required: 2,
            rostered: 1
        })
    );
}

fn erlang_a_model(patience: f64) -> Model {
    Model::ErlangA {
        patience: secs(patience),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn erlang_c_service_level_rises_with_agents(
        load in 0.05..300.0_f64,
        extra in 0..30_u32,
        t in 0.0..300.0_f64,
    ) {
        let interval = interval_with_load(load);
        let agents = load.floor() as u32 + 1 + extra;
        let fewer = erlang_c(&interval, agents, secs(t)).unwrap();
        let more = erlang_c(&interval, agents + 1, secs(t)).unwrap();
        for p in [fewer.p_wait, fewer.service_level, fewer.occupancy] {
            prop_assert!((0.0..=1.0).contains(&p), "{fewer:?}");
        }
        prop_assert!(more.service_level >= fewer.service_level - 1e-12);
        prop_assert!(more.p_wait <= fewer.p_wait + 1e-12);
        prop_assert!(more.asa_seconds <= fewer.asa_seconds + 1e-9);
    }

    #[test]
    fn erlang_a_waits_no_more_than_erlang_c_and_rises_with_agents(
        load in 0.05..200.0_f64,
        extra in 0..20_u32,
        patience in 1.0..5_000.0_f64,
        t in 0.0..300.0_f64,
    ) {
        let interval = interval_with_load(load);
        let agents = load.floor() as u32 + 1 + extra;
        let a = erlang_a(&interval, agents, secs(patience), secs(t)).unwrap();
        let c = erlang_c(&interval, agents, secs(t)).unwrap();
        let more = erlang_a(&interval, agents + 1, secs(patience), secs(t)).unwrap();
        let p_abandon = a.p_abandon.unwrap();
        for p in [a.p_wait, a.service_level, a.occupancy, p_abandon] {
            prop_assert!((0.0..=1.0 + 1e-12).contains(&p), "{a:?}");
        }
        prop_assert!(a.p_wait <= c.p_wait + 1e-12, "{a:?} {c:?}");
        prop_assert!(a.asa_seconds <= c.asa_seconds + 1e-9, "{a:?} {c:?}");
        prop_assert!(more.service_level >= a.service_level - 1e-12, "{a:?} {more:?}");
        prop_assert!(more.p_wait <= a.p_wait + 1e-12);
    }

    #[test]
    fn required_agents_are_the_fewest_that_meet_the_target(
        load in 0.05..150.0_f64,
        service_level in 0.05..0.99_f64,
        t in 0.0..120.0_f64,
        patience in prop::option::of(5.0..1_000.0_f64),
    ) {
        let interval = interval_with_load(load);
        let target = Target::new(service_level, secs(t)).unwrap();
        let model = patience.map_or(Model::ErlangC, erlang_a_model);
        let got = required_agents(&interval, model, &target).unwrap();
        prop_assert!(got.service_level >= service_level - 1e-12);
        let one_fewer = match model {
            Model::ErlangC => erlang_c(&interval, got.agents - 1, secs(t)).ok(),
            Model::ErlangA { patience } if got.agents > 1 => {
                erlang_a(&interval, got.agents - 1, patience, secs(t)).ok()
            }
            Model::ErlangA { .. } => None,
        };
        if let Some(one_fewer) = one_fewer {
            prop_assert!(one_fewer.service_level < service_level, "{one_fewer:?}");
        }
    }

    #[test]
    fn scheduled_staff_is_the_exact_ceiling(
        agents in 0..100_000_u32,
        basis_points in 0..10_000_i64,
    ) {
        let share = Decimal::new(basis_points, 4);
        let scheduled = Shrinkage::new(share).unwrap().scheduled(agents).unwrap();
        let available = Decimal::ONE - share;
        let scheduled = Decimal::from(scheduled);
        // Enough are available, and one fewer would not be.
        prop_assert!(scheduled * available >= Decimal::from(agents));
        if agents > 0 {
            prop_assert!((scheduled - Decimal::ONE) * available < Decimal::from(agents));
        }
    }
}

#[test]
fn a_plan_staffs_each_interval_and_an_empty_one_needs_nobody() {
    let target = Target::new(0.8, secs(20.0)).unwrap();
    let rows = plan(
        &[100.0, 0.0, 100.0, 0.0004],
        secs(1800.0),
        secs(180.0),
        Model::ErlangC,
        &target,
        shrinkage("0.3"),
    )
    .unwrap();
    let agents: Vec<u32> = rows.iter().map(|r| r.agents).collect();
    let scheduled: Vec<u64> = rows.iter().map(|r| r.scheduled).collect();
    assert_eq!(agents, [14, 0, 14, 0]);
    assert_eq!(scheduled, [20, 0, 20, 0]);
    assert!(rows[1].performance.is_none());
    assert_close(rows[0].performance.unwrap().service_level, 0.888350, 1e-6);
    let gaps = plan_gaps(&agents, &[10, 0, 16, 1]).unwrap();
    assert_eq!(gaps, [4, 0, -2, -1]);
}

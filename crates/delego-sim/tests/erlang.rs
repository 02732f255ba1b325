//! The simulator against queueing theory. One skill, Poisson arrivals at 200 an hour,
//! exponential handle times of 180 s (A = 10 Erlangs), 13 or 14 agents: over 20
//! replications (seeds 1 to 20) the formula's value must lie inside the replications' 99 %
//! confidence interval, and that interval must be narrow (half-width at most 0.01).
//!
//! Each replication starts empty; the first hours are a warm-up left out of the figures.
//! Erlang C and Erlang A are computed here from their definitions in
//! `reference-figures.md`, independently of the code under test.

use delego_sim::{Options, Plan, Row, Scenario};

const REPLICATIONS: u64 = 20;
/// Student's t for a two-sided 99 % interval with 19 degrees of freedom.
const T_99_19: f64 = 2.861;
const WARM_UP_HOURS: usize = 2;
/// Long enough for the service level's interval to be narrower than ± 0.01.
const MEASURED_HOURS: usize = 400;
/// Abandonment is rarer and its interval narrower: fewer hours suffice.
const MEASURED_HOURS_ABANDONMENT: usize = 200;
const ARRIVALS_PER_HOUR: f64 = 200.0;
const AHT: f64 = 180.0;
const TARGET: f64 = 20.0;

/// Erlang C's service level: SL(t) = 1 − C·exp(−(N − A)·t / AHT).
fn erlang_c_service_level(a: f64, n: u32, t: f64, aht: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=n {
        b = a * b / (f64::from(k) + a * b);
    }
    let n = f64::from(n);
    let c = n * b / (n - a * (1.0 - b));
    1.0 - c * (-(n - a) * t / aht).exp()
}

/// Erlang A (M/M/N+M) from its birth–death chain: births at λ, deaths at
/// min(n, N)·μ + max(n − N, 0)·θ. Returns P(wait) and P(abandon) = θ·E[queue] / λ.
fn erlang_a(lambda: f64, mu: f64, theta: f64, n: usize) -> (f64, f64) {
    let states = n + 2_000;
    let mut weight = vec![1.0f64; states];
    for k in 1..states {
        let death = (k.min(n) as f64) * mu + (k.saturating_sub(n) as f64) * theta;
        weight[k] = weight[k - 1] * lambda / death;
    }
    let total: f64 = weight.iter().sum();
    let waiting: f64 = weight[n..].iter().sum::<f64>() / total;
    let queue: f64 = weight
        .iter()
        .enumerate()
        .map(|(k, w)| k.saturating_sub(n) as f64 * w)
        .sum::<f64>()
        / total;
    (waiting, theta * queue / lambda)
}

#[test]
fn the_reference_helpers_give_the_published_figures() {
    let a = ARRIVALS_PER_HOUR / 3600.0 * AHT;
    assert!((erlang_c_service_level(a, 13, TARGET, AHT) - 0.795595).abs() < 1e-6);
    assert!((erlang_c_service_level(a, 14, TARGET, AHT) - 0.888350).abs() < 1e-6);
    let (waiting, abandoning) = erlang_a(ARRIVALS_PER_HOUR / 3600.0, 1.0 / AHT, 1.0 / 180.0, 14);
    assert!((waiting - 0.1355).abs() < 5e-5, "P(wait) {waiting}");
    assert!(
        (abandoning - 0.0187).abs() < 5e-5,
        "P(abandon) {abandoning}"
    );
}

fn plan(agents: u32, patience: Option<&str>, hours: usize) -> Plan {
    let patience = patience.map_or(String::new(), |mean| {
        format!(r#"patience = {{ distribution = "exponential", mean = "{mean}" }}"#)
    });
    let text = format!(
        r#"
start = "2026-01-05T00:00:00Z"
length = "{hours}h"
interval = "1h"
service_level_target = "{TARGET}s"

[[streams]]
name = "calls"
skill = "support"
rates = [{ARRIVALS_PER_HOUR}]
handle_time = {{ distribution = "exponential", mean = "{AHT}s" }}
{patience}

[[workers]]
name = "agents"
count = {agents}
skills = {{ support = 1 }}
"#,
        hours = WARM_UP_HOURS + hours,
    );
    Plan::new(&Scenario::from_toml(&text).expect("a scenario")).expect("a plan")
}

/// The mean of `figure` over the replications and its 99 % confidence half-width.
fn replicate(plan: &Plan, figure: impl Fn(&Row) -> f64) -> (f64, f64) {
    let values: Vec<f64> = (1..=REPLICATIONS)
        .map(|seed| {
            let report = plan.run(&Options {
                seed,
                ..Options::default()
            });
            let measured = report
                .over(WARM_UP_HOURS..plan.intervals())
                .expect("measured hours");
            assert_eq!(measured.tally.unanswered, 0);
            figure(&measured)
        })
        .collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, T_99_19 * (variance / n).sqrt())
}

fn service_level(row: &Row) -> f64 {
    row.figures.service_level.expect("contacts were offered")
}

fn check(what: &str, (mean, half_width): (f64, f64), formula: f64) {
    eprintln!("{what}: simulated {mean:.6} ± {half_width:.6} (99 %), formula {formula:.6}");
    assert!(
        (mean - formula).abs() <= half_width,
        "{what}: the formula's {formula:.6} is outside {mean:.6} ± {half_width:.6}"
    );
    assert!(
        half_width <= 0.01,
        "{what}: interval too wide: ± {half_width:.6}"
    );
}

#[test]
fn service_level_with_13_agents_matches_erlang_c() {
    let simulated = replicate(&plan(13, None, MEASURED_HOURS), service_level);
    check(
        "SL(20 s), N = 13",
        simulated,
        erlang_c_service_level(10.0, 13, TARGET, AHT),
    );
}

#[test]
fn service_level_with_14_agents_matches_erlang_c() {
    let simulated = replicate(&plan(14, None, MEASURED_HOURS), service_level);
    check(
        "SL(20 s), N = 14",
        simulated,
        erlang_c_service_level(10.0, 14, TARGET, AHT),
    );
}

#[test]
fn abandonment_with_14_agents_matches_erlang_a() {
    let simulated = replicate(&plan(14, Some("180s"), MEASURED_HOURS_ABANDONMENT), |row| {
        row.figures.abandonment_rate.expect("contacts were offered")
    });
    let (_, abandoning) = erlang_a(ARRIVALS_PER_HOUR / 3600.0, 1.0 / AHT, 1.0 / 180.0, 14);
    check("P(abandon), N = 14, patience 180 s", simulated, abandoning);
}

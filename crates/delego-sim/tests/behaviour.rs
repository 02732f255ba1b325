//! What a manager relies on: runs repeat by seed, shifts and skills are respected, the
//! routing policy shows, arrivals follow the rates, bad scenarios are named precisely.

use delego_sim::{Assignment, EXAMPLE, Options, Plan, Report, Scenario, ScenarioError};
use jiff::SignedDuration;

fn plan(toml: &str) -> Plan {
    Plan::new(&Scenario::from_toml(toml).expect("a scenario")).expect("a plan")
}

fn run(plan: &Plan, seed: u64) -> Report {
    plan.run(&Options {
        seed,
        record_assignments: true,
    })
}

fn wait(a: &Assignment) -> SignedDuration {
    a.answered - a.arrived
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let example = plan(EXAMPLE);
    let (first, second) = (run(&example, 42), run(&example, 42));
    assert_eq!(first, second);
    assert_eq!(
        serde_json::to_string(&first).expect("json"),
        serde_json::to_string(&second).expect("json")
    );
}

#[test]
fn another_seed_gives_another_day() {
    let example = plan(EXAMPLE);
    assert_ne!(run(&example, 1).total, run(&example, 2).total);
}

#[test]
fn every_offered_contact_is_answered_abandoned_or_left_waiting() {
    let report = run(&plan(EXAMPLE), 5);
    assert!(report.total.tally.offered > 3_000, "{:?}", report.total);
    assert!(
        report.total.tally.abandoned > 0,
        "the morning peak is understaffed"
    );
    for row in report.intervals.iter().chain([&report.total]) {
        let t = &row.tally;
        assert_eq!(
            t.offered,
            t.answered + t.abandoned + t.unanswered,
            "{row:?}"
        );
        assert!(t.answered_in_target <= t.answered);
        let occupancy = row.figures.occupancy.expect("someone on shift");
        assert!((0.0..=1.0).contains(&occupancy), "{row:?}");
    }
    assert_eq!(report.assignments.len() as u64, report.total.tally.answered);
}

const SHIFTS: &str = r#"
start = "2026-01-05T08:00:00Z"
length = "3h"
interval = "30m"

[[streams]]
name = "calls"
skill = "support"
rates = [150]
handle_time = { distribution = "exponential", mean = "4m" }

[[workers]]
name = "early"
count = 5
skills = { support = 1 }
shifts = [{ start = "0h", end = "1h 30m" }]

[[workers]]
name = "late"
count = 6
skills = { support = 1 }
shifts = [{ start = "1h", end = "2h" }, { start = "2h 30m", end = "3h" }]
"#;

#[test]
fn a_worker_off_shift_never_takes_work() {
    let plan = plan(SHIFTS);
    let report = run(&plan, 9);
    let shifts = |group: usize| -> Vec<(SignedDuration, SignedDuration)> {
        let h = |m: i64| SignedDuration::from_mins(m);
        match group {
            0 => vec![(h(0), h(90))],
            _ => vec![(h(60), h(120)), (h(150), h(180))],
        }
    };
    let mut taken = [0; 2];
    for a in &report.assignments {
        taken[a.group] += 1;
        assert!(
            shifts(a.group)
                .iter()
                .any(|(start, end)| *start <= a.answered && a.answered < *end),
            "{a:?} was answered off shift"
        );
    }
    assert!(
        taken[0] > 50 && taken[1] > 50,
        "both groups worked: {taken:?}"
    );
    // Only the early group is logged in during the first half hour, and no one between
    // 2h and 2h 30m but late workers finishing their last call.
    assert_eq!(report.intervals[0].figures.agents, 5.0);
    assert!(
        report.intervals[4].figures.agents < 3.0,
        "{:?}",
        report.intervals[4]
    );
}

const SKILLS: &str = r#"
start = "2026-01-05T08:00:00Z"
length = "2h"
interval = "30m"

[[streams]]
name = "german"
skill = "support"
min_level = 3
language = "de"
rates = [60]
handle_time = { distribution = "exponential", mean = "5m" }

[[workers]]
name = "novices"
count = 4
skills = { support = 1 }
languages = ["de"]

[[workers]]
name = "english"
count = 4
skills = { support = 5 }
languages = ["en"]

[[workers]]
name = "experts"
count = 4
skills = { support = 3, billing = 5 }
languages = ["de", "en"]
"#;

#[test]
fn contacts_go_only_to_workers_with_the_skill_level_and_language() {
    let report = run(&plan(SKILLS), 3);
    assert!(!report.assignments.is_empty());
    assert!(
        report.assignments.iter().all(|a| a.group == 2),
        "only the experts may take German level-3 calls"
    );
    // The queue was long while novices and English speakers sat idle.
    assert!(
        report
            .assignments
            .iter()
            .any(|a| wait(a) > SignedDuration::from_mins(5))
    );
}

#[test]
fn a_relaxed_requirement_lets_other_workers_help_after_the_wait() {
    let relaxed = SKILLS.replace(
        r#"rates = [60]"#,
        "rates = [60]\nrouting = { relax = [{ after = \"1m\", any_language = true }] }",
    );
    let report = run(&plan(&relaxed), 3);
    let english: Vec<&Assignment> = report.assignments.iter().filter(|a| a.group == 1).collect();
    assert!(
        !english.is_empty(),
        "English speakers help once the language is relaxed"
    );
    assert!(
        english
            .iter()
            .all(|a| wait(a) >= SignedDuration::from_mins(1))
    );
    assert!(
        report.assignments.iter().all(|a| a.group != 0),
        "the level still holds"
    );
}

#[test]
fn urgent_contacts_overtake_normal_ones() {
    let text = r#"
start = "2026-01-05T08:00:00Z"
length = "4h"
interval = "1h"

[[streams]]
name = "normal"
skill = "support"
rates = [100]
handle_time = { distribution = "exponential", mean = "3m" }

[[streams]]
name = "urgent"
skill = "support"
priority = "urgent"
rates = [100]
handle_time = { distribution = "exponential", mean = "3m" }

[[workers]]
name = "agents"
count = 10
skills = { support = 1 }
"#;
    let report = run(&plan(text), 11);
    let mean_wait = |stream: usize| {
        let waits: Vec<f64> = report
            .assignments
            .iter()
            .filter(|a| a.stream == stream)
            .map(|a| wait(a).as_secs_f64())
            .collect();
        waits.iter().sum::<f64>() / waits.len() as f64
    };
    assert!(
        mean_wait(1) * 3.0 < mean_wait(0),
        "urgent {} s, normal {} s",
        mean_wait(1),
        mean_wait(0)
    );
}

#[test]
fn arrivals_follow_the_rate_of_each_interval() {
    let text = r#"
start = "2026-01-05T08:00:00Z"
length = "2h"
interval = "30m"

[[streams]]
name = "calls"
skill = "support"
rates = [0, 100, 0, 400]
handle_time = { distribution = "exponential", mean = "1m" }

[[workers]]
name = "agents"
count = 30
skills = { support = 1 }
"#;
    let report = run(&plan(text), 4);
    let offered: Vec<u64> = report.intervals.iter().map(|r| r.tally.offered).collect();
    // Poisson: four standard deviations either side.
    assert_eq!(offered[0], 0);
    assert!((60..=140).contains(&offered[1]), "{offered:?}");
    assert_eq!(offered[2], 0);
    assert!((320..=480).contains(&offered[3]), "{offered:?}");
}

#[test]
fn lognormal_handle_times_have_the_mean_asked_and_wrap_up_adds_to_it() {
    let text = r#"
start = "2026-01-05T00:00:00Z"
length = "100h"
interval = "10h"

[[streams]]
name = "calls"
skill = "support"
rates = [1000]
handle_time = { distribution = "lognormal", mean = "5m", sd = "4m" }

[[workers]]
name = "agents"
count = 40
skills = { support = 1 }
wrap_up = "30s"
"#;
    let report = run(&plan(text), 8);
    let total = &report.total.tally;
    // Busy time counts within the run only; the last calls' tails are a rounding error.
    let per_call = total.busy_secs / total.answered as f64;
    assert!(
        (per_call - 330.0).abs() < 330.0 * 0.02,
        "{per_call} s per call"
    );
}

#[test]
fn the_benchmark_day_has_300k_contacts_and_1000_workers() {
    let day = plan(include_str!("../scenarios/day-300k.toml"));
    assert_eq!(day.workers(), 1_000);
    assert!((day.expected_contacts() - 300_000.0).abs() < 1.0);
    assert_eq!(day.intervals(), 48);
}

fn error(toml: &str) -> String {
    match Scenario::from_toml(toml).and_then(|s| Plan::new(&s)) {
        Ok(_) => panic!("the scenario should be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_bad_scenario_is_refused_with_the_field_named() {
    let short_rates = SHIFTS.replace("rates = [150]", "rates = [150, 150]");
    assert!(
        error(&short_rates).starts_with("`streams[0].rates`: 2 figures, but the scenario has 6"),
        "{}",
        error(&short_rates)
    );
    let backwards = SHIFTS.replace(r#"end = "1h 30m""#, r#"end = "0h""#);
    assert!(
        error(&backwards).starts_with("`workers[0].shifts[0]`"),
        "{}",
        error(&backwards)
    );
    let overlapping = SHIFTS.replace(r#"start = "2h 30m""#, r#"start = "1h 30m""#);
    assert!(
        error(&overlapping).starts_with("`workers[1].shifts`"),
        "{}",
        error(&overlapping)
    );
    let typo = SHIFTS.replace(r#"skill = "support""#, r#"skill = "suport""#);
    assert_eq!(
        error(&typo),
        "`streams[0].skill`: no worker group has the skill `suport`"
    );
    let ragged = SHIFTS.replace(r#"length = "3h""#, r#"length = "3h 10m""#);
    assert!(
        error(&ragged).starts_with("`length`:"),
        "{}",
        error(&ragged)
    );
    let no_mean = SHIFTS.replace(r#"mean = "4m""#, r#"mean = "0s""#);
    assert!(
        error(&no_mean).starts_with("`streams[0].handle_time.mean`"),
        "{}",
        error(&no_mean)
    );

    // Type errors come from the parser, with the line.
    let level = SKILLS.replace("min_level = 3", "min_level = 9");
    let message = error(&level);
    assert!(
        message.contains("line 9") && message.contains("skill level"),
        "{message}"
    );
    let unknown = SHIFTS.replace("rates = [150]", "rates = [150]\nrate = 3");
    assert!(
        error(&unknown).contains("unknown field `rate`"),
        "{}",
        error(&unknown)
    );

    match Scenario::from_json(
        r#"{"start": "2026-01-05T08:00:00Z", "length": "1h", "interval": "30m", "streams": [{"name": "x", "skill": "Support"}], "workers": []}"#,
    ) {
        Err(ScenarioError::Json { path, .. }) => assert_eq!(path, "streams[0].skill"),
        other => panic!("{other:?}"),
    }
}

//! `delego staff` as a planner runs it, on the worked example of
//! `shared/reference-figures.md`.

use std::process::{Command, Output};

use serde_json::Value;

fn staff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_delego"))
        .arg("staff")
        .args(args)
        .output()
        .expect("the delego binary runs")
}

/// 100 contacts per 30 minutes, AHT 180 s (10 Erlangs), target 80 % in 20 s.
const WORKED_EXAMPLE: &[&str] = &[
    "--arrivals",
    "100",
    "--interval-minutes",
    "30",
    "--aht-seconds",
    "180",
    "--target-percent",
    "80",
    "--target-seconds",
    "20",
];

fn staff_json(extra: &[&str]) -> Value {
    let output = staff(&[WORKED_EXAMPLE, extra, &["--json"]].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "status {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "one JSON object: {stdout}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("JSON ({e}): {stdout}"))
}

#[track_caller]
fn assert_field(report: &Value, field: &str, expected: f64, tolerance: f64) {
    let actual = report[field]
        .as_f64()
        .unwrap_or_else(|| panic!("no {field}: {report}"));
    assert!(
        (actual - expected).abs() <= tolerance,
        "{field} = {actual}, expected {expected} ± {tolerance}: {report}"
    );
}

#[test]
fn erlang_c_staffs_eighty_twenty_with_14_agents_and_schedules_20() {
    let report = staff_json(&["--shrinkage", "0.3"]);
    assert_eq!(report["agents"], 14, "{report}");
    assert_eq!(report["scheduled"], 20, "{report}");
    assert_field(&report, "p_wait", 0.174132, 1e-6);
    assert_field(&report, "service_level", 0.888350, 1e-6);
    assert_field(&report, "asa_seconds", 7.836, 5e-4);
    assert_field(&report, "occupancy", 10.0 / 14.0, 1e-12);
    assert!(report.get("p_abandon").is_none(), "{report}");
}

#[test]
fn patience_switches_to_erlang_a_and_reports_abandonment() {
    let report = staff_json(&["--shrinkage", "0.3", "--patience-seconds", "180"]);
    assert_eq!(report["model"], "erlang-a", "{report}");
    let agents = report["agents"].as_u64().expect("agents");
    // Callers who hang up shorten the queue, so Erlang A never needs more than Erlang C.
    assert!(agents <= 14, "{report}");
    assert!(report["service_level"].as_f64().expect("service_level") >= 0.8);
    let p_abandon = report["p_abandon"].as_f64().expect("p_abandon");
    assert!(p_abandon > 0.0 && p_abandon < 0.1, "{report}");
}

#[test]
fn erlang_a_at_14_agents_matches_the_published_figures() {
    // A maximum occupancy of 0.72 forces 14 agents (10 / 14 = 0.714), the published case.
    let report = staff_json(&[
        "--shrinkage",
        "0",
        "--patience-seconds",
        "180",
        "--max-occupancy",
        "0.72",
    ]);
    assert_eq!(report["agents"], 14, "{report}");
    assert_eq!(report["scheduled"], 14, "{report}");
    assert_field(&report, "p_wait", 0.1355, 5e-5);
    assert_field(&report, "p_abandon", 0.0187, 5e-5);
}

#[test]
fn one_agent_at_80_percent_shrinkage_schedules_5_not_6() {
    // 1 contact an hour at 60 s is 1/60 Erlang: one agent answers 80 % at once.
    let output = staff(&[
        "--arrivals",
        "1",
        "--interval-minutes",
        "60",
        "--aht-seconds",
        "60",
        "--target-percent",
        "80",
        "--target-seconds",
        "0",
        "--shrinkage",
        "0.8",
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["agents"], 1, "{report}");
    assert_eq!(report["scheduled"], 5, "{report}");
}

#[test]
fn the_table_explains_each_figure() {
    let output = staff(&[WORKED_EXAMPLE, &["--shrinkage", "0.3"]].concat());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    for line in ["agents", "scheduled", "service level", "P(wait)", "ASA"] {
        assert!(text.lines().any(|l| l.starts_with(line)), "{line}: {text}");
    }
    assert!(text.contains("88.84 %"), "{text}");
    assert!(!text.contains("P(abandon)"), "{text}");
}

#[test]
fn bad_flags_are_refused_with_a_reason_and_no_panic() {
    let cases: &[(&[&str], &str)] = &[
        (&["--arrivals", "-5"], "arrivals"),
        (&["--shrinkage", "1"], "shrinkage"),
        (&["--shrinkage", "0.3x"], "shrinkage"),
        (&["--target-percent", "120"], "service level"),
        (&["--target-percent", "100"], "service level"),
        (&["--aht-seconds", "-1"], "--aht-seconds"),
        (&["--max-occupancy", "0"], "occupancy"),
        (&["--patience-seconds", "0"], "patience"),
    ];
    for (changes, expected) in cases {
        let mut args: Vec<&str> = [WORKED_EXAMPLE, &["--shrinkage", "0.3"]].concat();
        for pair in changes.chunks(2) {
            match args.iter().position(|a| *a == pair[0]) {
                Some(at) => args[at + 1] = pair[1],
                None => args.extend(pair),
            }
        }
        let output = staff(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{changes:?}: {stderr}");
        assert!(stderr.contains(expected), "{changes:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{changes:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{changes:?}");
    }
}

fn workload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_delego"))
        .arg("workload")
        .args(args)
        .output()
        .expect("the delego binary runs")
}

#[test]
fn back_office_workload_is_work_over_productive_hours_then_shrinkage() {
    // (120 + 400) items × 300 s ÷ 7 h = 6.19 workers; 7 working, 6.19 ÷ 0.8 → 8 scheduled.
    let output = workload(&[
        "--backlog",
        "120",
        "--arrivals",
        "400",
        "--aht-seconds",
        "300",
        "--productive-hours",
        "7",
        "--shrinkage",
        "0.2",
        "--json",
    ]);
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert!((report["workers"].as_f64().unwrap() - 156_000.0 / 25_200.0).abs() < 1e-9);
    assert_eq!(report["required"], 7);
    assert_eq!(report["scheduled"], 8);

    let refused = workload(&[
        "--backlog",
        "1",
        "--arrivals",
        "0",
        "--aht-seconds",
        "300",
        "--productive-hours",
        "0",
        "--shrinkage",
        "0.2",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("productive time"));
}

//! `delego simulate` as a manager runs it.

use std::process::{Command, Output};

fn delego(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_delego"))
        .args(args)
        .output()
        .expect("the delego binary runs")
}

fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "status {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_example_prints_a_table_with_a_total_row() {
    let output = delego(&["simulate", "--example", "--seed", "3"]);
    let table = succeeded(&output);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[1].contains("offered") && lines[1].contains("SL"),
        "{table}"
    );
    assert!(lines[2].starts_with("08:00"), "{table}");
    assert!(lines.iter().any(|l| l.starts_with("total")), "{table}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("events/s"),
        "wall time and speed are reported: {stderr}"
    );
}

#[test]
fn the_same_seed_prints_the_same_json_and_another_seed_differs() {
    let run = |seed: &str| {
        succeeded(&delego(&[
            "simulate",
            "--example",
            "--json",
            "--seed",
            seed,
        ]))
    };
    let (first, again, other) = (run("7"), run("7"), run("8"));
    assert_eq!(first, again);
    assert_ne!(first, other);
    let report: serde_json::Value = serde_json::from_str(first.trim()).expect("one JSON object");
    assert_eq!(report["seed"], 7);
    assert_eq!(report["intervals"].as_array().map(Vec::len), Some(24));
    let total = &report["total"];
    let sl = total["service_level"].as_f64().expect("a service level");
    assert!((0.0..=1.0).contains(&sl), "{total}");
    assert!(total["occupancy"].as_f64().is_some() && total["asa_secs"].as_f64().is_some());
}

#[test]
fn the_printed_example_runs_from_a_file_and_json_scenarios_too() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let toml = dir.path().join("plan.toml");
    std::fs::write(&toml, succeeded(&delego(&["simulate", "--print-example"]))).expect("write");
    let from_file = succeeded(&delego(&[
        "simulate",
        "--scenario",
        toml.to_str().expect("a path"),
        "--json",
        "--seed",
        "5",
    ]));
    let built_in = succeeded(&delego(&["simulate", "--example", "--json", "--seed", "5"]));
    assert_eq!(from_file, built_in);

    let json = dir.path().join("plan.json");
    std::fs::write(
        &json,
        r#"{"start": "2026-01-05T08:00:00Z", "length": "2h", "interval": "1h",
            "streams": [{"name": "calls", "skill": "support", "rates": [100],
                         "handle_time": {"distribution": "exponential", "mean": "3m"}}],
            "workers": [{"name": "agents", "count": 8, "skills": {"support": 2}}]}"#,
    )
    .expect("write");
    let table = succeeded(&delego(&[
        "simulate",
        "--scenario",
        json.to_str().expect("a path"),
    ]));
    assert!(table.lines().any(|l| l.starts_with("total")), "{table}");
}

#[test]
fn a_bad_scenario_fails_with_the_field_named() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("bad.toml");
    let example = succeeded(&delego(&["simulate", "--print-example"]));
    std::fs::write(
        &file,
        example
            .replacen(
                "count = 20",
                "count = 20\nshifts = [{ start = \"8h\", end = \"2h\" }]",
                1,
            )
            .replacen("shifts = [{ start = \"0h\", end = \"8h\" }]\n", "", 1),
    )
    .expect("write");
    let output = delego(&["simulate", "--scenario", file.to_str().expect("a path")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`workers[0].shifts[0]`: a shift must end after it starts"),
        "{stderr}"
    );

    let output = delego(&["simulate"]);
    assert!(
        !output.status.success(),
        "a scenario or --example is required"
    );
}

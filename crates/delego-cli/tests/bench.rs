//! `delego bench routing` at a tiny size: every task is claimed exactly once and the
//! figures are consistent, through the store and through the HTTP API.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_delego"))
        .args([
            "bench",
            "routing",
            "--json",
            "--wakeups",
            &WAKE_UPS.to_string(),
        ])
        .args(args)
        // A database URL in the environment must not redirect the benchmark.
        .env("DELEGO_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .expect("the delego binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "status {:?}\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}"))
}

fn check(report: &Value, tasks: u64, mode: &str) {
    assert_eq!(report["backend"], "sqlite", "{report}");
    assert_eq!(report["mode"], mode, "{report}");
    assert_eq!(report["tasks"], tasks, "{report}");
    assert_eq!(report["claims"], tasks, "every task is claimed: {report}");
    assert_eq!(report["double_claims"], 0, "{report}");
    let per_second = report["claims_per_second"]
        .as_f64()
        .expect("claims_per_second");
    assert!(per_second > 0.0, "{report}");
    let p50 = report["p50_ms"].as_f64().expect("p50_ms");
    let p90 = report["p90_ms"].as_f64().expect("p90_ms");
    let p99 = report["p99_ms"].as_f64().expect("p99_ms");
    let max = report["max_ms"].as_f64().expect("max_ms");
    assert!(
        0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max,
        "{report}"
    );
    assert!(report["elapsed_seconds"].as_f64().expect("elapsed") > 0.0);
    // Every task opened for the waiting workers reached one of them.
    assert_eq!(report["wakeups"], WAKE_UPS, "{report}");
    assert_eq!(report["missed_wakeups"], 0, "{report}");
    let wake_p50 = report["wake_p50_ms"].as_f64().expect("wake_p50_ms");
    let wake_p99 = report["wake_p99_ms"].as_f64().expect("wake_p99_ms");
    let wake_max = report["wake_max_ms"].as_f64().expect("wake_max_ms");
    assert!(
        0.0 < wake_p50 && wake_p50 <= wake_p99 && wake_p99 <= wake_max,
        "{report}"
    );
}

const WAKE_UPS: u64 = 10;

#[test]
fn bench_routing_claims_every_task_once_through_the_store() {
    let report = bench(&["--tasks", "300", "--workers", "20", "--claimers", "4"]);
    check(&report, 300, "store");
    assert_eq!(report["workers"], 20);
    assert_eq!(report["claimers"], 4);
}

#[test]
fn bench_routing_claims_every_task_once_through_http() {
    let report = bench(&[
        "--tasks",
        "60",
        "--workers",
        "6",
        "--claimers",
        "3",
        "--http",
    ]);
    check(&report, 60, "http");
}

#[test]
fn bench_routing_stops_at_the_claim_limit() {
    let report = bench(&[
        "--tasks",
        "50",
        "--workers",
        "5",
        "--claimers",
        "4",
        "--claims",
        "20",
    ]);
    assert_eq!(report["claims"], 20, "{report}");
    assert_eq!(report["double_claims"], 0, "{report}");
}

#[test]
fn bench_routing_refuses_a_sqlite_url() {
    let output = Command::new(env!("CARGO_BIN_EXE_delego"))
        .args([
            "bench",
            "routing",
            "--database-url",
            "sqlite://somewhere.db",
        ])
        .output()
        .expect("the delego binary runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("postgres://"));
}

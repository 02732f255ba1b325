//! The `delego` binary as a user runs it.

use std::process::{Command, Output};

fn delego(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_delego"))
        .args(args)
        .output()
        .expect("the delego binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const BROKEN: &str = r#"[service]
key = "broken"
version = 1
name = "Broken"
kind = "bpo"
skills = ["support"]
start = "answer"

[[intake]]
name = "subject"
type = "text"

[[steps]]
id = "answer"
kind = "human"
skill = "support"
handle_time = "5m"
outcomes = ["done"]
[steps.on]
done = "finish"

[[steps]]
id = "orphan"
kind = "end"
resolution = "never"

[[steps]]
id = "route"
kind = "decision"
branches = [ { when = "amount > 10", to = "route" } ]
otherwise = "orphan"
"#;

#[test]
fn catalog_check_lists_every_problem_with_its_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(&file, BROKEN).unwrap();
    let output = delego(&["catalog", "check", file.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| !l.ends_with("problem(s)"))
        .collect();
    // The unknown step `finish` (line 20), the unknown field `amount` (line 30), the
    // decision looping on itself, no reachable end, and `orphan` and `route` unreachable.
    assert!(
        problems
            .iter()
            .any(|p| p.contains(":20:") && p.contains("finish")),
        "{text}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains(":30:") && p.contains("amount")),
        "{text}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("route") && p.contains("loop forever")),
        "{text}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("orphan") && p.contains("reach")),
        "{text}"
    );
    assert!(
        problems.iter().any(|p| p.contains("no `end` step")),
        "{text}"
    );
    assert_eq!(problems.len(), 6, "{text}");
    assert!(text.ends_with(": 6 problem(s)\n"), "{text}");
}

#[test]
fn catalog_check_passes_every_shipped_service() {
    let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../../catalog");
    let files: Vec<String> = std::fs::read_dir(catalog)
        .unwrap()
        .map(|entry| entry.unwrap().path().display().to_string())
        .filter(|path| path.ends_with(".toml"))
        .collect();
    assert!(!files.is_empty());
    let mut args = vec!["catalog", "check", "--json"];
    args.extend(files.iter().map(String::as_str));
    let output = delego(&args);
    assert!(output.status.success(), "{}", stdout(&output));
    for line in stdout(&output).lines() {
        let verdict: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(verdict["ok"], true, "{line}");
    }
}

#[test]
fn a_second_process_on_the_same_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("delego.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _held = runtime
        .block_on(delego_store::SqliteStore::open(
            &path,
            std::sync::Arc::new(delego_core::clock::SystemClock),
        ))
        .unwrap();
    let output = delego(&["migrate", "--database-url", path.to_str().unwrap()]);
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(error.contains("in use by process"), "{error}");
    assert!(error.contains("PostgreSQL"), "{error}");
}

#[test]
fn migrate_creates_a_fresh_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/delego.db");
    let output = delego(&["migrate", "--database-url", path.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout(&output).contains("sqlite database is up to date"));
    assert!(path.exists());
}

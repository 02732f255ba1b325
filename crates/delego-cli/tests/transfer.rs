//! `delego import` and `delego export`, run as a user runs them, against the demo data.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use delego_core::clock::SystemClock;
use delego_core::id::EngagementId;
use delego_core::model::WorkItem;
use delego_store::{Backend, ItemFilter};
use serde_json::Value as Json;

/// Runs `delego` with `input` on standard input.
fn delego(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_delego"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the delego binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A seeded demo database and one of its engagements.
struct Demo {
    dir: tempfile::TempDir,
    db: String,
    engagement: EngagementId,
}

impl Demo {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("demo.db").display().to_string();
        let output = delego(&["demo", "--seed-only", "--database-url", &db], "");
        assert!(output.status.success(), "{}", text(&output));
        let engagement = with_store(&db, async |store| {
            store.engagements(None).await.unwrap()[0].id
        });
        Self {
            dir,
            db,
            engagement,
        }
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// `delego import` into the demo engagement.
    fn import(&self, extra: &[&str], input: &str) -> Output {
        let engagement = self.engagement.to_string();
        let mut args = vec![
            "import",
            "--database-url",
            &self.db,
            "--engagement",
            &engagement,
        ];
        args.extend(extra);
        delego(&args, input)
    }

    fn export(&self, extra: &[&str]) -> Output {
        let mut args = vec!["export", "--database-url", &self.db];
        args.extend(extra);
        delego(&args, "")
    }

    /// The engagement's items, newest first.
    fn items(&self) -> Vec<WorkItem> {
        let filter = ItemFilter {
            engagement_id: Some(self.engagement),
            limit: 1000,
            ..ItemFilter::default()
        };
        with_store(&self.db, async |store| store.items(&filter).await.unwrap())
    }
}

/// Opens the store, runs `f` and closes the store again: SQLite admits one process at a
/// time, and the binary under test is another.
fn with_store<T>(db: &str, f: impl AsyncFnOnce(&dyn Backend) -> T) -> T {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let value = runtime.block_on(async {
        let store = delego_store::open(
            db,
            Arc::new(SystemClock),
            delego_store::DEFAULT_MAX_CONNECTIONS,
        )
        .await
        .unwrap();
        f(store.as_ref()).await
    });
    drop(runtime);
    value
}

fn subjects(items: &[WorkItem]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|item| item.state.data.get("subject")?.as_str().map(str::to_owned))
        .collect()
}

const TICKETS_CSV: &str = "\
subject,description,requester_email,channel,category,language,priority,idempotency_key
Printer on fire,\"It is, literally, on fire\",ann@example.com,phone,problem,en,urgent,row-1
Bad address,desc,not-an-email,web,question,en,,row-2
Refund,\"Two lines
of description\",bob@example.com,email,billing,,high,row-3
,no subject,carl@example.com,fax,question,en,,row-4
Žiadosť o vrátenie,Popis,dora@example.com,,,sk,,row-5
";

#[test]
fn csv_import_keeps_the_valid_rows_and_reports_each_bad_line_with_its_fields() {
    let demo = Demo::new();
    let before = demo.items().len();
    let file = demo.file("tickets.csv", TICKETS_CSV);

    let output = demo.import(&[&file], "");
    let report = text(&output);
    assert_eq!(output.status.code(), Some(2), "{report}");
    assert!(
        report.contains("line 3: requester_email: `not-an-email`"),
        "{report}"
    );
    // Line 4 starts a row whose description runs on to line 5.
    assert!(report.contains("line 6: subject: is required"), "{report}");
    assert!(report.contains("line 6: channel: `fax`"), "{report}");
    assert_eq!(report.matches("line ").count(), 3, "{report}");
    assert!(
        report.contains("imported 3, skipped 0 (already imported), failed 2 of 5 rows"),
        "{report}"
    );

    let items = demo.items();
    assert_eq!(items.len(), before + 3);
    let fire = items
        .iter()
        .find(|item| item.state.data["subject"] == "Printer on fire")
        .unwrap();
    assert_eq!(fire.state.priority.as_str(), "urgent");
    assert_eq!(fire.state.data["description"], "It is, literally, on fire");
    assert!(fire.state.data.get("priority").is_none());
    let refund = items
        .iter()
        .find(|item| item.state.data["subject"] == "Refund")
        .unwrap();
    assert_eq!(
        refund.state.data["description"],
        "Two lines\nof description"
    );
    assert!(subjects(&items).contains("Žiadosť o vrátenie"));

    // The idempotency keys make a second run a no-op for the rows already in.
    let again = demo.import(&[&file], "");
    let report = text(&again);
    assert_eq!(again.status.code(), Some(2), "{report}");
    assert!(
        report.contains("imported 0, skipped 3 (already imported), failed 2 of 5 rows"),
        "{report}"
    );
    assert_eq!(demo.items().len(), before + 3);
}

#[test]
fn jsonl_import_creates_items_and_a_rerun_skips_them_all() {
    let demo = Demo::new();
    let before = demo.items().len();
    let lines = [
        r#"{"subject": "Lost parcel", "description": "Ordered a week ago", "requester_email": "eve@example.com", "channel": "api", "priority": "high", "idempotency_key": "crm-1"}"#,
        "",
        r#"{"subject": "Wrong size", "description": "Need a 42", "requester_email": "fred@example.com", "idempotency_key": "crm-2"}"#,
    ];
    let file = demo.file("tickets.jsonl", &lines.join("\n"));

    let output = demo.import(&[&file], "");
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("imported 2, skipped 0 (already imported), failed 0 of 2 rows"),
        "{report}"
    );
    let items = demo.items();
    assert_eq!(items.len(), before + 2);
    let parcel = items
        .iter()
        .find(|item| item.state.data["subject"] == "Lost parcel")
        .unwrap();
    assert_eq!(parcel.state.priority.as_str(), "high");
    assert_eq!(parcel.state.data["channel"], "api");

    let again = demo.import(&[&file], "");
    let report = text(&again);
    assert!(again.status.success(), "{report}");
    assert!(
        report.contains("imported 0, skipped 2 (already imported), failed 0 of 2 rows"),
        "{report}"
    );
    assert_eq!(demo.items().len(), before + 2);
}

#[test]
fn dry_run_checks_every_row_from_stdin_and_writes_nothing() {
    let demo = Demo::new();
    let before = demo.items().len();
    let input = [
        r#"{"subject": "Fine", "description": "d", "requester_email": "gil@example.com"}"#,
        r#"{"subject": "Broken"#,
        r#"["not", "an", "object"]"#,
        r#"{"subject": "Odd", "description": "d", "requester_email": "hal@example.com", "priority": "someday"}"#,
        r#"{"description": "d", "requester_email": "ida@example.com", "colour": "blue"}"#,
    ]
    .join("\n");

    let output = demo.import(&["--dry-run", "--format", "jsonl", "-"], &input);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(2), "{report}");
    assert!(report.contains("line 2: is not valid JSON"), "{report}");
    assert!(report.contains("line 3: is not a JSON object"), "{report}");
    assert!(report.contains("line 4: priority: `someday`"), "{report}");
    assert!(report.contains("line 5: subject: is required"), "{report}");
    assert!(report.contains("line 5: colour:"), "{report}");
    assert!(!report.contains("line 1:"), "{report}");
    assert!(
        report.contains("dry run: 1 valid, failed 4 of 5 rows; nothing was written"),
        "{report}"
    );
    assert_eq!(demo.items().len(), before);

    // Standard input has no extension to guess from.
    let output = demo.import(&["--dry-run", "-"], &input);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("--format"), "{}", text(&output));
}

#[test]
fn export_jsonl_round_trips_the_imported_subjects_across_pages() {
    let demo = Demo::new();
    // More than one page of 500, with text that needs escaping.
    let mut wanted: Vec<String> = (0..510).map(|n| format!("Bulk ticket {n}")).collect();
    wanted.push("Quotes \" and commas, and\nnew lines — and Ünïcode".into());
    let input: Vec<String> = wanted
        .iter()
        .enumerate()
        .map(|(n, subject)| {
            serde_json::json!({
                "subject": subject,
                "description": "d",
                "requester_email": format!("bulk{n}@example.com"),
                "idempotency_key": format!("bulk-{n}"),
            })
            .to_string()
        })
        .collect();
    let file = demo.file("bulk.jsonl", &input.join("\n"));
    let output = demo.import(&[&file], "");
    assert!(output.status.success(), "{}", text(&output));
    let stored = demo.items();

    let engagement = demo.engagement.to_string();
    let output = demo.export(&["--engagement", &engagement]);
    assert!(output.status.success(), "{}", text(&output));
    let lines: Vec<Json> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), stored.len());
    let ids: BTreeSet<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), lines.len(), "no item twice across pages");
    let exported: BTreeSet<String> = lines
        .iter()
        .map(|line| line["data"]["subject"].as_str().unwrap().to_owned())
        .collect();
    assert!(wanted.iter().all(|s| exported.contains(s)));
    assert_eq!(exported, subjects(&stored));
    let first = &lines[0];
    for key in [
        "id",
        "client_id",
        "engagement_id",
        "service_key",
        "service_version",
        "status",
        "step",
        "priority",
        "version",
        "created_at",
        "updated_at",
    ] {
        assert!(first.get(key).is_some(), "{key} missing from {first}");
    }
    assert_eq!(first["engagement_id"], engagement.as_str());
    assert_eq!(first["service_key"], "customer-support");
    assert!(first["data"].is_object());

    // Filters narrow the pages too.
    let output = demo.export(&["--engagement", &engagement, "--status", "completed"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(output.stdout.is_empty());
}

#[test]
fn export_csv_has_a_header_and_one_record_per_item() {
    let demo = Demo::new();
    let file = demo.file("tickets.csv", TICKETS_CSV);
    assert_eq!(demo.import(&[&file], "").status.code(), Some(2));
    let items = demo.items();

    // With an engagement: a column per field, the format guessed from the file name.
    let engagement = demo.engagement.to_string();
    let path = demo.dir.path().join("items.csv");
    let output = demo.export(&[
        "--engagement",
        &engagement,
        "--output",
        path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(output.stdout.is_empty());
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(&header[..3], ["id", "client_id", "engagement_id"]);
    for column in ["status", "step", "priority", "subject", "requester_email"] {
        assert!(header.iter().any(|h| h == column), "{header:?}");
    }
    assert!(!header.iter().any(|h| h == "data"), "{header:?}");
    let subject = header.iter().position(|h| h == "subject").unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), items.len());
    let exported: BTreeSet<String> = records.iter().map(|r| r[subject].to_owned()).collect();
    assert_eq!(exported, subjects(&items));
    assert!(exported.contains("Printer on fire"));

    // Without one, items of any service mix: the data is one JSON column.
    let output = demo.export(&["--format", "csv"]);
    assert!(output.status.success(), "{}", text(&output));
    let mut reader = csv::Reader::from_reader(&output.stdout[..]);
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.iter().next_back(), Some("data"));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 36 + 3);
    for record in &records {
        let data: Json = serde_json::from_str(&record[header.len() - 1]).unwrap();
        // Each service its own fields: a ticket's subject, a claim's policy, a contact's name.
        assert!(
            data.as_object().is_some_and(|fields| !fields.is_empty()),
            "{data}"
        );
    }
}

#[test]
fn an_unknown_engagement_or_an_unreadable_file_is_fatal() {
    let demo = Demo::new();
    let file = demo.file("tickets.csv", TICKETS_CSV);
    let missing = "01900000-0000-7000-8000-000000000000";
    let output = delego(
        &[
            "import",
            "--database-url",
            &demo.db,
            "--engagement",
            missing,
            &file,
        ],
        "",
    );
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("engagement {missing} does not exist")),
        "{report}"
    );
    assert!(!report.contains("imported"), "{report}");

    let output = demo.export(&["--engagement", missing]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("does not exist"),
        "{}",
        text(&output)
    );

    let output = delego(
        &[
            "import",
            "--database-url",
            &demo.db,
            "--engagement",
            "not-an-id",
            &file,
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("not an engagement id"));

    let nowhere = Path::new(&file).with_file_name("nowhere.csv");
    let output = demo.import(&[nowhere.to_str().unwrap()], "");
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("cannot read"), "{report}");
    assert!(report.contains("nowhere.csv"), "{report}");

    // A column that is no intake field would fail every row: refused once, up front.
    let file = demo.file("typo.csv", "subjekt,description\nHello,world\n");
    let output = demo.import(&[&file], "");
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("`subjekt`"), "{report}");
}

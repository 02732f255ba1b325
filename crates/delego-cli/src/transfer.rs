//! `delego import` and `delego export`: work items in and out as CSV or JSON Lines.
//!
//! Import reads one row at a time and creates each item on its own, so one bad row costs
//! only itself and a file of any size runs in constant memory. CSV cells are text; they
//! are converted to the JSON type the engagement's intake field expects and then checked
//! by the same form validation as the API, so the problems read the same.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use delego_core::definition::{
    Completeness, FieldError, FieldType, Form, ServiceDefinition, validate_form,
};
use delego_core::id::{ClientId, EngagementId};
use delego_core::model::{Actor, WorkItem};
use delego_core::values::Priority;
use delego_store::{Backend, ItemFilter, NewItem, StoreError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value as Json, json};

use crate::{DatabaseArgs, operator};

/// The optional column (or JSON key) that sets an item's priority.
const PRIORITY: &str = "priority";
/// The optional column (or JSON key) that makes a row's import happen at most once.
const IDEMPOTENCY_KEY: &str = "idempotency_key";
/// Items per `Store::items` call while exporting.
const PAGE: u32 = 500;
/// Exit status of an import in which some rows failed and the others were kept.
const SOME_ROWS_FAILED: u8 = 2;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// JSON Lines: one JSON object per line.
    Jsonl,
}

impl Format {
    /// The format a file name's extension names, if any.
    fn of_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

#[derive(clap::Args)]
#[command(after_long_help = "\
CSV: the header row names intake fields. An empty cell leaves the field unset; a list \
is split on `;`; money is written `12.50 EUR`; a boolean is true/false, yes/no or 1/0.

Two optional columns (JSON keys) are not intake fields: `priority` (low, normal, high or \
urgent) and `idempotency_key`. A row whose key was imported before is skipped, so an \
interrupted or partly failed import can simply be run again.

Problems are printed per line on standard error, the summary on standard output.")]
pub struct ImportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The engagement the items are submitted to.
    #[arg(long, value_name = "ID")]
    pub engagement: String,
    /// The input's format; guessed from the file's extension (.csv, .jsonl) when not given.
    #[arg(long)]
    pub format: Option<Format>,
    /// Check every row against the intake form without storing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// The file to read, or `-` for standard input (then --format is required).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Only the items of this engagement. CSV then has one column per field of its service
    /// instead of one `data` column of JSON.
    #[arg(long, value_name = "ID")]
    pub engagement: Option<String>,
    /// Only the items of this client.
    #[arg(long, value_name = "ID")]
    pub client: Option<String>,
    /// Only the items in this state.
    #[arg(long, value_parser = ["active", "waiting", "completed", "cancelled"])]
    pub status: Option<String>,
    /// The output's format; guessed from the --output file's extension, else jsonl.
    #[arg(long)]
    pub format: Option<Format>,
    /// The file to write instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let engagement_id: EngagementId = parse_id(&args.engagement, "--engagement", "an engagement")?;
    let stdin = args.file.as_os_str() == "-";
    let format = match (args.format, stdin) {
        (Some(format), _) => format,
        (None, true) => anyhow::bail!("reading standard input needs --format csv or jsonl"),
        (None, false) => Format::of_path(&args.file).with_context(|| {
            format!(
                "cannot tell the format of {} from its extension; pass --format csv or jsonl",
                args.file.display()
            )
        })?,
    };
    // Opened before the database, so a mistyped path fails fast.
    let (input, size): (Box<dyn BufRead>, Option<u64>) = if stdin {
        (Box::new(io::stdin().lock()), None)
    } else {
        let file = File::open(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        // Only a regular file's length says where the end is.
        let size = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        (Box::new(BufReader::new(file)), size)
    };
    let store = args.database.open().await?;
    let service = engagement_service(store.as_ref(), &args.database, engagement_id).await?;
    let mut rows: Box<dyn Rows> = match format {
        Format::Csv => Box::new(CsvRows::new(input, &service)?),
        Format::Jsonl => Box::new(JsonlRows::new(input, &service.intake)),
    };
    let progress = match size {
        Some(size) => styled(
            ProgressBar::new(size),
            "{spinner} {wide_bar} {percent:>3}% {msg}",
        ),
        None => styled(ProgressBar::new_spinner(), "{spinner} {msg}"),
    };
    progress.enable_steady_tick(Duration::from_millis(120));
    let importer = Importer {
        store: store.as_ref(),
        engagement_id,
        intake: &service.intake,
        dry_run: args.dry_run,
        actor: operator(),
    };
    let outcome = importer.run(rows.as_mut(), &progress).await;
    progress.finish_and_clear();
    let tally = outcome?;
    if args.dry_run {
        println!(
            "dry run: {} valid, failed {} of {} rows; nothing was written",
            tally.valid, tally.failed, tally.rows
        );
    } else {
        println!(
            "imported {}, skipped {} (already imported), failed {} of {} rows",
            tally.imported, tally.skipped, tally.failed, tally.rows
        );
    }
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(SOME_ROWS_FAILED)
    })
}

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let engagement_id: Option<EngagementId> = args
        .engagement
        .as_deref()
        .map(|id| parse_id(id, "--engagement", "an engagement"))
        .transpose()?;
    let client_id: Option<ClientId> = args
        .client
        .as_deref()
        .map(|id| parse_id(id, "--client", "a client"))
        .transpose()?;
    let format = args
        .format
        .or_else(|| args.output.as_deref().and_then(Format::of_path))
        .unwrap_or(Format::Jsonl);
    let store = args.database.open().await?;
    let service = match engagement_id {
        Some(id) => Some(engagement_service(store.as_ref(), &args.database, id).await?),
        None => None,
    };
    if let Some(id) = client_id {
        existing(store.client(id).await, "client", id, &args.database)?;
    }
    let (output, target): (Box<dyn Write>, String) = match &args.output {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            (Box::new(file), path.display().to_string())
        }
        None => (Box::new(io::stdout().lock()), "standard output".into()),
    };
    let columns = match (format, &service) {
        (Format::Jsonl, _) => None,
        (Format::Csv, Some(service)) => Some(DataColumns::Fields(field_names(service))),
        (Format::Csv, None) => Some(DataColumns::Json),
    };
    let mut sink = Sink::new(BufWriter::new(output), columns)
        .with_context(|| format!("cannot write to {target}"))?;
    // The bar would garble items written to the same terminal.
    let progress = if args.output.is_none() && io::stdout().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    } else {
        ProgressBar::new_spinner()
    };
    let progress = styled(progress, "{spinner} {human_pos} items exported");
    progress.enable_steady_tick(Duration::from_millis(120));
    let mut filter = ItemFilter {
        client_id,
        engagement_id,
        status: args.status,
        limit: PAGE,
        ..ItemFilter::default()
    };
    let written = async {
        loop {
            let page = store.items(&filter).await?;
            for item in &page {
                sink.write(item)
                    .with_context(|| format!("cannot write to {target}"))?;
                progress.inc(1);
            }
            // A short page is the last one; the cursor is the last item seen.
            match page.last() {
                Some(last) if page.len() == PAGE as usize => filter.after = Some(last.id()),
                _ => break,
            }
        }
        sink.finish()
            .with_context(|| format!("cannot write to {target}"))
    }
    .await;
    progress.finish_and_clear();
    match written {
        Ok(()) => {
            eprintln!("exported {} items to {target}", progress.position());
            Ok(())
        }
        // `delego export | head` is a normal way to look at a few items.
        Err(error) if is_broken_pipe(&error) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Who the audit log names for imported items.
fn parse_id<T: FromStr>(text: &str, flag: &str, what: &str) -> anyhow::Result<T> {
    text.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag}: `{text}` is not {what} id"))
}

/// Says which database lacks the object: a wrong --database-url is the usual cause.
fn existing<T>(
    found: delego_store::Result<T>,
    what: &str,
    id: impl std::fmt::Display,
    database: &DatabaseArgs,
) -> anyhow::Result<T> {
    found.map_err(|error| match error {
        StoreError::NotFound(_) => {
            anyhow::anyhow!("{what} {id} does not exist in {}", database.database_url)
        }
        other => other.into(),
    })
}

/// The service version the engagement runs; an unknown engagement is a clear error.
async fn engagement_service(
    store: &dyn Backend,
    database: &DatabaseArgs,
    id: EngagementId,
) -> anyhow::Result<Arc<ServiceDefinition>> {
    let engagement = existing(store.engagement(id).await, "engagement", id, database)?;
    store
        .service(&engagement.service_key, engagement.service_version)
        .await
        .with_context(|| {
            format!(
                "cannot load service {} version {} of engagement {id}",
                engagement.service_key, engagement.service_version
            )
        })
}

fn styled(progress: ProgressBar, template: &str) -> ProgressBar {
    // The templates are constants; a bad one only loses the styling.
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    progress.with_style(style)
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// One row of the input.
struct Row {
    /// Where the row starts in the input, counting from 1.
    line: u64,
    /// The row's item, or every problem found while reading it.
    item: Result<RowItem, Vec<FieldError>>,
}

/// A row's values, typed but not yet checked against the intake form.
struct RowItem {
    data: Map<String, Json>,
    priority: Priority,
    idempotency_key: Option<String>,
}

/// The rows of an input, in order. `Err` is a fatal read error; a bad row is a `Row`
/// with problems, and reading goes on after it.
trait Rows {
    fn next_row(&mut self) -> anyhow::Result<Option<Row>>;
    /// Bytes consumed so far, for the progress bar.
    fn offset(&self) -> u64;
}

/// A problem that concerns the whole row rather than one field.
fn row_problem(message: impl Into<String>) -> FieldError {
    field_problem("", "invalid_row", message)
}

fn field_problem(field: &str, code: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        code: code.to_owned(),
        message: message.into(),
    }
}

/// Whether a column or JSON key is one of the import's own, not item data. An intake
/// field of the same name wins, so no service loses a field to the importer.
fn is_control(form: &Form, name: &str) -> bool {
    (name == PRIORITY || name == IDEMPOTENCY_KEY) && form.field(name).is_none()
}

/// Completes a row from its data and the texts of its control columns.
fn row_item(
    data: Map<String, Json>,
    priority: Option<&str>,
    idempotency_key: Option<&str>,
    mut problems: Vec<FieldError>,
) -> Result<RowItem, Vec<FieldError>> {
    let priority = match priority.map(str::trim).filter(|p| !p.is_empty()) {
        None => Priority::default(),
        // Worded like the form's enum problems; the core's message repeats the field name.
        Some(text) => text.parse().unwrap_or_else(|_| {
            let allowed = Priority::ALL.map(Priority::as_str).join(", ");
            problems.push(field_problem(
                PRIORITY,
                "not_allowed",
                format!("`{text}` is not one of: {allowed}"),
            ));
            Priority::default()
        }),
    };
    let idempotency_key = idempotency_key
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_owned);
    if problems.is_empty() {
        Ok(RowItem {
            data,
            priority,
            idempotency_key,
        })
    } else {
        Err(problems)
    }
}

/// What a CSV column holds.
enum Column {
    Priority,
    IdempotencyKey,
    Field { name: String, kind: FieldType },
}

struct CsvRows {
    reader: csv::Reader<Box<dyn BufRead>>,
    columns: Vec<Column>,
    record: csv::StringRecord,
}

impl CsvRows {
    /// Reads the header row. A column that is not an intake field would fail every row, so
    /// it is refused once, up front.
    fn new(input: Box<dyn BufRead>, service: &ServiceDefinition) -> anyhow::Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::Headers)
            .from_reader(input);
        let headers = reader
            .headers()
            .context("cannot read the CSV header row")?
            .clone();
        let form = &service.intake;
        let mut seen = HashSet::new();
        let mut unknown = Vec::new();
        let mut columns = Vec::with_capacity(headers.len());
        for name in &headers {
            if !seen.insert(name) {
                anyhow::bail!("the CSV header names the column `{name}` twice");
            }
            columns.push(match form.field(name) {
                Some(field) => Column::Field {
                    name: name.to_owned(),
                    kind: field.kind.clone(),
                },
                None if is_control(form, name) && name == PRIORITY => Column::Priority,
                None if is_control(form, name) => Column::IdempotencyKey,
                None => {
                    unknown.push(format!("`{name}`"));
                    continue;
                }
            });
        }
        if !unknown.is_empty() {
            let fields: Vec<&str> = form.fields.iter().map(|f| f.name.as_str()).collect();
            anyhow::bail!(
                "the CSV column(s) {} are not intake fields of {} version {}; its fields are \
                 {}, and `{PRIORITY}` and `{IDEMPOTENCY_KEY}` may be given too",
                unknown.join(", "),
                service.key,
                service.version,
                fields.join(", ")
            );
        }
        Ok(Self {
            reader,
            columns,
            record: csv::StringRecord::new(),
        })
    }

    fn convert(&self) -> Result<RowItem, Vec<FieldError>> {
        let mut problems = Vec::new();
        let mut data = Map::new();
        let (mut priority, mut idempotency_key) = (None, None);
        for (column, cell) in self.columns.iter().zip(self.record.iter()) {
            let cell = cell.trim();
            // An empty cell is "no value": an optional field stays unset.
            if cell.is_empty() {
                continue;
            }
            match column {
                Column::Priority => priority = Some(cell),
                Column::IdempotencyKey => idempotency_key = Some(cell),
                Column::Field { name, kind } => match cell_to_json(kind, cell) {
                    Ok(value) => {
                        data.insert(name.clone(), value);
                    }
                    Err(message) => problems.push(field_problem(name, "wrong_type", message)),
                },
            }
        }
        row_item(data, priority, idempotency_key, problems)
    }
}

impl Rows for CsvRows {
    fn next_row(&mut self) -> anyhow::Result<Option<Row>> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some(Row {
                line: self.record.position().map_or(0, csv::Position::line),
                item: self.convert(),
            })),
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                let problem = match error.kind() {
                    csv::ErrorKind::Io(_) => {
                        return Err(error).context("cannot read the CSV input");
                    }
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("has {len} cells where the header has {expected_len}"),
                    csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
                    _ => error.to_string(),
                };
                Ok(Some(Row {
                    line,
                    item: Err(vec![row_problem(problem)]),
                }))
            }
        }
    }

    fn offset(&self) -> u64 {
        self.reader.position().byte()
    }
}

struct JsonlRows {
    input: Box<dyn BufRead>,
    form: Form,
    line: u64,
    offset: u64,
    buffer: Vec<u8>,
}

impl JsonlRows {
    fn new(input: Box<dyn BufRead>, form: &Form) -> Self {
        Self {
            input,
            form: form.clone(),
            line: 0,
            offset: 0,
            buffer: Vec::new(),
        }
    }

    fn parse(&self, text: &str) -> Result<RowItem, Vec<FieldError>> {
        let mut object = match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(object)) => object,
            Ok(_) => return Err(vec![row_problem("is not a JSON object")]),
            Err(error) => return Err(vec![row_problem(format!("is not valid JSON: {error}"))]),
        };
        let mut problems = Vec::new();
        let mut control = |name: &str| {
            if !is_control(&self.form, name) {
                return None;
            }
            match object.remove(name)? {
                Json::Null => None,
                Json::String(text) => Some(text),
                other => {
                    problems.push(field_problem(
                        name,
                        "wrong_type",
                        format!("expected a string, found {other}"),
                    ));
                    None
                }
            }
        };
        let priority = control(PRIORITY);
        let idempotency_key = control(IDEMPOTENCY_KEY);
        row_item(
            object,
            priority.as_deref(),
            idempotency_key.as_deref(),
            problems,
        )
    }
}

impl Rows for JsonlRows {
    fn next_row(&mut self) -> anyhow::Result<Option<Row>> {
        loop {
            self.buffer.clear();
            let read = self
                .input
                .read_until(b'\n', &mut self.buffer)
                .context("cannot read the JSON Lines input")?;
            if read == 0 {
                return Ok(None);
            }
            self.line += 1;
            self.offset += read as u64;
            let item = match std::str::from_utf8(&self.buffer) {
                // Blank lines (a trailing one, say) are no rows.
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => self.parse(text),
                Err(_) => Err(vec![row_problem("is not valid UTF-8")]),
            };
            return Ok(Some(Row {
                line: self.line,
                item,
            }));
        }
    }

    fn offset(&self) -> u64 {
        self.offset
    }
}

/// Converts a non-empty CSV cell to the JSON value a field of type `kind` takes. Text-like
/// types stay strings for the form validation to check; only what text cannot stand for
/// is converted here.
fn cell_to_json(kind: &FieldType, cell: &str) -> Result<Json, String> {
    match kind {
        FieldType::Integer => cell
            .parse::<i64>()
            .map(Json::from)
            .map_err(|_| format!("`{cell}` is not a whole number")),
        FieldType::Boolean => match cell.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Json::Bool(true)),
            "false" | "no" | "0" => Ok(Json::Bool(false)),
            _ => Err(format!("`{cell}` is not true or false (or yes/no, 1/0)")),
        },
        FieldType::Money => match cell.split_whitespace().collect::<Vec<_>>()[..] {
            [amount, currency] => Ok(json!({"amount": amount, "currency": currency})),
            _ => Err(format!(
                "`{cell}` is not an amount and a currency such as `12.50 EUR`"
            )),
        },
        FieldType::List(of) => cell
            .split(';')
            .map(str::trim)
            .filter(|element| !element.is_empty())
            .map(|element| cell_to_json(of, element))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
        FieldType::Text
        | FieldType::LongText
        | FieldType::Decimal
        | FieldType::Date
        | FieldType::DateTime
        | FieldType::Enum
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Attachment
        | FieldType::Article => Ok(Json::String(cell.to_owned())),
    }
}

/// The inverse of [`cell_to_json`], so an exported CSV column reads back in.
fn json_to_cell(value: &Json) -> String {
    match value {
        Json::Null => String::new(),
        Json::String(text) => text.clone(),
        Json::Bool(flag) => flag.to_string(),
        Json::Number(number) => number.to_string(),
        Json::Array(elements) => elements
            .iter()
            .map(json_to_cell)
            .collect::<Vec<_>>()
            .join(";"),
        Json::Object(object) => match (object.get("amount"), object.get("currency")) {
            (Some(Json::String(amount)), Some(Json::String(currency))) if object.len() == 2 => {
                format!("{amount} {currency}")
            }
            _ => value.to_string(),
        },
    }
}

#[derive(Default)]
struct Tally {
    rows: u64,
    imported: u64,
    skipped: u64,
    /// Rows that passed a dry run.
    valid: u64,
    failed: u64,
}

struct Importer<'a> {
    store: &'a dyn Backend,
    engagement_id: EngagementId,
    intake: &'a Form,
    dry_run: bool,
    actor: Actor,
}

impl Importer<'_> {
    async fn run(&self, rows: &mut dyn Rows, progress: &ProgressBar) -> anyhow::Result<Tally> {
        let mut tally = Tally::default();
        while let Some(Row { line, item }) = rows.next_row()? {
            tally.rows += 1;
            let problems = match item {
                Ok(item) => self.submit(item, &mut tally).await.with_context(|| {
                    format!(
                        "line {line}: cannot store the row; {} rows were imported before it",
                        tally.imported
                    )
                })?,
                Err(problems) => problems,
            };
            if !problems.is_empty() {
                tally.failed += 1;
                progress.suspend(|| {
                    for problem in &problems {
                        if problem.field.is_empty() {
                            eprintln!("line {line}: {}", problem.message);
                        } else {
                            eprintln!("line {line}: {}: {}", problem.field, problem.message);
                        }
                    }
                });
            }
            progress.set_position(rows.offset());
            progress.set_message(format!("{} rows, {} failed", tally.rows, tally.failed));
        }
        Ok(tally)
    }

    /// Stores (or, in a dry run, checks) one row; its problems if it was refused. `Err` is
    /// a failure of the store, not of the row, and ends the import.
    async fn submit(&self, item: RowItem, tally: &mut Tally) -> anyhow::Result<Vec<FieldError>> {
        if self.dry_run {
            return Ok(
                match validate_form(self.intake, &item.data, Completeness::Whole) {
                    Ok(_) => {
                        tally.valid += 1;
                        Vec::new()
                    }
                    Err(problems) => problems,
                },
            );
        }
        let new = NewItem {
            engagement_id: self.engagement_id,
            data: item.data,
            priority: item.priority,
            requester_id: None,
            idempotency_key: item.idempotency_key,
        };
        match self.store.create_item(new, &self.actor).await {
            Ok(created) if created.created => tally.imported += 1,
            Ok(_) => tally.skipped += 1,
            Err(StoreError::Invalid(problems)) => return Ok(problems),
            // The engine's refusal and a key race concern this row only.
            Err(error @ (StoreError::Rejected(_) | StoreError::Conflict(_))) => {
                return Ok(vec![row_problem(error.to_string())]);
            }
            Err(error) => return Err(error.into()),
        }
        Ok(Vec::new())
    }
}

/// The columns every exported item has, in this order, before its data.
const ITEM_COLUMNS: [&str; 11] = [
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
];

fn item_values(item: &WorkItem) -> [Json; 11] {
    let position = &item.state.position;
    [
        json!(item.id()),
        json!(item.client_id),
        json!(item.engagement_id),
        json!(item.service_key),
        json!(item.service_version),
        json!(position.status()),
        json!(position.step()),
        json!(item.state.priority),
        json!(item.version),
        json!(item.created_at),
        json!(item.updated_at),
    ]
}

/// Every field an item of the service may hold: intake first, then the step forms'
/// fields, which submitted tasks merge into the data.
fn field_names(service: &ServiceDefinition) -> Vec<String> {
    let mut seen = HashSet::new();
    service
        .all_fields()
        .into_iter()
        .map(|field| field.name.as_str())
        .filter(|name| seen.insert(*name))
        .map(str::to_owned)
        .collect()
}

/// How a CSV export holds an item's data.
enum DataColumns {
    /// One column per field, in this order.
    Fields(Vec<String>),
    /// One `data` column with the JSON object, when items of several services mix.
    Json,
}

enum Sink<W: Write> {
    Jsonl(W),
    Csv {
        // Boxed: the writer's buffer would make every sink that large.
        writer: Box<csv::Writer<W>>,
        data: DataColumns,
    },
}

impl<W: Write> Sink<W> {
    /// A JSON Lines sink without `columns`, else a CSV sink with its header written.
    fn new(output: W, columns: Option<DataColumns>) -> io::Result<Self> {
        let Some(data) = columns else {
            return Ok(Sink::Jsonl(output));
        };
        let mut writer = Box::new(csv::Writer::from_writer(output));
        let header: Vec<&str> = match &data {
            DataColumns::Fields(names) => ITEM_COLUMNS
                .iter()
                .copied()
                .chain(names.iter().map(String::as_str))
                .collect(),
            DataColumns::Json => ITEM_COLUMNS.iter().copied().chain(["data"]).collect(),
        };
        writer.write_record(&header).map_err(csv_io)?;
        Ok(Sink::Csv { writer, data })
    }

    fn write(&mut self, item: &WorkItem) -> io::Result<()> {
        let values = item_values(item);
        match self {
            Sink::Jsonl(output) => {
                let mut object: Map<String, Json> = ITEM_COLUMNS
                    .iter()
                    .map(|column| (*column).to_owned())
                    .zip(values)
                    .collect();
                object.insert("data".into(), Json::Object(item.state.data.clone()));
                serde_json::to_writer(&mut *output, &object)?;
                output.write_all(b"\n")
            }
            Sink::Csv { writer, data } => {
                let mut record: Vec<String> = values.iter().map(json_to_cell).collect();
                match data {
                    DataColumns::Fields(names) => {
                        // A column per known field: anything else would be lost silently.
                        if let Some(stray) = item.state.data.keys().find(|key| !names.contains(key))
                        {
                            return Err(io::Error::other(format!(
                                "item {} has a field `{stray}` that its engagement's service \
                                 does not define; export it as jsonl",
                                item.id()
                            )));
                        }
                        record.extend(names.iter().map(|name| {
                            item.state
                                .data
                                .get(name)
                                .map_or_else(String::new, json_to_cell)
                        }));
                    }
                    DataColumns::Json => {
                        record.push(Json::Object(item.state.data.clone()).to_string())
                    }
                }
                writer.write_record(&record).map_err(csv_io)
            }
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Jsonl(mut output) => output.flush(),
            Sink::Csv { mut writer, .. } => writer.flush(),
        }
    }
}

/// Keeps the I/O error inside a CSV error, so a closed pipe is still recognised.
fn csv_io(error: csv::Error) -> io::Error {
    let message = error.to_string();
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        _ => io::Error::other(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_convert_to_the_field_types_and_back() {
        let money = FieldType::Money;
        let value = cell_to_json(&money, "12.50 EUR").unwrap();
        assert_eq!(value, json!({"amount": "12.50", "currency": "EUR"}));
        assert_eq!(json_to_cell(&value), "12.50 EUR");

        let tags = FieldType::List(Box::new(FieldType::Integer));
        let value = cell_to_json(&tags, "1; 2;;3").unwrap();
        assert_eq!(value, json!([1, 2, 3]));
        assert_eq!(json_to_cell(&value), "1;2;3");

        for (cell, flag) in [("yes", true), ("0", false), ("TRUE", true), ("No", false)] {
            assert_eq!(cell_to_json(&FieldType::Boolean, cell), Ok(json!(flag)));
        }
        assert!(cell_to_json(&FieldType::Boolean, "maybe").is_err());
        assert!(cell_to_json(&FieldType::Integer, "1.5").is_err());
        assert!(cell_to_json(&money, "12.50").is_err());
        assert_eq!(cell_to_json(&FieldType::Decimal, "1.10"), Ok(json!("1.10")));
        assert_eq!(json_to_cell(&json!({"a": 1})), r#"{"a":1}"#);
    }

    #[test]
    fn the_format_follows_the_extension() {
        assert_eq!(Format::of_path(Path::new("a/b.CSV")), Some(Format::Csv));
        assert_eq!(Format::of_path(Path::new("b.ndjson")), Some(Format::Jsonl));
        assert_eq!(Format::of_path(Path::new("b.json")), None);
        assert_eq!(Format::of_path(Path::new("-")), None);
    }
}

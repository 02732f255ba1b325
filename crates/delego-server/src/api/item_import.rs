//! Items imported from a CSV file — a campaign's contact list, say: one item per row, the
//! header naming intake fields. Each row succeeds or fails on its own, and the bad ones are
//! reported by row and field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use delego_core::definition::FieldType;
use delego_core::values::Priority;
use serde::Serialize;
use serde_json::{Map, Value as Json, json};
use utoipa::ToSchema;

use super::csv_upload::{CsvUpload, Row};
use super::items::{NewItemBody, submit_item, visible_engagement};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};

/// At most this many data rows per file.
const MAX_IMPORT_ROWS: usize = 1000;

/// What an import did.
#[derive(Serialize, ToSchema)]
pub struct ItemImportReport {
    /// Data rows read, the header not counted.
    rows: usize,
    /// Items made.
    created: usize,
    /// Rows whose item an earlier import with the same `Idempotency-Key` made.
    repeated: usize,
    /// Each row's item, for the rows that have one.
    items: Vec<ImportedRow>,
    /// The rows left out, with each problem.
    errors: Vec<ImportRowError>,
}

#[derive(Serialize, ToSchema)]
pub struct ImportedRow {
    /// The row's line in the file, the header being row 1.
    row: u64,
    id: String,
    /// 201 made now, 200 made by an earlier import.
    status: u16,
}

#[derive(Serialize, ToSchema)]
pub struct ImportRowError {
    /// The row's line in the file, the header being row 1.
    row: u64,
    /// The field (column) at fault; absent when the row itself cannot be read.
    field: Option<String>,
    /// `required`, `invalid`, `not_allowed`, … as for a single item; `unreadable` for a
    /// row that cannot be read.
    code: String,
    message: String,
}

/// Imports items from CSV (`Content-Type: text/csv`): a header row of intake field names
/// (and optionally `priority`), then one item per row. Empty cells leave a field unset;
/// an integer, a boolean (`true`/`false`), money (`12.50 EUR`) and a list (elements
/// separated by `;`) are read from their text. The good rows become items; each bad row is
/// reported with its problems. With an `Idempotency-Key`, each row's item is made once:
/// sending the same file with the same key again makes none twice.
#[utoipa::path(post, path = "/engagements/{id}/items/import", tag = "items",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body(content = String, description = "CSV with a header row of intake fields", content_type = "text/csv"),
    responses((status = 200, body = ItemImportReport), (status = 404, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn import_items(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<axum::Json<ItemImportReport>> {
    let engagement = visible_engagement(&state, &caller, &id).await?;
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/csv"));
    if !is_csv {
        return Err(ApiError::UnsupportedMediaType(
            "send the rows as CSV with `Content-Type: text/csv`".into(),
        ));
    }
    let batch_key = super::items::idempotency_key(&headers)?;
    let body = body.map_err(crate::json::body_error)?;
    let definition = state
        .store
        .service(&engagement.service_key, engagement.service_version)
        .await?;

    let header_problem = |code: &str, message: String| ApiError::field("header", code, message);
    let (mut upload, columns) = CsvUpload::open(body.as_ref(), MAX_IMPORT_ROWS)?;
    // Each column's field type; `None` for the priority column.
    let mut kinds: Vec<Option<FieldType>> = Vec::with_capacity(columns.len());
    for (n, name) in columns.iter().enumerate() {
        if columns[..n].contains(name) {
            return Err(header_problem(
                "invalid",
                format!("the column `{name}` is named twice"),
            ));
        }
        if name == "priority" {
            kinds.push(None);
            continue;
        }
        let field = definition.intake.field(name).ok_or_else(|| {
            header_problem(
                "unknown_field",
                format!(
                    "column {}: `{name}` is not an intake field of the service",
                    n + 1
                ),
            )
        })?;
        kinds.push(Some(field.kind.clone()));
    }

    let mut report = ItemImportReport {
        rows: 0,
        created: 0,
        repeated: 0,
        items: Vec::new(),
        errors: Vec::new(),
    };
    while let Some(next) = upload.next_row()? {
        let (row, record) = match next {
            Row::Read { line, cells } => (line, cells),
            Row::Unreadable { line, message } => {
                report.errors.push(ImportRowError {
                    row: line,
                    field: None,
                    code: "unreadable".into(),
                    message,
                });
                continue;
            }
        };
        let mut data = Map::new();
        let mut priority = None;
        let mut problems = Vec::new();
        for ((name, kind), cell) in columns.iter().zip(&kinds).zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            match kind {
                Some(kind) => {
                    data.insert(name.clone(), cell_value(kind, cell));
                }
                None => match cell.parse::<Priority>() {
                    Ok(parsed) => priority = Some(parsed),
                    Err(_) => problems.push(ImportRowError {
                        row,
                        field: Some(name.clone()),
                        code: "not_allowed".into(),
                        message: "the priority is `low`, `normal`, `high` or `urgent`".into(),
                    }),
                },
            }
        }
        if !problems.is_empty() {
            report.errors.extend(problems);
            continue;
        }
        let body = NewItemBody { data, priority };
        let key = batch_key.as_ref().map(|key| format!("{key}:{row}"));
        match submit_item(&state, &caller, &engagement, body, key).await {
            Ok(created) => {
                if created.created {
                    report.created += 1;
                } else {
                    report.repeated += 1;
                }
                report.items.push(ImportedRow {
                    row,
                    id: created.value.id().to_string(),
                    status: if created.created { 201 } else { 200 },
                });
            }
            // A bad row fails alone.
            Err(ApiError::Validation { errors, .. }) => {
                report
                    .errors
                    .extend(errors.into_iter().map(|error| ImportRowError {
                        row,
                        field: Some(error.field),
                        code: error.code,
                        message: error.message,
                    }));
            }
            Err(other) => return Err(other),
        }
    }
    report.rows = upload.rows();
    Ok(axum::Json(report))
}

/// A cell's text as the JSON the field's type takes; what cannot be read is passed on as
/// text, for the form's validation to report.
fn cell_value(kind: &FieldType, cell: &str) -> Json {
    let text = || Json::String(cell.to_owned());
    match kind {
        FieldType::Integer => cell.parse::<i64>().map_or_else(|_| text(), Json::from),
        FieldType::Boolean => match cell.to_ascii_lowercase().as_str() {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => text(),
        },
        FieldType::Money => match cell.split_whitespace().collect::<Vec<_>>()[..] {
            [amount, currency] => json!({"amount": amount, "currency": currency}),
            _ => text(),
        },
        FieldType::List(item) => Json::Array(
            cell.split(';')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(|part| cell_value(item, part))
                .collect(),
        ),
        _ => text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_read_by_the_field_type() {
        assert_eq!(cell_value(&FieldType::Integer, "42"), json!(42));
        assert_eq!(cell_value(&FieldType::Integer, "4x"), json!("4x"));
        assert_eq!(cell_value(&FieldType::Boolean, "TRUE"), json!(true));
        assert_eq!(
            cell_value(&FieldType::Money, "12.50 EUR"),
            json!({"amount": "12.50", "currency": "EUR"})
        );
        assert_eq!(cell_value(&FieldType::Money, "12.50"), json!("12.50"));
        assert_eq!(
            cell_value(&FieldType::List(Box::new(FieldType::Enum)), "a; b;"),
            json!(["a", "b"])
        );
        assert_eq!(cell_value(&FieldType::Phone, "+421 905"), json!("+421 905"));
    }
}

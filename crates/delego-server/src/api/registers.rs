//! Registers: a client's reference data that items' fields name (its asset register, say),
//! read and written an entry at a time or imported from CSV; and the provider-wide entries
//! that every client's lookups fall back to.
//!
//! Managers and admins write any register and alone see the provider-wide ones; a client
//! user writes its own client's registers; other staff read the registers of the clients
//! they are cleared for. Another client's register answers 404 like an unknown client's.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use delego_core::id::ClientId;
use delego_core::identity::Role;
use delego_core::model::{RegisterEntry, WorkItem};
use delego_core::values::Key;
use delego_store::{NewEntry, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};

use super::csv_upload::{CsvUpload, Row};
use super::{in_scope, parse_id};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;

/// The most data rows one import may have.
const MAX_IMPORT_ROWS: usize = 10_000;

/// The register a request is about: a client's, or the provider's (`client` is `None`).
struct Register {
    name: Key,
    client: Option<ClientId>,
}

/// A client's register, if the caller may see it (and change it, for a write).
async fn client_register(
    state: &AppState,
    caller: &Caller,
    client: &str,
    register: &str,
    write: bool,
) -> ApiResult<Register> {
    let client: ClientId = parse_id(client, "register")?;
    in_scope(caller, client, (), "register")?;
    state.store.client(client).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::NotFound("register"),
        other => other.into(),
    })?;
    let name = Key::parse(register).map_err(|_| ApiError::NotFound("register"))?;
    if write && !caller.role().manages() && caller.role() != Role::ClientUser {
        return Err(ApiError::Forbidden(
            "only managers and the client's own users change its registers".into(),
        ));
    }
    Ok(Register {
        name,
        client: Some(client),
    })
}

/// A provider-wide register: managers only.
fn provider_register(caller: &Caller, register: &str) -> ApiResult<Register> {
    caller.require_manager()?;
    let name = Key::parse(register).map_err(|_| ApiError::NotFound("register"))?;
    Ok(Register { name, client: None })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 200, default 50.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct EntryPage {
    /// In key order.
    #[schema(value_type = Vec<Object>)]
    entries: Vec<RegisterEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    /// The entry's data, e.g. `{"model": "ThinkPad X1", "owner": "eva@client.example"}`.
    #[schema(value_type = Object)]
    data: Map<String, Json>,
}

/// What an import did.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct ImportReport {
    /// Data rows read, the header not counted.
    rows: usize,
    /// Entries added or replaced.
    imported: usize,
    /// The rows left out, and why.
    errors: Vec<RowError>,
}

#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct RowError {
    /// The row's line in the file, the header being row 1.
    row: u64,
    message: String,
}

async fn list(
    state: &AppState,
    register: Register,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<EntryPage>> {
    let Query(query) = query.map_err(|e| ApiError::field("query", "invalid", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range", "use 1 to 200"));
    }
    let entries = state
        .store
        .register_entries(
            &register.name,
            register.client,
            query.cursor.as_deref(),
            limit,
        )
        .await?;
    let next_cursor = (entries.len() == limit as usize)
        .then(|| entries.last().map(|entry| entry.key.clone()))
        .flatten();
    Ok(axum::Json(EntryPage {
        entries,
        next_cursor,
    }))
}

async fn get(
    state: &AppState,
    register: Register,
    key: &str,
) -> ApiResult<axum::Json<RegisterEntry>> {
    Ok(axum::Json(
        state
            .store
            .register_entry(&register.name, register.client, key)
            .await?,
    ))
}

async fn put(
    state: &AppState,
    caller: &Caller,
    register: Register,
    key: String,
    body: EntryBody,
) -> ApiResult<axum::Json<RegisterEntry>> {
    let entry = NewEntry {
        key,
        data: body.data,
    };
    let mut written = state
        .store
        .upsert_register_entries(
            &register.name,
            register.client,
            vec![entry],
            &caller.actor(),
        )
        .await
        .map_err(|e| match e {
            // The only entry's key is the path's.
            StoreError::Invalid(errors) => ApiError::field(
                "key",
                "invalid",
                errors
                    .into_iter()
                    .next()
                    .map(|e| e.message)
                    .unwrap_or_default(),
            ),
            other => other.into(),
        })?;
    written
        .pop()
        .map(axum::Json)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("an upsert wrote no entry")))
}

async fn delete(
    state: &AppState,
    caller: &Caller,
    register: Register,
    key: &str,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_register_entry(&register.name, register.client, key, &caller.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn import(
    state: &AppState,
    caller: &Caller,
    register: Register,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<axum::Json<ImportReport>> {
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
    let body = body.map_err(crate::json::body_error)?;
    let (entries, mut report) = read_csv(&body)?;
    let written = state
        .store
        .upsert_register_entries(&register.name, register.client, entries, &caller.actor())
        .await?;
    report.imported = written.len();
    Ok(axum::Json(report))
}

/// The entries of a CSV file whose header row has a `key` column (in any case): each other
/// column becomes a text value of the entry's data, empty cells none. A row that cannot be
/// an entry is reported and left out; a header that cannot be read refuses the file.
fn read_csv(body: &[u8]) -> ApiResult<(Vec<NewEntry>, ImportReport)> {
    let header_problem = |message: String| ApiError::field("header", "invalid", message);
    let (mut upload, columns) = CsvUpload::open(body, MAX_IMPORT_ROWS)?;
    let key_column = columns
        .iter()
        .position(|name| name.eq_ignore_ascii_case("key"))
        .ok_or_else(|| header_problem("the header row needs a `key` column".into()))?;
    for (n, name) in columns.iter().enumerate() {
        if name.is_empty() {
            return Err(header_problem(format!("column {} has no name", n + 1)));
        }
        if columns[..n]
            .iter()
            .any(|earlier| earlier.eq_ignore_ascii_case(name))
        {
            return Err(header_problem(format!(
                "the column `{name}` is named twice"
            )));
        }
    }

    let mut entries: Vec<NewEntry> = Vec::new();
    // The row each key was first read in, by its matching form.
    let mut first_rows: std::collections::HashMap<String, u64> = Default::default();
    let mut report = ImportReport {
        rows: 0,
        imported: 0,
        errors: Vec::new(),
    };
    while let Some(next) = upload.next_row()? {
        let (row, record) = match next {
            Row::Read { line, cells } => (line, cells),
            Row::Unreadable { line, message } => {
                report.errors.push(RowError { row: line, message });
                continue;
            }
        };
        let key = match RegisterEntry::parse_key(&record[key_column]) {
            Ok(key) => key,
            Err(error) => {
                let message = format!("the `key` column: {}", error.0);
                report.errors.push(RowError { row, message });
                continue;
            }
        };
        if let Some(first) = first_rows.get(&RegisterEntry::match_key(&key)) {
            let message = format!("the key `{key}` is already in row {first}");
            report.errors.push(RowError { row, message });
            continue;
        }
        first_rows.insert(RegisterEntry::match_key(&key), row);
        let data = columns
            .iter()
            .zip(record.iter())
            .enumerate()
            .filter(|(n, (_, cell))| *n != key_column && !cell.is_empty())
            .map(|(_, (name, cell))| (name.clone(), Json::String(cell.to_owned())))
            .collect();
        entries.push(NewEntry { key, data });
    }
    report.rows = upload.rows();
    Ok((entries, report))
}

/// The entries of a client's register, a page at a time in key order.
#[utoipa::path(get, path = "/clients/{id}/registers/{register}/entries", tag = "registers",
    params(("id" = String, Path), ("register" = String, Path), PageQuery),
    responses((status = 200, body = EntryPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list_client_entries(
    State(state): State<AppState>,
    caller: Caller,
    Path((client, register)): Path<(String, String)>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<EntryPage>> {
    let register = client_register(&state, &caller, &client, &register, false).await?;
    list(&state, register, query).await
}

/// One entry of a client's register; keys match whatever their case.
#[utoipa::path(get, path = "/clients/{id}/registers/{register}/entries/{key}", tag = "registers",
    params(("id" = String, Path), ("register" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn get_client_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((client, register, key)): Path<(String, String, String)>,
) -> ApiResult<axum::Json<RegisterEntry>> {
    let register = client_register(&state, &caller, &client, &register, false).await?;
    get(&state, register, &key).await
}

/// Adds or replaces an entry of a client's register (managers, and the client's users).
#[utoipa::path(put, path = "/clients/{id}/registers/{register}/entries/{key}", tag = "registers",
    params(("id" = String, Path), ("register" = String, Path), ("key" = String, Path)),
    request_body = EntryBody,
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn put_client_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((client, register, key)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<EntryBody>,
) -> ApiResult<axum::Json<RegisterEntry>> {
    let register = client_register(&state, &caller, &client, &register, true).await?;
    put(&state, &caller, register, key, body).await
}

/// Removes an entry of a client's register (managers, and the client's users).
#[utoipa::path(delete, path = "/clients/{id}/registers/{register}/entries/{key}", tag = "registers",
    params(("id" = String, Path), ("register" = String, Path), ("key" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_client_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((client, register, key)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let register = client_register(&state, &caller, &client, &register, true).await?;
    delete(&state, &caller, register, &key).await
}

/// Imports a CSV file into a client's register (managers, and the client's users): a
/// header row with a `key` column, whose other columns become each entry's data. Entries
/// are added or replaced; the rows that cannot be entries are reported and left out.
#[utoipa::path(post, path = "/clients/{id}/registers/{register}/import", tag = "registers",
    params(("id" = String, Path), ("register" = String, Path)),
    request_body(content = String, description = "CSV with a header row", content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn import_client_entries(
    State(state): State<AppState>,
    caller: Caller,
    Path((client, register)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<axum::Json<ImportReport>> {
    let register = client_register(&state, &caller, &client, &register, true).await?;
    import(&state, &caller, register, &headers, body).await
}

/// The entries of a provider-wide register (managers), a page at a time in key order.
#[utoipa::path(get, path = "/registers/{register}/entries", tag = "registers",
    params(("register" = String, Path), PageQuery),
    responses((status = 200, body = EntryPage), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list_entries(
    State(state): State<AppState>,
    caller: Caller,
    Path(register): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<EntryPage>> {
    list(&state, provider_register(&caller, &register)?, query).await
}

/// One entry of a provider-wide register (managers).
#[utoipa::path(get, path = "/registers/{register}/entries/{key}", tag = "registers",
    params(("register" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((register, key)): Path<(String, String)>,
) -> ApiResult<axum::Json<RegisterEntry>> {
    get(&state, provider_register(&caller, &register)?, &key).await
}

/// Adds or replaces an entry of a provider-wide register (managers): every client's items
/// may name it.
#[utoipa::path(put, path = "/registers/{register}/entries/{key}", tag = "registers",
    params(("register" = String, Path), ("key" = String, Path)), request_body = EntryBody,
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((register, key)): Path<(String, String)>,
    ApiJson(body): ApiJson<EntryBody>,
) -> ApiResult<axum::Json<RegisterEntry>> {
    let register = provider_register(&caller, &register)?;
    put(&state, &caller, register, key, body).await
}

/// Removes an entry of a provider-wide register (managers).
#[utoipa::path(delete, path = "/registers/{register}/entries/{key}", tag = "registers",
    params(("register" = String, Path), ("key" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_entry(
    State(state): State<AppState>,
    caller: Caller,
    Path((register, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete(
        &state,
        &caller,
        provider_register(&caller, &register)?,
        &key,
    )
    .await
}

/// Imports a CSV file into a provider-wide register (managers), as a client's import does.
#[utoipa::path(post, path = "/registers/{register}/import", tag = "registers",
    params(("register" = String, Path)),
    request_body(content = String, description = "CSV with a header row", content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 403, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn import_entries(
    State(state): State<AppState>,
    caller: Caller,
    Path(register): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<axum::Json<ImportReport>> {
    let register = provider_register(&caller, &register)?;
    import(&state, &caller, register, &headers, body).await
}

/// The entries an item's register fields name, by field: `None` for a value whose entry
/// is gone since. Fields left unset are left out.
pub(crate) async fn named_entries(
    state: &AppState,
    item: &WorkItem,
) -> ApiResult<BTreeMap<String, Option<RegisterEntry>>> {
    let definition = state
        .store
        .service(&item.service_key, item.service_version)
        .await?;
    let mut named = BTreeMap::new();
    for field in definition.all_fields() {
        let Some(register) = &field.rules.register else {
            continue;
        };
        let value = item
            .state
            .data
            .get(field.name.as_str())
            .and_then(Json::as_str);
        let Some(key) = value.filter(|key| !key.trim().is_empty()) else {
            continue;
        };
        let entry = state
            .store
            .lookup_register_entry(register, item.client_id, key)
            .await?;
        named.insert(field.name.to_string(), entry);
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(csv: &str) -> (Vec<(String, Json)>, ImportReport) {
        let (entries, report) = read_csv(csv.as_bytes()).unwrap();
        let entries = entries
            .into_iter()
            .map(|e| (e.key, Json::Object(e.data)))
            .collect();
        (entries, report)
    }

    #[test]
    fn a_csv_becomes_entries_and_each_bad_row_is_reported_with_its_line() {
        let (entries, report) = rows(
            "Key, model ,owner\n\
             LAP-0042, X1 ,eva\n\
             ,T14,joe\n\
             SRV-1,R740\n\
             lap-0042,X1 Carbon,eva\n\
             PRN-7,\"Laser\nJet\",\n\
             SW-9,Office,ann\n\
             bad\tkey,x,y\n",
        );
        assert_eq!(
            entries,
            [
                (
                    "LAP-0042".into(),
                    serde_json::json!({"model": "X1", "owner": "eva"})
                ),
                ("PRN-7".into(), serde_json::json!({"model": "Laser\nJet"})),
                (
                    "SW-9".into(),
                    serde_json::json!({"model": "Office", "owner": "ann"})
                ),
            ]
        );
        let errors: Vec<(u64, &str)> = report
            .errors
            .iter()
            .map(|e| (e.row, e.message.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                (
                    3,
                    "the `key` column: a key is 1 to 200 characters without control characters"
                ),
                (4, "has 2 cells where the header has 3"),
                (5, "the key `lap-0042` is already in row 2"),
                (
                    9,
                    "the `key` column: a key is 1 to 200 characters without control characters"
                ),
            ]
        );
        assert_eq!(report.rows, 7);
    }

    #[test]
    fn a_csv_needs_a_header_with_a_key_column_and_distinct_names() {
        for (csv, expected) in [
            ("asset,model\nA,B\n", "needs a `key` column"),
            (
                "key,model,Model\nA,B,C\n",
                "the column `Model` is named twice",
            ),
            ("key,,model\nA,B,C\n", "column 2 has no name"),
        ] {
            match read_csv(csv.as_bytes()) {
                Err(ApiError::Validation { errors, .. }) => {
                    assert_eq!(errors[0].field, "header");
                    assert!(errors[0].message.contains(expected), "{errors:?}");
                }
                other => panic!("{csv}: {other:?}"),
            }
        }
    }
}

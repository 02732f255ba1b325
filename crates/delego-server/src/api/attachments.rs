//! Attachments: files uploaded to an item, their metadata and their content, and the check
//! that form fields of type attachment name attachments of the item's own client.
//!
//! The content goes to the [`crate::blobs::BlobStore`] first and the metadata to the store
//! after, so a crash in between leaves at most an unreferenced file, never metadata whose
//! content is missing.

use std::io;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use delego_core::definition::{FieldError, FieldType, Form};
use delego_core::id::{AttachmentId, ClientId, WorkItemId};
use delego_core::model::{Actor, Attachment, WorkItem};
use delego_store::StoreError;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};

use super::{in_scope, parse_id};
use crate::AppState;
use crate::auth::Caller;
use crate::blobs::{BlobError, ByteStream};
use crate::error::{ApiError, ApiResult, Problem};

/// An attachment's metadata as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct AttachmentView {
    #[schema(value_type = String)]
    id: AttachmentId,
    #[schema(value_type = String)]
    client_id: ClientId,
    #[schema(value_type = Option<String>)]
    item_id: Option<WorkItemId>,
    filename: String,
    content_type: String,
    /// In bytes.
    size: u64,
    /// Hex SHA-256 of the content; also the download's `ETag`.
    sha256: String,
    #[schema(value_type = Object)]
    uploaded_by: Actor,
    #[schema(value_type = String, format = DateTime)]
    created_at: jiff::Timestamp,
    /// Where the content is downloaded.
    content_url: String,
}

impl From<Attachment> for AttachmentView {
    fn from(a: Attachment) -> Self {
        Self {
            content_url: format!("/api/v1/attachments/{}/content", a.id),
            id: a.id,
            client_id: a.client_id,
            item_id: a.item_id,
            filename: a.filename,
            content_type: a.content_type,
            size: a.size,
            sha256: a.sha256,
            uploaded_by: a.uploaded_by,
            created_at: a.created_at,
        }
    }
}

/// The types accepted, by their MIME essence (lower case, without parameters).
const ALLOWED_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/tiff",
    "text/plain",
    "text/csv",
    "application/json",
    "application/xml",
    "text/xml",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/msword",
    "application/vnd.ms-excel",
    "message/rfc822",
];

/// How many leading bytes are read before storing, to check the content against its type.
const SNIFF_LEN: usize = 1024;

/// The most attachment ids one list field may name; each costs a lookup.
const MAX_CHECKED_IDS: usize = 100;

async fn visible_item(state: &AppState, caller: &Caller, raw: &str) -> ApiResult<WorkItem> {
    let item = state.store.item(parse_id(raw, "work item")?).await?;
    in_scope(caller, item.client_id, item.clone(), "work item")
}

async fn visible_attachment(state: &AppState, caller: &Caller, raw: &str) -> ApiResult<Attachment> {
    let attachment = state.store.attachment(parse_id(raw, "attachment")?).await?;
    in_scope(
        caller,
        attachment.client_id,
        attachment.clone(),
        "attachment",
    )
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name: 1 to 255 characters, without `/`, `\` or control characters.
    filename: Option<String>,
}

/// Uploads a file to an item. The raw request body is the file and `Content-Type` its
/// type; PDF, images, text, CSV, JSON, XML, ZIP, Office and OpenDocument files and e-mail
/// messages are accepted, up to the server's size limit.
#[utoipa::path(post, path = "/items/{id}/attachments", tag = "attachments",
    params(("id" = String, Path), UploadQuery),
    request_body(content = Vec<u8>, description = "The file's bytes", content_type = "application/octet-stream"),
    responses((status = 201, body = AttachmentView), (status = 404, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // Scope first: nothing about the request is judged for an item the caller cannot see.
    let item = visible_item(&state, &caller, &id).await?;
    let Query(query) = query.map_err(|e| ApiError::field("query", "invalid", e.body_text()))?;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default());
    let attachment = store_file(
        &state,
        caller.actor(),
        &item,
        query.filename,
        content_type,
        announced,
        body.into_data_stream(),
    )
    .await?;
    let location = format!("/api/v1/attachments/{}", attachment.id);
    let mut response = (
        StatusCode::CREATED,
        axum::Json(AttachmentView::from(attachment)),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A file's name and declared type, if both are acceptable.
pub(crate) fn accepted_file(
    filename: Option<String>,
    content_type: Option<&str>,
) -> ApiResult<(String, String)> {
    Ok((
        checked_filename(filename)?,
        allowed_content_type(content_type)?,
    ))
}

/// Stores one file of `item` (the content first, then its metadata) after checking its
/// name, its declared type, its size (`announced`, if known before the content, and as
/// streamed) and that its first bytes fit its type. The upload API and the portal's
/// intake form both store files through it.
pub(crate) async fn store_file<S>(
    state: &AppState,
    uploaded_by: Actor,
    item: &WorkItem,
    filename: Option<String>,
    content_type: Option<&str>,
    announced: Option<u64>,
    mut content: S,
) -> ApiResult<Attachment>
where
    S: futures_util::Stream<Item = Result<Bytes, axum::Error>> + Send + Unpin + 'static,
{
    let (filename, content_type) = accepted_file(filename, content_type)?;
    let limit = state.config.max_attachment_bytes;
    if let Some(length) = announced
        && length > limit
    {
        return Err(too_large(limit));
    }

    let mut head = Vec::new();
    while head.len() < SNIFF_LEN {
        match content.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(error)) => return Err(broken_upload(&error)),
            None => break,
        }
    }
    check_content(&content_type, &head)?;
    let rest = content.map_err(|error| io::Error::other(BrokenUpload(error)));
    let content: ByteStream =
        Box::pin(futures_util::stream::once(std::future::ready(Ok(Bytes::from(head)))).chain(rest));

    let attachment_id = AttachmentId::new();
    let stored = state
        .blobs
        .put(attachment_id, content, limit)
        .await
        .map_err(|error| match error {
            BlobError::TooLarge { limit } => too_large(limit),
            BlobError::Io(error) if error.get_ref().is_some_and(|e| e.is::<BrokenUpload>()) => {
                broken_upload(&error)
            }
            other => ApiError::Internal(anyhow::anyhow!("storing an attachment: {other}")),
        })?;
    let attachment = Attachment {
        id: attachment_id,
        client_id: item.client_id,
        item_id: Some(item.id()),
        filename,
        content_type,
        size: stored.size,
        sha256: stored.sha256,
        uploaded_by,
        created_at: state.clock.now(),
    };
    if let Err(error) = state.store.create_attachment(&attachment).await {
        // Best effort: what is left is an unreferenced file, harmless.
        if let Err(cleanup) = state.blobs.delete(attachment_id).await {
            tracing::warn!(attachment = %attachment_id, error = %cleanup, "cannot remove an unrecorded attachment");
        }
        return Err(error.into());
    }
    Ok(attachment)
}

/// Refuses an empty file, and one whose first bytes (`head`) do not fit its type.
pub(crate) fn check_content(content_type: &str, head: &[u8]) -> ApiResult<()> {
    if head.is_empty() {
        return Err(ApiError::field(
            "body",
            "required",
            "the file is empty; send its bytes as the request body",
        ));
    }
    check_signature(content_type, head)
}

/// A failure reading the request body, told apart from a failure writing the file.
#[derive(Debug, thiserror::Error)]
#[error("the upload broke off: {0}")]
struct BrokenUpload(axum::Error);

fn broken_upload(error: &dyn std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("cannot read the file: {error}"))
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the file is larger than {limit} bytes, the most accepted"
    ))
}

fn checked_filename(filename: Option<String>) -> ApiResult<String> {
    let Some(filename) = filename.filter(|f| !f.is_empty()) else {
        return Err(ApiError::field(
            "filename",
            "required",
            "name the file in the `filename` query parameter",
        ));
    };
    if filename.chars().count() > 255 {
        return Err(ApiError::field(
            "filename",
            "too_long",
            "use at most 255 characters",
        ));
    }
    // A name is shown and offered for saving, never used as a path here; still, a path or
    // control characters in it can only mislead whoever saves it.
    if filename
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
        || filename == "."
        || filename == ".."
    {
        return Err(ApiError::field(
            "filename",
            "invalid",
            "a file name has no `/`, `\\` or control characters",
        ));
    }
    Ok(filename)
}

fn allowed_content_type(declared: Option<&str>) -> ApiResult<String> {
    let Some(value) = declared else {
        return Err(ApiError::UnsupportedMediaType(
            "send the file's type in `Content-Type`, e.g. `application/pdf`".into(),
        ));
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if ALLOWED_TYPES.contains(&essence.as_str()) {
        Ok(essence)
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "files of type `{essence}` are not accepted; send PDF, PNG, JPEG, GIF, WebP or TIFF \
             images, plain text, CSV, JSON, XML, ZIP, Word, Excel, PowerPoint, OpenDocument \
             or e-mail (message/rfc822) files"
        )))
    }
}

/// Refuses content that plainly is not of its declared type, from its first bytes. Only
/// types with a fixed signature are checked; text has none.
fn check_signature(content_type: &str, head: &[u8]) -> ApiResult<()> {
    const ZIP: &[&[u8]] = &[b"PK\x03\x04", b"PK\x05\x06"];
    const OLE: &[&[u8]] = &[b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"];
    let (name, fits) = match content_type {
        "image/png" => ("PNG", head.starts_with(b"\x89PNG\r\n\x1a\n")),
        // Readers accept a PDF header anywhere in the first kilobyte.
        "application/pdf" => ("PDF", head.windows(5).any(|w| w == b"%PDF-")),
        "image/jpeg" => ("JPEG", head.starts_with(b"\xff\xd8\xff")),
        "image/gif" => (
            "GIF",
            head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a"),
        ),
        "image/webp" => (
            "WebP",
            head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP".as_slice()),
        ),
        "image/tiff" => (
            "TIFF",
            head.starts_with(b"II*\0") || head.starts_with(b"MM\0*"),
        ),
        "application/msword" | "application/vnd.ms-excel" => {
            ("Office 97–2003", OLE.iter().any(|s| head.starts_with(s)))
        }
        zipped
            if zipped == "application/zip"
                || zipped.starts_with("application/vnd.openxmlformats-officedocument.")
                || zipped.starts_with("application/vnd.oasis.opendocument.") =>
        {
            ("ZIP-based", ZIP.iter().any(|s| head.starts_with(s)))
        }
        _ => return Ok(()),
    };
    if fits {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "the file is declared as `{content_type}` but does not start like a {name} file; \
             send it with its real type"
        )))
    }
}

/// Lists an item's attachments, oldest first.
#[utoipa::path(get, path = "/items/{id}/attachments", tag = "attachments", params(("id" = String, Path)),
    responses((status = 200, body = Vec<AttachmentView>), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<AttachmentView>>> {
    let item = visible_item(&state, &caller, &id).await?;
    let attachments = state.store.attachments_of_item(item.id()).await?;
    Ok(axum::Json(
        attachments.into_iter().map(Into::into).collect(),
    ))
}

/// One attachment's metadata.
#[utoipa::path(get, path = "/attachments/{id}", tag = "attachments", params(("id" = String, Path)),
    responses((status = 200, body = AttachmentView), (status = 404, body = Problem)))]
pub async fn get_attachment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AttachmentView>> {
    Ok(axum::Json(
        visible_attachment(&state, &caller, &id).await?.into(),
    ))
}

/// Downloads an attachment's content, streamed, as a file to save (never to render inline).
#[utoipa::path(get, path = "/attachments/{id}/content", tag = "attachments", params(("id" = String, Path)),
    responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream"),
        (status = 404, body = Problem)))]
pub async fn content(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let attachment = visible_attachment(&state, &caller, &id).await?;
    let blob = state.blobs.open(attachment.id).await.map_err(|error| {
        ApiError::Internal(anyhow::anyhow!(
            "the content of attachment {}: {error}",
            attachment.id
        ))
    })?;
    if blob.size != attachment.size {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "attachment {} has {} bytes stored but {} recorded",
            attachment.id,
            blob.size,
            attachment.size
        )));
    }
    let mut response = Body::from_stream(blob.content).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&attachment.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
    if let Ok(disposition) = HeaderValue::from_str(&format!(
        "attachment; filename*=UTF-8''{}",
        percent_encode(&attachment.filename)
    )) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{}\"", attachment.sha256)) {
        headers.insert(header::ETAG, tag);
    }
    // Browsers must not guess a type (an "image" that is really HTML), and shared caches
    // must not keep one client's files.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    Ok(response)
}

/// RFC 8187 encoding of a header parameter value: UTF-8, with every byte outside
/// `attr-char` as `%XX`.
fn percent_encode(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Refuses values of `form`'s attachment fields in `data` that do not name an attachment
/// of `client`: an unknown id and another client's look the same. Values that are not
/// attachment ids at all are left to the form validation, which names them.
pub async fn check_attachment_fields(
    state: &AppState,
    client: ClientId,
    form: &Form,
    data: &Map<String, Json>,
) -> ApiResult<()> {
    let mut errors = Vec::new();
    for field in &form.fields {
        let Some(value) = data.get(field.name.as_str()) else {
            continue;
        };
        let name = field.name.as_str();
        let named: Vec<(String, &Json)> = match (&field.kind, value) {
            (FieldType::Attachment, value) => vec![(name.to_owned(), value)],
            (FieldType::List(element), Json::Array(values))
                if **element == FieldType::Attachment =>
            {
                if values.len() > MAX_CHECKED_IDS {
                    errors.push(FieldError {
                        field: name.to_owned(),
                        code: "too_many_items".into(),
                        message: format!("name at most {MAX_CHECKED_IDS} attachments"),
                    });
                    continue;
                }
                values
                    .iter()
                    .enumerate()
                    .map(|(index, value)| (format!("{name}[{index}]"), value))
                    .collect()
            }
            _ => continue,
        };
        for (path, value) in named {
            let Some(id) = value.as_str().and_then(|s| s.parse::<AttachmentId>().ok()) else {
                continue;
            };
            let owner = match state.store.attachment(id).await {
                Ok(attachment) => Some(attachment.client_id),
                Err(StoreError::NotFound(_)) => None,
                Err(other) => return Err(other.into()),
            };
            if owner != Some(client) {
                errors.push(FieldError {
                    field: path,
                    code: "unknown".into(),
                    message: "no such attachment on this client".into(),
                });
            }
        }
    }
    match errors.as_slice() {
        [] => Ok(()),
        [one] => Err(ApiError::Validation {
            detail: format!("`{}`: {}", one.field, one.message),
            errors,
        }),
        many => Err(ApiError::Validation {
            detail: format!("{} fields have problems", many.len()),
            errors,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_encoded_for_content_disposition() {
        assert_eq!(percent_encode("report.pdf"), "report.pdf");
        assert_eq!(
            percent_encode("faktúra 3/\"x\";.pdf"),
            "fakt%C3%BAra%203%2F%22x%22%3B.pdf"
        );
    }

    #[test]
    fn signatures_catch_the_obvious_mismatch_and_leave_text_alone() {
        assert!(check_signature("image/png", b"\x89PNG\r\n\x1a\nrest").is_ok());
        assert!(check_signature("image/png", b"GIF89a").is_err());
        assert!(check_signature("application/pdf", b"%PDF-1.7\n").is_ok());
        assert!(check_signature("application/pdf", b"\xef\xbb\xbf%PDF-1.4").is_ok());
        assert!(check_signature("application/pdf", b"<html>").is_err());
        assert!(check_signature("image/webp", b"RIFF\x10\0\0\0WEBPVP8 ").is_ok());
        assert!(check_signature("image/webp", b"RIFF\x10\0\0\0WAVEfmt ").is_err());
        assert!(
            check_signature(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                b"PK\x03\x04"
            )
            .is_ok()
        );
        assert!(check_signature("application/zip", b"MZ\x90\0").is_err());
        assert!(check_signature("text/plain", b"\x89PNG").is_ok());
    }

    #[test]
    fn filenames_must_be_plain_names() {
        assert_eq!(
            checked_filename(Some("a b.pdf".into())).ok().as_deref(),
            Some("a b.pdf")
        );
        for bad in [
            None,
            Some(""),
            Some("../x"),
            Some("a\\b"),
            Some("a\nb"),
            Some(".."),
        ] {
            assert!(checked_filename(bad.map(String::from)).is_err(), "{bad:?}");
        }
        assert!(checked_filename(Some("é".repeat(255))).is_ok());
        assert!(checked_filename(Some("é".repeat(256))).is_err());
    }
}

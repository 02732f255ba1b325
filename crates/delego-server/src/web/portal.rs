//! The client portal: client users submit work to their client's engagements and follow
//! it — where it stands, its data and files, the public thread and their replies, and,
//! once it is finished, their satisfaction rating.
//!
//! Every read and change goes through the API's own functions with the caller's scope,
//! so the portal shows a client user nothing the API would not. Anyone else, and any item
//! outside the caller's client, finds the same "not found" page as an unknown address.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use delego_core::definition::{
    Completeness, FieldError, FieldType, Form as IntakeForm, ServiceDefinition, validate_form,
};
use delego_core::engine::Position;
use delego_core::id::AttachmentId;
use delego_core::identity::Role;
use delego_core::model::{Actor, Engagement, Message, WorkItem};
use delego_store::ItemFilter;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::forms::{self, FieldView, Posted};
use super::item::{self, DataRow};
use super::{Ctx, Web, render};
use crate::AppState;
use crate::api::items::{NewItemBody, NewMessageBody};
use crate::api::{attachments, directory, items, public};
use crate::error::ApiError;
use crate::i18n::Tr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal", get(list_page))
        // The form carries files: its handler limits the body as the upload API does.
        .route(
            "/portal/engagements/{id}/new",
            get(new_page)
                .post(submit)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/portal/items/{id}", get(item_page))
        .route("/portal/items/{id}/reply", post(reply))
        .route("/portal/items/{id}/rating", post(rate))
}

/// The portal is for client users; anyone else finds nothing here.
fn client_user(web: &Web) -> Result<(), ApiError> {
    web.require(web.caller.role() == Role::ClientUser)
}

/// Where an item stands, in the words of the client waiting for it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nobody at the provider has answered yet.
    Received,
    InProgress,
    /// The engine waits only on the client's side: its SLA clocks pause meanwhile.
    WaitingForYou,
    Resolved,
    Cancelled,
}

impl Stage {
    fn of(item: &WorkItem) -> Self {
        match item.state.position {
            Position::InStep { .. } if item.state.sla.first_response_at.is_none() => {
                Stage::Received
            }
            Position::InStep { .. } => Stage::InProgress,
            Position::Waiting { .. } => Stage::WaitingForYou,
            Position::Completed { .. } => Stage::Resolved,
            Position::Cancelled { .. } => Stage::Cancelled,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Stage::Received => "received",
            Stage::InProgress => "in-progress",
            Stage::WaitingForYou => "waiting",
            Stage::Resolved => "resolved",
            Stage::Cancelled => "cancelled",
        }
    }

    fn label(self, tr: &Tr) -> String {
        tr.t(&format!("portal-status-{}", self.name()))
    }
}

/// The list's status filter: the item statuses `list_items` filters by, in the client's
/// words (received and in progress are both `active`).
const STATUS_FILTERS: [(&str, &str); 4] = [
    ("active", "portal-filter-open"),
    ("waiting", "portal-status-waiting"),
    ("completed", "portal-status-resolved"),
    ("cancelled", "portal-status-cancelled"),
];

const PAGE_SIZE: u32 = 25;

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    q: String,
    status: String,
    /// The last item of the previous page.
    after: String,
}

#[derive(Template)]
#[template(path = "portal.html")]
struct ListPage {
    ctx: Ctx,
    q: String,
    statuses: Vec<StatusOption>,
    /// Where new work can be sent: (engagement id, name).
    engagements: Vec<(String, String)>,
    items: Vec<ItemRow>,
    filtered: bool,
    /// The address of the next, older page.
    next: Option<String>,
    /// Whether this is a later page, with a way back to the first.
    later: bool,
}

struct StatusOption {
    value: &'static str,
    label: String,
    selected: bool,
}

struct ItemRow {
    href: String,
    reference: String,
    subject: String,
    engagement: String,
    stage: &'static str,
    status: String,
    updated: String,
}

/// The client's items, newest first, a page at a time, found by subject or reference
/// and filtered by status.
async fn list_page(
    State(state): State<AppState>,
    web: Web,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    client_user(&web)?;
    // A hand-edited address falls back to the whole list rather than an error.
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let status = STATUS_FILTERS
        .iter()
        .map(|(value, _)| *value)
        .find(|value| *value == query.status);
    let q = query.q.trim().to_owned();
    let engagements = directory::visible_engagements(&state, &web.caller).await?;
    let items = items::visible_items(
        &state,
        &web.caller,
        ItemFilter {
            status: status.map(str::to_owned),
            text: Some(q.clone()).filter(|q| !q.is_empty()),
            after: query.after.parse().ok(),
            limit: PAGE_SIZE,
            ..ItemFilter::default()
        },
    )
    .await?;
    let names: HashMap<_, _> = engagements
        .iter()
        .map(|e| (e.id, e.name.as_str()))
        .collect();
    let tr = &web.ctx.tr;
    let next = (items.len() == PAGE_SIZE as usize)
        .then(|| items.last())
        .flatten()
        .map(|last| {
            format!(
                "/portal?q={}&status={}&after={}",
                query_value(&q),
                status.unwrap_or_default(),
                last.id()
            )
        });
    let rows = items
        .iter()
        .map(|item| {
            let stage = Stage::of(item);
            ItemRow {
                href: format!("/portal/items/{}", item.id()),
                reference: item.id().reference(),
                subject: subject(tr, item),
                engagement: names
                    .get(&item.engagement_id)
                    .map(|name| name.to_string())
                    .unwrap_or_default(),
                stage: stage.name(),
                status: stage.label(tr),
                updated: tr.date_time(item.updated_at),
            }
        })
        .collect();
    let statuses = STATUS_FILTERS
        .iter()
        .map(|(value, label)| StatusOption {
            value,
            label: tr.t(label),
            selected: Some(*value) == status,
        })
        .collect();
    let page = ListPage {
        q,
        statuses,
        engagements: engagements
            .iter()
            .map(|e| (e.id.to_string(), e.name.to_string()))
            .collect(),
        items: rows,
        filtered: status.is_some() || !query.q.trim().is_empty(),
        next,
        later: !query.after.is_empty(),
        ctx: web.ctx,
    };
    Ok(render(StatusCode::OK, &page))
}

/// A value for a query string: everything but unreserved characters percent-encoded.
pub(super) fn query_value(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The subject the item was submitted with, which the list's search looks in.
fn subject(tr: &Tr, item: &WorkItem) -> String {
    item.state
        .data
        .get("subject")
        .and_then(Json::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| tr.t("portal-no-subject"))
}

#[derive(Template)]
#[template(path = "portal_new.html")]
struct NewPage {
    ctx: Ctx,
    action: String,
    engagement: String,
    fields: Vec<FieldView>,
    /// Makes a repeated post of the same form (a second click) find the item made by the
    /// first instead of making another.
    submission: String,
    invalid: bool,
    /// Files chosen before the form came back must be chosen again.
    choose_again: bool,
    files_limit: Option<String>,
}

/// What a posted intake form held.
#[derive(Default)]
struct PostedForm {
    text: Posted,
    files: Vec<PostedFile>,
}

struct PostedFile {
    field: String,
    filename: String,
    content_type: Option<String>,
    content: Bytes,
}

fn new_form(
    state: &AppState,
    web: Web,
    status: StatusCode,
    engagement: &Engagement,
    form: &IntakeForm,
    posted: Option<&PostedForm>,
    errors: &[FieldError],
) -> Result<Response, ApiError> {
    let fields = forms::views(
        form,
        posted.map(|posted| &posted.text),
        &Map::new(),
        errors,
        &web.ctx,
        true,
    );
    let submission = match posted.and_then(|posted| posted.text.first("submission")) {
        Some(submission) => submission.to_owned(),
        None => crate::auth::random_secret()?,
    };
    let has_files = fields
        .iter()
        .any(|field| field.input == forms::Input::Files);
    let page = NewPage {
        action: format!("/portal/engagements/{}/new", engagement.id),
        engagement: engagement.name.to_string(),
        submission,
        invalid: !errors.is_empty(),
        choose_again: posted.is_some_and(|posted| !posted.files.is_empty()),
        files_limit: has_files.then(|| {
            web.ctx.t_arg(
                "portal-files-limit",
                "size",
                size(&web.ctx, file_limit(state)),
            )
        }),
        fields,
        ctx: web.ctx,
    };
    Ok(render(status, &page))
}

/// The most bytes of files one form may carry: one upload's worth.
fn file_limit(state: &AppState) -> u64 {
    state.config.max_attachment_bytes
}

/// The engagement's intake form, with a file input for each attachment field.
async fn new_page(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    client_user(&web)?;
    let engagement = items::visible_engagement(&state, &web.caller, &id).await?;
    let definition = definition_of(&state, &engagement).await?;
    new_form(
        &state,
        web,
        StatusCode::OK,
        &engagement,
        &definition.intake,
        None,
        &[],
    )
}

async fn definition_of(
    state: &AppState,
    engagement: &Engagement,
) -> Result<std::sync::Arc<ServiceDefinition>, ApiError> {
    Ok(state
        .store
        .service(&engagement.service_key, engagement.service_version)
        .await?)
}

/// Submits the intake form. Nothing is stored unless all of it is valid, files
/// included; then the item is made, its files stored with it, and its attachment fields
/// set to them (a file is always stored for an item, so the item comes first).
async fn submit(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    client_user(&web)?;
    let engagement = items::visible_engagement(&state, &web.caller, &id).await?;
    let most = file_limit(&state).saturating_add(state.config.max_body_bytes as u64);
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > most) {
        return Err(too_large(most));
    }
    let multipart = multipart.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut posted = read_form(multipart, most).await?;
    web.check_csrf(posted.text.first("csrf").unwrap_or_default())?;
    let definition = definition_of(&state, &engagement).await?;
    let form = &definition.intake;
    // Files only ever go where the form asks for them.
    posted
        .files
        .retain(|file| attachment_fields(form).any(|(name, _)| name == file.field));
    let data = forms::values(form, &posted.text, web.ctx.zone());

    let mut errors = file_errors(&web.ctx, form, &posted.files, file_limit(&state));
    // The files have no ids until they are stored: stand-ins let the definition judge
    // the attachment fields (required, how many) with the rest.
    let mut checked = data.clone();
    for (name, kind) in attachment_fields(form) {
        let count = posted.files.iter().filter(|f| f.field == name).count();
        if count > 0 {
            let stand_ins = (0..count)
                .map(|_| AttachmentId::new().to_string())
                .collect();
            checked.insert(name.to_owned(), attachment_value(kind, stand_ins));
        }
    }
    if let Err(invalid) = validate_form(form, &checked, Completeness::Whole) {
        errors.extend(invalid);
    }
    if !errors.is_empty() {
        return new_form(
            &state,
            web,
            StatusCode::UNPROCESSABLE_ENTITY,
            &engagement,
            form,
            Some(&posted),
            &errors,
        );
    }

    let submission = posted
        .text
        .first("submission")
        .filter(|s| !s.is_empty() && s.len() <= 100)
        .map(|s| format!("portal-{s}"));
    let body = NewItemBody {
        data,
        priority: None,
    };
    let created = match items::submit_item(&state, &web.caller, &engagement, body, submission).await
    {
        Ok(created) => created,
        Err(ApiError::Validation { errors, .. }) => {
            return new_form(
                &state,
                web,
                StatusCode::UNPROCESSABLE_ENTITY,
                &engagement,
                form,
                Some(&posted),
                &errors,
            );
        }
        Err(other) => return Err(other),
    };
    let item = created.value;
    // A repeated post finds its item made, and its files stored, by the first.
    if created.created && !posted.files.is_empty() {
        let mut stored: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for file in posted.files {
            let size = file.content.len() as u64;
            let content = futures_util::stream::once(std::future::ready(Ok(file.content)));
            let attachment = attachments::store_file(
                &state,
                web.caller.actor(),
                &item,
                Some(file.filename),
                file.content_type.as_deref(),
                Some(size),
                content,
            )
            .await?;
            stored
                .entry(file.field)
                .or_default()
                .push(attachment.id.to_string());
        }
        let changes = attachment_fields(form)
            .filter_map(|(name, kind)| {
                let ids = stored.remove(name)?;
                Some((name.to_owned(), attachment_value(kind, ids)))
            })
            .collect();
        items::change_data(&state, &web.caller, &item, item.version, changes).await?;
    }
    Ok(Redirect::to(&format!("/portal/items/{}", item.id())).into_response())
}

fn too_large(most: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the form is larger than {most} bytes, the most accepted"
    ))
}

/// The form's text fields and files, refusing a body of more than `most` bytes.
async fn read_form(mut multipart: Multipart, most: u64) -> Result<PostedForm, ApiError> {
    let unreadable = |error: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!("cannot read the form: {}", error.body_text()))
    };
    let mut posted = PostedForm::default();
    let mut read = 0u64;
    while let Some(mut part) = multipart.next_field().await.map_err(unreadable)? {
        let name = part.name().unwrap_or_default().to_owned();
        let filename = part.file_name().map(str::to_owned);
        let content_type = part.content_type().map(str::to_owned);
        let mut content = Vec::new();
        while let Some(chunk) = part.chunk().await.map_err(unreadable)? {
            read += chunk.len() as u64;
            if read > most {
                return Err(too_large(most));
            }
            content.extend_from_slice(&chunk);
        }
        match filename {
            // A file input left empty still sends a part, with neither name nor content.
            Some(filename) if filename.is_empty() && content.is_empty() => {}
            Some(filename) => posted.files.push(PostedFile {
                field: name,
                filename,
                content_type,
                content: Bytes::from(content),
            }),
            None => posted
                .text
                .0
                .push((name, String::from_utf8_lossy(&content).into_owned())),
        }
    }
    Ok(posted)
}

/// The form's attachment fields: (name, type).
fn attachment_fields(form: &IntakeForm) -> impl Iterator<Item = (&str, &FieldType)> {
    form.fields
        .iter()
        .filter(|field| is_attachment(&field.kind))
        .map(|field| (field.name.as_str(), &field.kind))
}

fn is_attachment(kind: &FieldType) -> bool {
    match kind {
        FieldType::Attachment => true,
        FieldType::List(element) => **element == FieldType::Attachment,
        _ => false,
    }
}

/// An attachment field's value: one id, or a list of them.
fn attachment_value(kind: &FieldType, ids: Vec<String>) -> Json {
    match kind {
        FieldType::Attachment => ids.into_iter().next().map_or(Json::Null, Json::String),
        _ => Json::Array(ids.into_iter().map(Json::String).collect()),
    }
}

/// What is wrong with the posted files, beside their fields: the checks the upload makes,
/// made before anything is stored.
fn file_errors(tr: &Tr, form: &IntakeForm, files: &[PostedFile], limit: u64) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut total = 0u64;
    for (name, kind) in attachment_fields(form) {
        let mine: Vec<&PostedFile> = files.iter().filter(|f| f.field == name).collect();
        if *kind == FieldType::Attachment && mine.len() > 1 {
            errors.push(file_error(name, tr.t("portal-file-one")));
        }
        for file in mine {
            total += file.content.len() as u64;
            let problem = if total > limit {
                Some("portal-file-too-large")
            } else if file.content.is_empty() {
                Some("portal-file-empty")
            } else {
                let checked = attachments::accepted_file(
                    Some(file.filename.clone()),
                    file.content_type.as_deref(),
                )
                .and_then(|(_, content_type)| {
                    attachments::check_content(&content_type, &file.content)
                });
                match checked {
                    Ok(()) => None,
                    Err(ApiError::UnsupportedMediaType(_)) => Some("portal-file-type"),
                    Err(_) => Some("portal-file-name"),
                }
            };
            if let Some(problem) = problem {
                let message = tr.t_args(
                    problem,
                    &[
                        ("name", file.filename.as_str()),
                        ("size", size(tr, limit).as_str()),
                    ],
                );
                errors.push(file_error(name, message));
            }
        }
    }
    errors
}

fn file_error(field: &str, message: String) -> FieldError {
    FieldError {
        field: field.to_owned(),
        code: "file".into(),
        message,
    }
}

/// A file size in kilobytes, or megabytes from one on.
fn size(tr: &Tr, bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes >= MB {
        tr.t_arg(
            "portal-size-mb",
            "size",
            tr.decimal(bytes as f64 / MB as f64, 1),
        )
    } else {
        let kilobytes = i64::try_from(bytes.div_ceil(1024)).unwrap_or(i64::MAX);
        tr.t_arg("portal-size-kb", "size", tr.int(kilobytes))
    }
}

#[derive(Template)]
#[template(path = "portal_item.html")]
struct ItemPage {
    ctx: Ctx,
    id: String,
    reference: String,
    subject: String,
    engagement: String,
    stage: &'static str,
    status: String,
    progress: Vec<ProgressStep>,
    data: Vec<DataRow>,
    files: Vec<FileRow>,
    thread: Vec<MessageRow>,
    notice: Option<String>,
    /// Replies are taken until the item is finished.
    open: bool,
    entry: Entry,
    /// Offered once the item is resolved, until it is rated.
    survey: bool,
    ratings: Vec<(u8, String)>,
    rated: Option<Rated>,
}

/// One stage of the item's way, as far as it has come.
struct ProgressStep {
    label: String,
    at: Option<String>,
    /// `done`, `current` or `next`, for the style and for screen readers.
    state: &'static str,
    state_label: String,
}

struct FileRow {
    href: String,
    name: String,
    size: String,
}

struct MessageRow {
    author: String,
    mine: bool,
    body: String,
    /// The history an e-mail quoted, shown folded.
    quoted: Option<String>,
    at: String,
}

struct Rated {
    /// The rating given and when.
    text: String,
    comment: Option<String>,
}

/// What the user typed into the page's forms, kept when a form comes back refused.
#[derive(Default)]
struct Entry {
    reply: String,
    reply_error: Option<String>,
    rating: String,
    comment: String,
    rating_error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ItemQuery {
    /// What the user just did: `reply` or `rating`.
    done: String,
}

/// One item of the client's: where it stands, its data, files and public thread.
async fn item_page(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    query: Result<Query<ItemQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    client_user(&web)?;
    let item = items::visible_item(&state, &web.caller, &id).await?;
    let notice = match query.map(|Query(query)| query.done).as_deref() {
        Ok("reply") => Some(web.ctx.t("portal-reply-sent")),
        Ok("rating") => Some(web.ctx.t("portal-rating-thanks")),
        _ => None,
    };
    item_view(&state, web, &item, StatusCode::OK, notice, Entry::default()).await
}

async fn item_view(
    state: &AppState,
    web: Web,
    item: &WorkItem,
    status: StatusCode,
    notice: Option<String>,
    entry: Entry,
) -> Result<Response, ApiError> {
    let engagement = state.store.engagement(item.engagement_id).await?;
    let definition = state
        .store
        .service(&item.service_key, item.service_version)
        .await?;
    let messages = items::thread(state, &web.caller, item).await?;
    let files = state.store.attachments_of_item(item.id()).await?;
    let stage = Stage::of(item);
    let rating = match stage {
        Stage::Resolved => state.store.csat(item.id()).await?,
        _ => None,
    };
    let colleagues = directory::visible_users(state, &web.caller).await?;
    let tr = &web.ctx.tr;
    let thread = {
        let authors = Authors {
            tr,
            me: web.caller.user.id,
            colleagues: colleagues
                .iter()
                .map(|user| (user.id, user.name.to_string()))
                .collect(),
        };
        messages
            .iter()
            .map(|message| authors.row(message))
            .collect()
    };
    let page = ItemPage {
        id: item.id().to_string(),
        reference: item.id().reference(),
        subject: subject(tr, item),
        engagement: engagement.name.to_string(),
        stage: stage.name(),
        status: stage.label(tr),
        progress: progress(tr, item, stage),
        data: intake_rows(tr, item, &definition),
        files: files
            .into_iter()
            .map(|file| FileRow {
                href: format!("/api/v1/attachments/{}/content", file.id),
                size: size(tr, file.size),
                name: file.filename,
            })
            .collect(),
        thread,
        notice,
        open: !item.state.position.is_terminal(),
        entry,
        survey: stage == Stage::Resolved && rating.is_none(),
        ratings: (1..=5)
            .map(|n| (n, tr.t(&format!("portal-rating-{n}"))))
            .collect(),
        rated: rating.map(|rating| Rated {
            text: tr.t_args(
                "portal-rating-given",
                &[
                    ("rating", &tr.t(&format!("portal-rating-{}", rating.rating))),
                    ("at", &tr.date_time(rating.at)),
                ],
            ),
            comment: rating.comment,
        }),
        ctx: web.ctx,
    };
    Ok(render(status, &page))
}

/// The stages the item has passed, the one it is at, and those still to come.
fn progress(tr: &Tr, item: &WorkItem, stage: Stage) -> Vec<ProgressStep> {
    let step = |stage: Stage, at: Option<jiff::Timestamp>, state: &'static str| ProgressStep {
        label: stage.label(tr),
        at: at.map(|at| tr.date_time(at)),
        state,
        state_label: tr.t(&format!("portal-progress-{state}")),
    };
    let sla = &item.state.sla;
    let received = if stage == Stage::Received {
        "current"
    } else {
        "done"
    };
    let mut steps = vec![step(Stage::Received, Some(item.created_at), received)];
    match &item.state.position {
        Position::Cancelled { at, .. } => steps.push(step(Stage::Cancelled, Some(*at), "current")),
        position => {
            let working = match stage {
                Stage::Received => "next",
                Stage::InProgress => "current",
                _ => "done",
            };
            steps.push(step(Stage::InProgress, sla.first_response_at, working));
            if stage == Stage::WaitingForYou {
                steps.push(step(Stage::WaitingForYou, sla.paused_since, "current"));
            }
            match position {
                Position::Completed { at, .. } => {
                    steps.push(step(Stage::Resolved, Some(*at), "current"));
                }
                _ => steps.push(step(Stage::Resolved, None, "next")),
            }
        }
    }
    steps
}

/// The values the client gave at intake, labelled by the form. What steps add to the
/// item's data (an agent's reply kept as an internal note, say) stays with the provider,
/// and files are listed on their own.
fn intake_rows(tr: &Tr, item: &WorkItem, definition: &ServiceDefinition) -> Vec<DataRow> {
    let mut intake = item.clone();
    intake.state.data.retain(|name, _| {
        definition
            .intake
            .field(name)
            .is_some_and(|field| !is_attachment(&field.kind))
    });
    item::data_rows(tr, &intake, definition)
}

/// Who wrote a message, as the client knows them: themselves, their colleagues by name,
/// and the provider as its team.
struct Authors<'a> {
    tr: &'a Tr,
    me: delego_core::id::UserId,
    colleagues: HashMap<delego_core::id::UserId, String>,
}

impl Authors<'_> {
    fn row(&self, message: &Message) -> MessageRow {
        let author = match &message.author {
            Actor::User(id) if *id == self.me => self.tr.t("portal-author-you"),
            Actor::User(id) if self.colleagues.contains_key(id) => self.colleagues[id].clone(),
            Actor::System => self.tr.t("portal-author-system"),
            Actor::Requester(_) => self.tr.t("portal-author-requester"),
            Actor::User(_) | Actor::Worker(_) | Actor::Operator(_) => {
                self.tr.t("portal-author-provider")
            }
        };
        MessageRow {
            author,
            mine: message.author == Actor::User(self.me),
            body: message.body.clone(),
            quoted: message.quoted.clone(),
            at: self.tr.date_time(message.created_at),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReplyForm {
    csrf: String,
    body: String,
}

/// The client user's reply: a public message, and the requester's answer to an item
/// waiting for one, as through the API.
async fn reply(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    form: Result<Form<ReplyForm>, FormRejection>,
) -> Result<Response, ApiError> {
    client_user(&web)?;
    // Scope first: nothing about the request is judged for an item the caller cannot see.
    let item = items::visible_item(&state, &web.caller, &id).await?;
    let Form(form) = form.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    web.check_csrf(&form.csrf)?;
    let message = NewMessageBody {
        visibility: delego_core::model::Visibility::Public,
        body: form.body.clone(),
        attachments: Vec::new(),
    };
    match items::post_message(&state, &web.caller, &item, message).await {
        Ok(_) => {
            Ok(Redirect::to(&format!("/portal/items/{}?done=reply", item.id())).into_response())
        }
        Err(ApiError::Validation { .. }) => {
            let entry = Entry {
                reply: form.body,
                reply_error: Some(web.ctx.t("portal-reply-invalid")),
                ..Entry::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            item_view(&state, web, &item, status, None, entry).await
        }
        Err(other) => Err(other),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RatingForm {
    csrf: String,
    rating: String,
    comment: String,
}

/// The client user's rating of a resolved item, recorded as a requester's is.
async fn rate(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<String>,
    form: Result<Form<RatingForm>, FormRejection>,
) -> Result<Response, ApiError> {
    client_user(&web)?;
    let item = items::visible_item(&state, &web.caller, &id).await?;
    let Form(form) = form.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    web.check_csrf(&form.csrf)?;
    let refused = |error: &str| Entry {
        rating: form.rating.clone(),
        comment: form.comment.clone(),
        rating_error: Some(web.ctx.t(error)),
        ..Entry::default()
    };
    let entry = match form.rating.parse::<u8>() {
        Ok(rating) => {
            let comment = Some(form.comment.clone());
            match public::record_rating(&state, item.id(), rating, comment).await {
                Ok(_) => {
                    let done = format!("/portal/items/{}?done=rating", item.id());
                    return Ok(Redirect::to(&done).into_response());
                }
                Err(ApiError::Validation { errors, .. })
                    if errors.iter().any(|e| e.field == "comment") =>
                {
                    refused("portal-rating-comment-long")
                }
                Err(ApiError::Validation { .. }) => refused("portal-rating-choose"),
                // Rated already (or not finished yet): the page itself shows which, in
                // the user's words, rather than an error page.
                Err(ApiError::Conflict(_)) => {
                    let status = StatusCode::CONFLICT;
                    return item_view(&state, web, &item, status, None, Entry::default()).await;
                }
                Err(other) => return Err(other),
            }
        }
        Err(_) => refused("portal-rating-choose"),
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    item_view(&state, web, &item, status, None, entry).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_only_unreserved_characters() {
        assert_eq!(query_value("a-b_c.d~9"), "a-b_c.d~9");
        assert_eq!(
            query_value("broken seal & 50%"),
            "broken%20seal%20%26%2050%25"
        );
        assert_eq!(query_value("čaj"), "%C4%8Daj");
    }
}

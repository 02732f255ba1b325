//! An item as the provider's people see it on a page: its data labelled by the service
//! definition, its SLA clocks, its thread and its history. The agent's task page and the
//! floor's item page both show it (`templates/item_detail.html`).

use std::collections::HashMap;

use delego_core::definition::{FieldType, ServiceDefinition};
use delego_core::engine::Position;
use delego_core::model::{Actor, AuditEvent, Message, Visibility, WorkItem};
use delego_core::sla::{SlaKind, SlaState, SlaStatus};
use delego_store::ItemFilter;
use serde_json::Value as Json;

use crate::AppState;
use crate::api;
use crate::error::{ApiError, ApiResult};
use crate::i18n::Tr;

/// What the item detail partial shows.
pub struct ItemDetail {
    pub id: String,
    pub title: String,
    pub reference: String,
    pub status: String,
    pub step: Option<String>,
    /// The reference of the item a merged duplicate went into.
    pub merged_into: Option<String>,
    pub data: Vec<DataRow>,
    /// What the service looked up for the item (the policy, the asset, prior claims).
    pub facts: Vec<DataRow>,
    /// The major incident the item follows, as (id, reference).
    pub parent: Option<(String, String)>,
    /// The items following this one, as (id, reference, status).
    pub children: Vec<(String, String, String)>,
    pub sla: Vec<SlaRow>,
    pub thread: Vec<MessageRow>,
    pub history: Vec<HistoryRow>,
}

pub struct DataRow {
    pub label: String,
    pub value: String,
    /// Attachments of the field: (download address, file name).
    pub files: Vec<(String, String)>,
}

pub struct SlaRow {
    pub name: String,
    /// `running`, `warning`, `breached`, … for the style.
    pub state: &'static str,
    pub state_label: String,
    pub remaining: String,
    pub due: Option<String>,
}

pub struct MessageRow {
    pub author: String,
    pub internal: bool,
    /// The reference of the duplicate it was written on, for a message merged in.
    pub merged_from: Option<String>,
    pub body: String,
    /// The history an e-mail quoted, shown folded.
    pub quoted: Option<String>,
    pub at: String,
}

pub struct HistoryRow {
    pub at: String,
    pub actor: String,
    pub action: String,
}

/// The item's subject, or its service's name when it has none.
pub fn title(item: &WorkItem, definition: &ServiceDefinition) -> String {
    ["subject", "title", "name", "summary"]
        .iter()
        .find_map(|field| item.state.data.get(*field).and_then(Json::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| definition.name.to_string())
}

/// The item's status in the user's words.
pub fn status(tr: &Tr, item: &WorkItem) -> String {
    tr.t(&format!("item-status-{}", item.state.position.status()))
}

/// The step's title from the definition.
pub fn step_title(item: &WorkItem, definition: &ServiceDefinition) -> Option<String> {
    let step = item.state.position.step()?;
    Some(
        definition
            .step(step)
            .map(|step| step.title.clone())
            .unwrap_or_else(|| step.to_string()),
    )
}

impl ItemDetail {
    /// Everything about `item` a staff member may see: internal notes included.
    pub async fn load(
        state: &AppState,
        tr: &Tr,
        item: &WorkItem,
        definition: &ServiceDefinition,
    ) -> ApiResult<Self> {
        let sla = state.store.sla_status(item).await?;
        let messages = state.store.messages(item.id(), true).await?;
        let history = state.store.item_history(item.id()).await?;
        let links = state.store.item_links(item.id()).await?;
        // Register entries the item's fields name (its asset), then what lookups found.
        let entries = crate::api::registers::named_entries(state, item).await?;
        let entry_rows = entries.iter().filter_map(|(field, entry)| {
            let label = definition
                .all_fields()
                .into_iter()
                .find(|f| f.name.as_str() == field)
                .map_or(field.as_str(), |f| f.label.as_str());
            let data = Json::Object(entry.as_ref()?.data.clone());
            Some(data_row(tr, label, None, &data))
        });
        let facts = entry_rows
            .chain(
                item.state
                    .facts
                    .iter()
                    .map(|(name, value)| data_row(tr, name, None, value)),
            )
            .filter(|row| !row.value.is_empty())
            .collect();
        let linked = |id: delego_core::id::WorkItemId| (id.to_string(), id.reference());
        let mut names = Names::default();
        let mut thread = Vec::with_capacity(messages.len());
        for message in &messages {
            thread.push(message_row(state, tr, &mut names, message).await?);
        }
        let mut events = Vec::with_capacity(history.len());
        for event in history.iter().rev() {
            events.push(history_row(state, tr, &mut names, event).await?);
        }
        Ok(Self {
            id: item.id().to_string(),
            title: title(item, definition),
            reference: item.id().reference(),
            status: status(tr, item),
            step: step_title(item, definition),
            merged_into: match &item.state.position {
                Position::Cancelled {
                    merged_into: Some(into),
                    ..
                } => Some(into.reference()),
                _ => None,
            },
            data: data_rows(tr, item, definition),
            facts,
            parent: links.parent.map(linked),
            children: links
                .children
                .into_iter()
                .map(|child| {
                    let (id, reference) = linked(child.id);
                    (
                        id,
                        reference,
                        tr.t(&format!("item-status-{}", child.status)),
                    )
                })
                .collect(),
            sla: sla.iter().map(|clock| sla_row(tr, clock)).collect(),
            thread,
            history: events,
        })
    }
}

/// The item's data in the intake form's order, with the form's labels; values of fields
/// the form does not know follow under their names.
pub fn data_rows(tr: &Tr, item: &WorkItem, definition: &ServiceDefinition) -> Vec<DataRow> {
    let data = &item.state.data;
    let known = definition.intake.fields.iter().filter_map(|field| {
        let value = data.get(field.name.as_str())?;
        Some(data_row(tr, &field.label, Some(&field.kind), value))
    });
    let unknown = data
        .iter()
        .filter(|(name, _)| definition.intake.field(name).is_none())
        .map(|(name, value)| data_row(tr, name, None, value));
    known
        .chain(unknown)
        .filter(|row| !row.value.is_empty() || !row.files.is_empty())
        .collect()
}

fn data_row(tr: &Tr, label: &str, kind: Option<&FieldType>, value: &Json) -> DataRow {
    let attachment = |id: &Json| {
        id.as_str().map(|id| {
            (
                format!("/api/v1/attachments/{id}/content"),
                tr.t("item-attachment"),
            )
        })
    };
    let (value, files) = match (kind, value) {
        (Some(FieldType::Attachment), id) => (String::new(), attachment(id).into_iter().collect()),
        (Some(FieldType::List(element)), Json::Array(ids))
            if **element == FieldType::Attachment =>
        {
            (String::new(), ids.iter().filter_map(attachment).collect())
        }
        (Some(FieldType::Money), money) => {
            match (money["amount"].as_str(), money["currency"].as_str()) {
                (Some(amount), Some(currency)) => (tr.money(amount, currency), Vec::new()),
                _ => (money.to_string(), Vec::new()),
            }
        }
        (Some(FieldType::DateTime), Json::String(text)) => match text.parse() {
            Ok(at) => (tr.date_time(at), Vec::new()),
            Err(_) => (text.clone(), Vec::new()),
        },
        (Some(FieldType::Boolean), Json::Bool(yes)) => {
            (tr.t(if *yes { "item-yes" } else { "item-no" }), Vec::new())
        }
        (_, Json::Array(values)) => (
            values.iter().map(plain).collect::<Vec<_>>().join(", "),
            Vec::new(),
        ),
        (_, value) => (plain(value), Vec::new()),
    };
    DataRow {
        label: label.to_owned(),
        value,
        files,
    }
}

fn plain(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        Json::Null => String::new(),
        // A register entry's data: one `name: value` line each.
        Json::Object(fields) => fields
            .iter()
            .map(|(name, value)| format!("{name}: {}", plain(value)))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

pub fn sla_row(tr: &Tr, clock: &SlaStatus) -> SlaRow {
    let name = tr.t(match clock.kind {
        SlaKind::FirstResponse => "sla-first-response",
        SlaKind::NextResponse => "sla-next-response",
        SlaKind::Resolution => "sla-resolution",
    });
    let state = match clock.state {
        SlaState::Met => "met",
        SlaState::Paused => "paused",
        SlaState::Running => "running",
        SlaState::Warning => "warning",
        SlaState::Breached => "breached",
    };
    SlaRow {
        name,
        state,
        state_label: tr.t(&format!("sla-{state}")),
        remaining: tr.duration(clock.remaining.as_secs()),
        due: clock.due_at.map(|at| tr.date_time(at)),
    }
}

/// Display names of the people in a thread or history, each looked up once.
#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    async fn of(&mut self, state: &AppState, tr: &Tr, actor: &Actor) -> ApiResult<String> {
        let key = format!("{actor:?}");
        if let Some(name) = self.0.get(&key) {
            return Ok(name.clone());
        }
        let name = match actor {
            Actor::System => tr.t("actor-system"),
            Actor::User(id) => match state.store.user(*id).await {
                Ok(user) => user.name.to_string(),
                Err(_) => tr.t("actor-unknown"),
            },
            Actor::Worker(id) => match state.store.worker(*id).await {
                Ok(worker) => worker.name.to_string(),
                Err(_) => tr.t("actor-unknown"),
            },
            Actor::Requester(_) => tr.t("actor-requester"),
            Actor::Operator(name) => name.clone(),
        };
        self.0.insert(key, name.clone());
        Ok(name)
    }
}

async fn message_row(
    state: &AppState,
    tr: &Tr,
    names: &mut Names,
    message: &Message,
) -> ApiResult<MessageRow> {
    Ok(MessageRow {
        author: names.of(state, tr, &message.author).await?,
        internal: message.visibility == Visibility::Internal,
        merged_from: message.merged_from.map(|from| from.reference()),
        body: message.body.clone(),
        quoted: message.quoted.clone(),
        at: tr.date_time(message.created_at),
    })
}

async fn history_row(
    state: &AppState,
    tr: &Tr,
    names: &mut Names,
    event: &AuditEvent,
) -> ApiResult<HistoryRow> {
    // Actions the UI has words for are translated; a new kind of event still shows.
    let key = format!("audit-{}", event.action.replace(['.', '_'], "-"));
    let mut action = if tr.has(&key) {
        tr.t(&key)
    } else {
        event.action.clone()
    };
    for detail in ["step", "outcome", "reason"] {
        if let Some(value) = event.detail.get(detail).and_then(Json::as_str) {
            action = format!("{action} · {value}");
        }
    }
    Ok(HistoryRow {
        at: tr.date_time(event.at),
        actor: names.of(state, tr, &event.actor).await?,
        action,
    })
}

/// A merge form as posted.
#[derive(serde::Deserialize)]
pub struct MergePosted {
    pub csrf: String,
    pub into: String,
}

/// The form that merges the page's item, a duplicate, into another: where it posts, what
/// was typed and, when refused, why, beside the field.
pub struct MergeForm {
    pub action: String,
    pub value: String,
    pub error: Option<String>,
}

impl MergeForm {
    /// A blank form posting to `action`, for an item still open; none for a finished one.
    pub fn offered(item: &WorkItem, action: String) -> Option<Self> {
        (!item.state.position.is_terminal()).then_some(Self {
            action,
            value: String::new(),
            error: None,
        })
    }
}

/// Merges `item` into the item whose reference or id the user typed, through the API's
/// merge. `Ok(Err(form))` is a refusal to show beside the field, in the user's words.
pub async fn merge_into(
    state: &AppState,
    web: &super::Web,
    item: &WorkItem,
    action: String,
    typed: &str,
) -> ApiResult<Result<delego_store::Merged, MergeForm>> {
    let refused = |code: &str| MergeForm {
        action: action.clone(),
        value: typed.to_owned(),
        error: Some(
            web.ctx
                .t(&format!("merge-error-{}", code.replace('_', "-"))),
        ),
    };
    let target = match find_item(state, web, item, typed).await? {
        Ok(target) => target,
        Err(code) => return Ok(Err(refused(code))),
    };
    match api::items::merge(state, &web.caller, &item.id().to_string(), &target).await {
        Ok(merged) => Ok(Ok(merged)),
        Err(ApiError::Validation { errors, .. }) => {
            let code = errors
                .first()
                .map_or("unknown", |error| error.code.as_str());
            Ok(Err(refused(code)))
        }
        // The other item finished or was merged meanwhile.
        Err(ApiError::Conflict(_)) => Ok(Err(refused("finished"))),
        Err(ApiError::NotFound(_)) => Ok(Err(refused("unknown"))),
        Err(other) => Err(other),
    }
}

/// The id of the item of `item`'s client the user named by its id or its reference; else
/// why not (`unknown`, `ambiguous`).
async fn find_item(
    state: &AppState,
    web: &super::Web,
    item: &WorkItem,
    typed: &str,
) -> ApiResult<Result<String, &'static str>> {
    let typed = typed.trim().trim_start_matches('#');
    if typed.parse::<delego_core::id::WorkItemId>().is_ok() {
        return Ok(Ok(typed.to_owned()));
    }
    let reference = typed.to_uppercase();
    if reference.len() != 8 || !reference.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(Err("unknown"));
    }
    let filter = ItemFilter {
        client_id: Some(item.client_id),
        text: Some(reference.clone()),
        limit: 20,
        ..ItemFilter::default()
    };
    // The search finds the digits anywhere in an id; a reference is its end.
    let found: Vec<WorkItem> = api::items::visible_items(state, &web.caller, filter)
        .await?
        .into_iter()
        .filter(|candidate| candidate.id().reference() == reference)
        .collect();
    Ok(match found.as_slice() {
        [one] => Ok(one.id().to_string()),
        [] => Err("unknown"),
        _ => Err("ambiguous"),
    })
}

//! Background work of a node: firing due timers, withdrawing tasks after their hours, SLA
//! escalations, delivering queued messages to item threads and as mail, reading the
//! maildirs, and clearing expired sessions. Every node runs it; the store makes each
//! timer fire once and each message go out once.

use std::time::Duration;

use delego_core::definition::{
    CSAT_LINK, CSAT_REQUEST, DEFAULT_CSAT_REQUEST, MERGED, MERGED_INTO, MessageTemplate, REFERENCE,
    REPLY_LINK, fill, placeholders,
};
use delego_core::id::WorkItemId;
use delego_core::model::{Actor, Visibility, WorkItem};
use delego_core::values::Key;
use delego_store::NewMessage;
use serde_json::Value as Json;

use crate::AppState;
use crate::links::{self, Purpose};

pub async fn run(state: AppState) {
    // A slow relay or a full maildir must not hold back timers, leases and escalations.
    let mail = tokio::spawn(mail(state.clone()));
    housekeeping(state).await;
    mail.abort();
}

/// Sends due mail each second and reads the maildirs every five.
async fn mail(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        if let Err(error) = crate::mail::send_due(&state).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "sending mail failed; retrying next tick"
            );
        }
        if ticks.is_multiple_of(5)
            && let Err(error) = crate::mail::read_maildirs(&state).await
        {
            tracing::warn!(
                error = format!("{error:#}"),
                "reading the maildirs failed; retrying later"
            );
        }
    }
}

async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut wake_ups = state.store.wake_ups();
    let mut ticks: u64 = 0;
    loop {
        // New tasks are offered at once; the rest of the housekeeping runs each second.
        tokio::select! {
            _ = tick.tick() => {}
            changed = wake_ups.changed() => {
                if changed.is_ok() {
                    dispatch(&state).await;
                }
                continue;
            }
        }
        ticks += 1;
        dispatch(&state).await;
        if let Err(error) = state.store.fire_due_timers().await {
            tracing::warn!(%error, "firing timers failed; retrying next tick");
        }
        match state.store.expire_leases().await {
            Ok(0) => {}
            Ok(lapsed) => tracing::info!(lapsed, "tasks whose lease lapsed are back in line"),
            Err(error) => tracing::warn!(%error, "expiring leases failed; retrying next tick"),
        }
        match state.store.close_after_hours().await {
            Ok(0) => {}
            Ok(closed) => tracing::info!(closed, "tasks whose hours closed untaken were withdrawn"),
            Err(error) => {
                tracing::warn!(%error, "closing tasks after hours failed; retrying next tick")
            }
        }
        match state.store.escalate_sla().await {
            Ok(0) => {}
            Ok(items) => tracing::info!(items, "SLA escalations made"),
            Err(error) => tracing::warn!(%error, "SLA escalations failed; retrying next tick"),
        }
        if let Err(error) = deliver_outgoing(&state).await {
            tracing::warn!(error = format!("{error:#}"), "delivering messages failed");
        }
        if ticks.is_multiple_of(5)
            && let Err(error) = state.store.compact_queue_counts().await
        {
            tracing::warn!(%error, "compacting queue counters failed; retrying later");
        }
        if ticks.is_multiple_of(600)
            && let Err(error) = state.store.delete_expired_sessions(state.clock.now()).await
        {
            tracing::warn!(%error, "clearing expired sessions failed");
        }
    }
}

async fn dispatch(state: &AppState) {
    if let Err(error) = state.store.dispatch_offers().await {
        tracing::warn!(%error, "offering tasks failed; retrying next tick");
    }
}

/// Turns queued notices into public messages on the item's thread, where the requester's
/// portal shows them, and queues them and agents' public replies (which are on the thread
/// already) as mail to the requester, where the engagement has mail.
pub async fn deliver_outgoing(state: &AppState) -> anyhow::Result<usize> {
    let outgoing = state.store.take_outgoing(100).await?;
    let mut delivered = 0;
    for message in outgoing {
        // One that fails stays in the outbox and is taken again when its lease ends.
        match deliver(state, &message).await {
            Ok(()) => {
                state.store.outgoing_delivered(message.id).await?;
                delivered += 1;
            }
            Err(error) => tracing::warn!(
                item = %message.item_id,
                error = format!("{error:#}"),
                "delivering a message failed; it is tried again later"
            ),
        }
    }
    Ok(delivered)
}

async fn deliver(state: &AppState, message: &delego_store::Outgoing) -> anyhow::Result<()> {
    let item = state.store.item(message.item_id).await?;
    if message.message.get("kind").and_then(Json::as_str) == Some("reply") {
        // An agent's reply is on the thread already: it goes out by mail only.
        let id = message.message.get("message").and_then(Json::as_str);
        let thread = state.store.messages(item.id(), false).await?;
        if let Some(reply) = thread
            .iter()
            .find(|m| Some(m.id.to_string().as_str()) == id)
        {
            let reply_with_files = (reply.body.as_str(), reply.attachments.as_slice());
            crate::mail::queue(state, &item, message.id, None, reply_with_files, false).await?;
        }
        return Ok(());
    }
    let Some(notice) = render(state, &item, &message.message).await? else {
        return Ok(());
    };
    state
        .store
        .add_message(NewMessage {
            item_id: item.id(),
            author: Actor::System,
            visibility: Visibility::Public,
            body: notice.on_thread(),
            attachments: Vec::new(),
            event: None,
            quoted: None,
        })
        .await?;
    let subject = notice.subject.as_deref();
    crate::mail::queue(state, &item, message.id, subject, (&notice.body, &[]), true).await?;
    Ok(())
}

/// A notice filled in for one item.
struct Notice {
    subject: Option<String>,
    body: String,
}

impl Notice {
    /// As the thread shows it: the subject heads the body, as an e-mail's does.
    fn on_thread(&self) -> String {
        match &self.subject {
            Some(subject) => format!("{subject}\n\n{}", self.body),
            None => self.body.clone(),
        }
    }
}

/// A notice from the template its service definition gives it, or `None` for messages
/// that need no notice of their own and for notices the service has no template for.
async fn render(
    state: &AppState,
    item: &WorkItem,
    message: &Json,
) -> anyhow::Result<Option<Notice>> {
    let (key, merged_into) = match message.get("kind").and_then(Json::as_str) {
        Some("notify_requester") => match message.get("template").and_then(Json::as_str) {
            Some(template) => (template, None),
            None => return Ok(None),
        },
        Some("csat_request") => (CSAT_REQUEST, None),
        Some("merged") => {
            let into = message.get("into").and_then(Json::as_str);
            (MERGED, into.and_then(|id| id.parse::<WorkItemId>().ok()))
        }
        _ => return Ok(None),
    };
    let Some(template) = template(state, item, key).await? else {
        tracing::debug!(template = key, item = %item.id(), "the service has no such template; no notice");
        return Ok(None);
    };
    let used = |name| {
        let mut texts = template.subject.iter().chain([&template.body]);
        texts.any(|text| placeholders(text).contains(&name))
    };
    // A merged duplicate's conversation goes on in the item it was merged into.
    let thread = merged_into.unwrap_or(item.id());
    let reply_link = if used(REPLY_LINK) {
        link(state, Purpose::Reply, thread).await?
    } else {
        String::new()
    };
    let csat_link = if used(CSAT_LINK) {
        link(state, Purpose::Csat, item.id()).await?
    } else {
        String::new()
    };
    let reference = item.id().reference();
    let merged_into = merged_into.map(|id| id.reference()).unwrap_or_default();
    let values = [
        (REFERENCE, reference.as_str()),
        (REPLY_LINK, reply_link.as_str()),
        (CSAT_LINK, csat_link.as_str()),
        (MERGED_INTO, merged_into.as_str()),
    ];
    Ok(Some(Notice {
        subject: template
            .subject
            .as_ref()
            .map(|subject| fill(subject, &item.state.data, &values)),
        body: fill(&template.body, &item.state.data, &values),
    }))
}

/// The template `key` of the item's service version. A version without any templates,
/// published before definitions had them, takes the newest later version's that has it;
/// a satisfaction request without a template has [`DEFAULT_CSAT_REQUEST`].
async fn template(
    state: &AppState,
    item: &WorkItem,
    key: &str,
) -> anyhow::Result<Option<MessageTemplate>> {
    let own = state
        .store
        .service(&item.service_key, item.service_version)
        .await?;
    if let Some(template) = own.template(key) {
        return Ok(Some(template.clone()));
    }
    if own.templates.is_empty() {
        let versions = state.store.services().await?;
        let later = versions.iter().rev().filter(|published| {
            published.key == item.service_key.as_str() && published.version > item.service_version
        });
        for published in later {
            let definition = state
                .store
                .service(&item.service_key, published.version)
                .await?;
            if let Some(template) = definition.template(key) {
                return Ok(Some(template.clone()));
            }
        }
    }
    if key != CSAT_REQUEST {
        return Ok(None);
    }
    Ok(Key::parse(CSAT_REQUEST).ok().map(|key| MessageTemplate {
        key,
        subject: None,
        body: DEFAULT_CSAT_REQUEST.to_owned(),
    }))
}

/// The public URL of a signed requester link.
pub async fn link(state: &AppState, purpose: Purpose, item: WorkItemId) -> anyhow::Result<String> {
    let key = state.store.secret(links::SIGNING_KEY).await?;
    let token = links::sign(&key, purpose, item, state.clock.now());
    let path = match purpose {
        Purpose::Csat => "csat",
        Purpose::Reply => "replies",
    };
    Ok(format!(
        "{}/api/v1/public/{path}/{token}",
        state.config.public_url.trim_end_matches('/')
    ))
}

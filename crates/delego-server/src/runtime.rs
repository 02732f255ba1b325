//! Background work of a node: firing due timers, SLA escalations, delivering queued
//! messages to item threads, and clearing expired sessions. Every node runs it; the store makes each timer
//! fire once and each message go out once.

use std::time::Duration;

use delego_core::model::{Actor, Visibility, WorkItem};
use delego_store::NewMessage;
use serde_json::Value as Json;

use crate::AppState;
use crate::links::{self, Purpose};

pub async fn run(state: AppState) {
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
/// portal shows them. Replies written by agents are on the thread already.
pub async fn deliver_outgoing(state: &AppState) -> anyhow::Result<usize> {
    let outgoing = state.store.take_outgoing(100).await?;
    let mut delivered = 0;
    for message in outgoing {
        let item = state.store.item(message.item_id).await?;
        let Some(body) = render(state, &item, &message.message).await? else {
            continue;
        };
        state
            .store
            .add_message(NewMessage {
                item_id: item.id(),
                author: Actor::System,
                visibility: Visibility::Public,
                body,
                attachments: Vec::new(),
                event: None,
            })
            .await?;
        delivered += 1;
    }
    Ok(delivered)
}

/// The text of a notice, or `None` for messages that need no notice of their own.
async fn render(
    state: &AppState,
    item: &WorkItem,
    message: &Json,
) -> anyhow::Result<Option<String>> {
    let subject = item
        .state
        .data
        .get("subject")
        .and_then(Json::as_str)
        .unwrap_or("your request");
    let reference = item.id().to_string();
    let reference = &reference[reference.len() - 8..];
    let text = match message.get("kind").and_then(Json::as_str) {
        Some("notify_requester") => match message.get("template").and_then(Json::as_str) {
            Some("acknowledgement") => format!(
                "We have received “{subject}” and will answer soon. Your reference is {reference}.\n\
                 To add anything, reply here: {}",
                link(state, Purpose::Reply, item).await?
            ),
            Some("auto_resolved") => format!(
                "We have not heard back from you about “{subject}”, so we closed it. \
                 Write to us again whenever you need help. (Reference {reference}.)"
            ),
            Some(other) => format!("An update on “{subject}” ({other})."),
            None => return Ok(None),
        },
        Some("csat_request") => format!(
            "How did we do with “{subject}”? Please rate our answer: {}",
            link(state, Purpose::Csat, item).await?
        ),
        _ => return Ok(None),
    };
    Ok(Some(text))
}

/// The public URL of a signed requester link.
pub async fn link(state: &AppState, purpose: Purpose, item: &WorkItem) -> anyhow::Result<String> {
    let key = state.store.secret(links::SIGNING_KEY).await?;
    let token = links::sign(&key, purpose, item.id(), state.clock.now());
    let path = match purpose {
        Purpose::Csat => "csat",
        Purpose::Reply => "replies",
    };
    Ok(format!(
        "{}/api/v1/public/{path}/{token}",
        state.config.public_url.trim_end_matches('/')
    ))
}

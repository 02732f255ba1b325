//! The e-mail channel (the messages themselves are `delego_mail`'s): mail taken in from
//! the inbound endpoint or from a watched maildir per engagement becomes an item, or the
//! requester's reply on one; a bounce is recorded on the item whose mail it returns; and
//! public replies and notices go out over SMTP from a queue that survives a restart.
//!
//! Loops are stopped three ways: automatic mail (out-of-office replies, lists, bulk mail,
//! delivery reports) never opens an item and is never answered; Delego's own notices say
//! `Auto-Submitted`, so that well-behaved systems do not answer them; and a sender over
//! the engagement's hourly limit is kept aside. Nothing is dropped: what cannot be taken
//! in is kept aside with the reason, for an admin to look at.

use std::path::PathBuf;

use delego_core::definition::{FieldType, ServiceDefinition};
use delego_core::id::{EngagementId, WorkItemId};
use delego_core::model::{Actor, Engagement, MailSettings, Visibility, WorkItem};
use delego_core::values::{EmailAddress, Key, Name, Priority};
use delego_mail::{Inbound, Kind, Mailbox, Outgoing};
use delego_store::{
    Disposition, InboundMail, ItemFilter, NewItem, NewKeptAside, NewMessage, NewOutboundMail,
    OutboundMail, StoreError,
};
use jiff::SignedDuration;
use serde::Serialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use crate::AppState;
use crate::api::attachments;
use crate::error::{ApiError, ApiResult};

/// How a node sends and receives mail.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// The relay mail goes out through; without one, mail waits in the queue.
    pub smtp: Option<delego_mail::Smtp>,
    /// Each engagement with mail reads `<root>/<its address>/` as a maildir.
    pub maildir_root: Option<PathBuf>,
    /// The domain of the `Message-ID`s Delego makes.
    pub domain: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp: None,
            maildir_root: None,
            domain: "delego.localhost".into(),
        }
    }
}

/// Where a message came from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    Maildir,
    Api,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Maildir => "maildir",
            Self::Api => "api",
        }
    }
}

/// What became of a message taken in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Intake {
    /// `opened`, `replied`, `bounce`, `automatic`, `kept_aside` or `duplicate`.
    pub outcome: &'static str,
    /// The item it opened or went on.
    #[schema(value_type = Option<String>)]
    pub item_id: Option<WorkItemId>,
    /// Why it was kept aside.
    pub reason: Option<String>,
}

impl Intake {
    fn on(disposition: Disposition, item: Option<WorkItemId>) -> Self {
        Self {
            outcome: disposition.as_str(),
            item_id: item,
            reason: None,
        }
    }
}

/// The lease of a mail being sent: another node tries it again after this.
const SEND_LEASE: SignedDuration = SignedDuration::from_mins(2);
/// The wait after each failed attempt; after the last, the mail has failed for good.
const RETRY_AFTER: [SignedDuration; 6] = [
    SignedDuration::from_mins(1),
    SignedDuration::from_mins(5),
    SignedDuration::from_mins(15),
    SignedDuration::from_hours(1),
    SignedDuration::from_hours(3),
    SignedDuration::from_hours(6),
];
/// The threading ids a reply carries at most: the oldest and the newest are kept.
const MAX_REFERENCES: usize = 20;

/// Takes one raw message in. `engagement` is the maildir's; a message to the endpoint goes
/// to the engagement whose address is among its recipients. Only store failures are
/// errors: the caller then leaves the message where it is, to try again.
pub async fn take_in(
    state: &AppState,
    raw: &[u8],
    source: Source,
    engagement: Option<&Engagement>,
) -> ApiResult<Intake> {
    let inbound = delego_mail::parse(raw);
    let engagement = match engagement {
        Some(engagement) => Some(engagement.clone()),
        None => match &inbound {
            Ok(inbound) => engagement_for(state, &inbound.recipients).await?,
            Err(_) => None,
        },
    };
    let aside = |reason: String| Aside {
        engagement: engagement.clone(),
        source,
        raw,
        reason,
    };
    let inbound = match inbound {
        Ok(inbound) => inbound,
        Err(malformed) => {
            return aside(format!("unreadable: {}", malformed.reason))
                .keep(state, None)
                .await;
        }
    };
    let Some(engagement) = engagement.clone() else {
        let to = inbound.recipients.join(", ");
        return aside(format!("no engagement has any of its addresses ({to})"))
            .keep(state, Some(&inbound))
            .await;
    };
    let Some(settings) = engagement.settings.mail.clone() else {
        return aside("the engagement takes no mail".into())
            .keep(state, Some(&inbound))
            .await;
    };
    let message_id = inbound.message_id.clone().unwrap_or_else(|| digest_id(raw));
    if state.store.inbound_seen(engagement.id, &message_id).await? {
        return Ok(Intake {
            outcome: "duplicate",
            item_id: None,
            reason: None,
        });
    }
    let taking = Taking {
        state,
        engagement: &engagement,
        settings: &settings,
        inbound: &inbound,
        message_id,
        aside: aside(String::new()),
    };
    match &inbound.kind {
        Kind::Report(report) => taking.bounce(report).await,
        Kind::Automatic { reason } => taking.automatic(reason).await,
        Kind::Personal => taking.personal().await,
    }
}

/// A message to keep aside, and why.
struct Aside<'a> {
    engagement: Option<Engagement>,
    source: Source,
    raw: &'a [u8],
    reason: String,
}

impl Aside<'_> {
    async fn keep(self, state: &AppState, inbound: Option<&Inbound>) -> ApiResult<Intake> {
        tracing::info!(reason = %self.reason, "a mail was kept aside");
        state
            .store
            .keep_aside(NewKeptAside {
                engagement_id: self.engagement.as_ref().map(|e| e.id),
                client_id: self.engagement.as_ref().map(|e| e.client_id),
                source: self.source.as_str().into(),
                reason: self.reason.clone(),
                from_address: inbound.map(|i| i.from.address.clone()),
                subject: inbound.map(|i| i.subject.clone()),
                raw: self.raw.to_vec(),
            })
            .await?;
        Ok(Intake {
            outcome: "kept_aside",
            item_id: None,
            reason: Some(self.reason),
        })
    }

    fn because(mut self, reason: String) -> Self {
        self.reason = reason;
        self
    }
}

/// One readable message being taken in to an engagement with mail.
struct Taking<'a> {
    state: &'a AppState,
    engagement: &'a Engagement,
    settings: &'a MailSettings,
    inbound: &'a Inbound,
    message_id: String,
    aside: Aside<'a>,
}

impl Taking<'_> {
    /// A delivery report: recorded on the item whose mail did not arrive.
    async fn bounce(self, report: &delego_mail::DeliveryReport) -> ApiResult<Intake> {
        let returned = match &report.original_message_id {
            Some(id) => self.state.store.outbound_mail(id).await?,
            None => None,
        };
        let Some(mail) = returned.filter(|mail| mail.engagement_id == self.engagement.id) else {
            let reason = "a delivery report about no mail this engagement sent".to_owned();
            return self
                .aside
                .because(reason)
                .keep(self.state, Some(self.inbound))
                .await;
        };
        let words = [report.status.as_deref(), report.diagnostic.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if report.permanent {
            self.state.store.mail_bounced(mail.id, &words).await?;
        }
        let what = if report.permanent {
            "could not be delivered"
        } else {
            "is delayed; the recipient's server is still trying"
        };
        let note = format!(
            "The mail \"{}\" to {} {what}. {words}",
            mail.subject, mail.to_address
        );
        note_on(self.state, mail.item_id, note).await?;
        self.record(Some(mail.item_id), Disposition::Bounce).await
    }

    /// An automatic message (an out-of-office reply): noted on its item for the agent,
    /// never answered and never an item of its own.
    async fn automatic(self, reason: &str) -> ApiResult<Intake> {
        let Some(item) = self.thread().await? else {
            let reason = format!("an automatic message ({reason}) about no item");
            return self
                .aside
                .because(reason)
                .keep(self.state, Some(self.inbound))
                .await;
        };
        let note = format!(
            "An automatic reply from {} ({reason}), not answered:\n\n{}",
            self.inbound.from, self.inbound.text
        );
        note_on(self.state, item.id(), note).await?;
        self.record(Some(item.id()), Disposition::Automatic).await
    }

    /// Mail a person wrote: the requester's reply on the item it threads to, else a new
    /// item.
    async fn personal(self) -> ApiResult<Intake> {
        let from = &self.inbound.from.address;
        let hour_ago = self.state.clock.now() - SignedDuration::from_hours(1);
        let recent = self
            .state
            .store
            .inbound_from_since(self.engagement.id, from, hour_ago)
            .await?;
        if recent >= u64::from(self.settings.hourly_limit) {
            let reason = format!(
                "more than {} messages from {from} within an hour (a mail loop?)",
                self.settings.hourly_limit
            );
            return self
                .aside
                .because(reason)
                .keep(self.state, Some(self.inbound))
                .await;
        }
        let Ok(address) = EmailAddress::parse(from) else {
            let reason = format!("`{from}` is not an address a reply could go to");
            return self
                .aside
                .because(reason)
                .keep(self.state, Some(self.inbound))
                .await;
        };
        let client = self.engagement.client_id;
        let known = self.state.store.find_requester(client, &address).await?;
        if let Some(item) = self.thread().await?
            && !item.state.position.is_terminal()
        {
            let requester = match known {
                Some(requester) => requester,
                None => {
                    self.state
                        .store
                        .requester_for_email(client, &address, self.name())
                        .await?
                }
            };
            let (attachments, refused) = self
                .store_attachments(&item, Actor::Requester(requester.id))
                .await?;
            self.state
                .store
                .add_message(NewMessage {
                    item_id: item.id(),
                    author: Actor::Requester(requester.id),
                    visibility: Visibility::Public,
                    body: self.text(),
                    attachments,
                    event: Key::parse("requester_reply").ok(),
                    quoted: self.inbound.quoted.clone(),
                })
                .await?;
            note_refused(self.state, item.id(), &refused).await?;
            return self.record(Some(item.id()), Disposition::Replied).await;
        }
        if known.is_none() && !self.settings.open_from_unknown {
            let reason = format!(
                "{from} is not a requester of the client, and the engagement opens no items for unknown senders"
            );
            return self
                .aside
                .because(reason)
                .keep(self.state, Some(self.inbound))
                .await;
        }
        self.open(address).await
    }

    /// A new item from the mail, its attachments stored on it.
    async fn open(self, address: EmailAddress) -> ApiResult<Intake> {
        let state = self.state;
        let definition = state
            .store
            .service(
                &self.engagement.service_key,
                self.engagement.service_version,
            )
            .await?;
        let client = self.engagement.client_id;
        let requester = state
            .store
            .requester_for_email(client, &address, self.name())
            .await?;
        let data = self.intake_data(&definition, &address);
        let created = state
            .store
            .create_item(
                NewItem {
                    engagement_id: self.engagement.id,
                    data,
                    priority: Priority::Normal,
                    requester_id: Some(requester.id),
                    idempotency_key: Some(format!("mail:{}", self.message_id)),
                },
                &Actor::Requester(requester.id),
            )
            .await;
        let item = match created {
            Ok(created) => created.value,
            Err(StoreError::Invalid(problems)) => {
                let problems: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect();
                let reason = format!(
                    "the service needs what the mail does not give ({}); set defaults in the engagement's mail settings",
                    problems.join("; ")
                );
                return self
                    .aside
                    .because(reason)
                    .keep(state, Some(self.inbound))
                    .await;
            }
            Err(other) => return Err(other.into()),
        };
        let (stored, refused) = self
            .store_attachments(&item, Actor::Requester(requester.id))
            .await?;
        if let Some((field, kind)) = attachment_field(&definition)
            && !stored.is_empty()
        {
            let ids: Vec<Json> = stored
                .iter()
                .map(|id| Json::String(id.to_string()))
                .collect();
            let value = match kind {
                FieldType::Attachment => ids[0].clone(),
                _ => Json::Array(ids),
            };
            let changes = Map::from_iter([(field.to_string(), value)]);
            state
                .store
                .update_item_data(item.id(), item.version, changes, &Actor::System)
                .await?;
        }
        note_refused(state, item.id(), &refused).await?;
        if let Some(quoted) = &self.inbound.quoted {
            // The new text is the item's; what it quoted is kept beside it, folded.
            state
                .store
                .add_message(NewMessage {
                    item_id: item.id(),
                    author: Actor::System,
                    visibility: Visibility::Internal,
                    body: "The mail that opened this item quoted earlier messages.".into(),
                    attachments: Vec::new(),
                    event: None,
                    quoted: Some(quoted.clone()),
                })
                .await?;
        }
        self.record(Some(item.id()), Disposition::Opened).await
    }

    /// The intake values of a new item: the engagement's defaults, the subject and text,
    /// the requester's address, and `email` as its channel where the service has one.
    fn intake_data(
        &self,
        definition: &ServiceDefinition,
        address: &EmailAddress,
    ) -> Map<String, Json> {
        let mut data = self.settings.defaults.clone();
        let subject = match self.inbound.subject.trim() {
            "" => "(no subject)".to_owned(),
            subject => subject.to_owned(),
        };
        // Cut to what the fields hold: a long subject must not keep the mail out.
        let fit = |field: &Key, text: String| {
            let most = definition
                .intake
                .field(field.as_str())
                .and_then(|field| field.rules.max_length)
                .map_or(usize::MAX, |most| most as usize);
            Json::String(text.chars().take(most).collect())
        };
        data.insert(
            self.settings.subject_field.to_string(),
            fit(&self.settings.subject_field, subject),
        );
        data.insert(
            self.settings.body_field.to_string(),
            fit(&self.settings.body_field, self.text()),
        );
        if let Some(field) = &definition.requester_field {
            data.insert(field.to_string(), Json::String(address.as_str().to_owned()));
        }
        let channel = definition.intake.field("channel");
        if channel.is_some_and(|field| field.rules.values.iter().any(|v| v == "email")) {
            data.insert("channel".into(), Json::String("email".into()));
        }
        data
    }

    /// The new text, or a word that there was none (a mail of only attachments).
    fn text(&self) -> String {
        match self.inbound.text.trim() {
            "" => "(no text)".to_owned(),
            text => text.to_owned(),
        }
    }

    fn name(&self) -> Option<Name> {
        self.inbound
            .from
            .name
            .as_deref()
            .and_then(|name| Name::parse(name).ok())
    }

    /// The engagement's item the message threads to: by its `In-Reply-To` and `References`,
    /// else by the reference in its subject when it comes from the item's requester.
    /// A merged duplicate leads to the item it was merged into.
    async fn thread(&self) -> ApiResult<Option<WorkItem>> {
        let ids: Vec<String> = self.inbound.thread_ids().map(str::to_owned).collect();
        let store = &self.state.store;
        let mut item = match store.thread_item(self.engagement.id, &ids).await? {
            Some(id) => Some(store.item(id).await?),
            None => self.by_reference().await?,
        };
        while let Some(WorkItem {
            state:
                delego_core::engine::ItemState {
                    position:
                        delego_core::engine::Position::Cancelled {
                            merged_into: Some(into),
                            ..
                        },
                    ..
                },
            ..
        }) = &item
        {
            item = Some(store.item(*into).await?);
        }
        Ok(item)
    }

    async fn by_reference(&self) -> ApiResult<Option<WorkItem>> {
        let Some(reference) = self.inbound.reference() else {
            return Ok(None);
        };
        let candidates = self
            .state
            .store
            .items(&ItemFilter {
                engagement_id: Some(self.engagement.id),
                text: Some(reference.clone()),
                limit: 10,
                ..Default::default()
            })
            .await?;
        let Some(item) = candidates
            .into_iter()
            .find(|item| item.id().reference() == reference)
        else {
            return Ok(None);
        };
        // A token is easily guessed: only the item's own requester may reply by it.
        let requester = match item.requester_id {
            Some(id) => self.state.store.requester(id).await?.email,
            None => None,
        };
        let from_requester = requester.is_some_and(|email| {
            email
                .as_str()
                .eq_ignore_ascii_case(&self.inbound.from.address)
        });
        Ok(from_requester.then_some(item))
    }

    /// Stores the message's attachments on the item; those refused (a type Delego does not
    /// keep, an empty file) are named in the second list, for a note.
    async fn store_attachments(
        &self,
        item: &WorkItem,
        uploaded_by: Actor,
    ) -> ApiResult<(Vec<delego_core::id::AttachmentId>, Vec<String>)> {
        let mut stored = Vec::new();
        let mut refused = Vec::new();
        for attachment in &self.inbound.attachments {
            let size = attachment.bytes.len() as u64;
            let content = futures_util::stream::once(std::future::ready(Ok(
                axum::body::Bytes::from(attachment.bytes.clone()),
            )));
            let kept = attachments::store_file(
                self.state,
                uploaded_by.clone(),
                item,
                Some(attachment.file_name.clone()),
                Some(attachment.content_type.as_str()),
                Some(size),
                content,
            )
            .await;
            match kept {
                Ok(kept) => stored.push(kept.id),
                Err(ApiError::Internal(error)) => return Err(ApiError::Internal(error)),
                Err(refusal) => refused.push(format!("{}: {refusal}", attachment.file_name)),
            }
        }
        Ok((stored, refused))
    }

    async fn record(
        &self,
        item: Option<WorkItemId>,
        disposition: Disposition,
    ) -> ApiResult<Intake> {
        self.state
            .store
            .record_inbound(InboundMail {
                engagement_id: self.engagement.id,
                message_id: self.message_id.clone(),
                item_id: item,
                from_address: self.inbound.from.address.clone(),
                disposition,
            })
            .await?;
        Ok(Intake::on(disposition, item))
    }
}

/// The engagement whose mail address is among `recipients`.
async fn engagement_for(state: &AppState, recipients: &[String]) -> ApiResult<Option<Engagement>> {
    let engagements = state.store.engagements(None).await?;
    Ok(engagements.into_iter().find(|engagement| {
        engagement.settings.mail.as_ref().is_some_and(|mail| {
            recipients
                .iter()
                .any(|to| to.eq_ignore_ascii_case(mail.address.as_str()))
        })
    }))
}

/// An id for a message without a `Message-ID`: the same bytes give the same id, so a
/// message delivered twice is still taken in once.
fn digest_id(raw: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(raw);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{hex}@digest.delego")
}

/// The service's first intake field for attachments, and its type.
fn attachment_field(definition: &ServiceDefinition) -> Option<(&Key, &FieldType)> {
    definition
        .intake
        .fields
        .iter()
        .find_map(|field| match &field.kind {
            FieldType::Attachment => Some((&field.name, &field.kind)),
            FieldType::List(element) if **element == FieldType::Attachment => {
                Some((&field.name, &field.kind))
            }
            _ => None,
        })
}

/// An internal note by the system on the item's thread.
async fn note_on(state: &AppState, item: WorkItemId, body: String) -> ApiResult<()> {
    state
        .store
        .add_message(NewMessage {
            item_id: item,
            author: Actor::System,
            visibility: Visibility::Internal,
            body,
            attachments: Vec::new(),
            event: None,
            quoted: None,
        })
        .await?;
    Ok(())
}

async fn note_refused(state: &AppState, item: WorkItemId, refused: &[String]) -> ApiResult<()> {
    if refused.is_empty() {
        return Ok(());
    }
    let note = format!(
        "Attachments of the mail that were not kept:\n{}",
        refused.join("\n")
    );
    note_on(state, item, note).await
}

/// Queues a mail to the item's requester, if its engagement has mail and the requester an
/// address: an agent's reply (`automatic` false) or a notice. `subject` is a notice's own;
/// otherwise the mail answers the item's subject.
pub async fn queue(
    state: &AppState,
    item: &WorkItem,
    subject: Option<&str>,
    text: &str,
    automatic: bool,
) -> anyhow::Result<Option<OutboundMail>> {
    let engagement = state.store.engagement(item.engagement_id).await?;
    let Some(settings) = &engagement.settings.mail else {
        return Ok(None);
    };
    let definition = state
        .store
        .service(&item.service_key, item.service_version)
        .await?;
    let Some((to_address, to_name)) = recipient(state, item, &definition).await? else {
        return Ok(None);
    };
    let reference = item.id().reference();
    let subject = match subject {
        Some(subject) => delego_mail::subject_with_reference(subject, &reference),
        None => {
            let asked = item
                .state
                .data
                .get(settings.subject_field.as_str())
                .and_then(Json::as_str)
                .unwrap_or(definition.name.as_str());
            delego_mail::reply_subject(asked, &reference)
        }
    };
    let mut references = state.store.item_message_ids(item.id()).await?;
    if references.len() > MAX_REFERENCES {
        // The first message starts the thread; the newest ones keep it together.
        let newest = references.split_off(references.len() - (MAX_REFERENCES - 1));
        references.truncate(1);
        references.extend(newest);
    }
    let text = match &settings.signature {
        Some(signature) => format!("{text}\n\n-- \n{signature}"),
        None => text.to_owned(),
    };
    let mail = state
        .store
        .queue_mail(NewOutboundMail {
            item_id: item.id(),
            message_id: delego_mail::new_message_id(&state.config.mail.domain),
            to_address,
            to_name,
            subject,
            text,
            in_reply_to: references.last().cloned(),
            references,
            automatic,
        })
        .await?;
    Ok(Some(mail))
}

/// The requester's address and name: the requester's own, else the service's requester
/// field.
async fn recipient(
    state: &AppState,
    item: &WorkItem,
    definition: &ServiceDefinition,
) -> anyhow::Result<Option<(String, Option<String>)>> {
    if let Some(id) = item.requester_id {
        let requester = state.store.requester(id).await?;
        if let Some(email) = requester.email {
            let name = requester.name.map(|name| name.to_string());
            return Ok(Some((email.as_str().to_owned(), name)));
        }
    }
    let field = definition
        .requester_field
        .as_ref()
        .and_then(|field| item.state.data.get(field.as_str()))
        .and_then(Json::as_str);
    Ok(field.map(|address| (address.to_owned(), None)))
}

/// Sends the queued mail that is due, through the node's relay. Returns how many went out.
pub async fn send_due(state: &AppState) -> anyhow::Result<usize> {
    let Some(smtp) = &state.config.mail.smtp else {
        return Ok(0);
    };
    let due = state.store.take_due_mail(20, SEND_LEASE).await?;
    let mut sent = 0;
    for mail in due {
        let engagement = state.store.engagement(mail.engagement_id).await?;
        let Some(settings) = &engagement.settings.mail else {
            let why = "the engagement no longer sends mail";
            state.store.mail_failed(mail.id, why, None).await?;
            continue;
        };
        let outgoing = Outgoing {
            from: Mailbox::new(settings.address.as_str(), settings.from_name.clone()),
            to: Mailbox::new(mail.to_address.clone(), mail.to_name.clone()),
            subject: mail.subject.clone(),
            text: mail.text.clone(),
            signature: None,
            message_id: mail.message_id.clone(),
            in_reply_to: mail.in_reply_to.clone(),
            references: mail.references.clone(),
            automatic: mail.automatic,
        };
        match delego_mail::send(smtp, &outgoing).await {
            Ok(()) => {
                state.store.mail_sent(mail.id).await?;
                sent += 1;
            }
            Err(error) => {
                let retry = (!error.is_permanent())
                    .then(|| RETRY_AFTER.get(mail.attempts.saturating_sub(1) as usize))
                    .flatten()
                    .map(|wait| state.clock.now() + *wait);
                let words = error.to_string();
                tracing::warn!(mail = %mail.id, error = %words, retry = ?retry, "sending a mail failed");
                state.store.mail_failed(mail.id, &words, retry).await?;
                if retry.is_none() {
                    let note = format!(
                        "The mail \"{}\" to {} could not be sent: {words}",
                        mail.subject, mail.to_address
                    );
                    note_on(state, mail.item_id, note).await?;
                }
            }
        }
    }
    Ok(sent)
}

/// Takes in the mail waiting in each engagement's maildir, oldest first. A message is
/// marked seen once taken in (or kept aside); one the store failed on stays for the next
/// look.
pub async fn read_maildirs(state: &AppState) -> anyhow::Result<usize> {
    let Some(root) = &state.config.mail.maildir_root else {
        return Ok(0);
    };
    let mut taken = 0;
    for engagement in state.store.engagements(None).await? {
        let Some(settings) = &engagement.settings.mail else {
            continue;
        };
        let dir = root.join(settings.address.as_str());
        let maildir =
            tokio::task::spawn_blocking(move || delego_mail::Maildir::open(dir)).await??;
        let maildir = std::sync::Arc::new(maildir);
        let listed = {
            let maildir = maildir.clone();
            tokio::task::spawn_blocking(move || maildir.new_messages()).await??
        };
        for path in listed {
            let read = {
                let (maildir, path) = (maildir.clone(), path.clone());
                tokio::task::spawn_blocking(move || maildir.read(&path)).await?
            };
            let raw = match read {
                Ok(raw) => raw,
                // Renamed by another node meanwhile.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error.into()),
            };
            match take_in(state, &raw, Source::Maildir, Some(&engagement)).await {
                Ok(_) => {
                    let maildir = maildir.clone();
                    match tokio::task::spawn_blocking(move || maildir.mark_seen(&path)).await? {
                        Ok(_) => taken += 1,
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                        Err(error) => return Err(error.into()),
                    }
                }
                Err(error) => {
                    tracing::warn!(engagement = %engagement.id, %error, "taking in a mail failed; trying again later");
                }
            }
        }
    }
    Ok(taken)
}

/// Checks an engagement's mail settings (`engagement` is `None` for a new one) against its
/// service and the other engagements: the fields named are intake fields that hold text,
/// and no other engagement has the address.
pub async fn check_settings(
    state: &AppState,
    engagement: Option<EngagementId>,
    definition: &ServiceDefinition,
    settings: &MailSettings,
) -> ApiResult<()> {
    for (name, field) in [
        ("settings.mail.subject_field", &settings.subject_field),
        ("settings.mail.body_field", &settings.body_field),
    ] {
        let text = definition
            .intake
            .field(field.as_str())
            .is_some_and(|f| matches!(f.kind, FieldType::Text | FieldType::LongText));
        if !text {
            return Err(ApiError::field(
                name,
                "invalid",
                format!("`{field}` is no text field of the service's intake form"),
            ));
        }
    }
    if settings.hourly_limit == 0 {
        return Err(ApiError::field(
            "settings.mail.hourly_limit",
            "out_of_range",
            "take in at least 1 message an hour",
        ));
    }
    let taken = state
        .store
        .engagements(None)
        .await?
        .into_iter()
        .any(|other| {
            Some(other.id) != engagement
                && other.settings.mail.as_ref().is_some_and(|mail| {
                    mail.address
                        .as_str()
                        .eq_ignore_ascii_case(settings.address.as_str())
                })
        });
    if taken {
        return Err(ApiError::field(
            "settings.mail.address",
            "taken",
            format!("another engagement receives mail at {}", settings.address),
        ));
    }
    Ok(())
}

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
use delego_core::id::{AttachmentId, EngagementId, WorkItemId};
use delego_core::model::{Actor, Engagement, MailSettings, Visibility, WorkItem};
use delego_core::values::{EmailAddress, Key, Name, Priority};
use delego_mail::{Inbound, Kind, Mailbox, Outgoing, OutgoingFile};
use delego_store::{
    Disposition, InboundMail, NewItem, NewKeptAside, NewMessage, NewOutboundMail, OutboundMail,
    StoreError,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It opened a new item.
    Opened,
    /// It went on an item's thread as the requester's reply.
    Replied,
    /// A delivery report, recorded on the item whose mail it returns.
    Bounce,
    /// An automatic message, noted on the item it answers.
    Automatic,
    /// Kept aside, with the reason.
    KeptAside,
    /// Taken in before (or being taken in now): nothing more was done.
    Duplicate,
}

/// What became of a message taken in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Intake {
    pub outcome: Outcome,
    /// The item it opened or went on.
    #[schema(value_type = Option<String>)]
    pub item_id: Option<WorkItemId>,
    /// Why it was kept aside.
    pub reason: Option<String>,
}

impl Intake {
    fn on(outcome: Outcome, item: Option<WorkItemId>) -> Self {
        Self {
            outcome,
            item_id: item,
            reason: None,
        }
    }
}

/// The lease of the mail a node sends: another node tries it again after this. A batch
/// of [`SEND_BATCH`] at the relay's timeout fits well within it.
const SEND_LEASE: SignedDuration = SignedDuration::from_mins(5);
const SEND_BATCH: u32 = 5;
/// The wait after each failed attempt; after the last, the mail has failed for good.
const RETRY_AFTER: [SignedDuration; 6] = [
    SignedDuration::from_mins(1),
    SignedDuration::from_mins(5),
    SignedDuration::from_mins(15),
    SignedDuration::from_hours(1),
    SignedDuration::from_hours(3),
    SignedDuration::from_hours(6),
];
/// A message claimed but never recorded (its node died midway) may be taken in again
/// after this.
const CLAIM_STALE_AFTER: SignedDuration = SignedDuration::from_mins(5);

/// Takes one raw message in. `engagement` is the maildir's; a message to the endpoint goes
/// to the engagement of the first of its recipients that has one. Only store failures are
/// errors: the caller then leaves the message where it is, to try again.
pub async fn take_in(
    state: &AppState,
    raw: &[u8],
    source: Source,
    engagement: Option<&Engagement>,
) -> ApiResult<Intake> {
    // Parsing decodes and converts the whole message: off the async threads.
    let bytes = raw.to_vec();
    let parsed = tokio::task::spawn_blocking(move || delego_mail::parse(&bytes))
        .await
        .map_err(anyhow::Error::from)?;
    let engagement = match (engagement, &parsed) {
        (Some(engagement), _) => Some(engagement.clone()),
        (None, Ok(inbound)) => engagement_for(state, &inbound.recipients).await?,
        (None, Err(_)) => None,
    };
    let aside = Aside {
        engagement: engagement.as_ref(),
        source,
        raw,
    };
    let inbound = match parsed {
        Ok(inbound) => inbound,
        Err(malformed) => {
            let reason = format!("unreadable: {}", malformed.reason);
            return aside.keep(state, None, reason).await;
        }
    };
    let Some(engagement) = &engagement else {
        let to = inbound.recipients.join(", ");
        let reason = format!("no engagement has any of its addresses ({to})");
        return aside.keep(state, Some(&inbound), reason).await;
    };
    let Some(settings) = &engagement.settings.mail else {
        let reason = "the engagement takes no mail".to_owned();
        return aside.keep(state, Some(&inbound), reason).await;
    };
    let message_id = inbound.message_id.clone().unwrap_or_else(|| digest_id(raw));
    let claimed = state
        .store
        .claim_inbound(
            engagement.id,
            &message_id,
            &inbound.from.address,
            CLAIM_STALE_AFTER,
        )
        .await?;
    if !claimed {
        return Ok(Intake::on(Outcome::Duplicate, None));
    }
    let taking = Taking {
        state,
        engagement,
        settings,
        inbound: &inbound,
        message_id,
        aside,
    };
    match &inbound.kind {
        Kind::Report(report) => taking.bounce(report).await,
        Kind::Automatic { reason } => taking.automatic(reason).await,
        Kind::Personal => taking.personal().await,
    }
}

/// Where a message that cannot be taken in is kept aside.
#[derive(Clone, Copy)]
struct Aside<'a> {
    engagement: Option<&'a Engagement>,
    source: Source,
    raw: &'a [u8],
}

impl Aside<'_> {
    async fn keep(
        self,
        state: &AppState,
        inbound: Option<&Inbound>,
        reason: String,
    ) -> ApiResult<Intake> {
        tracing::info!(%reason, "a mail was kept aside");
        state
            .store
            .keep_aside(NewKeptAside {
                engagement_id: self.engagement.map(|e| e.id),
                client_id: self.engagement.map(|e| e.client_id),
                source: self.source.as_str().into(),
                reason: reason.clone(),
                from_address: inbound.map(|i| i.from.address.clone()),
                subject: inbound.map(|i| i.subject.clone()),
                raw: self.raw.to_vec(),
            })
            .await?;
        Ok(Intake {
            outcome: Outcome::KeptAside,
            item_id: None,
            reason: Some(reason),
        })
    }
}

/// One readable message, claimed, being taken in to an engagement with mail.
struct Taking<'a> {
    state: &'a AppState,
    engagement: &'a Engagement,
    settings: &'a MailSettings,
    inbound: &'a Inbound,
    message_id: String,
    aside: Aside<'a>,
}

impl Taking<'_> {
    /// Keeps the message aside, recorded against its sender's hourly limit.
    async fn keep_aside(&self, reason: String) -> ApiResult<Intake> {
        let intake = self
            .aside
            .keep(self.state, Some(self.inbound), reason)
            .await?;
        self.record(None, Disposition::KeptAside).await?;
        Ok(intake)
    }

    /// A delivery report: recorded on the item whose mail did not arrive.
    async fn bounce(self, report: &delego_mail::DeliveryReport) -> ApiResult<Intake> {
        let returned = match &report.original_message_id {
            Some(id) => self.state.store.outbound_mail(id).await?,
            None => None,
        };
        let Some(mail) = returned.filter(|mail| mail.engagement_id == self.engagement.id) else {
            return self
                .keep_aside("a delivery report about no mail this engagement sent".into())
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
        self.record(Some(mail.item_id), Disposition::Bounce).await?;
        Ok(Intake::on(Outcome::Bounce, Some(mail.item_id)))
    }

    /// An automatic message (an out-of-office reply): noted on its item for the agent,
    /// never answered and never an item of its own.
    async fn automatic(self, reason: &str) -> ApiResult<Intake> {
        let Some(item) = self.thread().await? else {
            return self
                .keep_aside(format!("an automatic message ({reason}) about no item"))
                .await;
        };
        let note = format!(
            "An automatic reply from {} ({reason}), not answered:\n\n{}",
            self.inbound.from, self.inbound.text
        );
        note_on(self.state, item.id(), note).await?;
        self.record(Some(item.id()), Disposition::Automatic).await?;
        Ok(Intake::on(Outcome::Automatic, Some(item.id())))
    }

    /// Mail a person wrote: the requester's reply on the item it threads to, else a new
    /// item.
    async fn personal(self) -> ApiResult<Intake> {
        let from = &self.inbound.from.address;
        let hour_ago = self.state.clock.now() - SignedDuration::from_hours(1);
        // This message's own claim is among them.
        let recent = self
            .state
            .store
            .inbound_from_since(self.engagement.id, from, hour_ago)
            .await?;
        if recent > u64::from(self.settings.hourly_limit) {
            let reason = format!(
                "more than {} messages from {from} within an hour (a mail loop?)",
                self.settings.hourly_limit
            );
            return self.keep_aside(reason).await;
        }
        let Ok(address) = EmailAddress::parse(from) else {
            return self
                .keep_aside(format!("`{from}` is not an address a reply could go to"))
                .await;
        };
        let client = self.engagement.client_id;
        let known = self.state.store.find_requester(client, &address).await?;
        if let Some(item) = self.thread().await?
            && !item.state.position.is_terminal()
        {
            // Whoever answers a thread by its ids (a colleague in copy, say) is heard:
            // those ids are not guessable.
            let requester = match known {
                Some(requester) => requester,
                None => {
                    self.state
                        .store
                        .requester_for_email(client, &address, self.name())
                        .await?
                }
            };
            let author = Actor::Requester(requester.id);
            let (attachments, refused) = self.store_attachments(&item, author.clone()).await?;
            self.state
                .store
                .add_message(NewMessage {
                    item_id: item.id(),
                    author,
                    visibility: Visibility::Public,
                    body: self.text(),
                    attachments,
                    event: Key::parse("requester_reply").ok(),
                    quoted: self.inbound.quoted.clone(),
                })
                .await?;
            note_refused(self.state, item.id(), &refused).await?;
            self.record(Some(item.id()), Disposition::Replied).await?;
            return Ok(Intake::on(Outcome::Replied, Some(item.id())));
        }
        if known.is_none() && !self.settings.open_from_unknown {
            let reason = format!(
                "{from} is not a requester of the client, and the engagement opens no items for unknown senders"
            );
            return self.keep_aside(reason).await;
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
                    // A message taken in again after its node died midway finds its item.
                    idempotency_key: Some(format!(
                        "mail:{}:{}",
                        self.engagement.id, self.message_id
                    )),
                },
                &Actor::Requester(requester.id),
            )
            .await;
        let created = match created {
            Ok(created) => created,
            Err(StoreError::Invalid(problems)) => {
                let problems: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect();
                let reason = format!(
                    "the service needs what the mail does not give ({}); set defaults in the engagement's mail settings",
                    problems.join("; ")
                );
                return self.keep_aside(reason).await;
            }
            Err(other) => return Err(other.into()),
        };
        let item = created.value;
        if created.created {
            self.file_on(&item, &definition, Actor::Requester(requester.id))
                .await?;
        }
        self.record(Some(item.id()), Disposition::Opened).await?;
        Ok(Intake::on(Outcome::Opened, Some(item.id())))
    }

    /// Puts what a new item's mail brought beside it: its attachments (in the service's
    /// attachment field, if it has one) and the history it quoted, folded.
    async fn file_on(
        &self,
        item: &WorkItem,
        definition: &ServiceDefinition,
        uploaded_by: Actor,
    ) -> ApiResult<()> {
        let state = self.state;
        let (stored, refused) = self.store_attachments(item, uploaded_by).await?;
        if let Some((field, kind)) = attachment_field(definition)
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
            // An agent may already be at work on the new item: read its version afresh.
            let mut version = item.version;
            for _ in 0..3 {
                let updated = state
                    .store
                    .update_item_data(item.id(), version, changes.clone(), &Actor::System)
                    .await;
                match updated {
                    Err(StoreError::Conflict(_)) => {
                        version = state.store.item(item.id()).await?.version
                    }
                    other => {
                        other?;
                        break;
                    }
                }
            }
        }
        note_refused(state, item.id(), &refused).await?;
        if let Some(quoted) = &self.inbound.quoted {
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
        Ok(())
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
        // Only within the engagement: a merge across engagements leaves the mail here.
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
            let survivor = store.item(*into).await?;
            if survivor.engagement_id != self.engagement.id {
                break;
            }
            item = Some(survivor);
        }
        Ok(item)
    }

    async fn by_reference(&self) -> ApiResult<Option<WorkItem>> {
        let Some(reference) = self.inbound.reference() else {
            return Ok(None);
        };
        let Some(id) = self
            .state
            .store
            .item_by_reference(self.engagement.id, &reference)
            .await?
        else {
            return Ok(None);
        };
        let item = self.state.store.item(id).await?;
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

    async fn record(&self, item: Option<WorkItemId>, disposition: Disposition) -> ApiResult<()> {
        self.state
            .store
            .record_inbound(InboundMail {
                engagement_id: self.engagement.id,
                message_id: self.message_id.clone(),
                item_id: item,
                from_address: self.inbound.from.address.clone(),
                disposition,
                no_auto_reply: self.inbound.auto_reply_suppressed,
            })
            .await?;
        Ok(())
    }
}

/// The engagement of the first recipient that has one: the envelope's (`Delivered-To`)
/// come first, so a message for one engagement with another in copy goes to the first.
async fn engagement_for(state: &AppState, recipients: &[String]) -> ApiResult<Option<Engagement>> {
    let engagements = state.store.engagements(None).await?;
    Ok(recipients.iter().find_map(|to| {
        engagements
            .iter()
            .find(|engagement| {
                engagement
                    .settings
                    .mail
                    .as_ref()
                    .is_some_and(|mail| to.eq_ignore_ascii_case(mail.address.as_str()))
            })
            .cloned()
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
/// address: an agent's reply (`automatic` false) with its files, or a notice. `subject` is a notice's own;
/// otherwise the mail answers the item's subject. `key` names what the mail carries (an
/// outbox message): queued again, it is the same mail and is not queued twice.
pub async fn queue(
    state: &AppState,
    item: &WorkItem,
    key: uuid::Uuid,
    subject: Option<&str>,
    (text, attachments): (&str, &[AttachmentId]),
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
    if automatic && state.store.refuses_auto_replies(item.id()).await? {
        tracing::info!(item = %item.id(), "the requester asked for no automatic replies; the notice is not mailed");
        return Ok(None);
    }
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
    let references = state.store.item_message_ids(item.id()).await?;
    let queued = state
        .store
        .queue_mail(NewOutboundMail {
            item_id: item.id(),
            message_id: format!("{}@{}", key.simple(), state.config.mail.domain),
            to_address,
            to_name,
            subject,
            text: text.to_owned(),
            in_reply_to: references.last().cloned(),
            references,
            automatic,
            attachments: attachments.to_vec(),
        })
        .await;
    match queued {
        Ok(mail) => Ok(Some(mail)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(other) => Err(other.into()),
    }
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

/// Sends the queued mail that is due, through the node's relay, with the engagement's
/// From address and signature as they are now. Returns how many went out.
pub async fn send_due(state: &AppState) -> anyhow::Result<usize> {
    let Some(smtp) = &state.config.mail.smtp else {
        return Ok(0);
    };
    let due = state.store.take_due_mail(SEND_BATCH, SEND_LEASE).await?;
    let mut sent = 0;
    for mail in due {
        let Err(failure) = attempt(state, smtp, &mail).await? else {
            state.store.mail_sent(mail.id).await?;
            sent += 1;
            continue;
        };
        let retry = (!failure.permanent)
            .then(|| RETRY_AFTER.get(mail.attempts.saturating_sub(1) as usize))
            .flatten()
            .map(|wait| state.clock.now() + *wait);
        let words = failure.words;
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
    Ok(sent)
}

/// Why an attempt to send a mail failed, and whether trying again could help.
struct Failure {
    words: String,
    permanent: bool,
}

/// One attempt at a mail, with the engagement's From address and signature as they are
/// now. Only the store's own failures are errors.
async fn attempt(
    state: &AppState,
    smtp: &delego_mail::Smtp,
    mail: &OutboundMail,
) -> anyhow::Result<Result<(), Failure>> {
    let engagement = state.store.engagement(mail.engagement_id).await?;
    let Some(settings) = &engagement.settings.mail else {
        let words = "the engagement no longer sends mail".to_owned();
        return Ok(Err(Failure {
            words,
            permanent: true,
        }));
    };
    let attachments = match files(state, &mail.attachments).await {
        Ok(files) => files,
        // A file that cannot be read now may be readable later.
        Err(error) => {
            let words = format!("a file of the mail could not be read: {error:#}");
            return Ok(Err(Failure {
                words,
                permanent: false,
            }));
        }
    };
    let outgoing = Outgoing {
        from: Mailbox::new(settings.address.as_str(), settings.from_name.clone()),
        to: Mailbox::new(mail.to_address.clone(), mail.to_name.clone()),
        subject: mail.subject.clone(),
        text: mail.text.clone(),
        signature: settings.signature.clone(),
        message_id: mail.message_id.clone(),
        in_reply_to: mail.in_reply_to.clone(),
        references: mail.references.clone(),
        automatic: mail.automatic,
        attachments,
    };
    Ok(delego_mail::send(smtp, &outgoing)
        .await
        .map_err(|error| Failure {
            permanent: error.is_permanent(),
            words: error.to_string(),
        }))
}

/// The files a mail carries, read whole: their names and types from the store, their
/// bytes from the blob store.
async fn files(state: &AppState, ids: &[AttachmentId]) -> anyhow::Result<Vec<OutgoingFile>> {
    use futures_util::TryStreamExt;
    let mut files = Vec::with_capacity(ids.len());
    for id in ids {
        let attachment = state.store.attachment(*id).await?;
        let blob = state.blobs.open(*id).await?;
        let chunks: Vec<axum::body::Bytes> = blob.content.try_collect().await?;
        files.push(OutgoingFile {
            file_name: attachment.filename,
            content_type: attachment.content_type,
            bytes: chunks.concat(),
        });
    }
    Ok(files)
}

/// Takes in the mail waiting in each engagement's maildir, oldest first. A message is
/// marked seen once taken in or kept aside. One the store failed on is kept aside with
/// the failure, so that it is looked at rather than tried forever; if even that fails (the
/// database is down) it stays for the next look. One engagement's trouble does not hold
/// back the others'.
pub async fn read_maildirs(state: &AppState) -> anyhow::Result<usize> {
    let Some(root) = &state.config.mail.maildir_root else {
        return Ok(0);
    };
    let mut taken = 0;
    for engagement in state.store.engagements(None).await? {
        let Some(settings) = &engagement.settings.mail else {
            continue;
        };
        let dir = root.join(settings.address.as_str().to_lowercase());
        match read_maildir(state, &engagement, dir).await {
            Ok(n) => taken += n,
            Err(error) => {
                tracing::warn!(engagement = %engagement.id, error = format!("{error:#}"), "reading a maildir failed");
            }
        }
    }
    Ok(taken)
}

async fn read_maildir(
    state: &AppState,
    engagement: &Engagement,
    dir: PathBuf,
) -> anyhow::Result<usize> {
    let maildir = std::sync::Arc::new(
        tokio::task::spawn_blocking(move || delego_mail::Maildir::open(dir)).await??,
    );
    let listed = {
        let maildir = maildir.clone();
        tokio::task::spawn_blocking(move || maildir.new_messages()).await??
    };
    let mut taken = 0;
    for path in listed {
        let read = {
            let (maildir, path) = (maildir.clone(), path.clone());
            tokio::task::spawn_blocking(move || maildir.read(&path)).await?
        };
        let raw = match read {
            Ok(raw) => raw,
            // Taken by another node meanwhile.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error.into()),
        };
        if let Err(error) = take_in(state, &raw, Source::Maildir, Some(engagement)).await {
            tracing::warn!(engagement = %engagement.id, %error, "taking in a mail failed; keeping it aside");
            let aside = Aside {
                engagement: Some(engagement),
                source: Source::Maildir,
                raw: &raw,
            };
            aside
                .keep(state, None, format!("could not be taken in: {error}"))
                .await?;
        }
        let maildir = maildir.clone();
        match tokio::task::spawn_blocking(move || maildir.mark_seen(&path)).await? {
            Ok(_) => taken += 1,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
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
    // The address names the engagement's maildir: it must stay one directory.
    let local = settings
        .address
        .as_str()
        .split('@')
        .next()
        .unwrap_or_default();
    if local.starts_with('.') || local.contains(['/', '\\']) || local.contains("..") {
        return Err(ApiError::field(
            "settings.mail.address",
            "invalid",
            "an address for mail has no `/`, `\\` or `..` and does not start with `.`",
        ));
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

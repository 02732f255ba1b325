//! The [`crate::Mail`] logic both backends share, instantiated per database type by
//! [`impl_mail!`] beside [`impl_store!`]. Only taking due mail differs between the dialects:
//! PostgreSQL skips the rows another node is taking (`$skip_locked`); SQLite has one
//! writer, so nobody else is.

macro_rules! mail_out_columns {
    () => {
        "id, client_id, engagement_id, item_id, message_id, to_address, to_name, subject, text, \
         in_reply_to, references_, automatic, status, attempts, next_attempt_at, last_error, \
         created_at, sent_at, attachments"
    };
}

macro_rules! kept_aside_columns {
    () => {
        "id, engagement_id, client_id, source, reason, from_address, subject, size, received_at"
    };
}

/// Implements [`crate::Mail`] for `$store`, which `impl_store!` has already been
/// instantiated for in the same module (it supplies `begin_write`, `now` and
/// `insert_audit`). `skip_locked` is the clause that leaves rows locked by another
/// transaction to it, as `impl_store!` has it. As with `impl_registers!`, the code lives in a
/// child module.
macro_rules! impl_mail {
    (store = $store:ident, db = $db:ty, skip_locked = $skip_locked:literal, id_hex = $id_hex:literal $(,)?) => {
        mod mail_impl {
            use delego_core::id::{AttachmentId, ClientId, EngagementId, WorkItemId};
            use delego_core::model::Actor;
            use jiff::{SignedDuration, Timestamp};
            use serde_json::{Map, Value as Json, json};
            use sqlx::Row as _;
            use sqlx::types::Json as SqlJson;
            use uuid::Uuid;

            use super::$store;
            use crate::mail::{
                InboundMail, KeptAside, MailStatus, NewKeptAside, NewOutboundMail,
                OutboundMail,
            };
            use crate::rows::{micros, optional_timestamp, timestamp};
            use crate::sql_directory::{corrupt, missing_reference};
            use crate::{Result, StoreError};

            type DbRow = <$db as sqlx::Database>::Row;

            fn status(text: &str) -> Result<MailStatus> {
                [MailStatus::Queued, MailStatus::Sent, MailStatus::Failed, MailStatus::Bounced]
                    .into_iter()
                    .find(|status| status.as_str() == text)
                    .ok_or_else(|| StoreError::Corrupt(format!("mail status {text}")))
            }

            fn mail_from_row(row: &DbRow) -> Result<OutboundMail> {
                Ok(OutboundMail {
                    id: row.try_get(0)?,
                    client_id: ClientId::from_uuid(row.try_get(1)?),
                    engagement_id: EngagementId::from_uuid(row.try_get(2)?),
                    item_id: WorkItemId::from_uuid(row.try_get(3)?),
                    message_id: row.try_get(4)?,
                    to_address: row.try_get(5)?,
                    to_name: row.try_get(6)?,
                    subject: row.try_get(7)?,
                    text: row.try_get(8)?,
                    in_reply_to: row.try_get(9)?,
                    references: row.try_get::<SqlJson<Vec<String>>, _>(10)?.0,
                    automatic: row.try_get(11)?,
                    status: status(&row.try_get::<String, _>(12)?)?,
                    attempts: u32::try_from(row.try_get::<i64, _>(13)?).map_err(corrupt)?,
                    next_attempt_at: optional_timestamp(row.try_get(14)?)?,
                    last_error: row.try_get(15)?,
                    created_at: timestamp(row.try_get(16)?)?,
                    sent_at: optional_timestamp(row.try_get(17)?)?,
                    attachments: row.try_get::<SqlJson<Vec<AttachmentId>>, _>(18)?.0,
                })
            }

            fn kept_aside_from_row(row: &DbRow) -> Result<KeptAside> {
                Ok(KeptAside {
                    id: row.try_get(0)?,
                    engagement_id: row.try_get::<Option<Uuid>, _>(1)?.map(EngagementId::from_uuid),
                    client_id: row.try_get::<Option<Uuid>, _>(2)?.map(ClientId::from_uuid),
                    source: row.try_get(3)?,
                    reason: row.try_get(4)?,
                    from_address: row.try_get(5)?,
                    subject: row.try_get(6)?,
                    size: u64::try_from(row.try_get::<i64, _>(7)?).map_err(corrupt)?,
                    received_at: timestamp(row.try_get(8)?)?,
                })
            }

            fn detail(value: Json) -> Map<String, Json> {
                value.as_object().cloned().unwrap_or_default()
            }

            /// Audits `action` on a mail's item, by the system: the mail, its message id and
            /// recipient from `row` (`RETURNING client_id, item_id, message_id, to_address`),
            /// and the fields of `extra`.
            async fn audit_mail(
                tx: &mut sqlx::Transaction<'static, $db>,
                row: &DbRow,
                id: Uuid,
                action: &str,
                extra: Json,
                now: Timestamp,
            ) -> Result<()> {
                let mut detail = detail(json!({
                    "mail": id,
                    "message_id": row.try_get::<String, _>(2)?,
                    "to": row.try_get::<String, _>(3)?,
                }));
                detail.extend(extra.as_object().cloned().unwrap_or_default());
                $store::insert_audit(
                    tx,
                    Some(ClientId::from_uuid(row.try_get(0)?)),
                    Some(WorkItemId::from_uuid(row.try_get(1)?)),
                    &Actor::System,
                    action,
                    detail,
                    now,
                )
                .await
            }

            /// The client of an engagement; an unknown engagement is `NotFound`.
            async fn engagement_client(
                conn: &mut <$db as sqlx::Database>::Connection,
                engagement: EngagementId,
            ) -> Result<ClientId> {
                sqlx::query_scalar::<_, Uuid>("SELECT client_id FROM engagements WHERE id = $1")
                    .bind(engagement.as_uuid())
                    .fetch_optional(conn)
                    .await?
                    .map(ClientId::from_uuid)
                    .ok_or(StoreError::NotFound("engagement"))
            }

            /// Whether a mail with this id exists: tells an unknown id (`NotFound`) from one
            /// whose status let an update change nothing.
            async fn mail_exists(conn: &mut <$db as sqlx::Database>::Connection, id: Uuid) -> Result<()> {
                sqlx::query_scalar::<_, Uuid>("SELECT id FROM mail_out WHERE id = $1")
                    .bind(id)
                    .fetch_optional(conn)
                    .await?
                    .map(|_| ())
                    .ok_or(StoreError::NotFound("mail"))
            }

            #[async_trait::async_trait]
            impl crate::Mail for $store {
                async fn claim_inbound(
                    &self,
                    engagement: EngagementId,
                    message_id: &str,
                    from_address: &str,
                    stale_after: jiff::SignedDuration,
                ) -> Result<bool> {
                    let now = self.now();
                    let mut tx = self.begin_write().await?;
                    let claimed = sqlx::query(
                        "INSERT INTO mail_in \
                         (id, engagement_id, message_id, item_id, from_address, disposition, received_at) \
                         VALUES ($1, $2, $3, NULL, $4, 'pending', $5) \
                         ON CONFLICT (engagement_id, message_id) DO NOTHING",
                    )
                    .bind(Uuid::now_v7())
                    .bind(engagement.as_uuid())
                    .bind(message_id)
                    .bind(from_address.to_lowercase())
                    .bind(micros(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| missing_reference(e, "engagement"))?
                    .rows_affected()
                        > 0;
                    // A claim its node never recorded, from before `stale_after`: taken over.
                    let claimed = claimed
                        || sqlx::query(
                            "UPDATE mail_in SET received_at = $3 \
                             WHERE engagement_id = $1 AND message_id = $2 AND disposition = 'pending' \
                             AND received_at <= $4",
                        )
                        .bind(engagement.as_uuid())
                        .bind(message_id)
                        .bind(micros(now))
                        .bind(micros(now.checked_sub(stale_after).unwrap_or(now)))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                            > 0;
                    tx.commit().await?;
                    Ok(claimed)
                }

                async fn record_inbound(&self, mail: InboundMail) -> Result<bool> {
                    let now = self.now();
                    let from_address = mail.from_address.to_lowercase();
                    let mut tx = self.begin_write().await?;
                    let client = engagement_client(&mut tx, mail.engagement_id).await?;
                    if let Some(item) = mail.item_id {
                        // An item of another engagement (so perhaps of another client) would
                        // let that engagement's mail find it by its ids.
                        let of: Option<Uuid> =
                            sqlx::query_scalar("SELECT engagement_id FROM work_items WHERE id = $1")
                                .bind(item.as_uuid())
                                .fetch_optional(&mut *tx)
                                .await?;
                        if of != Some(mail.engagement_id.as_uuid()) {
                            return Err(StoreError::NotFound("item"));
                        }
                    }
                    let claimed = sqlx::query(
                        "UPDATE mail_in SET item_id = $3, from_address = $4, disposition = $5, received_at = $6, \
                         no_auto_reply = $7 \
                         WHERE engagement_id = $1 AND message_id = $2 AND disposition = 'pending'",
                    )
                    .bind(mail.engagement_id.as_uuid())
                    .bind(&mail.message_id)
                    .bind(mail.item_id.map(|item| item.as_uuid()))
                    .bind(&from_address)
                    .bind(mail.disposition.as_str())
                    .bind(micros(now))
                    .bind(mail.no_auto_reply)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        > 0;
                    let recorded = claimed
                        || sqlx::query(
                            "INSERT INTO mail_in \
                             (id, engagement_id, message_id, item_id, from_address, disposition, received_at, no_auto_reply) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                             ON CONFLICT (engagement_id, message_id) DO NOTHING",
                        )
                        .bind(Uuid::now_v7())
                        .bind(mail.engagement_id.as_uuid())
                        .bind(&mail.message_id)
                        .bind(mail.item_id.map(|item| item.as_uuid()))
                        .bind(&from_address)
                        .bind(mail.disposition.as_str())
                        .bind(micros(now))
                        .bind(mail.no_auto_reply)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                            > 0;
                    if !recorded {
                        return Ok(false);
                    }
                    let detail = detail(json!({
                        "message_id": mail.message_id,
                        "from": from_address,
                        "disposition": mail.disposition,
                    }));
                    Self::insert_audit(
                        &mut tx,
                        Some(client),
                        mail.item_id,
                        &Actor::System,
                        "mail.received",
                        detail,
                        now,
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn item_by_reference(
                    &self,
                    engagement: EngagementId,
                    reference: &str,
                ) -> Result<Option<WorkItemId>> {
                    let digits = reference.to_ascii_lowercase();
                    if digits.len() != 8 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Ok(None);
                    }
                    let found: Option<Uuid> = sqlx::query_scalar(concat!(
                        "SELECT id FROM work_items WHERE engagement_id = $1 AND ", $id_hex, " LIKE $2 \
                         ORDER BY id DESC LIMIT 1"
                    ))
                    .bind(engagement.as_uuid())
                    .bind(format!("%{digits}"))
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(found.map(WorkItemId::from_uuid))
                }

                async fn thread_item(
                    &self,
                    engagement: EngagementId,
                    ids: &[String],
                ) -> Result<Option<WorkItemId>> {
                    let mut conn = self.pool.acquire().await?;
                    let mut tried = std::collections::HashSet::new();
                    for id in ids.iter().filter(|id| !id.is_empty()) {
                        if !tried.insert(id.as_str()) {
                            continue;
                        }
                        let item: Option<Uuid> = sqlx::query_scalar(
                            "SELECT item_id FROM mail_in \
                             WHERE engagement_id = $1 AND message_id = $2 AND item_id IS NOT NULL \
                             UNION ALL \
                             SELECT item_id FROM mail_out WHERE engagement_id = $1 AND message_id = $2 \
                             LIMIT 1",
                        )
                        .bind(engagement.as_uuid())
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                        if let Some(item) = item {
                            return Ok(Some(WorkItemId::from_uuid(item)));
                        }
                    }
                    Ok(None)
                }

                async fn inbound_from_since(
                    &self,
                    engagement: EngagementId,
                    from_address: &str,
                    since: Timestamp,
                ) -> Result<u64> {
                    let count: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM mail_in \
                         WHERE engagement_id = $1 AND from_address = $2 AND received_at >= $3",
                    )
                    .bind(engagement.as_uuid())
                    .bind(from_address.to_lowercase())
                    .bind(micros(since))
                    .fetch_one(&self.pool)
                    .await?;
                    u64::try_from(count).map_err(corrupt)
                }

                async fn item_message_ids(&self, item: WorkItemId) -> Result<Vec<String>> {
                    // Mail of the same instant goes in the order it was recorded: both
                    // tables' ids are UUIDv7s.
                    let found = sqlx::query(
                        "SELECT message_id, at, id FROM ( \
                             SELECT message_id, received_at AS at, id FROM mail_in \
                             WHERE item_id = $1 AND disposition IN ('opened', 'replied') \
                             UNION ALL \
                             SELECT message_id, created_at AS at, id FROM mail_out WHERE item_id = $1 \
                         ) AS thread ORDER BY at, id",
                    )
                    .bind(item.as_uuid())
                    .fetch_all(&self.pool)
                    .await?;
                    found.iter().map(|row| Ok(row.try_get(0)?)).collect()
                }

                async fn refuses_auto_replies(&self, item: WorkItemId) -> Result<bool> {
                    let latest: Option<bool> = sqlx::query_scalar(
                        "SELECT no_auto_reply FROM mail_in \
                         WHERE item_id = $1 AND disposition IN ('opened', 'replied') \
                         ORDER BY received_at DESC, id DESC LIMIT 1",
                    )
                    .bind(item.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(latest.unwrap_or(false))
                }

                async fn queue_mail(&self, mail: NewOutboundMail) -> Result<OutboundMail> {
                    let now = self.now();
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query("SELECT client_id, engagement_id FROM work_items WHERE id = $1")
                        .bind(mail.item_id.as_uuid())
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(StoreError::NotFound("item"))?;
                    let queued = OutboundMail {
                        id: Uuid::now_v7(),
                        client_id: ClientId::from_uuid(row.try_get(0)?),
                        engagement_id: EngagementId::from_uuid(row.try_get(1)?),
                        item_id: mail.item_id,
                        message_id: mail.message_id,
                        to_address: mail.to_address,
                        to_name: mail.to_name,
                        subject: mail.subject,
                        text: mail.text,
                        in_reply_to: mail.in_reply_to,
                        references: mail.references,
                        automatic: mail.automatic,
                        status: MailStatus::Queued,
                        attempts: 0,
                        next_attempt_at: Some(now),
                        last_error: None,
                        created_at: now,
                        sent_at: None,
                        attachments: mail.attachments,
                    };
                    sqlx::query(concat!(
                        "INSERT INTO mail_out (", mail_out_columns!(), ") VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
                    ))
                    .bind(queued.id)
                    .bind(queued.client_id.as_uuid())
                    .bind(queued.engagement_id.as_uuid())
                    .bind(queued.item_id.as_uuid())
                    .bind(&queued.message_id)
                    .bind(&queued.to_address)
                    .bind(&queued.to_name)
                    .bind(&queued.subject)
                    .bind(&queued.text)
                    .bind(&queued.in_reply_to)
                    .bind(SqlJson(&queued.references))
                    .bind(queued.automatic)
                    .bind(queued.status.as_str())
                    .bind(i64::from(queued.attempts))
                    .bind(Some(micros(now)))
                    .bind(None::<String>)
                    .bind(micros(now))
                    .bind(None::<i64>)
                    .bind(SqlJson(&queued.attachments))
                    .execute(&mut *tx)
                    .await
                    .map_err(|error| match &error {
                        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(
                            format!("a mail with message id {} is already queued", queued.message_id),
                        ),
                        _ => StoreError::Database(error),
                    })?;
                    tx.commit().await?;
                    Ok(queued)
                }

                async fn take_due_mail(&self, limit: u32, lease: SignedDuration) -> Result<Vec<OutboundMail>> {
                    if limit == 0 {
                        return Ok(Vec::new());
                    }
                    let now = self.now();
                    let until = now.checked_add(lease).unwrap_or(Timestamp::MAX);
                    let mut tx = self.begin_write().await?;
                    // One statement counts the attempt and puts the mail off by the lease in
                    // the transaction that picked it; rows another node is taking are skipped.
                    let taken = sqlx::query(concat!(
                        "UPDATE mail_out SET attempts = attempts + 1, next_attempt_at = $2 \
                         WHERE id IN (SELECT id FROM mail_out \
                             WHERE status = 'queued' AND next_attempt_at <= $1 \
                             ORDER BY created_at, id LIMIT $3", $skip_locked, ") \
                         RETURNING ", mail_out_columns!()
                    ))
                    .bind(micros(now))
                    .bind(micros(until))
                    .bind(i64::from(limit.min(1000)))
                    .fetch_all(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    let mut taken = taken.iter().map(mail_from_row).collect::<Result<Vec<_>>>()?;
                    taken.sort_by_key(|mail| (mail.created_at, mail.id));
                    Ok(taken)
                }

                async fn mail_sent(&self, id: Uuid) -> Result<()> {
                    let now = self.now();
                    let mut tx = self.begin_write().await?;
                    // The relay's word wins over an earlier verdict, but a bounce came after it.
                    let changed = sqlx::query(
                        "UPDATE mail_out SET status = 'sent', sent_at = $2, next_attempt_at = NULL \
                         WHERE id = $1 AND status <> 'bounced'",
                    )
                    .bind(id)
                    .bind(micros(now))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if changed == 0 {
                        mail_exists(&mut tx, id).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn mail_failed(&self, id: Uuid, error: &str, retry_at: Option<Timestamp>) -> Result<()> {
                    let now = self.now();
                    let mut tx = self.begin_write().await?;
                    // Only a queued mail: a late report from a node whose lease ran out must
                    // not undo another node's delivery.
                    let row = sqlx::query(
                        "UPDATE mail_out SET status = $3, next_attempt_at = $4, last_error = $2 \
                         WHERE id = $1 AND status = 'queued' \
                         RETURNING client_id, item_id, message_id, to_address, attempts",
                    )
                    .bind(id)
                    .bind(error)
                    .bind(if retry_at.is_some() { MailStatus::Queued } else { MailStatus::Failed }.as_str())
                    .bind(retry_at.map(micros))
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        mail_exists(&mut tx, id).await?;
                        return Ok(());
                    };
                    if retry_at.is_none() {
                        let attempts = row.try_get::<i64, _>(4)?;
                        let extra = json!({"attempts": attempts, "error": error});
                        audit_mail(&mut tx, &row, id, "mail.failed", extra, now).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn outbound_mail(&self, message_id: &str) -> Result<Option<OutboundMail>> {
                    sqlx::query(concat!("SELECT ", mail_out_columns!(), " FROM mail_out WHERE message_id = $1"))
                        .bind(message_id)
                        .fetch_optional(&self.pool)
                        .await?
                        .map(|row| mail_from_row(&row))
                        .transpose()
                }

                async fn mail_bounced(&self, id: Uuid, detail_text: &str) -> Result<()> {
                    let now = self.now();
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query(
                        "UPDATE mail_out SET status = 'bounced', next_attempt_at = NULL, last_error = $2 \
                         WHERE id = $1 RETURNING client_id, item_id, message_id, to_address",
                    )
                    .bind(id)
                    .bind(detail_text)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound("mail"))?;
                    let extra = json!({"detail": detail_text});
                    audit_mail(&mut tx, &row, id, "mail.bounced", extra, now).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn item_mail(&self, item: WorkItemId) -> Result<Vec<OutboundMail>> {
                    let found = sqlx::query(concat!(
                        "SELECT ", mail_out_columns!(), " FROM mail_out WHERE item_id = $1 ORDER BY created_at, id"
                    ))
                    .bind(item.as_uuid())
                    .fetch_all(&self.pool)
                    .await?;
                    found.iter().map(mail_from_row).collect()
                }

                async fn keep_aside(&self, message: NewKeptAside) -> Result<KeptAside> {
                    let now = self.now();
                    let size = i64::try_from(message.raw.len()).map_err(corrupt)?;
                    let mut tx = self.begin_write().await?;
                    // A message of an engagement is its client's, whatever the caller said:
                    // a client's list never shows another client's mail.
                    let client_id = match message.engagement_id {
                        Some(engagement) => Some(engagement_client(&mut tx, engagement).await?),
                        None => message.client_id,
                    };
                    let kept = KeptAside {
                        id: Uuid::now_v7(),
                        engagement_id: message.engagement_id,
                        client_id,
                        source: message.source,
                        reason: message.reason,
                        from_address: message.from_address,
                        subject: message.subject,
                        size: u64::try_from(size).map_err(corrupt)?,
                        received_at: now,
                    };
                    sqlx::query(
                        "INSERT INTO mail_kept_aside (id, engagement_id, client_id, source, reason, \
                         from_address, subject, raw, size, received_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(kept.id)
                    .bind(kept.engagement_id.map(|e| e.as_uuid()))
                    .bind(kept.client_id.map(|c| c.as_uuid()))
                    .bind(&kept.source)
                    .bind(&kept.reason)
                    .bind(&kept.from_address)
                    .bind(&kept.subject)
                    .bind(&message.raw)
                    .bind(size)
                    .bind(micros(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| missing_reference(e, "client"))?;
                    tx.commit().await?;
                    Ok(kept)
                }

                async fn kept_aside(&self, client: Option<ClientId>, limit: u32) -> Result<Vec<KeptAside>> {
                    let found = sqlx::query(concat!(
                        "SELECT ", kept_aside_columns!(), " FROM mail_kept_aside \
                         WHERE ($1 IS NULL OR client_id = $1) ORDER BY received_at DESC, id DESC LIMIT $2"
                    ))
                    .bind(client.map(|c| c.as_uuid()))
                    .bind(i64::from(limit.clamp(1, 1000)))
                    .fetch_all(&self.pool)
                    .await?;
                    found.iter().map(kept_aside_from_row).collect()
                }

                async fn kept_aside_message(&self, id: Uuid) -> Result<(KeptAside, Vec<u8>)> {
                    let row = sqlx::query(concat!(
                        "SELECT ", kept_aside_columns!(), ", raw FROM mail_kept_aside WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound("kept-aside message"))?;
                    Ok((kept_aside_from_row(&row)?, row.try_get(9)?))
                }
            }
        }
    };
}

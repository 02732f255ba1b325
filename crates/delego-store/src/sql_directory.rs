//! The [`crate::Directory`] logic both backends share, written once and instantiated per
//! database type by [`impl_directory!`], beside [`impl_store!`]. The only dialect
//! difference is how the database makes random bytes for a new secret.

use delego_core::values::EmailAddress;

use crate::StoreError;

/// The form of an address that uniqueness is checked on: `A@x.com` and `a@x.com` reach the
/// same mailbox in practice, so they must not make two users or two requesters. Computed
/// here rather than with SQL `lower()`, which differs between the backends outside ASCII.
pub fn email_key(email: &EmailAddress) -> String {
    email.as_str().to_lowercase()
}

/// A foreign-key violation means the referenced row is missing: report it as `NotFound`.
pub fn missing_reference(error: sqlx::Error, what: &'static str) -> StoreError {
    match &error {
        sqlx::Error::Database(db)
            if matches!(db.kind(), sqlx::error::ErrorKind::ForeignKeyViolation) =>
        {
            StoreError::NotFound(what)
        }
        _ => StoreError::Database(error),
    }
}

pub fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

// Users are read joined with sessions, so their columns carry the alias `u`.
macro_rules! user_columns {
    () => {
        "u.id, u.email, u.name, u.role, u.client_id, u.worker_id, u.created_at, u.language, \
         u.time_zone"
    };
}

macro_rules! token_columns {
    () => {
        "id, user_id, name, prefix, created_at, last_used_at, revoked_at"
    };
}

macro_rules! requester_columns {
    () => {
        "id, client_id, name, email, phone"
    };
}

macro_rules! attachment_columns {
    () => {
        "id, client_id, item_id, filename, content_type, size, sha256, uploaded_by, created_at"
    };
}

/// Implements [`crate::Directory`] for `$store`, which `impl_store!` has already been
/// instantiated for in the same module (it supplies `begin_write`, `now`, `insert_audit`
/// and the row decoders used here). The code lives in a child module so that its imports
/// cannot clash with those `impl_store!` makes; a child module still sees the store's
/// private fields and methods.
macro_rules! impl_directory {
    (
        store = $store:ident,
        db = $db:ty,
        random_secret = $random_secret:literal $(,)?
    ) => {
        mod directory_impl {
            use delego_core::definition::FieldError;
            use delego_core::id::{
                ApiTokenId, AttachmentId, ClientId, RequesterId, UserId, WorkItemId, WorkerId,
            };
            use delego_core::identity::{Preferences, Role, User, check_user_shape};
            use delego_core::model::{
                Actor, ApiToken, Attachment, Engagement, Requester, Worker,
            };
            use delego_core::values::{EmailAddress, Name, PhoneNumber};
            use jiff::Timestamp;
            use serde_json::{Map, Value as Json, json};
            use sqlx::Row as _;
            use sqlx::types::Json as SqlJson;
            use uuid::Uuid;

            use super::$store;
            use crate::directory::{NewUser, ServiceVersion};
            use crate::rows::{self, micros, timestamp};
            use crate::sql_directory::{corrupt, email_key, missing_reference};
            use crate::{Result, StoreError};

            type DbRow = <$db as sqlx::Database>::Row;
            type Tx = sqlx::Transaction<'static, $db>;

            const CLIENT_EXISTS: &str = "SELECT 1 FROM clients WHERE id = $1";
            const WORKER_EXISTS: &str = "SELECT 1 FROM workers WHERE id = $1";

            /// The length of every secret `secret` hands out.
            const SECRET_LEN: usize = 32;

            fn detail(value: Json) -> Map<String, Json> {
                match value {
                    Json::Object(map) => map,
                    _ => Map::new(),
                }
            }

            fn user_from_row(row: &DbRow) -> Result<User> {
                Ok(User {
                    id: UserId::from_uuid(row.try_get(0)?),
                    email: EmailAddress::parse(&row.try_get::<String, _>(1)?).map_err(corrupt)?,
                    name: Name::parse(&row.try_get::<String, _>(2)?).map_err(corrupt)?,
                    role: row.try_get::<String, _>(3)?.parse::<Role>().map_err(corrupt)?,
                    client_id: row.try_get::<Option<Uuid>, _>(4)?.map(ClientId::from_uuid),
                    worker_id: row.try_get::<Option<Uuid>, _>(5)?.map(WorkerId::from_uuid),
                    created_at: timestamp(row.try_get(6)?)?,
                    preferences: Preferences {
                        language: row.try_get(7)?,
                        time_zone: row.try_get(8)?,
                    },
                })
            }

            fn token_from_row(row: &DbRow) -> Result<ApiToken> {
                Ok(ApiToken {
                    id: ApiTokenId::from_uuid(row.try_get(0)?),
                    user_id: UserId::from_uuid(row.try_get(1)?),
                    name: Name::parse(&row.try_get::<String, _>(2)?).map_err(corrupt)?,
                    prefix: row.try_get(3)?,
                    created_at: timestamp(row.try_get(4)?)?,
                    last_used_at: rows::optional_timestamp(row.try_get(5)?)?,
                    revoked_at: rows::optional_timestamp(row.try_get(6)?)?,
                })
            }

            fn requester_from_row(row: &DbRow) -> Result<Requester> {
                Ok(Requester {
                    id: RequesterId::from_uuid(row.try_get(0)?),
                    client_id: ClientId::from_uuid(row.try_get(1)?),
                    name: row
                        .try_get::<Option<String>, _>(2)?
                        .map(|n| Name::parse(&n).map_err(corrupt))
                        .transpose()?,
                    email: row
                        .try_get::<Option<String>, _>(3)?
                        .map(|e| EmailAddress::parse(&e).map_err(corrupt))
                        .transpose()?,
                    phone: row
                        .try_get::<Option<String>, _>(4)?
                        .map(|p| PhoneNumber::parse(&p).map_err(corrupt))
                        .transpose()?,
                })
            }

            fn attachment_from_row(row: &DbRow) -> Result<Attachment> {
                Ok(Attachment {
                    id: AttachmentId::from_uuid(row.try_get(0)?),
                    client_id: ClientId::from_uuid(row.try_get(1)?),
                    item_id: row.try_get::<Option<Uuid>, _>(2)?.map(WorkItemId::from_uuid),
                    filename: row.try_get(3)?,
                    content_type: row.try_get(4)?,
                    size: u64::try_from(row.try_get::<i64, _>(5)?).map_err(corrupt)?,
                    sha256: row.try_get(6)?,
                    uploaded_by: rows::from_json(row.try_get::<SqlJson<Json>, _>(7)?.0)?,
                    created_at: timestamp(row.try_get(8)?)?,
                })
            }

            /// The client a user belongs to (`None` for provider staff), for the audit
            /// record of a change to the user's credentials.
            async fn user_client(tx: &mut Tx, id: UserId) -> Result<Option<ClientId>> {
                let client: Option<Option<Uuid>> =
                    sqlx::query_scalar("SELECT client_id FROM users WHERE id = $1")
                        .bind(id.as_uuid())
                        .fetch_optional(&mut **tx)
                        .await?;
                Ok(client.ok_or(StoreError::NotFound("user"))?.map(ClientId::from_uuid))
            }

            async fn exists(tx: &mut Tx, query: &'static str, id: Uuid) -> Result<bool> {
                Ok(sqlx::query(query)
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .is_some())
            }

            #[async_trait::async_trait]
            impl crate::Directory for $store {
                async fn create_user(&self, new: NewUser, actor: &Actor) -> Result<User> {
                    check_user_shape(new.role, new.client_id, new.worker_id).map_err(|e| {
                        StoreError::Invalid(vec![FieldError {
                            field: "role".into(),
                            code: "invalid".into(),
                            message: e.0,
                        }])
                    })?;
                    let user = User {
                        id: UserId::new(),
                        email: new.email,
                        name: new.name,
                        role: new.role,
                        client_id: new.client_id,
                        worker_id: new.worker_id,
                        created_at: self.now(),
                        preferences: Preferences::default(),
                    };
                    let mut tx = self.begin_write().await?;
                    if let Some(client) = user.client_id
                        && !exists(&mut tx, CLIENT_EXISTS, client.as_uuid()).await?
                    {
                        return Err(StoreError::NotFound("client"));
                    }
                    if let Some(worker) = user.worker_id
                        && !exists(&mut tx, WORKER_EXISTS, worker.as_uuid()).await?
                    {
                        return Err(StoreError::NotFound("worker"));
                    }
                    // ON CONFLICT rather than a prior SELECT: two concurrent creates with one
                    // address then give one user and one `Conflict`, not a database error.
                    let inserted = sqlx::query(
                        "INSERT INTO users (id, email, email_key, name, role, client_id, worker_id, \
                         password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (email_key) DO NOTHING",
                    )
                    .bind(user.id.as_uuid())
                    .bind(user.email.as_str())
                    .bind(email_key(&user.email))
                    .bind(user.name.as_str())
                    .bind(user.role.as_str())
                    .bind(user.client_id.map(|c| c.as_uuid()))
                    .bind(user.worker_id.map(|w| w.as_uuid()))
                    .bind(new.password_hash.as_deref())
                    .bind(micros(user.created_at))
                    .execute(&mut *tx)
                    .await?;
                    if inserted.rows_affected() == 0 {
                        return Err(StoreError::Conflict(format!(
                            "a user with e-mail {} exists",
                            user.email
                        )));
                    }
                    let detail = detail(json!({
                        "user": user.id,
                        "email": user.email,
                        "role": user.role,
                        "client": user.client_id,
                        "worker": user.worker_id,
                    }));
                    Self::insert_audit(
                        &mut tx,
                        user.client_id,
                        None,
                        actor,
                        "user.created",
                        detail,
                        user.created_at,
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(user)
                }

                async fn user(&self, id: UserId) -> Result<User> {
                    let row = sqlx::query(concat!(
                        "SELECT ", user_columns!(), " FROM users u WHERE u.id = $1"
                    ))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound("user"))?;
                    user_from_row(&row)
                }

                async fn user_by_email(
                    &self,
                    email: &EmailAddress,
                ) -> Result<(User, Option<String>)> {
                    let row = sqlx::query(concat!(
                        "SELECT ", user_columns!(), ", u.password_hash FROM users u WHERE u.email_key = $1"
                    ))
                    .bind(email_key(email))
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound("user"))?;
                    Ok((user_from_row(&row)?, row.try_get("password_hash")?))
                }

                async fn users(&self, client_id: Option<ClientId>) -> Result<Vec<User>> {
                    let found = sqlx::query(concat!(
                        "SELECT ", user_columns!(), " FROM users u \
                         WHERE ($1 IS NULL OR u.client_id = $1) ORDER BY u.email_key, u.id"
                    ))
                    .bind(client_id.map(|c| c.as_uuid()))
                    .fetch_all(&self.pool)
                    .await?;
                    found.iter().map(user_from_row).collect()
                }

                async fn set_password_hash(
                    &self,
                    id: UserId,
                    hash: &str,
                    actor: &Actor,
                ) -> Result<()> {
                    let now = self.now();
                    let mut tx = self.begin_write().await?;
                    let client = user_client(&mut tx, id).await?;
                    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                        .bind(hash)
                        .bind(id.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                    // The hash itself stays out of the audit log.
                    Self::insert_audit(
                        &mut tx,
                        client,
                        None,
                        actor,
                        "user.password_set",
                        detail(json!({"user": id})),
                        now,
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn set_preferences(
                    &self,
                    id: UserId,
                    preferences: &Preferences,
                    actor: &Actor,
                ) -> Result<()> {
                    let now = self.now();
                    let mut tx = self.begin_write().await?;
                    let client = user_client(&mut tx, id).await?;
                    sqlx::query("UPDATE users SET language = $1, time_zone = $2 WHERE id = $3")
                        .bind(preferences.language.as_deref())
                        .bind(preferences.time_zone.as_deref())
                        .bind(id.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                    Self::insert_audit(
                        &mut tx,
                        client,
                        None,
                        actor,
                        "user.preferences_set",
                        detail(json!({"user": id, "preferences": preferences})),
                        now,
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn create_session(
                    &self,
                    user: UserId,
                    secret_hash: &[u8],
                    expires_at: Timestamp,
                ) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO sessions (secret_hash, user_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(secret_hash)
                    .bind(user.as_uuid())
                    .bind(micros(self.now()))
                    .bind(micros(expires_at))
                    .execute(&self.writer)
                    .await
                    .map_err(|e| missing_reference(e, "user"))?;
                    Ok(())
                }

                async fn session_user(
                    &self,
                    secret_hash: &[u8],
                    now: Timestamp,
                ) -> Result<Option<User>> {
                    sqlx::query(concat!(
                        "SELECT ", user_columns!(), " FROM sessions s JOIN users u ON u.id = s.user_id \
                         WHERE s.secret_hash = $1 AND s.expires_at > $2"
                    ))
                    .bind(secret_hash)
                    .bind(micros(now))
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| user_from_row(&row))
                    .transpose()
                }

                async fn delete_session(&self, secret_hash: &[u8]) -> Result<()> {
                    sqlx::query("DELETE FROM sessions WHERE secret_hash = $1")
                        .bind(secret_hash)
                        .execute(&self.writer)
                        .await?;
                    Ok(())
                }

                async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
                    let deleted = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                        .bind(micros(now))
                        .execute(&self.writer)
                        .await?;
                    Ok(deleted.rows_affected())
                }

                async fn create_api_token(
                    &self,
                    user: UserId,
                    name: Name,
                    secret_hash: &[u8],
                    prefix: &str,
                    actor: &Actor,
                ) -> Result<ApiToken> {
                    let token = ApiToken {
                        id: ApiTokenId::new(),
                        user_id: user,
                        name,
                        prefix: prefix.to_owned(),
                        created_at: self.now(),
                        last_used_at: None,
                        revoked_at: None,
                    };
                    let mut tx = self.begin_write().await?;
                    let client = user_client(&mut tx, user).await?;
                    sqlx::query(concat!(
                        "INSERT INTO api_tokens (", token_columns!(), ", secret_hash) \
                         VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)"
                    ))
                    .bind(token.id.as_uuid())
                    .bind(user.as_uuid())
                    .bind(token.name.as_str())
                    .bind(&token.prefix)
                    .bind(micros(token.created_at))
                    .bind(secret_hash)
                    .execute(&mut *tx)
                    .await?;
                    let detail = detail(json!({
                        "user": user,
                        "token": token.id,
                        "name": token.name,
                        "prefix": token.prefix,
                    }));
                    Self::insert_audit(
                        &mut tx,
                        client,
                        None,
                        actor,
                        "token.created",
                        detail,
                        token.created_at,
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(token)
                }

                async fn api_token_user(
                    &self,
                    secret_hash: &[u8],
                    now: Timestamp,
                ) -> Result<Option<(ApiToken, User)>> {
                    let mut tx = self.begin_write().await?;
                    let Some(row) = sqlx::query(concat!(
                        "UPDATE api_tokens SET last_used_at = $1 \
                         WHERE secret_hash = $2 AND revoked_at IS NULL RETURNING ", token_columns!()
                    ))
                    .bind(micros(now))
                    .bind(secret_hash)
                    .fetch_optional(&mut *tx)
                    .await?
                    else {
                        return Ok(None);
                    };
                    let token = token_from_row(&row)?;
                    let row = sqlx::query(concat!(
                        "SELECT ", user_columns!(), " FROM users u WHERE u.id = $1"
                    ))
                    .bind(token.user_id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await?;
                    let user = user_from_row(&row)?;
                    tx.commit().await?;
                    Ok(Some((token, user)))
                }

                async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>> {
                    let found = sqlx::query(concat!(
                        "SELECT ", token_columns!(), " FROM api_tokens WHERE user_id = $1 \
                         ORDER BY created_at, id"
                    ))
                    .bind(user.as_uuid())
                    .fetch_all(&self.pool)
                    .await?;
                    found.iter().map(token_from_row).collect()
                }

                async fn revoke_api_token(
                    &self,
                    user: UserId,
                    id: ApiTokenId,
                    actor: &Actor,
                ) -> Result<ApiToken> {
                    let now = self.now();
                    let mut tx = self.begin_write().await?;
                    let revoked = sqlx::query(concat!(
                        "UPDATE api_tokens SET revoked_at = $1 \
                         WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL RETURNING ", token_columns!()
                    ))
                    .bind(micros(now))
                    .bind(id.as_uuid())
                    .bind(user.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = revoked else {
                        // Already revoked is success (the caller's wish holds); another
                        // user's token answers like a missing one.
                        let row = sqlx::query(concat!(
                            "SELECT ", token_columns!(), " FROM api_tokens WHERE id = $1 AND user_id = $2"
                        ))
                        .bind(id.as_uuid())
                        .bind(user.as_uuid())
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(StoreError::NotFound("api token"))?;
                        return token_from_row(&row);
                    };
                    let token = token_from_row(&row)?;
                    let client = user_client(&mut tx, user).await?;
                    let detail = detail(json!({"user": user, "token": id, "name": token.name}));
                    Self::insert_audit(&mut tx, client, None, actor, "token.revoked", detail, now)
                        .await?;
                    tx.commit().await?;
                    Ok(token)
                }

                async fn find_requester(
                    &self,
                    client_id: ClientId,
                    email: &EmailAddress,
                ) -> Result<Option<Requester>> {
                    sqlx::query(concat!(
                        "SELECT ", requester_columns!(), " FROM requesters WHERE client_id = $1 AND email_key = $2"
                    ))
                    .bind(client_id.as_uuid())
                    .bind(email_key(email))
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| requester_from_row(&row))
                    .transpose()
                }

                async fn requester_for_email(
                    &self,
                    client_id: ClientId,
                    email: &EmailAddress,
                    name: Option<Name>,
                ) -> Result<Requester> {
                    let select = concat!(
                        "SELECT ", requester_columns!(), " FROM requesters \
                         WHERE client_id = $1 AND email_key = $2"
                    );
                    let key = email_key(email);
                    // Most calls find a known requester: read before taking a write lock.
                    if let Some(row) = sqlx::query(select)
                        .bind(client_id.as_uuid())
                        .bind(&key)
                        .fetch_optional(&self.pool)
                        .await?
                    {
                        return requester_from_row(&row);
                    }
                    // A concurrent first sight of the same address inserts nothing here and
                    // the SELECT below then reads the other call's requester.
                    let mut tx = self.begin_write().await?;
                    sqlx::query(
                        "INSERT INTO requesters (id, client_id, email, email_key, name, phone, created_at) \
                         VALUES ($1, $2, $3, $4, $5, NULL, $6) \
                         ON CONFLICT (client_id, email_key) DO NOTHING",
                    )
                    .bind(RequesterId::new().as_uuid())
                    .bind(client_id.as_uuid())
                    .bind(email.as_str())
                    .bind(&key)
                    .bind(name.as_ref().map(|n| n.as_str().to_owned()))
                    .bind(micros(self.now()))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| missing_reference(e, "client"))?;
                    let row = sqlx::query(select)
                        .bind(client_id.as_uuid())
                        .bind(&key)
                        .fetch_one(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    requester_from_row(&row)
                }

                async fn requester(&self, id: RequesterId) -> Result<Requester> {
                    let row = sqlx::query(concat!(
                        "SELECT ", requester_columns!(), " FROM requesters WHERE id = $1"
                    ))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound("requester"))?;
                    requester_from_row(&row)
                }

                async fn create_attachment(&self, attachment: &Attachment) -> Result<()> {
                    let size = i64::try_from(attachment.size).map_err(|_| {
                        StoreError::Invalid(vec![FieldError {
                            field: "size".into(),
                            code: "too_large".into(),
                            message: "is too large".into(),
                        }])
                    })?;
                    let mut tx = self.begin_write().await?;
                    if !exists(&mut tx, CLIENT_EXISTS, attachment.client_id.as_uuid()).await? {
                        return Err(StoreError::NotFound("client"));
                    }
                    if let Some(item) = attachment.item_id {
                        let owner: Option<Uuid> =
                            sqlx::query_scalar("SELECT client_id FROM work_items WHERE id = $1")
                                .bind(item.as_uuid())
                                .fetch_optional(&mut *tx)
                                .await?;
                        // Another client's item answers like a missing one: a file must
                        // never cross the tenant boundary.
                        if owner != Some(attachment.client_id.as_uuid()) {
                            return Err(StoreError::NotFound("work item"));
                        }
                    }
                    let inserted = sqlx::query(concat!(
                        "INSERT INTO attachments (", attachment_columns!(), ") \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING"
                    ))
                    .bind(attachment.id.as_uuid())
                    .bind(attachment.client_id.as_uuid())
                    .bind(attachment.item_id.map(|i| i.as_uuid()))
                    .bind(&attachment.filename)
                    .bind(&attachment.content_type)
                    .bind(size)
                    .bind(&attachment.sha256)
                    .bind(SqlJson(rows::to_json(&attachment.uploaded_by)))
                    .bind(micros(attachment.created_at))
                    .execute(&mut *tx)
                    .await?;
                    if inserted.rows_affected() == 0 {
                        return Err(StoreError::Conflict(format!(
                            "attachment {} exists",
                            attachment.id
                        )));
                    }
                    let detail = detail(json!({
                        "attachment": attachment.id,
                        "filename": attachment.filename,
                        "content_type": attachment.content_type,
                        "size": attachment.size,
                        "sha256": attachment.sha256,
                    }));
                    Self::insert_audit(
                        &mut tx,
                        Some(attachment.client_id),
                        attachment.item_id,
                        &attachment.uploaded_by,
                        "attachment.added",
                        detail,
                        self.now(),
                    )
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn attachment(&self, id: AttachmentId) -> Result<Attachment> {
                    let row = sqlx::query(concat!(
                        "SELECT ", attachment_columns!(), " FROM attachments WHERE id = $1"
                    ))
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound("attachment"))?;
                    attachment_from_row(&row)
                }

                async fn attachments_of_item(&self, item: WorkItemId) -> Result<Vec<Attachment>> {
                    let found = sqlx::query(concat!(
                        "SELECT ", attachment_columns!(), " FROM attachments \
                         WHERE item_id = $1 ORDER BY created_at, id"
                    ))
                    .bind(item.as_uuid())
                    .fetch_all(&self.pool)
                    .await?;
                    found.iter().map(attachment_from_row).collect()
                }

                async fn secret(&self, name: &str) -> Result<Vec<u8>> {
                    let select = "SELECT value FROM secrets WHERE name = $1";
                    let existing: Option<Vec<u8>> = sqlx::query_scalar(select)
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await?;
                    let value = match existing {
                        Some(value) => value,
                        None => {
                            // The database makes the bytes (this crate has no random source
                            // of its own); the first of racing nodes wins and all read its value.
                            let mut tx = self.begin_write().await?;
                            sqlx::query(concat!(
                                "INSERT INTO secrets (name, value, created_at) VALUES ($1, ",
                                $random_secret,
                                ", $2) ON CONFLICT (name) DO NOTHING"
                            ))
                            .bind(name)
                            .bind(micros(self.now()))
                            .execute(&mut *tx)
                            .await?;
                            let value: Vec<u8> =
                                sqlx::query_scalar(select).bind(name).fetch_one(&mut *tx).await?;
                            tx.commit().await?;
                            value
                        }
                    };
                    if value.len() != SECRET_LEN {
                        return Err(StoreError::Corrupt(format!(
                            "secret {name} has {} bytes, not {SECRET_LEN}",
                            value.len()
                        )));
                    }
                    Ok(value)
                }

                async fn engagements(
                    &self,
                    client_id: Option<ClientId>,
                ) -> Result<Vec<Engagement>> {
                    let found = sqlx::query(
                        "SELECT id, client_id, name, service_key, service_version, created_at, settings \
                         FROM engagements WHERE ($1 IS NULL OR client_id = $1) ORDER BY name, id",
                    )
                    .bind(client_id.map(|c| c.as_uuid()))
                    .fetch_all(&self.pool)
                    .await?;
                    found.iter().map(Self::engagement_from_row).collect()
                }

                async fn workers(&self) -> Result<Vec<Worker>> {
                    let found = sqlx::query(concat!(
                        "SELECT ", worker_columns!(), " FROM workers ORDER BY name, id"
                    ))
                    .fetch_all(&self.pool)
                    .await?;
                    found.iter().map(Self::worker_from_row).collect()
                }

                async fn services(&self) -> Result<Vec<ServiceVersion>> {
                    let found = sqlx::query(
                        "SELECT key, version, published_at FROM services ORDER BY key, version",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    let mut versions = Vec::with_capacity(found.len());
                    for row in found {
                        let key = rows::key(row.try_get(0)?)?;
                        let version = rows::version(row.try_get(1)?)?;
                        // The name lives in the stored source; the parsed definitions are
                        // cached, so this parses each version once per process.
                        let definition =
                            <Self as crate::Store>::service(self, &key, version).await?;
                        versions.push(ServiceVersion {
                            name: definition.name.as_str().to_owned(),
                            key: key.as_str().to_owned(),
                            version,
                            published_at: timestamp(row.try_get(2)?)?,
                        });
                    }
                    Ok(versions)
                }
            }
        }
    };
}

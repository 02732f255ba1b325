//! The [`crate::Registers`] logic both backends share, instantiated per database type by
//! [`impl_registers!`] beside [`impl_store!`]. It also gives the store the check of an
//! item's register fields (`register_problems`, `judged`). No statement differs between
//! the dialects: a scope is matched with [`entries_in_scope!`], and each upsert's conflict
//! target names the partial unique index of its scope.

macro_rules! entry_columns {
    () => {
        "register, client_id, key, data, updated_at"
    };
}

/// The entries of one register and scope: `$2` is the client, or NULL for the
/// provider-wide entries.
macro_rules! entries_in_scope {
    () => {
        "register = $1 AND (client_id = $2 OR ($2 IS NULL AND client_id IS NULL))"
    };
}

/// Adds an entry, or replaces the one with its key in the scope whose partial unique index
/// `$target` names.
macro_rules! upsert_entry {
    ($target:literal) => {
        concat!(
            "INSERT INTO register_entries (register, client_id, key, key_match, data, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT ",
            $target,
            " DO UPDATE SET key = excluded.key, data = excluded.data, updated_at = excluded.updated_at"
        )
    };
}

/// Implements [`crate::Registers`] for `$store`, which `impl_store!` has already been
/// instantiated for in the same module (it supplies `begin_write`, `now` and
/// `insert_audit`). As with `impl_directory!`, the code lives in a child module.
macro_rules! impl_registers {
    (store = $store:ident, db = $db:ty $(,)?) => {
        mod registers_impl {
            use delego_core::definition::{FieldError, Form};
            use delego_core::engine::Rejection;
            use delego_core::id::ClientId;
            use delego_core::model::{Actor, RegisterEntry};
            use delego_core::values::Key;
            use serde_json::{Map, Value as Json, json};
            use sqlx::Row as _;
            use sqlx::types::Json as SqlJson;
            use uuid::Uuid;

            use super::$store;
            use crate::registers::NewEntry;
            use crate::rows::{self, micros, timestamp};
            use crate::sql_directory::missing_reference;
            use crate::{Result, StoreError};

            type DbRow = <$db as sqlx::Database>::Row;
            type Conn = <$db as sqlx::Database>::Connection;

            fn entry_from_row(row: &DbRow) -> Result<RegisterEntry> {
                Ok(RegisterEntry {
                    register: rows::key(row.try_get(0)?)?,
                    client_id: row.try_get::<Option<Uuid>, _>(1)?.map(ClientId::from_uuid),
                    key: row.try_get(2)?,
                    data: rows::from_json(row.try_get::<SqlJson<Json>, _>(3)?.0)?,
                    updated_at: timestamp(row.try_get(4)?)?,
                })
            }

            /// The entry an item of `client` names by `key`: the client's, else the provider's.
            async fn find_entry(
                conn: &mut Conn,
                register: &Key,
                client: ClientId,
                key: &str,
            ) -> Result<Option<RegisterEntry>> {
                sqlx::query(concat!(
                    "SELECT ", entry_columns!(), " FROM register_entries \
                     WHERE register = $1 AND key_match = $3 AND (client_id = $2 OR client_id IS NULL) \
                     ORDER BY client_id IS NULL LIMIT 1"
                ))
                .bind(register.as_str())
                .bind(client.as_uuid())
                .bind(RegisterEntry::match_key(key))
                .fetch_optional(conn)
                .await?
                .map(|row| entry_from_row(&row))
                .transpose()
            }

            impl $store {
                /// Adds or replaces the entry `key` of `client`'s register in the caller's
                /// transaction, audited as `register.entry_set` (an item's process writing
                /// to a do-not-call list). A key that cannot be one is left alone.
                pub(super) async fn set_register_entry_in(
                    tx: &mut super::Tx,
                    register: &Key,
                    client: ClientId,
                    key: &str,
                    data: Map<String, Json>,
                    actor: &Actor,
                    now: jiff::Timestamp,
                ) -> Result<()> {
                    let Ok(key) = RegisterEntry::parse_key(key) else {
                        return Ok(());
                    };
                    let matching = RegisterEntry::match_key(&key);
                    let before: Option<SqlJson<Json>> = sqlx::query_scalar(concat!(
                        "SELECT data FROM register_entries WHERE ", entries_in_scope!(), " AND key_match = $3"
                    ))
                    .bind(register.as_str())
                    .bind(Some(client.as_uuid()))
                    .bind(&matching)
                    .fetch_optional(&mut **tx)
                    .await?;
                    sqlx::query(upsert_entry!("(register, client_id, key_match) WHERE client_id IS NOT NULL"))
                        .bind(register.as_str())
                        .bind(Some(client.as_uuid()))
                        .bind(&key)
                        .bind(&matching)
                        .bind(SqlJson(&data))
                        .bind(micros(now))
                        .execute(&mut **tx)
                        .await?;
                    let detail = json!({
                        "register": register,
                        "key": key,
                        "before": before.map(|data| data.0),
                        "after": data,
                    });
                    let detail = detail.as_object().cloned().unwrap_or_default();
                    Self::insert_audit(tx, Some(client), None, actor, "register.entry_set", detail, now).await
                }

                /// One problem for each register field of `form` whose value in `data`
                /// names no entry that items of `client` may name. Other values (unset,
                /// not text) are left to the form's validation.
                pub(super) async fn register_problems(
                    conn: &mut Conn,
                    form: &Form,
                    client: ClientId,
                    data: &Map<String, Json>,
                ) -> Result<Vec<FieldError>> {
                    let mut problems = Vec::new();
                    for field in &form.fields {
                        let Some(register) = &field.rules.register else {
                            continue;
                        };
                        let value = data.get(field.name.as_str()).and_then(Json::as_str);
                        let Some(key) = value.map(str::trim).filter(|key| !key.is_empty()) else {
                            continue;
                        };
                        if find_entry(conn, register, client, key).await?.is_none() {
                            problems.push(FieldError {
                                field: field.name.to_string(),
                                code: "not_in_register".into(),
                                message: format!(
                                    "no {} `{key}` in the client's {register} register",
                                    field.label.to_lowercase()
                                ),
                            });
                        }
                    }
                    Ok(problems)
                }

                /// The data of the entry an item of `client` names by `key`, for a lookup;
                /// `null` when there is none.
                pub(super) async fn register_fact(
                    conn: &mut Conn,
                    register: &Key,
                    client: ClientId,
                    key: &str,
                ) -> Result<Json> {
                    Ok(find_entry(conn, register, client, key)
                        .await?
                        .map_or(Json::Null, |entry| Json::Object(entry.data)))
                }

                /// The engine's verdict on submitted data with the data's register problems
                /// added, so that one refusal lists every problem of both.
                pub(super) fn judged<T>(
                    verdict: std::result::Result<T, Rejection>,
                    problems: Vec<FieldError>,
                ) -> Result<T> {
                    match verdict {
                        Ok(_) if !problems.is_empty() => Err(StoreError::Invalid(problems)),
                        Ok(value) => Ok(value),
                        Err(Rejection::InvalidData(mut errors)) => {
                            errors.extend(problems);
                            Err(StoreError::Invalid(errors))
                        }
                        Err(other) => Err(StoreError::Rejected(other)),
                    }
                }
            }

            #[async_trait::async_trait]
            impl crate::Registers for $store {
                async fn upsert_register_entries(
                    &self,
                    register: &Key,
                    client: Option<ClientId>,
                    entries: Vec<NewEntry>,
                    actor: &Actor,
                ) -> Result<Vec<RegisterEntry>> {
                    let now = self.now();
                    // One write per key, with its last data: the order of first sight stays.
                    let mut written: Vec<RegisterEntry> = Vec::with_capacity(entries.len());
                    let mut places: std::collections::HashMap<String, usize> = Default::default();
                    let mut errors = Vec::new();
                    for (n, entry) in entries.into_iter().enumerate() {
                        let key = match RegisterEntry::parse_key(&entry.key) {
                            Ok(key) => key,
                            Err(error) => {
                                errors.push(FieldError {
                                    field: format!("entries[{n}].key"),
                                    code: "invalid".into(),
                                    message: error.0,
                                });
                                continue;
                            }
                        };
                        let entry = RegisterEntry {
                            register: register.clone(),
                            client_id: client,
                            data: entry.data,
                            updated_at: now,
                            key,
                        };
                        match places.entry(RegisterEntry::match_key(&entry.key)) {
                            std::collections::hash_map::Entry::Occupied(place) => written[*place.get()] = entry,
                            std::collections::hash_map::Entry::Vacant(place) => {
                                place.insert(written.len());
                                written.push(entry);
                            }
                        }
                    }
                    if !errors.is_empty() {
                        return Err(StoreError::Invalid(errors));
                    }
                    let upsert = if client.is_some() {
                        upsert_entry!("(register, client_id, key_match) WHERE client_id IS NOT NULL")
                    } else {
                        upsert_entry!("(register, key_match) WHERE client_id IS NULL")
                    };
                    let mut tx = self.begin_write().await?;
                    for entry in &written {
                        let matching = RegisterEntry::match_key(&entry.key);
                        let before: Option<SqlJson<Json>> = sqlx::query_scalar(concat!(
                            "SELECT data FROM register_entries WHERE ", entries_in_scope!(), " AND key_match = $3"
                        ))
                        .bind(register.as_str())
                        .bind(client.map(|c| c.as_uuid()))
                        .bind(&matching)
                        .fetch_optional(&mut *tx)
                        .await?;
                        sqlx::query(upsert)
                            .bind(register.as_str())
                            .bind(client.map(|c| c.as_uuid()))
                            .bind(&entry.key)
                            .bind(&matching)
                            .bind(SqlJson(&entry.data))
                            .bind(micros(now))
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| missing_reference(e, "client"))?;
                        let detail = json!({
                            "register": register,
                            "key": entry.key,
                            "before": before.map(|data| data.0),
                            "after": entry.data,
                        });
                        let detail = detail.as_object().cloned().unwrap_or_default();
                        Self::insert_audit(&mut tx, client, None, actor, "register.entry_set", detail, now)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(written)
                }

                async fn register_entry(
                    &self,
                    register: &Key,
                    client: Option<ClientId>,
                    key: &str,
                ) -> Result<RegisterEntry> {
                    let row = sqlx::query(concat!(
                        "SELECT ", entry_columns!(), " FROM register_entries WHERE ", entries_in_scope!(),
                        " AND key_match = $3"
                    ))
                    .bind(register.as_str())
                    .bind(client.map(|c| c.as_uuid()))
                    .bind(RegisterEntry::match_key(key))
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or(StoreError::NotFound("register entry"))?;
                    entry_from_row(&row)
                }

                async fn register_entries(
                    &self,
                    register: &Key,
                    client: Option<ClientId>,
                    after: Option<&str>,
                    limit: u32,
                ) -> Result<Vec<RegisterEntry>> {
                    let found = sqlx::query(concat!(
                        "SELECT ", entry_columns!(), " FROM register_entries WHERE ", entries_in_scope!(),
                        " AND ($3 IS NULL OR key_match > $3) ORDER BY key_match LIMIT $4"
                    ))
                    .bind(register.as_str())
                    .bind(client.map(|c| c.as_uuid()))
                    .bind(after.map(RegisterEntry::match_key))
                    .bind(i64::from(limit.clamp(1, 1000)))
                    .fetch_all(&self.pool)
                    .await?;
                    found.iter().map(entry_from_row).collect()
                }

                async fn delete_register_entry(
                    &self,
                    register: &Key,
                    client: Option<ClientId>,
                    key: &str,
                    actor: &Actor,
                ) -> Result<()> {
                    let now = self.now();
                    let mut tx = self.begin_write().await?;
                    let row = sqlx::query(concat!(
                        "DELETE FROM register_entries WHERE ", entries_in_scope!(),
                        " AND key_match = $3 RETURNING ", entry_columns!()
                    ))
                    .bind(register.as_str())
                    .bind(client.map(|c| c.as_uuid()))
                    .bind(RegisterEntry::match_key(key))
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound("register entry"))?;
                    let entry = entry_from_row(&row)?;
                    let detail = json!({
                        "register": register,
                        "key": entry.key,
                        "before": entry.data,
                    });
                    let detail = detail.as_object().cloned().unwrap_or_default();
                    Self::insert_audit(&mut tx, client, None, actor, "register.entry_deleted", detail, now)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn lookup_register_entry(
                    &self,
                    register: &Key,
                    client: ClientId,
                    key: &str,
                ) -> Result<Option<RegisterEntry>> {
                    find_entry(&mut *self.pool.acquire().await?, register, client, key).await
                }
            }
        }
    };
}

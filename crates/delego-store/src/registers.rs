//! Registers: reference data that items' fields name, kept per client (a client's asset
//! register, its insurance policies) or for every client (a provider-wide do-not-call
//! list). An entry is a key and a JSON object. Implemented for both backends by
//! `sql_registers.rs`.

use async_trait::async_trait;
use delego_core::id::ClientId;
use delego_core::model::{Actor, RegisterEntry};
use delego_core::values::Key;
use serde_json::{Map, Value as Json};

use crate::Result;

/// An entry to write: its key as given and its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    pub key: String,
    pub data: Map<String, Json>,
}

#[async_trait]
pub trait Registers: Send + Sync {
    /// Adds or replaces entries of `client`'s `register` (`None`: the provider-wide one), all
    /// in one transaction, each audited as `register.entry_set` with its data before and
    /// after. Keys are trimmed and compared without regard to case; of a key given twice
    /// the last data stays. A malformed key is `Invalid` (field `entries[n].key`), an
    /// unknown client `NotFound`.
    async fn upsert_register_entries(
        &self,
        register: &Key,
        client: Option<ClientId>,
        entries: Vec<NewEntry>,
        actor: &Actor,
    ) -> Result<Vec<RegisterEntry>>;

    /// The entry with this key in exactly this scope (a client's, or the provider's).
    async fn register_entry(
        &self,
        register: &Key,
        client: Option<ClientId>,
        key: &str,
    ) -> Result<RegisterEntry>;

    /// Up to `limit` entries of one scope in key order (byte order of the lower-cased
    /// keys), after the entry with key `after`: the cursor of the previous page.
    async fn register_entries(
        &self,
        register: &Key,
        client: Option<ClientId>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RegisterEntry>>;

    /// Removes one entry, audited as `register.entry_deleted`; an unknown key is `NotFound`.
    async fn delete_register_entry(
        &self,
        register: &Key,
        client: Option<ClientId>,
        key: &str,
        actor: &Actor,
    ) -> Result<()>;

    /// The entry an item of `client` names by `key`: the client's own, else the provider's.
    async fn lookup_register_entry(
        &self,
        register: &Key,
        client: ClientId,
        key: &str,
    ) -> Result<Option<RegisterEntry>>;
}

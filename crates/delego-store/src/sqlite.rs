//! Embedded SQLite: the default, single-node store.

use std::path::Path;
use std::time::Duration;

use delego_core::clock::Clock;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::lock::ProcessLock;
use crate::sql::ServiceCache;

/// Migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection that writes. SQLite allows one writer at a time; queueing
    /// writers here is first come, first served, where SQLite's own busy handler would let
    /// an unlucky writer starve until its timeout.
    writer: SqlitePool,
    clock: std::sync::Arc<dyn Clock>,
    services: ServiceCache,
    wake: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    lease_micros: std::sync::atomic::AtomicI64,
    /// Concurrent claims share a transaction (group commit).
    claims:
        crate::group::GroupCommit<delego_core::id::WorkerId, crate::Result<Option<crate::Claimed>>>,
    _lock: ProcessLock,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, takes the single-node lock and applies
    /// migrations.
    pub async fn open(path: &Path, clock: std::sync::Arc<dyn Clock>) -> crate::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                crate::StoreError::Locked(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let lock = ProcessLock::acquire(path)?;
        // WAL lets readers run beside the writer; synchronous=FULL syncs the WAL on every
        // commit, so an acknowledged write survives a power cut, not just a crash.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(
                options
                    .row_buffer_size(usize::try_from(crate::sql::CLAIM_BATCH).unwrap_or(256) + 1),
            )
            .await?;
        Ok(Self {
            pool,
            writer,
            clock,
            services: ServiceCache::default(),
            wake: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            lease_micros: std::sync::atomic::AtomicI64::new(crate::sql::DEFAULT_LEASE_MICROS),
            _lock: lock,
            claims: Default::default(),
        })
    }
}

// `BEGIN IMMEDIATE` takes the write lock up front: a deferred transaction that reads, then
// writes, can fail with SQLITE_BUSY when another writer got there in between.
impl_store!(
    store = SqliteStore,
    db = sqlx::Sqlite,
    backend = "sqlite",
    begin_write = "BEGIN IMMEDIATE",
    for_update = "",
    skip_locked = "",
    notify_sql = "",
    compaction_lock = "",
    seq_in_list = "seq IN (SELECT value FROM json_each($1))",
    client_in_list = "client_id IN (SELECT unhex(replace(value, '-', '')) FROM json_each($6))",
    id_hex = "lower(hex(id))",
    data_text = "json_extract(state, '$.data.' || $6)",
    engagement_in_list = "e.id IN (SELECT unhex(replace(value, '-', '')) FROM json_each($1))",
);

// SQLite's randomblob() draws on its ChaCha20 generator, seeded from the OS.
impl_directory!(
    store = SqliteStore,
    db = sqlx::Sqlite,
    random_secret = "randomblob(32)",
);

impl_registers!(store = SqliteStore, db = sqlx::Sqlite);
impl_mail!(
    store = SqliteStore,
    db = sqlx::Sqlite,
    skip_locked = "",
    id_hex = "lower(hex(id))"
);

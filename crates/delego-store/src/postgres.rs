//! PostgreSQL: the store for several Delego nodes sharing one database.

use delego_core::clock::Clock;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::watch;

use crate::sql::ServiceCache;

/// Migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
    /// The same pool: PostgreSQL takes concurrent writers.
    writer: PgPool,
    clock: std::sync::Arc<dyn Clock>,
    services: ServiceCache,
    wake: std::sync::Arc<watch::Sender<u64>>,
    lease_micros: std::sync::atomic::AtomicI64,
    /// Concurrent claims share a transaction (group commit).
    claims:
        crate::group::GroupCommit<delego_core::id::WorkerId, crate::Result<Option<crate::Claimed>>>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Connections a node keeps open at most unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// The NOTIFY channel on which nodes announce tasks that became claimable.
const TASKS_CHANNEL: &str = "delego_tasks";

/// Forwards other nodes' announcements to this node's waiting workers, reconnecting when
/// the connection drops (and waking everyone then, since notices may have been missed).
async fn listen(pool: PgPool, wake: std::sync::Arc<watch::Sender<u64>>) {
    let bump = |n: &mut u64| *n = n.wrapping_add(1);
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(TASKS_CHANNEL).await {
                Ok(()) => {
                    wake.send_modify(bump);
                    loop {
                        match listener.recv().await {
                            Ok(_) => wake.send_modify(bump),
                            Err(error) => {
                                tracing::warn!(%error, "lost the task notification channel; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot LISTEN for task notifications"),
            },
            Err(error) => tracing::warn!(%error, "cannot connect to LISTEN for task notifications"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

impl PgStore {
    pub async fn migrate(pool: &PgPool) -> crate::Result<()> {
        Ok(MIGRATOR.run(pool).await?)
    }

    /// Connects and applies migrations (sqlx serialises concurrent migrators with an
    /// advisory lock, so several nodes may start at once).
    pub async fn open(url: &str, clock: std::sync::Arc<dyn Clock>) -> crate::Result<Self> {
        Self::open_with_pool(url, clock, DEFAULT_MAX_CONNECTIONS).await
    }

    /// [`Self::open`] with at most `max_connections` connections: the nodes' pools together
    /// must stay under the server's `max_connections`.
    pub async fn open_with_pool(
        url: &str,
        clock: std::sync::Arc<dyn Clock>,
        max_connections: u32,
    ) -> crate::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect(url)
            .await?;
        Self::migrate(&pool).await?;
        let wake = std::sync::Arc::new(watch::Sender::new(0));
        let listener = tokio::spawn(listen(pool.clone(), wake.clone()));
        Ok(Self {
            writer: pool.clone(),
            pool,
            clock,
            services: ServiceCache::default(),
            wake,
            lease_micros: std::sync::atomic::AtomicI64::new(crate::sql::DEFAULT_LEASE_MICROS),
            listener,
            claims: Default::default(),
        })
    }
}

// Rows are locked as they are read inside write transactions, so that two nodes changing
// the same item serialise instead of one failing on the version check.
impl_store!(
    store = PgStore,
    db = sqlx::Postgres,
    backend = "postgres",
    begin_write = "BEGIN",
    for_update = " FOR UPDATE",
    skip_locked = " FOR UPDATE SKIP LOCKED",
    notify_sql = "SELECT pg_notify('delego_tasks', '')",
    compaction_lock = "SELECT pg_try_advisory_xact_lock(72657002)",
    seq_in_list = "seq IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)",
    client_in_list = "client_id IN (SELECT jsonb_array_elements_text($6::jsonb)::uuid)",
    id_hex = "replace(CAST(id AS TEXT), '-', '')",
    data_text = "(state -> 'data' ->> $6)",
    engagement_in_list = "e.id IN (SELECT jsonb_array_elements_text($1::jsonb)::uuid)",
);

// gen_random_uuid() is the only strong random source in core PostgreSQL (gen_random_bytes
// needs pgcrypto); three of them carry 366 random bits, which SHA-256 folds into 32 bytes.
impl_directory!(
    store = PgStore,
    db = sqlx::Postgres,
    random_secret = "sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))",
);

impl_registers!(store = PgStore, db = sqlx::Postgres);
impl_mail!(
    store = PgStore,
    db = sqlx::Postgres,
    skip_locked = " FOR UPDATE SKIP LOCKED",
    id_hex = "replace(CAST(id AS TEXT), '-', '')"
);

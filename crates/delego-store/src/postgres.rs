//! PostgreSQL: the store for several Delego nodes sharing one database.

use delego_core::clock::Clock;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::sql::ServiceCache;

/// Migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
    clock: std::sync::Arc<dyn Clock>,
    services: ServiceCache,
}

impl PgStore {
    pub async fn migrate(pool: &PgPool) -> crate::Result<()> {
        Ok(MIGRATOR.run(pool).await?)
    }

    /// Connects and applies migrations (sqlx serialises concurrent migrators with an
    /// advisory lock, so several nodes may start at once).
    pub async fn open(url: &str, clock: std::sync::Arc<dyn Clock>) -> crate::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        Self::migrate(&pool).await?;
        Ok(Self {
            pool,
            clock,
            services: ServiceCache::default(),
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
    skill_in_list = "skill IN (SELECT jsonb_array_elements_text($1::jsonb))",
    client_in_list = "client_id IN (SELECT jsonb_array_elements_text($6::jsonb)::uuid)",
);

// gen_random_uuid() is the only strong random source in core PostgreSQL (gen_random_bytes
// needs pgcrypto); three of them carry 366 random bits, which SHA-256 folds into 32 bytes.
impl_directory!(
    store = PgStore,
    db = sqlx::Postgres,
    random_secret = "sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))",
);

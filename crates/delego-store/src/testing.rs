//! Fresh databases for tests (feature `testing`): a temporary SQLite file, or a PostgreSQL
//! database cloned from a migrated template (cloning is much cheaper than migrating each
//! time). Test support panics on setup failures: a broken fixture should stop the test.

use std::sync::Arc;

use crate::{Backend, PgStore, SqliteStore};
use delego_core::clock::{Clock, ManualClock};
use jiff::{SignedDuration, Timestamp};
use sqlx::{Connection, PgConnection};

/// Each test node's PostgreSQL pool: as small as a pool can usefully be, so that code
/// holding one connection while waiting for a second deadlocks in tests under the
/// slightest concurrency instead of only under production load.
const POOL: u32 = 2;

pub struct Harness {
    pub store: Arc<dyn Backend>,
    clock: Arc<ManualClock>,
    _database: Database,
}

enum Database {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(PostgresDatabase),
}

/// A uniquely named, migrated PostgreSQL database, dropped when this is: for tests that
/// start their own nodes on it (the multi-process cluster test).
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
    /// Where the database is; the nodes connect here.
    pub url: String,
}

impl PostgresDatabase {
    /// `None` when PostgreSQL is not configured outside CI.
    pub async fn fresh() -> Option<Self> {
        let admin_url = postgres_admin_url()?;
        let name = fresh_database(&admin_url).await;
        Some(Self {
            url: database_url(&admin_url, &name),
            admin_url,
            name,
        })
    }
}

fn start_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new("2026-03-02T08:00:00Z".parse().unwrap()))
}

impl Harness {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = start_clock();
        let store = SqliteStore::open(&dir.path().join("delego.db"), clock.clone())
            .await
            .unwrap();
        Self {
            store: Arc::new(store),
            clock,
            _database: Database::Sqlite(dir),
        }
    }

    /// `None` when PostgreSQL is not configured outside CI.
    pub async fn postgres() -> Option<Self> {
        let database = PostgresDatabase::fresh().await?;
        let clock = start_clock();
        let store = PgStore::open_with_pool(&database.url, clock.clone(), POOL)
            .await
            .unwrap();
        Some(Self {
            store: Arc::new(store),
            clock,
            _database: Database::Postgres(database),
        })
    }

    /// A second store on the same PostgreSQL database, as another node would have, with the
    /// same clock; `None` on SQLite, which is single-node.
    pub async fn another_node(&self) -> Option<Arc<dyn Backend>> {
        let Database::Postgres(database) = &self._database else {
            return None;
        };
        let store = PgStore::open_with_pool(&database.url, self.clock.clone(), POOL)
            .await
            .unwrap();
        Some(Arc::new(store))
    }

    /// The injected clock, for a server built on this store.
    pub fn clock(&self) -> Arc<ManualClock> {
        self.clock.clone()
    }

    pub fn advance(&self, by: SignedDuration) {
        self.clock.advance(by);
    }

    pub fn clock_now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// The PostgreSQL URL for tests; under CI its absence fails the run rather than skipping.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("DELEGO_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!(
                "CI=true but DELEGO_TEST_DATABASE_URL is not set: PostgreSQL must be tested in CI"
            )
        }
        _ => {
            eprintln!("DELEGO_TEST_DATABASE_URL is not set: skipping the PostgreSQL case");
            None
        }
    }
}

fn database_url(admin_url: &str, name: &str) -> String {
    let base = admin_url.split('?').next().unwrap_or(admin_url);
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    format!("{server}/{name}")
}

/// Creates a uniquely named database from a template migrated with the current migrations.
async fn fresh_database(admin_url: &str) -> String {
    let mut admin = PgConnection::connect(admin_url).await.unwrap();
    let checksum = crate::postgres_migrations_fingerprint();
    let template = format!("delego_template_{checksum}");
    // Test processes run in parallel: one of them migrates the template, the others wait.
    sqlx::query("SELECT pg_advisory_lock(72657001)")
        .execute(&mut admin)
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    if !exists {
        create_database(&mut admin, &format!("CREATE DATABASE {template}_building")).await;
        let pool = sqlx::PgPool::connect(&database_url(admin_url, &format!("{template}_building")))
            .await
            .unwrap();
        crate::PgStore::migrate(&pool).await.unwrap();
        pool.close().await;
        create_database(
            &mut admin,
            &format!("ALTER DATABASE {template}_building RENAME TO {template}"),
        )
        .await;
    }
    let name = format!("delego_test_{}", uuid::Uuid::now_v7().simple());
    create_database(
        &mut admin,
        &format!("CREATE DATABASE {name} TEMPLATE {template}"),
    )
    .await;
    sqlx::query("SELECT pg_advisory_unlock(72657001)")
        .execute(&mut admin)
        .await
        .unwrap();
    name
}

async fn create_database(admin: &mut PgConnection, statement: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(admin)
        .await
        .unwrap();
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside async code; a scoped runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

//! Data access with sqlx. One file per table family; no HTTP types in here.

pub mod api_tokens;
pub mod audit;
pub mod audit_batch;
pub mod audit_chain;
pub mod backup;
pub mod integrations;
pub mod invalidation;
pub mod keyring;
pub mod oauth_tokens;
pub mod outbox;
pub mod rotation;
pub mod webhook_log;
pub mod webhooks;

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

use crate::config::Settings;

/// The embedded migrations, applied by `hsq-config migrate` and at `serve` start.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A connection idle for longer than this is tested with a round trip before it is handed out.
const PING_IF_IDLE_FOR: Duration = Duration::from_millis(250);

/// A pool that connects lazily, so the service starts (and recovers) while PostgreSQL restarts.
///
/// sqlx tests every connection with a round trip before handing it out by default: under load
/// that was a third round trip on a request that needs two. Here only a connection that sat
/// idle for `PING_IF_IDLE_FOR` is tested, so one that PostgreSQL closed while it waited (a
/// restart, an idle timeout) is still replaced before a request meets it; a busy connection,
/// used a moment ago, is not. (sqlx also tests each connection when it is released.)
pub fn pool(settings: &Settings) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = settings
        .database_url
        .expose_secret()
        .parse()
        .map_err(|_| anyhow::anyhow!("DATABASE_URL: not a valid PostgreSQL URL"))?;
    Ok(PgPoolOptions::new()
        .max_connections(settings.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(300))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options.application_name("hsq-config")))
}

/// The newest migration this build knows, and whether the database has applied it.
pub async fn migration_state(db: &PgPool) -> Result<(i64, Option<i64>), sqlx::Error> {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(db)
            .await?;
    Ok((latest, applied))
}

/// One round trip to PostgreSQL.
pub async fn ping(db: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(db).await.map(|_| ())
}

/// Registers every provider name the service knows, so rows naming it satisfy their foreign
/// keys; adding a provider needs no migration.
pub async fn register_providers(db: &PgPool, names: &[&str]) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO providers (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING")
        .bind(names)
        .execute(db)
        .await
        .map(|_| ())
}

/// A REPEATABLE READ, read-only transaction: everything read in it is one point in time.
pub async fn point_in_time(
    db: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

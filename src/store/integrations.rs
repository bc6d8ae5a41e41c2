//! `integration_configs`: one row per provider × environment. API writes and restores go
//! through the same whole-row [`insert`] and [`update`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, QueryBuilder};
use uuid::Uuid;

use super::outbox::Records;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConfigRow {
    pub id: Uuid,
    pub provider: String,
    pub environment: String,
    pub enabled: bool,
    pub settings: Json<Map<String, Value>>,
    pub secrets: Vec<u8>,
    pub secrets_masked: Json<BTreeMap<String, String>>,
    pub key_id: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub last_validated_at: Option<DateTime<Utc>>,
    pub last_validation_status: Option<String>,
    pub last_validation_detail: Option<String>,
}

pub async fn list(db: &PgPool) -> Result<Vec<ConfigRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM integration_configs ORDER BY provider, environment")
        .fetch_all(db)
        .await
}

pub async fn find(
    conn: &mut PgConnection,
    provider: &str,
    environment: &str,
) -> Result<Option<ConfigRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM integration_configs WHERE provider = $1 AND environment = $2")
        .bind(provider)
        .bind(environment)
        .fetch_optional(conn)
        .await
}

/// Reads the row and locks it until the transaction ends.
pub async fn find_for_update(
    conn: &mut PgConnection,
    provider: &str,
    environment: &str,
) -> Result<Option<ConfigRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM integration_configs WHERE provider = $1 AND environment = $2 FOR UPDATE",
    )
    .bind(provider)
    .bind(environment)
    .fetch_optional(conn)
    .await
}

/// Inserts a whole row as given (a new config, or one restored from a backup).
pub async fn insert(conn: &mut PgConnection, r: &ConfigRow) -> Result<ConfigRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO integration_configs
           (id, provider, environment, enabled, settings, secrets, secrets_masked, key_id, version,
            created_at, updated_at, created_by, updated_by, last_validated_at,
            last_validation_status, last_validation_detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         RETURNING *",
    )
    .bind(r.id)
    .bind(&r.provider)
    .bind(&r.environment)
    .bind(r.enabled)
    .bind(&r.settings)
    .bind(&r.secrets)
    .bind(&r.secrets_masked)
    .bind(&r.key_id)
    .bind(r.version)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(&r.created_by)
    .bind(&r.updated_by)
    .bind(r.last_validated_at)
    .bind(&r.last_validation_status)
    .bind(&r.last_validation_detail)
    .fetch_one(conn)
    .await
}

/// Replaces a config's content with `r`'s, keeping its id; the version moves on so stale
/// `If-Match` headers fail. `records` (the change's audit row and event) are written by the
/// same statement.
pub async fn update<'a>(
    conn: &mut PgConnection,
    r: &'a ConfigRow,
    records: Records<'a>,
) -> Result<ConfigRow, sqlx::Error> {
    let mut q = QueryBuilder::new("");
    records.push_with(&mut q);
    q.push("UPDATE integration_configs SET enabled = ")
        .push_bind(r.enabled)
        .push(", settings = ")
        .push_bind(&r.settings)
        .push(", secrets = ")
        .push_bind(&r.secrets)
        .push(", secrets_masked = ")
        .push_bind(&r.secrets_masked)
        .push(", key_id = ")
        .push_bind(&r.key_id)
        .push(", last_validated_at = ")
        .push_bind(r.last_validated_at)
        .push(", last_validation_status = ")
        .push_bind(&r.last_validation_status)
        .push(", last_validation_detail = ")
        .push_bind(&r.last_validation_detail)
        .push(", updated_by = ")
        .push_bind(&r.updated_by)
        .push(", updated_at = now(), version = version + 1 WHERE id = ")
        .push_bind(r.id)
        .push(" RETURNING *");
    q.build_query_as().fetch_one(conn).await
}

/// Deletes the config; its OAuth tokens go with it (ON DELETE CASCADE).
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM integration_configs WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Stores the result of a live validation; not a configuration change, so no version bump.
/// Stores a validation result; returns the status it replaced (None: never validated).
pub async fn record_validation(
    conn: &mut PgConnection,
    id: Uuid,
    at: DateTime<Utc>,
    status: &str,
    detail: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE integration_configs c
            SET last_validated_at = $2, last_validation_status = $3, last_validation_detail = $4
           FROM (SELECT id, last_validation_status AS previous
                   FROM integration_configs WHERE id = $1) old
          WHERE c.id = old.id
         RETURNING old.previous",
    )
    .bind(id)
    .bind(at)
    .bind(status)
    .bind(detail)
    .fetch_optional(conn)
    .await
    .map(Option::flatten)
}

/// What the status page shows of a config and its OAuth connection, in one read.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatusRow {
    pub provider: String,
    pub environment: String,
    pub enabled: bool,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub last_validated_at: Option<DateTime<Utc>>,
    pub last_validation_status: Option<String>,
    pub last_validation_detail: Option<String>,
    pub token_status: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub refresh_hard_expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
}

/// Every config with its connection, if any.
pub async fn status_rows(db: &PgPool) -> Result<Vec<StatusRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.provider, c.environment, c.enabled, c.version, c.updated_at,
                c.last_validated_at, c.last_validation_status, c.last_validation_detail,
                t.status AS token_status, t.expires_at, t.refresh_expires_at,
                t.refresh_hard_expires_at, t.last_refreshed_at
           FROM integration_configs c LEFT JOIN oauth_tokens t ON t.integration_id = c.id",
    )
    .fetch_all(db)
    .await
}

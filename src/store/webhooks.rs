//! `webhook_configurations`: endpoints with a sealed signing secret. API writes and restores
//! go through the same whole-row [`insert`] and [`update`].

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub provider: Option<String>,
    pub url: String,
    pub events: Vec<String>,
    pub secret: Option<Vec<u8>>,
    pub secret_masked: Option<String>,
    pub key_id: Option<String>,
    pub enabled: bool,
    pub description: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    /// Until when the previous secret (sealed in `previous_secret`, read only by delivery)
    /// still signs.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Set when delivery disabled the endpoint; cleared when it is enabled again.
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
}

pub async fn list(db: &PgPool) -> Result<Vec<WebhookRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM webhook_configurations ORDER BY created_at, id")
        .fetch_all(db)
        .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> Result<Option<WebhookRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM webhook_configurations WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn find_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<WebhookRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM webhook_configurations WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Inserts a whole row as given (a new webhook, or one restored from a backup).
pub async fn insert(conn: &mut PgConnection, r: &WebhookRow) -> Result<WebhookRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO webhook_configurations
           (id, provider, url, events, secret, secret_masked, key_id, enabled, description, version,
            created_at, updated_at, created_by, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         RETURNING *",
    )
    .bind(r.id)
    .bind(&r.provider)
    .bind(&r.url)
    .bind(&r.events)
    .bind(&r.secret)
    .bind(&r.secret_masked)
    .bind(&r.key_id)
    .bind(r.enabled)
    .bind(&r.description)
    .bind(r.version)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(&r.created_by)
    .bind(&r.updated_by)
    .fetch_one(conn)
    .await
}

/// Replaces a webhook's content with `r`'s, keeping its id; the version moves on.
pub async fn update(conn: &mut PgConnection, r: &WebhookRow) -> Result<WebhookRow, sqlx::Error> {
    sqlx::query_as(
        "WITH paused AS (
             -- Disabled by hand: its failure streak ends; enabled again, it starts anew.
             DELETE FROM webhook_endpoint_state WHERE webhook_id = $1 AND NOT $8)
         UPDATE webhook_configurations
            SET provider = $2, url = $3, events = $4, secret = $5, secret_masked = $6,
                key_id = $7, enabled = $8, description = $9, updated_by = $10,
                updated_at = now(), version = version + 1,
                disabled_at = CASE WHEN $8 THEN NULL ELSE disabled_at END,
                disabled_reason = CASE WHEN $8 THEN NULL ELSE disabled_reason END
          WHERE id = $1
          RETURNING *",
    )
    .bind(r.id)
    .bind(&r.provider)
    .bind(&r.url)
    .bind(&r.events)
    .bind(&r.secret)
    .bind(&r.secret_masked)
    .bind(&r.key_id)
    .bind(r.enabled)
    .bind(&r.description)
    .bind(&r.updated_by)
    .fetch_one(conn)
    .await
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM webhook_configurations WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected() > 0)
}

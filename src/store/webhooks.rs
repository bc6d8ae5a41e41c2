//! `webhook_configurations`: endpoints with a sealed signing secret.

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
}

/// The writable part of a webhook row; the secret is already sealed.
pub struct WebhookWrite<'a> {
    pub provider: Option<&'a str>,
    pub url: &'a str,
    pub events: &'a [String],
    pub secret: Option<&'a [u8]>,
    pub secret_masked: Option<&'a str>,
    pub key_id: Option<&'a str>,
    pub enabled: bool,
    pub description: Option<&'a str>,
    pub actor: &'a str,
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

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    w: &WebhookWrite<'_>,
) -> Result<WebhookRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO webhook_configurations
           (id, provider, url, events, secret, secret_masked, key_id, enabled, description,
            created_by, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         RETURNING *",
    )
    .bind(id)
    .bind(w.provider)
    .bind(w.url)
    .bind(w.events)
    .bind(w.secret)
    .bind(w.secret_masked)
    .bind(w.key_id)
    .bind(w.enabled)
    .bind(w.description)
    .bind(w.actor)
    .fetch_one(conn)
    .await
}

pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    w: &WebhookWrite<'_>,
) -> Result<WebhookRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE webhook_configurations
            SET provider = $2, url = $3, events = $4, secret = $5, secret_masked = $6,
                key_id = $7, enabled = $8, description = $9, updated_by = $10,
                updated_at = now(), version = version + 1
          WHERE id = $1
          RETURNING *",
    )
    .bind(id)
    .bind(w.provider)
    .bind(w.url)
    .bind(w.events)
    .bind(w.secret)
    .bind(w.secret_masked)
    .bind(w.key_id)
    .bind(w.enabled)
    .bind(w.description)
    .bind(w.actor)
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

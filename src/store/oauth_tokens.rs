//! `oauth_tokens`: one connection per provider × environment; tokens are sealed bytes here.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: Uuid,
    pub integration_id: Uuid,
    pub provider: String,
    pub environment: String,
    pub access_token: Vec<u8>,
    pub refresh_token: Option<Vec<u8>>,
    pub key_id: String,
    pub token_type: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub scope: Option<String>,
    pub realm_id: Option<String>,
    pub hub_id: Option<String>,
    pub stripe_user_id: Option<String>,
    pub status: String,
    pub version: i64,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A full write of a connection's tokens (connect). Token fields are already sealed.
pub struct TokenWrite<'a> {
    pub access_token: &'a [u8],
    pub refresh_token: Option<&'a [u8]>,
    pub key_id: &'a str,
    pub token_type: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub scope: Option<&'a str>,
    pub realm_id: Option<&'a str>,
    pub hub_id: Option<&'a str>,
    pub stripe_user_id: Option<&'a str>,
}

pub async fn list(db: &PgPool) -> Result<Vec<TokenRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM oauth_tokens ORDER BY provider, environment")
        .fetch_all(db)
        .await
}

pub async fn find(
    conn: &mut PgConnection,
    provider: &str,
    environment: &str,
) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM oauth_tokens WHERE provider = $1 AND environment = $2")
        .bind(provider)
        .bind(environment)
        .fetch_optional(conn)
        .await
}

/// Reads the row and locks it until the transaction ends: the cross-replica refresh guard.
pub async fn find_for_update(
    conn: &mut PgConnection,
    provider: &str,
    environment: &str,
) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM oauth_tokens WHERE provider = $1 AND environment = $2 FOR UPDATE")
        .bind(provider)
        .bind(environment)
        .fetch_optional(conn)
        .await
}

/// Connected rows whose access token expires before `before`, for the background refresher.
pub async fn due(db: &PgPool, before: DateTime<Utc>) -> Result<Vec<TokenRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM oauth_tokens
          WHERE status = 'connected' AND expires_at IS NOT NULL AND expires_at < $1
            AND refresh_token IS NOT NULL
          ORDER BY expires_at",
    )
    .bind(before)
    .fetch_all(db)
    .await
}

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    integration_id: Uuid,
    provider: &str,
    environment: &str,
    w: &TokenWrite<'_>,
) -> Result<TokenRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO oauth_tokens
           (id, integration_id, provider, environment, access_token, refresh_token, key_id,
            token_type, expires_at, refresh_expires_at, scope, realm_id, hub_id, stripe_user_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         RETURNING *",
    )
    .bind(id)
    .bind(integration_id)
    .bind(provider)
    .bind(environment)
    .bind(w.access_token)
    .bind(w.refresh_token)
    .bind(w.key_id)
    .bind(w.token_type)
    .bind(w.expires_at)
    .bind(w.refresh_expires_at)
    .bind(w.scope)
    .bind(w.realm_id)
    .bind(w.hub_id)
    .bind(w.stripe_user_id)
    .fetch_one(conn)
    .await
}

/// Replaces a connection's tokens after a new authorization (reconnect).
pub async fn replace(
    conn: &mut PgConnection,
    id: Uuid,
    integration_id: Uuid,
    w: &TokenWrite<'_>,
) -> Result<TokenRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE oauth_tokens
            SET integration_id = $2, access_token = $3, refresh_token = $4, key_id = $5,
                token_type = $6, expires_at = $7, refresh_expires_at = $8, scope = $9,
                realm_id = $10, hub_id = $11, stripe_user_id = $12, status = 'connected',
                last_refreshed_at = NULL, updated_at = now(), version = version + 1
          WHERE id = $1
          RETURNING *",
    )
    .bind(id)
    .bind(integration_id)
    .bind(w.access_token)
    .bind(w.refresh_token)
    .bind(w.key_id)
    .bind(w.token_type)
    .bind(w.expires_at)
    .bind(w.refresh_expires_at)
    .bind(w.scope)
    .bind(w.realm_id)
    .bind(w.hub_id)
    .bind(w.stripe_user_id)
    .fetch_one(conn)
    .await
}

/// Stores refreshed tokens. `refresh_token` None keeps the stored one.
#[allow(clippy::too_many_arguments)]
pub async fn refreshed(
    conn: &mut PgConnection,
    id: Uuid,
    access_token: &[u8],
    refresh_token: Option<&[u8]>,
    key_id: &str,
    expires_at: Option<DateTime<Utc>>,
    refresh_expires_at: Option<DateTime<Utc>>,
    scope: Option<&str>,
) -> Result<TokenRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE oauth_tokens
            SET access_token = $2, refresh_token = COALESCE($3, refresh_token), key_id = $4,
                expires_at = $5, refresh_expires_at = COALESCE($6, refresh_expires_at),
                scope = COALESCE($7, scope), last_refreshed_at = now(), updated_at = now(),
                version = version + 1
          WHERE id = $1
          RETURNING *",
    )
    .bind(id)
    .bind(access_token)
    .bind(refresh_token)
    .bind(key_id)
    .bind(expires_at)
    .bind(refresh_expires_at)
    .bind(scope)
    .fetch_one(conn)
    .await
}

pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE oauth_tokens SET status = $2, updated_at = now(), version = version + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM oauth_tokens WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

//! `oauth_tokens`: one connection per provider × environment; tokens are sealed bytes here.
//!
//! A connect and a restore write whole rows through the same [`insert`] and [`replace`]; a
//! refresh writes only what a refresh changes.

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
    /// The provider's id of the connected account (a QuickBooks company, a HubSpot portal, a
    /// Stripe account); what it is called is the provider spec's `account_id_name`.
    pub external_account_id: Option<String>,
    pub status: String,
    pub version: i64,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The refresh token's hard maximum lifetime, when the provider reports one; written
    /// with [`set_hard_expiry`], not by the whole-row writes.
    pub refresh_hard_expires_at: Option<DateTime<Utc>>,
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

/// Connections that need a person: not connected, or a refresh token expiring before `before`.
pub async fn needing_attention(
    db: &PgPool,
    before: DateTime<Utc>,
) -> Result<Vec<TokenRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM oauth_tokens
          WHERE status <> 'connected' OR refresh_expires_at < $1
          ORDER BY provider, environment",
    )
    .bind(before)
    .fetch_all(db)
    .await
}

/// How many connections a config has (they go with it when it is deleted).
pub async fn count_for_config(
    conn: &mut PgConnection,
    integration_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM oauth_tokens WHERE integration_id = $1")
        .bind(integration_id)
        .fetch_one(conn)
        .await
}

/// Inserts a whole row as given (a new connection, or one restored from a backup).
pub async fn insert(conn: &mut PgConnection, r: &TokenRow) -> Result<TokenRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO oauth_tokens
           (id, integration_id, provider, environment, access_token, refresh_token, key_id,
            token_type, expires_at, refresh_expires_at, scope, external_account_id, status,
            version, last_refreshed_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         RETURNING *",
    )
    .bind(r.id)
    .bind(r.integration_id)
    .bind(&r.provider)
    .bind(&r.environment)
    .bind(&r.access_token)
    .bind(&r.refresh_token)
    .bind(&r.key_id)
    .bind(&r.token_type)
    .bind(r.expires_at)
    .bind(r.refresh_expires_at)
    .bind(&r.scope)
    .bind(&r.external_account_id)
    .bind(&r.status)
    .bind(r.version)
    .bind(r.last_refreshed_at)
    .bind(r.created_at)
    .bind(r.updated_at)
    .fetch_one(conn)
    .await
}

/// Replaces a connection's content with `r`'s (a reconnect, or a restore); the version moves
/// on so every reader sees the change.
pub async fn replace(conn: &mut PgConnection, r: &TokenRow) -> Result<TokenRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE oauth_tokens
            SET integration_id = $2, access_token = $3, refresh_token = $4, key_id = $5,
                token_type = $6, expires_at = $7, refresh_expires_at = $8, scope = $9,
                external_account_id = $10, status = $11, last_refreshed_at = $12,
                updated_at = now(), version = version + 1
          WHERE id = $1
          RETURNING *",
    )
    .bind(r.id)
    .bind(r.integration_id)
    .bind(&r.access_token)
    .bind(&r.refresh_token)
    .bind(&r.key_id)
    .bind(&r.token_type)
    .bind(r.expires_at)
    .bind(r.refresh_expires_at)
    .bind(&r.scope)
    .bind(&r.external_account_id)
    .bind(&r.status)
    .bind(r.last_refreshed_at)
    .fetch_one(conn)
    .await
}

/// What a refresh writes; the tokens are already sealed.
pub struct Refreshed<'a> {
    pub access_token: &'a [u8],
    /// None keeps the stored refresh token (the provider did not rotate it).
    pub refresh_token: Option<&'a [u8]>,
    pub key_id: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
    /// None keeps the stored expiry.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub scope: Option<&'a str>,
}

/// Stores refreshed tokens.
pub async fn refreshed(
    conn: &mut PgConnection,
    id: Uuid,
    w: &Refreshed<'_>,
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
    .bind(w.access_token)
    .bind(w.refresh_token)
    .bind(w.key_id)
    .bind(w.expires_at)
    .bind(w.refresh_expires_at)
    .bind(w.scope)
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

/// A connection whose refresh token expires soon, claimed for its one announcement.
#[derive(Debug, sqlx::FromRow)]
pub struct Expiring {
    pub provider: String,
    pub environment: String,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub refresh_hard_expires_at: Option<DateTime<Utc>>,
}

/// Marks every connected token whose refresh token expires (rolling or hard, whichever comes
/// first) before `before`, and that was not announced for this expiry yet, as announced; returns them. One statement: replicas running
/// it at once each get a disjoint share, so each expiry is announced once.
pub async fn claim_expiring(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
) -> Result<Vec<Expiring>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE oauth_tokens
            SET expiry_warned_for = LEAST(refresh_expires_at, refresh_hard_expires_at)
          WHERE status = 'connected'
            AND LEAST(refresh_expires_at, refresh_hard_expires_at) < $1
            AND expiry_warned_for IS DISTINCT FROM LEAST(refresh_expires_at, refresh_hard_expires_at)
         RETURNING provider, environment, refresh_expires_at, refresh_hard_expires_at",
    )
    .bind(before)
    .fetch_all(conn)
    .await
}

/// Stores the refresh token's hard expiry (None: the provider did not report one).
pub async fn set_hard_expiry(
    conn: &mut PgConnection,
    id: Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<TokenRow, sqlx::Error> {
    sqlx::query_as("UPDATE oauth_tokens SET refresh_hard_expires_at = $2 WHERE id = $1 RETURNING *")
        .bind(id)
        .bind(at)
        .fetch_one(conn)
        .await
}

//! `api_tokens`: only the SHA-256 of each token is stored.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiTokenRow {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, role, created_at, created_by, last_used_at, revoked_at";

/// The active (not revoked) token with this hash.
pub async fn find_active_by_hash(
    db: &PgPool,
    hash: &[u8],
) -> Result<Option<ApiTokenRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(hash)
    .fetch_optional(db)
    .await
}

/// Whether the token with this id exists and is not revoked (console sessions ask on every
/// request, so a revoked token ends its sessions at once).
pub async fn is_active(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE id = $1 AND revoked_at IS NULL)",
    )
    .bind(id)
    .fetch_one(db)
    .await
}

/// Records use at most once a minute per token, so reads don't turn into writes.
pub async fn touch(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = now()
          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(id)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn list(db: &PgPool) -> Result<Vec<ApiTokenRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id"
    ))
    .fetch_all(db)
    .await
}

pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
    role: &str,
    hash: &[u8],
    created_by: &str,
) -> Result<ApiTokenRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO api_tokens (id, name, role, token_hash, created_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(name)
    .bind(role)
    .bind(hash)
    .bind(created_by)
    .fetch_one(conn)
    .await
}

/// Marks the token revoked; false when there is no active token with this id.
pub async fn revoke(conn: &mut PgConnection, id: Uuid) -> Result<Option<ApiTokenRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

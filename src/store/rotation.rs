//! Key rotation's reads and writes: batches of values sealed under a key other than the
//! current one, locked with SKIP LOCKED so rotation never waits on (or blocks) the API for long.

use sqlx::PgConnection;
use uuid::Uuid;

/// Up to `limit` configs whose secrets are sealed under another key: `(id, secrets)`.
pub async fn configs_to_rotate(
    conn: &mut PgConnection,
    current: &str,
    limit: i64,
) -> Result<Vec<(Uuid, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, secrets FROM integration_configs WHERE key_id <> $1
          ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(current)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Re-sealed content only: version and timestamps stay, so clients' ETags stay valid.
pub async fn set_config_secrets(
    conn: &mut PgConnection,
    id: Uuid,
    sealed: &[u8],
    key_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE integration_configs SET secrets = $2, key_id = $3 WHERE id = $1")
        .bind(id)
        .bind(sealed)
        .bind(key_id)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn webhooks_to_rotate(
    conn: &mut PgConnection,
    current: &str,
    limit: i64,
) -> Result<Vec<(Uuid, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, secret FROM webhook_configurations
          WHERE secret IS NOT NULL AND key_id IS NOT NULL AND key_id <> $1
          ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(current)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// `(id, previous_secret)` of webhooks whose rotation-overlap secret is under another key.
pub async fn previous_webhook_secrets_to_rotate(
    conn: &mut PgConnection,
    current: &str,
    limit: i64,
) -> Result<Vec<(Uuid, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, previous_secret FROM webhook_configurations
          WHERE previous_secret IS NOT NULL AND previous_secret_key_id <> $1
          ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(current)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn set_previous_webhook_secret(
    conn: &mut PgConnection,
    id: Uuid,
    sealed: &[u8],
    key_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_configurations SET previous_secret = $2, previous_secret_key_id = $3
          WHERE id = $1",
    )
    .bind(id)
    .bind(sealed)
    .bind(key_id)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn set_webhook_secret(
    conn: &mut PgConnection,
    id: Uuid,
    sealed: &[u8],
    key_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhook_configurations SET secret = $2, key_id = $3 WHERE id = $1")
        .bind(id)
        .bind(sealed)
        .bind(key_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// `(id, access_token, refresh_token)` of tokens sealed under another key.
pub async fn tokens_to_rotate(
    conn: &mut PgConnection,
    current: &str,
    limit: i64,
) -> Result<Vec<(Uuid, Vec<u8>, Option<Vec<u8>>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, access_token, refresh_token FROM oauth_tokens WHERE key_id <> $1
          ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(current)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn set_token_secrets(
    conn: &mut PgConnection,
    id: Uuid,
    access: &[u8],
    refresh: Option<&[u8]>,
    key_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE oauth_tokens SET access_token = $2, refresh_token = $3, key_id = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(access)
    .bind(refresh)
    .bind(key_id)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Drops the keyring canaries of every key but `current`, once no data is sealed under them,
/// so the service starts without the retired keys.
pub async fn retire_canaries(conn: &mut PgConnection, current: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM keyring_check k WHERE k.key_id <> $1
            AND NOT EXISTS (SELECT 1 FROM integration_configs WHERE key_id = k.key_id)
            AND NOT EXISTS (SELECT 1 FROM oauth_tokens WHERE key_id = k.key_id)
            AND NOT EXISTS (SELECT 1 FROM webhook_configurations
                             WHERE key_id = k.key_id OR previous_secret_key_id = k.key_id)",
    )
    .bind(current)
    .execute(conn)
    .await
    .map(|r| r.rows_affected())
}

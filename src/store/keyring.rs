//! `keyring_check` and the key ids the stored data is sealed under.

use sqlx::PgPool;

/// Every key id that sealed data or a keyring canary names.
pub async fn key_ids_in_use(db: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT key_id FROM keyring_check
         UNION SELECT key_id FROM integration_configs
         UNION SELECT key_id FROM oauth_tokens
         UNION SELECT key_id FROM webhook_configurations WHERE key_id IS NOT NULL
         UNION SELECT previous_secret_key_id FROM webhook_configurations
                WHERE previous_secret_key_id IS NOT NULL
         ORDER BY 1",
    )
    .fetch_all(db)
    .await
}

/// Key ids still holding data (not just a canary), with how many values each seals.
pub async fn values_per_key_id(db: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key_id, count(*) FROM (
             SELECT key_id FROM integration_configs
             UNION ALL SELECT key_id FROM oauth_tokens
             UNION ALL SELECT key_id FROM webhook_configurations WHERE key_id IS NOT NULL
             UNION ALL SELECT previous_secret_key_id FROM webhook_configurations
                        WHERE previous_secret_key_id IS NOT NULL
         ) AS sealed GROUP BY key_id ORDER BY key_id",
    )
    .fetch_all(db)
    .await
}

pub async fn canaries(db: &PgPool) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("SELECT key_id, canary FROM keyring_check ORDER BY key_id")
        .fetch_all(db)
        .await
}

pub async fn insert_canary(db: &PgPool, key_id: &str, canary: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO keyring_check (key_id, canary) VALUES ($1, $2) ON CONFLICT (key_id) DO NOTHING")
        .bind(key_id)
        .bind(canary)
        .execute(db)
        .await
        .map(|_| ())
}

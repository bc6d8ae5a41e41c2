//! The start-up keyring check: the configured keys must open everything stored.
//!
//! If any stored value names a key id the keyring lacks, the service refuses to start and
//! names that id — before it writes anything, so it never overwrites data it cannot open.

use crate::infra::crypto::{Aad, KeyId};
use crate::state::AppState;
use crate::store;

const CANARY: &[u8] = b"hsq-config keyring canary";

fn canary_aad(key_id: &str) -> Aad {
    Aad::new("keyring_check", key_id, "canary")
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(
        "ENCRYPTION_KEY: stored data is sealed under key id {missing}, which the configured keyring ({configured}) does not hold; \
         set ENCRYPTION_KEY to that key, or add it to ENCRYPTION_KEYS_PREVIOUS while rotating"
    )]
    UnknownKey { missing: String, configured: String },
    #[error(
        "ENCRYPTION_KEY: the keyring canary for key id {0} does not open; the key or the data was altered"
    )]
    CanaryFailed(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Verifies the keyring against the database, then records a canary for the current key.
pub async fn verify(state: &AppState) -> Result<(), KeyringError> {
    let keys = state.keyring();
    let configured = keys
        .ids()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    for id in store::keyring::key_ids_in_use(&state.db).await? {
        let known = KeyId::parse(&id).is_some_and(|k| keys.knows(k));
        if !known {
            return Err(KeyringError::UnknownKey {
                missing: id,
                configured,
            });
        }
    }
    for (id, canary) in store::keyring::canaries(&state.db).await? {
        match keys.open(&canary, &canary_aad(&id)) {
            Ok(plain) if plain.as_slice() == CANARY => {}
            _ => return Err(KeyringError::CanaryFailed(id)),
        }
    }
    let current = keys.current_id().to_string();
    let canary = keys.seal(CANARY, &canary_aad(&current));
    store::keyring::insert_canary(&state.db, &current, &canary).await?;
    Ok(())
}

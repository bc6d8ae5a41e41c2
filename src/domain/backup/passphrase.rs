//! The passphrase key of a backup: Argon2id with parameters recorded in the file.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::BackupError;
use super::format::KdfParams;
use crate::config::MIN_BACKUP_PASSPHRASE_CHARS;
use crate::infra::crypto::KeyRing;

// OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
// A file names its own parameters; refuse ones that would exhaust the restoring host.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;

/// The keys derived from a passphrase: one seals the secrets, one keys the integrity tag.
pub struct PassphraseKey {
    pub ring: KeyRing,
    pub mac_key: Zeroizing<[u8; 32]>,
    pub kdf: KdfParams,
}

impl PassphraseKey {
    /// [`PassphraseKey::new`] off the async runtime: Argon2id is deliberately slow.
    pub async fn new_blocking(passphrase: SecretString) -> Result<Self, BackupError> {
        tokio::task::spawn_blocking(move || Self::new(&passphrase))
            .await
            .map_err(|_| BackupError::Invalid("the key derivation task failed".into()))?
    }

    /// [`PassphraseKey::derive`] off the async runtime.
    pub async fn derive_blocking(
        passphrase: SecretString,
        kdf: KdfParams,
    ) -> Result<Self, BackupError> {
        tokio::task::spawn_blocking(move || Self::derive(&passphrase, &kdf))
            .await
            .map_err(|_| BackupError::Invalid("the key derivation task failed".into()))?
    }

    /// Derives fresh keys with a random salt (for a new backup).
    pub fn new(passphrase: &SecretString) -> Result<Self, BackupError> {
        if passphrase.expose_secret().chars().count() < MIN_BACKUP_PASSPHRASE_CHARS {
            return Err(BackupError::Invalid(format!(
                "a backup passphrase must be at least {MIN_BACKUP_PASSPHRASE_CHARS} characters"
            )));
        }
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let kdf = KdfParams {
            algorithm: "argon2id".into(),
            version: 0x13,
            memory_kib: MEMORY_KIB,
            iterations: ITERATIONS,
            parallelism: PARALLELISM,
            salt: B64.encode(salt),
        };
        Self::derive(passphrase, &kdf)
    }

    /// Derives the keys a file's recorded parameters name.
    pub fn derive(passphrase: &SecretString, kdf: &KdfParams) -> Result<Self, BackupError> {
        let bad = |why: &str| {
            BackupError::NotABackup(format!("unusable key-derivation parameters: {why}"))
        };
        if kdf.algorithm != "argon2id" || kdf.version != 0x13 {
            return Err(bad("only argon2id version 19 is supported"));
        }
        if kdf.memory_kib > MAX_MEMORY_KIB
            || kdf.iterations > MAX_ITERATIONS
            || kdf.parallelism > MAX_PARALLELISM
        {
            return Err(bad(
                "the cost parameters are larger than this build accepts",
            ));
        }
        let salt = B64
            .decode(&kdf.salt)
            .map_err(|_| bad("the salt is not base64"))?;
        let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
            .map_err(|_| bad("the cost parameters are out of range"))?;
        let mut master = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(
                passphrase.expose_secret().as_bytes(),
                &salt,
                &mut master[..],
            )
            .map_err(|_| bad("the salt is too short"))?;
        let sub = |label: &[u8]| {
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(
                &Sha256::new()
                    .chain_update(label)
                    .chain_update(&master[..])
                    .finalize(),
            );
            out
        };
        let seal_key = sub(b"hsq-config backup seal key v1\0");
        Ok(Self {
            ring: KeyRing::from_bytes(*seal_key, &[]),
            mac_key: sub(b"hsq-config backup mac key v1\0"),
            kdf: kdf.clone(),
        })
    }
}

//! The keyring: AES-256-GCM sealing with key ids and additional authenticated data.
//!
//! A sealed value is `version ‖ key id (8) ‖ nonce (12) ‖ ciphertext+tag`. The AAD is the
//! value's place (`table/row-id/field`), so a ciphertext copied elsewhere does not open.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const PASSPHRASE_SALT: &[u8] = b"hsq-config/encryption-key/v1";
const MIN_PASSPHRASE_CHARS: usize = 32;

/// Names a key without revealing it: the first bytes of a domain-separated SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    fn of(key: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"hsq-config key id v1\0")
            .chain_update(key)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self(id)
    }

    pub fn parse(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        let id: [u8; KEY_ID_LEN] = bytes.try_into().ok()?;
        Some(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Where a sealed value lives; bound into the ciphertext as AAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad(String);

impl Aad {
    pub fn new(table: &str, row_id: impl fmt::Display, field: &str) -> Self {
        Self(format!("{table}/{row_id}/{field}"))
    }
}

/// Why a sealed value did not open. Messages are safe to show: they hold no secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("the sealed value is malformed or truncated")]
    Malformed,
    #[error("the sealed value uses format version {0}, which this build does not read")]
    UnknownVersion(u8),
    #[error("the value was sealed under key id {0}, which is not in the configured keyring")]
    UnknownKey(KeyId),
    #[error("the sealed value failed authentication: it was altered or belongs to another place")]
    Tampered,
}

struct Key {
    id: KeyId,
    cipher: Aes256Gcm,
    /// A separate key for integrity tags (backups), derived so it never equals the cipher key.
    mac_key: Zeroizing<[u8; 32]>,
}

struct Inner {
    current: Key,
    previous: Vec<Key>,
    from_passphrase: bool,
}

/// Key material that cannot be used: says which key and why, never the material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The current key (`ENCRYPTION_KEY`).
    #[error("{0}")]
    Current(String),
    /// One of the previous keys (`ENCRYPTION_KEYS_PREVIOUS`).
    #[error("{0}")]
    Previous(String),
}

/// The SHA-256 of a bearer token: all that is ever stored or compared of one.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The current key and any previous keys that still open old data.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.inner.current.id)
            .field(
                "previous",
                &self.inner.previous.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeyRing {
    /// Builds the keyring from `ENCRYPTION_KEY` and `ENCRYPTION_KEYS_PREVIOUS` material.
    pub fn from_material(
        current: &SecretString,
        previous: &[SecretString],
    ) -> Result<Self, KeyError> {
        let (current_key, from_passphrase) =
            parse_key(current.expose_secret()).map_err(KeyError::Current)?;
        let current = Key::new(&current_key);
        let mut prev = Vec::new();
        for material in previous {
            let (key, _) = parse_key(material.expose_secret()).map_err(KeyError::Previous)?;
            let key = Key::new(&key);
            if key.id != current.id && !prev.iter().any(|k: &Key| k.id == key.id) {
                prev.push(key);
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                current,
                previous: prev,
                from_passphrase,
            }),
        })
    }

    /// A keyring from raw key bytes (tools and tests).
    pub fn from_bytes(current: [u8; 32], previous: &[[u8; 32]]) -> Self {
        Self {
            inner: Arc::new(Inner {
                current: Key::new(&Zeroizing::new(current)),
                previous: previous
                    .iter()
                    .map(|k| Key::new(&Zeroizing::new(*k)))
                    .collect(),
                from_passphrase: false,
            }),
        }
    }

    pub fn current_id(&self) -> KeyId {
        self.inner.current.id
    }

    /// Every key id this keyring can open, current first.
    pub fn ids(&self) -> Vec<KeyId> {
        std::iter::once(self.inner.current.id)
            .chain(self.inner.previous.iter().map(|k| k.id))
            .collect()
    }

    pub fn knows(&self, id: KeyId) -> bool {
        self.key(id).is_some()
    }

    /// True when `ENCRYPTION_KEY` was a passphrase rather than 32 random bytes.
    pub fn from_passphrase(&self) -> bool {
        self.inner.from_passphrase
    }

    fn key(&self, id: KeyId) -> Option<&Key> {
        std::iter::once(&self.inner.current)
            .chain(self.inner.previous.iter())
            .find(|k| k.id == id)
    }

    /// The integrity-tag key derived from key `id` (backup files name the id they used).
    pub fn integrity_key(&self, id: KeyId) -> Option<Zeroizing<[u8; 32]>> {
        self.key(id).map(|k| k.mac_key.clone())
    }

    /// Seals `plaintext` under the current key with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], aad: &Aad) -> Vec<u8> {
        let key = &self.inner.current;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: aad.0.as_bytes(),
                },
            )
            // AES-GCM encryption fails only past 64 GiB per message; our values are bytes.
            .expect("AES-GCM encryption of a small value cannot fail");
        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&key.id.0);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens a sealed value; fails clearly on a wrong place, an unknown key or tampering.
    pub fn open(&self, sealed: &[u8], aad: &Aad) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let id = sealed_key_id(sealed)?;
        let key = self.key(id).ok_or(OpenError::UnknownKey(id))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]);
        key.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad: aad.0.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Tampered)
    }

    /// Seals a map of named secrets as one JSON document.
    pub fn seal_map(&self, map: &SecretMap, aad: &Aad) -> Vec<u8> {
        let plain: BTreeMap<&str, &str> = map
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose_secret()))
            .collect();
        let json =
            Zeroizing::new(serde_json::to_vec(&plain).expect("a map of strings always serializes"));
        self.seal(&json, aad)
    }

    pub fn open_map(&self, sealed: &[u8], aad: &Aad) -> Result<SecretMap, OpenError> {
        let json = self.open(sealed, aad)?;
        let plain: BTreeMap<String, String> =
            serde_json::from_slice(&json).map_err(|_| OpenError::Malformed)?;
        Ok(plain
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect())
    }

    pub fn open_string(&self, sealed: &[u8], aad: &Aad) -> Result<SecretString, OpenError> {
        let bytes = self.open(sealed, aad)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| OpenError::Malformed)?;
        Ok(SecretString::from(text.to_owned()))
    }
}

/// Named secrets in memory; values are zeroized on drop and never printed by `Debug`.
pub type SecretMap = BTreeMap<String, SecretString>;

/// The key id a sealed value names, without opening it.
pub fn sealed_key_id(sealed: &[u8]) -> Result<KeyId, OpenError> {
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Err(OpenError::Malformed);
    }
    if sealed[0] != FORMAT_VERSION {
        return Err(OpenError::UnknownVersion(sealed[0]));
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
    Ok(KeyId(id))
}

impl Key {
    fn new(key: &Zeroizing<[u8; 32]>) -> Self {
        let mut mac_key = Zeroizing::new([0u8; 32]);
        mac_key.copy_from_slice(
            &Sha256::new()
                .chain_update(b"hsq-config integrity key v1\0")
                .chain_update(&key[..])
                .finalize(),
        );
        Self {
            id: KeyId::of(key),
            cipher: Aes256Gcm::new(&aes_gcm::Key::<Aes256Gcm>::from(**key)),
            mac_key,
        }
    }
}

/// Accepts 32 bytes as hex or base64, or a long passphrase stretched with Argon2id.
fn parse_key(material: &str) -> Result<(Zeroizing<[u8; 32]>, bool), String> {
    let material = material.trim();
    if let Some(bytes) = decode_32(material) {
        return Ok((bytes, false));
    }
    if material.chars().count() >= MIN_PASSPHRASE_CHARS {
        let mut key = Zeroizing::new([0u8; 32]);
        argon2::Argon2::default()
            .hash_password_into(material.as_bytes(), PASSPHRASE_SALT, &mut key[..])
            .map_err(|e| format!("cannot stretch the passphrase: {e}"))?;
        return Ok((key, true));
    }
    Err(format!(
        "accepts 32 random bytes as base64 or hex (generate one with `openssl rand -base64 32`), \
         or a passphrase of at least {MIN_PASSPHRASE_CHARS} characters; the value given is too short"
    ))
}

fn decode_32(material: &str) -> Option<Zeroizing<[u8; 32]>> {
    let decoded = if material.len() == 64 && material.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(material).ok()
    } else {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
        STANDARD
            .decode(material)
            .or_else(|_| URL_SAFE.decode(material))
            .or_else(|_| URL_SAFE_NO_PAD.decode(material))
            .ok()
    }
    .map(Zeroizing::new)?;
    let bytes: [u8; 32] = decoded.as_slice().try_into().ok()?;
    Some(Zeroizing::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(byte: u8) -> KeyRing {
        KeyRing::from_bytes([byte; 32], &[])
    }

    #[test]
    fn a_sealed_value_opens_in_its_own_place_only() {
        let keys = ring(1);
        let here = Aad::new("integration_configs", "a", "secrets");
        let there = Aad::new("integration_configs", "b", "secrets");
        let sealed = keys.seal(b"sk_test_canary", &here);
        assert_eq!(
            &keys.open(&sealed, &here).expect("opens")[..],
            b"sk_test_canary"
        );
        assert_eq!(keys.open(&sealed, &there), Err(OpenError::Tampered));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let keys = ring(1);
        let aad = Aad::new("t", 1, "f");
        assert_ne!(keys.seal(b"x", &aad), keys.seal(b"x", &aad));
    }

    #[test]
    fn any_flipped_byte_fails_to_open() {
        let keys = ring(1);
        let aad = Aad::new("t", 1, "f");
        let sealed = keys.seal(b"secret value", &aad);
        for i in HEADER_LEN..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(keys.open(&bad, &aad), Err(OpenError::Tampered), "byte {i}");
        }
        assert_eq!(keys.open(&sealed[..10], &aad), Err(OpenError::Malformed));
    }

    #[test]
    fn previous_keys_open_old_data_and_unknown_keys_are_named() {
        let old = ring(1);
        let aad = Aad::new("t", 1, "f");
        let sealed = old.seal(b"old", &aad);
        let rotated = KeyRing::from_bytes([2; 32], &[[1; 32]]);
        assert_eq!(&rotated.open(&sealed, &aad).expect("opens")[..], b"old");
        let other = ring(3);
        assert_eq!(
            other.open(&sealed, &aad),
            Err(OpenError::UnknownKey(old.current_id()))
        );
    }

    #[test]
    fn key_material_forms() {
        let hex = "00".repeat(32);
        let b64 = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        let a = KeyRing::from_material(&SecretString::from(hex), &[]).expect("hex");
        let b = KeyRing::from_material(&SecretString::from(b64), &[]).expect("base64");
        assert_eq!(a.current_id(), b.current_id());
        assert!(!a.from_passphrase());
        let p = KeyRing::from_material(
            &SecretString::from("correct horse battery staple and more words"),
            &[],
        )
        .expect("passphrase");
        assert!(p.from_passphrase());
        let err = KeyRing::from_material(&SecretString::from("too-short"), &[]).expect_err("short");
        assert!(matches!(err, KeyError::Current(_)), "{err}");
        assert!(err.to_string().contains("openssl rand -base64 32"));
        assert!(!err.to_string().contains("too-short"));
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let keys = ring(7);
        let printed = format!("{keys:?}");
        assert!(printed.contains(&keys.current_id().to_string()));
        assert!(!printed.contains(&"07".repeat(32)));
    }

    // Property tests: the sealed-value envelope is bytes from outside (a database row, a
    // backup file); no input makes `open` panic or yield anything but the sealed plaintext.
    proptest::proptest! {
        #[test]
        fn any_bytes_open_to_an_error_never_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let keys = KeyRing::from_bytes([9; 32], &[]);
            proptest::prop_assert!(keys.open(&bytes, &Aad::new("t", 1, "f")).is_err());
            let _ = sealed_key_id(&bytes);
        }

        #[test]
        fn a_seal_opens_only_unchanged_and_in_place(
            plain in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            flip in 0usize..400,
            bit in 0u8..8,
        ) {
            let keys = KeyRing::from_bytes([9; 32], &[]);
            let aad = Aad::new("t", 1, "f");
            let sealed = keys.seal(&plain, &aad);
            proptest::prop_assert_eq!(&keys.open(&sealed, &aad).expect("opens")[..], &plain[..]);
            proptest::prop_assert!(keys.open(&sealed, &Aad::new("t", 2, "f")).is_err());
            let mut tampered = sealed.clone();
            let i = flip % tampered.len();
            tampered[i] ^= 1 << bit;
            proptest::prop_assert!(keys.open(&tampered, &aad).is_err());
        }
    }
}

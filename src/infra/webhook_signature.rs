//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): `webhook-signature`
//! is `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`, one per
//! secret in use, space-separated. Secrets are `whsec_<base64>`; the key is the decoded part.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Bytes of randomness in a generated secret (Svix uses 24 as well).
const SECRET_BYTES: usize = 24;

/// A new `whsec_<base64>` secret.
pub fn generate_secret() -> SecretString {
    let mut key = Zeroizing::new([0u8; SECRET_BYTES]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    SecretString::from(format!("whsec_{}", STANDARD.encode(key.as_ref())))
}

/// The HMAC key of a secret: the base64-decoded part after `whsec_`. A secret given in
/// another form (accepted before the catalogue existed) signs with its UTF-8 bytes.
pub fn signing_key(secret: &SecretString) -> Zeroizing<Vec<u8>> {
    let text = secret.expose_secret();
    let decoded = text
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .filter(|k| !k.is_empty());
    Zeroizing::new(decoded.unwrap_or_else(|| text.as_bytes().to_vec()))
}

/// `v1,<signature>` of one message under one key.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per key, space-separated.
pub fn header(keys: &[Zeroizing<Vec<u8>>], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| sign(k, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_specification_example() {
        // The Standard Webhooks reference test vector.
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(
            &signing_key(&secret),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn generated_secrets_decode_to_their_key() {
        let secret = generate_secret();
        assert!(secret.expose_secret().starts_with("whsec_"));
        assert_eq!(signing_key(&secret).len(), SECRET_BYTES);
    }
}

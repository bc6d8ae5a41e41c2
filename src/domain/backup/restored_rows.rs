//! The rows a restore writes, re-sealed under the current key, and the comparisons that make
//! restoring identical content a no-op.

use secrecy::{ExposeSecret, SecretString};
use sqlx::types::Json;
use uuid::Uuid;

use super::open::{OpenConfig, OpenToken, OpenWebhook};
use crate::domain::integrations::secrets_aad;
use crate::domain::mask::mask;
use crate::domain::oauth::vault;
use crate::domain::webhooks::secret_aad;
use crate::infra::crypto::{KeyRing, SecretMap};
use crate::store::integrations::ConfigRow;
use crate::store::oauth_tokens::TokenRow;
use crate::store::webhooks::WebhookRow;

pub(super) fn same_map(a: &SecretMap, b: &SecretMap) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && va.expose_secret() == vb.expose_secret())
}

pub(super) fn same_secret(a: Option<&SecretString>, b: Option<&SecretString>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
        _ => false,
    }
}

pub(super) fn same_token(
    keys: &KeyRing,
    current: &TokenRow,
    wanted: &TokenRow,
    file: &OpenToken,
) -> bool {
    let access = keys
        .open_string(&current.access_token, &vault::access_aad(current.id))
        .ok();
    let refresh = match &current.refresh_token {
        Some(s) => match keys.open_string(s, &vault::refresh_aad(current.id)) {
            Ok(v) => Some(v),
            Err(_) => return false,
        },
        None => None,
    };
    current.integration_id == wanted.integration_id
        && current.token_type == wanted.token_type
        && current.expires_at == wanted.expires_at
        && current.refresh_expires_at == wanted.refresh_expires_at
        && current.scope == wanted.scope
        && current.external_account_id == wanted.external_account_id
        && current.status == wanted.status
        && current.last_refreshed_at == wanted.last_refreshed_at
        && same_secret(access.as_ref(), Some(&file.access))
        && same_secret(refresh.as_ref(), file.refresh.as_ref())
}

pub(super) fn same_webhook(keys: &KeyRing, current: &WebhookRow, file: &OpenWebhook) -> bool {
    let secret = match &current.secret {
        Some(s) => match keys.open_string(s, &secret_aad(current.id)) {
            Ok(v) => Some(v),
            Err(_) => return false,
        },
        None => None,
    };
    current.provider == file.rec.provider
        && current.url == file.rec.url
        && current.events == file.rec.events
        && current.enabled == file.rec.enabled
        && current.description == file.rec.description
        && same_secret(secret.as_ref(), file.secret.as_ref())
}

/// The row to write for a file config, re-sealed under the current key for row `id`.
pub(super) fn config_row(keys: &KeyRing, key_id: &str, id: Uuid, c: &OpenConfig) -> ConfigRow {
    let r = &c.rec;
    ConfigRow {
        id,
        provider: r.provider.clone(),
        environment: r.environment.clone(),
        enabled: r.enabled,
        settings: Json(r.settings.clone()),
        secrets: keys.seal_map(&c.secrets, &secrets_aad(id)),
        secrets_masked: Json(
            c.secrets
                .iter()
                .map(|(k, v)| (k.clone(), mask(v.expose_secret())))
                .collect(),
        ),
        key_id: key_id.to_owned(),
        version: r.version,
        created_at: r.created_at,
        updated_at: r.updated_at,
        created_by: r.created_by.clone(),
        updated_by: r.updated_by.clone(),
        last_validated_at: r.last_validated_at,
        last_validation_status: r.last_validation_status.clone(),
        last_validation_detail: r.last_validation_detail.clone(),
    }
}

pub(super) fn webhook_row(keys: &KeyRing, key_id: &str, w: &OpenWebhook) -> WebhookRow {
    let r = &w.rec;
    WebhookRow {
        id: r.id,
        provider: r.provider.clone(),
        url: r.url.clone(),
        events: r.events.clone(),
        secret: w
            .secret
            .as_ref()
            .map(|s| keys.seal(s.expose_secret().as_bytes(), &secret_aad(r.id))),
        secret_masked: w.secret.as_ref().map(|s| mask(s.expose_secret())),
        key_id: w.secret.as_ref().map(|_| key_id.to_owned()),
        enabled: r.enabled,
        description: r.description.clone(),
        version: r.version,
        created_at: r.created_at,
        updated_at: r.updated_at,
        created_by: r.created_by.clone(),
        updated_by: r.updated_by.clone(),
        previous_secret_expires_at: None,
        disabled_at: None,
        disabled_reason: None,
    }
}

pub(super) fn token_row(
    keys: &KeyRing,
    key_id: &str,
    id: Uuid,
    integration_id: Uuid,
    t: &OpenToken,
) -> TokenRow {
    let r = &t.rec;
    TokenRow {
        refresh_hard_expires_at: None,
        id,
        integration_id,
        provider: r.provider.clone(),
        environment: r.environment.clone(),
        access_token: keys.seal(t.access.expose_secret().as_bytes(), &vault::access_aad(id)),
        refresh_token: t
            .refresh
            .as_ref()
            .map(|s| keys.seal(s.expose_secret().as_bytes(), &vault::refresh_aad(id))),
        key_id: key_id.to_owned(),
        token_type: r.token_type.clone(),
        expires_at: r.expires_at,
        refresh_expires_at: r.refresh_expires_at,
        scope: r.scope.clone(),
        external_account_id: r.external_account_id.clone(),
        status: r.status.clone(),
        version: r.version,
        last_refreshed_at: r.last_refreshed_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

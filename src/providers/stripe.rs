//! Stripe: API keys, Connect client id and webhook signing secret.

use secrecy::ExposeSecret;
use serde_json::Value;

use super::{
    AccountSource, ApiUrl, ClientAuth, FieldCheck, FieldSpec, OAuthSpec, ProviderSpec, RevokeInput,
    ValidationCall, ValidationInput, non_empty_text, prefixed,
};
use crate::domain::Environment;

pub struct Stripe;

const API: &str = "STRIPE_API_BASE_URL";

/// Stripe Connect: the platform's `connect_client_id` and secret key are the OAuth client; the
/// token request takes no `redirect_uri`, the token response names the connected account, and
/// access tokens do not expire.
static OAUTH: OAuthSpec = OAuthSpec {
    client_id_setting: "connect_client_id",
    client_secret_field: "secret_key",
    client_auth: ClientAuth::FormBody,
    default_scopes: "read_write",
    redirect_uri_in_token_request: false,
    account: AccountSource::TokenField("stripe_user_id"),
    account_id_name: "stripe_user_id",
    invalid_account_reason: "invalid_stripe_user_id",
    invalid_grant_codes: &[],
    refresh_expiry_field: None,
    refresh_hard_expiry: None,
    authorize_url: "https://connect.stripe.com/oauth/authorize",
    token_url: "https://connect.stripe.com/oauth/token",
    revoke_url: (
        "DEAUTHORIZE",
        "https://connect.stripe.com/oauth/deauthorize",
    ),
};

impl ProviderSpec for Stripe {
    fn display_name(&self) -> &'static str {
        "Stripe"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        &[
            FieldSpec {
                name: "publishable_key",
                label: "Publishable key",
                help: "Starts with pk_test_ in sandbox and pk_live_ in production.",
                check: FieldCheck::Setting(publishable_key),
            },
            FieldSpec {
                name: "account_id",
                label: "Account ID",
                help: "Your Stripe account, acct_…",
                check: FieldCheck::Setting(account_id),
            },
            FieldSpec {
                name: "connect_client_id",
                label: "Connect client ID",
                help: "ca_… from Connect settings; needed to connect accounts with OAuth.",
                check: FieldCheck::Setting(connect_client_id),
            },
            FieldSpec {
                name: "api_version",
                label: "API version",
                help: "A dated version such as 2024-06-20.",
                check: FieldCheck::Setting(api_version),
            },
            FieldSpec {
                name: "secret_key",
                label: "Secret key",
                help: "sk_ or rk_ key: _test_ keys in sandbox, _live_ keys in production.",
                check: FieldCheck::Secret(secret_key),
            },
            FieldSpec {
                name: "webhook_secret",
                label: "Webhook signing secret",
                help: "whsec_… from the webhook endpoint's page.",
                check: FieldCheck::Secret(webhook_secret),
            },
        ]
    }

    /// `GET /v1/account` with the secret key: read-only, and fails with 401 on a rolled key.
    fn validation_call(&self, input: &ValidationInput<'_>) -> Result<ValidationCall, String> {
        let key = input
            .secrets
            .get("secret_key")
            .ok_or("no secret_key is configured")?;
        Ok(ValidationCall {
            url: input.urls.join(API, "v1/account")?,
            bearer: key.clone(),
        })
    }

    fn api_urls(&self) -> &'static [ApiUrl] {
        &[ApiUrl {
            variable: API,
            default: "https://api.stripe.com",
        }]
    }

    fn webhook_secret_prefix(&self) -> Option<&'static str> {
        Some("whsec_")
    }

    fn oauth(&self) -> &'static OAuthSpec {
        &OAUTH
    }

    /// Deauthorizes the connected account (`client_id`, `stripe_user_id`), authenticated with
    /// the platform's secret key.
    fn revoke_request(
        &self,
        http: &reqwest::Client,
        input: &RevokeInput<'_>,
    ) -> reqwest::RequestBuilder {
        http.post(input.url.clone())
            .bearer_auth(input.client_secret.expose_secret())
            .form(&[
                ("client_id", input.client_id),
                (
                    "stripe_user_id",
                    input.external_account_id.unwrap_or_default(),
                ),
            ])
    }
}

/// Test-mode keys belong in sandbox and live-mode keys in production, never the other way.
fn mode_matches(key: &str, kind: &str, environment: Environment) -> Result<(), String> {
    let test = format!("{kind}_test_");
    let live = format!("{kind}_live_");
    match environment {
        Environment::Sandbox if key.starts_with(&live) => Err(format!(
            "a live-mode key ({live}…) is not accepted in sandbox"
        )),
        Environment::Production if key.starts_with(&test) => Err(format!(
            "a test-mode key ({test}…) is not accepted in production"
        )),
        _ if key.starts_with(&test) || key.starts_with(&live) => Ok(()),
        _ => Err(format!("must start with {test} or {live}")),
    }
}

fn text(value: &Value, environment: Environment) -> Result<&str, String> {
    non_empty_text(value, environment)?;
    Ok(value.as_str().unwrap_or_default())
}

fn publishable_key(value: &Value, environment: Environment) -> Result<(), String> {
    mode_matches(text(value, environment)?, "pk", environment)
}

fn account_id(value: &Value, environment: Environment) -> Result<(), String> {
    prefixed(text(value, environment)?, &["acct_"])
}

fn connect_client_id(value: &Value, environment: Environment) -> Result<(), String> {
    prefixed(text(value, environment)?, &["ca_"])
}

/// A dated version such as `2024-06-20` or `2025-03-31.basil`.
fn api_version(value: &Value, environment: Environment) -> Result<(), String> {
    let v = text(value, environment)?;
    let date = v.split('.').next().unwrap_or_default();
    let shape_ok = date.len() == 10
        && date.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            _ => c.is_ascii_digit(),
        });
    if shape_ok && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() {
        Ok(())
    } else {
        Err("must be a Stripe API version like 2024-06-20".into())
    }
}

fn secret_key(value: &str, environment: Environment) -> Result<(), String> {
    prefixed(value, &["sk_", "rk_"])?;
    let kind = if value.starts_with("rk_") { "rk" } else { "sk" };
    mode_matches(value, kind, environment)
}

fn webhook_secret(value: &str, _: Environment) -> Result<(), String> {
    prefixed(value, &["whsec_"])
}

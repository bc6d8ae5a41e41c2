//! QuickBooks Online: the Intuit OAuth app and the company (realm) it connects to.

use secrecy::ExposeSecret;
use serde_json::Value;

use super::{
    AccountSource, ApiUrl, ClientAuth, FieldCheck, FieldSpec, OAuthSpec, ProviderSpec, RevokeInput,
    ValidationCall, ValidationInput, digits, non_empty_text, scopes, secret_text,
};
use crate::domain::Environment;

pub struct Quickbooks;

/// The scope every accounting sync needs; used when the client sends none.
pub const DEFAULT_SCOPE: &str = "com.intuit.quickbooks.accounting";

const API: &str = "QUICKBOOKS_API_BASE_URL";
const SANDBOX_API: &str = "QUICKBOOKS_SANDBOX_API_BASE_URL";

/// Intuit authenticates the client with HTTP Basic, sends the company as `realmId` on the
/// callback, rolls refresh tokens and reports their expiry in `x_refresh_token_expires_in`.
static OAUTH: OAuthSpec = OAuthSpec {
    client_id_setting: "client_id",
    client_secret_field: "client_secret",
    client_auth: ClientAuth::Basic,
    default_scopes: DEFAULT_SCOPE,
    redirect_uri_in_token_request: true,
    account: AccountSource::CallbackParam("realmId"),
    account_id_name: "realm_id",
    invalid_account_reason: "invalid_realm_id",
    invalid_grant_codes: &[],
    refresh_expiry_field: Some("x_refresh_token_expires_in"),
    // Intuit answers with the five-year maximum only when asked with this header.
    refresh_hard_expiry: Some((
        "x_refresh_token_hard_expires_in",
        ("x-include-refresh-token-hard-expires-in", "true"),
    )),
    authorize_url: "https://appcenter.intuit.com/connect/oauth2",
    token_url: "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    revoke_url: (
        "REVOKE",
        "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
    ),
};

impl ProviderSpec for Quickbooks {
    fn display_name(&self) -> &'static str {
        "QuickBooks Online"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        &[
            FieldSpec {
                name: "client_id",
                label: "Client ID",
                help: "From the Intuit developer app's Keys & credentials.",
                check: FieldCheck::Setting(non_empty_text),
            },
            FieldSpec {
                name: "realm_id",
                label: "Company (realm) ID",
                help: "Digits only; filled in by connecting.",
                check: FieldCheck::Setting(digits),
            },
            FieldSpec {
                name: "scopes",
                label: "Scopes",
                help: "Space-separated; com.intuit.quickbooks.accounting when left out.",
                check: FieldCheck::Setting(scopes),
            },
            FieldSpec {
                name: "minor_version",
                label: "Minor version",
                help: "The API minor version, digits only (75 when left out).",
                check: FieldCheck::Setting(digits),
            },
            FieldSpec {
                name: "client_secret",
                label: "Client secret",
                help: "From the Intuit developer app's Keys & credentials.",
                check: FieldCheck::Secret(secret_text),
            },
        ]
    }

    fn default_settings(&self) -> Vec<(&'static str, Value)> {
        vec![("scopes", Value::String(DEFAULT_SCOPE.to_owned()))]
    }

    /// `GET /v3/company/{realm}/companyinfo/{realm}` with the OAuth access token; sandbox and
    /// production companies live on different hosts.
    fn validation_call(&self, input: &ValidationInput<'_>) -> Result<ValidationCall, String> {
        let (token, connected_realm) = input
            .oauth
            .ok_or("QuickBooks is not connected by OAuth; connect it first")?;
        let realm = connected_realm
            .map(str::to_owned)
            .or_else(|| {
                input.settings.get("realm_id").and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
            })
            .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))
            .ok_or("no realm id is known for this connection")?;
        let base = match input.environment {
            Environment::Sandbox => SANDBOX_API,
            Environment::Production => API,
        };
        let mut url = input
            .urls
            .join(base, &format!("v3/company/{realm}/companyinfo/{realm}"))?;
        let minor = input
            .settings
            .get("minor_version")
            .and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
            .unwrap_or_else(|| "75".to_owned());
        url.query_pairs_mut().append_pair("minorversion", &minor);
        Ok(ValidationCall {
            url,
            bearer: token.clone(),
        })
    }

    fn api_urls(&self) -> &'static [ApiUrl] {
        &[
            ApiUrl {
                variable: API,
                default: "https://quickbooks.api.intuit.com",
            },
            ApiUrl {
                variable: SANDBOX_API,
                default: "https://sandbox-quickbooks.api.intuit.com",
            },
        ]
    }

    fn oauth(&self) -> &'static OAuthSpec {
        &OAUTH
    }

    /// JSON `{"token": <refresh token>}` with Basic client authentication.
    fn revoke_request(
        &self,
        http: &reqwest::Client,
        input: &RevokeInput<'_>,
    ) -> reqwest::RequestBuilder {
        http.post(input.url.clone())
            .basic_auth(input.client_id, Some(input.client_secret.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&serde_json::json!({ "token": input.token() }))
    }
}

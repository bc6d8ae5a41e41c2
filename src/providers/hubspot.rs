//! HubSpot: OAuth app credentials and a private app token.

use secrecy::ExposeSecret;

use super::{
    AccountSource, ApiUrl, ClientAuth, FieldCheck, FieldSpec, OAuthSpec, ProviderSpec, RevokeInput,
    ValidationCall, ValidationInput, digits, non_empty_text, prefixed, scopes, secret_text,
};
use crate::domain::Environment;

pub struct Hubspot;

const API: &str = "HUBSPOT_API_BASE_URL";

/// HubSpot's dated 2026-03 endpoints take every parameter in the form body; access tokens last
/// 30 minutes, so `expires_in` is always honoured; the token response names the portal.
static OAUTH: OAuthSpec = OAuthSpec {
    client_id_setting: "client_id",
    client_secret_field: "client_secret",
    client_auth: ClientAuth::FormBody,
    default_scopes: "oauth",
    redirect_uri_in_token_request: true,
    account: AccountSource::TokenField("hub_id"),
    account_id_name: "hub_id",
    invalid_account_reason: "invalid_hub_id",
    invalid_grant_codes: &["BAD_REFRESH_TOKEN", "BAD_AUTH_CODE"],
    refresh_expiry_field: None,
    refresh_hard_expiry: None,
    authorize_url: "https://app.hubspot.com/oauth/authorize",
    token_url: "https://api.hubapi.com/oauth/2026-03/token",
    revoke_url: (
        "REVOKE",
        "https://api.hubapi.com/oauth/2026-03/token/revoke",
    ),
};

impl ProviderSpec for Hubspot {
    fn display_name(&self) -> &'static str {
        "HubSpot"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        &[
            FieldSpec {
                name: "client_id",
                label: "Client ID",
                help: "The OAuth app's client id.",
                check: FieldCheck::Setting(non_empty_text),
            },
            FieldSpec {
                name: "app_id",
                label: "App ID",
                help: "Digits only.",
                check: FieldCheck::Setting(digits),
            },
            FieldSpec {
                name: "portal_id",
                label: "Portal (hub) ID",
                help: "Digits only.",
                check: FieldCheck::Setting(digits),
            },
            FieldSpec {
                name: "scopes",
                label: "Scopes",
                help: "Space-separated scope names.",
                check: FieldCheck::Setting(scopes),
            },
            FieldSpec {
                name: "client_secret",
                label: "Client secret",
                help: "The OAuth app's client secret.",
                check: FieldCheck::Secret(secret_text),
            },
            FieldSpec {
                name: "private_app_token",
                label: "Private app token",
                help: "pat-… from a HubSpot private app.",
                check: FieldCheck::Secret(private_app_token),
            },
        ]
    }

    /// Account details with the private app token, or else the OAuth access token.
    fn validation_call(&self, input: &ValidationInput<'_>) -> Result<ValidationCall, String> {
        let bearer = input
            .secrets
            .get("private_app_token")
            .or(input.oauth.map(|(token, _)| token))
            .ok_or("no private_app_token is configured and HubSpot is not connected by OAuth")?;
        Ok(ValidationCall {
            url: input.urls.join(API, "account-info/v3/details")?,
            bearer: bearer.clone(),
        })
    }

    fn api_urls(&self) -> &'static [ApiUrl] {
        &[ApiUrl {
            variable: API,
            default: "https://api.hubapi.com",
        }]
    }

    fn oauth(&self) -> &'static OAuthSpec {
        &OAUTH
    }

    /// A form with `client_id, client_secret, token, token_type_hint`.
    fn revoke_request(
        &self,
        http: &reqwest::Client,
        input: &RevokeInput<'_>,
    ) -> reqwest::RequestBuilder {
        let hint = if input.refresh_token.is_some() {
            "refresh_token"
        } else {
            "access_token"
        };
        http.post(input.url.clone()).form(&[
            ("client_id", input.client_id),
            ("client_secret", input.client_secret.expose_secret()),
            ("token", input.token()),
            ("token_type_hint", hint),
        ])
    }
}

fn private_app_token(value: &str, _: Environment) -> Result<(), String> {
    prefixed(value, &["pat-"])
}

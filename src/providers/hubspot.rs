//! HubSpot: OAuth app credentials and a private app token.

use super::{
    ClientAuth, FieldCheck, FieldSpec, OAuthQuirks, ProviderSpec, RevokeStyle, ValidationCall,
    ValidationInput, digits, non_empty_text, prefixed, scopes, secret_text,
};
use crate::domain::Environment;

pub struct Hubspot;

impl ProviderSpec for Hubspot {
    fn fields(&self) -> &'static [FieldSpec] {
        &[
            FieldSpec {
                name: "client_id",
                check: FieldCheck::Setting(non_empty_text),
            },
            FieldSpec {
                name: "app_id",
                check: FieldCheck::Setting(digits),
            },
            FieldSpec {
                name: "portal_id",
                check: FieldCheck::Setting(digits),
            },
            FieldSpec {
                name: "scopes",
                check: FieldCheck::Setting(scopes),
            },
            FieldSpec {
                name: "client_secret",
                check: FieldCheck::Secret(secret_text),
            },
            FieldSpec {
                name: "private_app_token",
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
            url: input
                .urls
                .hubspot_api
                .join("account-info/v3/details")
                .map_err(|e| e.to_string())?,
            bearer: bearer.clone(),
        })
    }

    /// HubSpot's dated 2026-03 endpoints take every parameter in the form body; access
    /// tokens last 30 minutes, so `expires_in` is always honoured.
    fn oauth(&self) -> OAuthQuirks {
        OAuthQuirks {
            client_id_setting: "client_id",
            client_secret_field: "client_secret",
            client_auth: ClientAuth::FormBody,
            default_scopes: "oauth",
            redirect_uri_in_token_request: true,
            callback_account_param: None,
            revoke: RevokeStyle::HubspotForm,
        }
    }
}

fn private_app_token(value: &str, _: Environment) -> Result<(), String> {
    prefixed(value, &["pat-"])
}

//! Revoking a connection at the provider; each provider speaks its own format, so this is
//! plain HTTP rather than the `oauth2` crate's RFC 7009 request.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::provider::{AppClient, ProviderError, error_code, transport};
use crate::providers::RevokeStyle;

impl AppClient {
    /// Revokes the connection at the provider: the refresh token (Intuit, HubSpot) or the
    /// connected account's authorization (Stripe).
    pub async fn revoke(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
        refresh_token: Option<&SecretString>,
        access_token: &SecretString,
        stripe_user_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        let url = self.endpoints.revoke.clone();
        let secret = self.client_secret.expose_secret();
        let token = refresh_token.unwrap_or(access_token).expose_secret();
        let request = match self.quirks.revoke {
            RevokeStyle::IntuitJson => http
                .post(url)
                .basic_auth(&self.client_id, Some(secret))
                .header(reqwest::header::ACCEPT, "application/json")
                .json(&serde_json::json!({ "token": token })),
            RevokeStyle::HubspotForm => http.post(url).form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", secret),
                ("token", token),
                (
                    "token_type_hint",
                    if refresh_token.is_some() {
                        "refresh_token"
                    } else {
                        "access_token"
                    },
                ),
            ]),
            RevokeStyle::StripeDeauthorize => http.post(url).bearer_auth(secret).form(&[
                ("client_id", self.client_id.as_str()),
                ("stripe_user_id", stripe_user_id.unwrap_or_default()),
            ]),
        };
        let response = request
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(transport(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Err(if status.is_server_error() {
            ProviderError::Unavailable(format!("HTTP {}", status.as_u16()))
        } else {
            ProviderError::Rejected {
                status: status.as_u16(),
                code: error_code(&body),
            }
        })
    }
}

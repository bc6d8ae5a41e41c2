//! Revoking a connection at the provider; each provider speaks its own format (its spec
//! builds the request), so this is plain HTTP rather than the `oauth2` crate's RFC 7009 request.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::provider::{AppClient, ProviderError, error_code, transport};
use crate::providers::{self, RevokeInput};

impl AppClient {
    /// Revokes the connection at the provider (the refresh token, or the connected account's
    /// authorization, as the provider's spec says).
    pub async fn revoke(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
        refresh_token: Option<&SecretString>,
        access_token: &SecretString,
        external_account_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        let input = RevokeInput {
            url: self.endpoints.revoke.clone(),
            client_id: &self.client_id,
            client_secret: &self.client_secret,
            refresh_token,
            access_token,
            external_account_id,
        };
        let request = providers::spec(self.provider).revoke_request(http, &input);
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

//! Calls to the providers' OAuth endpoints: one small function per call type (authorize URL,
//! code exchange, refresh, revoke), so a circuit breaker can wrap each later.
//!
//! Code exchange and refresh go through the `oauth2` crate over our own `reqwest::Client`
//! (a custom async HTTP function, which also records the HTTP status for error
//! classification). Revocation differs per provider and is spoken directly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, StandardRevocableToken, TokenUrl,
};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::token_response::{Response, snake_case_token_fields, to_token_set};
use crate::config::oauth::Endpoints;
use crate::domain::Provider;
use crate::providers::{self, ClientAuth, OAuthSpec};

/// The OAuth app of one provider × environment: from its integration config.
pub struct AppClient {
    pub provider: Provider,
    pub spec: &'static OAuthSpec,
    pub endpoints: Endpoints,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
}

/// Tokens as a provider returned them.
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_expires_in: Option<u64>,
    /// Seconds until the refresh token's hard maximum lifetime ends, when reported.
    pub refresh_hard_expires_in: Option<u64>,
    pub scope: Option<String>,
    /// The connected account, when the provider names it in the token response.
    pub account_id: Option<String>,
}

/// Why a provider call failed. Never carries a response body: bodies can hold secrets.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The code or refresh token is dead; only a new authorization helps.
    #[error("the provider rejected the grant (invalid_grant)")]
    InvalidGrant,
    /// The provider refused the request (client authentication, redirect URI, scopes).
    #[error("the provider refused the request ({code}, HTTP {status})")]
    Rejected { status: u16, code: String },
    /// Timeout, connection failure, 5xx or an unreadable answer: worth retrying later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

impl ProviderError {
    /// The breaker's verdict: only an unavailable provider counts against it.
    pub fn provider_up<T>(outcome: &Result<T, Self>) -> bool {
        !matches!(outcome, Err(Self::Unavailable(_)))
    }

    /// What a call rejected by an open circuit breaker reports.
    pub fn circuit_open() -> Self {
        Self::Unavailable("the circuit breaker is open after repeated provider failures".into())
    }

    /// A stable reason code for redirects and audit rows.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidGrant => "invalid_grant",
            Self::Rejected { .. } => "provider_rejected",
            Self::Unavailable(_) => "provider_unavailable",
        }
    }
}

type Client = oauth2::Client<
    BasicErrorResponse,
    Response,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A fresh PKCE pair (S256) for one flow.
pub fn pkce() -> (PkceCodeChallenge, PkceCodeVerifier) {
    PkceCodeChallenge::new_random_sha256()
}

impl AppClient {
    fn client(&self, redirect_uri: Option<&Url>) -> Result<Client, ProviderError> {
        let bad = |what: &str| ProviderError::Rejected {
            status: 0,
            code: format!("invalid {what}"),
        };
        let mut client = oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(AuthUrl::from_url(self.endpoints.authorize.clone()))
            .set_token_uri(TokenUrl::from_url(self.endpoints.token.clone()))
            .set_auth_type(match self.spec.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::FormBody => AuthType::RequestBody,
            });
        if let Some(uri) = redirect_uri {
            let uri = RedirectUrl::new(uri.to_string()).map_err(|_| bad("redirect URI"))?;
            client = client.set_redirect_uri(uri);
        }
        Ok(client)
    }

    /// The consent-screen URL for `state`, with the S256 challenge.
    pub fn authorize_url(
        &self,
        state: &str,
        redirect_uri: &Url,
        challenge: PkceCodeChallenge,
    ) -> Result<Url, ProviderError> {
        let state = state.to_owned();
        let (url, _) = self
            .client(Some(redirect_uri))?
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        Ok(url)
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
        code: &str,
        verifier: &str,
        redirect_uri: &Url,
    ) -> Result<TokenSet, ProviderError> {
        let redirect = self
            .spec
            .redirect_uri_in_token_request
            .then_some(redirect_uri);
        let client = self.client(redirect)?;
        let status = Arc::new(AtomicU16::new(0));
        let send = sender(http, timeout, &status, self.spec);
        let result = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&send)
            .await;
        classify(result, &status, self.spec).map(|r| to_token_set(r, self.spec))
    }

    /// Trades a refresh token for new tokens.
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, ProviderError> {
        let client = self.client(None)?;
        let status = Arc::new(AtomicU16::new(0));
        let send = sender(http, timeout, &status, self.spec);
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let result = client
            .exchange_refresh_token(&token)
            .request_async(&send)
            .await;
        classify(result, &status, self.spec).map(|r| to_token_set(r, self.spec))
    }
}

/// Builds the app client of `provider` from its config's settings and secrets.
pub fn app_client(
    provider: Provider,
    endpoints: &Endpoints,
    settings: &serde_json::Map<String, Value>,
    secrets: &crate::infra::crypto::SecretMap,
) -> Option<AppClient> {
    let spec = providers::spec(provider);
    let oauth = spec.oauth();
    let client_id = settings.get(oauth.client_id_setting)?.as_str()?.to_owned();
    let client_secret = secrets.get(oauth.client_secret_field)?.clone();
    Some(AppClient {
        provider,
        spec: oauth,
        endpoints: endpoints.clone(),
        client_id,
        client_secret,
        scopes: providers::oauth_scopes(spec, settings),
    })
}

/// The async HTTP function handed to `oauth2`: our client, our timeout, no redirects
/// followed (the client is built that way), and the status recorded for classification.
fn sender(
    http: &reqwest::Client,
    timeout: Duration,
    status: &Arc<AtomicU16>,
    spec: &'static OAuthSpec,
) -> impl Fn(
    oauth2::HttpRequest,
) -> std::pin::Pin<
    Box<dyn Future<Output = Result<oauth2::HttpResponse, reqwest::Error>> + Send>,
> {
    let http = http.clone();
    let status = status.clone();
    move |request: oauth2::HttpRequest| {
        let http = http.clone();
        let status = status.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut builder = http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers);
            if let Some((_, (name, value))) = spec.refresh_hard_expiry {
                builder = builder.header(name, value);
            }
            let response = builder.body(body).timeout(timeout).send().await?;
            status.store(response.status().as_u16(), Ordering::Relaxed);
            let code = response.status();
            let headers = response.headers().clone();
            let body = snake_case_token_fields(response.bytes().await?.to_vec());
            let mut out = http::Response::new(body);
            *out.status_mut() = code;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

fn classify(
    result: Result<Response, RequestTokenError<reqwest::Error, BasicErrorResponse>>,
    status: &AtomicU16,
    spec: &OAuthSpec,
) -> Result<Response, ProviderError> {
    let status = status.load(Ordering::Relaxed);
    match result {
        Ok(response) => Ok(response),
        Err(RequestTokenError::Request(e)) => Err(ProviderError::Unavailable(transport(&e))),
        Err(_) if status >= 500 || status == 429 => {
            Err(ProviderError::Unavailable(format!("HTTP {status}")))
        }
        Err(RequestTokenError::ServerResponse(e)) => Err(match e.error() {
            BasicErrorResponseType::InvalidGrant => ProviderError::InvalidGrant,
            other => ProviderError::Rejected {
                status,
                code: other.to_string(),
            },
        }),
        // Some token endpoints answer errors in their own shape; a dead refresh token
        // is a 400 whose body names it.
        Err(RequestTokenError::Parse(_, body)) if (400..500).contains(&status) => {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let code = error_code(&body);
            if code.contains("invalid_grant")
                || spec.invalid_grant_codes.iter().any(|c| code.contains(c))
            {
                Err(ProviderError::InvalidGrant)
            } else {
                Err(ProviderError::Rejected { status, code })
            }
        }
        Err(RequestTokenError::Parse(..)) => Err(ProviderError::Unavailable(format!(
            "unreadable token response (HTTP {status})"
        ))),
        Err(RequestTokenError::Other(_)) if (400..500).contains(&status) => {
            Err(ProviderError::Rejected {
                status,
                code: "unreadable_error".into(),
            })
        }
        Err(RequestTokenError::Other(_)) => Err(ProviderError::Unavailable(format!(
            "unexpected token response (HTTP {status})"
        ))),
    }
}

/// A short error code from an error body, without any value from it beyond known names.
pub(super) fn error_code(body: &Value) -> String {
    let pick = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    pick("error")
        .or_else(|| pick("status"))
        .or_else(|| pick("category"))
        .map(|c| {
            c.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect()
        })
        .unwrap_or_else(|| "unknown_error".into())
}

/// Transport failures, without the URL's query (which never holds secrets here anyway).
pub(super) fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn error_codes_come_from_known_fields_only() {
        assert_eq!(
            error_code(&json!({"error": "invalid_grant", "error_description": "x"})),
            "invalid_grant"
        );
        assert_eq!(
            error_code(&json!({"status": "BAD_REFRESH_TOKEN", "message": "secret-ish"})),
            "BAD_REFRESH_TOKEN"
        );
        assert_eq!(
            error_code(&json!({"error": "<script>alert(1)</script>"})),
            "scriptalert1script"
        );
        assert_eq!(error_code(&json!("not an object")), "unknown_error");
    }
}

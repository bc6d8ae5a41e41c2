//! Everything that differs between providers, one file each.
//!
//! A provider is a [`ProviderSpec`]: its field schema and defaults, its API base URLs, how it
//! speaks OAuth (endpoints and their defaults, scopes, client authentication, where the
//! callback or token response names the connected account, the refresh token's expiry field,
//! the revocation request) and its validation call. Everything outside this folder asks the
//! spec and names no provider; adding one is a variant of [`Provider`], a file here and one
//! arm in [`spec`] (docs/architecture.md walks through it).

mod hubspot;
mod quickbooks;
mod stripe;

use std::collections::BTreeMap;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::domain::{Environment, Provider};
use crate::http::error::FieldError;

/// How one field is checked. Messages never contain the value.
pub enum FieldCheck {
    /// A plain setting, stored as JSON in `settings`.
    Setting(fn(&Value, Environment) -> Result<(), String>),
    /// A secret string, sealed in `secrets`.
    Secret(fn(&str, Environment) -> Result<(), String>),
}

pub struct FieldSpec {
    pub name: &'static str,
    /// How the console labels the field, and the one line of help it shows beside it.
    pub label: &'static str,
    pub help: &'static str,
    pub check: FieldCheck,
}

/// An API base URL the provider is called under, as a setting with its default (the real
/// host); overridden for sandboxes and tests.
pub struct ApiUrl {
    pub variable: &'static str,
    pub default: &'static str,
}

/// The API base URLs of one provider as configured, by setting name.
#[derive(Debug, Clone, Default)]
pub struct ApiUrls(BTreeMap<&'static str, Url>);

impl ApiUrls {
    pub fn insert(&mut self, variable: &'static str, url: Url) {
        self.0.insert(variable, url);
    }

    /// The URL of `variable`, joined with `path`.
    pub fn join(&self, variable: &str, path: &str) -> Result<Url, String> {
        self.0
            .get(variable)
            .ok_or_else(|| format!("{variable} is not configured"))?
            .join(path)
            .map_err(|e| e.to_string())
    }
}

/// What a live validation may use: the stored configuration and any OAuth connection.
pub struct ValidationInput<'a> {
    pub environment: Environment,
    pub settings: &'a Map<String, Value>,
    pub secrets: &'a BTreeMap<String, SecretString>,
    /// The connection's access token and its external account id, when connected.
    pub oauth: Option<(&'a SecretString, Option<&'a str>)>,
    pub urls: &'a ApiUrls,
}

/// One cheap, read-only GET that succeeds only with working credentials.
pub struct ValidationCall {
    pub url: reqwest::Url,
    pub bearer: SecretString,
}

/// What a revocation request may use.
pub struct RevokeInput<'a> {
    pub url: Url,
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
    pub refresh_token: Option<&'a SecretString>,
    pub access_token: &'a SecretString,
    pub external_account_id: Option<&'a str>,
}

impl RevokeInput<'_> {
    /// The token to revoke: the refresh token when there is one (it ends the grant).
    pub fn token(&self) -> &str {
        self.refresh_token
            .unwrap_or(self.access_token)
            .expose_secret()
    }
}

/// A provider's configuration schema and its dealings with the outside world.
pub trait ProviderSpec: Sync {
    /// The provider's name as people write it (`QuickBooks Online`), for the console.
    fn display_name(&self) -> &'static str;

    fn fields(&self) -> &'static [FieldSpec];

    /// Settings filled in when the client leaves them out.
    fn default_settings(&self) -> Vec<(&'static str, Value)> {
        Vec::new()
    }

    /// The API base URLs validation calls are made under.
    fn api_urls(&self) -> &'static [ApiUrl];

    /// The validation call for these credentials, or why there is nothing to validate.
    fn validation_call(&self, input: &ValidationInput<'_>) -> Result<ValidationCall, String>;

    /// How this provider speaks OAuth.
    fn oauth(&self) -> &'static OAuthSpec;

    /// The prefix the provider's own webhook signing secrets carry, if it has one.
    fn webhook_secret_prefix(&self) -> Option<&'static str> {
        None
    }

    /// The request that revokes a connection at the provider.
    fn revoke_request(
        &self,
        http: &reqwest::Client,
        input: &RevokeInput<'_>,
    ) -> reqwest::RequestBuilder;
}

/// How the OAuth client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)`.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    FormBody,
}

/// Where the external account a connection belongs to is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountSource {
    /// A query parameter of the OAuth callback; digits only.
    CallbackParam(&'static str),
    /// A field of the token response (a string or a number).
    TokenField(&'static str),
}

/// A provider's OAuth specifics. Endpoint URLs are settings named
/// `<PROVIDER>_OAUTH_AUTHORIZE_URL`, `…_TOKEN_URL`, `…_<revoke suffix>_URL` and
/// `…_REDIRECT_URI`, with the defaults below.
#[derive(Debug)]
pub struct OAuthSpec {
    /// The setting that holds the OAuth client id.
    pub client_id_setting: &'static str,
    /// The secret that authenticates the OAuth client.
    pub client_secret_field: &'static str,
    pub client_auth: ClientAuth,
    /// Scopes requested when the config names none.
    pub default_scopes: &'static str,
    /// Whether the token request carries `redirect_uri`.
    pub redirect_uri_in_token_request: bool,
    /// Where the connected account is named, and what the provider calls its id (the name
    /// it has in responses and audit rows, e.g. `realm_id`).
    pub account: AccountSource,
    pub account_id_name: &'static str,
    /// The callback's reason code when a callback parameter account id is missing or malformed.
    pub invalid_account_reason: &'static str,
    /// Error codes (beyond RFC 6749's `invalid_grant`) in a 4xx token-endpoint body that mean
    /// the grant is dead.
    pub invalid_grant_codes: &'static [&'static str],
    /// The token-response field holding the refresh token's lifetime in seconds, if any.
    pub refresh_expiry_field: Option<&'static str>,
    /// The token-response field holding the refresh token's hard maximum lifetime in seconds
    /// (never extended by a refresh), and the request header that asks for it.
    pub refresh_hard_expiry: Option<(&'static str, (&'static str, &'static str))>,
    pub authorize_url: &'static str,
    pub token_url: &'static str,
    /// The revocation endpoint: its setting's suffix (`REVOKE`, `DEAUTHORIZE`) and default.
    pub revoke_url: (&'static str, &'static str),
}

/// The spec of `provider`: the only place a provider maps to its file.
pub fn spec(provider: Provider) -> &'static dyn ProviderSpec {
    match provider {
        Provider::Hubspot => &hubspot::Hubspot,
        Provider::Stripe => &stripe::Stripe,
        Provider::Quickbooks => &quickbooks::Quickbooks,
    }
}

/// The scopes to request: the config's `scopes` setting (string or list), else the default.
pub fn oauth_scopes(spec: &dyn ProviderSpec, settings: &Map<String, Value>) -> Vec<String> {
    let from_settings: Vec<String> = match settings.get("scopes") {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if from_settings.is_empty() {
        spec.oauth()
            .default_scopes
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    } else {
        from_settings
    }
}

/// Checks a whole configuration; every problem is reported with its field path.
pub fn validate(
    provider: Provider,
    environment: Environment,
    settings: &Map<String, Value>,
    secrets: &BTreeMap<String, SecretString>,
) -> Result<(), Vec<FieldError>> {
    validate_with(
        spec(provider),
        provider.as_str(),
        environment,
        settings,
        secrets,
    )
}

/// [`validate`] against any spec: what a provider's schema alone decides.
pub fn validate_with(
    spec: &dyn ProviderSpec,
    provider: &str,
    environment: Environment,
    settings: &Map<String, Value>,
    secrets: &BTreeMap<String, SecretString>,
) -> Result<(), Vec<FieldError>> {
    let fields = spec.fields();
    let mut errors = Vec::new();
    for (name, value) in settings {
        let path = format!("settings.{name}");
        match fields.iter().find(|f| f.name == name) {
            Some(FieldSpec {
                check: FieldCheck::Setting(check),
                ..
            }) => {
                if let Err(message) = check(value, environment) {
                    errors.push(FieldError::new(path, message));
                }
            }
            Some(_) => errors.push(FieldError::new(
                path,
                format!("{name} is a secret: send it under \"secrets\""),
            )),
            None => errors.push(unknown(path, provider, fields, true)),
        }
    }
    for (name, value) in secrets {
        let path = format!("secrets.{name}");
        match fields.iter().find(|f| f.name == name) {
            Some(FieldSpec {
                check: FieldCheck::Secret(check),
                ..
            }) => {
                if let Err(message) = check(value.expose_secret(), environment) {
                    errors.push(FieldError::new(path, message));
                }
            }
            Some(_) => errors.push(FieldError::new(
                path,
                format!("{name} is a plain setting: send it under \"settings\""),
            )),
            None => errors.push(unknown(path, provider, fields, false)),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Fills in defaults for settings the client left out.
pub fn with_defaults(provider: Provider, mut settings: Map<String, Value>) -> Map<String, Value> {
    for (name, value) in spec(provider).default_settings() {
        settings.entry(name).or_insert(value);
    }
    settings
}

fn unknown(path: String, provider: &str, fields: &[FieldSpec], setting: bool) -> FieldError {
    let known: Vec<&str> = fields
        .iter()
        .filter(|f| matches!(f.check, FieldCheck::Setting(_)) == setting)
        .map(|f| f.name)
        .collect();
    FieldError::new(
        path,
        format!(
            "unknown field for {provider}; expected one of {}",
            known.join(", ")
        ),
    )
}

// Shared checks used by the provider files.

pub(crate) fn non_empty_text(value: &Value, _: Environment) -> Result<(), String> {
    match value.as_str() {
        Some(s) if !s.trim().is_empty() && s.len() <= 512 => Ok(()),
        Some(_) => Err("must be a non-empty string of at most 512 characters".into()),
        None => Err("must be a string".into()),
    }
}

pub(crate) fn digits(value: &Value, _: Environment) -> Result<(), String> {
    let ok = match value {
        Value::String(s) => !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_digit()),
        Value::Number(n) => n.is_u64(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("must be a number made of digits only".into())
    }
}

/// Scopes as a space-separated string or a list of strings.
pub(crate) fn scopes(value: &Value, _: Environment) -> Result<(), String> {
    let valid_scope =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && c != '"');
    let ok = match value {
        Value::String(s) => s.split_whitespace().all(valid_scope) && !s.trim().is_empty(),
        Value::Array(items) => {
            !items.is_empty() && items.iter().all(|i| i.as_str().is_some_and(valid_scope))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err("must be a space-separated string or a list of scope names".into())
    }
}

pub(crate) fn secret_text(value: &str, _: Environment) -> Result<(), String> {
    if value.trim().is_empty() || value.len() > 4096 {
        return Err("must be a non-empty string of at most 4096 characters".into());
    }
    if value.chars().any(char::is_whitespace) {
        return Err("must not contain whitespace".into());
    }
    Ok(())
}

pub(crate) fn prefixed(value: &str, prefixes: &[&str]) -> Result<(), String> {
    secret_text(value, Environment::Sandbox)?;
    if prefixes.iter().any(|p| value.starts_with(p)) {
        Ok(())
    } else {
        Err(format!("must start with {}", prefixes.join(" or ")))
    }
}

#[cfg(test)]
mod tests;

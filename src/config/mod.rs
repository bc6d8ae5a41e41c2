//! Typed settings, read once from the environment and validated before anything starts.
//!
//! Each setting is declared once: its field (with its doc) in a settings struct, and one line
//! in that struct's `from_source` that names its variable, its default and what it accepts.
//! `env` reads variables (every secret can also come from `NAME_FILE`); an invalid value stops
//! the start with one line that names the variable and what it accepts. Debug output is
//! derived: secrets are `SecretString` and the keyring prints key ids only.

mod backup;
mod console;
mod env;
pub mod oauth;
mod webhooks;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

pub use backup::{BackupSettings, MIN_BACKUP_PASSPHRASE_CHARS};
pub use console::ConsoleSettings;
pub use env::{SettingsError, Source};
pub use oauth::OAuthSettings;
pub use webhooks::{WebhookSettings, parse_duration};

use crate::domain::Provider;
use crate::infra::breaker::BreakerConfig;
use crate::infra::crypto::{KeyError, KeyRing};
use crate::providers::{self, ApiUrls};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Everything the service reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: SecretString,
    pub database_max_connections: u32,
    /// Apply migrations at `serve` start; false when `hsq-config migrate` runs separately.
    pub run_migrations: bool,
    pub redis_url: SecretString,
    /// Prefix of every Redis key this service writes.
    pub redis_key_prefix: String,
    /// The longest one Redis operation may take, connect included.
    pub redis_timeout: Duration,
    /// `ENCRYPTION_KEY` and `ENCRYPTION_KEYS_PREVIOUS`.
    pub keyring: KeyRing,
    /// The bootstrap admin bearer token.
    pub admin_api_token: Option<SecretString>,
    pub port: u16,
    pub bind_address: IpAddr,
    pub log_level: String,
    pub log_format: LogFormat,
    pub cors_allowed_origins: Vec<HeaderValue>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Requests per second per client on `/api/config/*`, and the burst allowed.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub request_body_limit: usize,
    /// How long an in-process cache entry (token lookup, masked config) may live; 0 disables.
    pub cache_ttl: Duration,
    pub request_timeout: Duration,
    /// After SIGTERM, how long in-flight requests may take before the process stops.
    pub shutdown_drain: Duration,
    /// Bearer token for `/metrics`.
    pub metrics_token: Option<SecretString>,
    /// Each provider's API base URLs (validation calls), as its spec declares them.
    pub providers: BTreeMap<Provider, ApiUrls>,
    pub validation_timeout: Duration,
    pub health_check_interval: Duration,
    pub health_monitor_enabled: bool,
    pub breaker: BreakerConfig,
    pub backup: BackupSettings,
    /// Audit rows older than this many days are deleted by the daily retention job.
    pub audit_log_retention_days: u32,
    /// OAuth endpoints, redirect URIs, return origins, state TTL and refresh timing.
    pub oauth: OAuthSettings,
    /// The settings console at `/settings`.
    pub console: ConsoleSettings,
    /// Event webhook delivery.
    pub webhooks: WebhookSettings,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_source(&Source::new(|name| std::env::var(name).ok()))
    }

    /// Reads settings from a map (tests and tools).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, SettingsError> {
        Self::from_source(&Source::new(|name| vars.get(name).cloned()))
    }

    /// The API base URLs of `provider`.
    pub fn api_urls(&self, provider: Provider) -> &ApiUrls {
        // `from_source` reads every provider's URLs or fails the start.
        self.providers
            .get(&provider)
            .expect("API URLs are read for every provider at start")
    }

    pub fn from_source(src: &Source<'_>) -> Result<Self, SettingsError> {
        let rate_limit_per_second = src.positive(
            "CONFIGURATION_API_RATE_LIMIT",
            10,
            "a whole number of requests per second per client, at least 1",
        )? as u32;
        let seconds = |name: &str, default: u64| -> Result<Duration, SettingsError> {
            src.positive(name, default, "a number of seconds, at least 1")
                .map(Duration::from_secs)
        };
        let console = ConsoleSettings::from_source(src)?;
        let mut oauth = OAuthSettings::from_source(src)?;
        // The console sends the browser back to its own pages after an OAuth flow; a callback
        // whose flow is lost lands on the console too when no other origin comes first.
        if let Some(url) = console.public_url.as_ref().filter(|_| console.enabled) {
            if !oauth
                .return_allowed_origins
                .iter()
                .any(|o| o.origin() == url.origin())
            {
                oauth
                    .return_allowed_origins
                    .push(url.join("settings/").unwrap_or_else(|_| url.clone()));
            }
        }
        Ok(Self {
            database_url: database_url(src)?,
            database_max_connections: src.positive(
                "DATABASE_MAX_CONNECTIONS",
                10,
                "a whole number of connections, at least 1",
            )? as u32,
            run_migrations: src.bool("RUN_MIGRATIONS", true)?,
            redis_url: redis_url(src)?,
            redis_key_prefix: redis_key_prefix(src)?,
            redis_timeout: Duration::from_millis(src.bounded(
                "REDIS_TIMEOUT_MS",
                1000,
                50,
                30_000,
                "milliseconds",
            )?),
            keyring: keyring(src)?,
            admin_api_token: admin_api_token(src)?,
            port: src.parse("PORT", 13000, "a TCP port number, 0-65535")?,
            bind_address: src.parse(
                "BIND_ADDRESS",
                IpAddr::from([0, 0, 0, 0]),
                "an IP address like 0.0.0.0 or 127.0.0.1",
            )?,
            log_level: log_level(src)?,
            log_format: log_format(src)?,
            cors_allowed_origins: src.origins("CORS_ALLOWED_ORIGINS")?,
            trusted_proxies: trusted_proxies(src)?,
            rate_limit_per_second,
            rate_limit_burst: src.positive(
                "CONFIGURATION_API_RATE_BURST",
                u64::from(rate_limit_per_second.saturating_mul(2)),
                "a whole number of requests, at least 1",
            )? as u32,
            request_body_limit: src.positive(
                "REQUEST_BODY_LIMIT_BYTES",
                1024 * 1024,
                "a size in bytes, at least 1",
            )? as usize,
            request_timeout: seconds("REQUEST_TIMEOUT_SECS", 30)?,
            shutdown_drain: Duration::from_secs(src.bounded(
                "SHUTDOWN_DRAIN_SECS",
                20,
                0,
                600,
                "seconds",
            )?),
            cache_ttl: Duration::from_secs(src.bounded("CACHE_TTL_SECS", 5, 0, 300, "seconds")?),
            metrics_token: src.secret("METRICS_TOKEN")?,
            providers: provider_urls(src)?,
            validation_timeout: seconds("CONFIG_VALIDATION_TIMEOUT", 30)?,
            health_check_interval: seconds("HEALTH_CHECK_INTERVAL", 300)?,
            health_monitor_enabled: src.bool("HEALTH_MONITOR_ENABLED", true)?,
            breaker: BreakerConfig {
                enabled: src.bool("CIRCUIT_BREAKER_ENABLED", true)?,
                threshold: src.positive(
                    "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
                    5,
                    "a whole number of failures, at least 1",
                )? as u32,
                window: seconds("CIRCUIT_BREAKER_WINDOW_SECS", 60)?,
                cooldown: seconds("CIRCUIT_BREAKER_COOLDOWN_SECS", 30)?,
            },
            backup: BackupSettings::from_source(src)?,
            audit_log_retention_days: src.bounded(
                "AUDIT_LOG_RETENTION_DAYS",
                90,
                1,
                36500,
                "days",
            )? as u32,
            oauth,
            console,
            webhooks: WebhookSettings::from_source(src)?,
        })
    }
}

fn database_url(src: &Source<'_>) -> Result<SecretString, SettingsError> {
    let url = src.required_secret("DATABASE_URL", "a postgres:// URL")?;
    let text = url.expose_secret();
    if !text.starts_with("postgres://") && !text.starts_with("postgresql://") {
        return Err(SettingsError::new(
            "DATABASE_URL",
            "accepts a postgres:// or postgresql:// URL",
        ));
    }
    Ok(url)
}

fn redis_url(src: &Source<'_>) -> Result<SecretString, SettingsError> {
    let url = src
        .secret("REDIS_URL")?
        .unwrap_or_else(|| SecretString::from("redis://127.0.0.1:6379"));
    if redis::Client::open(url.expose_secret()).is_err() {
        return Err(SettingsError::new(
            "REDIS_URL",
            "accepts a redis:// or rediss:// URL",
        ));
    }
    Ok(url)
}

fn redis_key_prefix(src: &Source<'_>) -> Result<String, SettingsError> {
    let prefix = src.string_or("REDIS_KEY_PREFIX", "hsq:");
    if prefix.chars().any(char::is_whitespace) {
        return Err(SettingsError::new(
            "REDIS_KEY_PREFIX",
            "accepts a prefix without whitespace, e.g. hsq:",
        ));
    }
    Ok(prefix)
}

fn keyring(src: &Source<'_>) -> Result<KeyRing, SettingsError> {
    let key = src.required_secret(
        "ENCRYPTION_KEY",
        "32 random bytes as base64 or hex; generate one with `openssl rand -base64 32`",
    )?;
    let previous: Vec<SecretString> = match src.secret("ENCRYPTION_KEYS_PREVIOUS")? {
        None => Vec::new(),
        Some(list) => list
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect(),
    };
    KeyRing::from_material(&key, &previous).map_err(|e| match e {
        KeyError::Current(message) => SettingsError::new("ENCRYPTION_KEY", message),
        KeyError::Previous(message) => SettingsError::new("ENCRYPTION_KEYS_PREVIOUS", message),
    })
}

fn admin_api_token(src: &Source<'_>) -> Result<Option<SecretString>, SettingsError> {
    let token = src.secret("ADMIN_API_TOKEN")?;
    if token.as_ref().is_some_and(|t| t.expose_secret().len() < 32) {
        return Err(SettingsError::new(
            "ADMIN_API_TOKEN",
            "must be at least 32 characters; generate one with `openssl rand -hex 32`",
        ));
    }
    Ok(token)
}

fn log_level(src: &Source<'_>) -> Result<String, SettingsError> {
    let level = src.string_or("LOG_LEVEL", "info");
    if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        return Err(SettingsError::new(
            "LOG_LEVEL",
            format!(
                "got {level:?}; accepts trace, debug, info, warn, error or a filter like info,sqlx=warn"
            ),
        ));
    }
    Ok(level)
}

fn log_format(src: &Source<'_>) -> Result<LogFormat, SettingsError> {
    match src.string_or("LOG_FORMAT", "json").as_str() {
        "json" => Ok(LogFormat::Json),
        "pretty" => Ok(LogFormat::Pretty),
        other => Err(SettingsError::new(
            "LOG_FORMAT",
            format!("got {other:?}; accepts json or pretty"),
        )),
    }
}

fn trusted_proxies(src: &Source<'_>) -> Result<Vec<IpNet>, SettingsError> {
    src.list("TRUSTED_PROXIES")
        .into_iter()
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    SettingsError::new(
                        "TRUSTED_PROXIES",
                        format!("got {entry:?}; accepts comma-separated IP addresses or CIDRs like 172.16.0.0/12"),
                    )
                })
        })
        .collect()
}

/// Every provider's API base URLs, under the variables its spec names.
fn provider_urls(src: &Source<'_>) -> Result<BTreeMap<Provider, ApiUrls>, SettingsError> {
    let mut all = BTreeMap::new();
    for provider in Provider::ALL {
        let mut urls = ApiUrls::default();
        for api in providers::spec(provider).api_urls() {
            urls.insert(api.variable, src.url(api.variable, api.default)?);
        }
        all.insert(provider, urls);
    }
    Ok(all)
}

#[cfg(test)]
mod tests;

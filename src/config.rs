//! Typed settings, read once from the environment and validated before anything starts.
//!
//! Every secret can also come from `NAME_FILE` (Docker secrets). An invalid value stops the
//! start with one line that names the variable and what it accepts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::KeyRing;

/// A setting that could not be accepted: names the variable and what it accepts.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct SettingsError {
    pub variable: String,
    pub message: String,
}

impl SettingsError {
    pub fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Everything the service reads from its environment.
#[derive(Clone)]
pub struct Settings {
    pub database_url: SecretString,
    pub database_max_connections: u32,
    pub redis_url: SecretString,
    pub redis_key_prefix: String,
    pub keyring: KeyRing,
    pub admin_api_token: Option<SecretString>,
    pub port: u16,
    pub bind_address: IpAddr,
    pub log_level: String,
    pub log_format: LogFormat,
    pub cors_allowed_origins: Vec<HeaderValue>,
    pub trusted_proxies: Vec<IpNet>,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub request_body_limit: usize,
    pub request_timeout: Duration,
    pub run_migrations: bool,
    pub metrics_token: Option<SecretString>,
    pub providers: ProviderUrls,
    pub validation_timeout: Duration,
    pub health_check_interval: Duration,
    pub health_monitor_enabled: bool,
    pub breaker: crate::breaker::BreakerConfig,
    pub backup: BackupSettings,
    /// Audit rows older than this many days are deleted by the daily retention job.
    pub audit_log_retention_days: u32,
    /// OAuth endpoints, redirect URIs, return origins, state TTL and refresh timing.
    pub oauth: crate::oauth::settings::OAuthSettings,
}

/// Provider API base URLs; the defaults are the real hosts, overridden for sandboxes and tests.
#[derive(Debug, Clone)]
pub struct ProviderUrls {
    pub stripe_api: reqwest::Url,
    pub hubspot_api: reqwest::Url,
    pub quickbooks_api: reqwest::Url,
    pub quickbooks_sandbox_api: reqwest::Url,
}

/// Scheduled backups and the backup passphrase.
#[derive(Clone)]
pub struct BackupSettings {
    /// `CONFIG_BACKUP_ENABLED`: take backups on a schedule.
    pub enabled: bool,
    /// `CONFIG_BACKUP_INTERVAL`: time between scheduled backups.
    pub interval: Duration,
    /// `CONFIG_BACKUP_RETAIN`: how many scheduled backup files to keep.
    pub retain: usize,
    /// `BACKUP_DIR`: where scheduled backups (and `hsq-config backup` without `--out`) go.
    pub dir: std::path::PathBuf,
    /// `BACKUP_PASSPHRASE`/`BACKUP_PASSPHRASE_FILE`: when set, backups are re-sealed under a
    /// key derived from it, so they restore under another `ENCRYPTION_KEY`.
    pub passphrase: Option<SecretString>,
}

/// The shortest backup passphrase accepted; Argon2id slows guessing, length does the rest.
pub const MIN_BACKUP_PASSPHRASE_CHARS: usize = 16;

impl BackupSettings {
    fn from_source(src: &Source<'_>) -> Result<Self, SettingsError> {
        let interval: u64 = src.parse(
            "CONFIG_BACKUP_INTERVAL",
            3600,
            "a number of seconds, at least 60",
        )?;
        if interval < 60 {
            return Err(SettingsError::new(
                "CONFIG_BACKUP_INTERVAL",
                format!("got {interval}; accepts a number of seconds, at least 60"),
            ));
        }
        let retain: usize = src.parse(
            "CONFIG_BACKUP_RETAIN",
            24,
            "a whole number of files, at least 1",
        )?;
        if retain == 0 {
            return Err(SettingsError::new(
                "CONFIG_BACKUP_RETAIN",
                "got 0; accepts a whole number of files, at least 1",
            ));
        }
        let dir = std::path::PathBuf::from(src.string_or("BACKUP_DIR", "/app/backups"));
        if !dir.is_absolute() {
            return Err(SettingsError::new(
                "BACKUP_DIR",
                format!(
                    "got {:?}; accepts an absolute directory path like /app/backups",
                    dir.display()
                ),
            ));
        }
        let passphrase = src.secret("BACKUP_PASSPHRASE")?;
        if passphrase
            .as_ref()
            .is_some_and(|p| p.expose_secret().chars().count() < MIN_BACKUP_PASSPHRASE_CHARS)
        {
            return Err(SettingsError::new(
                "BACKUP_PASSPHRASE",
                format!(
                    "must be at least {MIN_BACKUP_PASSPHRASE_CHARS} characters; generate one with `openssl rand -base64 24`"
                ),
            ));
        }
        Ok(Self {
            enabled: src.bool("CONFIG_BACKUP_ENABLED", false)?,
            interval: Duration::from_secs(interval),
            retain,
            dir,
            passphrase,
        })
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are left out on purpose; the keyring prints only key ids.
        f.debug_struct("Settings")
            .field("database_max_connections", &self.database_max_connections)
            .field("redis_key_prefix", &self.redis_key_prefix)
            .field("keyring", &self.keyring)
            .field("port", &self.port)
            .field("bind_address", &self.bind_address)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("rate_limit_per_second", &self.rate_limit_per_second)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .field("request_body_limit", &self.request_body_limit)
            .field("request_timeout", &self.request_timeout)
            .field("run_migrations", &self.run_migrations)
            .field("providers", &self.providers)
            .field("validation_timeout", &self.validation_timeout)
            .field("health_check_interval", &self.health_check_interval)
            .field("breaker", &self.breaker)
            .field("backup_enabled", &self.backup.enabled)
            .field("backup_interval", &self.backup.interval)
            .field("backup_retain", &self.backup.retain)
            .field("backup_dir", &self.backup.dir)
            .field("audit_log_retention_days", &self.audit_log_retention_days)
            .field("oauth", &self.oauth)
            .finish_non_exhaustive()
    }
}

/// Reads variables from a lookup function, so tests use the same parsing as production.
pub struct Source<'a> {
    lookup: Box<Lookup<'a>>,
}

type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl<'a> Source<'a> {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// A plain value, trimmed.
    pub fn string(&self, name: &str) -> Option<String> {
        self.raw(name).map(|v| v.trim().to_owned())
    }

    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.string(name).unwrap_or_else(|| default.to_owned())
    }

    /// A secret from `NAME` or from the file named by `NAME_FILE` (one of the two).
    pub fn secret(&self, name: &str) -> Result<Option<SecretString>, SettingsError> {
        let file_var = format!("{name}_FILE");
        match (self.raw(name), self.string(&file_var)) {
            (Some(_), Some(_)) => Err(SettingsError::new(
                name,
                format!("set either {name} or {file_var}, not both"),
            )),
            (Some(value), None) => Ok(Some(SecretString::from(value.trim().to_owned()))),
            (None, Some(path)) => {
                let content = std::fs::read_to_string(&path).map_err(|e| {
                    SettingsError::new(&file_var, format!("cannot read file {path}: {e}"))
                })?;
                let value = content.trim_end_matches(['\n', '\r']).to_owned();
                if value.trim().is_empty() {
                    return Err(SettingsError::new(
                        &file_var,
                        format!("file {path} is empty"),
                    ));
                }
                Ok(Some(SecretString::from(value)))
            }
            (None, None) => Ok(None),
        }
    }

    pub fn required_secret(&self, name: &str, what: &str) -> Result<SecretString, SettingsError> {
        self.secret(name)?.ok_or_else(|| {
            SettingsError::new(
                name,
                format!("is required ({what}); set {name} or {name}_FILE"),
            )
        })
    }

    pub fn parse<T: std::str::FromStr>(
        &self,
        name: &str,
        default: T,
        accepts: &str,
    ) -> Result<T, SettingsError> {
        match self.string(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| SettingsError::new(name, format!("got {v:?}; accepts {accepts}"))),
        }
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool, SettingsError> {
        match self.string(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(SettingsError::new(
                    name,
                    format!("got {v:?}; accepts true or false"),
                )),
            },
        }
    }

    /// An absolute http(s) base URL; a missing trailing slash is added so relative paths
    /// join under it.
    pub fn url(&self, name: &str, default: &str) -> Result<reqwest::Url, SettingsError> {
        let raw = self.string_or(name, default);
        let with_slash = if raw.ends_with('/') {
            raw.clone()
        } else {
            format!("{raw}/")
        };
        reqwest::Url::parse(&with_slash)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                SettingsError::new(
                    name,
                    format!("got {raw:?}; accepts an absolute http(s) URL"),
                )
            })
    }

    /// A comma-separated list; empty items are skipped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.string(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
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

    pub fn from_source(src: &Source<'_>) -> Result<Self, SettingsError> {
        let database_url = src.required_secret("DATABASE_URL", "a postgres:// URL")?;
        if !database_url.expose_secret().starts_with("postgres://")
            && !database_url.expose_secret().starts_with("postgresql://")
        {
            return Err(SettingsError::new(
                "DATABASE_URL",
                "accepts a postgres:// or postgresql:// URL",
            ));
        }
        let redis_url = src
            .secret("REDIS_URL")?
            .unwrap_or_else(|| SecretString::from("redis://127.0.0.1:6379"));
        if redis::Client::open(redis_url.expose_secret()).is_err() {
            return Err(SettingsError::new(
                "REDIS_URL",
                "accepts a redis:// or rediss:// URL",
            ));
        }
        let redis_key_prefix = src.string_or("REDIS_KEY_PREFIX", "hsq:");
        if redis_key_prefix.chars().any(char::is_whitespace) {
            return Err(SettingsError::new(
                "REDIS_KEY_PREFIX",
                "accepts a prefix without whitespace, e.g. hsq:",
            ));
        }

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
        let keyring = KeyRing::from_material(&key, &previous)?;

        let admin_api_token = src.secret("ADMIN_API_TOKEN")?;
        if let Some(token) = &admin_api_token {
            if token.expose_secret().len() < 32 {
                return Err(SettingsError::new(
                    "ADMIN_API_TOKEN",
                    "must be at least 32 characters; generate one with `openssl rand -hex 32`",
                ));
            }
        }

        let log_format = match src.string_or("LOG_FORMAT", "json").as_str() {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => {
                return Err(SettingsError::new(
                    "LOG_FORMAT",
                    format!("got {other:?}; accepts json or pretty"),
                ));
            }
        };
        let log_level = src.string_or("LOG_LEVEL", "info");
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(SettingsError::new(
                "LOG_LEVEL",
                format!(
                    "got {log_level:?}; accepts trace, debug, info, warn, error or a filter like info,sqlx=warn"
                ),
            ));
        }

        let mut cors_allowed_origins = Vec::new();
        for origin in src.list("CORS_ALLOWED_ORIGINS") {
            let valid = reqwest::Url::parse(&origin)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.path() == "/")
                .unwrap_or(false);
            let header = HeaderValue::from_str(&origin).ok().filter(|_| valid);
            match header {
                Some(h) => cors_allowed_origins.push(h),
                None => {
                    return Err(SettingsError::new(
                        "CORS_ALLOWED_ORIGINS",
                        format!(
                            "got {origin:?}; accepts comma-separated origins like https://app.example.com"
                        ),
                    ));
                }
            }
        }

        let mut trusted_proxies = Vec::new();
        for entry in src.list("TRUSTED_PROXIES") {
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    SettingsError::new(
                        "TRUSTED_PROXIES",
                        format!("got {entry:?}; accepts comma-separated IP addresses or CIDRs like 172.16.0.0/12"),
                    )
                })?;
            trusted_proxies.push(net);
        }

        let positive = |name: &str, default: u64, what: &str| -> Result<u64, SettingsError> {
            let v: u64 = src.parse(name, default, what)?;
            if v == 0 {
                return Err(SettingsError::new(name, format!("got 0; accepts {what}")));
            }
            Ok(v)
        };

        let rate_limit_per_second = positive(
            "CONFIGURATION_API_RATE_LIMIT",
            10,
            "a whole number of requests per second per client, at least 1",
        )? as u32;
        let rate_limit_burst = positive(
            "CONFIGURATION_API_RATE_BURST",
            u64::from(rate_limit_per_second.saturating_mul(2)),
            "a whole number of requests, at least 1",
        )? as u32;

        Ok(Self {
            database_url,
            database_max_connections: positive(
                "DATABASE_MAX_CONNECTIONS",
                10,
                "a whole number of connections, at least 1",
            )? as u32,
            redis_url,
            redis_key_prefix,
            keyring,
            admin_api_token,
            port: src.parse("PORT", 13000, "a TCP port number, 0-65535")?,
            bind_address: src.parse(
                "BIND_ADDRESS",
                IpAddr::from([0, 0, 0, 0]),
                "an IP address like 0.0.0.0 or 127.0.0.1",
            )?,
            log_level,
            log_format,
            cors_allowed_origins,
            trusted_proxies,
            rate_limit_per_second,
            rate_limit_burst,
            request_body_limit: positive(
                "REQUEST_BODY_LIMIT_BYTES",
                1024 * 1024,
                "a size in bytes, at least 1",
            )? as usize,
            request_timeout: Duration::from_secs(positive(
                "REQUEST_TIMEOUT_SECS",
                30,
                "a number of seconds, at least 1",
            )?),
            run_migrations: src.bool("RUN_MIGRATIONS", true)?,
            metrics_token: src.secret("METRICS_TOKEN")?,
            providers: ProviderUrls {
                stripe_api: src.url("STRIPE_API_BASE_URL", "https://api.stripe.com")?,
                hubspot_api: src.url("HUBSPOT_API_BASE_URL", "https://api.hubapi.com")?,
                quickbooks_api: src.url(
                    "QUICKBOOKS_API_BASE_URL",
                    "https://quickbooks.api.intuit.com",
                )?,
                quickbooks_sandbox_api: src.url(
                    "QUICKBOOKS_SANDBOX_API_BASE_URL",
                    "https://sandbox-quickbooks.api.intuit.com",
                )?,
            },
            validation_timeout: Duration::from_secs(positive(
                "CONFIG_VALIDATION_TIMEOUT",
                30,
                "a number of seconds, at least 1",
            )?),
            health_check_interval: Duration::from_secs(positive(
                "HEALTH_CHECK_INTERVAL",
                300,
                "a number of seconds, at least 1",
            )?),
            health_monitor_enabled: src.bool("HEALTH_MONITOR_ENABLED", true)?,
            breaker: crate::breaker::BreakerConfig {
                enabled: src.bool("CIRCUIT_BREAKER_ENABLED", true)?,
                threshold: positive(
                    "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
                    5,
                    "a whole number of failures, at least 1",
                )? as u32,
                window: Duration::from_secs(positive(
                    "CIRCUIT_BREAKER_WINDOW_SECS",
                    60,
                    "a number of seconds, at least 1",
                )?),
                cooldown: Duration::from_secs(positive(
                    "CIRCUIT_BREAKER_COOLDOWN_SECS",
                    30,
                    "a number of seconds, at least 1",
                )?),
            },
            backup: BackupSettings::from_source(src)?,
            audit_log_retention_days: {
                let days = positive(
                    "AUDIT_LOG_RETENTION_DAYS",
                    90,
                    "a whole number of days, 1 to 36500",
                )?;
                if days > 36500 {
                    return Err(SettingsError::new(
                        "AUDIT_LOG_RETENTION_DAYS",
                        format!("got {days}; accepts a whole number of days, 1 to 36500"),
                    ));
                }
                days as u32
            },
            oauth: crate::oauth::settings::OAuthSettings::from_source(src)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HashMap<String, String> {
        HashMap::from([
            ("DATABASE_URL".into(), "postgres://localhost/hsq".into()),
            (
                "ENCRYPTION_KEY".into(),
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into(),
            ),
        ])
    }

    #[test]
    fn defaults_apply_when_only_required_values_are_set() {
        let s = Settings::from_map(&base()).expect("valid settings");
        assert_eq!(s.port, 13000);
        assert_eq!(s.redis_key_prefix, "hsq:");
        assert_eq!(s.rate_limit_per_second, 10);
        assert_eq!(s.log_format, LogFormat::Json);
        assert!(s.run_migrations);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("LOG_FORMAT", "xml"),
            ("TRUSTED_PROXIES", "not-an-ip"),
            ("CONFIGURATION_API_RATE_LIMIT", "0"),
            ("CORS_ALLOWED_ORIGINS", "example.com"),
            ("DATABASE_URL", "mysql://x"),
            ("ENCRYPTION_KEY", "short"),
            ("STRIPE_API_BASE_URL", "api.stripe.com"),
            ("CIRCUIT_BREAKER_ENABLED", "maybe"),
            ("HEALTH_CHECK_INTERVAL", "0"),
            ("OAUTH_STATE_TTL", "0"),
            ("OAUTH_RETURN_ALLOWED_ORIGINS", "not-an-origin"),
            ("HUBSPOT_OAUTH_TOKEN_URL", "not-a-url"),
        ] {
            let mut vars = base();
            vars.insert(name.into(), value.into());
            let err = Settings::from_map(&vars).expect_err(name);
            assert_eq!(err.variable, name, "{err}");
        }
    }

    #[test]
    fn backup_and_retention_settings_have_defaults() {
        let s = Settings::from_map(&base()).expect("valid settings");
        assert!(!s.backup.enabled);
        assert_eq!(s.backup.interval, Duration::from_secs(3600));
        assert_eq!(s.backup.retain, 24);
        assert_eq!(s.backup.dir, std::path::PathBuf::from("/app/backups"));
        assert!(s.backup.passphrase.is_none());
        assert_eq!(s.audit_log_retention_days, 90);
    }

    #[test]
    fn backup_and_retention_settings_are_read_and_validated() {
        let mut vars = base();
        vars.insert("CONFIG_BACKUP_ENABLED".into(), "true".into());
        vars.insert("CONFIG_BACKUP_INTERVAL".into(), "600".into());
        vars.insert("CONFIG_BACKUP_RETAIN".into(), "3".into());
        vars.insert("BACKUP_DIR".into(), "/var/backups/hsq".into());
        vars.insert(
            "BACKUP_PASSPHRASE".into(),
            "a long enough backup passphrase".into(),
        );
        vars.insert("AUDIT_LOG_RETENTION_DAYS".into(), "30".into());
        let s = Settings::from_map(&vars).expect("valid settings");
        assert!(s.backup.enabled);
        assert_eq!(s.backup.interval, Duration::from_secs(600));
        assert_eq!(s.backup.retain, 3);
        assert_eq!(s.backup.dir, std::path::PathBuf::from("/var/backups/hsq"));
        assert!(s.backup.passphrase.is_some());
        assert_eq!(s.audit_log_retention_days, 30);
        assert!(!format!("{s:?}").contains("long enough"));

        for (name, value) in [
            ("CONFIG_BACKUP_ENABLED", "sometimes"),
            ("CONFIG_BACKUP_INTERVAL", "10"),
            ("CONFIG_BACKUP_INTERVAL", "hourly"),
            ("CONFIG_BACKUP_RETAIN", "0"),
            ("BACKUP_DIR", "relative/dir"),
            ("BACKUP_PASSPHRASE", "short"),
            ("AUDIT_LOG_RETENTION_DAYS", "0"),
            ("AUDIT_LOG_RETENTION_DAYS", "100000"),
        ] {
            let mut vars = base();
            vars.insert(name.into(), value.into());
            let err = Settings::from_map(&vars).expect_err(name);
            assert_eq!(err.variable, name, "{err}");
            assert!(
                !err.message.contains("short") || name != "BACKUP_PASSPHRASE",
                "{err}"
            );
        }
    }

    #[test]
    fn the_backup_passphrase_can_come_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("passphrase");
        std::fs::write(&path, "backup passphrase from a file\n").expect("write");
        let mut vars = base();
        vars.insert(
            "BACKUP_PASSPHRASE_FILE".into(),
            path.to_string_lossy().into_owned(),
        );
        let s = Settings::from_map(&vars).expect("valid");
        let p = s.backup.passphrase.expect("passphrase");
        assert_eq!(p.expose_secret(), "backup passphrase from a file");
    }

    #[test]
    fn a_missing_required_value_names_its_variable() {
        let mut vars = base();
        vars.remove("DATABASE_URL");
        let err = Settings::from_map(&vars).expect_err("missing");
        assert_eq!(err.variable, "DATABASE_URL");
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token.txt");
        std::fs::write(&path, "a".repeat(40) + "\n").expect("write");
        let mut vars = base();
        vars.insert(
            "ADMIN_API_TOKEN_FILE".into(),
            path.to_string_lossy().into_owned(),
        );
        let s = Settings::from_map(&vars).expect("valid");
        let token = s.admin_api_token.expect("token");
        assert_eq!(token.expose_secret(), "a".repeat(40));

        vars.insert("ADMIN_API_TOKEN".into(), "b".repeat(40));
        let err = Settings::from_map(&vars).expect_err("both set");
        assert_eq!(err.variable, "ADMIN_API_TOKEN");
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let mut vars = base();
        vars.insert("ADMIN_API_TOKEN".into(), "canary-".repeat(6));
        let s = Settings::from_map(&vars).expect("valid");
        let printed = format!("{s:?}");
        assert!(!printed.contains("canary"));
        assert!(!printed.contains("MDEyMzQ1"));
        assert!(!printed.contains("postgres://"));
    }
}

//! Event webhook delivery (see docs/webhooks.md): retry schedule, timeout, when a failing
//! endpoint is disabled, secret overlap, and whether private addresses may be targets.

use std::time::Duration;

use super::env::{SettingsError, Source};

/// How events are delivered to webhook endpoints.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `WEBHOOK_RETRY_SCHEDULE`: the waits before each retry; after the last, `failed`.
    pub retry_schedule: Vec<Duration>,
    /// `WEBHOOK_TIMEOUT`: the longest one delivery attempt may take.
    pub timeout: Duration,
    /// `WEBHOOK_DISABLE_AFTER`: an endpoint failing for this long with no success is disabled.
    pub disable_after: Duration,
    /// `WEBHOOK_SECRET_OVERLAP`: how long the old secret still signs after a rotation.
    pub secret_overlap: Duration,
    /// `WEBHOOK_ALLOW_PRIVATE_TARGETS`: allow loopback, private and link-local targets
    /// (development and tests only).
    pub allow_private_targets: bool,
    /// `WEBHOOK_REQUIRE_HTTPS`: endpoints must be https:// URLs; defaults to true unless
    /// private targets are allowed (development).
    pub require_https: bool,
    /// `WEBHOOK_DELIVERY_ENABLED`: run the delivery worker in this process.
    pub delivery_enabled: bool,
    /// `WEBHOOK_DELIVERY_RETENTION_DAYS`: settled deliveries (and events left without any)
    /// older than this are purged daily.
    pub delivery_retention_days: u32,
}

const DURATION: &str = "a duration like 30, 30s, 500ms, 5m, 2h or 5d (a bare number is seconds)";

/// `500ms`, `30s`, `5m`, `2h`, `5d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).map(Duration::from_millis)
}

impl WebhookSettings {
    pub(super) fn from_source(src: &Source<'_>) -> Result<Self, SettingsError> {
        let duration = |name: &str, default: &str| -> Result<Duration, SettingsError> {
            let raw = src.string_or(name, default);
            parse_duration(&raw)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    SettingsError::new(name, format!("got {raw:?}; accepts {DURATION}, above 0"))
                })
        };
        let raw = src.string_or("WEBHOOK_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h");
        let retry_schedule = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_duration)
            .collect::<Option<Vec<_>>>()
            .filter(|s| s.len() <= 20)
            .ok_or_else(|| {
                SettingsError::new(
                    "WEBHOOK_RETRY_SCHEDULE",
                    format!(
                        "got {raw:?}; accepts up to 20 comma-separated durations like 5s,5m,30m"
                    ),
                )
            })?;
        let allow_private_targets = src.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", false)?;
        Ok(Self {
            retry_schedule,
            timeout: duration("WEBHOOK_TIMEOUT", "30")?,
            disable_after: duration("WEBHOOK_DISABLE_AFTER", "5d")?,
            secret_overlap: duration("WEBHOOK_SECRET_OVERLAP", "24h")?,
            allow_private_targets,
            require_https: src.bool("WEBHOOK_REQUIRE_HTTPS", !allow_private_targets)?,
            delivery_enabled: src.bool("WEBHOOK_DELIVERY_ENABLED", true)?,
            delivery_retention_days: src.bounded(
                "WEBHOOK_DELIVERY_RETENTION_DAYS",
                30,
                1,
                3650,
                "days",
            )? as u32,
        })
    }
}

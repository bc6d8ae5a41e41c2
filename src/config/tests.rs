//! Loading settings: defaults, every bad value named, secrets from files, no secret in Debug.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::ExposeSecret;

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

#[test]
fn webhook_delivery_settings_have_defaults_and_name_bad_values() {
    let s = Settings::from_map(&base()).expect("valid settings");
    let hours = |h: u64| Duration::from_secs(h * 3600);
    assert_eq!(
        s.webhooks.retry_schedule,
        [
            Duration::from_secs(5),
            Duration::from_secs(300),
            Duration::from_secs(1800),
            hours(2),
            hours(5),
            hours(10),
            hours(10)
        ]
    );
    assert_eq!(s.webhooks.timeout, Duration::from_secs(30));
    assert_eq!(s.webhooks.disable_after, hours(5 * 24));
    assert_eq!(s.webhooks.secret_overlap, hours(24));
    assert!(!s.webhooks.allow_private_targets);
    assert!(
        s.webhooks.require_https,
        "https unless private targets are allowed"
    );
    assert_eq!(s.webhooks.delivery_retention_days, 30);

    let mut vars = base();
    vars.insert("WEBHOOK_RETRY_SCHEDULE".into(), "50ms, 1s".into());
    vars.insert("WEBHOOK_TIMEOUT".into(), "200ms".into());
    let s = Settings::from_map(&vars).expect("valid settings");
    assert_eq!(
        s.webhooks.retry_schedule,
        [Duration::from_millis(50), Duration::from_secs(1)]
    );
    assert_eq!(s.webhooks.timeout, Duration::from_millis(200));

    for (name, value) in [
        ("WEBHOOK_RETRY_SCHEDULE", "5s,soon"),
        ("WEBHOOK_TIMEOUT", "0"),
        ("WEBHOOK_DISABLE_AFTER", "5 days"),
        ("WEBHOOK_SECRET_OVERLAP", "-1h"),
        ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "maybe"),
        ("WEBHOOK_DELIVERY_RETENTION_DAYS", "0"),
    ] {
        let mut vars = base();
        vars.insert(name.into(), value.into());
        let err = Settings::from_map(&vars).expect_err(name);
        assert_eq!(err.variable, name);
    }
}

//! Helpers for the backup, rotation and audit-chain tests: sample data with canary secrets,
//! a comparable picture of everything a client can read, backups over the API, and the real
//! binary.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};

use hsq_config::app::Application;
use hsq_config::config::Settings;
use hsq_config::infra::crypto::KeyRing;
use hsq_config::state::AppState;
use hsq_config::store::oauth_tokens::TokenRow;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp};

pub const HUBSPOT_SECRET: &str = "hubspotClientSecretCanary42";
pub const HUBSPOT_PAT: &str = "pat-na1-11111111-2222-3333-4444-canary555555";
pub const QB_SECRET: &str = "qbSecretCanary0123456789abcdefXYZ";
pub const WEBHOOK_SECRET: &str = "whsec_canaryWebhookSecret987";
pub const ACCESS_TOKEN: &str = "canary-access-token-0123456789";
pub const REFRESH_TOKEN: &str = "canary-refresh-token-9876543210";

/// Every plaintext secret `populate` stores.
pub fn canaries() -> Vec<&'static str> {
    vec![
        STRIPE_TEST_KEY,
        HUBSPOT_SECRET,
        HUBSPOT_PAT,
        QB_SECRET,
        WEBHOOK_SECRET,
        ACCESS_TOKEN,
        REFRESH_TOKEN,
    ]
}

pub fn keyring(vars: &HashMap<String, String>) -> KeyRing {
    Settings::from_map(vars).expect("settings").keyring
}

/// Three configs, two webhooks (one with a secret) and two OAuth tokens, all with canaries.
pub async fn populate(app: &TestApp) {
    let configs = [
        (
            "/api/config/integrations/stripe/sandbox",
            json!({"settings": {"publishable_key": "pk_test_abcdefghijklmnop", "account_id": "acct_123"},
                "secrets": {"secret_key": STRIPE_TEST_KEY}}),
        ),
        (
            "/api/config/integrations/hubspot/production",
            json!({"settings": {"client_id": "cid-1", "app_id": "12345"},
                "secrets": {"client_secret": HUBSPOT_SECRET, "private_app_token": HUBSPOT_PAT}}),
        ),
        (
            "/api/config/integrations/quickbooks/sandbox",
            json!({"enabled": false, "settings": {"client_id": "ABclientid", "realm_id": "9130350000000000"},
                "secrets": {"client_secret": QB_SECRET}}),
        ),
    ];
    for (path, body) in configs {
        assert_eq!(
            app.put_json(path, &body).await.status(),
            201,
            "create {path}"
        );
    }
    let hooks = [
        json!({"url": "https://hooks.example.com/stripe", "events": ["config.updated"], "provider": "stripe",
               "secret": WEBHOOK_SECRET, "description": "payments"}),
        json!({"url": "https://hooks.example.com/all", "events": ["*"], "enabled": false}),
    ];
    for body in hooks {
        assert_eq!(
            app.post_json("/api/config/webhooks", &body).await.status(),
            201,
            "create webhook"
        );
    }
    let keys = keyring(&app.vars);
    for (provider, environment, refresh) in [
        ("stripe", "sandbox", None),
        ("quickbooks", "sandbox", Some(REFRESH_TOKEN)),
    ] {
        insert_token(
            &app.db.pool,
            &keys,
            provider,
            environment,
            ACCESS_TOKEN,
            refresh,
        )
        .await;
    }
}

/// Writes an OAuth token row the way the OAuth code does: sealed with AAD `oauth_tokens/<id>/<field>`.
pub async fn insert_token(
    db: &PgPool,
    keys: &KeyRing,
    provider: &str,
    environment: &str,
    access: &str,
    refresh: Option<&str>,
) {
    let id = Uuid::new_v4();
    let access = keys.seal(access.as_bytes(), &token_aad_of(id, "access_token"));
    let refresh = refresh.map(|r| keys.seal(r.as_bytes(), &token_aad_of(id, "refresh_token")));
    sqlx::query(
        "INSERT INTO oauth_tokens (id, integration_id, provider, environment, access_token, refresh_token,
                                   key_id, expires_at, scope, realm_id)
         SELECT $1, id, provider, environment, $2, $3, $4, now() + interval '1 hour', 'accounting', '9130'
           FROM integration_configs WHERE provider = $5 AND environment = $6",
    )
    .bind(id)
    .bind(access)
    .bind(refresh)
    .bind(keys.current_id().to_string())
    .bind(provider)
    .bind(environment)
    .execute(db)
    .await
    .expect("insert token");
}

/// Everything a client can read — masked lists, reveals — plus the OAuth tokens opened with
/// `keys`: equal pictures mean nothing a user sees has changed.
pub async fn picture(app: &TestApp, address: &str, keys: &KeyRing) -> Value {
    let client = &app.client;
    let get = |path: &str| {
        client
            .request(Method::GET, format!("{address}{path}"))
            .bearer_auth(&app.admin_token)
            .send()
    };
    let configs: Value = get("/api/config/integrations")
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let webhooks: Value = get("/api/config/webhooks")
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let mut reveals = Vec::new();
    for c in configs.as_array().expect("configs") {
        let path = format!(
            "{address}/api/config/integrations/{}/{}/reveal",
            c["provider"].as_str().unwrap_or_default(),
            c["environment"].as_str().unwrap_or_default()
        );
        let r = client
            .post(path)
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .expect("reveal");
        assert_eq!(r.status(), 200, "reveal");
        reveals.push(r.json::<Value>().await.expect("json"));
    }
    let rows: Vec<TokenRow> =
        sqlx::query_as("SELECT * FROM oauth_tokens ORDER BY provider, environment")
            .fetch_all(&app.db.pool)
            .await
            .expect("tokens");
    let open = |sealed: &[u8], id: Uuid, field: &str| {
        let plain = keys
            .open(sealed, &token_aad_of(id, field))
            .expect("token opens");
        String::from_utf8_lossy(&plain).into_owned()
    };
    let tokens: Vec<Value> = rows
        .iter()
        .map(|t| {
            json!({"provider": t.provider, "environment": t.environment, "scope": t.scope,
                   "status": t.status, "expires_at": t.expires_at,
                   "access": open(&t.access_token, t.id, "access_token"),
                   "refresh": t.refresh_token.as_deref().map(|r| open(r, t.id, "refresh_token"))})
        })
        .collect();
    json!({"configs": configs, "webhooks": webhooks, "reveals": reveals, "tokens": tokens})
}

/// Every stored row of the restored tables and the audit log size: equal dumps mean the
/// database did not change.
pub async fn dump(db: &PgPool) -> Value {
    let mut out = serde_json::Map::new();
    for table in [
        "integration_configs",
        "webhook_configurations",
        "oauth_tokens",
        "keyring_check",
    ] {
        let rows: Vec<Value> =
            sqlx::query_scalar(&format!("SELECT to_jsonb(t) FROM {table} t ORDER BY 1"))
                .fetch_all(db)
                .await
                .expect("dump");
        out.insert(table.into(), Value::Array(rows));
    }
    let audit: i64 = sqlx::query_scalar("SELECT count(*) FROM configuration_audit_logs")
        .fetch_one(db)
        .await
        .expect("count");
    out.insert("audit_rows".into(), json!(audit));
    Value::Object(out)
}

/// Runs the real `hsq-config` binary with exactly these settings.
pub fn cli(vars: &HashMap<String, String>, args: &[&str]) -> Output {
    command(vars, args).output().expect("run hsq-config")
}

pub fn command(vars: &HashMap<String, String>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hsq-config"));
    cmd.args(args)
        .env_clear()
        .envs(vars)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null());
    cmd
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A second replica's state on the same database, for driving background rounds directly.
pub async fn replica_state(vars: &HashMap<String, String>) -> AppState {
    let app = Application::build(Settings::from_map(vars).expect("settings"))
        .await
        .expect("build");
    app.state().clone()
}

/// The AAD the OAuth vault binds a token field to.
fn token_aad_of(id: Uuid, field: &str) -> hsq_config::infra::crypto::Aad {
    hsq_config::infra::crypto::Aad::new("oauth_tokens", id, field)
}

/// Takes a backup over the API as the admin (optionally with a JSON body, e.g. a passphrase),
/// checks it is served as a download that is never cached, and returns the file.
pub async fn take_backup(app: &TestApp, body: Option<Value>) -> Vec<u8> {
    let mut request = app.request(Method::POST, "/api/config/backup", &app.admin_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.expect("backup");
    assert_eq!(r.status(), 200, "backup");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment")
    );
    r.bytes().await.expect("body").to_vec()
}

/// A dump with `n` more audit rows: refused API requests are audited, nothing else changes.
pub fn with_refusal_rows(dump: &Value, n: i64) -> Value {
    let mut dump = dump.clone();
    dump["audit_rows"] = json!(dump["audit_rows"].as_i64().unwrap_or_default() + n);
    dump
}

/// Posts `body` to the restore endpoint as the admin.
pub async fn post_restore(app: &TestApp, body: Value) -> reqwest::Response {
    app.post_json("/api/config/restore", &body).await
}

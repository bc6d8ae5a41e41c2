//! Upgrading from the version before: its backup files still restore, and its databases keep
//! every OAuth connection's external account id and every webhook's events through the
//! migrations.

use serde_json::{Value, json};
use sqlx::Executor;

use crate::support::helpers::{TestApp, TestDb};
use crate::support::ops::ACCESS_TOKEN;

/// Written by format version 1 (one account column per provider), protected with this
/// passphrase; see the fixture's commit.
const V1_BACKUP: &str = include_str!("../fixtures/backup-v1-passphrase.json");
const V1_PASSPHRASE: &str = "fixture passphrase for the v1 backup";

#[tokio::test]
async fn a_format_1_backup_restores_with_every_connections_account_id() {
    let app = TestApp::spawn().await;
    let document: Value = serde_json::from_str(V1_BACKUP).expect("the fixture is JSON");
    assert_eq!(
        document["format_version"], 1,
        "the fixture is a version 1 file"
    );

    let r = app
        .post_json(
            "/api/config/restore",
            &json!({"backup": document, "passphrase": V1_PASSPHRASE}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let report: Value = r.json().await.expect("report");
    assert_eq!(report["created"]["oauth_tokens"], 3, "{report}");

    for (provider, environment, name, id) in [
        ("quickbooks", "sandbox", "realm_id", "9130350000000000"),
        ("hubspot", "production", "hub_id", "24681357"),
        ("stripe", "sandbox", "stripe_user_id", "acct_1FixtureStripe"),
    ] {
        let r = app
            .get(&format!(
                "/api/config/{provider}/connection?environment={environment}"
            ))
            .await;
        assert_eq!(r.status(), 200, "{provider}");
        let view: Value = r.json().await.expect("connection");
        assert_eq!(view["external_account_id"], id, "{provider}: {view}");
        assert_eq!(view[name], id, "{provider} keeps its own name for the id");
    }

    // The restored tokens open under this deployment's key (pushed out of their refresh window:
    // the fixture's expiry lies in the past).
    sqlx::query("UPDATE oauth_tokens SET expires_at = now() + interval '1 hour'")
        .execute(&app.db.pool)
        .await
        .expect("extend");
    let r = app
        .post_json(
            "/api/config/quickbooks/token?environment=sandbox",
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let grant: Value = r.json().await.expect("grant");
    assert_eq!(grant["access_token"], ACCESS_TOKEN);
    assert_eq!(grant["realm_id"], "9130350000000000");
}

/// `(provider, external_account_id, realm_id, hub_id)`.
type AccountColumns = (String, Option<String>, Option<String>, Option<String>);

#[tokio::test]
async fn a_database_of_the_version_before_keeps_every_external_account_id() {
    let db = TestDb::new().await;
    // The schema as the version before left it: the migrations that existed then.
    let before = tempfile::tempdir().expect("tempdir");
    for name in [
        "20261122000001_initial_schema.sql",
        "20261122100000_audit_chain.sql",
    ] {
        let from = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/").to_owned() + name;
        std::fs::copy(&from, before.path().join(name)).expect("copy migration");
    }
    sqlx::migrate::Migrator::new(before.path())
        .await
        .expect("old migrations")
        .run(&db.pool)
        .await
        .expect("migrate to the version before");

    // Connections written the old way, one column per provider.
    db.pool
        .execute(
            "INSERT INTO integration_configs (id, provider, environment, secrets, key_id)
             VALUES ('00000000-0000-0000-0000-000000000001', 'quickbooks', 'sandbox', '\\x00', 'k'),
                    ('00000000-0000-0000-0000-000000000002', 'hubspot', 'sandbox', '\\x00', 'k'),
                    ('00000000-0000-0000-0000-000000000003', 'stripe', 'sandbox', '\\x00', 'k');
             INSERT INTO oauth_tokens (id, integration_id, provider, environment, access_token,
                                       key_id, realm_id, hub_id, stripe_user_id)
             VALUES ('10000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001',
                     'quickbooks', 'sandbox', '\\x00', 'k', '9130', NULL, NULL),
                    ('10000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000002',
                     'hubspot', 'sandbox', '\\x00', 'k', NULL, '2468', NULL),
                    ('10000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000003',
                     'stripe', 'sandbox', '\\x00', 'k', NULL, NULL, 'acct_9')",
        )
        .await
        .expect("rows of the version before");

    hsq_config::store::MIGRATOR
        .run(&db.pool)
        .await
        .expect("migrate to this version");
    let ids: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT provider, external_account_id FROM oauth_tokens ORDER BY provider")
            .fetch_all(&db.pool)
            .await
            .expect("read");
    assert_eq!(
        ids,
        [
            ("hubspot".to_owned(), Some("2468".to_owned())),
            ("quickbooks".to_owned(), Some("9130".to_owned())),
            ("stripe".to_owned(), Some("acct_9".to_owned())),
        ]
    );

    // During a rolling update both versions write: each sees the other's account ids.
    db.pool
        .execute("UPDATE oauth_tokens SET realm_id = '7777' WHERE provider = 'quickbooks'")
        .await
        .expect("an old replica reconnects");
    db.pool
        .execute("UPDATE oauth_tokens SET external_account_id = '1357' WHERE provider = 'hubspot'")
        .await
        .expect("a new replica reconnects");
    let rows: Vec<AccountColumns> = sqlx::query_as(
        "SELECT provider, external_account_id, realm_id, hub_id FROM oauth_tokens
          WHERE provider IN ('quickbooks', 'hubspot') ORDER BY provider",
    )
    .fetch_all(&db.pool)
    .await
    .expect("read");
    assert_eq!(
        rows,
        [
            (
                "hubspot".to_owned(),
                Some("1357".to_owned()),
                None,
                Some("1357".to_owned())
            ),
            (
                "quickbooks".to_owned(),
                Some("7777".to_owned()),
                Some("7777".to_owned()),
                None
            ),
        ]
    );
}

#[tokio::test]
async fn webhooks_written_before_the_event_catalogue_keep_working() {
    let db = TestDb::new().await;
    // Every migration before the outbox's.
    let before = tempfile::tempdir().expect("tempdir");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    for entry in std::fs::read_dir(dir).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.as_str() < "20261206000001" {
            std::fs::copy(&path, before.path().join(&name)).expect("copy migration");
        }
    }
    sqlx::migrate::Migrator::new(before.path())
        .await
        .expect("old migrations")
        .run(&db.pool)
        .await
        .expect("migrate to the version before");
    db.pool
        .execute(
            "INSERT INTO webhook_configurations (id, url, events)
             VALUES ('20000000-0000-0000-0000-000000000001', 'https://hooks.example.com/a',
                     ARRAY['config.changed', 'Config_Deleted', 'invoice.paid', 'token_retrieved'])",
        )
        .await
        .expect("a webhook of the version before");

    hsq_config::store::MIGRATOR
        .run(&db.pool)
        .await
        .expect("migrate to this version");
    let events: Vec<String> = sqlx::query_scalar("SELECT events FROM webhook_configurations")
        .fetch_one(&db.pool)
        .await
        .expect("read");
    assert_eq!(
        events,
        [
            "config.updated",
            "config.deleted",
            "invoice.paid",
            "oauth.token_retrieved"
        ],
        "what maps is mapped, in order; the rest is kept"
    );
}

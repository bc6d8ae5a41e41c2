//! Account pinning: a connection is to one external account (a QuickBooks company here); an
//! authorization that comes back for another is refused unless it asked to replace it.

use serde_json::Value;

use crate::support::fake_oauth::{FakeProvider, REALM_ID};
use crate::support::oauth_support::{
    callback, configure, connect, consent, consent_replacing, spawn, token_row,
};

const OTHER_REALM: &str = "9130350000009999";

async fn connected_realm(app: &crate::support::helpers::TestApp) -> Option<String> {
    sqlx::query_scalar("SELECT external_account_id FROM oauth_tokens WHERE provider = 'quickbooks'")
        .fetch_one(&app.db.pool)
        .await
        .expect("row")
}

async fn last_connect_details(app: &crate::support::helpers::TestApp, success: bool) -> Value {
    sqlx::query_scalar(
        "SELECT details FROM configuration_audit_logs WHERE action = 'oauth_connected' AND success = $1
          ORDER BY id DESC LIMIT 1",
    )
    .bind(success)
    .fetch_one(&app.db.pool)
    .await
    .expect("audit row")
}

#[tokio::test]
async fn another_company_is_refused_unless_the_authorization_asked_to_replace_it() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    let before = token_row(&app, "quickbooks").await.expect("connected");

    fake.set(|b| b.realm_id = Some(OTHER_REALM.into()));
    let url = consent(&app, "quickbooks").await;
    let outcome = callback(&app, &url).await;
    assert_eq!(outcome.get("oauth").map(String::as_str), Some("error"));
    assert_eq!(
        outcome.get("reason").map(String::as_str),
        Some("account_mismatch")
    );
    assert_eq!(
        token_row(&app, "quickbooks")
            .await
            .expect("still connected"),
        before,
        "the stored connection is unchanged"
    );
    assert_eq!(connected_realm(&app).await.as_deref(), Some(REALM_ID));
    assert_eq!(
        last_connect_details(&app, false).await["reason"],
        "account_mismatch"
    );

    // Reconnecting the same company is fine.
    fake.set(|b| b.realm_id = None);
    connect(&app, "quickbooks").await;
    assert_eq!(connected_realm(&app).await.as_deref(), Some(REALM_ID));

    fake.set(|b| b.realm_id = Some(OTHER_REALM.into()));
    let url = consent_replacing(&app, "quickbooks").await;
    let outcome = callback(&app, &url).await;
    assert_eq!(
        outcome.get("oauth").map(String::as_str),
        Some("success"),
        "{outcome:?}"
    );
    assert_eq!(connected_realm(&app).await.as_deref(), Some(OTHER_REALM));
    let audited = last_connect_details(&app, true).await;
    assert_eq!(audited["replaced_external_account_id"], REALM_ID);
}

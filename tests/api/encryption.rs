//! Secrets at rest: sealed, bound to their place, tamper-evident, and guarded by the keyring check.

use serde_json::{Value, json};

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, problem, random_key, start};

const LIVE_KEY: &str = "sk_live_51ProdCanaryKey000000000";

async fn seed(app: &TestApp) {
    let r = app
        .put_json(
            "/api/config/integrations/stripe/sandbox",
            &json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .put_json(
            "/api/config/integrations/stripe/production",
            &json!({"secrets": {"secret_key": LIVE_KEY}}),
        )
        .await;
    assert_eq!(r.status(), 201);
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn stored_secret_bytes_hold_no_plaintext() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let rows: Vec<(Vec<u8>, Value)> =
        sqlx::query_as("SELECT secrets, secrets_masked FROM integration_configs")
            .fetch_all(&app.db.pool)
            .await
            .expect("rows");
    assert_eq!(rows.len(), 2);
    for (sealed, masked) in rows {
        assert!(!contains(&sealed, STRIPE_TEST_KEY) && !contains(&sealed, LIVE_KEY));
        assert!(!contains(&sealed, "sk_"), "not even the prefix is readable");
        assert!(
            !masked.to_string().contains(STRIPE_TEST_KEY) && !masked.to_string().contains(LIVE_KEY)
        );
    }
}

#[tokio::test]
async fn a_ciphertext_copied_into_another_row_does_not_open() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    sqlx::query(
        "UPDATE integration_configs SET secrets = (SELECT secrets FROM integration_configs WHERE environment = 'sandbox')
          WHERE environment = 'production'",
    )
    .execute(&app.db.pool)
    .await
    .expect("copy");
    let r = app
        .post_json(
            "/api/config/integrations/stripe/production/reveal",
            &json!({}),
        )
        .await;
    let p = problem(r, 500).await;
    assert_eq!(p["code"], "sealed_value_unreadable");
    assert!(!p.to_string().contains(STRIPE_TEST_KEY));
    // Masked reads never decrypt, so they still work.
    assert_eq!(
        app.get("/api/config/integrations/stripe/production")
            .await
            .status(),
        200
    );
    // The sandbox row itself is untouched.
    let r = app
        .post_json("/api/config/integrations/stripe/sandbox/reveal", &json!({}))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_flipped_byte_fails_to_open_with_a_clear_problem() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    sqlx::query(
        "UPDATE integration_configs SET secrets = set_byte(secrets, 30, get_byte(secrets, 30) # 1)
          WHERE environment = 'sandbox'",
    )
    .execute(&app.db.pool)
    .await
    .expect("flip");
    let p = problem(
        app.post_json("/api/config/integrations/stripe/sandbox/reveal", &json!({}))
            .await,
        500,
    )
    .await;
    assert_eq!(p["code"], "sealed_value_unreadable");
    assert!(p["detail"].as_str().expect("detail").contains("altered"));
    // A merge patch needs the old secrets: refused the same way, nothing overwritten.
    let p = problem(
        app.patch_json(
            "/api/config/integrations/stripe/sandbox",
            &json!({"enabled": false}),
        )
        .await,
        500,
    )
    .await;
    assert_eq!(p["code"], "sealed_value_unreadable");
    // The service is still up.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn a_wrong_key_refuses_to_start_names_the_key_id_and_writes_nothing() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let stored_key_id: String =
        sqlx::query_scalar("SELECT key_id FROM integration_configs LIMIT 1")
            .fetch_one(&app.db.pool)
            .await
            .expect("key id");
    let canaries_before: i64 = sqlx::query_scalar("SELECT count(*) FROM keyring_check")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");

    let mut vars = app.vars.clone();
    vars.insert("ENCRYPTION_KEY".into(), random_key());
    let err = start(&vars).await.expect_err("a wrong key must not start");
    assert!(err.to_string().contains(&stored_key_id), "{err}");

    // The binary says the same on one line and exits non-zero.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hsq-config"))
        .arg("serve")
        .env_clear()
        .envs(vars.iter())
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(&stored_key_id) && l.contains("ENCRYPTION_KEY")),
        "{stderr}"
    );

    let canaries_after: i64 = sqlx::query_scalar("SELECT count(*) FROM keyring_check")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(canaries_before, canaries_after, "nothing written");
}

#[tokio::test]
async fn previous_keys_open_old_data_and_new_writes_use_the_current_key() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let old_key = app.vars["ENCRYPTION_KEY"].clone();
    let mut vars = app.vars.clone();
    vars.insert("ENCRYPTION_KEY".into(), random_key());
    vars.insert("ENCRYPTION_KEYS_PREVIOUS".into(), old_key);
    let (address, stop) = start(&vars)
        .await
        .expect("starts with the old key as previous");

    let client = reqwest::Client::new();
    let revealed: Value = client
        .post(format!(
            "{address}/api/config/integrations/stripe/sandbox/reveal"
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("reveal")
        .json()
        .await
        .expect("json");
    assert_eq!(revealed["secrets"]["secret_key"], STRIPE_TEST_KEY);

    let r = client
        .patch(format!("{address}/api/config/integrations/stripe/sandbox"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), 200);
    let key_ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT key_id FROM integration_configs")
            .fetch_all(&app.db.pool)
            .await
            .expect("key ids");
    assert_eq!(
        key_ids.len(),
        2,
        "the patched row moved to the new key, the other stayed"
    );

    let health: Value = client
        .get(format!("{address}/api/config/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(
        health["keyring"]["info"]["values_per_key_id"]
            .as_object()
            .expect("map")
            .len(),
        2
    );
    stop.cancel();
}

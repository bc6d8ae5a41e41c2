//! Webhook configurations with a sealed, masked signing secret.

use serde_json::{Value, json};

use crate::support::helpers::{TestApp, fields, problem};

const SECRET: &str = "whsec_canarySigningSecret0123456789";

#[tokio::test]
async fn webhooks_round_trip_with_the_secret_sealed_and_masked() {
    let app = TestApp::spawn().await;
    let r = app
        .post_json(
            "/api/config/webhooks",
            &json!({"url": "https://bridge.example.com/hooks/stripe", "events": ["config.updated", "oauth.*"],
                    "secret": SECRET, "provider": "stripe", "description": "invoices"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["secret"], "whsec***...***6789");

    let listed = app
        .get("/api/config/webhooks")
        .await
        .text()
        .await
        .expect("body");
    assert!(!listed.contains(SECRET));
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhook_configurations")
        .fetch_one(&app.db.pool)
        .await
        .expect("row");
    assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));

    let path = format!("/api/config/webhooks/{id}");
    let patched: Value = app
        .patch_json(&path, &json!({"enabled": false, "secret": null}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(patched["enabled"], false);
    assert!(patched["secret"].is_null());
    assert_eq!(patched["version"], 2);

    let p = problem(app.patch_json(&path, &json!({"url": "ftp://x"})).await, 422).await;
    assert_eq!(fields(&p), ["url"]);
    let p = problem(
        app.post_json(
            "/api/config/webhooks",
            &json!({"url": "/relative", "events": []}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(fields(&p), ["url", "events"]);
    let p = problem(app.post_json("/api/config/webhooks", &json!({"url": "https://x.example", "events": ["config.*"], "secret": "nope-not-whsec", "provider": "stripe"})).await, 422).await;
    assert_eq!(fields(&p), ["secret"]);

    assert_eq!(app.delete(&path).await.status(), 204);
    problem(app.get(&path).await, 404).await;
    problem(app.get("/api/config/webhooks/not-a-uuid").await, 404).await;

    assert_eq!(app.audit_count("webhook_created", Some(true)).await, 1);
    assert_eq!(app.audit_count("webhook_updated", Some(true)).await, 1);
    assert_eq!(app.audit_count("webhook_deleted", Some(true)).await, 1);
    assert_eq!(app.audit_count("webhook_created", Some(false)).await, 2);
    let audit: String =
        sqlx::query_scalar("SELECT string_agg(details::text, ' ') FROM configuration_audit_logs")
            .fetch_one(&app.db.pool)
            .await
            .expect("audit");
    assert!(!audit.contains(SECRET));
}

//! Liveness, readiness, component health and status.

use serde_json::{Value, json};

use crate::support::helpers::{TestApp, TestDb, base_vars, start};

#[tokio::test]
async fn health_reports_each_component() {
    let app = TestApp::spawn().await;
    let live: Value = app.get("/health").await.json().await.expect("json");
    assert_eq!(live, json!({"status": "ok"}));
    assert_eq!(app.get("/health/ready").await.status(), 200);
    let r = app.get("/api/config/health").await;
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.expect("json");
    assert_eq!(h["status"], "healthy");
    for c in ["database", "redis", "keyring", "migrations"] {
        assert!(h[c]["status"].is_string(), "{c}");
    }
    assert_eq!(h["migrations"]["status"], "ok");
    assert!(
        !h.to_string().contains("postgres://"),
        "no connection strings"
    );
}

#[tokio::test]
async fn redis_down_is_degraded_not_unhealthy_and_readiness_fails() {
    let db = TestDb::new().await;
    let mut vars = base_vars(&db.url);
    vars.insert("REDIS_URL".into(), "redis://127.0.0.1:1".into());
    let (address, stop) = start(&vars).await.expect("starts without Redis");
    let client = reqwest::Client::new();
    let h = client
        .get(format!("{address}/api/config/health"))
        .send()
        .await
        .expect("send");
    assert_eq!(h.status(), 200);
    let h: Value = h.json().await.expect("json");
    assert_eq!(h["status"], "degraded");
    assert_eq!(h["redis"]["status"], "down");
    let ready = client
        .get(format!("{address}/health/ready"))
        .send()
        .await
        .expect("send");
    assert_eq!(ready.status(), 503);
    // Configuration keeps working without Redis.
    let r = client
        .put(format!(
            "{address}/api/config/integrations/quickbooks/sandbox"
        ))
        .bearer_auth(&vars["ADMIN_API_TOKEN"])
        .json(&json!({"settings": {"realm_id": "1"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    stop.cancel();
}

#[tokio::test]
async fn status_lists_every_provider_and_environment() {
    let app = TestApp::spawn().await;
    app.put_json(
        "/api/config/integrations/hubspot/production",
        &json!({"enabled": false, "settings": {"portal_id": "1"}}),
    )
    .await;
    let s: Value = app
        .get("/api/config/status")
        .await
        .json()
        .await
        .expect("json");
    let items = s["integrations"].as_array().expect("list");
    assert_eq!(items.len(), 6);
    let hub = items
        .iter()
        .find(|i| i["provider"] == "hubspot" && i["environment"] == "production")
        .expect("row");
    assert_eq!(hub["configured"], true);
    assert_eq!(hub["enabled"], false);
    assert_eq!(items.iter().filter(|i| i["configured"] == true).count(), 1);
}

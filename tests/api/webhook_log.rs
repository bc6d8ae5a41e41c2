//! What the outbox shows and keeps: the event log, the outbox in health and metrics, and the
//! purge of settled deliveries.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, fields, problem};
use crate::support::receiver::Receiver;
use crate::support::wait::eventually;
use crate::webhook_delivery::subscribe;

const CONFIG: &str = "/api/config/integrations/stripe/sandbox";

#[tokio::test]
async fn the_event_log_lists_events_newest_first_filtered_by_type_and_provider() {
    let app = TestApp::spawn_with(|v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["config.*"])).await;
    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(CONFIG, &put).await.status(), 201);
    assert_eq!(app.delete(CONFIG).await.status(), 204);

    let all: Value = app
        .get("/api/config/events")
        .await
        .json()
        .await
        .expect("json");
    let types: Vec<&str> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["event"]["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["config.deleted", "config.created"]);
    let deleted: Value = app
        .get("/api/config/events?type=config.deleted&provider=stripe&limit=1")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(deleted["items"].as_array().expect("items").len(), 1);
    assert!(deleted["next_cursor"].is_null());
    let none: Value = app
        .get("/api/config/events?provider=hubspot")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(none["items"], json!([]));
    let p = problem(app.get("/api/config/events?type=invoice.paid").await, 422).await;
    assert_eq!(fields(&p), ["type"]);
    let viewer = app.token("viewer").await;
    let r = app
        .request(reqwest::Method::GET, "/api/config/events", &viewer)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200, "viewers may read the event log");
}

#[tokio::test]
async fn health_shows_the_outbox_and_old_settled_deliveries_are_purged() {
    let app = TestApp::spawn_with(|v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["config.*"])).await;
    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(CONFIG, &put).await.status(), 201);
    eventually("the delivery", Duration::from_secs(15), async || {
        (receiver.received().len() == 1).then_some(())
    })
    .await;
    let health: Value = app
        .get("/api/config/health")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(health["outbox"]["status"], "ok");
    assert!(health["outbox"]["info"]["pending"].is_number());
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for name in [
        "hsq_webhook_attempts_total{outcome=\"delivered\"}",
        "hsq_webhook_attempt_duration_seconds_count",
        "hsq_webhook_pending_deliveries",
        "hsq_webhook_oldest_pending_seconds",
    ] {
        assert!(metrics.contains(name), "{name} in /metrics");
    }

    let state = app.state();
    let kept = hsq_config::domain::webhook_log::purge(
        state,
        chrono::Utc::now() - chrono::Duration::days(1),
    )
    .await
    .expect("purge");
    assert_eq!(kept, 0, "a young delivery stays");
    let purged = hsq_config::domain::webhook_log::purge(
        state,
        chrono::Utc::now() + chrono::Duration::seconds(1),
    )
    .await
    .expect("purge");
    assert_eq!(purged, 2, "the settled delivery and its event");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(left, 0);
}

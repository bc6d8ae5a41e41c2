//! What webhook delivery refuses: targets at private addresses (at creation and again at
//! delivery), event names outside the catalogue; and what it never carries: secrets.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::helpers::{TestApp, fields, problem};
use crate::support::receiver::Receiver;
use crate::support::wait::eventually;

const CANARY: &str = "sk_test_CANARYwebhook9f8e7d6c5b4a";

#[tokio::test]
async fn urls_at_private_addresses_and_other_schemes_are_refused() {
    let app = TestApp::spawn().await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/hook",
        "http://localhost:9000/hook",
        "ftp://hooks.example.com/hook",
        "file:///etc/passwd",
        "http://hooks.example.com/plain-http",
    ] {
        let body = json!({"url": url, "events": ["config.*"]});
        let p = problem(app.post_json("/api/config/webhooks", &body).await, 422).await;
        assert_eq!(fields(&p), ["url"], "{url}");
    }
    // A name that does not resolve now may resolve later: accepted, checked at delivery.
    let body = json!({"url": "https://hooks.example.com/hook", "events": ["config.*"]});
    let r = app.post_json("/api/config/webhooks", &body).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let outcome: Value = app
        .post_json(&format!("/api/config/webhooks/{id}/test"), &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(outcome["delivered"], false);
    assert!(outcome["error"].is_string());
}

#[tokio::test]
async fn a_target_that_turns_private_is_refused_at_delivery() {
    // http allowed, so what refuses the receiver below is its address alone.
    let app = TestApp::spawn_with(|v| {
        v.insert("WEBHOOK_REQUIRE_HTTPS".into(), "false".into());
    })
    .await;
    let receiver = Receiver::start().await;
    let body = json!({"url": "https://hooks.example.com/hook", "events": ["webhook.test"]});
    let created: Value = app
        .post_json("/api/config/webhooks", &body)
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id");
    // As if its DNS now pointed at a private address.
    sqlx::query("UPDATE webhook_configurations SET url = $1")
        .bind(&receiver.url)
        .execute(&app.db.pool)
        .await
        .expect("point at the receiver");
    let outcome: Value = app
        .post_json(&format!("/api/config/webhooks/{id}/test"), &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(outcome["delivered"], false);
    assert!(
        outcome["error"]
            .as_str()
            .expect("error")
            .starts_with("refused")
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn events_must_name_the_catalogue_and_old_free_form_names_are_reported() {
    let app = TestApp::spawn().await;
    let body = json!({"url": "https://hooks.example.com/x",
                      "events": ["config.updated", "oauth.*", "invoice.paid", "*", "oauth.token_retrieved"]});
    let p = problem(app.post_json("/api/config/webhooks", &body).await, 422).await;
    assert_eq!(fields(&p), ["events[2]"]);

    let body = json!({"url": "https://hooks.example.com/x", "events": ["config.updated"]});
    let created: Value = app
        .post_json("/api/config/webhooks", &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(created["warnings"], json!([]));
    let id = created["id"].as_str().expect("id");
    sqlx::query(
        "UPDATE webhook_configurations SET events = ARRAY['invoice.paid', 'config.updated']",
    )
    .execute(&app.db.pool)
    .await
    .expect("a row from before the catalogue");
    let path = format!("/api/config/webhooks/{id}");
    let view: Value = app.get(&path).await.json().await.expect("json");
    let warnings = view["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].as_str().expect("text").starts_with("events[0]"));
    // Such a row can still be changed; only events given now must name the catalogue.
    let r = app.patch_json(&path, &json!({"description": "kept"})).await;
    assert_eq!(r.status(), 200);
    let p = problem(
        app.patch_json(&path, &json!({"events": ["nope.nothing"]}))
            .await,
        422,
    )
    .await;
    assert_eq!(fields(&p), ["events[0]"]);
}

#[tokio::test]
async fn no_secret_reaches_a_payload_a_delivery_row_or_a_response() {
    let app = TestApp::spawn_with(|v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
    })
    .await;
    let receiver = Receiver::start().await;
    let body = json!({"url": receiver.url, "events": ["*"]});
    let created: Value = app
        .post_json("/api/config/webhooks", &body)
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id");
    let config = "/api/config/integrations/stripe/sandbox";
    let mut responses = Vec::new();
    for r in [
        app.put_json(config, &json!({"secrets": {"secret_key": CANARY}}))
            .await,
        app.patch_json(
            config,
            &json!({"secrets": {"webhook_secret": format!("whsec_{CANARY}")}}),
        )
        .await,
        app.post_json(&format!("/api/config/webhooks/{id}/test"), &json!({}))
            .await,
        app.delete(config).await,
    ] {
        responses.push(r.text().await.expect("body"));
    }
    eventually("four deliveries", Duration::from_secs(15), async || {
        (receiver.received().len() >= 4).then_some(())
    })
    .await;
    responses.push(
        app.get(&format!("/api/config/webhooks/{id}/deliveries"))
            .await
            .text()
            .await
            .expect("body"),
    );
    for text in &responses {
        assert!(
            !text.contains("CANARYwebhook"),
            "a response held the secret: {text}"
        );
    }
    for d in receiver.received() {
        let text = String::from_utf8_lossy(&d.body).into_owned();
        assert!(
            !text.contains("CANARYwebhook"),
            "a payload held the secret: {text}"
        );
        assert!(
            !text.contains("***"),
            "a payload held a masked value: {text}"
        );
    }
    let rows: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(e.payload::text || coalesce(d.last_error, '') || coalesce(d.last_response_body, ''), ' '), '')
           FROM webhook_events e LEFT JOIN webhook_deliveries d ON d.event_id = e.id",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("rows");
    assert!(
        !rows.contains("CANARYwebhook"),
        "an outbox row held the secret"
    );
}

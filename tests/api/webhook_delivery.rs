//! Event delivery to a real receiver: the outbox commits with the change, every delivery is
//! signed (verified with the `standardwebhooks` crate), retried on a short schedule, failed
//! and the endpoint disabled after the configured span, and secrets rotate with an overlap.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, problem};
use crate::support::receiver::{Answer, Receiver};
use crate::support::wait::eventually;

const CONFIG: &str = "/api/config/integrations/stripe/sandbox";
const WAIT: Duration = Duration::from_secs(15);

/// An app that may deliver to the local receiver, with `vars` on top.
async fn app_with(vars: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(|v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
        v.insert("HEALTH_MONITOR_ENABLED".into(), "false".into());
        for (k, val) in vars {
            v.insert((*k).into(), (*val).into());
        }
    })
    .await
}

/// Registers the receiver for `events`; returns the webhook's id and its generated secret.
pub async fn subscribe(app: &TestApp, receiver: &Receiver, events: Value) -> (String, String) {
    let r = app
        .post_json(
            "/api/config/webhooks",
            &json!({"url": receiver.url, "events": events}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    let secret = body["signing_secret"].as_str().expect("a generated secret");
    assert!(secret.starts_with("whsec_"));
    assert_ne!(body["secret"], secret, "the view masks the secret");
    (
        body["id"].as_str().expect("id").to_owned(),
        secret.to_owned(),
    )
}

async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    let page: Value = app
        .get(&format!("/api/config/webhooks/{id}/deliveries"))
        .await
        .json()
        .await
        .expect("json");
    page["items"].as_array().expect("items").clone()
}

/// Waits until every delivery of the endpoint is settled with `status`; returns them.
async fn settled(app: &TestApp, id: &str, count: usize, status: &str) -> Vec<Value> {
    eventually(&format!("{count} {status} deliveries"), WAIT, async || {
        let items = deliveries(app, id).await;
        (items.len() == count && items.iter().all(|d| d["status"] == status)).then_some(items)
    })
    .await
}

#[tokio::test]
async fn a_config_change_is_delivered_once_and_signed() {
    let app = app_with(&[]).await;
    let receiver = Receiver::start().await;
    let (id, secret) = subscribe(&app, &receiver, json!(["config.updated"])).await;
    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(CONFIG, &put).await.status(), 201);
    let patch = json!({"settings": {"account_id": "acct_123"}});
    assert_eq!(app.patch_json(CONFIG, &patch).await.status(), 200);

    let items = settled(&app, &id, 1, "delivered").await;
    assert_eq!(items[0]["event_type"], "config.updated");
    assert_eq!(items[0]["attempts"], 1);
    assert_eq!(items[0]["last_status_code"], 200);
    let received = receiver.received();
    assert_eq!(received.len(), 1, "exactly one delivery");
    let d = &received[0];
    d.verify(&secret).expect("the signature verifies");
    assert_eq!(
        d.header("webhook-id"),
        items[0]["message_id"].as_str().expect("id")
    );
    let body = d.json();
    assert_eq!(body["type"], "config.updated");
    assert_eq!(body["id"], d.header("webhook-id"));
    assert_eq!(body["data"]["provider"], "stripe");
    assert_eq!(body["data"]["environment"], "sandbox");
    assert_eq!(
        body["data"]["changed_fields"],
        json!(["settings.account_id"])
    );
    // The version the patch left (the PUT made 1), as the config itself reports it.
    assert_eq!(body["data"]["version"], 2);
    let stored: serde_json::Value = app.get(CONFIG).await.json().await.expect("config");
    assert_eq!(body["data"]["version"], stored["version"]);
    assert!(!String::from_utf8_lossy(&d.body).contains(STRIPE_TEST_KEY));
}

#[tokio::test]
async fn a_change_whose_transaction_rolls_back_emits_nothing() {
    let app = app_with(&[]).await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["config.*"])).await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'audit storage unavailable'; END $$;
         CREATE TRIGGER refuse_audit BEFORE INSERT ON configuration_audit_logs
           FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
    )
    .execute(&app.db.pool)
    .await
    .expect("install trigger");
    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    problem(app.put_json(CONFIG, &put).await, 503).await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(
        (events, pending),
        (0, 0),
        "a rolled-back change emits nothing"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_failing_receiver_gets_retried_on_the_schedule_until_it_accepts() {
    let app = app_with(&[("WEBHOOK_RETRY_SCHEDULE", "50ms,50ms")]).await;
    let receiver = Receiver::start().await;
    receiver.answer(&[Answer::Status(500), Answer::Status(500)]);
    let (id, secret) = subscribe(&app, &receiver, json!(["config.*"])).await;
    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(CONFIG, &put).await.status(), 201);

    let items = settled(&app, &id, 1, "delivered").await;
    assert_eq!(items[0]["attempts"], 3);
    let received = receiver.received();
    assert_eq!(received.len(), 3, "two failures, then the success");
    for d in &received {
        d.verify(&secret).expect("every attempt is signed");
        assert_eq!(d.header("webhook-id"), received[0].header("webhook-id"));
    }
    assert_eq!(received[0].json()["type"], "config.created");
}

#[tokio::test]
async fn a_receiver_that_never_answers_fails_within_the_timeout_and_gets_disabled() {
    let app = app_with(&[
        ("WEBHOOK_RETRY_SCHEDULE", "50ms"),
        ("WEBHOOK_TIMEOUT", "200ms"),
        ("WEBHOOK_DISABLE_AFTER", "100ms"),
    ])
    .await;
    let receiver = Receiver::start().await;
    receiver.answer(&[Answer::Never, Answer::Never]);
    let (id, _) = subscribe(&app, &receiver, json!(["config.*"])).await;
    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(CONFIG, &put).await.status(), 201);

    let items = settled(&app, &id, 1, "failed").await;
    assert_eq!(items[0]["attempts"], 2, "the first attempt and one retry");
    assert!(items[0]["last_status_code"].is_null());
    let error = items[0]["last_error"].as_str().expect("an error");
    assert!(error.contains("no answer within"), "{error}");
    let view: Value = app
        .get(&format!("/api/config/webhooks/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["enabled"], false);
    assert!(view["disabled_reason"].as_str().is_some());
    assert_eq!(app.audit_count("webhook_disabled", Some(true)).await, 1);
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_until_the_overlap_ends() {
    let app = app_with(&[]).await;
    let receiver = Receiver::start().await;
    let (id, old) = subscribe(&app, &receiver, json!(["config.*"])).await;
    let r = app
        .post_json(
            &format!("/api/config/webhooks/{id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.expect("json");
    let new = rotated["secret"].as_str().expect("new secret").to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string());

    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(CONFIG, &put).await.status(), 201);
    settled(&app, &id, 1, "delivered").await;
    let during = &receiver.received()[0];
    assert_eq!(during.header("webhook-signature").split(' ').count(), 2);
    during
        .verify(&old)
        .expect("the old secret verifies during the overlap");
    during
        .verify(&new)
        .expect("the new secret verifies during the overlap");

    // The overlap ends (its end moved to the past, as time would).
    sqlx::query("UPDATE webhook_configurations SET previous_secret_expires_at = now() - interval '1 second'")
        .execute(&app.db.pool)
        .await
        .expect("end the overlap");
    let patch = json!({"enabled": false});
    assert_eq!(app.patch_json(CONFIG, &patch).await.status(), 200);
    settled(&app, &id, 2, "delivered").await;
    let after = &receiver.received()[1];
    after.verify(&new).expect("the new secret verifies");
    assert!(
        after.verify(&old).is_err(),
        "the old secret no longer signs"
    );
    assert_eq!(
        app.audit_count("webhook_secret_rotated", Some(true)).await,
        1
    );
}

#[tokio::test]
async fn a_test_send_reports_its_outcome_and_failed_deliveries_can_be_retried() {
    let app = app_with(&[("WEBHOOK_RETRY_SCHEDULE", "50ms")]).await;
    let receiver = Receiver::start().await;
    let (id, secret) = subscribe(&app, &receiver, json!(["config.deleted"])).await;
    let outcome: Value = app
        .post_json(&format!("/api/config/webhooks/{id}/test"), &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(outcome["delivered"], true);
    assert_eq!(outcome["status_code"], 200);
    let test = &receiver.received()[0];
    test.verify(&secret).expect("signed");
    assert_eq!(test.json()["type"], "webhook.test");

    receiver.answer(&[Answer::Status(503), Answer::Status(503)]);
    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(CONFIG, &put).await.status(), 201);
    assert_eq!(app.delete(CONFIG).await.status(), 204);
    let items = eventually("the deletion's delivery to fail", WAIT, async || {
        let items = deliveries(&app, &id).await;
        items
            .iter()
            .find(|d| d["event_type"] == "config.deleted" && d["status"] == "failed")
            .cloned()
    })
    .await;
    assert_eq!(items["last_status_code"], 503);
    let delivery = items["id"].as_str().expect("id");
    let r = app
        .post_json(
            &format!("/api/config/webhooks/{id}/deliveries/{delivery}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 202);
    settled(&app, &id, 2, "delivered").await;

    // Pages: newest first, one at a time.
    let first: Value = app
        .get(&format!("/api/config/webhooks/{id}/deliveries?limit=1"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(first["items"][0]["event_type"], "config.deleted");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second: Value = app
        .get(&format!(
            "/api/config/webhooks/{id}/deliveries?limit=1&cursor={cursor}"
        ))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(second["items"][0]["event_type"], "webhook.test");
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn a_key_rotation_re_seals_the_secret_still_in_its_overlap() {
    // Only the replica that knows nothing but the new key delivers (below).
    let app = app_with(&[("WEBHOOK_DELIVERY_ENABLED", "false")]).await;
    let receiver = Receiver::start().await;
    let (id, old) = subscribe(&app, &receiver, json!(["config.*"])).await;
    let rotated: Value = app
        .post_json(
            &format!("/api/config/webhooks/{id}/rotate-secret"),
            &json!({}),
        )
        .await
        .json()
        .await
        .expect("json");
    let new = rotated["secret"].as_str().expect("new secret").to_owned();

    // rotate-key to B, with A still known while it runs.
    let key_a = app.vars["ENCRYPTION_KEY"].clone();
    let key_b = crate::support::helpers::random_key();
    let mut vars_b = app.vars.clone();
    vars_b.insert("ENCRYPTION_KEY".into(), key_b.clone());
    vars_b.insert("ENCRYPTION_KEYS_PREVIOUS".into(), key_a);
    let (_, stop_b, state_b) = crate::support::helpers::start_with_state(&vars_b)
        .await
        .expect("a B replica");
    let caller = hsq_config::http::auth::Caller::system("test:rotate");
    hsq_config::domain::rotation::rotate(&state_b, &caller, 100, |_, _| {})
        .await
        .expect("rotate");
    stop_b.cancel();

    // A replica that knows only B starts (nothing is left under A) and signs with both.
    let mut only_b = vars_b.clone();
    only_b.remove("ENCRYPTION_KEYS_PREVIOUS");
    only_b.insert("WEBHOOK_DELIVERY_ENABLED".into(), "true".into());
    let (address, stop) = crate::support::helpers::start(&only_b)
        .await
        .expect("starts without the old key");
    let r = app
        .client
        .put(format!("{address}{CONFIG}"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 201);
    settled(&app, &id, 1, "delivered").await;
    let d = &receiver.received()[0];
    d.verify(&old)
        .expect("the previous secret, re-sealed under B, still signs");
    d.verify(&new).expect("the new secret signs");
    stop.cancel();
}

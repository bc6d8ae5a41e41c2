//! The console's webhooks page: a generated signing secret is shown once, on the page that
//! created it; a disabled endpoint says why; unknown stored event names are pointed out; a
//! test send shows its outcome and the endpoint's recent deliveries, for admins only.

use reqwest::StatusCode;
use serde_json::json;

use crate::console::Browser;
use crate::support::helpers::TestApp;
use crate::support::receiver::Receiver;
use crate::webhook_delivery::subscribe;

#[tokio::test]
async fn the_webhooks_page_shows_a_generated_secret_once_and_why_an_endpoint_is_disabled() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin_token).await;
    let csrf = browser.csrf().await;
    let origin = app.address.clone();
    let r = browser
        .post(
            "/settings/webhooks",
            Some(&origin),
            &[
                ("_csrf", &csrf),
                ("url", "https://hooks.example.com/console"),
                ("events", "config.updated, oauth.*"),
                ("enabled", "true"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let html = r.text().await.expect("html");
    let at = html
        .find("whsec_")
        .expect("the generated secret, this once");
    let secret: String = html[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "_+/=".contains(*c))
        .collect();
    assert!(secret.len() > 20, "{secret}");
    let listed = browser.page("/settings/webhooks").await;
    assert!(!listed.contains(&secret), "shown once, then masked");

    sqlx::query(
        "UPDATE webhook_configurations SET enabled = false,
                disabled_reason = 'every delivery failed since yesterday',
                events = ARRAY['invoice.paid', 'config.updated']",
    )
    .execute(&app.db.pool)
    .await
    .expect("as delivery and an older version would leave it");
    let listed = browser.page("/settings/webhooks").await;
    assert!(listed.contains("every delivery failed since yesterday"));
    assert!(listed.contains("is not a known event type"));
}

#[tokio::test]
async fn a_test_send_from_the_console_shows_its_outcome_and_the_delivery() {
    let app = TestApp::spawn_with(|v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
        v.insert("HEALTH_MONITOR_ENABLED".into(), "false".into());
    })
    .await;
    let receiver = Receiver::start().await;
    let (id, secret) = subscribe(&app, &receiver, json!(["config.updated"])).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin_token).await;
    let listed = browser.page("/settings/webhooks").await;
    assert!(listed.contains("No deliveries to this endpoint yet"));
    assert!(listed.contains(&format!("/settings/webhooks/{id}/test")));

    let csrf = browser.csrf().await;
    let origin = app.address.clone();
    let r = browser
        .post(
            &format!("/settings/webhooks/{id}/test"),
            Some(&origin),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.expect("html");
    assert!(html.contains("Test event delivered: HTTP 200"), "{html}");
    assert!(html.contains("webhook.test"), "the delivery is listed");
    assert!(!html.contains(&secret), "the signing secret stays masked");
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    received[0]
        .verify(&secret)
        .expect("the test event is signed");
    assert_eq!(received[0].json()["type"], "webhook.test");

    // A viewer sees the deliveries but no test button, and a test send is refused.
    let viewer = app.token("viewer").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&viewer).await;
    let listed = browser.page("/settings/webhooks").await;
    assert!(listed.contains("webhook.test"));
    assert!(!listed.contains(&format!("/settings/webhooks/{id}/test")));
    let csrf = browser.csrf().await;
    let r = browser
        .post(
            &format!("/settings/webhooks/{id}/test"),
            Some(&origin),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(receiver.received().len(), 1, "nothing more was sent");
}

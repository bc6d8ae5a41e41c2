//! The console's webhooks page: a generated signing secret is shown once, on the page that
//! created it; a disabled endpoint says why; unknown stored event names are pointed out.

use reqwest::StatusCode;

use crate::console::Browser;
use crate::support::helpers::TestApp;

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

//! Shared steps of the OAuth tests: settings for the fake provider, configuring OAuth apps,
//! the browser's part of the flow, and reading the token row.

use std::collections::HashMap;

use hsq_config::infra::crypto::{Aad, KeyRing};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::support::fake_oauth::{
    FakeProvider, HS_CLIENT_ID, HS_SECRET, PUBLIC_ORIGIN, QB_CLIENT_ID, QB_SECRET,
    STRIPE_CLIENT_ID, STRIPE_SECRET,
};
use crate::support::helpers::TestApp;

pub const DASHBOARD: &str = "https://dashboard.example.test";
pub const RETURN_TO: &str = "https://dashboard.example.test/settings/integrations?tab=oauth";

/// OAuth settings for a test app; the background refresher stays off unless a test wants it.
pub fn oauth_vars(fake: &FakeProvider, vars: &mut HashMap<String, String>) {
    fake.vars(vars);
    vars.insert("OAUTH_RETURN_ALLOWED_ORIGINS".into(), DASHBOARD.into());
    vars.insert("OAUTH_REFRESHER_ENABLED".into(), "false".into());
    vars.insert("OAUTH_PROVIDER_TIMEOUT".into(), "5".into());
}

pub async fn spawn(
    fake: &FakeProvider,
    extra: impl FnOnce(&mut HashMap<String, String>),
) -> TestApp {
    TestApp::spawn_with(|vars| {
        oauth_vars(fake, vars);
        extra(vars);
    })
    .await
}

/// The OAuth app credentials of each provider, as an admin configures them.
pub fn app_config(provider: &str) -> Value {
    match provider {
        "quickbooks" => {
            json!({"settings": {"client_id": QB_CLIENT_ID}, "secrets": {"client_secret": QB_SECRET}})
        }
        "hubspot" => {
            json!({"settings": {"client_id": HS_CLIENT_ID, "scopes": ["crm.objects.contacts.read", "oauth"]},
                            "secrets": {"client_secret": HS_SECRET}})
        }
        _ => {
            json!({"settings": {"connect_client_id": STRIPE_CLIENT_ID}, "secrets": {"secret_key": STRIPE_SECRET}})
        }
    }
}

pub async fn configure(app: &TestApp, address: &str, provider: &str) {
    let r = app
        .client
        .put(format!(
            "{address}/api/config/integrations/{provider}/sandbox"
        ))
        .bearer_auth(&app.admin_token)
        .json(&app_config(provider))
        .send()
        .await
        .expect("PUT config");
    assert!(
        r.status().is_success(),
        "configure {provider}: {}",
        r.status()
    );
}

pub async fn start_flow(app: &TestApp, provider: &str) -> Response {
    app.post_json(
        &format!("/api/config/{provider}/oauth/authorize"),
        &json!({"environment": "sandbox", "return_to": RETURN_TO}),
    )
    .await
}

/// Authorize, then the "browser" visits the consent URL; returns the callback URL the
/// provider redirected to, mapped from the public origin onto the app under test.
pub async fn consent(app: &TestApp, provider: &str) -> String {
    consent_to(app, provider, start_flow(app, provider).await).await
}

/// Like [`consent`], for a flow allowed to replace the connected account.
pub async fn consent_replacing(app: &TestApp, provider: &str) -> String {
    let r = app
        .post_json(
            &format!("/api/config/{provider}/oauth/authorize"),
            &json!({"environment": "sandbox", "return_to": RETURN_TO, "replace_account": true}),
        )
        .await;
    consent_to(app, provider, r).await
}

async fn consent_to(app: &TestApp, provider: &str, r: Response) -> String {
    assert_eq!(r.status(), 200, "authorize {provider}");
    let body: Value = r.json().await.expect("json");
    let url = body["authorization_url"]
        .as_str()
        .expect("authorization_url")
        .to_owned();
    assert!(body["expires_at"].is_string());
    let r = app.client.get(&url).send().await.expect("consent screen");
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "the fake consent screen redirects"
    );
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(location.starts_with(PUBLIC_ORIGIN), "{location}");
    location.replacen(PUBLIC_ORIGIN, &app.address, 1)
}

/// Follows a callback; returns the 303 target's query pairs.
pub async fn callback(app: &TestApp, url: &str) -> HashMap<String, String> {
    let r = app.client.get(url).send().await.expect("callback");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "callback redirects");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let location =
        reqwest::Url::parse(r.headers()["location"].to_str().expect("location")).expect("url");
    assert_eq!(
        location.origin().ascii_serialization(),
        DASHBOARD,
        "only ever back to the dashboard"
    );
    location.query_pairs().into_owned().collect()
}

pub async fn connect(app: &TestApp, provider: &str) {
    let url = consent(app, provider).await;
    let outcome = callback(app, &url).await;
    assert_eq!(
        outcome.get("oauth").map(String::as_str),
        Some("success"),
        "{provider}: {outcome:?}"
    );
}

pub async fn token_row(
    app: &TestApp,
    provider: &str,
) -> Option<(uuid::Uuid, Vec<u8>, Option<Vec<u8>>, String, i64)> {
    sqlx::query_as("SELECT id, access_token, refresh_token, status, version FROM oauth_tokens WHERE provider = $1")
        .bind(provider)
        .fetch_optional(&app.db.pool)
        .await
        .expect("token row")
}

/// Opens a sealed token with the app's key, through the documented AAD convention.
pub fn open(app: &TestApp, id: uuid::Uuid, field: &str, sealed: &[u8]) -> String {
    let keys = KeyRing::from_material(&SecretString::from(app.vars["ENCRYPTION_KEY"].clone()), &[])
        .expect("key");
    keys.open_string(sealed, &Aad::new("oauth_tokens", id, field))
        .expect("opens under oauth_tokens/<id>/<field>")
        .expose_secret()
        .to_owned()
}

pub async fn get_token(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    provider: &str,
) -> Response {
    client
        .post(format!(
            "{address}/api/config/{provider}/token?environment=sandbox"
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("token request")
}

/// Makes the stored access token expire within the refresh margin (or already expired).
/// Moves the access token's expiry, then waits until the app sees it: the app caches
/// connection rows and learns of this out-of-band change through its invalidation listener.
pub async fn expire_in(app: &TestApp, provider: &str, seconds: i64) {
    let rows: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "UPDATE oauth_tokens SET expires_at = now() + make_interval(secs => $2) WHERE provider = $1
         RETURNING environment, expires_at",
    )
    .bind(provider)
    .bind(seconds as f64)
    .fetch_all(&app.db.pool)
    .await
    .expect("expire");
    for (environment, expires_at) in rows {
        let path = format!("/api/config/{provider}/connection?environment={environment}");
        crate::support::wait::eventually(
            "the app to see the new expiry",
            std::time::Duration::from_secs(5),
            async || {
                let view: Value = app.get(&path).await.json().await.ok()?;
                let seen = view["expires_at"].as_str()?;
                let seen = chrono::DateTime::parse_from_rfc3339(seen).ok()?;
                (seen == expires_at).then_some(())
            },
        )
        .await;
    }
}

/// `n` concurrent QuickBooks token requests alternating between two instances; each must
/// succeed. Returns the access tokens handed out, in request order.
pub async fn concurrent_token_requests(
    app: &TestApp,
    sibling: &str,
    service: &str,
    n: usize,
) -> Vec<String> {
    let mut requests = Vec::new();
    for i in 0..n {
        let address = if i % 2 == 0 {
            app.address.clone()
        } else {
            sibling.to_owned()
        };
        let (client, token) = (app.client.clone(), service.to_owned());
        requests.push(tokio::spawn(async move {
            let r = get_token(&client, &address, &token, "quickbooks").await;
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.expect("json");
            body["access_token"].as_str().expect("token").to_owned()
        }));
    }
    let mut tokens = Vec::new();
    for r in requests {
        tokens.push(r.await.expect("request task"));
    }
    tokens
}

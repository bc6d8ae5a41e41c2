//! OAuth connections over real HTTP: the browser flow for each provider against a fake
//! authorization server, return_to and denied consent, disconnect, roles and the OpenAPI
//! paths. The state lives in `oauth_state.rs`, refresh in `oauth_refresh.rs`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::fake_oauth::{FakeProvider, HUB_ID, REALM_ID, STRIPE_USER_ID};
use crate::support::helpers::{fields, problem};
use crate::support::oauth_support::{
    RETURN_TO, callback, configure, connect, consent, get_token, open, spawn, token_row,
};

async fn full_flow(provider: &str) {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, provider).await;

    connect(&app, provider).await;
    assert_eq!(fake.exchanges(provider), 1);

    // Sealed at rest: the raw bytes hold neither token.
    let (id, access, refresh, status, _) = token_row(&app, provider).await.expect("a token row");
    assert_eq!(status, "connected");
    let (issued_access, issued_refresh) = (fake.last_access(provider), fake.last_refresh(provider));
    let refresh = refresh.expect("a refresh token");
    for sealed in [&access, &refresh] {
        for plain in [&issued_access, &issued_refresh] {
            assert!(
                !sealed.windows(plain.len()).any(|w| w == plain.as_bytes()),
                "{provider}: plaintext at rest"
            );
        }
    }
    assert_eq!(open(&app, id, "access_token", &access), issued_access);
    assert_eq!(open(&app, id, "refresh_token", &refresh), issued_refresh);

    // The token endpoint hands out what was stored, with the provider's account id.
    let service = app.token("service").await;
    let r = get_token(&app.client, &app.address, &service, provider).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let grant: Value = r.json().await.expect("json");
    assert_eq!(grant["access_token"], issued_access.as_str());
    assert_eq!(grant["token_type"], "bearer");
    match provider {
        "quickbooks" => assert_eq!(grant["realm_id"], REALM_ID),
        "hubspot" => assert_eq!(grant["hub_id"], HUB_ID.to_string()),
        _ => assert_eq!(grant["stripe_user_id"], STRIPE_USER_ID),
    }
    assert_eq!(
        fake.refreshes(provider),
        0,
        "a fresh token is not refreshed"
    );

    // The connection view and the status report carry state, never a token.
    let viewer = app.token("viewer").await;
    let r = app
        .request(
            Method::GET,
            &format!("/api/config/{provider}/connection?environment=sandbox"),
            &viewer,
        )
        .send()
        .await
        .expect("connection");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    assert!(!text.contains(&issued_access) && !text.contains(&issued_refresh));
    let view: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(view["status"], "connected");
    if provider == "hubspot" {
        assert_eq!(
            view["scopes"],
            json!(["crm.objects.contacts.read", "oauth"])
        );
        assert_eq!(view["hub_id"], HUB_ID.to_string());
    }
    if provider == "quickbooks" {
        assert!(
            view["refresh_expires_at"].is_string(),
            "x_refresh_token_expires_in is kept"
        );
    }
    let status: Value = app
        .get("/api/config/status")
        .await
        .json()
        .await
        .expect("status");
    let entry = status["integrations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|i| i["provider"] == provider && i["environment"] == "sandbox")
        .cloned()
        .expect("entry");
    assert_eq!(entry["connection"]["status"], "connected");

    assert_eq!(app.audit_count("oauth_connected", Some(true)).await, 1);
    assert_eq!(app.audit_count("token_retrieved", Some(true)).await, 1);

    // Disconnect revokes at the provider and removes the tokens.
    let r = app
        .delete(&format!(
            "/api/config/{provider}/connection?environment=sandbox"
        ))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["revoked_at_provider"], true, "{body}");
    assert_eq!(fake.revokes(provider), 1);
    let revoked = fake.fake().revoked.clone();
    let expected = if provider == "stripe" {
        STRIPE_USER_ID.to_owned()
    } else {
        issued_refresh.clone()
    };
    assert_eq!(revoked, vec![expected]);
    assert!(token_row(&app, provider).await.is_none(), "tokens removed");
    assert_eq!(app.audit_count("oauth_disconnected", Some(true)).await, 1);
    let r = get_token(&app.client, &app.address, &service, provider).await;
    problem(r, 404).await;
}

#[tokio::test]
async fn quickbooks_flow_connects_seals_serves_and_disconnects() {
    full_flow("quickbooks").await;
}

#[tokio::test]
async fn hubspot_flow_connects_seals_serves_and_disconnects() {
    full_flow("hubspot").await;
}

#[tokio::test]
async fn stripe_connect_flow_connects_seals_serves_and_disconnects() {
    full_flow("stripe").await;
}

#[tokio::test]
async fn a_foreign_return_to_is_422_and_a_denied_consent_redirects_with_its_reason() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "stripe").await;
    for foreign in [
        "https://evil.example.com/",
        "https://dashboard.example.test.evil.com/x",
        "//evil.example.com",
    ] {
        let r = app
            .post_json(
                "/api/config/stripe/oauth/authorize",
                &json!({"environment": "sandbox", "return_to": foreign}),
            )
            .await;
        let p = problem(r, 422).await;
        assert_eq!(fields(&p), ["return_to"], "{foreign}");
    }
    let r = app
        .post_json(
            "/api/config/stripe/oauth/authorize",
            &json!({"environment": "sandbox", "return_to": RETURN_TO, "x": 1}),
        )
        .await;
    problem(r, 422).await;

    fake.set(|b| b.deny = true);
    let url = consent(&app, "stripe").await;
    let outcome = callback(&app, &url).await;
    assert_eq!(outcome["oauth"], "error");
    assert_eq!(outcome["reason"], "access_denied");
    assert!(token_row(&app, "stripe").await.is_none());
    assert_eq!(app.audit_count("oauth_connected", Some(false)).await, 1);
}

#[tokio::test]
async fn roles_are_enforced_on_oauth_routes() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "stripe").await;
    let viewer = app.token("viewer").await;
    let r = app
        .request(Method::POST, "/api/config/stripe/oauth/authorize", &viewer)
        .json(&json!({"environment": "sandbox", "return_to": RETURN_TO}))
        .send()
        .await
        .expect("authorize");
    problem(r, 403).await;
    let r = get_token(&app.client, &app.address, &viewer, "stripe").await;
    problem(r, 403).await;
    let r = app
        .client
        .post(app.url("/api/config/stripe/token?environment=sandbox"))
        .send()
        .await
        .expect("no auth");
    problem(r, 401).await;
    let r = app
        .get("/api/config/xero/connection?environment=sandbox")
        .await;
    problem(r, 404).await;
    let r = app
        .get("/api/config/stripe/connection?environment=staging")
        .await;
    problem(r, 422).await;
}

#[tokio::test]
async fn the_openapi_spec_lists_the_oauth_routes() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    let spec: Value = app
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    for path in [
        "/api/config/{provider}/oauth/authorize",
        "/api/config/{provider}/callback",
        "/api/config/{provider}/connection",
        "/api/config/{provider}/token",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing");
    }
}

#[tokio::test]
async fn a_failed_revocation_is_reported_and_the_tokens_are_still_removed() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "hubspot").await;
    connect(&app, "hubspot").await;
    fake.set(|b| b.revoke_fail = true);
    let r = app
        .delete("/api/config/hubspot/connection?environment=sandbox")
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["revoked_at_provider"], false);
    assert_eq!(body["revoke_error"], "provider_unavailable");
    assert_eq!(fake.revokes("hubspot"), 1);
    assert!(token_row(&app, "hubspot").await.is_none());
    let details: Value = sqlx::query_scalar(
        "SELECT details FROM configuration_audit_logs WHERE action = 'oauth_disconnected'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("audit row");
    assert_eq!(details["revoke_error"], "provider_unavailable");
}

#[tokio::test]
async fn a_quickbooks_callback_without_a_numeric_realm_id_is_refused() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "quickbooks").await;
    let url = consent(&app, "quickbooks").await;
    let forged = url.replace("realmId=", "realmId=12ab");
    let outcome = callback(&app, &forged).await;
    assert_eq!(outcome["reason"], "invalid_realm_id");
    assert_eq!(fake.exchanges("quickbooks"), 0);
    assert!(token_row(&app, "quickbooks").await.is_none());
}

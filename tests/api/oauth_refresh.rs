//! Token refresh over real HTTP: the two-instance race, provider quirks (no rotated refresh
//! token, invalid_grant), provider failures and back-off, Redis loss, and the background
//! refresher.

use std::time::Duration;

use serde_json::Value;

use crate::support::fake_oauth::{FakeProvider, QB_SECRET};
use crate::support::helpers::problem;
use crate::support::oauth_support::{
    concurrent_token_requests, configure, connect, expire_in, get_token, open, spawn, token_row,
};
use crate::support::tcp_proxy::TcpProxy;
use crate::support::wait::eventually;

#[tokio::test]
async fn fifty_concurrent_requests_across_two_instances_refresh_once() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "quickbooks").await;
    // Connected with a token inside the refresh margin; the provider is slow to refresh.
    fake.set(|b| {
        b.exchange_expires_in = 60;
        b.refresh_delay = Duration::from_millis(400);
    });
    connect(&app, "quickbooks").await;
    let (sibling, _stop) = app.sibling().await;
    let service = app.token("service").await;

    let tokens = concurrent_token_requests(&app, &sibling, &service, 50).await;
    assert_eq!(
        fake.refreshes("quickbooks"),
        1,
        "exactly one call reaches the token endpoint"
    );
    let newest = fake.last_access("quickbooks");
    assert!(
        tokens.iter().all(|t| *t == newest),
        "all 50 get the same new token"
    );

    let (id, _, refresh, _, _) = token_row(&app, "quickbooks").await.expect("row");
    let stored = open(&app, id, "refresh_token", &refresh.expect("refresh token"));
    assert_eq!(
        stored,
        fake.last_refresh("quickbooks"),
        "the rotated refresh token is stored"
    );
    assert_eq!(app.audit_count("token_refreshed", Some(true)).await, 1);
}

#[tokio::test]
async fn a_refresh_without_refresh_token_keeps_the_old_one() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "hubspot").await;
    connect(&app, "hubspot").await;
    let original = fake.last_refresh("hubspot");
    fake.set(|b| b.omit_refresh_token = true);
    expire_in(&app, "hubspot", 30).await;

    let service = app.token("service").await;
    let r = get_token(&app.client, &app.address, &service, "hubspot").await;
    assert_eq!(r.status(), 200);
    let grant: Value = r.json().await.expect("json");
    assert_eq!(grant["access_token"], fake.last_access("hubspot").as_str());
    assert_eq!(fake.refreshes("hubspot"), 1);
    let (id, _, refresh, _, _) = token_row(&app, "hubspot").await.expect("row");
    assert_eq!(
        open(&app, id, "refresh_token", &refresh.expect("kept")),
        original
    );
}

#[tokio::test]
async fn invalid_grant_marks_needs_reauth_once_without_a_retry_storm() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    fake.set(|b| b.invalid_grant = true);
    expire_in(&app, "quickbooks", 30).await;

    let service = app.token("service").await;
    for _ in 0..5 {
        let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
        let p = problem(r, 409).await;
        assert_eq!(p["code"], "needs_reauth");
        assert!(
            p["detail"]
                .as_str()
                .expect("detail")
                .contains("needs_reauth"),
            "{p}"
        );
    }
    assert_eq!(fake.refreshes("quickbooks"), 1, "no retry storm");
    assert_eq!(app.audit_count("token_refreshed", Some(false)).await, 1);
    let view: Value = app
        .get("/api/config/quickbooks/connection?environment=sandbox")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["status"], "needs_reauth");

    // A new authorization heals it.
    fake.set(|b| b.invalid_grant = false);
    connect(&app, "quickbooks").await;
    let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn provider_failures_write_nothing_and_the_old_token_stays_usable() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    let (access, refresh) = (
        fake.last_access("quickbooks"),
        fake.last_refresh("quickbooks"),
    );
    let (_, _, _, _, version) = token_row(&app, "quickbooks").await.expect("row");
    let service = app.token("service").await;

    // Expiring soon, provider down: the still-valid token is handed out, nothing changes.
    fake.set(|b| b.fail_5xx = 100);
    expire_in(&app, "quickbooks", 60).await;
    let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
    assert_eq!(r.status(), 200);
    let grant: Value = r.json().await.expect("json");
    assert_eq!(grant["access_token"], access.as_str());
    assert_eq!(fake.refreshes("quickbooks"), 1);
    // While the token is still valid, the failure backs off instead of hammering the provider.
    for _ in 0..3 {
        let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(fake.refreshes("quickbooks"), 1, "backed off");

    // Already expired, provider down: a clear 503, still nothing written.
    expire_in(&app, "quickbooks", -10).await;
    let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
    let body = problem(r, 503).await.to_string();
    for secret in [&access, &refresh, &QB_SECRET.to_owned()] {
        assert!(!body.contains(secret.as_str()));
    }
    let (id, _, sealed_refresh, status, after) = token_row(&app, "quickbooks").await.expect("row");
    assert_eq!(
        (status.as_str(), after),
        ("connected", version),
        "nothing half-written"
    );
    assert_eq!(
        open(&app, id, "refresh_token", &sealed_refresh.expect("kept")),
        refresh
    );
    assert_eq!(app.audit_count("token_refreshed", Some(false)).await, 2);

    // The provider recovers: the next request refreshes.
    fake.set(|b| b.fail_5xx = 0);
    let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
    assert_eq!(r.status(), 200);
    assert_ne!(
        r.json::<Value>().await.expect("json")["access_token"],
        access.as_str()
    );
}

#[tokio::test]
async fn the_background_refresher_renews_tokens_in_its_window() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |vars| {
        vars.insert("OAUTH_REFRESHER_ENABLED".into(), "true".into());
        vars.insert("OAUTH_REFRESH_INTERVAL".into(), "1".into());
        vars.insert("OAUTH_REFRESH_WINDOW".into(), "600".into());
    })
    .await;
    configure(&app, &app.address, "hubspot").await;
    fake.set(|b| b.exchange_expires_in = 120);
    connect(&app, "hubspot").await;
    eventually(
        "the background refresher to renew the token",
        Duration::from_secs(15),
        async || {
            (fake.refreshes("hubspot") > 0
                && app.audit_count("token_refreshed", Some(true)).await > 0)
                .then_some(())
        },
    )
    .await;
    let (id, access, _, _, _) = token_row(&app, "hubspot").await.expect("row");
    assert_eq!(
        open(&app, id, "access_token", &access),
        fake.last_access("hubspot")
    );
    assert_eq!(fake.refreshes("hubspot"), 1, "a fresh token is left alone");
}

#[tokio::test]
async fn without_redis_the_row_lock_alone_keeps_refreshes_to_one() {
    let fake = FakeProvider::start().await;
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    let app = spawn(&fake, |vars| {
        vars.insert("REDIS_URL".into(), proxy.redis_url());
    })
    .await;
    configure(&app, &app.address, "quickbooks").await;
    fake.set(|b| {
        b.exchange_expires_in = 60;
        b.refresh_delay = Duration::from_millis(200);
    });
    connect(&app, "quickbooks").await;
    let (sibling, _stop) = app.sibling().await;
    let service = app.token("service").await;
    proxy.cut().await;

    for token in concurrent_token_requests(&app, &sibling, &service, 20).await {
        assert_eq!(token, fake.last_access("quickbooks"));
    }
    assert_eq!(fake.refreshes("quickbooks"), 1);
}

#[tokio::test]
async fn a_refresh_whose_request_times_out_still_commits_the_rotated_token() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |vars| {
        vars.insert("REQUEST_TIMEOUT_SECS".into(), "1".into());
    })
    .await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    let (_, _, _, _, version) = token_row(&app, "quickbooks").await.expect("row");
    // The provider answers after the request's own deadline has dropped the handler.
    fake.set(|b| b.refresh_delay = Duration::from_millis(1500));
    expire_in(&app, "quickbooks", 30).await;
    let service = app.token("service").await;
    let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
    problem(r, 503).await;

    eventually(
        "the abandoned refresh to commit the rotated token",
        Duration::from_secs(10),
        async || {
            let (_, _, _, _, now) = token_row(&app, "quickbooks").await.expect("row");
            (now > version).then_some(())
        },
    )
    .await;
    let (id, _, refresh, status, _) = token_row(&app, "quickbooks").await.expect("row");
    assert_eq!(status, "connected");
    assert_eq!(
        open(&app, id, "refresh_token", &refresh.expect("refresh")),
        fake.last_refresh("quickbooks")
    );
    fake.set(|b| b.refresh_delay = Duration::ZERO);
    let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
    assert_eq!(r.status(), 200);
    let grant: Value = r.json().await.expect("json");
    assert_eq!(
        grant["access_token"],
        fake.last_access("quickbooks").as_str()
    );
    assert_eq!(fake.refreshes("quickbooks"), 1);
}

#[tokio::test]
async fn refreshes_go_through_the_providers_circuit_breaker() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |vars| {
        vars.insert("CIRCUIT_BREAKER_FAILURE_THRESHOLD".into(), "1".into());
        vars.insert("CIRCUIT_BREAKER_COOLDOWN_SECS".into(), "600".into());
    })
    .await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    let service = app.token("service").await;

    // One provider failure opens the breaker; later refreshes make no call.
    fake.set(|b| b.fail_5xx = 100);
    expire_in(&app, "quickbooks", -10).await;
    for _ in 0..3 {
        let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
        problem(r, 503).await;
    }
    assert_eq!(
        fake.refreshes("quickbooks"),
        1,
        "the open breaker kept the other refreshes off the provider"
    );
    assert_eq!(app.breaker("quickbooks", "sandbox").await["state"], "open");

    // After the cooldown (rewound here), the trial refresh succeeds and closes it.
    fake.set(|b| b.fail_5xx = 0);
    app.rewind_breaker("quickbooks", "sandbox").await;
    let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
    assert_eq!(r.status(), 200);
    assert_eq!(fake.refreshes("quickbooks"), 2);
}

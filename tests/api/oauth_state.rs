//! The OAuth state between authorize and callback: single use, tamper-evident, expiring, bound
//! to its provider, and kept in Redis, so losing Redis in between fails cleanly and recovers.

use std::time::Duration;

use crate::support::fake_oauth::{FakeProvider, REALM_ID};
use crate::support::helpers::{problem, redis_url};
use crate::support::oauth_support::{
    callback, configure, connect, consent, spawn, start_flow, token_row,
};
use crate::support::tcp_proxy::TcpProxy;
use crate::support::wait::eventually;

#[tokio::test]
async fn a_replayed_or_tampered_state_is_refused() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "quickbooks").await;
    let url = consent(&app, "quickbooks").await;

    let mut tampered = reqwest::Url::parse(&url).expect("url");
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "state" {
                // Flip the last character to a different one, whatever it was.
                let last = if v.ends_with('A') { 'B' } else { 'A' };
                (k, format!("{}{last}", &v[..v.len() - 1]))
            } else {
                (k, v)
            }
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let outcome = callback(&app, tampered.as_str()).await;
    assert_eq!(outcome["oauth"], "error");
    assert_eq!(outcome["reason"], "invalid_state");

    assert_eq!(callback(&app, &url).await["oauth"], "success");
    let outcome = callback(&app, &url).await;
    assert_eq!(outcome["oauth"], "error", "a replay is refused");
    assert_eq!(outcome["reason"], "invalid_state");
    assert_eq!(
        fake.exchanges("quickbooks"),
        1,
        "the replay never reaches the provider"
    );
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |vars| {
        vars.insert("OAUTH_STATE_TTL".into(), "1".into());
    })
    .await;
    configure(&app, &app.address, "hubspot").await;
    let url = consent(&app, "hubspot").await;

    // Bounded wait for Redis to expire the state (TTL 1 s).
    let client = redis::Client::open(redis_url()).expect("redis");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis conn");
    let pattern = format!("{}oauth:state:*", app.prefix());
    eventually(
        "Redis to expire the state",
        Duration::from_secs(10),
        async || {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .expect("keys");
            keys.is_empty().then_some(())
        },
    )
    .await;
    let outcome = callback(&app, &url).await;
    assert_eq!(outcome["reason"], "invalid_state");
    assert_eq!(fake.exchanges("hubspot"), 0);
    assert!(token_row(&app, "hubspot").await.is_none());
}

#[tokio::test]
async fn a_state_issued_for_another_provider_is_refused() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "hubspot").await;
    configure(&app, &app.address, "quickbooks").await;
    let url = consent(&app, "hubspot").await;
    let wrong = url.replace(
        "/api/config/hubspot/callback",
        "/api/config/quickbooks/callback",
    );
    let outcome = callback(&app, &format!("{wrong}&realmId={REALM_ID}")).await;
    assert_eq!(outcome["oauth"], "error");
    assert_eq!(outcome["reason"], "provider_mismatch");
    assert_eq!(fake.exchanges("hubspot") + fake.exchanges("quickbooks"), 0);
    assert!(
        token_row(&app, "hubspot").await.is_none() && token_row(&app, "quickbooks").await.is_none()
    );
    assert_eq!(app.audit_count("oauth_connected", Some(false)).await, 1);
}

#[tokio::test]
async fn losing_redis_between_authorize_and_callback_fails_cleanly_and_recovers() {
    let fake = FakeProvider::start().await;
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    let app = spawn(&fake, |vars| {
        vars.insert("REDIS_URL".into(), proxy.redis_url());
    })
    .await;
    configure(&app, &app.address, "quickbooks").await;
    let url = consent(&app, "quickbooks").await;

    proxy.cut().await;
    let outcome = callback(&app, &url).await;
    assert_eq!(outcome["oauth"], "error");
    assert_eq!(outcome["reason"], "state_unavailable");
    assert!(
        token_row(&app, "quickbooks").await.is_none(),
        "nothing written"
    );
    assert_eq!(fake.exchanges("quickbooks"), 0);
    let p = problem(start_flow(&app, "quickbooks").await, 503).await;
    assert!(
        p["detail"].as_str().expect("detail").contains("Redis"),
        "{p}"
    );

    proxy.restore().await;
    eventually(
        "the connection manager to reconnect to Redis",
        Duration::from_secs(20),
        async || (start_flow(&app, "quickbooks").await.status() == 200).then_some(()),
    )
    .await;
    connect(&app, "quickbooks").await;
    assert!(token_row(&app, "quickbooks").await.is_some());
}

//! OAuth connection lifecycle events: connected, token retrieved (only where named), refresh
//! failed, needs reauthorization (once), expiring (once), disconnected — delivered and signed.

use std::collections::BTreeSet;
use std::time::Duration;

use hsq_config::domain::oauth::refresher::warn_expiring;
use serde_json::json;

use crate::support::fake_oauth::FakeProvider;
use crate::support::helpers::problem;
use crate::support::oauth_support::{configure, connect, expire_in, get_token, spawn};
use crate::support::receiver::Receiver;
use crate::support::wait::eventually;
use crate::webhook_delivery::subscribe;

fn types(receiver: &Receiver) -> Vec<String> {
    receiver
        .received()
        .iter()
        .map(|d| d.json()["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn received(receiver: &Receiver, count: usize) -> Vec<String> {
    eventually(
        &format!("{count} deliveries"),
        Duration::from_secs(15),
        async || {
            let seen = types(receiver);
            (seen.len() >= count).then_some(seen)
        },
    )
    .await
}

#[tokio::test]
async fn a_connection_s_lifecycle_is_delivered_and_token_reads_only_where_named() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
    })
    .await;
    let named = Receiver::start().await;
    let all = Receiver::start().await;
    let (_, secret) = subscribe(&app, &named, json!(["oauth.*", "oauth.token_retrieved"])).await;
    subscribe(&app, &all, json!(["*"])).await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    let service = app.token("service").await;
    let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
    assert_eq!(r.status(), 200);
    // The provider fails the refresh once; the still-valid token is handed out.
    fake.set(|b| b.fail_5xx = 1);
    expire_in(&app, "quickbooks", 30).await;
    let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
    assert_eq!(r.status(), 200);
    let r = app
        .delete("/api/config/quickbooks/connection?environment=sandbox")
        .await;
    assert!(r.status().is_success());

    let seen: BTreeSet<String> = received(&named, 5).await.into_iter().collect();
    let expected = [
        "oauth.connected",
        "oauth.disconnected",
        "oauth.refresh_failed",
        "oauth.token_retrieved",
    ];
    assert_eq!(seen, expected.iter().map(|s| s.to_string()).collect());
    for d in named.received() {
        d.verify(&secret).expect("signed");
        let body = d.json();
        assert_eq!(body["data"]["provider"], "quickbooks");
        assert_eq!(body["data"]["environment"], "sandbox");
        let text = String::from_utf8_lossy(&d.body).into_owned();
        for token in [
            fake.last_access("quickbooks"),
            fake.last_refresh("quickbooks"),
        ] {
            assert!(
                !token.is_empty() && !text.contains(&token),
                "a token in {text}"
            );
        }
    }
    let everything = received(&all, 4).await;
    assert!(
        !everything.iter().any(|t| t == "oauth.token_retrieved"),
        "a wildcard never gets token reads: {everything:?}"
    );
}

#[tokio::test]
async fn a_connection_that_becomes_unusable_is_announced_once() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
    })
    .await;
    let receiver = Receiver::start().await;
    let (id, _) = subscribe(&app, &receiver, json!(["oauth.needs_reauth"])).await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    fake.set(|b| b.invalid_grant = true);
    expire_in(&app, "quickbooks", 30).await;
    let service = app.token("service").await;
    for _ in 0..3 {
        let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
        problem(r, 409).await;
    }
    let seen = received(&receiver, 1).await;
    assert_eq!(seen, ["oauth.needs_reauth"]);
    let body = receiver.received()[0].json();
    assert_eq!(body["data"]["reason"], "invalid_grant");
    let page: serde_json::Value = app
        .get(&format!("/api/config/webhooks/{id}/deliveries"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        page["items"].as_array().expect("items").len(),
        1,
        "once, not per request"
    );
}

#[tokio::test]
async fn an_expiring_refresh_token_is_announced_once_across_replicas_and_rounds() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["oauth.expiring"])).await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    let (_, _, sibling) = crate::support::helpers::start_with_state(&app.vars)
        .await
        .expect("a second replica");
    // Its rolling expiry (about 100 days) is far: nothing to say.
    assert_eq!(warn_expiring(app.state()).await.expect("round"), 0);
    // Time passes: the refresh token now expires in three days.
    sqlx::query("UPDATE oauth_tokens SET refresh_expires_at = now() + interval '3 days'")
        .execute(&app.db.pool)
        .await
        .expect("move the expiry");
    let (a, b) = tokio::join!(warn_expiring(app.state()), warn_expiring(&sibling));
    assert_eq!(
        a.expect("round") + b.expect("round"),
        1,
        "one replica announces it"
    );
    assert_eq!(
        warn_expiring(app.state()).await.expect("round"),
        0,
        "and only once"
    );

    let seen = received(&receiver, 1).await;
    assert_eq!(seen, ["oauth.expiring"]);
    let body = receiver.received()[0].json();
    assert_eq!(body["data"]["provider"], "quickbooks");
    assert!(body["data"]["refresh_expires_at"].is_string());
}

#[tokio::test]
async fn the_hard_five_year_expiry_is_kept_shown_and_announced() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["oauth.expiring"])).await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    let path = "/api/config/quickbooks/connection?environment=sandbox";
    let view: serde_json::Value = app.get(path).await.json().await.expect("json");
    let hard = view["refresh_hard_expires_at"]
        .as_str()
        .expect("the hard expiry");
    let hard = chrono::DateTime::parse_from_rfc3339(hard).expect("a time");
    let days = (hard.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!(
        (1824..=1825).contains(&days),
        "Intuit's five-year maximum, asked for and kept: {days} days"
    );
    let status: serde_json::Value = app
        .get("/api/config/status")
        .await
        .json()
        .await
        .expect("json");
    assert!(status.to_string().contains("refresh_hard_expires_at"));

    // The rolling expiry is far, but the hard one comes near: that is what is announced.
    sqlx::query("UPDATE oauth_tokens SET refresh_hard_expires_at = now() + interval '2 days'")
        .execute(&app.db.pool)
        .await
        .expect("move the hard expiry");
    assert_eq!(warn_expiring(app.state()).await.expect("round"), 1);
    received(&receiver, 1).await;
    let body = receiver.received()[0].json();
    assert!(body["data"]["refresh_hard_expires_at"].is_string());
}

#[tokio::test]
async fn an_endpoint_subscribed_on_one_instance_receives_token_reads_made_on_another() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
    })
    .await;
    let (other, _stop) = app.sibling().await;
    app.caches_live(2).await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    let service = app.token("service").await;
    // The other instance reads a token while no endpoint names the type: it now holds the
    // endpoint list, empty, in its cache.
    let r = get_token(&app.client, &other, &service, "quickbooks").await;
    assert_eq!(r.status(), 200);

    let named = Receiver::start().await;
    let (id, _) = subscribe(&app, &named, json!(["oauth.token_retrieved"])).await;
    // The subscription made on this instance reaches the other one's cache through the
    // invalidation, well inside the cache's 5 s TTL (which alone would also end the stale
    // list): a token read there gets a delivery for the endpoint within 2 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let r = get_token(&app.client, &other, &service, "quickbooks").await;
        assert_eq!(r.status(), 200);
        let queued: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&app.db.pool)
        .await
        .expect("count deliveries");
        if queued > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other instance still ignored the new endpoint after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = received(&named, 1).await;
    assert!(delivered.iter().all(|t| t == "oauth.token_retrieved"));
}

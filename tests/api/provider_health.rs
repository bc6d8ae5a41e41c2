//! Live validation, shared circuit breakers and the health monitor.

use std::time::Duration;

use hsq_config::infra::crypto::Aad;
use serde_json::{Value, json};

use crate::support::fake_providers::{Behaviour, FakeProviders};
use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, problem, start_with_state};
use crate::support::provider_support::{STRIPE, app_with, validate};

/// An app whose stripe/sandbox config holds a key the fake accepts.
async fn stripe_app(fake: &FakeProviders, extra: &[(&str, &str)]) -> TestApp {
    let app = app_with(fake, extra).await;
    let r = app
        .put_json(STRIPE, &json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
        .await;
    assert_eq!(r.status(), 201);
    fake.accept("stripe", STRIPE_TEST_KEY);
    app
}

async fn stored_status(app: &TestApp, provider: &str, environment: &str) -> Option<String> {
    sqlx::query_scalar("SELECT last_validation_status FROM integration_configs WHERE provider = $1 AND environment = $2")
        .bind(provider)
        .bind(environment)
        .fetch_one(&app.db.pool)
        .await
        .expect("row")
}

/// Seals an access token into `oauth_tokens` the way a completed OAuth flow stores it.
async fn connect(app: &TestApp, provider: &str, environment: &str, token: &str, realm: &str) {
    let integration: uuid::Uuid = sqlx::query_scalar(
        "SELECT id FROM integration_configs WHERE provider = $1 AND environment = $2",
    )
    .bind(provider)
    .bind(environment)
    .fetch_one(&app.db.pool)
    .await
    .expect("config");
    let id = uuid::Uuid::new_v4();
    let sealed = app.state().keyring().seal(
        token.as_bytes(),
        &Aad::new("oauth_tokens", id, "access_token"),
    );
    sqlx::query(
        "INSERT INTO oauth_tokens (id, integration_id, provider, environment, access_token, key_id, realm_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + interval '1 hour')",
    )
    .bind(id)
    .bind(integration)
    .bind(provider)
    .bind(environment)
    .bind(sealed)
    .bind(app.state().keyring().current_id().to_string())
    .bind(realm)
    .execute(&app.db.pool)
    .await
    .expect("insert token");
}

#[tokio::test]
async fn each_provider_answer_is_reported_stored_and_audited() {
    let fake = FakeProviders::start().await;
    let app = stripe_app(
        &fake,
        &[
            ("CONFIG_VALIDATION_TIMEOUT", "1"),
            ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "10"),
        ],
    )
    .await;
    let ok = validate(&app, STRIPE).await;
    assert_eq!(ok["status"], "ok");
    assert!(ok["latency_ms"].is_u64() && ok["checked_at"].is_string());
    assert_eq!(
        stored_status(&app, "stripe", "sandbox").await.as_deref(),
        Some("ok")
    );

    fake.accept("stripe", "sk_test_rolled_key");
    assert_eq!(
        validate(&app, STRIPE).await["status"],
        "invalid_credentials"
    );
    assert_eq!(
        stored_status(&app, "stripe", "sandbox").await.as_deref(),
        Some("invalid_credentials")
    );

    fake.behave("stripe", Behaviour::RateLimited { retry_after: 7 });
    let limited = validate(&app, STRIPE).await;
    assert_eq!(limited["status"], "rate_limited");
    assert!(limited["detail"].as_str().expect("detail").contains('7'));

    fake.behave("stripe", Behaviour::Slow(Duration::from_secs(3)));
    let slow = validate(&app, STRIPE).await;
    assert_eq!(slow["status"], "unreachable");
    assert!(slow["detail"].as_str().expect("detail").contains("1 s"));

    fake.behave("stripe", Behaviour::ServerError);
    assert_eq!(validate(&app, STRIPE).await["status"], "unreachable");
    assert_eq!(
        stored_status(&app, "stripe", "sandbox").await.as_deref(),
        Some("unreachable")
    );

    assert_eq!(fake.calls("stripe"), 5);
    assert_eq!(app.audit_count("config_validated", Some(true)).await, 1);
    assert_eq!(app.audit_count("config_validated", Some(false)).await, 4);
    let audit: String = sqlx::query_scalar("SELECT string_agg(details::text, ' ') FROM configuration_audit_logs WHERE action = 'config_validated'")
        .fetch_one(&app.db.pool)
        .await
        .expect("audit");
    assert!(!audit.contains(STRIPE_TEST_KEY));

    // The status report carries the last validation.
    let status: Value = app
        .get("/api/config/status")
        .await
        .json()
        .await
        .expect("json");
    let row = status["integrations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|i| i["provider"] == "stripe" && i["environment"] == "sandbox")
        .cloned()
        .expect("row");
    assert_eq!(row["last_validation"]["status"], "unreachable");
}

#[tokio::test]
async fn hubspot_and_quickbooks_validate_with_their_own_credentials_and_hosts() {
    let fake = FakeProviders::start().await;
    let app = app_with(&fake, &[]).await;
    let hubspot = "/api/config/integrations/hubspot/production";
    app.put_json(
        hubspot,
        &json!({"secrets": {"private_app_token": "pat-na1-canary-token-0001"}}),
    )
    .await;
    fake.accept("hubspot", "pat-na1-canary-token-0001");
    assert_eq!(validate(&app, hubspot).await["status"], "ok");

    let qb = "/api/config/integrations/quickbooks/sandbox";
    app.put_json(qb, &json!({"settings": {"realm_id": "4620816365"}}))
        .await;
    let p = problem(
        app.post_json(&format!("{qb}/validate"), &json!({})).await,
        409,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .expect("detail")
            .contains("not connected")
    );

    connect(
        &app,
        "quickbooks",
        "sandbox",
        "qb-access-token-canary",
        "4620816365",
    )
    .await;
    fake.accept("quickbooks-sandbox", "qb-access-token-canary");
    assert_eq!(validate(&app, qb).await["status"], "ok");
    assert_eq!(fake.calls("quickbooks-sandbox"), 1);
    assert_eq!(
        fake.calls("quickbooks-production"),
        0,
        "sandbox companies live on the sandbox host"
    );
}

#[tokio::test]
async fn the_breaker_opens_rejects_without_calling_lets_one_trial_through_and_closes() {
    let fake = FakeProviders::start().await;
    let app = stripe_app(
        &fake,
        &[
            ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "3"),
            ("CIRCUIT_BREAKER_COOLDOWN_SECS", "600"),
        ],
    )
    .await;
    let (sibling, stop) = app.sibling().await;

    fake.behave("stripe", Behaviour::ServerError);
    for _ in 0..3 {
        assert_eq!(validate(&app, STRIPE).await["status"], "unreachable");
    }
    assert_eq!(fake.calls("stripe"), 3);
    let rejected = validate(&app, STRIPE).await;
    assert_eq!(rejected["status"], "circuit_open");
    assert!(rejected["latency_ms"].is_null());
    assert_eq!(fake.calls("stripe"), 3, "an open breaker makes no call");

    // The other replica sees the same open breaker.
    let via_sibling = app
        .client
        .post(format!("{sibling}{STRIPE}/validate"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("send");
    let via_sibling: Value = via_sibling.json().await.expect("json");
    assert_eq!(via_sibling["status"], "circuit_open");
    assert_eq!(fake.calls("stripe"), 3);

    // Pretend the cooldown passed (rewind the open time in the shared state), then race two
    // replicas against a slow, healthy provider: exactly one trial reaches it.
    app.rewind_breaker("stripe", "sandbox").await;
    fake.behave("stripe", Behaviour::Slow(Duration::from_millis(500)));
    let path = format!("{STRIPE}/validate");
    let empty = json!({});
    let a = app.post_json(&path, &empty);
    let b = app
        .client
        .post(format!("{sibling}{STRIPE}/validate"))
        .bearer_auth(&app.admin_token)
        .send();
    let (a, b) = tokio::join!(a, b);
    let mut statuses = [
        a.json::<Value>().await.expect("json")["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        b.expect("send").json::<Value>().await.expect("json")["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ];
    statuses.sort();
    assert_eq!(statuses, ["circuit_open", "ok"]);
    assert_eq!(fake.calls("stripe"), 4, "exactly one trial call");

    // The successful trial closed the breaker for everyone.
    fake.behave("stripe", Behaviour::Normal);
    assert_eq!(validate(&app, STRIPE).await["status"], "ok");
    let breaker = app.breaker("stripe", "sandbox").await;
    assert_eq!(breaker["state"], "closed");
    assert_eq!(breaker["backend"], "redis");
    stop.cancel();
}

#[tokio::test]
async fn client_errors_never_open_the_breaker() {
    let fake = FakeProviders::start().await;
    let app = stripe_app(&fake, &[("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "2")]).await;
    fake.accept("stripe", "another-key");
    for _ in 0..4 {
        assert_eq!(
            validate(&app, STRIPE).await["status"],
            "invalid_credentials"
        );
    }
    assert_eq!(fake.calls("stripe"), 4);
}

#[tokio::test]
async fn without_redis_validation_uses_the_local_breaker_and_health_says_so() {
    let fake = FakeProviders::start().await;
    let app = stripe_app(
        &fake,
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "2"),
        ],
    )
    .await;
    assert_eq!(validate(&app, STRIPE).await["status"], "ok");

    fake.behave("stripe", Behaviour::ServerError);
    validate(&app, STRIPE).await;
    validate(&app, STRIPE).await;
    assert_eq!(
        validate(&app, STRIPE).await["status"],
        "circuit_open",
        "the local breaker still protects the provider"
    );
    assert_eq!(fake.calls("stripe"), 3);

    let health: Value = app
        .get("/api/config/health")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "degraded");
    assert!(
        health["breakers"]
            .as_array()
            .expect("list")
            .iter()
            .all(|b| b["backend"] == "local")
    );
}

#[tokio::test]
async fn the_monitor_validates_each_enabled_integration_once_per_round_across_replicas() {
    let fake = FakeProviders::start().await;
    let app = app_with(&fake, &[]).await;
    let (_, stop, sibling) = start_with_state(&app.vars).await.expect("sibling");
    app.put_json(STRIPE, &json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
        .await;
    app.put_json(
        "/api/config/integrations/hubspot/sandbox",
        &json!({"secrets": {"private_app_token": "pat-na1-x-0001"}}),
    )
    .await;
    app.put_json(
        "/api/config/integrations/stripe/production",
        &json!({"enabled": false, "secrets": {"secret_key": "sk_live_disabled_key_0001"}}),
    )
    .await;
    fake.accept("stripe", STRIPE_TEST_KEY);
    fake.accept("hubspot", "pat-na1-x-0001");

    for round in [1001_u64, 1002] {
        let (a, b) = tokio::join!(
            hsq_config::domain::monitor::run_round(app.state(), round),
            hsq_config::domain::monitor::run_round(&sibling, round)
        );
        let ran: Vec<_> = [a.expect("round a"), b.expect("round b")]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(ran.len(), 1, "one replica runs round {round}");
        assert_eq!(ran[0].validations.len(), 2);
        assert!(ran[0].leased);
    }
    assert_eq!(
        fake.calls("stripe"),
        2,
        "once per round; the disabled production config is skipped"
    );
    assert_eq!(fake.calls("hubspot"), 2);

    let health: Value = app
        .get("/api/config/health")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(health["monitor"]["round"], 1002);
    stop.cancel();
}

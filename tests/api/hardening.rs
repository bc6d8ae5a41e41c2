//! Findings of an outside attack run, each refused at the depth where it belongs: Redis that
//! never answers, NUL, arrays and duplicate keys in bodies, amplification, loose media types,
//! and refusals that reveal what exists before the caller is authorized.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, fields, problem};

const STRIPE: &str = "/api/config/integrations/stripe/sandbox";

/// A Redis that accepts connections and never answers: held open, read from, never written.
async fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("redis://{addr}")
}

#[tokio::test]
async fn health_status_and_readiness_answer_quickly_when_redis_never_answers() {
    let redis = black_hole().await;
    let app = TestApp::spawn_with(|vars| {
        vars.insert("REDIS_URL".into(), redis);
    })
    .await;
    let viewer = app.token("viewer").await;

    let started = Instant::now();
    let r = app.get("/api/config/health").await;
    let health_took = started.elapsed();
    assert_eq!(r.status(), 200, "degraded, still serving");
    let health: Value = r.json().await.expect("health");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["redis"]["status"], "down");
    assert!(
        health["breakers"]
            .as_array()
            .expect("breakers")
            .iter()
            .all(|b| b["backend"] == "local"),
        "{health}"
    );

    let started = Instant::now();
    let r = app
        .request(Method::GET, "/api/config/status", &viewer)
        .send()
        .await
        .expect("status");
    let status_took = started.elapsed();
    assert_eq!(r.status(), 200);

    let started = Instant::now();
    let r = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .expect("ready");
    let ready_took = started.elapsed();
    assert_eq!(r.status(), 503);
    assert!(
        r.headers().contains_key("retry-after"),
        "503 says when to retry"
    );

    for (what, took) in [
        ("health", health_took),
        ("status", status_took),
        ("readiness", ready_took),
    ] {
        assert!(took < Duration::from_secs(3), "{what} took {took:?}");
    }
}

#[tokio::test]
async fn nul_in_values_names_and_query_parameters_is_bad_input_and_writes_nothing() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (
            json!({"settings": {"publishable_key": "pk_test_a\u{0}b"}}),
            "settings.publishable_key",
        ),
        (
            json!({"secrets": {"secret_key": "sk_test_\u{0}"}}),
            "secrets.secret_key",
        ),
    ] {
        let p = problem(app.put_json(STRIPE, &body).await, 422).await;
        assert_eq!(fields(&p), [field], "{p}");
    }
    let r = app
        .post_json(
            "/api/config/webhooks",
            &json!({"url": "https://hooks.example.com/x", "events": ["config.updated"],
                    "description": "a\u{0}b"}),
        )
        .await;
    assert_eq!(fields(&problem(r, 422).await), ["description"]);
    for query in ["actor=a%00b", "resource_id=%00"] {
        let r = app.get(&format!("/api/config/audit?{query}")).await;
        problem(r, 400).await;
    }
    let configs: i64 = sqlx::query_scalar("SELECT count(*) FROM integration_configs")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    let hooks: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_configurations")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!((configs, hooks), (0, 0), "nothing written");
}

#[tokio::test]
async fn a_refusal_whose_field_name_holds_nul_still_has_its_audit_row() {
    let app = TestApp::spawn().await;
    let body = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(STRIPE, &body).await.status(), 201);
    let before = app.audit_count("config_patched", Some(false)).await;
    let r = app
        .patch_json(STRIPE, &json!({"settings": {"col\u{0}our": "blue"}}))
        .await;
    problem(r, 422).await;
    assert_eq!(
        app.audit_count("config_patched", Some(false)).await,
        before + 1,
        "the refusal is in the log"
    );
}

#[tokio::test]
async fn arrays_and_nested_duplicate_keys_are_refused() {
    let app = TestApp::spawn().await;
    let raw = |method: Method, path: &str, body: &'static str| {
        app.request(method, path, &app.admin_token)
            .header("content-type", "application/json")
            .body(body)
    };
    let r = raw(
        Method::POST,
        "/api/config/api-tokens",
        r#"["array-token","viewer"]"#,
    )
    .send()
    .await
    .expect("POST");
    assert_eq!(fields(&problem(r, 422).await), ["body"]);
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(tokens, 0, "no token from an array");

    let r = raw(Method::PUT, STRIPE, r#"[true,{},{}]"#)
        .send()
        .await
        .expect("PUT");
    assert_eq!(fields(&problem(r, 422).await), ["body"]);

    let r = raw(
        Method::PUT,
        "/api/config/integrations/hubspot/sandbox",
        r#"{"secrets":{"client_secret":"A-secret-value","client_secret":"B-secret-value"}}"#,
    )
    .send()
    .await
    .expect("PUT");
    assert_eq!(
        fields(&problem(r, 422).await),
        ["secrets.client_secret"],
        "the repeated key is named"
    );
}

#[tokio::test]
async fn sixty_thousand_unknown_fields_get_a_bounded_answer_and_a_bounded_audit_row() {
    let app = TestApp::spawn().await;
    let body = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(STRIPE, &body).await.status(), 201);
    let settings: serde_json::Map<String, Value> =
        (0..60_000).map(|i| (format!("k{i}"), json!("x"))).collect();
    let r = app
        .patch_json(STRIPE, &json!({ "settings": settings }))
        .await;
    assert_eq!(r.status(), 422);
    let text = r.text().await.expect("body");
    assert!(text.len() < 20_000, "a 422 of {} bytes", text.len());
    let p: Value = serde_json::from_str(&text).expect("problem");
    assert_eq!(p["errors"].as_array().map(Vec::len), Some(50));
    assert_eq!(p["errors_omitted"], 60_000 - 50);
    let details: i32 = sqlx::query_scalar(
        "SELECT octet_length(details::text) FROM configuration_audit_logs
          WHERE action = 'config_patched' AND NOT success ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("the refusal's audit row");
    assert!(details < 10_000, "audit details of {details} bytes");
}

#[tokio::test]
async fn a_body_needs_a_json_content_type_in_utf_8() {
    let app = TestApp::spawn().await;
    let body = r#"{"name":"media-type","role":"viewer"}"#;
    for content_type in [
        None,
        Some("application/json; charset=utf-16"),
        Some("text/plain"),
    ] {
        let mut request = app.request(Method::POST, "/api/config/api-tokens", &app.admin_token);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let r = request.body(body).send().await.expect("POST");
        problem(r, 415).await;
    }
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(tokens, 0);
}

#[tokio::test]
async fn a_viewer_is_refused_before_learning_what_exists() {
    let app = TestApp::spawn().await;
    let viewer = app.token("viewer").await;
    let r = app
        .request(
            Method::PUT,
            "/api/config/integrations/xero/sandbox",
            &viewer,
        )
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("PUT");
    problem(r, 403).await;
    let r = app
        .request(Method::POST, "/api/config/xero/oauth/authorize", &viewer)
        .json(&json!({}))
        .send()
        .await
        .expect("POST");
    problem(r, 403).await;
    // An admin asking the same learns it does not exist.
    let r = app
        .request(
            Method::DELETE,
            "/api/config/integrations/xero/sandbox",
            &app.admin_token,
        )
        .send()
        .await
        .expect("DELETE");
    problem(r, 404).await;
}

//! HTTP hygiene: problem bodies, request ids, headers, limits, CORS, docs, and database outages.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, TestDb, base_vars, problem, start};
use crate::support::tcp_proxy::TcpProxy;
use crate::support::wait::eventually;

#[tokio::test]
async fn every_response_has_a_request_id_and_problems_carry_it() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");

    let r = app.get("/api/config/nowhere").await;
    let id = r.headers()["x-request-id"].to_str().expect("id").to_owned();
    let p = problem(r, 404).await;
    assert_eq!(p["request_id"], id);
    assert_eq!(p["code"], "not_found");
    assert!(p["type"].as_str().is_some() && p["title"].as_str().is_some() && p["status"] == 404);
}

#[tokio::test]
async fn api_responses_carry_security_headers() {
    let app = TestApp::spawn().await;
    for path in ["/api/config/integrations", "/api/config/nowhere", "/health"] {
        let r = app.get(path).await;
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(h.contains_key("referrer-policy"));
        assert!(
            h["content-security-policy"]
                .to_str()
                .expect("csp")
                .contains("default-src 'none'")
        );
        assert_eq!(h["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn a_body_past_the_limit_is_413() {
    let app = TestApp::spawn_with(|v| {
        v.insert("REQUEST_BODY_LIMIT_BYTES".into(), "1024".into());
    })
    .await;
    let big = json!({"settings": {"client_id": "x".repeat(4096)}});
    let p = problem(
        app.put_json("/api/config/integrations/hubspot/sandbox", &big)
            .await,
        413,
    )
    .await;
    assert_eq!(p["code"], "payload_too_large");
    let configs: i64 = sqlx::query_scalar("SELECT count(*) FROM integration_configs")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(configs, 0);
}

#[tokio::test]
async fn a_client_past_its_rate_is_429_with_retry_after() {
    let app = TestApp::spawn_with(|v| {
        v.insert("CONFIGURATION_API_RATE_LIMIT".into(), "1".into());
        v.insert("CONFIGURATION_API_RATE_BURST".into(), "3".into());
    })
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..6 {
        let r = app.get("/api/config/integrations").await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            limited = Some(r);
        }
    }
    assert_eq!(&statuses[..3], [200, 200, 200]);
    let r = limited.expect("a 429 after the burst");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    assert_eq!(problem(r, 429).await["code"], "rate_limited");
    // Health is not rate limited.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::spawn_with(|v| {
        v.insert(
            "CORS_ALLOWED_ORIGINS".into(),
            "https://dashboard.example.com".into(),
        );
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                app.url("/api/config/integrations"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let ok = preflight("https://dashboard.example.com")
        .await
        .expect("send");
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://dashboard.example.com"
    );
    let other = preflight("https://evil.example.net").await.expect("send");
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn the_openapi_spec_matches_its_snapshot_and_the_docs_are_served() {
    let app = TestApp::spawn().await;
    let spec: Value = app
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    assert!(
        spec["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1")
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");
    let rendered = serde_json::to_string_pretty(&spec).expect("render") + "\n";
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(path, &rendered).expect("write snapshot");
    }
    let snapshot = std::fs::read_to_string(path)
        .expect("snapshot exists; run with UPDATE_SNAPSHOTS=1 to create it");
    assert_eq!(
        rendered, snapshot,
        "the API changed: review the diff and run with UPDATE_SNAPSHOTS=1"
    );

    let docs = app.get("/api/docs").await;
    assert_eq!(docs.status(), 200);
    assert!(
        docs.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    let index: Value = app.get("/api").await.json().await.expect("json");
    assert_eq!(index["openapi"], "/api/openapi.json");
    assert_eq!(index["docs"], "/api/docs");
}

#[tokio::test]
async fn an_unreachable_database_is_503_with_retry_after_and_the_service_recovers() {
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    let db = TestDb::new().await;
    let via_proxy = db.url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    let mut vars = base_vars(&via_proxy);
    vars.insert("REQUEST_TIMEOUT_SECS".into(), "10".into());
    let (address, stop) = start(&vars).await.expect("start");
    let client = reqwest::Client::new();
    let admin = vars["ADMIN_API_TOKEN"].clone();
    let put = || {
        client
            .put(format!("{address}/api/config/integrations/stripe/sandbox"))
            .bearer_auth(&admin)
            .json(&json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
            .send()
    };
    assert_eq!(put().await.expect("send").status(), 201);

    proxy.cut().await;
    let r = put().await.expect("send");
    assert!(r.headers().contains_key("retry-after"));
    let p = problem(r, 503).await;
    assert_eq!(p["code"], "service_unavailable");
    let ready = client
        .get(format!("{address}/health/ready"))
        .send()
        .await
        .expect("send");
    assert_eq!(ready.status(), 503);

    proxy.restore().await;
    // The pool reconnects on its own.
    eventually(
        "the service to recover after the database came back",
        Duration::from_secs(5),
        async || (put().await.expect("send").status() == 200).then_some(()),
    )
    .await;
    stop.cancel();
}

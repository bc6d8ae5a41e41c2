//! Bearer tokens and roles.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, problem};

const CONFIG: &str = "/api/config/integrations/stripe/sandbox";

#[tokio::test]
async fn missing_unknown_and_revoked_tokens_get_the_same_401() {
    let app = TestApp::spawn().await;
    let viewer = app.token("viewer").await;
    let tokens: Vec<Value> = app
        .get("/api/config/api-tokens")
        .await
        .json()
        .await
        .expect("json");
    let id = tokens[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.delete(&format!("/api/config/api-tokens/{id}"))
            .await
            .status(),
        204
    );

    let mut bodies = Vec::new();
    for token in [None, Some("hsq_not-a-real-token"), Some(viewer.as_str())] {
        let mut req = app.client.get(app.url("/api/config/integrations"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("send");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let mut p = problem(r, 401).await;
        p.as_object_mut().expect("object").remove("request_id");
        bodies.push(p);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}

#[tokio::test]
async fn each_role_reaches_only_what_it_needs_and_refusals_are_audited() {
    let app = TestApp::spawn().await;
    app.put_json(CONFIG, &json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
        .await;
    let viewer = app.token("viewer").await;
    let service = app.token("service").await;
    let reveal = format!("{CONFIG}/reveal");

    let cases: Vec<(&str, Method, &str, u16)> = vec![
        (&viewer, Method::GET, CONFIG, 200),
        (&viewer, Method::GET, "/api/config/audit", 200),
        (&viewer, Method::GET, "/api/config/status", 200),
        (&viewer, Method::POST, &reveal, 403),
        (&viewer, Method::PUT, CONFIG, 403),
        (&viewer, Method::DELETE, CONFIG, 403),
        (&viewer, Method::GET, "/api/config/api-tokens", 403),
        (&service, Method::POST, &reveal, 200),
        (&service, Method::GET, CONFIG, 200),
        (&service, Method::PUT, CONFIG, 403),
        (&service, Method::GET, "/api/config/audit", 403),
        (&service, Method::POST, "/api/config/api-tokens", 403),
    ];
    for (token, method, path, status) in cases {
        let r = app
            .request(method.clone(), path, token)
            .json(&json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), status, "{method} {path}");
        if status == 403 {
            assert_eq!(problem(r, 403).await["code"], "forbidden");
        }
    }
    assert_eq!(app.audit_count("secret_revealed", Some(false)).await, 1);
    assert_eq!(app.audit_count("secret_revealed", Some(true)).await, 1);
    assert_eq!(app.audit_count("config_replaced", Some(false)).await, 2);
    assert_eq!(app.audit_count("config_deleted", Some(false)).await, 1);
    // The config is as the admin left it.
    let body: Value = app.get(CONFIG).await.json().await.expect("json");
    assert_eq!(body["version"], 1);
}

#[tokio::test]
async fn tokens_are_shown_once_and_stored_only_as_a_hash() {
    let app = TestApp::spawn().await;
    let r = app
        .post_json(
            "/api/config/api-tokens",
            &json!({"name": "sync-worker", "role": "service"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("json");
    let token = created["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("hsq_") && token.len() >= 40);

    let listed = app
        .get("/api/config/api-tokens")
        .await
        .text()
        .await
        .expect("body");
    assert!(!listed.contains(&token));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_one(&app.db.pool)
        .await
        .expect("row");
    assert_eq!(stored.len(), 32);
    let audit: String = sqlx::query_scalar(
        "SELECT details::text FROM configuration_audit_logs WHERE action = 'api_token_created'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("audit");
    assert!(!audit.contains(&token));

    // Same name while active → 409; bad role → 422 naming the field.
    problem(
        app.post_json(
            "/api/config/api-tokens",
            &json!({"name": "sync-worker", "role": "viewer"}),
        )
        .await,
        409,
    )
    .await;
    let p = problem(
        app.post_json(
            "/api/config/api-tokens",
            &json!({"name": "x", "role": "root"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "role");

    // The new token works, and stops working once revoked.
    let r = app
        .request(Method::POST, &format!("{CONFIG}/reveal"), &token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404, "authenticated; nothing configured yet");
    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM api_tokens WHERE name = 'sync-worker'")
            .fetch_one(&app.db.pool)
            .await
            .expect("row");
    assert!(used.is_some(), "use of a token is recorded");
    let id = created["id"].as_str().expect("id");
    assert_eq!(
        app.delete(&format!("/api/config/api-tokens/{id}"))
            .await
            .status(),
        204
    );
    let r = app
        .request(Method::POST, &format!("{CONFIG}/reveal"), &token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(app.audit_count("api_token_revoked", Some(true)).await, 1);
}

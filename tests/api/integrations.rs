//! The integration-config API: CRUD, masking, reveal, preconditions and validation.

use serde_json::{Value, json};

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, fields, problem};

const HUBSPOT_TOKEN: &str = "pat-na1-11111111-2222-3333-4444-canary555555";
const QB_SECRET: &str = "qbSecretCanary0123456789abcdefXYZ";

fn sample(provider: &str) -> (Value, Vec<&'static str>) {
    match provider {
        "stripe" => (
            json!({"enabled": true,
                   "settings": {"publishable_key": "pk_test_abcdefghijklmnop", "account_id": "acct_123", "api_version": "2024-06-20"},
                   "secrets": {"secret_key": STRIPE_TEST_KEY, "webhook_secret": "whsec_canaryWebhookSecret987"}}),
            vec![STRIPE_TEST_KEY, "whsec_canaryWebhookSecret987"],
        ),
        "hubspot" => (
            json!({"settings": {"client_id": "cid-1", "app_id": "12345", "portal_id": 987654, "scopes": ["crm.objects.contacts.read"]},
                   "secrets": {"client_secret": "hubspotClientSecretCanary42", "private_app_token": HUBSPOT_TOKEN}}),
            vec!["hubspotClientSecretCanary42", HUBSPOT_TOKEN],
        ),
        _ => (
            json!({"settings": {"client_id": "ABclientid", "realm_id": "9130350000000000", "minor_version": "75"},
                   "secrets": {"client_secret": QB_SECRET}}),
            vec![QB_SECRET],
        ),
    }
}

#[tokio::test]
async fn each_provider_round_trips_with_secrets_masked_everywhere_but_reveal() {
    let app = TestApp::spawn().await;
    for provider in ["stripe", "hubspot", "quickbooks"] {
        let path = format!("/api/config/integrations/{provider}/sandbox");
        let (body, plaintexts) = sample(provider);

        let created = app.put_json(&path, &body).await;
        assert_eq!(created.status(), 201, "{provider} create");
        assert_eq!(created.headers()["etag"], "\"1\"");
        assert_eq!(created.headers()["cache-control"], "no-store");
        let created = created.text().await.expect("body");

        let read = app.get(&path).await;
        assert_eq!(read.status(), 200);
        assert_eq!(read.headers()["etag"], "\"1\"");
        let read_text = read.text().await.expect("body");
        let list_text = app
            .get("/api/config/integrations")
            .await
            .text()
            .await
            .expect("body");
        for secret in &plaintexts {
            for (what, text) in [
                ("create", &created),
                ("read", &read_text),
                ("list", &list_text),
            ] {
                assert!(
                    !text.contains(secret),
                    "{provider} {what} response holds a plaintext secret"
                );
            }
        }
        let read: Value = serde_json::from_str(&read_text).expect("json");
        assert_eq!(read["provider"], provider);
        for (name, masked) in read["secrets"].as_object().expect("secrets") {
            let masked = masked.as_str().expect("masked string");
            assert!(
                masked.contains("***"),
                "{provider}.{name} is masked: {masked}"
            );
        }

        let revealed = app
            .request(
                reqwest::Method::POST,
                &format!("{path}/reveal"),
                &app.admin_token,
            )
            .send()
            .await
            .expect("reveal");
        assert_eq!(revealed.status(), 200);
        assert_eq!(revealed.headers()["cache-control"], "no-store");
        let revealed: Value = revealed.json().await.expect("json");
        assert_eq!(
            revealed["secrets"], body["secrets"],
            "{provider} reveal returns the plaintext"
        );

        // Replace keeps the id, bumps the version.
        let replaced = app.put_json(&path, &body).await;
        assert_eq!(replaced.status(), 200);
        assert_eq!(replaced.headers()["etag"], "\"2\"");

        let deleted = app.delete(&path).await;
        assert_eq!(deleted.status(), 204);
        problem(app.get(&path).await, 404).await;
    }
    assert_eq!(app.audit_count("config_created", Some(true)).await, 3);
    assert_eq!(app.audit_count("config_replaced", Some(true)).await, 3);
    assert_eq!(app.audit_count("secret_revealed", Some(true)).await, 3);
    assert_eq!(app.audit_count("config_deleted", Some(true)).await, 3);
}

#[tokio::test]
async fn quickbooks_gets_its_default_scope() {
    let app = TestApp::spawn().await;
    let r = app
        .put_json(
            "/api/config/integrations/quickbooks/production",
            &json!({"settings": {"realm_id": "123"}}),
        )
        .await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["settings"]["scopes"],
        "com.intuit.quickbooks.accounting"
    );
}

#[tokio::test]
async fn merge_patch_changes_only_what_it_names() {
    let app = TestApp::spawn().await;
    let path = "/api/config/integrations/stripe/sandbox";
    app.put_json(path, &sample("stripe").0).await;

    let r = app
        .patch_json(path, &json!({"enabled": false, "settings": {"account_id": null}, "secrets": {"webhook_secret": null}}))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["enabled"], false);
    assert_eq!(body["version"], 2);
    assert!(body["settings"].get("account_id").is_none());
    assert_eq!(
        body["settings"]["publishable_key"],
        "pk_test_abcdefghijklmnop"
    );
    assert!(body["secrets"].get("webhook_secret").is_none());
    assert!(body["secrets"].get("secret_key").is_some());

    let revealed: Value = app
        .post_json(&format!("{path}/reveal"), &json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(revealed["secrets"], json!({"secret_key": STRIPE_TEST_KEY}));

    // The audit row names the changed fields, with plain values only for settings.
    let details: Value = sqlx::query_scalar(
        "SELECT details FROM configuration_audit_logs WHERE action = 'config_patched'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("audit row");
    let changed: Vec<&str> = details["changed_fields"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        changed,
        ["enabled", "secrets.webhook_secret", "settings.account_id"]
    );
    assert_eq!(
        details["changes"]["settings.account_id"]["before"],
        "acct_123"
    );
    assert!(!details.to_string().contains("whsec_"));

    problem(
        app.patch_json(
            "/api/config/integrations/hubspot/sandbox",
            &json!({"enabled": true}),
        )
        .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn a_stale_if_match_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let path = "/api/config/integrations/stripe/sandbox";
    app.put_json(path, &sample("stripe").0).await;
    app.patch_json(path, &json!({"enabled": false})).await; // version 2

    for (method, body) in [
        (reqwest::Method::PUT, sample("stripe").0),
        (reqwest::Method::PATCH, json!({"enabled": true})),
    ] {
        let r = app
            .request(method.clone(), path, &app.admin_token)
            .header("if-match", "\"1\"")
            .json(&body)
            .send()
            .await
            .expect("send");
        let p = problem(r, 412).await;
        assert_eq!(p["code"], "precondition_failed", "{method}");
    }
    let r = app
        .request(reqwest::Method::DELETE, path, &app.admin_token)
        .header("if-match", "\"1\"")
        .send()
        .await
        .expect("send");
    problem(r, 412).await;

    let current: Value = app.get(path).await.json().await.expect("json");
    assert_eq!(current["version"], 2);
    assert_eq!(current["enabled"], false);

    let r = app
        .request(reqwest::Method::PATCH, path, &app.admin_token)
        .header("if-match", "\"2\"")
        .json(&json!({"enabled": true}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(app.audit_count("config_patched", Some(false)).await, 1);
}

#[tokio::test]
async fn each_bad_input_class_is_422_with_the_field_named_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let stripe = "/api/config/integrations/stripe/sandbox";
    app.put_json(stripe, &sample("stripe").0).await;
    let before: Value = app.get(stripe).await.json().await.expect("json");

    let cases = [
        (
            stripe,
            json!({"secrets": {"secret_key": "sk_live_51LiveKeyInSandbox0000"}}),
            "secrets.secret_key",
        ),
        (
            "/api/config/integrations/stripe/production",
            json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}),
            "secrets.secret_key",
        ),
        (
            stripe,
            json!({"secrets": {"secret_key": "pk_test_wrongPrefix00000000"}}),
            "secrets.secret_key",
        ),
        (
            stripe,
            json!({"settings": {"account_id": "12345"}}),
            "settings.account_id",
        ),
        (
            stripe,
            json!({"settings": {"publishable_key": "pk_live_abcdefghijklmnop"}}),
            "settings.publishable_key",
        ),
        (
            stripe,
            json!({"settings": {"colour": "blue"}}),
            "settings.colour",
        ),
        (
            stripe,
            json!({"settings": {"secret_key": STRIPE_TEST_KEY}}),
            "settings.secret_key",
        ),
        (
            stripe,
            json!({"secrets": {"webhook_secret": "nothook_123456789"}}),
            "secrets.webhook_secret",
        ),
        (stripe, json!({"surprise": true}), "surprise"),
        (stripe, json!({"enabled": "yes"}), "enabled"),
        (
            "/api/config/integrations/hubspot/sandbox",
            json!({"secrets": {"private_app_token": "token-without-prefix"}}),
            "secrets.private_app_token",
        ),
        (
            "/api/config/integrations/quickbooks/sandbox",
            json!({"settings": {"realm_id": "abc"}}),
            "settings.realm_id",
        ),
    ];
    for (path, body, field) in cases {
        let p = problem(app.put_json(path, &body).await, 422).await;
        assert_eq!(p["code"], "validation_failed");
        assert!(
            fields(&p).contains(&field.to_owned()),
            "{body} → {:?}",
            fields(&p)
        );
        assert!(
            !p.to_string().contains("sk_live_51Live"),
            "the error echoes no value"
        );
    }
    let p = problem(
        app.patch_json(
            stripe,
            &json!({"secrets": {"secret_key": "sk_live_51LiveKeyInSandbox0000"}}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(fields(&p), ["secrets.secret_key"]);

    let after: Value = app.get(stripe).await.json().await.expect("json");
    assert_eq!(before, after, "refused input changed nothing");
    let configs: i64 = sqlx::query_scalar("SELECT count(*) FROM integration_configs")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(configs, 1);
    assert_eq!(app.audit_count("config_replaced", Some(false)).await, 12);

    // Malformed JSON and a wrong content type are refused too.
    let r = app
        .request(reqwest::Method::PUT, stripe, &app.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    problem(r, 400).await;
    let r = app
        .request(reqwest::Method::PUT, stripe, &app.admin_token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("send");
    problem(r, 415).await;
    // Unknown provider or environment in the path.
    problem(
        app.put_json("/api/config/integrations/xero/sandbox", &json!({}))
            .await,
        404,
    )
    .await;
    problem(
        app.get("/api/config/integrations/stripe/staging").await,
        404,
    )
    .await;
}

#[tokio::test]
async fn replicas_share_state_through_the_database() {
    let app = TestApp::spawn().await;
    let (other, stop) = app.sibling().await;
    app.put_json(
        "/api/config/integrations/stripe/sandbox",
        &sample("stripe").0,
    )
    .await;
    let r = app
        .client
        .get(format!("{other}/api/config/integrations/stripe/sandbox"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"1\"");
    stop.cancel();
}

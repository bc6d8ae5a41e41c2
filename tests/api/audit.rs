//! The audit log: filters, pagination, and changes that cannot be audited do not happen.

use serde_json::{Value, json};

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, problem};

async fn page(app: &TestApp, query: &str) -> Value {
    let r = app.get(&format!("/api/config/audit?{query}")).await;
    assert_eq!(r.status(), 200, "{query}");
    r.json().await.expect("json")
}

fn actions(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn filters_and_cursor_pagination_walk_the_log_newest_first() {
    let app = TestApp::spawn().await;
    let stripe = "/api/config/integrations/stripe/sandbox";
    let qb = "/api/config/integrations/quickbooks/production";
    app.put_json(stripe, &json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
        .await;
    app.put_json(qb, &json!({"settings": {"realm_id": "42"}}))
        .await;
    for _ in 0..3 {
        app.post_json(&format!("{stripe}/reveal"), &json!({})).await;
    }
    app.put_json(stripe, &json!({"secrets": {"secret_key": "sk_live_x"}}))
        .await; // refused
    app.delete(qb).await;

    let all = page(&app, "limit=500").await;
    assert_eq!(
        actions(&all),
        [
            "config_deleted",
            "config_replaced",
            "secret_revealed",
            "secret_revealed",
            "secret_revealed",
            "config_created",
            "config_created"
        ]
    );
    let first = &all["items"][6];
    assert_eq!(first["actor"], "bootstrap-admin");
    assert_eq!(first["actor_ip"], "127.0.0.1");
    assert!(first["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(first["user_agent"].is_string() || first["user_agent"].is_null());

    // Walk two at a time: same rows, same order, then no cursor.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_owned(),
        };
        let p = page(&app, &q).await;
        walked.extend(actions(&p));
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, actions(&all));

    assert_eq!(
        actions(&page(&app, "provider=quickbooks").await),
        ["config_deleted", "config_created"]
    );
    assert_eq!(
        page(&app, "action=secret_revealed&environment=sandbox").await["items"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        actions(&page(&app, "success=false").await),
        ["config_replaced"]
    );
    assert_eq!(
        page(&app, "actor=nobody").await["items"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        page(&app, "resource_id=quickbooks/production").await["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        page(&app, "since=2999-01-01T00:00:00Z").await["items"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        page(&app, "until=2000-01-01T00:00:00Z").await["items"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );

    for (query, field) in [
        ("limit=501", "limit"),
        ("cursor=garbage", "cursor"),
        ("since=yesterday", "since"),
        ("success=maybe", "success"),
        ("provider=xero", "provider"),
        ("colour=red", "colour"),
    ] {
        let p = problem(app.get(&format!("/api/config/audit?{query}")).await, 422).await;
        assert_eq!(p["errors"][0]["field"], field, "{query}");
    }
}

/// The body of `GET /api/config/audit?limit=500` from the instance at `base`.
async fn listing(app: &TestApp, base: &str) -> String {
    let r = app
        .client
        .get(format!("{base}/api/config/audit?limit=500"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("GET audit");
    assert_eq!(r.status(), 200);
    r.text().await.expect("body")
}

/// A process renders each row once and keeps it (audit rows never change): the same page
/// reads the same from a cold and a warm cache and from another instance; a row that is gone
/// leaves every page at once, because which rows a page holds is always read from the table;
/// an edit made in the database behind the service's back shows only where the row was not
/// rendered yet.
#[tokio::test]
async fn each_row_is_rendered_once_and_a_page_holds_only_rows_still_in_the_table() {
    let app = TestApp::spawn().await;
    let stripe = "/api/config/integrations/stripe/sandbox";
    app.put_json(stripe, &json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
        .await;
    for _ in 0..3 {
        app.post_json(&format!("{stripe}/reveal"), &json!({})).await;
    }
    let cold = listing(&app, &app.url("")).await;
    assert_eq!(listing(&app, &app.url("")).await, cold, "warm equals cold");
    let (sibling, stop_sibling) = app.sibling().await;
    assert_eq!(
        listing(&app, &sibling).await,
        cold,
        "another process renders the same"
    );

    let newest: i64 = sqlx::query_scalar("SELECT max(id) FROM configuration_audit_logs")
        .fetch_one(&app.db.pool)
        .await
        .expect("newest row");
    sqlx::query("UPDATE configuration_audit_logs SET actor_name = 'mallory' WHERE id = $1")
        .bind(newest)
        .execute(&app.db.pool)
        .await
        .expect("edit behind the service's back");
    assert_eq!(
        listing(&app, &app.url("")).await,
        cold,
        "rendered once, kept"
    );
    let (fresh, stop_fresh) = app.sibling().await;
    let edited: Value = serde_json::from_str(&listing(&app, &fresh).await).expect("json");
    assert_eq!(edited["items"][0]["id"], newest);
    assert_eq!(
        edited["items"][0]["actor"], "mallory",
        "a new process reads the table"
    );

    let oldest: i64 = sqlx::query_scalar("SELECT min(id) FROM configuration_audit_logs")
        .fetch_one(&app.db.pool)
        .await
        .expect("oldest row");
    sqlx::query("DELETE FROM configuration_audit_logs WHERE id = $1")
        .bind(oldest)
        .execute(&app.db.pool)
        .await
        .expect("delete a row");
    for base in [app.url(""), sibling] {
        let after: Value = serde_json::from_str(&listing(&app, &base).await).expect("json");
        let ids: Vec<i64> = after["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["id"].as_i64())
            .collect();
        assert_eq!(ids.len(), 3, "{base}: {ids:?}");
        assert!(!ids.contains(&oldest), "{base}: the deleted row is gone");
    }
    stop_sibling.cancel();
    stop_fresh.cancel();
}

#[tokio::test]
async fn when_the_audit_row_cannot_be_written_the_change_is_rolled_back_with_503() {
    let app = TestApp::spawn().await;
    let path = "/api/config/integrations/stripe/sandbox";
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'audit storage unavailable'; END $$;
         CREATE TRIGGER refuse_audit BEFORE INSERT ON configuration_audit_logs
           FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
    )
    .execute(&app.db.pool)
    .await
    .expect("install trigger");

    let r = app
        .put_json(path, &json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
        .await;
    assert!(r.headers().contains_key("retry-after"));
    let p = problem(r, 503).await;
    assert_eq!(p["code"], "audit_unavailable");
    assert!(
        !p.to_string().contains("audit storage unavailable"),
        "no internals in a 5xx body"
    );
    let configs: i64 = sqlx::query_scalar("SELECT count(*) FROM integration_configs")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(configs, 0, "the change was rolled back");

    sqlx::raw_sql("DROP TRIGGER refuse_audit ON configuration_audit_logs")
        .execute(&app.db.pool)
        .await
        .expect("drop trigger");
    assert_eq!(
        app.put_json(path, &json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
            .await
            .status(),
        201
    );

    // A reveal that cannot be audited returns no secret.
    sqlx::raw_sql("CREATE TRIGGER refuse_audit BEFORE INSERT ON configuration_audit_logs FOR EACH ROW EXECUTE FUNCTION refuse_audit()")
        .execute(&app.db.pool)
        .await
        .expect("trigger again");
    let r = app.post_json(&format!("{path}/reveal"), &json!({})).await;
    let body = r.text().await.expect("body");
    assert!(!body.contains(STRIPE_TEST_KEY));
    assert!(body.contains("audit_unavailable"));

    // A patch, whose audit row rides on its UPDATE, is refused whole.
    let r = app
        .patch_json(path, &json!({"settings": {"account_id": "acct_unaudited"}}))
        .await;
    assert_eq!(problem(r, 503).await["code"], "audit_unavailable");
    let stored = app.get(path).await.json::<Value>().await.expect("config");
    assert_eq!(stored["version"], 1, "{stored}");
    assert!(stored["settings"].get("account_id").is_none(), "{stored}");
}

//! The audited read path at scale: bursts from two instances keep a verifiable chain, a
//! `kill -9` mid-burst loses no audit row of a secret that left, and the in-process caches of
//! one instance learn at once of a change made through another, or are flushed when the
//! connection that would have told them is lost.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::fake_oauth::FakeProvider;
use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, TestDb, base_vars};
use crate::support::oauth_support::{configure, connect, spawn};
use crate::support::ops::{cli, command, text};
use crate::support::wait::eventually;

const STRIPE: &str = "/api/config/integrations/stripe/sandbox";

async fn audited_request_ids(db: &sqlx::PgPool, action: &str) -> HashSet<String> {
    sqlx::query_scalar::<_, Option<String>>(
        "SELECT request_id FROM configuration_audit_logs WHERE action = $1 AND success",
    )
    .bind(action)
    .fetch_all(db)
    .await
    .expect("audit rows")
    .into_iter()
    .flatten()
    .collect()
}

#[tokio::test]
async fn a_burst_of_reveals_tokens_and_patches_from_two_instances_keeps_a_verifiable_chain() {
    let fake = FakeProvider::start().await;
    let app = spawn(&fake, |_| {}).await;
    configure(&app, &app.address, "quickbooks").await;
    connect(&app, "quickbooks").await;
    let body = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(STRIPE, &body).await.status(), 201);
    let service = app.token("service").await;
    let (sibling, stop_sibling) = app.sibling().await;

    let ok: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let base = if worker % 2 == 0 {
            app.url("")
        } else {
            sibling.clone()
        };
        let (client, admin, service, ok) = (
            app.client.clone(),
            app.admin_token.clone(),
            service.clone(),
            ok.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                let id = format!("burst-{worker}-{i}");
                let (action, request) = match i % 3 {
                    0 => (
                        "secret_revealed",
                        client
                            .post(format!("{base}{STRIPE}/reveal"))
                            .bearer_auth(&service),
                    ),
                    1 => (
                        "token_retrieved",
                        client
                            .post(format!(
                                "{base}/api/config/quickbooks/token?environment=sandbox"
                            ))
                            .bearer_auth(&service),
                    ),
                    _ => (
                        "config_patched",
                        client
                            .patch(format!("{base}{STRIPE}"))
                            .bearer_auth(&admin)
                            .json(
                                &json!({"settings": {"account_id": format!("acct_{worker}{i}")}}),
                            ),
                    ),
                };
                let status = request
                    .header("x-request-id", &id)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                if matches!(status, Ok(200)) {
                    ok.lock().expect("lock").push((action.to_owned(), id));
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    stop_sibling.cancel();

    let ok = ok.lock().expect("lock").clone();
    assert_eq!(ok.len(), 16 * 15, "every request of the burst succeeded");
    for action in ["secret_revealed", "token_retrieved", "config_patched"] {
        let audited = audited_request_ids(&app.db.pool, action).await;
        for (a, id) in ok.iter().filter(|(a, _)| a == action) {
            assert!(audited.contains(id), "{a} {id} has no audit row");
        }
    }
    let vars = app.vars.clone();
    let out = tokio::task::spawn_blocking(move || cli(&vars, &["audit", "verify"]))
        .await
        .expect("verify ran");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn after_kill_9_mid_burst_every_revealed_secret_has_its_audit_row() {
    let db = TestDb::new().await;
    let mut vars = base_vars(&db.url);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    vars.insert("PORT".into(), port.to_string());
    let mut child = command(&vars, &["serve"])
        .spawn()
        .expect("spawn the binary");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    eventually(
        "the binary to become ready",
        Duration::from_secs(30),
        async || {
            let r = client
                .get(format!("{base}/health/ready"))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
    let admin = vars["ADMIN_API_TOKEN"].clone();
    let r = client
        .put(format!("{base}{STRIPE}"))
        .bearer_auth(&admin)
        .json(&json!({"secrets": {"secret_key": STRIPE_TEST_KEY}}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 201);

    let revealed: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (client, base, admin, revealed) = (
            client.clone(),
            base.clone(),
            admin.clone(),
            revealed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("kill-{worker}-{i}");
                let r = client
                    .post(format!("{base}{STRIPE}/reveal"))
                    .bearer_auth(&admin)
                    .header("x-request-id", &id)
                    .send()
                    .await;
                let Ok(r) = r else { break };
                let status = r.status();
                let Ok(body) = r.text().await else { break };
                if status == 200 && body.contains(STRIPE_TEST_KEY) {
                    revealed.lock().expect("lock").push(id);
                }
            }
        }));
    }
    eventually(
        "a good part of the burst to be answered",
        Duration::from_secs(30),
        async || (revealed.lock().expect("lock").len() >= 100).then_some(()),
    )
    .await;
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    for task in tasks {
        task.await.expect("worker");
    }

    let revealed = revealed.lock().expect("lock").clone();
    let audited = audited_request_ids(&db.pool, "secret_revealed").await;
    let missing: Vec<&String> = revealed
        .iter()
        .filter(|id| !audited.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} secrets that left have no audit row: {missing:?}",
        missing.len(),
        revealed.len()
    );
    let out = tokio::task::spawn_blocking(move || cli(&vars, &["audit", "verify"]))
        .await
        .expect("verify ran");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn a_change_on_one_instance_is_seen_at_once_by_another_despite_its_caches() {
    // Entries would live a minute: only the invalidation can make the other instance see
    // the change within the bound of this test.
    let app = TestApp::spawn_with(|vars| {
        vars.insert("CACHE_TTL_SECS".into(), "60".into());
    })
    .await;
    let body = json!({"settings": {"account_id": "acct_before"}, "secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(STRIPE, &body).await.status(), 201);
    let viewer = app.token("viewer").await;
    let (sibling, stop_sibling) = app.sibling().await;
    let read = |token: String| {
        let (client, sibling) = (app.client.clone(), sibling.clone());
        async move {
            client
                .request(Method::GET, format!("{sibling}{STRIPE}"))
                .bearer_auth(token)
                .send()
                .await
                .expect("GET")
        }
    };
    // Warm the sibling's caches: the token and the config are now held there.
    for _ in 0..3 {
        assert_eq!(read(viewer.clone()).await.status(), 200);
    }

    let patch = json!({"settings": {"account_id": "acct_after"}});
    assert_eq!(app.patch_json(STRIPE, &patch).await.status(), 200);
    eventually(
        "the sibling to serve the changed config",
        Duration::from_secs(5),
        async || {
            let view: Value = read(viewer.clone()).await.json().await.ok()?;
            (view["settings"]["account_id"] == "acct_after").then_some(())
        },
    )
    .await;

    let tokens: Value = app
        .get("/api/config/api-tokens")
        .await
        .json()
        .await
        .expect("tokens");
    let id = tokens
        .as_array()
        .and_then(|t| t.iter().find(|t| t["role"] == "viewer"))
        .and_then(|t| t["id"].as_str())
        .expect("the viewer token")
        .to_owned();
    assert_eq!(
        app.delete(&format!("/api/config/api-tokens/{id}"))
            .await
            .status(),
        204
    );
    eventually(
        "the sibling to refuse the revoked token",
        Duration::from_secs(5),
        async || (read(viewer.clone()).await.status() == 401).then_some(()),
    )
    .await;
    stop_sibling.cancel();
}

#[tokio::test]
async fn a_lost_invalidation_connection_flushes_the_caches() {
    let app = TestApp::spawn_with(|vars| {
        vars.insert("CACHE_TTL_SECS".into(), "60".into());
    })
    .await;
    let body = json!({"settings": {"account_id": "acct_cached"}, "secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(STRIPE, &body).await.status(), 201);
    app.caches_live(1).await;
    let account = async || -> Value {
        let view: Value = app.get(STRIPE).await.json().await.expect("view");
        view["settings"]["account_id"].clone()
    };
    assert_eq!(account().await, "acct_cached", "the config is now cached");

    // A change whose notification never arrives: triggers are off in this session, as if it
    // had been sent while the listener's connection was down.
    let mut conn = app.db.pool.acquire().await.expect("connection");
    sqlx::raw_sql(
        "SET session_replication_role = replica;
         UPDATE integration_configs SET settings = settings || '{\"account_id\": \"acct_missed\"}';
         RESET session_replication_role;",
    )
    .execute(&mut *conn)
    .await
    .expect("silent update");
    drop(conn);
    assert_eq!(
        account().await,
        "acct_cached",
        "without a notification the cache still answers"
    );

    // The listener's connection dies. Whatever it missed, the caches must not outlive it.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("terminate the listener");
    assert!(!killed.is_empty(), "the listener's connection was found");
    eventually(
        "the caches to be flushed after the listener lost its connection",
        Duration::from_secs(5),
        async || (account().await == "acct_missed").then_some(()),
    )
    .await;
}

#[tokio::test]
async fn the_status_page_of_another_instance_follows_a_change_despite_its_cache() {
    let app = TestApp::spawn_with(|vars| {
        vars.insert("CACHE_TTL_SECS".into(), "60".into());
    })
    .await;
    let body = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(STRIPE, &body).await.status(), 201);
    let (sibling, stop_sibling) = app.sibling().await;
    app.caches_live(2).await;
    let version = async || -> Value {
        let status: Value = app
            .client
            .get(format!("{sibling}/api/config/status"))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        status["integrations"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|i| i["provider"] == "stripe" && i["environment"] == "sandbox")
            })
            .map(|i| i["version"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(version().await, 1);
    // A change that notifies nobody (triggers off in this session): the sibling keeps
    // answering from its cache.
    sqlx::raw_sql(
        "SET session_replication_role = replica;
         UPDATE integration_configs SET version = 41;
         RESET session_replication_role;",
    )
    .execute(&mut *app.db.pool.acquire().await.expect("connection"))
    .await
    .expect("silent update");
    assert_eq!(version().await, 1, "the status rows come from the cache");

    let patch = json!({"settings": {"account_id": "acct_status"}});
    assert_eq!(app.patch_json(STRIPE, &patch).await.status(), 200);
    eventually(
        "the sibling's status page to show the new version",
        Duration::from_secs(5),
        async || (version().await == 42).then_some(()),
    )
    .await;
    stop_sibling.cancel();
}

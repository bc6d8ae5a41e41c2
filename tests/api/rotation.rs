//! Key rotation while the service serves: interrupted with kill -9, resumed, then the old key
//! retired.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::support::helpers::{TestApp, random_key, start};
use crate::support::ops::{
    HUBSPOT_PAT, HUBSPOT_SECRET, WEBHOOK_SECRET, cli, command, keyring, picture, populate, text,
};

async fn values_per_key(app: &TestApp) -> Vec<(String, i64)> {
    hsq_config::store::keyring::values_per_key_id(&app.db.pool)
        .await
        .expect("counts")
}

// Multi-threaded: the serving replica and the load keep running while the test blocks on
// the rotation process.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_survives_kill_9_while_the_api_serves_and_the_old_key_can_then_be_retired() {
    let key_a = random_key();
    let key_b = random_key();
    let app = TestApp::spawn_with(|vars| {
        vars.insert("ENCRYPTION_KEY".into(), key_a.clone());
    })
    .await;
    populate(&app).await;
    for i in 0..120 {
        let body = json!({"url": format!("https://hooks.example.com/{i}"), "events": ["config.updated"],
                          "secret": format!("{WEBHOOK_SECRET}-{i}")});
        assert_eq!(
            app.post_json("/api/config/webhooks", &body).await.status(),
            201
        );
    }
    let id_a = keyring(&app.vars).current_id().to_string();

    // Every replica now runs with B current and A previous; one of them serves the load.
    let mut vars_b = app.vars.clone();
    vars_b.insert("ENCRYPTION_KEY".into(), key_b.clone());
    vars_b.insert("ENCRYPTION_KEYS_PREVIOUS".into(), key_a.clone());
    let keys_b = keyring(&vars_b);
    let id_b = keys_b.current_id().to_string();
    let (serving, stop_serving) = start(&vars_b).await.expect("the B replica starts");
    let before = picture(&app, &serving, &keys_b).await;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let load = {
        let (client, token, stop, done, serving) = (
            app.client.clone(),
            app.admin_token.clone(),
            stop.clone(),
            done.clone(),
            serving.clone(),
        );
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let write = client
                    .patch(format!(
                        "{serving}/api/config/integrations/quickbooks/sandbox"
                    ))
                    .bearer_auth(&token)
                    .json(&json!({"settings": {"minor_version": n.to_string()}}))
                    .send()
                    .await;
                let read = client
                    .post(format!(
                        "{serving}/api/config/integrations/hubspot/production/reveal"
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await;
                for (what, r) in [("write", write), ("reveal", read)] {
                    match r {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => failures.push(format!("{what}: {}", r.status())),
                        Err(e) => failures.push(format!("{what}: {e}")),
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            failures
        })
    };

    // First run: one value per batch; after the first committed batch, hold audit inserts so
    // the next batch cannot commit, then kill -9 it mid-transaction.
    let mut child = command(&vars_b, &["rotate-key", "--batch-size", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn rotate-key");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a progress line").expect("utf8");
    assert!(first.starts_with("batch 1:"), "{first}");
    let mut hold = app.db.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE configuration_audit_logs IN SHARE MODE")
        .execute(&mut *hold)
        .await
        .expect("hold audit inserts");
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    hold.rollback().await.expect("release");

    let midway = values_per_key(&app).await;
    let count = |id: &str| midway.iter().find(|(k, _)| k == id).map_or(0, |(_, n)| *n);
    assert!(
        count(&id_a) > 0 && count(&id_b) > 0,
        "killed midway: {midway:?}"
    );

    // Second run resumes and finishes while the load goes on.
    let out = cli(&vars_b, &["rotate-key", "--batch-size", "7"]);
    assert!(out.status.success(), "rotate-key: {}", text(&out.stderr));
    stop.store(true, Ordering::Relaxed);
    let failures = load.await.expect("load task");
    assert!(
        failures.is_empty(),
        "the API failed during rotation: {failures:?}"
    );
    assert!(
        done.load(Ordering::Relaxed) > 0,
        "the API served during rotation"
    );

    let out = cli(&vars_b, &["rotate-key", "--check"]);
    assert!(out.status.success());
    let report = text(&out.stdout);
    assert!(
        report.contains("0 values remain under keys other than the current key"),
        "{report}"
    );
    assert!(!report.contains(&id_a), "no value under A: {report}");

    // The service starts with only B and everything still opens.
    stop_serving.cancel();
    let mut only_b = app.vars.clone();
    only_b.insert("ENCRYPTION_KEY".into(), key_b);
    let (address, stop_only_b) = start(&only_b)
        .await
        .expect("the service starts with only B");
    let after = picture(&app, &address, &keyring(&only_b)).await;
    assert_eq!(after["tokens"], before["tokens"]);
    assert_eq!(after["webhooks"], before["webhooks"]);
    let hubspot = after["reveals"]
        .as_array()
        .expect("reveals")
        .iter()
        .find(|r| r["provider"] == "hubspot")
        .cloned();
    assert_eq!(
        hubspot.map(|r| r["secrets"].clone()),
        Some(json!({"client_secret": HUBSPOT_SECRET, "private_app_token": HUBSPOT_PAT}))
    );
    let hook_secrets: Vec<(uuid::Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT id, secret FROM webhook_configurations WHERE secret IS NOT NULL")
            .fetch_all(&app.db.pool)
            .await
            .expect("secrets");
    for (id, sealed) in hook_secrets {
        keyring(&only_b)
            .open(&sealed, &hsq_config::domain::webhooks::secret_aad(id))
            .expect("opens under B alone");
    }
    stop_only_b.cancel();

    let batches = app.audit_count("key_rotation_batch", Some(true)).await;
    assert!(batches >= 2, "rotation batches are audited");
    assert_eq!(
        app.audit_count("key_rotation_completed", Some(true)).await,
        1
    );
    let out = cli(&only_b, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "the audit chain holds under concurrent writers: {}",
        text(&out.stderr)
    );
    let verified: Value = serde_json::from_str(
        text(&out.stdout)
            .split("\naudit chain")
            .next()
            .unwrap_or_default(),
    )
    .expect("report json");
    assert!(verified["rows_verified"].as_u64().unwrap_or_default() > 100);
}

//! A secret canary: through create, reveal and error paths at LOG_LEVEL=trace, the secret
//! never reaches a log line.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::helpers::{TestDb, base_vars};

const CANARY: &str = "sk_test_CANARY7f3a9c1e5b2d8f40aa";

#[tokio::test]
async fn no_secret_reaches_the_log_even_at_trace() {
    let db = TestDb::new().await;
    let mut vars = base_vars(&db.url);
    vars.insert("LOG_LEVEL".into(), "trace".into());
    vars.insert("LOG_FORMAT".into(), "json".into());
    // Webhook deliveries to a closed local port: attempted (and logged), never delivered.
    vars.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
    vars.insert("WEBHOOK_RETRY_SCHEDULE".into(), "50ms".into());
    let admin = vars["ADMIN_API_TOKEN"].clone();

    let mut child = Command::new(env!("CARGO_BIN_EXE_hsq-config"))
        .arg("serve")
        .env_clear()
        .envs(vars.iter())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the binary");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<String>();
    let mut addr_tx = Some(addr_tx);
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let sink = lines.clone();
    tokio::spawn(async move {
        let mut out = stdout.lines();
        while let Ok(Some(line)) = out.next_line().await {
            if line.contains("hsq-config listening") {
                if let Some(addr) = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["addr"].as_str().map(str::to_owned))
                {
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
            sink.lock().expect("lock").push(line);
        }
    });
    let sink = lines.clone();
    tokio::spawn(async move {
        let mut err = stderr.lines();
        while let Ok(Some(line)) = err.next_line().await {
            sink.lock().expect("lock").push(line);
        }
    });
    let addr = tokio::time::timeout(std::time::Duration::from_secs(30), addr_rx)
        .await
        .expect("the binary starts")
        .expect("address");
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let path = format!("{base}/api/config/integrations/stripe/sandbox");

    // Create, read, reveal, patch, and the error paths: bad prefix, wrong environment,
    // malformed body, unknown field, wrong role.
    let calls = [
        client
            .put(&path)
            .bearer_auth(&admin)
            .json(&json!({"secrets": {"secret_key": CANARY}})),
        client.get(&path).bearer_auth(&admin),
        client.post(format!("{path}/reveal")).bearer_auth(&admin),
        client
            .patch(&path)
            .bearer_auth(&admin)
            .json(&json!({"secrets": {"webhook_secret": format!("whsec_{CANARY}")}})),
        client
            .put(&path)
            .bearer_auth(&admin)
            .json(&json!({"secrets": {"secret_key": format!("pk_{CANARY}")}})),
        client
            .put(format!("{base}/api/config/integrations/stripe/production"))
            .bearer_auth(&admin)
            .json(&json!({"secrets": {"secret_key": CANARY}})),
        client
            .put(&path)
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(format!("{{\"secrets\": {{\"secret_key\": \"{CANARY}\"")),
        client
            .put(&path)
            .bearer_auth(&admin)
            .json(&json!({"enabled": CANARY})),
        client
            .put(&path)
            .bearer_auth(CANARY)
            .json(&json!({"secrets": {"secret_key": CANARY}})),
        // The body reader's refusals: a repeated key, NUL, a top-level array, no JSON type.
        client
            .put(&path)
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(format!(
                "{{\"secrets\": {{\"secret_key\": \"{CANARY}\", \"secret_key\": \"{CANARY}\"}}}}"
            )),
        client
            .put(&path)
            .bearer_auth(&admin)
            .json(&json!({"secrets": {"secret_key": format!("{CANARY}\u{0}")}})),
        client
            .put(&path)
            .bearer_auth(&admin)
            .json(&json!([{"secrets": {"secret_key": CANARY}}])),
        client
            .put(&path)
            .bearer_auth(&admin)
            .header("content-type", "text/plain")
            .body(format!("{{\"secrets\": {{\"secret_key\": \"{CANARY}\"}}}}")),
        client
            .patch(&path)
            .bearer_auth(&admin)
            .json(&json!({"settings": {"colour": CANARY}, "secrets": {"secret_key": CANARY}})),
    ];
    let mut bodies = Vec::new();
    for call in calls {
        let request = call.build().expect("request");
        let reveal = request.url().path().ends_with("/reveal");
        let text = client
            .execute(request)
            .await
            .expect("send")
            .text()
            .await
            .expect("body");
        if !reveal {
            bodies.push(text);
        }
    }
    webhook_calls(&client, &base, &admin, &mut bodies).await;
    let leaked: Vec<&String> = bodies
        .iter()
        .filter(|b| b.contains("CANARY7f3a9c1e5b2d8f40aa"))
        .collect();
    assert!(
        leaked.is_empty(),
        "a response other than reveal held the secret: {leaked:?}"
    );
    let pool = sqlx::PgPool::connect(&db.url).await.expect("db");
    let in_audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM configuration_audit_logs WHERE details::text LIKE '%CANARY7f3a9c1e5b2d8f40aa%'",
    )
    .fetch_one(&pool)
    .await
    .expect("audit rows");
    assert_eq!(in_audit, 0, "the secret reached the audit log");
    let in_outbox: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_events e LEFT JOIN webhook_deliveries d ON d.event_id = e.id
          WHERE e.payload::text LIKE '%CANARY7f3a9c1e5b2d8f40aa%'
             OR d.last_error LIKE '%CANARY7f3a9c1e5b2d8f40aa%'
             OR d.last_response_body LIKE '%CANARY7f3a9c1e5b2d8f40aa%'",
    )
    .fetch_one(&pool)
    .await
    .expect("outbox rows");
    assert_eq!(in_outbox, 0, "the secret reached the webhook outbox");
    let _ = child.start_kill();
    let _ = child.wait().await;

    let lines = lines.lock().expect("lock").clone();
    assert!(
        lines.len() > 20,
        "trace logging produced output ({} lines)",
        lines.len()
    );
    assert!(
        lines.iter().any(|l| l.contains("request finished")),
        "request lines are logged"
    );
    assert!(
        lines.iter().any(|l| l.contains("webhook attempt")),
        "webhook attempts are logged"
    );
    let leaks: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("CANARY7f3a9c1e5b2d8f40aa"))
        .collect();
    assert!(leaks.is_empty(), "the secret reached the log: {leaks:?}");
    assert!(
        !lines.iter().any(|l| l.contains(&admin)),
        "the admin token reached the log"
    );
}

/// A webhook signed with the canary, a change that is delivered to it (and fails: nothing
/// listens), and every webhook route; their bodies join `bodies`.
async fn webhook_calls(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    bodies: &mut Vec<String>,
) {
    let hooks = format!("{base}/api/config/webhooks");
    let created = client
        .post(&hooks)
        .bearer_auth(admin)
        .json(&json!({"url": "http://127.0.0.1:9/hook", "events": ["*"], "secret": format!("whsec_{CANARY}")}))
        .send()
        .await
        .expect("create a webhook");
    let created = created.text().await.expect("body");
    let id = serde_json::from_str::<serde_json::Value>(&created).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    bodies.push(created);
    let config = format!("{base}/api/config/integrations/stripe/sandbox");
    let patch = json!({"secrets": {"secret_key": format!("{CANARY}x")}});
    let r = client
        .patch(&config)
        .bearer_auth(admin)
        .json(&patch)
        .send()
        .await
        .expect("patch");
    bodies.push(r.text().await.expect("body"));
    let deliveries = format!("{hooks}/{id}/deliveries");
    let attempted = crate::support::wait::eventually(
        "a delivery attempt",
        std::time::Duration::from_secs(15),
        async || {
            let page: serde_json::Value = client
                .get(&deliveries)
                .bearer_auth(admin)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let items = page["items"].as_array()?;
            items
                .iter()
                .any(|d| d["attempts"].as_i64() >= Some(1))
                .then(|| page.to_string())
        },
    )
    .await;
    bodies.push(attempted);
    for path in [
        format!("{hooks}/{id}/test"),
        format!("{hooks}/{id}/rotate-secret"),
    ] {
        let r = client
            .post(path)
            .bearer_auth(admin)
            .send()
            .await
            .expect("post");
        bodies.push(r.text().await.expect("body"));
    }
    for path in [hooks.clone(), format!("{base}/api/config/events")] {
        let r = client
            .get(path)
            .bearer_auth(admin)
            .send()
            .await
            .expect("get");
        bodies.push(r.text().await.expect("body"));
    }
}

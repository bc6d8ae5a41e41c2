//! Canary: drive every OAuth path through the real binary at `LOG_LEVEL=trace` and check that
//! no token or client secret appears in its output, in audit rows or in error bodies.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::fake_oauth::{FakeProvider, HS_SECRET, QB_SECRET, STRIPE_SECRET};
use crate::support::helpers::{TestApp, TestDb, base_vars};
use crate::support::oauth_support::{configure, connect, expire_in, get_token, oauth_vars};
use crate::support::wait::eventually;

/// Kills the binary even when an assertion fails first.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn no_token_or_client_secret_reaches_logs_audit_rows_or_error_bodies() {
    let fake = FakeProvider::start().await;
    let db = TestDb::new().await;
    let mut vars = base_vars(&db.url);
    oauth_vars(&fake, &mut vars);
    let port = free_port();
    vars.insert("PORT".into(), port.to_string());
    vars.insert("LOG_LEVEL".into(), "trace".into());
    vars.insert("LOG_FORMAT".into(), "json".into());

    let dir = tempfile::tempdir().expect("tempdir");
    let (out_path, err_path) = (dir.path().join("stdout.log"), dir.path().join("stderr.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_hsq-config"))
        .arg("serve")
        .env_clear()
        .envs(&vars)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start the binary");
    let running = Running(child);
    let app = TestApp::attach(format!("http://127.0.0.1:{port}"), vars, db);
    eventually(
        "the binary to become healthy",
        Duration::from_secs(30),
        async || {
            matches!(app.client.get(app.url("/health")).send().await, Ok(r) if r.status() == 200)
                .then_some(())
        },
    )
    .await;

    let mut error_bodies = Vec::new();
    for provider in ["quickbooks", "hubspot", "stripe"] {
        configure(&app, &app.address, provider).await;
        connect(&app, provider).await;
    }
    let service = app.token("service").await;
    for provider in ["quickbooks", "hubspot", "stripe"] {
        assert_eq!(
            get_token(&app.client, &app.address, &service, provider)
                .await
                .status(),
            200
        );
    }
    // A refresh with rotation, then invalid_grant.
    expire_in(&app, "quickbooks", 30).await;
    assert_eq!(
        get_token(&app.client, &app.address, &service, "quickbooks")
            .await
            .status(),
        200
    );
    fake.set(|b| b.invalid_grant = true);
    expire_in(&app, "quickbooks", 30).await;
    let r = get_token(&app.client, &app.address, &service, "quickbooks").await;
    assert_eq!(r.status(), 409);
    error_bodies.push(r.text().await.expect("body"));
    // Provider down with an expired token.
    fake.set(|b| {
        b.invalid_grant = false;
        b.fail_5xx = 10;
    });
    expire_in(&app, "hubspot", -5).await;
    let r = get_token(&app.client, &app.address, &service, "hubspot").await;
    assert_eq!(r.status(), 503);
    error_bodies.push(r.text().await.expect("body"));
    // Disconnect with revocation.
    let r = app
        .delete("/api/config/stripe/connection?environment=sandbox")
        .await;
    assert_eq!(r.status(), 200);

    drop(running);
    let logs = std::fs::read_to_string(&out_path).expect("stdout")
        + &std::fs::read_to_string(&err_path).expect("stderr");
    assert!(
        logs.contains("OAuth token refreshed"),
        "trace logs were captured"
    );
    assert!(logs.lines().count() > 50, "trace logging is on");

    let audit: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(a)::text FROM configuration_audit_logs a")
            .fetch_all(&app.db.pool)
            .await
            .expect("audit rows");
    assert!(audit.iter().any(|row| row.contains("token_refreshed")));

    let mut canaries: Vec<String> = fake.fake().issued.clone();
    assert!(
        canaries.len() >= 7,
        "tokens were issued: {}",
        canaries.len()
    );
    canaries.extend([QB_SECRET, HS_SECRET, STRIPE_SECRET].map(str::to_owned));
    canaries.push(app.admin_token.clone());
    canaries.push(service.clone());
    for canary in &canaries {
        assert!(!logs.contains(canary.as_str()), "a secret reached the log");
        assert!(
            !audit.iter().any(|row| row.contains(canary.as_str())),
            "a secret reached an audit row"
        );
        assert!(
            !error_bodies.iter().any(|b| b.contains(canary.as_str())),
            "a secret reached an error body"
        );
    }
    for body in &error_bodies {
        let problem: Value = serde_json::from_str(body).expect("problem json");
        assert!(problem["code"].is_string());
    }
}

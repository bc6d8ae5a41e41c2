//! Events of operations: a validation outcome that changes, scheduled backups that succeed or
//! fail, and a completed key rotation.

use std::collections::HashMap;
use std::time::Duration;

use hsq_config::domain::backup::schedule::{Round, run_backup_round};
use serde_json::json;

use crate::support::fake_providers::{Behaviour, FakeProviders};
use crate::support::helpers::{STRIPE_TEST_KEY, TestApp};
use crate::support::provider_support::{STRIPE, validate};
use crate::support::receiver::Receiver;
use crate::support::wait::eventually;
use crate::webhook_delivery::subscribe;

async fn types(receiver: &Receiver, count: usize) -> Vec<String> {
    eventually(
        &format!("{count} deliveries"),
        Duration::from_secs(15),
        async || {
            let seen: Vec<String> = receiver
                .received()
                .iter()
                .map(|d| d.json()["type"].as_str().unwrap_or_default().to_owned())
                .collect();
            (seen.len() >= count).then_some(seen)
        },
    )
    .await
}

fn private_targets(vars: &mut HashMap<String, String>) {
    vars.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
    vars.insert("HEALTH_MONITOR_ENABLED".into(), "false".into());
}

#[tokio::test]
async fn a_validation_outcome_is_announced_when_it_changes() {
    let fake = FakeProviders::start().await;
    let settings = fake.settings();
    let app = TestApp::spawn_with(|v| {
        v.extend(settings);
        private_targets(v);
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["config.validated"])).await;
    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(STRIPE, &put).await.status(), 201);
    fake.accept("stripe", STRIPE_TEST_KEY);

    validate(&app, STRIPE).await;
    validate(&app, STRIPE).await; // the same outcome: nothing new
    fake.behave("stripe", Behaviour::ServerError);
    validate(&app, STRIPE).await;

    types(&receiver, 2).await;
    let bodies: Vec<serde_json::Value> = receiver.received().iter().map(|d| d.json()).collect();
    assert_eq!(
        bodies.len(),
        2,
        "one event per change of outcome: {bodies:?}"
    );
    assert_eq!(bodies[0]["data"]["status"], "ok");
    assert!(bodies[0]["data"]["previous_status"].is_null());
    assert_eq!(bodies[1]["data"]["previous_status"], "ok");
    assert_eq!(bodies[1]["data"]["status"], "unreachable");
}

#[tokio::test]
async fn scheduled_backups_and_key_rotations_are_announced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_with(|v| {
        private_targets(v);
        v.insert(
            "BACKUP_DIR".into(),
            dir.path().to_string_lossy().into_owned(),
        );
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["backup.*", "key_rotation.*"])).await;
    let file = match run_backup_round(app.state()).await.expect("a round") {
        Round::Written { path, .. } => path,
        Round::Skipped => panic!("nobody else holds the lease"),
    };
    // A backup directory that cannot be written: the next round fails.
    std::fs::remove_dir_all(dir.path()).expect("remove the directory");
    std::fs::write(dir.path(), b"not a directory").expect("a file in its place");
    assert!(run_backup_round(app.state()).await.is_err());
    let caller = hsq_config::http::auth::Caller::system("test:rotate");
    hsq_config::domain::rotation::rotate(app.state(), &caller, 100, |_, _| {})
        .await
        .expect("rotate");

    let seen = types(&receiver, 3).await;
    assert_eq!(
        seen,
        [
            "backup.succeeded",
            "backup.failed",
            "key_rotation.completed"
        ]
    );
    let first = receiver.received()[0].json();
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert_eq!(first["data"]["file"], name);
    assert!(first["data"]["provider"].is_null());
    let _ = std::fs::remove_file(dir.path());
}

#[tokio::test]
async fn a_breaker_announces_that_it_opened_and_closed_once_each() {
    let fake = FakeProviders::start().await;
    let settings = fake.settings();
    let app = TestApp::spawn_with(|v| {
        v.extend(settings);
        private_targets(v);
        v.insert("CIRCUIT_BREAKER_FAILURE_THRESHOLD".into(), "2".into());
        v.insert("CIRCUIT_BREAKER_COOLDOWN_SECS".into(), "600".into());
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["breaker.*"])).await;
    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(STRIPE, &put).await.status(), 201);
    fake.accept("stripe", STRIPE_TEST_KEY);

    fake.behave("stripe", Behaviour::ServerError);
    for _ in 0..4 {
        validate(&app, STRIPE).await; // two failures open it; the rest are rejected
    }
    app.rewind_breaker("stripe", "sandbox").await;
    fake.behave("stripe", Behaviour::Normal);
    assert_eq!(validate(&app, STRIPE).await["status"], "ok");

    let seen = types(&receiver, 2).await;
    assert_eq!(seen, ["breaker.opened", "breaker.closed"]);
    let opened = receiver.received()[0].json();
    assert_eq!(opened["data"]["provider"], "stripe");
    assert_eq!(opened["data"]["environment"], "sandbox");
}

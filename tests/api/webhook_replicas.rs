//! Delivery across replicas: every replica runs the worker on one database, and each event
//! reaches the receiver exactly once while they all run; an attempt cut off by `kill -9` of
//! its replica is made again by another once the claim lapses (at least once).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, start};
use crate::support::receiver::{Answer, Receiver};
use crate::support::wait::eventually;
use crate::webhook_delivery::subscribe;

const CONFIG: &str = "/api/config/integrations/stripe/sandbox";

async fn app_without_worker() -> TestApp {
    TestApp::spawn_with(|v| {
        v.insert("WEBHOOK_ALLOW_PRIVATE_TARGETS".into(), "true".into());
        v.insert("HEALTH_MONITOR_ENABLED".into(), "false".into());
        v.insert("WEBHOOK_DELIVERY_ENABLED".into(), "false".into());
    })
    .await
}

#[tokio::test]
async fn two_replicas_deliver_each_of_200_events_exactly_once() {
    let app = app_without_worker().await;
    let receiver = Receiver::start().await;
    let (_, secret) = subscribe(&app, &receiver, json!(["config.*"])).await;
    let mut vars = app.vars.clone();
    vars.insert("WEBHOOK_DELIVERY_ENABLED".into(), "true".into());
    let (_, stop_one) = start(&vars).await.expect("first replica");
    let (_, stop_two) = start(&vars).await.expect("second replica");

    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(CONFIG, &put).await.status(), 201);
    for i in 1..200 {
        let patch = json!({"settings": {"account_id": format!("acct_{i:04}")}});
        assert_eq!(app.patch_json(CONFIG, &patch).await.status(), 200);
    }
    let received = eventually("200 deliveries", Duration::from_secs(60), async || {
        let received = receiver.received();
        (received.len() >= 200).then_some(received)
    })
    .await;
    // Anything sent twice would arrive within the next claims; give the workers a moment
    // of rounds by waiting for every delivery row to be settled first.
    eventually(
        "every delivery settled",
        Duration::from_secs(30),
        async || {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'",
            )
            .fetch_one(&app.db.pool)
            .await
            .expect("count");
            (pending == 0).then_some(())
        },
    )
    .await;
    let received = if receiver.received().len() > received.len() {
        receiver.received()
    } else {
        received
    };
    let ids: HashSet<String> = received.iter().map(|d| d.header("webhook-id")).collect();
    assert_eq!(ids.len(), 200, "every event arrived");
    assert_eq!(received.len(), 200, "and none twice");
    for d in &received {
        d.verify(&secret).expect("signed");
    }
    stop_one.cancel();
    stop_two.cancel();
}

#[tokio::test]
async fn an_attempt_cut_off_by_kill_9_is_made_again_by_another_replica() {
    let app = app_without_worker().await;
    let receiver = Receiver::start().await;
    receiver.answer(&[Answer::Never]);
    let (id, secret) = subscribe(&app, &receiver, json!(["config.*"])).await;
    let mut vars = app.vars.clone();
    vars.insert("WEBHOOK_DELIVERY_ENABLED".into(), "true".into());
    vars.insert("WEBHOOK_TIMEOUT".into(), "2s".into());
    vars.insert("OAUTH_REFRESHER_ENABLED".into(), "false".into());
    // The replica that dies: the real binary, in a process of its own.
    let mut doomed = tokio::process::Command::new(env!("CARGO_BIN_EXE_hsq-config"))
        .arg("serve")
        .env_clear()
        .envs(vars.iter())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the binary");

    let put = json!({"secrets": {"secret_key": STRIPE_TEST_KEY}});
    assert_eq!(app.put_json(CONFIG, &put).await.status(), 201);
    eventually(
        "the first attempt in flight",
        Duration::from_secs(30),
        async || (receiver.received().len() == 1).then_some(()),
    )
    .await;
    doomed.kill().await.expect("kill -9"); // SIGKILL: no shutdown, its claim never finishes
    let (_, stop_survivor) = start(&vars).await.expect("the replica that stays");

    let delivered = eventually(
        "the attempt made again",
        Duration::from_secs(30),
        async || {
            let status: String = sqlx::query_scalar(
                "SELECT status FROM webhook_deliveries WHERE webhook_id = $1::uuid",
            )
            .bind(&id)
            .fetch_one(&app.db.pool)
            .await
            .expect("status");
            (status == "delivered").then(|| receiver.received())
        },
    )
    .await;
    assert_eq!(
        delivered.len(),
        2,
        "the cut-off attempt, then the one that delivered"
    );
    assert_eq!(
        delivered[0].header("webhook-id"),
        delivered[1].header("webhook-id")
    );
    delivered[1].verify(&secret).expect("signed");
    stop_survivor.cancel();
}

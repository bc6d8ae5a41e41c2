//! The audit hash chain: concurrent writers, retention with a checkpoint, and `audit verify`
//! naming an edited row.

use chrono::Utc;
use hsq_config::domain::audit_chain::{self, Content, GENESIS};
use hsq_config::domain::audit_retention;
use hsq_config::http::auth::Caller;
use hsq_config::store::audit::AuditRow;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::support::helpers::TestApp;
use crate::support::ops::{cli, replica_state, text};

/// Writes audit rows from many requests at once on two replicas, refusals included.
async fn busy_writers(app: &TestApp) {
    let viewer = app.token("viewer").await;
    let (sibling, stop_sibling) = app.sibling().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let replica = if i % 2 == 0 {
            app.url("")
        } else {
            sibling.clone()
        };
        let (client, url, admin, viewer) = (
            app.client.clone(),
            replica,
            app.admin_token.clone(),
            viewer.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = json!({"url": format!("https://hooks.example.com/{i}"), "events": ["config.*"], "secret": "s3cr3t-value-{i}"});
            let ok = client.post(format!("{url}/api/config/webhooks")).bearer_auth(&admin).json(&body).send().await;
            let refused = client.request(Method::POST, format!("{url}/api/config/webhooks")).bearer_auth(&viewer).json(&body).send().await;
            (ok.map(|r| r.status().as_u16()), refused.map(|r| r.status().as_u16()))
        }));
    }
    for task in tasks {
        let (ok, refused) = task.await.expect("task");
        assert_eq!(ok.expect("request"), 201);
        assert_eq!(refused.expect("request"), 403);
    }
    stop_sibling.cancel();
}

/// Moves the first `n` rows back in time and re-chains them, as if written long ago.
async fn age_first_rows(db: &PgPool, n: i64) {
    sqlx::query(
        "UPDATE configuration_audit_logs SET occurred_at = occurred_at - interval '200 days'
          WHERE id IN (SELECT id FROM configuration_audit_logs ORDER BY id LIMIT $1)",
    )
    .bind(n)
    .execute(db)
    .await
    .expect("age rows");
    // Rebuild the chain in id order with the aged times, holding the head so no sequencer
    // chains anything meanwhile.
    let mut tx = db.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM audit_chain_head FOR UPDATE")
        .execute(&mut *tx)
        .await
        .expect("hold the head");
    sqlx::query("UPDATE configuration_audit_logs SET chain_seq = NULL WHERE true")
        .execute(&mut *tx)
        .await
        .expect("unplace");
    let rows: Vec<AuditRow> = sqlx::query_as("SELECT * FROM configuration_audit_logs ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .expect("rows");
    let mut prev = GENESIS.to_vec();
    for row in rows {
        let hash = audit_chain::row_hash(&prev, &Content::of_stored(&row));
        sqlx::query(
            "UPDATE configuration_audit_logs SET prev_hash = $2, hash = $3, chain_seq = $1 WHERE id = $1",
        )
        .bind(row.id)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *tx)
        .await
        .expect("rechain");
        sqlx::query("UPDATE audit_chain_head SET last_id = $1, last_seq = $1, last_hash = $2")
            .bind(row.id)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .expect("head");
        prev = hash;
    }
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn concurrent_writers_keep_one_chain_and_retention_deletes_only_old_rows() {
    let app = TestApp::spawn().await;
    busy_writers(&app).await;
    let report = audit_chain::verify(app.state()).await.expect("verify");
    assert!(report.ok(), "{report:?}");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM configuration_audit_logs")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(report.rows_verified as i64, total);
    assert!(total >= 41, "api token + 20 creates + 20 refusals: {total}");

    age_first_rows(&app.db.pool, 15).await;
    assert!(audit_chain::verify(app.state()).await.expect("verify").ok());
    let cutoff = Utc::now() - chrono::Duration::days(90);
    let retained =
        audit_retention::apply(app.state(), cutoff, &Caller::system(audit_retention::ACTOR))
            .await
            .expect("retention");
    assert_eq!(retained.deleted, 15, "only the old rows go");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM configuration_audit_logs")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(
        left,
        total - 15 + 1,
        "the young rows and retention's own audit row remain"
    );
    assert_eq!(
        app.audit_count("audit_retention_applied", Some(true)).await,
        1
    );

    let report = audit_chain::verify(app.state()).await.expect("verify");
    assert!(
        report.ok(),
        "the remaining chain verifies from the checkpoint: {report:?}"
    );
    assert!(report.starts_after_checkpoint.is_some());

    // Nothing old is left: a second pass deletes nothing and writes no audit row.
    let again =
        audit_retention::apply(app.state(), cutoff, &Caller::system(audit_retention::ACTOR))
            .await
            .expect("retention");
    assert_eq!(again.deleted, 0);
    assert_eq!(
        app.audit_count("audit_retention_applied", Some(true)).await,
        1
    );

    // The daily job runs once a day across replicas.
    let state = replica_state(&app.vars).await;
    assert!(
        audit_retention::run_daily(&state)
            .await
            .expect("daily")
            .is_some()
    );
    assert!(
        audit_retention::run_daily(&state)
            .await
            .expect("daily")
            .is_none(),
        "already ran today"
    );
}

/// `hsq-config audit verify`, off the test's runtime so the app's background work goes on.
async fn verify_cli(app: &TestApp) -> std::process::Output {
    let vars = app.vars.clone();
    tokio::task::spawn_blocking(move || cli(&vars, &["audit", "verify"]))
        .await
        .expect("the CLI ran")
}

#[tokio::test]
async fn audit_verify_names_an_edited_row_and_a_removed_row() {
    let app = TestApp::spawn().await;
    busy_writers(&app).await;
    let out = verify_cli(&app).await;
    assert!(
        out.status.success(),
        "an untouched chain verifies: {}",
        text(&out.stderr)
    );

    // In chain order (everything is chained once `audit verify` has run).
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM configuration_audit_logs ORDER BY chain_seq")
            .fetch_all(&app.db.pool)
            .await
            .expect("ids");
    let edited = ids[ids.len() / 2];
    let original: String =
        sqlx::query_scalar("SELECT actor_name FROM configuration_audit_logs WHERE id = $1")
            .bind(edited)
            .fetch_one(&app.db.pool)
            .await
            .expect("row");
    sqlx::query("UPDATE configuration_audit_logs SET actor_name = 'someone-else' WHERE id = $1")
        .bind(edited)
        .execute(&app.db.pool)
        .await
        .expect("edit");
    let out = verify_cli(&app).await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("breaks at row {edited}:")),
        "{stderr}"
    );
    assert!(stderr.contains("edited"), "{stderr}");

    // Put it back; then remove an earlier row: the row after the gap is named.
    sqlx::query("UPDATE configuration_audit_logs SET actor_name = $2 WHERE id = $1")
        .bind(edited)
        .bind(&original)
        .execute(&app.db.pool)
        .await
        .expect("put back");
    assert!(
        audit_chain::verify(app.state()).await.expect("verify").ok(),
        "the original content verifies again"
    );
    let removed = ids[3];
    sqlx::query("DELETE FROM configuration_audit_logs WHERE id = $1")
        .bind(removed)
        .execute(&app.db.pool)
        .await
        .expect("delete");
    let report_after = audit_chain::verify(app.state()).await.expect("verify");
    let broken = report_after.first_break.expect("a break");
    assert_eq!(
        broken.row_id, ids[4],
        "the row after the removed one is named"
    );
}

#[tokio::test]
async fn cutting_rows_from_the_end_is_caught_by_the_chain_head() {
    let app = TestApp::spawn().await;
    busy_writers(&app).await;
    assert!(audit_chain::verify(app.state()).await.expect("verify").ok());
    let newest: i64 = sqlx::query_scalar(
        "SELECT id FROM configuration_audit_logs ORDER BY chain_seq DESC LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("newest");
    sqlx::query("DELETE FROM configuration_audit_logs WHERE id = $1")
        .bind(newest)
        .execute(&app.db.pool)
        .await
        .expect("delete");
    let report = audit_chain::verify(app.state()).await.expect("verify");
    let broken = report.first_break.expect("a break");
    assert_eq!(broken.row_id, newest);
    assert!(
        broken.reason.contains("removed from the end"),
        "{}",
        broken.reason
    );
}

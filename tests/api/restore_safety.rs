//! Restores that must leave the database as it was: a file edited by one byte or from a newer
//! format, a dry run, and a restore that fails midway.

use hsq_config::domain::backup::format::{self, Document};
use hsq_config::domain::backup::restore::{self, Mode, RestoreOptions};
use hsq_config::http::auth::Caller;
use serde_json::{Value, json};

use crate::support::helpers::{TestApp, problem};
use crate::support::ops::{
    cli, dump, keyring, populate, post_restore, take_backup, text, with_refusal_rows,
};

#[tokio::test]
async fn any_one_byte_edit_refuses_the_whole_file_and_a_dry_run_changes_nothing() {
    let app = TestApp::spawn().await;
    populate(&app).await;
    let file = take_backup(&app, None).await;
    let caller = Caller::system("test");
    let untouched = dump(&app.db.pool).await;

    for i in 0..file.len() {
        let mut edited = file.clone();
        edited[i] ^= 0x01;
        let refused = match format::parse(&edited, true) {
            Err(_) => true,
            Ok(parsed) => {
                let options = RestoreOptions {
                    mode: Mode::Replace,
                    dry_run: false,
                    passphrase: None,
                };
                restore::restore(app.state(), &caller, parsed, &options)
                    .await
                    .is_err()
            }
        };
        assert!(refused, "an edit at byte {i} was accepted");
    }
    assert_eq!(
        dump(&app.db.pool).await,
        untouched,
        "refused files change nothing"
    );

    // Through the CLI: the operator is told the file was modified.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("edited.json");
    let mut edited = file.clone();
    let at = text(&file).find("acct_123").expect("a setting in the file") + 5;
    edited[at] = b'9';
    std::fs::write(&path, &edited).expect("write");
    let out = cli(&app.vars, &["restore", path.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("modified"),
        "{}",
        text(&out.stderr)
    );

    // A newer format is named as such.
    let mut newer: Value = serde_json::from_slice(&file).expect("json");
    newer["format_version"] = json!(99);
    let p = problem(post_restore(&app, json!({"backup": newer})).await, 422).await;
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("version 99"),
        "{p}"
    );
    assert_eq!(
        dump(&app.db.pool).await,
        with_refusal_rows(&untouched, 1),
        "only the refusal is audited"
    );

    // Dry run: change things, then ask what a replace would do.
    app.patch_json(
        "/api/config/integrations/stripe/sandbox",
        &json!({"enabled": false}),
    )
    .await;
    app.put_json(
        "/api/config/integrations/stripe/production",
        &json!({"settings": {}, "secrets": {}}),
    )
    .await;
    let hooks: Value = app
        .get("/api/config/webhooks")
        .await
        .json()
        .await
        .expect("json");
    app.delete(&format!(
        "/api/config/webhooks/{}",
        hooks[0]["id"].as_str().expect("id")
    ))
    .await;
    let changed = dump(&app.db.pool).await;
    let document: Value = serde_json::from_slice(&file).expect("json");
    let r = post_restore(
        &app,
        json!({"backup": document, "mode": "replace", "dry_run": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.expect("json");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["replaced"]["integration_configs"], 1);
    assert_eq!(report["deleted"]["integration_configs"], 1);
    assert_eq!(report["created"]["webhook_configurations"], 1);
    assert_eq!(
        dump(&app.db.pool).await,
        changed,
        "a dry run changes nothing"
    );
}

#[tokio::test]
async fn a_restore_that_fails_midway_leaves_the_database_as_it_was() {
    let app = TestApp::spawn().await;
    populate(&app).await;
    let file = take_backup(&app, None).await;
    let keys = keyring(&app.vars);

    // Make the restore do real work before it fails: a config to replace, a webhook to create.
    app.patch_json(
        "/api/config/integrations/stripe/sandbox",
        &json!({"enabled": false}),
    )
    .await;
    let mut document: Document = serde_json::from_slice(&file).expect("document");
    let missing = document.data.webhook_configurations[0].id;
    app.delete(&format!("/api/config/webhooks/{missing}")).await;
    // The same webhook twice: the second insert violates the primary key, after the other writes.
    let twin = document.data.webhook_configurations[0].clone();
    document.data.webhook_configurations.push(twin);
    let id = keys.current_id();
    document.sign(
        &keys.integrity_key(id).expect("key")[..],
        &format!("keyring:{id}"),
    );
    let forged = document.to_bytes();
    let before = dump(&app.db.pool).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("forged.json");
    std::fs::write(&path, &forged).expect("write");
    let out = cli(
        &app.vars,
        &["restore", path.to_str().expect("utf8"), "--mode", "replace"],
    );
    assert!(!out.status.success(), "the restore fails");
    assert_eq!(
        dump(&app.db.pool).await,
        before,
        "nothing of the failed restore remains"
    );

    let document: Value = serde_json::from_slice(&forged).expect("json");
    problem(post_restore(&app, json!({"backup": document})).await, 409).await;
    assert_eq!(
        dump(&app.db.pool).await,
        with_refusal_rows(&before, 1),
        "only the refusal is audited"
    );
}

//! Backup and restore: round trip, no plaintext, admins only, and cross-key restores with a
//! passphrase. Restores that must change nothing live in `restore_safety.rs`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::helpers::{TestApp, problem};
use crate::support::ops::{
    canaries, cli, dump, keyring, picture, populate, post_restore, take_backup, text,
    with_refusal_rows,
};

async fn wipe(app: &TestApp) {
    for path in ["stripe/sandbox", "hubspot/production", "quickbooks/sandbox"] {
        assert_eq!(
            app.delete(&format!("/api/config/integrations/{path}"))
                .await
                .status(),
            204
        );
    }
    let hooks: Value = app
        .get("/api/config/webhooks")
        .await
        .json()
        .await
        .expect("json");
    for hook in hooks.as_array().expect("hooks") {
        let id = hook["id"].as_str().expect("id");
        assert_eq!(
            app.delete(&format!("/api/config/webhooks/{id}"))
                .await
                .status(),
            204
        );
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_tokens")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(left, 0, "tokens go with their configs");
}

#[tokio::test]
async fn a_backup_restores_everything_a_client_sees_and_a_second_restore_changes_nothing() {
    let app = TestApp::spawn().await;
    populate(&app).await;
    let keys = keyring(&app.vars);
    let before = picture(&app, &app.address, &keys).await;

    let file = take_backup(&app, None).await;
    let file_text = text(&file);
    for canary in canaries() {
        assert!(
            !file_text.contains(canary),
            "the backup holds a plaintext secret"
        );
    }
    let document: Value = serde_json::from_slice(&file).expect("json");
    assert_eq!(document["format"], "hsq-config-backup");
    assert_eq!(document["protection"]["mode"], "keyring");
    assert_eq!(document["key_ids"], json!([keys.current_id().to_string()]));
    assert_eq!(
        document["data"]["oauth_tokens"].as_array().map(Vec::len),
        Some(2)
    );

    wipe(&app).await;
    assert_ne!(picture(&app, &app.address, &keys).await, before);

    let r = post_restore(&app, json!({"backup": document})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let report: Value = r.json().await.expect("json");
    assert_eq!(
        report["created"],
        json!({"integration_configs": 3, "webhook_configurations": 2, "oauth_tokens": 2})
    );
    assert_eq!(
        picture(&app, &app.address, &keys).await,
        before,
        "every masked read and reveal is as before"
    );

    let stored = dump(&app.db.pool).await;
    let r = post_restore(&app, json!({"backup": document, "mode": "replace"})).await;
    let report: Value = r.json().await.expect("json");
    assert_eq!(
        report["unchanged"],
        json!({"integration_configs": 3, "webhook_configurations": 2, "oauth_tokens": 2})
    );
    for what in ["created", "replaced", "deleted"] {
        assert_eq!(
            report[what],
            json!({"integration_configs": 0, "webhook_configurations": 0, "oauth_tokens": 0}),
            "{what}"
        );
    }
    let mut after = dump(&app.db.pool).await;
    // Only the second restore's own audit row is new.
    assert_eq!(
        after["audit_rows"].as_i64(),
        stored["audit_rows"].as_i64().map(|n| n + 1)
    );
    after["audit_rows"] = stored["audit_rows"].clone();
    assert_eq!(
        after, stored,
        "restoring the same file twice changes nothing the second time"
    );
    assert_eq!(app.audit_count("config_restored", Some(true)).await, 2);
    assert_eq!(
        app.audit_count("config_backup_created", Some(true)).await,
        1
    );
}

#[tokio::test]
async fn backup_and_restore_are_for_admins_only() {
    let app = TestApp::spawn().await;
    let viewer = app.token("viewer").await;
    let service = app.token("service").await;
    for token in [&viewer, &service] {
        let r = app
            .request(Method::POST, "/api/config/backup", token)
            .send()
            .await
            .expect("backup");
        problem(r, 403).await;
        let r = app
            .request(Method::POST, "/api/config/restore", token)
            .json(&json!({"backup": {}}))
            .send()
            .await
            .expect("restore");
        problem(r, 403).await;
    }
    assert_eq!(
        app.audit_count("config_backup_created", Some(false)).await,
        2
    );
    assert_eq!(app.audit_count("config_restored", Some(false)).await, 2);
}

#[tokio::test]
async fn a_passphrase_backup_restores_under_another_key_and_a_wrong_passphrase_changes_nothing() {
    let a = TestApp::spawn().await;
    populate(&a).await;
    let before = picture(&a, &a.address, &keyring(&a.vars)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a.json");
    let pass = dir.path().join("pass");
    let wrong = dir.path().join("wrong");
    std::fs::write(&pass, "correct horse battery staple\n").expect("write");
    std::fs::write(&wrong, "incorrect horse battery staple\n").expect("write");
    let (file_arg, pass_arg, wrong_arg) = (
        file.to_str().expect("utf8"),
        pass.to_str().expect("utf8"),
        wrong.to_str().expect("utf8"),
    );

    let out = cli(
        &a.vars,
        &["backup", "--out", file_arg, "--passphrase-file", pass_arg],
    );
    assert!(out.status.success(), "backup: {}", text(&out.stderr));
    let bytes = std::fs::read(&file).expect("read");
    for canary in canaries() {
        assert!(
            !text(&bytes).contains(canary),
            "a passphrase backup holds no plaintext either"
        );
    }
    let keyring_file = dir.path().join("keyring.json");
    let out = cli(
        &a.vars,
        &["backup", "--out", keyring_file.to_str().expect("utf8")],
    );
    assert!(out.status.success(), "backup: {}", text(&out.stderr));

    let b = TestApp::spawn().await; // its own database and its own ENCRYPTION_KEY
    assert_ne!(a.vars["ENCRYPTION_KEY"], b.vars["ENCRYPTION_KEY"]);
    let untouched = dump(&b.db.pool).await;
    for (args, expected) in [
        (
            vec!["restore", file_arg, "--passphrase-file", wrong_arg],
            "passphrase is wrong",
        ),
        (vec!["restore", file_arg], "protected with a passphrase"),
        (
            vec!["restore", keyring_file.to_str().expect("utf8")],
            "key id",
        ),
    ] {
        let out = cli(&b.vars, &args);
        assert!(!out.status.success(), "{args:?} must be refused");
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            dump(&b.db.pool).await,
            untouched,
            "a refused restore changes nothing"
        );
    }

    let out = cli(
        &b.vars,
        &["restore", file_arg, "--passphrase-file", pass_arg],
    );
    assert!(out.status.success(), "restore: {}", text(&out.stderr));
    let keys_b = keyring(&b.vars);
    let after = picture(&b, &b.address, &keys_b).await;
    assert_eq!(after["reveals"], before["reveals"], "reveals match");
    assert_eq!(after["tokens"], before["tokens"], "tokens match");
    assert_eq!(after["configs"], before["configs"], "masked reads match");
    let key_ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT key_id FROM integration_configs UNION SELECT key_id FROM oauth_tokens
         UNION SELECT key_id FROM webhook_configurations WHERE key_id IS NOT NULL",
    )
    .fetch_all(&b.db.pool)
    .await
    .expect("key ids");
    assert_eq!(
        key_ids,
        vec![keys_b.current_id().to_string()],
        "re-sealed under B's key"
    );
}

#[tokio::test]
async fn the_api_takes_and_restores_passphrase_backups_across_keys() {
    let a = TestApp::spawn().await;
    populate(&a).await;
    let before = picture(&a, &a.address, &keyring(&a.vars)).await;
    let p = problem(
        a.post_json("/api/config/backup", &json!({"passphrase": "too short"}))
            .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "passphrase");

    let passphrase = "a passphrase for the api test";
    let file = take_backup(&a, Some(json!({ "passphrase": passphrase }))).await;
    let document: Value = serde_json::from_slice(&file).expect("json");
    assert_eq!(document["protection"]["mode"], "passphrase");
    assert_eq!(document["protection"]["kdf"]["algorithm"], "argon2id");

    let b = TestApp::spawn().await;
    let untouched = dump(&b.db.pool).await;
    let p = problem(
        post_restore(
            &b,
            json!({"backup": document, "passphrase": "not the passphrase at all"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "passphrase");
    assert_eq!(dump(&b.db.pool).await, with_refusal_rows(&untouched, 1));

    let r = post_restore(&b, json!({"backup": document, "passphrase": passphrase})).await;
    assert_eq!(r.status(), 200);
    let after = picture(&b, &b.address, &keyring(&b.vars)).await;
    assert_eq!(
        after, before,
        "masked reads, reveals and tokens match under B's key"
    );
}

//! Scheduled backups, driven a round at a time: files in BACKUP_DIR, retention, the lease and
//! the health report.

use std::time::Duration;

use hsq_config::domain::backup::format;
use hsq_config::domain::backup::schedule::{Round, run_backup_round};
use hsq_config::infra::lock::{Lock, Renewal};
use serde_json::Value;

use crate::support::helpers::TestApp;
use crate::support::ops::{canaries, populate, replica_state, text};
use crate::support::wait::eventually;

fn backup_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read BACKUP_DIR")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn scheduled_rounds_write_backups_and_keep_only_the_newest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_with(|vars| {
        vars.insert(
            "BACKUP_DIR".into(),
            dir.path().to_string_lossy().into_owned(),
        );
        vars.insert("CONFIG_BACKUP_RETAIN".into(), "3".into());
    })
    .await;
    populate(&app).await;
    let state = replica_state(&app.vars).await;

    let mut written = Vec::new();
    for _ in 0..5 {
        match run_backup_round(&state).await.expect("round") {
            Round::Written { path, .. } => written.push(
                path.file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
            ),
            Round::Skipped => panic!("nobody else holds the lease"),
        }
    }
    let newest: Vec<String> = written[2..].to_vec();
    assert_eq!(
        backup_files(dir.path()),
        newest,
        "the newest three remain; no temporary files"
    );
    for name in &newest {
        let bytes = std::fs::read(dir.path().join(name)).expect("read");
        format::parse(&bytes, true).expect("a complete, canonical backup file");
        for canary in canaries() {
            assert!(!text(&bytes).contains(canary));
        }
    }
    assert_eq!(
        app.audit_count("config_backup_created", Some(true)).await,
        5
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let written_total: f64 = metrics
        .lines()
        .find(|l| l.starts_with("hsq_scheduled_backups_total{result=\"ok\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("the backup counter is exported");
    assert!(written_total >= 5.0, "{written_total}");
    assert!(metrics.contains("hsq_backup_last_success_timestamp_seconds "));

    // A temporary file from a writer that died long ago is cleaned up; a fresh one (a backup
    // being written right now) is left alone.
    let abandoned = dir.path().join(".hsq-config-backup-crashed.json.0.tmp");
    let in_flight = dir.path().join(".hsq-config-backup-writing.json.1.tmp");
    for path in [&abandoned, &in_flight] {
        std::fs::write(path, b"{").expect("write");
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&abandoned)
        .and_then(|f| f.set_modified(two_hours_ago))
        .expect("age the file");

    // Another replica holding the lease makes this round step aside.
    let held = Lock::try_acquire(
        &state.redis,
        "lease:backup",
        std::time::Duration::from_secs(60),
        Renewal::None,
    )
    .await
    .expect("redis")
    .expect("free");
    let held_key: bool = state
        .redis
        .query(redis::cmd("EXISTS").arg(format!("{}lease:backup", app.prefix())))
        .await
        .expect("exists");
    assert!(
        held_key,
        "the lease lives under the instance's Redis prefix"
    );
    assert!(matches!(
        run_backup_round(&state).await.expect("round"),
        Round::Skipped
    ));
    held.release().await;
    assert!(matches!(
        run_backup_round(&state).await.expect("round"),
        Round::Written { .. }
    ));
    assert!(
        !abandoned.exists(),
        "an abandoned temporary file is removed"
    );
    assert!(in_flight.exists(), "a fresh temporary file is left alone");
    std::fs::remove_file(&in_flight).expect("remove");
    let files = backup_files(dir.path());
    assert_eq!(files.len(), 3);

    let health: Value = reqwest::get(app.url("/api/config/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(
        health["backup"]["info"]["last_file"].as_str(),
        files.last().map(String::as_str),
        "{health}"
    );
    assert!(health["backup"]["info"]["last_success_at"].is_string());
    assert_eq!(
        health["backup"]["status"], "disabled",
        "this app does not schedule backups itself"
    );
}

#[tokio::test]
async fn an_enabled_scheduler_takes_a_backup_when_one_is_due() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_with(|vars| {
        vars.insert(
            "BACKUP_DIR".into(),
            dir.path().to_string_lossy().into_owned(),
        );
        vars.insert("CONFIG_BACKUP_ENABLED".into(), "true".into());
    })
    .await;
    // No backup has ever run, so the first tick is due.
    let files = eventually(
        "the first scheduled backup, written and audited",
        Duration::from_secs(15),
        async || {
            let files = backup_files(dir.path());
            (!files.is_empty() && app.audit_count("config_backup_created", Some(true)).await == 1)
                .then_some(files)
        },
    )
    .await;
    assert_eq!(files.len(), 1, "one scheduled backup: {files:?}");
    let health: Value = reqwest::get(app.url("/api/config/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["backup"]["status"], "ok", "{health}");
}

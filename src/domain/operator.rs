//! The operator's commands behind the CLI: `backup`, `restore`, `rotate-key`, `audit verify`.
//! Results go to `out` (stdout in the binary); logs go to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::SecretString;

use crate::domain::audit_chain;
use crate::domain::backup::restore::{Mode, RestoreOptions};
use crate::domain::backup::{self, format, schedule};
use crate::domain::{keyring_check, rotation};
use crate::http::auth::Caller;
use crate::infra::crypto::KeyId;
use crate::state::AppState;

/// Reads a passphrase file (one line; a trailing newline is not part of it).
pub fn read_passphrase(path: &Path) -> anyhow::Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
    let text = text.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        !text.is_empty(),
        "passphrase file {} is empty",
        path.display()
    );
    Ok(SecretString::from(text.to_owned()))
}

/// `hsq-config backup [--out FILE|-] [--passphrase-file F]`. Without `--out`, writes a new
/// file into `BACKUP_DIR`.
pub async fn backup(
    state: &AppState,
    out_path: Option<&Path>,
    passphrase: Option<SecretString>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let passphrase = passphrase.or_else(|| state.settings.backup.passphrase.clone());
    let made = backup::create(state, passphrase.as_ref()).await?;
    let written: Option<PathBuf> = match out_path {
        Some(p) if p == Path::new("-") => {
            out.write_all(&made.bytes)?;
            None
        }
        Some(p) => Some(
            schedule::write_atomically(p, made.bytes.clone())
                .await
                .with_context(|| format!("cannot write {}", p.display()))?,
        ),
        None => Some(
            schedule::write_new(&state.settings.backup.dir, &made.bytes)
                .await
                .with_context(|| {
                    format!(
                        "cannot write into BACKUP_DIR {}",
                        state.settings.backup.dir.display()
                    )
                })?,
        ),
    };
    let file = written.as_ref().map(|p| p.display().to_string());
    backup::audit_created(
        state,
        &Caller::system("cli:backup"),
        &made.summary,
        file.as_deref(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(file) = file {
        writeln!(out, "backup written to {file}")?;
        writeln!(out, "{}", serde_json::to_string_pretty(&made.summary)?)?;
    } else {
        eprintln!("{}", serde_json::to_string(&made.summary)?);
    }
    Ok(())
}

/// `hsq-config restore FILE [--dry-run] [--mode merge|replace] [--passphrase-file F]`.
pub async fn restore(
    state: &AppState,
    file: &Path,
    mode: Mode,
    dry_run: bool,
    passphrase: Option<SecretString>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let parsed = format::parse(&bytes, true).context("restore refused")?;
    // Never write under a keyring that cannot open what is stored.
    keyring_check::verify(state).await?;
    let passphrase = passphrase.or_else(|| state.settings.backup.passphrase.clone());
    let options = RestoreOptions {
        mode,
        dry_run,
        passphrase,
    };
    let report = backup::restore::restore(state, &Caller::system("cli:restore"), parsed, &options)
        .await
        .context("restore refused")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(())
}

/// `hsq-config rotate-key [--check] [--batch-size N]`.
pub async fn rotate_key(
    state: &AppState,
    check: bool,
    batch_size: u32,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let keys = state.keyring();
    let current = keys.current_id().to_string();
    if check {
        let per_key = rotation::remaining(state).await?;
        let mut left = 0;
        for (id, count) in &per_key {
            let role = if *id == current {
                "current"
            } else if KeyId::parse(id).is_some_and(|k| keys.knows(k)) {
                left += count;
                "previous"
            } else {
                left += count;
                "unknown"
            };
            writeln!(out, "{id}\t{count}\t{role}")?;
        }
        writeln!(
            out,
            "{left} values remain under keys other than the current key {current}"
        )?;
        return Ok(());
    }
    keyring_check::verify(state).await?;
    let report = rotation::rotate(
        state,
        &Caller::system("cli:rotate-key"),
        batch_size,
        |n, batch| {
            // One line per committed batch, flushed, so an operator (or a test) sees progress.
            let _ = writeln!(
                out,
                "batch {n}: re-sealed {} values under {current}",
                batch.total()
            );
            let _ = out.flush();
        },
    )
    .await?;
    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(())
}

/// `hsq-config audit verify`: fails naming the first row where the chain breaks.
pub async fn audit_verify(state: &AppState, out: &mut impl Write) -> anyhow::Result<()> {
    let report = audit_chain::verify(state).await?;
    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    match report.first_break {
        None => {
            writeln!(out, "audit chain verified: {} rows", report.rows_verified)?;
            Ok(())
        }
        Some(b) => anyhow::bail!("audit chain breaks at row {}: {}", b.row_id, b.reason),
    }
}

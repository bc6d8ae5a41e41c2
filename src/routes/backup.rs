//! `POST /api/config/backup` and `POST /api/config/restore` (admin).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ADMIN;
use crate::domain::audit::attempt;
use crate::domain::backup::restore::{self, Mode, RestoreOptions, RestoreReport};
use crate::domain::backup::{self, format};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Problem};
use crate::http::json::JsonBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(restore_backup))
}

/// Optional body of `POST /api/config/backup`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// Re-seal secrets under a key derived from this passphrase (at least 16 characters), so
    /// the file restores under another `ENCRYPTION_KEY`. Without it, `BACKUP_PASSPHRASE` is
    /// used when set; otherwise secrets stay sealed as stored.
    #[schema(value_type = Option<String>, min_length = 16)]
    pub passphrase: Option<SecretString>,
}

/// Body of `POST /api/config/restore`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The backup document, as `POST /api/config/backup` returned it.
    #[schema(value_type = Object)]
    pub backup: Value,
    #[serde(default)]
    pub mode: Mode,
    /// Report what would be created, replaced and deleted; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Required for backups taken with a passphrase.
    #[schema(value_type = Option<String>)]
    pub passphrase: Option<SecretString>,
}

/// Take a backup now; the response is the backup file. Audited as `config_backup_created`.
#[utoipa::path(post, path = "/api/config/backup", tag = "backup",
    request_body(content = Option<BackupRequest>),
    security(("bearer" = [])),
    responses((status = 200, description = "the backup file (application/json)", content_type = "application/json"),
               (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "config_backup_created",
        &backup::resource(),
        async {
            let request: BackupRequest = if body.is_empty() {
                BackupRequest::default()
            } else {
                body.parse()?
            };
            let passphrase = request.passphrase.as_ref().or(state
                .settings
                .backup
                .passphrase
                .as_ref());
            let made = backup::create(&state, passphrase)
                .await
                .map_err(|e| match e {
                    backup::BackupError::Invalid(message) => ApiError::field("passphrase", message),
                    other => other.into(),
                })?;
            let name = format!(
                "hsq-config-backup-{}.json",
                Utc::now().format("%Y%m%dT%H%M%SZ")
            );
            backup::audit_created(&state, &caller, &made.summary, Some(&name)).await?;
            let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                .map_err(|e| ApiError::Internal(e.into()))?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                made.bytes,
            )
                .into_response())
        },
    )
    .await
}

/// Verify a backup and restore it in one transaction (or report, with `dry_run`). Audited as
/// `config_restored` with the counts.
#[utoipa::path(post, path = "/api/config/restore", tag = "backup",
    request_body = RestoreRequest,
    security(("bearer" = [])),
    responses((status = 200, body = RestoreReport), (status = 403, body = Problem),
               (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn restore_backup(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "config_restored",
        &backup::resource(),
        async {
            let request: RestoreRequest = body.parse()?;
            let parsed = format::parse_value(request.backup, None)?;
            let options = RestoreOptions {
                mode: request.mode,
                dry_run: request.dry_run,
                passphrase: request.passphrase,
            };
            let report = restore::restore(&state, &caller, parsed, &options).await?;
            Ok((
                [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
                Json(report),
            )
                .into_response())
        },
    )
    .await
}

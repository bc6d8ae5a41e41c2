//! The read-only pages: the overview of every provider × environment, health, and the audit
//! log with the API's filters, cursor pagination and the chain's verification.

use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::context::{CONSOLE_AGENT, Signed, encode};
use super::provider::page_url;
use super::render::{Failure, Layout, page};
use super::views::{ConnectionCard, connection_card, label, when};
use crate::domain::audit::{Resource, attempt};
use crate::domain::oauth::vault;
use crate::domain::{Role, audit_chain, audit_log, health};
use crate::http::error::ApiError;
use crate::providers;
use crate::routes::READERS;
use crate::routes::audit::{AuditQuery, parse_filter};
use crate::state::AppState;

/// One provider × environment on the overview.
pub struct Card {
    pub display: &'static str,
    pub environment: &'static str,
    pub href: String,
    pub configured: bool,
    pub enabled: bool,
    pub validation: Option<(String, String)>,
    pub breaker: String,
    pub connection: Option<ConnectionCard>,
    pub account_label: &'static str,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Overview {
    layout: Layout,
    cards: Vec<Card>,
}

pub async fn overview(State(state): State<AppState>, signed: Signed) -> Result<Response, Failure> {
    let resource = Resource::of_kind("status");
    let (status, connections) = attempt(
        &state,
        &signed.caller,
        READERS,
        "status_read",
        &resource,
        async {
            Ok((
                health::status(&state).await?,
                vault::connections(&state).await?,
            ))
        },
    )
    .await?;
    let cards = status
        .integrations
        .iter()
        .map(|i| {
            let spec = providers::spec(i.provider);
            Card {
                display: spec.display_name(),
                environment: i.environment.as_str(),
                href: page_url(i.provider, i.environment),
                configured: i.configured,
                enabled: i.enabled,
                validation: i.last_validation.as_ref().map(|v| {
                    (
                        v.status.clone().unwrap_or_else(|| "unknown".into()),
                        when(&v.at),
                    )
                }),
                breaker: label(&i.breaker.state),
                connection: connections
                    .iter()
                    .find(|c| c.provider == i.provider && c.environment == i.environment)
                    .map(connection_card),
                account_label: spec.oauth().account_id_name,
            }
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &Overview {
            layout: signed.layout("Overview", "overview"),
            cards,
        },
    ))
}

/// A health component as a table row.
pub struct ComponentRow {
    pub name: &'static str,
    pub status: String,
    pub latency: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/health.html")]
struct HealthPage {
    layout: Layout,
    overall: String,
    components: Vec<ComponentRow>,
    breakers: Vec<(String, String, String, u32)>,
    failing: Vec<String>,
    monitor: Option<String>,
}

pub async fn health_page(State(state): State<AppState>, signed: Signed) -> Response {
    let report = health::report(&state).await;
    let row = |name: &'static str, c: &health::Component| ComponentRow {
        name,
        status: c.status.clone(),
        latency: c
            .latency_ms
            .map(|l| format!("{l:.1} ms"))
            .unwrap_or_default(),
        detail: c.detail.clone().unwrap_or_default(),
    };
    let components = vec![
        row("Database", &report.database),
        row("Redis", &report.redis),
        row("Keyring", &report.keyring),
        row("Migrations", &report.migrations),
        row("Backups", &report.backup),
    ];
    let breakers = report
        .breakers
        .iter()
        .map(|b| {
            (
                providers::spec(b.provider).display_name().to_owned(),
                b.environment.to_string(),
                label(&b.state),
                b.failures,
            )
        })
        .collect();
    let monitor = report.monitor.as_ref().map(|m| {
        format!(
            "Round {} finished {}: {} validated, {} skipped",
            m.round,
            when(&m.finished_at),
            m.validations.len(),
            m.skipped.len()
        )
    });
    page(
        StatusCode::OK,
        &HealthPage {
            layout: signed.layout("Health", "health"),
            overall: report.status.clone(),
            components,
            breakers,
            failing: report.failing_integrations.clone(),
            monitor,
        },
    )
}

/// The audit page's query: the API's filters (blank means unset) and its cursor.
#[derive(Deserialize, Default)]
pub struct AuditForm {
    provider: Option<String>,
    environment: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    resource_id: Option<String>,
    success: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

pub struct AuditRowView {
    pub at: String,
    pub actor: String,
    pub console: bool,
    pub action: String,
    pub resource: String,
    pub success: bool,
    pub details: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    layout: Layout,
    filters: Vec<(&'static str, &'static str, String)>,
    providers: Vec<String>,
    environments: Vec<String>,
    provider: String,
    environment: String,
    success: String,
    rows: Vec<AuditRowView>,
    next: Option<String>,
    errors: Vec<String>,
    chain: (String, String),
}

const CHAIN_DEADLINE: Duration = Duration::from_secs(3);

pub async fn audit_page(
    State(state): State<AppState>,
    signed: Signed,
    query: Result<Query<AuditForm>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let set = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let api_query = AuditQuery {
        provider: set(&q.provider),
        environment: set(&q.environment),
        action: set(&q.action),
        actor: set(&q.actor),
        resource_id: set(&q.resource_id),
        success: set(&q.success),
        since: set(&q.since),
        until: set(&q.until),
        limit: Some("50".into()),
        cursor: set(&q.cursor),
    };
    let filters = vec![
        ("action", "Action", set(&q.action).unwrap_or_default()),
        ("actor", "Actor", set(&q.actor).unwrap_or_default()),
        (
            "resource_id",
            "Resource",
            set(&q.resource_id).unwrap_or_default(),
        ),
        (
            "since",
            "Since (RFC 3339)",
            set(&q.since).unwrap_or_default(),
        ),
        (
            "until",
            "Until (RFC 3339)",
            set(&q.until).unwrap_or_default(),
        ),
    ];
    let readers = &[Role::Admin, Role::Viewer];
    let resource = Resource::of_kind("audit_log");
    let listed = attempt(
        &state,
        &signed.caller,
        readers,
        "audit_listed",
        &resource,
        async {
            let (filter, limit) = parse_filter(api_query)?;
            audit_log::page(&state, &filter, limit).await
        },
    )
    .await;
    let (rows, next, errors) = match listed {
        Ok(p) => {
            let next = p.next_cursor.map(|c| {
                let mut url = String::from("/settings/audit?");
                for (name, _, value) in &filters {
                    if !value.is_empty() {
                        url.push_str(&format!("{name}={}&", encode(value)));
                    }
                }
                for (name, value) in [
                    ("provider", &q.provider),
                    ("environment", &q.environment),
                    ("success", &q.success),
                ] {
                    if let Some(v) = set(value) {
                        url.push_str(&format!("{name}={}&", encode(&v)));
                    }
                }
                url.push_str(&format!("cursor={}", encode(&c)));
                url
            });
            let rows = p
                .items
                .iter()
                .map(|rendered| &rendered.row)
                .map(|e| AuditRowView {
                    at: e.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    actor: e.actor_name.clone(),
                    console: e
                        .user_agent
                        .as_deref()
                        .is_some_and(|u| u.starts_with(CONSOLE_AGENT)),
                    action: e.action.clone(),
                    resource: e.resource_id.clone().unwrap_or(e.resource_type.clone()),
                    success: e.success,
                    details: e.details.get().chars().take(400).collect(),
                })
                .collect();
            (rows, next, Vec::new())
        }
        Err(ApiError::Validation(errors)) => (
            Vec::new(),
            None,
            errors
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect(),
        ),
        Err(e) => return Err(e.into()),
    };
    let chain = match tokio::time::timeout(CHAIN_DEADLINE, audit_chain::verify(&state)).await {
        Ok(Ok(report)) if report.ok() => (
            "ok".into(),
            format!(
                "The hash chain verifies: {} rows checked.",
                report.rows_verified
            ),
        ),
        Ok(Ok(report)) => (
            "error".into(),
            report.first_break.map_or_else(String::new, |b| {
                format!("The chain breaks at row {}: {}", b.row_id, b.reason)
            }),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "audit chain verification failed");
            (
                "warn".into(),
                "The chain could not be verified: the database did not answer.".into(),
            )
        }
        Err(_) => (
            "warn".into(),
            "Verification takes longer than the page may wait; run `hsq-config audit verify`."
                .into(),
        ),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(page(
        status,
        &AuditPage {
            layout: signed.layout("Audit log", "audit"),
            filters,
            providers: crate::domain::Provider::ALL
                .iter()
                .map(|p| p.to_string())
                .collect(),
            environments: crate::domain::Environment::ALL
                .iter()
                .map(|e| e.to_string())
                .collect(),
            provider: set(&q.provider).unwrap_or_default(),
            environment: set(&q.environment).unwrap_or_default(),
            success: set(&q.success).unwrap_or_default(),
            rows,
            next,
            errors,
            chain,
        },
    ))
}

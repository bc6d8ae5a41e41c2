//! Webhook endpoints in the console: list (with each endpoint's recent deliveries), create,
//! send a test event, delete. Changes are admin-only and go through the REST API's domain
//! functions, so they are validated and audited the same way.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::SecretString;
use uuid::Uuid;

use super::admin::Done;
use super::context::Signed;
use super::form::PostForm;
use super::provider::Banner;
use super::render::{Failure, Layout, page, see_other};
use super::views::when;
use crate::domain::Provider;
use crate::domain::audit::{Resource, attempt};
use crate::domain::webhook_delivery::{self, AttemptOutcome};
use crate::domain::webhook_log::{self, DeliveryView};
use crate::domain::webhooks::{self, WebhookInput};
use crate::http::error::ApiError;
use crate::routes::{ADMIN, READERS};
use crate::state::AppState;

/// Deliveries shown under each endpoint; the API pages through the rest.
const RECENT_DELIVERIES: i64 = 5;

/// One delivery as the page shows it.
pub struct DeliveryLine {
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    /// The receiver's last HTTP status, or why the attempt did not get one.
    pub last_result: String,
    pub created: String,
    /// When the next attempt is due, for pending deliveries.
    pub next_attempt: String,
}

impl From<DeliveryView> for DeliveryLine {
    fn from(d: DeliveryView) -> Self {
        let last_result = match (d.last_status_code, d.last_error) {
            (Some(code), _) => format!("HTTP {code}"),
            (None, Some(error)) => error,
            (None, None) => "not attempted yet".into(),
        };
        let next_attempt = match (&*d.status, d.next_attempt_at) {
            ("pending", Some(at)) => when(&at),
            _ => String::new(),
        };
        Self {
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_result,
            created: when(&d.created_at),
            next_attempt,
        }
    }
}

/// A webhook id from the path; anything else names no webhook.
fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found("no webhook configuration has this id"))
}

/// What a test send shows as a banner.
fn test_banner(outcome: &AttemptOutcome) -> Banner {
    match (outcome.delivered, outcome.status_code, &outcome.error) {
        (true, Some(code), _) => Banner::ok(format!(
            "Test event delivered: HTTP {code} in {} ms.",
            outcome.latency_ms
        )),
        (_, _, Some(error)) => Banner::error(format!("Test event not delivered: {error}.")),
        (_, Some(code), None) => Banner::error(format!(
            "Test event not delivered: the endpoint answered HTTP {code}."
        )),
        _ => Banner::error("Test event not delivered."),
    }
}

pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub provider: String,
    pub secret: String,
    pub enabled: bool,
    pub description: String,
    /// Why delivery disabled it, when it did.
    pub disabled_reason: String,
    /// Stored event names the catalogue does not know.
    pub warnings: Vec<String>,
    /// The newest deliveries, newest first.
    pub deliveries: Vec<DeliveryLine>,
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    admin: bool,
    hooks: Vec<WebhookRow>,
    providers: Vec<&'static str>,
    banners: Vec<Banner>,
    errors: Vec<String>,
}

async fn webhooks_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    banners: Vec<Banner>,
    errors: Vec<String>,
) -> Result<Response, Failure> {
    let resource = Resource::webhook(None);
    let listed = attempt(
        state,
        &signed.caller,
        READERS,
        "webhook_listed",
        &resource,
        webhooks::list(state),
    )
    .await?;
    // The caller may read webhooks (checked above); deliveries are read the same way.
    let mut hooks = Vec::with_capacity(listed.len());
    for w in listed {
        let deliveries = match webhook_log::deliveries(state, w.id, None, RECENT_DELIVERIES).await {
            Ok(recent) => recent.items.into_iter().map(Into::into).collect(),
            // Deleted between the two reads: it is listed without deliveries.
            Err(ApiError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        hooks.push(WebhookRow {
            id: w.id.to_string(),
            url: w.url,
            events: w.events.join(", "),
            provider: w.provider.map_or_else(|| "any".into(), |p| p.to_string()),
            secret: w.secret.unwrap_or_else(|| "none".into()),
            enabled: w.enabled,
            description: w.description.unwrap_or_default(),
            disabled_reason: w.disabled_reason.unwrap_or_default(),
            warnings: w.warnings,
            deliveries,
        });
    }
    Ok(page(
        status,
        &WebhooksPage {
            layout: signed.layout("Webhooks", "webhooks"),
            admin: signed.is_admin(),
            hooks,
            providers: Provider::ALL.iter().map(|p| p.as_str()).collect(),
            banners,
            errors,
        },
    ))
}

pub async fn webhooks_list(
    State(state): State<AppState>,
    signed: Signed,
    query: Result<Query<Done>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let banners = match query.ok().and_then(|Query(q)| q.done).as_deref() {
        Some("created") => vec![Banner::ok("Webhook created.")],
        Some("deleted") => vec![Banner::ok("Webhook deleted.")],
        _ => Vec::new(),
    };
    webhooks_page(&state, &signed, StatusCode::OK, banners, Vec::new()).await
}

pub async fn create_webhook(
    State(state): State<AppState>,
    form: PostForm,
) -> Result<Response, Failure> {
    let PostForm { signed, fields } = form;
    let provider = match fields.text("provider") {
        "" => None,
        p => match p.parse::<Provider>() {
            Ok(p) => Some(p),
            Err(m) => {
                return webhooks_page(
                    &state,
                    &signed,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Vec::new(),
                    vec![m],
                )
                .await;
            }
        },
    };
    let secret = fields.text("secret");
    let description = fields.text("description");
    let input = WebhookInput {
        url: fields.text("url").to_owned(),
        events: fields
            .text("events")
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect(),
        secret: (!secret.is_empty()).then(|| SecretString::from(secret.to_owned())),
        provider,
        enabled: fields.checked("enabled"),
        description: (!description.is_empty()).then(|| description.to_owned()),
    };
    let resource = Resource::webhook(None);
    let result = attempt(
        &state,
        &signed.caller,
        ADMIN,
        "webhook_created",
        &resource,
        async { webhooks::create(&state, &signed.caller, input).await },
    )
    .await;
    match result {
        // A generated secret is shown this once, on this page (no-store), never in a URL.
        Ok(created) => match created.signing_secret {
            Some(secret) => {
                let banner = Banner::ok(format!(
                    "Webhook created. Its signing secret, shown only now: {secret}"
                ));
                webhooks_page(
                    &state,
                    &signed,
                    StatusCode::CREATED,
                    vec![banner],
                    Vec::new(),
                )
                .await
            }
            None => Ok(see_other("/settings/webhooks?done=created")),
        },
        Err(ApiError::Validation(errors)) => {
            let errors = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            webhooks_page(
                &state,
                &signed,
                StatusCode::UNPROCESSABLE_ENTITY,
                Vec::new(),
                errors,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: PostForm,
) -> Result<Response, Failure> {
    let signed = form.signed;
    let id = parse_id(&id)?;
    let resource = Resource::webhook(Some(id.to_string()));
    attempt(
        &state,
        &signed.caller,
        ADMIN,
        "webhook_deleted",
        &resource,
        async { webhooks::delete(&state, &signed.caller, id).await },
    )
    .await?;
    Ok(see_other("/settings/webhooks?done=deleted"))
}

/// Sends a `webhook.test` event now and shows the attempt's outcome.
pub async fn test_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: PostForm,
) -> Result<Response, Failure> {
    let signed = form.signed;
    let id = parse_id(&id)?;
    let resource = Resource::webhook(Some(id.to_string()));
    let outcome = attempt(
        &state,
        &signed.caller,
        ADMIN,
        "webhook_tested",
        &resource,
        webhook_delivery::send_test(&state, id),
    )
    .await?;
    let banner = test_banner(&outcome);
    webhooks_page(&state, &signed, StatusCode::OK, vec![banner], Vec::new()).await
}

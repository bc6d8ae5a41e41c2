//! API tokens (create: shown once with a copy button; revoke) and webhook configurations
//! (list, create, delete). Admin-only changes, through the REST API's domain functions.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use super::context::Signed;
use super::form::PostForm;
use super::provider::Banner;
use super::render::{Failure, Layout, page, see_other};
use super::views::when;
use crate::domain::audit::{Resource, attempt};
use crate::domain::webhooks::{self, WebhookInput};
use crate::domain::{Provider, Role, api_tokens};
use crate::http::error::ApiError;
use crate::routes::{ADMIN, READERS};
use crate::state::AppState;

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
struct TokensPage {
    layout: Layout,
    admin: bool,
    tokens: Vec<TokenRow>,
    /// The token just created: shown on this response only.
    created: Option<(String, String)>,
    banners: Vec<Banner>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    created: Option<(String, String)>,
    banners: Vec<Banner>,
    error: Option<String>,
) -> Result<Response, Failure> {
    let tokens = if signed.is_admin() {
        let resource = api_tokens::resource(None);
        attempt(
            state,
            &signed.caller,
            ADMIN,
            "api_token_listed",
            &resource,
            api_tokens::list(state),
        )
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id.to_string(),
            name: t.name,
            role: t.role,
            created: format!(
                "{} by {}",
                when(&t.created_at),
                t.created_by.as_deref().unwrap_or("unknown")
            ),
            last_used: t.last_used_at.as_ref().map_or_else(|| "never".into(), when),
            revoked: t.revoked_at.is_some(),
        })
        .collect()
    } else {
        Vec::new()
    };
    Ok(page(
        status,
        &TokensPage {
            layout: signed.layout("API tokens", "tokens"),
            admin: signed.is_admin(),
            tokens,
            created,
            banners,
            error,
        },
    ))
}

pub async fn tokens(
    State(state): State<AppState>,
    signed: Signed,
    query: Result<Query<Done>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let banners = match query.ok().and_then(|Query(q)| q.done).as_deref() {
        Some("revoked") => vec![Banner::ok("The token is revoked; its sessions have ended.")],
        _ => Vec::new(),
    };
    tokens_page(&state, &signed, StatusCode::OK, None, banners, None).await
}

pub async fn create_token(
    State(state): State<AppState>,
    form: PostForm,
) -> Result<Response, Failure> {
    let PostForm { signed, fields } = form;
    let role = match fields.text("role").parse::<Role>() {
        Ok(r) => r,
        Err(_) => {
            let error = Some("Choose a role: admin, viewer or service.".to_owned());
            return tokens_page(
                &state,
                &signed,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Vec::new(),
                error,
            )
            .await;
        }
    };
    let input = api_tokens::NewApiToken {
        name: fields.text("name").to_owned(),
        role,
    };
    let resource = api_tokens::resource(None);
    let result = attempt(
        &state,
        &signed.caller,
        ADMIN,
        "api_token_created",
        &resource,
        async { api_tokens::create(&state, &signed.caller, input).await },
    )
    .await;
    match result {
        Ok(created) => {
            let shown = Some((created.info.name.clone(), created.token));
            let banners = vec![Banner::ok(
                "Token created. Copy it now: it is not shown again.",
            )];
            tokens_page(&state, &signed, StatusCode::OK, shown, banners, None).await
        }
        Err(ApiError::Validation(errors)) => {
            let error = Some(
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            tokens_page(
                &state,
                &signed,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Vec::new(),
                error,
            )
            .await
        }
        Err(ApiError::Conflict(text)) => {
            tokens_page(
                &state,
                &signed,
                StatusCode::CONFLICT,
                None,
                Vec::new(),
                Some(text),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: PostForm,
) -> Result<Response, Failure> {
    let signed = form.signed;
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::not_found("no API token has this id"))?;
    let resource = api_tokens::resource(Some(id));
    attempt(
        &state,
        &signed.caller,
        ADMIN,
        "api_token_revoked",
        &resource,
        async { api_tokens::revoke(&state, &signed.caller, id).await },
    )
    .await?;
    Ok(see_other("/settings/tokens?done=revoked"))
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
    let hooks = attempt(
        state,
        &signed.caller,
        READERS,
        "webhook_listed",
        &resource,
        webhooks::list(state),
    )
    .await?
    .into_iter()
    .map(|w| WebhookRow {
        id: w.id.to_string(),
        url: w.url,
        events: w.events.join(", "),
        provider: w.provider.map_or_else(|| "any".into(), |p| p.to_string()),
        secret: w.secret.unwrap_or_else(|| "none".into()),
        enabled: w.enabled,
        description: w.description.unwrap_or_default(),
        disabled_reason: w.disabled_reason.unwrap_or_default(),
        warnings: w.warnings,
    })
    .collect();
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
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::not_found("no webhook configuration has this id"))?;
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

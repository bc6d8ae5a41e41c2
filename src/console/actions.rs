//! The provider page's buttons: Validate, Reveal (confirmed, audited, shown for 30 seconds),
//! Connect / Reconnect / Disconnect. Each calls the domain function the REST API calls.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::ExposeSecret;

use super::context::Signed;
use super::form::PostForm;
use super::provider::{Banner, Extra, page_url, parse, render};
use super::render::{Failure, Layout, page, see_other};
use crate::domain::audit::{Resource, attempt};
use crate::domain::oauth::{flow, vault};
use crate::domain::{Environment, Provider, Role, integrations, validation};
use crate::http::error::ApiError;
use crate::providers::{self, FieldCheck};
use crate::routes::ADMIN;
use crate::state::AppState;

/// How long revealed values stay on screen.
pub const REVEAL_SECONDS: u32 = 30;

async fn refused(
    state: &AppState,
    signed: &Signed,
    provider: Provider,
    environment: Environment,
    error: ApiError,
) -> Result<Response, Failure> {
    let status = error.status();
    if status.is_server_error() || matches!(error, ApiError::Forbidden) {
        return Err(error.into());
    }
    let text = match &error {
        ApiError::Validation(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    let extra = Extra {
        banners: vec![Banner::error(text)],
        ..Extra::default()
    };
    render(state, signed, provider, environment, status, extra).await
}

pub async fn validate(
    State(state): State<AppState>,
    Path((provider, environment)): Path<(String, String)>,
    form: PostForm,
) -> Result<Response, Failure> {
    let (provider, environment) = parse(&provider, &environment)?;
    let signed = form.signed;
    let resource = Resource::integration(provider, environment);
    let result = attempt(
        &state,
        &signed.caller,
        ADMIN,
        "config_validated",
        &resource,
        async { validation::validate(&state, &signed.caller, provider, environment).await },
    )
    .await;
    match result {
        Ok(_) => Ok(see_other(&format!(
            "{}&done=validated",
            page_url(provider, environment)
        ))),
        Err(e) => refused(&state, &signed, provider, environment, e).await,
    }
}

#[derive(Template)]
#[template(path = "console/reveal.html")]
struct RevealPage {
    layout: Layout,
    provider: &'static str,
    display: &'static str,
    environment: &'static str,
    back: String,
    /// None on the confirmation step; the values after it.
    values: Option<Vec<(&'static str, String)>>,
    seconds: u32,
}

fn reveal_page(
    signed: &Signed,
    provider: Provider,
    environment: Environment,
    values: Option<Vec<(&'static str, String)>>,
) -> RevealPage {
    let display = providers::spec(provider).display_name();
    RevealPage {
        layout: signed.layout(
            format!("Reveal {display} {environment} secrets"),
            provider.as_str(),
        ),
        provider: provider.as_str(),
        display,
        environment: environment.as_str(),
        back: page_url(provider, environment),
        values,
        seconds: REVEAL_SECONDS,
    }
}

/// The confirmation step; viewers are refused here as at the POST.
pub async fn confirm_reveal(
    signed: Signed,
    Path((provider, environment)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let (provider, environment) = parse(&provider, &environment)?;
    if !signed.is_admin() {
        return Err(ApiError::Forbidden.into());
    }
    Ok(page(
        StatusCode::OK,
        &reveal_page(&signed, provider, environment, None),
    ))
}

/// The decrypted values, audited `secret_revealed` like the API's reveal.
pub async fn reveal(
    State(state): State<AppState>,
    Path((provider, environment)): Path<(String, String)>,
    form: PostForm,
) -> Result<Response, Failure> {
    let (provider, environment) = parse(&provider, &environment)?;
    let signed = form.signed;
    let resource = Resource::integration(provider, environment);
    // The console offers reveal to admins only (service tokens cannot sign in).
    let revealed = attempt(
        &state,
        &signed.caller,
        &[Role::Admin],
        "secret_revealed",
        &resource,
        async { integrations::reveal(&state, &signed.caller, provider, environment).await },
    )
    .await;
    let revealed = match revealed {
        Ok(r) => r,
        Err(e) => return refused(&state, &signed, provider, environment, e).await,
    };
    let values = providers::spec(provider)
        .fields()
        .iter()
        .filter(|f| matches!(f.check, FieldCheck::Secret(_)))
        .filter_map(|f| {
            revealed
                .secrets
                .get(f.name)
                .map(|v| (f.label, v.expose_secret().to_owned()))
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &reveal_page(&signed, provider, environment, Some(values)),
    ))
}

/// Starts an OAuth flow that returns to this page, and sends the browser to the provider.
pub async fn connect(
    State(state): State<AppState>,
    Path((provider, environment)): Path<(String, String)>,
    form: PostForm,
) -> Result<Response, Failure> {
    let (provider, environment) = parse(&provider, &environment)?;
    // A form field the page may offer; without it another account is refused at the callback.
    let replace_account = form.fields.checked("replace_account");
    let signed = form.signed;
    let return_to = format!("{}{}", signed.origin, page_url(provider, environment));
    let resource = vault::resource(provider, environment);
    let input = flow::AuthorizeInput {
        environment,
        return_to,
        replace_account,
    };
    let result = attempt(
        &state,
        &signed.caller,
        ADMIN,
        "oauth_authorize_started",
        &resource,
        async { flow::authorize(&state, &signed.caller, provider, input).await },
    )
    .await;
    match result {
        Ok(out) => Ok(see_other(&out.authorization_url)),
        Err(ApiError::Validation(errors)) if errors.iter().any(|e| e.field == "return_to") => {
            let text = format!(
                "This console's address ({}) is not an allowed OAuth return origin: set SETTINGS_PUBLIC_URL to it, or add it to OAUTH_RETURN_ALLOWED_ORIGINS.",
                signed.origin
            );
            let extra = Extra {
                banners: vec![Banner::error(text)],
                ..Extra::default()
            };
            render(
                &state,
                &signed,
                provider,
                environment,
                StatusCode::UNPROCESSABLE_ENTITY,
                extra,
            )
            .await
        }
        Err(e) => refused(&state, &signed, provider, environment, e).await,
    }
}

pub async fn disconnect(
    State(state): State<AppState>,
    Path((provider, environment)): Path<(String, String)>,
    form: PostForm,
) -> Result<Response, Failure> {
    let (provider, environment) = parse(&provider, &environment)?;
    let signed = form.signed;
    let resource = vault::resource(provider, environment);
    let result = attempt(
        &state,
        &signed.caller,
        ADMIN,
        "oauth_disconnected",
        &resource,
        async { vault::disconnect(&state, &signed.caller, provider, environment).await },
    )
    .await;
    match result {
        Ok(_) => Ok(see_other(&format!(
            "{}&done=disconnected",
            page_url(provider, environment)
        ))),
        Err(e) => refused(&state, &signed, provider, environment, e).await,
    }
}

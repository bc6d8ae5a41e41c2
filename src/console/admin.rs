//! API tokens (create: shown once with a copy button; revoke). Admin-only changes, through
//! the REST API's domain functions.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::context::Signed;
use super::form::PostForm;
use super::provider::Banner;
use super::render::{Failure, Layout, page, see_other};
use super::views::when;
use crate::domain::audit::attempt;
use crate::domain::{Role, api_tokens};
use crate::http::error::ApiError;
use crate::routes::ADMIN;
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
    pub done: Option<String>,
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

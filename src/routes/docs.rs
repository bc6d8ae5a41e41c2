//! `GET /api/openapi.json` (OpenAPI 3.1 from the handlers), `/api/docs` and `/api`.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_scalar::Scalar;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hsq-config",
        description = "Configuration management for the HubSpot–Stripe–QuickBooks bridge: encrypted integration settings, webhooks, API tokens and an audit log.",
    ),
    paths(
        super::health::live, super::health::ready, super::health::detailed,
        super::status::status,
        super::integrations::list, super::integrations::read, super::integrations::replace,
        super::integrations::patch, super::integrations::remove, super::integrations::reveal,
        super::integrations::validate,
        super::webhooks::list, super::webhooks::create, super::webhooks::read,
        super::webhooks::patch, super::webhooks::remove,
        super::api_tokens::list, super::api_tokens::create, super::api_tokens::revoke,
        super::audit::list,
        super::backup::create, super::backup::restore_backup,
        super::oauth::authorize, super::oauth::callback, super::oauth::connection,
        super::oauth::disconnect, super::oauth::token,
    ),
    components(schemas(crate::http::error::Problem, crate::http::error::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "integrations", description = "Provider configurations; secrets sealed and masked"),
        (name = "webhooks", description = "Webhook endpoints and signing secrets"),
        (name = "api-tokens", description = "Bearer tokens and roles"),
        (name = "audit", description = "Who changed or read what"),
        (name = "backup", description = "Backups and verified restores"),
        (name = "oauth", description = "OAuth connections: browser flow, tokens, disconnect"),
        (name = "health", description = "Liveness, readiness and status"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api", get(index))
        .route("/api/openapi.json", get(spec))
        .route("/api/docs", get(docs))
}

async fn index() -> Json<serde_json::Value> {
    Json(json!({
        "name": "hsq-config",
        "version": env!("CARGO_PKG_VERSION"),
        "openapi": "/api/openapi.json",
        "docs": "/api/docs",
    }))
}

async fn spec() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The Scalar reference page; its script loads in the browser, so nothing downloads at build.
async fn docs() -> Response {
    let html = Scalar::new(ApiDoc::openapi()).to_html();
    let mut response = Html(html).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; \
             style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; \
             font-src data: https://fonts.gstatic.com https://cdn.jsdelivr.net; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

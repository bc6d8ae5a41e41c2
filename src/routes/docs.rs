//! `GET /api/openapi.json` (OpenAPI 3.1, built from the router's handlers), `/api/docs` and
//! `/api`. `ApiDoc` holds what is not a route: the title, shared schemas, security and tags.

use std::sync::Arc;

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

/// `/api`, `/api/openapi.json` and `/api/docs` for `spec`, the document built from the router.
/// Both are rendered once, here.
pub fn router(spec: utoipa::openapi::OpenApi) -> Router<AppState> {
    let page: Arc<str> = Scalar::new(spec.clone()).to_html().into();
    let json: Arc<str> = spec.to_json().unwrap_or_default().into();
    Router::new()
        .route("/api", get(index))
        .route(
            "/api/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        json.to_string(),
                    )
                }
            }),
        )
        .route(
            "/api/docs",
            get(move || {
                let page = page.clone();
                async move { docs(&page) }
            }),
        )
}

async fn index() -> Json<serde_json::Value> {
    Json(json!({
        "name": "hsq-config",
        "version": env!("CARGO_PKG_VERSION"),
        "openapi": "/api/openapi.json",
        "docs": "/api/docs",
    }))
}

/// The Scalar reference page; its script loads in the browser, so nothing downloads at build.
fn docs(page: &str) -> Response {
    let mut response = Html(page.to_owned()).into_response();
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

//! `GET /api/openapi.json` (OpenAPI 3.1, built from the router's handlers), `/api/docs` and
//! `/api`. `ApiDoc` holds what is not a route: the title, shared schemas, security and tags.

use std::sync::Arc;

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_scalar::Scalar;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hsq-config",
        description = "Configuration management for the HubSpot–Stripe–QuickBooks bridge: encrypted integration settings, webhooks, API tokens and an audit log.",
    ),
    components(schemas(
        crate::http::error::Problem,
        crate::http::error::FieldError,
        crate::domain::events::EventType
    )),
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

/// The whole document: `ApiDoc` with the router's paths, and every operation's problem
/// responses declared the way the service sends them.
pub fn document(paths: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(paths);
    for (path, item) in doc.paths.paths.iter_mut() {
        let api = path.starts_with("/api/config/");
        let with_path_params = path.contains('{');
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            declare_problems(op, api, with_path_params);
        }
    }
    doc
}

/// Problems are `application/problem+json`; each operation lists every status it can answer
/// with, so clients (and schemathesis) see the whole contract.
fn declare_problems(op: &mut Operation, api: bool, with_path_params: bool) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let has_query = op
        .parameters
        .as_ref()
        .is_some_and(|ps| ps.iter().any(|p| p.parameter_in == ParameterIn::Query));
    let mut statuses: Vec<(&str, &str)> = vec![("400", "the request could not be read")];
    if secured {
        statuses.push(("401", "no valid bearer token"));
        statuses.push(("403", "this token's role may not do this"));
    }
    if with_path_params {
        statuses.push(("404", "no such resource"));
    }
    if has_body {
        statuses.push(("413", "the body is larger than the limit"));
        statuses.push(("415", "the body is not JSON in UTF-8"));
    }
    if has_body || has_query || secured {
        statuses.push(("422", "invalid fields, each named"));
    }
    if api {
        statuses.push(("429", "rate limited; see Retry-After"));
    }
    statuses.push((
        "503",
        "a dependency is unavailable or the request timed out; see Retry-After",
    ));
    let problem = || Content::new(Some(RefOr::Ref(Ref::from_schema_name("Problem"))));
    for (_, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(response) = response {
            if let Some(content) = response.content.shift_remove("application/json") {
                let is_problem = matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
                let key = if is_problem {
                    "application/problem+json"
                } else {
                    "application/json"
                };
                response.content.insert(key.to_owned(), content);
            }
        }
    }
    for (status, description) in statuses {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content("application/problem+json", problem())
                        .build(),
                )
            });
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

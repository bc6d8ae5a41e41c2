//! The settings console at `/settings/` (docs/console.md): server-rendered pages over the same
//! domain functions the REST API calls, so every change is validated and audited the same way
//! (its audit rows carry `hsq-console` in `user_agent`).
//!
//! HTTP layer, beside `routes/`: `context` (who is signed in, origin and https), `session`
//! (Redis sessions), `form` (origin and CSRF checks of every state-changing form), `render`
//! (layout, pages, errors), and one file per group of pages. Templates live in
//! `templates/console/` and are compiled into the binary by askama, assets included.

mod actions;
mod admin;
mod assets;
mod context;
mod form;
mod pages;
mod provider;
mod render;
mod save;
pub mod session;
mod signin;
mod views;
mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self as mw, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};

pub use context::CONSOLE_AGENT;

use crate::domain::Provider;
use crate::state::AppState;

/// Every console route, with the console's own headers; empty when `SETTINGS_UI_ENABLED=false`.
pub fn router(state: &AppState) -> Router<AppState> {
    if !state.settings.console.enabled {
        return Router::new();
    }
    let headers = headers(state);
    Router::new()
        .route("/settings", get(|| async { Redirect::to("/settings/") }))
        .route("/settings/", get(pages::overview))
        .route("/settings/signin", get(signin::form).post(signin::submit))
        .route("/settings/signout", post(signin::signout))
        .route("/settings/assets/{name}", get(assets::asset))
        .route("/settings/health", get(pages::health_page))
        .route("/settings/audit", get(pages::audit_page))
        .route(
            "/settings/tokens",
            get(admin::tokens).post(admin::create_token),
        )
        .route("/settings/tokens/{id}/revoke", post(admin::revoke_token))
        .route(
            "/settings/webhooks",
            get(webhooks::webhooks_list).post(webhooks::create_webhook),
        )
        .route(
            "/settings/webhooks/{id}/delete",
            post(webhooks::delete_webhook),
        )
        .route("/settings/webhooks/{id}/test", post(webhooks::test_webhook))
        .route("/settings/{provider}", get(provider::show))
        .route("/settings/{provider}/{environment}", post(save::save))
        .route(
            "/settings/{provider}/{environment}/validate",
            post(actions::validate),
        )
        .route(
            "/settings/{provider}/{environment}/reveal",
            get(actions::confirm_reveal).post(actions::reveal),
        )
        .route(
            "/settings/{provider}/{environment}/connect",
            post(actions::connect),
        )
        .route(
            "/settings/{provider}/{environment}/disconnect",
            post(actions::disconnect),
        )
        .layer(mw::from_fn(move |req: Request, next: Next| {
            let headers = headers.clone();
            async move { with_headers(&headers, next.run(req).await) }
        }))
}

/// The console's Content-Security-Policy: scripts, styles and images from the console's own
/// files only (no inline code), forms to itself and to the providers' consent pages (a
/// Connect form is redirected there).
pub fn content_security_policy(state: &AppState) -> String {
    let mut form_action = vec!["'self'".to_owned()];
    for p in Provider::ALL {
        let origin = state
            .settings
            .oauth
            .endpoints(p)
            .authorize
            .origin()
            .ascii_serialization();
        if !form_action.contains(&origin) {
            form_action.push(origin);
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action {}; frame-ancestors 'none'; base-uri 'none'",
        form_action.join(" ")
    )
}

fn headers(state: &AppState) -> std::sync::Arc<Vec<(HeaderName, HeaderValue)>> {
    let csp = HeaderValue::from_str(&content_security_policy(state))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    std::sync::Arc::new(vec![
        (header::CONTENT_SECURITY_POLICY, csp),
        // Pages can show revealed secrets and new tokens; nothing is kept.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // `same-origin` keeps the Origin header on the console's own form posts (with
        // `no-referrer` browsers send `Origin: null`), and tells other sites nothing.
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ])
}

fn with_headers(headers: &[(HeaderName, HeaderValue)], mut response: Response) -> Response {
    for (name, value) in headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

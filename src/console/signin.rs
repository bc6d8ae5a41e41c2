//! Signing in with an API token (admin or viewer), and out. Every attempt, good or bad, is
//! audited (`console_signed_in`, never with the token) and counted against the client's
//! address in Redis: `SETTINGS_SIGNIN_ATTEMPTS` per `SETTINGS_SIGNIN_WINDOW`.

use askama::Template;
use axum::extract::{FromRequest, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::context::{console_meta, is_https, same_origin};
use super::form::PostForm;
use super::render::{Failure, Layout, message_page, page, see_other};
use super::session;
use crate::domain::Role;
use crate::domain::audit::{self, Resource};
use crate::http::auth::{Caller, RequestMeta, authenticate};
use crate::http::error::ApiError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SignInPage {
    layout: Layout,
    next: String,
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    next: Option<String>,
    notice: Option<String>,
}

/// Only this console's own pages are places to go after signing in.
fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with("/settings") && !n.starts_with("/settings/signin"))
        .filter(|n| !n.contains("//") && !n.contains('\\'))
        .unwrap_or("/settings/")
        .to_owned()
}

fn notice_text(notice: Option<&str>) -> Option<&'static str> {
    match notice? {
        "signed_out" => Some("You are signed out."),
        "expired" => Some("Your session ended. Sign in again to continue."),
        "revoked" => Some("The API token this session was started with was revoked."),
        _ => None,
    }
}

pub async fn form(
    query: Result<Query<SignInQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    page(
        StatusCode::OK,
        &SignInPage {
            layout: Layout::signed_out("Sign in"),
            next: safe_next(q.next.as_deref()),
            notice: notice_text(q.notice.as_deref()),
            error: None,
        },
    )
}

/// Counts this attempt; false when the client is over its limit.
async fn within_limit(state: &AppState, meta: &RequestMeta) -> Result<(bool, u64), ApiError> {
    let settings = &state.settings.console;
    let who = meta.client_ip.as_deref().unwrap_or("unknown");
    let key = state.redis.key(&format!("console:signin:{who}"));
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(&key)
        .arg(0)
        .arg("EX")
        .arg(settings.signin_window.as_secs())
        .arg("NX")
        .ignore()
        .cmd("INCR")
        .arg(&key);
    let (count,): (u64,) = state
        .redis
        .pipeline(&pipe)
        .await
        .map_err(|e| ApiError::unavailable("the session store (Redis)", e))?;
    Ok((count <= u64::from(settings.signin_attempts), count))
}

async fn record(state: &AppState, caller: &Caller, success: bool, outcome: &str) {
    let details = json!({ "outcome": outcome, "role": caller.role });
    let row = audit::row(
        caller,
        "console_signed_in",
        &Resource::of_kind("console_session"),
        success,
        details,
    );
    let result = async {
        let mut conn = state.db.acquire().await?;
        audit::write(&mut conn, &row).await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error.code = e.code(), "could not audit a console sign-in");
    }
}

fn signin_again(status: StatusCode, next: String, error: &'static str) -> Response {
    page(
        status,
        &SignInPage {
            layout: Layout::signed_out("Sign in"),
            next,
            notice: None,
            error: Some(error),
        },
    )
}

/// The sign-in form: checked against this console's origin (no session yet, so no CSRF token);
/// a new session id every time, and the one the browser held is ended.
pub async fn submit(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    match signin(&state, parts, body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn signin(
    state: &AppState,
    mut parts: Parts,
    body: axum::body::Body,
) -> Result<Response, Response> {
    let https = is_https(state, &parts);
    if !same_origin(state, &parts.headers, https) {
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "The form was refused",
            "The sign-in form was not sent from this console's own page.",
        ));
    }
    let meta = console_meta(&mut parts, state).await;
    let previous = session::cookie_value(&parts.headers, https);
    let req = axum::extract::Request::from_parts(parts, body);
    let fields = axum::Form::<Vec<(String, String)>>::from_request(req, state)
        .await
        .map(|axum::Form(f)| super::form::Fields(f))
        .map_err(|_| {
            signin_again(
                StatusCode::BAD_REQUEST,
                "/settings/".into(),
                "The form could not be read.",
            )
        })?;
    let next = safe_next(fields.get("next"));
    let anonymous = Caller {
        token_id: None,
        name: "anonymous".into(),
        role: Role::Viewer,
        meta: meta.clone(),
    };
    let (allowed, count) = within_limit(state, &meta)
        .await
        .map_err(|e| Failure(e).into_response())?;
    if !allowed {
        // One row per client and window is enough to see the attack.
        if count == u64::from(state.settings.console.signin_attempts) + 1 {
            record(state, &anonymous, false, "rate_limited").await;
        }
        return Err(signin_again(
            StatusCode::TOO_MANY_REQUESTS,
            next,
            "Too many sign-in attempts from your address. Wait a few minutes and try again.",
        ));
    }
    let token = fields.text("token");
    if token.is_empty() || token.len() > 512 {
        record(state, &anonymous, false, "no_token").await;
        return Err(signin_again(
            StatusCode::UNPROCESSABLE_ENTITY,
            next,
            "Paste an API token to sign in.",
        ));
    }
    let caller = match authenticate(state, token, meta).await {
        Ok(c) => c,
        Err(ApiError::Unauthorized) => {
            record(state, &anonymous, false, "unknown_token").await;
            return Err(signin_again(
                StatusCode::UNAUTHORIZED,
                next,
                "That token is not valid: it is unknown or was revoked.",
            ));
        }
        Err(e) => return Err(Failure(e).into_response()),
    };
    if !matches!(caller.role, Role::Admin | Role::Viewer) {
        record(state, &caller, false, "role_not_allowed").await;
        return Err(signin_again(
            StatusCode::FORBIDDEN,
            next,
            "Service tokens cannot sign in to the console; use an admin or viewer token.",
        ));
    }
    if let Some(old) = previous {
        session::destroy(state, &old).await;
    }
    let id = session::create(state, &caller).await.map_err(|e| {
        Failure(ApiError::unavailable("the session store (Redis)", e)).into_response()
    })?;
    record(state, &caller, true, "ok").await;
    let mut response = see_other(&next);
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(state, &id, https)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Ends the session in Redis and clears the cookie.
pub async fn signout(State(state): State<AppState>, form: PostForm) -> Response {
    let signed = form.signed;
    session::destroy(&state, &signed.session_id).await;
    let row = audit::row(
        &signed.caller,
        "console_signed_out",
        &Resource::of_kind("console_session"),
        true,
        json!({}),
    );
    if let Ok(mut conn) = state.db.acquire().await {
        if let Err(e) = audit::write(&mut conn, &row).await {
            tracing::error!(error.code = e.code(), "could not audit a console sign-out");
        }
    }
    let mut response = see_other("/settings/signin?notice=signed_out");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(signed.https)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

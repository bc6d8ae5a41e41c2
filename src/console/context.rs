//! What every console request starts from: who is signed in (the session, as a [`Caller`]
//! tagged as the console's), whether the console is on https, its origin, and the checks a
//! state-changing form must pass (same origin, CSRF token).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::render::{Layout, bounce, message_page, see_other};
use super::session::{self, Missing, Session};
use crate::domain::Role;
use crate::http::auth::{Caller, RequestMeta};
use crate::http::client_ip::client_ip;
use crate::state::AppState;

/// Audit rows of console actions carry this in `user_agent`, ahead of the browser's.
pub const CONSOLE_AGENT: &str = "hsq-console";

/// Whether this request reached the console over https: `SETTINGS_PUBLIC_URL` says so, or a
/// trusted proxy (`TRUSTED_PROXIES`) says `X-Forwarded-Proto: https`.
pub fn is_https(state: &AppState, parts: &Parts) -> bool {
    if state.settings.console.https() {
        return true;
    }
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = peer.is_some_and(|ip| {
        state
            .settings
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&ip))
    });
    trusted
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The origin this request addressed (`scheme://host[:port]` from `Host`), and
/// `SETTINGS_PUBLIC_URL`'s when set.
pub fn own_origins(state: &AppState, headers: &HeaderMap, https: bool) -> Vec<String> {
    let mut origins = Vec::new();
    if let Some(url) = &state.settings.console.public_url {
        origins.push(url.origin().ascii_serialization());
    }
    if let Some(host) = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
    {
        let scheme = if https { "https" } else { "http" };
        origins.push(format!("{scheme}://{}", host.to_ascii_lowercase()));
    }
    origins
}

/// A state-changing request must come from a page of this console: its `Origin` (or, when a
/// browser sends none, its `Referer`) must be one of [`own_origins`].
pub fn same_origin(state: &AppState, headers: &HeaderMap, https: bool) -> bool {
    let allowed = own_origins(state, headers, https);
    let origin = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(o) => Some(o.to_ascii_lowercase()),
        None => headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| reqwest::Url::parse(r).ok())
            .map(|u| u.origin().ascii_serialization()),
    };
    origin.is_some_and(|o| allowed.contains(&o))
}

/// The request's facts for audit rows, marked as the console's.
pub async fn console_meta(parts: &mut Parts, state: &AppState) -> RequestMeta {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let browser = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown browser");
    RequestMeta {
        request_id: parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        client_ip: client_ip(peer, &parts.headers, &state.settings.trusted_proxies)
            .map(|ip| ip.to_string()),
        user_agent: Some(
            format!("{CONSOLE_AGENT}; {browser}")
                .chars()
                .take(512)
                .collect(),
        ),
    }
}

/// A signed-in console request.
pub struct Signed {
    pub session: Session,
    pub session_id: String,
    pub caller: Caller,
    pub https: bool,
    /// The console's origin as the browser addressed it: OAuth flows return here.
    pub origin: String,
}

impl Signed {
    pub fn is_admin(&self) -> bool {
        self.session.role == Role::Admin
    }

    /// The layout of a page this user sees.
    pub fn layout(&self, title: impl Into<String>, section: &'static str) -> Layout {
        Layout::signed_in(title.into(), section, &self.session)
    }
}

impl<S> FromRequestParts<S> for Signed
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let https = is_https(&state, parts);
        let here = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let next = here
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/settings/".into());
        let Some(id) = session::cookie_value(&parts.headers, https) else {
            // A SameSite=Strict cookie is withheld when a cross-site redirect (an OAuth
            // provider sending the browser back) brings the user here: one same-origin hop
            // and the browser sends it.
            let cross_site = parts
                .headers
                .get("sec-fetch-site")
                .is_some_and(|v| v == "cross-site");
            if cross_site && parts.method == Method::GET {
                return Err(bounce(&next));
            }
            return Err(to_signin(&next, None, https));
        };
        let session = match session::load(&state, &id).await {
            Ok(s) => s,
            Err(Missing::SignedOut) => return Err(to_signin(&next, Some("expired"), https)),
            Err(Missing::Revoked) => return Err(to_signin(&next, Some("revoked"), https)),
            Err(Missing::Unavailable) => {
                return Err(message_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The console is unavailable",
                    "Sessions are kept in Redis, which did not answer. Try again in a moment.",
                ));
            }
        };
        let meta = console_meta(parts, &state).await;
        let caller = Caller {
            token_id: session.token_id,
            name: session.name.clone(),
            role: session.role,
            meta,
        };
        let origin = own_origins(&state, &parts.headers, https)
            .pop()
            .unwrap_or_default();
        Ok(Self {
            session,
            session_id: id,
            caller,
            https,
            origin,
        })
    }
}

fn to_signin(next: &str, notice: Option<&str>, https: bool) -> Response {
    let mut target = format!("/settings/signin?next={}", encode(next));
    if let Some(n) = notice {
        target.push_str("&notice=");
        target.push_str(n);
    }
    let mut response = see_other(&target);
    if notice.is_some() {
        if let Ok(v) = session::clear_cookie(https).parse() {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    response.into_response()
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

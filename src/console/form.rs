//! A state-changing console form: sent from this console's own origin, by a signed-in user,
//! with the session's CSRF token. Anything else is refused before a handler runs, audited, and
//! changes nothing.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::Response;

use super::context::{Signed, same_origin};
use super::render::message_page;
use super::session::same_token;
use crate::domain::audit::{self, Resource};
use crate::http::error::ApiError;
use crate::state::AppState;

/// Submitted fields, in order (a checkbox list may repeat a name).
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    /// The first value of `name`, or "" when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A signed-in user's form that passed the origin and CSRF checks.
pub struct PostForm {
    pub signed: Signed,
    pub fields: Fields,
}

fn refused(text: &str) -> Response {
    message_page(StatusCode::FORBIDDEN, "The form was refused", text)
}

impl<S> FromRequest<S> for PostForm
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let resource = Resource::of_kind("console_form");
        let origin_ok = same_origin(&app, &parts.headers, signed.https);
        let req = Request::from_parts(parts, body);
        let form = axum::Form::<Vec<(String, String)>>::from_request(req, state).await;
        let fields = match form {
            Ok(axum::Form(f)) => Fields(f),
            Err(_) => {
                return Err(message_page(
                    StatusCode::BAD_REQUEST,
                    "The form could not be read",
                    "Send it again from the console's page.",
                ));
            }
        };
        let token_ok = fields
            .get("_csrf")
            .is_some_and(|t| same_token(t, &signed.session.csrf));
        if !origin_ok || !token_ok {
            audit::record_refusal(
                &app,
                &signed.caller,
                if origin_ok {
                    "console_csrf_refused"
                } else {
                    "console_origin_refused"
                },
                &resource,
                &ApiError::Forbidden,
            )
            .await;
            return Err(refused(if origin_ok {
                "The form's security token is missing or out of date. Reload the page and try again."
            } else {
                "The form was not sent from this console's own pages."
            }));
        }
        Ok(Self { signed, fields })
    }
}

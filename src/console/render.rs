//! Pages as responses: the layout every page shares, rendering a template with a status,
//! redirects, and the pages for errors.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::session::Session;
use crate::domain::Provider;
use crate::http::error::ApiError;
use crate::providers;

/// A link in the navigation.
pub struct NavItem {
    pub href: String,
    pub label: &'static str,
    pub section: String,
}

/// Who is signed in, as the layout shows it.
pub struct User {
    pub name: String,
    pub role: &'static str,
}

/// What the shared layout (`templates/console/base.html`) needs.
pub struct Layout {
    pub title: String,
    /// The navigation entry to mark as current.
    pub section: String,
    pub user: Option<User>,
    /// The session's CSRF token, for the forms on the page (the sign-out form included).
    pub csrf: String,
    pub nav: Vec<NavItem>,
}

fn nav() -> Vec<NavItem> {
    let mut items = vec![NavItem {
        href: "/settings/".into(),
        label: "Overview",
        section: "overview".into(),
    }];
    for p in Provider::ALL {
        items.push(NavItem {
            href: format!("/settings/{p}"),
            label: providers::spec(p).display_name(),
            section: p.as_str().into(),
        });
    }
    for (href, label, section) in [
        ("/settings/audit", "Audit log", "audit"),
        ("/settings/tokens", "API tokens", "tokens"),
        ("/settings/webhooks", "Webhooks", "webhooks"),
        ("/settings/health", "Health", "health"),
    ] {
        items.push(NavItem {
            href: href.into(),
            label,
            section: section.into(),
        });
    }
    items
}

impl Layout {
    pub fn signed_in(title: String, section: &str, session: &Session) -> Self {
        Self {
            title,
            section: section.into(),
            user: Some(User {
                name: session.name.clone(),
                role: session.role.as_str(),
            }),
            csrf: session.csrf.clone(),
            nav: nav(),
        }
    }

    pub fn signed_out(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            section: String::new(),
            user: None,
            csrf: String::new(),
            nav: Vec::new(),
        }
    }
}

/// Renders `template` as the response body with `status`.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console template did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, Html(FALLBACK.to_owned())).into_response()
        }
    }
}

const FALLBACK: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error</title></head><body><p>The page could not be shown.</p></body></html>";

/// 303 to `location` (a path of this console).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/settings/")]).into_response(),
    }
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    layout: Layout,
    heading: &'a str,
    text: &'a str,
    continue_to: Option<&'a str>,
}

/// A page that says one thing, with a link back to the overview.
pub fn message_page(status: StatusCode, heading: &str, text: &str) -> Response {
    page(
        status,
        &MessagePage {
            layout: Layout::signed_out(heading),
            heading,
            text,
            continue_to: None,
        },
    )
}

#[derive(Template)]
#[template(path = "console/bounce.html")]
struct Bounce<'a> {
    layout: Layout,
    next: &'a str,
}

/// One same-origin hop to `next` (a refresh, which needs no script), so a `SameSite=Strict`
/// session cookie withheld after a cross-site redirect is sent.
pub fn bounce(next: &str) -> Response {
    let next = if next.starts_with("/settings") {
        next
    } else {
        "/settings/"
    };
    page(
        StatusCode::OK,
        &Bounce {
            layout: Layout::signed_out("Continue"),
            next,
        },
    )
}

/// An API error as a console page: 4xx say what the API says, 5xx say nothing of the cause
/// (it is logged once, here).
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!(error.code = self.0.code(), error.cause_chain = ?self.0, "console request failed");
            return message_page(
                status,
                "Something went wrong",
                "The request could not be completed. Try again; if it keeps failing, the service log has the cause.",
            );
        }
        let (heading, text) = match &self.0 {
            ApiError::Forbidden => (
                "Not allowed",
                "Your API token's role may not do this. Sign in with an admin token to make changes."
                    .to_owned(),
            ),
            ApiError::RateLimited(_) => (
                "Too many attempts",
                "Wait a few minutes before trying again.".to_owned(),
            ),
            other => ("The request was refused", other.to_string()),
        };
        message_page(status, heading, &text)
    }
}

//! The provider page (`/settings/{provider}?environment=`): the fields of the provider's spec,
//! secrets masked, the last validation and the OAuth connection; `save` handles its form.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::context::Signed;
use super::render::{Failure, Layout, page};
use super::views::{ConnectionCard, connection_card, when};
use crate::domain::integrations::{self, ConfigView};
use crate::domain::oauth::vault;
use crate::domain::{Environment, Provider};
use crate::http::error::{ApiError, FieldError};
use crate::providers::{self, FieldCheck};
use crate::state::AppState;

/// One input of the form.
pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub secret: bool,
    /// A plain setting's value (never a secret's).
    pub value: String,
    /// A secret's masked value, when one is stored.
    pub masked: Option<String>,
    pub error: Option<String>,
}

pub struct EnvTab {
    pub name: &'static str,
    pub href: String,
    pub current: bool,
}

/// A message across the top of the page.
pub struct Banner {
    /// `ok`, `warn` or `error`.
    pub kind: &'static str,
    pub text: String,
}

impl Banner {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            kind: "ok",
            text: text.into(),
        }
    }
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error",
            text: text.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/provider.html")]
struct ProviderPage {
    layout: Layout,
    admin: bool,
    provider: &'static str,
    display: &'static str,
    environment: &'static str,
    tabs: Vec<EnvTab>,
    configured: bool,
    enabled: bool,
    version: String,
    updated: String,
    fields: Vec<FieldView>,
    general_errors: Vec<String>,
    banners: Vec<Banner>,
    validation: Option<(String, String, String)>,
    connection: Option<ConnectionCard>,
    account_label: &'static str,
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    environment: Option<String>,
    saved: Option<String>,
    done: Option<String>,
    oauth: Option<String>,
    reason: Option<String>,
}

/// What a failed action puts on the page it shows again.
#[derive(Default)]
pub struct Extra {
    pub banners: Vec<Banner>,
    pub errors: Vec<FieldError>,
    /// The plain values the user sent (secrets are never shown back).
    pub submitted: Option<Map<String, Value>>,
    pub enabled: Option<bool>,
}

pub fn parse(provider: &str, environment: &str) -> Result<(Provider, Environment), Failure> {
    Ok((
        provider.parse().map_err(ApiError::NotFound)?,
        environment.parse().map_err(ApiError::NotFound)?,
    ))
}

pub fn page_url(provider: Provider, environment: Environment) -> String {
    format!("/settings/{provider}?environment={environment}")
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(provider): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let environment = q.environment.as_deref().unwrap_or("sandbox");
    let (provider, environment) = parse(&provider, environment)?;
    let display = providers::spec(provider).display_name();
    let mut extra = Extra::default();
    if q.saved.is_some() {
        extra.banners.push(Banner::ok("Saved."));
    }
    match q.done.as_deref() {
        Some("validated") => extra
            .banners
            .push(Banner::ok("Validation finished; the result is below.")),
        Some("disconnected") => extra
            .banners
            .push(Banner::ok(format!("{display} is disconnected."))),
        _ => {}
    }
    match (q.oauth.as_deref(), q.reason.as_deref()) {
        (Some("success"), _) => extra
            .banners
            .push(Banner::ok(format!("{display} is connected."))),
        (Some("error"), reason) => extra.banners.push(Banner::error(format!(
            "Connecting {display} did not finish: {}.",
            reason
                .filter(
                    |r| r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                )
                .unwrap_or("unknown reason")
        ))),
        _ => {}
    }
    render(
        &state,
        &signed,
        provider,
        environment,
        StatusCode::OK,
        extra,
    )
    .await
}

/// The provider page, with what a failed action wants shown on it.
pub async fn render(
    state: &AppState,
    signed: &Signed,
    provider: Provider,
    environment: Environment,
    status: StatusCode,
    extra: Extra,
) -> Result<Response, Failure> {
    let spec = providers::spec(provider);
    let config = match integrations::get(state, provider, environment).await {
        Ok(c) => Some(c),
        Err(ApiError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let connection = match vault::connection(state, provider, environment).await {
        Ok(c) => Some(connection_card(&c)),
        Err(ApiError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let error_for = |path: String| {
        extra
            .errors
            .iter()
            .filter(|e| e.field == path)
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let fields: Vec<FieldView> = spec
        .fields()
        .iter()
        .map(|f| {
            let secret = matches!(f.check, FieldCheck::Secret(_));
            let path = format!("{}.{}", if secret { "secrets" } else { "settings" }, f.name);
            let stored = config.as_ref().and_then(|c| c.settings.get(f.name));
            let sent = extra.submitted.as_ref().and_then(|m| m.get(f.name));
            let error = error_for(path);
            FieldView {
                name: f.name,
                label: f.label,
                help: f.help,
                secret,
                value: if secret {
                    String::new()
                } else {
                    text_of(sent.or(stored))
                },
                masked: config.as_ref().and_then(|c| c.secrets.get(f.name).cloned()),
                error: (!error.is_empty()).then_some(error),
            }
        })
        .collect();
    let known: Vec<String> = fields
        .iter()
        .map(|f| {
            format!(
                "{}.{}",
                if f.secret { "secrets" } else { "settings" },
                f.name
            )
        })
        .collect();
    let general_errors = extra
        .errors
        .iter()
        .filter(|e| !known.contains(&e.field))
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    let tabs = Environment::ALL
        .into_iter()
        .map(|e| EnvTab {
            name: e.as_str(),
            href: page_url(provider, e),
            current: e == environment,
        })
        .collect();
    let template = ProviderPage {
        layout: signed.layout(
            format!("{} {environment}", spec.display_name()),
            provider.as_str(),
        ),
        admin: signed.is_admin(),
        provider: provider.as_str(),
        display: spec.display_name(),
        environment: environment.as_str(),
        tabs,
        configured: config.is_some(),
        enabled: extra
            .enabled
            .unwrap_or_else(|| config.as_ref().is_none_or(|c| c.enabled)),
        version: config
            .as_ref()
            .map(|c| c.version.to_string())
            .unwrap_or_default(),
        updated: config.as_ref().map(updated_line).unwrap_or_default(),
        fields,
        general_errors,
        banners: extra.banners,
        validation: config.as_ref().and_then(|c| {
            c.last_validation.as_ref().map(|v| {
                (
                    v.status.clone().unwrap_or_else(|| "unknown".into()),
                    when(&v.at),
                    v.detail.clone().unwrap_or_default(),
                )
            })
        }),
        connection,
        account_label: spec.oauth().account_id_name,
    };
    Ok(page(status, &template))
}

fn updated_line(c: &ConfigView) -> String {
    format!(
        "Version {}, changed {} by {}",
        c.version,
        when(&c.updated_at),
        c.updated_by.as_deref().unwrap_or("unknown")
    )
}

fn text_of(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => other.to_string(),
    }
}

//! Saving the provider page's form: a new configuration (refused when one was made since the
//! form was opened), or a JSON merge patch of the version the form was opened at, so a
//! concurrent change is reported instead of overwritten. Blank secrets keep the stored value;
//! only the explicit clear box removes one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::form::{Fields, PostForm};
use super::provider::{Banner, Extra, page_url, parse, render};
use super::render::{Failure, see_other};
use crate::domain::Provider;
use crate::domain::audit::attempt;
use crate::domain::integrations::{self, ConfigInput, Precondition};
use crate::http::error::ApiError;
use crate::providers::{self, FieldCheck};
use crate::routes::ADMIN;
use crate::state::AppState;

/// The plain settings and the secrets a form sets, and the secrets it clears.
struct Submitted {
    settings: Map<String, Value>,
    secrets: Vec<(String, SecretString)>,
    cleared: Vec<String>,
}

fn read_fields(provider: Provider, fields: &Fields) -> Submitted {
    let mut out = Submitted {
        settings: Map::new(),
        secrets: Vec::new(),
        cleared: Vec::new(),
    };
    for f in providers::spec(provider).fields() {
        match f.check {
            FieldCheck::Setting(_) => {
                let v = fields.text(&format!("settings.{}", f.name));
                out.settings
                    .insert(f.name.to_owned(), Value::String(v.to_owned()));
            }
            FieldCheck::Secret(_) => {
                let v = fields.text(&format!("secrets.{}", f.name));
                if fields.checked(&format!("clear.{}", f.name)) {
                    out.cleared.push(f.name.to_owned());
                } else if !v.is_empty() {
                    out.secrets
                        .push((f.name.to_owned(), SecretString::from(v.to_owned())));
                }
            }
        }
    }
    out
}

/// Saves the form: a new configuration, or a merge patch of the version the form was opened at.
pub async fn save(
    State(state): State<AppState>,
    Path((provider, environment)): Path<(String, String)>,
    form: PostForm,
) -> Result<Response, Failure> {
    let (provider, environment) = parse(&provider, &environment)?;
    let PostForm { signed, fields } = form;
    let caller = &signed.caller;
    let enabled = fields.checked("enabled");
    let sent = read_fields(provider, &fields);
    let version = fields.text("version");
    let resource = crate::domain::audit::Resource::integration(provider, environment);
    let result = if version.is_empty() {
        let input = ConfigInput {
            enabled,
            settings: sent
                .settings
                .iter()
                .filter(|(_, v)| v.as_str().is_some_and(|s| !s.is_empty()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            secrets: sent.secrets.iter().cloned().collect(),
        };
        attempt(&state, caller, ADMIN, "config_replaced", &resource, async {
            // A form opened before anyone configured this must not replace what was made since.
            match integrations::get(&state, provider, environment).await {
                Ok(_) => Err(ApiError::PreconditionFailed),
                Err(ApiError::NotFound(_)) => {
                    integrations::put(&state, caller, provider, environment, input, None)
                        .await
                        .map(|_| ())
                }
                Err(e) => Err(e),
            }
        })
        .await
    } else {
        let expected = version.parse::<i64>().unwrap_or(-1);
        let settings: Map<String, Value> = sent
            .settings
            .iter()
            .map(|(k, v)| {
                let empty = v.as_str().is_some_and(str::is_empty);
                (k.clone(), if empty { Value::Null } else { v.clone() })
            })
            .collect();
        let mut secrets = Map::new();
        for (name, value) in &sent.secrets {
            secrets.insert(
                name.clone(),
                json!(secrecy::ExposeSecret::expose_secret(value)),
            );
        }
        for name in &sent.cleared {
            secrets.insert(name.clone(), Value::Null);
        }
        let patch = json!({ "enabled": enabled, "settings": settings, "secrets": secrets });
        attempt(&state, caller, ADMIN, "config_patched", &resource, async {
            integrations::patch(
                &state,
                caller,
                provider,
                environment,
                patch,
                Some(Precondition::Version(expected)),
            )
            .await
            .map(|_| ())
        })
        .await
    };
    match result {
        Ok(()) => Ok(see_other(&format!(
            "{}&saved=1",
            page_url(provider, environment)
        ))),
        Err(ApiError::Validation(errors)) => {
            let extra = Extra {
                banners: vec![Banner::error(
                    "Nothing was saved: correct the fields marked below.",
                )],
                errors,
                submitted: Some(sent.settings),
                enabled: Some(enabled),
            };
            render(
                &state,
                &signed,
                provider,
                environment,
                StatusCode::UNPROCESSABLE_ENTITY,
                extra,
            )
            .await
        }
        Err(ApiError::PreconditionFailed) => {
            let extra = Extra {
                banners: vec![Banner::error(
                    "This configuration changed since you opened it — review and save again. Nothing was saved; the form now shows the current values.",
                )],
                ..Extra::default()
            };
            render(
                &state,
                &signed,
                provider,
                environment,
                StatusCode::CONFLICT,
                extra,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

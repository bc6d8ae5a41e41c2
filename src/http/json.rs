//! Request bodies: buffered within the body limit, parsed with field paths in errors, and
//! JSON merge patch (RFC 7396).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::http::error::{ApiError, FieldError};

/// A JSON request body, not yet parsed, so a handler can audit a body it refuses.
pub struct JsonBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime == "application/merge-patch+json"
            });
        if json_type == Some(false) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(usize::MAX);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::BadRequest("the request body could not be read".into())
            }
        })?;
        Ok(Self(bytes))
    }
}

/// The configured body limit, for the 413 message.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

impl JsonBody {
    /// Parses into `T`; errors name the field and never echo a value.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let de = &mut serde_json::Deserializer::from_slice(&self.0);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return ApiError::BadRequest(format!(
                    "the request body is not valid JSON (line {}, column {})",
                    inner.line(),
                    inner.column()
                ));
            }
            let text = inner.to_string();
            let text = text.split(" at line ").next().unwrap_or_default();
            let (field, message) = describe(&path, text);
            ApiError::Validation(vec![FieldError::new(field, message)])
        })
    }

    /// True when the request had no body (optional bodies, e.g. `POST /api/config/backup`).
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(u8::is_ascii_whitespace)
    }

    pub fn value(&self) -> Result<Value, ApiError> {
        self.parse()
    }
}

/// Turns a serde message into a field path and a message without the offending value.
fn describe(path: &str, message: &str) -> (String, String) {
    let base = if path == "." {
        String::new()
    } else {
        path.to_owned()
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        // serde_path_to_error already ends the path with the unknown key.
        let field = if base.is_empty() || base == name || base.ends_with(&format!(".{name}")) {
            if base.is_empty() {
                name.to_owned()
            } else {
                base.clone()
            }
        } else {
            format!("{base}.{name}")
        };
        let expected = rest.split_once(", ").map(|(_, e)| e).unwrap_or("");
        return (
            field,
            format!("unknown field; {expected}")
                .trim_end_matches("; ")
                .to_owned(),
        );
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = if base.is_empty() {
            name.to_owned()
        } else {
            format!("{base}.{name}")
        };
        return (field, "is required".to_owned());
    }
    let field = if base.is_empty() {
        "body".to_owned()
    } else {
        base
    };
    // "invalid type: string \"…\", expected a boolean" → keep only what was expected.
    let expected = message
        .split(", expected ")
        .nth(1)
        .map(|e| e.split(" at line").next().unwrap_or(e).to_owned());
    let text = match expected {
        Some(e) => format!("invalid value; expected {e}"),
        None if message.starts_with("unknown variant") => {
            let options = message.split("expected ").nth(1).unwrap_or("a known value");
            format!(
                "unknown value; expected {}",
                options.split(" at line").next().unwrap_or(options)
            )
        }
        None => "invalid value".to_owned(),
    };
    (field, text)
}

/// RFC 7396: objects merge key by key, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn type_errors_do_not_echo_the_value() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct B {
            enabled: bool,
        }
        let body = JsonBody(Bytes::from_static(br#"{"enabled": "sk_live_canary"}"#));
        let err = body.parse::<B>().expect_err("wrong type");
        let ApiError::Validation(errors) = err else {
            panic!("not a validation error")
        };
        assert_eq!(errors[0].field, "enabled");
        assert!(!errors[0].message.contains("canary"));
    }
}

//! Request bodies: the one JSON reader every body goes through, and JSON merge patch (RFC 7396).
//!
//! The extractor only buffers the body (within the limit), so a handler authorizes before
//! anything about the body is judged. Reading it then requires a JSON media type in UTF-8,
//! an object at the top, no duplicate key at any depth and no NUL character in any key or
//! string (PostgreSQL cannot store one) — each refusal names the field — and only then maps the
//! object onto the request type, with errors that name the field and never echo a value.

use std::cell::RefCell;
use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{HeaderValue, header};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::http::error::{ApiError, FieldError};
use crate::state::AppState;

/// A request body, buffered but not yet judged.
pub struct JsonBody {
    bytes: Bytes,
    content_type: Option<HeaderValue>,
}

impl<S> FromRequest<S> for JsonBody
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
        let limit = AppState::from_ref(state).settings.request_body_limit;
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::BadRequest("the request body could not be read".into())
            }
        })?;
        Ok(Self {
            bytes,
            content_type,
        })
    }
}

impl JsonBody {
    /// A body made in code (tests, fuzzing), as if sent with `Content-Type: application/json`.
    pub fn from_json_bytes(bytes: impl Into<Bytes>) -> Self {
        Self {
            bytes: bytes.into(),
            content_type: Some(HeaderValue::from_static("application/json")),
        }
    }

    /// Parses into `T`; errors name the field and never echo a value.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let object = self.value()?;
        serde_path_to_error::deserialize(object).map_err(|e| {
            let path = e.path().to_string();
            let text = e.into_inner().to_string();
            let (field, message) = describe(&path, &text);
            ApiError::Validation(vec![FieldError::new(field, message)])
        })
    }

    /// True when the request had no body (optional bodies, e.g. `POST /api/config/backup`).
    pub fn is_empty(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }

    /// The body as a JSON object, checked as the module says.
    pub fn value(&self) -> Result<Value, ApiError> {
        check_media_type(self.content_type.as_ref())?;
        let value = read_strict(&self.bytes)?;
        if !value.is_object() {
            return Err(ApiError::field("body", "must be a JSON object"));
        }
        Ok(value)
    }
}

/// `application/json` or `application/merge-patch+json`, in UTF-8 (the only charset JSON
/// allows between systems, RFC 8259 §8.1).
fn check_media_type(content_type: Option<&HeaderValue>) -> Result<(), ApiError> {
    let refused = |why: &str| ApiError::UnsupportedMediaType(why.to_owned());
    let text = content_type
        .ok_or_else(|| refused("a request body needs Content-Type: application/json"))?
        .to_str()
        .map_err(|_| refused("the Content-Type header is not readable"))?;
    let mut parts = text.split(';');
    let mime = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if mime != "application/json" && mime != "application/merge-patch+json" {
        return Err(refused(
            "the request body must be JSON (Content-Type: application/json)",
        ));
    }
    for param in parts {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = value.trim().trim_matches('"');
            if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
                return Err(refused("JSON bodies must be UTF-8 (charset=utf-8)"));
            }
        }
    }
    Ok(())
}

/// Reads JSON into a `Value`, refusing duplicate keys and NUL characters anywhere.
fn read_strict(bytes: &[u8]) -> Result<Value, ApiError> {
    let refusal = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = Strict {
        path: String::new(),
        refusal: &refusal,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match result {
        Ok(value) => Ok(value),
        Err(_) if refusal.borrow().is_some() => Err(ApiError::Validation(
            refusal.into_inner().into_iter().collect(),
        )),
        Err(e) => Err(ApiError::BadRequest(format!(
            "the request body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

/// A `Value` reader that remembers the path it is at, and why it refused.
struct Strict<'r> {
    path: String,
    refusal: &'r RefCell<Option<FieldError>>,
}

impl Strict<'_> {
    fn refuse<E: de::Error>(&self, path: &str, message: &str) -> E {
        let field = if path.is_empty() { "body" } else { path };
        *self.refusal.borrow_mut() = Some(FieldError::new(field, message));
        E::custom("refused")
    }

    fn child(&self, segment: &str) -> Self {
        let path = if self.path.is_empty() {
            segment.to_owned()
        } else if segment.starts_with('[') {
            format!("{}{segment}", self.path)
        } else {
            format!("{}.{segment}", self.path)
        };
        Strict {
            path,
            refusal: self.refusal,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        if v.contains('\0') {
            return Err(self.refuse(&self.path, "must not contain a NUL character"));
        }
        Ok(Value::String(v.to_owned()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child(&format!("[{}]", items.len())))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.contains('\0') {
                return Err(self.refuse(&self.path, "a key must not contain a NUL character"));
            }
            let child = self.child(&key);
            if out.contains_key(&key) {
                return Err(self.refuse(&child.path, "appears more than once"));
            }
            let value = map.next_value_seed(child)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
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
mod tests;

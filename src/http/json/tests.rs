//! The JSON reader's refusals, each naming its field and never echoing a value.

use serde_json::json;

use super::*;

fn body(text: &str) -> JsonBody {
    JsonBody::from_json_bytes(text.as_bytes().to_vec())
}

fn fields(err: ApiError) -> Vec<String> {
    match err {
        ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("not a validation error: {other:?}"),
    }
}

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
    let err = body(r#"{"enabled": "sk_live_canary"}"#)
        .parse::<B>()
        .expect_err("wrong type");
    let ApiError::Validation(errors) = err else {
        panic!("not a validation error")
    };
    assert_eq!(errors[0].field, "enabled");
    assert!(!errors[0].message.contains("canary"));
}

#[test]
fn duplicate_keys_are_refused_at_every_depth() {
    let err = body(r#"{"secrets": {"client_secret": "A", "client_secret": "B"}}"#)
        .value()
        .expect_err("duplicate");
    assert_eq!(fields(err), ["secrets.client_secret"]);
    let err = body(r#"{"a": 1, "a": 2}"#).value().expect_err("duplicate");
    assert_eq!(fields(err), ["a"]);
    let err = body(r#"{"x": [{"k": 1, "k": 1}]}"#)
        .value()
        .expect_err("duplicate");
    assert_eq!(fields(err), ["x[0].k"]);
}

#[test]
fn nul_is_refused_in_keys_and_strings() {
    let err = body(r#"{"settings": {"client_id": "a\u0000b"}}"#)
        .value()
        .expect_err("nul value");
    assert_eq!(fields(err), ["settings.client_id"]);
    let err = body(r#"{"settings": {"a\u0000": "b"}}"#)
        .value()
        .expect_err("nul key");
    assert_eq!(fields(err), ["settings"]);
}

#[test]
fn only_objects_are_bodies() {
    for text in [r#"["array-token","viewer"]"#, "true", "\"x\"", "null", "1"] {
        let err = body(text).value().expect_err(text);
        assert_eq!(fields(err), ["body"], "{text}");
    }
    assert!(matches!(body("{").value(), Err(ApiError::BadRequest(_))));
    assert!(matches!(
        body("{} {}").value(),
        Err(ApiError::BadRequest(_))
    ));
}

#[test]
fn a_body_needs_a_json_media_type_in_utf_8() {
    let with = |ct: Option<&'static str>| JsonBody {
        bytes: Bytes::from_static(b"{}"),
        content_type: ct.map(HeaderValue::from_static),
    };
    for ok in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=\"UTF-8\"",
        "application/merge-patch+json",
    ] {
        assert!(with(Some(ok)).value().is_ok(), "{ok}");
    }
    for refused in [
        None,
        Some("text/plain"),
        Some("application/json; charset=utf-16"),
        Some("application/json; charset=latin1"),
    ] {
        assert!(
            matches!(
                with(refused).value(),
                Err(ApiError::UnsupportedMediaType(_))
            ),
            "{refused:?}"
        );
    }
}

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

/// JSON values of bounded size: the shapes bodies are made of.
fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z\u{0}\u{e9}]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-c\u{0}]{1,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

// Property tests: the body reader is the front door for outside bytes.
proptest::proptest! {
    #[test]
    fn any_bytes_are_read_or_refused_never_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
        let _ = JsonBody::from_json_bytes(bytes).value();
    }

    #[test]
    fn an_object_is_read_back_exactly_unless_it_holds_nul(value in json_value()) {
        let object = serde_json::json!({ "v": value });
        let read = JsonBody::from_json_bytes(serde_json::to_vec(&object).expect("json")).value();
        if has_nul(&object) {
            proptest::prop_assert!(matches!(read, Err(ApiError::Validation(_))));
        } else {
            proptest::prop_assert_eq!(read.expect("read"), object);
        }
    }

    #[test]
    fn a_merge_patch_applied_twice_is_applied_once(target in json_value(), patch in json_value()) {
        let mut once = target.clone();
        merge_patch(&mut once, &patch);
        let mut twice = once.clone();
        merge_patch(&mut twice, &patch);
        proptest::prop_assert_eq!(once, twice);
    }
}

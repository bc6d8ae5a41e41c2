//! Reading a token response: RFC 6749's fields through `oauth2`, the providers' extra fields
//! as their specs name them, and camelCase bodies read like snake_case ones.

use oauth2::basic::BasicTokenType;
use oauth2::{ExtraTokenFields, StandardTokenResponse, TokenResponse};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::provider::TokenSet;
use crate::providers::{AccountSource, OAuthSpec};

/// Fields beyond RFC 6749 that the providers add to token responses; each provider's spec
/// says which of them it reads (the connected account, the refresh token's lifetime).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderFields {
    #[serde(flatten)]
    fields: serde_json::Map<String, Value>,
}

impl ExtraTokenFields for ProviderFields {}

impl ProviderFields {
    fn text(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }

    /// Granted scopes as a list rather than a space-separated `scope`.
    fn scopes(&self) -> Option<String> {
        let list = self.fields.get("scopes")?.as_array()?;
        Some(
            list.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

pub(super) type Response = StandardTokenResponse<ProviderFields, BasicTokenType>;
/// HubSpot's reference pages show the dated token endpoint answering in camelCase
/// (`accessToken`, `expiresIn`, `hubId`) while its changelog shows RFC 6749's snake_case. Accept
/// both: a body with `accessToken` and no `access_token` has its known fields renamed.
pub(super) fn snake_case_token_fields(body: Vec<u8>) -> Vec<u8> {
    const RENAMES: [(&str, &str); 7] = [
        ("accessToken", "access_token"),
        ("refreshToken", "refresh_token"),
        ("expiresIn", "expires_in"),
        ("tokenType", "token_type"),
        ("hubId", "hub_id"),
        ("idToken", "id_token"),
        ("userId", "user_id"),
    ];
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    if !map.contains_key("accessToken") || map.contains_key("access_token") {
        return body;
    }
    for (from, to) in RENAMES {
        if let Some(v) = map.remove(from) {
            map.insert(to.to_owned(), v);
        }
    }
    // oauth2 needs a token type; camelCase answers are bearer tokens that omit it.
    map.entry("token_type")
        .or_insert_with(|| Value::String("bearer".into()));
    serde_json::to_vec(&Value::Object(map)).unwrap_or(body)
}

pub(super) fn to_token_set(r: Response, spec: &OAuthSpec) -> TokenSet {
    let extra = r.extra_fields();
    TokenSet {
        access_token: SecretString::from(r.access_token().secret().to_owned()),
        refresh_token: r
            .refresh_token()
            .map(|t| SecretString::from(t.secret().to_owned())),
        token_type: match r.token_type() {
            BasicTokenType::Bearer => "bearer".to_owned(),
            other => format!("{other:?}").to_ascii_lowercase(),
        },
        expires_in: r.expires_in().map(|d| d.as_secs()),
        refresh_expires_in: spec
            .refresh_expiry_field
            .and_then(|f| extra.text(f))
            .and_then(|v| v.parse().ok()),
        refresh_hard_expires_in: spec
            .refresh_hard_expiry
            .and_then(|(field, _)| extra.text(field))
            .and_then(|v| v.parse().ok()),
        scope: r
            .scopes()
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
            .or_else(|| extra.scopes()),
        account_id: match spec.account {
            AccountSource::TokenField(field) => extra.text(field),
            AccountSource::CallbackParam(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::Provider;
    use crate::providers;

    fn parse(provider: Provider, body: Value) -> TokenSet {
        to_token_set(
            serde_json::from_value::<Response>(body).expect("a token response"),
            providers::spec(provider).oauth(),
        )
    }

    #[test]
    fn a_camel_case_token_response_is_read_like_a_snake_case_one() {
        let camel = json!({"accessToken": "a", "refreshToken": "r", "expiresIn": 1800,
                           "hubId": 62515, "scopes": ["oauth"], "tokenType": "bearer"});
        let body = snake_case_token_fields(serde_json::to_vec(&camel).expect("json"));
        let set = parse(
            Provider::Hubspot,
            serde_json::from_slice(&body).expect("json"),
        );
        assert_eq!(set.expires_in, Some(1800));
        assert_eq!(set.account_id.as_deref(), Some("62515"));
        assert!(set.refresh_token.is_some());
        let snake = br#"{"access_token":"a","token_type":"bearer"}"#.to_vec();
        assert_eq!(
            snake_case_token_fields(snake.clone()),
            snake,
            "snake_case is left alone"
        );
    }

    #[test]
    fn each_providers_token_response_is_read() {
        let qb = parse(
            Provider::Quickbooks,
            json!({"access_token": "a", "refresh_token": "r", "token_type": "bearer",
                              "expires_in": 3600, "x_refresh_token_expires_in": 8726400}),
        );
        assert_eq!(
            (qb.expires_in, qb.refresh_expires_in),
            (Some(3600), Some(8_726_400))
        );
        let hs = parse(
            Provider::Hubspot,
            json!({"access_token": "a", "refresh_token": "r", "token_type": "bearer",
                              "expires_in": 1800, "hub_id": 24681357, "token_use": "access_token",
                              "scopes": ["crm.objects.contacts.read", "oauth"]}),
        );
        assert_eq!(hs.account_id.as_deref(), Some("24681357"));
        assert_eq!(hs.scope.as_deref(), Some("crm.objects.contacts.read oauth"));
        let stripe = parse(
            Provider::Stripe,
            json!({"access_token": "a", "refresh_token": "r", "token_type": "bearer",
                                  "stripe_user_id": "acct_1", "scope": "read_write", "livemode": false}),
        );
        assert_eq!(stripe.account_id.as_deref(), Some("acct_1"));
        assert_eq!(
            stripe.expires_in, None,
            "Stripe access tokens do not expire"
        );
        let no_rotation = parse(
            Provider::Hubspot,
            json!({"access_token": "a", "token_type": "Bearer", "expires_in": 60}),
        );
        assert!(no_rotation.refresh_token.is_none());
        assert_eq!(no_rotation.token_type, "bearer");
    }

    // Property test: a token response is a provider's bytes; none makes reading it panic.
    proptest::proptest! {
        #[test]
        fn any_token_response_body_is_read_or_refused(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            camel in proptest::bool::ANY,
        ) {
            let body = if camel {
                let mut b = br#"{"accessToken":"a","#.to_vec();
                b.extend_from_slice(&body);
                b
            } else {
                body
            };
            let renamed = snake_case_token_fields(body);
            if let Ok(r) = serde_json::from_slice::<Response>(&renamed) {
                for p in Provider::ALL {
                    let _ = to_token_set(r.clone(), providers::spec(p).oauth());
                }
            }
        }
    }
}

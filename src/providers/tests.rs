//! Field checks of the three providers, and a fourth written only here.

use super::*;
use serde_json::json;

fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretString> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), SecretString::from((*v).to_owned())))
        .collect()
}

fn fields_of(errors: Vec<FieldError>) -> Vec<String> {
    errors.into_iter().map(|e| e.field).collect()
}

#[test]
fn stripe_keys_must_match_the_environment() {
    let live = secrets(&[("secret_key", "sk_live_abcdefghijklmnop")]);
    let errs = validate(Provider::Stripe, Environment::Sandbox, &Map::new(), &live)
        .expect_err("live key in sandbox");
    assert_eq!(fields_of(errs), ["secrets.secret_key"]);
    let test = secrets(&[("secret_key", "sk_test_abcdefghijklmnop")]);
    assert!(
        validate(
            Provider::Stripe,
            Environment::Production,
            &Map::new(),
            &test
        )
        .is_err()
    );
    assert!(validate(Provider::Stripe, Environment::Sandbox, &Map::new(), &test).is_ok());
}

#[test]
fn unknown_and_misplaced_fields_are_named() {
    let settings = json!({"colour": "blue", "secret_key": "x"});
    let errs = validate(
        Provider::Stripe,
        Environment::Sandbox,
        settings.as_object().expect("object"),
        &secrets(&[("publishable_key", "pk_test_abcdefghijklmnop")]),
    )
    .expect_err("bad fields");
    assert_eq!(
        fields_of(errs),
        [
            "settings.colour",
            "settings.secret_key",
            "secrets.publishable_key"
        ]
    );
}

#[test]
fn error_messages_never_echo_the_value() {
    let errs = validate(
        Provider::Hubspot,
        Environment::Sandbox,
        &Map::new(),
        &secrets(&[("private_app_token", "canary-value-123")]),
    )
    .expect_err("wrong prefix");
    assert!(errs.iter().all(|e| !e.message.contains("canary")));
}

/// A fourth provider written only in this test: implementing the trait is all it takes
/// for field validation, scopes, validation calls and revocation. Adding it for real also
/// needs its `Provider` variant and one arm in `spec` (docs/architecture.md, "where does
/// X go").
struct Xero;

const XERO_API: &str = "XERO_API_BASE_URL";

static XERO_OAUTH: OAuthSpec = OAuthSpec {
    client_id_setting: "client_id",
    client_secret_field: "client_secret",
    client_auth: ClientAuth::Basic,
    default_scopes: "offline_access accounting.settings.read",
    redirect_uri_in_token_request: true,
    account: AccountSource::TokenField("tenant_id"),
    account_id_name: "tenant_id",
    invalid_account_reason: "invalid_tenant_id",
    invalid_grant_codes: &[],
    refresh_expiry_field: None,
    refresh_hard_expiry: None,
    authorize_url: "https://login.xero.com/identity/connect/authorize",
    token_url: "https://identity.xero.com/connect/token",
    revoke_url: ("REVOKE", "https://identity.xero.com/connect/revocation"),
};

impl ProviderSpec for Xero {
    fn display_name(&self) -> &'static str {
        "Xero"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        &[
            FieldSpec {
                name: "client_id",
                label: "Client ID",
                help: "",
                check: FieldCheck::Setting(non_empty_text),
            },
            FieldSpec {
                name: "client_secret",
                label: "Client secret",
                help: "",
                check: FieldCheck::Secret(secret_text),
            },
        ]
    }

    fn api_urls(&self) -> &'static [ApiUrl] {
        &[ApiUrl {
            variable: XERO_API,
            default: "https://api.xero.com",
        }]
    }

    fn validation_call(&self, input: &ValidationInput<'_>) -> Result<ValidationCall, String> {
        let (token, _) = input.oauth.ok_or("not connected")?;
        Ok(ValidationCall {
            url: input.urls.join(XERO_API, "connections")?,
            bearer: token.clone(),
        })
    }

    fn oauth(&self) -> &'static OAuthSpec {
        &XERO_OAUTH
    }

    fn revoke_request(
        &self,
        http: &reqwest::Client,
        input: &RevokeInput<'_>,
    ) -> reqwest::RequestBuilder {
        http.post(input.url.clone())
            .basic_auth(input.client_id, Some(input.client_secret.expose_secret()))
            .form(&[("token", input.token())])
    }
}

#[test]
fn a_fourth_provider_needs_only_its_spec() {
    let errs = validate_with(
        &Xero,
        "xero",
        Environment::Sandbox,
        json!({"client_id": "", "tenant": "x"})
            .as_object()
            .expect("object"),
        &secrets(&[("client_secret", "s3cr3t-value")]),
    )
    .expect_err("bad fields");
    assert_eq!(fields_of(errs), ["settings.client_id", "settings.tenant"]);

    assert_eq!(
        oauth_scopes(&Xero, &Map::new()),
        ["offline_access", "accounting.settings.read"]
    );

    let mut urls = ApiUrls::default();
    urls.insert(XERO_API, Url::parse("http://127.0.0.1:9/").expect("url"));
    let token = SecretString::from("access");
    let call = Xero
        .validation_call(&ValidationInput {
            environment: Environment::Sandbox,
            settings: &Map::new(),
            secrets: &BTreeMap::new(),
            oauth: Some((&token, None)),
            urls: &urls,
        })
        .expect("a call");
    assert_eq!(call.url.as_str(), "http://127.0.0.1:9/connections");

    let secret = SecretString::from("client-secret");
    let request = Xero
        .revoke_request(
            &reqwest::Client::new(),
            &RevokeInput {
                url: Url::parse("http://127.0.0.1:9/revoke").expect("url"),
                client_id: "cid",
                client_secret: &secret,
                refresh_token: None,
                access_token: &token,
                external_account_id: None,
            },
        )
        .build()
        .expect("a request");
    assert_eq!(request.url().path(), "/revoke");
}

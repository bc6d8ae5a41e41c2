//! A fake authorization server speaking each provider's wire format: consent redirects,
//! token (code and refresh grants) and revoke/deauthorize. It checks PKCE S256, the exact
//! redirect URI and the client authentication each provider uses, counts calls, and can be
//! told to be slow, fail with 5xx, answer invalid_grant or omit the refresh token.
//! It stays whole: the three endpoints share one `Fake` state, and each reads best beside it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const QB_CLIENT_ID: &str = "qb-client-id-123";
pub const QB_SECRET: &str = "qbClientSecretCanary0123456789XYZ";
pub const HS_CLIENT_ID: &str = "hs-client-id-456";
pub const HS_SECRET: &str = "hubspotClientSecretCanary4242";
pub const STRIPE_CLIENT_ID: &str = "ca_fakeConnectClient789";
pub const STRIPE_SECRET: &str = crate::support::helpers::STRIPE_TEST_KEY;
pub const REALM_ID: &str = "4620816365";
pub const HUB_ID: u64 = 24_681_357;
pub const STRIPE_USER_ID: &str = "acct_1FakeConnected";

/// How the fake behaves on refresh grants; tests change it between steps.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub refresh_delay: Duration,
    /// This many refresh calls answer 503 before the fake works again.
    pub fail_5xx: usize,
    pub invalid_grant: bool,
    pub omit_refresh_token: bool,
    pub exchange_expires_in: u64,
    pub refresh_expires_in: u64,
    /// The consent screen answers `error=access_denied`.
    pub deny: bool,
    /// Revoke/deauthorize answers 503.
    pub revoke_fail: bool,
    /// The QuickBooks company (`realmId`) the consent screen picks; REALM_ID when None.
    pub realm_id: Option<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            refresh_delay: Duration::ZERO,
            fail_5xx: 0,
            invalid_grant: false,
            omit_refresh_token: false,
            exchange_expires_in: 3600,
            refresh_expires_in: 3600,
            deny: false,
            revoke_fail: false,
            realm_id: None,
        }
    }
}

struct Grant {
    provider: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
pub struct Fake {
    pub behaviour: Behaviour,
    codes: HashMap<String, Grant>,
    live_refresh: HashSet<String>,
    pub exchange_calls: HashMap<String, usize>,
    pub refresh_calls: HashMap<String, usize>,
    pub revoke_calls: HashMap<String, usize>,
    pub revoked: Vec<String>,
    /// Every token handed out, newest last: canaries for the log test.
    pub issued: Vec<String>,
    pub last_access: HashMap<String, String>,
    pub last_refresh: HashMap<String, String>,
    counter: u64,
}

#[derive(Clone)]
pub struct FakeProvider {
    pub base: String,
    pub state: Arc<Mutex<Fake>>,
}

type Shared = Arc<Mutex<Fake>>;

impl FakeProvider {
    pub async fn start() -> Self {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/{provider}/authorize", get(authorize))
            .route("/{provider}/token", post(token))
            .route("/{provider}/revoke", post(revoke))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake provider");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, state }
    }

    pub fn fake(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.state.lock().expect("fake state")
    }

    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.fake().behaviour);
    }

    pub fn exchanges(&self, provider: &str) -> usize {
        self.fake()
            .exchange_calls
            .get(provider)
            .copied()
            .unwrap_or(0)
    }

    pub fn refreshes(&self, provider: &str) -> usize {
        self.fake()
            .refresh_calls
            .get(provider)
            .copied()
            .unwrap_or(0)
    }

    pub fn revokes(&self, provider: &str) -> usize {
        self.fake().revoke_calls.get(provider).copied().unwrap_or(0)
    }

    pub fn last_access(&self, provider: &str) -> String {
        self.fake()
            .last_access
            .get(provider)
            .cloned()
            .unwrap_or_default()
    }

    pub fn last_refresh(&self, provider: &str) -> String {
        self.fake()
            .last_refresh
            .get(provider)
            .cloned()
            .unwrap_or_default()
    }

    /// Settings that point the app at this fake for every provider.
    pub fn vars(&self, vars: &mut HashMap<String, String>) {
        for (name, path) in [
            ("QUICKBOOKS", "quickbooks"),
            ("HUBSPOT", "hubspot"),
            ("STRIPE", "stripe"),
        ] {
            vars.insert(
                format!("{name}_OAUTH_AUTHORIZE_URL"),
                format!("{}/{path}/authorize", self.base),
            );
            vars.insert(
                format!("{name}_OAUTH_TOKEN_URL"),
                format!("{}/{path}/token", self.base),
            );
            let revoke = if name == "STRIPE" {
                "DEAUTHORIZE"
            } else {
                "REVOKE"
            };
            vars.insert(
                format!("{name}_OAUTH_{revoke}_URL"),
                format!("{}/{path}/revoke", self.base),
            );
            vars.insert(format!("{name}_OAUTH_REDIRECT_URI"), redirect_uri(path));
        }
    }
}

/// The public callback URL the providers are told about (a test "browser" maps its origin to
/// the app under test, as nginx would).
pub const PUBLIC_ORIGIN: &str = "https://hsq-config.example.test";

pub fn redirect_uri(provider: &str) -> String {
    format!("{PUBLIC_ORIGIN}/api/config/{provider}/callback")
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": "fake provider says no" })),
    )
        .into_response()
}

async fn authorize(
    State(state): State<Shared>,
    Path(provider): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let expected_client = match provider.as_str() {
        "quickbooks" => QB_CLIENT_ID,
        "hubspot" => HS_CLIENT_ID,
        _ => STRIPE_CLIENT_ID,
    };
    let ok = q.get("client_id").map(String::as_str) == Some(expected_client)
        && q.get("response_type").map(String::as_str) == Some("code")
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.get("redirect_uri").map(String::as_str) == Some(redirect_uri(&provider).as_str())
        && q.get("scope").is_some_and(|s| !s.is_empty());
    let (Some(challenge), Some(state_param), true) = (q.get("code_challenge"), q.get("state"), ok)
    else {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let mut fake = state.lock().expect("fake");
    let mut target = reqwest::Url::parse(&q["redirect_uri"]).expect("redirect uri");
    if fake.behaviour.deny {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", state_param);
    } else {
        fake.counter += 1;
        let code = format!("code-{provider}-{}", fake.counter);
        fake.codes.insert(
            code.clone(),
            Grant {
                provider: provider.clone(),
                challenge: challenge.clone(),
                redirect_uri: q["redirect_uri"].clone(),
            },
        );
        target
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", state_param);
        if provider == "quickbooks" {
            let realm = fake.behaviour.realm_id.clone();
            target
                .query_pairs_mut()
                .append_pair("realmId", realm.as_deref().unwrap_or(REALM_ID));
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

/// Each provider authenticates the client its own way; anything else is invalid_client.
fn client_authenticated(
    provider: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> bool {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match provider {
        "quickbooks" => {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{QB_CLIENT_ID}:{QB_SECRET}"));
            auth == Some(format!("Basic {basic}").as_str()) && !form.contains_key("client_secret")
        }
        "hubspot" => {
            auth.is_none()
                && form.get("client_id").map(String::as_str) == Some(HS_CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(HS_SECRET)
        }
        _ => {
            form.get("client_secret").map(String::as_str) == Some(STRIPE_SECRET)
                || auth == Some(format!("Bearer {STRIPE_SECRET}").as_str())
        }
    }
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn token(
    State(state): State<Shared>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let behaviour = {
        let mut fake = state.lock().expect("fake");
        let calls = if grant_type == "refresh_token" {
            &mut fake.refresh_calls
        } else {
            &mut fake.exchange_calls
        };
        *calls.entry(provider.clone()).or_default() += 1;
        fake.behaviour.clone()
    };
    if !client_authenticated(&provider, &headers, &form) {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let asked_hard_expiry = headers
        .get("x-include-refresh-token-hard-expires-in")
        .is_some_and(|v| v == "true");
    let mut fake = state.lock().expect("fake");
    let expires_in = match grant_type.as_str() {
        "authorization_code" => {
            let Some(grant) = form.get("code").and_then(|c| fake.codes.remove(c)) else {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let verifier_ok = form
                .get("code_verifier")
                .is_some_and(|v| s256(v) == grant.challenge);
            let redirect_ok = if provider == "stripe" {
                !form.contains_key("redirect_uri")
            } else {
                form.get("redirect_uri") == Some(&grant.redirect_uri)
            };
            if grant.provider != provider || !verifier_ok || !redirect_ok {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            behaviour.exchange_expires_in
        }
        "refresh_token" => {
            drop(fake);
            if !behaviour.refresh_delay.is_zero() {
                // The provider is slow: this is the server under test's problem, not a test sleep.
                tokio::time::sleep(behaviour.refresh_delay).await;
            }
            fake = state.lock().expect("fake");
            if fake.behaviour.fail_5xx > 0 {
                fake.behaviour.fail_5xx -= 1;
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<h1>upstream down</h1>",
                )
                    .into_response();
            }
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            if behaviour.invalid_grant || !fake.live_refresh.contains(&presented) {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if !behaviour.omit_refresh_token {
                fake.live_refresh.remove(&presented);
            }
            behaviour.refresh_expires_in
        }
        _ => return error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    fake.counter += 1;
    let n = fake.counter;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let access = format!("at-{provider}-{n}-{suffix}");
    let refresh = format!("rt-{provider}-{n}-{suffix}");
    fake.issued.push(access.clone());
    fake.last_access.insert(provider.clone(), access.clone());
    let mut body = json!({ "access_token": access, "token_type": "bearer" });
    let issue_refresh = !(grant_type == "refresh_token" && behaviour.omit_refresh_token);
    if issue_refresh {
        fake.issued.push(refresh.clone());
        fake.live_refresh.insert(refresh.clone());
        fake.last_refresh.insert(provider.clone(), refresh.clone());
        body["refresh_token"] = json!(refresh);
    }
    match provider.as_str() {
        "quickbooks" => {
            body["expires_in"] = json!(expires_in);
            body["x_refresh_token_expires_in"] = json!(8_726_400);
            // Intuit reports the five-year maximum only to a client that asks for it.
            if asked_hard_expiry {
                body["x_refresh_token_hard_expires_in"] = json!(157_680_000);
            }
        }
        "hubspot" => {
            body["expires_in"] = json!(expires_in);
            // The dated endpoints list scopes as an array and name the portal and user.
            body["hub_id"] = json!(HUB_ID);
            body["user_id"] = json!(7_654_321);
            body["token_use"] = json!("access_token");
            body["scopes"] = json!(["crm.objects.contacts.read", "oauth"]);
        }
        _ => {
            body["stripe_user_id"] = json!(STRIPE_USER_ID);
            body["stripe_publishable_key"] = json!("pk_test_fakepublishable");
            body["scope"] = json!("read_write");
            body["livemode"] = json!(false);
        }
    }
    Json(body).into_response()
}

async fn revoke(
    State(state): State<Shared>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form: HashMap<String, String> = serde_urlencoded_pairs(&body);
    let fail = {
        let mut fake = state.lock().expect("fake");
        *fake.revoke_calls.entry(provider.clone()).or_default() += 1;
        fake.behaviour.revoke_fail
    };
    if fail {
        return error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    }
    let token = match provider.as_str() {
        "quickbooks" => {
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if !client_authenticated("quickbooks", &headers, &HashMap::new()) {
                return error(StatusCode::UNAUTHORIZED, "invalid_client");
            }
            json["token"].as_str().map(str::to_owned)
        }
        "hubspot" => {
            if !client_authenticated("hubspot", &headers, &form) {
                return error(StatusCode::UNAUTHORIZED, "invalid_client");
            }
            form.get("token").cloned()
        }
        _ => {
            if !client_authenticated("stripe", &headers, &form)
                || form.get("client_id").map(String::as_str) != Some(STRIPE_CLIENT_ID)
            {
                return error(StatusCode::UNAUTHORIZED, "invalid_client");
            }
            form.get("stripe_user_id").cloned()
        }
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let mut fake = state.lock().expect("fake");
    fake.live_refresh.remove(&token);
    fake.revoked.push(token.clone());
    Json(json!({ "revoked": true })).into_response()
}

fn serde_urlencoded_pairs(body: &[u8]) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(body)))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

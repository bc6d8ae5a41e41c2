//! A real HTTP server speaking the account endpoints of Stripe, HubSpot and QuickBooks, with
//! their error formats. It checks the bearer credential, can be told to fail, and counts calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// How the fake answers the next calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Checks the bearer token: 200 when it matches, the provider's 401 otherwise.
    Normal,
    RateLimited {
        retry_after: u64,
    },
    ServerError,
    Slow(Duration),
}

#[derive(Default)]
struct Inner {
    behaviour: HashMap<&'static str, Behaviour>,
    accepted: HashMap<&'static str, String>,
    calls: HashMap<&'static str, usize>,
}

#[derive(Clone, Default)]
pub struct FakeProviders {
    inner: Arc<Mutex<Inner>>,
    pub base: String,
}

impl FakeProviders {
    pub async fn start() -> Self {
        let mut fake = Self::default();
        let app = Router::new()
            .route("/stripe/v1/account", get(stripe))
            .route("/hubspot/account-info/v3/details", get(hubspot))
            .route(
                "/qb/{host}/v3/company/{realm}/companyinfo/{realm2}",
                get(quickbooks),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake");
        fake.base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// Settings that point the app at this fake.
    pub fn settings(&self) -> Vec<(String, String)> {
        vec![
            (
                "STRIPE_API_BASE_URL".into(),
                format!("{}/stripe", self.base),
            ),
            (
                "HUBSPOT_API_BASE_URL".into(),
                format!("{}/hubspot", self.base),
            ),
            (
                "QUICKBOOKS_API_BASE_URL".into(),
                format!("{}/qb/production", self.base),
            ),
            (
                "QUICKBOOKS_SANDBOX_API_BASE_URL".into(),
                format!("{}/qb/sandbox", self.base),
            ),
        ]
    }

    pub fn accept(&self, provider: &'static str, token: &str) {
        self.inner
            .lock()
            .expect("lock")
            .accepted
            .insert(provider, token.to_owned());
    }

    pub fn behave(&self, provider: &'static str, behaviour: Behaviour) {
        self.inner
            .lock()
            .expect("lock")
            .behaviour
            .insert(provider, behaviour);
    }

    pub fn calls(&self, provider: &'static str) -> usize {
        self.inner
            .lock()
            .expect("lock")
            .calls
            .get(provider)
            .copied()
            .unwrap_or(0)
    }

    /// Counts the call; returns an early answer when the behaviour says so.
    async fn enter(&self, provider: &'static str, headers: &HeaderMap) -> Result<(), Response> {
        let (behaviour, accepted) = {
            let mut inner = self.inner.lock().expect("lock");
            *inner.calls.entry(provider).or_default() += 1;
            (
                inner
                    .behaviour
                    .get(provider)
                    .copied()
                    .unwrap_or(Behaviour::Normal),
                inner.accepted.get(provider).cloned(),
            )
        };
        match behaviour {
            Behaviour::RateLimited { retry_after } => {
                return Err((
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", retry_after.to_string())],
                    Json(json!({"error": {"type": "rate_limit_error", "message": "Too many requests"}})),
                )
                    .into_response());
            }
            Behaviour::ServerError => {
                return Err((StatusCode::BAD_GATEWAY, "upstream error").into_response());
            }
            Behaviour::Slow(d) => tokio::time::sleep(d).await,
            Behaviour::Normal => {}
        }
        let presented = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented.is_none() || presented != accepted.as_deref() {
            return Err(StatusCode::UNAUTHORIZED.into_response());
        }
        Ok(())
    }
}

async fn stripe(State(fake): State<FakeProviders>, headers: HeaderMap) -> Response {
    match fake.enter("stripe", &headers).await {
        Ok(()) => Json(json!({"id": "acct_1Fake", "object": "account", "charges_enabled": true})).into_response(),
        Err(r) if r.status() == StatusCode::UNAUTHORIZED => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****"}})),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn hubspot(State(fake): State<FakeProviders>, headers: HeaderMap) -> Response {
    match fake.enter("hubspot", &headers).await {
        Ok(()) => Json(json!({"portalId": 62515, "accountType": "STANDARD", "timeZone": "US/Eastern"})).into_response(),
        Err(r) if r.status() == StatusCode::UNAUTHORIZED => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"status": "error", "message": "Authentication credentials not found.", "category": "INVALID_AUTHENTICATION"})),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn quickbooks(
    State(fake): State<FakeProviders>,
    Path((host, realm, realm2)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let provider = if host == "sandbox" {
        "quickbooks-sandbox"
    } else {
        "quickbooks-production"
    };
    match fake.enter(provider, &headers).await {
        Ok(()) if realm == realm2 => Json(json!({"CompanyInfo": {"CompanyName": "Sandbox Company", "Id": "1"}, "time": "2026-11-22T00:00:00Z"})).into_response(),
        Ok(()) => StatusCode::BAD_REQUEST.into_response(),
        Err(r) if r.status() == StatusCode::UNAUTHORIZED => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401", "code": "3200"}], "type": "AUTHENTICATION"}})),
        )
            .into_response(),
        Err(r) => r,
    }
}

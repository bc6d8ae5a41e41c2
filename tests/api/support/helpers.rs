//! `TestApp`: the real application on an ephemeral port, with its own database and Redis
//! prefix, driven over real HTTP.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use hsq_config::app::Application;
use hsq_config::config::{LogFormat, Settings};
use hsq_config::state::AppState;
use rand::RngCore;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// The server that tests create their databases on.
pub fn postgres_base() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        hsq_config::infra::telemetry::init("debug", LogFormat::Pretty, std::io::stdout);
    }
});

pub fn random_key() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

pub fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A fresh database, dropped (with its connections) when this value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDb {
    pub async fn new() -> Self {
        let name = format!("hsq_test_{}", random_suffix());
        let mut admin = PgConnection::connect(&format!("{}/postgres", postgres_base()))
            .await
            .expect("connect to the test PostgreSQL server");
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .expect("create the test database");
        let url = format!("{}/{name}", postgres_base());
        let pool = PgPool::connect(&url)
            .await
            .expect("connect to the test database");
        Self { name, url, pool }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let base = postgres_base();
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&format!("{base}/postgres")).await {
                    let _ = admin
                        .execute(
                            format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str(),
                        )
                        .await;
                }
            });
        })
        .join();
    }
}

/// Deletes every Redis key under a prefix.
pub async fn clear_redis_prefix(prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// The settings a test app starts with; tests change entries before spawning.
pub fn base_vars(db_url: &str) -> HashMap<String, String> {
    HashMap::from([
        ("DATABASE_URL".into(), db_url.to_owned()),
        ("REDIS_URL".into(), redis_url()),
        (
            "REDIS_KEY_PREFIX".into(),
            format!("hsqtest:{}:", random_suffix()),
        ),
        ("ENCRYPTION_KEY".into(), random_key()),
        (
            "ADMIN_API_TOKEN".into(),
            format!(
                "admin-{}-{}-{}",
                random_suffix(),
                random_suffix(),
                random_suffix()
            ),
        ),
        ("PORT".into(), "0".into()),
        ("BIND_ADDRESS".into(), "127.0.0.1".into()),
        ("CONFIGURATION_API_RATE_LIMIT".into(), "1000".into()),
        ("CONFIGURATION_API_RATE_BURST".into(), "1000".into()),
    ])
}

pub struct TestApp {
    pub address: String,
    /// The in-process app's state, for driving background work (monitor rounds) in tests;
    /// None when attached to an app running elsewhere.
    state: Option<AppState>,
    pub client: reqwest::Client,
    pub vars: HashMap<String, String>,
    pub admin_token: String,
    pub db: TestDb,
    stop: CancellationToken,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with settings changed by `customize`.
    pub async fn spawn_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> Self {
        let db = TestDb::new().await;
        let mut vars = base_vars(&db.url);
        customize(&mut vars);
        let (address, stop, state) = start_with_state(&vars).await.expect("the test app starts");
        Self {
            address,
            state: Some(state),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            admin_token: vars["ADMIN_API_TOKEN"].clone(),
            vars,
            db,
            stop,
        }
    }

    /// Drives an app that runs elsewhere (e.g. the real binary) with the same helpers.
    pub fn attach(address: String, vars: HashMap<String, String>, db: TestDb) -> Self {
        Self {
            address,
            state: None,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            admin_token: vars["ADMIN_API_TOKEN"].clone(),
            vars,
            db,
            stop: CancellationToken::new(),
        }
    }

    /// A second instance sharing this one's database, Redis prefix and key.
    pub async fn sibling(&self) -> (String, CancellationToken) {
        start(&self.vars).await.expect("the sibling app starts")
    }

    /// Waits until `n` cache invalidation listeners are listening on the test's database:
    /// until then an instance's caches are off and every read goes to PostgreSQL.
    pub async fn caches_live(&self, n: i64) {
        crate::support::wait::eventually(
            &format!("{n} cache invalidation listeners"),
            Duration::from_secs(5),
            async || {
                let listening: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
                )
                .fetch_one(&self.db.pool)
                .await
                .ok()?;
                (listening >= n).then_some(())
            },
        )
        .await;
    }

    /// The state of an app spawned in this process.
    pub fn state(&self) -> &AppState {
        self.state
            .as_ref()
            .expect("an in-process app (not attached)")
    }

    /// The breaker entry `/api/config/health` reports for a provider × environment.
    pub async fn breaker(&self, provider: &str, environment: &str) -> Value {
        let health: Value = self
            .get("/api/config/health")
            .await
            .json()
            .await
            .expect("health json");
        health["breakers"]
            .as_array()
            .expect("breakers")
            .iter()
            .find(|b| b["provider"] == provider && b["environment"] == environment)
            .cloned()
            .expect("a breaker for every provider and environment")
    }

    /// Pretends an open breaker's cooldown has passed, by rewinding its open time in Redis.
    pub async fn rewind_breaker(&self, provider: &str, environment: &str) {
        let client = redis::Client::open(redis_url()).expect("redis");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("conn");
        let _: () = redis::cmd("HSET")
            .arg(format!("{}breaker:{provider}:{environment}", self.prefix()))
            .arg("opened_at")
            .arg(0)
            .query_async(&mut conn)
            .await
            .expect("rewind the breaker");
    }

    pub fn prefix(&self) -> &str {
        &self.vars["REDIS_KEY_PREFIX"]
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, &self.admin_token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::PUT, path, &self.admin_token)
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::PATCH, path, &self.admin_token)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path, &self.admin_token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path, &self.admin_token)
            .send()
            .await
            .expect("DELETE")
    }

    /// Creates an API token with `role` and returns the token.
    pub async fn token(&self, role: &str) -> String {
        let name = format!("{role}-{}", random_suffix());
        let r = self
            .post_json(
                "/api/config/api-tokens",
                &serde_json::json!({"name": name, "role": role}),
            )
            .await;
        assert_eq!(r.status(), 201, "create {role} token");
        let body: Value = r.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Counts audit rows with this action (and success flag, when given).
    pub async fn audit_count(&self, action: &str, success: Option<bool>) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM configuration_audit_logs WHERE action = $1 AND ($2::bool IS NULL OR success = $2)",
        )
        .bind(action)
        .bind(success)
        .fetch_one(&self.db.pool)
        .await
        .expect("count audit rows")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
        let prefix = self.vars["REDIS_KEY_PREFIX"].clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(clear_redis_prefix(&prefix));
        })
        .join();
    }
}

/// Builds and serves an application; returns its base URL and a stop token.
pub async fn start(vars: &HashMap<String, String>) -> anyhow::Result<(String, CancellationToken)> {
    start_with_state(vars)
        .await
        .map(|(address, stop, _)| (address, stop))
}

/// Like [`start`], also returning the app's state.
pub async fn start_with_state(
    vars: &HashMap<String, String>,
) -> anyhow::Result<(String, CancellationToken, AppState)> {
    LazyLock::force(&TRACING);
    let settings = Settings::from_map(vars)?;
    let app = Application::build(settings).await?;
    let state = app.state().clone();
    let address = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async move { token.cancelled().await })
            .await;
    });
    Ok((address, stop, state))
}

/// The body of a problem response, after checking its status and content type.
pub async fn problem(r: Response, status: u16) -> Value {
    assert_eq!(r.status(), status, "status");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    r.json().await.expect("problem json")
}

/// Field names of a 422 problem.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub const STRIPE_TEST_KEY: &str = "sk_test_51CanaryZq8hG2vX0pLmN4242";

//! The settings console over plain HTTP: sign-in and its cookie, the session in Redis (which
//! never holds a token), the origin and CSRF checks, revoked tokens, the sign-in limit, and
//! the secret canary through the console's pages, Redis and the audit log.

use reqwest::{StatusCode, header};

use crate::support::helpers::{STRIPE_TEST_KEY, TestApp, redis_url};

/// A browser stand-in: one cookie, the console's origin on every form.
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    origin: String,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Self {
            origin: app.address.clone(),
            app,
            cookie: None,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        let mut req = self.app.client.get(self.app.url(path));
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        req.send().await.expect("GET")
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.app.client.post(self.app.url(path)).form(form);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        req.send().await.expect("POST")
    }

    /// Signs in and keeps the cookie; returns the raw `Set-Cookie`.
    pub(crate) async fn sign_in(&mut self, token: &str) -> String {
        let origin = self.origin.clone();
        let r = self
            .post(
                "/settings/signin",
                Some(&origin),
                &[("token", token), ("next", "/settings/")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in");
        let set = r
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("a session cookie")
            .to_owned();
        self.cookie = set.split(';').next().map(str::to_owned);
        set
    }

    pub(crate) async fn page(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store", "{path}");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("csp")
            .to_owned();
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        r.text().await.expect("html")
    }

    pub(crate) async fn csrf(&self) -> String {
        let html = self.page("/settings/").await;
        let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
        html[at..].split('"').next().expect("value").to_owned()
    }
}

async fn redis_values(prefix: &str) -> Vec<(String, String)> {
    let client = redis::Client::open(redis_url()).expect("redis");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    let mut out = Vec::new();
    for key in keys {
        let value: redis::RedisResult<String> =
            redis::cmd("GET").arg(&key).query_async(&mut conn).await;
        out.push((key, value.unwrap_or_default()));
    }
    out
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_the_session_holds_no_token() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let unauth = browser.get("/settings/").await;
    assert_eq!(unauth.status(), StatusCode::SEE_OTHER);
    assert!(
        unauth.headers()[header::LOCATION]
            .to_str()
            .expect("location")
            .starts_with("/settings/signin")
    );

    let set = browser.sign_in(&app.admin_token).await;
    assert!(set.starts_with("hsq_console="), "{set}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/settings"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let session_id = browser
        .cookie
        .clone()
        .expect("cookie")
        .split('=')
        .nth(1)
        .expect("id")
        .to_owned();

    let viewer = app.token("viewer").await;
    let mut other = Browser::new(&app);
    other.sign_in(&viewer).await;

    let sessions: Vec<_> = redis_values(app.prefix())
        .await
        .into_iter()
        .filter(|(k, _)| k.contains("console:session:"))
        .collect();
    assert_eq!(sessions.len(), 2);
    for (key, value) in &sessions {
        for secret in [
            app.admin_token.as_str(),
            viewer.as_str(),
            session_id.as_str(),
        ] {
            assert!(
                !key.contains(secret) && !value.contains(secret),
                "{key} holds a token"
            );
        }
        assert!(value.contains("\"csrf\""), "{value}");
    }

    // Signing in again rotates the id; signing out deletes the session.
    let before = browser.cookie.clone();
    browser.sign_in(&app.admin_token).await;
    assert_ne!(before, browser.cookie);
    let csrf = browser.csrf().await;
    let origin = browser.origin.clone();
    let out = browser
        .post("/settings/signout", Some(&origin), &[("_csrf", &csrf)])
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[header::SET_COOKIE]
            .to_str()
            .expect("cookie")
            .contains("Max-Age=0")
    );
    let after = browser.get("/settings/").await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    let left = redis_values(app.prefix())
        .await
        .into_iter()
        .filter(|(k, _)| k.contains("console:session:"))
        .count();
    assert_eq!(left, 1, "only the viewer's session is left");
}

#[tokio::test]
async fn over_https_the_cookie_is_secure_with_the_host_prefix() {
    let app = TestApp::spawn_with(|v| {
        v.insert(
            "SETTINGS_PUBLIC_URL".into(),
            "https://config.example.com".into(),
        );
    })
    .await;
    let mut browser = Browser::new(&app);
    browser.origin = "https://config.example.com".into();
    let set = browser.sign_in(&app.admin_token).await;
    assert!(set.starts_with("__Host-hsq_console="), "{set}");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/;"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    assert_eq!(browser.get("/settings/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn forms_without_the_token_or_from_another_origin_change_nothing() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin_token).await;
    let csrf = browser.csrf().await;
    let origin = browser.origin.clone();
    let evil = browser
        .post(
            "/settings/stripe/sandbox",
            Some("http://evil.example.com"),
            &[("_csrf", &csrf), ("secrets.secret_key", STRIPE_TEST_KEY)],
        )
        .await;
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    let missing = browser
        .post(
            "/settings/stripe/sandbox",
            Some(&origin),
            &[("secrets.secret_key", STRIPE_TEST_KEY)],
        )
        .await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let wrong = browser
        .post(
            "/settings/stripe/sandbox",
            Some(&origin),
            &[
                ("_csrf", "x".repeat(43).as_str()),
                ("secrets.secret_key", STRIPE_TEST_KEY),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let no_origin = browser
        .post(
            "/settings/stripe/sandbox",
            None,
            &[("_csrf", &csrf), ("secrets.secret_key", STRIPE_TEST_KEY)],
        )
        .await;
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);
    let signin_elsewhere = app
        .client
        .post(app.url("/settings/signin"))
        .header(header::ORIGIN, "http://evil.example.com")
        .form(&[("token", app.admin_token.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(signin_elsewhere.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/api/config/integrations/stripe/sandbox")
            .await
            .status(),
        404
    );
    assert_eq!(
        app.audit_count("console_origin_refused", Some(false)).await,
        2
    );
    assert_eq!(
        app.audit_count("console_csrf_refused", Some(false)).await,
        2
    );

    let ok = browser
        .post(
            "/settings/stripe/sandbox",
            Some(&origin),
            &[
                ("_csrf", &csrf),
                ("enabled", "true"),
                ("secrets.secret_key", STRIPE_TEST_KEY),
            ],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/api/config/integrations/stripe/sandbox")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_secret_never_reaches_a_page_redis_or_the_audit_log_except_the_reveal() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin_token).await;
    let csrf = browser.csrf().await;
    let origin = browser.origin.clone();
    // A refused save (the key is fine, the publishable key is not) and a good one.
    let refused = browser
        .post(
            "/settings/stripe/sandbox",
            Some(&origin),
            &[
                ("_csrf", &csrf),
                ("settings.publishable_key", "pk_live_nope1234567"),
                ("secrets.secret_key", STRIPE_TEST_KEY),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = refused.text().await.expect("html");
    assert!(
        !body.contains(STRIPE_TEST_KEY),
        "the refused form does not echo the secret"
    );
    assert!(
        body.contains("e-publishable_key"),
        "the error sits beside its field"
    );
    let saved = browser
        .post(
            "/settings/stripe/sandbox",
            Some(&origin),
            &[
                ("_csrf", &csrf),
                ("enabled", "true"),
                ("secrets.secret_key", STRIPE_TEST_KEY),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    for path in [
        "/settings/",
        "/settings/stripe?environment=sandbox",
        "/settings/stripe/sandbox/reveal",
        "/settings/audit",
        "/settings/health",
        "/settings/tokens",
        "/settings/webhooks",
    ] {
        let html = browser.page(path).await;
        assert!(!html.contains(STRIPE_TEST_KEY), "{path} holds the secret");
        assert!(
            !html.contains(&app.admin_token),
            "{path} holds the admin token"
        );
    }
    let revealed = browser
        .post(
            "/settings/stripe/sandbox/reveal",
            Some(&origin),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(revealed.status(), StatusCode::OK);
    assert_eq!(revealed.headers()[header::CACHE_CONTROL], "no-store");
    assert!(
        revealed
            .text()
            .await
            .expect("html")
            .contains(STRIPE_TEST_KEY)
    );

    for (key, value) in redis_values(app.prefix()).await {
        assert!(
            !value.contains(STRIPE_TEST_KEY) && !value.contains(&app.admin_token),
            "{key}"
        );
    }
    let audit: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT action, details::text, user_agent FROM configuration_audit_logs ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("audit rows");
    for (action, details, _) in &audit {
        assert!(
            !details.contains(STRIPE_TEST_KEY) && !details.contains(&app.admin_token),
            "{action}"
        );
    }
    let from_console = |action: &str| {
        audit.iter().any(|(a, _, ua)| {
            a == action && ua.as_deref().is_some_and(|u| u.starts_with("hsq-console"))
        })
    };
    for action in [
        "console_signed_in",
        "config_replaced",
        "config_created",
        "secret_revealed",
    ] {
        assert!(from_console(action), "{action} from the console");
    }
}

#[tokio::test]
async fn a_revoked_token_ends_its_sessions_and_viewers_are_refused() {
    let app = TestApp::spawn().await;
    let viewer = app.token("viewer").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&viewer).await;
    let csrf = browser.csrf().await;
    let origin = browser.origin.clone();
    let html = browser.page("/settings/stripe?environment=sandbox").await;
    assert!(
        !html.contains(">Save<") && !html.contains("/reveal"),
        "no controls for a viewer"
    );
    let save = browser
        .post(
            "/settings/stripe/sandbox",
            Some(&origin),
            &[("_csrf", &csrf), ("secrets.secret_key", STRIPE_TEST_KEY)],
        )
        .await;
    assert_eq!(save.status(), StatusCode::FORBIDDEN);
    let token = browser
        .post(
            "/settings/tokens",
            Some(&origin),
            &[("_csrf", &csrf), ("name", "x"), ("role", "admin")],
        )
        .await;
    assert_eq!(token.status(), StatusCode::FORBIDDEN);

    let id = sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM api_tokens WHERE role = 'viewer'")
        .fetch_one(&app.db.pool)
        .await
        .expect("viewer id");
    assert_eq!(
        app.delete(&format!("/api/config/api-tokens/{id}"))
            .await
            .status(),
        204
    );
    let after = browser.get("/settings/").await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    let location = after.headers()[header::LOCATION]
        .to_str()
        .expect("location");
    assert!(location.contains("notice=revoked"), "{location}");
}

#[tokio::test]
async fn sign_ins_are_rate_limited_and_audited() {
    let app = TestApp::spawn_with(|v| {
        v.insert("SETTINGS_SIGNIN_ATTEMPTS".into(), "3".into());
    })
    .await;
    let browser = Browser::new(&app);
    let origin = browser.origin.clone();
    for _ in 0..3 {
        let r = browser
            .post(
                "/settings/signin",
                Some(&origin),
                &[("token", "not-a-token")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = browser
        .post(
            "/settings/signin",
            Some(&origin),
            &[("token", app.admin_token.as_str())],
        )
        .await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(app.audit_count("console_signed_in", Some(false)).await, 4);
}

#[tokio::test]
async fn the_console_can_be_turned_off() {
    let app = TestApp::spawn_with(|v| {
        v.insert("SETTINGS_UI_ENABLED".into(), "false".into());
    })
    .await;
    assert_eq!(
        app.client
            .get(app.url("/settings/"))
            .send()
            .await
            .expect("GET")
            .status(),
        404
    );
}

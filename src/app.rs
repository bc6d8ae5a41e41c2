//! `Application`: builds the state and the router with every layer, serves with graceful
//! shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, header};
use axum::{Router, middleware as mw};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Settings;
use crate::domain::{Provider, keyring_check, monitor, oauth};
use crate::http::middleware::{self, ClientKey};
use crate::routes;
use crate::state::AppState;
use crate::store;

/// A built application: listener bound, schema migrated, keyring verified.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    background: CancellationToken,
}

impl Application {
    /// Connects, migrates (unless `RUN_MIGRATIONS=false`), checks the keyring and binds.
    /// Fails — writing nothing — when the keyring cannot open stored data.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = AppState::new(settings)?;
        if state.settings.run_migrations {
            store::MIGRATOR
                .run(&state.db)
                .await
                .map_err(|e| anyhow::anyhow!("database migrations failed: {e}"))?;
        }
        let names: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
        store::register_providers(&state.db, &names)
            .await
            .map_err(|e| anyhow::anyhow!("cannot register the providers: {e}"))?;
        keyring_check::verify(&state).await?;
        if state.keyring().from_passphrase() {
            tracing::warn!(
                "ENCRYPTION_KEY is a passphrase stretched with Argon2id; prefer 32 random bytes (`openssl rand -base64 32`)"
            );
        }
        crate::infra::metrics::init();
        let background = CancellationToken::new();
        let router = router(state.clone(), &background);
        if state.settings.health_monitor_enabled {
            monitor::spawn(state.clone(), background.clone());
        }
        if state.settings.backup.enabled {
            crate::domain::backup::schedule::spawn(state.clone(), background.clone());
        }
        crate::domain::audit_retention::spawn(state.clone(), background.clone());
        crate::domain::audit_sequencer::spawn(state.clone(), background.clone());
        crate::domain::outbox::spawn_breaker_events(state.clone(), background.clone());
        if state.settings.webhooks.delivery_enabled {
            crate::domain::webhook_delivery::spawn(state.clone(), background.clone());
        }
        store::invalidation::spawn(state.db.clone(), state.caches.clone(), background.clone());
        let addr = SocketAddr::new(state.settings.bind_address, state.settings.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        Ok(Self {
            listener,
            router,
            state,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains in-flight requests, stops background
    /// work and closes the pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        tracing::info!(%addr, "hsq-config listening");
        let background = self.background.clone();
        if self.state.settings.oauth.refresher_enabled {
            oauth::refresher::spawn(self.state.clone(), background.clone());
        }
        let (stopping_tx, stopping) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            background.cancel();
            let _ = stopping_tx.send(());
        });
        // After the signal, in-flight requests get SHUTDOWN_DRAIN_SECS to finish; then the
        // process stops anyway, before the orchestrator's own deadline kills it.
        let drain = self.state.settings.shutdown_drain;
        let deadline = async move {
            if stopping.await.is_ok() {
                tokio::time::sleep(drain).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            served = server => served?,
            () = deadline => tracing::warn!(
                drain_secs = drain.as_secs(),
                "requests still in flight after SHUTDOWN_DRAIN_SECS; stopping"
            ),
        }
        self.background.cancel();
        self.state.db.close().await;
        tracing::info!("hsq-config stopped");
        Ok(())
    }
}

/// The whole HTTP surface. Layers run outermost first in this order: request id and request
/// log → panic catching → timeout → body limit → security headers → CORS → (API only) rate
/// limit → handler.
pub fn router(state: AppState, background: &CancellationToken) -> Router {
    let settings = state.settings.clone();

    let governor = Arc::new(
        GovernorConfigBuilder::default()
            .period(Duration::from_nanos(
                1_000_000_000 / u64::from(settings.rate_limit_per_second),
            ))
            .burst_size(settings.rate_limit_burst)
            .key_extractor(ClientKey {
                trusted: Arc::new(settings.trusted_proxies.clone()),
            })
            .finish()
            .expect("period and burst are validated as positive at start"),
    );
    let limiter = governor.limiter().clone();
    let cancel = background.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => limiter.retain_recent(),
            }
        }
    });

    // Everything under /api/config is rate limited per client; health routes are not.
    let (api, mut spec) = routes::api().split_for_parts();
    let api =
        api.layer(GovernorLayer::new(governor).error_handler(middleware::rate_limit_response));
    let (health, health_spec) = routes::health::router().split_for_parts();
    spec.merge(health_spec);
    let doc = routes::docs::document(spec);

    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(settings.cors_allowed_origins.clone()))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            middleware::X_REQUEST_ID.clone(),
        ])
        .expose_headers([
            header::ETAG,
            middleware::X_REQUEST_ID.clone(),
            header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600));

    let timeout = settings.request_timeout;
    let limit = settings.request_body_limit;

    let mut app = Router::new()
        .merge(api)
        .merge(health)
        .merge(routes::docs::router(doc))
        .merge(routes::metrics::router())
        .merge(crate::console::router(&state))
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .with_state(state);
    app = app.layer(mw::map_response(middleware::security_headers));
    // Without allowed origins there is nothing for CORS to allow; the layer (whose
    // configuration is copied for every request) is left out.
    if !settings.cors_allowed_origins.is_empty() {
        app = app.layer(cors);
    }
    app.layer(DefaultBodyLimit::max(limit))
        .layer(mw::from_fn(move |req, next| {
            middleware::timeout(timeout, req, next)
        }))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(mw::from_fn(middleware::request_context))
}

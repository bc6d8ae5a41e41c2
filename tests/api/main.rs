//! Integration tests over real HTTP against real PostgreSQL and Redis.

mod audit;
mod audit_chain;
mod auth;
mod backup;
mod canary;
mod encryption;
mod fake_oauth;
mod fake_providers;
mod hardening;
mod health;
mod helpers;
mod http;
mod integrations;
mod oauth;
mod oauth_canary;
mod oauth_lock;
mod oauth_refresh;
mod oauth_support;
mod ops;
mod provider_health;
mod rotation;
mod scheduled;
mod tcp_proxy;
mod upgrade;
mod webhooks;

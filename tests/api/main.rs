//! Integration tests over real HTTP against real PostgreSQL and Redis.

mod audit;
mod audit_chain;
mod audit_path;
mod auth;
mod backup;
mod canary;
mod console;
mod encryption;
mod hardening;
mod health;
mod http;
mod integrations;
mod metrics;
mod oauth;
mod oauth_canary;
mod oauth_lock;
mod oauth_refresh;
mod oauth_state;
mod provider_health;
mod restore_safety;
mod rotation;
mod scheduled;
mod support;
mod upgrade;
mod webhooks;

//! Integration tests over real HTTP against real PostgreSQL and Redis.

mod audit;
mod auth;
mod canary;
mod encryption;
mod fake_providers;
mod health;
mod helpers;
mod http;
mod integrations;
mod provider_health;
mod proxy;
mod webhooks;

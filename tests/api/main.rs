//! Integration tests over real HTTP against real PostgreSQL and Redis.

mod audit;
mod auth;
mod canary;
mod encryption;
mod health;
mod helpers;
mod http;
mod integrations;
mod proxy;
mod webhooks;

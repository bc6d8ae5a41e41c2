//! Integration tests over real HTTP against real PostgreSQL and Redis.

mod fake_oauth;
mod helpers;
mod integrations;
mod oauth;
mod oauth_canary;
mod tcp_proxy;

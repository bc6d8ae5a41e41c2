//! Integration tests over real HTTP against real PostgreSQL and Redis.

mod fake_oauth;
mod helpers;
mod integrations;
mod oauth;
mod oauth_canary;
mod oauth_lock;
mod oauth_refresh;
mod oauth_support;
mod tcp_proxy;

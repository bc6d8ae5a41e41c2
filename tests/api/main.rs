//! Integration tests over real HTTP against real PostgreSQL and Redis.

mod helpers;
mod integrations;

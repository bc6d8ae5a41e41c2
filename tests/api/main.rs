//! Integration tests over real HTTP against real PostgreSQL and Redis.

mod audit_chain;
mod backup;
mod helpers;
mod integrations;
mod ops;
mod rotation;
mod scheduled;

//! Infrastructure below the domain: encryption, Redis and its locks, circuit breakers,
//! canonical JSON, the TTL cache, metrics and logging. Nothing here knows about configs, tokens or audit rows.

pub mod breaker;
pub mod cache;
pub mod canonical;
pub mod crypto;
pub mod lock;
pub mod metrics;
pub mod outbound;
pub mod redis;
pub mod telemetry;
pub mod webhook_signature;

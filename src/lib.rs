//! hsq-config: the configuration-management service of the HubSpot–Stripe–QuickBooks bridge.
//!
//! The binary is a thin CLI over this library, so tests drive the real application in-process.

pub mod app;
pub mod audit;
pub mod audit_chain;
pub mod audit_retention;
pub mod auth;
pub mod backup;
pub mod breaker;
pub mod canonical;
pub mod client_ip;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod integrations;
pub mod json;
pub mod keyring_check;
pub mod lease;
pub mod mask;
pub mod metrics;
pub mod middleware;
pub mod monitor;
pub mod oauth;
pub mod operator;
pub mod providers;
pub mod redis_store;
pub mod rotation;
pub mod routes;
pub mod store;
pub mod telemetry;
pub mod validation;
pub mod webhooks;

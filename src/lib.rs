//! hsq-config: the configuration-management service of the HubSpot–Stripe–QuickBooks bridge.
//!
//! The binary is a thin CLI over this library, so tests drive the real application in-process.

pub mod app;
pub mod audit;
pub mod auth;
pub mod client_ip;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod integrations;
pub mod json;
pub mod keyring_check;
pub mod mask;
pub mod middleware;
pub mod oauth;
pub mod providers;
pub mod redis_store;
pub mod routes;
pub mod store;
pub mod telemetry;
pub mod webhooks;

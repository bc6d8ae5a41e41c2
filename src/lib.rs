//! hsq-config: the configuration-management service of the HubSpot–Stripe–QuickBooks bridge.
//!
//! The binary is a thin CLI over this library, so tests drive the real application in-process.
//! The folders are the layers, each importing only from those below it:
//! `routes` (thin handlers) and `console` (the settings pages at `/settings`) → `domain` (what the service does) → `store` (SQL) and `infra`
//! (crypto, Redis, locks, breakers); `http` is the plumbing every handler shares, `providers`
//! owns everything that differs between providers, `kinds` holds the closed sets (providers,
//! environments, roles) every layer may name, and `state` and `config` are what everything
//! is handed. `docs/architecture.md` has the map.

pub mod app;
pub mod config;
pub mod console;
pub mod domain;
pub mod http;
pub mod infra;
pub mod kinds;
pub mod providers;
pub mod routes;
pub mod state;
pub mod store;

//! What the service does: integration configs, webhooks, API tokens, OAuth connections,
//! validation and health, backups, key rotation and the audit log, each in its own module.
//!
//! The closed sets it speaks of (providers, environments, roles) live in `crate::kinds` and
//! are re-exported here.

pub mod api_tokens;
pub mod audit;
pub mod audit_chain;
pub mod audit_log;
pub mod audit_retention;
pub mod audit_sequencer;
pub mod backup;
pub mod events;
pub mod health;
pub mod integrations;
pub mod keyring_check;
pub mod mask;
pub mod monitor;
pub mod oauth;
pub mod operator;
pub mod outbox;
pub mod rotation;
pub mod validation;
pub mod webhook_delivery;
pub mod webhook_log;
pub mod webhooks;

pub use crate::kinds::{Environment, Provider, Role, one_of};

//! OAuth connections: the browser flow (`flow`, with its state in Redis in `state`), the
//! provider calls (`provider`), the token vault (`vault`), refresh under a cross-replica lock
//! (`refresh`, with `infra::lock`) and the background refresher (`refresher`).

pub mod flow;
pub mod provider;
pub mod refresh;
pub mod refresher;
mod revoke;
pub mod state;
mod token_response;
pub mod vault;

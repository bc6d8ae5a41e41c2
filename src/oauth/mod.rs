//! OAuth connections: the browser flow (`flow`, with its state in Redis in `state`), the
//! provider calls (`provider`), the token vault (`vault`), refresh under a cross-replica lock
//! (`refresh`, `lock`) and the background refresher (`refresher`).

pub mod flow;
pub mod lock;
pub mod provider;
pub mod refresh;
pub mod refresher;
mod revoke;
pub mod settings;
pub mod state;
pub mod vault;

//! HTTP plumbing: bearer authentication, request bodies, middleware, the error type that
//! becomes problem+json, and the client address.

pub mod auth;
pub mod client_ip;
pub mod error;
pub mod json;
pub mod middleware;

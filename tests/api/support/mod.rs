//! What the tests stand on: the app under test, fakes of the outside world, and shared steps.

pub mod fake_oauth;
pub mod fake_providers;
pub mod helpers;
pub mod oauth_support;
pub mod ops;
pub mod provider_support;
pub mod receiver;
pub mod tcp_proxy;
pub mod wait;

//! Shared steps of the provider-validation and metrics tests: an app pointed at the fake
//! providers, and validating a config.

use serde_json::{Value, json};

use crate::support::fake_providers::FakeProviders;
use crate::support::helpers::TestApp;

/// The config the validation tests work on.
pub const STRIPE: &str = "/api/config/integrations/stripe/sandbox";

/// The app under test, with its provider base URLs pointed at `fake` and `extra` settings.
pub async fn app_with(fake: &FakeProviders, extra: &[(&str, &str)]) -> TestApp {
    let mut settings = fake.settings();
    settings.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    TestApp::spawn_with(move |vars| vars.extend(settings)).await
}

/// Validates the config at `path`, which must answer 200, and returns the report.
pub async fn validate(app: &TestApp, path: &str) -> Value {
    let r = app.post_json(&format!("{path}/validate"), &json!({})).await;
    assert_eq!(r.status(), 200, "validate {path}");
    r.json().await.expect("json")
}

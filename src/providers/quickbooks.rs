//! QuickBooks Online: the Intuit OAuth app and the company (realm) it connects to.

use serde_json::Value;

use super::{FieldCheck, FieldSpec, ProviderSpec, digits, non_empty_text, scopes, secret_text};

pub struct Quickbooks;

/// The scope every accounting sync needs; used when the client sends none.
pub const DEFAULT_SCOPE: &str = "com.intuit.quickbooks.accounting";

impl ProviderSpec for Quickbooks {
    fn fields(&self) -> &'static [FieldSpec] {
        &[
            FieldSpec {
                name: "client_id",
                check: FieldCheck::Setting(non_empty_text),
            },
            FieldSpec {
                name: "realm_id",
                check: FieldCheck::Setting(digits),
            },
            FieldSpec {
                name: "scopes",
                check: FieldCheck::Setting(scopes),
            },
            FieldSpec {
                name: "minor_version",
                check: FieldCheck::Setting(digits),
            },
            FieldSpec {
                name: "client_secret",
                check: FieldCheck::Secret(secret_text),
            },
        ]
    }

    fn default_settings(&self) -> Vec<(&'static str, Value)> {
        vec![("scopes", Value::String(DEFAULT_SCOPE.to_owned()))]
    }
}

//! QuickBooks Online: the Intuit OAuth app and the company (realm) it connects to.

use serde_json::Value;

use super::{
    ClientAuth, FieldCheck, FieldSpec, OAuthQuirks, ProviderSpec, RevokeStyle, digits,
    non_empty_text, scopes, secret_text,
};

pub struct Quickbooks;

/// The scope every accounting sync needs; used when the client sends none.
pub const DEFAULT_SCOPE: &str = "com.intuit.quickbooks.accounting";

impl ProviderSpec for Quickbooks {
    fn fields(&self) -> &'static [FieldSpec] {
        &[
            FieldSpec { name: "client_id", check: FieldCheck::Setting(non_empty_text) },
            FieldSpec { name: "realm_id", check: FieldCheck::Setting(digits) },
            FieldSpec { name: "scopes", check: FieldCheck::Setting(scopes) },
            FieldSpec { name: "minor_version", check: FieldCheck::Setting(digits) },
            FieldSpec { name: "client_secret", check: FieldCheck::Secret(secret_text) },
        ]
    }

    fn default_settings(&self) -> Vec<(&'static str, Value)> {
        vec![("scopes", Value::String(DEFAULT_SCOPE.to_owned()))]
    }

    /// Intuit authenticates the client with HTTP Basic, sends the company as `realmId` on
    /// the callback, rolls refresh tokens and reports their hard expiry in
    /// `x_refresh_token_expires_in`.
    fn oauth(&self) -> OAuthQuirks {
        OAuthQuirks {
            client_id_setting: "client_id",
            client_secret_field: "client_secret",
            client_auth: ClientAuth::Basic,
            default_scopes: DEFAULT_SCOPE,
            redirect_uri_in_token_request: true,
            callback_account_param: Some("realmId"),
            revoke: RevokeStyle::IntuitJson,
        }
    }
}

//! HubSpot: OAuth app credentials and a private app token.

use super::{
    FieldCheck, FieldSpec, ProviderSpec, digits, non_empty_text, prefixed, scopes, secret_text,
};
use crate::domain::Environment;

pub struct Hubspot;

impl ProviderSpec for Hubspot {
    fn fields(&self) -> &'static [FieldSpec] {
        &[
            FieldSpec {
                name: "client_id",
                check: FieldCheck::Setting(non_empty_text),
            },
            FieldSpec {
                name: "app_id",
                check: FieldCheck::Setting(digits),
            },
            FieldSpec {
                name: "portal_id",
                check: FieldCheck::Setting(digits),
            },
            FieldSpec {
                name: "scopes",
                check: FieldCheck::Setting(scopes),
            },
            FieldSpec {
                name: "client_secret",
                check: FieldCheck::Secret(secret_text),
            },
            FieldSpec {
                name: "private_app_token",
                check: FieldCheck::Secret(private_app_token),
            },
        ]
    }
}

fn private_app_token(value: &str, _: Environment) -> Result<(), String> {
    prefixed(value, &["pat-"])
}

//! The closed sets the API speaks of: providers, environments and token roles. Each parses at
//! the edge, so an invalid one cannot exist past it. Plain values with no dependencies, so
//! every layer may name them; `domain` re-exports them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Hubspot,
    Stripe,
    Quickbooks,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Hubspot, Provider::Stripe, Provider::Quickbooks];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Hubspot => "hubspot",
            Provider::Stripe => "stripe",
            Provider::Quickbooks => "quickbooks",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Sandbox,
    Production,
}

impl Environment {
    pub const ALL: [Environment; 2] = [Environment::Sandbox, Environment::Production];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }
}

/// What an API token may do. `admin` does everything; `viewer` reads masked data, status and
/// audit; `service` is for sync workers (reveal, token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Viewer,
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Service => "service",
        }
    }
}

/// `a, b or c`: the values a closed set accepts, for error messages.
pub fn one_of<T: fmt::Display>(all: &[T]) -> String {
    let names: Vec<String> = all.iter().map(ToString::to_string).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

macro_rules! text_enum {
    ($t:ty, $what:literal, [$($v:expr),+]) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                [$($v),+]
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let all: Vec<&str> = [$($v),+].iter().map(|v| v.as_str()).collect();
                        format!("unknown {} {:?}; expected one of {}", $what, s, all.join(", "))
                    })
            }
        }
    };
}

text_enum!(
    Provider,
    "provider",
    [Provider::Hubspot, Provider::Stripe, Provider::Quickbooks]
);
text_enum!(
    Environment,
    "environment",
    [Environment::Sandbox, Environment::Production]
);
text_enum!(Role, "role", [Role::Admin, Role::Viewer, Role::Service]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>(), Ok(p));
        }
        for e in Environment::ALL {
            assert_eq!(e.as_str().parse::<Environment>(), Ok(e));
        }
        assert!("xero".parse::<Provider>().unwrap_err().contains("hubspot"));
        assert_eq!(one_of(&Environment::ALL), "sandbox or production");
        assert_eq!(one_of(&Provider::ALL), "hubspot, stripe or quickbooks");
    }
}

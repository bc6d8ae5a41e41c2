//! OAuth settings: provider endpoints and redirect URIs, allowed `return_to` origins, state
//! lifetime and refresh timing. Read once at start by [`crate::config::Settings`].

use std::time::Duration;

use reqwest::Url;

use crate::config::{SettingsError, Source};
use crate::domain::Provider;

/// One provider's OAuth endpoints. The defaults are the real production endpoints.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    /// Revoke (Intuit, HubSpot) or deauthorize (Stripe).
    pub revoke: Url,
    /// Where the provider sends the browser back; unset means the flow cannot start.
    pub redirect_uri: Option<Url>,
}

#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub state_ttl: Duration,
    /// Origins (`scheme://host[:port]`) that `return_to` may point at. The first is where
    /// a callback goes when its flow state is lost (unknown, expired, Redis away).
    pub return_allowed_origins: Vec<Url>,
    pub quickbooks: Endpoints,
    pub hubspot: Endpoints,
    pub stripe: Endpoints,
    /// The token endpoint refreshes first when the access token expires within this.
    pub refresh_margin: Duration,
    /// The background refresher renews tokens that expire within this.
    pub refresh_window: Duration,
    /// How often the background refresher looks; it does not run when disabled.
    pub refresh_interval: Duration,
    pub refresher_enabled: bool,
    /// Timeout of every provider HTTP call.
    pub provider_timeout: Duration,
}

impl OAuthSettings {
    pub fn endpoints(&self, provider: Provider) -> &Endpoints {
        match provider {
            Provider::Quickbooks => &self.quickbooks,
            Provider::Hubspot => &self.hubspot,
            Provider::Stripe => &self.stripe,
        }
    }

    /// How long a refresh lock lives without renewal: longer than any provider call.
    pub fn lock_ttl(&self) -> Duration {
        self.provider_timeout + Duration::from_secs(10)
    }

    pub fn from_source(src: &Source<'_>) -> Result<Self, SettingsError> {
        let seconds = |name: &str, default: u64, max: u64| -> Result<Duration, SettingsError> {
            let accepts = format!("a whole number of seconds from 1 to {max}");
            let v: u64 = src.parse(name, default, &accepts)?;
            if v == 0 || v > max {
                return Err(SettingsError::new(
                    name,
                    format!("got {v}; accepts {accepts}"),
                ));
            }
            Ok(Duration::from_secs(v))
        };
        let mut return_allowed_origins = Vec::new();
        for origin in src.list("OAUTH_RETURN_ALLOWED_ORIGINS") {
            let url = Url::parse(&origin)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/")
                .filter(|u| u.query().is_none() && u.username().is_empty() && u.password().is_none())
                .ok_or_else(|| {
                    SettingsError::new(
                        "OAUTH_RETURN_ALLOWED_ORIGINS",
                        format!("got {origin:?}; accepts comma-separated origins like https://dashboard.example.com"),
                    )
                })?;
            return_allowed_origins.push(url);
        }
        Ok(Self {
            state_ttl: seconds("OAUTH_STATE_TTL", 600, 3600)?,
            return_allowed_origins,
            quickbooks: endpoints(
                src,
                "QUICKBOOKS",
                "https://appcenter.intuit.com/connect/oauth2",
                "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
                (
                    "REVOKE",
                    "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
                ),
            )?,
            hubspot: endpoints(
                src,
                "HUBSPOT",
                "https://app.hubspot.com/oauth/authorize",
                "https://api.hubapi.com/oauth/2026-03/token",
                (
                    "REVOKE",
                    "https://api.hubapi.com/oauth/2026-03/token/revoke",
                ),
            )?,
            stripe: endpoints(
                src,
                "STRIPE",
                "https://connect.stripe.com/oauth/authorize",
                "https://connect.stripe.com/oauth/token",
                (
                    "DEAUTHORIZE",
                    "https://connect.stripe.com/oauth/deauthorize",
                ),
            )?,
            refresh_margin: seconds("OAUTH_REFRESH_MARGIN", 300, 86_400)?,
            refresh_window: seconds("OAUTH_REFRESH_WINDOW", 900, 86_400)?,
            refresh_interval: seconds("OAUTH_REFRESH_INTERVAL", 60, 86_400)?,
            refresher_enabled: src.bool("OAUTH_REFRESHER_ENABLED", true)?,
            provider_timeout: seconds("OAUTH_PROVIDER_TIMEOUT", 15, 300)?,
        })
    }
}

fn endpoints(
    src: &Source<'_>,
    provider: &str,
    authorize: &str,
    token: &str,
    (revoke_name, revoke): (&str, &str),
) -> Result<Endpoints, SettingsError> {
    let url = |suffix: &str, default: &str| -> Result<Url, SettingsError> {
        let name = format!("{provider}_OAUTH_{suffix}");
        let value = src.string_or(&name, default);
        http_url(&value).ok_or_else(|| {
            SettingsError::new(
                &name,
                format!("got {value:?}; accepts an http:// or https:// URL"),
            )
        })
    };
    let redirect_name = format!("{provider}_OAUTH_REDIRECT_URI");
    let redirect_uri = match src.string(&redirect_name) {
        None => None,
        Some(value) => Some(http_url(&value).filter(|u| u.fragment().is_none()).ok_or_else(|| {
            SettingsError::new(
                &redirect_name,
                format!("got {value:?}; accepts the exact http(s) callback URL registered with the provider, e.g. https://config.example.com/api/config/{}/callback", provider.to_ascii_lowercase()),
            )
        })?),
    };
    Ok(Endpoints {
        authorize: url("AUTHORIZE_URL", authorize)?,
        token: url("TOKEN_URL", token)?,
        revoke: url(&format!("{revoke_name}_URL"), revoke)?,
        redirect_uri,
    })
}

fn http_url(value: &str) -> Option<Url> {
    Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<OAuthSettings, SettingsError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OAuthSettings::from_source(&Source::new(|name| vars.get(name).cloned()))
    }

    #[test]
    fn defaults_are_the_real_endpoints() {
        let s = read(&[]).expect("defaults");
        assert_eq!(s.state_ttl, Duration::from_secs(600));
        assert_eq!(
            s.hubspot.token.as_str(),
            "https://api.hubapi.com/oauth/2026-03/token"
        );
        assert_eq!(
            s.quickbooks.token.as_str(),
            "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
        );
        assert_eq!(
            s.stripe.revoke.as_str(),
            "https://connect.stripe.com/oauth/deauthorize"
        );
        assert!(s.stripe.redirect_uri.is_none());
        assert!(s.return_allowed_origins.is_empty());
        assert!(s.refresher_enabled);
        assert!(s.lock_ttl() > s.provider_timeout);
    }

    #[test]
    fn overrides_apply() {
        let s = read(&[
            ("OAUTH_STATE_TTL", "5"),
            (
                "HUBSPOT_OAUTH_TOKEN_URL",
                "http://127.0.0.1:9/hubspot/token",
            ),
            (
                "STRIPE_OAUTH_REDIRECT_URI",
                "https://cfg.example.com/api/config/stripe/callback",
            ),
            (
                "OAUTH_RETURN_ALLOWED_ORIGINS",
                "https://dash.example.com, http://localhost:3000",
            ),
        ])
        .expect("valid");
        assert_eq!(s.state_ttl, Duration::from_secs(5));
        assert_eq!(s.hubspot.token.as_str(), "http://127.0.0.1:9/hubspot/token");
        assert!(s.stripe.redirect_uri.is_some());
        assert_eq!(s.return_allowed_origins.len(), 2);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("OAUTH_STATE_TTL", "0"),
            ("OAUTH_STATE_TTL", "ten"),
            (
                "OAUTH_RETURN_ALLOWED_ORIGINS",
                "https://dash.example.com/path",
            ),
            ("OAUTH_RETURN_ALLOWED_ORIGINS", "dash.example.com"),
            ("QUICKBOOKS_OAUTH_TOKEN_URL", "ftp://x"),
            ("HUBSPOT_OAUTH_REDIRECT_URI", "not a url"),
            ("STRIPE_OAUTH_DEAUTHORIZE_URL", "nope"),
            ("OAUTH_REFRESH_MARGIN", "-1"),
            ("OAUTH_REFRESH_WINDOW", "0"),
            ("OAUTH_PROVIDER_TIMEOUT", "1000"),
            ("OAUTH_REFRESHER_ENABLED", "maybe"),
        ] {
            let err = read(&[(name, value)]).expect_err(name);
            assert_eq!(err.variable, name, "{err}");
        }
    }
}

//! OAuth settings: provider endpoints and redirect URIs, allowed `return_to` origins, state
//! lifetime and refresh timing. Read once at start as part of [`super::Settings`].

use std::time::Duration;

use reqwest::Url;

use std::collections::BTreeMap;

use super::env::{SettingsError, Source};
use crate::domain::Provider;
use crate::providers;

/// One provider's OAuth endpoints. The defaults are the real production endpoints.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    /// Where a connection is revoked (or deauthorized).
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
    /// Each provider's endpoints, from the defaults its spec declares.
    pub endpoints: BTreeMap<Provider, Endpoints>,
    /// The token endpoint refreshes first when the access token expires within this.
    pub refresh_margin: Duration,
    /// The background refresher renews tokens that expire within this.
    pub refresh_window: Duration,
    /// How often the background refresher looks; it does not run when disabled.
    pub refresh_interval: Duration,
    pub refresher_enabled: bool,
    /// `OAUTH_EXPIRY_WARNING_DAYS`: `oauth.expiring` is announced once when a refresh token
    /// expires within this many days.
    pub expiry_warning_days: u32,
    /// Timeout of every provider HTTP call.
    pub provider_timeout: Duration,
}

impl OAuthSettings {
    /// The endpoints of `provider`.
    pub fn endpoints(&self, provider: Provider) -> &Endpoints {
        // `from_source` reads every provider's endpoints or fails the start.
        self.endpoints
            .get(&provider)
            .expect("endpoints are read for every provider at start")
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
            endpoints: Provider::ALL
                .into_iter()
                .map(|p| Ok((p, endpoints(src, p)?)))
                .collect::<Result<_, SettingsError>>()?,
            refresh_margin: seconds("OAUTH_REFRESH_MARGIN", 300, 86_400)?,
            refresh_window: seconds("OAUTH_REFRESH_WINDOW", 900, 86_400)?,
            refresh_interval: seconds("OAUTH_REFRESH_INTERVAL", 60, 86_400)?,
            refresher_enabled: src.bool("OAUTH_REFRESHER_ENABLED", true)?,
            expiry_warning_days: src.bounded("OAUTH_EXPIRY_WARNING_DAYS", 14, 1, 365, "days")?
                as u32,
            provider_timeout: seconds("OAUTH_PROVIDER_TIMEOUT", 15, 300)?,
        })
    }
}

/// `<PROVIDER>_OAUTH_AUTHORIZE_URL`, `…_TOKEN_URL`, `…_<revoke suffix>_URL` (defaults from
/// the provider's spec) and `…_REDIRECT_URI` (no default).
fn endpoints(src: &Source<'_>, provider: Provider) -> Result<Endpoints, SettingsError> {
    let spec = providers::spec(provider).oauth();
    let upper = provider.as_str().to_ascii_uppercase();
    let url = |suffix: &str, default: &str| -> Result<Url, SettingsError> {
        let name = format!("{upper}_OAUTH_{suffix}");
        let value = src.string_or(&name, default);
        http_url(&value).ok_or_else(|| {
            SettingsError::new(
                &name,
                format!("got {value:?}; accepts an http:// or https:// URL"),
            )
        })
    };
    let redirect_name = format!("{upper}_OAUTH_REDIRECT_URI");
    let redirect_uri = match src.string(&redirect_name) {
        None => None,
        Some(value) => Some(http_url(&value).filter(|u| u.fragment().is_none()).ok_or_else(|| {
            SettingsError::new(
                &redirect_name,
                format!("got {value:?}; accepts the exact http(s) callback URL registered with the provider, e.g. https://config.example.com/api/config/{provider}/callback"),
            )
        })?),
    };
    let (revoke_suffix, revoke_default) = spec.revoke_url;
    Ok(Endpoints {
        authorize: url("AUTHORIZE_URL", spec.authorize_url)?,
        token: url("TOKEN_URL", spec.token_url)?,
        revoke: url(&format!("{revoke_suffix}_URL"), revoke_default)?,
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
            s.endpoints(Provider::Hubspot).token.as_str(),
            "https://api.hubapi.com/oauth/2026-03/token"
        );
        assert_eq!(
            s.endpoints(Provider::Quickbooks).token.as_str(),
            "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
        );
        assert_eq!(
            s.endpoints(Provider::Stripe).revoke.as_str(),
            "https://connect.stripe.com/oauth/deauthorize"
        );
        assert!(s.endpoints(Provider::Stripe).redirect_uri.is_none());
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
        assert_eq!(
            s.endpoints(Provider::Hubspot).token.as_str(),
            "http://127.0.0.1:9/hubspot/token"
        );
        assert!(s.endpoints(Provider::Stripe).redirect_uri.is_some());
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

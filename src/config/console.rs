//! The settings console at `/settings` (docs/console.md): whether it is served, how long its
//! sessions live, the public URL it is reached under, and how often a client may try to sign in.

use std::time::Duration;

use reqwest::Url;

use super::env::{SettingsError, Source};

#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// `SETTINGS_UI_ENABLED`: serve the console under `/settings/`.
    pub enabled: bool,
    /// `SETTINGS_SESSION_IDLE`: a session unused this long ends.
    pub session_idle: Duration,
    /// `SETTINGS_SESSION_MAX`: a session ends this long after sign-in, however used.
    pub session_max: Duration,
    /// `SETTINGS_PUBLIC_URL`: the origin browsers reach the console under. When it is https the
    /// session cookie is `Secure` with the `__Host-` prefix; its origin is also accepted as an
    /// OAuth `return_to` without being listed in `OAUTH_RETURN_ALLOWED_ORIGINS`.
    pub public_url: Option<Url>,
    /// `SETTINGS_SIGNIN_ATTEMPTS`: sign-in attempts (good or bad) one client may make…
    pub signin_attempts: u32,
    /// …within `SETTINGS_SIGNIN_WINDOW`.
    pub signin_window: Duration,
}

impl ConsoleSettings {
    pub(super) fn from_source(src: &Source<'_>) -> Result<Self, SettingsError> {
        let idle = src.bounded("SETTINGS_SESSION_IDLE", 1800, 60, 86_400, "seconds")?;
        let max = src.bounded("SETTINGS_SESSION_MAX", 43_200, 60, 604_800, "seconds")?;
        if max < idle {
            return Err(SettingsError::new(
                "SETTINGS_SESSION_MAX",
                format!("got {max}; accepts seconds at least SETTINGS_SESSION_IDLE ({idle})"),
            ));
        }
        let public_url = match src.string("SETTINGS_PUBLIC_URL") {
            None => None,
            Some(raw) => Some(
                Url::parse(&raw)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .filter(|u| u.username().is_empty() && u.password().is_none())
                    .filter(|u| u.path() == "/" && u.query().is_none())
                    .ok_or_else(|| {
                        SettingsError::new(
                            "SETTINGS_PUBLIC_URL",
                            format!(
                                "got {raw:?}; accepts an origin like https://config.example.com"
                            ),
                        )
                    })?,
            ),
        };
        Ok(Self {
            enabled: src.bool("SETTINGS_UI_ENABLED", true)?,
            session_idle: Duration::from_secs(idle),
            session_max: Duration::from_secs(max),
            public_url,
            signin_attempts: src.bounded("SETTINGS_SIGNIN_ATTEMPTS", 10, 1, 10_000, "attempts")?
                as u32,
            signin_window: Duration::from_secs(src.bounded(
                "SETTINGS_SIGNIN_WINDOW",
                300,
                1,
                86_400,
                "seconds",
            )?),
        })
    }

    /// Whether the console is served over https, as configured.
    pub fn https(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https")
    }
}

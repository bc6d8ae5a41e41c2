//! Small view models shared by pages: times, OAuth connections, labels of closed sets.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::oauth::vault::ConnectionView;

/// A refresh token expiring sooner than this gets a warning.
const REFRESH_WARNING_DAYS: i64 = 14;

/// A time as people read it, in UTC.
pub fn when(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The serialized name of a closed-set value (`half_open`, `redis`).
pub fn label<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".into(),
    }
}

/// An OAuth connection as the overview and provider pages show it.
pub struct ConnectionCard {
    pub status: String,
    pub account_id: String,
    pub access_expires: String,
    pub refresh_expires: String,
    pub scopes: String,
    /// Set when the refresh token expires soon (or has).
    pub warning: Option<String>,
}

pub fn connection_card(c: &ConnectionView) -> ConnectionCard {
    let now = Utc::now();
    let warning = match (c.status.as_str(), c.refresh_expires_at) {
        ("needs_reauth", _) => {
            Some("The provider no longer accepts this connection: reconnect.".to_owned())
        }
        (_, Some(at)) if at <= now => Some("The refresh token has expired: reconnect.".to_owned()),
        (_, Some(at)) if at - now < chrono::Duration::days(REFRESH_WARNING_DAYS) => Some(format!(
            "The refresh token expires in {} days ({}): reconnect before then.",
            (at - now).num_days(),
            when(&at)
        )),
        _ => None,
    };
    ConnectionCard {
        status: c.status.clone(),
        account_id: c
            .external_account_id
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        access_expires: c
            .expires_at
            .as_ref()
            .map_or_else(|| "does not expire".into(), when),
        refresh_expires: c
            .refresh_expires_at
            .as_ref()
            .map_or_else(|| "not reported".into(), when),
        scopes: c.scopes.join(" "),
        warning,
    }
}

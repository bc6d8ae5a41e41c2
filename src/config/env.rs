//! The environment reader: `NAME` or the file named by `NAME_FILE` for secrets, typed parses
//! whose errors name the variable and say what it accepts. It knows no setting; `config`
//! declares them.

use axum::http::HeaderValue;
use secrecy::SecretString;

/// A setting that could not be accepted: names the variable and what it accepts.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct SettingsError {
    pub variable: String,
    pub message: String,
}

impl SettingsError {
    pub fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
        }
    }
}

/// Reads variables from a lookup function, so tests use the same parsing as production.
pub struct Source<'a> {
    lookup: Box<Lookup<'a>>,
}

type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl<'a> Source<'a> {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// A plain value, trimmed.
    pub fn string(&self, name: &str) -> Option<String> {
        self.raw(name).map(|v| v.trim().to_owned())
    }

    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.string(name).unwrap_or_else(|| default.to_owned())
    }

    /// A secret from `NAME` or from the file named by `NAME_FILE` (one of the two).
    pub fn secret(&self, name: &str) -> Result<Option<SecretString>, SettingsError> {
        let file_var = format!("{name}_FILE");
        match (self.raw(name), self.string(&file_var)) {
            (Some(_), Some(_)) => Err(SettingsError::new(
                name,
                format!("set either {name} or {file_var}, not both"),
            )),
            (Some(value), None) => Ok(Some(SecretString::from(value.trim().to_owned()))),
            (None, Some(path)) => {
                let content = std::fs::read_to_string(&path).map_err(|e| {
                    SettingsError::new(&file_var, format!("cannot read file {path}: {e}"))
                })?;
                let value = content.trim_end_matches(['\n', '\r']).to_owned();
                if value.trim().is_empty() {
                    return Err(SettingsError::new(
                        &file_var,
                        format!("file {path} is empty"),
                    ));
                }
                Ok(Some(SecretString::from(value)))
            }
            (None, None) => Ok(None),
        }
    }

    pub fn required_secret(&self, name: &str, what: &str) -> Result<SecretString, SettingsError> {
        self.secret(name)?.ok_or_else(|| {
            SettingsError::new(
                name,
                format!("is required ({what}); set {name} or {name}_FILE"),
            )
        })
    }

    pub fn parse<T: std::str::FromStr>(
        &self,
        name: &str,
        default: T,
        accepts: &str,
    ) -> Result<T, SettingsError> {
        match self.string(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| SettingsError::new(name, format!("got {v:?}; accepts {accepts}"))),
        }
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool, SettingsError> {
        match self.string(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(SettingsError::new(
                    name,
                    format!("got {v:?}; accepts true or false"),
                )),
            },
        }
    }

    /// An absolute http(s) base URL; a missing trailing slash is added so relative paths
    /// join under it.
    pub fn url(&self, name: &str, default: &str) -> Result<reqwest::Url, SettingsError> {
        let raw = self.string_or(name, default);
        let with_slash = if raw.ends_with('/') {
            raw.clone()
        } else {
            format!("{raw}/")
        };
        reqwest::Url::parse(&with_slash)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                SettingsError::new(
                    name,
                    format!("got {raw:?}; accepts an absolute http(s) URL"),
                )
            })
    }

    /// A comma-separated list; empty items are skipped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.string(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A whole number of at least 1.
    pub fn positive(&self, name: &str, default: u64, accepts: &str) -> Result<u64, SettingsError> {
        let v: u64 = self.parse(name, default, accepts)?;
        if v == 0 {
            return Err(SettingsError::new(
                name,
                format!("got 0; accepts {accepts}"),
            ));
        }
        Ok(v)
    }

    /// A whole number from `min` to `max`.
    pub fn bounded(
        &self,
        name: &str,
        default: u64,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Result<u64, SettingsError> {
        let accepts = format!("a whole number of {unit} from {min} to {max}");
        let v: u64 = self.parse(name, default, &accepts)?;
        if v < min || v > max {
            return Err(SettingsError::new(
                name,
                format!("got {v}; accepts {accepts}"),
            ));
        }
        Ok(v)
    }

    /// A comma-separated list of origins (`scheme://host[:port]`), as header values.
    pub fn origins(&self, name: &str) -> Result<Vec<HeaderValue>, SettingsError> {
        let mut out = Vec::new();
        for origin in self.list(name) {
            let valid = reqwest::Url::parse(&origin)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.path() == "/")
                .unwrap_or(false);
            let header = HeaderValue::from_str(&origin).ok().filter(|_| valid);
            out.push(header.ok_or_else(|| {
                SettingsError::new(
                    name,
                    format!("got {origin:?}; accepts comma-separated origins like https://app.example.com"),
                )
            })?);
        }
        Ok(out)
    }
}

//! Values that must never reach a log, an error message, a report or argv.

use std::fmt;

/// A secret string. `Debug` and `Display` print `***`; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub const fn new(value: String) -> Self {
        Self(value)
    }

    /// The clear value, for handing to a library or a child's environment. Never format it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A URL or DSN shown with any password masked, in `Display` and `Debug` alike.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    #[must_use]
    pub fn new(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    /// The raw value. For connecting, never for printing.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redacted({})", redact_url(&self.0))
    }
}

/// Masks the password of `scheme://user:password@host/...`, and the values of query parameters
/// whose names suggest a secret. Anything that does not parse as a URL is returned unchanged.
#[must_use]
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return raw.to_owned();
    };
    if url.cannot_be_a_base() {
        return raw.to_owned();
    }
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    let secret_names = ["password", "secret", "token", "key", "sig", "signature"];
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            if secret_names.iter().any(|s| lower.contains(s)) {
                (k.into_owned(), "***".to_owned())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    if !pairs.is_empty() {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn redacts_url_password_and_secret_query() {
        let r = Redacted::new("postgres://app:s3cr3t@db:5432/shop?sslmode=require&password=x");
        let shown = r.to_string();
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("app:***@db"), "{shown}");
        assert!(shown.contains("password=***"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }

    #[test]
    fn leaves_plain_paths_alone() {
        assert_eq!(redact_url("/var/backups/x"), "/var/backups/x");
    }
}

//! [`Conn`]: where a database lives (a `postgres://` URL without a password) and how the
//! client programs are started against it.

use std::{path::Path, process::Command};

use lifeboat_core::Secret;

/// Where a database lives: a `postgres://` URL without a password, and the password to hand to
/// the tools (otherwise libpq's own `PGPASSWORD`/`~/.pgpass` apply).
#[derive(Debug, Clone)]
pub struct Conn {
    pub url: url::Url,
    pub password: Option<Secret>,
}

impl Conn {
    /// # Errors
    /// A URL that does not parse or names no database.
    pub fn parse(raw: &str, password: Option<Secret>) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("not a postgres:// URL: {e}"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(format!("not a postgres:// URL (scheme {:?})", url.scheme()));
        }
        if url.password().is_some() {
            // It would reach the tools' argv, visible to every user in `ps`.
            return Err(
                "the URL holds a password; give it through the asset's password-env, PGPASSWORD or ~/.pgpass instead"
                    .into(),
            );
        }
        let conn = Self { url, password };
        if conn.database().is_empty() {
            return Err("the URL names no database (postgres://user@host:port/DATABASE)".into());
        }
        Ok(conn)
    }

    /// The database named at the end of the URL.
    #[must_use]
    pub fn database(&self) -> String {
        let path = self.url.path().trim_start_matches('/');
        url::form_urlencoded::parse(format!("d={path}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    /// The same server and user, another database.
    #[must_use]
    pub fn with_database(&self, db: &str) -> Self {
        let mut url = self.url.clone();
        let encoded: String = url::form_urlencoded::byte_serialize(db.as_bytes()).collect();
        url.set_path(&format!("/{}", encoded.replace('+', "%20")));
        Self {
            url,
            password: self.password.clone(),
        }
    }

    /// `PostgreSQL host:port/db`, for messages.
    #[must_use]
    pub fn label(&self) -> String {
        let host = self.url.host_str().filter(|h| !h.is_empty()).map_or_else(
            || {
                self.url
                    .query_pairs()
                    .find(|(k, _)| k == "host")
                    .map_or_else(|| "localhost".to_owned(), |(_, v)| v.into_owned())
            },
            str::to_owned,
        );
        format!(
            "PostgreSQL {host}:{}/{}",
            self.url.port().unwrap_or(5432),
            self.database()
        )
    }

    /// A command for one of the client programs, connecting to this database.
    #[must_use]
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PGAPPNAME", "lifeboat");
        if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
            cmd.env("PGCONNECT_TIMEOUT", "15");
        }
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p.expose());
        }
        cmd
    }

    /// The URL as a `--dbname` argument: it never holds a password.
    #[must_use]
    pub fn dbname_arg(&self) -> String {
        self.url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn urls_give_database_label_and_other_database() {
        let c = Conn::parse(
            "postgres://app@db.internal:5433/shop%20eu?sslmode=require",
            None,
        )
        .unwrap();
        assert_eq!(c.database(), "shop eu");
        assert_eq!(c.label(), "PostgreSQL db.internal:5433/shop eu");
        let other = c.with_database("shop eu_lifeboat_1");
        assert_eq!(other.database(), "shop eu_lifeboat_1");
        assert!(other.dbname_arg().ends_with("?sslmode=require"));
        assert!(Conn::parse("postgres://app@host/", None).is_err());
        assert!(Conn::parse("mysql://app@host/db", None).is_err());
        let err = Conn::parse("postgres://app:hunter2@host/db", None).unwrap_err();
        assert!(
            err.contains("password-env") && !err.contains("hunter2"),
            "{err}"
        );
    }
}

//! The PostgreSQL client programs: which installed version to run against a server, and a
//! short reason with a hint when one of them fails.

use std::{fs, path::PathBuf};

/// Directory holding one installed PostgreSQL version's client programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBin {
    pub major: u32,
    pub dir: PathBuf,
}

impl ClientBin {
    #[must_use]
    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Installed client versions (`/usr/lib/postgresql/<major>/bin/pg_dump`), newest first.
#[must_use]
pub fn client_versions() -> Vec<ClientBin> {
    let mut found: Vec<ClientBin> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let dir = e.path().join("bin");
            dir.join("pg_dump")
                .exists()
                .then_some(ClientBin { major, dir })
        })
        .collect();
    found.sort_by_key(|v| std::cmp::Reverse(v.major));
    found
}

/// The client to use with a server of major version `server`: the same major when installed,
/// else the oldest newer one (`pg_dump` reads older servers, never newer ones).
///
/// # Errors
/// No client installed, or only clients older than the server; the message says what to
/// install.
pub fn pick_client(server: u32, installed: &[ClientBin]) -> Result<ClientBin, String> {
    if installed.is_empty() {
        return Err(format!(
            "no PostgreSQL client programs are installed (hint: apt-get install postgresql-client-{server})"
        ));
    }
    installed
        .iter()
        .filter(|c| c.major >= server)
        .min_by_key(|c| c.major)
        .cloned()
        .ok_or_else(|| {
            let have: Vec<String> = installed.iter().map(|c| c.major.to_string()).collect();
            format!(
                "the server runs PostgreSQL {server}, newer than every installed pg_dump ({}); a dump needs a client at least as new as the server (hint: apt-get install postgresql-client-{server})",
                have.join(", ")
            )
        })
}

/// Turns a client program's failure into a short reason and a hint the user can act on.
#[must_use]
pub fn explain(reason: &str, asset: &str) -> (String, Option<String>) {
    let reason = reason
        .split_once("psql: error: ")
        .or_else(|| reason.split_once("pg_dump: error: "))
        .or_else(|| reason.split_once("pg_dumpall: error: "))
        .or_else(|| reason.split_once("pg_restore: error: "))
        .map_or(reason, |(_, r)| r)
        .trim()
        .to_owned();
    let hint = if reason.contains("password authentication failed")
        || reason.contains("no password supplied")
    {
        Some(format!(
            "check the password: password-env in [assets.{asset}], PGPASSWORD or ~/.pgpass"
        ))
    } else if reason.contains("Connection refused")
        || reason.contains("could not translate host name")
        || reason.contains("timeout expired")
        || reason.contains("No such file or directory")
    {
        Some(format!(
            "check the host and port in assets.{asset}.url and that the server accepts connections from this host"
        ))
    } else if reason.contains("does not exist") && reason.contains("database") {
        Some(format!(
            "check the database name at the end of assets.{asset}.url"
        ))
    } else if reason.contains("role") && reason.contains("does not exist") {
        Some(format!(
            "create the dump's roles first: with `globals = true` they are in the snapshot (`lifeboat dump {asset} globals.sql | psql -d postgres://…/postgres`)"
        ))
    } else if reason.contains("permission denied") {
        Some("the user needs to read every table and sequence (e.g. GRANT pg_read_all_data TO the user)".into())
    } else {
        None
    };
    (reason, hint)
}

/// A failure of the server behind `conn`, in short with a hint where one helps.
#[must_use]
pub fn server_error(asset: &str, conn: &super::Conn, reason: &str) -> crate::SourceError {
    let (reason, hint) = explain(reason, asset);
    crate::SourceError::Server {
        asset: asset.to_owned(),
        server: conn.label(),
        reason,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bins(majors: &[u32]) -> Vec<ClientBin> {
        majors
            .iter()
            .map(|m| ClientBin {
                major: *m,
                dir: PathBuf::from(format!("/usr/lib/postgresql/{m}/bin")),
            })
            .collect()
    }

    #[test]
    fn client_matches_the_server_or_is_the_oldest_newer_one() {
        assert_eq!(pick_client(15, &bins(&[16, 15, 13])).unwrap().major, 15);
        assert_eq!(pick_client(14, &bins(&[17, 16, 13])).unwrap().major, 16);
    }

    #[test]
    fn a_server_newer_than_every_client_is_refused_with_what_to_install() {
        let err = pick_client(17, &bins(&[15, 13])).unwrap_err();
        assert!(err.contains("PostgreSQL 17, newer than every installed pg_dump (15, 13)"));
        assert!(err.contains("apt-get install postgresql-client-17"));
        let err = pick_client(16, &[]).unwrap_err();
        assert!(err.contains("no PostgreSQL client programs are installed"));
    }

    #[test]
    fn failures_get_hints() {
        let (reason, hint) = explain(
            "psql: error: connection to server at \"127.0.0.1\", port 1 failed: Connection refused",
            "db",
        );
        assert!(reason.starts_with("connection to server"));
        assert!(hint.unwrap().contains("assets.db.url"));
        let (_, hint) = explain(
            "FATAL:  password authentication failed for user \"app\"",
            "db",
        );
        assert!(hint.unwrap().contains("password-env"));
    }
}

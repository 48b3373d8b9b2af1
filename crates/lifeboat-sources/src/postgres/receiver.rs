//! [`Receiver`]: `pg_receivewal` on a physical replication slot, for a `postgres-cluster`
//! asset whose write-ahead log is streamed rather than archived by `archive_command`.
//!
//! The server sends each WAL record as it is written; `pg_receivewal` writes it into the
//! spool directory, into `<segment>.partial` until the segment is full, then renames it to the
//! segment's name. The slot makes the server keep every segment the receiver has not
//! confirmed, so a receiver that was down picks up where it stopped. The engine stores what
//! lands in the spool (see `lifeboat_engine`'s `pg_cluster::stream`).

use std::path::Path;

use super::{
    client::{client_versions, pick_client, server_error},
    cluster::{ClusterSource, may_not_replicate},
    conn::Conn,
};
use crate::{SourceError, process};

/// `pg_receivewal` for one asset.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub asset: String,
    pub conn: Conn,
}

impl Receiver {
    /// The replication slot of `asset`: `lifeboat_` and the name in lower case, any character
    /// a slot name cannot hold written `_` (slot names are `[a-z0-9_]`, at most 63 long).
    #[must_use]
    pub fn slot_name(asset: &str) -> String {
        let mut name: String = format!("lifeboat_{asset}")
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        name.truncate(63);
        name
    }

    fn server_err(&self, reason: &str) -> SourceError {
        server_error(&self.asset, &self.conn, reason)
    }

    /// The `pg_receivewal` matching the server's major version.
    fn program(&self) -> Result<std::path::PathBuf, SourceError> {
        let facts = ClusterSource {
            asset: self.asset.clone(),
            conn: self.conn.clone(),
        }
        .facts()?;
        if !facts.may_replicate {
            return Err(may_not_replicate(&self.asset, &self.conn));
        }
        let client = pick_client(facts.major, &client_versions())
            .map_err(|e| self.server_err(&e.replace("pg_dump", "pg_receivewal")))?;
        Ok(client.program("pg_receivewal"))
    }

    /// Creates the asset's slot unless it exists, then starts `pg_receivewal` on it writing
    /// into `spool`. It runs until the connection drops or it is stopped (SIGINT lets it write
    /// what it received and exit 0).
    ///
    /// # Errors
    /// The server cannot be reached, the role may not replicate, no client of the server's
    /// version is installed, or the slot cannot be created.
    pub fn start(&self, spool: &Path) -> Result<process::RunningChild, SourceError> {
        let program = self.program()?;
        let slot = Self::slot_name(&self.asset);
        let mut create = self.conn.command(&program);
        create
            .args(["--create-slot", "--if-not-exists", "--slot", &slot])
            .arg("-d")
            .arg(self.conn.dbname_arg());
        process::spawn(create, false)
            .and_then(process::RunningChild::finish)
            .map_err(|e| self.server_err(&format!("create replication slot {slot}: {e}")))?;
        let mut cmd = self.conn.command(&program);
        cmd.arg("-D")
            .arg(spool)
            .args(["--slot", &slot, "--no-loop", "--status-interval", "1"])
            .arg("-d")
            .arg(self.conn.dbname_arg());
        process::spawn(cmd, false).map_err(|e| self.server_err(&format!("run pg_receivewal: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_what_postgres_accepts() {
        assert_eq!(Receiver::slot_name("pg"), "lifeboat_pg");
        assert_eq!(Receiver::slot_name("Main-DB.eu"), "lifeboat_main_db_eu");
        assert_eq!(Receiver::slot_name(&"x".repeat(80)).len(), 63);
    }
}

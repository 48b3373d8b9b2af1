//! [`ClusterSource`]: the backup side of a `postgres-cluster` asset, a physical base backup
//! of the whole cluster by `pg_basebackup` over the replication protocol, streamed as one tar
//! file into the repository (no copy on local disk). The write-ahead log the backup needs to
//! be consistent is fetched into the same tar (`-X fetch`), so every base backup restores on
//! its own; the continuous archive adds the log after it.

use std::{collections::BTreeMap, io::Read};

use lifeboat_core::{ArtifactData, Payload, PendingFacts, SourceFacts, StreamArtifact};

use super::{
    client::{client_versions, pick_client, server_error},
    conn::Conn,
    session::Session,
};
use crate::{Source, SourceError, process};

/// The artifact of a base backup: `pg_basebackup`'s tar of the data directory.
pub const BASE_ARTIFACT: &str = "base.tar";

/// Manifest keys (`consistency`) of a base backup.
pub mod facts {
    pub const SYSTEM_ID: &str = "system-identifier";
    pub const TIMELINE: &str = "timeline";
    pub const START_LSN: &str = "start-lsn";
    pub const STOP_LSN: &str = "stop-lsn";
    pub const SEGMENT_SIZE: &str = "wal-segment-size";
    pub const MAJOR: &str = "server-major";
}

#[derive(Debug, Clone)]
pub struct ClusterSource {
    pub asset: String,
    pub conn: Conn,
}

/// What the server says about itself before a base backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFacts {
    pub major: u32,
    pub version: String,
    pub system_id: String,
    pub timeline: u32,
    pub segment_size: u64,
    pub may_replicate: bool,
    pub archive_mode: String,
    pub archive_command: String,
}

impl ClusterSource {
    fn server_err(&self, reason: &str) -> SourceError {
        server_error(&self.asset, &self.conn, reason)
    }

    /// Reads the server's identity and settings through `psql`.
    ///
    /// # Errors
    /// The server cannot be reached or answers unexpectedly.
    pub fn facts(&self) -> Result<ClusterFacts, SourceError> {
        let psql = client_versions().into_iter().next().ok_or_else(|| {
            self.server_err(
                "no PostgreSQL client programs are installed (hint: apt-get install postgresql-client)",
            )
        })?;
        let mut session = Session::open(&psql.program("psql"), &self.conn)
            .map_err(|e| self.server_err(&format!("run psql: {e}")))?;
        let rows = session.query(
            "SELECT current_setting('server_version_num'), version(), \
             (SELECT system_identifier FROM pg_control_system()), \
             (SELECT timeline_id FROM pg_control_checkpoint()), \
             (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'), \
             (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), \
             current_setting('archive_mode'), current_setting('archive_command')",
        );
        session.close();
        let rows = rows.map_err(|e| self.server_err(&e))?;
        let Some(
            [
                num,
                version,
                system_id,
                timeline,
                segment,
                replicate,
                archive_mode,
                archive_command,
            ],
        ) = rows
            .first()
            .and_then(|r| <&[String; 8]>::try_from(r.as_slice()).ok())
        else {
            return Err(self.server_err(&format!(
                "unexpected answer reading the server's facts: {rows:?}"
            )));
        };
        Ok(ClusterFacts {
            major: num.parse::<u32>().unwrap_or(0) / 10_000,
            version: version.split(" on ").next().unwrap_or(version).to_owned(),
            system_id: system_id.clone(),
            timeline: timeline.parse().unwrap_or(1),
            segment_size: segment
                .parse()
                .unwrap_or(lifeboat_core::wal::DEFAULT_SEGMENT_SIZE),
            may_replicate: replicate == "t",
            archive_mode: archive_mode.clone(),
            archive_command: archive_command.clone(),
        })
    }
}

/// The refusal of a role without `REPLICATION`, with the two lines that allow it.
pub(crate) fn may_not_replicate(asset: &str, conn: &Conn) -> SourceError {
    let user = conn.url.username();
    SourceError::Server {
        asset: asset.to_owned(),
        server: conn.label(),
        reason: format!("role {user:?} may not replicate"),
        hint: Some(format!(
            "ALTER ROLE {user} REPLICATION; and allow it in pg_hba.conf: host replication {user} <lifeboat's address> scram-sha-256"
        )),
    }
}

/// The start and stop positions `pg_basebackup -v` printed.
fn positions(stderr: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in stderr.lines() {
        if let Some(rest) = line.split("write-ahead log start point: ").nth(1) {
            let mut words = rest.split_whitespace();
            if let Some(lsn) = words.next() {
                out.insert(facts::START_LSN.to_owned(), lsn.to_owned());
            }
            if let Some(tl) = rest.split("on timeline ").nth(1) {
                out.insert(facts::TIMELINE.to_owned(), tl.trim().to_owned());
            }
        }
        if let Some(rest) = line.split("write-ahead log end point: ").nth(1)
            && let Some(lsn) = rest.split_whitespace().next()
        {
            out.insert(facts::STOP_LSN.to_owned(), lsn.to_owned());
        }
    }
    out
}

impl Source for ClusterSource {
    fn preflight(&self) -> Result<(), SourceError> {
        if client_versions().is_empty() {
            return Err(SourceError::Unsupported {
                asset: self.asset.clone(),
                reason: "no PostgreSQL client programs are installed (hint: apt-get install postgresql-client)"
                    .to_owned(),
            });
        }
        Ok(())
    }

    fn backup(&self) -> Result<(Payload, SourceFacts), SourceError> {
        let server = self.facts()?;
        if !server.may_replicate {
            return Err(may_not_replicate(&self.asset, &self.conn));
        }
        let client = pick_client(server.major, &client_versions())
            .map_err(|e| self.server_err(&e.replace("pg_dump", "pg_basebackup")))?;
        let mut cmd = self.conn.command(&client.program("pg_basebackup"));
        cmd.args(["-D", "-", "-F", "t", "-X", "fetch", "-c", "fast", "-v"])
            .arg("-l")
            .arg(format!("lifeboat {}", self.asset))
            .arg("-d")
            .arg(self.conn.dbname_arg());
        // Started now, so its stderr can be read once the stream ends; dropped (and killed)
        // if the repository never opens the stream.
        let child = process::spawn(cmd, false)
            .map_err(|e| self.server_err(&format!("run pg_basebackup: {e}")))?;
        let log = child.stderr_log();
        let artifact = StreamArtifact {
            name: BASE_ARTIFACT.to_owned(),
            data: ArtifactData::Stream(Box::new(move || {
                Ok(Box::new(child.into_reader()) as Box<dyn Read + Send>)
            })),
        };
        let mut consistency = BTreeMap::new();
        consistency.insert(facts::SYSTEM_ID.to_owned(), server.system_id.clone());
        consistency.insert(facts::TIMELINE.to_owned(), server.timeline.to_string());
        consistency.insert(
            facts::SEGMENT_SIZE.to_owned(),
            server.segment_size.to_string(),
        );
        consistency.insert(facts::MAJOR.to_owned(), server.major.to_string());
        let facts = SourceFacts {
            server_version: Some(server.version),
            consistency,
            pending_consistency: Some(PendingFacts::new(move || {
                let found = positions(&log.text());
                if found.contains_key(facts::START_LSN) && found.contains_key(facts::STOP_LSN) {
                    Ok(found)
                } else {
                    Err("pg_basebackup did not print where the backup starts and stops".to_owned())
                }
            })),
            ..SourceFacts::default()
        };
        Ok((Payload::Streams(vec![artifact]), facts))
    }

    fn identity(&self) -> String {
        format!("{} (cluster)", self.conn.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_come_from_pg_basebackups_verbose_lines() {
        let stderr = "pg_basebackup: initiating base backup, waiting for checkpoint to complete\n\
            pg_basebackup: checkpoint completed\n\
            pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1\n\
            pg_basebackup: write-ahead log end point: 0/2000100\n\
            pg_basebackup: base backup completed\n";
        let p = positions(stderr);
        assert_eq!(p[facts::START_LSN], "0/2000028");
        assert_eq!(p[facts::STOP_LSN], "0/2000100");
        assert_eq!(p[facts::TIMELINE], "1");
        assert!(positions("pg_basebackup: error: connection failed").is_empty());
    }
}

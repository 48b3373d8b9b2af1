//! [`MysqlSource`]: the backup side, one database dumped with `mariadb-dump --single-transaction`
//! into a spool file, its rows per table counted as the dump is written.

use std::io::{self, Write};

use lifeboat_core::{ArtifactData, Payload, SourceFacts, StreamArtifact};

use super::server::{MysqlServer, sql_str};
use crate::{Source, SourceError};

/// A `mysql` asset: one database on one server.
#[derive(Debug, Clone)]
pub struct MysqlSource {
    pub server: MysqlServer,
    pub database: String,
}

impl MysqlSource {
    /// The artifact's name in the snapshot: `<db>.sql`.
    #[must_use]
    pub fn artifact_name(&self) -> String {
        format!("{}.sql", self.database.replace('/', "_"))
    }

    fn err(&self, reason: impl std::fmt::Display) -> SourceError {
        self.server.error(&self.database, reason)
    }
}

impl Source for MysqlSource {
    fn preflight(&self) -> Result<(), SourceError> {
        self.server.tools(&self.database).map(drop)
    }

    fn backup(&self) -> Result<(Payload, SourceFacts), SourceError> {
        let db = &self.database;
        // Reaches the server, logs in and opens the database: the usual failures are reported
        // here, before a dump starts.
        let version = self.server.version(db)?;
        let loose = self.server.query(
            db,
            &format!(
                "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE' AND ENGINE NOT IN ('InnoDB', 'RocksDB', 'TokuDB')",
                sql_str(db)
            ),
        )?;
        if !loose.is_empty() {
            let names: Vec<String> = loose
                .iter()
                .map(|r| format!("{} ({})", r[0], r.get(1).map_or("", String::as_str)))
                .collect();
            tracing::warn!(
                "asset {}: tables without transactions are dumped without a consistent view: {}",
                self.server.asset,
                names.join(", ")
            );
        }
        // The dump goes to a file where the repository spools streams (and removes the files
        // of a Lifeboat that was killed): its rows must be counted before the manifest is
        // written, so the file is complete when backup() returns.
        let dir = lifeboat_core::spool_dir();
        let (mut file, path) = tempfile::Builder::new()
            .prefix(&format!(
                "{}{}-",
                lifeboat_core::SPOOL_PREFIX,
                std::process::id()
            ))
            .tempfile_in(&dir)
            .map_err(|e| self.err(format!("create a spool file in {}: {e}", dir.display())))?
            .into_parts();
        let tables = {
            let mut out = io::BufWriter::with_capacity(1 << 20, &mut file);
            let tables = self.server.dump_into(db, false, &mut out)?;
            out.flush()
                .map_err(|e| self.err(format!("write {}: {e}", path.display())))?;
            tables
        };
        drop(file);
        let artifact = StreamArtifact {
            name: self.artifact_name(),
            data: ArtifactData::File(path),
        };
        Ok((
            Payload::Streams(vec![artifact]),
            SourceFacts {
                server_version: Some(version),
                tables,
                ..SourceFacts::default()
            },
        ))
    }

    fn identity(&self) -> String {
        format!("mysql {}/{}", self.server.address(), self.database)
    }
}

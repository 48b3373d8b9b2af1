//! [`PostgresSource`]: the backup side, a `pg_dump` of one database in a snapshot Lifeboat
//! exported itself, with the rows per table counted in that same snapshot.

use std::{collections::BTreeMap, fs, io::Read};

use lifeboat_core::{ArtifactData, Payload, SourceFacts, StreamArtifact};

use super::{
    client::{ClientBin, client_versions, explain, pick_client, server_error},
    conn::Conn,
    layout::GLOBALS_ARTIFACT,
    session::{Session, rand_u64},
    tables::count_rows,
};
use crate::{Source, SourceError, process};

#[derive(Debug, Clone)]
pub struct PostgresSource {
    pub asset: String,
    pub conn: Conn,
    /// Parallel dump jobs: above 1, directory format.
    pub jobs: u32,
    /// Also `pg_dumpall --globals-only`.
    pub globals: bool,
}

impl PostgresSource {
    fn server_err(&self, reason: &str) -> SourceError {
        server_error(&self.asset, &self.conn, reason)
    }

    pub(super) fn any_psql() -> Result<ClientBin, String> {
        client_versions().into_iter().next().ok_or_else(|| {
            "no PostgreSQL client programs are installed (hint: apt-get install postgresql-client)"
                .to_owned()
        })
    }

    /// The dump file's name inside the snapshot: `<database>.dump`.
    #[must_use]
    pub fn dump_artifact(&self) -> String {
        let db: String = self
            .conn
            .database()
            .chars()
            .map(|c| if c == '/' || c.is_control() { '_' } else { c })
            .collect();
        format!("{db}.dump")
    }

    /// A directory-format dump with `jobs` workers, moved file by file into the spool
    /// directory so the repository stores each file as it is.
    fn dump_directory(
        &self,
        client: &ClientBin,
        snapshot: &str,
    ) -> Result<Vec<StreamArtifact>, SourceError> {
        let spool = lifeboat_core::spool_dir();
        let dir = tempfile::Builder::new()
            .prefix(&format!(
                "{}{}-pgdump-",
                lifeboat_core::SPOOL_PREFIX,
                std::process::id()
            ))
            .tempdir_in(&spool)
            .map_err(|e| self.server_err(&format!("create {}: {e}", spool.display())))?;
        let out = dir.path().join("dump");
        let mut cmd = self.conn.command(&client.program("pg_dump"));
        cmd.args(["-Fd", "-Z0", "--no-sync"])
            .arg(format!("--jobs={}", self.jobs))
            .arg(format!("--snapshot={snapshot}"))
            .arg("-f")
            .arg(&out)
            .arg("-d")
            .arg(self.conn.dbname_arg());
        let child = process::spawn(cmd, false)
            .map_err(|e| self.server_err(&format!("run pg_dump: {e}")))?;
        child
            .finish()
            .map_err(|e| self.server_err(&format!("pg_dump {e}")))?;
        let mut artifacts = Vec::new();
        let entries = fs::read_dir(&out).map_err(|e| self.server_err(&e.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|e| self.server_err(&e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let kept = spool.join(format!(
                "{}{}-pgdir-{:x}-{name}",
                lifeboat_core::SPOOL_PREFIX,
                std::process::id(),
                rand_u64()
            ));
            fs::rename(entry.path(), &kept).map_err(|e| self.server_err(&e.to_string()))?;
            let kept = tempfile::TempPath::try_from_path(kept)
                .map_err(|e| self.server_err(&e.to_string()))?;
            artifacts.push(StreamArtifact {
                name,
                data: ArtifactData::File(kept),
            });
        }
        Ok(artifacts)
    }

    fn globals_stream(&self, client: &ClientBin) -> StreamArtifact {
        let mut cmd = self.conn.command(&client.program("pg_dumpall"));
        cmd.args(["--globals-only", "-l"])
            .arg(self.conn.database())
            .arg("-d")
            .arg(self.conn.dbname_arg());
        StreamArtifact {
            name: GLOBALS_ARTIFACT.to_owned(),
            data: ArtifactData::Stream(Box::new(move || {
                let child = process::spawn(cmd, false)?;
                Ok(Box::new(child.into_reader()) as Box<dyn Read + Send>)
            })),
        }
    }
}

impl Source for PostgresSource {
    fn preflight(&self) -> Result<(), SourceError> {
        Self::any_psql().map_err(|e| SourceError::Unsupported {
            asset: self.asset.clone(),
            reason: e,
        })?;
        Ok(())
    }

    fn backup(&self) -> Result<(Payload, SourceFacts), SourceError> {
        let psql = Self::any_psql().map_err(|e| self.server_err(&e))?;
        let mut session = Session::open(&psql.program("psql"), &self.conn)
            .map_err(|e| self.server_err(&format!("run psql: {e}")))?;
        // One read-only snapshot, exported: pg_dump and the row counts below both see it.
        session
            .query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;")
            .map_err(|e| self.server_err(&e))?;
        let info = session
            .query(
                "SELECT current_setting('server_version_num'), version(), \
                 pg_database_size(current_database()), pg_export_snapshot(), \
                 CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, \
                 pg_encoding_to_char(d.encoding), d.datcollate, d.datctype \
                 FROM pg_database d WHERE d.datname = current_database()",
            )
            .map_err(|e| self.server_err(&e))?;
        let Some([num, version, size, snapshot, lsn, encoding, collate, ctype]) = info
            .first()
            .and_then(|r| <&[String; 8]>::try_from(r.as_slice()).ok())
        else {
            return Err(self.server_err(&format!(
                "unexpected answer reading the server's facts: {info:?}"
            )));
        };
        let major = num.parse::<u32>().unwrap_or(0) / 10_000;
        let client = pick_client(major, &client_versions()).map_err(|e| self.server_err(&e))?;
        // Rows are counted in the exported snapshot while pg_dump reads it. The session stays
        // open until the counting is waited for, after the dump's end: pg_dump imports the
        // snapshot when it starts, and it is importable only while this transaction is open.
        let counting = std::thread::spawn(move || {
            let counted = count_rows(&mut session, &[]);
            (session, counted)
        });
        let counted = |counting: std::thread::JoinHandle<(Session, _)>| {
            let (session, counted) = counting
                .join()
                .map_err(|_| "counting rows stopped unexpectedly".to_owned())?;
            session.close();
            counted
        };

        let mut consistency = BTreeMap::new();
        consistency.insert("snapshot".to_owned(), snapshot.clone());
        consistency.insert("lsn".to_owned(), lsn.clone());
        consistency.insert("database".to_owned(), self.conn.database());
        consistency.insert("database_size".to_owned(), size.clone());
        consistency.insert("encoding".to_owned(), encoding.clone());
        consistency.insert("lc_collate".to_owned(), collate.clone());
        consistency.insert("lc_ctype".to_owned(), ctype.clone());
        consistency.insert("pg_dump_major".to_owned(), client.major.to_string());
        let facts_version = version.split(" on ").next().unwrap_or(version).to_owned();

        let mut artifacts = Vec::new();
        let mut facts = SourceFacts {
            server_version: Some(facts_version),
            ..SourceFacts::default()
        };
        if self.jobs > 1 {
            consistency.insert("format".to_owned(), "directory".to_owned());
            let dumped = self.dump_directory(&client, snapshot);
            // Waited for before an error is returned, so the counting session always ends.
            let tables = counted(counting);
            artifacts = dumped?;
            facts.tables = tables.map_err(|e| self.server_err(&format!("counting rows: {e}")))?;
        } else {
            consistency.insert("format".to_owned(), "custom".to_owned());
            let mut cmd = self.conn.command(&client.program("pg_dump"));
            cmd.args(["-Fc", "-Z0"])
                .arg(format!("--snapshot={snapshot}"))
                .arg("-d")
                .arg(self.conn.dbname_arg());
            artifacts.push(StreamArtifact {
                name: self.dump_artifact(),
                data: ArtifactData::Stream(Box::new(move || {
                    let child = process::spawn(cmd, false)?;
                    Ok(Box::new(child.into_reader()) as Box<dyn Read + Send>)
                })),
            });
            let (asset, server) = (self.asset.clone(), self.conn.label());
            facts.pending_tables = Some(lifeboat_core::PendingTables::new(move || {
                counted(counting).map_err(|e| match explain(&e, &asset) {
                    (reason, Some(hint)) => {
                        format!("{server}: counting rows: {reason} (hint: {hint})")
                    }
                    (reason, None) => format!("{server}: counting rows: {reason}"),
                })
            }));
        }
        if self.globals {
            artifacts.push(self.globals_stream(&client));
        }
        facts.consistency = consistency;
        Ok((Payload::Streams(artifacts), facts))
    }

    fn identity(&self) -> String {
        self.conn.label()
    }
}

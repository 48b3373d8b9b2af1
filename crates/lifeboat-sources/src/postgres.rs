//! `postgres` assets: `pg_dump` of one database in a snapshot Lifeboat exported itself, so the
//! rows it counts are exactly the rows the dump holds; restore through a new database that is
//! checked before it replaces anything.
//!
//! Lifeboat talks to the server through `psql` and the dump tools, never a client library of its
//! own: they read the same `PGPASSWORD`, `~/.pgpass`, `PGSSLMODE` and service files, so whatever
//! works for `pg_dump` works for Lifeboat. Passwords reach them through the environment only.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{ChildStdin, ChildStdout, Command},
};

use lifeboat_core::{ArtifactData, Payload, Secret, SourceFacts, StreamArtifact};

use crate::{
    Source, SourceError,
    process::{self, RunningChild},
};

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

/// A `psql` session kept open for several queries (one transaction across them when asked).
/// Each query's rows come back with fields split on U+001F.
pub struct Session {
    child: Option<RunningChild>,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    mark: String,
}

const FIELD_SEP: char = '\u{1f}';

impl Session {
    /// Starts `psql` against `conn`.
    ///
    /// # Errors
    /// When `psql` cannot be started; a refused connection shows at the first query.
    pub fn open(psql: &Path, conn: &Conn) -> io::Result<Self> {
        let mut cmd = conn.command(psql);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F"])
            .arg(FIELD_SEP.to_string())
            .arg("-d")
            .arg(conn.dbname_arg());
        let mut child = process::spawn(cmd, true)?;
        let stdin = child.child.stdin.take();
        let stdout = child
            .child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("psql has no stdout"))?;
        let mark = format!("-- lifeboat {:016x} --", rand_u64());
        Ok(Self {
            child: Some(child),
            stdin,
            stdout: BufReader::new(stdout),
            mark,
        })
    }

    /// Runs SQL (one or more statements) and returns the rows of its output.
    ///
    /// # Errors
    /// The server's error (psql stops at the first one), or psql's own.
    pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<String>>, String> {
        let sent = self.stdin.as_mut().map_or(Err(()), |stdin| {
            // psql runs a statement at its `;`: end the last one, then print the mark.
            let end = if sql.trim_end().ends_with(';') {
                ""
            } else {
                ";"
            };
            writeln!(stdin, "{sql}{end}\n\\echo '{}'", self.mark)
                .and_then(|()| stdin.flush())
                .map_err(|_| ())
        });
        if sent.is_err() {
            return Err(self.failure());
        }
        let mut rows = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            match self.stdout.read_line(&mut line) {
                Ok(0) | Err(_) => return Err(self.failure()),
                Ok(_) => {}
            }
            let text = line.trim_end_matches('\n');
            if text == self.mark {
                return Ok(rows);
            }
            rows.push(text.split(FIELD_SEP).map(str::to_owned).collect());
        }
    }

    /// One row of one value.
    ///
    /// # Errors
    /// As [`Session::query`], or an answer of another shape.
    pub fn value(&mut self, sql: &str) -> Result<String, String> {
        let rows = self.query(sql)?;
        rows.into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .ok_or_else(|| format!("no answer to {sql}"))
    }

    fn failure(&mut self) -> String {
        drop(self.stdin.take());
        match self.child.take().map(RunningChild::finish) {
            Some(Err(e)) => {
                let msg = e.to_string();
                msg.split_once(": ")
                    .filter(|(head, _)| head.starts_with("exited with status"))
                    .map_or(msg.clone(), |(_, rest)| rest.to_owned())
            }
            _ => "psql ended unexpectedly".to_owned(),
        }
    }

    /// Ends the session; an open transaction is rolled back.
    pub fn close(mut self) {
        drop(self.stdin.take());
        if let Some(child) = self.child.take() {
            let _ = child.finish();
        }
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// SQL listing the tables whose rows a dump holds: ordinary tables and partitions outside the
/// system schemas, not those an extension owns. Names come back hex-encoded (any character is
/// allowed in a name), as `schema.table` and as a quoted identifier.
pub const TABLES_SQL: &str = "SELECT encode(convert_to(n.nspname || '.' || c.relname, 'UTF8'), 'hex'), \
     encode(convert_to(quote_ident(n.nspname) || '.' || quote_ident(c.relname), 'UTF8'), 'hex') \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
     AND d.objid = c.oid AND d.deptype = 'e') ORDER BY 1";

fn unhex(s: &str) -> Result<String, String> {
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| format!("bad name from the server: {e}"))?;
    String::from_utf8(bytes).map_err(|e| format!("bad name from the server: {e}"))
}

/// Rows per table (`schema.table`) of the database `session` is connected to, in its current
/// transaction's snapshot. `only`, when not empty, limits the count to those tables.
///
/// # Errors
/// A failed query.
pub fn count_rows(session: &mut Session, only: &[String]) -> Result<BTreeMap<String, u64>, String> {
    let mut tables = Vec::new();
    for row in session.query(TABLES_SQL)? {
        let [name, quoted] = row.as_slice() else {
            return Err("unexpected answer listing tables".into());
        };
        let name = unhex(name)?;
        if only.is_empty() || only.iter().any(|t| table_matches(t, &name)) {
            tables.push((name, unhex(quoted)?));
        }
    }
    let mut counts = BTreeMap::new();
    // A few hundred tables per statement keeps each query short.
    for batch in tables.chunks(200) {
        let sql = batch
            .iter()
            .enumerate()
            .map(|(i, (_, quoted))| format!("SELECT {i}, count(*) FROM {quoted}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for row in session.query(&sql)? {
            let (Some(i), Some(n)) = (
                row.first().and_then(|v| v.parse::<usize>().ok()),
                row.get(1).and_then(|v| v.parse::<u64>().ok()),
            ) else {
                return Err("unexpected answer counting rows".into());
            };
            if let Some((name, _)) = batch.get(i) {
                counts.insert(name.clone(), n);
            }
        }
    }
    Ok(counts)
}

/// Whether `wanted` (`table` or `schema.table`, as given to `--table`) names `name`
/// (`schema.table`). A bare name matches in any schema.
#[must_use]
pub fn table_matches(wanted: &str, name: &str) -> bool {
    wanted == name || name.split_once('.').is_some_and(|(_, t)| t == wanted)
}

#[derive(Debug, Clone)]
pub struct PostgresSource {
    pub asset: String,
    pub conn: Conn,
    /// Parallel dump jobs: above 1, directory format.
    pub jobs: u32,
    /// Also `pg_dumpall --globals-only`.
    pub globals: bool,
}

/// Artifact name of the roles and tablespaces.
pub const GLOBALS_ARTIFACT: &str = "globals.sql";
/// Artifact name of a directory-format dump's table of contents; the other files of the
/// directory sit beside it.
pub const TOC_ARTIFACT: &str = "toc.dat";

impl PostgresSource {
    fn server_err(&self, reason: &str) -> SourceError {
        let (reason, hint) = explain(reason, &self.asset);
        SourceError::Server {
            asset: self.asset.clone(),
            server: self.conn.label(),
            reason,
            hint,
        }
    }

    fn any_psql() -> Result<ClientBin, String> {
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

/// How a snapshot's dump is laid out, from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpLayout {
    /// Directory format (`toc.dat` and its data files) rather than one custom-format file.
    pub directory: bool,
    /// The custom-format file, or `toc.dat`.
    pub dump: String,
    /// Major version of the `pg_dump` that wrote it: `pg_restore` must be at least as new.
    pub pg_dump_major: u32,
}

impl DumpLayout {
    /// # Errors
    /// A manifest without a dump.
    pub fn of(manifest: &lifeboat_core::Manifest) -> Result<Self, String> {
        let facts = &manifest.consistency;
        let directory = facts.get("format").is_some_and(|f| f == "directory");
        let dump = if directory {
            TOC_ARTIFACT.to_owned()
        } else {
            manifest
                .artifacts
                .iter()
                .map(|a| a.name.clone())
                .find(|n| n != GLOBALS_ARTIFACT)
                .ok_or("the snapshot holds no dump")?
        };
        Ok(Self {
            directory,
            dump,
            pg_dump_major: facts
                .get("pg_dump_major")
                .and_then(|m| m.parse().ok())
                .unwrap_or(0),
        })
    }
}

/// `"name"`, for SQL.
#[must_use]
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'value'`, for SQL (standard-conforming strings).
#[must_use]
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// What to load into a database.
pub enum DumpInput<'a> {
    /// A custom-format dump fed to `pg_restore`'s stdin by the closure (one job, all tables).
    Stream(&'a mut dyn FnMut(&mut dyn Write) -> Result<u64, String>),
    /// A custom-format file or a directory-format dump on disk.
    Path(&'a Path),
}

/// A PostgreSQL server to restore into, reached through its maintenance database.
pub struct PostgresTarget {
    pub asset: String,
    /// Server and user; the database part is replaced per call.
    pub conn: Conn,
    pub client: ClientBin,
    pub server_major: u32,
    /// Give objects their dumped owners and privileges; off in a sandbox without the roles.
    pub keep_owners: bool,
    session: Session,
}

impl PostgresTarget {
    /// Connects to the server of `conn` (database `postgres`) and picks the client programs
    /// for it, at least as new as `dump_major` (the `pg_dump` that wrote the dump).
    ///
    /// # Errors
    /// A refused connection or no suitable client, naming asset and server.
    pub fn connect(asset: &str, conn: &Conn, dump_major: u32) -> Result<Self, SourceError> {
        let fail = |reason: &str| {
            let (reason, hint) = explain(reason, asset);
            SourceError::Server {
                asset: asset.to_owned(),
                server: conn.label(),
                reason,
                hint,
            }
        };
        let psql = PostgresSource::any_psql().map_err(|e| fail(&e))?;
        let maint = conn.with_database("postgres");
        let mut session = Session::open(&psql.program("psql"), &maint)
            .map_err(|e| fail(&format!("run psql: {e}")))?;
        let num = session
            .value("SELECT current_setting('server_version_num')")
            .map_err(|e| fail(&e))?;
        let server_major = num.parse::<u32>().unwrap_or(0) / 10_000;
        let client =
            pick_client(server_major.max(dump_major), &client_versions()).map_err(|e| fail(&e))?;
        Ok(Self {
            asset: asset.to_owned(),
            conn: conn.clone(),
            client,
            server_major,
            keep_owners: true,
            session,
        })
    }

    fn fail(&self, db: &str, reason: &str) -> SourceError {
        let (reason, hint) = explain(reason, &self.asset);
        SourceError::Server {
            asset: self.asset.clone(),
            server: self.conn.with_database(db).label(),
            reason,
            hint,
        }
    }

    /// # Errors
    /// A failed query.
    pub fn exists(&mut self, db: &str) -> Result<bool, SourceError> {
        let n = self
            .session
            .value(&format!(
                "SELECT count(*) FROM pg_database WHERE datname = {}",
                quote_literal(db)
            ))
            .map_err(|e| self.fail(db, &e))?;
        Ok(n != "0")
    }

    /// The owner of a database, when it exists.
    ///
    /// # Errors
    /// A failed query.
    pub fn owner(&mut self, db: &str) -> Result<Option<String>, SourceError> {
        let rows = self
            .session
            .query(&format!(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {}",
                quote_literal(db)
            ))
            .map_err(|e| self.fail(db, &e))?;
        Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()))
    }

    /// Creates an empty database from `template0` with the dumped database's encoding and
    /// locale (as recorded in the manifest).
    ///
    /// # Errors
    /// A failed `CREATE DATABASE` (e.g. a locale missing on this server).
    pub fn create(
        &mut self,
        db: &str,
        facts: &BTreeMap<String, String>,
        owner: Option<&str>,
    ) -> Result<(), SourceError> {
        let mut sql = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(db));
        if let Some(e) = facts.get("encoding") {
            sql.push_str(&format!(" ENCODING {}", quote_literal(e)));
        }
        if let Some(c) = facts.get("lc_collate") {
            sql.push_str(&format!(" LC_COLLATE {}", quote_literal(c)));
        }
        if let Some(c) = facts.get("lc_ctype") {
            sql.push_str(&format!(" LC_CTYPE {}", quote_literal(c)));
        }
        if let Some(o) = owner {
            sql.push_str(&format!(" OWNER {}", quote_ident(o)));
        }
        self.session.query(&sql).map_err(|e| self.fail(db, &e))?;
        Ok(())
    }

    /// Drops a database Lifeboat created (after a failed restore), ending its sessions.
    ///
    /// # Errors
    /// A failed `DROP DATABASE`.
    pub fn drop_database(&mut self, db: &str) -> Result<(), SourceError> {
        self.session
            .query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(db)
            ))
            .map_err(|e| self.fail(db, &e))?;
        Ok(())
    }

    /// Loads a dump into `db` with `pg_restore`, stopping at the first error. `tables`, when
    /// not empty, loads the whole schema but the rows of those tables only (and every
    /// sequence's value); it needs a [`DumpInput::Path`].
    ///
    /// # Errors
    /// `pg_restore` failing (its stderr is in the message), or a table not in the dump.
    pub fn load(
        &self,
        db: &str,
        input: DumpInput<'_>,
        jobs: u32,
        tables: &[String],
    ) -> Result<u64, SourceError> {
        let target = self.conn.with_database(db);
        let pg_restore = self.client.program("pg_restore");
        let run = |extra: &[String], path: &Path| -> Result<(), SourceError> {
            let mut cmd = target.command(&pg_restore);
            if !self.keep_owners {
                cmd.args(["--no-owner", "--no-acl"]);
            }
            cmd.arg("--exit-on-error")
                .args(extra)
                .arg("-d")
                .arg(target.dbname_arg())
                .arg(path);
            let child = process::spawn(cmd, false)
                .map_err(|e| self.fail(db, &format!("run pg_restore: {e}")))?;
            child
                .finish()
                .map_err(|e| self.fail(db, &format!("pg_restore {e}")))
        };
        match input {
            DumpInput::Stream(feed) => {
                let mut cmd = target.command(&pg_restore);
                if !self.keep_owners {
                    cmd.args(["--no-owner", "--no-acl"]);
                }
                cmd.args(["--exit-on-error", "-d"]).arg(target.dbname_arg());
                let child = process::spawn(cmd, true)
                    .map_err(|e| self.fail(db, &format!("run pg_restore: {e}")))?;
                // Killed before its input ends, it leaves a partly loaded database, which the
                // caller drops like any database whose load failed.
                child.feed(io::sink(), feed).map_err(|e| match e {
                    process::Fed::Child(e) => self.fail(db, &format!("pg_restore {e}")),
                    process::Fed::Feed(e, _) => self.fail(db, &e),
                })
            }
            DumpInput::Path(path) => {
                let jobs_arg = (jobs > 1).then(|| format!("--jobs={jobs}"));
                if tables.is_empty() {
                    let extra: Vec<String> = jobs_arg.into_iter().collect();
                    run(&extra, path)?;
                    return Ok(0);
                }
                let list = self.table_list(db, path, tables)?;
                run(&["--section=pre-data".to_owned()], path)?;
                let mut extra = vec![format!("--use-list={}", list.display())];
                extra.extend(jobs_arg);
                let result = run(&extra, path);
                let _ = fs::remove_file(&list);
                result?;
                Ok(0)
            }
        }
    }

    /// A `pg_restore --use-list` file naming the rows of `tables` and every sequence value.
    fn table_list(&self, db: &str, path: &Path, tables: &[String]) -> Result<PathBuf, SourceError> {
        let mut cmd = Command::new(self.client.program("pg_restore"));
        cmd.arg("-l").arg(path);
        let out = cmd
            .output()
            .map_err(|e| self.fail(db, &format!("run pg_restore -l: {e}")))?;
        if !out.status.success() {
            return Err(self.fail(
                db,
                &format!(
                    "pg_restore -l: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        let toc = String::from_utf8_lossy(&out.stdout);
        let mut keep = Vec::new();
        let mut found = vec![false; tables.len()];
        for line in toc.lines() {
            if line.starts_with(';') {
                continue;
            }
            let Some((_, rest)) = line.split_once("; ") else {
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            // "<oid> <oid> TABLE DATA <schema> <name> <owner>"
            match words.get(2..5) {
                Some(["TABLE", "DATA", schema]) => {
                    let name = format!("{schema}.{}", words.get(5).unwrap_or(&""));
                    for (i, t) in tables.iter().enumerate() {
                        if table_matches(t, &name) {
                            found[i] = true;
                            keep.push(line);
                        }
                    }
                }
                Some(["SEQUENCE", "SET", _]) => keep.push(line),
                _ => {}
            }
        }
        if let Some(i) = found.iter().position(|f| !f) {
            return Err(SourceError::Unsupported {
                asset: self.asset.clone(),
                reason: format!(
                    "table {} is not in the snapshot's dump (see `lifeboat snapshots --json` for its tables)",
                    tables[i]
                ),
            });
        }
        let file = tempfile::Builder::new()
            .prefix(".lifeboat-pg-list-")
            .tempfile()
            .map_err(|e| self.fail(db, &e.to_string()))?;
        let (mut f, path) = file.keep().map_err(|e| self.fail(db, &e.to_string()))?;
        f.write_all(keep.join("\n").as_bytes())
            .and_then(|()| f.write_all(b"\n"))
            .map_err(|e| self.fail(db, &e.to_string()))?;
        Ok(path)
    }

    /// Rows per table of `db` (all tables, or `only`).
    ///
    /// # Errors
    /// A failed connection or query.
    pub fn counts(&self, db: &str, only: &[String]) -> Result<BTreeMap<String, u64>, SourceError> {
        let conn = self.conn.with_database(db);
        let mut s = Session::open(&self.client.program("psql"), &conn)
            .map_err(|e| self.fail(db, &format!("run psql: {e}")))?;
        let counts = count_rows(&mut s, only).map_err(|e| self.fail(db, &e));
        s.close();
        counts
    }

    /// Puts `restored` in the place of `live`: new connections to `live` are refused, its
    /// sessions ended, then both renames happen in one transaction (`live` becomes `kept`).
    /// The kept database takes connections again afterwards; its settings (`ALTER DATABASE ...
    /// SET`) are copied to the restored one. On failure nothing is renamed.
    ///
    /// # Errors
    /// A failed step, after `live` was given back its connections.
    pub fn swap(&mut self, live: &str, restored: &str, kept: &str) -> Result<(), SourceError> {
        let (l, r, k) = (quote_ident(live), quote_ident(restored), quote_ident(kept));
        let lit = quote_literal(live);
        let allowed = self
            .session
            .value(&format!(
                "SELECT datallowconn FROM pg_database WHERE datname = {lit}"
            ))
            .map_err(|e| self.fail(live, &e))?;
        self.session
            .query(&format!("ALTER DATABASE {l} WITH ALLOW_CONNECTIONS false"))
            .map_err(|e| self.fail(live, &e))?;
        let mut result = Ok(());
        for attempt in 0..50 {
            let left = self.session.value(&format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = {lit} AND pid <> pg_backend_pid()"
            ));
            match left {
                Ok(n) if n == "0" => break,
                Ok(_) if attempt < 49 => std::thread::sleep(std::time::Duration::from_millis(100)),
                Ok(n) => {
                    result = Err(format!("{n} sessions still use the database after 5 s"));
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() {
            result = self.session.query(&format!(
                "BEGIN; ALTER DATABASE {l} RENAME TO {k}; ALTER DATABASE {r} RENAME TO {l}; COMMIT;"
            ))
            .map(drop);
        }
        if let Err(e) = result {
            // psql stopped at the error: reconnect to give the live database its connections back.
            if let Ok(mut again) = Session::open(
                &self.client.program("psql"),
                &self.conn.with_database("postgres"),
            ) {
                let _ = again.query("ROLLBACK;");
                if allowed == "t" {
                    let _ = again.query(&format!("ALTER DATABASE {l} WITH ALLOW_CONNECTIONS true"));
                }
                self.session = again;
            }
            return Err(self.fail(live, &e));
        }
        if allowed == "t" {
            let _ = self
                .session
                .query(&format!("ALTER DATABASE {k} WITH ALLOW_CONNECTIONS true"));
        }
        let settings = self
            .session
            .query(&format!(
                "SELECT unnest(setconfig) FROM pg_db_role_setting s JOIN pg_database d \
                 ON d.oid = s.setdatabase WHERE d.datname = {} AND s.setrole = 0",
                quote_literal(kept)
            ))
            .unwrap_or_default();
        // Database privileges (who may CONNECT, CREATE, TEMPORARY) follow the name: the new
        // database would otherwise have the defaults, which let PUBLIC connect.
        let has_acl = self
            .session
            .value(&format!(
                "SELECT datacl IS NOT NULL FROM pg_database WHERE datname = {}",
                quote_literal(kept)
            ))
            .unwrap_or_default();
        if has_acl == "t" {
            let grants = self
                .session
                .query(&format!(
                    "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
                     a.privilege_type, a.is_grantable \
                     FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = {}",
                    quote_literal(kept)
                ))
                .unwrap_or_default();
            let mut sql = format!("REVOKE ALL ON DATABASE {l} FROM PUBLIC;");
            for g in &grants {
                if let [who, what, grantable] = g.as_slice() {
                    sql.push_str(&format!(
                        " GRANT {what} ON DATABASE {l} TO {who}{};",
                        if grantable == "t" {
                            " WITH GRANT OPTION"
                        } else {
                            ""
                        }
                    ));
                }
            }
            if let Err(e) = self.session.query(&sql) {
                tracing::warn!(
                    "database {live}: privileges not copied from {kept}: {e}; compare them with `\\l` in psql"
                );
            }
        }
        for row in settings {
            if let Some((key, value)) = row.first().and_then(|s| s.split_once('=')) {
                // Stored as `key=a, b` for list settings such as search_path.
                let values: Vec<String> = value.split(", ").map(quote_literal).collect();
                let _ = self.session.query(&format!(
                    "ALTER DATABASE {l} SET {} TO {}",
                    quote_ident(key),
                    values.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Renames `restored` to `live` when no database of that name exists (it was dropped).
    ///
    /// # Errors
    /// A failed rename.
    pub fn swap_absent(&mut self, live: &str, restored: &str) -> Result<(), SourceError> {
        self.session
            .query(&format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(restored),
                quote_ident(live)
            ))
            .map_err(|e| self.fail(live, &e))?;
        Ok(())
    }

    /// A closure that drops `db` through a new connection: for an interrupt, when the
    /// maintenance session may already be gone.
    pub fn dropper(&self, db: &str) -> impl FnOnce() + Send + 'static {
        let conn = self.conn.with_database("postgres");
        let psql = self.client.program("psql");
        // A CREATE DATABASE cut short on the client side still finishes on the server: wait
        // (up to 10 s) for any such statement on this name to end, so the drop comes after it.
        let wait = format!(
            "DO $$ BEGIN FOR i IN 1..100 LOOP EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND query ILIKE {}); PERFORM pg_sleep(0.1); END LOOP; END $$",
            quote_literal(&format!("CREATE DATABASE {}%", quote_ident(db)))
        );
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(db));
        move || {
            let _ = conn
                .command(&psql)
                .args([
                    "-X",
                    "-q",
                    "-c",
                    &wait,
                    "-c",
                    &sql,
                    "-d",
                    &conn.dbname_arg(),
                ])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }

    /// Ends the maintenance session.
    pub fn close(self) {
        self.session.close();
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

    #[test]
    fn tables_match_with_or_without_schema() {
        assert!(table_matches("orders", "public.orders"));
        assert!(table_matches("public.orders", "public.orders"));
        assert!(!table_matches("shop.orders", "public.orders"));
        assert!(!table_matches("order", "public.orders"));
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

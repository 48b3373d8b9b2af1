//! [`PostgresTarget`]: the restore side. A server to restore into, reached through its
//! maintenance database: create a database, load a dump into it with `pg_restore`, count its
//! rows, and swap it in place of the live one.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    process::Command,
};

use super::{
    client::{ClientBin, client_versions, explain, pick_client},
    conn::Conn,
    session::{Session, quote_ident, quote_literal},
    source::PostgresSource,
    tables::{count_rows, table_matches},
};
use crate::{SourceError, process};

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

//! [`MysqlServer`]: a server as the client tools reach it. Starting the tools with the password
//! in a private option file, running queries, dumping a database, and turning the client's
//! errors into a reason and a hint.

use std::{
    collections::BTreeMap,
    io::{self, Read, Write},
    path::Path,
};

use lifeboat_core::Secret;

use super::{dump, tools::Tools};
use crate::{
    SourceError,
    process::{RunningChild, spawn},
};

/// How long the client waits for a server that does not answer, in seconds.
pub(super) const CONNECT_TIMEOUT: u32 = 10;

/// Largest packet the tools send or accept: a row with a large blob is one packet.
pub(super) const MAX_PACKET: &str = "--max-allowed-packet=1073741824";

/// A server as the client tools reach it, and the asset it serves (named in every error).
#[derive(Clone)]
pub struct MysqlServer {
    pub asset: String,
    pub host: String,
    /// Given in the URL: the tools then connect over TCP, even to `localhost`.
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

impl std::fmt::Debug for MysqlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlServer")
            .field("asset", &self.asset)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A SQL string literal.
#[must_use]
pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A quoted SQL identifier.
#[must_use]
pub fn sql_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A 0600 option file holding the password, removed when dropped.
pub(super) struct DefaultsFile(tempfile::TempPath);

impl DefaultsFile {
    fn new(password: &Secret) -> io::Result<Self> {
        // tempfile creates files readable by their owner only.
        let mut file = tempfile::Builder::new()
            .prefix(".lifeboat-mysql-")
            .suffix(".cnf")
            .tempfile()?;
        let mut value = String::with_capacity(password.expose().len() + 2);
        for c in password.expose().chars() {
            match c {
                '\\' => value.push_str("\\\\"),
                '"' => value.push_str("\\\""),
                '\n' => value.push_str("\\n"),
                '\r' => value.push_str("\\r"),
                '\t' => value.push_str("\\t"),
                c => value.push(c),
            }
        }
        // [client] is read by mariadb, mariadb-dump, mysql and mysqldump alike.
        file.write_all(format!("[client]\npassword=\"{value}\"\n").as_bytes())?;
        file.flush()?;
        Ok(Self(file.into_temp_path()))
    }
}

impl MysqlServer {
    /// `host:port`, as the user wrote it.
    #[must_use]
    pub fn address(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// `mysql://user@host:port/db`, never with the password.
    #[must_use]
    pub fn url(&self, db: &str) -> String {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        format!("mysql://{user}{}/{db}", self.address())
    }

    /// What errors call this server: `MySQL 127.0.0.1:3306/orders` (the asset type's name:
    /// MariaDB and MySQL alike).
    #[must_use]
    pub fn label(&self, db: &str) -> String {
        format!("MySQL {}/{db}", self.address())
    }

    /// A server error about database `db`, with a hint chosen from the client's error code.
    #[must_use]
    pub fn error(&self, db: &str, reason: impl std::fmt::Display) -> SourceError {
        let reason = reason.to_string();
        let hint = hint_for(&reason, &self.asset);
        SourceError::Server {
            asset: self.asset.clone(),
            server: self.label(db),
            reason,
            hint,
        }
    }

    /// The tools, or an error with the package to install.
    ///
    /// # Errors
    /// When a program is missing.
    pub fn tools(&self, db: &str) -> Result<Tools, SourceError> {
        Tools::find().map_err(|reason| SourceError::Server {
            asset: self.asset.clone(),
            server: self.label(db),
            reason,
            hint: Some("install the client tools: apt-get install mariadb-client".into()),
        })
    }

    /// Starts `program` with the connection options, then `args`. The option file must
    /// outlive the child.
    pub(super) fn spawn(
        &self,
        db: &str,
        program: &Path,
        args: &[String],
        stdin: bool,
    ) -> Result<(RunningChild, Option<DefaultsFile>), SourceError> {
        let defaults = self
            .password
            .as_ref()
            .map(DefaultsFile::new)
            .transpose()
            .map_err(|e| self.error(db, format!("write the client's option file: {e}")))?;
        let cmd = self.command(program, defaults.as_ref(), args);
        let child = spawn(cmd, stdin)
            .map_err(|e| self.error(db, format!("run {}: {e}", program.display())))?;
        Ok((child, defaults))
    }

    /// `program` with the option file first (the tools read `--defaults-extra-file` only
    /// there), the address and user, then `args`. The password is in the file only.
    fn command(
        &self,
        program: &Path,
        defaults: Option<&DefaultsFile>,
        args: &[String],
    ) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        if let Some(d) = defaults {
            cmd.arg(format!("--defaults-extra-file={}", d.0.display()));
        }
        cmd.arg(format!("--host={}", self.host));
        if let Some(port) = self.port {
            cmd.arg(format!("--port={port}")).arg("--protocol=TCP");
        }
        if let Some(user) = &self.user {
            cmd.arg(format!("--user={user}"));
        }
        cmd.arg("--default-character-set=utf8mb4")
            .args(args)
            .current_dir(std::env::temp_dir());
        cmd
    }

    /// Runs the `mariadb` client on database `db` (none when empty) with `input` on its stdin;
    /// returns its output. `input` goes through stdin, so neither its size nor its content
    /// reaches argv.
    fn client(&self, db: &str, args: &[&str], input: &[u8]) -> Result<String, SourceError> {
        let tools = self.tools(db)?;
        let mut argv: Vec<String> = vec![format!("--connect-timeout={CONNECT_TIMEOUT}")];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        if !db.is_empty() {
            argv.push(format!("--database={db}"));
        }
        let (mut child, _defaults) = self.spawn(db, &tools.client, &argv, true)?;
        let stdout = child.child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut s) = stdout {
                let _ = s.read_to_end(&mut out);
            }
            out
        });
        let fed = child
            .child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(input));
        let output = reader.join().unwrap_or_default();
        let status = child.finish();
        status.map_err(|e| self.error(db, client_error(&e.to_string())))?;
        if let Some(Err(e)) = fed {
            return Err(self.error(db, format!("send SQL to the client: {e}")));
        }
        Ok(String::from_utf8_lossy(&output).into_owned())
    }

    /// Runs SQL and returns its rows as tab-separated fields (the client's batch format).
    ///
    /// # Errors
    /// The server's error, with a hint when there is one.
    pub fn query(&self, db: &str, sql: &str) -> Result<Vec<Vec<String>>, SourceError> {
        let out = self.client(db, &["--batch", "--skip-column-names"], sql.as_bytes())?;
        Ok(out
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect())
    }

    /// Runs SQL statements, stopping at the first error.
    ///
    /// # Errors
    /// The server's error, with a hint when there is one.
    pub fn execute(&self, db: &str, sql: &str) -> Result<(), SourceError> {
        self.client(db, &["--batch"], sql.as_bytes()).map(drop)
    }

    /// `MariaDB 10.11.6` or `MySQL 8.0.36`.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the login or the database.
    pub fn version(&self, db: &str) -> Result<String, SourceError> {
        let rows = self.query(db, "SELECT VERSION(), @@version_comment")?;
        let row = rows.first().cloned().unwrap_or_default();
        let version = row.first().cloned().unwrap_or_default();
        let comment = row.get(1).cloned().unwrap_or_default();
        let number = version.split('-').next().unwrap_or_default().to_owned();
        Ok(
            if version.contains("MariaDB") || comment.contains("MariaDB") {
                format!("MariaDB {number}")
            } else {
                format!("MySQL {number}")
            },
        )
    }

    /// Dumps database `db` into `out`, counting rows per table as the bytes pass.
    /// `no_data` dumps only the structure and the views, triggers, routines and events.
    pub(super) fn dump_into(
        &self,
        db: &str,
        no_data: bool,
        out: &mut dyn Write,
    ) -> Result<BTreeMap<String, u64>, SourceError> {
        let tools = self.tools(db)?;
        let mut args: Vec<String> = [
            // One consistent read view for every InnoDB table, and no table locks.
            "--single-transaction",
            "--quick",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            // Two dumps of the same data are the same bytes: deduplication does the rest.
            "--skip-dump-date",
            // Tablespaces need the PROCESS privilege, and a single database has none of its own.
            "--no-tablespaces",
            MAX_PACKET,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(major) = tools.mysql_dump_major {
            // MySQL's mysqldump: no GTID_PURGED line, which fails on a server with GTIDs in use;
            // and from 8.0 on, no column statistics, which MariaDB servers do not have.
            args.push("--set-gtid-purged=OFF".into());
            if major >= 8 {
                args.push("--column-statistics=0".into());
            }
        }
        if no_data {
            args.push("--no-data".into());
        }
        // No --databases: no CREATE DATABASE or USE, so the dump loads into any database.
        args.push(db.to_owned());
        let (child, defaults) = self.spawn(db, &tools.dump, &args, false)?;
        let mut reader = child.into_reader();
        let mut scanner = dump::Scanner::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut discard = |_: &dump::Statement, _: &[u8]| -> io::Result<()> { Ok(()) };
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let name = tools
                        .dump
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    return Err(self.error(db, format!("{name} {e}")));
                }
            };
            out.write_all(&buf[..n])
                .map_err(|e| self.error(db, format!("write the dump: {e}")))?;
            let _ = scanner.scan(&buf[..n], &mut discard);
        }
        drop(defaults);
        scanner.finish(&mut discard).map_err(|e| self.error(db, e))
    }
}

/// The client's error: its `ERROR ...` line, without the `exited with status 1:` that every
/// failure has, and the statement it echoes when that is short (a long one holds rows).
pub(super) fn client_error(message: &str) -> String {
    let message = message
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("exited with status"))
        .map_or(message, |(_, rest)| rest);
    let Some(at) = message.rfind("ERROR ") else {
        return message.to_owned();
    };
    let error = message[at..].trim();
    let statement = message[..at]
        .trim()
        .trim_matches('-')
        .trim()
        .rsplit("--------------")
        .next()
        .unwrap_or_default()
        .trim();
    if statement.is_empty() || statement.chars().count() > 300 {
        error.to_owned()
    } else {
        format!("{error} (in: {statement})")
    }
}

pub(super) fn unhex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One line the user can act on, from the error code in a client's message.
fn hint_for(reason: &str, asset: &str) -> Option<String> {
    let has =
        |code: &str| reason.contains(&format!("{code} (")) || reason.contains(&format!("{code}:"));
    if has("1045") {
        Some(format!(
            "check the user in assets.{asset}.url and the password it reads (password-env, password-file or password-command)"
        ))
    } else if has("1049") {
        Some(format!(
            "check the database name in assets.{asset}.url (or --to)"
        ))
    } else if has("1227") {
        Some(
            "the dump's views, triggers, routines and events keep their DEFINER; creating them as another user needs the SET USER privilege (MariaDB) or SET_USER_ID (MySQL), or restore as that user"
                .into(),
        )
    } else if has("1044") || has("1142") || has("1370") {
        Some(
            "the user lacks a privilege: a backup needs SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK TABLES on the database; a restore also needs CREATE, DROP and ALTER, and to create the <db>_lifeboat_* databases"
                .into(),
        )
    } else if ["2002", "2003", "2005", "2006", "2013"]
        .iter()
        .any(|c| has(c))
    {
        Some(format!(
            "is the server running and reachable? check host and port in assets.{asset}.url (or --to)"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sql_str(r"it's a \ test"), r"'it''s a \\ test'");
        assert_eq!(sql_ident("we`ird"), "`we``ird`");
        assert_eq!(unhex("6F7264657273"), "orders");
    }

    #[test]
    fn errors_get_hints_by_code() {
        let h = |r: &str| hint_for(r, "shop");
        assert!(
            h("ERROR 1045 (28000): Access denied for user 'u'@'127.0.0.1' (using password: YES)")
                .unwrap()
                .contains("password")
        );
        assert!(h("mariadb-dump: Got error: 1049: \"Unknown database 'x'\" when selecting the database").unwrap().contains("database name"));
        assert!(
            h("ERROR 2002 (HY000): Can't connect to server on '127.0.0.1' (115)")
                .unwrap()
                .contains("reachable")
        );
        assert_eq!(h("ERROR 1064 (42000) at line 3: syntax"), None);
        assert_eq!(
            client_error("exited with status 1: ERROR 1049 (42000): Unknown database 'x'"),
            "ERROR 1049 (42000): Unknown database 'x'"
        );
        assert_eq!(
            client_error(
                "exited with status 1: -------------- CREATE TRIGGER t -------------- ERROR 1227 (42000) at line 3: Access denied"
            ),
            "ERROR 1227 (42000) at line 3: Access denied (in: CREATE TRIGGER t)"
        );
        let rows = format!(
            "-------------- INSERT INTO t VALUES ('{}') -------------- ERROR 1406 (22001) at line 9: Data too long",
            "secret ".repeat(60)
        );
        assert_eq!(
            client_error(&rows),
            "ERROR 1406 (22001) at line 9: Data too long"
        );
        assert!(
            h("ERROR 1227 (42000): Access denied; you need the SET USER privilege")
                .unwrap()
                .contains("DEFINER")
        );
    }

    #[test]
    fn the_option_file_is_private_and_escaped() {
        let f = DefaultsFile::new(&Secret::new("p\"a'ss\\wo#rd;= x".into())).unwrap();
        let meta = std::fs::metadata(&f.0).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_to_string(&f.0).unwrap(),
            "[client]\npassword=\"p\\\"a'ss\\\\wo#rd;= x\"\n"
        );
    }

    #[test]
    fn the_password_is_in_the_option_file_and_never_in_argv() {
        let server = MysqlServer {
            asset: "shop".into(),
            host: "db1".into(),
            port: Some(3307),
            user: Some("app".into()),
            password: Some(Secret::new("hunter2-s3cret".into())),
        };
        let defaults = DefaultsFile::new(server.password.as_ref().unwrap()).unwrap();
        let cmd = server.command(Path::new("mariadb-dump"), Some(&defaults), &["shop".into()]);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args[0],
            format!("--defaults-extra-file={}", defaults.0.display())
        );
        assert!(args.contains(&"--protocol=TCP".to_owned()), "{args:?}");
        assert!(!args.iter().any(|a| a.contains("s3cret")), "{args:?}");
        assert!(
            cmd.get_envs()
                .all(|(_, v)| !v.is_some_and(|v| v.to_string_lossy().contains("s3cret")))
        );
        assert!(!format!("{server:?}").contains("s3cret"));
        assert!(
            std::fs::read_to_string(&defaults.0)
                .unwrap()
                .contains("hunter2-s3cret")
        );
    }
}

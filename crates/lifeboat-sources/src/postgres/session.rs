//! [`Session`]: a `psql` process kept open for several queries, and the quoting of names and
//! values for the SQL sent through it.

use std::{
    io::{self, BufRead, BufReader, Write},
    path::Path,
    process::{ChildStdin, ChildStdout},
};

use super::conn::Conn;
use crate::process::{self, RunningChild};

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

pub(super) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
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

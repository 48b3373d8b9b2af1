//! What a restore does on a MySQL or MariaDB server: [`DatabaseState`] (what a database holds),
//! counting its rows, loading SQL into it, and dumping its views, triggers, routines and events.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{self, Write},
};

use super::{
    server::{CONNECT_TIMEOUT, MAX_PACKET, MysqlServer, client_error, sql_ident, sql_str, unhex},
    split::DumpSplit,
};
use crate::SourceError;

/// What a database on the server holds, by name: what a restore replaces, drops or moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseState {
    pub charset: String,
    pub collation: String,
    /// Base tables and sequences: what `RENAME TABLE` moves.
    pub tables: Vec<String>,
    pub views: Vec<String>,
    /// (trigger, table)
    pub triggers: Vec<(String, String)>,
    /// (`PROCEDURE`/`FUNCTION`/`PACKAGE`..., name)
    pub routines: Vec<(String, String)>,
    pub events: Vec<String>,
}

impl DatabaseState {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
            && self.views.is_empty()
            && self.triggers.is_empty()
            && self.routines.is_empty()
            && self.events.is_empty()
    }

    /// SQL that drops every view, trigger, routine and event of database `db`, tables kept.
    #[must_use]
    pub fn drop_objects_sql(&self, db: &str) -> String {
        let q = |name: &str| format!("{}.{}", sql_ident(db), sql_ident(name));
        let mut sql = String::new();
        for (trigger, _) in &self.triggers {
            let _ = writeln!(sql, "DROP TRIGGER IF EXISTS {};", q(trigger));
        }
        for view in &self.views {
            let _ = writeln!(sql, "DROP VIEW IF EXISTS {};", q(view));
        }
        for (kind, name) in &self.routines {
            let _ = writeln!(sql, "DROP {kind} IF EXISTS {};", q(name));
        }
        for event in &self.events {
            let _ = writeln!(sql, "DROP EVENT IF EXISTS {};", q(event));
        }
        sql
    }
}

impl MysqlServer {
    /// Whether database `db` exists, and what it holds.
    ///
    /// # Errors
    /// The server's error.
    pub fn inspect(&self, db: &str) -> Result<Option<DatabaseState>, SourceError> {
        let d = sql_str(db);
        let sql = format!(
            "SELECT 'schema', HEX(DEFAULT_CHARACTER_SET_NAME), HEX(DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {d}
             UNION ALL SELECT 'table', HEX(TABLE_NAME), HEX(TABLE_TYPE) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {d}
             UNION ALL SELECT 'trigger', HEX(TRIGGER_NAME), HEX(EVENT_OBJECT_TABLE) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {d}
             UNION ALL SELECT 'routine', HEX(ROUTINE_NAME), HEX(ROUTINE_TYPE) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {d}
             UNION ALL SELECT 'event', HEX(EVENT_NAME), '' FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {d}"
        );
        let rows = self.query("", &sql)?;
        let mut state = DatabaseState::default();
        let mut exists = false;
        for row in rows {
            let field = |i: usize| unhex(row.get(i).map_or("", String::as_str));
            match row.first().map(String::as_str) {
                Some("schema") => {
                    exists = true;
                    state.charset = field(1);
                    state.collation = field(2);
                }
                Some("table") if field(2) == "VIEW" => state.views.push(field(1)),
                Some("table") if field(2) != "TEMPORARY" => state.tables.push(field(1)),
                Some("trigger") => state.triggers.push((field(1), field(2))),
                Some("routine") => state.routines.push((field(2), field(1))),
                Some("event") => state.events.push(field(1)),
                _ => {}
            }
        }
        Ok(exists.then_some(state))
    }

    /// Rows per table of database `db` (base tables, system-versioned ones included; not
    /// views or sequences), counted with `COUNT(*)` in one statement.
    ///
    /// # Errors
    /// The server's error.
    pub fn row_counts(&self, db: &str) -> Result<BTreeMap<String, u64>, SourceError> {
        let names: Vec<String> = self
            .query(
                "",
                &format!(
                    "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME",
                    sql_str(db)
                ),
            )?
            .into_iter()
            .filter_map(|r| r.first().map(|h| unhex(h)))
            .collect();
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = names
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    "SELECT {i}, COUNT(*) FROM {}.{}",
                    sql_ident(db),
                    sql_ident(t)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut counts = BTreeMap::new();
        for row in self.query("", &sql)? {
            let (Some(i), Some(n)) = (
                row.first().and_then(|i| i.parse::<usize>().ok()),
                row.get(1).and_then(|n| n.parse::<u64>().ok()),
            ) else {
                continue;
            };
            if let Some(name) = names.get(i) {
                counts.insert(name.clone(), n);
            }
        }
        Ok(counts)
    }

    /// Loads SQL into database `db`: `feed` writes it into the client's stdin. If `feed`
    /// fails, the client is killed before it sees the end of its input.
    ///
    /// # Errors
    /// A failed feed, or the client's error (e.g. `ERROR 1064 ... at line 12`).
    pub fn load<E: std::fmt::Display>(
        &self,
        db: &str,
        feed: impl FnOnce(&mut dyn Write) -> Result<u64, E>,
    ) -> Result<u64, SourceError> {
        let tools = self.tools(db)?;
        let args = vec![
            format!("--connect-timeout={CONNECT_TIMEOUT}"),
            "--batch".to_owned(),
            // Bytes as they are: the dump's strings may hold any byte.
            "--binary-mode".to_owned(),
            MAX_PACKET.to_owned(),
            format!("--database={db}"),
        ];
        let (child, defaults) = self.spawn(db, &tools.client, &args, true)?;
        let fed = child.feed(io::sink(), feed);
        drop(defaults);
        fed.map_err(|e| match e {
            crate::process::Fed::Child(e) => self.error(db, client_error(&e.to_string())),
            crate::process::Fed::Feed(e, tail) if !tail.is_empty() => {
                self.error(db, format!("{e} (client: {tail})"))
            }
            other => self.error(db, other.to_string()),
        })
    }

    /// The views, triggers and routines of database `db` as SQL, and its events apart (from
    /// a `--no-data` dump): to put them back if a swap fails, and to keep them with the
    /// previous tables.
    ///
    /// # Errors
    /// When the dump fails.
    pub fn dump_objects(&self, db: &str) -> Result<(Vec<u8>, Vec<u8>), SourceError> {
        let mut structure = Vec::new();
        self.dump_into(db, true, &mut structure)?;
        let mut split = DumpSplit::new(None);
        split
            .write_all(&structure)
            .and_then(|()| split.finish())
            .map_err(|e| self.error(db, e))?;
        Ok((split.objects, split.events))
    }
}

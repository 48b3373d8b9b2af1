//! A `mysql` asset's restore.
//!
//! The dump is split as it is read from the repository (see `lifeboat_sources::mysql::DumpSplit`):
//! tables and rows are loaded first and their rows per table checked against the manifest;
//! views, triggers, routines and events are created afterwards, where the tables end up.
//!
//! A database that already holds something is never loaded into: the dump goes into a new
//! scratch database on the same server, is checked there, and is then swapped in with one
//! `RENAME TABLE` statement (atomic: every table moves, or none). The previous tables move to
//! `<db>_lifeboat_old_<time>` with the views, triggers and routines that went with them (not
//! the events: they would run). Any failure before the swap leaves the target as it was; a
//! failure during it puts the previous tables and objects back.

use std::collections::BTreeMap;

use jiff::Timestamp;
use lifeboat_core::Manifest;
use lifeboat_plan::{MysqlSpec, ResolvedAsset};
use lifeboat_repo::{Repo, SnapshotInfo};
use lifeboat_sources::{
    SourceError,
    mysql::{DatabaseState, DumpSplit, MysqlServer, MysqlSource, sql_ident},
};

use super::connect::mysql_database;
use crate::{
    EngineError,
    actions::{RestoreAction, RestoreRequest},
    kinds::job::RestoreJob,
};

/// How long the swap waits for the locks on the target's tables (an application holding
/// them), in seconds; it fails and puts everything back after that.
const SWAP_LOCK_WAIT: u32 = 30;

/// How the dump reaches its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The target database does not exist: create it and load into it.
    Create,
    /// It exists and nothing in it would be replaced: load into it.
    Into,
    /// It holds what the restore replaces: load into a scratch database, then swap.
    Swap,
}

/// What loading the dump gave.
struct Loaded {
    /// Bytes of the artifact read.
    bytes: u64,
    /// SQL creating the views, triggers and routines.
    objects: Vec<u8>,
    /// SQL creating the events.
    events: Vec<u8>,
    /// Rows per table found in the loaded database.
    counts: BTreeMap<String, u64>,
}

/// What the restore works with, once planned.
struct Job<'a> {
    asset: &'a str,
    server: &'a MysqlServer,
    db: &'a str,
    /// `--table`: only these tables, no views, triggers, routines or events.
    only: Option<Vec<String>>,
    mode: Mode,
    /// The target as it is now (`None`: it does not exist).
    state: Option<DatabaseState>,
    scratch: String,
    kept: String,
    /// The live database could not be dumped (or nothing of it is to be kept): its views,
    /// triggers and routines are kept only if they can still be read.
    damaged: bool,
}

pub(super) fn restore(job: &mut RestoreJob<'_>, spec: &MysqlSpec) -> Result<(), EngineError> {
    let (asset, repo, snap, req) = (job.asset, job.repo, job.snap, job.req);
    let (manifest, artifact) = job.streamed()?;
    let live = mysql_database(&asset.name, spec, &spec.url)?;
    let target = match &req.to {
        Some(to) => mysql_database(
            &asset.name,
            spec,
            &lifeboat_core::Redacted::new(&to.to_string_lossy()),
        )?,
        None => live.clone(),
    };
    let in_place = same_database(&live, &target);
    if in_place && req.to.is_some() && !req.dry_run && !req.yes {
        return Err(EngineError::usage(
            format!(
                "restore asset {} over its original database {}",
                asset.name,
                target.server.url(&target.database)
            ),
            Some(
                "add --yes to confirm (a safety snapshot is taken first), or choose another database",
            ),
        ));
    }
    let only = selected_tables(asset, snap, &manifest, req, in_place)?;
    let server = &target.server;
    let db = target.database.as_str();
    let state = server.inspect(db)?;
    let replaced = replaced_by(state.as_ref(), only.as_deref());
    let mode = match &state {
        None => Mode::Create,
        Some(_) if replaced.is_empty() => Mode::Into,
        Some(_) => Mode::Swap,
    };
    if mode == Mode::Swap && !in_place && !req.yes && !req.dry_run {
        return Err(EngineError::usage(
            format!(
                "restore asset {} into {}: the database is not empty ({})",
                asset.name,
                server.url(db),
                shorten(&replaced)
            ),
            Some(
                "add --yes to replace it (what it holds now is kept in a <db>_lifeboat_old_<time> database), or choose another database",
            ),
        ));
    }
    if let (Some(only), Some(state)) = (&only, &state) {
        refuse_awkward_tables(&asset.name, server, db, only, state)?;
    }
    // Milliseconds: a restore and its undo may run within one second.
    let stamp = Timestamp::now().strftime("%Y%m%d%H%M%S%3f").to_string();
    let mut work = Job {
        asset: &asset.name,
        server,
        db,
        only,
        mode,
        scratch: side_name(db, "new", &stamp),
        kept: side_name(db, "old", &stamp),
        state,
        damaged: req.skip_safety_snapshot,
    };
    let load_db = work.load_db().to_owned();
    let safety = in_place && mode == Mode::Swap && !req.skip_safety_snapshot;
    if mode != Mode::Into {
        job.plan(RestoreAction::CreateDatabase {
            target: server.url(&load_db),
        });
    }
    job.plan(RestoreAction::LoadDump {
        artifact: artifact.clone(),
        target: server.url(&load_db),
    });
    job.plan(RestoreAction::CheckCounts {
        target: server.url(&load_db),
    });
    if safety {
        job.plan_safety_copy();
    }
    if mode == Mode::Swap {
        job.plan(RestoreAction::SwapDatabase {
            restored: server.url(&work.scratch),
            target: server.url(db),
            kept: server.url(&work.kept),
        });
    }
    if req.dry_run {
        return Ok(());
    }

    // An interrupt during the load drops the scratch database (a swap waits for itself).
    let undo = (mode == Mode::Swap).then(|| {
        let server = server.clone();
        let drop_sql = format!("DROP DATABASE IF EXISTS {}", sql_ident(&work.scratch));
        crate::interrupt::undo_on_interrupt(move || {
            let _ = server.execute("", &drop_sql);
        })
    });
    // Load and check; on failure, remove what was made and leave the target as it was.
    let loaded = work.load(repo, snap, &manifest, &artifact);
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            work.clean_up();
            return Err(e);
        }
    };
    job.report.bytes = loaded.bytes;
    job.report.tables = Some(loaded.counts);
    if mode != Mode::Swap {
        return Ok(());
    }
    if safety {
        // Tables the dump cannot read are moved whole into the kept database by the swap: no
        // logical safety dump, but nothing of them is lost.
        let note = format!(
            "database {} (no logical safety dump could be taken)",
            work.kept
        );
        match job.safety_copy(&[], Some(note)) {
            Ok(damaged) => work.damaged = damaged,
            Err(e) => {
                work.clean_up();
                return Err(e);
            }
        }
    }
    drop(undo);
    let kept = work.swap(&loaded.objects, &loaded.events)?;
    job.report.kept_database = kept;
    Ok(())
}

/// The `--table` names, checked against the snapshot; `None` for a whole restore.
fn selected_tables(
    asset: &ResolvedAsset,
    snap: &SnapshotInfo,
    manifest: &Manifest,
    req: &RestoreRequest,
    in_place: bool,
) -> Result<Option<Vec<String>>, EngineError> {
    if req.tables.is_empty() {
        return Ok(None);
    }
    if in_place {
        return Err(EngineError::usage(
            format!(
                "restore asset {}: --table restores into another database",
                asset.name
            ),
            Some("add --to mysql://user@host:port/other_database"),
        ));
    }
    for t in &req.tables {
        if !manifest.tables.contains_key(t) {
            return Err(EngineError::usage(
                format!(
                    "restore asset {}: snapshot {} has no table {t}",
                    asset.name, snap.short_id
                ),
                Some(&format!(
                    "it has: {}",
                    manifest
                        .tables
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ));
        }
    }
    let mut only = req.tables.clone();
    only.sort();
    only.dedup();
    Ok(Some(only))
}

/// What a restore would replace in the target: everything it holds for a whole restore, the
/// tables of the same name for `--table`.
fn replaced_by(state: Option<&DatabaseState>, only: Option<&[String]>) -> Vec<String> {
    let Some(state) = state else {
        return Vec::new();
    };
    match only {
        Some(only) => only
            .iter()
            .filter(|t| state.tables.contains(t) || state.views.contains(t))
            .cloned()
            .collect(),
        None => state
            .tables
            .iter()
            .chain(&state.views)
            .cloned()
            .chain(state.triggers.iter().map(|(t, _)| format!("trigger {t}")))
            .chain(
                state
                    .routines
                    .iter()
                    .map(|(k, r)| format!("{} {r}", k.to_lowercase())),
            )
            .chain(state.events.iter().map(|e| format!("event {e}")))
            .collect(),
    }
}

/// `--table` replaces a table only when it can be moved aside whole: not a view, no triggers.
fn refuse_awkward_tables(
    asset: &str,
    server: &MysqlServer,
    db: &str,
    only: &[String],
    state: &DatabaseState,
) -> Result<(), EngineError> {
    for t in only {
        if state.views.contains(t) {
            return Err(EngineError::usage(
                format!(
                    "restore table {t} of asset {asset} into {}: it is a view there",
                    server.url(db)
                ),
                Some("drop the view, or choose another database"),
            ));
        }
        if let Some((trigger, _)) = state.triggers.iter().find(|(_, table)| table == t) {
            return Err(EngineError::usage(
                format!(
                    "restore table {t} of asset {asset} into {}: the table there has trigger {trigger}, which cannot be moved aside with it",
                    server.url(db)
                ),
                Some("drop its triggers, or choose another database"),
            ));
        }
    }
    Ok(())
}

fn same_database(a: &MysqlSource, b: &MysqlSource) -> bool {
    a.database == b.database
        && a.server.host.eq_ignore_ascii_case(&b.server.host)
        && a.server.port.unwrap_or(3306) == b.server.port.unwrap_or(3306)
}

/// `<db>_lifeboat_<what>_<stamp>`, within the 64 characters a database name may have.
fn side_name(db: &str, what: &str, stamp: &str) -> String {
    let suffix = format!("_lifeboat_{what}_{stamp}");
    let room = 64usize.saturating_sub(suffix.chars().count());
    let head: String = db.chars().take(room).collect();
    format!("{head}{suffix}")
}

fn shorten(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(5)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 5 {
        text.push_str(&format!(" and {} more", names.len() - 5));
    }
    text
}

impl Job<'_> {
    /// The database the dump is loaded into.
    fn load_db(&self) -> &str {
        if self.mode == Mode::Swap {
            &self.scratch
        } else {
            self.db
        }
    }

    fn exec(&self, db: &str, sql: &str) -> Result<(), EngineError> {
        Ok(self.server.execute(db, sql)?)
    }

    /// Creates the database if needed, loads the tables, checks their rows against the
    /// manifest, and creates views, triggers and routines (events too, unless a swap follows:
    /// they go in with the swap).
    fn load(
        &self,
        repo: &Repo,
        snap: &SnapshotInfo,
        manifest: &Manifest,
        artifact: &str,
    ) -> Result<Loaded, EngineError> {
        let load_db = self.load_db();
        if self.mode != Mode::Into {
            let charset = self
                .state
                .as_ref()
                .filter(|s| !s.charset.is_empty())
                .map(|s| format!(" CHARACTER SET {} COLLATE {}", s.charset, s.collation))
                .unwrap_or_default();
            self.exec(
                "",
                &format!("CREATE DATABASE {}{charset}", sql_ident(load_db)),
            )?;
        }
        let mut objects = Vec::new();
        let mut events = Vec::new();
        let bytes = self.server.load(load_db, |stdin| {
            let mut split = DumpSplit::new(self.only.clone()).with_tables(stdin);
            let n = repo
                .dump_artifact(snap, manifest, artifact, &mut split)
                .map_err(|e| e.to_string())?;
            split.finish().map_err(|e| e.to_string())?;
            objects = std::mem::take(&mut split.objects);
            events = std::mem::take(&mut split.events);
            Ok::<u64, String>(n)
        })?;
        let mut counts = self.server.row_counts(load_db)?;
        let mut expected = manifest.tables.clone();
        if let Some(only) = &self.only {
            counts.retain(|t, _| only.contains(t));
            expected.retain(|t, _| only.contains(t));
        }
        if counts != expected {
            return Err(self
                .server
                .error(load_db, count_mismatch(&counts, &expected))
                .into());
        }
        if self.only.is_none() {
            // In a scratch database this is a rehearsal: a definer, a privilege or a syntax
            // the server refuses fails here, before anything is swapped.
            self.replay(load_db, &objects)?;
            if self.mode != Mode::Swap {
                self.replay(load_db, &events)?;
            }
        }
        Ok(Loaded {
            bytes,
            objects,
            events,
            counts,
        })
    }

    fn replay(&self, db: &str, sql: &[u8]) -> Result<(), EngineError> {
        if sql.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.server
            .load(db, |w| w.write_all(sql).map(|()| sql.len() as u64))?;
        Ok(())
    }

    /// Removes what a failed restore made before its swap; the target stays as it was.
    fn clean_up(&self) {
        let result = match self.mode {
            Mode::Create => self.exec(
                "",
                &format!("DROP DATABASE IF EXISTS {}", sql_ident(self.db)),
            ),
            Mode::Swap => self.exec(
                "",
                &format!("DROP DATABASE IF EXISTS {}", sql_ident(&self.scratch)),
            ),
            Mode::Into => self
                .server
                .inspect(self.db)
                .map_err(Into::into)
                .and_then(|now| {
                    let Some(now) = now else { return Ok(()) };
                    // The target held none of what the restore wrote: remove all of that.
                    let before = self.state.clone().unwrap_or_default();
                    let mut sql = String::from("SET FOREIGN_KEY_CHECKS = 0;\n");
                    if self.only.is_none() {
                        sql.push_str(&now.drop_objects_sql(self.db));
                    }
                    for t in now.tables.iter().filter(|t| {
                        !before.tables.contains(t)
                            && self.only.as_ref().is_none_or(|only| only.contains(t))
                    }) {
                        sql.push_str(&format!(
                            "DROP TABLE IF EXISTS {}.{};\n",
                            sql_ident(self.db),
                            sql_ident(t)
                        ));
                    }
                    self.exec("", &sql)
                }),
        };
        if let Err(e) = result {
            tracing::warn!("asset {}: clean up after a failed restore: {e}", self.asset);
        }
    }

    /// Swaps the checked scratch database in. Returns the database the previous tables were
    /// kept in, if there were any.
    fn swap(&self, objects: &[u8], events: &[u8]) -> Result<Option<String>, EngineError> {
        let _swapping = crate::interrupt::swapping();
        let q = |db: &str, t: &str| format!("{}.{}", sql_ident(db), sql_ident(t));
        let fail_clean = |e: EngineError| {
            self.clean_up();
            e
        };
        // Read again: the target may have changed since the plan was made.
        let now = self
            .server
            .inspect(self.db)
            .map_err(|e| fail_clean(e.into()))?
            .unwrap_or_default();
        let scratch = self
            .server
            .inspect(&self.scratch)
            .map_err(|e| fail_clean(e.into()))?
            .unwrap_or_default();
        let outgoing: Vec<String> = match &self.only {
            Some(only) => now
                .tables
                .iter()
                .filter(|t| only.contains(t))
                .cloned()
                .collect(),
            None => now.tables.clone(),
        };
        // To put back if the swap fails, and to keep with the previous tables.
        let dumped = if self.only.is_none() {
            self.server.dump_objects(self.db)
        } else {
            Ok((Vec::new(), Vec::new()))
        };
        let (old_objects, old_events) = match dumped {
            Ok(objects) => objects,
            // A damaged database's tables still move whole into the kept database; only the
            // definitions the dump cannot read are left behind.
            Err(e) if self.damaged => {
                tracing::warn!(
                    "asset {}: the damaged database's views, triggers, routines and events could not be read ({e}): its tables are kept in {} without them",
                    self.asset,
                    self.kept
                );
                (Vec::new(), Vec::new())
            }
            Err(e) => return Err(fail_clean(e.into())),
        };
        let mut sql = format!("SET SESSION lock_wait_timeout = {SWAP_LOCK_WAIT};\n");
        if !outgoing.is_empty() {
            sql.push_str(&format!(
                "CREATE DATABASE {} CHARACTER SET {} COLLATE {};\n",
                sql_ident(&self.kept),
                now.charset,
                now.collation
            ));
        }
        // RENAME TABLE will not move a table with triggers to another database.
        for (trigger, _) in &scratch.triggers {
            sql.push_str(&format!("DROP TRIGGER {};\n", q(&self.scratch, trigger)));
        }
        if self.only.is_none() {
            sql.push_str(&now.drop_objects_sql(self.db));
        }
        let renames: Vec<String> = outgoing
            .iter()
            .map(|t| format!("{} TO {}", q(self.db, t), q(&self.kept, t)))
            .chain(
                scratch
                    .tables
                    .iter()
                    .map(|t| format!("{} TO {}", q(&self.scratch, t), q(self.db, t))),
            )
            .collect();
        if !renames.is_empty() {
            sql.push_str(&format!("RENAME TABLE {};\n", renames.join(", ")));
        }
        if let Err(e) = self.exec("", &sql) {
            // RENAME TABLE is atomic: the tables are where they were. Put the objects back.
            let undo = self.put_back_objects(&old_objects, &old_events);
            self.clean_up();
            if !outgoing.is_empty() {
                let _ = self.exec(
                    "",
                    &format!("DROP DATABASE IF EXISTS {}", sql_ident(&self.kept)),
                );
            }
            return Err(self.swap_failed(&e, undo));
        }
        if self.only.is_none()
            && let Err(e) = self
                .replay(self.db, objects)
                .and_then(|()| self.replay(self.db, events))
        {
            // Swap back: the restored tables out, the previous ones in, their objects with them.
            let back: Vec<String> = scratch
                .tables
                .iter()
                .map(|t| format!("{} TO {}", q(self.db, t), q(&self.scratch, t)))
                .chain(
                    outgoing
                        .iter()
                        .map(|t| format!("{} TO {}", q(&self.kept, t), q(self.db, t))),
                )
                .collect();
            let undo = self
                .server
                .inspect(self.db)
                .map_err(EngineError::from)
                .and_then(|s| {
                    let mut sql = format!("SET SESSION lock_wait_timeout = {SWAP_LOCK_WAIT};\n");
                    sql.push_str(&s.unwrap_or_default().drop_objects_sql(self.db));
                    if !back.is_empty() {
                        sql.push_str(&format!("RENAME TABLE {};\n", back.join(", ")));
                    }
                    self.exec("", &sql)
                })
                .and_then(|()| self.replay(self.db, &old_objects))
                .and_then(|()| self.replay(self.db, &old_events));
            if undo.is_ok() {
                self.clean_up();
                let _ = self.exec(
                    "",
                    &format!("DROP DATABASE IF EXISTS {}", sql_ident(&self.kept)),
                );
            }
            return Err(self.swap_failed(&e, undo));
        }
        let _ = self.exec(
            "",
            &format!("DROP DATABASE IF EXISTS {}", sql_ident(&self.scratch)),
        );
        if outgoing.is_empty() {
            return Ok(None);
        }
        // The previous views, triggers and routines stay with the previous tables; its events
        // do not (they would run).
        if let Err(e) = self.replay(&self.kept, &old_objects) {
            tracing::warn!(
                "asset {}: the previous views, triggers and routines could not be kept in {}: {e}",
                self.asset,
                self.kept
            );
        }
        Ok(Some(self.kept.clone()))
    }

    /// Recreates the target's views, triggers, routines and events as they were.
    fn put_back_objects(&self, objects: &[u8], events: &[u8]) -> Result<(), EngineError> {
        let now = self.server.inspect(self.db)?.unwrap_or_default();
        self.exec("", &now.drop_objects_sql(self.db))?;
        self.replay(self.db, objects)?;
        self.replay(self.db, events)
    }

    fn swap_failed(&self, e: &EngineError, undo: Result<(), EngineError>) -> EngineError {
        let (state, hint) = match undo {
            Ok(()) => (
                "the database was left as it was".to_owned(),
                "fix the cause and restore again".to_owned(),
            ),
            Err(u) => (
                format!("and putting the previous state back failed too: {u}"),
                format!(
                    "the previous tables may be in {}, and the whole previous database is in the safety snapshot",
                    self.kept
                ),
            ),
        };
        EngineError::Source(SourceError::Server {
            asset: self.asset.to_owned(),
            server: self.server.label(self.db),
            reason: format!("swap the restored tables in: {e}; {state}"),
            hint: Some(hint),
        })
    }
}

fn count_mismatch(counts: &BTreeMap<String, u64>, expected: &BTreeMap<String, u64>) -> String {
    let mut diffs = Vec::new();
    for (t, n) in expected {
        match counts.get(t) {
            Some(m) if m == n => {}
            Some(m) => diffs.push(format!("{t}: {m} rows, the manifest says {n}")),
            None => diffs.push(format!("{t}: missing, the manifest says {n} rows")),
        }
    }
    for t in counts.keys().filter(|t| !expected.contains_key(*t)) {
        diffs.push(format!("{t}: not in the manifest"));
    }
    format!(
        "the restored tables do not match the manifest: {}",
        diffs.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_names_fit_in_64_characters() {
        assert_eq!(
            side_name("orders", "old", "20250101120000"),
            "orders_lifeboat_old_20250101120000"
        );
        let long = "x".repeat(64);
        assert_eq!(
            side_name(&long, "new", "20250101120000").chars().count(),
            64
        );
    }

    #[test]
    fn replaced_names_what_a_restore_would_overwrite() {
        let state = DatabaseState {
            tables: vec!["a".into(), "b".into()],
            views: vec!["v".into()],
            events: vec!["e".into()],
            ..DatabaseState::default()
        };
        assert_eq!(replaced_by(None, None), Vec::<String>::new());
        assert_eq!(replaced_by(Some(&state), None), ["a", "b", "v", "event e"]);
        assert_eq!(
            replaced_by(Some(&state), Some(&["b".into(), "c".into()])),
            ["b"]
        );
        assert!(replaced_by(Some(&DatabaseState::default()), None).is_empty());
    }
}

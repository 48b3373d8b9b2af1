//! The catalog: an SQLite file beside the plan (`.lifeboat/catalog.db`, or
//! `$LIFEBOAT_CATALOG`) that indexes what the repository holds, so listings need not read the
//! repository each time. It is a cache: `lifeboat catalog rebuild` recreates it from the
//! repository, and `reports` fills in whatever drills it does not know yet.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::{
    EngineError,
    engine::Engine,
    report::{DRILLS_ASSET, DrillReport, PastDrill, REPORT_JSON},
};

/// Environment variable naming the catalog file.
pub const CATALOG_ENV: &str = "LIFEBOAT_CATALOG";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS drills (
    snapshot_id TEXT PRIMARY KEY,
    short_id TEXT NOT NULL,
    plan TEXT NOT NULL,
    started_at TEXT NOT NULL,
    passed INTEGER NOT NULL,
    rto_secs REAL NOT NULL,
    rto_target_secs INTEGER NOT NULL,
    assets INTEGER NOT NULL,
    failed TEXT NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drills_by_time ON drills (started_at);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    asset TEXT,
    started_at TEXT NOT NULL,
    duration_secs REAL NOT NULL,
    bytes INTEGER,
    outcome TEXT NOT NULL,
    error TEXT,
    snapshot TEXT,
    trigger TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_snapshot ON runs (snapshot) WHERE snapshot IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (started_at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    job TEXT NOT NULL,
    asset TEXT,
    summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
";

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// Done, nothing to report.
    Ok,
    /// Done with warnings (files that could not be read, verify warnings).
    Partial,
    Failed,
    /// Stopped by a signal before its end; it left nothing behind.
    Cancelled,
}

impl RunOutcome {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "ok" => Self::Ok,
            "partial" => Self::Partial,
            "cancelled" => Self::Cancelled,
            _ => Self::Failed,
        }
    }
}

/// One job on one asset (or on the plan, `asset` `None`), as the catalog records it.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// The catalog's id; 0 before it is recorded.
    pub id: i64,
    /// `backup`, `verify`, `drill`, `forget`, `prune`, `copy`.
    pub job: String,
    pub asset: Option<String>,
    pub started_at: Timestamp,
    pub duration_secs: f64,
    /// Bytes read from the source (backups).
    pub bytes: Option<u64>,
    pub outcome: RunOutcome,
    /// The error, one line, for a failed run.
    pub error: Option<String>,
    /// The snapshot a backup wrote.
    pub snapshot: Option<String>,
    /// What started it: `cli`, `schedule`, `api`, or `repository` for runs a rebuild found.
    pub trigger: String,
}

/// An event as the catalog keeps it (what was notified, or would have been).
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub time: Timestamp,
    pub kind: String,
    pub job: String,
    pub asset: Option<String>,
    pub summary: String,
}

pub(crate) struct Catalog {
    conn: Connection,
    path: PathBuf,
}

impl Catalog {
    fn err(path: &Path, e: impl std::fmt::Display) -> EngineError {
        EngineError::usage(
            format!("catalog {}: {e}", path.display()),
            Some(
                "remove the file and run `lifeboat catalog rebuild`: the repository holds everything it indexes",
            ),
        )
    }

    pub(crate) fn open(path: &Path) -> Result<Self, EngineError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Self::err(path, e))?;
        }
        let conn = Connection::open(path).map_err(|e| Self::err(path, e))?;
        // WAL: the daemon and a CLI run may write at once.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| conn.execute_batch(SCHEMA))
            .map_err(|e| Self::err(path, e))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn known(&self) -> Result<std::collections::HashSet<String>, EngineError> {
        let mut stmt = self
            .conn
            .prepare("SELECT snapshot_id FROM drills")
            .map_err(|e| Self::err(&self.path, e))?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(Iterator::collect)
            .map_err(|e| Self::err(&self.path, e))?;
        Ok(ids)
    }

    pub(crate) fn add_drill(
        &self,
        snapshot_id: &str,
        report: &DrillReport,
    ) -> Result<(), EngineError> {
        let failed: Vec<&str> = report
            .assets
            .iter()
            .filter(|a| !a.passed())
            .map(|a| a.asset.as_str())
            .collect();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO drills VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    snapshot_id,
                    &snapshot_id[..8.min(snapshot_id.len())],
                    report.plan,
                    report.started_at.to_string(),
                    report.passed,
                    report.rto_secs,
                    i64::try_from(report.rto_target_secs).unwrap_or(i64::MAX),
                    i64::try_from(report.assets.len()).unwrap_or(0),
                    failed.join(","),
                    serde_json::to_string(report).unwrap_or_default(),
                ],
            )
            .map_err(|e| Self::err(&self.path, e))?;
        Ok(())
    }

    fn drills(&self) -> Result<Vec<PastDrill>, EngineError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT short_id, started_at, passed, rto_secs, rto_target_secs, assets, failed \
                 FROM drills ORDER BY started_at DESC",
            )
            .map_err(|e| Self::err(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| {
                let failed: String = r.get(6)?;
                Ok(PastDrill {
                    snapshot: r.get(0)?,
                    started_at: r
                        .get::<_, String>(1)?
                        .parse()
                        .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                    passed: r.get(2)?,
                    rto_secs: r.get(3)?,
                    rto_target_secs: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                    assets: usize::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                    failed: failed
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| Self::err(&self.path, e))?;
        Ok(rows)
    }

    pub(crate) fn recent_reports(&self, limit: usize) -> Result<Vec<DrillReport>, EngineError> {
        let mut stmt = self
            .conn
            .prepare("SELECT report FROM drills ORDER BY started_at DESC LIMIT ?1")
            .map_err(|e| Self::err(&self.path, e))?;
        let texts: Vec<String> = stmt
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| Self::err(&self.path, e))?;
        Ok(texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect())
    }

    fn clear(&self) -> Result<(), EngineError> {
        self.conn
            .execute_batch("DELETE FROM drills; DELETE FROM runs; DELETE FROM events;")
            .map_err(|e| Self::err(&self.path, e))?;
        Ok(())
    }

    /// Records `run`; a run whose snapshot is known already is left as it is. Returns its id.
    pub(crate) fn add_run(&self, run: &Run) -> Result<i64, EngineError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO runs (job, asset, started_at, duration_secs, bytes, outcome, error, snapshot, trigger) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    run.job,
                    run.asset,
                    run.started_at.to_string(),
                    run.duration_secs,
                    run.bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
                    run.outcome.as_str(),
                    run.error,
                    run.snapshot,
                    run.trigger,
                ],
            )
            .map_err(|e| Self::err(&self.path, e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The newest `limit` runs, newest first; only `asset`'s when given.
    pub(crate) fn runs(&self, asset: Option<&str>, limit: usize) -> Result<Vec<Run>, EngineError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, job, asset, started_at, duration_secs, bytes, outcome, error, snapshot, trigger \
                 FROM runs WHERE ?1 IS NULL OR asset = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2",
            )
            .map_err(|e| Self::err(&self.path, e))?;
        stmt.query_map(
            params![asset, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(Run {
                    id: r.get(0)?,
                    job: r.get(1)?,
                    asset: r.get(2)?,
                    started_at: r
                        .get::<_, String>(3)?
                        .parse()
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                    duration_secs: r.get(4)?,
                    bytes: r
                        .get::<_, Option<i64>>(5)?
                        .map(|b| u64::try_from(b).unwrap_or(0)),
                    outcome: RunOutcome::parse(&r.get::<_, String>(6)?),
                    error: r.get(7)?,
                    snapshot: r.get(8)?,
                    trigger: r.get(9)?,
                })
            },
        )
        .and_then(Iterator::collect)
        .map_err(|e| Self::err(&self.path, e))
    }

    pub(crate) fn add_event(&self, e: &EventRecord) -> Result<(), EngineError> {
        self.conn
            .execute(
                "INSERT INTO events (time, kind, job, asset, summary) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.time.to_string(), e.kind, e.job, e.asset, e.summary],
            )
            .map_err(|e| Self::err(&self.path, e))?;
        Ok(())
    }

    /// The newest `limit` events, newest first.
    pub(crate) fn events(&self, limit: usize) -> Result<Vec<EventRecord>, EngineError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT time, kind, job, asset, summary FROM events ORDER BY time DESC, id DESC LIMIT ?1",
            )
            .map_err(|e| Self::err(&self.path, e))?;
        stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(EventRecord {
                time: r
                    .get::<_, String>(0)?
                    .parse()
                    .unwrap_or(Timestamp::UNIX_EPOCH),
                kind: r.get(1)?,
                job: r.get(2)?,
                asset: r.get(3)?,
                summary: r.get(4)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(|e| Self::err(&self.path, e))
    }

    /// The newest of `kinds` for `asset`, with its time.
    pub(crate) fn last_event(
        &self,
        asset: &str,
        kinds: &[&str],
    ) -> Result<Option<(String, Timestamp)>, EngineError> {
        let list = kinds
            .iter()
            .map(|k| format!("'{}'", k.replace('\'', "")))
            .collect::<Vec<_>>()
            .join(",");
        self.conn
            .query_row(
                &format!(
                    "SELECT kind, time FROM events WHERE asset = ?1 AND kind IN ({list}) ORDER BY time DESC, id DESC LIMIT 1"
                ),
                [asset],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?
                            .parse()
                            .unwrap_or(Timestamp::UNIX_EPOCH),
                    ))
                },
            )
            .optional()
            .map_err(|e| Self::err(&self.path, e))
    }
}

impl Engine {
    /// Where the catalog lives: `$LIFEBOAT_CATALOG`, or `.lifeboat/catalog.db` beside the plan.
    #[must_use]
    pub fn catalog_path(&self) -> PathBuf {
        std::env::var_os(CATALOG_ENV).map_or_else(
            || self.plan().base_dir.join(".lifeboat").join("catalog.db"),
            PathBuf::from,
        )
    }

    pub(crate) fn catalog(&self) -> Result<Catalog, EngineError> {
        Catalog::open(&self.catalog_path())
    }

    /// Adds to the catalog every drill report in the repository it does not hold yet;
    /// returns how many it added.
    fn sync_drills(&self, catalog: &Catalog) -> Result<usize, EngineError> {
        let known = catalog.known()?;
        let repo = self.open_primary()?;
        let mut added = 0;
        for snap in repo
            .snapshots()?
            .iter()
            .filter(|s| s.asset.as_deref() == Some(DRILLS_ASSET) && !known.contains(&s.id))
        {
            let manifest = repo.read_manifest(snap)?;
            let mut bytes = Vec::new();
            repo.dump_artifact(snap, &manifest, REPORT_JSON, &mut bytes)?;
            if let Ok(report) = serde_json::from_slice::<DrillReport>(&bytes) {
                catalog.add_drill(&snap.id, &report)?;
                added += 1;
            }
        }
        Ok(added)
    }

    /// Past drills, newest first: from the catalog, after it has taken in any drill the
    /// repository holds that it does not (written from another host, or before a rebuild).
    ///
    /// # Errors
    /// The catalog or the repository cannot be read.
    pub fn past_drills(&self) -> Result<Vec<PastDrill>, EngineError> {
        let catalog = self.catalog()?;
        self.sync_drills(&catalog)?;
        catalog.drills()
    }

    /// The newest `limit` drill reports, newest first, through the catalog.
    ///
    /// # Errors
    /// The catalog or the repository cannot be read.
    pub fn recent_drills(&self, limit: usize) -> Result<Vec<DrillReport>, EngineError> {
        let catalog = self.catalog()?;
        self.sync_drills(&catalog)?;
        catalog.recent_reports(limit)
    }

    /// Empties the catalog and fills it again from the repository: every drill report, and a
    /// successful backup run per snapshot of a plan asset (its time, duration and size).
    /// Failed and cancelled runs and past events left no trace in the repository and are not
    /// recreated (the audit log, also copied into the repository, still names them).
    ///
    /// # Errors
    /// The catalog or the repository cannot be read.
    pub fn rebuild_catalog(&self) -> Result<Rebuilt, EngineError> {
        let catalog = self.catalog()?;
        catalog.clear()?;
        let drills = self.sync_drills(&catalog)?;
        let mut runs = 0;
        for snap in self.open_primary()?.snapshots()? {
            let Some(asset) = snap.asset.as_deref() else {
                continue;
            };
            if asset.starts_with('_')
                || snap.is_safety()
                || snap.plan.as_deref() != Some(&self.plan().name)
            {
                continue;
            }
            catalog.add_run(&Run {
                id: 0,
                job: "backup".to_owned(),
                asset: Some(asset.to_owned()),
                started_at: snap.time,
                duration_secs: snap.duration_secs,
                bytes: Some(snap.bytes),
                outcome: RunOutcome::Ok,
                error: None,
                snapshot: Some(snap.id.clone()),
                trigger: "repository".to_owned(),
            })?;
            runs += 1;
        }
        Ok(Rebuilt { drills, runs })
    }

    /// The newest `limit` runs, newest first, of one asset or all.
    ///
    /// # Errors
    /// The catalog cannot be read.
    pub fn runs(&self, asset: Option<&str>, limit: usize) -> Result<Vec<Run>, EngineError> {
        self.catalog()?.runs(asset, limit)
    }

    /// The newest `limit` events, newest first.
    ///
    /// # Errors
    /// The catalog cannot be read.
    pub fn events(&self, limit: usize) -> Result<Vec<EventRecord>, EngineError> {
        self.catalog()?.events(limit)
    }

    /// The newest `rpo-breach` or `rpo-recovered` event of `asset`: where an RPO watchdog
    /// picks up after a restart.
    ///
    /// # Errors
    /// The catalog cannot be read.
    pub fn last_rpo_event(&self, asset: &str) -> Result<Option<(String, Timestamp)>, EngineError> {
        self.catalog()?
            .last_event(asset, &["rpo-breach", "rpo-recovered"])
    }
}

/// What `catalog rebuild` indexed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rebuilt {
    pub drills: usize,
    pub runs: usize,
}

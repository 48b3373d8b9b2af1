//! The catalog: an SQLite file beside the plan (`.lifeboat/catalog.db`, or
//! `$LIFEBOAT_CATALOG`) that indexes what the repository holds, so listings need not read the
//! repository each time. It is a cache: `lifeboat catalog rebuild` recreates it from the
//! repository, and `reports` fills in whatever drills it does not know yet.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use crate::{
    EngineError,
    jobs::Engine,
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
";

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
        conn.busy_timeout(std::time::Duration::from_secs(10))
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
            .execute("DELETE FROM drills", [])
            .map_err(|e| Self::err(&self.path, e))?;
        Ok(())
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

    /// Empties the catalog and fills it again from the repository; returns the drills indexed.
    ///
    /// # Errors
    /// The catalog or the repository cannot be read.
    pub fn rebuild_catalog(&self) -> Result<usize, EngineError> {
        let catalog = self.catalog()?;
        catalog.clear()?;
        self.sync_drills(&catalog)
    }
}

//! `sqlite` assets: the database file copied with the online backup API, restored beside the
//! target and renamed over it once its rows per table match the manifest.

use std::path::{Path, PathBuf};

use lifeboat_core::Manifest;
use lifeboat_plan::{ResolvedAsset, SqliteSpec};
use lifeboat_sources::{Source, SourceError, sqlite::SqliteSource};

use super::{
    contract::{Description, Kind},
    job::{RestoreJob, SandboxJob},
};
use crate::{
    EngineError,
    actions::RestoreAction,
    proof::{Found, LiveCheck, compare_counts, compare_live, sql_checks},
};

pub(super) struct Sqlite<'a> {
    pub asset: &'a ResolvedAsset,
    pub spec: &'a SqliteSpec,
}

impl Sqlite<'_> {
    fn sqlite_source(&self) -> SqliteSource {
        SqliteSource {
            asset: self.asset.name.clone(),
            path: self.spec.path.clone(),
        }
    }
}

impl Kind for Sqlite<'_> {
    fn source(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(self.sqlite_source()))
    }

    fn restore(&self, job: &mut RestoreJob<'_>) -> Result<(), EngineError> {
        let (repo, snap, req) = (job.repo, job.snap, job.req);
        let (manifest, artifact) = job.streamed()?;
        let target = req.to.clone().unwrap_or_else(|| self.spec.path.clone());
        if req.to.is_some() && target.exists() && !req.yes {
            return Err(EngineError::usage(
                format!("restore into {}: the file exists", target.display()),
                Some(
                    "add --yes to replace it (it is kept beside as a safety copy), or choose another path",
                ),
            ));
        }
        let safety = job.in_place() && !req.skip_safety_snapshot && target.exists();
        if safety {
            job.plan_safety_copy();
        }
        job.plan(RestoreAction::ReplacePath {
            path: target.clone(),
        });
        if req.dry_run {
            return Ok(());
        }
        if safety {
            // A damaged database is kept as it is: the file with its -wal and -shm.
            let raw: Vec<PathBuf> = ["", "-wal", "-shm"]
                .iter()
                .map(|suffix| {
                    let mut p = target.as_os_str().to_owned();
                    p.push(suffix);
                    PathBuf::from(p)
                })
                .collect();
            job.safety_copy(&raw, None)?;
        }
        let done = self
            .sqlite_source()
            .restore(&target, &manifest.tables, |w| {
                repo.dump_artifact(snap, &manifest, &artifact, w)
            })?;
        job.report.bytes = done.bytes;
        if let (Some(d), Some(k)) = (&mut job.report.damaged, &done.kept) {
            d.kept = Some(k.display().to_string());
        }
        job.report.kept = done.kept;
        Ok(())
    }

    fn sandbox(&self, job: &mut SandboxJob<'_>) -> Result<Found, String> {
        let mut found = Found {
            bytes: job.fetch()?,
            ..Found::default()
        };
        let db = job.only_artifact()?;
        let facts = lifeboat_sources::sqlite::inspect(&db).map_err(|e| e.to_string())?;
        job.loaded();
        if facts.integrity != "ok" {
            return Err(format!("integrity check: {}", facts.integrity));
        }
        found.compared = Some(compare_counts(
            "tables",
            &facts.tables,
            &job.manifest.tables,
        )?);
        found.checks = sql_checks(&self.asset.checks, |sql| {
            lifeboat_sources::sqlite::query_first(&db, sql).map_err(|e| e.to_string())
        });
        job.verified();
        Ok(found)
    }

    fn inspect_live(
        &self,
        manifest: Option<&Manifest>,
        _base: &Path,
    ) -> Result<LiveCheck, EngineError> {
        let path = &self.spec.path;
        let mut out = LiveCheck::default();
        let facts = lifeboat_sources::sqlite::inspect(path).map_err(|e| {
            EngineError::usage(
                format!(
                    "check asset {}: read {}: {e}",
                    self.asset.name,
                    path.display()
                ),
                None,
            )
        })?;
        if facts.integrity != "ok" {
            out.difference = Some(format!("integrity check: {}", facts.integrity));
        } else if let Some(m) = manifest {
            compare_live("tables", &facts.tables, &m.tables, false, &mut out);
        }
        out.checks = sql_checks(&self.asset.checks, |sql| {
            lifeboat_sources::sqlite::query_first(path, sql).map_err(|e| e.to_string())
        });
        Ok(out)
    }

    fn describe(&self) -> Description {
        Description {
            location: self.spec.path.display().to_string(),
            secrets: Vec::new(),
            by_hand: format!(
                "stop the application, then copy the database file from DIR/{}/data/ to {} (remove its -wal and -shm)",
                self.asset.name,
                self.spec.path.display()
            ),
        }
    }
}

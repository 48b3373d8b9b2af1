//! `postgres-cluster` assets: a whole PostgreSQL cluster, for restores to any point in time.
//!
//! A backup is a physical base backup (`pg_basebackup`, streamed as one tar into the
//! repository, see `lifeboat_sources::postgres::ClusterSource`). Between base backups,
//! PostgreSQL's `archive_command` pushes each WAL segment into the repository (`wal.rs`, the
//! layout in `archive.rs`). A restore extracts the base backup, replays the archived WAL to the
//! target and checks the server got there (`recovery.rs`), then moves the result into a new
//! directory or swaps it in for the live one (`restore.rs`); drills recover in a sandbox.

mod archive;
mod delta;
mod ledger;
mod recovery;
mod restore;
mod stream;
mod wal;

use std::{fs, path::Path};

use lifeboat_core::Manifest;
use lifeboat_plan::{PostgresClusterSpec, ResolvedAsset};
use lifeboat_repo::{Decision, Repo, SnapshotInfo};
use lifeboat_sources::{
    Source, SourceError,
    postgres::{ClusterSource, Conn},
};

use archive::WAL_PREFIX;
pub(crate) use archive::wal_asset;
pub(crate) use recovery::Recovery;
pub use wal::{Compacted, PushOutcome, WalStatus};

use super::{
    contract::{Description, Kind, Lint},
    job::{RestoreJob, SandboxJob},
};
use crate::{
    EngineError,
    proof::{Found, LiveCheck, sql_checks},
};

pub(super) struct Cluster<'a> {
    pub asset: &'a ResolvedAsset,
    pub spec: &'a PostgresClusterSpec,
}

impl Cluster<'_> {
    fn conn(&self) -> Result<Conn, SourceError> {
        let unsupported = |reason: String| SourceError::Unsupported {
            asset: self.asset.name.clone(),
            reason,
        };
        let password = self
            .spec
            .password
            .as_ref()
            .map(crate::secrets::read_secret)
            .transpose()
            .map_err(|r| unsupported(format!("read the password: {r}")))?;
        Conn::parse(self.spec.url.expose(), password)
            .map_err(|e| unsupported(format!("{}: {e}", self.spec.url)))
    }

    fn cluster_source(&self) -> Result<ClusterSource, SourceError> {
        Ok(ClusterSource {
            asset: self.asset.name.clone(),
            conn: self.conn()?,
        })
    }

    /// The role recovery checks connect as: the asset's, which exists in the cluster.
    pub(super) fn role(&self) -> String {
        url::Url::parse(self.spec.url.expose())
            .ok()
            .map(|u| u.username().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres".to_owned())
    }

    fn database(&self) -> String {
        self.conn()
            .map(|c| c.database())
            .unwrap_or_else(|_| "postgres".to_owned())
    }
}

impl Kind for Cluster<'_> {
    fn source(&self) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(self.cluster_source()?))
    }

    fn restore(&self, job: &mut RestoreJob<'_>) -> Result<(), EngineError> {
        restore::restore(self, job)
    }

    fn sandbox(&self, job: &mut SandboxJob<'_>) -> Result<Found, String> {
        let base = recovery::Base::read(job.repo, job.snap).map_err(|e| e.to_string())?;
        let archive =
            archive::Archive::load(job.repo, &self.asset.name).map_err(|e| e.to_string())?;
        // A directory the server's user can reach: the job's own may be private.
        let work = tempfile::Builder::new()
            .prefix(".lifeboat-drill-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        job.phases.fetch = job.clock.lap();
        let done = recovery::recover(
            job.repo,
            &archive,
            &base,
            &Recovery::Latest,
            &work,
            &self.role(),
            false,
            false,
        )
        .map_err(|e| e.to_string());
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                let _ = fs::remove_dir_all(&work);
                return Err(e);
            }
        };
        job.loaded();
        // The recovered cluster is the one that was backed up.
        let recorded = job
            .manifest
            .consistency
            .get(lifeboat_sources::postgres::cluster_facts::SYSTEM_ID)
            .cloned()
            .unwrap_or_default();
        let system = done
            .sandbox
            .psql(
                "postgres",
                "SELECT system_identifier FROM pg_control_system()",
            )
            .map_err(|e| e.reason)?;
        if system != recorded {
            return Err(format!(
                "the recovered cluster is system {system}, the manifest records {recorded}"
            ));
        }
        let db = self.database();
        let checks = sql_checks(&self.asset.checks, |sql| {
            done.sandbox
                .psql(&db, sql)
                .map(|out| out.lines().next().map(str::to_owned))
                .map_err(|e| e.reason)
        });
        job.verified();
        Ok(Found {
            bytes: done.bytes,
            compared: Some(format!(
                "system {system} as recorded, {} archived WAL file(s) replayed",
                done.wal_files
            )),
            checks,
            reached: done.last_commit,
        })
    }

    fn inspect_live(
        &self,
        manifest: Option<&Manifest>,
        _base: &Path,
    ) -> Result<LiveCheck, EngineError> {
        let source = self.cluster_source()?;
        let facts = source.facts()?;
        let mut out = LiveCheck::default();
        let archiving = if facts.archive_mode != "off" && facts.archive_command.contains("wal push")
        {
            "on"
        } else {
            "off"
        };
        let recorded = manifest.and_then(|m| {
            m.consistency
                .get(lifeboat_sources::postgres::cluster_facts::SYSTEM_ID)
        });
        match recorded {
            Some(id) if *id != facts.system_id => {
                out.difference = Some(format!(
                    "the live cluster is system {}, the snapshot's is {id}: another cluster answers at {}",
                    facts.system_id, self.spec.url
                ));
            }
            Some(_) => {
                out.compared = Some(format!(
                    "system {} as recorded, WAL archiving into Lifeboat {archiving}",
                    facts.system_id
                ));
            }
            None => {
                out.compared = Some(format!(
                    "{} (system {}), WAL archiving into Lifeboat {archiving}",
                    facts.version, facts.system_id
                ));
            }
        }
        let conn = source.conn.clone();
        let psql = lifeboat_sources::postgres::client_versions()
            .into_iter()
            .next()
            .map(|c| c.program("psql"));
        out.checks = sql_checks(&self.asset.checks, |sql| {
            let psql = psql.as_deref().ok_or("no psql installed")?;
            super::postgres::first_value(psql, &conn, sql)
        });
        Ok(out)
    }

    fn lint_restore_step(&self, to: bool, tables: bool) -> Option<Lint> {
        let asset = &self.asset.name;
        if tables {
            return Some(Lint {
                message: format!("picks tables of {asset}, a whole cluster"),
                hint: "restore tables from a `postgres` asset of the database".to_owned(),
            });
        }
        (!to && self.spec.data_dir.is_none()).then(|| Lint {
            message: format!("restores the cluster {asset} in place, and the plan does not say where its data directory is"),
            hint: format!("add data-dir = \"/var/lib/postgresql/15/main\" to [assets.{asset}], or give the step to = \"/var/lib/postgresql/restored\""),
        })
    }

    fn recovers_to_a_point(&self) -> bool {
        true
    }

    fn companion(&self) -> Option<String> {
        Some(wal_asset(&self.asset.name))
    }

    fn dependents(
        &self,
        repo: &Repo,
        kept: &[&SnapshotInfo],
    ) -> Result<Option<(String, Vec<Decision>)>, EngineError> {
        let decisions = wal_decisions(repo, &self.asset.name, kept)?;
        Ok(Some((wal_asset(&self.asset.name), decisions)))
    }

    fn integrity(&self, repo: &Repo) -> Result<Vec<(String, String)>, EngineError> {
        Ok(wal_gaps(repo, &self.asset.name)?
            .into_iter()
            .map(|(first, last)| {
                (
                    format!(
                        "asset {}: WAL {first} to {last} is missing from the archive: no restore passes {first}",
                        self.asset.name
                    ),
                    "check the server's archive_command and `lifeboat wal status`; a new base backup (`lifeboat backup`) starts an unbroken chain again".to_owned(),
                )
            })
            .collect())
    }

    fn describe(&self) -> Description {
        Description {
            location: format!("{} (whole cluster)", self.spec.url),
            secrets: self.spec.password.iter().cloned().collect(),
            by_hand: format!(
                "make an empty directory NEW (mode 700, owned by postgres) and run tar -xf DIR/{0}/data/base.tar -C NEW; that is the cluster as of the backup's end. For a later point, also restore the snapshots of `{1}{0}` (the archived WAL files), touch NEW/recovery.signal and set restore_command = 'cp /path/to/the/wal/files/%f %p' and recovery_target_time in NEW/postgresql.auto.conf before starting it",
                self.asset.name, WAL_PREFIX
            ),
        }
    }
}

/// Which batches of `asset`'s archive retention keeps, given the base backups it keeps: every
/// file from the oldest kept base backup's first segment on, every timeline history file, and
/// the newest stored unfinished segment.
/// With no base backup kept, the whole archive stays (nothing says what it is needed for).
///
/// # Errors
/// The repository cannot be read.
fn wal_decisions(
    repo: &Repo,
    asset: &str,
    kept_bases: &[&SnapshotInfo],
) -> Result<Vec<Decision>, EngineError> {
    let archive = archive::Archive::load(repo, asset)?;
    let oldest = kept_bases.iter().min_by_key(|s| s.time);
    let from = match oldest {
        Some(snap) => Some((
            recovery::Base::read(repo, snap)?.first_wal(),
            snap.short_id.clone(),
        )),
        None => None,
    };
    let mut out = Vec::new();
    for batch in archive.batches.iter().rev() {
        let (keep, reason) = match &from {
            None => (true, "no base backup is kept".to_owned()),
            Some((first, base)) if batch.last.as_str() >= first.as_str() => {
                (true, format!("needed by base backup {base}"))
            }
            Some((first, base)) => {
                let manifest = repo.read_manifest(&batch.snap)?;
                if manifest
                    .artifacts
                    .iter()
                    .any(|a| a.name.ends_with(".history"))
                {
                    (true, "holds a timeline history file".to_owned())
                } else {
                    (
                        false,
                        format!(
                            "older than {first}, where the oldest base backup kept ({base}) starts"
                        ),
                    )
                }
            }
        };
        out.push(Decision {
            id: batch.snap.id.clone(),
            short_id: batch.snap.short_id.clone(),
            time: batch.snap.time,
            keep,
            reasons: vec![reason],
        });
    }
    // A stream's stored unfinished segments: only the one a recovery would use stays (a
    // copy repository receives a few of them with every copy and never replaces them).
    let tail = archive.tail()?.map(|(b, _)| b.snap.id.clone());
    for batch in archive.partials.iter().rev() {
        let keep = tail.as_ref() == Some(&batch.snap.id);
        out.push(Decision {
            id: batch.snap.id.clone(),
            short_id: batch.snap.short_id.clone(),
            time: batch.snap.time,
            keep,
            reasons: vec![if keep {
                "the newest unfinished segment".to_owned()
            } else {
                "an unfinished segment stored again since, or finished".to_owned()
            }],
        });
    }
    Ok(out)
}

/// Runs of WAL segments missing from `asset`'s archive after its oldest base backup: a
/// restore cannot replay past the first of them.
///
/// # Errors
/// The repository cannot be read.
fn wal_gaps(repo: &Repo, asset: &str) -> Result<Vec<(String, String)>, EngineError> {
    let oldest = repo
        .snapshots()?
        .into_iter()
        .filter(|s| s.asset.as_deref() == Some(asset) && !s.is_safety())
        .min_by_key(|s| s.time);
    let Some(oldest) = oldest else {
        return Ok(Vec::new());
    };
    let base = recovery::Base::read(repo, &oldest)?;
    let archive = archive::Archive::load(repo, asset)?;
    let files = archive.files_from(&base.first_wal())?;
    let start = lifeboat_core::wal::segment_of(base.start, base.segment_size);
    Ok(archive::gaps(files.keys(), base.segment_size, start))
}

//! The jobs behind each command.

use std::{io::Write, path::PathBuf};

use jiff::Timestamp;
use lifeboat_core::{AssetKind, BackupInput, Exit, RepoLocation};
use lifeboat_plan::{PasswordSource, ResolvedAsset, ResolvedRepository};
use lifeboat_repo::{Decision, LockKind, Progress, Repo, RepoError, SnapshotInfo, decide};
use serde::Serialize;

use crate::{
    EngineError,
    copy::{CopyOutcome, CopyStatus},
    engine::Engine,
    kinds::kind_for,
    secrets::create_password_file,
};

#[derive(Debug, Serialize)]
pub struct InitReport {
    pub repository: String,
    pub location: String,
    /// Set when `init` generated the embedded default's password file.
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct AssetBackup {
    pub asset: String,
    pub kind: AssetKind,
    pub ok: bool,
    pub snapshot: Option<String>,
    pub bytes: u64,
    pub added_bytes: u64,
    pub duration_secs: f64,
    pub artifacts: Vec<lifeboat_core::ArtifactRecord>,
    pub files: Option<u64>,
    pub warnings: Vec<String>,
    /// The snapshot's size lies outside the asset's `size` bounds: why (also a warning).
    pub size_breach: Option<String>,
    pub error: Option<String>,
    pub hint: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub repository: String,
    pub assets: Vec<AssetBackup>,
    /// One per repository copying the primary, directly or through another copy.
    pub copies: Vec<CopyOutcome>,
}

impl BackupReport {
    /// 0 when every asset is backed up cleanly, 3 when some failed or were partial, 1 when all
    /// failed.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        let failed = self.assets.iter().filter(|a| !a.ok).count();
        let partial = self
            .assets
            .iter()
            .filter(|a| a.ok && !a.warnings.is_empty())
            .count();
        let exit = if failed == self.assets.len() && failed > 0 {
            Exit::Error
        } else if failed > 0 || partial > 0 {
            Exit::Partial
        } else {
            Exit::Ok
        };
        exit.code()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AssetStatus {
    pub asset: String,
    pub kind: AssetKind,
    pub priority: String,
    pub last_snapshot: Option<String>,
    pub last_time: Option<Timestamp>,
    /// Age of the newest point a restore reaches (for a cluster, its newest archived WAL).
    pub age_secs: Option<u64>,
    pub rpo_secs: u64,
    pub rto_secs: u64,
    pub breach: bool,
    pub snapshots: usize,
    /// Bytes read from the source by the newest snapshot.
    pub last_bytes: Option<u64>,
    /// Seconds the newest snapshot's backup took.
    pub last_duration_secs: Option<f64>,
    /// Restore time forecast from past drills and the newest snapshot's size.
    pub rto_forecast_secs: Option<f64>,
    /// The asset in each copy repository; a copy lagging more than the RPO is a breach.
    pub copies: Vec<CopyStatus>,
    /// The forecast exceeds the RTO target.
    pub forecast_over_target: bool,
}

/// One repository's size and, for a `copy-from` target, how far it lags behind its source.
#[derive(Debug, Clone, Serialize)]
pub struct RepositoryStats {
    pub repository: String,
    /// Bytes in the store; `None` when it could not be listed.
    pub stored_bytes: Option<u64>,
    pub snapshots: Option<usize>,
    /// The repository it copies from (`copy-from`).
    pub copy_from: Option<String>,
    /// Snapshots of the source this one does not hold yet.
    pub copy_pending: Option<usize>,
    /// Age of the oldest snapshot of the source not copied yet, in seconds; 0 when up to date.
    pub copy_lag_secs: Option<u64>,
    /// Why the figures are missing.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ForgetReport {
    /// The repository the rules were applied in.
    pub repository: String,
    pub asset: String,
    pub decisions: Vec<Decision>,
}

impl Engine {
    /// Creates the plan's repositories that do not exist yet; ones that exist are left as
    /// they are (after a host is lost, `init` recreates the local repository beside the
    /// surviving copy). New repositories take the chunker parameters of an existing one, so
    /// copies between them stay deduplicated. For the embedded default, also generates its
    /// password file.
    ///
    /// # Errors
    /// When every repository exists already, or one cannot be opened or created.
    pub fn init(&self) -> Result<Vec<InitReport>, EngineError> {
        let mut existing: Vec<Repo> = Vec::new();
        let mut missing: Vec<&ResolvedRepository> = Vec::new();
        for repo in &self.plan().repositories {
            if repo.embedded_default
                && let PasswordSource::DefaultFile(path) = &repo.password
                && !path.exists()
            {
                if let RepoLocation::Local { path: repo_path } = &repo.location
                    && repo_path.join("config").exists()
                {
                    return Err(RepoError::AlreadyExists {
                        name: repo.name.clone(),
                        location: repo_path.display().to_string(),
                    }
                    .into());
                }
                missing.push(repo);
                continue;
            }
            let config = self.repo_config(repo)?;
            match Repo::open(&config, self.progress()) {
                Ok(opened) => existing.push(opened),
                Err(RepoError::NotFound { .. }) => missing.push(repo),
                Err(e) => return Err(e.into()),
            }
        }
        if missing.is_empty() {
            let first = self.plan().primary();
            return Err(RepoError::AlreadyExists {
                name: first.name.clone(),
                location: first.location.to_string(),
            }
            .into());
        }
        let mut reports = Vec::new();
        for repo in missing {
            let mut password_file = None;
            if repo.embedded_default
                && let PasswordSource::DefaultFile(path) = &repo.password
                && !path.exists()
            {
                create_password_file(path)?;
                password_file = Some(path.clone());
            }
            let config = self.repo_config(repo)?;
            // The repository it copies or is copied from, else any: same chunker everywhere.
            let like = existing
                .iter()
                .find(|r| {
                    repo.copy_from.as_deref() == Some(r.name())
                        || self.repository(r.name()).is_ok_and(|other| {
                            other.copy_from.as_deref() == Some(repo.name.as_str())
                        })
                })
                .or_else(|| existing.first());
            let opened = match like {
                Some(src) => Repo::init_like(&config, src, self.progress())?,
                None => Repo::init(&config, self.progress())?,
            };
            reports.push(InitReport {
                repository: repo.name.clone(),
                location: opened.location(),
                password_file,
            });
            existing.push(opened);
        }
        Ok(reports)
    }

    /// Backs up the named assets (all when empty) into the primary repository, one snapshot each.
    /// An asset that fails does not stop the others.
    ///
    /// # Errors
    /// Unknown asset names, or when the repository cannot be opened.
    pub fn backup(&self, names: &[String]) -> Result<BackupReport, EngineError> {
        let assets = self.select(names)?;
        self.check_free_space()?;
        let repo = self.open_primary()?;
        // Held for the whole job, so forget cannot remove the parent snapshots listed here;
        // taken before any source starts, so a wait never holds a database transaction open.
        let names: Vec<&str> = assets.iter().map(|a| a.name.as_str()).collect();
        let lock = repo.lock(LockKind::Shared, &format!("backup {}", names.join(", ")))?;
        let snapshots = repo.snapshots()?;
        let mut ordered = assets;
        ordered.sort_by_key(|a| a.priority);
        let mut report = BackupReport {
            repository: repo.name().to_owned(),
            assets: Vec::new(),
            copies: Vec::new(),
        };
        for asset in ordered {
            let parent = snapshots
                .iter()
                .rev()
                .find(|s| s.asset.as_deref() == Some(&asset.name) && !s.is_safety());
            let result = self.backup_locked(&repo, &lock, asset, None, parent);
            report.assets.push(match result {
                Ok(outcome) => {
                    tracing::info!(asset = %asset.name, snapshot = %outcome.snapshot.short_id, "backed up");
                    let bytes = outcome.manifest.payload_bytes();
                    let size_breach = crate::verify::size_breach(asset, bytes);
                    let mut warnings = outcome.manifest.warnings.clone();
                    warnings.extend(size_breach.iter().map(|(text, _)| text.clone()));
                    AssetBackup {
                        asset: asset.name.clone(),
                        kind: asset.kind(),
                        ok: true,
                        snapshot: Some(outcome.snapshot.id.clone()),
                        bytes,
                        added_bytes: outcome.added_bytes,
                        duration_secs: outcome.snapshot.duration_secs,
                        artifacts: outcome.manifest.artifacts.clone(),
                        files: outcome.manifest.files.as_ref().map(|f| f.files),
                        warnings,
                        size_breach: size_breach.map(|(text, _)| text),
                        error: None,
                        hint: None,
                    }
                }
                Err(err) => {
                    tracing::debug!(asset = %asset.name, "backup failed: {err}");
                    AssetBackup {
                        asset: asset.name.clone(),
                        kind: asset.kind(),
                        ok: false,
                        snapshot: None,
                        bytes: 0,
                        added_bytes: 0,
                        duration_secs: 0.0,
                        artifacts: Vec::new(),
                        files: None,
                        warnings: Vec::new(),
                        size_breach: None,
                        hint: err.hint(),
                        error: Some(err.to_string()),
                    }
                }
            });
        }
        // Copies catch up on everything they lack, not only this run's snapshots, so a copy
        // that failed last time is mended by the next backup.
        report.copies = self.copy_onward(&repo);
        Ok(report)
    }

    /// `[plan] min-free`: refuses to start a backup when the spool directory or a local
    /// primary repository has less free space, and raises `disk-space`.
    fn check_free_space(&self) -> Result<(), EngineError> {
        let Some(min) = self.plan().min_free else {
            return Ok(());
        };
        let mut places = vec![("the spool directory", lifeboat_core::spool_dir())];
        if let RepoLocation::Local { path } = &self.primary().location {
            places.push(("the repository", path.clone()));
        }
        for (what, path) in places {
            // The repository may not exist yet (init comes later): its nearest ancestor.
            let Some(existing) = path.ancestors().find(|p| p.exists()) else {
                continue;
            };
            let free = match nix::sys::statvfs::statvfs(existing) {
                Ok(st) => st.blocks_available().saturating_mul(st.fragment_size()),
                Err(e) => {
                    tracing::warn!("free space of {}: {e}", existing.display());
                    continue;
                }
            };
            if free < min {
                let summary = format!(
                    "{what} {} has {} free, less than the plan's min-free of {}",
                    path.display(),
                    crate::human_bytes(free),
                    crate::human_bytes(min)
                );
                self.raise(&crate::notify::Event::new(
                    lifeboat_plan::NotifyEvent::DiskSpace,
                    &self.plan().name,
                    "backup",
                    None,
                    format!("backup not started: {summary}"),
                ));
                return Err(EngineError::usage(
                    format!("backup not started: {summary}"),
                    Some(
                        "free space there (or point LIFEBOAT_SPOOL_DIR elsewhere), or lower [plan] min-free",
                    ),
                ));
            }
        }
        Ok(())
    }

    /// One snapshot of `asset` under a lock of its own (a safety snapshot before a restore).
    pub(crate) fn backup_one(
        &self,
        repo: &Repo,
        asset: &ResolvedAsset,
        reason: Option<&str>,
        parent: Option<&SnapshotInfo>,
    ) -> Result<lifeboat_repo::BackupOutcome, EngineError> {
        let lock = repo.lock(LockKind::Shared, &format!("backup {}", asset.name))?;
        self.backup_locked(repo, &lock, asset, reason, parent)
    }

    fn backup_locked(
        &self,
        repo: &Repo,
        lock: &lifeboat_repo::RepoLock,
        asset: &ResolvedAsset,
        reason: Option<&str>,
        parent: Option<&SnapshotInfo>,
    ) -> Result<lifeboat_repo::BackupOutcome, EngineError> {
        let kind = kind_for(asset);
        let source = kind.source()?;
        source.preflight()?;
        // Containers stopped or paused for the read: put back whatever happens next.
        let held = kind.hold_for_backup()?;
        let stored = (|| {
            let (payload, mut facts) = source.backup()?;
            if let Some(h) = &held {
                facts.consistency.insert("held".into(), h.what.clone());
            }
            let input = BackupInput {
                plan: self.plan().name.clone(),
                asset: asset.name.clone(),
                kind: asset.kind(),
                source: source.identity(),
                reason: reason.map(str::to_owned),
                payload,
                facts,
            };
            Ok::<_, EngineError>(repo.backup(lock, input, parent)?)
        })();
        let resumed = held.map_or(Ok(()), crate::kinds::Held::resume);
        let outcome = stored?;
        resumed.map_err(|e| {
            EngineError::usage(
                format!(
                    "asset {}: snapshot {} is stored, but {e}",
                    asset.name, outcome.snapshot.short_id
                ),
                e.hint().as_deref(),
            )
        })?;
        Ok(outcome)
    }

    /// Snapshots of the primary repository, oldest first, optionally of one asset.
    ///
    /// # Errors
    /// Unknown asset, or the repository cannot be read.
    pub fn snapshots(&self, asset: Option<&str>) -> Result<Vec<SnapshotInfo>, EngineError> {
        if let Some(a) = asset {
            self.asset(a)?;
        }
        let repo = self.open_primary()?;
        let all = repo.snapshots()?;
        Ok(match asset {
            Some(a) => all
                .into_iter()
                .filter(|s| s.asset.as_deref() == Some(a))
                .collect(),
            None => all,
        })
    }

    /// Writes one artifact of a snapshot to `out`, checked against the manifest's checksum.
    ///
    /// # Errors
    /// Unknown asset or artifact, a checksum mismatch, or a repository error.
    pub fn dump(
        &self,
        asset: &str,
        snapshot: Option<&str>,
        before: Option<&str>,
        artifact: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64, EngineError> {
        let a = self.asset(asset)?;
        let repo = self.open_primary()?;
        let _lock = repo.lock(LockKind::Shared, &format!("dump {asset}"))?;
        let snap = self.pick_snapshot(&repo, asset, snapshot, before)?;
        let manifest = repo.read_manifest(&snap)?;
        let name = match artifact {
            Some(n) => n.to_owned(),
            None => match manifest.artifacts.as_slice() {
                [one] => one.name.clone(),
                [] => {
                    return Err(EngineError::usage(
                        format!(
                            "asset {asset} ({}) has no streamed artifact to dump",
                            a.kind()
                        ),
                        Some("use `lifeboat restore --to DIR` for files assets"),
                    ));
                }
                many => {
                    return Err(EngineError::usage(
                        format!(
                            "snapshot {} of asset {asset} has several artifacts",
                            snap.short_id
                        ),
                        Some(&format!(
                            "name one: {}",
                            many.iter()
                                .map(|m| m.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    ));
                }
            },
        };
        Ok(repo.dump_artifact(&snap, &manifest, &name, out)?)
    }

    /// Retention per asset: which snapshots to keep and why; with `apply`, forgets the rest.
    ///
    /// # Errors
    /// When the repository cannot be read or written.
    pub fn forget(&self, apply: bool) -> Result<Vec<ForgetReport>, EngineError> {
        let repo = self.open_primary()?;
        self.forget_in(&repo, self.primary(), apply)
    }

    /// [`Self::forget`] in every repository of the plan, each with its own rules: the
    /// daemon's scheduled retention.
    ///
    /// # Errors
    /// The first repository that cannot be opened, locked or written.
    pub fn forget_everywhere(&self, apply: bool) -> Result<Vec<ForgetReport>, EngineError> {
        let mut reports = Vec::new();
        for r in &self.plan().repositories {
            let repo = self.open_repository(&r.name)?;
            reports.extend(self.forget_in(&repo, r, apply)?);
        }
        Ok(reports)
    }

    /// Applies each asset's retention in `repo`, or the repository's own rules when it has
    /// some.
    fn forget_in(
        &self,
        repo: &Repo,
        config: &ResolvedRepository,
        apply: bool,
    ) -> Result<Vec<ForgetReport>, EngineError> {
        let lock = if apply {
            repo.lock(LockKind::Exclusive, "forget")?
        } else {
            repo.lock(LockKind::Shared, "forget --dry-run")?
        };
        let snapshots = repo.snapshots()?;
        let now = Timestamp::now();
        let mut reports = Vec::new();
        for asset in &self.plan().assets {
            let own: Vec<SnapshotInfo> = snapshots
                .iter()
                .filter(|s| {
                    s.asset.as_deref() == Some(&asset.name)
                        && s.plan.as_deref() == Some(&self.plan().name)
                })
                .cloned()
                .collect();
            let rules = config.retention.as_ref().unwrap_or(&asset.retention);
            let mut decisions = decide(&own, rules, now);
            if let Some(lock) = config.object_lock() {
                keep_locked(&mut decisions, lock, now);
            }
            if apply {
                forget_removed(repo, &lock, &decisions)?;
            }
            // What lives and dies with the asset's snapshots (a cluster's WAL) follows them.
            let kept: Vec<&SnapshotInfo> = own
                .iter()
                .filter(|s| !s.is_safety() && decisions.iter().any(|d| d.keep && d.id == s.id))
                .collect();
            let dependents = kind_for(asset).dependents(repo, &kept)?;
            reports.push(ForgetReport {
                repository: config.name.clone(),
                asset: asset.name.clone(),
                decisions,
            });
            if let Some((name, decisions)) = dependents {
                if apply {
                    forget_removed(repo, &lock, &decisions)?;
                }
                reports.push(ForgetReport {
                    repository: config.name.clone(),
                    asset: name,
                    decisions,
                });
            }
        }
        Ok(reports)
    }

    /// Removes unreferenced data from the primary repository.
    ///
    /// # Errors
    /// When the repository cannot be read or written.
    pub fn prune(&self, dry_run: bool) -> Result<lifeboat_repo::PruneSummary, EngineError> {
        let repo = self.open_primary()?;
        let lock = repo.lock(LockKind::Exclusive, "prune")?;
        Ok(repo.prune(&lock, dry_run)?)
    }

    /// [`Self::prune`] in every repository of the plan, by name.
    ///
    /// # Errors
    /// The first repository that cannot be opened, locked or written.
    pub fn prune_everywhere(
        &self,
        dry_run: bool,
    ) -> Result<Vec<(String, lifeboat_repo::PruneSummary)>, EngineError> {
        let mut out = Vec::new();
        for r in &self.plan().repositories {
            let repo = self.open_repository(&r.name)?;
            let lock = repo.lock(LockKind::Exclusive, "prune")?;
            out.push((r.name.clone(), repo.prune(&lock, dry_run)?));
        }
        Ok(out)
    }

    /// Size of each repository and, for `copy-from` targets, what has not been copied yet
    /// (snapshots matched by their original id, as restic's copy keeps it). A repository that
    /// cannot be opened gets its error and no figures.
    #[must_use]
    pub fn repository_stats(&self) -> Vec<RepositoryStats> {
        type Opened = Result<(Repo, Vec<SnapshotInfo>), EngineError>;
        let opened: Vec<(String, Opened)> = self
            .plan()
            .repositories
            .iter()
            .map(|r| {
                let repo = self
                    .repo_config(r)
                    .and_then(|c| Ok(Repo::open(&c, &Progress::hidden())?))
                    .and_then(|repo| {
                        let snaps = repo.snapshots()?;
                        Ok((repo, snaps))
                    });
                (r.name.clone(), repo)
            })
            .collect();
        let now = Timestamp::now();
        self.plan()
            .repositories
            .iter()
            .zip(&opened)
            .map(|(r, (_, this))| {
                let mut stats = RepositoryStats {
                    repository: r.name.clone(),
                    stored_bytes: None,
                    snapshots: None,
                    copy_from: r.copy_from.clone(),
                    copy_pending: None,
                    copy_lag_secs: None,
                    error: None,
                };
                let (repo, snaps) = match this {
                    Ok(x) => x,
                    Err(e) => {
                        stats.error = Some(e.to_string());
                        return stats;
                    }
                };
                stats.snapshots = Some(snaps.len());
                match repo.stored_bytes() {
                    Ok(b) => stats.stored_bytes = Some(b),
                    Err(e) => stats.error = Some(e.to_string()),
                }
                let source = r
                    .copy_from
                    .as_ref()
                    .and_then(|from| opened.iter().find(|(n, _)| n == from))
                    .and_then(|(_, o)| o.as_ref().ok());
                if let Some((_, from)) = source {
                    // A copy keeps its source's time and tags (and content), not its id.
                    let key = |s: &SnapshotInfo| (s.time, s.tags.join(","));
                    let have: std::collections::HashSet<_> = snaps.iter().map(key).collect();
                    let missing: Vec<&SnapshotInfo> =
                        from.iter().filter(|s| !have.contains(&key(s))).collect();
                    stats.copy_pending = Some(missing.len());
                    stats.copy_lag_secs = Some(missing.first().map_or(0, |s| {
                        u64::try_from(now.as_second() - s.time.as_second()).unwrap_or(0)
                    }));
                }
                stats
            })
            .collect()
    }

    /// Per asset: newest snapshot, its age against the asset's RPO, and whether that is a breach.
    ///
    /// # Errors
    /// When the repository cannot be read.
    pub fn status(&self) -> Result<Vec<AssetStatus>, EngineError> {
        let repo = self.open_primary()?;
        let snapshots = repo.snapshots()?;
        let mut listed = vec![(repo.name().to_owned(), Ok(snapshots.clone()))];
        listed.extend(self.list_copies(repo.name()));
        let now = Timestamp::now();
        // Forecasts are a bonus: a catalog that cannot be read must not hide the status.
        let drills = self.recent_drills(10).unwrap_or_else(|e| {
            tracing::warn!("restore forecasts unavailable: {e}");
            Vec::new()
        });
        Ok(self
            .plan()
            .assets
            .iter()
            .map(|asset| {
                let own: Vec<&SnapshotInfo> = snapshots
                    .iter()
                    .filter(|s| s.asset.as_deref() == Some(&asset.name) && !s.is_safety())
                    .collect();
                let last = own.last();
                // A cluster restores up to its newest archived WAL, not only its base backup.
                let companion = kind_for(asset).companion();
                let newest_point = last.map(|s| {
                    snapshots
                        .iter()
                        .filter(|c| companion.is_some() && c.asset == companion)
                        .map(|c| c.time)
                        .fold(s.time, Timestamp::max)
                });
                // WAL waiting for the archive (it fails or falls behind) is at risk since it
                // was written, however recent the last push.
                let newest_point =
                    newest_point.map(|t| self.waiting_since(&asset.name).map_or(t, |w| w.min(t)));
                let age = newest_point
                    .map(|t| u64::try_from(now.as_second() - t.as_second()).unwrap_or(0));
                let forecast =
                    last.and_then(|s| crate::report::forecast_rto(&drills, &asset.name, s.bytes));
                AssetStatus {
                    asset: asset.name.clone(),
                    kind: asset.kind(),
                    priority: asset.priority.to_string(),
                    last_snapshot: last.map(|s| s.short_id.clone()),
                    last_time: last.map(|s| s.time),
                    age_secs: age,
                    rpo_secs: asset.rpo.as_secs(),
                    rto_secs: asset.rto.as_secs(),
                    breach: age.is_none_or(|a| a > asset.rpo.as_secs()),
                    snapshots: own.len(),
                    last_bytes: last.map(|s| s.bytes),
                    last_duration_secs: last.map(|s| s.duration_secs),
                    rto_forecast_secs: forecast,
                    copies: self.copy_status(
                        &asset.name,
                        asset.rpo.as_secs(),
                        repo.name(),
                        &listed,
                    ),
                    forecast_over_target: forecast.is_some_and(|f| f > asset.rto.as_secs() as f64),
                }
            })
            .collect())
    }
}

/// Forgets the snapshots `decisions` do not keep.
fn forget_removed(
    repo: &Repo,
    lock: &lifeboat_repo::RepoLock,
    decisions: &[Decision],
) -> Result<(), EngineError> {
    let remove: Vec<String> = decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| d.id.clone())
        .collect();
    if !remove.is_empty() {
        repo.forget(lock, &remove)?;
    }
    Ok(())
}

/// In a bucket with Object Lock a snapshot younger than the lock cannot be removed: it is
/// kept, and the decision says until when.
fn keep_locked(
    decisions: &mut [lifeboat_repo::Decision],
    lock: std::time::Duration,
    now: Timestamp,
) {
    let lock = jiff::SignedDuration::from_secs(i64::try_from(lock.as_secs()).unwrap_or(i64::MAX));
    for d in decisions.iter_mut().filter(|d| !d.keep) {
        let until = d.time.saturating_add(lock).unwrap_or(d.time);
        if until > now {
            d.keep = true;
            d.reasons = vec![format!(
                "object lock until {}",
                until.strftime("%Y-%m-%d %H:%M UTC")
            )];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::keep_locked;

    #[test]
    fn a_snapshot_younger_than_the_lock_is_kept_with_the_date_it_may_go() {
        let now: jiff::Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let decision = |age_days: i64, keep: bool| lifeboat_repo::Decision {
            id: format!("id{age_days}"),
            short_id: format!("id{age_days}"),
            time: now - jiff::SignedDuration::from_hours(24 * age_days),
            keep,
            reasons: vec!["not kept by any rule".into()],
        };
        let mut d = vec![decision(1, true), decision(3, false), decision(40, false)];
        keep_locked(&mut d, std::time::Duration::from_secs(30 * 86_400), now);
        assert!(d[0].keep);
        assert!(d[1].keep);
        assert_eq!(d[1].reasons, ["object lock until 2027-01-02 12:00 UTC"]);
        // Its lock has run out: retention decides alone.
        assert!(!d[2].keep);
        assert_eq!(d[2].reasons, ["not kept by any rule"]);
    }
}

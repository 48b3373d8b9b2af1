//! The jobs behind each command.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use jiff::Timestamp;
use lifeboat_core::{AssetKind, BackupInput, Manifest, RepoLocation};
use lifeboat_plan::{AssetSpec, PasswordSource, ResolvedAsset, ResolvedPlan, ResolvedRepository};
use lifeboat_repo::{
    Decision, ProgressMode, Repo, RepoConfig, RepoError, RestoreSummary, SnapshotInfo, decide,
};
use serde::Serialize;

use crate::{
    EngineError,
    secrets::{create_password_file, read_secret, repository_password},
    sources::{command_source, source_for},
};

/// Runs jobs for one plan.
#[derive(Debug)]
pub struct Engine {
    plan: ResolvedPlan,
    progress: ProgressMode,
}

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
    pub error: Option<String>,
    pub hint: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub repository: String,
    pub assets: Vec<AssetBackup>,
    /// One per repository with `copy-from` naming the primary.
    pub copies: Vec<CopyOutcome>,
}

/// New snapshots copied to a `copy-from` repository after a backup.
#[derive(Debug, Serialize)]
pub struct CopyOutcome {
    pub repository: String,
    pub copied: usize,
    pub error: Option<String>,
    pub hint: Option<String>,
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
        if failed == self.assets.len() && failed > 0 {
            1
        } else if failed > 0 || partial > 0 {
            3
        } else {
            0
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AssetStatus {
    pub asset: String,
    pub kind: AssetKind,
    pub priority: String,
    pub last_snapshot: Option<String>,
    pub last_time: Option<Timestamp>,
    pub age_secs: Option<u64>,
    pub rpo_secs: u64,
    pub rto_secs: u64,
    pub breach: bool,
    pub snapshots: usize,
}

#[derive(Debug, Serialize)]
pub struct ForgetReport {
    pub asset: String,
    pub decisions: Vec<Decision>,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub repository: String,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Artifacts whose checksum was read and matched.
    pub artifacts_verified: usize,
}

/// What `restore` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub asset: String,
    pub snapshot: Option<String>,
    pub to: Option<PathBuf>,
    pub dry_run: bool,
    pub yes: bool,
    pub skip_safety_snapshot: bool,
}

/// One step of a restore, as printed by `--dry-run` and done otherwise.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RestoreAction {
    SafetySnapshot { asset: String },
    ReplacePath { path: PathBuf },
    WriteTree { dest: PathBuf },
    WriteArtifact { artifact: String, dest: PathBuf },
    RunRestoreCommand { artifact: String },
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub asset: String,
    pub snapshot: String,
    pub snapshot_time: Timestamp,
    pub dry_run: bool,
    pub actions: Vec<RestoreAction>,
    pub safety_snapshot: Option<String>,
    pub files: Option<RestoreSummary>,
    pub bytes: u64,
    /// Where the previous content was kept beside the target (SQLite databases).
    pub kept: Option<PathBuf>,
}

impl Engine {
    #[must_use]
    pub const fn new(plan: ResolvedPlan, progress: ProgressMode) -> Self {
        Self { plan, progress }
    }

    #[must_use]
    pub const fn plan(&self) -> &ResolvedPlan {
        &self.plan
    }

    fn repo_config(&self, repo: &ResolvedRepository) -> Result<RepoConfig, EngineError> {
        let password = repository_password(repo)?;
        let s3_credentials = match &repo.s3_credentials {
            Some(vars) => {
                let get = |var: &str| {
                    read_secret(&lifeboat_plan::SecretSource::Env(var.to_owned())).map_err(
                        |reason| EngineError::Password {
                            repo: repo.name.clone(),
                            reason,
                            hint: None,
                        },
                    )
                };
                Some((
                    get(&vars.access_key_id_env)?,
                    get(&vars.secret_access_key_env)?,
                ))
            }
            None => None,
        };
        Ok(RepoConfig {
            name: repo.name.clone(),
            location: repo.location.clone(),
            password,
            s3_credentials,
        })
    }

    /// Opens the primary repository.
    ///
    /// # Errors
    /// No repository (exit 10), wrong password (12), unreadable password.
    pub fn open_primary(&self) -> Result<Repo, EngineError> {
        let repo = self.plan.primary();
        if repo.embedded_default
            && let PasswordSource::DefaultFile(path) = &repo.password
            && !path.exists()
            && let RepoLocation::Local { path: repo_path } = &repo.location
            && !repo_path.join("config").exists()
        {
            return Err(RepoError::NotFound {
                name: repo.name.clone(),
                location: repo_path.display().to_string(),
            }
            .into());
        }
        let config = self.repo_config(repo)?;
        Ok(Repo::open(&config, self.progress)?)
    }

    fn asset(&self, name: &str) -> Result<&ResolvedAsset, EngineError> {
        self.plan.asset(name).ok_or_else(|| {
            let known: Vec<&str> = self.plan.assets.iter().map(|a| a.name.as_str()).collect();
            EngineError::usage(
                format!("unknown asset {name}"),
                Some(&format!("the plan has: {}", known.join(", "))),
            )
        })
    }

    /// The assets named, in plan order; all of them when `names` is empty. Unknown names are an
    /// error before anything runs.
    fn select(&self, names: &[String]) -> Result<Vec<&ResolvedAsset>, EngineError> {
        if names.is_empty() {
            return Ok(self.plan.assets.iter().collect());
        }
        names.iter().map(|n| self.asset(n)).collect()
    }

    /// Creates every repository of the plan. For the embedded default, also generates its
    /// password file.
    ///
    /// # Errors
    /// When a repository exists already or cannot be created.
    pub fn init(&self) -> Result<Vec<InitReport>, EngineError> {
        let mut reports = Vec::new();
        let mut created: Vec<Repo> = Vec::new();
        for repo in &self.plan.repositories {
            let mut password_file = None;
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
                create_password_file(path)?;
                password_file = Some(path.clone());
            }
            let config = self.repo_config(repo)?;
            let source = repo
                .copy_from
                .as_ref()
                .and_then(|from| created.iter().find(|r| r.name() == from));
            let opened = match source {
                // Same chunker as the source, or copies lose deduplication.
                Some(src) => Repo::init_like(&config, src, self.progress)?,
                None => Repo::init(&config, self.progress)?,
            };
            reports.push(InitReport {
                repository: repo.name.clone(),
                location: opened.location(),
                password_file,
            });
            created.push(opened);
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
        let repo = self.open_primary()?;
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
            let result = self.backup_one(&repo, asset, None, parent);
            report.assets.push(match result {
                Ok(outcome) => {
                    tracing::info!(asset = %asset.name, snapshot = %outcome.snapshot.short_id, "backed up");
                    AssetBackup {
                        asset: asset.name.clone(),
                        kind: asset.kind(),
                        ok: true,
                        snapshot: Some(outcome.snapshot.id.clone()),
                        bytes: outcome.manifest.payload_bytes(),
                        added_bytes: outcome.added_bytes,
                        duration_secs: outcome.snapshot.duration_secs,
                        artifacts: outcome.manifest.artifacts.clone(),
                        files: outcome.manifest.files.as_ref().map(|f| f.files),
                        warnings: outcome.manifest.warnings.clone(),
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
                        hint: err.hint(),
                        error: Some(err.to_string()),
                    }
                }
            });
        }
        let new: Vec<String> = report
            .assets
            .iter()
            .filter_map(|a| a.snapshot.clone())
            .collect();
        for target in self
            .plan
            .repositories
            .iter()
            .filter(|r| r.copy_from.as_deref() == Some(repo.name()))
        {
            let result = self.copy_snapshots(&repo, target, &new);
            report.copies.push(match result {
                Ok(copied) => CopyOutcome {
                    repository: target.name.clone(),
                    copied,
                    error: None,
                    hint: None,
                },
                Err(e) => CopyOutcome {
                    repository: target.name.clone(),
                    copied: 0,
                    hint: e.hint(),
                    error: Some(e.to_string()),
                },
            });
        }
        Ok(report)
    }

    /// Copies the snapshots with the given ids from `from` into `target`, skipping those it has.
    fn copy_snapshots(
        &self,
        from: &Repo,
        target: &ResolvedRepository,
        ids: &[String],
    ) -> Result<usize, EngineError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let config = self.repo_config(target)?;
        let to = Repo::open(&config, self.progress)?;
        if !from.same_chunker(&to) {
            tracing::warn!(
                "repository {} chunks data differently from {}: copies are not deduplicated",
                to.name(),
                from.name()
            );
        }
        let snaps: Vec<SnapshotInfo> = from
            .snapshots()?
            .into_iter()
            .filter(|s| ids.contains(&s.id))
            .collect();
        Ok(from.copy_to(&to, &snaps)?)
    }

    fn backup_one(
        &self,
        repo: &Repo,
        asset: &ResolvedAsset,
        reason: Option<&str>,
        parent: Option<&SnapshotInfo>,
    ) -> Result<lifeboat_repo::BackupOutcome, EngineError> {
        let source = source_for(asset)?;
        source.preflight()?;
        let (payload, facts) = source.backup()?;
        let input = BackupInput {
            plan: self.plan.name.clone(),
            asset: asset.name.clone(),
            kind: asset.kind(),
            source: source.identity(),
            reason: reason.map(str::to_owned),
            payload,
            facts,
        };
        Ok(repo.backup(input, parent)?)
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
        artifact: Option<&str>,
        out: &mut dyn Write,
    ) -> Result<u64, EngineError> {
        let a = self.asset(asset)?;
        let repo = self.open_primary()?;
        let snap = repo.find_snapshot(asset, snapshot)?;
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

    /// Restores an asset: prints the plan with `dry_run`, otherwise applies it.
    ///
    /// Restoring over the original needs `yes` and takes a safety snapshot of the target first.
    /// Files are restored beside the target and swapped in by rename, so a failure never leaves
    /// a target half-overwritten.
    ///
    /// # Errors
    /// Missing `--yes`, unknown asset or snapshot, a failed safety snapshot, a failed restore.
    pub fn restore(&self, req: &RestoreRequest) -> Result<RestoreReport, EngineError> {
        let asset = self.asset(&req.asset)?;
        let repo = self.open_primary()?;
        let snap = repo.find_snapshot(&asset.name, req.snapshot.as_deref())?;
        let manifest = if snap.asset.is_some() {
            Some(repo.read_manifest(&snap)?)
        } else {
            None
        };
        let in_place = req.to.is_none();
        if in_place && !req.dry_run && !req.yes {
            return Err(EngineError::usage(
                format!("restore asset {} over its original target", asset.name),
                Some(
                    "add --yes to confirm (a safety snapshot is taken first), --to PATH to restore elsewhere, or --dry-run to see the plan",
                ),
            ));
        }
        let mut report = RestoreReport {
            asset: asset.name.clone(),
            snapshot: snap.id.clone(),
            snapshot_time: snap.time,
            dry_run: req.dry_run,
            actions: Vec::new(),
            safety_snapshot: None,
            files: None,
            bytes: 0,
            kept: None,
        };
        match &asset.spec {
            AssetSpec::Files(spec) => {
                if let Some(dest) = &req.to {
                    ensure_empty_dir(dest)?;
                    report
                        .actions
                        .push(RestoreAction::WriteTree { dest: dest.clone() });
                    let summary = repo.restore_tree(&snap, dest, req.dry_run)?;
                    report.bytes = summary.bytes;
                    report.files = Some(summary);
                    return Ok(report);
                }
                let manifest = manifest.ok_or_else(|| {
                    EngineError::usage(
                        format!("snapshot {} was not written by Lifeboat", snap.short_id),
                        Some("restore it with --to PATH"),
                    )
                })?;
                let paths = lifeboat_repo::original_paths(&manifest);
                if !req.skip_safety_snapshot && paths.iter().any(|p| p.exists()) {
                    report.actions.push(RestoreAction::SafetySnapshot {
                        asset: asset.name.clone(),
                    });
                }
                for p in &paths {
                    report
                        .actions
                        .push(RestoreAction::ReplacePath { path: p.clone() });
                }
                if req.dry_run {
                    let staging = tempdir_near(&std::env::temp_dir(), &asset.name)?;
                    let summary = repo.restore_tree(&snap, &staging, true);
                    let _ = fs::remove_dir_all(&staging);
                    let summary = summary?;
                    report.bytes = summary.bytes;
                    report.files = Some(summary);
                    return Ok(report);
                }
                if report
                    .actions
                    .iter()
                    .any(|a| matches!(a, RestoreAction::SafetySnapshot { .. }))
                {
                    let existing = lifeboat_plan::FilesSpec {
                        paths: paths.iter().filter(|p| p.exists()).cloned().collect(),
                        ..spec.clone()
                    };
                    let safety = ResolvedAsset {
                        spec: AssetSpec::Files(existing),
                        ..asset.clone()
                    };
                    let outcome =
                        self.backup_one(&repo, &safety, Some(lifeboat_repo::SAFETY_TAG), None)?;
                    report.safety_snapshot = Some(outcome.snapshot.id);
                }
                let summary = restore_files_in_place(&repo, &snap, &asset.name, &paths)?;
                report.bytes = summary.bytes;
                report.files = Some(summary);
            }
            AssetSpec::Command(spec) => {
                let manifest = manifest.ok_or_else(|| {
                    EngineError::usage(
                        format!("snapshot {} was not written by Lifeboat", snap.short_id),
                        None,
                    )
                })?;
                let artifact = manifest
                    .artifacts
                    .first()
                    .map(|a| a.name.clone())
                    .ok_or_else(|| {
                        EngineError::usage(
                            format!("snapshot {} has no artifact", snap.short_id),
                            None,
                        )
                    })?;
                if let Some(dest) = &req.to {
                    report.actions.push(RestoreAction::WriteArtifact {
                        artifact: artifact.clone(),
                        dest: dest.clone(),
                    });
                    if !req.dry_run {
                        report.bytes =
                            write_artifact_file(&repo, &snap, &manifest, &artifact, dest, req.yes)?;
                    }
                    return Ok(report);
                }
                let source = command_source(&asset.name, spec);
                if source.restore.is_none() {
                    return Err(EngineError::usage(
                        format!("asset {} has no restore command", asset.name),
                        Some(&format!(
                            "add `restore = \"...\"` to [assets.{}], or use --to PATH to write the artifact to a file",
                            asset.name
                        )),
                    ));
                }
                if !req.skip_safety_snapshot {
                    report.actions.push(RestoreAction::SafetySnapshot {
                        asset: asset.name.clone(),
                    });
                }
                report.actions.push(RestoreAction::RunRestoreCommand {
                    artifact: artifact.clone(),
                });
                if req.dry_run {
                    return Ok(report);
                }
                // Read and check the whole artifact before the command sees a byte of it.
                repo.verify_artifact(&snap, &manifest, &artifact)?;
                if !req.skip_safety_snapshot {
                    let outcome = self
                        .backup_one(&repo, asset, Some(lifeboat_repo::SAFETY_TAG), None)
                        .map_err(|e| EngineError::usage(
                            format!("take safety snapshot of asset {}: {e}", asset.name),
                            Some("fix the backup command, or pass --skip-safety-snapshot to restore without one"),
                        ))?;
                    report.safety_snapshot = Some(outcome.snapshot.id);
                }
                report.bytes =
                    source.restore(|w| repo.dump_artifact(&snap, &manifest, &artifact, w))?;
            }
            AssetSpec::Sqlite(spec) => {
                let manifest = manifest.ok_or_else(|| {
                    EngineError::usage(
                        format!("snapshot {} was not written by Lifeboat", snap.short_id),
                        None,
                    )
                })?;
                let artifact = manifest
                    .artifacts
                    .first()
                    .map(|a| a.name.clone())
                    .ok_or_else(|| {
                        EngineError::usage(
                            format!("snapshot {} has no artifact", snap.short_id),
                            None,
                        )
                    })?;
                let target = req.to.clone().unwrap_or_else(|| spec.path.clone());
                if req.to.is_some() && target.exists() && !req.yes {
                    return Err(EngineError::usage(
                        format!("restore into {}: the file exists", target.display()),
                        Some(
                            "add --yes to replace it (it is kept beside as a safety copy), or choose another path",
                        ),
                    ));
                }
                let safety = in_place && !req.skip_safety_snapshot && target.exists();
                if safety {
                    report.actions.push(RestoreAction::SafetySnapshot {
                        asset: asset.name.clone(),
                    });
                }
                report.actions.push(RestoreAction::ReplacePath {
                    path: target.clone(),
                });
                if req.dry_run {
                    return Ok(report);
                }
                if safety {
                    let outcome =
                        self.backup_one(&repo, asset, Some(lifeboat_repo::SAFETY_TAG), None)?;
                    report.safety_snapshot = Some(outcome.snapshot.id);
                }
                let source = lifeboat_sources::sqlite::SqliteSource {
                    asset: asset.name.clone(),
                    path: spec.path.clone(),
                };
                let done = source.restore(&target, &manifest.tables, |w| {
                    repo.dump_artifact(&snap, &manifest, &artifact, w)
                })?;
                report.bytes = done.bytes;
                report.kept = done.kept;
            }
            other => {
                let kind = match other {
                    AssetSpec::Postgres(_) => "postgres",
                    AssetSpec::Redis(_) => "redis",
                    _ => "mysql",
                };
                return Err(EngineError::usage(
                    format!(
                        "restore asset {}: assets of type {kind} are not supported by this version of Lifeboat yet",
                        asset.name
                    ),
                    Some("use `lifeboat dump` to get the raw artifact"),
                ));
            }
        }
        Ok(report)
    }

    /// Retention per asset: which snapshots to keep and why; with `apply`, forgets the rest.
    ///
    /// # Errors
    /// When the repository cannot be read or written.
    pub fn forget(&self, apply: bool) -> Result<Vec<ForgetReport>, EngineError> {
        let repo = self.open_primary()?;
        let snapshots = repo.snapshots()?;
        let now = Timestamp::now();
        let mut reports = Vec::new();
        for asset in &self.plan.assets {
            let own: Vec<SnapshotInfo> = snapshots
                .iter()
                .filter(|s| {
                    s.asset.as_deref() == Some(&asset.name)
                        && s.plan.as_deref() == Some(&self.plan.name)
                })
                .cloned()
                .collect();
            let decisions = decide(&own, &asset.retention, now);
            if apply {
                let remove: Vec<String> = decisions
                    .iter()
                    .filter(|d| !d.keep)
                    .map(|d| d.id.clone())
                    .collect();
                if !remove.is_empty() {
                    repo.forget(&remove)?;
                }
            }
            reports.push(ForgetReport {
                asset: asset.name.clone(),
                decisions,
            });
        }
        Ok(reports)
    }

    /// Removes unreferenced data from the primary repository.
    ///
    /// # Errors
    /// When the repository cannot be read or written.
    pub fn prune(&self, dry_run: bool) -> Result<lifeboat_repo::PruneSummary, EngineError> {
        Ok(self.open_primary()?.prune(dry_run)?)
    }

    /// Checks the repository; with `read_data`, reads every pack and the newest snapshot of each
    /// asset's artifacts against their checksums.
    ///
    /// # Errors
    /// When the repository cannot be opened (findings are in the report, not errors).
    pub fn verify(&self, read_data: bool) -> Result<VerifyReport, EngineError> {
        let repo = self.open_primary()?;
        let check = repo.check(read_data.then_some(100.0))?;
        let mut report = VerifyReport {
            repository: repo.name().to_owned(),
            errors: check.errors,
            warnings: check.warnings,
            artifacts_verified: 0,
        };
        let snapshots = repo.snapshots()?;
        for asset in &self.plan.assets {
            let Some(snap) = snapshots
                .iter()
                .rev()
                .find(|s| s.asset.as_deref() == Some(&asset.name))
            else {
                continue;
            };
            let manifest: Manifest = match repo.read_manifest(snap) {
                Ok(m) => m,
                Err(e) => {
                    report.errors.push(format!("asset {}: {e}", asset.name));
                    continue;
                }
            };
            if !read_data {
                continue;
            }
            for artifact in &manifest.artifacts {
                match repo.verify_artifact(snap, &manifest, &artifact.name) {
                    Ok(_) => report.artifacts_verified += 1,
                    Err(e) => report.errors.push(format!("asset {}: {e}", asset.name)),
                }
            }
        }
        Ok(report)
    }

    /// Per asset: newest snapshot, its age against the asset's RPO, and whether that is a breach.
    ///
    /// # Errors
    /// When the repository cannot be read.
    pub fn status(&self) -> Result<Vec<AssetStatus>, EngineError> {
        let repo = self.open_primary()?;
        let snapshots = repo.snapshots()?;
        let now = Timestamp::now();
        Ok(self
            .plan
            .assets
            .iter()
            .map(|asset| {
                let own: Vec<&SnapshotInfo> = snapshots
                    .iter()
                    .filter(|s| s.asset.as_deref() == Some(&asset.name) && !s.is_safety())
                    .collect();
                let last = own.last();
                let age =
                    last.map(|s| u64::try_from(now.as_second() - s.time.as_second()).unwrap_or(0));
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
                }
            })
            .collect())
    }
}

fn ensure_empty_dir(dest: &Path) -> Result<(), EngineError> {
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(EngineError::usage(
                    format!(
                        "restore into {}: the directory is not empty",
                        dest.display()
                    ),
                    Some("choose a new or empty directory"),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io("read", dest, e)),
    }
}

/// A new directory next to `near` (same filesystem, so a rename into place is atomic).
fn tempdir_near(dir: &Path, asset: &str) -> Result<PathBuf, EngineError> {
    let suffix: u32 = rand::random();
    let path = dir.join(format!(".lifeboat-restore-{asset}-{suffix:08x}"));
    fs::create_dir_all(&path).map_err(|e| EngineError::io("create", &path, e))?;
    Ok(path)
}

/// Restores each original path beside itself, then swaps it in by rename; the old content is
/// removed only once the new one is in place (it is in the safety snapshot).
fn restore_files_in_place(
    repo: &Repo,
    snap: &SnapshotInfo,
    asset: &str,
    paths: &[PathBuf],
) -> Result<RestoreSummary, EngineError> {
    // Stage everything first: nothing is touched until every path has been restored.
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut total = RestoreSummary::default();
    let cleanup = |staged: &[(PathBuf, PathBuf)]| {
        for (dir, _) in staged {
            let _ = fs::remove_dir_all(dir);
        }
    };
    for path in paths {
        let parent = path.parent().unwrap_or_else(|| Path::new("/"));
        let result = fs::create_dir_all(parent)
            .map_err(|e| EngineError::io("create", parent, e))
            .and_then(|()| tempdir_near(parent, asset));
        let staging = match result {
            Ok(s) => s,
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        };
        let restored = staging.join("new");
        match repo.restore_path(snap, path, &restored) {
            Ok(s) => {
                total.files += s.files;
                total.dirs += s.dirs;
                total.bytes += s.bytes;
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                cleanup(&staged);
                return Err(e.into());
            }
        }
        staged.push((staging, restored));
    }
    let _swapping = crate::interrupt::swapping();
    let mut swapped: Vec<(&Path, Option<PathBuf>)> = Vec::new();
    let mut failure = None;
    for ((staging, restored), target) in staged.iter().zip(paths) {
        let old = staging.join(".old");
        let had_old = target.exists() || target.is_symlink();
        if had_old && let Err(e) = fs::rename(target, &old) {
            failure = Some(EngineError::io("move aside", target, e));
            break;
        }
        if let Err(e) = fs::rename(restored, target) {
            if had_old {
                let _ = fs::rename(&old, target);
            }
            failure = Some(EngineError::io("move into place", target, e));
            break;
        }
        swapped.push((target, had_old.then_some(old)));
    }
    if let Some(err) = failure {
        // Put back the paths already swapped: an asset is restored whole or not at all.
        for (target, old) in swapped.iter().rev() {
            let _ = remove_path(target);
            if let Some(old) = old {
                let _ = fs::rename(old, target);
            }
        }
        cleanup(&staged);
        return Err(err);
    }
    cleanup(&staged);
    Ok(total)
}

fn remove_path(path: &Path) -> std::io::Result<()> {
    if path.is_dir() && !path.is_symlink() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// Writes an artifact to `dest` through a temporary file, renamed into place only once its
/// checksum matched.
fn write_artifact_file(
    repo: &Repo,
    snap: &SnapshotInfo,
    manifest: &Manifest,
    artifact: &str,
    dest: &Path,
    overwrite: bool,
) -> Result<u64, EngineError> {
    if dest.exists() && !overwrite {
        return Err(EngineError::usage(
            format!("write {}: the file exists", dest.display()),
            Some("add --yes to replace it, or choose another path"),
        ));
    }
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(|e| EngineError::io("create", dir, e))?;
    let suffix: u32 = rand::random();
    let tmp = dir.join(format!(".lifeboat-{artifact}-{suffix:08x}.tmp"));
    let mut file = fs::File::create(&tmp).map_err(|e| EngineError::io("create", &tmp, e))?;
    let result = repo.dump_artifact(snap, manifest, artifact, &mut file);
    let result = result.map_err(EngineError::from).and_then(|n| {
        file.sync_all()
            .map_err(|e| EngineError::io("write", &tmp, e))?;
        fs::rename(&tmp, dest).map_err(|e| EngineError::io("rename", dest, e))?;
        Ok(n)
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

//! `restore`: plan the actions (`--dry-run` prints them), then apply them so that a target is
//! never left half-overwritten.

use std::{
    fs,
    path::{Path, PathBuf},
};

use jiff::Timestamp;
use lifeboat_core::Manifest;
use lifeboat_plan::{AssetSpec, ResolvedAsset};
use lifeboat_repo::{Repo, RestoreSummary, SnapshotInfo};
use serde::Serialize;

use crate::{EngineError, jobs::Engine, safety::DamagedTarget, sources::command_source};

/// What `restore` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub asset: String,
    pub snapshot: Option<String>,
    pub to: Option<PathBuf>,
    pub dry_run: bool,
    pub yes: bool,
    pub skip_safety_snapshot: bool,
    /// Only these tables (database assets, restored into another database).
    pub tables: Vec<String>,
    /// The repository to restore from (and to write the safety snapshot to); the primary
    /// unless given.
    pub repository: Option<String>,
}

/// One step of a restore, as printed by `--dry-run` and done otherwise.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RestoreAction {
    SafetySnapshot {
        asset: String,
    },
    ReplacePath {
        path: PathBuf,
    },
    WriteTree {
        dest: PathBuf,
    },
    WriteArtifact {
        artifact: String,
        dest: PathBuf,
    },
    RunRestoreCommand {
        artifact: String,
    },
    /// Write every key of the snapshot into the server at `target` (`RESTORE ... REPLACE`).
    ReplayKeys {
        target: String,
    },
    /// Create an empty database to load the dump into.
    CreateDatabase {
        target: String,
    },
    /// Load a dump into a database.
    LoadDump {
        artifact: String,
        target: String,
    },
    /// Compare the restored database's rows per table with the manifest.
    CheckCounts {
        target: String,
    },
    /// Rename the current database to `kept` and the restored one to `target`.
    SwapDatabase {
        restored: String,
        target: String,
        kept: String,
    },
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
    /// Keys written into the target (Redis).
    pub keys: Option<u64>,
    /// Rows per table found in the restored database (PostgreSQL, MySQL).
    pub tables: Option<std::collections::BTreeMap<String, u64>>,
    /// The name the previous database was kept under (PostgreSQL).
    pub kept_database: Option<String>,
    /// Set when the live target could not be read consistently before it was replaced: why,
    /// and where its raw bytes are.
    pub damaged: Option<DamagedTarget>,
}

impl Engine {
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
        let repo = self.open_named_or_primary(req.repository.as_deref())?;
        // Shared: prune waits until the restore has read what it needs.
        let _lock = repo.lock(
            lifeboat_repo::LockKind::Shared,
            &format!("restore {}", asset.name),
        )?;
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
            keys: None,
            tables: None,
            kept_database: None,
            damaged: None,
        };
        // A raw copy of a damaged target is a tree of plain files, whatever the asset's kind:
        // it goes back the way a files asset does.
        let raw_copy = snap.kind == Some(lifeboat_core::AssetKind::Files)
            && asset.kind() != lifeboat_core::AssetKind::Files;
        match &asset.spec {
            AssetSpec::Files(_) => {
                self.restore_tree_snapshot(&repo, asset, &snap, manifest, req, &mut report)?;
            }
            _ if raw_copy => {
                self.restore_tree_snapshot(&repo, asset, &snap, manifest, req, &mut report)?;
            }
            AssetSpec::Command(spec) => {
                let (manifest, artifact) = streamed_artifact(&snap, manifest)?;
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
                let (manifest, artifact) = streamed_artifact(&snap, manifest)?;
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
                    // A damaged database is kept as it is: the file with its -wal and -shm.
                    let raw: Vec<PathBuf> = ["", "-wal", "-shm"]
                        .iter()
                        .map(|suffix| {
                            let mut p = target.as_os_str().to_owned();
                            p.push(suffix);
                            PathBuf::from(p)
                        })
                        .collect();
                    self.safety_copy(&repo, asset, &raw, None)?
                        .record(&mut report);
                }
                let source = lifeboat_sources::sqlite::SqliteSource {
                    asset: asset.name.clone(),
                    path: spec.path.clone(),
                };
                let done = source.restore(&target, &manifest.tables, |w| {
                    repo.dump_artifact(&snap, &manifest, &artifact, w)
                })?;
                report.bytes = done.bytes;
                if let (Some(d), Some(k)) = (&mut report.damaged, &done.kept) {
                    d.kept = Some(k.display().to_string());
                }
                report.kept = done.kept;
            }
            AssetSpec::Redis(spec) => {
                let (manifest, artifact) = streamed_artifact(&snap, manifest)?;
                let mut target_spec = spec.clone();
                if let Some(to) = &req.to {
                    target_spec.url = lifeboat_core::Redacted::new(&to.to_string_lossy());
                }
                let target = crate::sources::redis_source(&asset.name, &target_spec)?;
                if in_place
                    && let Some(dir) = &spec.data_dir
                    && !reachable(&target.host, target.port)
                {
                    // The server is stopped: its RDB file is replaced, to be loaded at start.
                    let path = dir.join(lifeboat_sources::redis::RDB_NAME);
                    report
                        .actions
                        .push(RestoreAction::ReplacePath { path: path.clone() });
                    if req.dry_run {
                        return Ok(report);
                    }
                    let (bytes, kept) =
                        replace_rdb_file(&repo, &snap, &manifest, &artifact, &path)?;
                    report.bytes = bytes;
                    report.kept = kept;
                    return Ok(report);
                }
                if !reachable(&target.host, target.port) {
                    let hint = if in_place {
                        format!(
                            "start the server and restore again (the keys are written into the running server), or set data-dir in [assets.{}] so that Lifeboat replaces its RDB file while it is stopped",
                            asset.name
                        )
                    } else {
                        "start the server named in --to, or give another with --to redis://host:port/db".to_owned()
                    };
                    return Err(EngineError::usage(
                        format!(
                            "restore asset {}: the Redis server at {}:{} does not answer",
                            asset.name, target.host, target.port
                        ),
                        Some(&hint),
                    ));
                }
                let safety = in_place && !req.skip_safety_snapshot;
                if safety {
                    report.actions.push(RestoreAction::SafetySnapshot {
                        asset: asset.name.clone(),
                    });
                }
                report.actions.push(RestoreAction::ReplayKeys {
                    target: target_spec.url.to_string(),
                });
                if req.dry_run {
                    return Ok(report);
                }
                // The RDB, checked against its checksum, loaded into a sandbox whose key counts
                // must match the manifest before a key reaches the target.
                let rdb = tempfile::Builder::new()
                    .prefix(".lifeboat-rdb-")
                    .tempfile()
                    .map_err(|e| EngineError::io("create", std::env::temp_dir(), e))?;
                let (mut file, rdb_path) = rdb.into_parts();
                repo.dump_artifact(&snap, &manifest, &artifact, &mut file)?;
                drop(file);
                let sandbox = crate::sandbox::RedisSandbox::start(Some(&rdb_path))
                    .map_err(|e| EngineError::usage(e.to_string(), None))?;
                let mut probe = lifeboat_sources::resp::Client::connect(
                    "127.0.0.1",
                    sandbox.port(),
                    None,
                    None,
                )
                .map_err(|e| EngineError::usage(format!("read the sandbox: {e}"), None))?;
                let keys = probe
                    .keyspace()
                    .map_err(|e| EngineError::usage(format!("read the sandbox: {e}"), None))?;
                drop(probe);
                if !manifest.keys.is_empty() && keys != manifest.keys {
                    return Err(EngineError::usage(
                        format!(
                            "restore asset {}: the snapshot's RDB holds {keys:?} keys, its manifest says {:?}",
                            asset.name, manifest.keys
                        ),
                        None,
                    ));
                }
                if safety {
                    // A server that answers but cannot save: its data directory's files.
                    let raw: Vec<PathBuf> = spec
                        .data_dir
                        .iter()
                        .flat_map(|dir| {
                            [
                                lifeboat_sources::redis::RDB_NAME,
                                "appendonlydir",
                                "appendonly.aof",
                            ]
                            .map(|name| dir.join(name))
                        })
                        .collect();
                    self.safety_copy(&repo, asset, &raw, None)?
                        .record(&mut report);
                }
                report.keys = Some(target.replay_from(sandbox.port())?);
            }
            AssetSpec::Postgres(spec) => {
                crate::postgres::restore(
                    self,
                    &repo,
                    asset,
                    spec,
                    &snap,
                    manifest,
                    req,
                    &mut report,
                )?;
            }
            AssetSpec::Mysql(spec) => {
                crate::mysql::restore(self, &repo, asset, spec, &snap, manifest, req, &mut report)?;
            }
        }
        Ok(report)
    }
}

impl Engine {
    /// A snapshot laid out as a tree: a files asset's, or the raw copy of a damaged target.
    /// `--to DIR` writes it into an empty directory; in place, each original path is staged
    /// beside itself and swapped in once all are staged, after a safety copy of what is there.
    fn restore_tree_snapshot(
        &self,
        repo: &Repo,
        asset: &ResolvedAsset,
        snap: &SnapshotInfo,
        manifest: Option<Manifest>,
        req: &RestoreRequest,
        report: &mut RestoreReport,
    ) -> Result<(), EngineError> {
        if let Some(dest) = &req.to {
            ensure_empty_dir(dest)?;
            report
                .actions
                .push(RestoreAction::WriteTree { dest: dest.clone() });
            let summary = repo.restore_tree(snap, dest, req.dry_run)?;
            report.bytes = summary.bytes;
            report.files = Some(summary);
            return Ok(());
        }
        let manifest = manifest.ok_or_else(|| {
            EngineError::usage(
                format!("snapshot {} was not written by Lifeboat", snap.short_id),
                Some("restore it with --to PATH"),
            )
        })?;
        let paths = lifeboat_repo::original_paths(&manifest);
        let existing: Vec<PathBuf> = paths
            .iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .cloned()
            .collect();
        let safety = !req.skip_safety_snapshot && !existing.is_empty();
        if safety {
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
            let summary = repo.restore_tree(snap, &staging, true);
            let _ = fs::remove_dir_all(&staging);
            let summary = summary?;
            report.bytes = summary.bytes;
            report.files = Some(summary);
            return Ok(());
        }
        if safety {
            let outcome = match &asset.spec {
                // The paths as they are now, whatever can be read of them.
                AssetSpec::Files(spec) => {
                    let now = ResolvedAsset {
                        spec: AssetSpec::Files(lifeboat_plan::FilesSpec {
                            paths: existing,
                            ..spec.clone()
                        }),
                        ..asset.clone()
                    };
                    self.safety_copy(repo, &now, &[], None)?
                }
                // Putting a raw copy back: the asset as it is now, consistently if it can be
                // read, else raw as well.
                _ => self.safety_copy(repo, asset, &existing, None)?,
            };
            outcome.record(report);
        }
        let summary = restore_files_in_place(repo, snap, &asset.name, &paths)?;
        report.bytes = summary.bytes;
        report.files = Some(summary);
        Ok(())
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

/// The manifest and the one artifact of a snapshot of a streamed asset (command, database).
pub(crate) fn streamed_artifact(
    snap: &SnapshotInfo,
    manifest: Option<Manifest>,
) -> Result<(Manifest, String), EngineError> {
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
            EngineError::usage(format!("snapshot {} has no artifact", snap.short_id), None)
        })?;
    Ok((manifest, artifact))
}

/// Whether something listens at `host:port` (a two-second try).
fn reachable(host: &str, port: u16) -> bool {
    use std::net::ToSocketAddrs;
    (host, port).to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|a| {
            std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok()
        })
    })
}

/// Replaces a stopped Redis server's RDB file: the artifact is written beside it, loaded in a
/// sandbox whose keys must match the manifest, given the old file's owner and mode, and renamed
/// over it; the old file stays beside as `dump.rdb.lifeboat-old-<time>`. Refused when the data
/// directory holds an append-only file, which the server would load instead.
fn replace_rdb_file(
    repo: &Repo,
    snap: &SnapshotInfo,
    manifest: &Manifest,
    artifact: &str,
    path: &Path,
) -> Result<(u64, Option<PathBuf>), EngineError> {
    use std::os::unix::fs::MetadataExt;
    let dir = path.parent().unwrap_or_else(|| Path::new("/"));
    if dir.join("appendonlydir").exists() || dir.join("appendonly.aof").exists() {
        return Err(EngineError::usage(
            format!(
                "restore asset {}: {} holds an append-only file, which Redis loads instead of the RDB",
                manifest.asset,
                dir.display()
            ),
            Some("start the server and restore into it, or move the append-only file aside first"),
        ));
    }
    let suffix: u32 = rand::random();
    let tmp = dir.join(format!(".lifeboat-rdb-{suffix:08x}.tmp"));
    let result = (|| {
        let mut file = fs::File::create(&tmp).map_err(|e| EngineError::io("create", &tmp, e))?;
        let bytes = repo.dump_artifact(snap, manifest, artifact, &mut file)?;
        file.sync_all()
            .map_err(|e| EngineError::io("write", &tmp, e))?;
        drop(file);
        let sandbox = crate::sandbox::RedisSandbox::start(Some(&tmp))
            .map_err(|e| EngineError::usage(e.to_string(), None))?;
        let keys = lifeboat_sources::resp::Client::connect("127.0.0.1", sandbox.port(), None, None)
            .and_then(|mut c| c.keyspace())
            .map_err(|e| EngineError::usage(format!("read the sandbox: {e}"), None))?;
        drop(sandbox);
        if !manifest.keys.is_empty() && keys != manifest.keys {
            return Err(EngineError::usage(
                format!(
                    "restore asset {}: the snapshot's RDB holds {keys:?} keys, its manifest says {:?}",
                    manifest.asset, manifest.keys
                ),
                None,
            ));
        }
        let mut kept = None;
        if let Ok(old) = fs::metadata(path) {
            let _ = std::os::unix::fs::chown(&tmp, Some(old.uid()), Some(old.gid()));
            let _ = fs::set_permissions(&tmp, old.permissions());
            let aside = dir.join(format!(
                "{}.lifeboat-old-{}",
                lifeboat_sources::redis::RDB_NAME,
                Timestamp::now().as_second()
            ));
            fs::hard_link(path, &aside).map_err(|e| EngineError::io("keep", &aside, e))?;
            kept = Some(aside);
        }
        fs::rename(&tmp, path).map_err(|e| EngineError::io("move into place", path, e))?;
        Ok((bytes, kept))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

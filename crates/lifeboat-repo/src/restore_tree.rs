//! Restoring the files of a snapshot to disk: a whole tree ([`Repo::restore_tree`]) or one
//! original path ([`Repo::restore_path`]).

use std::path::Path;

use lifeboat_core::RepoLocation;
use rustic_core::{IndexedFullStatus, LocalDestination, LsOptions, Repository, RestoreOptions};

use crate::{
    error::{RepoError, RepoResult},
    repository::Repo,
    snapshot::SnapshotInfo,
    source::FILES_DIR,
};

/// What a restore of a tree did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreSummary {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

impl Repo {
    /// Restores the files of a `files` snapshot under `dest`, each original path `/a/b` at
    /// `dest/a/b`. For a snapshot not written by Lifeboat, its whole tree is restored.
    pub fn restore_tree(
        &self,
        snap: &SnapshotInfo,
        dest: &Path,
        dry_run: bool,
    ) -> RepoResult<RestoreSummary> {
        let repo = self.indexed()?;
        let sub = match &snap.asset {
            Some(asset) => format!("/{asset}/{FILES_DIR}"),
            None => "/".to_owned(),
        };
        let node = repo
            .node_from_snapshot_and_path(&snap.file, &sub)
            .map_err(|e| RepoError::BadSnapshot {
                asset: Self::asset_of(snap).to_owned(),
                snapshot: snap.short_id.clone(),
                detail: format!("find {sub}: {}", crate::error::short(&e)),
            })?;
        self.restore_dir(&repo, &node, dest, dry_run)
    }

    /// Restores the tree under `node` into `dest`: Lifeboat's parallel restore (restore.rs)
    /// from a local repository into an empty destination, rustic's restore otherwise.
    fn restore_dir(
        &self,
        repo: &Repository<IndexedFullStatus>,
        node: &rustic_core::repofile::Node,
        dest: &Path,
        dry_run: bool,
    ) -> RepoResult<RestoreSummary> {
        let ls_opts = LsOptions::default().recursive(true);
        let ls = repo
            .ls(node, &ls_opts)
            .map_err(|e| self.err("list snapshot", &e))?;
        let empty = dest
            .read_dir()
            .map_or(true, |mut entries| entries.next().is_none());
        if !dry_run && empty && matches!(self.config.location, RepoLocation::Local { .. }) {
            let nodes = ls
                .clone()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.err("list snapshot", &e))?;
            if crate::restore::handles(&nodes) {
                std::fs::create_dir_all(dest).map_err(|e| RepoError::io("create", dest, e))?;
                crate::restore::restore_nodes(repo, &nodes, dest).map_err(|(path, reason)| {
                    RepoError::Backend {
                        action: format!("restore {}", dest.join(path).display()),
                        name: self.config.name.clone(),
                        detail: reason,
                    }
                })?;
                let files = nodes.iter().filter(|(_, n)| !n.is_dir());
                return Ok(RestoreSummary {
                    files: files.clone().count() as u64,
                    dirs: nodes.iter().filter(|(_, n)| n.is_dir()).count() as u64,
                    bytes: files.map(|(_, n)| n.meta.size).sum(),
                });
            }
        }
        let dest_text = format!("{}/", dest.display());
        let destination = LocalDestination::new(&dest_text, !dry_run, false)
            .map_err(|e| self.err(&format!("prepare {}", dest.display()), &e))?;
        let opts = RestoreOptions::default();
        let plan = repo
            .prepare_restore(&opts, ls.clone(), &destination, dry_run)
            .map_err(|e| self.err("plan restore", &e))?;
        let summary = RestoreSummary {
            files: plan.stats.files.restore + plan.stats.files.unchanged + plan.stats.files.modify,
            dirs: plan.stats.dirs.restore + plan.stats.dirs.unchanged + plan.stats.dirs.modify,
            bytes: plan.restore_size + plan.matched_size,
        };
        if !dry_run {
            repo.restore(plan, &opts, ls, &destination)
                .map_err(|e| self.err(&format!("restore into {}", dest.display()), &e))?;
        }
        Ok(summary)
    }

    /// Restores one original path of a `files` snapshot to `dest`: a directory's content into
    /// `dest` (created), a file as `dest`. Mode and modification time of `dest` itself are set
    /// from the snapshot too.
    pub fn restore_path(
        &self,
        snap: &SnapshotInfo,
        original: &Path,
        dest: &Path,
    ) -> RepoResult<RestoreSummary> {
        let asset = Self::asset_of(snap);
        let relative = original.strip_prefix("/").unwrap_or(original);
        let sub = format!("/{asset}/{FILES_DIR}/{}", relative.display());
        let repo = self.indexed()?;
        let node = repo
            .node_from_snapshot_and_path(&snap.file, &sub)
            .map_err(|e| RepoError::BadSnapshot {
                asset: asset.to_owned(),
                snapshot: snap.short_id.clone(),
                detail: format!("find {sub}: {}", crate::error::short(&e)),
            })?;
        let summary = if node.is_dir() {
            self.restore_dir(&repo, &node, dest, false)?
        } else if node.is_file() {
            let mut file =
                std::fs::File::create(dest).map_err(|e| RepoError::io("create", dest, e))?;
            repo.dump(&node, &mut file)
                .map_err(|e| self.err(&format!("restore {}", dest.display()), &e))?;
            file.sync_all()
                .map_err(|e| RepoError::io("write", dest, e))?;
            RestoreSummary {
                files: 1,
                dirs: 0,
                bytes: dest.metadata().map(|m| m.len()).unwrap_or(0),
            }
        } else {
            return Err(RepoError::BadSnapshot {
                asset: asset.to_owned(),
                snapshot: snap.short_id.clone(),
                detail: format!("{sub} is neither a directory nor a file"),
            });
        };
        apply_node_meta(dest, &node.meta);
        Ok(summary)
    }
}

/// Sets mode and modification time of a restored root from its node; best effort, as restic.
fn apply_node_meta(path: &Path, meta: &rustic_core::repofile::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(mode) = meta.mode {
        // Go's FileMode keeps the permission bits in the low 9 bits.
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o777));
    }
    if let Some(mtime) = meta.mtime {
        let secs = u64::try_from(mtime.as_second()).unwrap_or(0);
        let time = std::time::UNIX_EPOCH
            + std::time::Duration::new(secs, u32::try_from(mtime.subsec_nanosecond()).unwrap_or(0));
        if let Ok(f) = std::fs::File::open(path) {
            let _ = f.set_modified(time);
        }
    }
}

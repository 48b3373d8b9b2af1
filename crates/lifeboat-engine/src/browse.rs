//! Reading one snapshot for the dashboard: its manifest, a directory of its tree, a file or
//! a folder as a download. Paths are relative to the asset's own directory in the snapshot
//! (`files/etc/app.conf`, `data/db.dump`), so nothing outside it can be named.

use std::io::Write;

use lifeboat_core::Manifest;
use lifeboat_repo::{EntryKind, SnapshotInfo, TreeEntry};

use crate::{EngineError, engine::Engine, report::DrillReport};

/// A snapshot with what its manifest records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotDetail {
    pub snapshot: SnapshotInfo,
    /// `None` when the snapshot holds no readable manifest (one restic wrote).
    pub manifest: Option<Manifest>,
}

/// What a download turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Download {
    File,
    /// A directory, written as a tar archive.
    Tar,
}

/// `rel` as a path inside asset `asset`'s directory of a snapshot, refusing `..` and
/// anything else that could climb out of it.
fn tree_path(asset: &str, rel: &str) -> Result<String, EngineError> {
    let mut path = format!("/{asset}");
    for part in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." || part.contains('\0') {
            return Err(EngineError::usage(
                format!("path {rel:?} climbs out of the snapshot"),
                Some("name a path inside the asset, without .."),
            ));
        }
        path.push('/');
        path.push_str(part);
    }
    Ok(path)
}

impl Engine {
    fn snapshot_of(
        &self,
        repo: &lifeboat_repo::Repo,
        asset: &str,
        id: &str,
    ) -> Result<SnapshotInfo, EngineError> {
        self.asset(asset)?;
        Ok(repo.find_snapshot(asset, Some(id))?)
    }

    /// Snapshot `id` of `asset` in the primary repository, its manifest, and the entries of
    /// its directory `rel`: one opening, one read of the index for both.
    ///
    /// # Errors
    /// An unknown asset, snapshot or path, a path that is not a directory, or a repository
    /// that cannot be read.
    pub fn browse(
        &self,
        asset: &str,
        id: &str,
        rel: &str,
    ) -> Result<(SnapshotDetail, Vec<TreeEntry>), EngineError> {
        let path = tree_path(asset, rel)?;
        let repo = self.open_primary()?;
        let snapshot = self.snapshot_of(&repo, asset, id)?;
        let reader = repo.reader()?;
        let entries = reader.list_dir(&snapshot, &path)?;
        let manifest = reader.read_manifest(&snapshot).ok();
        Ok((SnapshotDetail { snapshot, manifest }, entries))
    }

    /// What `rel` is in snapshot `id` of `asset`, to name a download before its bytes flow.
    ///
    /// # Errors
    /// As [`Engine::browse`].
    pub fn browse_entry(&self, asset: &str, id: &str, rel: &str) -> Result<TreeEntry, EngineError> {
        let path = tree_path(asset, rel)?;
        let repo = self.open_primary()?;
        let snap = self.snapshot_of(&repo, asset, id)?;
        Ok(repo.reader()?.entry_at(&snap, &path)?)
    }

    /// Writes file `rel` of snapshot `id` of `asset` into `out`, or the directory `rel` as a
    /// tar archive. Holds a shared lock meanwhile, so a prune cannot remove what it reads.
    ///
    /// # Errors
    /// As [`Engine::browse`], a symlink or special file, or `out` failing.
    pub fn download(
        &self,
        asset: &str,
        id: &str,
        rel: &str,
        out: &mut dyn Write,
    ) -> Result<Download, EngineError> {
        let path = tree_path(asset, rel)?;
        let repo = self.open_primary()?;
        let snap = self.snapshot_of(&repo, asset, id)?;
        let _lock = repo.lock(lifeboat_repo::LockKind::Shared, "download")?;
        let reader = repo.reader()?;
        match reader.entry_at(&snap, &path)?.kind {
            EntryKind::File => {
                reader.dump_file(&snap, &path, out)?;
                Ok(Download::File)
            }
            EntryKind::Dir => {
                reader.tar_dir(&snap, &path, out)?;
                Ok(Download::Tar)
            }
            EntryKind::Symlink | EntryKind::Special => Err(EngineError::usage(
                format!("{rel} is neither a file nor a directory"),
                Some("download the file it points to, or its directory"),
            )),
        }
    }

    /// The drill report saved as snapshot `id` (a prefix will do).
    ///
    /// # Errors
    /// No such drill, or the repository cannot be read.
    pub fn drill_report(&self, id: &str) -> Result<DrillReport, EngineError> {
        let repo = self.open_primary()?;
        let snap = repo.find_snapshot(crate::report::DRILLS_ASSET, Some(id))?;
        let manifest = repo.read_manifest(&snap)?;
        let mut bytes = Vec::new();
        repo.dump_artifact(&snap, &manifest, crate::report::REPORT_JSON, &mut bytes)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            EngineError::usage(
                format!("read drill report {id}: {e}"),
                Some("it was written by another version of Lifeboat"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::tree_path;

    #[test]
    fn paths_stay_inside_the_asset() {
        assert_eq!(tree_path("web", "").unwrap(), "/web");
        assert_eq!(
            tree_path("web", "/files//etc/./app.conf").unwrap(),
            "/web/files/etc/app.conf"
        );
        assert!(tree_path("web", "files/../../other").is_err());
        assert!(tree_path("web", "..").is_err());
    }
}

//! Changing what a repository holds: forgetting snapshots, pruning the data no snapshot
//! references, and copying snapshots into another repository.

use rustic_core::{
    PruneOptions, RepairIndexOptions,
    repofile::{SnapshotFile, SnapshotId},
};

use crate::{
    error::RepoResult,
    lock::{LockKind, RepoLock},
    repository::Repo,
    snapshot::SnapshotInfo,
};

/// What prune removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneSummary {
    pub packs_removed: u64,
    pub packs_repacked: u64,
    pub bytes_removed: u64,
    pub bytes_repacked: u64,
    pub bytes_unused_after: u64,
}

impl Repo {
    /// Removes snapshots (not their data: see [`Repo::prune`]).
    pub fn forget(&self, lock: &RepoLock, ids: &[String]) -> RepoResult<()> {
        self.check_lock(lock, LockKind::Exclusive)?;
        let ids: Vec<SnapshotId> = self
            .snapshots()?
            .into_iter()
            .filter(|s| ids.contains(&s.id))
            .map(|s| s.file.id)
            .collect();
        self.inner
            .delete_snapshots(&ids)
            .map_err(|e| self.err("forget snapshots", &e))
    }

    /// Removes data no snapshot references. Packs are deleted in two phases (marked, then
    /// removed on a later prune after rustic's keep-delete delay) so that a backup running
    /// concurrently never loses a pack it is about to reference.
    pub fn prune(&self, lock: &RepoLock, dry_run: bool) -> RepoResult<PruneSummary> {
        self.check_lock(lock, LockKind::Exclusive)?;
        // An interrupted backup leaves packs that no index lists; index them so that prune
        // can see they are unused and remove them.
        if !dry_run {
            self.reopen()?
                .repair_index(&RepairIndexOptions::default(), false)
                .map_err(|e| self.err("index leftover packs", &e))?;
        }
        let repo = self
            .reopen()?
            .to_indexed_ids()
            .map_err(|e| self.err("read index", &e))?;
        // In a bucket with Object Lock nothing younger than the lock can go: such packs are
        // neither repacked nor removed (rustic's keep-pack).
        let opts = match self.object_lock() {
            Some(lock) => PruneOptions::default().keep_pack(
                jiff::Span::new().seconds(i64::try_from(lock.as_secs()).unwrap_or(i64::MAX)),
            ),
            None => PruneOptions::default(),
        };
        let plan = repo
            .prune_plan(&opts)
            .map_err(|e| self.err("plan prune", &e))?;
        let stats = &plan.stats;
        let summary = PruneSummary {
            packs_removed: stats.packs_to_delete.remove,
            packs_repacked: stats.packs.repack,
            bytes_removed: stats.size.iter().map(|(_, s)| s.remove).sum(),
            bytes_repacked: stats.size.iter().map(|(_, s)| s.repack).sum(),
            bytes_unused_after: stats.size_unref,
        };
        if !dry_run {
            repo.prune(&opts, plan).map_err(|e| self.err("prune", &e))?;
        }
        Ok(summary)
    }

    /// Copies snapshots into `target`, which must use the same chunker parameters. Snapshots
    /// the target has already are skipped; returns how many were copied.
    pub fn copy_to(
        &self,
        lock: &RepoLock,
        target: &Self,
        target_lock: &RepoLock,
        snaps: &[SnapshotInfo],
    ) -> RepoResult<usize> {
        self.check_lock(lock, LockKind::Shared)?;
        target.check_lock(target_lock, LockKind::Shared)?;
        let files: Vec<SnapshotFile> = snaps.iter().map(|s| s.file.clone()).collect();
        let target_indexed = target
            .reopen()?
            .to_indexed_ids()
            .map_err(|e| target.err("read index", &e))?;
        let relevant = target_indexed
            .relevant_copy_snapshots(|_| true, &files)
            .map_err(|e| target.err("compare snapshots", &e))?;
        let todo: Vec<&SnapshotFile> = relevant
            .iter()
            .filter(|c| c.relevant)
            .map(|c| &c.sn)
            .collect();
        let repo = self.indexed()?;
        repo.copy(&target_indexed, todo.iter().copied())
            .map_err(|e| self.err(&format!("copy to {}", target.name()), &e))?;
        Ok(todo.len())
    }
}

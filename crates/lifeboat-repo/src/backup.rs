//! [`Repo::backup`]: writing one asset's snapshot, its payload then its manifest.

use jiff::Timestamp;
use lifeboat_core::{BackupInput, MANIFEST_FORMAT, Manifest, Payload, VERSION};
use rustic_core::{BackupOptions, SnapshotOptions};

use crate::{
    error::{RepoError, RepoResult},
    lock::{LockKind, RepoLock},
    repository::Repo,
    snapshot::{SnapshotInfo, tags_for},
    source::AssetSource,
    spool::spool,
};

/// What [`Repo::backup`] produced.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub snapshot: SnapshotInfo,
    pub manifest: Manifest,
    /// Bytes added to the repository after deduplication and compression.
    pub added_bytes: u64,
}

impl Repo {
    /// Writes one asset's snapshot: its payload, then its manifest.
    ///
    /// Streams are first read to their end into spool files (see `spool.rs`): a stream that
    /// fails (a command exits non-zero) returns [`RepoError::SourceFailed`] before any snapshot
    /// exists. Atomic from a reader's view: the snapshot file is saved last, so a killed backup
    /// leaves only unreferenced data (removed by `prune`). Files that could not be read are
    /// listed in the manifest's warnings and the snapshot is kept.
    pub fn backup(
        &self,
        lock: &RepoLock,
        input: BackupInput,
        parent: Option<&SnapshotInfo>,
    ) -> RepoResult<BackupOutcome> {
        self.check_lock(lock, LockKind::Shared)?;
        let BackupInput {
            plan,
            asset,
            kind,
            source,
            reason,
            payload,
            mut facts,
        } = input;
        let started_at = Timestamp::now();
        let pending = facts.pending_tables.take();
        // Read every stream to its end first: a failed producer then leaves no snapshot.
        let (spooled, tree) = match payload {
            Payload::Streams(streams) => (
                Some(
                    streams
                        .into_iter()
                        .map(spool)
                        .collect::<Result<Vec<_>, _>>(),
                ),
                None,
            ),
            Payload::Tree(spec) => (None, Some(spec)),
        };
        let is_tree = tree.is_some();
        // Counts made beside the streams are waited for even when a stream failed, so the
        // source's session ends before the error is returned.
        let counted = pending.map(lifeboat_core::PendingTables::wait);
        let source_failed = |detail: String| RepoError::SourceFailed {
            asset: asset.clone(),
            detail,
        };
        let spooled = spooled.transpose().map_err(source_failed)?;
        if let Some(counted) = counted {
            facts.tables = counted.map_err(source_failed)?;
        }
        let template = Manifest {
            format: MANIFEST_FORMAT,
            plan: plan.clone(),
            asset: asset.clone(),
            kind,
            tool_version: VERSION.to_owned(),
            source,
            server_version: facts.server_version,
            started_at,
            finished_at: started_at,
            consistency: facts.consistency,
            artifacts: Vec::new(),
            files: None,
            tables: facts.tables,
            keys: facts.keys,
            integrity: facts.integrity,
            reason: reason.clone(),
            warnings: Vec::new(),
        };
        let description = template.summary().to_description();
        let mut opts = BackupOptions::default();
        let src = match tree {
            Some(spec) => AssetSource::tree(&asset, spec, template),
            None => AssetSource::streams(&asset, spooled.unwrap_or_default(), template),
        };
        match parent {
            // Unchanged files are taken from the parent without reading them: only safe for
            // trees, whose metadata tells when a file changed. Streams are always read.
            Some(p) if is_tree => opts.parent_opts.parents = vec![p.id.clone()],
            _ => opts.parent_opts.force = true,
        }
        let mut snap_opts = SnapshotOptions::default()
            .description(description)
            .command(format!("lifeboat backup {asset}"));
        snap_opts.tags = vec![tags_for(&plan, &asset, kind, reason.as_deref())];
        let snap = snap_opts
            .to_snapshot()
            .map_err(|e| self.err("prepare snapshot", &e))?;

        let indexed = self
            .reopen()?
            .to_indexed_ids()
            .map_err(|e| self.err("read index", &e))?;
        let root = src.root().to_path_buf();
        let result = indexed.archive(&opts, &src, snap, &[root]);
        let shared = std::sync::Arc::clone(&src.shared);
        drop(src);
        let saved = result.map_err(|e| RepoError::SourceFailed {
            asset: asset.clone(),
            detail: crate::error::short(&e),
        })?;
        let mut outcome = shared.lock();
        let Some(manifest) = outcome.manifest.take() else {
            let detail = outcome.warnings.join("; ");
            drop(outcome);
            self.inner
                .delete_snapshots(&[saved.id])
                .map_err(|e| self.err("delete failed snapshot", &e))?;
            return Err(RepoError::SourceFailed { asset, detail });
        };
        drop(outcome);
        let info = SnapshotInfo::from_file(saved);
        let added_bytes = info.added_bytes;
        Ok(BackupOutcome {
            snapshot: info,
            manifest,
            added_bytes,
        })
    }
}

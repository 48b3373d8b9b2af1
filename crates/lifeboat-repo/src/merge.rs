//! [`Repo::merge`]: snapshots of one asset's streamed artifacts folded into one that names
//! the same blobs (no data is read or uploaded again, only trees and a manifest are new). It
//! keeps a WAL archive's snapshot list short: many small pushes become one snapshot per hour
//! or day, which every reader (Lifeboat's and stock restic's) lists quickly again.

use std::{collections::BTreeMap, sync::Arc};

use lifeboat_core::{ArtifactRecord, Manifest};
use rustic_core::repofile::{Node, Tree};

use crate::{
    backup::{Commit, save_tree},
    error::{RepoError, RepoResult},
    lock::{LockKind, RepoLock},
    repository::Repo,
    snapshot::SnapshotInfo,
    source::DATA_DIR,
    write::{Known, Writer, known::id_bytes},
};

impl Repo {
    /// Writes one snapshot holding every artifact of `snaps` (all of one asset, streamed; the
    /// newest copy of a name wins), with `reason` and the newest one's time, then forgets
    /// `snaps`. Interrupted before the forget, both stay: readers see each artifact still.
    pub fn merge(
        &self,
        lock: &RepoLock,
        snaps: &[SnapshotInfo],
        reason: &str,
    ) -> RepoResult<SnapshotInfo> {
        self.check_lock(lock, LockKind::Exclusive)?;
        let mut sorted: Vec<&SnapshotInfo> = snaps.iter().collect();
        sorted.sort_by_key(|s| s.time);
        let (Some(oldest), Some(newest)) = (sorted.first(), sorted.last()) else {
            return Err(self.merge_err("nothing to merge".to_owned()));
        };
        let target = self.write_target()?;
        let known = Known::load(&self.inner).map_err(|e| self.err("read index", &e))?;
        let writer = Arc::new(Writer::start(target.clone(), known));
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        let mut records: BTreeMap<String, ArtifactRecord> = BTreeMap::new();
        let mut base = self.read_manifest(oldest)?;
        for snap in &sorted {
            let manifest = self.read_manifest(snap)?;
            if manifest.asset != base.asset || manifest.files.is_some() {
                return Err(self.merge_err(format!(
                    "snapshot {} is not a streamed snapshot of {}",
                    snap.short_id, base.asset
                )));
            }
            for node in self.data_nodes(&writer, snap, &manifest.asset)? {
                nodes.insert(node.name.clone(), node);
            }
            base.started_at = base.started_at.min(manifest.started_at);
            base.finished_at = base.finished_at.max(manifest.finished_at);
            records.extend(manifest.artifacts.into_iter().map(|a| (a.name.clone(), a)));
        }
        let tree = Tree {
            nodes: nodes.into_values().collect(),
        };
        let id = {
            let mut sealer = writer.sealer();
            save_tree(&writer, &mut sealer, &tree).map_err(|e| self.merge_err(e))?
        };
        let manifest = Manifest {
            artifacts: records.into_values().collect(),
            reason: Some(reason.to_owned()),
            ..base
        };
        let merged = self.commit(
            writer,
            &target,
            &manifest,
            Commit {
                tree: id,
                sub: DATA_DIR,
                parent: None,
                counts: (0, 0, 0),
                time: Some(newest.time),
            },
        )?;
        let ids: Vec<String> = snaps.iter().map(|s| s.id.clone()).collect();
        self.forget(lock, &ids)?;
        Ok(merged)
    }

    fn merge_err(&self, detail: String) -> RepoError {
        RepoError::Backend {
            action: "merge snapshots".to_owned(),
            name: self.config.name.clone(),
            detail,
        }
    }

    /// The nodes of a snapshot's `/ASSET/data` directory.
    fn data_nodes(
        &self,
        writer: &Writer,
        snap: &SnapshotInfo,
        asset: &str,
    ) -> RepoResult<Vec<Node>> {
        let target = writer.target();
        let mut id = id_bytes(&snap.file.tree);
        for name in [asset, DATA_DIR, ""] {
            let bytes = writer
                .known()
                .read_tree(target.backend.as_ref(), &target.key, &id)
                .ok_or_else(|| {
                    self.merge_err(format!("snapshot {}: a tree cannot be read", snap.short_id))
                })?;
            let tree: Tree = serde_json::from_slice(&bytes)
                .map_err(|e| self.merge_err(format!("snapshot {}: {e}", snap.short_id)))?;
            if name.is_empty() {
                return Ok(tree.nodes);
            }
            let node = tree.nodes.into_iter().find(|n| n.name == name);
            id = node
                .and_then(|n| n.subtree)
                .map(|s| id_bytes(&s))
                .ok_or_else(|| {
                    self.merge_err(format!(
                        "snapshot {} has no /{asset}/{DATA_DIR}",
                        snap.short_id
                    ))
                })?;
        }
        Ok(Vec::new())
    }
}

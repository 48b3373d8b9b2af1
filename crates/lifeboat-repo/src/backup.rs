//! [`Repo::backup`]: writing one asset's snapshot, its payload then its manifest, through
//! Lifeboat's own write path (`write/`).
//!
//! Layout of a snapshot of asset `A` (see docs/repository-format.md):
//!
//! ```text
//! /A/data/<artifact>            streamed artifacts (dumps, command output)
//! /A/files/<absolute path>      walked trees (files assets)
//! /A/lifeboat-format            marker naming the snapshot format
//! /A/lifeboat-manifest.json     written last, with every artifact's size and SHA-256
//! ```

use std::{fs, io::Read, sync::Arc};

use jiff::{Timestamp, Zoned};
use lifeboat_core::{
    ArtifactData, ArtifactRecord, BackupInput, FileFacts, MANIFEST_FORMAT, MANIFEST_NAME, Manifest,
    Payload, StreamArtifact, TreeSpec, VERSION,
};
use rustic_core::{
    FileType, Id, SnapshotOptions,
    repofile::{Chunker as ChunkerKind, Metadata, Node, NodeType, SnapshotSummary, Tree},
};
use sha2::{Digest, Sha256};

use crate::{
    error::{RepoError, RepoResult},
    lock::{LockKind, RepoLock},
    repository::Repo,
    snapshot::{SnapshotInfo, tags_for},
    source::{DATA_DIR, FILES_DIR, FORMAT_CONTENT, FORMAT_NAME},
    write::{self, ChunkSizes, Kind, Known, MasterKey, Tables, Target, TreeWalk, Writer},
};

/// What [`Repo::backup`] produced.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub snapshot: SnapshotInfo,
    pub manifest: Manifest,
    /// Bytes added to the repository after deduplication and compression.
    pub added_bytes: u64,
}

/// What the payload became: the id of the `data` or `files` directory's tree, and facts.
struct Stored {
    tree: [u8; 32],
    artifacts: Vec<ArtifactRecord>,
    files: Option<FileFacts>,
    warnings: Vec<String>,
    counts: (u64, u64, u64),
}

impl Repo {
    /// The master key, for Lifeboat's own reads and writes.
    pub(crate) fn master_key(&self) -> MasterKey {
        MasterKey::from_parts(&self.key.encrypt, &self.key.mac.k, &self.key.mac.r)
    }

    /// The repository's key, chunker and compression, for the write path.
    pub(crate) fn write_target(&self) -> RepoResult<Target> {
        let cfg = self.inner.config();
        let unsupported = |detail: String| RepoError::Backend {
            action: "prepare a backup".to_owned(),
            name: self.config.name.clone(),
            detail,
        };
        if cfg.chunker() == ChunkerKind::FixedSize {
            return Err(unsupported(
                "the repository uses fixed-size chunks; Lifeboat writes restic's \
                 content-defined chunks only (hint: give the asset a repository made by \
                 `lifeboat init` or `restic init`)"
                    .to_owned(),
            ));
        }
        let pol = cfg
            .poly()
            .map_err(|e| self.err("read the chunker polynomial", &e))?;
        let avg = cfg.chunk_size();
        let sizes = ChunkSizes {
            min: cfg.chunk_min_size(),
            max: cfg.chunk_max_size(),
            bits: usize::BITS - 1 - avg.max(2).leading_zeros(),
        };
        let level = cfg
            .zstd()
            .map_err(|e| self.err("read the compression", &e))?;
        Ok(Target {
            backend: self.config.backends()?.repository(),
            key: self.master_key(),
            // zstd's level 0 means its default, 3.
            level: level.map(|l| if l == 0 { 3 } else { l }),
            tables: Tables::for_polynomial(pol),
            sizes,
        })
    }

    /// Writes one asset's snapshot: its payload, then its manifest.
    ///
    /// Streams go from their producer straight into the repository; a stream that fails (a
    /// command exits non-zero) returns [`RepoError::SourceFailed`] and no snapshot is made
    /// (the packs already written are indexed, so the next backup reuses them and prune
    /// removes what nothing needs). Atomic from a reader's view: the snapshot file is saved
    /// last. Files that could not be read are listed in the manifest's warnings and the
    /// snapshot is kept.
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
        let pending_facts = facts.pending_consistency.take();
        let source_failed = |detail: String| RepoError::SourceFailed {
            asset: asset.clone(),
            detail,
        };
        let prepared = self.write_target().and_then(|target| {
            let known = Known::load(&self.inner).map_err(|e| self.err("read index", &e))?;
            Ok((target, known))
        });
        let (target, known) = match prepared {
            Ok(p) => p,
            Err(e) => {
                // The source's counting session ends before the error is returned.
                if let Some(p) = pending {
                    let _ = p.wait();
                }
                if let Some(p) = pending_facts {
                    let _ = p.wait();
                }
                return Err(e);
            }
        };
        let writer = Arc::new(Writer::start(target.clone(), known));
        let is_tree = matches!(payload, Payload::Tree(_));
        let stored = match payload {
            Payload::Streams(streams) => {
                crate::spool::sweep();
                store_streams(&writer, &asset, streams)
            }
            Payload::Tree(spec) => {
                let parent_files = parent.and_then(|p| self.parent_files_tree(&writer, p, &asset));
                store_tree(&writer, spec, parent_files)
            }
        };
        // Counts made beside the streams are waited for even when a stream failed, so the
        // source's session ends before the error is returned.
        let counted = pending.map(lifeboat_core::PendingTables::wait);
        let learned = pending_facts.map(lifeboat_core::PendingFacts::wait);
        let result = stored.and_then(|stored| {
            if let Some(counted) = counted {
                facts.tables = counted?;
            }
            if let Some(learned) = learned {
                facts.consistency.extend(learned?);
            }
            Ok(stored)
        });
        let stored = match result {
            Ok(s) => s,
            Err(detail) => {
                // What was uploaded is indexed; no snapshot names it.
                let _ = finish(writer);
                return Err(source_failed(detail));
            }
        };
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            plan: plan.clone(),
            asset: asset.clone(),
            kind,
            tool_version: VERSION.to_owned(),
            source,
            server_version: facts.server_version,
            started_at,
            finished_at: Timestamp::now(),
            consistency: facts.consistency,
            artifacts: stored.artifacts.clone(),
            files: stored.files.clone(),
            tables: facts.tables,
            keys: facts.keys,
            integrity: facts.integrity,
            reason: reason.clone(),
            warnings: stored.warnings.clone(),
        };
        let parent = (is_tree)
            .then(|| parent.and_then(|p| p.id.parse::<Id>().ok()))
            .flatten();
        let info = self.commit(
            writer,
            &target,
            &manifest,
            Commit {
                tree: stored.tree,
                sub: if is_tree { FILES_DIR } else { DATA_DIR },
                parent,
                counts: stored.counts,
                time: None,
            },
        )?;
        let added_bytes = info.added_bytes;
        Ok(BackupOutcome {
            snapshot: info,
            manifest,
            added_bytes,
        })
    }

    fn save_snapshot_file(
        &self,
        target: &Target,
        snap: &rustic_core::repofile::SnapshotFile,
    ) -> RepoResult<Id> {
        let json = serde_json::to_vec(snap).map_err(|e| RepoError::Backend {
            action: "write the snapshot".to_owned(),
            name: self.config.name.clone(),
            detail: e.to_string(),
        })?;
        let sealed = write::Sealer::new(target.key.clone(), target.level).file(&json);
        let id = Id::new(Sha256::digest(&sealed).into());
        target
            .backend
            .write_bytes(FileType::Snapshot, &id, true, sealed.into())
            .map_err(|e| self.err("write the snapshot", &e))?;
        Ok(id)
    }

    /// The parent snapshot's `/A/files` tree, to skip files that did not change.
    fn parent_files_tree(
        &self,
        writer: &Writer,
        parent: &SnapshotInfo,
        asset: &str,
    ) -> Option<[u8; 32]> {
        let snap = self
            .inner
            .get_snapshot_from_str(&parent.id, |_| true)
            .ok()?;
        let target = writer.target();
        let mut id = write::known::id_bytes(&snap.tree);
        for name in [asset, FILES_DIR] {
            let bytes = writer
                .known()
                .read_tree(target.backend.as_ref(), &target.key, &id)?;
            let tree: Tree = serde_json::from_slice(&bytes).ok()?;
            let node = tree.nodes.into_iter().find(|n| n.name == name)?;
            id = write::known::id_bytes(&*node.subtree?);
        }
        Some(id)
    }
}

/// What [`Repo::commit`] needs besides the manifest.
#[derive(Clone, Copy)]
pub(crate) struct Commit {
    /// The payload's tree (`data` or `files`).
    pub tree: [u8; 32],
    pub sub: &'static str,
    pub parent: Option<Id>,
    /// Files new, changed and unmodified.
    pub counts: (u64, u64, u64),
    /// The snapshot's time; now unless given.
    pub time: Option<Timestamp>,
}

impl Repo {
    /// Writes the asset's tree (payload, format marker, manifest) and the root tree, finishes
    /// the writer (packs and index uploaded), then saves the snapshot file: the moment the
    /// snapshot exists for every reader.
    pub(crate) fn commit(
        &self,
        writer: Arc<Writer>,
        target: &Target,
        manifest: &Manifest,
        commit: Commit,
    ) -> RepoResult<SnapshotInfo> {
        let asset = manifest.asset.clone();
        let failed = |detail: String| RepoError::SourceFailed {
            asset: asset.clone(),
            detail,
        };
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| failed(e.to_string()))?;
        let root = {
            let mut sealer = writer.sealer();
            let blob =
                |sealer: &mut write::Sealer, bytes: &[u8]| writer.save(sealer, Kind::Data, bytes);
            let marker = blob(&mut sealer, FORMAT_CONTENT);
            let manifest_blob = blob(&mut sealer, &json);
            let asset_tree = Tree {
                nodes: vec![
                    dir_node(commit.sub, commit.tree),
                    file_node(
                        FORMAT_NAME,
                        0o644,
                        FORMAT_CONTENT.len() as u64,
                        vec![marker],
                    ),
                    file_node(MANIFEST_NAME, 0o644, json.len() as u64, vec![manifest_blob]),
                ],
            };
            let asset_id = save_tree(&writer, &mut sealer, &asset_tree).map_err(failed)?;
            let root = Tree {
                nodes: vec![dir_node(&asset, asset_id)],
            };
            save_tree(&writer, &mut sealer, &root).map_err(failed)?
        };
        let stats = finish(writer).map_err(|e| RepoError::Backend {
            action: "write".to_owned(),
            name: self.config.name.clone(),
            detail: e,
        })?;
        let description = manifest.summary().to_description();
        let mut snap_opts = SnapshotOptions::default()
            .description(description)
            .command(format!("lifeboat backup {asset}"));
        snap_opts.tags = vec![tags_for(
            &manifest.plan,
            &asset,
            manifest.kind,
            manifest.reason.as_deref(),
        )];
        if let Some(t) = commit.time {
            snap_opts = snap_opts.time(t.to_zoned(jiff::tz::TimeZone::system()));
        }
        let mut snap = snap_opts
            .to_snapshot()
            .map_err(|e| self.err("prepare snapshot", &e))?;
        snap.tree = Id::new(root).into();
        snap.paths = rustic_core::repofile::StringList::default();
        snap.paths.add(format!("/{asset}"));
        snap.parent = commit.parent.map(Into::into);
        let mut summary = SnapshotSummary::default();
        let (new, changed, unmodified) = commit.counts;
        summary.files_new = new;
        summary.files_changed = changed;
        summary.files_unmodified = unmodified;
        summary.total_files_processed = new + changed + unmodified;
        summary.total_bytes_processed = manifest.payload_bytes();
        summary.data_blobs = stats.data_blobs;
        summary.tree_blobs = stats.tree_blobs;
        summary.data_added_files = stats.data_added;
        summary.data_added_files_packed = stats.data_added_packed;
        summary.data_added_trees = stats.trees_added;
        summary.data_added_trees_packed = stats.trees_added_packed;
        summary.data_added = stats.data_added + stats.trees_added;
        summary.data_added_packed = stats.data_added_packed + stats.trees_added_packed;
        summary.command = format!("lifeboat backup {asset}");
        let started_at = manifest.started_at;
        let start = started_at.to_zoned(jiff::tz::TimeZone::system());
        let end = Zoned::now();
        let secs = end.timestamp().duration_since(started_at).as_secs_f64();
        summary.backup_start = start;
        summary.backup_end = end;
        summary.backup_duration = secs;
        summary.total_duration = secs;
        snap.summary = Some(summary);
        snap.id = self.save_snapshot_file(target, &snap)?.into();
        Ok(SnapshotInfo::from_file(snap))
    }
}

/// Finishes the writer once every stage that shared it has stopped.
fn finish(writer: Arc<Writer>) -> Result<write::Totals, String> {
    Arc::try_unwrap(writer)
        .map_err(|_| "a writer thread is still running".to_owned())?
        .finish()
}

fn store_streams(
    writer: &Arc<Writer>,
    asset: &str,
    mut streams: Vec<StreamArtifact>,
) -> Result<Stored, String> {
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    let pool = write::stream::Pool::start(writer);
    let mut sealer = writer.sealer();
    let mut tree = Tree::default();
    let mut artifacts = Vec::new();
    for artifact in streams {
        let name = artifact.name;
        let reader: Box<dyn Read + Send> = match artifact.data {
            ArtifactData::Stream(open) => open().map_err(|e| format!("start {name}: {e}"))?,
            // A file the source wrote: read where it is, removed when done.
            ArtifactData::File(path) => {
                let file =
                    fs::File::open(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
                Box::new(KeepPath { file, _path: path })
            }
        };
        let saved = pool
            .save(writer, reader)
            .map_err(|e| format!("{name}: {e}"))?;
        artifacts.push(ArtifactRecord {
            path: format!("/{asset}/{DATA_DIR}/{name}"),
            name: name.clone(),
            size: saved.size,
            sha256: saved.sha256,
        });
        tree.nodes
            .push(file_node(&name, 0o600, saved.size, saved.content));
    }
    drop(pool);
    let id = save_tree(writer, &mut sealer, &tree)?;
    Ok(Stored {
        tree: id,
        artifacts,
        files: None,
        warnings: Vec::new(),
        counts: (0, 0, 0),
    })
}

fn store_tree(
    writer: &Arc<Writer>,
    spec: TreeSpec,
    parent: Option<[u8; 32]>,
) -> Result<Stored, String> {
    let walk = TreeWalk::new(Arc::clone(writer), spec)?;
    let (id, saved) = walk.run(parent)?;
    Ok(Stored {
        tree: id,
        artifacts: Vec::new(),
        files: Some(saved.facts),
        warnings: saved.warnings,
        counts: (saved.files_new, saved.files_changed, saved.files_unmodified),
    })
}

pub(crate) fn save_tree(
    writer: &Writer,
    sealer: &mut write::Sealer,
    tree: &Tree,
) -> Result<[u8; 32], String> {
    let (bytes, id) = tree
        .serialize()
        .map_err(|e| format!("serialize a tree: {e}"))?;
    let id = write::known::id_bytes(&id);
    writer.save_with_id(sealer, Kind::Tree, id, &bytes);
    Ok(id)
}

/// A source's file, removed once read.
struct KeepPath {
    file: fs::File,
    _path: tempfile::TempPath,
}

impl Read for KeepPath {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf)
    }
}

fn dir_node(name: &str, subtree: [u8; 32]) -> Node {
    const GO_MODE_DIR: u32 = 1 << 31;
    let meta = Metadata {
        mode: Some(GO_MODE_DIR | 0o755),
        mtime: Some(Timestamp::now()),
        ..Metadata::default()
    };
    let mut node = Node::new_node(std::ffi::OsStr::new(name), NodeType::Dir, meta);
    node.subtree = Some(Id::new(subtree).into());
    node
}

fn file_node(name: &str, mode: u32, size: u64, content: Vec<[u8; 32]>) -> Node {
    let meta = Metadata {
        mode: Some(mode),
        mtime: Some(Timestamp::now()),
        size,
        ..Metadata::default()
    };
    let mut node = Node::new_node(std::ffi::OsStr::new(name), NodeType::File, meta);
    node.content = Some(content.into_iter().map(|c| Id::new(c).into()).collect());
    node
}

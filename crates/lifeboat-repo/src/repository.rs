//! [`Repo`]: one opened repository and every operation Lifeboat performs on it.
//!
//! Every method blocks and may do network I/O. rustic's S3 backend runs its own tokio runtime
//! and panics when called from an async task: async callers go through [`crate::blocking`].

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use jiff::Timestamp;
use lifeboat_core::{
    BackupInput, MANIFEST_FORMAT, MANIFEST_NAME, Manifest, Payload, RepoLocation, VERSION,
};
use rustic_core::{
    BackupOptions, ConfigOptions, Credentials, IndexedFullStatus, KeyOptions, LocalDestination,
    LsOptions, OpenStatus, PruneOptions, RepairIndexOptions, Repository, RepositoryOptions,
    RestoreOptions, SnapshotOptions,
    repofile::{MasterKey, SnapshotFile, SnapshotId},
};
use sha2::{Digest, Sha256};

use crate::{
    config::RepoConfig,
    error::{RepoError, RepoResult},
    lock::{LockInfo, LockKind, Locks, RepoLock, lock_wait_from_env},
    progress::{ProgressMode, bars},
    snapshot::{SnapshotInfo, tags_for},
    source::{AssetSource, DATA_DIR, FILES_DIR},
    spool::spool,
};

/// An opened repository.
pub struct Repo {
    pub(crate) config: RepoConfig,
    progress: ProgressMode,
    /// Kept so that later operations re-open without deriving the key from the password again
    /// (rustic's typestate consumes the repository on each indexing).
    key: MasterKey,
    locks: Arc<Locks>,
    pub(crate) inner: Repository<OpenStatus>,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("name", &self.config.name)
            .field("location", &self.config.location_text())
            .finish_non_exhaustive()
    }
}

/// What [`Repo::backup`] produced.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub snapshot: SnapshotInfo,
    pub manifest: Manifest,
    /// Bytes added to the repository after deduplication and compression.
    pub added_bytes: u64,
}

/// What a restore of a tree did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreSummary {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// What prune removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneSummary {
    pub packs_removed: u64,
    pub packs_repacked: u64,
    pub bytes_removed: u64,
    pub bytes_repacked: u64,
    pub bytes_unused_after: u64,
}

fn options(progress: ProgressMode, config: &RepoConfig) -> RepositoryOptions {
    // A local repository is as fast as a cache, so only remote ones get one.
    let local = matches!(config.location, lifeboat_core::RepoLocation::Local { .. });
    let _ = progress;
    RepositoryOptions::default().no_cache(local)
}

fn new_repository(config: &RepoConfig, progress: ProgressMode) -> RepoResult<Repository<()>> {
    let backends = config.backends()?;
    Repository::new_with_progress(&options(progress, config), &backends, bars(progress))
        .map_err(|err| RepoError::backend("open", &config.name, &err))
}

impl Repo {
    /// Creates a new repository. Refuses when one already exists at the location.
    pub fn init(config: &RepoConfig, progress: ProgressMode) -> RepoResult<Self> {
        let repo = new_repository(config, progress)?;
        if Self::exists_raw(&repo, config)? {
            return Err(RepoError::AlreadyExists {
                name: config.name.clone(),
                location: config.location_text(),
            });
        }
        let inner = repo
            .init(
                &Credentials::password(config.password.expose()),
                &KeyOptions::default(),
                &ConfigOptions::default(),
            )
            .map_err(|err| RepoError::backend("init", &config.name, &err))?;
        Self::from_open(config, progress, inner)
    }

    /// Creates a new repository with the same chunker parameters as `like`, so that copying
    /// snapshots from `like` keeps them deduplicated.
    pub fn init_like(config: &RepoConfig, like: &Self, progress: ProgressMode) -> RepoResult<Self> {
        let repo = new_repository(config, progress)?;
        if Self::exists_raw(&repo, config)? {
            return Err(RepoError::AlreadyExists {
                name: config.name.clone(),
                location: config.location_text(),
            });
        }
        let mut file = like.inner.config().clone();
        file.id = rustic_core::Id::random().into();
        file.is_hot = None;
        let inner = repo
            .init_with_config(
                &Credentials::password(config.password.expose()),
                &KeyOptions::default(),
                file,
            )
            .map_err(|err| RepoError::backend("init", &config.name, &err))?;
        Self::from_open(config, progress, inner)
    }

    /// Opens an existing repository: [`RepoError::NotFound`] when there is none,
    /// [`RepoError::WrongPassword`] when no key matches.
    pub fn open(config: &RepoConfig, progress: ProgressMode) -> RepoResult<Self> {
        let repo = new_repository(config, progress)?;
        if !Self::exists_raw(&repo, config)? {
            return Err(RepoError::NotFound {
                name: config.name.clone(),
                location: config.location_text(),
            });
        }
        let inner = repo
            .open(&Credentials::password(config.password.expose()))
            .map_err(|err| {
                if err.is_code("C002") {
                    RepoError::WrongPassword {
                        name: config.name.clone(),
                        location: config.location_text(),
                    }
                } else {
                    RepoError::backend("open", &config.name, &err)
                }
            })?;
        Self::from_open(config, progress, inner)
    }

    fn from_open(
        config: &RepoConfig,
        progress: ProgressMode,
        inner: Repository<OpenStatus>,
    ) -> RepoResult<Self> {
        let key = inner.key();
        let locks = Arc::new(Locks::new(&config.name, config.lock_store()?, &key));
        Ok(Self {
            config: config.clone(),
            progress,
            key,
            locks,
            inner,
        })
    }

    /// Locks the repository for one job (see `lock.rs` for the rule), waiting for conflicting
    /// locks up to `$LIFEBOAT_LOCK_WAIT` (10 minutes unless set).
    pub fn lock(&self, kind: LockKind, operation: &str) -> RepoResult<RepoLock> {
        self.lock_waiting(kind, operation, lock_wait_from_env())
    }

    /// [`Repo::lock`] with an explicit wait.
    pub fn lock_waiting(
        &self,
        kind: LockKind,
        operation: &str,
        wait: Duration,
    ) -> RepoResult<RepoLock> {
        RepoLock::acquire(Arc::clone(&self.locks), kind, operation, wait)
    }

    /// Every lock in the repository, Lifeboat's and restic's, with whether it is stale.
    pub fn locks(&self) -> RepoResult<Vec<LockInfo>> {
        Ok(self
            .locks
            .all()?
            .into_iter()
            .map(|(_, info)| info)
            .collect())
    }

    /// Removes stale locks, or every lock with `all`; returns the removed ones.
    pub fn unlock(&self, all: bool) -> RepoResult<Vec<LockInfo>> {
        self.locks.remove(all)
    }

    /// Refuses an operation whose lock is of another repository or too weak.
    pub(crate) fn check_lock(&self, lock: &RepoLock, needs: LockKind) -> RepoResult<()> {
        if !lock.covers(&self.locks, needs) {
            return Err(RepoError::Backend {
                action: "lock".to_owned(),
                name: self.config.name.clone(),
                detail: format!("this operation needs a {needs:?} lock of this repository"),
            });
        }
        Ok(())
    }

    /// A fresh handle on the same repository, opened with the cached key.
    fn reopen(&self) -> RepoResult<Repository<OpenStatus>> {
        new_repository(&self.config, self.progress)?
            .open(&Credentials::Masterkey(self.key.clone()))
            .map_err(|e| self.err("open", &e))
    }

    fn exists_raw(repo: &Repository<()>, config: &RepoConfig) -> RepoResult<bool> {
        repo.config_id()
            .map(|id| id.is_some())
            .map_err(|err| RepoError::backend("read config", &config.name, &err))
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.config.name
    }

    #[must_use]
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// True when both repositories chunk data the same way, so copies stay deduplicated.
    #[must_use]
    pub fn same_chunker(&self, other: &Self) -> bool {
        self.inner.config().has_same_chunker(other.inner.config())
    }

    pub(crate) fn err(&self, action: &str, err: &rustic_core::RusticError) -> RepoError {
        RepoError::backend(action, &self.config.name, err)
    }

    /// Bytes the repository takes in its store: every file (packs, index, snapshots, keys),
    /// as listed by the backend; no data is read.
    pub fn stored_bytes(&self) -> RepoResult<u64> {
        let infos = self
            .inner
            .infos_files()
            .map_err(|e| self.err("list files", &e))?;
        Ok(infos.repo.iter().map(|f| f.size).sum())
    }

    /// Every snapshot, oldest first, Lifeboat's and others' (e.g. written by restic).
    ///
    /// Needs no lock: a snapshot file that a concurrent forget removes between listing and
    /// reading makes rustic fail, so the listing is tried again (three times in all).
    pub fn snapshots(&self) -> RepoResult<Vec<SnapshotInfo>> {
        let mut attempt = 0;
        let files = loop {
            attempt += 1;
            match self.inner.get_all_snapshots() {
                Ok(files) => break files,
                Err(e) if attempt < 3 => {
                    tracing::debug!("list snapshots, try {attempt}: {}", crate::error::short(&e));
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(self.err("list snapshots", &e)),
            }
        };
        let mut snaps: Vec<SnapshotInfo> = files.into_iter().map(SnapshotInfo::from_file).collect();
        snaps.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        Ok(snaps)
    }

    /// The snapshot of `asset` whose id starts with `id`, or the newest regular (non-safety)
    /// one when `id` is `None`. A snapshot not written by Lifeboat may be named by id.
    pub fn find_snapshot(&self, asset: &str, id: Option<&str>) -> RepoResult<SnapshotInfo> {
        let snaps = self.snapshots()?;
        let not_found = |detail: String| RepoError::SnapshotNotFound {
            asset: asset.to_owned(),
            id: id.unwrap_or("latest").to_owned(),
            detail,
        };
        match id {
            None | Some("latest") => snaps
                .into_iter()
                .rev()
                .find(|s| s.asset.as_deref() == Some(asset) && !s.is_safety())
                .ok_or_else(|| not_found("the asset has no snapshot yet".to_owned())),
            Some(prefix) => {
                let matches: Vec<_> = snaps
                    .into_iter()
                    .filter(|s| s.id.starts_with(prefix))
                    .collect();
                match matches.as_slice() {
                    [] => Err(not_found("no snapshot has this id".to_owned())),
                    [one] => {
                        if one.asset.as_deref().is_some_and(|a| a != asset) {
                            return Err(not_found(format!(
                                "this snapshot belongs to asset {}",
                                one.asset.as_deref().unwrap_or_default()
                            )));
                        }
                        Ok(one.clone())
                    }
                    _ => Err(not_found(
                        "the id is ambiguous; give more characters".to_owned(),
                    )),
                }
            }
        }
    }

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

    pub(crate) fn indexed(&self) -> RepoResult<Repository<IndexedFullStatus>> {
        self.reopen()?
            .to_indexed()
            .map_err(|e| self.err("read index", &e))
    }

    fn asset_of(snap: &SnapshotInfo) -> &str {
        snap.asset.as_deref().unwrap_or("-")
    }

    /// Reads the whole index once, for many reads of manifests and artifacts after it.
    pub fn reader(&self) -> RepoResult<Reader<'_>> {
        Ok(Reader {
            repo: self,
            indexed: self.indexed()?,
        })
    }

    /// Reads the manifest stored in a Lifeboat snapshot.
    pub fn read_manifest(&self, snap: &SnapshotInfo) -> RepoResult<Manifest> {
        self.reader()?.read_manifest(snap)
    }

    /// Streams artifact `name` of `snap` into `out` and checks it against the manifest's
    /// SHA-256. On a mismatch the bytes were already written: callers that must not act on
    /// bad data write to a temporary place first, or call [`Repo::verify_artifact`] before.
    pub fn dump_artifact(
        &self,
        snap: &SnapshotInfo,
        manifest: &Manifest,
        name: &str,
        out: &mut dyn Write,
    ) -> RepoResult<u64> {
        self.reader()?.dump_artifact(snap, manifest, name, out)
    }

    /// Reads artifact `name` in full and checks its checksum, writing nothing.
    pub fn verify_artifact(
        &self,
        snap: &SnapshotInfo,
        manifest: &Manifest,
        name: &str,
    ) -> RepoResult<u64> {
        self.dump_artifact(snap, manifest, name, &mut io::sink())
    }

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
        let opts = PruneOptions::default();
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

    /// The location shown to users.
    #[must_use]
    pub fn location(&self) -> String {
        self.config.location_text()
    }
}

/// A repository with its index in memory: manifests and artifacts of many snapshots read
/// without loading the index again for each. From [`Repo::reader`].
pub struct Reader<'r> {
    repo: &'r Repo,
    indexed: Repository<IndexedFullStatus>,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("repo", self.repo)
            .finish_non_exhaustive()
    }
}

impl Reader<'_> {
    /// Reads the manifest stored in a Lifeboat snapshot.
    pub fn read_manifest(&self, snap: &SnapshotInfo) -> RepoResult<Manifest> {
        let asset = Repo::asset_of(snap);
        let bad = |detail: String| RepoError::BadSnapshot {
            asset: asset.to_owned(),
            snapshot: snap.short_id.clone(),
            detail,
        };
        let path = format!("/{asset}/{MANIFEST_NAME}");
        let node = self
            .indexed
            .node_from_snapshot_and_path(&snap.file, &path)
            .map_err(|e| {
                bad(format!(
                    "no manifest at {path}: {}",
                    crate::error::short(&e)
                ))
            })?;
        let mut buf = Vec::new();
        self.indexed
            .dump(&node, &mut buf)
            .map_err(|e| bad(format!("read {path}: {}", crate::error::short(&e))))?;
        serde_json::from_slice(&buf).map_err(|e| bad(format!("parse {path}: {e}")))
    }

    /// As [`Repo::dump_artifact`].
    pub fn dump_artifact(
        &self,
        snap: &SnapshotInfo,
        manifest: &Manifest,
        name: &str,
        out: &mut dyn Write,
    ) -> RepoResult<u64> {
        let asset = Repo::asset_of(snap);
        let record = manifest
            .artifact(name)
            .ok_or_else(|| RepoError::BadSnapshot {
                asset: asset.to_owned(),
                snapshot: snap.short_id.clone(),
                detail: format!(
                    "no artifact named {name}; it has {}",
                    manifest
                        .artifacts
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let path = format!("/{asset}/{DATA_DIR}/{name}");
        let node = self
            .indexed
            .node_from_snapshot_and_path(&snap.file, &path)
            .map_err(|e| RepoError::BadSnapshot {
                asset: asset.to_owned(),
                snapshot: snap.short_id.clone(),
                detail: format!("find {path}: {}", crate::error::short(&e)),
            })?;
        let mut writer = HashingWriter {
            inner: out,
            hasher: Sha256::new(),
            size: 0,
        };
        self.indexed.dump(&node, &mut writer).map_err(|e| {
            self.repo
                .err(&format!("read {path} of snapshot {}", snap.short_id), &e)
        })?;
        writer
            .inner
            .flush()
            .map_err(|e| RepoError::io("write", name, e))?;
        let actual = hex::encode(writer.hasher.finalize());
        if actual != record.sha256 || writer.size != record.size {
            return Err(RepoError::ChecksumMismatch {
                artifact: path,
                snapshot: snap.short_id.clone(),
                expected: record.sha256.clone(),
                actual,
            });
        }
        Ok(writer.size)
    }

    /// As [`Repo::verify_artifact`].
    pub fn verify_artifact(
        &self,
        snap: &SnapshotInfo,
        manifest: &Manifest,
        name: &str,
    ) -> RepoResult<u64> {
        self.dump_artifact(snap, manifest, name, &mut io::sink())
    }
}

/// Paths of a snapshot of a files asset, as backed up.
#[must_use]
pub fn original_paths(manifest: &Manifest) -> Vec<PathBuf> {
    manifest
        .files
        .as_ref()
        .map(|f| f.paths.iter().map(PathBuf::from).collect())
        .unwrap_or_default()
}

struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: Sha256,
    size: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
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

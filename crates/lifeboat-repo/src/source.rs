//! The `ReadSource` that turns one asset's payload into snapshot entries, manifest last.
//!
//! Layout of a snapshot of asset `A` (see docs/repository-format.md):
//!
//! ```text
//! /A/data/<artifact>            streamed artifacts (dumps, command output)
//! /A/files/<absolute path>      walked trees (files assets)
//! /A/lifeboat-manifest.json     written last
//! ```
//!
//! The manifest holds every artifact's checksum and the tree's counts, known only once the data
//! has been read; and its tree node must carry its real size, which rustic fixes when the node is
//! created. So the manifest node is created last, lazily: after the payload comes a small marker
//! file, `lifeboat-format`, and while rustic hands the marker on (its tree iterator looks one
//! entry ahead) the manifest entry waits until every payload entry has been read or dropped.
//! Payload entries are dispatched to rustic's workers before that wait, so it cannot deadlock,
//! whatever the number of workers. Streams arrive already spooled (see `spool.rs`).

use std::{
    collections::VecDeque,
    fs,
    io::{self, Cursor, Read},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
};

use jiff::Timestamp;
use lifeboat_core::{
    ArtifactRecord, FileFacts, MANIFEST_NAME, Manifest, TreeSpec, payload::ContentFilter,
};
use rustic_core::{
    Excludes, LocalSource, LocalSourceFilterOptions, LocalSourceSaveOptions, ReadSource,
    ReadSourceEntry, ReadSourceOpen, RusticError, RusticResult,
    repofile::{Metadata, Node, NodeType},
};

use crate::spool::Spooled;

/// Directory of streamed artifacts inside the asset's directory.
pub const DATA_DIR: &str = "data";
/// Directory of walked trees inside the asset's directory.
pub const FILES_DIR: &str = "files";
/// Marker file before the manifest; its content names the snapshot format.
pub const FORMAT_NAME: &str = "lifeboat-format";
const FORMAT_CONTENT: &[u8] = b"lifeboat snapshot format 1\n";

/// What the readers learn while the archiver runs.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub artifacts: Vec<ArtifactRecord>,
    /// Files that could not be read: the snapshot is kept, the backup is partial.
    pub warnings: Vec<String>,
    pub files: Option<FileFacts>,
    /// The manifest as written into the snapshot; `None` until then.
    pub manifest: Option<Manifest>,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    outcome: Mutex<Outcome>,
    /// Entries handed to the archiver whose reading has not finished. Atomic, outside the
    /// mutex: it changes twice per file, on different threads.
    pending: AtomicUsize,
    done: Condvar,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Outcome> {
        self.outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add_pending(&self) -> Pending {
        self.pending.fetch_add(1, Ordering::AcqRel);
        Pending(None)
    }

    fn finish_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Under the lock, so that a waiter between its check and its wait is not missed.
            let _guard = self.lock();
            self.done.notify_all();
        }
    }

    fn wait_idle(&self) -> MutexGuard<'_, Outcome> {
        let mut o = self.lock();
        while self.pending.load(Ordering::Acquire) > 0 {
            o = self
                .done
                .wait(o)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        o
    }
}

/// Decrements the pending count when the entry is done with: read to the end, failed, or
/// dropped unread (a file unchanged since the parent snapshot is never opened).
pub(crate) struct Pending(Option<Arc<Shared>>);

impl Pending {
    fn arm(mut self, shared: &Arc<Shared>) -> Self {
        self.0 = Some(Arc::clone(shared));
        self
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.finish_one();
        }
    }
}

type LocalOpen = <LocalSource as ReadSource>::Open;
type LocalIter = <LocalSource as ReadSource>::Iter;

/// How to open one entry.
pub(crate) enum EntryOpen {
    Spooled {
        path: PathBuf,
        pending: Pending,
    },
    File {
        inner: LocalOpen,
        source_path: PathBuf,
        filtered: Option<Vec<u8>>,
        shared: Arc<Shared>,
        pending: Pending,
    },
    Bytes(Vec<u8>),
}

impl ReadSourceOpen for EntryOpen {
    type Reader = Box<dyn Read + Send>;

    fn open(self) -> RusticResult<Self::Reader> {
        match self {
            Self::Spooled { path, pending } => {
                let file = fs::File::open(&path).map_err(|err| {
                    RusticError::new(
                        rustic_core::ErrorKind::InputOutput,
                        "open spool file {path}: {err}",
                    )
                    .attach_context("path", path.display().to_string())
                    .attach_context("err", err.to_string())
                })?;
                Ok(Box::new(Guarded {
                    inner: file,
                    _pending: pending,
                }))
            }
            Self::File {
                inner,
                source_path,
                filtered,
                shared,
                pending,
            } => {
                if let Some(content) = filtered {
                    return Ok(Box::new(WarnReader {
                        inner: Box::new(Cursor::new(content)),
                        path: source_path,
                        shared,
                        _pending: pending,
                    }));
                }
                match inner.open() {
                    Ok(file) => Ok(Box::new(WarnReader {
                        inner: Box::new(file),
                        path: source_path,
                        shared,
                        _pending: pending,
                    })),
                    Err(err) => {
                        shared.lock().warnings.push(format!(
                            "read {}: {}",
                            source_path.display(),
                            crate::error::short(&err)
                        ));
                        drop(pending);
                        Err(err)
                    }
                }
            }
            Self::Bytes(bytes) => Ok(Box::new(Cursor::new(bytes))),
        }
    }
}

/// A reader that keeps its entry pending until rustic is done with it.
struct Guarded<R> {
    inner: R,
    _pending: Pending,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Records a file that fails mid-read as a warning of the backup.
struct WarnReader {
    inner: Box<dyn Read + Send>,
    path: PathBuf,
    shared: Arc<Shared>,
    _pending: Pending,
}

impl Read for WarnReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|err| {
            self.shared
                .lock()
                .warnings
                .push(format!("read {}: {err}", self.path.display()));
        })
    }
}

/// One asset's payload as a rustic `ReadSource`.
pub(crate) struct AssetSource {
    asset_dir: PathBuf,
    payload: Mutex<Option<PayloadParts>>,
    template: Manifest,
    pub(crate) shared: Arc<Shared>,
}

enum PayloadParts {
    Streams(Vec<Spooled>),
    Tree(TreeSpec),
}

impl AssetSource {
    pub(crate) fn streams(asset: &str, artifacts: Vec<Spooled>, template: Manifest) -> Self {
        Self::new(asset, PayloadParts::Streams(artifacts), template)
    }

    pub(crate) fn tree(asset: &str, spec: TreeSpec, template: Manifest) -> Self {
        Self::new(asset, PayloadParts::Tree(spec), template)
    }

    fn new(asset: &str, parts: PayloadParts, template: Manifest) -> Self {
        Self {
            asset_dir: Path::new("/").join(asset),
            payload: Mutex::new(Some(parts)),
            template,
            shared: Arc::default(),
        }
    }

    /// The snapshot's single root path, `/<asset>`.
    pub(crate) fn root(&self) -> &Path {
        &self.asset_dir
    }
}

impl ReadSource for AssetSource {
    type Open = EntryOpen;
    type Iter = AssetEntries;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        let parts = self
            .payload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let stage = match parts {
            Some(PayloadParts::Streams(mut artifacts)) => {
                artifacts.sort_by(|a, b| a.name.cmp(&b.name));
                let asset_dir = &self.asset_dir;
                self.shared.lock().artifacts = artifacts
                    .iter()
                    .map(|a| ArtifactRecord {
                        name: a.name.clone(),
                        path: asset_dir.join(DATA_DIR).join(&a.name).display().to_string(),
                        size: a.size,
                        sha256: a.sha256.clone(),
                    })
                    .collect();
                Stage::Streams(artifacts.into())
            }
            Some(PayloadParts::Tree(spec)) => {
                let mut roots = spec.paths.clone();
                roots.sort_by(|a, b| a.as_path().cmp(b));
                self.shared.lock().files = Some(FileFacts {
                    paths: roots.iter().map(|p| p.display().to_string()).collect(),
                    ..FileFacts::default()
                });
                Stage::Tree {
                    roots: roots.into(),
                    walker: None,
                    spec,
                }
            }
            None => Stage::Done,
        };
        let sub = if matches!(stage, Stage::Tree { .. }) {
            FILES_DIR
        } else {
            DATA_DIR
        };
        let dirs = [self.asset_dir.clone(), self.asset_dir.join(sub)]
            .into_iter()
            .map(|path| ReadSourceEntry {
                node: synthetic_dir_node(&path),
                path,
                open: None,
            })
            .collect();
        AssetEntries {
            asset_dir: self.asset_dir.clone(),
            spooled: Vec::new(),
            dirs,
            emitted: std::collections::BTreeSet::new(),
            stage,
            template: Some(self.template.clone()),
            shared: Arc::clone(&self.shared),
        }
    }
}

enum Stage {
    Streams(VecDeque<Spooled>),
    Tree {
        roots: VecDeque<PathBuf>,
        walker: Option<Box<LocalIter>>,
        spec: TreeSpec,
    },
    /// Payload done: the format marker, then the manifest.
    Marker,
    Manifest,
    Done,
}

pub(crate) struct AssetEntries {
    asset_dir: PathBuf,
    /// Spool files, removed when the archive is done with this iterator.
    spooled: Vec<tempfile::TempPath>,
    /// Directory entries to yield before the payload, so they carry times and modes.
    dirs: VecDeque<ReadSourceEntry<EntryOpen>>,
    /// Ancestors of tree roots already yielded.
    emitted: std::collections::BTreeSet<PathBuf>,
    stage: Stage,
    template: Option<Manifest>,
    shared: Arc<Shared>,
}

impl AssetEntries {
    fn marker_entry(&self) -> ReadSourceEntry<EntryOpen> {
        let mut node = file_node(FORMAT_NAME, 0o644);
        node.meta.size = FORMAT_CONTENT.len() as u64;
        ReadSourceEntry {
            path: self.asset_dir.join(FORMAT_NAME),
            node,
            open: Some(EntryOpen::Bytes(FORMAT_CONTENT.to_vec())),
        }
    }

    /// Waits until the payload has been read, then writes the manifest with what it learnt.
    fn manifest_entry(&mut self) -> Option<ReadSourceEntry<EntryOpen>> {
        let mut manifest = self.template.take()?;
        let mut outcome = self.shared.wait_idle();
        manifest.finished_at = Timestamp::now();
        manifest.artifacts.clone_from(&outcome.artifacts);
        manifest.files.clone_from(&outcome.files);
        manifest.warnings.clone_from(&outcome.warnings);
        let json = match serde_json::to_vec_pretty(&manifest) {
            Ok(j) => j,
            Err(err) => {
                outcome
                    .warnings
                    .push(format!("serialize the manifest: {err}"));
                return None;
            }
        };
        outcome.manifest = Some(manifest);
        let mut node = file_node(MANIFEST_NAME, 0o644);
        node.meta.size = json.len() as u64;
        Some(ReadSourceEntry {
            path: self.asset_dir.join(MANIFEST_NAME),
            node,
            open: Some(EntryOpen::Bytes(json)),
        })
    }

    fn next_stream(&mut self) -> Option<RusticResult<ReadSourceEntry<EntryOpen>>> {
        let Stage::Streams(queue) = &mut self.stage else {
            return None;
        };
        let artifact = queue.pop_front()?;
        let path = self.asset_dir.join(DATA_DIR).join(&artifact.name);
        let mut node = file_node(&artifact.name, 0o600);
        node.meta.size = artifact.size;
        let pending = self.shared.add_pending().arm(&self.shared);
        let spool_path = artifact.path.to_path_buf();
        self.spooled.push(artifact.path);
        Some(Ok(ReadSourceEntry {
            node,
            open: Some(EntryOpen::Spooled {
                path: spool_path,
                pending,
            }),
            path,
        }))
    }

    fn next_tree_entry(&mut self) -> Option<RusticResult<ReadSourceEntry<EntryOpen>>> {
        loop {
            let Stage::Tree { roots, walker, .. } = &mut self.stage else {
                return None;
            };
            if let Some(w) = walker {
                match w.next() {
                    Some(Ok(entry)) => return Some(Ok(self.map_tree_entry(entry))),
                    Some(Err(err)) => {
                        self.shared.lock().warnings.push(crate::error::short(&err));
                        continue;
                    }
                    None => *walker = None,
                }
            }
            let root = roots.pop_front()?;
            let mut ancestors: Vec<PathBuf> = root
                .ancestors()
                .skip(1)
                .filter(|a| a.parent().is_some())
                .map(Path::to_path_buf)
                .collect();
            ancestors.reverse();
            for ancestor in ancestors {
                if self.emitted.insert(ancestor.clone())
                    && let Ok(meta) = fs::symlink_metadata(&ancestor)
                {
                    let node = dir_node(&ancestor, &meta);
                    let entry = ReadSourceEntry {
                        path: ancestor,
                        node,
                        open: None,
                    };
                    let mapped = self.map_tree_entry(entry);
                    self.dirs.push_back(mapped);
                }
            }
            let Stage::Tree { spec, .. } = &self.stage else {
                return None;
            };
            match open_root(&root, spec) {
                Ok((root_entry, iter)) => {
                    if let Stage::Tree { walker, .. } = &mut self.stage {
                        *walker = Some(Box::new(iter));
                    }
                    if let Some(entry) = root_entry {
                        let mapped = self.map_tree_entry(entry);
                        self.dirs.push_back(mapped);
                    }
                    if let Some(dir) = self.dirs.pop_front() {
                        return Some(Ok(dir));
                    }
                }
                Err(err) => self
                    .shared
                    .lock()
                    .warnings
                    .push(format!("read {}: {err}", root.display())),
            }
        }
    }

    fn map_tree_entry(&self, entry: ReadSourceEntry<LocalOpen>) -> ReadSourceEntry<EntryOpen> {
        let ReadSourceEntry {
            path: source_path,
            mut node,
            open,
        } = entry;
        let relative = source_path.strip_prefix("/").unwrap_or(&source_path);
        let path = self.asset_dir.join(FILES_DIR).join(relative);
        let filter = match &self.stage {
            Stage::Tree { spec, .. } => spec.filter,
            _ => None,
        };
        {
            let mut o = self.shared.lock();
            let facts = o.files.get_or_insert_with(FileFacts::default);
            match node.node_type {
                NodeType::Dir => facts.dirs += 1,
                NodeType::File => facts.files += 1,
                NodeType::Symlink { .. } => facts.symlinks += 1,
                _ => facts.other += 1,
            }
        }
        let open = open.map(|inner| {
            let filtered = filter.and_then(|f| apply_filter(f, &source_path, &self.shared));
            if let Some(content) = &filtered {
                node.meta.size = content.len() as u64;
            }
            {
                let mut o = self.shared.lock();
                let facts = o.files.get_or_insert_with(FileFacts::default);
                facts.bytes += node.meta.size;
                if filtered.is_some() {
                    facts.redacted += 1;
                }
            }
            let pending = self.shared.add_pending().arm(&self.shared);
            EntryOpen::File {
                inner,
                source_path,
                filtered,
                shared: Arc::clone(&self.shared),
                pending,
            }
        });
        ReadSourceEntry { path, node, open }
    }
}

impl Iterator for AssetEntries {
    type Item = RusticResult<ReadSourceEntry<EntryOpen>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(dir) = self.dirs.pop_front() {
            return Some(Ok(dir));
        }
        loop {
            match self.stage {
                Stage::Streams(_) => {
                    if let Some(next) = self.next_stream() {
                        return Some(next);
                    }
                    self.stage = Stage::Marker;
                }
                Stage::Tree { .. } => {
                    if let Some(next) = self.next_tree_entry() {
                        return Some(next);
                    }
                    if let Some(dir) = self.dirs.pop_front() {
                        return Some(Ok(dir));
                    }
                    self.stage = Stage::Marker;
                }
                Stage::Marker => {
                    self.stage = Stage::Manifest;
                    return Some(Ok(self.marker_entry()));
                }
                Stage::Manifest => {
                    self.stage = Stage::Done;
                    return self.manifest_entry().map(Ok);
                }
                Stage::Done => return None,
            }
        }
    }
}

/// Reads a file into memory and filters it. Files meant for redaction are small (`.env`).
fn apply_filter(filter: ContentFilter, path: &Path, shared: &Shared) -> Option<Vec<u8>> {
    match fs::read(path) {
        Ok(content) => Some(filter(&content)),
        Err(err) => {
            shared
                .lock()
                .warnings
                .push(format!("read {}: {err}", path.display()));
            // Never store the unfiltered content of a file meant for redaction.
            Some(Vec::new())
        }
    }
}

/// Starts walking one root path; also returns the root itself as an entry when it is a
/// directory, which rustic's walker skips, so that its mode and times are kept.
fn open_root(
    root: &Path,
    spec: &TreeSpec,
) -> Result<(Option<ReadSourceEntry<LocalOpen>>, LocalIter), String> {
    let meta = fs::symlink_metadata(root).map_err(|e| e.to_string())?;
    let mut excludes = Excludes::default();
    excludes.globs = spec.exclude.iter().map(|g| format!("!{g}")).collect();
    let mut filter = LocalSourceFilterOptions::default();
    filter.one_file_system = spec.one_file_system;
    let source = LocalSource::new(
        LocalSourceSaveOptions::default(),
        &excludes,
        &filter,
        &[root],
    )
    .map_err(|e| crate::error::short(&e))?;
    let root_entry = meta.is_dir().then(|| ReadSourceEntry {
        path: root.to_path_buf(),
        node: dir_node(root, &meta),
        open: None,
    });
    Ok((root_entry, source.entries()))
}

fn synthetic_dir_node(path: &Path) -> Node {
    let meta = Metadata {
        mode: Some(go_dir_mode(0o755)),
        mtime: Some(Timestamp::now()),
        ..Metadata::default()
    };
    let name = path
        .file_name()
        .unwrap_or_else(|| std::ffi::OsStr::new("/"));
    Node::new_node(name, NodeType::Dir, meta)
}

fn file_node(name: &str, mode: u32) -> Node {
    let meta = Metadata {
        mode: Some(mode),
        mtime: Some(Timestamp::now()),
        ..Metadata::default()
    };
    Node::new_node(std::ffi::OsStr::new(name), NodeType::File, meta)
}

fn dir_node(path: &Path, meta: &fs::Metadata) -> Node {
    let time = |secs: i64, nanos: i64| Timestamp::new(secs, i32::try_from(nanos).unwrap_or(0)).ok();
    let m = Metadata {
        mode: Some(go_dir_mode(meta.mode())),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        atime: time(meta.atime(), meta.atime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        uid: Some(meta.uid()),
        gid: Some(meta.gid()),
        inode: meta.ino(),
        device_id: meta.dev(),
        links: meta.nlink(),
        ..Metadata::default()
    };
    let name = path
        .file_name()
        .unwrap_or_else(|| std::ffi::OsStr::new("/"));
    Node::new_node(name, NodeType::Dir, m)
}

/// restic stores modes in Go's `io/fs.FileMode` layout, not POSIX `st_mode`.
const fn go_dir_mode(mode: u32) -> u32 {
    const GO_MODE_DIR: u32 = 1 << 31;
    const GO_MODE_SETUID: u32 = 1 << 23;
    const GO_MODE_SETGID: u32 = 1 << 22;
    const GO_MODE_STICKY: u32 = 1 << 20;
    let mut go = (mode & 0o777) | GO_MODE_DIR;
    if mode & 0o4000 != 0 {
        go |= GO_MODE_SETUID;
    }
    if mode & 0o2000 != 0 {
        go |= GO_MODE_SETGID;
    }
    if mode & 0o1000 != 0 {
        go |= GO_MODE_STICKY;
    }
    go
}

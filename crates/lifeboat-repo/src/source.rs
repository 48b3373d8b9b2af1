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
//! The manifest must hold the checksum of every stream and the counts of every tree, which are
//! known only once the data has been read. rustic archives entries in order on a pool of worker
//! threads, so the manifest is the last entry (`data` and `files` sort before
//! `lifeboat-manifest.json`) and its reader blocks until every earlier entry has been read or
//! dropped. Earlier entries are always dispatched before the manifest, so this cannot deadlock,
//! whatever the number of workers.

use std::{
    collections::VecDeque,
    fs,
    io::{self, Cursor, Read},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, MutexGuard},
};

use jiff::Timestamp;
use lifeboat_core::{
    ArtifactRecord, FileFacts, MANIFEST_NAME, Manifest, StreamArtifact, TreeSpec,
    payload::ContentFilter,
};
use rustic_core::{
    Excludes, LocalSource, LocalSourceFilterOptions, LocalSourceSaveOptions, ReadSource,
    ReadSourceEntry, ReadSourceOpen, RusticError, RusticResult,
    repofile::{Metadata, Node, NodeType},
};
use sha2::{Digest, Sha256};

/// Directory of streamed artifacts inside the asset's directory.
pub const DATA_DIR: &str = "data";
/// Directory of walked trees inside the asset's directory.
pub const FILES_DIR: &str = "files";

/// What the readers learn while the archiver runs.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Entries handed to the archiver whose reading has not finished.
    pending: usize,
    pub artifacts: Vec<ArtifactRecord>,
    /// Streams that failed: the snapshot must be discarded.
    pub failures: Vec<String>,
    /// Files that could not be read: the snapshot is kept, the backup is partial.
    pub warnings: Vec<String>,
    pub files: Option<FileFacts>,
    pub manifest_written: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    outcome: Mutex<Outcome>,
    done: Condvar,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Outcome> {
        self.outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add_pending(&self) -> Pending {
        self.lock().pending += 1;
        Pending(None)
    }

    fn finish_one(&self) {
        let mut o = self.lock();
        o.pending -= 1;
        if o.pending == 0 {
            self.done.notify_all();
        }
    }

    fn wait_idle(&self) -> MutexGuard<'_, Outcome> {
        let mut o = self.lock();
        while o.pending > 0 {
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

/// How to open one entry; `Reader` is boxed because the three kinds read differently.
pub(crate) enum EntryOpen {
    Stream {
        name: String,
        snapshot_path: String,
        open: lifeboat_core::payload::OpenStream,
        shared: Arc<Shared>,
        pending: Pending,
    },
    File {
        inner: LocalOpen,
        source_path: PathBuf,
        filtered: Option<Vec<u8>>,
        shared: Arc<Shared>,
        pending: Pending,
    },
    Manifest {
        template: Box<Manifest>,
        shared: Arc<Shared>,
    },
}

impl ReadSourceOpen for EntryOpen {
    type Reader = Box<dyn Read + Send>;

    fn open(self) -> RusticResult<Self::Reader> {
        match self {
            Self::Stream {
                name,
                snapshot_path,
                open,
                shared,
                pending,
            } => match open() {
                Ok(reader) => Ok(Box::new(ChecksumReader {
                    inner: FillReader(reader),
                    hasher: Sha256::new(),
                    size: 0,
                    name,
                    snapshot_path,
                    shared,
                    pending: Some(pending),
                })),
                Err(err) => {
                    shared.lock().failures.push(format!("start {name}: {err}"));
                    drop(pending);
                    Err(io_error(&err))
                }
            },
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
            Self::Manifest { template, shared } => {
                let mut outcome = shared.wait_idle();
                let mut manifest = *template;
                manifest.finished_at = Timestamp::now();
                manifest.artifacts.clone_from(&outcome.artifacts);
                manifest.artifacts.sort_by(|a, b| a.name.cmp(&b.name));
                manifest.files.clone_from(&outcome.files);
                manifest.warnings.clone_from(&outcome.warnings);
                let json = serde_json::to_vec_pretty(&manifest).map_err(|err| {
                    RusticError::with_source(
                        rustic_core::ErrorKind::Internal,
                        "serialize the manifest",
                        err,
                    )
                })?;
                outcome.manifest_written = true;
                Ok(Box::new(Cursor::new(json)))
            }
        }
    }
}

fn io_error(err: &io::Error) -> Box<RusticError> {
    RusticError::new(rustic_core::ErrorKind::InputOutput, "{err}")
        .attach_context("err", err.to_string())
}

/// Fills the caller's whole buffer on each read, until end of stream.
///
/// rustic's chunker shrinks its read size after a short read, which makes pipes 15-70x slower;
/// a pipe returns at most 64 KiB per read, so every stream goes through this.
pub struct FillReader<R>(pub R);

impl<R: Read> Read for FillReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.0.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(filled)
    }
}

/// Hashes a stream on its way into the repository and records the result at its end.
struct ChecksumReader<R> {
    inner: FillReader<R>,
    hasher: Sha256,
    size: u64,
    name: String,
    snapshot_path: String,
    shared: Arc<Shared>,
    pending: Option<Pending>,
}

impl<R: Read> Read for ChecksumReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_none() {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
                self.shared.lock().artifacts.push(ArtifactRecord {
                    name: self.name.clone(),
                    path: self.snapshot_path.clone(),
                    size: self.size,
                    sha256,
                });
                self.pending = None;
                Ok(0)
            }
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.size += n as u64;
                Ok(n)
            }
            Err(err) => {
                self.shared.lock().failures.push(err.to_string());
                self.pending = None;
                Err(err)
            }
        }
    }
}

impl<R> Drop for ChecksumReader<R> {
    fn drop(&mut self) {
        if self.pending.is_some() {
            self.shared
                .lock()
                .failures
                .push(format!("{}: stream was not read to its end", self.name));
        }
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
    Streams(Vec<StreamArtifact>),
    Tree(TreeSpec),
}

impl AssetSource {
    pub(crate) fn streams(asset: &str, artifacts: Vec<StreamArtifact>, template: Manifest) -> Self {
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
        AssetEntries {
            asset_dir: self.asset_dir.clone(),
            stage,
            template: Some(self.template.clone()),
            shared: Arc::clone(&self.shared),
        }
    }
}

enum Stage {
    Streams(VecDeque<StreamArtifact>),
    Tree {
        roots: VecDeque<PathBuf>,
        walker: Option<LocalIter>,
        spec: TreeSpec,
    },
    Done,
}

pub(crate) struct AssetEntries {
    asset_dir: PathBuf,
    stage: Stage,
    template: Option<Manifest>,
    shared: Arc<Shared>,
}

impl AssetEntries {
    fn manifest_entry(&mut self) -> Option<RusticResult<ReadSourceEntry<EntryOpen>>> {
        let template = self.template.take()?;
        let path = self.asset_dir.join(MANIFEST_NAME);
        let node = file_node(MANIFEST_NAME, 0o644);
        Some(Ok(ReadSourceEntry {
            path,
            node,
            open: Some(EntryOpen::Manifest {
                template: Box::new(template),
                shared: Arc::clone(&self.shared),
            }),
        }))
    }

    fn next_stream(&mut self) -> Option<RusticResult<ReadSourceEntry<EntryOpen>>> {
        let Stage::Streams(queue) = &mut self.stage else {
            return None;
        };
        let artifact = queue.pop_front()?;
        let path = self.asset_dir.join(DATA_DIR).join(&artifact.name);
        let node = file_node(&artifact.name, 0o600);
        let pending = self.shared.add_pending().arm(&self.shared);
        Some(Ok(ReadSourceEntry {
            node,
            open: Some(EntryOpen::Stream {
                name: artifact.name,
                snapshot_path: path.display().to_string(),
                open: artifact.open,
                shared: Arc::clone(&self.shared),
                pending,
            }),
            path,
        }))
    }

    fn next_tree_entry(&mut self) -> Option<RusticResult<ReadSourceEntry<EntryOpen>>> {
        loop {
            let Stage::Tree {
                roots,
                walker,
                spec,
            } = &mut self.stage
            else {
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
            match open_root(&root, spec) {
                Ok((root_entry, iter)) => {
                    *walker = Some(iter);
                    if let Some(entry) = root_entry {
                        return Some(Ok(self.map_tree_entry(entry)));
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
        let next = match self.stage {
            Stage::Streams(_) => self.next_stream(),
            Stage::Tree { .. } => self.next_tree_entry(),
            Stage::Done => None,
        };
        if next.is_some() {
            return next;
        }
        self.stage = Stage::Done;
        self.manifest_entry()
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

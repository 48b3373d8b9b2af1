//! Walked trees (files assets): directories on the calling thread, file contents on
//! [`FILE_WORKERS`] threads, each tree blob written as soon as its directory is done.
//!
//! With a parent snapshot, a file whose type, size, modification and change times and inode
//! are those of the parent's node, and whose blobs the repository still holds, keeps the
//! parent's content list without being opened.

use std::{
    collections::{BTreeMap, HashMap},
    ffi::{OsStr, OsString},
    fs,
    io::Read,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use crossbeam_channel::{Receiver, Sender, bounded};
use ignore::overrides::{Override, OverrideBuilder};
use jiff::Timestamp;
use lifeboat_core::{FileFacts, TreeSpec, payload::ContentFilter};
use rustic_core::repofile::{Metadata, Node, NodeType, Tree};

use super::{Chunker, FILE_WORKERS, Kind, QUEUED_FILES, Writer, known::id_bytes};

/// What a walk produced.
#[derive(Debug, Default)]
pub(crate) struct TreeSaved {
    pub facts: FileFacts,
    pub warnings: Vec<String>,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
}

struct FileJob {
    path: PathBuf,
    filter: Option<ContentFilter>,
    reply: Sender<FileDone>,
}

struct FileDone {
    content: Vec<[u8; 32]>,
    size: u64,
    warning: Option<String>,
    /// False when nothing could be read: the entry is left out of the snapshot.
    keep: bool,
}

enum Slot {
    Ready(Node),
    Pending(Node, Receiver<FileDone>),
}

/// One walk over a [`TreeSpec`].
pub(crate) struct TreeWalk {
    writer: Arc<Writer>,
    spec: TreeSpec,
    excludes: Override,
    jobs: Option<Sender<FileJob>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    sealer: super::Sealer,
    names: Names,
    out: TreeSaved,
    root_dev: u64,
}

impl TreeWalk {
    /// # Errors
    /// An exclude pattern that is not a valid glob.
    pub(crate) fn new(writer: Arc<Writer>, spec: TreeSpec) -> Result<Self, String> {
        let mut builder = OverrideBuilder::new("");
        for g in &spec.exclude {
            builder
                .add(&format!("!{g}"))
                .map_err(|e| format!("exclude pattern {g:?}: {e}"))?;
        }
        let excludes = builder
            .build()
            .map_err(|e| format!("exclude patterns: {e}"))?;
        let (tx, rx) = bounded::<FileJob>(QUEUED_FILES);
        let workers = (0..FILE_WORKERS)
            .map(|i| {
                let rx = rx.clone();
                let writer = Arc::clone(&writer);
                std::thread::Builder::new()
                    .name(format!("lifeboat-file-{i}"))
                    .spawn(move || file_worker(&writer, &rx))
                    .unwrap_or_else(|e| panic!("start a file worker: {e}"))
            })
            .collect();
        let sealer = writer.sealer();
        Ok(Self {
            writer,
            spec,
            excludes,
            jobs: Some(tx),
            workers,
            sealer,
            names: Names::default(),
            out: TreeSaved::default(),
            root_dev: 0,
        })
    }

    /// Walks every root path into one tree (their ancestors included, so paths are kept
    /// whole) and returns its id. `parent`: the same tree in the parent snapshot.
    pub(crate) fn run(mut self, parent: Option<[u8; 32]>) -> Result<([u8; 32], TreeSaved), String> {
        let mut top = Virtual::default();
        let mut roots = self.spec.paths.clone();
        roots.sort();
        for root in &roots {
            top.insert(root);
        }
        self.out.facts.paths = roots.iter().map(|p| p.display().to_string()).collect();
        let id = self.virtual_dir(&top, Path::new("/"), parent)?;
        self.jobs.take();
        for h in self.workers.drain(..) {
            if h.join().is_err() {
                return Err("a file worker panicked".to_owned());
            }
        }
        if let Some(err) = self.writer.failure() {
            return Err(err);
        }
        Ok((id, std::mem::take(&mut self.out)))
    }

    fn parent_tree(&self, id: Option<[u8; 32]>) -> HashMap<String, Node> {
        let Some(id) = id else {
            return HashMap::new();
        };
        let target = self.writer.target();
        self.writer
            .known()
            .read_tree(target.backend.as_ref(), &target.key, &id)
            .and_then(|bytes| serde_json::from_slice::<Tree>(&bytes).ok())
            .map(|t| t.nodes.into_iter().map(|n| (n.name.clone(), n)).collect())
            .unwrap_or_default()
    }

    fn virtual_dir(
        &mut self,
        v: &Virtual,
        at: &Path,
        parent: Option<[u8; 32]>,
    ) -> Result<[u8; 32], String> {
        let old = self.parent_tree(parent);
        let mut slots = Vec::new();
        for (name, child) in &v.children {
            let path = at.join(name);
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    self.out
                        .warnings
                        .push(format!("read {}: {e}", path.display()));
                    continue;
                }
            };
            if child.root {
                self.root_dev = meta.dev();
                if let Some(slot) = self.entry(&path, name, &meta, &old)? {
                    slots.push(slot);
                }
            } else {
                let mut node = self.node(name, &meta, NodeType::Dir);
                self.out.facts.dirs += 1;
                let sub = old
                    .get(&node.name)
                    .and_then(|n| n.subtree)
                    .map(|t| id_bytes(&t));
                node.subtree = Some(self.virtual_dir(child, &path, sub)?.into_tree_id());
                slots.push(Slot::Ready(node));
            }
        }
        self.finish_dir(slots)
    }

    fn dir(&mut self, path: &Path, parent: Option<[u8; 32]>) -> Result<[u8; 32], String> {
        let old = self.parent_tree(parent);
        let mut entries: Vec<(OsString, fs::Metadata)> = Vec::new();
        match fs::read_dir(path) {
            Ok(rd) => {
                for e in rd {
                    match e.and_then(|e| Ok((e.file_name(), e.metadata()?))) {
                        Ok(x) => entries.push(x),
                        Err(err) => self
                            .out
                            .warnings
                            .push(format!("read {}: {err}", path.display())),
                    }
                }
            }
            Err(err) => self
                .out
                .warnings
                .push(format!("read {}: {err}", path.display())),
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut slots = Vec::with_capacity(entries.len());
        for (name, meta) in entries {
            let full = path.join(&name);
            if self.excludes.matched(&full, meta.is_dir()).is_ignore() {
                continue;
            }
            if self.spec.one_file_system && meta.is_dir() && meta.dev() != self.root_dev {
                continue;
            }
            if let Some(slot) = self.entry(&full, &name, &meta, &old)? {
                slots.push(slot);
            }
        }
        self.finish_dir(slots)
    }

    /// One directory entry: a subdirectory is walked at once, a file is handed to a worker.
    fn entry(
        &mut self,
        path: &Path,
        name: &OsStr,
        meta: &fs::Metadata,
        old: &HashMap<String, Node>,
    ) -> Result<Option<Slot>, String> {
        let ft = meta.file_type();
        let facts = &mut self.out.facts;
        let node_type = if ft.is_dir() {
            facts.dirs += 1;
            NodeType::Dir
        } else if ft.is_symlink() {
            facts.symlinks += 1;
            match fs::read_link(path) {
                Ok(target) => NodeType::from_link(&target),
                Err(e) => {
                    self.out
                        .warnings
                        .push(format!("read {}: {e}", path.display()));
                    return Ok(None);
                }
            }
        } else if ft.is_file() {
            facts.files += 1;
            NodeType::File
        } else {
            facts.other += 1;
            if ft.is_block_device() {
                NodeType::Dev {
                    device: meta.rdev(),
                }
            } else if ft.is_char_device() {
                NodeType::Chardev {
                    device: meta.rdev(),
                }
            } else if ft.is_fifo() {
                NodeType::Fifo
            } else {
                NodeType::Socket
            }
        };
        let mut node = self.node(name, meta, node_type);
        let previous = old.get(&node.name);
        match node.node_type {
            NodeType::Dir => {
                let sub = previous.and_then(|n| n.subtree).map(|t| id_bytes(&t));
                node.subtree = Some(self.dir(path, sub)?.into_tree_id());
                Ok(Some(Slot::Ready(node)))
            }
            NodeType::File => {
                if self.spec.filter.is_some() {
                    self.out.facts.redacted += 1;
                } else {
                    self.out.facts.bytes += meta.len();
                }
                if self.spec.filter.is_none()
                    && let Some(p) = previous
                    && unchanged(p, &node)
                    && let Some(content) = &p.content
                    && content
                        .iter()
                        .all(|c| self.writer.known().has_data(&id_bytes(c)))
                {
                    self.out.files_unmodified += 1;
                    node.content = Some(content.clone());
                    return Ok(Some(Slot::Ready(node)));
                }
                if previous.is_some() {
                    self.out.files_changed += 1;
                } else {
                    self.out.files_new += 1;
                }
                let (tx, rx) = bounded(1);
                let job = FileJob {
                    path: path.to_path_buf(),
                    filter: self.spec.filter,
                    reply: tx,
                };
                let jobs = self.jobs.as_ref().ok_or("the file workers have stopped")?;
                jobs.send(job)
                    .map_err(|_| "the file workers have stopped".to_owned())?;
                Ok(Some(Slot::Pending(node, rx)))
            }
            _ => Ok(Some(Slot::Ready(node))),
        }
    }

    fn finish_dir(&mut self, slots: Vec<Slot>) -> Result<[u8; 32], String> {
        let mut tree = Tree::default();
        for slot in slots {
            match slot {
                Slot::Ready(node) => tree.nodes.push(node),
                Slot::Pending(mut node, rx) => {
                    let done = rx.recv().map_err(|_| {
                        self.writer
                            .failure()
                            .unwrap_or_else(|| "a file worker stopped".to_owned())
                    })?;
                    if let Some(w) = done.warning {
                        self.out.warnings.push(w);
                    }
                    if done.keep {
                        if self.spec.filter.is_some() {
                            self.out.facts.bytes += done.size;
                        }
                        node.meta.size = done.size;
                        node.content = Some(
                            done.content
                                .into_iter()
                                .map(|c| rustic_core::Id::new(c).into())
                                .collect(),
                        );
                        tree.nodes.push(node);
                    }
                }
            }
        }
        let (bytes, id) = tree
            .serialize()
            .map_err(|e| format!("serialize a tree: {e}"))?;
        let id = id_bytes(&id);
        self.writer
            .save_with_id(&mut self.sealer, Kind::Tree, id, &bytes);
        Ok(id)
    }

    fn node(&mut self, name: &OsStr, meta: &fs::Metadata, node_type: NodeType) -> Node {
        let is_dir = meta.is_dir();
        let time = |s: i64, ns: i64| Timestamp::new(s, i32::try_from(ns).unwrap_or(0)).ok();
        let mtime = time(meta.mtime(), meta.mtime_nsec());
        let m = Metadata {
            mode: Some(go_mode(meta)),
            mtime,
            // As rustic and restic do by default: reading a file must not change its node.
            atime: mtime,
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            uid: Some(meta.uid()),
            gid: Some(meta.gid()),
            user: self.names.user(meta.uid()),
            group: self.names.group(meta.gid()),
            inode: meta.ino(),
            device_id: if !is_dir && meta.nlink() > 1 {
                meta.dev()
            } else {
                0
            },
            size: if is_dir { 0 } else { meta.len() },
            links: if is_dir { 0 } else { meta.nlink() },
            extended_attributes: Vec::new(),
        };
        Node::new_node(name, node_type, m)
    }
}

impl Drop for TreeWalk {
    fn drop(&mut self) {
        // Also on an early error: the workers hold the writer, which must be finished.
        self.jobs.take();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

trait IntoTreeId {
    fn into_tree_id(self) -> rustic_core::TreeId;
}

impl IntoTreeId for [u8; 32] {
    fn into_tree_id(self) -> rustic_core::TreeId {
        rustic_core::Id::new(self).into()
    }
}

fn unchanged(old: &Node, new: &Node) -> bool {
    old.is_file()
        && old.meta.size == new.meta.size
        && old.meta.mtime == new.meta.mtime
        && old.meta.ctime == new.meta.ctime
        && old.meta.inode == new.meta.inode
}

/// restic stores modes in Go's `io/fs.FileMode` layout, not POSIX `st_mode`.
fn go_mode(meta: &fs::Metadata) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHARDEV: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mode = meta.mode();
    let ft = meta.file_type();
    let mut go = mode & 0o777;
    if ft.is_dir() {
        go |= DIR;
    } else if ft.is_symlink() {
        go |= SYMLINK;
    } else if ft.is_block_device() {
        go |= DEVICE;
    } else if ft.is_char_device() {
        go |= DEVICE | CHARDEV;
    } else if ft.is_fifo() {
        go |= PIPE;
    } else if ft.is_socket() {
        go |= SOCKET;
    }
    for (bit, flag) in [(0o4000, SETUID), (0o2000, SETGID), (0o1000, STICKY)] {
        if mode & bit != 0 {
            go |= flag;
        }
    }
    go
}

/// User and group names, looked up once per id.
#[derive(Default)]
struct Names {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl Names {
    fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(gid.into())
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }
}

/// The root paths and their ancestors, as nested directories.
#[derive(Default)]
struct Virtual {
    root: bool,
    children: BTreeMap<OsString, Virtual>,
}

impl Virtual {
    fn insert(&mut self, path: &Path) {
        let mut at = self;
        for part in path.components().skip(1) {
            at = at.children.entry(part.as_os_str().to_owned()).or_default();
        }
        at.root = true;
    }
}

fn file_worker(writer: &Writer, rx: &Receiver<FileJob>) {
    let mut sealer = writer.sealer();
    let target = writer.target();
    for job in rx {
        let done = match job.filter {
            Some(filter) => match fs::read(&job.path) {
                Ok(raw) => {
                    let content = filter(&raw);
                    let id = writer.save(&mut sealer, Kind::Data, &content);
                    FileDone {
                        size: content.len() as u64,
                        content: if content.is_empty() {
                            Vec::new()
                        } else {
                            vec![id]
                        },
                        warning: None,
                        keep: true,
                    }
                }
                // Never store the unfiltered content of a file meant for redaction.
                Err(e) => FileDone {
                    content: Vec::new(),
                    size: 0,
                    warning: Some(format!("read {}: {e}", job.path.display())),
                    keep: true,
                },
            },
            None => read_file(writer, &mut sealer, target, &job.path),
        };
        let _ = job.reply.send(done);
    }
}

fn read_file(
    writer: &Writer,
    sealer: &mut super::Sealer,
    target: &super::Target,
    path: &Path,
) -> FileDone {
    let fail = |e: std::io::Error| FileDone {
        content: Vec::new(),
        size: 0,
        warning: Some(format!("read {}: {e}", path.display())),
        keep: false,
    };
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let sizes = target.sizes;
    let mut chunker = Chunker::new(Arc::clone(&target.tables), sizes);
    let mut content = Vec::new();
    let mut size = 0u64;
    let mut cur: Vec<u8> = Vec::new();
    loop {
        let n = match (&mut file).take(sizes.min as u64).read_to_end(&mut cur) {
            Ok(n) => n,
            Err(e) => return fail(e),
        };
        if n == 0 {
            break;
        }
        size += n as u64;
        while let Some(k) = chunker.find(&cur) {
            let rest = cur.split_off(k);
            content.push(writer.save(sealer, Kind::Data, &cur));
            cur = rest;
        }
    }
    if !cur.is_empty() {
        content.push(writer.save(sealer, Kind::Data, &cur));
    }
    FileDone {
        content,
        size,
        warning: None,
        keep: true,
    }
}

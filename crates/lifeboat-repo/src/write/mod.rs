//! Lifeboat's own write path: chunks, blobs, packs, index files, trees and snapshots in the
//! restic repository format (version 1 or 2), without rustic's archiver.
//!
//! The stages, and what bounds their memory:
//!
//! ```text
//! producer ──chunks──▶ blob workers ──sealed blobs──▶ pack buffers ──packs──▶ uploaders ──▶ index
//! (stream reader,      (hash, dedup,                  (one per blob type,     (write, then
//!  tree walker,         compress, encrypt)             flushed by size)        record in index)
//!  file workers)
//! ```
//!
//! - A stream (a dump, a command's output) is read and chunked on one thread while
//!   [`BLOB_WORKERS`] threads hash, compress and encrypt its chunks: at most
//!   [`QUEUED_CHUNKS`] chunks (each at most 8 MiB, 1 MiB on average) wait between them.
//! - A tree is walked on the calling thread; [`FILE_WORKERS`] threads read, chunk, hash,
//!   compress and encrypt whole files, at most [`QUEUED_FILES`] waiting. A directory's tree
//!   blob is written as soon as its entries are done.
//! - Packs are flushed at [`DATA_PACK_SIZE`] (trees at [`TREE_PACK_SIZE`]); at most
//!   [`QUEUED_PACKS`] finished packs wait for an uploader.
//! - Every [`INDEX_EVERY_PACKS`] packs, and at the end, an index file names the packs written
//!   so far, so a killed backup leaves packs that the next backup deduplicates against and
//!   prune can account for. The snapshot file is written last, after the final index.
//!
//! Worst case in flight: about `QUEUED_CHUNKS × 8 MiB + workers × 24 MiB + (2 +
//! QUEUED_PACKS + uploaders) × 16 MiB`, under 300 MiB; typical chunks are 1 MiB and keep it
//! near 100 MiB.

mod chunker;
pub(crate) mod known;
mod pack;
mod seal;
pub(crate) mod stream;
mod tree;

use std::{
    num::NonZeroU32,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, Sender, bounded};
use rustic_core::{BytesList, FileType, Id, WriteBackend};
use sha2::{Digest, Sha256};

pub(crate) use chunker::{ChunkSizes, Chunker, Tables};
pub(crate) use known::Known;
pub(crate) use pack::Kind;
use pack::{IndexFile, IndexPack, Pack, PackBuf};
pub(crate) use seal::{MasterKey, Sealer};
pub(crate) use tree::TreeWalk;

pub(crate) const BLOB_WORKERS: usize = 2;
pub(crate) const FILE_WORKERS: usize = 2;
pub(crate) const QUEUED_CHUNKS: usize = 4;
pub(crate) const QUEUED_FILES: usize = 64;
pub(crate) const QUEUED_PACKS: usize = 2;
const UPLOADERS: usize = 2;
pub(crate) const DATA_PACK_SIZE: usize = 16 << 20;
pub(crate) const TREE_PACK_SIZE: usize = 4 << 20;
pub(crate) const INDEX_EVERY_PACKS: usize = 16;
const INDEX_EVERY: Duration = Duration::from_secs(30);

/// Counted while a backup writes, by every stage.
#[derive(Debug, Default)]
struct Stats {
    data_blobs: AtomicU64,
    tree_blobs: AtomicU64,
    data_added: AtomicU64,
    data_added_packed: AtomicU64,
    trees_added: AtomicU64,
    trees_added_packed: AtomicU64,
}

/// What one backup wrote, for the snapshot's summary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Totals {
    /// Blobs the backup referenced, new or already stored.
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Bytes of new blobs before and after compression and encryption.
    pub data_added: u64,
    pub data_added_packed: u64,
    pub trees_added: u64,
    pub trees_added_packed: u64,
}

impl Stats {
    fn totals(&self) -> Totals {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Totals {
            data_blobs: get(&self.data_blobs),
            tree_blobs: get(&self.tree_blobs),
            data_added: get(&self.data_added),
            data_added_packed: get(&self.data_added_packed),
            trees_added: get(&self.trees_added),
            trees_added_packed: get(&self.trees_added_packed),
        }
    }
}

/// The repository-wide settings and the key a backup writes with.
#[derive(Clone)]
pub(crate) struct Target {
    pub backend: Arc<dyn WriteBackend>,
    pub key: MasterKey,
    pub level: Option<i32>,
    pub tables: Arc<Tables>,
    pub sizes: ChunkSizes,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("location", &self.backend.location())
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

struct Shared {
    target: Target,
    known: Known,
    packs: [Mutex<PackBuf>; 2],
    upload: Mutex<Option<Sender<Pack>>>,
    indexed: Mutex<Indexed>,
    failed: Mutex<Option<String>>,
    stats: Stats,
}

struct Indexed {
    pending: Vec<IndexPack>,
    since: Instant,
}

/// A backup's writer: blobs in, packs and index files out.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    uploaders: Vec<JoinHandle<()>>,
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Data => 0,
        Kind::Tree => 1,
    }
}

fn pack_size(kind: Kind) -> usize {
    match kind {
        Kind::Data => DATA_PACK_SIZE,
        Kind::Tree => TREE_PACK_SIZE,
    }
}

impl Writer {
    pub(crate) fn start(target: Target, known: Known) -> Self {
        let (tx, rx) = bounded::<Pack>(QUEUED_PACKS);
        let shared = Arc::new(Shared {
            known,
            packs: [
                Mutex::new(PackBuf::new(Kind::Data, 0)),
                Mutex::new(PackBuf::new(Kind::Tree, 0)),
            ],
            upload: Mutex::new(Some(tx)),
            indexed: Mutex::new(Indexed {
                pending: Vec::new(),
                since: Instant::now(),
            }),
            failed: Mutex::new(None),
            stats: Stats::default(),
            target,
        });
        let uploaders = (0..UPLOADERS)
            .map(|i| {
                let shared = Arc::clone(&shared);
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("lifeboat-upload-{i}"))
                    .spawn(move || upload_loop(&shared, &rx))
                    .unwrap_or_else(|e| panic!("start an upload thread: {e}"))
            })
            .collect();
        Self { shared, uploaders }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.shared.target
    }

    pub(crate) fn known(&self) -> &Known {
        &self.shared.known
    }

    pub(crate) fn sealer(&self) -> Sealer {
        Sealer::new(self.shared.target.key.clone(), self.shared.target.level)
    }

    /// The first error a stage met, if any.
    pub(crate) fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    /// Stores `plain` unless the repository has it; returns its id.
    pub(crate) fn save(&self, sealer: &mut Sealer, kind: Kind, plain: &[u8]) -> [u8; 32] {
        let id: [u8; 32] = Sha256::digest(plain).into();
        self.save_with_id(sealer, kind, id, plain);
        id
    }

    pub(crate) fn save_with_id(&self, sealer: &mut Sealer, kind: Kind, id: [u8; 32], plain: &[u8]) {
        let stats = &self.shared.stats;
        match kind {
            Kind::Data => stats.data_blobs.fetch_add(1, Ordering::Relaxed),
            Kind::Tree => stats.tree_blobs.fetch_add(1, Ordering::Relaxed),
        };
        if !self.shared.known.claim(kind, id) {
            return;
        }
        let (sealed, uncompressed) = sealer.blob(plain);
        let (added, packed) = match kind {
            Kind::Data => (&stats.data_added, &stats.data_added_packed),
            Kind::Tree => (&stats.trees_added, &stats.trees_added_packed),
        };
        added.fetch_add(plain.len() as u64, Ordering::Relaxed);
        packed.fetch_add(sealed.len() as u64, Ordering::Relaxed);
        self.shared.add(kind, id, &sealed, uncompressed);
    }

    /// Flushes the last packs, waits for every upload and writes the final index; returns
    /// what the backup wrote.
    ///
    /// # Errors
    /// The first error any stage met.
    pub(crate) fn finish(mut self) -> Result<Totals, String> {
        for kind in [Kind::Data, Kind::Tree] {
            let buf = std::mem::replace(
                &mut *lock(&self.shared.packs[slot(kind)]),
                PackBuf::new(kind, 0),
            );
            if !buf.is_empty() {
                self.shared.send(buf);
            }
        }
        lock(&self.shared.upload).take();
        for h in self.uploaders.drain(..) {
            if h.join().is_err() {
                self.shared.fail("an upload thread panicked".to_owned());
            }
        }
        let pending = std::mem::take(&mut lock(&self.shared.indexed).pending);
        if !pending.is_empty() {
            let mut sealer = self.sealer();
            self.shared.write_index(&mut sealer, &pending);
        }
        match self.shared.failure() {
            Some(err) => Err(err),
            None => Ok(self.shared.stats.totals()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // A writer dropped without `finish` (an early error) still stops its threads.
        lock(&self.shared.upload).take();
        for h in self.uploaders.drain(..) {
            let _ = h.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn failure(&self) -> Option<String> {
        lock(&self.failed).clone()
    }

    fn fail(&self, err: String) {
        lock(&self.failed).get_or_insert(err);
    }

    fn add(&self, kind: Kind, id: [u8; 32], sealed: &[u8], uncompressed: Option<NonZeroU32>) {
        let full = {
            let mut buf = lock(&self.packs[slot(kind)]);
            if buf.is_empty() {
                buf.reserve(pack_size(kind) + (1 << 20));
            }
            buf.push(id, sealed, uncompressed);
            (buf.len() >= pack_size(kind))
                .then(|| std::mem::replace(&mut *buf, PackBuf::new(kind, 0)))
        };
        if let Some(buf) = full {
            self.send(buf);
        }
    }

    fn send(&self, buf: PackBuf) {
        let pack = buf.finish(&self.target.key);
        let tx = lock(&self.upload).clone();
        match tx {
            Some(tx) => {
                if tx.send(pack).is_err() {
                    self.fail("the upload threads stopped".to_owned());
                }
            }
            None => self.fail("a pack was finished after the upload closed".to_owned()),
        }
    }

    fn write_index(&self, sealer: &mut Sealer, packs: &[IndexPack]) {
        let json = match serde_json::to_vec(&IndexFile { packs }) {
            Ok(j) => j,
            Err(e) => return self.fail(format!("serialize an index: {e}")),
        };
        let sealed = sealer.file(&json);
        let id: [u8; 32] = Sha256::digest(&sealed).into();
        if let Err(e) = self.target.backend.write_bytes(
            FileType::Index,
            &Id::new(id),
            true,
            BytesList::from(sealed),
        ) {
            self.fail(format!("write an index file: {}", crate::error::short(&e)));
        }
    }
}

fn upload_loop(shared: &Shared, rx: &Receiver<Pack>) {
    let mut sealer = Sealer::new(shared.target.key.clone(), shared.target.level);
    for pack in rx {
        if shared.failure().is_some() {
            continue;
        }
        let size = pack.bytes.len();
        if let Err(e) = shared.target.backend.write_bytes(
            FileType::Pack,
            &Id::new(pack.id),
            false,
            BytesList::from(pack.bytes),
        ) {
            shared.fail(format!(
                "write a pack of {size} bytes: {}",
                crate::error::short(&e)
            ));
            continue;
        }
        let due = {
            let mut idx = lock(&shared.indexed);
            idx.pending.push(pack.index);
            if idx.pending.len() >= INDEX_EVERY_PACKS || idx.since.elapsed() >= INDEX_EVERY {
                idx.since = Instant::now();
                Some(std::mem::take(&mut idx.pending))
            } else {
                None
            }
        };
        if let Some(packs) = due {
            shared.write_index(&mut sealer, &packs);
        }
    }
}

//! Reading one file's content in parallel, written out in order: what `dump` and a database
//! restore spend their time on.
//!
//! Consecutive blobs that lie one after the other in the same pack are fetched as one range
//! (at most [`RANGE_BYTES`] of plaintext). [`FETCHERS`] threads fetch ranges, check each
//! blob's MAC, decrypt and decompress it, while this thread writes the finished ranges in
//! order; at most [`AHEAD`] ranges are in flight, so memory stays under
//! `AHEAD × 2 × RANGE_BYTES` (about 100 MiB) whatever the file's size. Local and S3
//! repositories alike: on S3 the fetchers' requests overlap their latency.

use std::{collections::VecDeque, io::Write, sync::Arc};

use crossbeam_channel::{Receiver, Sender, bounded};
use rustic_core::{DataId, FileType, IndexedFullStatus, Repository, WriteBackend};

use crate::write::{MasterKey, known::id_bytes};

const FETCHERS: usize = 4;
const AHEAD: usize = 6;
const RANGE_BYTES: u64 = 8 << 20;

#[derive(Debug, Clone, Copy)]
struct Blob {
    offset: u32,
    length: u32,
    uncompressed: Option<u32>,
}

#[derive(Debug)]
struct Range {
    pack: [u8; 32],
    blobs: Vec<Blob>,
}

type Done = Result<Vec<Vec<u8>>, String>;

/// Groups `content` into ranges of adjacent blobs.
fn ranges(
    indexed: &Repository<IndexedFullStatus>,
    content: &[DataId],
) -> Result<Vec<Range>, String> {
    let mut out: Vec<Range> = Vec::new();
    let mut plain = 0u64;
    for id in content {
        let e = indexed
            .get_index_entry(id)
            .map_err(|e| format!("blob {id}: {}", crate::error::short(&e)))?;
        let blob = Blob {
            offset: e.location.offset,
            length: e.location.length,
            uncompressed: e
                .location
                .uncompressed_length
                .map(std::num::NonZeroU32::get),
        };
        let size = u64::from(blob.uncompressed.unwrap_or(blob.length));
        let pack = id_bytes(&e.pack);
        if let Some(last) = out.last_mut()
            && last.pack == pack
            && plain + size <= RANGE_BYTES
            && last
                .blobs
                .last()
                .is_some_and(|b| b.offset + b.length == blob.offset)
        {
            last.blobs.push(blob);
            plain += size;
            continue;
        }
        out.push(Range {
            pack,
            blobs: vec![blob],
        });
        plain = size;
    }
    Ok(out)
}

fn fetch(backend: &dyn WriteBackend, key: &MasterKey, range: &Range) -> Done {
    let (Some(first), Some(last)) = (range.blobs.first(), range.blobs.last()) else {
        return Ok(Vec::new());
    };
    let start = first.offset;
    let len = last.offset + last.length - start;
    let pack = rustic_core::Id::new(range.pack);
    let name = hex::encode(range.pack);
    let bytes = backend
        .read_partial(FileType::Pack, &pack, false, start, len)
        .map_err(|e| format!("read pack {}: {}", name, crate::error::short(&e)))?;
    let mut out = Vec::with_capacity(range.blobs.len());
    for b in &range.blobs {
        let at = (b.offset - start) as usize;
        let sealed = bytes
            .get(at..at + b.length as usize)
            .ok_or_else(|| format!("pack {} is shorter than its index says", name))?;
        let plain = key
            .decrypt(sealed)
            .ok_or_else(|| format!("a blob in pack {} fails its MAC check", name))?;
        out.push(match b.uncompressed {
            Some(n) => zstd::bulk::decompress(&plain, n as usize)
                .map_err(|e| format!("decompress a blob in pack {}: {e}", name))?,
            None => plain,
        });
    }
    Ok(out)
}

/// Writes the file made of `content` into `out`; returns the bytes written.
pub(crate) fn dump(
    indexed: &Repository<IndexedFullStatus>,
    backend: &Arc<dyn WriteBackend>,
    key: &MasterKey,
    content: &[DataId],
    out: &mut dyn Write,
) -> Result<u64, DumpError> {
    let ranges = ranges(indexed, content).map_err(DumpError::Read)?;
    let (tx, rx) = bounded::<(Range, Sender<Done>)>(AHEAD);
    let fetchers: Vec<_> = (0..FETCHERS.min(ranges.len()))
        .map(|i| {
            let rx: Receiver<(Range, Sender<Done>)> = rx.clone();
            let backend = Arc::clone(backend);
            let key = key.clone();
            std::thread::Builder::new()
                .name(format!("lifeboat-fetch-{i}"))
                .spawn(move || {
                    for (range, reply) in rx {
                        let _ = reply.send(fetch(backend.as_ref(), &key, &range));
                    }
                })
                .map_err(|e| DumpError::Read(format!("start a fetch thread: {e}")))
        })
        .collect::<Result<_, _>>()?;
    drop(rx);
    let result = (|| {
        let mut waiting: VecDeque<Receiver<Done>> = VecDeque::new();
        let mut written = 0u64;
        let mut next = ranges.into_iter();
        loop {
            while waiting.len() < AHEAD {
                let Some(range) = next.next() else { break };
                let (reply, done) = bounded(1);
                tx.send((range, reply))
                    .map_err(|_| DumpError::Read("the fetch threads stopped".to_owned()))?;
                waiting.push_back(done);
            }
            let Some(done) = waiting.pop_front() else {
                return Ok(written);
            };
            let blobs = done
                .recv()
                .map_err(|_| DumpError::Read("a fetch thread stopped".to_owned()))?
                .map_err(DumpError::Read)?;
            for b in blobs {
                out.write_all(&b).map_err(DumpError::Write)?;
                written += b.len() as u64;
            }
        }
    })();
    drop(tx);
    for f in fetchers {
        let _ = f.join();
    }
    result
}

/// Why a parallel dump stopped.
#[derive(Debug)]
pub(crate) enum DumpError {
    /// The repository could not give the data.
    Read(String),
    /// The destination refused it.
    Write(std::io::Error),
}

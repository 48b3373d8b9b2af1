//! A stream (a dump, a command's output) straight from its pipe into chunks and packs.
//!
//! This thread reads, cuts chunks and keeps the stream's SHA-256; [`BLOB_WORKERS`] threads
//! hash, deduplicate, compress and encrypt the chunks. The stream's size and checksum are
//! known after its last byte, when the file node is made: nothing is spooled to disk.

use std::io::{self, Read};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use sha2::{Digest, Sha256};

use super::{BLOB_WORKERS, Chunker, Kind, QUEUED_CHUNKS, Writer};

/// Bytes asked from the reader at a time.
const READ_SIZE: usize = 512 * 1024;

/// What a stream became.
#[derive(Debug)]
pub(crate) struct StreamSaved {
    /// Data blob ids, in order.
    pub content: Vec<[u8; 32]>,
    pub size: u64,
    /// Lowercase hex SHA-256 of the whole stream.
    pub sha256: String,
}

struct Job {
    seq: usize,
    data: Vec<u8>,
    reply: Sender<(usize, [u8; 32])>,
}

/// Blob workers shared by the streams of one backup.
pub(crate) struct Pool {
    tx: Option<Sender<Job>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    pub(crate) fn start(writer: &std::sync::Arc<Writer>) -> Self {
        let (tx, rx) = bounded::<Job>(QUEUED_CHUNKS);
        let handles = (0..BLOB_WORKERS)
            .map(|i| {
                let rx: Receiver<Job> = rx.clone();
                let writer = std::sync::Arc::clone(writer);
                std::thread::Builder::new()
                    .name(format!("lifeboat-blob-{i}"))
                    .spawn(move || {
                        let mut sealer = writer.sealer();
                        for job in rx {
                            let id = writer.save(&mut sealer, Kind::Data, &job.data);
                            drop(job.data);
                            let _ = job.reply.send((job.seq, id));
                        }
                    })
                    .unwrap_or_else(|e| panic!("start a blob worker: {e}"))
            })
            .collect();
        Self {
            tx: Some(tx),
            handles,
        }
    }

    /// Reads `reader` to its end and stores it. A read error (a producer that failed) is
    /// returned as is; chunks already queued still finish.
    pub(crate) fn save(&self, writer: &Writer, mut reader: impl Read) -> io::Result<StreamSaved> {
        let Some(tx) = &self.tx else {
            return Err(io::Error::other("the blob workers have stopped"));
        };
        let sizes = writer.target().sizes;
        let mut chunker = Chunker::new(std::sync::Arc::clone(&writer.target().tables), sizes);
        let (reply_tx, reply_rx) = unbounded();
        let mut sha = Sha256::new();
        let mut size = 0u64;
        let mut seq = 0usize;
        let mut cur: Vec<u8> = Vec::with_capacity(sizes.max + READ_SIZE);
        let send = |data: Vec<u8>, seq: usize| {
            tx.send(Job {
                seq,
                data,
                reply: reply_tx.clone(),
            })
            .map_err(|_| io::Error::other("the blob workers have stopped"))
        };
        loop {
            if let Some(err) = writer.failure() {
                return Err(io::Error::other(err));
            }
            let start = cur.len();
            let n = (&mut reader).take(READ_SIZE as u64).read_to_end(&mut cur)?;
            if n == 0 {
                break;
            }
            sha.update(&cur[start..]);
            size += n as u64;
            while let Some(k) = chunker.find(&cur) {
                let mut next = Vec::with_capacity(sizes.max + READ_SIZE);
                next.extend_from_slice(&cur[k..]);
                cur.truncate(k);
                send(std::mem::replace(&mut cur, next), seq)?;
                seq += 1;
            }
        }
        if !cur.is_empty() {
            send(cur, seq)?;
            seq += 1;
        }
        drop(reply_tx);
        let mut content = vec![[0u8; 32]; seq];
        let mut got = 0;
        for (i, id) in reply_rx.iter().take(seq) {
            content[i] = id;
            got += 1;
        }
        if got < seq {
            return Err(io::Error::other(
                writer
                    .failure()
                    .unwrap_or_else(|| "a blob worker stopped".to_owned()),
            ));
        }
        Ok(StreamSaved {
            content,
            size,
            sha256: hex::encode(sha.finalize()),
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx.take();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

//! Streams are read to the end into a spool file before they enter the repository.
//!
//! rustic records a file's size in its tree node before reading it, and offers no way to set it
//! afterwards; a stream's size is unknown until its end, and restic restores a file recorded
//! with size 0 as an empty file. Spooling first gives every artifact its real size, lets the
//! producer's exit status decide before any snapshot exists, and hands rustic a regular file,
//! which it reads at full speed (its chunker slows down on the short reads pipes give).
//! An artifact that is already a complete file is only hashed, not copied.

use std::{
    fs::File,
    io::{self, Read, Write},
};

use lifeboat_core::{ArtifactData, StreamArtifact};
use sha2::{Digest, Sha256};

pub use lifeboat_core::{SPOOL_DIR_ENV, SPOOL_PREFIX, spool_dir};

/// One artifact read to its end: its spool file, size and SHA-256.
#[derive(Debug)]
pub(crate) struct Spooled {
    pub name: String,
    pub path: tempfile::TempPath,
    pub size: u64,
    pub sha256: String,
}

/// Reads `artifact` to its end into a new file in `spool_dir()`. The error is the producer's
/// (e.g. a command's exit status and stderr) or the spool file's.
pub(crate) fn spool(artifact: StreamArtifact) -> Result<Spooled, String> {
    let open = match artifact.data {
        ArtifactData::Stream(open) => open,
        // Already a complete file: hash it where it is rather than copy it.
        ArtifactData::File(path) => {
            let (size, sha256) = File::open(&path)
                .and_then(|mut f| hash_file(&mut f))
                .map_err(|e| format!("read {}: {e}", path.display()))?;
            return Ok(Spooled {
                name: artifact.name,
                path,
                size,
                sha256,
            });
        }
    };
    let dir = spool_dir();
    remove_stale(&dir);
    let file = tempfile::Builder::new()
        .prefix(&format!("{SPOOL_PREFIX}{}-", std::process::id()))
        .tempfile_in(&dir)
        .map_err(|e| format!("create spool file in {}: {e}", dir.display()))?;
    let (mut out, path) = file.into_parts();
    let mut reader = open().map_err(|e| format!("start {}: {e}", artifact.name))?;
    let (size, sha256) = copy_hashing(&mut reader, &mut out).map_err(|e| match e {
        CopyError::Read(e) => format!("{}: {e}", artifact.name),
        CopyError::Write(e) => format!("write spool file {}: {e}", path.display()),
    })?;
    // No fsync: the spool file is read back at once and thrown away; durability comes from
    // the repository.
    out.flush()
        .map_err(|e| format!("write spool file {}: {e}", path.display()))?;
    Ok(Spooled {
        name: artifact.name,
        path,
        size,
        sha256,
    })
}

/// Removes spool files left by a Lifeboat process that no longer runs (a killed backup).
/// Their names carry the writer's pid.
fn remove_stale(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SPOOL_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            tracing::info!(
                "removing {} left by an interrupted backup",
                entry.path().display()
            );
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `reader` into `out` while another thread hashes the same bytes: on a pipe, reading,
/// writing and hashing one after the other would leave a core idle.
fn copy_hashing(reader: &mut dyn Read, out: &mut File) -> Result<(u64, String), CopyError> {
    const BLOCK: usize = 1 << 20;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let hasher = std::thread::spawn(move || {
        let mut hasher = Sha256::new();
        for block in rx {
            hasher.update(block.as_slice());
        }
        hex::encode(hasher.finalize())
    });
    let mut size = 0u64;
    let result = (|| {
        loop {
            let mut block = vec![0u8; BLOCK];
            let mut filled = 0;
            while filled < BLOCK {
                match reader.read(&mut block[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(CopyError::Read(e)),
                }
            }
            if filled == 0 {
                return Ok(());
            }
            block.truncate(filled);
            out.write_all(&block).map_err(CopyError::Write)?;
            size += filled as u64;
            if tx.send(block).is_err() {
                return Err(CopyError::Read(io::Error::other("checksum thread stopped")));
            }
            if filled < BLOCK {
                return Ok(());
            }
        }
    })();
    drop(tx);
    let digest = hasher
        .join()
        .map_err(|_| CopyError::Read(io::Error::other("checksum thread panicked")))?;
    result.map(|()| (size, digest))
}

fn hash_file(file: &mut File) -> io::Result<(u64, String)> {
    let mut buf = vec![0u8; 1 << 20];
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((size, hex::encode(hasher.finalize())));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

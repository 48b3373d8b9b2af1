//! A delta restore (`restore ASSET --to DIR --delta`): the base backup extracted into a data
//! directory that already holds an older copy of the cluster, writing only what differs.
//!
//! Every file of the base backup is compared with the file at the same path as the tar is
//! read: a file of the same size is read alongside, and written from the first byte that
//! differs (not at all when none does); any other file is written whole. Whatever the
//! directory holds that the base backup does not (old WAL, a `postmaster.pid`, a
//! `recovery.signal`) is removed. The repository is read in full either way: what a delta
//! saves is the writes, which on a large cluster that changed little are most of the time.

use std::{
    collections::HashSet,
    fs,
    io::{self, Read, Seek, SeekFrom, Write},
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use lifeboat_repo::Repo;
use lifeboat_sources::postgres::BASE_ARTIFACT;

use super::recovery::Base;
use crate::EngineError;

/// What a delta extraction did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delta {
    /// Bytes written into the directory.
    pub written: u64,
    /// Bytes of files found as the base backup has them, left alone.
    pub reused: u64,
    /// Files removed because the base backup does not hold them.
    pub removed: u64,
}

/// `base.tar` from the repository into `dest`, which already holds a copy of the cluster.
pub(crate) fn extract(repo: &Repo, base: &Base, dest: &Path) -> Result<Delta, EngineError> {
    let (reader, mut writer) = io::pipe().map_err(|e| EngineError::io("pipe", dest, e))?;
    std::thread::scope(|s| {
        let feeding = s.spawn(move || {
            let n = repo.dump_artifact(&base.snap, &base.manifest, BASE_ARTIFACT, &mut writer);
            drop(writer);
            n
        });
        let mut archive = tar::Archive::new(reader);
        let applied = apply(&mut archive, dest);
        let mut rest = archive.into_inner();
        let _ = io::copy(&mut rest, &mut io::sink());
        let fed = feeding
            .join()
            .map_err(|_| EngineError::usage("reading the base backup stopped", None))?;
        fed?;
        applied.map_err(|e| EngineError::io("restore the base backup into", dest, e))
    })
}

/// Gives every file under `dir` (following `dir` itself when it is a link) to the owner of
/// `dir`, when Lifeboat runs as root: PostgreSQL runs as that owner and must write them.
pub(crate) fn hand_over(dir: &Path) -> io::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let meta = fs::metadata(dir)?;
    let (uid, gid) = (meta.uid(), meta.gid());
    fn walk(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        for entry in fs::read_dir(path)? {
            let p = entry?.path();
            let m = fs::symlink_metadata(&p)?;
            if m.uid() != uid || m.gid() != gid {
                std::os::unix::fs::lchown(&p, Some(uid), Some(gid))?;
            }
            if m.is_dir() {
                walk(&p, uid, gid)?;
            }
        }
        Ok(())
    }
    walk(dir, uid, gid)
}

/// Applies the tar's entries to `dest`, then removes what the tar does not hold.
fn apply<R: Read>(archive: &mut tar::Archive<R>, dest: &Path) -> io::Result<Delta> {
    let mut delta = Delta::default();
    let mut held: HashSet<PathBuf> = HashSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let rel = entry.path()?.into_owned();
        if rel.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        }) {
            return Err(io::Error::other(format!(
                "the base backup names {} outside the directory",
                rel.display()
            )));
        }
        let path = dest.join(&rel);
        // The path and every directory above it stay, listed in the tar or not.
        for p in path.ancestors().take_while(|p| *p != dest) {
            held.insert(p.to_path_buf());
        }
        let mode = entry.header().mode().unwrap_or(0o600) & 0o7777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
                    fs::remove_file(&path)?;
                }
                fs::create_dir_all(&path)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
            }
            tar::EntryType::Regular => {
                let size = entry.size();
                match same_prefix(&mut entry, &path, size)? {
                    Prefix::All => delta.reused += size,
                    Prefix::Upto(offset, chunk) => {
                        let mut f = fs::OpenOptions::new().write(true).open(&path)?;
                        f.seek(SeekFrom::Start(offset))?;
                        f.write_all(&chunk)?;
                        let rest = io::copy(&mut entry, &mut f)?;
                        f.set_len(size)?;
                        delta.reused += offset;
                        delta.written += chunk.len() as u64 + rest;
                    }
                    Prefix::None => {
                        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                            fs::remove_dir_all(&path)?;
                        }
                        if let Some(parent) = path.parent() {
                            fs::create_dir_all(parent)?;
                        }
                        let mut f = fs::File::create(&path)?;
                        delta.written += io::copy(&mut entry, &mut f)?;
                    }
                }
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
            }
            _ => {
                // Links and the rest: as a plain extraction writes them.
                if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
                    fs::remove_file(&path)?;
                }
                entry.set_preserve_permissions(true);
                entry.unpack_in(dest)?;
            }
        }
    }
    delta.removed = remove_others(dest, &held)?;
    Ok(delta)
}

/// How much of an existing file matches the entry.
enum Prefix {
    /// All of it: nothing to write.
    All,
    /// The first `offset` bytes; the entry's bytes read past them (to be written there).
    Upto(u64, Vec<u8>),
    /// Nothing usable: no such file, or another size. The entry is unread.
    None,
}

/// Reads `entry` alongside the file at `path` while they agree.
fn same_prefix(entry: &mut impl Read, path: &Path, size: u64) -> io::Result<Prefix> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(Prefix::None);
    };
    if !meta.is_file() || meta.len() != size {
        return Ok(Prefix::None);
    }
    let mut file = fs::File::open(path)?;
    let mut ours = vec![0u8; 1 << 16];
    let mut theirs = vec![0u8; 1 << 16];
    let mut offset = 0u64;
    loop {
        let n = read_full(entry, &mut ours)?;
        if n == 0 {
            return Ok(Prefix::All);
        }
        let m = read_full(&mut file, &mut theirs[..n])?;
        if m != n || ours[..n] != theirs[..n] {
            return Ok(Prefix::Upto(offset, ours[..n].to_vec()));
        }
        offset += n as u64;
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Removes every file and directory under `dir` not in `held`; the number of files removed.
fn remove_others(dir: &Path, held: &HashSet<PathBuf>) -> io::Result<u64> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        if !held.contains(&path) {
            if meta.is_dir() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
            removed += 1;
        } else if meta.is_dir() {
            removed += remove_others(&path, held)?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn only_what_differs_is_written_and_what_is_not_held_goes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut changed = big.clone();
        changed[150_000] ^= 0xFF;
        fs::create_dir(d.join("base")).unwrap();
        fs::write(d.join("base/same"), &big).unwrap();
        fs::write(d.join("base/tail"), &big).unwrap();
        fs::write(d.join("base/short"), b"old").unwrap();
        fs::create_dir_all(d.join("pg_wal/old")).unwrap();
        fs::write(d.join("pg_wal/000000010000000000000001"), b"old wal").unwrap();
        fs::write(d.join("postmaster.pid"), b"123").unwrap();
        let tar = tar_of(&[
            ("base/same", &big),
            ("base/tail", &changed),
            ("base/short", b"longer now"),
            ("base/new", b"fresh"),
        ]);
        let delta = apply(&mut tar::Archive::new(&tar[..]), d).unwrap();
        assert_eq!(fs::read(d.join("base/same")).unwrap(), big);
        assert_eq!(fs::read(d.join("base/tail")).unwrap(), changed);
        assert_eq!(fs::read(d.join("base/short")).unwrap(), b"longer now");
        assert_eq!(fs::read(d.join("base/new")).unwrap(), b"fresh");
        assert!(!d.join("postmaster.pid").exists());
        assert!(!d.join("pg_wal").exists());
        // The unchanged file and the first 128 KiB of the changed one were not written: the
        // changed 64 KiB block and what follows it were, with the two small files.
        assert_eq!(delta.reused, 200_000 + 131_072);
        assert_eq!(delta.written, (200_000 - 131_072) + 10 + 5);
        assert_eq!(delta.removed, 2);
    }
}

//! Restores a directory tree from a local repository: directories first, then the files,
//! written by several threads at once through `Repository::dump`, then the directories'
//! owners, modes and times, deepest first (creating entries changes a directory's mtime).
//!
//! rustic's own restore reads pack ranges on 20 threads and keeps them in memory while it
//! writes: on /usr/share (44k files) it needed 18.4 s and 682 MiB on two cores, this one
//! 14.3 s and 172 MiB (docs/benchmarks.md). rustic's restore stays
//! in use where it is the better tool: repositories on object storage (it fetches each pack
//! range once, where per-file reads would send one request per blob), destinations that
//! already hold files (it reuses what matches), and trees with hard links, special files or
//! extended attributes, which only it recreates.

use std::{
    collections::HashMap,
    ffi::OsStr,
    fs,
    os::unix::{
        ffi::OsStrExt,
        fs::{PermissionsExt, lchown, symlink},
    },
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use filetime::{FileTime, set_symlink_file_times};
use rustic_core::{
    IndexedFullStatus, Repository,
    repofile::{Metadata, Node, NodeType},
};

/// A failure, with the path (relative to the destination) it happened at.
pub(crate) type Failure = (PathBuf, String);

/// Whether [`restore_nodes`] can restore `nodes` as rustic would.
pub(crate) fn handles(nodes: &[(PathBuf, Node)]) -> bool {
    nodes.iter().all(|(_, node)| {
        node.meta.extended_attributes.is_empty()
            && match node.node_type {
                NodeType::File => node.meta.links <= 1,
                NodeType::Dir | NodeType::Symlink { .. } => true,
                _ => false,
            }
    })
}

/// Restores `nodes` (paths relative to `dest`, parents before children, as `ls` lists them)
/// under `dest`, which exists and is empty.
pub(crate) fn restore_nodes(
    repo: &Repository<IndexedFullStatus>,
    nodes: &[(PathBuf, Node)],
    dest: &Path,
) -> Result<(), Failure> {
    let owners = Owners::new();
    for (path, node) in nodes {
        if node.is_dir() {
            fs::create_dir(dest.join(path)).map_err(|e| (path.clone(), e.to_string()))?;
        }
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failure = Mutex::new(None);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get() * 2)
        .min(8);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let Some((path, node)) = nodes.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if let Err(reason) = restore_entry(repo, node, &dest.join(path), &owners) {
                        stop.store(true, Ordering::Relaxed);
                        failure
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get_or_insert((path.clone(), reason));
                    }
                }
            });
        }
    });
    if let Some(failure) = failure
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(failure);
    }
    for (path, node) in nodes.iter().rev().filter(|(_, node)| node.is_dir()) {
        set_meta(&dest.join(path), node, &owners).map_err(|e| (path.clone(), e))?;
    }
    Ok(())
}

/// One file or symlink with its metadata; directories are only created here.
fn restore_entry(
    repo: &Repository<IndexedFullStatus>,
    node: &Node,
    path: &Path,
    owners: &Owners,
) -> Result<(), String> {
    match &node.node_type {
        NodeType::File => {
            let mut file = fs::File::create(path).map_err(|e| e.to_string())?;
            repo.dump(node, &mut file)
                .map_err(|e| crate::error::short(&e))?;
        }
        NodeType::Symlink {
            linktarget,
            linktarget_raw,
        } => {
            let target = linktarget_raw
                .as_deref()
                .map_or_else(|| OsStr::new(linktarget), OsStr::from_bytes);
            symlink(target, path).map_err(|e| e.to_string())?;
        }
        _ => return Ok(()),
    }
    set_meta(path, node, owners)
}

/// Owner (when running as root), mode and times, in that order: a change of owner clears
/// the set-user-ID bit. Symlinks get owner and times only.
fn set_meta(path: &Path, node: &Node, owners: &Owners) -> Result<(), String> {
    let meta = &node.meta;
    if owners.root {
        let (uid, gid) = owners.ids(meta);
        lchown(path, uid, gid).map_err(|e| format!("set owner: {e}"))?;
    }
    if !node.is_symlink()
        && let Some(mode) = meta.mode
    {
        fs::set_permissions(path, fs::Permissions::from_mode(mode_from_go(mode)))
            .map_err(|e| format!("set mode: {e}"))?;
    }
    if let Some(mtime) = meta.mtime {
        let atime = meta.atime.unwrap_or(mtime);
        set_symlink_file_times(
            path,
            FileTime::from_system_time(atime.into()),
            FileTime::from_system_time(mtime.into()),
        )
        .map_err(|e| format!("set times: {e}"))?;
    }
    Ok(())
}

/// Permission bits of a Go `FileMode`, as restic stores modes: the low nine bits, with
/// set-user-ID, set-group-ID and sticky kept in bits of their own.
const fn mode_from_go(go: u32) -> u32 {
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const STICKY: u32 = 1 << 20;
    let mut mode = go & 0o777;
    if go & SETUID != 0 {
        mode |= 0o4000;
    }
    if go & SETGID != 0 {
        mode |= 0o2000;
    }
    if go & STICKY != 0 {
        mode |= 0o1000;
    }
    mode
}

/// Owners by name first, as rustic restores them: a user that exists here under the recorded
/// name gets the file even when its uid differs; otherwise the recorded uid.
struct Owners {
    root: bool,
    users: Mutex<HashMap<String, Option<u32>>>,
    groups: Mutex<HashMap<String, Option<u32>>>,
}

impl Owners {
    fn new() -> Self {
        Self {
            root: nix::unistd::geteuid().is_root(),
            users: Mutex::default(),
            groups: Mutex::default(),
        }
    }

    fn ids(&self, meta: &Metadata) -> (Option<u32>, Option<u32>) {
        let lookup = |cache: &Mutex<HashMap<String, Option<u32>>>,
                      name: &Option<String>,
                      find: fn(&str) -> Option<u32>| {
            let name = name.as_deref()?;
            let mut cache = cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *cache.entry(name.to_owned()).or_insert_with(|| find(name))
        };
        let uid = lookup(&self.users, &meta.user, |n| {
            nix::unistd::User::from_name(n)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw())
        })
        .or(meta.uid);
        let gid = lookup(&self.groups, &meta.group, |n| {
            nix::unistd::Group::from_name(n)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw())
        })
        .or(meta.gid);
        (uid, gid)
    }
}

#[cfg(test)]
mod tests {
    use super::mode_from_go;

    #[test]
    fn go_modes_become_unix_permission_bits() {
        assert_eq!(mode_from_go(0o644), 0o644);
        // Directory bit dropped; set-user-ID, set-group-ID and sticky mapped to their places.
        assert_eq!(mode_from_go((1 << 31) | 0o755), 0o755);
        assert_eq!(mode_from_go((1 << 23) | 0o755), 0o4755);
        assert_eq!(mode_from_go((1 << 22) | 0o750), 0o2750);
        assert_eq!(mode_from_go((1 << 31) | (1 << 20) | 0o777), 0o1777);
    }
}

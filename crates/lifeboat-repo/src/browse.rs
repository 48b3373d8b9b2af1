//! Looking inside a snapshot's tree: a directory's entries, one file's bytes, a directory as
//! a tar archive. The dashboard's snapshot browser reads through these.

use std::io::{self, Read, Write};

use bytes::Bytes;
use jiff::Timestamp;
use rustic_core::repofile::{Node, NodeType};

use crate::{
    error::{RepoError, RepoResult},
    reader::Reader,
    snapshot::SnapshotInfo,
};

/// What an entry of a snapshot's directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    /// A device, FIFO or socket: listed, never downloaded.
    Special,
}

/// One entry of a directory in a snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TreeEntry {
    pub name: String,
    pub kind: EntryKind,
    /// File size in bytes; 0 for the rest.
    pub size: u64,
    pub mtime: Option<Timestamp>,
    /// Where a symlink points.
    pub target: Option<String>,
}

fn kind_of(node: &Node) -> EntryKind {
    match node.node_type {
        NodeType::Dir => EntryKind::Dir,
        NodeType::File => EntryKind::File,
        NodeType::Symlink { .. } => EntryKind::Symlink,
        _ => EntryKind::Special,
    }
}

fn entry(node: &Node) -> TreeEntry {
    let kind = kind_of(node);
    TreeEntry {
        name: node.name().to_string_lossy().into_owned(),
        kind,
        size: if kind == EntryKind::File {
            node.meta.size
        } else {
            0
        },
        mtime: node.meta.mtime,
        target: match &node.node_type {
            NodeType::Symlink { linktarget, .. } => Some(linktarget.clone()),
            _ => None,
        },
    }
}

impl Reader<'_> {
    fn node(&self, snap: &SnapshotInfo, path: &str) -> RepoResult<Node> {
        self.indexed
            .node_from_snapshot_and_path(&snap.file, path)
            .map_err(|e| RepoError::SnapshotNotFound {
                asset: Self::asset_name(snap),
                id: snap.short_id.clone(),
                detail: format!("it has no {path}: {}", crate::error::short(&e)),
            })
    }

    fn asset_name(snap: &SnapshotInfo) -> String {
        snap.asset.clone().unwrap_or_default()
    }

    fn bad(snap: &SnapshotInfo, detail: String) -> RepoError {
        RepoError::BadSnapshot {
            asset: Self::asset_name(snap),
            snapshot: snap.short_id.clone(),
            detail,
        }
    }

    /// The entries of directory `path` (a path in the snapshot's tree), directories first,
    /// then by name.
    pub fn list_dir(&self, snap: &SnapshotInfo, path: &str) -> RepoResult<Vec<TreeEntry>> {
        let node = self.node(snap, path)?;
        let Some(subtree) = node.subtree.filter(|_| node.node_type == NodeType::Dir) else {
            return Err(Self::bad(snap, format!("{path} is not a directory")));
        };
        let tree = self
            .indexed
            .get_tree(&subtree)
            .map_err(|e| Self::bad(snap, format!("read {path}: {}", crate::error::short(&e))))?;
        let mut out: Vec<TreeEntry> = tree.nodes.iter().map(entry).collect();
        out.sort_by(|a, b| {
            (a.kind != EntryKind::Dir)
                .cmp(&(b.kind != EntryKind::Dir))
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(out)
    }

    /// What `path` is: a file, a directory or something else.
    pub fn entry_at(&self, snap: &SnapshotInfo, path: &str) -> RepoResult<TreeEntry> {
        self.node(snap, path).map(|n| entry(&n))
    }

    /// Writes the bytes of file `path` into `out`; returns how many.
    pub fn dump_file(
        &self,
        snap: &SnapshotInfo,
        path: &str,
        out: &mut dyn Write,
    ) -> RepoResult<u64> {
        let node = self.node(snap, path)?;
        if node.node_type != NodeType::File {
            return Err(Self::bad(snap, format!("{path} is not a file")));
        }
        let mut reader = self.content(&node);
        io::copy(&mut reader, out).map_err(|e| Self::bad(snap, format!("read {path}: {e}")))
    }

    /// Writes directory `path` and everything under it into `out` as a tar archive whose
    /// members are named from the directory's own name down; returns the files' bytes.
    pub fn tar_dir(&self, snap: &SnapshotInfo, path: &str, out: &mut dyn Write) -> RepoResult<u64> {
        let node = self.node(snap, path)?;
        if node.node_type != NodeType::Dir {
            return Err(Self::bad(snap, format!("{path} is not a directory")));
        }
        let root = node.name().to_string_lossy().into_owned();
        let mut tar = tar::Builder::new(out);
        let mut total = 0;
        self.tar_node(snap, &mut tar, &node, &root, &mut total)?;
        tar.finish()
            .map_err(|e| Self::bad(snap, format!("write the archive: {e}")))?;
        Ok(total)
    }

    fn tar_node(
        &self,
        snap: &SnapshotInfo,
        tar: &mut tar::Builder<&mut dyn Write>,
        node: &Node,
        name: &str,
        total: &mut u64,
    ) -> RepoResult<()> {
        let fail = |e: io::Error| Self::bad(snap, format!("write {name} into the archive: {e}"));
        let mut header = tar::Header::new_gnu();
        header.set_mode(node.meta.mode.unwrap_or(0o644) & 0o7777);
        header.set_mtime(
            node.meta
                .mtime
                .map_or(0, |t| u64::try_from(t.as_second()).unwrap_or(0)),
        );
        match &node.node_type {
            NodeType::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, name, io::empty())
                    .map_err(fail)?;
                let Some(subtree) = node.subtree else {
                    return Ok(());
                };
                let tree = self.indexed.get_tree(&subtree).map_err(|e| {
                    Self::bad(snap, format!("read {name}: {}", crate::error::short(&e)))
                })?;
                for child in &tree.nodes {
                    let child_name = format!("{name}/{}", child.name().to_string_lossy());
                    self.tar_node(snap, tar, child, &child_name, total)?;
                }
            }
            NodeType::File => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(node.meta.size);
                tar.append_data(&mut header, name, self.content(node))
                    .map_err(fail)?;
                *total += node.meta.size;
            }
            NodeType::Symlink { linktarget, .. } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, name, linktarget)
                    .map_err(fail)?;
            }
            // Devices, FIFOs and sockets mean nothing in a download.
            _ => {}
        }
        Ok(())
    }

    /// A file's content as a reader, one blob in memory at a time.
    fn content<'a>(&'a self, node: &Node) -> BlobReader<'a, 'a> {
        BlobReader {
            reader: self,
            blobs: node.content.clone().unwrap_or_default().into_iter(),
            current: Bytes::new(),
        }
    }
}

/// Reads a file's data blobs in order.
struct BlobReader<'a, 'r> {
    reader: &'a Reader<'r>,
    blobs: std::vec::IntoIter<rustic_core::DataId>,
    current: Bytes,
}

impl Read for BlobReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            let Some(id) = self.blobs.next() else {
                return Ok(0);
            };
            self.current = self
                .reader
                .indexed
                .get_blob_cached(
                    &rustic_core::BlobId::from(*id),
                    rustic_core::repofile::BlobType::Data,
                )
                .map_err(|e| io::Error::other(crate::error::short(&e)))?;
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

//! Reading snapshots: their manifests and their artifacts, each artifact checked against the
//! SHA-256 its manifest records. [`Reader`] keeps the index in memory for many reads.

use std::{
    io::{self, Write},
    path::PathBuf,
};

use lifeboat_core::{MANIFEST_NAME, Manifest};
use rustic_core::{IndexedFullStatus, Repository};
use sha2::{Digest, Sha256};

use crate::{
    error::{RepoError, RepoResult},
    repository::Repo,
    snapshot::SnapshotInfo,
    source::DATA_DIR,
};

impl Repo {
    /// Reads the whole index once, for many reads of manifests and artifacts after it.
    pub fn reader(&self) -> RepoResult<Reader<'_>> {
        Ok(Reader {
            repo: self,
            indexed: self.indexed()?,
        })
    }

    /// Reads the manifest stored in a Lifeboat snapshot.
    pub fn read_manifest(&self, snap: &SnapshotInfo) -> RepoResult<Manifest> {
        self.reader()?.read_manifest(snap)
    }

    /// Streams artifact `name` of `snap` into `out` and checks it against the manifest's
    /// SHA-256. On a mismatch the bytes were already written: callers that must not act on
    /// bad data write to a temporary place first, or call [`Repo::verify_artifact`] before.
    pub fn dump_artifact(
        &self,
        snap: &SnapshotInfo,
        manifest: &Manifest,
        name: &str,
        out: &mut dyn Write,
    ) -> RepoResult<u64> {
        self.reader()?.dump_artifact(snap, manifest, name, out)
    }

    /// Reads artifact `name` in full and checks its checksum, writing nothing.
    pub fn verify_artifact(
        &self,
        snap: &SnapshotInfo,
        manifest: &Manifest,
        name: &str,
    ) -> RepoResult<u64> {
        self.dump_artifact(snap, manifest, name, &mut io::sink())
    }
}

/// A repository with its index in memory: manifests and artifacts of many snapshots read
/// without loading the index again for each. From [`Repo::reader`].
pub struct Reader<'r> {
    repo: &'r Repo,
    pub(crate) indexed: Repository<IndexedFullStatus>,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("repo", self.repo)
            .finish_non_exhaustive()
    }
}

impl Reader<'_> {
    /// Reads the manifest stored in a Lifeboat snapshot.
    pub fn read_manifest(&self, snap: &SnapshotInfo) -> RepoResult<Manifest> {
        let asset = Repo::asset_of(snap);
        let bad = |detail: String| RepoError::BadSnapshot {
            asset: asset.to_owned(),
            snapshot: snap.short_id.clone(),
            detail,
        };
        let path = format!("/{asset}/{MANIFEST_NAME}");
        let node = self
            .indexed
            .node_from_snapshot_and_path(&snap.file, &path)
            .map_err(|e| {
                bad(format!(
                    "no manifest at {path}: {}",
                    crate::error::short(&e)
                ))
            })?;
        let mut buf = Vec::new();
        self.indexed
            .dump(&node, &mut buf)
            .map_err(|e| bad(format!("read {path}: {}", crate::error::short(&e))))?;
        serde_json::from_slice(&buf).map_err(|e| bad(format!("parse {path}: {e}")))
    }

    /// As [`Repo::dump_artifact`].
    pub fn dump_artifact(
        &self,
        snap: &SnapshotInfo,
        manifest: &Manifest,
        name: &str,
        out: &mut dyn Write,
    ) -> RepoResult<u64> {
        let asset = Repo::asset_of(snap);
        let record = manifest
            .artifact(name)
            .ok_or_else(|| RepoError::BadSnapshot {
                asset: asset.to_owned(),
                snapshot: snap.short_id.clone(),
                detail: format!(
                    "no artifact named {name}; it has {}",
                    manifest
                        .artifacts
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let path = format!("/{asset}/{DATA_DIR}/{name}");
        let node = self
            .indexed
            .node_from_snapshot_and_path(&snap.file, &path)
            .map_err(|e| RepoError::BadSnapshot {
                asset: asset.to_owned(),
                snapshot: snap.short_id.clone(),
                detail: format!("find {path}: {}", crate::error::short(&e)),
            })?;
        let mut writer = HashingWriter {
            inner: out,
            hasher: Sha256::new(),
            size: 0,
        };
        let content = node.content.clone().unwrap_or_default();
        let backend = self.repo.config.backends()?.repository();
        crate::fetch::dump(
            &self.indexed,
            &backend,
            &self.repo.master_key(),
            &content,
            &mut writer,
        )
        .map_err(|e| match e {
            crate::fetch::DumpError::Read(detail) => RepoError::Backend {
                action: format!("read {path} of snapshot {}", snap.short_id),
                name: self.repo.config.name.clone(),
                detail,
            },
            crate::fetch::DumpError::Write(e) => RepoError::io("write", name, e),
        })?;
        writer
            .inner
            .flush()
            .map_err(|e| RepoError::io("write", name, e))?;
        let actual = hex::encode(writer.hasher.finalize());
        if actual != record.sha256 || writer.size != record.size {
            return Err(RepoError::ChecksumMismatch {
                artifact: path,
                snapshot: snap.short_id.clone(),
                expected: record.sha256.clone(),
                actual,
            });
        }
        Ok(writer.size)
    }

    /// As [`Repo::verify_artifact`].
    pub fn verify_artifact(
        &self,
        snap: &SnapshotInfo,
        manifest: &Manifest,
        name: &str,
    ) -> RepoResult<u64> {
        self.dump_artifact(snap, manifest, name, &mut io::sink())
    }
}

/// Paths of a snapshot of a files asset, as backed up.
#[must_use]
pub fn original_paths(manifest: &Manifest) -> Vec<PathBuf> {
    manifest
        .files
        .as_ref()
        .map(|f| f.paths.iter().map(PathBuf::from).collect())
        .unwrap_or_default()
}

struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: Sha256,
    size: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

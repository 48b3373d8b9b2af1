//! The blobs a repository already holds, from its index files: the ids of data blobs, to
//! skip storing them again, and where each tree blob lies, to read a parent snapshot's trees.
//! Blobs claimed during this backup join the set at once, so two files with the same content
//! store it once.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use rustic_core::{
    FileType, Id, OpenStatus, Repository, WriteBackend,
    repofile::{BlobType, IndexFile},
};

use super::{lock, pack::Kind, seal::MasterKey};

#[derive(Debug, Clone, Copy)]
struct TreeLoc {
    pack: u32,
    offset: u32,
    length: u32,
    uncompressed: Option<u32>,
}

/// Known blob ids and tree locations.
#[derive(Debug, Default)]
pub(crate) struct Known {
    data: Mutex<HashSet<[u8; 32]>>,
    trees: Mutex<HashSet<[u8; 32]>>,
    tree_locs: HashMap<[u8; 32], TreeLoc>,
    packs: Vec<[u8; 32]>,
}

impl Known {
    /// Reads every index file of the repository.
    pub(crate) fn load(
        repo: &Repository<OpenStatus>,
    ) -> Result<Self, Box<rustic_core::RusticError>> {
        let mut known = Self::default();
        let mut data = HashSet::new();
        let mut trees = HashSet::new();
        let mut pack_nr: HashMap<[u8; 32], u32> = HashMap::new();
        for item in repo.stream_files::<IndexFile>()? {
            let (_, file) = item?;
            for pack in file.packs {
                let pack_id = id_bytes(&pack.id);
                for blob in pack.blobs {
                    let id = id_bytes(&blob.id);
                    match blob.tpe {
                        BlobType::Data => {
                            data.insert(id);
                        }
                        BlobType::Tree => {
                            trees.insert(id);
                            let next = u32::try_from(known.packs.len()).unwrap_or(u32::MAX);
                            let nr = *pack_nr.entry(pack_id).or_insert_with(|| {
                                known.packs.push(pack_id);
                                next
                            });
                            known.tree_locs.insert(
                                id,
                                TreeLoc {
                                    pack: nr,
                                    offset: blob.location.offset,
                                    length: blob.location.length,
                                    uncompressed: blob
                                        .location
                                        .uncompressed_length
                                        .map(std::num::NonZeroU32::get),
                                },
                            );
                        }
                    }
                }
            }
        }
        known.data = Mutex::new(data);
        known.trees = Mutex::new(trees);
        Ok(known)
    }

    /// True when `id` is new: the caller stores it. False when the repository has it or
    /// another worker is storing it.
    pub(crate) fn claim(&self, kind: Kind, id: [u8; 32]) -> bool {
        match kind {
            Kind::Data => lock(&self.data).insert(id),
            Kind::Tree => lock(&self.trees).insert(id),
        }
    }

    /// Whether the repository holds (or this backup stores) data blob `id`.
    pub(crate) fn has_data(&self, id: &[u8; 32]) -> bool {
        lock(&self.data).contains(id)
    }

    /// A tree blob that was in the repository's index when the backup started, decrypted and
    /// decompressed; `None` when it is not there or cannot be read (the caller then reads
    /// every file again, as without a parent).
    pub(crate) fn read_tree(
        &self,
        backend: &dyn WriteBackend,
        key: &MasterKey,
        id: &[u8; 32],
    ) -> Option<Vec<u8>> {
        let loc = self.tree_locs.get(id)?;
        let pack = self.packs.get(loc.pack as usize)?;
        let sealed = backend
            .read_partial(
                FileType::Pack,
                &Id::new(*pack),
                true,
                loc.offset,
                loc.length,
            )
            .ok()?;
        let plain = key.decrypt(&sealed)?;
        match loc.uncompressed {
            Some(len) => zstd::bulk::decompress(&plain, len as usize).ok(),
            None => Some(plain),
        }
    }
}

/// The 32 bytes of a rustic id.
pub(crate) fn id_bytes(id: &Id) -> [u8; 32] {
    let mut out = [0u8; 32];
    // A rustic id always prints as 64 hex digits.
    let _ = hex::decode_to_slice(id.to_hex().as_str(), &mut out);
    out
}

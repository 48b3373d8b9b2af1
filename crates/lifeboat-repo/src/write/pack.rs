//! Pack files and index files in the restic format.
//!
//! A pack is its encrypted blobs one after the other, then the encrypted header (one entry per
//! blob: type, length, uncompressed length when compressed, id), then the header's length as
//! a little-endian `u32`. Its name is the SHA-256 of the whole file. An index file lists, for
//! each pack, where each blob sits in it; a pack no index names is invisible to readers and
//! removed by the next prune.

use std::num::NonZeroU32;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::seal::MasterKey;

/// Whether a blob holds file content or a directory listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Data,
    Tree,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Tree => "tree",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    id: [u8; 32],
    offset: u32,
    length: u32,
    uncompressed: Option<NonZeroU32>,
}

/// A pack being filled.
#[derive(Debug)]
pub(crate) struct PackBuf {
    kind: Kind,
    data: Vec<u8>,
    entries: Vec<Entry>,
}

/// A complete pack: its bytes and what the index will say about it.
#[derive(Debug)]
pub(crate) struct Pack {
    pub id: [u8; 32],
    pub bytes: Vec<u8>,
    pub index: IndexPack,
}

impl PackBuf {
    pub(crate) fn new(kind: Kind, capacity: usize) -> Self {
        Self {
            kind,
            data: Vec::with_capacity(capacity),
            entries: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn reserve(&mut self, bytes: usize) {
        self.data.reserve(bytes);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends one sealed blob.
    pub(crate) fn push(&mut self, id: [u8; 32], sealed: &[u8], uncompressed: Option<NonZeroU32>) {
        // Packs are flushed long before 4 GiB; blobs are at most a few MiB.
        let offset = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        let length = u32::try_from(sealed.len()).unwrap_or(u32::MAX);
        self.data.extend_from_slice(sealed);
        self.entries.push(Entry {
            id,
            offset,
            length,
            uncompressed,
        });
    }

    /// Seals the header, appends it and its length, and names the pack.
    pub(crate) fn finish(mut self, key: &MasterKey) -> Pack {
        let mut header = Vec::with_capacity(self.entries.len() * 45);
        for e in &self.entries {
            let base = match self.kind {
                Kind::Data => 0u8,
                Kind::Tree => 1u8,
            };
            match e.uncompressed {
                None => {
                    header.push(base);
                    header.extend_from_slice(&e.length.to_le_bytes());
                }
                Some(u) => {
                    header.push(base + 2);
                    header.extend_from_slice(&e.length.to_le_bytes());
                    header.extend_from_slice(&u.get().to_le_bytes());
                }
            }
            header.extend_from_slice(&e.id);
        }
        let sealed = key.encrypt(&header);
        self.data.extend_from_slice(&sealed);
        let len = u32::try_from(sealed.len()).unwrap_or(u32::MAX);
        self.data.extend_from_slice(&len.to_le_bytes());
        let id: [u8; 32] = Sha256::digest(&self.data).into();
        let kind = self.kind;
        let blobs = self
            .entries
            .into_iter()
            .map(|e| IndexBlob {
                id: hex::encode(e.id),
                kind: kind.name(),
                offset: e.offset,
                length: e.length,
                uncompressed_length: e.uncompressed.map(NonZeroU32::get),
            })
            .collect();
        Pack {
            id,
            bytes: self.data,
            index: IndexPack {
                id: hex::encode(id),
                blobs,
            },
        }
    }
}

/// One pack's entry in an index file.
#[derive(Debug, Serialize)]
pub(crate) struct IndexPack {
    id: String,
    blobs: Vec<IndexBlob>,
}

#[derive(Debug, Serialize)]
struct IndexBlob {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    offset: u32,
    length: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    uncompressed_length: Option<u32>,
}

/// An index file's JSON.
#[derive(Debug, Serialize)]
pub(crate) struct IndexFile<'a> {
    pub packs: &'a [IndexPack],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_ends_with_its_sealed_header_and_that_header_lists_every_blob() {
        let key = MasterKey::from_parts(&[4; 32], &[5; 16], &[6; 16]);
        let mut buf = PackBuf::new(Kind::Data, 0);
        buf.push([1; 32], &key.encrypt(b"first"), None);
        buf.push([2; 32], &key.encrypt(b"second blob"), NonZeroU32::new(99));
        let pack = buf.finish(&key);
        let b = &pack.bytes;
        let hlen = u32::from_le_bytes(b[b.len() - 4..].try_into().expect("4 bytes")) as usize;
        let header = key
            .decrypt(&b[b.len() - 4 - hlen..b.len() - 4])
            .expect("header decrypts");
        // Entry 1: type 0, length 37 (5 + 32), id; entry 2: type 2, length 43, 99, id.
        assert_eq!(header.len(), (1 + 4 + 32) + (1 + 4 + 4 + 32));
        assert_eq!(header[0], 0);
        assert_eq!(u32::from_le_bytes(header[1..5].try_into().expect("4")), 37);
        assert_eq!(&header[5..37], &[1; 32]);
        assert_eq!(header[37], 2);
        assert_eq!(
            u32::from_le_bytes(header[38..42].try_into().expect("4")),
            43
        );
        assert_eq!(
            u32::from_le_bytes(header[42..46].try_into().expect("4")),
            99
        );
        assert_eq!(pack.id, <[u8; 32]>::from(Sha256::digest(b)));
        let second = &b[37..37 + 43];
        assert_eq!(key.decrypt(second).as_deref(), Some(&b"second blob"[..]));
        let json = serde_json::to_string(&IndexFile {
            packs: std::slice::from_ref(&pack.index),
        })
        .expect("json");
        assert!(
            json.contains(r#""offset":37,"length":43,"uncompressed_length":99"#),
            "{json}"
        );
    }
}

//! Compression and encryption as the restic format defines them.
//!
//! Every encrypted object is `nonce (16 bytes) ‖ AES-256-CTR ciphertext ‖ Poly1305-AES MAC
//! (16 bytes)` under the repository's master key. Blobs are zstd frames when compressing
//! shrinks them (the index then records their uncompressed length) and plain otherwise.
//! Unpacked files (index, snapshot) in a version 2 repository are the byte `2` followed by a
//! zstd frame of their JSON.
//!
//! A [`Sealer`] keeps one zstd context; each worker thread owns one, so contexts are made once
//! per thread, not once per blob.

use std::num::NonZeroU32;

use aes256ctr_poly1305aes::{
    Aes256CtrPoly1305Aes,
    aead::{self, AeadInPlace},
};
use rand::RngCore;

/// The master key's 64 bytes: AES-256 key, then Poly1305-AES `k` and `r`.
#[derive(Clone)]
pub(crate) struct MasterKey(aes256ctr_poly1305aes::Key);

impl MasterKey {
    pub(crate) fn from_parts(encrypt: &[u8], k: &[u8], r: &[u8]) -> Self {
        let mut key = aes256ctr_poly1305aes::Key::default();
        key[..32].copy_from_slice(encrypt);
        key[32..48].copy_from_slice(k);
        key[48..].copy_from_slice(r);
        Self(key)
    }

    /// `nonce ‖ ciphertext ‖ MAC` of `plain`.
    pub(crate) fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        let mut nonce = aead::Nonce::<Aes256CtrPoly1305Aes>::default();
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(plain.len() + 32);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = Aes256CtrPoly1305Aes::new(&self.0)
            .encrypt_in_place_detached(&nonce, &[], &mut out[16..])
            .unwrap_or_default();
        out.extend_from_slice(&tag);
        out
    }

    /// The plaintext of `nonce ‖ ciphertext ‖ MAC`, or `None` when the MAC does not match.
    pub(crate) fn decrypt(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 32 {
            return None;
        }
        let (nonce, rest) = sealed.split_at(16);
        let (body, tag) = rest.split_at(rest.len() - 16);
        let mut plain = body.to_vec();
        Aes256CtrPoly1305Aes::new(&self.0)
            .decrypt_in_place_detached(nonce.into(), &[], &mut plain, tag.into())
            .ok()?;
        Some(plain)
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// One worker's compressor and the key.
pub(crate) struct Sealer {
    key: MasterKey,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl Sealer {
    /// `level`: `None` for a version 1 repository or compression switched off.
    pub(crate) fn new(key: MasterKey, level: Option<i32>) -> Self {
        let zstd = level.and_then(|l| zstd::bulk::Compressor::new(l).ok());
        Self { key, zstd }
    }

    /// A blob as stored in a pack, and its uncompressed length when it is compressed.
    pub(crate) fn blob(&mut self, plain: &[u8]) -> (Vec<u8>, Option<NonZeroU32>) {
        if let Some(z) = &mut self.zstd
            && let Ok(packed) = z.compress(plain)
            && packed.len() < plain.len()
        {
            let len = u32::try_from(plain.len()).ok().and_then(NonZeroU32::new);
            if len.is_some() {
                return (self.key.encrypt(&packed), len);
            }
        }
        (self.key.encrypt(plain), None)
    }

    /// An unpacked file's content (index, snapshot): compressed with a version byte when the
    /// repository compresses.
    pub(crate) fn file(&mut self, json: &[u8]) -> Vec<u8> {
        if let Some(z) = &mut self.zstd
            && let Ok(packed) = z.compress(json)
        {
            let mut plain = Vec::with_capacity(packed.len() + 1);
            plain.push(2);
            plain.extend_from_slice(&packed);
            return self.key.encrypt(&plain);
        }
        self.key.encrypt(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_with_the_key_and_not_after_a_flipped_bit() {
        let key = MasterKey::from_parts(&[1; 32], &[2; 16], &[3; 16]);
        let sealed = key.encrypt(b"hello restic");
        assert_eq!(sealed.len(), 12 + 32);
        assert_eq!(key.decrypt(&sealed).as_deref(), Some(&b"hello restic"[..]));
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert_eq!(key.decrypt(&bad), None);
        // The MAC key decides: a different `k` refuses the data.
        let other = MasterKey::from_parts(&[1; 32], &[9; 16], &[3; 16]);
        assert_eq!(other.decrypt(&sealed), None);
    }

    #[test]
    fn blobs_are_compressed_only_when_it_helps() {
        let key = MasterKey::from_parts(&[1; 32], &[2; 16], &[3; 16]);
        let mut s = Sealer::new(key.clone(), Some(3));
        let text = b"row 1\n".repeat(10_000);
        let (sealed, len) = s.blob(&text);
        assert_eq!(len.map(NonZeroU32::get), Some(60_000));
        let plain = key.decrypt(&sealed).expect("decrypts");
        assert_eq!(zstd::bulk::decompress(&plain, 60_000).expect("zstd"), text);
        let mut x = 88_172_645_463_325_252u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[3]
            })
            .collect();
        let (sealed, len) = s.blob(&noise);
        assert_eq!(len, None);
        assert_eq!(key.decrypt(&sealed).expect("decrypts"), noise);
    }
}

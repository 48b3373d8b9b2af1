//! Content-defined chunking as the restic format defines it, over slices.
//!
//! A 64-byte window slides over the data and its Rabin fingerprint (the window's bytes read
//! as a polynomial over GF(2), reduced modulo the repository's irreducible polynomial of
//! degree 53) is kept up to date one byte at a time with two table look-ups. A chunk ends
//! where the fingerprint's low `bits` bits are all zero, once it holds at least `min` bytes,
//! or at `max` bytes. As restic does, a new chunk's first `min - 64` bytes are skipped
//! without hashing and the window restarts from one byte of value 1, so that the same
//! content cut by restic, rustic or Lifeboat yields the same chunks and deduplicates.
//!
//! The caller keeps the bytes: [`Chunker::find`] only says where the current chunk ends in
//! the slice it is given, so a stream is chunked straight out of its read buffer.

use std::sync::{Arc, Mutex, PoisonError};

const WINDOW: usize = 64;

/// Chunk sizes; restic's defaults are 512 KiB, 8 MiB and an average of 1 MiB (20 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkSizes {
    pub min: usize,
    pub max: usize,
    pub bits: u32,
}

impl Default for ChunkSizes {
    fn default() -> Self {
        Self {
            min: 512 * 1024,
            max: 8 * 1024 * 1024,
            bits: 20,
        }
    }
}

/// The two look-up tables for one polynomial.
#[derive(Debug)]
pub(crate) struct Tables {
    out: [u64; 256],
    reduce: [u64; 256],
    shift: u32,
}

fn degree(p: u64) -> i32 {
    63 - i32::try_from(p.leading_zeros()).unwrap_or(64)
}

/// Remainder of the division of `x` by `m` over GF(2).
fn modulo(mut x: u64, m: u64) -> u64 {
    let dm = degree(m);
    while degree(x) >= dm {
        x ^= m << (degree(x) - dm);
    }
    x
}

impl Tables {
    fn new(pol: u64) -> Self {
        let deg = degree(pol);
        let shift = u32::try_from(deg - 8).unwrap_or(0);
        let mut out = [0u64; 256];
        let mut reduce = [0u64; 256];
        for b in 0..256u64 {
            // The hash of `b` followed by WINDOW-1 zero bytes: adding it removes `b` from the
            // front of a full window.
            let mut h = modulo(b, pol);
            for _ in 0..WINDOW - 1 {
                h = modulo(h << 8, pol);
            }
            out[b as usize] = h;
            // The top byte above the degree, reduced, together with the bits that cancel it.
            let k = u32::try_from(deg).unwrap_or(0);
            reduce[b as usize] = modulo(b << k, pol) | (b << k);
        }
        Self { out, reduce, shift }
    }

    /// The tables for `pol`, built once per process and polynomial.
    pub(crate) fn for_polynomial(pol: u64) -> Arc<Self> {
        static CACHE: Mutex<Vec<(u64, Arc<Tables>)>> = Mutex::new(Vec::new());
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, t)) = cache.iter().find(|(p, _)| *p == pol) {
            return Arc::clone(t);
        }
        let t = Arc::new(Self::new(pol));
        cache.push((pol, Arc::clone(&t)));
        t
    }
}

/// The chunker's state within the current chunk.
pub(crate) struct Chunker {
    tables: Arc<Tables>,
    sizes: ChunkSizes,
    mask: u64,
    window: [u8; WINDOW],
    wpos: usize,
    digest: u64,
    /// Bytes of the current chunk seen so far.
    count: usize,
}

impl Chunker {
    pub(crate) fn new(tables: Arc<Tables>, sizes: ChunkSizes) -> Self {
        let mut c = Self {
            tables,
            sizes,
            mask: (1u64 << sizes.bits) - 1,
            window: [0; WINDOW],
            wpos: 0,
            digest: 0,
            count: 0,
        };
        c.reset();
        c
    }

    fn reset(&mut self) {
        self.window = [0; WINDOW];
        self.wpos = 0;
        self.digest = 0;
        self.count = 0;
        self.slide(1);
    }

    #[inline]
    fn slide(&mut self, b: u8) {
        let out = self.window[self.wpos];
        self.window[self.wpos] = b;
        self.wpos = (self.wpos + 1) % WINDOW;
        let mut d = self.digest ^ self.tables.out[out as usize];
        let top = (d >> self.tables.shift) as u8;
        d = (d << 8) | u64::from(b);
        self.digest = d ^ self.tables.reduce[top as usize];
    }

    /// Feeds `data`, the continuation of the current chunk. Returns `Some(n)` when the chunk
    /// ends after `data[..n]` (the chunker is then ready for the next chunk, starting at
    /// `data[n]`), `None` when all of `data` belongs to the current chunk.
    pub(crate) fn find(&mut self, data: &[u8]) -> Option<usize> {
        let skip_to = self.sizes.min.saturating_sub(WINDOW);
        let mut i = 0;
        if self.count < skip_to {
            let take = (skip_to - self.count).min(data.len());
            self.count += take;
            i = take;
            if i == data.len() {
                return None;
            }
        }
        let (out, reduce, shift) = (&self.tables.out, &self.tables.reduce, self.tables.shift);
        let mut digest = self.digest;
        let mut wpos = self.wpos;
        let mut count = self.count;
        let (min, max, mask) = (self.sizes.min, self.sizes.max, self.mask);
        let mut cut = None;
        for (j, &b) in data[i..].iter().enumerate() {
            let old = self.window[wpos];
            self.window[wpos] = b;
            wpos += 1;
            if wpos == WINDOW {
                wpos = 0;
            }
            digest ^= out[old as usize];
            let top = (digest >> shift) as u8;
            digest = ((digest << 8) | u64::from(b)) ^ reduce[top as usize];
            count += 1;
            if count >= min && (digest & mask == 0 || count >= max) {
                cut = Some(i + j + 1);
                break;
            }
        }
        if cut.is_some() {
            self.reset();
        } else {
            self.digest = digest;
            self.wpos = wpos;
            self.count = count;
        }
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// restic's default polynomial in its tests (chunker_test.go); any irreducible one works.
    const POL: u64 = 0x003D_A335_8B4D_C173;

    fn small() -> ChunkSizes {
        ChunkSizes {
            min: 4 * 1024,
            max: 64 * 1024,
            bits: 13,
        }
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn cuts(data: &[u8], feed: usize, sizes: ChunkSizes) -> Vec<usize> {
        let mut c = Chunker::new(Tables::for_polynomial(POL), sizes);
        let mut out = Vec::new();
        let mut start = 0;
        let mut pos = 0;
        while pos < data.len() {
            let end = (pos + feed).min(data.len());
            let mut at = pos;
            while at < end {
                match c.find(&data[at..end]) {
                    Some(n) => {
                        at += n;
                        out.push(at - start);
                        start = at;
                    }
                    None => at = end,
                }
            }
            pos = end;
        }
        out
    }

    #[test]
    fn cut_points_do_not_depend_on_how_the_data_is_fed() {
        let data = pseudo_random(2 << 20, 7);
        let whole = cuts(&data, data.len(), small());
        assert!(whole.len() > 20, "{whole:?}");
        assert_eq!(cuts(&data, 1000, small()), whole);
        assert_eq!(cuts(&data, 65_537, small()), whole);
    }

    #[test]
    fn chunks_respect_the_minimum_and_maximum() {
        let data = pseudo_random(2 << 20, 11);
        for len in cuts(&data, 4096, small()) {
            assert!((4096..=65_536).contains(&len), "{len}");
        }
        // A window of zeros fingerprints to zero, which matches the mask: zeros are cut at the
        // minimum, as restic cuts them.
        let zeros = vec![0u8; 20_000];
        assert_eq!(cuts(&zeros, 20_000, small()), vec![4096; 4]);
        // Bytes whose fingerprint never matches (a mask no 13-bit window clears) are cut at
        // the maximum.
        let never = ChunkSizes {
            bits: 63,
            ..small()
        };
        assert_eq!(cuts(&data[..200_000], 4096, never), vec![65_536; 3]);
    }

    #[test]
    fn an_insertion_moves_only_nearby_cut_points() {
        let data = pseudo_random(1 << 20, 3);
        let mut shifted = b"inserted".to_vec();
        shifted.extend_from_slice(&data);
        let abs = |lens: Vec<usize>| {
            lens.iter()
                .scan(0, |s, l| {
                    *s += l;
                    Some(*s)
                })
                .collect::<Vec<_>>()
        };
        let a = abs(cuts(&data, 4096, small()));
        let b: Vec<usize> = abs(cuts(&shifted, 4096, small()))
            .into_iter()
            .map(|x| x - 8)
            .collect();
        let common = a.iter().filter(|x| b.contains(x)).count();
        assert!(common + 2 >= a.len(), "{common} of {}", a.len());
    }
}

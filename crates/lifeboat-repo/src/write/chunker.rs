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
//! the chunk's bytes it is given, so a stream is chunked straight out of its read buffer, and
//! the byte leaving the window is read from those bytes rather than kept in a ring buffer.

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

    /// One byte into the fingerprint, `old` leaving the window.
    #[inline(always)]
    fn roll(&self, digest: u64, old: u8, b: u8) -> u64 {
        let d = digest ^ self.out[old as usize];
        let top = (d >> self.shift) as u8;
        ((d << 8) | u64::from(b)) ^ self.reduce[top as usize]
    }

    /// The first cut in `chunk[from..to]` one byte at a time (`from >= 64`, the window full
    /// of chunk bytes): the end of the chunk if one is found, and the fingerprint at `to`.
    fn scan(
        &self,
        chunk: &[u8],
        from: usize,
        to: usize,
        mut digest: u64,
        mask: u64,
    ) -> (Option<usize>, u64) {
        for p in from..to {
            digest = self.roll(digest, chunk[p - WINDOW], chunk[p]);
            if digest & mask == 0 {
                return (Some(p + 1), digest);
            }
        }
        (None, digest)
    }

    /// As [`Tables::scan`], faster on long spans. Once the window is full, the fingerprint
    /// depends on the window's 64 bytes only, so the span is cut into four lanes, each
    /// starting from the fingerprint of the 64 bytes before it (rolled in from zero), and the
    /// lanes are rolled together: four independent dependency chains instead of one. A
    /// lane's hits are located exactly by scanning its block again; the first hit in lane
    /// order is the cut.
    fn scan_lanes(
        &self,
        chunk: &[u8],
        from: usize,
        to: usize,
        digest: u64,
        mask: u64,
    ) -> (Option<usize>, u64) {
        const LANES: usize = 4;
        const BLOCK: usize = 512;
        let q = (to - from) / LANES;
        if q < 4 * BLOCK {
            return self.scan(chunk, from, to, digest, mask);
        }
        let starts: [usize; LANES] = std::array::from_fn(|k| from + k * q);
        let mut d: [u64; LANES] = std::array::from_fn(|k| {
            if k == 0 {
                digest
            } else {
                chunk[starts[k] - WINDOW..starts[k]]
                    .iter()
                    .fold(0, |h, &b| self.roll(h, 0, b))
            }
        });
        let mut hit: [Option<usize>; LANES] = [None; LANES];
        let mut i = 0;
        while i < q {
            let n = BLOCK.min(q - i);
            let before = d;
            let mut zero = [false; LANES];
            for j in i..i + n {
                for k in 0..LANES {
                    let p = starts[k] + j;
                    d[k] = self.roll(d[k], chunk[p - WINDOW], chunk[p]);
                    zero[k] |= d[k] & mask == 0;
                }
            }
            for k in 0..LANES {
                if zero[k] && hit[k].is_none() {
                    let at = starts[k] + i;
                    hit[k] = self.scan(chunk, at, at + n, before[k], mask).0;
                }
            }
            if let Some(first) = hit[0] {
                return (Some(first), 0);
            }
            i += n;
        }
        if let Some(first) = hit.iter().flatten().next() {
            return (Some(*first), 0);
        }
        self.scan(chunk, from + LANES * q, to, d[LANES - 1], mask)
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

/// The chunker's state within the current chunk: how many of its bytes were looked at, and
/// the fingerprint so far.
pub(crate) struct Chunker {
    tables: Arc<Tables>,
    sizes: ChunkSizes,
    mask: u64,
    digest: u64,
    /// Bytes of the current chunk already looked at.
    seen: usize,
}

impl Chunker {
    /// `sizes.min` must be at least the window (64 bytes) and `sizes.max` at least `min`.
    pub(crate) fn new(tables: Arc<Tables>, sizes: ChunkSizes) -> Self {
        Self {
            tables,
            sizes,
            mask: (1u64 << sizes.bits) - 1,
            digest: 0,
            seen: 0,
        }
    }

    /// `chunk` is the current chunk's bytes from its first one, as far as they are known;
    /// each call passes the same bytes again, longer. Returns `Some(n)` when the chunk ends
    /// after `chunk[..n]`: the chunker then starts over, and the next call passes the bytes
    /// from `chunk[n]` on. `None` when all of `chunk` belongs to the current chunk.
    ///
    /// After the skipped prefix (`min - 64` bytes), the window is restic's initial one (63
    /// zeros and a one, fingerprint 1) followed by the chunk's bytes, so the byte leaving the
    /// window is zero for the first 63 bytes hashed, the one for the 64th, and from then on
    /// the chunk's own byte 64 positions back: no ring buffer is needed.
    pub(crate) fn find(&mut self, chunk: &[u8]) -> Option<usize> {
        let (min, max) = (self.sizes.min, self.sizes.max);
        let skip = min - WINDOW;
        let end = chunk.len().min(max);
        let mut pos = self.seen.max(skip);
        if pos >= end {
            self.seen = self.seen.max(end);
            return None;
        }
        let mask = self.mask;
        let mut digest = if pos == skip { 1 } else { self.digest };
        // Warm-up: the window still holds restic's initial bytes, zeros and then the one.
        while pos < end && pos < min {
            let old = u8::from(pos == min - 1);
            digest = self.tables.roll(digest, old, chunk[pos]);
            pos += 1;
            if pos == min && digest & mask == 0 {
                self.digest = 0;
                self.seen = 0;
                return Some(pos);
            }
        }
        // Steady state: the window holds chunk bytes only.
        let (cut, digest) = if pos < end {
            self.tables.scan_lanes(chunk, pos, end, digest, mask)
        } else {
            (None, digest)
        };
        match cut {
            Some(n) => {
                self.digest = 0;
                self.seen = 0;
                Some(n)
            }
            None if end == max => {
                self.digest = 0;
                self.seen = 0;
                Some(max)
            }
            None => {
                self.digest = digest;
                self.seen = end;
                None
            }
        }
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
        let mut known = 0;
        while known < data.len() {
            known = (known + feed).min(data.len());
            while let Some(n) = c.find(&data[start..known]) {
                out.push(n);
                start += n;
            }
        }
        if start < data.len() {
            out.push(data.len() - start);
        }
        out
    }

    /// restic's chunker loop as its design describes it, with a ring buffer for the window
    /// and one byte at a time: the oracle for the fast loop above.
    fn reference_cuts(data: &[u8], sizes: ChunkSizes) -> Vec<usize> {
        let t = Tables::for_polynomial(POL);
        let mask = (1u64 << sizes.bits) - 1;
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let mut window = [0u8; WINDOW];
            let mut wpos = 0;
            let mut digest = 0u64;
            let mut slide = |b: u8, digest: &mut u64| {
                let old = window[wpos];
                window[wpos] = b;
                wpos = (wpos + 1) % WINDOW;
                *digest ^= t.out[old as usize];
                let top = (*digest >> t.shift) as u8;
                *digest = ((*digest << 8) | u64::from(b)) ^ t.reduce[top as usize];
            };
            slide(1, &mut digest);
            let mut count = (sizes.min - WINDOW).min(data.len() - at);
            let mut len = None;
            while at + count < data.len() {
                slide(data[at + count], &mut digest);
                count += 1;
                if count >= sizes.min && (digest & mask == 0 || count >= sizes.max) {
                    len = Some(count);
                    break;
                }
            }
            let len = len.unwrap_or(count);
            out.push(len);
            at += len;
        }
        out
    }

    #[test]
    fn the_fast_loop_cuts_where_restics_loop_cuts() {
        let data = pseudo_random(3 << 20, 5);
        let want = reference_cuts(&data, small());
        assert!(want.len() > 40, "{want:?}");
        assert_eq!(cuts(&data, 1 << 30, small()), want);
        let zeros = vec![0u8; 50_000];
        assert_eq!(cuts(&zeros, 777, small()), reference_cuts(&zeros, small()));
        // restic's own sizes, fed as a stream is read.
        let data = pseudo_random(24 << 20, 9);
        let want = reference_cuts(&data, ChunkSizes::default());
        assert!(want.len() > 10, "{want:?}");
        assert_eq!(cuts(&data, 512 * 1024, ChunkSizes::default()), want);
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
        let lens = cuts(&data, 4096, small());
        // All but the tail, which ends with the data.
        for &len in &lens[..lens.len() - 1] {
            assert!((4096..=65_536).contains(&len), "{len}");
        }
        // A window of zeros fingerprints to zero, which matches the mask: zeros are cut at the
        // minimum, as restic cuts them.
        let zeros = vec![0u8; 20_000];
        assert_eq!(
            cuts(&zeros, 20_000, small()),
            [4096, 4096, 4096, 4096, 3616]
        );
        // Bytes whose fingerprint never matches (a mask no 13-bit window clears) are cut at
        // the maximum.
        let never = ChunkSizes {
            bits: 63,
            ..small()
        };
        assert_eq!(
            cuts(&data[..200_000], 4096, never),
            [65_536, 65_536, 65_536, 3392]
        );
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

//! The rolling hash behind restic's content-defined chunking, as `rustic_core` calls it.
//!
//! rustic_core 0.13 makes a new [`Rabin64`] for every file it chunks, and crates.io's
//! `rustic_cdc` 0.3.1 computes two 256-entry lookup tables in that constructor: 16 thousand
//! polynomial reductions, more CPU than chunking a small file takes (a first backup of 200k
//! small files spent nearly half its time there, docs/benchmarks.md). This crate replaces it
//! through the workspace's `[patch.crates-io]`, with the same types, methods and hash values,
//! and builds the tables once per window size and polynomial for the whole process (a
//! process sees one polynomial per repository). Only what rustic_core uses is here.
//!
//! The fingerprint of a window of bytes is the bytes read as a polynomial over GF(2),
//! reduced modulo an irreducible polynomial of degree 53. Sliding one byte in removes the
//! outgoing byte's contribution (`out` table) and reduces the shifted hash by its top byte
//! (`reduce` table).

use std::sync::{Arc, Mutex, PoisonError};

/// A polynomial over GF(2), one coefficient per bit.
pub type Polynom64 = u64;

/// Arithmetic on [`Polynom64`].
pub trait Polynom {
    /// Highest power with a non-zero coefficient; -1 for the zero polynomial.
    fn degree(&self) -> i32;

    /// Remainder of the division by `m`.
    #[must_use]
    fn modulo(&self, m: &Self) -> Self;
}

impl Polynom for Polynom64 {
    #[allow(clippy::cast_possible_wrap)] // at most 64 leading zeros
    fn degree(&self) -> i32 {
        63 - self.leading_zeros() as i32
    }

    fn modulo(&self, m: &Self) -> Self {
        let mut rest = *self;
        let degree = m.degree();
        while rest.degree() >= degree {
            rest ^= m << (rest.degree() - degree);
        }
        rest
    }
}

/// A rolling hash over a window of the last bytes seen.
pub trait RollingHash64 {
    /// Empties the window.
    fn reset(&mut self);

    /// Slides in up to window size - 1 bytes from `iter`; returns how many it took.
    fn prefill_window<I>(&mut self, iter: &mut I) -> usize
    where
        I: Iterator<Item = u8>;

    /// As [`RollingHash64::reset`] then [`RollingHash64::prefill_window`], without first
    /// clearing the window: every slot is overwritten or zeroed on the way.
    fn reset_and_prefill_window<I>(&mut self, iter: &mut I) -> usize
    where
        I: Iterator<Item = u8>;

    /// Adds `byte` to the window, dropping the oldest one.
    fn slide(&mut self, byte: u8);

    /// The fingerprint of the window.
    fn get_hash(&self) -> &Polynom64;
}

/// The default polynomial of the original crate (restic repositories carry their own).
const DEFAULT_POLYNOM: Polynom64 = 0x003D_A335_8B4D_C173;

/// Lookup tables for one window size and polynomial.
#[derive(Debug)]
struct Tables {
    window_bits: u32,
    polynom: Polynom64,
    /// How far to shift the hash right to get the byte that the next shift pushes past the
    /// polynomial's degree.
    shift: i32,
    /// Contribution of a byte leaving the window, `b · x^(8·(window - 1)) mod p`.
    out: [Polynom64; 256],
    /// For a top byte `b` of degree `k` = deg p: `(b · x^k mod p) | b · x^k`, so one XOR
    /// clears the overflowing bits and adds their remainder.
    reduce: [Polynom64; 256],
}

impl Tables {
    fn new(window_bits: u32, polynom: Polynom64) -> Self {
        let window = 1usize << window_bits;
        let k = polynom.degree();
        let mut out = [0; 256];
        let mut reduce = [0; 256];
        for (b, (out, reduce)) in (0u64..).zip(out.iter_mut().zip(reduce.iter_mut())) {
            let mut h = b.modulo(&polynom);
            for _ in 1..window {
                h = (h << 8).modulo(&polynom);
            }
            *out = h;
            let top = b << k;
            *reduce = top.modulo(&polynom) | top;
        }
        Self {
            window_bits,
            polynom,
            shift: k - 8,
            out,
            reduce,
        }
    }

    /// The process-wide tables of `window_bits` and `polynom`, built on first use.
    fn shared(window_bits: u32, polynom: Polynom64) -> Arc<Self> {
        static BUILT: Mutex<Vec<Arc<Tables>>> = Mutex::new(Vec::new());
        let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = built
            .iter()
            .find(|t| t.window_bits == window_bits && t.polynom == polynom)
        {
            return Arc::clone(found);
        }
        let tables = Arc::new(Self::new(window_bits, polynom));
        built.push(Arc::clone(&tables));
        tables
    }
}

/// Rabin fingerprint over a window of `2^window_bits` bytes.
#[derive(Debug, Clone)]
pub struct Rabin64 {
    tables: Arc<Tables>,
    window: Vec<u8>,
    /// Slot of the oldest byte, the next to be replaced.
    next: usize,
    /// The fingerprint of the window.
    pub hash: Polynom64,
}

impl Rabin64 {
    /// A hash over `2^window_bits` bytes with the original crate's default polynomial.
    #[must_use]
    pub fn new(window_bits: u32) -> Self {
        Self::new_with_polynom(window_bits, &DEFAULT_POLYNOM)
    }

    /// A hash over `2^window_bits` bytes modulo `polynom`; the tables are shared with every
    /// other hash of the same size and polynomial.
    #[must_use]
    pub fn new_with_polynom(window_bits: u32, polynom: &Polynom64) -> Self {
        Self {
            tables: Tables::shared(window_bits, *polynom),
            window: vec![0; 1 << window_bits],
            next: 0,
            hash: 0,
        }
    }

    /// Shifts `byte` into the hash, reducing by the byte shifted past the degree.
    #[inline]
    fn push(&mut self, byte: u8) {
        let top = (self.hash >> self.tables.shift) & 0xff;
        self.hash = ((self.hash << 8) | Polynom64::from(byte)) ^ self.tables.reduce[top as usize];
        self.window[self.next] = byte;
        self.next = (self.next + 1) & (self.window.len() - 1);
    }
}

impl RollingHash64 for Rabin64 {
    fn reset(&mut self) {
        self.window.fill(0);
        self.next = 0;
        self.hash = 0;
    }

    fn prefill_window<I>(&mut self, iter: &mut I) -> usize
    where
        I: Iterator<Item = u8>,
    {
        let mut taken = 0;
        for byte in iter.take(self.window.len() - 1) {
            self.slide(byte);
            taken += 1;
        }
        taken
    }

    fn reset_and_prefill_window<I>(&mut self, iter: &mut I) -> usize
    where
        I: Iterator<Item = u8>,
    {
        self.hash = 0;
        let mut taken = 0;
        // The window's old bytes count as zeros: nothing to take out of a zero hash.
        for byte in iter.take(self.window.len() - 1) {
            self.push(byte);
            taken += 1;
        }
        self.window[self.next] = 0;
        taken
    }

    #[inline]
    fn slide(&mut self, byte: u8) {
        let leaving = self.window[self.next];
        self.hash ^= self.tables.out[usize::from(leaving)];
        self.push(byte);
    }

    fn get_hash(&self) -> &Polynom64 {
        &self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// The fingerprint of `window` computed from its definition.
    fn direct(window: &[u8], polynom: Polynom64) -> Polynom64 {
        window
            .iter()
            .fold(0, |h, &b| ((h << 8) | Polynom64::from(b)).modulo(&polynom))
    }

    #[test]
    fn sliding_gives_the_fingerprint_of_the_window() {
        let bytes = data(5000);
        let mut rabin = Rabin64::new_with_polynom(6, &DEFAULT_POLYNOM);
        for (i, &b) in bytes.iter().enumerate() {
            rabin.slide(b);
            let start = i.saturating_sub(63);
            assert_eq!(
                rabin.hash,
                direct(&bytes[start..=i], DEFAULT_POLYNOM),
                "at {i}"
            );
        }
    }

    /// rustic_core's chunk loop (min 512 KiB, max 8 MiB, 1 MiB average) over 16 MiB: chunk
    /// lengths and a digest of every hash value as crates.io's rustic_cdc 0.3.1 gives them,
    /// so that chunk boundaries, and with them deduplication against existing repositories,
    /// stay the same.
    #[test]
    fn chunks_as_the_original_crate_cuts_them() {
        let expected: [(Polynom64, &[usize], u64); 2] = [
            (
                0x003D_A335_8B4D_C173,
                &[
                    1_611_474, 628_937, 731_507, 1_252_860, 1_210_350, 596_111, 626_512, 729_293,
                    2_572_701, 1_033_266, 600_841, 3_562_919, 901_070, 719_375,
                ],
                0x8ec1_3739_0264_dbc5,
            ),
            (
                0x0030_75A5_D3D2_1D8F,
                &[
                    2_162_038, 1_340_378, 596_557, 2_799_419, 1_375_399, 1_202_872, 1_195_814,
                    702_006, 1_575_228, 675_853, 697_256, 1_838_076, 616_320,
                ],
                0x7d85_98b1_f41c_0ef2,
            ),
        ];
        let bytes = data(16 << 20);
        for (polynom, want_lengths, want_digest) in expected {
            let (min, max, mask) = (512 * 1024, 8 << 20, (1u64 << 20) - 1);
            let mut rabin = Rabin64::new_with_polynom(6, &polynom);
            let (mut lengths, mut digest, mut pos) = (Vec::new(), 0u64, 0);
            while pos < bytes.len() {
                let start = pos;
                if bytes.len() - pos <= min {
                    lengths.push(bytes.len() - pos);
                    break;
                }
                pos += min;
                rabin.reset_and_prefill_window(&mut bytes[pos - 64..pos].iter().copied());
                while pos - start < max && rabin.hash & mask != 0 && pos < bytes.len() {
                    rabin.slide(bytes[pos]);
                    digest = digest.rotate_left(5) ^ rabin.hash;
                    pos += 1;
                }
                lengths.push(pos - start);
            }
            assert_eq!(lengths, want_lengths, "polynomial {polynom:#x}");
            assert_eq!(digest, want_digest, "polynomial {polynom:#x}");
        }
    }

    #[test]
    fn one_table_per_polynomial() {
        let a = Rabin64::new_with_polynom(6, &DEFAULT_POLYNOM);
        let b = Rabin64::new_with_polynom(6, &DEFAULT_POLYNOM);
        assert!(Arc::ptr_eq(&a.tables, &b.tables));
        let c = Rabin64::new_with_polynom(5, &DEFAULT_POLYNOM);
        assert!(!Arc::ptr_eq(&a.tables, &c.tables));
    }
}

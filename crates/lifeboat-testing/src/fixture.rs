//! Source trees and files for backup/restore tests.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The mtime [`write_fixture_tree`] gives `old.txt` and `empty-dir`:
/// 2001-09-09T01:46:40Z, in seconds since the Unix epoch.
pub const FIXTURE_OLD_MTIME: i64 = 1_000_000_000;

/// Writes a small tree under `root` (created if missing, expected empty) with
/// the cases a file backup gets wrong:
///
/// | path                      | what                                         |
/// |---------------------------|----------------------------------------------|
/// | `hello.txt`               | text file, mode 0644                         |
/// | `empty.txt`               | 0-byte file                                  |
/// | `nested/a/b/deep.txt`     | nested directories                           |
/// | `nested/link-to-hello`    | relative symlink to `../hello.txt`           |
/// | `dangling`                | symlink to `does-not-exist/nowhere.txt`      |
/// | `empty-dir/`              | empty directory, mtime [`FIXTURE_OLD_MTIME`] |
/// | `données/été.txt`         | non-ASCII names (NFC)                        |
/// | `日本語.md`               | non-Latin name                               |
/// | `secret.key`              | mode 0600                                    |
/// | `run.sh`                  | executable, mode 0755                        |
/// | `old.txt`                 | mtime [`FIXTURE_OLD_MTIME`]                  |
///
/// Directories get mode 0755 and other files 0644 whatever the umask, so the
/// tree's [`tree_digest`](crate::tree_digest) is the same on every machine
/// except for the mtimes of entries written now.
///
/// # Panics
///
/// When any entry cannot be written (or already exists as a symlink).
pub fn write_fixture_tree(root: &Path) {
    let file = |rel: &str, content: &[u8], mode: u32| {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            mkdir(parent);
        }
        fs::write(&path, content)
            .unwrap_or_else(|e| panic!("write fixture file {}: {e}", path.display()));
        chmod(&path, mode);
    };
    let link = |rel: &str, target: &str| {
        let path = root.join(rel);
        symlink(target, &path)
            .unwrap_or_else(|e| panic!("create fixture symlink {}: {e}", path.display()));
    };

    mkdir(root);
    file("hello.txt", b"hello, lifeboat\n", 0o644);
    file("empty.txt", b"", 0o644);
    file("nested/a/b/deep.txt", b"three levels down\n", 0o644);
    link("nested/link-to-hello", "../hello.txt");
    link("dangling", "does-not-exist/nowhere.txt");
    file("données/été.txt", "des données d'été\n".as_bytes(), 0o644);
    file("日本語.md", "# 日本語\n".as_bytes(), 0o644);
    file("secret.key", b"not really a key\n", 0o600);
    file("run.sh", b"#!/bin/sh\necho lifeboat\n", 0o755);
    file("old.txt", b"written long ago\n", 0o644);
    set_old_mtime(&root.join("old.txt"));
    // Last, so that no later write inside it moves its mtime again.
    mkdir(&root.join("empty-dir"));
    set_old_mtime(&root.join("empty-dir"));
}

fn mkdir(path: &Path) {
    fs::create_dir_all(path)
        .unwrap_or_else(|e| panic!("create fixture dir {}: {e}", path.display()));
    chmod(path, 0o755);
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:04o} {}: {e}", path.display()));
}

fn set_old_mtime(path: &Path) {
    let secs = u64::try_from(FIXTURE_OLD_MTIME).expect("FIXTURE_OLD_MTIME is after the epoch");
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    // Opening read-only is enough for futimens as the owner, and works for directories.
    File::open(path)
        .and_then(|f| f.set_modified(mtime))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

const BLOCK: usize = 1024 * 1024;

/// Writes `size_bytes` of pseudo-random, incompressible bytes to `path`
/// (replacing it), in 1 MiB blocks. The same `seed` always gives the same
/// bytes, on every platform and version of this crate, so a test can compare
/// a restored file against a second call.
///
/// # Panics
///
/// When the file cannot be created or written.
pub fn write_large_file(path: &Path, size_bytes: u64, seed: u64) {
    let fail = |e: std::io::Error| -> ! { panic!("write large file {}: {e}", path.display()) };
    let mut file = File::create(path).unwrap_or_else(|e| fail(e));
    let mut rng = SplitMix64(seed);
    let mut block = vec![0u8; BLOCK];
    let mut remaining = size_bytes;
    while remaining > 0 {
        for word in block.chunks_exact_mut(8) {
            word.copy_from_slice(&rng.next().to_le_bytes());
        }
        let n = usize::try_from(remaining).map_or(BLOCK, |r| r.min(BLOCK));
        file.write_all(&block[..n]).unwrap_or_else(|e| fail(e));
        remaining -= n as u64;
    }
    file.flush().unwrap_or_else(|e| fail(e));
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, passes BigCrush, and
/// fixed here so that a seed's output never changes with a dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_output() {
        // First outputs of the reference implementation for seed 1234567.
        let mut rng = SplitMix64(1_234_567);
        assert_eq!(rng.next(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn large_file_has_exact_size_and_depends_on_seed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        let size = 2 * BLOCK as u64 + 12_345;
        write_large_file(&a, size, 7);
        write_large_file(&b, size, 7);
        write_large_file(&c, size, 8);
        assert_eq!(fs::metadata(&a).unwrap().len(), size);
        let (a, b, c) = (
            fs::read(a).unwrap(),
            fs::read(b).unwrap(),
            fs::read(c).unwrap(),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Blocks must differ from each other, or deduplication would make the file small.
        assert_ne!(a[..BLOCK], a[BLOCK..2 * BLOCK]);
    }
}

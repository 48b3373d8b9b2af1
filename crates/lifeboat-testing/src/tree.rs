//! Digests of directory trees, to prove a restore reproduced its source.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use walkdir::WalkDir;

/// What an entry is, with what identifies its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file: its size and the lowercase hex SHA-256 of its bytes.
    File { size: u64, sha256: String },
    /// A directory; its entries are digested separately.
    Dir,
    /// A symbolic link, not followed: the target exactly as stored (it may dangle).
    Symlink { target: PathBuf },
    /// A FIFO, socket or device node; only its presence, mode and mtime count.
    Other,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryKind::File { size, sha256 } => write!(f, "file of {size} bytes, sha256 {sha256}"),
            EntryKind::Dir => f.write_str("directory"),
            EntryKind::Symlink { target } => write!(f, "symlink to {}", target.display()),
            EntryKind::Other => f.write_str("special file"),
        }
    }
}

/// One entry of a [`tree_digest`], as read with `lstat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDigest {
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time in whole seconds since the Unix epoch; sub-second
    /// precision is dropped because not every repository format keeps it.
    pub mtime: i64,
}

/// Digests every entry below `root` (not `root` itself), keyed by its path
/// relative to `root` with `/` separators. Symlinks are recorded, never followed.
///
/// Names that are not UTF-8 are converted lossily, so two such names could
/// collide; the fixtures of this crate use UTF-8 names only.
///
/// # Panics
///
/// When `root` or an entry below it cannot be read; the message names the path.
#[must_use]
pub fn tree_digest(root: &Path) -> BTreeMap<String, EntryDigest> {
    let mut digest = BTreeMap::new();
    for entry in WalkDir::new(root).min_depth(1).follow_links(false) {
        let entry = entry.unwrap_or_else(|e| panic!("digest tree {}: walk: {e}", root.display()));
        let path = entry.path();
        let fail = |what: &str, e: &dyn fmt::Display| -> ! {
            panic!(
                "digest tree {}: {what} {}: {e}",
                root.display(),
                path.display()
            )
        };
        let meta = fs::symlink_metadata(path).unwrap_or_else(|e| fail("stat", &e));
        let file_type = meta.file_type();
        let kind = if file_type.is_file() {
            EntryKind::File {
                size: meta.len(),
                sha256: sha256_file(path).unwrap_or_else(|e| fail("hash", &e)),
            }
        } else if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_symlink() {
            EntryKind::Symlink {
                target: fs::read_link(path).unwrap_or_else(|e| fail("read link", &e)),
            }
        } else {
            EntryKind::Other
        };
        let relative = path
            .strip_prefix(root)
            .unwrap_or_else(|e| fail("relativize", &e))
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        digest.insert(
            relative,
            EntryDigest {
                kind,
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
            },
        );
    }
    digest
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// What [`compare_trees`] checks beyond presence, kind, content, symlink
/// targets and modes, which it always checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompareOpts {
    /// Compare the mtimes of files, symlinks and special files.
    pub mtimes: bool,
    /// Compare the mtimes of directories. Separate because a restore that
    /// writes a directory's entries after setting its mtime changes it again.
    pub dir_mtimes: bool,
}

/// Compares two digests, `expected` (the source) against `actual` (the restore).
///
/// # Errors
///
/// A readable report with one line per difference: entries missing from or
/// extra in `actual`, and for entries in both, differences of kind, content,
/// symlink target, mode and (as `opts` asks) mtime.
pub fn compare_trees(
    expected: &BTreeMap<String, EntryDigest>,
    actual: &BTreeMap<String, EntryDigest>,
    opts: CompareOpts,
) -> Result<(), String> {
    let mut diffs = Vec::new();
    for (path, want) in expected {
        let Some(got) = actual.get(path) else {
            diffs.push(format!("{path}: missing (expected {})", want.kind));
            continue;
        };
        if want.kind != got.kind {
            diffs.push(format!(
                "{path}: expected {}, found {}",
                want.kind, got.kind
            ));
        }
        if want.mode != got.mode {
            diffs.push(format!(
                "{path}: expected mode {:04o}, found {:04o}",
                want.mode, got.mode
            ));
        }
        let is_dir = want.kind == EntryKind::Dir;
        let check_mtime = if is_dir { opts.dir_mtimes } else { opts.mtimes };
        if check_mtime && want.mtime != got.mtime {
            diffs.push(format!(
                "{path}: expected mtime {}, found {}",
                want.mtime, got.mtime
            ));
        }
    }
    for (path, got) in actual {
        if !expected.contains_key(path) {
            diffs.push(format!("{path}: unexpected {}", got.kind));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} difference(s) between trees:\n  {}",
            diffs.len(),
            diffs.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    const ALL: CompareOpts = CompareOpts {
        mtimes: true,
        dir_mtimes: true,
    };

    fn small_tree(root: &Path) {
        fs::create_dir_all(root.join("dir")).unwrap();
        fs::write(root.join("dir/a.txt"), b"abc").unwrap();
        fs::write(root.join("b.txt"), b"hello").unwrap();
        symlink("dir/a.txt", root.join("link")).unwrap();
    }

    /// A digest with identical content in a second directory, so that only
    /// the change made by each test differs (mtimes are copied too).
    fn twin() -> (tempfile::TempDir, BTreeMap<String, EntryDigest>) {
        let dir = tempfile::tempdir().unwrap();
        small_tree(dir.path());
        let digest = tree_digest(dir.path());
        (dir, digest)
    }

    #[test]
    fn identical_trees_compare_equal() {
        let (_dir, a) = twin();
        compare_trees(&a, &a.clone(), ALL).unwrap();
    }

    #[test]
    fn digest_records_kinds_and_relative_paths() {
        let (_dir, d) = twin();
        assert_eq!(
            d.keys().collect::<Vec<_>>(),
            ["b.txt", "dir", "dir/a.txt", "link"]
        );
        assert_eq!(
            d["dir/a.txt"].kind,
            EntryKind::File {
                size: 3,
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
            }
        );
        assert_eq!(d["dir"].kind, EntryKind::Dir);
        assert_eq!(
            d["link"].kind,
            EntryKind::Symlink {
                target: "dir/a.txt".into()
            }
        );
    }

    #[test]
    fn finds_a_changed_byte() {
        let (dir, before) = twin();
        let path = dir.path().join("b.txt");
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        fs::write(&path, b"hellO").unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();

        let report = compare_trees(&before, &tree_digest(dir.path()), ALL).unwrap_err();
        assert!(report.starts_with("1 difference(s)"), "{report}");
        assert!(
            report.contains("b.txt: expected file of 5 bytes, sha256 2cf24d"),
            "{report}"
        );
    }

    #[test]
    fn finds_a_changed_mode() {
        let (dir, before) = twin();
        fs::set_permissions(
            dir.path().join("dir/a.txt"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let after = tree_digest(dir.path());
        let expected_mode = before["dir/a.txt"].mode;
        assert_ne!(expected_mode, 0o600, "test needs a different starting mode");

        let report = compare_trees(&before, &after, ALL).unwrap_err();
        assert_eq!(
            report,
            format!(
                "1 difference(s) between trees:\n  dir/a.txt: expected mode {expected_mode:04o}, found 0600"
            )
        );
    }

    #[test]
    fn finds_a_missing_and_an_extra_file() {
        let (dir, before) = twin();
        fs::remove_file(dir.path().join("dir/a.txt")).unwrap();
        fs::write(dir.path().join("new.txt"), b"").unwrap();
        let after = tree_digest(dir.path());

        let report = compare_trees(&before, &after, CompareOpts::default()).unwrap_err();
        assert!(
            report.contains("dir/a.txt: missing (expected file of 3 bytes"),
            "{report}"
        );
        assert!(
            report.contains("new.txt: unexpected file of 0 bytes"),
            "{report}"
        );
    }

    #[test]
    fn mtime_checks_follow_the_options() {
        let (_dir, before) = twin();
        let mut after = before.clone();
        after.get_mut("b.txt").unwrap().mtime += 1;
        after.get_mut("dir").unwrap().mtime += 1;

        compare_trees(&before, &after, CompareOpts::default()).unwrap();
        let files_only = compare_trees(
            &before,
            &after,
            CompareOpts {
                mtimes: true,
                dir_mtimes: false,
            },
        )
        .unwrap_err();
        assert!(
            files_only.contains("b.txt: expected mtime") && !files_only.contains("dir: "),
            "{files_only}"
        );
        let dirs_only = compare_trees(
            &before,
            &after,
            CompareOpts {
                mtimes: false,
                dir_mtimes: true,
            },
        )
        .unwrap_err();
        assert!(
            dirs_only.contains("dir: expected mtime") && !dirs_only.contains("b.txt"),
            "{dirs_only}"
        );
    }

    #[test]
    fn finds_a_changed_symlink_target() {
        let (_dir, before) = twin();
        let mut after = before.clone();
        after.get_mut("link").unwrap().kind = EntryKind::Symlink {
            target: "b.txt".into(),
        };
        let report = compare_trees(&before, &after, ALL).unwrap_err();
        assert!(
            report.contains("link: expected symlink to dir/a.txt, found symlink to b.txt"),
            "{report}"
        );
    }
}

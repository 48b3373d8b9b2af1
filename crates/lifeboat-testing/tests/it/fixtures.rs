use std::path::PathBuf;

use lifeboat_testing::{
    CompareOpts, EntryKind, FIXTURE_OLD_MTIME, compare_trees, tree_digest, write_fixture_tree,
    write_large_file,
};

#[test]
fn fixture_tree_has_the_promised_entries() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture_tree(dir.path());
    let d = tree_digest(dir.path());

    for path in [
        "données/été.txt",
        "日本語.md",
        "nested/a/b/deep.txt",
        "hello.txt",
    ] {
        assert!(
            matches!(d[path].kind, EntryKind::File { .. }),
            "{path}: {:?}",
            d[path]
        );
    }
    assert!(matches!(
        d["empty.txt"].kind,
        EntryKind::File { size: 0, .. }
    ));
    assert_eq!(d["empty-dir"].kind, EntryKind::Dir);
    assert!(!d.keys().any(|k| k.starts_with("empty-dir/")));
    assert_eq!(
        d["nested/link-to-hello"].kind,
        EntryKind::Symlink {
            target: PathBuf::from("../hello.txt")
        }
    );
    assert!(
        dir.path().join("nested/link-to-hello").exists(),
        "relative symlink resolves"
    );
    assert!(matches!(d["dangling"].kind, EntryKind::Symlink { .. }));
    assert!(
        !dir.path().join("dangling").exists(),
        "dangling symlink dangles"
    );
    assert_eq!(d["secret.key"].mode, 0o600);
    assert_eq!(d["run.sh"].mode, 0o755);
    assert_eq!(d["hello.txt"].mode, 0o644);
    assert_eq!(d["old.txt"].mtime, FIXTURE_OLD_MTIME);
    assert_eq!(d["empty-dir"].mtime, FIXTURE_OLD_MTIME);
}

#[test]
fn two_fixture_trees_match_except_for_fresh_mtimes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_fixture_tree(a.path());
    write_fixture_tree(b.path());
    write_large_file(&a.path().join("large.bin"), 3 << 20, 42);
    write_large_file(&b.path().join("large.bin"), 3 << 20, 42);

    let opts = CompareOpts {
        mtimes: false,
        dir_mtimes: false,
    };
    compare_trees(&tree_digest(a.path()), &tree_digest(b.path()), opts).unwrap();

    write_large_file(&b.path().join("large.bin"), 3 << 20, 43);
    let report = compare_trees(&tree_digest(a.path()), &tree_digest(b.path()), opts).unwrap_err();
    assert!(
        report.starts_with("1 difference(s)") && report.contains("large.bin: expected file"),
        "{report}"
    );
}

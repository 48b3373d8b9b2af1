//! Trees restored from a local repository: Lifeboat's parallel restore for plain trees,
//! rustic's for trees with hard links and special files. Either way the restore must equal
//! the source: content, kinds, symlink targets, modes (set-user-ID and sticky included) and
//! mtimes, directories' too.

use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
};

use lifeboat_core::{AssetKind, BackupInput, Payload, RepoLocation, Secret, SourceFacts, TreeSpec};
use lifeboat_repo::{LockKind, Progress, Repo, RepoConfig};
use lifeboat_testing::{CompareOpts, compare_trees, tree_digest, write_fixture_tree};

fn local_repo(dir: &Path) -> Repo {
    let config = RepoConfig {
        name: "local".into(),
        location: RepoLocation::Local {
            path: dir.join("repo"),
        },
        password: Secret::new("correct horse".into()),
        s3_credentials: None,
    };
    Repo::init(&config, &Progress::hidden()).expect("init")
}

fn back_up_and_restore(src: &Path, dest: &Path, work: &Path) {
    let repo = local_repo(work);
    let lock = repo.lock(LockKind::Shared, "backup tree").unwrap();
    let input = BackupInput {
        plan: "p".into(),
        asset: "tree".into(),
        kind: AssetKind::Files,
        source: src.display().to_string(),
        reason: None,
        payload: Payload::Tree(TreeSpec {
            paths: vec![src.to_path_buf()],
            exclude: Vec::new(),
            one_file_system: false,
            filter: None,
        }),
        facts: SourceFacts::default(),
    };
    let outcome = repo.backup(&lock, input, None).expect("backup");
    drop(lock);
    let summary = repo
        .restore_tree(&outcome.snapshot, dest, false)
        .expect("restore");
    assert!(summary.files > 0, "{summary:?}");
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_plain_tree_comes_back_whole_with_special_modes_and_directory_times() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    write_fixture_tree(&src);
    fs::write(src.join("suid-tool"), b"#!/bin/sh\n").unwrap();
    chmod(&src.join("suid-tool"), 0o4755);
    fs::create_dir(src.join("shared")).unwrap();
    fs::write(src.join("shared/note"), b"anyone may add files here\n").unwrap();
    chmod(&src.join("shared"), 0o1777);
    // A directory without write permission: its files must be written before its mode is set.
    fs::create_dir(src.join("sealed")).unwrap();
    fs::write(
        src.join("sealed/inside.txt"),
        b"written before the directory was sealed\n",
    )
    .unwrap();
    chmod(&src.join("sealed"), 0o555);
    let dest = work.path().join("restored");

    back_up_and_restore(&src, &dest, work.path());

    let opts = CompareOpts {
        mtimes: true,
        dir_mtimes: true,
    };
    let original = src.strip_prefix("/").unwrap();
    compare_trees(&tree_digest(&src), &tree_digest(&dest.join(original)), opts)
        .unwrap_or_else(|diff| panic!("restored tree differs:\n{diff}"));
}

#[test]
fn hard_links_and_fifos_are_recreated() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("first"), b"one inode, two names\n").unwrap();
    fs::hard_link(src.join("first"), src.join("second")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .args(["-m", "640"])
        .arg(src.join("pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let dest = work.path().join("restored");

    back_up_and_restore(&src, &dest, work.path());

    let restored = dest.join(src.strip_prefix("/").unwrap());
    let first = fs::metadata(restored.join("first")).unwrap();
    let second = fs::metadata(restored.join("second")).unwrap();
    assert_eq!(
        first.ino(),
        second.ino(),
        "the two names share one inode again"
    );
    assert_eq!(
        fs::read(restored.join("second")).unwrap(),
        b"one inode, two names\n"
    );
    let pipe = fs::symlink_metadata(restored.join("pipe")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&pipe.file_type()),
        "{pipe:?}"
    );
    assert_eq!(pipe.mode() & 0o777, 0o640);
}

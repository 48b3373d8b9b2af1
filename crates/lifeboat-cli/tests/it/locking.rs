//! Several jobs on one repository at once: backups side by side, prune and forget waiting for
//! them, and restic honouring Lifeboat's locks and Lifeboat honouring restic's.

use std::{
    fs,
    io::Write,
    path::Path,
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant},
};

use lifeboat_testing::{tree_digest, write_fixture_tree};

use crate::util::{PASSWORD, Run, Sandbox, restic, toml_path, toml_str, under};

/// Lock files in a local repository.
fn locks(repo: &Path) -> Vec<String> {
    fs::read_dir(repo.join("locks"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64)
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (up to 60 s) until the repository holds at least one lock file.
#[track_caller]
fn wait_for_lock(repo: &Path) {
    let start = Instant::now();
    while locks(repo).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no lock appeared in {}",
            repo.display()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `lifeboat ARGS` without waiting; its output is kept for [`finish`].
fn spawn(sb: &Sandbox, args: &[&str]) -> Child {
    sb.std_cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lifeboat")
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().expect("wait for lifeboat"))
}

/// A plan with a files asset `web` and a command asset `vault` whose backup takes a while.
fn two_assets(sb: &Sandbox, vault_delay: &str) {
    let src = sb.join("src");
    write_fixture_tree(&src);
    fs::write(sb.join("vault.txt"), "round 0\n").unwrap();
    sb.write_plan(&format!(
        "[assets.web]\ntype = \"files\"\npaths = [{}]\nretention = {{ last = 3 }}\n\n[assets.vault]\ntype = \"command\"\nbackup = {}\nretention = {{ last = 3 }}\n",
        toml_path(&src),
        toml_str(&format!(
            "sleep {vault_delay}; cat {}",
            sb.join("vault.txt").display()
        )),
    ));
    sb.run_ok(&["init"]);
}

/// 20 rounds of: two backups of different assets and a forget + prune, all at once; then a
/// full `verify --read-data`. Every job must succeed (prune waits for the backups), nothing
/// may be lost, and no lock may be left behind.
#[test]
fn concurrent_backups_and_prune_never_lose_data() {
    let sb = Sandbox::new();
    two_assets(&sb, "0.3");
    let src = sb.join("src");
    for round in 1..=20 {
        fs::write(src.join(format!("round-{round}.txt")), format!("{round}\n")).unwrap();
        fs::write(sb.join("vault.txt"), format!("round {round}\n")).unwrap();
        let web = spawn(&sb, &["backup", "web"]);
        let vault = spawn(&sb, &["backup", "vault"]);
        // forget then prune, racing the two backups.
        let forget = sb.run(&["forget"]);
        let prune = sb.run(&["prune"]);
        let web = finish(web);
        let vault = finish(vault);
        for (what, run) in [
            ("backup web", web),
            ("backup vault", vault),
            ("forget", forget),
            ("prune", prune),
        ] {
            assert_eq!(
                run.code, 0,
                "round {round}: {what} failed\n--- stdout\n{}\n--- stderr\n{}",
                run.stdout, run.stderr
            );
        }
        let verify = sb.run(&["verify", "--read-data"]);
        assert_eq!(
            verify.code, 0,
            "round {round}: verify --read-data\n{}\n{}",
            verify.stdout, verify.stderr
        );
        assert!(
            locks(&sb.repo()).is_empty(),
            "round {round}: locks left: {:?}",
            locks(&sb.repo())
        );
    }
    // The newest snapshots hold the last round's data.
    let out = sb.join("restored");
    sb.run_ok(&["restore", "web", "--to", out.to_str().unwrap()]);
    assert_eq!(tree_digest(&under(&out, &src)), tree_digest(&src));
    let dumped = sb.run_ok(&["dump", "vault"]);
    assert_eq!(dumped.stdout, "round 20\n");
    // Retention kept at most 3 of each; forget ran while backups were adding more.
    let web_snaps = sb.snapshots_of("web").len();
    assert!((1..=4).contains(&web_snaps), "{web_snaps} web snapshots");
}

/// A backup holds a shared lock: prune, which needs the repository to itself, waits for it
/// and, when told not to wait long, says who holds it.
#[test]
fn prune_names_the_backup_that_holds_the_lock() {
    let sb = Sandbox::new();
    two_assets(&sb, "5");
    let backup = spawn(&sb, &["backup", "vault"]);
    wait_for_lock(&sb.repo());
    let prune = Run::from(
        sb.cmd(&["prune"])
            .env("LIFEBOAT_LOCK_WAIT", "1s")
            .output()
            .unwrap(),
    );
    assert_eq!(prune.code, 1, "{}", prune.stderr);
    assert!(
        prune
            .stderr
            .contains("repository main is locked by backup vault (shared)"),
        "{}",
        prune.stderr
    );
    assert!(
        prune.stderr.contains("LIFEBOAT_LOCK_WAIT"),
        "{}",
        prune.stderr
    );
    // Waiting long enough, prune runs once the backup is done: when it returns, the backup
    // has already exited.
    let mut backup = backup;
    assert!(
        backup.try_wait().unwrap().is_none(),
        "the backup still runs"
    );
    let waited = sb.run(&["prune"]);
    assert!(
        backup.try_wait().unwrap().is_some(),
        "prune finished while the backup still held its lock"
    );
    finish(backup).expect_code(0);
    waited.expect_code(0);
    assert!(locks(&sb.repo()).is_empty());
    // Nothing lost: the repository is whole and the backup's content comes back.
    sb.run_ok(&["verify", "--read-data"]);
    assert_eq!(sb.run_ok(&["dump", "vault"]).stdout, "round 0\n");
}

/// A backup killed with SIGKILL cannot remove its lock; as its process is gone, the lock is
/// stale: the next prune goes ahead, and `unlock` removes it.
#[test]
fn a_killed_backup_leaves_a_stale_lock_that_does_not_block() {
    let sb = Sandbox::new();
    two_assets(&sb, "30");
    let mut backup = spawn(&sb, &["backup", "vault"]);
    wait_for_lock(&sb.repo());
    backup.kill().unwrap();
    backup.wait().unwrap();
    assert_eq!(locks(&sb.repo()).len(), 1);
    Run::from(
        sb.cmd(&["prune"])
            .env("LIFEBOAT_LOCK_WAIT", "0s")
            .output()
            .unwrap(),
    )
    .expect_code(0);
    let unlock = sb.run_ok(&["unlock"]);
    assert!(
        unlock
            .stdout
            .contains("removed lock: backup vault (shared)"),
        "{}",
        unlock.stdout
    );
    assert!(locks(&sb.repo()).is_empty());
    assert_eq!(sb.run_ok(&["unlock"]).stdout.trim(), "no lock removed");
}

/// Ctrl-C removes the process's lock before it exits.
#[test]
fn an_interrupted_backup_removes_its_lock() {
    let sb = Sandbox::new();
    two_assets(&sb, "30");
    let backup = spawn(&sb, &["backup", "vault"]);
    wait_for_lock(&sb.repo());
    let pid = nix::unistd::Pid::from_raw(i32::try_from(backup.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = backup.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(locks(&sb.repo()).is_empty(), "{:?}", locks(&sb.repo()));
}

/// restic 0.14 reads Lifeboat's lock (it is encrypted with the repository key) and refuses to
/// prune under a running Lifeboat backup; Lifeboat waits for restic's lock.
#[test]
fn restic_and_lifeboat_honour_each_others_locks() {
    let sb = Sandbox::new();
    two_assets(&sb, "20");
    sb.run_ok(&["backup", "web"]);

    let mut backup = spawn(&sb, &["backup", "vault"]);
    wait_for_lock(&sb.repo());
    let prune = restic(&sb.repo(), &["prune"]);
    assert_ne!(prune.code, 0, "restic pruned under a Lifeboat backup");
    assert!(
        prune.stderr.contains("locked") && prune.stderr.contains(&backup.id().to_string()),
        "restic did not name Lifeboat's lock (pid {}):\n{}",
        backup.id(),
        prune.stderr
    );
    backup.kill().unwrap();
    backup.wait().unwrap();
    sb.run_ok(&["unlock"]);

    // restic holds a shared lock while it reads stdin.
    let mut restic_backup = std::process::Command::new("restic")
        .arg("-r")
        .arg(sb.repo())
        .args([
            "--no-cache",
            "backup",
            "--stdin",
            "--stdin-filename",
            "held.txt",
        ])
        .env("RESTIC_PASSWORD", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lock(&sb.repo());
    let blocked = Run::from(
        sb.cmd(&["prune"])
            .env("LIFEBOAT_LOCK_WAIT", "1s")
            .output()
            .unwrap(),
    );
    assert_eq!(blocked.code, 1, "{}", blocked.stderr);
    assert!(
        blocked.stderr.contains("locked by restic (shared)"),
        "{}",
        blocked.stderr
    );
    let mut stdin = restic_backup.stdin.take().unwrap();
    stdin.write_all(b"held\n").unwrap();
    drop(stdin);
    let out = restic_backup.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sb.run_ok(&["prune"]);
    sb.run_ok(&["verify", "--read-data"]);
}

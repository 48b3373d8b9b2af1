//! A backup killed with SIGKILL mid-stream leaves the repository consistent.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

use crate::util::{PASSWORD, PASSWORD_ENV, Sandbox, listing, toml_path, toml_str};

/// A running `lifeboat backup`, killed with its backup command when dropped, so that a failing
/// test leaves no process behind. The command runs in its own process group (its leader writes
/// its pid to `pid_file`) and outlives a killed Lifeboat.
struct Running {
    child: Child,
    pid_file: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid) = fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn pack_count(repo: &Path) -> usize {
    listing(&repo.join("data")).len()
}

fn plan(sb: &Sandbox, site: &Path, big_backup: &str) {
    sb.write_plan(&format!(
        "[assets.site]\ntype = \"files\"\npaths = [{}]\n\n[assets.big]\ntype = \"command\"\nbackup = {}\nfilename = \"big.bin\"\n",
        toml_path(site),
        toml_str(big_backup),
    ));
}

#[test]
fn killed_backup_leaves_a_consistent_repository() {
    let sb = Sandbox::new();
    let site = sb.join("site");
    fs::create_dir_all(&site).unwrap();
    fs::write(site.join("index.html"), "<h1>up</h1>\n").unwrap();
    let pid_file = sb.join("backup.pid");
    // The stream goes straight into packs: large enough that the kill lands while packs are
    // being written.
    plan(
        &sb,
        &site,
        &format!(
            "echo $$ > {}; head -c 400000000 /dev/urandom",
            pid_file.display()
        ),
    );
    let spool = sb.join("spool");
    fs::create_dir_all(&spool).unwrap();
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup", "site"]);
    let packs_before = pack_count(&sb.repo());
    let snaps_before = sb.snapshots();

    let log = sb.join("backup.log");
    let mut backup = Running {
        child: std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .arg("--config")
            .arg(sb.plan_path())
            .args(["backup", "big"])
            .env("LIFEBOAT_LOG", "warn")
            .env("LIFEBOAT_SPOOL_DIR", &spool)
            .env(PASSWORD_ENV, PASSWORD)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        pid_file,
    };
    // Kill once the backup has written data of its own.
    let started = Instant::now();
    while pack_count(&sb.repo()) <= packs_before {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the backup wrote no data in 60 s"
        );
        if let Some(status) = backup.child.try_wait().unwrap() {
            panic!(
                "the backup ended before it was killed: {status}\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        sleep(Duration::from_millis(20));
    }
    backup.child.kill().unwrap();
    let status = backup.child.wait().unwrap();
    assert_eq!(status.code(), None, "killed by a signal");
    drop(backup);
    assert!(
        pack_count(&sb.repo()) > packs_before,
        "no data was left behind"
    );

    assert_eq!(
        sb.snapshots(),
        snaps_before,
        "a killed backup left a snapshot"
    );
    let verify = sb
        .run(&["--json", "verify", "--read-data"])
        .expect_code(0)
        .json();
    assert_eq!(verify["errors"], serde_json::json!([]), "{verify:#}");

    // A command's output never touches the disk outside the repository.
    assert!(
        listing(&spool).is_empty(),
        "the stream was written to a spool file"
    );

    // The next backup of both assets works, the killed one with a command that ends.
    plan(&sb, &site, "printf 'after the kill'");
    let backup = sb
        .cmd(&["--json", "backup"])
        .env("LIFEBOAT_SPOOL_DIR", &spool)
        .output()
        .unwrap();
    assert_eq!(backup.status.code(), Some(0), "{backup:?}");
    let backup: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
    assert!(
        backup["assets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["ok"] == true),
        "{backup:#}"
    );
    assert_eq!(sb.run_ok(&["dump", "big"]).stdout, "after the kill");
    assert_eq!(sb.snapshots_of("big").len(), 1);
    sb.run_ok(&["prune"]);
    let verify = sb
        .run(&["--json", "verify", "--read-data"])
        .expect_code(0)
        .json();
    assert_eq!(verify["errors"], serde_json::json!([]), "{verify:#}");
    assert_eq!(verify["artifacts_verified"], 1, "{verify:#}");
}

/// Ctrl-C (SIGINT) during a backup: Lifeboat stops the command it started, exits 130 and
/// leaves no snapshot.
#[test]
fn interrupted_backup_stops_its_command_and_exits_130() {
    let sb = Sandbox::new();
    let site = sb.join("site");
    fs::create_dir_all(&site).unwrap();
    let pid_file = sb.join("cmd.pid");
    plan(
        &sb,
        &site,
        &format!("echo $$ > {}; exec sleep 60", pid_file.display()),
    );
    sb.run_ok(&["init"]);
    let mut backup = Running {
        child: std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .arg("--config")
            .arg(sb.plan_path())
            .args(["backup", "big"])
            .env("LIFEBOAT_LOG", "warn")
            .env(PASSWORD_ENV, PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        pid_file: pid_file.clone(),
    };
    let started = Instant::now();
    while !pid_file.exists() || fs::read_to_string(&pid_file).unwrap().trim().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the command never started"
        );
        sleep(Duration::from_millis(20));
    }
    let cmd_pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let lifeboat_pid = Pid::from_raw(i32::try_from(backup.child.id()).unwrap());
    nix::sys::signal::kill(lifeboat_pid, Signal::SIGINT).unwrap();
    let status = backup.child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "exit code of an interrupted backup"
    );

    // The command is gone (or a zombie about to be reaped), not left running for 60 s.
    let proc_dir = PathBuf::from(format!("/proc/{cmd_pid}"));
    let started = Instant::now();
    loop {
        let state = fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        let alive = state.split_whitespace().nth(2).is_some_and(|s| s != "Z");
        if !alive {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the backup command still runs after the interrupt: {state}"
        );
        sleep(Duration::from_millis(50));
    }
    drop(backup);
    assert!(
        sb.snapshots_of("big").is_empty(),
        "an interrupted backup left a snapshot"
    );
}

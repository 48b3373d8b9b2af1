//! `docker-volume` assets against the Docker Engine API's documented answers
//! ([`DockerStandIn`]): no Docker daemon can run in this sandbox, so the API is served by a
//! stand-in whose containers are real processes writing a counter into their volume. The
//! same flows against a real daemon are in `scripts/docker-volume-e2e.sh`.
//!
//! What is checked with tools other than Lifeboat: snapshot contents with restic, the volume
//! with the filesystem, what was stopped and started with the stand-in's own log.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use lifeboat_testing::{DockerStandIn, StandInContainer};

use crate::util::{Sandbox, restic, toml_str};

const ASSET: &str = "appdata";

struct Setup {
    sb: Sandbox,
    docker: DockerStandIn,
    /// The volume's mount point.
    volume: PathBuf,
}

/// A volume `appdata` with two files and the counter of container `app`, which runs, and an
/// empty volume `spare`;
/// `other`, when given, is a second running container mounting it. `hold` is the asset's
/// `stop = […]` or `pause = […]` line.
fn setup(hold: &str, other: bool) -> Setup {
    let sb = Sandbox::new();
    let volume = sb.join("docker/volumes/appdata/_data");
    fs::create_dir_all(volume.join("sub")).unwrap();
    fs::write(volume.join("data.bin"), b"original bytes\n").unwrap();
    fs::write(volume.join("sub/notes.txt"), b"notes\n").unwrap();
    let mut containers = vec![StandInContainer {
        name: "app",
        volumes: vec!["appdata"],
        writes: Some(volume.join("counter")),
        running: true,
    }];
    if other {
        containers.push(StandInContainer {
            name: "other",
            volumes: vec!["appdata"],
            writes: None,
            running: true,
        });
    }
    // An empty volume no container uses, to restore into.
    let spare = sb.join("docker/volumes/spare/_data");
    fs::create_dir_all(&spare).unwrap();
    let docker = DockerStandIn::start(
        sb.path(),
        &[("appdata", &volume), ("spare", &spare)],
        &containers,
    );
    wait_for_counter(&volume);
    sb.write_plan(&format!(
        "[assets.{ASSET}]\ntype = \"docker-volume\"\nvolume = \"appdata\"\n{hold}\ndocker-host = {}\n",
        toml_str(&docker.host())
    ));
    sb.run_ok(&["init"]);
    Setup { sb, docker, volume }
}

fn wait_for_counter(volume: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(v) = fs::read_to_string(volume.join("counter"))
            && !v.trim().is_empty()
        {
            return v.trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the container never wrote its counter"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the container's counter still moves: it runs.
fn counter_moves(volume: &Path) -> bool {
    let first = wait_for_counter(volume);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        if wait_for_counter(volume) != first {
            return true;
        }
    }
    false
}

/// A file of the newest snapshot, read by restic.
fn snapshot_file(s: &Setup, name: &str) -> String {
    restic(
        &s.sb.repo(),
        &["dump", "latest", &in_snapshot(&s.volume.join(name))],
    )
    .expect_code(0)
    .stdout
}

/// Where a file of the volume is in a snapshot: under the mount point's path, as a files
/// asset's paths are (docs/repository-format.md).
fn in_snapshot(path: &Path) -> String {
    format!("/{ASSET}/files{}", path.display())
}

fn position(actions: &[String], what: &str) -> usize {
    actions
        .iter()
        .position(|a| a == what)
        .unwrap_or_else(|| panic!("no {what:?} in {actions:?}"))
}

#[test]
fn a_volume_is_backed_up_by_name_while_its_writer_is_stopped_then_started_again() {
    let s = setup("stop = [\"app\"]", false);
    s.sb.run_ok(&["backup"]);

    let actions = s.docker.actions();
    assert!(
        position(&actions, "stopped app") < position(&actions, "started app"),
        "{actions:?}"
    );
    // The snapshot holds the counter the container left when it stopped: it was read while
    // nothing wrote (the counter moves every 10 ms while the container runs).
    let held = s
        .docker
        .counter_when_held("app")
        .expect("a counter at stop");
    assert_eq!(snapshot_file(&s, "counter").trim(), held);
    assert_eq!(snapshot_file(&s, "data.bin"), "original bytes\n");
    assert_eq!(snapshot_file(&s, "sub/notes.txt"), "notes\n");
    assert!(counter_moves(&s.volume), "the container runs again");
}

#[test]
fn a_paused_writer_is_unpaused_after_the_backup() {
    let s = setup("pause = [\"app\"]", false);
    s.sb.run_ok(&["backup"]);

    let actions = s.docker.actions();
    assert!(
        position(&actions, "paused app") < position(&actions, "unpaused app"),
        "{actions:?}"
    );
    assert!(!actions.contains(&"stopped app".to_owned()), "{actions:?}");
    let held = s
        .docker
        .counter_when_held("app")
        .expect("a counter at pause");
    assert_eq!(snapshot_file(&s, "counter").trim(), held);
    assert!(counter_moves(&s.volume), "the container runs again");
}

#[test]
fn a_backup_that_fails_after_stopping_still_starts_the_container_again() {
    let s = setup("stop = [\"app\"]", false);
    // Packs cannot be written: the backup fails once the container is stopped.
    let data = s.sb.repo().join("data");
    fs::remove_dir_all(&data).unwrap();
    fs::write(&data, b"not a directory").unwrap();

    let run = s.sb.run(&["backup"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    let actions = s.docker.actions();
    assert!(
        position(&actions, "stopped app") < position(&actions, "started app"),
        "{actions:?}"
    );
    assert!(counter_moves(&s.volume), "the container runs again");
}

#[test]
fn an_interrupted_backup_starts_the_container_again() {
    let s = setup("stop = [\"app\"]", false);
    lifeboat_testing::write_large_file(&s.volume.join("big.bin"), 256 << 20, 7);
    let mut child = s.sb.std_cmd(&["backup"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.docker.actions().contains(&"stopped app".to_owned()) {
        assert!(Instant::now() < deadline, "the container was never stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().cast_signed()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted, not finished");
    let actions = s.docker.actions();
    assert!(
        position(&actions, "stopped app") < position(&actions, "started app"),
        "{actions:?}"
    );
    assert!(counter_moves(&s.volume), "the container runs again");
    assert!(
        s.sb.snapshots_of(ASSET).is_empty(),
        "no snapshot from a cut backup"
    );
}

#[test]
fn a_restore_stops_the_writer_swaps_the_content_in_and_starts_it_again() {
    let s = setup("stop = [\"app\"]", false);
    s.sb.run_ok(&["backup"]);
    fs::write(s.volume.join("data.bin"), b"changed\n").unwrap();
    fs::write(s.volume.join("extra.txt"), b"written after the backup\n").unwrap();
    let before = s.docker.actions().len();

    let dry =
        s.sb.run_ok(&["--json", "restore", ASSET, "--dry-run"])
            .json();
    let planned: Vec<&str> = dry["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        planned,
        [
            "stop-containers",
            "safety-snapshot",
            "replace-volume",
            "start-containers"
        ],
        "{dry:#}"
    );
    assert_eq!(s.docker.actions().len(), before, "a dry run stops nothing");

    s.sb.run_ok(&["restore", ASSET, "--yes"]);
    assert_eq!(
        fs::read(s.volume.join("data.bin")).unwrap(),
        b"original bytes\n"
    );
    assert_eq!(
        fs::read(s.volume.join("sub/notes.txt")).unwrap(),
        b"notes\n"
    );
    assert!(
        !s.volume.join("extra.txt").exists(),
        "the restore replaced the content"
    );
    let leftovers: Vec<_> = fs::read_dir(&s.volume)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".lifeboat"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let actions = s.docker.actions()[before..].to_vec();
    assert!(
        position(&actions, "stopped app") < position(&actions, "started app"),
        "{actions:?}"
    );
    assert!(counter_moves(&s.volume), "the container runs again");
    // The safety snapshot holds what was there, the file written after the backup too.
    let safety =
        s.sb.snapshots_of(ASSET)
            .into_iter()
            .find(|snap| crate::util::tags(snap).contains(&"safety"))
            .expect("a safety snapshot");
    let extra = in_snapshot(&s.volume.join("extra.txt"));
    let kept = restic(
        &s.sb.repo(),
        &["dump", safety["id"].as_str().unwrap(), &extra],
    )
    .expect_code(0);
    assert_eq!(kept.stdout, "written after the backup\n");
}

#[test]
fn a_restore_refuses_while_a_container_the_plan_does_not_stop_uses_the_volume() {
    let s = setup("stop = [\"app\"]", true);
    s.sb.run_ok(&["backup"]);
    fs::write(s.volume.join("extra.txt"), b"new\n").unwrap();
    let before = s.docker.actions().len();

    let run = s.sb.run(&["restore", ASSET, "--yes"]).expect_code(1);
    assert!(
        run.stderr.contains("in use by running container(s) other"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("assets.appdata.stop"), "{}", run.stderr);
    assert!(s.volume.join("extra.txt").exists(), "nothing was restored");
    assert!(
        s.docker.actions()[before..].is_empty(),
        "nothing was stopped: {:?}",
        s.docker.actions()
    );
}

#[test]
fn a_restore_to_a_new_volume_creates_it_and_leaves_the_old_one_alone() {
    let s = setup("stop = [\"app\"]", false);
    s.sb.run_ok(&["backup"]);
    fs::write(s.volume.join("extra.txt"), b"new\n").unwrap();

    s.sb.run_ok(&["restore", ASSET, "--to", "appdata-restored"]);
    let actions = s.docker.actions();
    assert!(
        actions.contains(&"created appdata-restored".to_owned()),
        "{actions:?}"
    );
    let restored = s.docker.created_mountpoint("appdata-restored");
    assert_eq!(
        fs::read(restored.join("data.bin")).unwrap(),
        b"original bytes\n"
    );
    assert_eq!(
        fs::read(restored.join("sub/notes.txt")).unwrap(),
        b"notes\n"
    );
    assert!(
        s.volume.join("extra.txt").exists(),
        "the live volume is untouched"
    );
    let stops = |d: &DockerStandIn| d.actions().iter().filter(|a| *a == "stopped app").count();
    assert_eq!(stops(&s.docker), 1, "only the backup stopped app");

    // An existing empty volume is filled without stopping the asset's own containers.
    s.sb.run_ok(&["restore", ASSET, "--to", "spare"]);
    assert_eq!(
        fs::read(s.sb.join("docker/volumes/spare/_data/data.bin")).unwrap(),
        b"original bytes\n"
    );
    assert_eq!(stops(&s.docker), 1, "{:?}", s.docker.actions());

    // Now it holds files: a second restore into it is refused, and stops nothing.
    let run =
        s.sb.run(&["restore", ASSET, "--to", "spare"])
            .expect_code(1);
    assert!(
        run.stderr.contains("the volume is not empty"),
        "{}",
        run.stderr
    );
    assert_eq!(stops(&s.docker), 1);

    // Into a directory: the volume's content at its top.
    let dir = s.sb.join("out");
    s.sb.run_ok(&["restore", ASSET, "--to", &dir.display().to_string()]);
    assert_eq!(fs::read(dir.join("data.bin")).unwrap(), b"original bytes\n");
}

#[test]
fn a_missing_volume_and_an_unreachable_daemon_are_named_with_a_hint() {
    let s = setup("", false);
    let plan = fs::read_to_string(s.sb.plan_path()).unwrap();
    fs::write(
        s.sb.plan_path(),
        plan.replace("volume = \"appdata\"", "volume = \"nope\""),
    )
    .unwrap();
    // A failed asset is reported in backup's table, on stdout.
    let run = s.sb.run(&["backup"]).expect_code(1);
    assert!(
        run.stdout.contains("no volume named nope"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("docker volume ls"), "{}", run.stdout);

    let gone = s.sb.join("no-such.sock");
    fs::write(
        s.sb.plan_path(),
        plan.replace(&s.docker.host(), &format!("unix://{}", gone.display())),
    )
    .unwrap();
    let run = s.sb.run(&["backup"]).expect_code(1);
    assert!(
        run.stdout.contains(&gone.display().to_string()),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("docker-host"), "{}", run.stdout);
}

#[test]
fn a_volume_snapshot_loads_in_a_sandbox_and_matches_its_manifest() {
    let s = setup("stop = [\"app\"]", false);
    s.sb.run_ok(&["backup"]);
    let loads =
        s.sb.run_ok(&["--json", "verify", "--restore", ASSET])
            .json();
    assert_eq!(loads[0]["ok"], true, "{loads:#}");
    // data.bin, notes.txt and the counter (and the writer's temporary file, if caught).
    let compared = loads[0]["compared"].as_str().unwrap();
    let files = restic(&s.sb.repo(), &["ls", "latest"])
        .expect_code(0)
        .stdout;
    let regular = files
        .lines()
        .filter(|l| l.contains("/_data/") && !l.ends_with("/sub"))
        .count();
    assert!(
        compared.starts_with(&format!("{regular} files,")),
        "{compared} against restic's {regular}:\n{files}"
    );
}

//! Point-in-time recovery of a `postgres-cluster` asset against a scratch cluster that archives
//! its WAL through `lifeboat wal push`: marker rows written before and after a moment, the
//! cluster restored to that moment and to the latest point, each restored directory started
//! with PostgreSQL and read with psql.
//!
//! PostgreSQL runs `archive_command` as its own user, so when the tests run as root every
//! `lifeboat` command here runs as that user too, in a directory it owns, with the repository
//! password in a file it can read.

use std::{
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use lifeboat_testing::sandbox::PostgresSandbox;
use serde_json::Value;

use crate::util::{PASSWORD, Run, restic, toml_path};

/// A directory owned by the server's user, with a plan and its repository.
pub struct Site {
    pub dir: PathBuf,
    /// (uid, gid) of the `postgres` user when the tests run as root.
    user: Option<(u32, u32)>,
}

impl Site {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-pitr-")
            .tempdir()
            .unwrap()
            .keep();
        let user = postgres_user();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        Self { dir, user }
    }

    pub fn plan(&self) -> PathBuf {
        self.dir.join("lifeboat.toml")
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.join("repo")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, text).unwrap();
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
        path
    }

    /// A plan whose asset `main` is `pg`'s cluster, with `extra` lines in the asset's table,
    /// and the repository's password in a file only the server's user reads.
    pub fn write_plan(&self, pg: &PostgresSandbox, extra: &str) {
        let password = self.write("repo.pw", PASSWORD);
        fs::set_permissions(&password, fs::Permissions::from_mode(0o600)).unwrap();
        self.write(
            "lifeboat.toml",
            &format!(
                "version = 1\n\n[plan]\nname = \"pitr\"\n\n[repositories.main]\nurl = {}\npassword-file = {}\n\n\
                 [assets.main]\ntype = \"postgres-cluster\"\nurl = \"{}\"\n{extra}",
                toml_path(&self.repo()),
                toml_path(&password),
                pg.url("postgres"),
            ),
        );
    }

    /// `lifeboat --config PLAN ARGS`, as the server's user.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    /// The command [`Self::run`] runs, to start it in the background.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        cmd.arg("--config")
            .arg(self.plan())
            .args(args)
            .current_dir(&self.dir)
            .env("LIFEBOAT_LOG", "warn")
            .env("NO_COLOR", "1")
            .env("TZ", "UTC")
            .env("HOME", &self.dir)
            .env_remove("LIFEBOAT_CONFIG");
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    pub fn run_ok(&self, args: &[&str]) -> Run {
        self.run(args).expect_code(0)
    }

    /// The snapshots of asset `main`'s WAL archive, as `snapshots --json` lists them.
    fn wal_batches(&self) -> Vec<Value> {
        self.run_ok(&["--json", "snapshots"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["asset"] == "_wal-main")
            .cloned()
            .collect()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn postgres_user() -> Option<(u32, u32)> {
    if nix::unistd::geteuid().as_raw() != 0 {
        return None;
    }
    let user = nix::unistd::User::from_name("postgres").ok()??;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// A scratch cluster archiving into `site`'s plan, asset `main`, and the plan itself.
pub fn archiving_cluster(site: &Site) -> PostgresSandbox {
    archiving_cluster_with(site, "")
}

/// [`archiving_cluster`] with more lines in the asset's table.
fn archiving_cluster_with(site: &Site, extra: &str) -> PostgresSandbox {
    let mut pg = PostgresSandbox::start(None).unwrap();
    site.write_plan(
        &pg,
        &format!(
            "data-dir = {}\nchecks = [\"SELECT count(*) = 3 FROM marks\"]\n{extra}",
            toml_path(&pg.dir().join("data"))
        ),
    );
    site.run_ok(&["init"]);
    let command = format!(
        "{} --config {} wal push main %p",
        env!("CARGO_BIN_EXE_lifeboat"),
        site.plan().display()
    );
    pg.psql("postgres", "ALTER SYSTEM SET archive_mode = on")
        .unwrap();
    pg.psql(
        "postgres",
        &format!("ALTER SYSTEM SET archive_command = '{command}'"),
    )
    .unwrap();
    // archive_mode takes a restart.
    pg.stopped(|_| ()).unwrap();
    pg
}

/// Writes a little WAL, switches to a new segment and waits until the archiver stored the
/// one it left. (Without a write, a switch does nothing and names the previous segment.)
pub fn archive_now(pg: &PostgresSandbox) -> String {
    pg.psql(
        "postgres",
        "SELECT pg_logical_emit_message(false, 'lifeboat-test', 'x')",
    )
    .unwrap();
    let segment = pg
        .psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap();
    let start = Instant::now();
    loop {
        let done = pg
            .psql(
                "postgres",
                "SELECT coalesce(last_archived_wal, '-') || ' ' || failed_count || ' ' || coalesce(last_failed_wal, '-') FROM pg_stat_archiver",
            )
            .unwrap();
        if done.split(' ').next().unwrap_or_default() >= segment.as_str() {
            return segment;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let log = pg.server_log();
            let tail = &log[log.len().saturating_sub(3000)..];
            panic!("segment {segment} not archived: {done}\n--- server log\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts a restored data directory with PostgreSQL and reads the marker rows with psql.
fn markers(site: &Site, data: &Path, major: u32) -> String {
    read_marks(&site.dir, data, major)
}

/// Moves the data directory `data` into a new directory under `scratch`, starts PostgreSQL on
/// it and reads table `marks` with psql.
pub fn read_marks(scratch: &Path, data: &Path, major: u32) -> String {
    assert!(
        data.join("PG_VERSION").is_file(),
        "{} is not a data directory",
        data.display()
    );
    let run = scratch.join(format!("run-{}", rand_suffix()));
    fs::create_dir(&run).unwrap();
    fs::rename(data, run.join("data")).unwrap();
    let pg = PostgresSandbox::recover(run, major, "postgres", false).unwrap();
    pg.psql(
        "postgres",
        "SELECT string_agg(note, ',' ORDER BY id) FROM marks",
    )
    .unwrap()
}

fn rand_suffix() -> u32 {
    std::process::id() ^ u32::try_from(Instant::now().elapsed().as_nanos() % 1_000_000).unwrap()
}

#[test]
fn pitr_restores_a_cluster_to_the_moment_before_a_change_and_to_the_latest() {
    let site = Site::new();
    let pg = archiving_cluster(&site);
    let major = pg.major();
    pg.psql(
        "postgres",
        "CREATE TABLE marks (id serial, note text); INSERT INTO marks (note) VALUES ('before-base')",
    )
    .unwrap();
    let backup = site
        .run(&["--json", "backup", "main"])
        .expect_code(0)
        .json();
    assert_eq!(backup["assets"][0]["ok"], true, "{backup:#}");

    // The base backup's manifest, read with stock restic, records where it starts and stops.
    let snaps = restic(
        &site.repo(),
        &["snapshots", "--json", "--tag", "asset=main"],
    )
    .expect_code(0)
    .json();
    let id = snaps[0]["id"].as_str().unwrap().to_owned();
    let m = restic(&site.repo(), &["dump", &id, "/main/lifeboat-manifest.json"])
        .expect_code(0)
        .json();
    for key in ["start-lsn", "stop-lsn", "timeline", "system-identifier"] {
        assert!(m["consistency"][key].is_string(), "{key} in {m:#}");
    }
    let system = pg
        .psql(
            "postgres",
            "SELECT system_identifier FROM pg_control_system()",
        )
        .unwrap();
    assert_eq!(m["consistency"]["system-identifier"], system.as_str());

    pg.psql("postgres", "INSERT INTO marks (note) VALUES ('kept')")
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let moment = pg.psql("postgres", "SELECT now()::text").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    pg.psql("postgres", "INSERT INTO marks (note) VALUES ('lost')")
        .unwrap();
    archive_now(&pg);

    // To the moment: the row written after it is not there.
    let to_moment = site.dir.join("at-moment");
    let report = site
        .run(&[
            "--json",
            "restore",
            "main",
            "--time",
            &moment,
            "--to",
            to_moment.to_str().unwrap(),
        ])
        .expect_code(0)
        .json();
    assert!(
        report["recovered_to"]
            .as_str()
            .is_some_and(|r| r.contains("recovery stopping before commit")),
        "{report:#}"
    );
    let conf = fs::read_to_string(to_moment.join("postgresql.auto.conf")).unwrap();
    assert!(
        conf.trim_end().ends_with("archive_mode = 'off'") && !conf.contains("restore_command"),
        "a restored copy must not archive into the original's stream:\n{conf}"
    );
    assert_eq!(markers(&site, &to_moment, major), "before-base,kept");

    // To the latest: everything archived.
    let latest = site.dir.join("latest");
    site.run_ok(&[
        "restore",
        "main",
        "--latest",
        "--to",
        latest.to_str().unwrap(),
    ]);
    assert_eq!(markers(&site, &latest, major), "before-base,kept,lost");

    // The RPO counts from the newest archived WAL, not from the base backup.
    let status = site.run(&["--json", "status"]).json();
    let age = status
        .as_array()
        .and_then(|a| a.iter().find(|x| x["asset"] == "main"))
        .and_then(|a| a["age_secs"].as_u64())
        .unwrap_or_else(|| panic!("no age for main: {status:#}"));
    let base_time: jiff::Timestamp = snaps[0]["time"].as_str().unwrap().parse().unwrap();
    let base_age = jiff::Timestamp::now().as_second() - base_time.as_second();
    assert!(
        i64::try_from(age).unwrap() < base_age,
        "age {age} s is the base backup's ({base_age} s), not the newest WAL's"
    );

    // A drill replays the archive into a scratch cluster: the asset's check counts all three
    // rows, where the base backup alone holds one.
    let drill = site.run(&["--json", "drill", "main"]).expect_code(0).json();
    let a = &drill["assets"][0];
    assert_eq!(a["checks"][0]["ok"], true, "{drill:#}");
    assert!(
        a["compared"].as_str().is_some_and(
            |c| c.contains("as recorded") && c.contains("archived WAL file(s) replayed")
        ),
        "{drill:#}"
    );
    // Its achieved RPO is the age of the last commit replayed, younger than the base backup.
    let rpo = a["rpo_secs"].as_i64().unwrap();
    let base_age = jiff::Timestamp::now().as_second() - base_time.as_second();
    assert!(
        rpo < base_age,
        "drill RPO {rpo} s is the base backup's age ({base_age} s)"
    );

    // The archive's status: no gap from the base backup on, and the WAL files are restic's
    // ordinary snapshots, which restic checks.
    let status = site
        .run(&["--json", "wal", "status", "main"])
        .expect_code(0)
        .json();
    assert_eq!(status[0]["gaps"], Value::Array(vec![]), "{status:#}");
    assert_eq!(status[0]["base_backups"], 1, "{status:#}");
    assert!(status[0]["files"].as_u64().unwrap() >= 2, "{status:#}");
    restic(&site.repo(), &["check"]).expect_code(0);

    // A restore into a directory that holds something is refused and touches nothing.
    let busy = site.dir.join("busy");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("keep.txt"), "mine").unwrap();
    let refused = site.run(&["restore", "main", "--to", busy.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("not empty"), "{}", refused.stderr);
    assert_eq!(fs::read_to_string(busy.join("keep.txt")).unwrap(), "mine");
}

#[test]
fn wal_push_is_idempotent_refuses_a_different_file_and_fetch_says_missing() {
    let site = Site::new();
    let rx = lifeboat_testing::Receiver::start();
    let pg = archiving_cluster_with(
        &site,
        &format!(
            "\n[notify.hook]\ntype = \"webhook\"\nurl = {}\non = [\"failure\"]\n",
            crate::util::toml_str(&rx.url("/hook"))
        ),
    );
    pg.psql(
        "postgres",
        "CREATE TABLE t AS SELECT generate_series(1, 1000) i",
    )
    .unwrap();
    let segment = archive_now(&pg);

    // fetch writes the stored segment where PostgreSQL asks; it matches the server's copy
    // when that still exists.
    let fetched = site.dir.join("fetched");
    site.run_ok(&["wal", "fetch", "main", &segment, fetched.to_str().unwrap()]);
    assert_eq!(fs::metadata(&fetched).unwrap().len(), 16 * 1024 * 1024);

    // The same bytes under the same name: accepted again.
    let again = site.dir.join("again");
    fs::create_dir(&again).unwrap();
    if let Some((uid, gid)) = site.user {
        std::os::unix::fs::chown(&again, Some(uid), Some(gid)).unwrap();
    }
    let copy = again.join(&segment);
    fs::copy(&fetched, &copy).unwrap();
    site.run_ok(&["wal", "push", "main", copy.to_str().unwrap()]);

    // Other bytes under that name: refused, naming the file, whether the local ledger of
    // pushes still knows the segment or only the repository does.
    let mut bytes = fs::read(&copy).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&copy, &bytes).unwrap();
    let ledger = fs::read_dir(site.dir.join(".lifeboat/wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pushed"))
        .expect("a push ledger");
    for forget_ledger in [false, true] {
        if forget_ledger {
            fs::remove_file(&ledger).unwrap();
        }
        let refused = site.run(&["wal", "push", "main", copy.to_str().unwrap()]);
        assert_eq!(refused.code, 1, "{}", refused.stderr);
        assert!(
            refused
                .stderr
                .contains(&format!("holds a different {segment}")),
            "ledger kept: {}: {}",
            !forget_ledger,
            refused.stderr
        );
    }
    // Each refusal is told: archiving stops until someone looks.
    let told = rx.requests("/hook");
    assert_eq!(told.len(), 2, "{told:#?}");
    let body = told[1].json().to_string();
    assert!(body.contains(&format!("different {segment}")), "{body}");

    // And the original bytes are still accepted from the repository's record alone.
    fs::copy(&fetched, &copy).unwrap();
    site.run_ok(&["wal", "push", "main", copy.to_str().unwrap()]);

    // A name the archive does not hold: exit 1, which PostgreSQL reads as "not there".
    let missing = site.run(&[
        "wal",
        "fetch",
        "main",
        "0000000100000000000000FE",
        site.dir.join("nothing").to_str().unwrap(),
    ]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("not in the archive"),
        "{}",
        missing.stderr
    );
    assert!(!site.dir.join("nothing").exists());
}

#[test]
fn wal_retention_follows_the_base_backups_and_verify_names_a_gap() {
    let site = Site::new();
    let pg = archiving_cluster_with(&site, "retention = { last = 1 }\n");
    pg.psql("postgres", "CREATE TABLE t (i int)").unwrap();
    site.run_ok(&["backup", "main"]);
    let early = archive_now(&pg);
    archive_now(&pg);
    site.run_ok(&["backup", "main"]);
    pg.psql("postgres", "INSERT INTO t VALUES (1)").unwrap();
    archive_now(&pg);

    // The older base backup goes, and with it the WAL only it needed.
    let reports = site.run(&["--json", "forget"]).expect_code(0).json();
    let wal = reports
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["asset"] == "_wal-main")
        .unwrap_or_else(|| panic!("no decisions for the archive: {reports:#}"));
    let removed: Vec<&Value> = wal["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"] == false)
        .collect();
    assert!(!removed.is_empty(), "{wal:#}");
    let left: Vec<String> = site
        .wal_batches()
        .iter()
        .map(|s| s["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(!left.is_empty(), "the WAL after the kept base backup stays");
    assert!(
        left.iter().all(|r| !r.contains(&early)),
        "{early} is older than the base backup kept: {left:?}"
    );
    let status = site
        .run(&["--json", "wal", "status", "main"])
        .expect_code(0)
        .json();
    assert_eq!(status[0]["base_backups"], 1, "{status:#}");
    assert_eq!(status[0]["gaps"], Value::Array(vec![]), "{status:#}");

    // A batch lost from the middle of the chain: verify and wal status name the segment.
    let lost = archive_now(&pg);
    archive_now(&pg);
    let batch = site
        .wal_batches()
        .iter()
        .find(|s| s["reason"].as_str().unwrap().contains(&lost))
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .unwrap();
    restic(&site.repo(), &["forget", &batch]).expect_code(0);
    let verify = site
        .run(&["--json", "verify", "main"])
        .expect_code(1)
        .json();
    let gap = verify["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "wal-gap")
        .unwrap_or_else(|| panic!("no wal-gap finding: {verify:#}"));
    assert!(gap["message"].as_str().unwrap().contains(&lost), "{gap:#}");
    let status = site
        .run(&["--json", "wal", "status", "main"])
        .expect_code(3)
        .json();
    assert_eq!(status[0]["gaps"][0][0], lost.as_str(), "{status:#}");
}

#[test]
fn one_push_takes_the_segments_already_ready_along() {
    let site = Site::new();
    let pg = archiving_cluster(&site);
    // Segments pile up while the archive command fails...
    pg.psql("postgres", "ALTER SYSTEM SET archive_command = 'false'")
        .unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
    let mut piled = Vec::new();
    for _ in 0..4 {
        pg.psql(
            "postgres",
            "SELECT pg_logical_emit_message(false, 'lifeboat-test', 'x')",
        )
        .unwrap();
        piled.push(
            pg.psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")
                .unwrap(),
        );
    }
    // ...then the first push takes every ready one in one batch, and PostgreSQL's calls for
    // the others return from the ledger.
    let command = format!(
        "{} --config {} wal push main %p",
        env!("CARGO_BIN_EXE_lifeboat"),
        site.plan().display()
    );
    pg.psql(
        "postgres",
        &format!("ALTER SYSTEM SET archive_command = '{command}'"),
    )
    .unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
    let last = archive_now(&pg);
    let batches: Vec<String> = site
        .wal_batches()
        .iter()
        .map(|s| s["reason"].as_str().unwrap().to_owned())
        .collect();
    let first = format!("wal {} ", piled[0]);
    let batch = batches
        .iter()
        .find(|r| r.starts_with(&first))
        .unwrap_or_else(|| panic!("no batch starts at {}: {batches:?}", piled[0]));
    assert!(
        batch.ends_with(piled[3].as_str()) || batch.ends_with(last.as_str()),
        "the first push took the piled segments along: {batch}"
    );
    for segment in piled.iter().chain([&last]) {
        let fetched = site.dir.join(format!("check-{segment}"));
        site.run_ok(&["wal", "fetch", "main", segment, fetched.to_str().unwrap()]);
    }
}

#[test]
fn compaction_folds_old_pushes_into_one_snapshot_that_restic_accepts() {
    let site = Site::new();
    let pg = archiving_cluster(&site);
    let segments: Vec<String> = (0..11).map(|_| archive_now(&pg)).collect();
    let before = site.wal_batches().len();
    assert!(before >= 11, "one push per segment: {before}");

    let done = site
        .run(&["--json", "wal", "compact", "main"])
        .expect_code(0)
        .json();
    assert_eq!(done["before"], before, "{done:#}");
    // All but the newest eight were pushed within this hour: they fold into one.
    assert_eq!(done["after"], 9, "{done:#}");
    let after = site.wal_batches();
    assert_eq!(after.len(), 9);
    let merged = after
        .iter()
        .find(|s| {
            s["reason"]
                .as_str()
                .unwrap()
                .starts_with(&format!("wal {} ", segments[0]))
        })
        .unwrap_or_else(|| panic!("no merged batch from {}: {after:#?}", segments[0]));
    assert!(
        merged["bytes"].as_u64().unwrap() >= 3 * 16 * 1024 * 1024,
        "{merged:#}"
    );

    // Stock restic finds nothing wrong, and every segment still comes back byte for byte
    // as stored.
    restic(&site.repo(), &["check", "--read-data"]).expect_code(0);
    for segment in &segments {
        let out = site.dir.join(format!("got-{segment}"));
        site.run_ok(&["wal", "fetch", "main", segment, out.to_str().unwrap()]);
        assert_eq!(fs::metadata(&out).unwrap().len(), 16 * 1024 * 1024);
    }
    let status = site.run(&["--json", "wal", "status", "main"]).json();
    assert_eq!(status[0]["batches"], 9, "{status:#}");
    // Forgetting snapshots is on record.
    let audit = fs::read_to_string(site.dir.join(".lifeboat/audit.jsonl")).unwrap();
    assert!(
        audit.lines().any(|l| l.contains("\"wal compact main\"")
            && l.contains(&format!("{before} pushes folded into 9"))),
        "{audit}"
    );
}

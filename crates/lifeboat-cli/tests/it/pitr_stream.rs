//! A streamed `postgres-cluster` (`wal = "stream"`): the daemon keeps `pg_receivewal` on a
//! replication slot and stores the unfinished segment every second. Rows committed into a
//! segment the server never finished survive a crash that takes the data directory with it.

use std::{
    fs,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use lifeboat_core::wal::Lsn;
use lifeboat_testing::{free_port, http_request, sandbox::PostgresSandbox};
use serde_json::Value;

use crate::{
    pitr::{Site, read_marks},
    util::{crash_postgres, restic},
};

/// The daemon, killed when dropped so a failing test leaves nothing behind.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` every 200 ms for up to a minute; panics naming `what` with `log`'s content.
fn poll<T>(what: &str, log: &std::path::Path, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n--- daemon log\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_streamed_cluster_loses_nothing_committed_before_the_last_store_when_it_crashes() {
    let site = Site::new();
    let pg = PostgresSandbox::start(None).unwrap();
    let major = pg.major();
    site.write_plan(&pg, "wal = \"stream\"\nstream-interval = \"1s\"\n");
    site.run_ok(&["init"]);
    // The server does not archive: whatever reaches the repository came through the stream.
    assert_eq!(pg.psql("postgres", "SHOW archive_mode").unwrap(), "off");

    let port = free_port();
    let log = site.dir.join("daemon.log");
    let mut daemon = Daemon(
        site.command(&[
            "daemon",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--check-every",
            "1s",
        ])
        .env("LIFEBOAT_LOG", "info,rustic_core=off")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap(),
    );
    poll("the stream's replication slot", &log, || {
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'lifeboat_main' AND active",
        )
        .ok()
        .filter(|n| n == "1")
    });

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
    for note in ["streamed-1", "streamed-2"] {
        pg.psql(
            "postgres",
            &format!("INSERT INTO marks (note) VALUES ('{note}')"),
        )
        .unwrap();
    }
    let committed = pg
        .psql("postgres", "SELECT pg_current_wal_lsn()")
        .map(|l| Lsn::parse(&l).unwrap())
        .unwrap();
    let segment = pg
        .psql(
            "postgres",
            &format!("SELECT pg_walfile_name('{committed}')"),
        )
        .unwrap();
    let written_at = jiff::Timestamp::now();

    // The stream stores the unfinished segment up to the last commit.
    let status = poll("the stream to store the last commit", &log, || {
        let status = site.run(&["--json", "wal", "status", "main"]).json();
        let reached = status[0]["unfinished"][1].as_str().and_then(Lsn::parse)?;
        (reached >= committed).then_some(status)
    });
    assert_eq!(status[0]["unfinished"][0], segment.as_str(), "{status:#}");
    // That segment is still the server's current one: no finished copy of it exists anywhere.
    assert_eq!(
        pg.psql("postgres", "SELECT pg_walfile_name(pg_current_wal_lsn())")
            .unwrap(),
        segment
    );
    // /metrics reports the store.
    poll::<f64>("/metrics to show the store", &log, || {
        let (code, body) = http_request(port, "GET", "/metrics", &[], b"").ok()?;
        assert_eq!(code, 200, "{body}");
        body.lines()
            .find_map(|l| {
                l.strip_prefix("lifeboat_wal_last_archived_timestamp_seconds{asset=\"main\"} ")
            })
            .and_then(|v| v.parse().ok())
            .filter(|t| *t >= written_at.as_second() as f64)
    });

    // The crash takes the server and its data directory.
    crash_postgres(&pg.dir().join("data"));
    fs::remove_dir_all(pg.dir().join("data")).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(daemon.0.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let exit = poll("the daemon to stop", &log, || daemon.0.try_wait().unwrap());
    assert!(exit.success(), "{exit:?}");

    // Restored to the latest point: every committed row is back.
    let restored = site.dir.join("restored");
    site.run_ok(&[
        "restore",
        "main",
        "--latest",
        "--to",
        restored.to_str().unwrap(),
    ]);
    assert_eq!(
        read_marks(&site.dir, &restored, major),
        "before-base,streamed-1,streamed-2"
    );

    // The stream replaced its stored unfinished segments as it went: one is left, and restic
    // reads the repository as its own.
    let snaps: Vec<Value> = site
        .run_ok(&["--json", "snapshots"])
        .json()
        .as_array()
        .unwrap()
        .clone();
    let partials = snaps
        .iter()
        .filter(|s| {
            s["asset"] == "_wal-main"
                && s["reason"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(".partial"))
        })
        .count();
    assert_eq!(partials, 1, "{snaps:#?}");
    restic(&site.repo(), &["check"]).expect_code(0);
}

//! Picking a snapshot by time (`--before`, a runbook step's `before`): the newest one taken
//! before it, the time read in the plan's time zone.

use std::{fs, thread::sleep, time::Duration};

use jiff::{Timestamp, tz::TimeZone};
use rusqlite::Connection;

use crate::util::{Sandbox, toml_path};

/// The plan's zone: five or four hours behind UTC, so a civil time read as UTC would pick the
/// other snapshot.
const ZONE: &str = "America/New_York";

fn count(db: &std::path::Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM tools", [], |r| r.get(0))
        .unwrap()
}

fn add_rows(db: &std::path::Path, n: u32) {
    let c = Connection::open(db).unwrap();
    c.execute_batch("CREATE TABLE IF NOT EXISTS tools(id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    for i in 0..n {
        c.execute("INSERT INTO tools(name) VALUES (?1)", [format!("tool {i}")])
            .unwrap();
    }
}

/// Two snapshots of `hub` (100 rows, then 150) with `cut` between them.
fn two_snapshots(sb: &Sandbox, extra: &str) -> (std::path::PathBuf, Timestamp) {
    let db = sb.join("hub.db");
    add_rows(&db, 100);
    sb.write_plan(&format!(
        "[schedules]\ntime-zone = \"{ZONE}\"\n\n[assets.hub]\ntype = \"sqlite\"\npath = {}\n{extra}",
        toml_path(&db)
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    // Snapshot times have whole seconds in listings; leave room on both sides of the cut.
    sleep(Duration::from_millis(1100));
    let cut = Timestamp::now();
    sleep(Duration::from_millis(1100));
    add_rows(&db, 50);
    sb.run_ok(&["backup"]);
    (db, cut)
}

/// `cut` as the plan's operators write it: a date and time in the plan's zone.
fn civil(cut: Timestamp) -> String {
    cut.to_zoned(TimeZone::get(ZONE).unwrap())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[test]
fn restore_and_dump_before_a_time_take_the_snapshot_before_it() {
    let sb = Sandbox::new();
    let (_db, cut) = two_snapshots(&sb, "");

    let out = sb.join("before.db");
    sb.run_ok(&[
        "restore",
        "hub",
        "--before",
        &civil(cut),
        "--to",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        count(&out),
        100,
        "the snapshot before the cut, in the plan's zone"
    );

    let newest = sb.join("newest.db");
    sb.run_ok(&["restore", "hub", "--to", newest.to_str().unwrap()]);
    assert_eq!(count(&newest), 150);

    // RFC 3339 carries its own offset; dump takes the same snapshot.
    let dumped = sb.join("dumped.db");
    fs::write(
        &dumped,
        sb.run_ok(&["dump", "hub", "--before", &cut.to_string()])
            .stdout_bytes,
    )
    .unwrap();
    assert_eq!(count(&dumped), 100);
}

#[test]
fn a_time_before_every_snapshot_or_unreadable_says_so() {
    let sb = Sandbox::new();
    two_snapshots(&sb, "");
    let early = sb
        .run(&["restore", "hub", "--before", "2001-02-03", "--to", "x.db"])
        .expect_code(1);
    // Midnight in New York is 05:00 UTC.
    assert!(
        early
            .stderr
            .contains("find snapshot before 2001-02-03 05:00:00 UTC of asset hub: the oldest is"),
        "{}",
        early.stderr
    );
    let bad = sb
        .run(&["restore", "hub", "--before", "last tuesday", "--to", "x.db"])
        .expect_code(1);
    assert!(
        bad.stderr.contains("read the time \"last tuesday\""),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("2026-12-05 10:00"),
        "the hint shows the form: {}",
        bad.stderr
    );
    let both = sb
        .run(&[
            "restore",
            "hub",
            "--before",
            "2001-02-03",
            "--snapshot",
            "latest",
        ])
        .expect_code(2);
    assert!(both.stderr.contains("--before"), "{}", both.stderr);
}

#[test]
fn a_runbook_step_restores_the_snapshot_before_a_time_given_at_run_time() {
    let sb = Sandbox::new();
    let (db, cut) = two_snapshots(
        &sb,
        "\n[[scenarios]]\nname = \"bad-deploy\"\nsteps = [{ restore = \"hub\", before = \"${CUTOFF}\" }]\n",
    );
    let run = sb
        .cmd(&["recover", "bad-deploy", "--yes"])
        .env("CUTOFF", civil(cut))
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert_eq!(
        count(&db),
        100,
        "the live database is back to before the cut"
    );
}

//! `examples/tool-hub.toml` (seed 001): SQLite, secrets and configuration; data corruption
//! recovered in place, and the whole system restored from the S3 copy after the host and its
//! local repository are gone.

use std::{fs, os::unix::fs::PermissionsExt, time::Duration};

use lifeboat_testing::{MotoServer, sandbox::PostgresSandbox};

use super::{Example, Health, assert_example_checks_clean, assert_report_complete};
use crate::{
    pitr::{archive_now, postgres_user, read_marks},
    util::PASSWORD,
};

fn counts(db: &std::path::Path) -> (i64, i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    let n = |t: &str| {
        c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap_or(-1)
    };
    (n("workflows"), n("executions"))
}

/// The example's servers: its API's health endpoint and a PostgreSQL cluster for `pg`.
fn setup() -> (Example, Health, PostgresSandbox) {
    let mut ex = Example::new("tool-hub");
    let data = ex.path("var/lib/tool-hub");
    let home = ex.path("opt/tool-hub");
    let units = ex.path("etc/systemd/system");
    for d in [&data, &home.join("secrets"), &units] {
        fs::create_dir_all(d).unwrap();
    }
    let db = rusqlite::Connection::open(data.join("tool_hub.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE workflows(id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE executions(id INTEGER PRIMARY KEY, workflow INTEGER, status TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
           INSERT INTO workflows(name) SELECT 'wf-' || i FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
           INSERT INTO executions(workflow, status) SELECT i % 20 + 1, 'done' FROM n;",
    )
    .unwrap();
    fs::write(home.join("secrets/jwt_secret"), "jwt-signing-key").unwrap();
    fs::write(
        home.join(".env"),
        "DATABASE_URL=sqlite:///var/lib/tool-hub/tool_hub.db\n",
    )
    .unwrap();
    fs::write(
        units.join("tool-hub.service"),
        "[Service]\nExecStart=/opt/tool-hub/run\n",
    )
    .unwrap();
    let api = Health::start("ready");
    ex.set("TOOLHUB_REPO", ex.path("repo").display().to_string());
    ex.local_offsite("TOOLHUB_OFFSITE");
    ex.set("TOOLHUB_DATA", data.display().to_string());
    ex.set("TOOLHUB_HOME", home.display().to_string());
    ex.set("TOOLHUB_UNIT_DIR", units.display().to_string());
    ex.set("TOOLHUB_API", api.addr.clone());
    // Nothing listens there: a notification cannot be delivered.
    ex.set("TOOLHUB_ALERT_WEBHOOK", "http://127.0.0.1:9/hooks/oncall");
    let pg = PostgresSandbox::start(None).unwrap();
    ex.set("TOOLHUB_PG_URL", pg.url("postgres"));
    ex.set(
        "TOOLHUB_PG_DATA",
        pg.dir().join("data").display().to_string(),
    );
    (ex, api, pg)
}

#[test]
fn tool_hub_example_checks_clean() {
    assert_example_checks_clean("tool-hub");
}

#[test]
fn tool_hub_data_corruption_is_recovered() {
    let (ex, _api, _pg) = setup();
    ex.ok(&["init"]);
    ex.ok(&["backup"]);
    let db = ex.path("var/lib/tool-hub/tool_hub.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("DELETE FROM workflows WHERE id > 5; DROP TABLE executions;")
        .unwrap();
    drop(c);
    assert_eq!(counts(&db), (5, -1));

    // The alert hook is down: the notify step fails to deliver, which must not fail a
    // recovery that worked; telling people by hand becomes a follow-up item.
    let (run, report) = ex.recover("data-corruption", 0);
    assert!(report.contains("NOT delivered"), "{report}");
    assert!(
        report.contains("- [ ] Tell the people concerned by hand"),
        "{report}"
    );
    assert_eq!(counts(&db), (20, 200), "{}", run.stdout);
    assert_report_complete(&report, "data-corruption", &["db"]);
    let calls = ex.calls();
    assert!(calls.contains("systemctl stop tool-hub"), "{calls}");
    assert!(calls.contains("systemctl start tool-hub"), "{calls}");
    assert!(report.contains("2 check(s) passed"), "{report}");
    // The previous (damaged) file is kept beside the restored one, and said so.
    assert!(report.contains("tool_hub.db.lifeboat-old-"), "{report}");
}

#[test]
fn tool_hub_complete_loss_restores_everything_from_s3() {
    let s3 = MotoServer::start().expect("start moto_server (pip install 'moto[server]')");
    // The example's copy has object-lock: its bucket must lock, or the copy is refused.
    s3.create_locked_bucket("tool-hub", 1).unwrap();
    let (mut ex, _api, _pg) = setup();
    ex.bucket_offsite(
        "TOOLHUB_OFFSITE",
        format!(
            "s3://tool-hub/lifeboat?endpoint={}&region=us-east-1",
            s3.endpoint()
        ),
    );
    for (k, v) in s3.aws_env() {
        ex.set(&k, v);
    }
    ex.ok(&["init"]);
    let backup = ex.ok(&["--json", "backup"]).json();
    assert_eq!(
        backup["copies"][0]["error"],
        serde_json::Value::Null,
        "{backup}"
    );

    // The host is gone: data, secrets, configuration and the local repository.
    for dir in ["var", "opt", "etc", "repo"] {
        fs::remove_dir_all(ex.path(dir)).unwrap();
    }
    let (run, report) = ex.recover("complete-loss", 0);
    let db = ex.path("var/lib/tool-hub/tool_hub.db");
    assert_eq!(counts(&db), (20, 200), "{}", run.stdout);
    assert_eq!(
        fs::read_to_string(ex.path("opt/tool-hub/secrets/jwt_secret")).unwrap(),
        "jwt-signing-key"
    );
    assert!(ex.path("etc/systemd/system/tool-hub.service").exists());
    assert_report_complete(&report, "complete-loss", &["secrets", "config", "db"]);
    // The confirm steps were not asked (--yes): they are follow-up items.
    assert!(report.contains("- [ ] Phase 1: provision"), "{report}");
    assert!(
        ex.calls().contains("systemctl daemon-reload"),
        "{}",
        ex.calls()
    );
}

/// Seed 001's "replay WAL to just before the corruption": a cluster archiving through the
/// plan's `wal push`, a corrupting update after a known moment, and the scenario recovering
/// the cluster to that moment into a new directory.
#[test]
fn tool_hub_replays_wal_to_just_before_the_corruption() {
    let (mut ex, _api, mut pg) = setup();
    let restored = ex.path("restored/main");
    ex.set("TOOLHUB_PG_RESTORED", restored.display().to_string());
    ex.ok(&["init"]);

    // PostgreSQL runs archive_command as its own user, with the plan's environment from a
    // file only that user reads, as a systemd EnvironmentFile would give it.
    let user = postgres_user();
    let own = |p: &std::path::Path| {
        if let Some((uid, gid)) = user {
            for entry in walkdir::WalkDir::new(p) {
                let entry = entry.unwrap();
                std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid)).unwrap();
            }
        }
    };
    fs::set_permissions(ex.sb.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(ex.path(".lifeboat/wal")).unwrap();
    fs::create_dir_all(ex.path("restored")).unwrap();
    for dir in ["repo", ".lifeboat/wal", "restored"] {
        own(&ex.path(dir));
    }
    let env = ex.path("pg-archive.env");
    fs::write(
        &env,
        format!(
            "LIFEBOAT_PASSWORD='{PASSWORD}'\nTOOLHUB_REPO='{}'\nTOOLHUB_PG_URL='{}'\n",
            ex.path("repo").display(),
            pg.url("postgres")
        ),
    )
    .unwrap();
    fs::set_permissions(&env, fs::Permissions::from_mode(0o600)).unwrap();
    own(&env);
    let wrapper = ex.path("archive.sh");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nset -a\n. '{}'\nexec '{}' --config '{}' wal push pg \"$1\"\n",
            env.display(),
            env!("CARGO_BIN_EXE_lifeboat"),
            ex.sb.plan_path().display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    pg.psql("postgres", "ALTER SYSTEM SET archive_mode = on")
        .unwrap();
    pg.psql(
        "postgres",
        &format!(
            "ALTER SYSTEM SET archive_command = '{} %p'",
            wrapper.display()
        ),
    )
    .unwrap();
    pg.stopped(|_| ()).unwrap();

    pg.psql(
        "postgres",
        "CREATE TABLE marks (id serial, note text); INSERT INTO marks (note) VALUES ('good')",
    )
    .unwrap();
    ex.ok(&["backup", "pg"]);
    // What root's backup created (the lock directory) goes to the server's user too.
    own(&ex.path("repo"));
    pg.psql("postgres", "INSERT INTO marks (note) VALUES ('still good')")
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let before = pg.psql("postgres", "SELECT now()::text").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    pg.psql("postgres", "UPDATE marks SET note = 'corrupted'")
        .unwrap();
    archive_now(&pg);

    let (run, report) = ex.recover_with(
        "replay-before-corruption",
        0,
        &[("BEFORE_CORRUPTION", before.as_str())],
    );
    assert!(
        report.contains("recovered: recovery stopping before commit"),
        "{}\n{report}",
        run.stdout
    );
    assert!(
        report.contains("- [ ] Stop PostgreSQL, move its damaged"),
        "{report}"
    );
    assert!(
        ex.calls().contains("systemctl start postgresql tool-hub"),
        "{}",
        ex.calls()
    );
    // The live cluster still holds the corruption; the restored one is from before it.
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT string_agg(note, ',' ORDER BY id) FROM marks"
        )
        .unwrap(),
        "corrupted,corrupted"
    );
    assert_eq!(
        read_marks(&ex.path("restored"), &restored, pg.major()),
        "good,still good"
    );
}

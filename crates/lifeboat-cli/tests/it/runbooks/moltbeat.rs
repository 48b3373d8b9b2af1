//! `examples/moltbeat.toml` (seed 002): PostgreSQL, the .env and a Redis cache; deleted rows
//! restored into a temporary database and copied back into production.

use std::fs;

use lifeboat_testing::sandbox::{PostgresSandbox, RedisSandbox};

use super::{Example, Health, assert_example_checks_clean, assert_report_complete};

#[test]
fn moltbeat_example_checks_clean() {
    assert_example_checks_clean("moltbeat");
}

#[test]
fn moltbeat_accidental_deletion_copies_the_missing_rows_back() {
    let mut ex = Example::new("moltbeat");
    let pg = PostgresSandbox::start(None).unwrap();
    pg.psql("postgres", "CREATE ROLE moltbeat LOGIN SUPERUSER")
        .unwrap();
    pg.psql("postgres", "CREATE DATABASE moltbeat OWNER moltbeat")
        .unwrap();
    pg.psql(
        "moltbeat",
        "CREATE TABLE agents(id int PRIMARY KEY, name text);
         INSERT INTO agents SELECT i, 'agent-' || i FROM generate_series(1, 40) i;
         CREATE TABLE posts(id int PRIMARY KEY, agent int REFERENCES agents(id), body text);
         INSERT INTO posts SELECT i, i % 10 + 1, 'post' FROM generate_series(1, 100) i;",
    )
    .unwrap();
    pg.psql(
        "moltbeat",
        "ALTER TABLE agents OWNER TO moltbeat; ALTER TABLE posts OWNER TO moltbeat",
    )
    .unwrap();
    let redis = RedisSandbox::start(None).unwrap();
    fs::create_dir_all(ex.path("opt/moltbeat")).unwrap();
    fs::write(
        ex.path("opt/moltbeat/.env"),
        "DATABASE_URL=postgres://moltbeat@db/moltbeat\n",
    )
    .unwrap();
    let slack = Health::start("ok");
    ex.set("MOLTBEAT_REPO", ex.path("repo").display().to_string());
    ex.local_offsite("MOLTBEAT_OFFSITE");
    ex.set("MOLTBEAT_PG_HOST", "127.0.0.1");
    ex.set("MOLTBEAT_PG_PORT", pg.port().to_string());
    ex.set("MOLTBEAT_PG_PASSWORD", "unused-with-trust");
    ex.set("MOLTBEAT_REDIS_HOST", "127.0.0.1");
    ex.set("MOLTBEAT_REDIS_PORT", redis.port().to_string());
    ex.set(
        "MOLTBEAT_HOME",
        ex.path("opt/moltbeat").display().to_string(),
    );
    ex.set(
        "MOLTBEAT_SLACK_WEBHOOK",
        format!("http://{}/slack", slack.addr),
    );
    ex.ok(&["init"]);
    ex.ok(&["backup"]);

    // Someone deletes agents (and, with them, their posts are left dangling) and the
    // application goes on writing.
    pg.psql(
        "moltbeat",
        "ALTER TABLE posts DROP CONSTRAINT posts_agent_fkey; DELETE FROM agents WHERE id BETWEEN 5 AND 24; INSERT INTO agents VALUES (41, 'new-since-backup')",
    )
    .unwrap();
    let count = || {
        pg.psql("moltbeat", "SELECT count(*) FROM agents")
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(count(), "21");

    let (run, report) = ex.recover("accidental-deletion", 0);
    // The 20 deleted rows are back, the row written since the backup is kept.
    assert_eq!(count(), "41", "{}", run.stdout);
    assert_eq!(
        pg.psql("moltbeat", "SELECT name FROM agents WHERE id = 41")
            .unwrap()
            .trim(),
        "new-since-backup"
    );
    // The temporary database is gone again.
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'moltbeat_recovery'"
        )
        .unwrap()
        .trim(),
        "0"
    );
    assert_report_complete(&report, "accidental-deletion", &["db"]);
    // Not restored over the live database: no safety snapshot was needed, none is named.
    assert!(report.contains("moltbeat_recovery"), "{report}");
    assert!(report.contains("not restored in this run"), "{report}");
    assert!(
        slack
            .received()
            .iter()
            .any(|p| p.contains("deleted agents copied back"))
    );
}

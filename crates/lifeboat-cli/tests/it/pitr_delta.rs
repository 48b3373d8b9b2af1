//! A delta restore of a `postgres-cluster` (`restore --to DIR --delta`): a directory holding
//! an older restore of the cluster is brought to the latest point by writing only what
//! differs from the base backup.

use std::{fs, os::unix::fs::MetadataExt};

use crate::pitr::{Site, archive_now, archiving_cluster, read_marks};

#[test]
fn a_delta_restore_leaves_unchanged_files_alone_and_reaches_the_latest_point() {
    let site = Site::new();
    let pg = archiving_cluster(&site);
    let major = pg.major();
    // A large table that nothing touches after the base backup (frozen, no autovacuum).
    pg.psql(
        "postgres",
        "CREATE TABLE marks (id serial, note text); INSERT INTO marks (note) VALUES ('base'); \
         CREATE TABLE filler WITH (autovacuum_enabled = off) AS \
           SELECT g, md5(g::text) AS h FROM generate_series(1, 600000) g",
    )
    .unwrap();
    pg.psql("postgres", "VACUUM (FREEZE) filler").unwrap();
    let filler = pg
        .psql("postgres", "SELECT pg_relation_filepath('filler')")
        .unwrap();
    site.run_ok(&["backup", "main"]);
    pg.psql("postgres", "INSERT INTO marks (note) VALUES ('first')")
        .unwrap();
    archive_now(&pg);

    let copy = site.dir.join("copy");
    let first = site
        .run(&[
            "--json",
            "restore",
            "main",
            "--latest",
            "--to",
            copy.to_str().unwrap(),
        ])
        .expect_code(0)
        .json();
    assert!(first["delta"].is_null(), "{first:#}");
    let before = fs::metadata(copy.join(&filler)).unwrap();

    // Without --delta the directory is refused and left as it is.
    let refused = site
        .run(&[
            "restore",
            "main",
            "--latest",
            "--to",
            copy.to_str().unwrap(),
        ])
        .expect_code(1);
    assert!(refused.stderr.contains("--delta"), "{}", refused.stderr);

    pg.psql("postgres", "INSERT INTO marks (note) VALUES ('second')")
        .unwrap();
    archive_now(&pg);
    let report = site
        .run(&[
            "--json",
            "restore",
            "main",
            "--latest",
            "--to",
            copy.to_str().unwrap(),
            "--delta",
        ])
        .expect_code(0)
        .json();
    let written = report["delta"]["written_bytes"].as_u64().unwrap();
    let reused = report["delta"]["reused_bytes"].as_u64().unwrap();
    assert!(
        written < reused,
        "a delta wrote {written} bytes and reused only {reused}: {report:#}"
    );
    // The frozen table's file was found as backed up and not written again.
    let after = fs::metadata(copy.join(&filler)).unwrap();
    assert_eq!(
        (after.ino(), after.mtime(), after.mtime_nsec()),
        (before.ino(), before.mtime(), before.mtime_nsec()),
        "{filler} was rewritten"
    );
    assert_eq!(read_marks(&site.dir, &copy, major), "base,first,second");
}

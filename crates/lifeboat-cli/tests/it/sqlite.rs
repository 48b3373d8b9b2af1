//! SQLite assets: a consistent copy with its row counts in the manifest, restored through a
//! checked temporary file.

use rusqlite::Connection;

use crate::util::{Sandbox, toml_path};

fn count(db: &std::path::Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM tools", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn sqlite_backup_restore_in_place_and_elsewhere() {
    let sb = Sandbox::new();
    let db = sb.join("tool_hub.db");
    let c = Connection::open(&db).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.execute_batch("CREATE TABLE tools(id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    for i in 0..500 {
        c.execute("INSERT INTO tools(name) VALUES (?1)", [format!("tool {i}")])
            .unwrap();
    }
    sb.write_plan(&format!(
        "[assets.hub]\ntype = \"sqlite\"\npath = {}\n",
        toml_path(&db)
    ));
    sb.run_ok(&["init"]);
    // The connection stays open, as the application's would.
    let backup = sb.run(&["--json", "backup"]).expect_code(0).json();
    assert_eq!(backup["assets"][0]["ok"], true, "{backup:#}");

    // The manifest holds the row counts taken on the copy.
    let dumped = sb.join("dumped.db");
    std::fs::write(&dumped, sb.run_ok(&["dump", "hub"]).stdout_bytes).unwrap();
    assert_eq!(count(&dumped), 500);

    // Accidental deletion, then a restore over the live file.
    c.execute("DELETE FROM tools WHERE id > 10", []).unwrap();
    drop(c);
    assert_eq!(count(&db), 10);
    let report = sb
        .run(&["--json", "restore", "hub", "--yes"])
        .expect_code(0)
        .json();
    assert_eq!(count(&db), 500);
    let kept = report["kept"].as_str().expect("previous database kept");
    assert_eq!(count(std::path::Path::new(kept)), 10);
    assert!(report["safety_snapshot"].is_string(), "{report:#}");
    assert_eq!(
        sb.snapshots_of("hub").len(),
        2,
        "backup and safety snapshot"
    );

    // Elsewhere, without touching the original.
    let other = sb.join("copy/tool_hub.db");
    sb.run_ok(&["restore", "hub", "--to", other.to_str().unwrap()]);
    assert_eq!(count(&other), 500);
    let again = sb.run(&["restore", "hub", "--to", other.to_str().unwrap()]);
    assert_eq!(
        again.code, 1,
        "an existing file is not replaced without --yes"
    );
}

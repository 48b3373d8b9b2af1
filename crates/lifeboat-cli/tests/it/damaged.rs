//! Restores over a damaged live target: the consistent safety read fails, so the target's raw
//! bytes are kept instead (or the old database stays under another name) and the restore goes
//! on. The moment a restore matters most is when the target is broken.

use std::{fs, path::Path, process::Command};

use lifeboat_testing::sandbox::{PostgresSandbox, RedisSandbox};
use rusqlite::Connection;

use crate::util::{Sandbox, toml_path};

const DAMAGED: &str = "the live target is damaged";

fn count(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM tools", [], |r| r.get(0))
        .unwrap()
}

/// A WAL-mode database with `rows` rows, backed up once by the plan in `sb`.
fn backed_up_sqlite(sb: &Sandbox, rows: u32, extra: &str) -> std::path::PathBuf {
    let db = sb.join("hub.db");
    let c = Connection::open(&db).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.execute_batch("CREATE TABLE tools(id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    for i in 0..rows {
        c.execute(
            "INSERT INTO tools(name) VALUES (?1)",
            [format!("tool {i} {}", "x".repeat(200))],
        )
        .unwrap();
    }
    drop(c);
    sb.write_plan(&format!(
        "[assets.hub]\ntype = \"sqlite\"\npath = {}\n{extra}",
        toml_path(&db)
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    db
}

/// Bytes no SQLite page holds: a fixed pattern, the same on every run.
pub(crate) fn garbage(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8 ^ 0x5a).collect()
}

/// Pages 2 and on overwritten with garbage, the header page left alone: SQLite opens the file
/// and then reads "database disk image is malformed".
pub(crate) fn overwrite_pages(db: &Path) -> Vec<u8> {
    let mut bytes = fs::read(db).unwrap();
    let page = 4096;
    assert!(bytes.len() > 4 * page, "the test database spans pages");
    let noise = garbage(bytes.len() - page);
    bytes[page..].copy_from_slice(&noise);
    fs::write(db, &bytes).unwrap();
    bytes
}

#[test]
fn sqlite_restore_over_a_malformed_database_keeps_its_raw_bytes() {
    let sb = Sandbox::new();
    let db = backed_up_sqlite(&sb, 400, "");
    let damaged = overwrite_pages(&db);
    let wal = sb.join("hub.db-wal");
    fs::write(&wal, b"the damaged database's write-ahead log").unwrap();
    let broken = sb.run(&["backup"]);
    assert!(
        broken.stdout.contains("malformed"),
        "the damage is real: {}",
        broken.stdout
    );

    let run = sb
        .run(&["--json", "restore", "hub", "--yes"])
        .expect_code(0);
    assert_eq!(count(&db), 400, "the snapshot is back");
    assert!(
        run.stderr.contains(DAMAGED),
        "one line says so: {}",
        run.stderr
    );
    let report = run.json();
    let raw = report["damaged"]["raw_snapshot"]
        .as_str()
        .unwrap_or_else(|| panic!("a raw safety snapshot: {report:#}"));
    assert_eq!(report["safety_snapshot"].as_str(), Some(raw));
    assert!(
        report["damaged"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("malformed")),
        "{report:#}"
    );
    assert!(
        !wal.exists(),
        "the damaged -wal is not applied to the restored file"
    );

    // The raw copy holds the damaged file and its -wal byte for byte, as plain files.
    let out = sb.join("raw");
    sb.run_ok(&[
        "restore",
        "hub",
        "--snapshot",
        raw,
        "--to",
        out.to_str().unwrap(),
    ]);
    let inside = |p: &Path| out.join(p.strip_prefix("/").unwrap());
    assert_eq!(fs::read(inside(&db)).unwrap(), damaged);
    assert_eq!(
        fs::read(inside(&wal)).unwrap(),
        b"the damaged database's write-ahead log"
    );
    let snap = sb
        .snapshots_of("hub")
        .into_iter()
        .find(|s| s["id"] == raw)
        .unwrap();
    assert!(
        snap["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "safety"),
        "{snap:#}"
    );

    // Undoing the restore puts the damaged bytes back, after a consistent safety snapshot of
    // the good database.
    let undo = sb
        .run(&["--json", "restore", "hub", "--snapshot", raw, "--yes"])
        .expect_code(0)
        .json();
    assert_eq!(fs::read(&db).unwrap(), damaged);
    assert!(undo["damaged"].is_null(), "{undo:#}");
    assert!(undo["safety_snapshot"].is_string(), "{undo:#}");
    // And the latest regular snapshot still restores over that again.
    sb.run_ok(&["restore", "hub", "--yes"]);
    assert_eq!(count(&db), 400);
}

#[test]
fn sqlite_restore_over_a_file_that_is_not_a_database() {
    let sb = Sandbox::new();
    let db = backed_up_sqlite(&sb, 50, "");
    let noise = garbage(20_000);
    fs::write(&db, &noise).unwrap();
    let run = sb
        .run(&["--json", "restore", "hub", "--yes"])
        .expect_code(0);
    assert_eq!(count(&db), 50);
    let report = run.json();
    assert!(
        report["damaged"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not a database")),
        "{report:#}"
    );
    // The file kept beside the target is the damaged one, byte for byte.
    let kept = report["kept"].as_str().expect("kept beside");
    assert_eq!(fs::read(kept).unwrap(), noise);
    assert_eq!(report["damaged"]["kept"].as_str(), Some(kept));
}

#[test]
fn sqlite_restore_without_a_safety_snapshot_keeps_nothing_in_the_repository() {
    let sb = Sandbox::new();
    let db = backed_up_sqlite(&sb, 50, "");
    overwrite_pages(&db);
    let before = sb.snapshots_of("hub").len();
    let report = sb
        .run(&[
            "--json",
            "restore",
            "hub",
            "--yes",
            "--skip-safety-snapshot",
        ])
        .expect_code(0)
        .json();
    assert_eq!(count(&db), 50);
    assert!(report["safety_snapshot"].is_null(), "{report:#}");
    assert_eq!(sb.snapshots_of("hub").len(), before);
}

/// A runbook over a damaged database completes, and the incident report says where the raw
/// copy is.
#[test]
fn recover_over_a_damaged_database_reports_the_raw_copy() {
    let sb = Sandbox::new();
    let db = backed_up_sqlite(
        &sb,
        100,
        "\n[[scenarios]]\nname = \"corruption\"\nsteps = [{ restore = \"hub\" }]\n",
    );
    overwrite_pages(&db);
    let report = sb.join("incident.md");
    let run = sb
        .run(&[
            "recover",
            "corruption",
            "--yes",
            "--report",
            report.to_str().unwrap(),
        ])
        .expect_code(0);
    assert_eq!(count(&db), 100);
    let text = fs::read_to_string(&report).unwrap();
    let raw = sb
        .snapshots_of("hub")
        .into_iter()
        .rfind(|s| s["kind"] == "files")
        .expect("a raw safety snapshot");
    let short = &raw["id"].as_str().unwrap()[..8];
    let line = format!("{DAMAGED} (");
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains(&format!("kept its raw bytes as safety snapshot {short}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("restore hub --snapshot {short} --to DIR")),
        "a follow-up to look at the raw copy: {text}"
    );
    assert!(run.stdout.contains(DAMAGED), "{}", run.stdout);
}

/// A PostgreSQL sandbox with database `shop` (orders: 1500 rows, customers: 40).
pub(crate) fn shop_postgres() -> PostgresSandbox {
    let pg = PostgresSandbox::start(None).unwrap();
    pg.psql("postgres", "CREATE DATABASE shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE orders(id serial PRIMARY KEY, note text);
         INSERT INTO orders(note) SELECT 'order ' || g FROM generate_series(1, 1500) g;
         CREATE TABLE customers(id int PRIMARY KEY);
         INSERT INTO customers SELECT generate_series(1, 40);
         CHECKPOINT;",
    )
    .unwrap();
    pg
}

/// [`shop_postgres`], backed up once by the plan in `sb`.
fn backed_up_shop(sb: &Sandbox) -> PostgresSandbox {
    let pg = shop_postgres();
    sb.write_plan(&format!(
        "[assets.shop]\ntype = \"postgres\"\nurl = \"{}\"\n",
        pg.url("shop")
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    pg
}

/// One `restore --yes` over the damaged database: the snapshot is back, and the damaged
/// database stays whole under its kept name.
fn restore_over_damaged_shop(sb: &Sandbox, pg: &PostgresSandbox) {
    let run = sb
        .run(&["--json", "restore", "shop", "--yes"])
        .expect_code(0);
    assert!(run.stderr.contains(DAMAGED), "{}", run.stderr);
    let report = run.json();
    assert_eq!(
        pg.psql("shop", "SELECT count(*) FROM orders").unwrap(),
        "1500"
    );
    let kept = report["kept_database"].as_str().expect("old database kept");
    assert!(
        report["damaged"]["kept"]
            .as_str()
            .is_some_and(|k| k.contains(kept) && k.contains("no logical safety dump")),
        "{report:#}"
    );
    assert!(report["safety_snapshot"].is_null(), "{report:#}");
    // What could still be read of the old database is there, under its kept name.
    assert_eq!(
        pg.psql(kept, "SELECT count(*) FROM customers").unwrap(),
        "40"
    );
}

/// PostgreSQL: a table whose file is gone makes pg_dump fail.
#[test]
fn postgres_restore_over_a_database_with_a_missing_table_file() {
    let sb = Sandbox::new();
    let pg = backed_up_shop(&sb);
    let data_dir = pg.psql("postgres", "SHOW data_directory").unwrap();
    let rel = pg
        .psql("shop", "SELECT pg_relation_filepath('orders')")
        .unwrap();
    fs::remove_file(Path::new(&data_dir).join(&rel)).unwrap();
    assert!(
        pg.psql("shop", "SELECT count(*) FROM orders").is_err(),
        "the damage is real"
    );
    restore_over_damaged_shop(&sb, &pg);
}

/// PostgreSQL: a table file overwritten with garbage while the server was down, as a failing
/// disk would leave it.
#[test]
fn postgres_restore_over_a_database_with_a_garbage_table_file() {
    let sb = Sandbox::new();
    let mut pg = backed_up_shop(&sb);
    let rel = pg
        .psql("shop", "SELECT pg_relation_filepath('orders')")
        .unwrap();
    pg.stopped(|data| {
        let file = data.join(&rel);
        let len = fs::metadata(&file).unwrap().len() as usize;
        fs::write(&file, garbage(len)).unwrap();
    })
    .unwrap();
    let err = pg
        .psql("shop", "SELECT count(*) FROM orders")
        .expect_err("the damage is real");
    assert!(err.to_string().contains("invalid page"), "{err}");
    restore_over_damaged_shop(&sb, &pg);
}

pub(crate) fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (Debian package redis-tools)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Redis: a dataset deleted with FLUSHALL comes back with one restore, counted by redis-cli.
#[test]
fn redis_restore_after_the_dataset_was_deleted() {
    let live = RedisSandbox::start(None).unwrap();
    for i in 0..250 {
        redis_cli(live.port(), &["SET", &format!("k:{i}"), &format!("v{i}")]);
    }
    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\n",
        live.port()
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    redis_cli(live.port(), &["FLUSHALL"]);
    assert_eq!(redis_cli(live.port(), &["DBSIZE"]), "0");
    sb.run_ok(&["restore", "cache", "--yes"]);
    assert_eq!(redis_cli(live.port(), &["DBSIZE"]), "250");
    assert_eq!(redis_cli(live.port(), &["GET", "k:249"]), "v249");
}

/// A Redis server that does not answer, with no data directory to write into: the error says
/// what to do.
#[test]
fn redis_restore_into_a_server_that_does_not_answer_says_what_to_do() {
    let live = RedisSandbox::start(None).unwrap();
    redis_cli(live.port(), &["SET", "k", "v"]);
    let port = live.port();
    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n"
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    drop(live);
    let run = sb.run(&["restore", "cache", "--yes"]).expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "the Redis server at 127.0.0.1:{port} does not answer"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("data-dir"), "{}", run.stderr);
}

/// A MariaDB sandbox with database `shop`: `customers` (InnoDB, 300 rows) and `legacy`
/// (MyISAM, 120 rows, whose index file a test can damage).
pub(crate) fn shop_mariadb() -> lifeboat_engine::sandbox::MariadbSandbox {
    let maria = lifeboat_engine::sandbox::MariadbSandbox::start(None).unwrap();
    maria
        .sql(
            "",
            "CREATE DATABASE shop;
             USE shop;
             CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB;
             INSERT INTO customers SELECT seq, CONCAT('customer ', seq) FROM seq_1_to_300;
             CREATE TABLE legacy (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=MyISAM;
             INSERT INTO legacy SELECT seq, CONCAT('row ', seq) FROM seq_1_to_120;",
        )
        .unwrap();
    maria
}

/// MariaDB: a table whose index file was overwritten makes the dump fail; the restore loads the
/// snapshot beside it, swaps it in, and keeps the damaged tables in the old database.
#[test]
fn mysql_restore_over_a_database_with_a_crashed_table() {
    let maria = shop_mariadb();
    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.shop]\ntype = \"mysql\"\nurl = \"{}\"\n",
        maria.url("shop")
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);

    let data_dir = maria.sql("", "SELECT @@datadir").unwrap();
    maria.sql("", "FLUSH TABLES").unwrap();
    let index = Path::new(&data_dir).join("shop/legacy.MYI");
    let len = fs::metadata(&index).unwrap().len() as usize;
    fs::write(&index, garbage(len)).unwrap();
    maria.sql("", "FLUSH TABLES").unwrap();
    assert!(
        maria.sql("shop", "SELECT count(*) FROM legacy").is_err(),
        "the damage is real"
    );

    let run = sb
        .run(&["--json", "restore", "shop", "--yes"])
        .expect_code(0);
    assert!(run.stderr.contains(DAMAGED), "{}", run.stderr);
    let report = run.json();
    assert_eq!(
        maria.sql("shop", "SELECT count(*) FROM legacy").unwrap(),
        "120"
    );
    assert_eq!(
        maria.sql("shop", "SELECT count(*) FROM customers").unwrap(),
        "300"
    );
    let kept = report["kept_database"].as_str().expect("old tables kept");
    assert!(
        report["damaged"]["kept"]
            .as_str()
            .is_some_and(|k| k.contains(kept)),
        "{report:#}"
    );
    assert_eq!(
        maria.sql(kept, "SELECT count(*) FROM customers").unwrap(),
        "300"
    );
}

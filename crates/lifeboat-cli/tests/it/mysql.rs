//! MySQL/MariaDB assets: `mariadb-dump --single-transaction` with rows per table counted in the
//! dump, restored into another database or swapped in over the live one. The "live" server is a
//! MariaDB sandbox: tests never touch the machine's own server on 3306.

use std::collections::BTreeMap;

use lifeboat_engine::sandbox::MariadbSandbox;
use serde_json::Value;

use crate::util::{Sandbox, restic};

const ROOT_PW: &str = "it-maria-s3cret";
const PW_ENV: &str = "LB_MYSQL_PW";

/// Every kind of value and object a dump must carry: utf8mb4 text, binary blobs, decimals,
/// dates, NULLs, a foreign key, a table without rows, an awkward table name, a procedure, a
/// function, a trigger, a view and an event.
const FIXTURE: &str = r"
CREATE DATABASE shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE shop;
CREATE TABLE customers (
  id INT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(100) NOT NULL,
  note TEXT NULL,
  born DATE NULL,
  seen DATETIME(6) NULL,
  balance DECIMAL(14,4) NOT NULL DEFAULT 0
) ENGINE=InnoDB;
CREATE TABLE orders (
  id INT PRIMARY KEY AUTO_INCREMENT,
  customer_id INT NOT NULL,
  total DECIMAL(10,2),
  FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE blobs (id INT PRIMARY KEY, data LONGBLOB NULL) ENGINE=InnoDB;
CREATE TABLE empty_t (id INT PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(200)) ENGINE=InnoDB;
CREATE TABLE `we;ird ``name` (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB;
INSERT INTO customers (name, note, born, seen, balance) VALUES
  ('Zoë 😀 Ünïcødé', 'it''s (a) test; with ),( stuff', '1990-02-03', '2024-05-06 07:08:09.123456', 12.3456),
  ('Bob', NULL, NULL, NULL, -0.0001),
  ('C\\d', 'line\nbreak\ttab -- not /* a comment', '2000-01-01', NULL, 99999.99);
INSERT INTO customers (name, balance) SELECT CONCAT('customer ', seq), seq / 7 FROM seq_1_to_500;
INSERT INTO orders (customer_id, total) SELECT 1 + seq % 400, seq * 1.5 FROM seq_1_to_1200;
INSERT INTO blobs VALUES (1, 0x00FF2829273B0A5C27), (2, NULL), (3, ''), (4, RANDOM_BYTES(1024));
INSERT INTO `we;ird ``name` VALUES (1, ');INSERT INTO x VALUES (1)'), (2, NULL);
DELIMITER ;;
CREATE PROCEDURE add_customer(IN n VARCHAR(100))
BEGIN
  INSERT INTO customers (name) VALUES (n);
END;;
CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;;
CREATE TRIGGER customers_ai AFTER INSERT ON customers FOR EACH ROW
BEGIN
  INSERT INTO audit (msg) VALUES (CONCAT('insert ', NEW.id, ' */ ;'));
END;;
DELIMITER ;
CREATE VIEW rich AS SELECT id, name FROM customers WHERE balance > 50;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit WHERE id < 0;
";

/// A sandbox whose root needs [`ROOT_PW`], holding database `shop`.
fn live() -> MariadbSandbox {
    let db = MariadbSandbox::start(Some(ROOT_PW)).unwrap();
    assert_ne!(db.port(), 3306, "never the machine's own server");
    db.sql("", FIXTURE).unwrap();
    db
}

fn plan(db: &MariadbSandbox, name: &str, database: &str) -> String {
    format!(
        "[assets.{name}]\ntype = \"mysql\"\nurl = \"{}\"\npassword-env = \"{PW_ENV}\"\n",
        db.url(database)
    )
}

/// `lifeboat ARGS` with the database password in the environment.
fn run(sb: &Sandbox, args: &[&str]) -> crate::util::Run {
    crate::util::Run::from(sb.cmd(args).env(PW_ENV, ROOT_PW).output().unwrap())
}

/// Base tables of `database`, sorted.
fn tables(db: &MariadbSandbox, database: &str) -> Vec<String> {
    db.sql(
        "",
        &format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
        ),
    )
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect()
}

/// `CHECKSUM TABLE` of every base table: equal checksums mean equal rows.
fn checksums(db: &MariadbSandbox, database: &str) -> BTreeMap<String, String> {
    tables(db, database)
        .iter()
        .map(|t| {
            let out = db
                .sql(
                    database,
                    &format!("CHECKSUM TABLE `{}`", t.replace('`', "``")),
                )
                .unwrap();
            let sum = out.rsplit('\t').next().unwrap_or_default().to_owned();
            (t.clone(), sum)
        })
        .collect()
}

/// Rows per base table, counted by the server.
fn counts(db: &MariadbSandbox, database: &str) -> BTreeMap<String, u64> {
    tables(db, database)
        .iter()
        .map(|t| {
            let n = db
                .sql(
                    database,
                    &format!("SELECT COUNT(*) FROM `{}`", t.replace('`', "``")),
                )
                .unwrap();
            (t.clone(), n.parse().unwrap())
        })
        .collect()
}

/// Names of the views, triggers, routines and events of `database`, one kind per entry.
fn objects(db: &MariadbSandbox, database: &str) -> Vec<String> {
    db.sql(
        "",
        &format!(
            "SELECT CONCAT('view ', TABLE_NAME) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{database}'
             UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME, ' on ', EVENT_OBJECT_TABLE) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{database}'
             UNION ALL SELECT CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{database}'
             UNION ALL SELECT CONCAT('event ', EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{database}'
             ORDER BY 1"
        ),
    )
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect()
}

fn databases(db: &MariadbSandbox) -> Vec<String> {
    db.sql("", "SHOW DATABASES")
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The manifest of snapshot `id`, read with stock restic.
fn manifest(sb: &Sandbox, asset: &str, id: &str) -> Value {
    restic(
        &sb.repo(),
        &["dump", id, &format!("/{asset}/lifeboat-manifest.json")],
    )
    .expect_code(0)
    .json()
}

/// Backs up asset `shop` and returns its snapshot id.
fn backup(sb: &Sandbox) -> String {
    let report = run(sb, &["--json", "backup", "shop"]).expect_code(0).json();
    assert_eq!(report["assets"][0]["ok"], true, "{report:#}");
    report["assets"][0]["snapshot"].as_str().unwrap().to_owned()
}

const OBJECTS: [&str; 5] = [
    "event nightly",
    "function double_it",
    "procedure add_customer",
    "trigger customers_ai on customers",
    "view rich",
];

#[test]
fn mysql_backup_then_restore_into_another_database_is_identical() {
    let db = live();
    let sb = Sandbox::new();
    sb.write_plan(&plan(&db, "shop", "shop"));
    sb.run_ok(&["init"]);
    let id = backup(&sb);

    // The manifest holds exactly the rows the server has, the empty table included.
    let m = manifest(&sb, "shop", &id);
    let want: BTreeMap<String, u64> = counts(&db, "shop");
    assert_eq!(want["customers"], 503);
    assert_eq!(want["empty_t"], 0);
    let got: BTreeMap<String, u64> = serde_json::from_value(m["tables"].clone()).unwrap();
    assert_eq!(got, want, "{m:#}");
    assert!(
        m["server-version"]
            .as_str()
            .is_some_and(|v| v.starts_with("MariaDB 1")),
        "{m:#}"
    );
    assert_eq!(m["source"], format!("mysql 127.0.0.1:{}/shop", db.port()));
    assert_eq!(m["artifacts"][0]["name"], "shop.sql");

    // The artifact is plain SQL without a database name, and the password is nowhere in it.
    let sql = run(&sb, &["dump", "shop"]).expect_code(0).stdout;
    assert!(sql.contains("CREATE TABLE `customers`"), "not a dump");
    assert!(!sql.contains("USE `shop`") && !sql.contains("CREATE DATABASE"));
    assert!(!sql.contains(ROOT_PW));

    // Into another database on the same server.
    let to = db.url("shop_copy");
    let report = run(&sb, &["--json", "restore", "shop", "--to", &to])
        .expect_code(0)
        .json();
    let reported: BTreeMap<String, u64> = serde_json::from_value(report["tables"].clone()).unwrap();
    assert_eq!(reported, want, "{report:#}");
    assert!(report["kept_database"].is_null(), "{report:#}");
    assert!(report["safety_snapshot"].is_null(), "{report:#}");
    assert_eq!(checksums(&db, "shop_copy"), checksums(&db, "shop"));
    assert_eq!(objects(&db, "shop_copy"), OBJECTS);
    assert_eq!(
        db.sql("shop_copy", "SELECT COUNT(*) FROM rich").unwrap(),
        db.sql("shop", "SELECT COUNT(*) FROM rich").unwrap()
    );
    assert_eq!(db.sql("shop_copy", "SELECT double_it(21)").unwrap(), "42");
    // The restored trigger and procedure work on the restored tables, not the original ones,
    // and the next id is the original's.
    let next = db
        .sql(
            "",
            "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'customers'",
        )
        .unwrap();
    db.sql("shop_copy", "CALL add_customer('new')").unwrap();
    assert_eq!(
        db.sql("shop_copy", "SELECT msg FROM audit").unwrap(),
        format!("insert {next} */ ;")
    );
    assert_eq!(db.sql("shop", "SELECT COUNT(*) FROM audit").unwrap(), "0");
    let utf8 = "SELECT name, HEX(note), born, seen, balance FROM customers WHERE id = 1";
    assert_eq!(
        db.sql("shop_copy", utf8).unwrap(),
        db.sql("shop", utf8).unwrap()
    );
    assert_eq!(
        db.sql(
            "",
            "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shop_copy'"
        )
        .unwrap(),
        "utf8mb4_general_ci",
        "a new database gets the server's default"
    );

    // A database that holds something is not replaced without --yes.
    let again = run(&sb, &["restore", "shop", "--to", &to]).expect_code(1);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);
    assert!(again.stderr.contains("--yes"), "{}", again.stderr);
}

#[test]
fn mysql_in_place_restore_swaps_and_keeps_the_old_database() {
    let db = live();
    let sb = Sandbox::new();
    sb.write_plan(&plan(&db, "shop", "shop"));
    sb.run_ok(&["init"]);
    let before = checksums(&db, "shop");
    backup(&sb);

    // Damage: rows deleted (and orders with them, by cascade), a table and a routine dropped,
    // a table added after the backup.
    db.sql(
        "shop",
        "DELETE FROM customers WHERE id > 100; DROP TABLE blobs; DROP PROCEDURE add_customer; CREATE TABLE later (id INT)",
    )
    .unwrap();
    let damaged = checksums(&db, "shop");
    assert_ne!(damaged, before);

    // Over the original: refused without --yes; --dry-run lists the steps and changes nothing.
    let refused = run(&sb, &["restore", "shop"]).expect_code(1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let dbs = databases(&db);
    let plan = run(&sb, &["--json", "restore", "shop", "--dry-run"])
        .expect_code(0)
        .json();
    let steps: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "create-database",
            "load-dump",
            "check-counts",
            "safety-snapshot",
            "swap-database"
        ],
        "{plan:#}"
    );
    assert_eq!(
        checksums(&db, "shop"),
        damaged,
        "a dry run changed the database"
    );
    assert_eq!(databases(&db), dbs, "a dry run created a database");

    let report = run(&sb, &["--json", "restore", "shop", "--yes"])
        .expect_code(0)
        .json();
    assert!(report["safety_snapshot"].is_string(), "{report:#}");
    assert_eq!(checksums(&db, "shop"), before, "{report:#}");
    assert_eq!(objects(&db, "shop"), OBJECTS);
    assert_eq!(db.sql("shop", "SELECT double_it(4)").unwrap(), "8");
    // The trigger fires on the restored table.
    db.sql("shop", "CALL add_customer('after')").unwrap();
    assert_eq!(db.sql("shop", "SELECT COUNT(*) FROM audit").unwrap(), "1");

    // The previous tables are kept, with their trigger and view, without their event.
    let kept = report["kept_database"].as_str().expect("kept database");
    assert!(kept.starts_with("shop_lifeboat_old_"), "{kept}");
    assert_eq!(checksums(&db, kept), damaged);
    assert_eq!(
        objects(&db, kept),
        [
            "function double_it",
            "trigger customers_ai on customers",
            "view rich"
        ]
    );
    // No scratch database is left behind.
    let left: Vec<String> = databases(&db)
        .into_iter()
        .filter(|d| d.contains("_lifeboat_new_"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // The safety snapshot holds the damaged database.
    let safety = &sb.snapshots_of("shop")[1];
    assert!(crate::util::tags(safety).contains(&"safety"), "{safety:#}");
    let m = manifest(&sb, "shop", safety["id"].as_str().unwrap());
    assert_eq!(m["tables"]["customers"], 100, "{m:#}");
    assert!(m["tables"].get("blobs").is_none(), "{m:#}");
}

#[test]
fn mysql_restore_of_one_table_into_another_database() {
    let db = live();
    let sb = Sandbox::new();
    sb.write_plan(&plan(&db, "shop", "shop"));
    sb.run_ok(&["init"]);
    backup(&sb);
    let before = checksums(&db, "shop");
    let to = db.url("one");

    // --table needs --to, and names a table of the snapshot.
    let no_to = run(&sb, &["restore", "shop", "--yes", "--table", "blobs"]).expect_code(1);
    assert!(no_to.stderr.contains("--to"), "{}", no_to.stderr);
    let unknown = run(&sb, &["restore", "shop", "--to", &to, "--table", "nope"]).expect_code(1);
    assert!(
        unknown.stderr.contains("no table nope") && unknown.stderr.contains("customers"),
        "{}",
        unknown.stderr
    );

    let report = run(
        &sb,
        &["--json", "restore", "shop", "--to", &to, "--table", "blobs"],
    )
    .expect_code(0)
    .json();
    assert_eq!(
        report["tables"],
        serde_json::json!({ "blobs": 4 }),
        "{report:#}"
    );
    assert_eq!(tables(&db, "one"), ["blobs"]);
    assert_eq!(checksums(&db, "one")["blobs"], before["blobs"]);
    assert!(objects(&db, "one").is_empty(), "{:?}", objects(&db, "one"));

    // Another table joins it; an existing one is replaced only with --yes, and kept aside.
    run(
        &sb,
        &["restore", "shop", "--to", &to, "--table", "customers"],
    )
    .expect_code(0);
    assert_eq!(tables(&db, "one"), ["blobs", "customers"]);
    db.sql("one", "DELETE FROM blobs WHERE id > 1").unwrap();
    let refused = run(&sb, &["restore", "shop", "--to", &to, "--table", "blobs"]).expect_code(1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let report = run(
        &sb,
        &[
            "--json", "restore", "shop", "--to", &to, "--table", "blobs", "--yes",
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(checksums(&db, "one")["blobs"], before["blobs"]);
    let kept = report["kept_database"].as_str().expect("kept database");
    assert_eq!(counts(&db, kept), BTreeMap::from([("blobs".to_owned(), 1)]));
    assert_eq!(checksums(&db, "one")["customers"], before["customers"]);
}

#[test]
fn mysql_bad_input_is_a_clear_error_and_leaves_no_snapshot() {
    let db = live();
    let down = lifeboat_testing::free_port();
    let sb = Sandbox::new();
    let unreachable = format!(
        "[assets.down]\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:{down}/shop\"\npassword-env = \"{PW_ENV}\"\n"
    );
    sb.write_plan(&format!(
        "{}{unreachable}{}",
        plan(&db, "nodb", "nosuchdb"),
        plan(&db, "shop", "shop"),
    ));
    sb.run_ok(&["init"]);

    // A wrong password: the message names asset and server, and never shows the password.
    let wrong = sb
        .cmd(&["--json", "backup", "shop"])
        .env(PW_ENV, "not-the-right-s3cret")
        .output()
        .unwrap();
    let wrong = crate::util::Run::from(wrong).expect_code(1);
    let text = format!("{}{}", wrong.stdout, wrong.stderr);
    let asset = &wrong.json()["assets"][0];
    let error = asset["error"].as_str().unwrap();
    assert!(error.contains("asset shop"), "{error}");
    assert!(
        error.contains(&format!("127.0.0.1:{}", db.port())),
        "{error}"
    );
    assert!(error.contains("Access denied"), "{error}");
    assert!(
        asset["hint"].as_str().unwrap().contains("password"),
        "{asset:#}"
    );
    assert!(!text.contains("s3cret"), "password printed: {text}");

    // An unknown database and an unreachable server, each named with its asset.
    let report = run(&sb, &["--json", "backup", "nodb", "down"])
        .expect_code(1)
        .json();
    let errors: BTreeMap<String, String> = report["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["asset"].as_str().unwrap().to_owned(),
                a["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(errors["nodb"].contains("asset nodb"), "{errors:?}");
    assert!(
        errors["nodb"].contains("Unknown database 'nosuchdb'"),
        "{errors:?}"
    );
    assert!(errors["down"].contains("asset down"), "{errors:?}");
    assert!(
        errors["down"].contains(&format!("127.0.0.1:{down}")),
        "{errors:?}"
    );
    assert!(errors["down"].contains("Can't connect"), "{errors:?}");

    // Without the client tools: said so, with the package to install.
    let bare = crate::util::Run::from(
        sb.cmd(&["backup", "shop"])
            .env(PW_ENV, ROOT_PW)
            .env("PATH", sb.path())
            .output()
            .unwrap(),
    )
    .expect_code(1);
    assert!(
        bare.stdout.contains("shop") && bare.stdout.contains("FAILED"),
        "{}",
        bare.stdout
    );
    assert!(bare.stdout.contains("mariadb-dump"), "{}", bare.stdout);
    assert!(
        bare.stdout
            .contains("hint: install the client tools: apt-get install mariadb-client"),
        "{}",
        bare.stdout
    );

    assert!(sb.snapshots().is_empty(), "a failed backup left a snapshot");
}

/// A restore that fails before its swap leaves the live database as it was: here the user may
/// create databases but not objects owned by another user (the dump's triggers and routines
/// belong to root), so the rehearsal in the scratch database fails.
#[test]
fn mysql_failed_restore_leaves_the_live_database_untouched() {
    let db = live();
    db.sql(
        "",
        "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app-s3cret';
         GRANT ALL ON `shop`.* TO 'app'@'127.0.0.1';
         GRANT ALL ON `shop\\_lifeboat\\_%`.* TO 'app'@'127.0.0.1';
         GRANT SELECT ON mysql.proc TO 'app'@'127.0.0.1';",
    )
    .unwrap();
    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.shop]\ntype = \"mysql\"\nurl = \"mysql://app@127.0.0.1:{}/shop\"\npassword-env = \"{PW_ENV}\"\n",
        db.port()
    ));
    sb.run_ok(&["init"]);
    let as_app = |args: &[&str]| {
        crate::util::Run::from(sb.cmd(args).env(PW_ENV, "app-s3cret").output().unwrap())
    };
    let report = as_app(&["--json", "backup"]).expect_code(0).json();
    assert_eq!(report["assets"][0]["ok"], true, "{report:#}");
    db.sql("shop", "DELETE FROM orders WHERE id > 10").unwrap();
    let damaged = checksums(&db, "shop");
    let dbs = databases(&db);

    let failed = as_app(&["restore", "shop", "--yes"]).expect_code(1);
    assert!(failed.stderr.contains("asset shop"), "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains(&format!("127.0.0.1:{}/shop", db.port())),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("1227"), "{}", failed.stderr);
    assert!(failed.stderr.contains("hint:"), "{}", failed.stderr);
    assert_eq!(checksums(&db, "shop"), damaged, "the live database changed");
    assert_eq!(objects(&db, "shop"), OBJECTS);
    assert_eq!(databases(&db), dbs, "a scratch database was left behind");
    assert_eq!(
        sb.snapshots_of("shop").len(),
        1,
        "no safety snapshot before the check"
    );
}

/// A drill restores the dump into a MariaDB sandbox of its own (routines, triggers, views and
/// events included), compares rows with the manifest and runs the asset's SQL checks there.
#[test]
fn mysql_drill_restores_into_a_mariadb_sandbox() {
    let db = live();
    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "{}checks = [\"SELECT count(*) > 0 FROM customers\", \"SELECT count(*) = 1 FROM rich WHERE id < 0\"]\n",
        plan(&db, "shop", "shop")
    ));
    run(&sb, &["init"]).expect_code(0);
    run(&sb, &["backup"]).expect_code(0);
    let report = run(&sb, &["--json", "drill"]).expect_code(1).json();
    let a = &report["assets"][0];
    assert!(
        a["compared"].as_str().unwrap().ends_with("as recorded"),
        "{a:#}"
    );
    assert_eq!(a["checks"][0]["ok"], true, "{a:#}");
    // The second check is false in the data: the drill fails on it, and says so.
    assert_eq!(a["checks"][1]["ok"], false, "{a:#}");
    assert_eq!(report["passed"], false);
}

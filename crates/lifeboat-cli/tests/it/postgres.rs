//! PostgreSQL assets against scratch clusters the tests start themselves (never the machine's
//! own server on 5432): fidelity of a dump with every awkward type, restores into another
//! database and over the original, selected tables, consistency under pgbench load, bad input.

use lifeboat_testing::sandbox::PostgresSandbox;
use serde_json::Value;

use crate::util::{Sandbox, restic};

/// A schema touching what a dump can get wrong.
const FIDELITY_SQL: &str = r#"
CREATE EXTENSION pgcrypto;
CREATE EXTENSION hstore;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS numeric CHECK (VALUE > 0);
CREATE SCHEMA billing;
CREATE TABLE customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    profile jsonb,
    raw json,
    tags text[],
    scores int[],
    photo bytea,
    balance numeric(20, 6),
    price positive,
    seen timestamptz,
    feeling mood,
    attrs hstore,
    secret bytea
);
CREATE TABLE billing.invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer int REFERENCES customers(id),
    total numeric,
    created timestamptz DEFAULT now()
);
CREATE TABLE audit (id serial, what text, at timestamptz DEFAULT now());
CREATE TABLE empty_one (id int);
CREATE FUNCTION log_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit (what) VALUES ('invoice ' || NEW.id); RETURN NEW; END $$;
CREATE TRIGGER invoice_audit AFTER INSERT ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION log_invoice();
CREATE SEQUENCE ticket_seq START 1000;
CREATE VIEW rich AS SELECT name, balance FROM customers WHERE balance > 500;
CREATE MATERIALIZED VIEW totals AS SELECT customer, sum(total) AS total FROM billing.invoices GROUP BY customer;
INSERT INTO customers (name, profile, raw, tags, scores, photo, balance, price, seen, feeling, attrs, secret)
SELECT 'customer ' || i || ' ü€ ''quoted'' \ back',
       jsonb_build_object('i', i, 'nested', jsonb_build_object('list', jsonb_build_array(i, i * 2))),
       ('{"i": ' || i || ', "dup": 1, "dup": 2}')::json,
       ARRAY['a' || i, NULL, 'c,d'],
       ARRAY[i, -i],
       CASE WHEN i % 50 = 0 THEN decode(repeat(md5(i::text), 40000), 'hex') ELSE decode(md5(i::text), 'hex') END,
       i * 1.123456,
       i + 0.5,
       '2024-02-29 12:34:56.789+05:30'::timestamptz + i * interval '1 hour',
       (ARRAY['sad', 'ok', 'happy']::mood[])[1 + i % 3],
       hstore(ARRAY['k' || i, 'v'], ARRAY['x', NULL]),
       pgp_sym_encrypt('card ' || i, 'key')
FROM generate_series(1, 1000) i;
INSERT INTO customers (name) VALUES ('all nulls');
INSERT INTO billing.invoices (customer, total) SELECT 1 + i % 1000, i * 9.99 FROM generate_series(1, 3000) i;
SELECT setval('ticket_seq', 4242);
SELECT nextval('customers_id_seq');
REFRESH MATERIALIZED VIEW totals;
SELECT lo_from_bytea(0, decode(repeat('ab', 300000), 'hex'));
SELECT lo_from_bytea(0, convert_to('small object', 'UTF8'));
"#;

/// md5 over each table's rows in a stable order, the sequences' values, the large objects and
/// the matview: what must survive a round trip unchanged.
fn fingerprint(pg: &PostgresSandbox, db: &str) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "customers",
        "billing.invoices",
        "audit",
        "empty_one",
        "totals",
    ] {
        let sql = format!(
            "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM {table} t"
        );
        out.push(format!("{table}: {}", pg.psql(db, &sql).unwrap()));
    }
    for seq in ["ticket_seq", "customers_id_seq", "audit_id_seq"] {
        let sql = format!("SELECT last_value || ' ' || is_called FROM {seq}");
        out.push(format!("{seq}: {}", pg.psql(db, &sql).unwrap()));
    }
    out.push(format!(
        "lo: {}",
        pg.psql(
            db,
            "SELECT count(*) || ' ' || md5(string_agg(md5(lo_get(oid)), ',' ORDER BY oid)) FROM pg_largeobject_metadata"
        )
        .unwrap()
    ));
    out.push(format!(
        "decrypt: {}",
        pg.psql(
            db,
            "SELECT pgp_sym_decrypt(secret, 'key') FROM customers WHERE id = 7"
        )
        .unwrap()
    ));
    out.push(format!(
        "view: {}",
        pg.psql(db, "SELECT count(*) FROM rich").unwrap()
    ));
    out
}

fn plan_for(pg: &PostgresSandbox, db: &str, extra: &str) -> String {
    format!(
        "[assets.shop]\ntype = \"postgres\"\nurl = \"{}\"\n{extra}",
        pg.url(db)
    )
}

/// The manifest of the asset's newest snapshot, read with stock restic.
fn manifest(sb: &Sandbox) -> Value {
    let snaps = sb.snapshots_of("shop");
    let id = snaps.last().unwrap()["id"].as_str().unwrap().to_owned();
    restic(&sb.repo(), &["dump", &id, "/shop/lifeboat-manifest.json"])
        .expect_code(0)
        .json()
}

#[test]
fn postgres_fidelity_round_trip_into_another_database() {
    let pg = PostgresSandbox::start(None).unwrap();
    assert_ne!(pg.port(), 5432);
    pg.psql("postgres", "CREATE DATABASE shop").unwrap();
    pg.psql("shop", FIDELITY_SQL).unwrap();
    let before = fingerprint(&pg, "shop");

    let sb = Sandbox::new();
    sb.write_plan(&plan_for(&pg, "shop", "globals = true\n"));
    sb.run_ok(&["init"]);
    let backup = sb.run(&["--json", "backup"]).expect_code(0).json();
    assert_eq!(backup["assets"][0]["ok"], true, "{backup:#}");

    // The manifest holds the rows per table as of the exported snapshot, and the facts.
    let m = manifest(&sb);
    assert_eq!(m["tables"]["public.customers"], 1001, "{m:#}");
    assert_eq!(m["tables"]["billing.invoices"], 3000, "{m:#}");
    assert!(
        m["server-version"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL 15"),
        "{m:#}"
    );
    for key in ["snapshot", "lsn", "database_size", "encoding"] {
        assert!(m["consistency"][key].is_string(), "{key} in {m:#}");
    }

    let report = sb
        .run(&["--json", "restore", "shop", "--to", &pg.url("shop_copy")])
        .expect_code(0)
        .json();
    assert_eq!(report["tables"]["public.customers"], 1001, "{report:#}");
    assert_eq!(report["tables"]["billing.invoices"], 3000, "{report:#}");
    assert_eq!(report["tables"]["public.audit"], 3000, "{report:#}");
    assert_eq!(report["tables"]["public.empty_one"], 0, "{report:#}");
    assert_eq!(fingerprint(&pg, "shop_copy"), before);

    // Functions and triggers work in the copy.
    pg.psql(
        "shop_copy",
        "INSERT INTO billing.invoices (customer, total) VALUES (1, 1)",
    )
    .unwrap();
    assert_eq!(
        pg.psql("shop_copy", "SELECT count(*) FROM audit").unwrap(),
        "3001"
    );

    // The globals (roles) are an artifact of their own, as SQL.
    let globals = sb.run_ok(&["dump", "shop", "globals.sql"]);
    assert!(
        globals.stdout.contains("CREATE ROLE postgres"),
        "globals.sql holds the roles"
    );

    // An existing database is never overwritten by --to.
    let again = sb
        .run(&["restore", "shop", "--to", &pg.url("shop_copy")])
        .expect_code(1);
    assert!(
        again.stderr.contains("the database exists"),
        "{}",
        again.stderr
    );
}

/// A small shop database: customers and their orders.
fn small_shop(pg: &PostgresSandbox, db: &str) {
    pg.psql("postgres", &format!("CREATE DATABASE {db}"))
        .unwrap();
    pg.psql(
        db,
        "CREATE TABLE customers (id int PRIMARY KEY, name text);
         CREATE TABLE orders (id serial PRIMARY KEY, customer int REFERENCES customers(id), total numeric);
         INSERT INTO customers SELECT i, 'c' || i FROM generate_series(1, 200) i;
         INSERT INTO orders (customer, total) SELECT 1 + i % 200, i FROM generate_series(1, 500) i;
         ALTER DATABASE shop SET work_mem TO '7MB';",
    )
    .unwrap();
}

#[test]
fn postgres_restore_over_the_original_keeps_it_under_another_name() {
    let pg = PostgresSandbox::start(None).unwrap();
    small_shop(&pg, "shop");
    // Only app may connect: the restored database must not fall back to PUBLIC's defaults.
    pg.psql("postgres", "CREATE ROLE app LOGIN; CREATE ROLE other LOGIN")
        .unwrap();
    pg.psql(
        "postgres",
        "REVOKE ALL ON DATABASE shop FROM PUBLIC; GRANT CONNECT ON DATABASE shop TO app",
    )
    .unwrap();
    let sb = Sandbox::new();
    sb.write_plan(&plan_for(&pg, "shop", ""));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);

    // The accident: rows deleted, a table dropped. A client stays connected.
    pg.psql(
        "shop",
        "DELETE FROM orders WHERE id > 100; DROP TABLE customers CASCADE;",
    )
    .unwrap();
    let mut client = std::process::Command::new(pg.bin_dir().join("psql"))
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "shop",
            "-c",
        ])
        .arg("SELECT pg_sleep(120)")
        .arg("-p")
        .arg(pg.port().to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Without --yes nothing happens; --dry-run lists the steps.
    let refused = sb.run(&["restore", "shop"]).expect_code(1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let dry = sb.run_ok(&["restore", "shop", "--dry-run"]);
    assert!(
        dry.stdout.contains("would: create database"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("would: rename shop to shop_lifeboat_old_"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        pg.psql("shop", "SELECT count(*) FROM orders").unwrap(),
        "100"
    );

    let report = sb
        .run(&["--json", "restore", "shop", "--yes"])
        .expect_code(0)
        .json();
    assert_eq!(report["tables"]["public.orders"], 500, "{report:#}");
    assert!(report["safety_snapshot"].is_string(), "{report:#}");
    let kept = report["kept_database"].as_str().unwrap().to_owned();
    assert!(kept.starts_with("shop_lifeboat_old_"), "{kept}");
    // The client was disconnected, the data is back, the damaged copy is kept and readable,
    // and the database's settings followed it.
    let _ = client.wait();
    assert_eq!(
        pg.psql("shop", "SELECT count(*) FROM orders").unwrap(),
        "500"
    );
    assert_eq!(
        pg.psql("shop", "SELECT count(*) FROM customers").unwrap(),
        "200"
    );
    assert_eq!(
        pg.psql(&kept, "SELECT count(*) FROM orders").unwrap(),
        "100"
    );
    assert_eq!(pg.psql("shop", "SHOW work_mem").unwrap(), "7MB");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT has_database_privilege('app', 'shop', 'CONNECT') || ' ' || \
             has_database_privilege('other', 'shop', 'CONNECT')"
        )
        .unwrap(),
        "true false",
        "database privileges follow the name"
    );
    let dbs = pg
        .psql(
            "postgres",
            "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database",
        )
        .unwrap();
    assert_eq!(
        dbs.matches("shop_lifeboat_").count(),
        1,
        "no scratch database left: {dbs}"
    );

    // The safety snapshot holds the damaged state: restoring it undoes the restore.
    let safety = report["safety_snapshot"].as_str().unwrap();
    sb.run_ok(&["restore", "shop", "--snapshot", safety, "--yes"]);
    assert_eq!(
        pg.psql("shop", "SELECT count(*) FROM orders").unwrap(),
        "100"
    );
}

#[test]
fn postgres_selected_tables_into_another_database() {
    let pg = PostgresSandbox::start(None).unwrap();
    small_shop(&pg, "shop");
    let sb = Sandbox::new();
    sb.write_plan(&plan_for(&pg, "shop", ""));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    pg.psql("shop", "DELETE FROM orders").unwrap();

    // In place, --table is refused: it is for copying rows back by hand.
    let refused = sb
        .run(&["restore", "shop", "--table", "orders", "--yes"])
        .expect_code(1);
    assert!(refused.stderr.contains("--to"), "{}", refused.stderr);

    let report = sb
        .run(&[
            "--json",
            "restore",
            "shop",
            "--table",
            "orders",
            "--to",
            &pg.url("recovered"),
        ])
        .expect_code(0)
        .json();
    assert_eq!(report["tables"]["public.orders"], 500, "{report:#}");
    assert_eq!(
        pg.psql("recovered", "SELECT count(*) FROM orders").unwrap(),
        "500"
    );
    // The other tables exist, empty: the schema is whole, only the chosen rows came back.
    assert_eq!(
        pg.psql("recovered", "SELECT count(*) FROM customers")
            .unwrap(),
        "0"
    );
    // The sequence kept its value, so rows copied back do not collide with new ones.
    assert_eq!(
        pg.psql("recovered", "SELECT last_value FROM orders_id_seq")
            .unwrap(),
        "500"
    );

    let unknown = sb
        .run(&[
            "restore",
            "shop",
            "--table",
            "nope",
            "--to",
            &pg.url("other"),
        ])
        .expect_code(1);
    assert!(
        unknown.stderr.contains("table nope is not in the snapshot"),
        "{}",
        unknown.stderr
    );
    let dbs = pg
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'other'",
        )
        .unwrap();
    assert_eq!(dbs, "0", "a failed restore drops the database it created");
}

/// pgbench writes during the backup; the restored copy keeps pgbench's invariant and matches
/// the manifest, which proves dump and counts saw one snapshot. Parallel dump and restore.
#[test]
fn postgres_consistent_under_pgbench_load_with_parallel_jobs() {
    let pg = PostgresSandbox::start(None).unwrap();
    pg.psql("postgres", "CREATE DATABASE bench").unwrap();
    let pgbench = |args: &[&str]| {
        std::process::Command::new(pg.bin_dir().join("pgbench"))
            .args(["-h", "127.0.0.1", "-U", "postgres"])
            .arg("-p")
            .arg(pg.port().to_string())
            .args(args)
            .arg("bench")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    assert!(pgbench(&["-i", "-q", "-s", "3"]).wait().unwrap().success());
    let mut load = pgbench(&["-c", "4", "-T", "25", "-n"]);
    std::thread::sleep(std::time::Duration::from_secs(2));

    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.bench]\ntype = \"postgres\"\nurl = \"{}\"\njobs = 2\n",
        pg.url("bench")
    ));
    sb.run_ok(&["init"]);
    let backup = sb.run(&["--json", "backup"]).expect_code(0).json();
    assert_eq!(backup["assets"][0]["ok"], true, "{backup:#}");
    let artifacts: Vec<&str> = backup["assets"][0]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        artifacts.contains(&"toc.dat"),
        "directory format: {artifacts:?}"
    );
    let still_running = load.try_wait().unwrap().is_none();
    let _ = load.kill();
    let _ = load.wait();
    assert!(still_running, "the load ran during the whole backup");

    let report = sb
        .run(&["--json", "restore", "bench", "--to", &pg.url("copy")])
        .expect_code(0)
        .json();
    let history = report["tables"]["public.pgbench_history"].as_u64().unwrap();
    assert!(history > 0, "{report:#}");
    let sums = pg
        .psql(
            "copy",
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || \
             (SELECT sum(tbalance) FROM pgbench_tellers) || ' ' || \
             (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || \
             (SELECT coalesce(sum(delta), 0) FROM pgbench_history)",
        )
        .unwrap();
    let v: Vec<&str> = sums.split(' ').collect();
    assert!(
        v.iter().all(|x| *x == v[0]),
        "pgbench invariant broken: {sums}"
    );
}

#[test]
fn postgres_bad_input_is_a_clear_error_and_no_snapshot() {
    let pg = PostgresSandbox::start_with_password(None, "right-pw-123").unwrap();
    pg.psql("postgres", "CREATE DATABASE shop").unwrap();
    let sb = Sandbox::new();
    let port = lifeboat_testing::free_port();
    let cases = [
        (
            format!("postgres://postgres@127.0.0.1:{port}/shop"),
            "right-pw-123",
            "Connection refused",
            "check the host and port",
        ),
        (
            pg.url("shop"),
            "wrong-pw-456",
            "password authentication failed",
            "password-env",
        ),
        (
            pg.url("nope"),
            "right-pw-123",
            "database \"nope\" does not exist",
            "check the database name",
        ),
    ];
    for (url, password, reason, hint) in cases {
        sb.write_plan(&format!(
            "[assets.shop]\ntype = \"postgres\"\nurl = \"{url}\"\npassword-env = \"SHOP_PG_PASSWORD\"\n"
        ));
        if !sb.repo().exists() {
            sb.run_ok(&["init"]);
        }
        let run = sb
            .cmd(&["backup"])
            .env("SHOP_PG_PASSWORD", password)
            .output()
            .unwrap();
        let run = crate::util::Run::from(run).expect_code(1);
        let host = url.split('@').nth(1).unwrap();
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains("asset shop"), "{all}");
        assert!(all.contains(&format!("PostgreSQL {host}")), "{all}");
        assert!(all.contains(reason), "{all}");
        assert!(all.contains(hint), "{all}");
        assert!(!all.contains(password), "{all}");
    }
    assert!(sb.snapshots().is_empty());

    // The right password, through the environment only.
    sb.write_plan(&format!(
        "[assets.shop]\ntype = \"postgres\"\nurl = \"{}\"\npassword-env = \"SHOP_PG_PASSWORD\"\n",
        pg.url("shop")
    ));
    let ok = sb
        .cmd(&["backup"])
        .env("SHOP_PG_PASSWORD", "right-pw-123")
        .output()
        .unwrap();
    crate::util::Run::from(ok).expect_code(0);
    assert_eq!(sb.snapshots().len(), 1);
}

/// A 1 MiB spool directory: the default dump (one stream) goes straight into the repository
/// and succeeds; a parallel dump (`jobs = 2`), which writes a directory of files first, fails
/// naming the asset and `LIFEBOAT_SPOOL_DIR`, and leaves no snapshot and no file behind.
#[test]
fn postgres_spool_disk_full() {
    let pg = PostgresSandbox::start(None).unwrap();
    pg.psql("postgres", "CREATE DATABASE shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE blobs AS SELECT i, md5(i::text) || repeat('x', 1000) AS v FROM generate_series(1, 5000) i",
    )
    .unwrap();
    // A 1 MiB file system of its own (root can mount tmpfs; the test machine runs as root).
    let small = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(small.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a 1 MiB tmpfs (needs root)");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.path().to_path_buf());
    let spool_files = || std::fs::read_dir(small.path()).unwrap().count();

    let sb = Sandbox::new();
    sb.write_plan(&plan_for(&pg, "shop", "jobs = 2\n"));
    sb.run_ok(&["init"]);
    let out = sb
        .cmd(&["backup"])
        .env("LIFEBOAT_SPOOL_DIR", small.path())
        .output()
        .unwrap();
    let run = crate::util::Run::from(out).expect_code(1);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("asset shop"), "{all}");
    assert!(all.contains("No space left on device"), "{all}");
    assert!(all.contains("LIFEBOAT_SPOOL_DIR"), "{all}");
    assert!(sb.snapshots().is_empty());
    assert_eq!(spool_files(), 0, "spool file left behind");

    // The dump is about 5 MiB, five times the spool: streamed, it never touches it.
    sb.write_plan(&plan_for(&pg, "shop", ""));
    let out = sb
        .cmd(&["backup"])
        .env("LIFEBOAT_SPOOL_DIR", small.path())
        .output()
        .unwrap();
    crate::util::Run::from(out).expect_code(0);
    assert_eq!(spool_files(), 0, "the dump went through the spool");
    let m = manifest(&sb);
    assert!(
        m["artifacts"][0]["size"].as_u64().unwrap() > 4 << 20,
        "{m:#}"
    );
    assert_eq!(m["tables"]["public.blobs"], 5000, "{m:#}");
}

/// A new server lacks the dump's roles: the restore says so and where the roles are; with the
/// snapshot's globals.sql applied, the same restore succeeds and ownership is kept.
#[test]
fn postgres_new_server_gets_roles_from_globals() {
    let old = PostgresSandbox::start(None).unwrap();
    old.psql("postgres", "CREATE ROLE app LOGIN").unwrap();
    old.psql("postgres", "CREATE DATABASE shop OWNER app")
        .unwrap();
    old.psql(
        "shop",
        "SET ROLE app; CREATE TABLE items AS SELECT generate_series(1, 10) AS id;",
    )
    .unwrap();
    let sb = Sandbox::new();
    sb.write_plan(&plan_for(&old, "shop", "globals = true\n"));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);

    let new = PostgresSandbox::start(None).unwrap();
    let failed = sb
        .run(&["restore", "shop", "--to", &new.url("shop")])
        .expect_code(1);
    assert!(
        failed.stderr.contains("role \"app\" does not exist"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("globals.sql"), "{}", failed.stderr);
    assert_eq!(
        new.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'shop'"
        )
        .unwrap(),
        "0",
        "the half-loaded database was dropped"
    );

    let globals = sb.run_ok(&["dump", "shop", "globals.sql"]);
    let sql: String = globals
        .stdout
        .lines()
        .filter(|l| !l.contains("ROLE postgres"))
        .collect::<Vec<_>>()
        .join("\n");
    // As an operator would: through psql's stdin (the file holds psql meta-commands).
    let mut psql = std::process::Command::new(new.bin_dir().join("psql"))
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .arg("-p")
        .arg(new.port().to_string())
        .arg("postgres")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut psql.stdin.take().unwrap(), sql.as_bytes()).unwrap();
    assert!(psql.wait().unwrap().success(), "globals.sql applies");
    sb.run_ok(&["restore", "shop", "--to", &new.url("shop")]);
    assert_eq!(
        new.psql("shop", "SELECT tableowner || ' ' || (SELECT count(*) FROM items) FROM pg_tables WHERE tablename = 'items'")
            .unwrap(),
        "app 10"
    );
}

/// Ctrl-C while the dump is being loaded for a restore over the original: exit 130, the
/// scratch database is dropped, the live database is untouched and takes connections.
#[test]
fn postgres_interrupted_restore_drops_its_scratch_database() {
    let pg = PostgresSandbox::start(None).unwrap();
    pg.psql("postgres", "CREATE DATABASE shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE big AS SELECT i, md5(i::text) AS v FROM generate_series(1, 1500000) i",
    )
    .unwrap();
    let sb = Sandbox::new();
    sb.write_plan(&plan_for(&pg, "shop", ""));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    pg.psql("shop", "DELETE FROM big WHERE i > 10").unwrap();

    let mut restore = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("--config")
        .arg(sb.plan_path())
        .args(["restore", "shop", "--yes", "--skip-safety-snapshot"])
        .env(crate::util::PASSWORD_ENV, crate::util::PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let scratch = "SELECT count(*) FROM pg_database WHERE datname LIKE 'shop\\_lifeboat\\_%'";
    let started = std::time::Instant::now();
    while pg.psql("postgres", scratch).unwrap() == "0" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the restore never created its database"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(restore.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert_eq!(restore.wait().unwrap().code(), Some(130));

    assert_eq!(
        pg.psql("postgres", scratch).unwrap(),
        "0",
        "scratch database left"
    );
    assert_eq!(pg.psql("shop", "SELECT count(*) FROM big").unwrap(), "10");
}

/// A password written into --to would reach pg_restore's argv (visible in `ps`): refused,
/// without echoing it.
#[test]
fn postgres_restore_refuses_a_password_in_the_target_url() {
    let pg = PostgresSandbox::start(None).unwrap();
    small_shop(&pg, "shop");
    let sb = Sandbox::new();
    sb.write_plan(&plan_for(&pg, "shop", ""));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    let to = format!(
        "postgres://postgres:Sup3rS3cret@127.0.0.1:{}/other",
        pg.port()
    );
    let run = sb.run(&["restore", "shop", "--to", &to]).expect_code(1);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains("Sup3rS3cret"), "{all}");
    assert!(all.contains("the URL holds a password"), "{all}");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'other'"
        )
        .unwrap(),
        "0"
    );
}

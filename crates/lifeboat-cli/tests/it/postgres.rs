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

//! Complete server loss (seeds 000, 002, 003, 004): the host with the databases, the files and
//! the local repository is gone. From an empty directory holding only the plan file, with the
//! password and the S3 copy, every asset comes back (docs/recovery.md).

use std::fs;

use lifeboat_testing::{MotoServer, sandbox::PostgresSandbox, tree_digest, write_fixture_tree};

use crate::util::{PASSWORD_ENV, Run, Sandbox, toml_path, toml_str};

const BUCKET: &str = "lifeboat-coldstart";

const APP_SQL: &str = "
CREATE TABLE agents (id serial PRIMARY KEY, name text NOT NULL, seen timestamptz);
CREATE TABLE events (id bigserial PRIMARY KEY, agent int REFERENCES agents(id), body jsonb);
INSERT INTO agents (name, seen) SELECT 'agent ' || i, now() - i * interval '1 minute'
  FROM generate_series(1, 300) i;
INSERT INTO events (agent, body) SELECT 1 + i % 300, jsonb_build_object('n', i)
  FROM generate_series(1, 5000) i;
";

fn fingerprint(pg: &PostgresSandbox) -> String {
    pg.psql(
        "app",
        "SELECT (SELECT count(*) FROM agents) || ' ' || (SELECT count(*) FROM events) || ' ' || \
         (SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM agents a) || ' ' || \
         (SELECT md5(string_agg(e::text, ',' ORDER BY id)) FROM events e)",
    )
    .unwrap()
    .trim()
    .to_owned()
}

fn sqlite_rows(path: &std::path::Path) -> Vec<(i64, String)> {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut stmt = db
        .prepare("SELECT id, name FROM tools ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn every_asset_comes_back_from_the_offsite_copy_alone() {
    let s3 = MotoServer::start().expect("start moto_server");
    s3.create_bucket(BUCKET).unwrap();
    // What lives on the server: a database, a SQLite file and a directory, at fixed paths.
    let data = tempfile::tempdir().unwrap();
    let hub = data.path().join("hub.db");
    let web = data.path().join("web");
    {
        let db = rusqlite::Connection::open(&hub).unwrap();
        db.execute_batch(
            "CREATE TABLE tools (id INTEGER PRIMARY KEY, name TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO tools SELECT i, 'tool ' || i FROM n;",
        )
        .unwrap();
    }
    write_fixture_tree(&web);
    let pg = PostgresSandbox::start(None).unwrap();
    pg.psql("postgres", "CREATE DATABASE app").unwrap();
    pg.psql("app", APP_SQL).unwrap();

    let old_host = Sandbox::new();
    let url = format!(
        "s3://{BUCKET}/dr?endpoint={}&region=us-east-1",
        s3.endpoint()
    );
    let plan = format!(
        "version = 1\n[plan]\nname = \"tool-hub\"\n\n\
         [repositories.local]\nurl = {}\npassword-env = \"{PASSWORD_ENV}\"\n\n\
         [repositories.offsite]\nurl = {}\npassword-env = \"{PASSWORD_ENV}\"\ncopy-from = \"local\"\n\n\
         [assets.db]\ntype = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:${{LB_PG_PORT}}/app\"\npriority = \"P0\"\n\n\
         [assets.hub]\ntype = \"sqlite\"\npath = {}\n\n\
         [assets.web]\ntype = \"files\"\npaths = [{}]\n",
        toml_path(&old_host.repo()),
        toml_str(&url),
        toml_path(&hub),
        toml_path(&web),
    );
    old_host.write_raw_plan(&plan);
    let run = |sb: &Sandbox, port: u16, args: &[&str]| {
        let mut cmd = sb.cmd(args);
        cmd.env("LB_PG_PORT", port.to_string());
        for (k, v) in s3.aws_env() {
            cmd.env(k, v);
        }
        Run::from(cmd.output().unwrap())
    };
    run(&old_host, pg.port(), &["init"]).expect_code(0);
    let backup = run(&old_host, pg.port(), &["--json", "backup"])
        .expect_code(0)
        .json();
    assert_eq!(backup["copies"][0]["copied"], 3, "{backup:#}");
    let want_db = fingerprint(&pg);
    let want_hub = sqlite_rows(&hub);
    let want_web = tree_digest(&web);

    // The host is lost: its database server, its data, the local repository, the catalog.
    drop(pg);
    fs::remove_dir_all(data.path()).unwrap();
    fs::create_dir_all(data.path()).unwrap();
    let old_repo = old_host.repo();
    drop(old_host);

    // A new host: an empty PostgreSQL, an empty directory with the plan file, the password.
    let pg = PostgresSandbox::start(None).unwrap();
    let new_host = Sandbox::new();
    new_host.write_raw_plan(&plan);
    let listed = run(
        &new_host,
        pg.port(),
        &["--repo", "offsite", "--json", "snapshots"],
    )
    .expect_code(0)
    .json();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed:#}");
    run(&new_host, pg.port(), &["--repo", "offsite", "verify"]).expect_code(0);
    for asset in ["db", "hub", "web"] {
        run(
            &new_host,
            pg.port(),
            &["--repo", "offsite", "restore", asset, "--yes"],
        )
        .expect_code(0);
    }

    assert_eq!(fingerprint(&pg), want_db);
    assert_eq!(sqlite_rows(&hub), want_hub);
    assert_eq!(tree_digest(&web), want_web);
    // The local repository of the lost host was never needed.
    assert!(!old_repo.exists());
}

//! `examples/atlasia.toml` (seed 004): PostgreSQL with its roles, a Vault raft snapshot (a
//! stand-in `vault` keeps its data in a file), configuration, uploads and logs; Vault and the
//! database recovered after corruption.

use std::{fs, os::unix::fs::PermissionsExt};

use lifeboat_testing::sandbox::PostgresSandbox;

use super::{Example, Health, assert_example_checks_clean, assert_report_complete};

#[test]
fn atlasia_example_checks_clean() {
    assert_example_checks_clean("atlasia");
}

/// `vault operator raft snapshot save|restore`: the raft data is the file `$VAULT_DATA`.
fn vault_stand_in(ex: &Example) {
    let path = ex.path("bin/vault");
    fs::write(
        &path,
        "#!/bin/sh\ncase \"$*\" in\n  'operator raft snapshot save /dev/stdout') cat \"$VAULT_DATA\";;\n  'operator raft snapshot restore -force /dev/stdin') cat > \"$VAULT_DATA.new\" && mv \"$VAULT_DATA.new\" \"$VAULT_DATA\";;\n  *) echo \"vault: unexpected $*\" >&2; exit 2;;\nesac\n",
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn atlasia_vault_and_database_corruption_are_recovered() {
    let mut ex = Example::new("atlasia");
    vault_stand_in(&ex);
    let pg = PostgresSandbox::start(None).unwrap();
    pg.psql("postgres", "CREATE ROLE aiteam_prod_user LOGIN SUPERUSER")
        .unwrap();
    pg.psql(
        "postgres",
        "CREATE DATABASE aiteam_prod OWNER aiteam_prod_user",
    )
    .unwrap();
    pg.psql(
        "aiteam_prod",
        "CREATE TABLE users(id int PRIMARY KEY, email text);
         INSERT INTO users SELECT i, 'u' || i || '@atlasia.ai' FROM generate_series(1, 25) i;
         CREATE TABLE workflow_runs(id int PRIMARY KEY, created_at timestamptz DEFAULT now());
         INSERT INTO workflow_runs(id) SELECT generate_series(1, 60);
         CREATE TABLE personas(id int PRIMARY KEY, name text);
         INSERT INTO personas VALUES (1, 'planner'), (2, 'coder');",
    )
    .unwrap();
    let home = ex.path("srv/atlasia");
    for d in [
        "infra/deployments/prod",
        "data/uploads",
        "data/plugins",
        "logs",
    ] {
        fs::create_dir_all(home.join(d)).unwrap();
    }
    fs::write(home.join(".env.prod"), "VAULT_ADDR=http://vault:8200\n").unwrap();
    fs::write(
        home.join("infra/deployments/prod/docker-compose.yml"),
        "services: {}\n",
    )
    .unwrap();
    fs::write(home.join("data/uploads/report.pdf"), vec![7u8; 4096]).unwrap();
    fs::write(home.join("logs/app.log"), "started\n").unwrap();
    let vault_data = ex.path("vault.raft");
    fs::write(&vault_data, "raft-snapshot: secret/db=s3cr3t").unwrap();
    let api = Health::start("ready");
    let slack = Health::start("ok");
    ex.set("ATLASIA_REPO", ex.path("repo").display().to_string());
    ex.local_offsite("ATLASIA_OFFSITE");
    ex.set("ATLASIA_PG_HOST", "127.0.0.1");
    ex.set("ATLASIA_PG_PORT", pg.port().to_string());
    ex.set("ATLASIA_PG_PASSWORD", "unused-with-trust");
    ex.set("ATLASIA_HOME", home.display().to_string());
    ex.set("ATLASIA_API", api.addr.clone());
    ex.set(
        "ATLASIA_SLACK_WEBHOOK",
        format!("http://{}/slack", slack.addr),
    );
    ex.set("VAULT_DATA", vault_data.display().to_string());
    ex.ok(&["init"]);
    ex.ok(&["backup"]);

    // Vault's storage is corrupted.
    fs::write(&vault_data, "garbage").unwrap();
    let (run, report) = ex.recover("vault-corruption", 0);
    assert_eq!(
        fs::read_to_string(&vault_data).unwrap(),
        "raft-snapshot: secret/db=s3cr3t",
        "{}",
        run.stdout
    );
    assert_report_complete(&report, "vault-corruption", &["vault"]);
    // The corrupted state went into a safety snapshot first, and the report says how to get
    // it back.
    assert!(report.contains("restore vault --snapshot "), "{report}");

    // The database is corrupted.
    pg.psql("aiteam_prod", "DROP TABLE personas; DELETE FROM users")
        .unwrap();
    let (run, report) = ex.recover("database-corruption", 0);
    let n = |t: &str| {
        pg.psql("aiteam_prod", &format!("SELECT count(*) FROM {t}"))
            .unwrap()
    };
    assert_eq!(n("users").trim(), "25", "{}", run.stdout);
    assert_eq!(n("personas").trim(), "2");
    assert_eq!(n("workflow_runs").trim(), "60");
    assert_report_complete(&report, "database-corruption", &["db"]);
    assert!(report.contains("3 check(s) passed"), "{report}");
    assert!(report.contains("aiteam_prod_lifeboat_old_"), "{report}");
    let posts = slack.received();
    assert!(
        posts.iter().any(|p| p.contains("restore starting")),
        "{posts:?}"
    );
    assert!(
        posts.iter().any(|p| p.contains("database restored")),
        "{posts:?}"
    );
}

//! `examples/devops-hub.toml` (seed 003): SQLite, configuration, the env file's structure and
//! API-key metadata from a command; a security breach rolled back to the snapshot before it,
//! and an accidental deletion restored beside the live database.

use std::fs;

use super::{Example, Health, assert_example_checks_clean, assert_report_complete};

fn agents(db: &std::path::Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c.prepare("SELECT name FROM agents ORDER BY id").unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn active_keys(db: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT count(*) FROM api_keys WHERE is_active = 1",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

struct Hub {
    ex: Example,
    db: std::path::PathBuf,
    team: Health,
    _api: Health,
}

fn setup() -> Hub {
    let mut ex = Example::new("devops-hub");
    let home = ex.path("srv/devops-hub");
    fs::create_dir_all(home.join("data")).unwrap();
    fs::create_dir_all(home.join("k8s")).unwrap();
    fs::create_dir_all(home.join("frontend")).unwrap();
    fs::write(home.join("docker-compose.yml"), "services: {}\n").unwrap();
    fs::write(home.join("k8s/backend.yaml"), "kind: Deployment\n").unwrap();
    fs::write(home.join("frontend/nginx.conf"), "server {}\n").unwrap();
    fs::write(home.join(".env"), "SECRET_KEY=do-not-store\n").unwrap();
    let db = home.join("data/devops_hub.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE agents(id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO agents(name) VALUES ('builder'), ('deployer'), ('watcher');
         CREATE TABLE api_keys(id INTEGER PRIMARY KEY, name TEXT, scopes TEXT, hash TEXT, is_active INTEGER);
         INSERT INTO api_keys(name, scopes, hash, is_active) VALUES ('ci', 'read,write', 'h1', 1), ('ops', 'admin', 'h2', 1);",
    )
    .unwrap();
    drop(c);
    let api = Health::start("ok");
    let team = Health::start("ok");
    ex.set("DEVOPS_HUB_REPO", ex.path("repo").display().to_string());
    ex.local_offsite("DEVOPS_HUB_OFFSITE");
    ex.set("DEVOPS_HUB_HOME", home.display().to_string());
    ex.set("DEVOPS_HUB_API", api.addr.clone());
    ex.set(
        "DEVOPS_HUB_WEBHOOK_URL",
        format!("http://{}/hooks/team", team.addr),
    );
    ex.set(
        "DEVOPS_HUB_HEALTHCHECKS_URL",
        format!("http://{}/ping/hub", team.addr),
    );
    ex.ok(&["init"]);
    ex.ok(&["backup"]);
    Hub {
        ex,
        db,
        team,
        _api: api,
    }
}

#[test]
fn devops_hub_example_checks_clean() {
    assert_example_checks_clean("devops-hub");
}

#[test]
fn devops_hub_security_breach_goes_back_to_the_pre_breach_snapshot() {
    let hub = setup();
    let ex = &hub.ex;
    let snapshots = ex.ok(&["snapshots", "--asset", "db", "--json"]).json();
    let pre_breach = snapshots[0]["id"].as_str().unwrap().to_owned();
    // The breach: data modified and a key planted; a scheduled backup takes it in.
    let c = rusqlite::Connection::open(&hub.db).unwrap();
    c.execute_batch(
        "UPDATE agents SET name = 'pwned'; INSERT INTO api_keys(name, scopes, hash, is_active) VALUES ('intruder', 'admin', 'h3', 1);",
    )
    .unwrap();
    drop(c);
    ex.ok(&["backup", "db"]);

    // Which snapshot predates the breach is only known during the incident: without it the
    // scenario stops at the restore, names the variable, and has changed nothing yet but
    // stopping the backend.
    let (run, report) = ex.recover("security-breach", 1);
    assert!(report.contains("PRE_BREACH_SNAPSHOT"), "{report}");
    assert!(report.contains("lifeboat snapshots --asset db"), "{report}");
    assert!(run.stdout.contains("STOPPED at step 2"), "{}", run.stdout);
    assert_eq!(agents(&hub.db), ["pwned"; 3]);

    let (run, report) = ex.recover_with(
        "security-breach",
        0,
        &[("PRE_BREACH_SNAPSHOT", &pre_breach[..8])],
    );
    assert_eq!(
        agents(&hub.db),
        ["builder", "deployer", "watcher"],
        "{}",
        run.stdout
    );
    assert_eq!(
        active_keys(&hub.db),
        0,
        "every key deactivated after the restore"
    );
    assert_report_complete(&report, "security-breach", &["db"]);
    assert!(
        report.contains(&format!("snapshot {}", &pre_breach[..8])),
        "{report}"
    );
    let posts = hub.team.received();
    assert!(
        posts
            .iter()
            .any(|p| p.starts_with("POST /hooks/team") && p.contains("pre-breach")),
        "{posts:?}"
    );
}

#[test]
fn devops_hub_accidental_deletion_restores_beside_the_live_database() {
    let hub = setup();
    let ex = &hub.ex;
    let c = rusqlite::Connection::open(&hub.db).unwrap();
    c.execute_batch("DELETE FROM agents WHERE name = 'watcher'")
        .unwrap();
    drop(c);
    let (_, report) = ex.recover("accidental-deletion", 0);
    let recovered = ex.path("srv/devops-hub/data/recovered.db");
    assert_eq!(agents(&recovered), ["builder", "deployer", "watcher"]);
    assert_eq!(
        agents(&hub.db),
        ["builder", "deployer"],
        "the live file is left alone"
    );
    assert!(
        report.contains("- [ ] Copy the missing rows back"),
        "{report}"
    );
    // The structure-only env file never held the secret.
    let dump = ex.run(&["dump", "api-keys"]).expect_code(0);
    assert!(dump.stdout.starts_with("id,name,scopes"), "{}", dump.stdout);
    assert!(!dump.stdout.contains("h1"), "no key hashes in the metadata");
}

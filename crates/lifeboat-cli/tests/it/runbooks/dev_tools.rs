//! `examples/dev-tools.toml` (seed 000): PostgreSQL, the Redis event bus, volumes, MCP config
//! and secrets; database corruption and Redis data loss recovered, a failed step stopping the
//! run with its rollback, the same scenario as a drill.

use std::fs;

use lifeboat_sources::resp::Client;
use lifeboat_testing::{
    DockerStandIn, StandInContainer,
    sandbox::{PostgresSandbox, RedisSandbox},
};

use super::{Example, Health, assert_example_checks_clean, assert_report_complete};

/// The secret part of the Slack webhook URL: it must never show.
const SLACK_SECRET: &str = "xoxb-secret-path-4242";

struct Servers {
    pg: PostgresSandbox,
    redis: RedisSandbox,
    _state: Health,
    _registry: Health,
    slack: Health,
    /// The Docker Engine API the volumes are found through (no Docker daemon runs here).
    docker: DockerStandIn,
}

fn rows(pg: &PostgresSandbox) -> String {
    pg.psql("devtools", "SELECT count(*) FROM agent_registry")
        .unwrap()
        .trim()
        .to_owned()
}

fn redis_keys(redis: &RedisSandbox) -> usize {
    let mut c = Client::connect("127.0.0.1", redis.port(), None, None).unwrap();
    c.keyspace().unwrap().values().sum::<u64>() as usize
}

fn setup() -> (Example, Servers) {
    let mut ex = Example::new("dev-tools");
    let pg = PostgresSandbox::start(None).unwrap();
    pg.psql("postgres", "CREATE ROLE devtools LOGIN SUPERUSER")
        .unwrap();
    pg.psql("postgres", "CREATE DATABASE devtools OWNER devtools")
        .unwrap();
    pg.psql(
        "devtools",
        "CREATE TABLE agent_registry AS SELECT i AS id, 'agent-' || i AS name FROM generate_series(1, 50) i",
    )
    .unwrap();
    let redis = RedisSandbox::start(None).unwrap();
    let mut c = Client::connect("127.0.0.1", redis.port(), None, None).unwrap();
    for i in 0..30 {
        c.ok(&[b"SET", format!("event:{i}").as_bytes(), b"payload"])
            .unwrap();
    }
    let home = ex.path("opt/Dev-Tools");
    let volumes = ex.path("volumes");
    for (dir, file, text) in [
        (home.join("config/mcp"), "servers.json", "{\"servers\": []}"),
        (home.join("config/env/secrets"), "api_key", "sk-test"),
        (volumes.join("orchestrator-data/_data"), "state.json", "{}"),
        (volumes.join("prometheus-data/_data"), "wal", "p"),
        (volumes.join("loki-data/_data"), "index", "l"),
    ] {
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(file), text).unwrap();
    }
    fs::write(home.join("config/env/.env"), "API_KEY=sk-test\n").unwrap();
    let mount = |name: &str| volumes.join(name).join("_data");
    let (orchestrator, prometheus, loki) = (
        mount("orchestrator-data"),
        mount("prometheus-data"),
        mount("loki-data"),
    );
    let container = |name, volume| StandInContainer {
        name,
        volumes: vec![volume],
        writes: None,
        running: true,
    };
    let docker = DockerStandIn::start(
        ex.sb.path(),
        &[
            ("orchestrator-data", &orchestrator),
            ("prometheus-data", &prometheus),
            ("loki-data", &loki),
        ],
        &[
            container("deploy-orchestrator-1", "orchestrator-data"),
            container("deploy-prometheus-1", "prometheus-data"),
            container("deploy-loki-1", "loki-data"),
        ],
    );
    ex.set("DOCKER_HOST", docker.host());
    let state = Health::start("ok");
    let registry = Health::start("{\"event_bus\": \"connected\"}");
    let slack = Health::start("ok");
    ex.set("DEVTOOLS_REPO", ex.path("repo").display().to_string());
    ex.local_offsite("DEVTOOLS_OFFSITE");
    ex.set("DEVTOOLS_PG_HOST", "127.0.0.1");
    ex.set("DEVTOOLS_PG_PORT", pg.port().to_string());
    ex.set("DEVTOOLS_PG_PASSWORD", "unused-with-trust");
    ex.set("DEVTOOLS_REDIS_HOST", "127.0.0.1");
    ex.set("DEVTOOLS_REDIS_PORT", redis.port().to_string());
    ex.set("DEVTOOLS_HOME", home.display().to_string());
    ex.set("DEVTOOLS_STATE_API", state.addr.clone());
    ex.set("DEVTOOLS_REGISTRY_API", registry.addr.clone());
    ex.set(
        "DEVTOOLS_SLACK_WEBHOOK",
        format!("http://{}/services/T0/B0/{SLACK_SECRET}", slack.addr),
    );
    ex.ok(&["init"]);
    ex.ok(&["backup"]);
    let servers = Servers {
        pg,
        redis,
        _state: state,
        _registry: registry,
        slack,
        docker,
    };
    (ex, servers)
}

#[test]
fn dev_tools_example_checks_clean() {
    assert_example_checks_clean("dev-tools");
}

#[test]
fn dev_tools_database_corruption_is_recovered_and_can_be_rolled_back() {
    let (ex, s) = setup();
    // The damage: most rows gone.
    s.pg.psql("devtools", "DELETE FROM agent_registry WHERE id > 10")
        .unwrap();
    assert_eq!(rows(&s.pg), "10");

    // Without a terminal and without --yes, nothing runs.
    let refused = ex.run(&["recover", "database-corruption"]).expect_code(1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(ex.calls().is_empty(), "{}", ex.calls());

    // A dry run says what it would do and changes nothing.
    let dry = ex
        .run(&["recover", "database-corruption", "--dry-run"])
        .expect_code(0);
    assert!(
        dry.stdout.contains("would run `docker compose"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("safety snapshot of db"),
        "{}",
        dry.stdout
    );
    assert_eq!(rows(&s.pg), "10");
    assert!(ex.calls().is_empty(), "{}", ex.calls());

    let (run, report) = ex.recover("database-corruption", 0);
    assert_eq!(rows(&s.pg), "50", "{}", run.stdout);
    // The services were stopped before the restore and started after it.
    let calls = ex.calls();
    let stop = calls.find("stop state-persistence").expect(&calls);
    let start = calls.find("start state-persistence").expect(&calls);
    assert!(stop < start, "{calls}");
    // The live timeline: every step started and ended.
    assert!(
        run.stdout.contains("[2/7] restore db over its live target"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("[7/7]"), "{}", run.stdout);
    assert_report_complete(&report, "database-corruption", &["db"]);
    assert!(report.contains("50 rows"), "{report}");
    // The last step told Slack, and the webhook URL shows nowhere.
    let posts = s.slack.received();
    assert!(
        posts.iter().any(|p| p.starts_with("POST /services/T0/B0/")
            && p.contains("PostgreSQL restored after corruption")),
        "{posts:?}"
    );
    assert!(report.contains("sent to ops"), "{report}");
    for text in [&report, &run.stdout, &run.stderr] {
        assert!(!text.contains(SLACK_SECRET), "{text}");
    }

    // The report names the exact command that undoes the recovery; it works.
    let rollback = report
        .lines()
        .filter(|l| l.contains("restore db --snapshot"))
        .find_map(|l| {
            let start = l.find("`lifeboat --config ")?;
            let rest = &l[start + 1..];
            Some(rest[..rest.find('`')?].to_owned())
        })
        .expect("a rollback command in the report");
    assert!(rollback.contains("restore db --snapshot "), "{rollback}");
    assert!(rollback.ends_with("--yes"), "{rollback}");
    let args: Vec<&str> = rollback.split_whitespace().skip(3).collect();
    ex.ok(&args);
    assert_eq!(
        rows(&s.pg),
        "10",
        "the rollback puts back the damaged state"
    );
}

#[test]
fn dev_tools_redis_loss_recovered_and_a_failed_step_stops_with_what_to_do() {
    let (ex, s) = setup();
    let mut c = Client::connect("127.0.0.1", s.redis.port(), None, None).unwrap();
    c.ok(&[b"FLUSHALL"]).unwrap();
    assert_eq!(redis_keys(&s.redis), 0);

    let (_, report) = ex.recover("redis-data-loss", 0);
    assert_eq!(redis_keys(&s.redis), 30);
    assert_report_complete(&report, "redis-data-loss", &["events"]);

    // Again, with the agents refusing to start: the run stops at that step, says what to do
    // (with the rollback of the restore it did), and writes the report all the same.
    c.ok(&[b"FLUSHALL"]).unwrap();
    let (run, report) = ex.recover_with(
        "redis-data-loss",
        1,
        &[("STAND_IN_FAIL", "start orchestrator")],
    );
    assert_eq!(
        redis_keys(&s.redis),
        30,
        "the restore before the failure stands"
    );
    assert!(run.stdout.contains("What to do next"), "{}", run.stdout);
    assert!(report.contains("STOPPED at step 4 of 5"), "{report}");
    assert!(report.contains("## What To Do Next"), "{report}");
    assert!(report.contains("restore events --snapshot "), "{report}");
    assert!(report.contains("| 5 | GET http://"), "{report}");
    assert!(report.contains("| not run |"), "{report}");
}

#[test]
fn dev_tools_database_corruption_as_a_drill_touches_nothing_live() {
    let (ex, s) = setup();
    s.pg.psql("devtools", "DELETE FROM agent_registry WHERE id > 10")
        .unwrap();
    let report = ex.path("drill.md");
    let run = ex
        .run(&[
            "recover",
            "database-corruption",
            "--drill",
            "--report",
            &report.to_string_lossy(),
        ])
        .expect_code(0);
    assert!(
        run.stdout.contains("restored into a sandbox"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("in the sandbox of step 2"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("skipped"), "{}", run.stdout);
    assert_eq!(rows(&s.pg), "10", "the live database is untouched");
    assert!(ex.calls().is_empty(), "{}", ex.calls());
    let text = fs::read_to_string(report).unwrap();
    assert!(text.contains("drill: sandboxes"), "{text}");
}

#[test]
fn dev_tools_volumes_are_backed_up_by_name_with_their_writers_held() {
    let (ex, s) = setup();
    // The seed's five volumes: three by name here, postgres-data and redis-data through the
    // db and events assets.
    let actions = s.docker.actions();
    for (held, released) in [
        (
            "stopped deploy-orchestrator-1",
            "started deploy-orchestrator-1",
        ),
        ("paused deploy-prometheus-1", "unpaused deploy-prometheus-1"),
        ("paused deploy-loki-1", "unpaused deploy-loki-1"),
    ] {
        let at = |what: &str| {
            actions
                .iter()
                .position(|a| a == what)
                .unwrap_or_else(|| panic!("no {what:?} in {actions:?}"))
        };
        assert!(at(held) < at(released), "{actions:?}");
    }
    for (asset, file) in [
        ("orchestrator-data", "state.json"),
        ("prometheus-data", "wal"),
        ("loki-data", "index"),
    ] {
        let all = ex.ok(&["snapshots", "--json"]).json();
        let snaps: Vec<_> = all
            .as_array()
            .unwrap()
            .iter()
            .filter(|snap| snap["asset"] == asset)
            .collect();
        assert_eq!(snaps.len(), 1, "{asset}: {all:#}");
        let listed = crate::util::restic(&ex.sb.repo(), &["ls", snaps[0]["id"].as_str().unwrap()])
            .expect_code(0)
            .stdout;
        assert!(
            listed
                .lines()
                .any(|l| l.ends_with(&format!("{asset}/_data/{file}"))),
            "{asset}: {listed}"
        );
    }
}

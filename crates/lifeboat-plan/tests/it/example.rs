//! The example plans parse into what they say: the full design example kept under tests/data,
//! and the plan the README walks through.

use std::{path::Path, time::Duration};

use lifeboat_core::{AssetKind, Priority, RepoLocation, S3Location};
use lifeboat_plan::{
    AssetSpec, NotifyEvent, NotifyKind, PasswordSource, Redact, Retention, SecretSource, Step,
};

const EXAMPLE: &str = include_str!("../data/design-example.toml");

#[test]
fn design_example_parses() {
    let plan = lifeboat_plan::parse(EXAMPLE, Path::new("/etc/lifeboat/lifeboat.toml")).unwrap();
    assert_eq!(plan.name, "dev-tools");
    assert_eq!(plan.version, 1);
    assert_eq!(plan.base_dir, Path::new("/etc/lifeboat"));
    assert_eq!(
        (plan.rpo, plan.rto),
        (Duration::from_secs(4 * 3600), Duration::from_secs(30 * 60))
    );

    let names: Vec<_> = plan.repositories.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["local", "offsite"]);
    let local = plan.primary();
    assert_eq!(
        local.location,
        RepoLocation::Local {
            path: "/var/backups/lifeboat".into()
        }
    );
    assert_eq!(
        local.password,
        PasswordSource::Env("LIFEBOAT_PASSWORD".into())
    );
    assert!(!local.embedded_default);
    let offsite = plan.repository("offsite").unwrap();
    assert_eq!(
        offsite.location,
        RepoLocation::S3(S3Location {
            bucket: "dev-tools-backups".into(),
            prefix: "lifeboat".into(),
            endpoint: Some("https://nyc3.digitaloceanspaces.com".into()),
            region: Some("nyc3".into()),
            path_style: true,
            storage_class: None,
            timeout: None,
            object_lock: None,
        })
    );
    assert_eq!(
        offsite.password,
        PasswordSource::Command("pass show lifeboat".into())
    );
    assert_eq!(offsite.copy_from.as_deref(), Some("local"));

    // File order, not alphabetical.
    let assets: Vec<_> = plan
        .assets
        .iter()
        .map(|a| (a.name.as_str(), a.kind()))
        .collect();
    assert_eq!(
        assets,
        [
            ("db", AssetKind::Postgres),
            ("events", AssetKind::Redis),
            ("hub", AssetKind::Sqlite),
            ("orders", AssetKind::Mysql),
            ("volumes", AssetKind::Files),
            ("env", AssetKind::Files),
            ("vault", AssetKind::Command),
        ]
    );
    let db = plan.asset("db").unwrap();
    assert_eq!(db.priority, Priority::P0);
    assert_eq!(db.schedule.as_ref().unwrap().expr, "0 */6 * * *");
    assert_eq!(
        (db.rpo, db.rto),
        (Duration::from_secs(6 * 3600), Duration::from_secs(15 * 60))
    );
    assert_eq!(
        db.retention,
        Retention {
            last: Some(4),
            daily: Some(7),
            weekly: Some(4),
            monthly: Some(12),
            ..Retention::default()
        }
    );
    assert_eq!(db.checks, ["SELECT count(*) > 0 FROM agent_registry"]);
    let AssetSpec::Postgres(pg) = &db.spec else {
        panic!("{:?}", db.spec)
    };
    assert_eq!(pg.url.expose(), "postgres://devtools@localhost/devtools");
    assert_eq!(
        (pg.jobs, pg.globals, pg.password.is_none()),
        (1, false, true)
    );

    // Plan-wide defaults flow into assets that set none.
    let events = plan.asset("events").unwrap();
    assert_eq!(
        (events.rpo, events.rto, events.priority),
        (plan.rpo, plan.rto, Priority::P2)
    );
    assert!(events.retention.is_empty() && events.schedule.is_none());

    let AssetSpec::Files(env) = &plan.asset("env").unwrap().spec else {
        panic!()
    };
    assert_eq!(env.paths, [Path::new("/etc/lifeboat/config/env/.env")]);
    assert_eq!(env.redact, Redact::Values);
    let AssetSpec::Files(volumes) = &plan.asset("volumes").unwrap().spec else {
        panic!()
    };
    assert_eq!(volumes.exclude, ["*.tmp"]);
    assert_eq!(volumes.redact, Redact::None);
    let AssetSpec::Command(vault) = &plan.asset("vault").unwrap().spec else {
        panic!()
    };
    assert_eq!(vault.filename, "vault.out");
    assert_eq!(vault.workdir, Path::new("/etc/lifeboat"));
    assert_eq!(
        vault.restore.as_deref(),
        Some("vault operator raft snapshot restore /dev/stdin")
    );

    let [ops] = plan.notify.as_slice() else {
        panic!("{:?}", plan.notify)
    };
    assert_eq!((ops.name.as_str(), ops.kind), ("ops", NotifyKind::Slack));
    assert_eq!(ops.url, Some(SecretSource::Env("SLACK_WEBHOOK_URL".into())));
    assert_eq!(
        ops.on,
        [
            NotifyEvent::Failure,
            NotifyEvent::RpoBreach,
            NotifyEvent::SizeAnomaly,
            NotifyEvent::DrillFailed
        ]
    );

    let [scenario] = plan.scenarios.as_slice() else {
        panic!()
    };
    assert_eq!(scenario.name, "database-corruption");
    assert_eq!(scenario.steps.len(), 5);
    assert_eq!(
        scenario.steps[1],
        Step::Restore {
            asset: "db".into(),
            snapshot: None,
            before: None,
            time: None,
            to: None,
            tables: vec![],
            from: None,
        }
    );
    assert_eq!(scenario.steps[2], Step::Check { asset: "db".into() });
    assert_eq!(
        scenario.steps[4],
        Step::Http {
            url: "http://localhost:8008/health".into(),
            method: "GET".into(),
            headers: vec![],
            bearer: None,
            data: None,
            expect: 200,
            body: None,
            retries: 0,
            interval: Duration::from_secs(2),
        }
    );
}

/// The plan walked through in the README is a valid plan, and holds every asset it explains.
#[test]
fn readme_plan_parses() {
    let readme = include_str!("../../../../README.md");
    let start = readme
        .find("```toml\n")
        .expect("the README walks through a plan")
        + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("the block ends");
    let plan = lifeboat_plan::parse(
        &readme[start..end],
        Path::new("/etc/lifeboat/lifeboat.toml"),
    )
    .unwrap_or_else(|e| panic!("the README's plan: {e}"));
    let kinds: Vec<(&str, AssetKind)> = plan
        .assets
        .iter()
        .map(|a| (a.name.as_str(), a.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("uploads", AssetKind::Files),
            ("env", AssetKind::Files),
            ("db", AssetKind::Postgres),
            ("hub", AssetKind::Sqlite),
            ("vault", AssetKind::Command),
        ]
    );
}

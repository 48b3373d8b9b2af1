//! Defaults, paths, variables, schedules and locations as resolved.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use lifeboat_core::{Priority, RepoLocation, S3Location};
use lifeboat_plan::{
    AssetSpec, NotifyEvent, NotifyKind, PasswordSource, SecretSource, Step, validate_name,
};

use crate::{HEAD, MINIMAL, err, ok};

#[test]
fn minimal_plan_gets_every_default() {
    let plan = ok(MINIMAL);
    assert_eq!(plan.file, Path::new("/plans/lifeboat.toml"));
    assert_eq!(plan.base_dir, Path::new("/plans"));
    assert_eq!(plan.rpo, Duration::from_secs(24 * 3600));
    assert_eq!(plan.rto, Duration::from_secs(4 * 3600));
    let web = plan.asset("web").unwrap();
    assert_eq!(
        (web.priority, web.rpo, web.rto),
        (Priority::P2, plan.rpo, plan.rto)
    );
    assert!(web.schedule.is_none() && web.retention.is_empty() && web.checks.is_empty());
    let AssetSpec::Files(files) = &web.spec else {
        panic!()
    };
    assert!(!files.one_file_system && files.exclude.is_empty());
    assert!(plan.notify.is_empty() && plan.scenarios.is_empty());
    assert!(plan.asset("nope").is_none());
}

#[test]
fn a_plan_without_repositories_gets_the_embedded_default() {
    let plan = ok(MINIMAL);
    let [repo] = plan.repositories.as_slice() else {
        panic!("{:?}", plan.repositories)
    };
    assert_eq!(repo.name, "default");
    assert!(repo.embedded_default);
    assert_eq!(
        repo.location,
        RepoLocation::Local {
            path: "/plans/.lifeboat/repo".into()
        }
    );
    assert_eq!(
        repo.password,
        PasswordSource::DefaultFile("/plans/.lifeboat/password".into())
    );
    assert_eq!(repo.copy_from, None);
    assert_eq!(plan.primary(), repo);
    assert_eq!(plan.repository("default"), Some(repo));
}

#[test]
fn relative_paths_resolve_against_the_plan_directory() {
    let text = format!(
        "{HEAD}[repositories.local]\nurl = \"backups/../repo\"\npassword-file = \"secrets/pw\"\n\
         [assets.files]\ntype = \"files\"\npaths = [\"data\", \"./b/../a\", \"/abs/x\", \"data/\", \"/abs/x-y\"]\n\
         [assets.hub]\ntype = \"sqlite\"\npath = \"db/app.db\"\n\
         [assets.cache]\ntype = \"redis\"\nurl = \"redis://localhost\"\ndata-dir = \"../redis\"\npassword-file = \"rpw\"\n\
         [assets.vault]\ntype = \"command\"\nbackup = \"x\"\nfilename = \"vault.snap\"\n"
    );
    let plan = lifeboat_plan::parse(&text, Path::new("/srv/ops/sub/lifeboat.toml")).unwrap();
    assert_eq!(plan.base_dir, Path::new("/srv/ops/sub"));
    let repo = plan.primary();
    assert_eq!(
        repo.location,
        RepoLocation::Local {
            path: "/srv/ops/sub/repo".into()
        }
    );
    assert_eq!(
        repo.password,
        PasswordSource::File("/srv/ops/sub/secrets/pw".into())
    );
    let AssetSpec::Files(files) = &plan.asset("files").unwrap().spec else {
        panic!()
    };
    // Absolute, normal, sorted, deduplicated; /abs/x-y is beside /abs/x, not inside it.
    let expected: Vec<PathBuf> = ["/abs/x", "/abs/x-y", "/srv/ops/sub/a", "/srv/ops/sub/data"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(files.paths, expected);
    let AssetSpec::Sqlite(hub) = &plan.asset("hub").unwrap().spec else {
        panic!()
    };
    assert_eq!(hub.path, Path::new("/srv/ops/sub/db/app.db"));
    let AssetSpec::Redis(cache) = &plan.asset("cache").unwrap().spec else {
        panic!()
    };
    assert_eq!(cache.data_dir.as_deref(), Some(Path::new("/srv/ops/redis")));
    assert_eq!(
        cache.password,
        Some(SecretSource::File("/srv/ops/sub/rpw".into()))
    );
    let AssetSpec::Command(vault) = &plan.asset("vault").unwrap().spec else {
        panic!()
    };
    assert_eq!(
        (vault.filename.as_str(), vault.workdir.as_path()),
        ("vault.snap", Path::new("/srv/ops/sub"))
    );
}

#[test]
fn a_bare_file_name_resolves_against_the_current_directory() {
    let plan = lifeboat_plan::parse(MINIMAL, Path::new("lifeboat.toml")).unwrap();
    assert_eq!(plan.file, Path::new("lifeboat.toml"));
    assert_eq!(plan.base_dir, std::env::current_dir().unwrap());
    assert!(
        plan.primary()
            .location
            .to_string()
            .ends_with(".lifeboat/repo")
    );
}

#[test]
fn load_reads_the_file_and_resolves_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lifeboat.toml");
    std::fs::write(
        &file,
        format!("{HEAD}[assets.app]\ntype = \"sqlite\"\npath = \"app.db\"\n"),
    )
    .unwrap();
    let plan = lifeboat_plan::load(&file).unwrap();
    assert_eq!(plan.file, file);
    let AssetSpec::Sqlite(app) = &plan.asset("app").unwrap().spec else {
        panic!()
    };
    assert_eq!(app.path, dir.path().join("app.db"));
}

#[test]
fn variables_expand_outside_shell_commands() {
    // Cargo sets CARGO_MANIFEST_DIR for the test process too.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let plan = ok(&format!(
        "{HEAD}[assets.web]\ntype = \"files\"\npaths = [\"${{CARGO_MANIFEST_DIR}}/src\"]\nexclude = [\"$${{literal}}\"]\n\
         [assets.cmd]\ntype = \"command\"\nbackup = \"tar c ${{LIFEBOAT_TEST_SURELY_UNSET}}\"\nrestore = \"tar x -C ${{DEST}}\"\n\
         checks = [\"test -n ${{X}}\"]\n\
         [[scenarios]]\nname = \"s\"\nsteps = [{{ run = \"echo ${{Y}}\" }}, {{ wait = \"test -e ${{Z}}\" }}]\n"
    ));
    let AssetSpec::Files(web) = &plan.asset("web").unwrap().spec else {
        panic!()
    };
    assert_eq!(web.paths, [Path::new(&dir).join("src")]);
    assert_eq!(web.exclude, ["${literal}"]);
    let cmd = plan.asset("cmd").unwrap();
    let AssetSpec::Command(spec) = &cmd.spec else {
        panic!()
    };
    assert_eq!(spec.backup, "tar c ${LIFEBOAT_TEST_SURELY_UNSET}");
    assert_eq!(spec.restore.as_deref(), Some("tar x -C ${DEST}"));
    assert_eq!(cmd.checks, ["test -n ${X}"]);
    let steps = &plan.scenarios[0].steps;
    assert_eq!(
        steps[0],
        Step::Run {
            run: "echo ${Y}".into(),
            timeout: None
        }
    );
    let Step::Wait {
        until,
        timeout,
        interval,
    } = &steps[1]
    else {
        panic!()
    };
    assert_eq!(
        (until.as_str(), *timeout, *interval),
        (
            "test -e ${Z}",
            Duration::from_secs(300),
            Duration::from_secs(2)
        )
    );
}

#[test]
fn valid_cron_schedules() {
    use chrono::{TimeZone, Utc};
    for (expr, after, next) in [
        ("0 */6 * * *", (2025, 3, 1, 7, 0), (2025, 3, 1, 12, 0)),
        ("0 2 * * *", (2025, 3, 1, 2, 0), (2025, 3, 2, 2, 0)),
        // 2025-03-01 is a Saturday; 0 is Sunday.
        ("0 3 * * 0", (2025, 3, 1, 0, 0), (2025, 3, 2, 3, 0)),
    ] {
        let plan = ok(&format!("{MINIMAL}schedule = \"{expr}\"\n"));
        let schedule = plan.assets[0].schedule.as_ref().unwrap();
        assert_eq!(schedule.expr, expr);
        let at = |(y, mo, d, h, mi)| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap();
        assert_eq!(schedule.next_after(&at(after)), Some(at(next)), "{expr}");
    }
}

#[test]
fn s3_repositories() {
    let files = "[assets.web]\ntype = \"files\"\npaths = [\"/a\"]\n";
    let plan = ok(&format!(
        "{HEAD}[repositories.minio]\nurl = \"s3://backups/team/plan?endpoint=http://127.0.0.1:9000&region=us-east-1\"\n\
         password-env = \"P\"\naccess-key-id-env = \"MINIO_KEY\"\nsecret-access-key-env = \"MINIO_SECRET\"\n\
         [repositories.aws]\nurl = \"s3://archive?region=eu-west-1&storage-class=GLACIER_IR\"\npassword-env = \"P\"\ncopy-from = \"minio\"\n\
         [repositories.garage]\nurl = \"s3://g/p?endpoint=https://garage.example&path-style=false\"\npassword-env = \"P\"\ncopy-from = \"aws\"\n{files}"
    ));
    let minio = plan.repository("minio").unwrap();
    assert_eq!(
        minio.location,
        RepoLocation::S3(S3Location {
            bucket: "backups".into(),
            prefix: "team/plan".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("us-east-1".into()),
            path_style: true,
            storage_class: None,
            timeout: None,
            object_lock: None,
        })
    );
    let creds = minio.s3_credentials.as_ref().unwrap();
    assert_eq!(
        (
            creds.access_key_id_env.as_str(),
            creds.secret_access_key_env.as_str()
        ),
        ("MINIO_KEY", "MINIO_SECRET")
    );
    let RepoLocation::S3(aws) = &plan.repository("aws").unwrap().location else {
        panic!()
    };
    assert_eq!(
        (aws.prefix.as_str(), aws.path_style, aws.endpoint.as_deref()),
        ("", false, None)
    );
    assert_eq!(aws.storage_class.as_deref(), Some("GLACIER_IR"));
    assert!(plan.repository("aws").unwrap().s3_credentials.is_none());
    let RepoLocation::S3(garage) = &plan.repository("garage").unwrap().location else {
        panic!()
    };
    assert!(!garage.path_style);
    assert_eq!(plan.primary().name, "minio");
}

#[test]
fn notifiers_and_steps_get_their_defaults() {
    let plan = ok(&format!(
        "{MINIMAL}[notify.hook]\ntype = \"webhook\"\nurl = \"https://example.com/h\"\n\
         [notify.hc]\ntype = \"healthchecks\"\nurl-file = \"hc-url\"\non = [\"success\", \"failure\", \"success\"]\n\
         [[scenarios]]\nname = \"full\"\ndescription = \"every verb\"\nrto = \"1h\"\nsteps = [\n\
           {{ run = \"systemctl stop app\", timeout = \"30s\" }},\n\
           {{ restore = \"web\", snapshot = \"latest\", to = \"/tmp/restore\", tables = [\"a\"] }},\n\
           {{ restore = \"web\", before = \"2026-12-05 10:00\" }},\n\
           {{ check = \"web\" }},\n\
           {{ http = \"https://app/health\", expect = 204, body = \"ok\", retries = 5, interval = \"10s\" }},\n\
           {{ http = \"https://app/api/smoke\", method = \"post\", headers = {{ X-Probe = \"lifeboat\" }}, bearer-env = \"API_TOKEN\", data = \"{{}}\" }},\n\
           {{ wait = \"pg_isready\", timeout = \"2m\" }},\n\
           {{ confirm = \"Point DNS at the new host\" }},\n\
           {{ notify = \"restored\", target = \"hook\" }},\n\
           {{ notify = \"to everyone\" }},\n]\n"
    ));
    let hook = &plan.notify[0];
    assert_eq!(
        (hook.kind, hook.plain_url.as_deref(), hook.url.as_ref()),
        (NotifyKind::Webhook, Some("https://example.com/h"), None)
    );
    assert_eq!(hook.on, [NotifyEvent::Failure, NotifyEvent::RpoBreach]);
    let hc = &plan.notify[1];
    assert_eq!(hc.url, Some(SecretSource::File("/plans/hc-url".into())));
    assert_eq!(hc.on, [NotifyEvent::Success, NotifyEvent::Failure]);

    let s = &plan.scenarios[0];
    assert_eq!(
        (s.description.as_deref(), s.rto),
        (Some("every verb"), Some(Duration::from_secs(3600)))
    );
    assert_eq!(
        s.steps,
        [
            Step::Run {
                run: "systemctl stop app".into(),
                timeout: Some(Duration::from_secs(30))
            },
            Step::Restore {
                asset: "web".into(),
                snapshot: Some("latest".into()),
                before: None,
                time: None,
                to: Some("/tmp/restore".into()),
                tables: vec!["a".into()],
                from: None,
            },
            Step::Restore {
                asset: "web".into(),
                snapshot: None,
                before: Some("2026-12-05 10:00".into()),
                time: None,
                to: None,
                tables: vec![],
                from: None,
            },
            Step::Check {
                asset: "web".into()
            },
            Step::Http {
                url: "https://app/health".into(),
                method: "GET".into(),
                headers: vec![],
                bearer: None,
                data: None,
                expect: 204,
                body: Some("ok".into()),
                retries: 5,
                interval: Duration::from_secs(10),
            },
            Step::Http {
                url: "https://app/api/smoke".into(),
                method: "POST".into(),
                headers: vec![("X-Probe".into(), "lifeboat".into())],
                bearer: Some(SecretSource::Env("API_TOKEN".into())),
                data: Some("{}".into()),
                expect: 200,
                body: None,
                retries: 0,
                interval: Duration::from_secs(2),
            },
            Step::Wait {
                until: "pg_isready".into(),
                timeout: Duration::from_secs(120),
                interval: Duration::from_secs(2)
            },
            Step::Confirm {
                prompt: "Point DNS at the new host".into()
            },
            Step::Notify {
                message: "restored".into(),
                target: Some("hook".into())
            },
            Step::Notify {
                message: "to everyone".into(),
                target: None
            },
        ]
    );
}

#[test]
fn asset_order_is_file_order() {
    let plan = ok(&format!(
        "{HEAD}[assets.zeta]\ntype = \"sqlite\"\npath = \"/z.db\"\n[assets.alpha]\ntype = \"sqlite\"\npath = \"/a.db\"\n\
         [assets.mid]\ntype = \"postgres\"\nurl = \"postgresql:///mid?host=/run/postgresql\"\njobs = 4\nglobals = true\n"
    ));
    let names: Vec<_> = plan.assets.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
    let AssetSpec::Postgres(mid) = &plan.asset("mid").unwrap().spec else {
        panic!()
    };
    assert_eq!((mid.jobs, mid.globals), (4, true));
}

#[test]
fn validate_name_is_public() {
    assert!(validate_name("orders-db_2").is_ok());
    let e = validate_name("orders=db").unwrap_err();
    assert!(e.message.contains("'=' is not allowed"), "{}", e.message);
    assert!(e.hint.contains("\"orders-db\""), "{}", e.hint);
    // The same rule guards every name in a plan.
    assert!(
        err(&format!(
            "{MINIMAL}[notify.Ops]\ntype = \"webhook\"\nurl = \"https://x\"\n"
        ))
        .contains("notify.Ops: invalid name")
    );
}

#[test]
fn anomaly_thresholds_default_to_half_and_double() {
    let plan = ok(&format!(
        "{MINIMAL}[assets.db]\ntype = \"command\"\nbackup = \"dump\"\nanomaly = {{ below = 0.05 }}\n\
         [assets.logs]\ntype = \"command\"\nbackup = \"tail\"\nanomaly = {{ below = 0.25, above = 3 }}\n"
    ));
    let t = |name: &str| {
        let a = plan.asset(name).unwrap().anomaly;
        (a.below(), a.above())
    };
    assert_eq!(t("web"), (0.5, 2.0));
    assert_eq!(t("db"), (0.05, 2.0));
    // An integer is a number too.
    assert_eq!(t("logs"), (0.25, 3.0));
}

#[test]
fn closest_asset_suggests_a_likely_typo() {
    let plan = ok(&format!(
        "{MINIMAL}[assets.orders]\ntype = \"command\"\nbackup = \"dump\"\n"
    ));
    assert_eq!(plan.closest_asset("oders"), Some("orders"));
    assert_eq!(plan.closest_asset("wbe"), Some("web"));
    assert_eq!(plan.closest_asset("vault"), None);
}

//! `plan check` (errors, warnings, exit codes) and `plan show`, on plans that need no server.

use crate::util::{Sandbox, toml_path};

fn plan(sb: &Sandbox, scenario_step: &str) {
    std::fs::write(sb.join(".env"), "KEY=value\n").unwrap();
    sb.write_plan(&format!(
        r#"[assets.db]
type = "sqlite"
path = {}
priority = "P0"

[assets.env]
type = "files"
paths = [{}]
redact = "values"
schedule = "0 2 * * *"
retention = {{ daily = 7 }}

[[scenarios]]
name = "lost-env"
steps = [{scenario_step}]
"#,
        toml_path(&sb.join("db.sqlite")),
        toml_path(&sb.join(".env")),
    ));
}

#[test]
fn plan_check_separates_errors_from_warnings_and_says_so_in_its_exit_code() {
    let sb = Sandbox::new();
    plan(&sb, "{ restore = \"env\" }");
    let run = sb.run(&["plan", "check"]).expect_code(1);
    let out = &run.stdout;
    assert!(
        out.contains("error: scenarios[0].steps[0]: restores env over its live files"),
        "{out}"
    );
    assert!(out.contains("warning: assets.db: no schedule"), "{out}");
    assert!(out.contains("warning: assets.db: no retention"), "{out}");
    assert!(out.contains("warning: assets.db: no RPO target"), "{out}");
    assert!(
        out.contains("warning: repositories: no off-site copy of the P0 asset(s) db"),
        "{out}"
    );
    assert!(out.contains("warning: notify: no notifier"), "{out}");
    assert!(out.contains("1 error(s), "), "{out}");
    // Nothing was created: no repository, no catalog.
    assert!(!sb.repo().exists());
    assert!(!sb.join(".lifeboat").exists());

    // Restoring the redacted file elsewhere is fine: warnings only, exit 3.
    plan(&sb, "{ restore = \"env\", to = \"/tmp/env-keys\" }");
    let run = sb.run(&["--json", "plan", "check"]).expect_code(3);
    let json = run.json();
    assert!(
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["level"] == "warning"),
        "{json}"
    );

    // An invalid plan is an error naming the key.
    sb.write_plan("[assets.db]\ntype = \"sqlite\"\npath = \"x.db\"\nschedule = \"every day\"\n");
    let run = sb.run(&["plan", "check"]).expect_code(1);
    assert!(run.stderr.contains("assets.db.schedule"), "{}", run.stderr);
}

#[test]
fn plan_show_prints_assets_and_scenarios() {
    let sb = Sandbox::new();
    plan(&sb, "{ restore = \"env\", to = \"/tmp/env-keys\" }");
    let run = sb.run_ok(&["plan", "show"]);
    assert!(run.stdout.contains("assets"), "{}", run.stdout);
    assert!(run.stdout.contains("on demand"), "{}", run.stdout);
    assert!(run.stdout.contains("daily 7"), "{}", run.stdout);
    assert!(run.stdout.contains("lost-env"), "{}", run.stdout);
    let json = sb.run_ok(&["--json", "plan", "show"]).json();
    assert_eq!(json["assets"][0]["name"], "db");
    assert_eq!(json["assets"][0]["priority"], "P0");
    assert_eq!(
        json["scenarios"][0]["steps"][0],
        "restore env into /tmp/env-keys"
    );
}

#[test]
fn recover_names_the_scenarios_it_knows() {
    let sb = Sandbox::new();
    plan(&sb, "{ restore = \"env\", to = \"/tmp/env-keys\" }");
    let run = sb.run(&["recover", "lost-evn"]).expect_code(1);
    assert!(
        run.stderr.contains("unknown scenario lost-evn"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the plan has: lost-env"),
        "{}",
        run.stderr
    );
}

/// A notifier waiting for an event that nothing in the plan raises is a warning; scheduling
/// what raises it clears the warning.
#[test]
fn plan_check_warns_of_events_nothing_raises() {
    let sb = Sandbox::new();
    let base = "[assets.db]\ntype = \"sqlite\"\npath = \"db.sqlite\"\nschedule = \"0 2 * * *\"\nretention = { daily = 7 }\nrpo = \"1d\"\nrto = \"1h\"\n\n\
                [[scenarios]]\nname = \"loss\"\nsteps = [{ restore = \"db\" }]\n\n\
                [notify.ops]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\non = [\"failure\", \"size-anomaly\", \"drill-failed\", \"disk-space\"]\n";
    sb.write_plan(base);
    let run = sb.run(&["plan", "check"]).expect_code(3);
    for (event, raiser) in [
        (
            "size-anomaly",
            "a verify, or a backup outside an asset's size bounds",
        ),
        ("drill-failed", "a drill"),
        ("disk-space", "a backup under [plan] min-free"),
    ] {
        let line = format!(
            "warning: notify.ops.on: waits for {event}, which only {raiser} raises, and the plan has none"
        );
        assert!(run.stdout.contains(&line), "{line}\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("waits for failure"), "{}", run.stdout);

    sb.write_plan(&format!(
        "{base}\n[schedules]\nverify = \"0 3 * * *\"\nscenarios = {{ loss = \"0 9 * 1,4,7,10 5#1\" }}\n"
    ));
    let run = sb.run(&["plan", "check"]).expect_code(3);
    assert!(
        !run.stdout.contains("waits for size-anomaly"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("waits for drill-failed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("waits for disk-space"),
        "{}",
        run.stdout
    );
}

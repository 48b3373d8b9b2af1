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

/// `lifeboat kit`: the page for a day without this host. Its stock-restic commands work as
/// written; no password is in it unless asked for; plan check wants a new one after a change.
#[test]
fn the_recovery_kit_holds_what_a_restore_without_this_host_needs() {
    let sb = Sandbox::new();
    let db = sb.join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let plan = format!(
        "[assets.app]\ntype = \"sqlite\"\npath = {}\npriority = \"P0\"\n\n[assets.site]\ntype = \"files\"\npaths = [{}]\npriority = \"P2\"\n",
        crate::util::toml_path(&db),
        crate::util::toml_path(sb.path())
    );
    sb.write_plan(&plan);
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup", "app"]);
    let before = sb.run(&["plan", "check"]).expect_code(3);
    assert!(
        before
            .stdout
            .contains("warning: kit: no recovery kit written since the plan last changed"),
        "{}",
        before.stdout
    );

    sb.run_ok(&["kit"]);
    let md = std::fs::read_to_string(sb.join(".lifeboat/recovery-kit.md")).unwrap();
    let html = std::fs::read_to_string(sb.join(".lifeboat/recovery-kit.html")).unwrap();
    assert!(
        html.starts_with("<!doctype html>") && html.contains("<style>"),
        "{html}"
    );
    assert!(!html.contains("<script"), "no script in the page");
    assert!(
        md.contains("- Password: from environment variable LB_TEST_PW"),
        "{md}"
    );
    assert!(!md.contains(crate::util::PASSWORD) && !html.contains(crate::util::PASSWORD));
    let app = md.find("| 1 | app | sqlite | P0 |").expect("P0 first");
    let site = md.find("| 2 | site | files | P2 |").expect("then P2");
    assert!(app < site);
    let keys = sb.run_ok(&["--json", "key", "list"]).json();
    let key = &keys[0]["id"].as_str().unwrap()[..8];
    assert!(md.contains(&format!("- Key ids: {key}")), "{md}");
    assert!(md.contains("[assets.app]"), "the plan itself is in the kit");

    // The restic commands, run as the kit writes them with the location it gives, find and
    // restore the snapshot.
    let location = md
        .lines()
        .find_map(|l| l.strip_prefix("- Location (`RESTIC_REPOSITORY`): `"))
        .and_then(|l| l.strip_suffix('`'))
        .expect("the repository's location");
    assert_eq!(location, sb.repo().to_str().unwrap());
    let list = md
        .lines()
        .find(|l| l.starts_with("restic ") && l.contains("asset=app"))
        .expect("a restic snapshots line");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{list} --json"))
        .env("RESTIC_REPOSITORY", location)
        .env("RESTIC_PASSWORD", crate::util::PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = snaps[0]["short_id"].as_str().unwrap();
    let restore = md
        .lines()
        .find(|l| l.starts_with("restic ") && l.contains("restore ID") && l.contains("/app"))
        .expect("a restic restore line")
        .replace("restore ID", &format!("restore {id}"))
        .replace("DIR", sb.join("by-hand").to_str().unwrap());
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&restore)
        .env("RESTIC_REPOSITORY", location)
        .env("RESTIC_PASSWORD", crate::util::PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        sb.join("by-hand/app/data")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );

    let after = sb.run(&["plan", "check"]).expect_code(3);
    assert!(!after.stdout.contains("warning: kit:"), "{}", after.stdout);
    sb.write_plan(&format!("{plan}rpo = \"2h\"\n"));
    let changed = sb.run(&["plan", "check"]).expect_code(3);
    assert!(
        changed.stdout.contains("warning: kit:"),
        "{}",
        changed.stdout
    );

    // Passwords only when confirmed; such a kit is its owner's alone.
    let refused = sb.run(&["kit", "--include-password"]).expect_code(1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let with = sb.join("with-passwords.md");
    sb.run_ok(&[
        "kit",
        "--include-password",
        "--yes",
        "--out",
        with.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&with).unwrap();
    assert!(text.contains(crate::util::PASSWORD));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&with).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

//! `schedule export` for systemd, cron and Kubernetes; `audit verify` on the hash chain.

use std::fs;

use crate::util::{Sandbox, toml_path};

fn plan(sb: &Sandbox) {
    let site = sb.join("site");
    fs::create_dir_all(&site).unwrap();
    sb.write_plan(&format!(
        "[assets.site]\ntype = \"files\"\npaths = [{}]\nschedule = \"0 */6 * * *\"\n\n\
         [assets.db]\ntype = \"postgres\"\nurl = \"postgres://app@db.internal/app\"\npassword-env = \"PG_PW\"\nschedule = \"30 2 * * 1-5\"\n\n\
         [schedules]\ntime-zone = \"Europe/Paris\"\njitter = \"5m\"\nverify = \"0 3 * * *\"\nverify-read-data = \"10%\"\nprune = \"0 5 * * 0\"\n",
        toml_path(&site)
    ));
}

#[test]
fn k8s_export_is_yaml_cronjobs() {
    let sb = Sandbox::new();
    plan(&sb);
    let out = sb.run_ok(&[
        "schedule",
        "export",
        "--format",
        "k8s",
        "--namespace",
        "ops",
    ]);
    let docs = yaml_rust2::YamlLoader::load_from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not YAML: {e}\n{}", out.stdout));
    assert_eq!(docs.len(), 4, "{}", out.stdout);
    for doc in &docs {
        assert_eq!(doc["kind"].as_str(), Some("CronJob"), "{}", out.stdout);
        assert_eq!(doc["apiVersion"].as_str(), Some("batch/v1"));
        assert_eq!(doc["metadata"]["namespace"].as_str(), Some("ops"));
        assert_eq!(doc["spec"]["timeZone"].as_str(), Some("Europe/Paris"));
        assert_eq!(doc["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
        let name = doc["metadata"]["name"].as_str().unwrap();
        assert!(
            name.len() <= 52 && name.starts_with("lifeboat-it-"),
            "{name}"
        );
    }
    let db = &docs[1];
    assert_eq!(db["spec"]["schedule"].as_str(), Some("30 2 * * 1-5"));
    let container = &db["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        ["--config", "/etc/lifeboat/lifeboat.toml", "backup", "db"]
    );
    let env: Vec<&str> = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"PG_PW") && env.contains(&"LB_TEST_PW"),
        "{env:?}"
    );
    assert_eq!(
        container["env"][0]["valueFrom"]["secretKeyRef"]["name"].as_str(),
        Some("lifeboat-secrets")
    );
    let verify =
        &docs[2]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(verify[3].as_str(), Some("--read-data=10%"));
}

#[test]
fn cron_and_systemd_exports() {
    let sb = Sandbox::new();
    plan(&sb);
    let cron = sb
        .run_ok(&[
            "schedule",
            "export",
            "--format",
            "cron",
            "--program",
            "/usr/bin/lifeboat",
        ])
        .stdout;
    let config = sb.plan_path().display().to_string();
    assert!(cron.contains("CRON_TZ=Europe/Paris\n"), "{cron}");
    assert!(
        cron.contains(&format!(
            "0 */6 * * * /usr/bin/lifeboat --config {config} backup site\n"
        )),
        "{cron}"
    );
    // `%` is special in a crontab.
    assert!(cron.contains("verify --read-data=10\\%\n"), "{cron}");

    let dir = sb.join("units");
    let listed = sb
        .run_ok(&[
            "schedule",
            "export",
            "--format",
            "systemd",
            "--output",
            dir.to_str().unwrap(),
        ])
        .stdout;
    assert_eq!(listed.lines().count(), 8, "{listed}");
    let timer = fs::read_to_string(dir.join("lifeboat-it-backup-db.timer")).unwrap();
    assert!(
        timer.contains("OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 2:30:00 Europe/Paris\n"),
        "{timer}"
    );
    assert!(timer.contains("RandomizedDelaySec=300\n"), "{timer}");
    let service = fs::read_to_string(dir.join("lifeboat-it-backup-db.service")).unwrap();
    assert!(service.contains("Type=oneshot\n"), "{service}");
    assert!(service.contains(" backup db\n"), "{service}");
    // systemd itself accepts every calendar expression the export wrote (systemd-analyze is
    // in Debian's systemd package, which CI installs).
    let mut expressions = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "timer") {
            let text = fs::read_to_string(&path).unwrap();
            expressions.extend(
                text.lines()
                    .filter_map(|l| l.strip_prefix("OnCalendar="))
                    .map(str::to_owned),
            );
        }
    }
    assert!(expressions.len() >= 4, "{expressions:?}");
    let check = std::process::Command::new("systemd-analyze")
        .arg("calendar")
        .args(&expressions)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    assert!(
        check.status.success(),
        "{expressions:?}: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn audit_verify_names_the_first_broken_line() {
    let sb = Sandbox::new();
    sb.write_plan("[assets.a]\ntype = \"command\"\nbackup = \"echo a\"\n");
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    sb.run_ok(&["forget"]);
    let ok = sb.run_ok(&["audit", "verify"]);
    assert!(
        ok.stdout.contains("3 line(s), chain intact"),
        "{}",
        ok.stdout
    );

    let path = sb.join(".lifeboat/audit.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[1]["what"], "backup a");
    assert_eq!(lines[1]["outcome"], "ok");
    assert!(
        lines
            .iter()
            .all(|l| l["user"].is_string() && l["host"].is_string())
    );
    assert!(!text.contains(crate::util::PASSWORD));

    // Someone rewrites the backup's outcome.
    let mut raw: Vec<String> = text.lines().map(str::to_owned).collect();
    raw[1] = raw[1].replace("\"outcome\":\"ok\"", "\"outcome\":\"failed\"");
    fs::write(&path, raw.join("\n") + "\n").unwrap();
    let broken = sb.run(&["audit", "verify"]).expect_code(1);
    assert!(
        broken.stderr.contains("line 2 breaks the chain"),
        "{}",
        broken.stderr
    );
    assert!(broken.stderr.contains("edited"), "{}", broken.stderr);

    // The log is also in the repository.
    fs::write(&path, &text).unwrap();
    sb.run_ok(&["audit", "push"]);
    assert_eq!(sb.snapshots_of("_audit").len(), 1);
}

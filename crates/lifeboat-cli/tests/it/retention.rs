//! Retention: keep/remove decisions with reasons, applied by `forget`, then `prune`.

use std::fs;

use serde_json::Value;

use crate::util::{Sandbox, restic, toml_path};

/// `forget --json` output for the one asset named, as its decisions.
fn decisions(report: &Value, asset: &str) -> Vec<Value> {
    report
        .as_array()
        .expect("forget --json is an array")
        .iter()
        .find(|r| r["asset"] == asset)
        .unwrap_or_else(|| panic!("no report for {asset}: {report:#}"))["decisions"]
        .as_array()
        .expect("decisions")
        .clone()
}

fn reasons(d: &Value) -> Vec<&str> {
    d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

fn ids(snaps: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = snaps
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn forget_keeps_last_and_daily_then_prune_and_verify() {
    let sb = Sandbox::new();
    let src = sb.join("src");
    fs::create_dir_all(&src).unwrap();
    sb.write_plan(&format!(
        "[assets.web]\ntype = \"files\"\npaths = [{}]\nretention = {{ last = 2, daily = 3 }}\n",
        toml_path(&src)
    ));
    sb.run_ok(&["init"]);
    for i in 0..6 {
        fs::write(src.join("state.txt"), format!("version {i}\n")).unwrap();
        sb.run_ok(&["backup"]);
    }
    let before = sb.snapshots();
    assert_eq!(before.len(), 6);

    let dry = sb.run_ok(&["--json", "forget", "--dry-run"]).json();
    let ds = decisions(&dry, "web");
    assert_eq!(ds.len(), 6, "{dry:#}");
    assert_eq!(
        sb.snapshots().len(),
        6,
        "forget --dry-run removed snapshots"
    );
    // Newest first.
    let newest_first: Vec<&str> = before
        .iter()
        .rev()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let decided: Vec<&str> = ds.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(decided, newest_first);
    // The 2 newest by `last`; by `daily` the newest of each of 3 (UTC) days, where, as in
    // restic, the oldest snapshot counts as the newest of its day while the rule has room left.
    let day = |d: &Value| d["time"].as_str().unwrap()[..10].to_owned();
    let mut daily_left = 3;
    for (i, d) in ds.iter().enumerate() {
        let mut want = Vec::new();
        if i < 2 {
            want.push("last");
        }
        let first_of_day = i == 0 || day(d) != day(&ds[i - 1]);
        if (first_of_day || i == ds.len() - 1) && daily_left > 0 {
            want.push("daily");
            daily_left -= 1;
        }
        if want.is_empty() {
            assert_eq!(d["keep"], false, "{d:#}");
            assert_eq!(reasons(d), ["matches no keep rule"], "{d:#}");
        } else {
            assert_eq!(d["keep"], true, "{d:#}");
            assert_eq!(reasons(d), want, "{d:#}");
        }
    }
    let kept: Vec<Value> = ds.iter().filter(|d| d["keep"] == true).cloned().collect();
    let text = sb.run_ok(&["forget", "--dry-run"]);
    assert_eq!(
        text.stdout.matches("would remove").count(),
        6 - kept.len(),
        "{}",
        text.stdout
    );

    let applied = sb.run_ok(&["--json", "forget"]).json();
    assert_eq!(decisions(&applied, "web"), ds, "apply decided otherwise");
    assert_eq!(ids(&sb.snapshots()), ids(&kept));

    sb.run_ok(&["prune"]);
    let verify = sb.run_ok(&["--json", "verify", "--read-data"]).json();
    assert_eq!(verify["errors"], serde_json::json!([]), "{verify:#}");
    // The newest state survived the prune.
    let out = sb.join("out");
    sb.run_ok(&["restore", "web", "--to", out.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(crate::util::under(&out, &src).join("state.txt")).unwrap(),
        "version 5\n"
    );
}

/// Snapshots with chosen times, written by restic with Lifeboat's tags.
const HISTORY: &[(&str, &str)] = &[
    ("2023-12-10 09:00:00", "plan=it,asset=web"),
    ("2024-01-01 00:00:00", "plan=other,asset=web"),
    ("2024-01-10 09:00:00", "plan=it,asset=web"),
    ("2024-02-20 09:00:00", "plan=it,asset=web"),
    ("2024-03-05 09:00:00", "plan=it,asset=web"),
    ("2024-03-15 09:00:00", "plan=it,asset=web,safety"),
    ("2024-03-20 09:00:00", "plan=it,asset=web"),
    ("2024-03-27 09:00:00", "plan=it,asset=web"),
    ("2024-03-28 09:00:00", "plan=it,asset=web"),
    ("2024-03-29 08:00:00", "plan=it,asset=web"),
    ("2024-03-29 20:00:00", "plan=it,asset=web"),
    ("2024-03-30 09:00:00", "plan=it,asset=web"),
    ("2024-03-30 12:00:00", "plan=it,asset=web"),
    ("2024-03-30 18:00:00", "plan=it,asset=web"),
];

#[test]
fn retention_decisions_over_a_generated_history() {
    let sb = Sandbox::new();
    let src = sb.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), "a\n").unwrap();
    restic(&sb.repo(), &["init"]).expect_code(0);
    for (time, tags) in HISTORY {
        restic(
            &sb.repo(),
            &[
                "backup",
                "--host",
                "db1",
                "--time",
                time,
                "--tag",
                &format!("lifeboat,kind=files,{tags}"),
                src.to_str().unwrap(),
            ],
        )
        .expect_code(0);
    }
    // Not Lifeboat's: never a candidate for removal.
    restic(
        &sb.repo(),
        &[
            "backup",
            "--time",
            "2024-03-01 00:00:00",
            src.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    sb.write_plan(&format!(
        "[assets.web]\ntype = \"files\"\npaths = [{}]\nretention = {{ last = 2, daily = 3, weekly = 2, monthly = 2, yearly = 2 }}\n",
        toml_path(&src)
    ));

    let report = sb.run_ok(&["--json", "forget", "--dry-run"]).json();
    let golden: String = decisions(&report, "web")
        .iter()
        .map(|d| {
            format!(
                "{} {:<6} {}\n",
                d["time"].as_str().unwrap(),
                if d["keep"] == true { "keep" } else { "remove" },
                reasons(d).join(", ")
            )
        })
        .collect();
    insta::assert_snapshot!(golden, @r"
2024-03-30T18:00:00Z keep   last, daily, weekly, monthly, yearly
2024-03-30T12:00:00Z keep   last
2024-03-30T09:00:00Z remove matches no keep rule
2024-03-29T20:00:00Z keep   daily
2024-03-29T08:00:00Z remove matches no keep rule
2024-03-28T09:00:00Z keep   daily
2024-03-27T09:00:00Z remove matches no keep rule
2024-03-20T09:00:00Z keep   weekly
2024-03-15T09:00:00Z remove safety snapshot older than 30 days
2024-03-05T09:00:00Z remove matches no keep rule
2024-02-20T09:00:00Z keep   monthly
2024-01-10T09:00:00Z remove matches no keep rule
2023-12-10T09:00:00Z keep   yearly
");

    let kept: Vec<String> = decisions(&report, "web")
        .iter()
        .filter(|d| d["keep"] == true)
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    sb.run_ok(&["forget"]);
    let left = restic(&sb.repo(), &["snapshots", "--json"])
        .expect_code(0)
        .json();
    let left = left.as_array().unwrap();
    let left_times: Vec<&str> = left.iter().map(|s| s["time"].as_str().unwrap()).collect();
    assert_eq!(left.len(), kept.len() + 2, "{left_times:#?}");
    for id in &kept {
        assert!(
            left.iter().any(|s| s["id"] == id.as_str()),
            "{id} was removed"
        );
    }
    assert!(
        left_times.contains(&"2024-01-01T00:00:00Z"),
        "another plan's snapshot was removed"
    );
    assert!(
        left_times.contains(&"2024-03-01T00:00:00Z"),
        "restic's own snapshot was removed"
    );
}

/// A repository's own `retention` replaces the assets' rules there: the local repository
/// keeps one snapshot, its copy three; `--every-repository` (the daemon's way) applies both,
/// and exported schedules forget and prune every repository too.
#[test]
fn each_repository_keeps_snapshots_by_its_own_rules() {
    let sb = Sandbox::new();
    let data = sb.join("data.txt");
    let offsite = sb.join("offsite");
    sb.write_raw_plan(&format!(
        "version = 1\n[plan]\nname = \"it\"\n\n\
         [repositories.main]\nurl = {}\npassword-env = \"{}\"\n\n\
         [repositories.offsite]\nurl = {}\npassword-env = \"{}\"\ncopy-from = \"main\"\nretention = {{ last = 3 }}\n\n\
         [assets.data]\ntype = \"files\"\npaths = [{}]\nretention = {{ last = 1 }}\n\n\
         [schedules]\nforget = \"0 4 * * *\"\nprune = \"0 5 * * 0\"\n",
        crate::util::toml_path(&sb.repo()),
        crate::util::PASSWORD_ENV,
        crate::util::toml_path(&offsite),
        crate::util::PASSWORD_ENV,
        crate::util::toml_path(&data),
    ));
    sb.run_ok(&["init"]);
    for i in 0..4 {
        fs::write(&data, format!("version {i}")).unwrap();
        sb.run_ok(&["backup"]);
    }
    let count = |repo: &std::path::Path| {
        crate::util::restic(repo, &["snapshots", "--json", "--tag", "asset=data"])
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!((count(&sb.repo()), count(&offsite)), (4, 4));

    let report = sb
        .run_ok(&["--json", "forget", "--every-repository"])
        .json();
    let repos: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(repos, ["main", "offsite"]);
    assert_eq!(count(&sb.repo()), 1, "the asset's rule in the primary");
    assert_eq!(count(&offsite), 3, "the copy's own rule");
    sb.run_ok(&["prune", "--every-repository"]);
    crate::util::restic(&offsite, &["check"]).expect_code(0);

    let status = sb.run(&["--json", "status"]).json();
    assert_eq!(
        status[0]["copies"][0]["repository"], "offsite",
        "{status:#}"
    );
    assert_eq!(status[0]["copies"][0]["retention"], "last 3", "{status:#}");
    // The text table says it too, in the copy's row.
    let text = sb.run(&["status"]).stdout;
    let row = text
        .lines()
        .skip_while(|l| !l.starts_with("repository offsite"))
        .find(|l| l.starts_with("data "))
        .unwrap_or_else(|| panic!("no row for data under repository offsite:\n{text}"));
    assert!(row.contains("last 3"), "{row}");

    let cron = sb.run_ok(&["schedule", "export", "--format", "cron"]);
    assert!(
        cron.stdout.contains("forget --every-repository"),
        "{}",
        cron.stdout
    );
    assert!(
        cron.stdout.contains("prune --every-repository"),
        "{}",
        cron.stdout
    );
}

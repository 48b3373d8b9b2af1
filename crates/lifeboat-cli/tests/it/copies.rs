//! 3-2-1: a local primary copied to an S3 repository (moto on 127.0.0.1), copies verified on
//! their own, and status showing how far each copy lags.

use std::{fs, thread, time::Duration};

use lifeboat_testing::{MotoServer, write_fixture_tree};
use serde_json::Value;

use crate::util::{PASSWORD_ENV, Run, Sandbox, assert_same_tree, toml_path, toml_str, under};

const BUCKET: &str = "lifeboat-copies";

/// A plan: `main` (local, primary) and `offsite` (S3); `offsite` copies `main` unless
/// `copying` is false. Assets: files `web`, command `vault`, both with the given rpo.
fn plan(sb: &Sandbox, s3: &MotoServer, copying: bool, rpo: &str) {
    let url = format!(
        "s3://{BUCKET}/dr?endpoint={}&region=us-east-1&path-style=true",
        s3.endpoint()
    );
    let copy_from = if copying {
        "copy-from = \"main\"\n"
    } else {
        ""
    };
    sb.write_raw_plan(&format!(
        "version = 1\n[plan]\nname = \"it\"\nrpo = \"{rpo}\"\n\n\
         [repositories.main]\nurl = {}\npassword-env = \"{PASSWORD_ENV}\"\n\n\
         [repositories.offsite]\nurl = {}\npassword-env = \"{PASSWORD_ENV}\"\n{copy_from}\n\
         [assets.web]\ntype = \"files\"\npaths = [{}]\n\n\
         [assets.vault]\ntype = \"command\"\nbackup = {}\n",
        toml_path(&sb.repo()),
        toml_str(&url),
        toml_path(&sb.join("src")),
        toml_str(&format!("cat {}", sb.join("vault.txt").display())),
    ));
}

fn run_s3(sb: &Sandbox, s3: &MotoServer, args: &[&str]) -> Run {
    let mut cmd = sb.cmd(args);
    for (k, v) in s3.aws_env() {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

fn copy_of<'a>(status: &'a Value, asset: &str) -> &'a Value {
    let row = status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["asset"] == asset)
        .unwrap_or_else(|| panic!("no status row for {asset}: {status:#}"));
    &row["copies"][0]
}

#[test]
fn copies_follow_backups_lag_is_reported_and_each_copy_verifies_alone() {
    let s3 = MotoServer::start().expect("start moto_server");
    s3.create_bucket(BUCKET).unwrap();
    let sb = Sandbox::new();
    write_fixture_tree(&sb.join("src"));
    fs::write(sb.join("vault.txt"), "v1\n").unwrap();
    plan(&sb, &s3, true, "1h");
    run_s3(&sb, &s3, &["init"]).expect_code(0);

    // Each backup is copied at its end.
    let backup = run_s3(&sb, &s3, &["--json", "backup"])
        .expect_code(0)
        .json();
    assert_eq!(backup["copies"][0]["repository"], "offsite", "{backup:#}");
    assert_eq!(backup["copies"][0]["copied"], 2, "{backup:#}");
    let offsite = run_s3(&sb, &s3, &["--repo", "offsite", "--json", "snapshots"])
        .expect_code(0)
        .json();
    assert_eq!(offsite.as_array().unwrap().len(), 2, "{offsite:#}");

    // status: every copy up to date.
    let status = run_s3(&sb, &s3, &["--json", "status"])
        .expect_code(0)
        .json();
    let web = copy_of(&status, "web");
    assert_eq!(web["repository"], "offsite");
    assert_eq!(web["lag_secs"].as_u64(), Some(0));
    assert_eq!(web["breach"], false);
    let text = run_s3(&sb, &s3, &["status"]).expect_code(0).stdout;
    assert!(text.contains("repository offsite (copy of main)"), "{text}");

    // The copy verifies on its own, data included, and restores byte for byte.
    run_s3(&sb, &s3, &["--repo", "offsite", "verify", "--read-data"]).expect_code(0);
    let out = sb.join("from-offsite");
    run_s3(
        &sb,
        &s3,
        &[
            "--repo",
            "offsite",
            "restore",
            "web",
            "--to",
            out.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    assert_same_tree(&sb.join("src"), &under(&out, &sb.join("src")));
    let dumped = run_s3(&sb, &s3, &["--repo", "offsite", "dump", "vault"]).expect_code(0);
    assert_eq!(dumped.stdout, "v1\n");

    // Backups while the copy is switched off: the copy falls behind; with a 1s rpo that lag
    // is a breach (exit 3).
    thread::sleep(Duration::from_secs(2));
    fs::write(sb.join("vault.txt"), "v2\n").unwrap();
    plan(&sb, &s3, false, "1s");
    run_s3(&sb, &s3, &["backup"]).expect_code(0);
    plan(&sb, &s3, true, "1s");
    let behind = run_s3(&sb, &s3, &["--json", "status"])
        .expect_code(3)
        .json();
    let vault = copy_of(&behind, "vault");
    assert_eq!(vault["breach"], true, "{behind:#}");
    assert!(vault["lag_secs"].as_u64() >= Some(2), "{behind:#}");

    // `copy` catches up on everything the copy lacks.
    let copied = run_s3(&sb, &s3, &["--json", "copy"]).expect_code(0).json();
    assert_eq!(copied[0]["copied"], 2, "{copied:#}");
    let again = run_s3(
        &sb,
        &s3,
        &["--json", "copy", "--from", "main", "--to", "offsite"],
    )
    .expect_code(0)
    .json();
    assert_eq!(again[0]["copied"], 0, "nothing left to copy: {again:#}");
    let caught_up = run_s3(&sb, &s3, &["--json", "status"]).json();
    assert_eq!(
        copy_of(&caught_up, "vault")["breach"],
        false,
        "{caught_up:#}"
    );
    let dumped = run_s3(&sb, &s3, &["--repo", "offsite", "dump", "vault"]).expect_code(0);
    assert_eq!(dumped.stdout, "v2\n");

    // Copies keep deduplication: the copy is about the size of the primary.
    let primary_bytes: u64 = walk_size(&sb.repo());
    let copy_bytes: u64 = s3
        .list_keys(BUCKET, "dr/data/")
        .unwrap()
        .iter()
        .map(|k| s3.get_object(BUCKET, k).map_or(0, |b| b.len() as u64))
        .sum();
    assert!(
        copy_bytes <= primary_bytes * 11 / 10,
        "copy {copy_bytes} B vs primary {primary_bytes} B"
    );

    // Bad names are usage errors that list the plan's repositories.
    let bad = run_s3(&sb, &s3, &["copy", "--from", "main", "--to", "offsite2"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("unknown repository offsite2") && bad.stderr.contains("main, offsite"),
        "{}",
        bad.stderr
    );
}

fn walk_size(dir: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(dir.join("data"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

//! Copies an attacker cannot delete: an off-site copy in a bucket with S3 Object Lock (moto
//! enforces it). The attack is played by boto3, not by Lifeboat: deletes with the host's own
//! keys, as `aws s3 rm --recursive` would send them, and a delete of a locked pack's version.

use std::{fs, process::Command};

use lifeboat_testing::MotoServer;
use serde_json::Value;

use crate::util::{PASSWORD, PASSWORD_ENV, Run, Sandbox, toml_path, toml_str};

const BUCKET: &str = "vault";

fn setup(s3: &MotoServer, sb: &Sandbox) {
    fs::create_dir_all(sb.join("data/docs")).unwrap();
    fs::write(sb.join("data/docs/contract.txt"), "signed on the 5th\n").unwrap();
    fs::write(sb.join("data/ledger.csv"), "id,amount\n1,100\n").unwrap();
    let url = format!(
        "s3://{BUCKET}/lb?endpoint={}&region=us-east-1",
        s3.endpoint()
    );
    sb.write_plan(&format!(
        "[repositories.offsite]\nurl = {}\npassword-env = \"{PASSWORD_ENV}\"\ncopy-from = \"main\"\nobject-lock = \"1d\"\nretention = {{ last = 1 }}\n\n\
         [assets.files]\ntype = \"files\"\npaths = [{}]\npriority = \"P0\"\n",
        toml_str(&url),
        toml_path(&sb.join("data")),
    ));
}

fn run(s3: &MotoServer, sb: &Sandbox, args: &[&str]) -> Run {
    let mut cmd = sb.cmd(args);
    cmd.envs(s3.aws_env());
    Run::from(cmd.output().unwrap())
}

/// restic on the copy in the bucket.
fn restic_s3(s3: &MotoServer, args: &[&str]) -> Run {
    let out = Command::new("restic")
        .arg("-r")
        .arg(format!("s3:{}/{BUCKET}/lb", s3.endpoint()))
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .envs(s3.aws_env())
        .output()
        .expect("run restic");
    Run::from(out)
}

/// boto3, with the same keys the host has: deletes every object of the copy, then tries to
/// delete the stored version of one data pack. Prints what happened as JSON.
const ATTACK: &str = r#"
import boto3, json, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="vault")
        for o in page.get("Contents", [])]
for k in keys:
    s3.delete_object(Bucket="vault", Key=k)
left = s3.list_objects_v2(Bucket="vault").get("KeyCount", 0)
pack = next(k for k in keys if k.startswith("lb/data/"))
version = next(v["VersionId"] for v in s3.list_object_versions(Bucket="vault", Prefix=pack)["Versions"])
try:
    s3.delete_object(Bucket="vault", Key=pack, VersionId=version)
    refused = None
except Exception as e:
    refused = str(e)
print(json.dumps({"deleted": len(keys), "left": left, "version_delete_refused": refused}))
"#;

#[test]
fn a_locked_copy_survives_deletes_with_the_hosts_keys_and_undelete_brings_it_back() {
    let s3 = MotoServer::start().expect("start moto_server");
    s3.create_locked_bucket(BUCKET, 1).unwrap();
    let sb = Sandbox::new();
    setup(&s3, &sb);
    run(&s3, &sb, &["init"]).expect_code(0);
    for change in ["2,250\n", "3,75\n"] {
        let mut ledger = fs::read_to_string(sb.join("data/ledger.csv")).unwrap();
        ledger.push_str(change);
        fs::write(sb.join("data/ledger.csv"), &ledger).unwrap();
        let backup = run(&s3, &sb, &["--json", "backup"]).expect_code(0).json();
        assert_eq!(backup["copies"][0]["error"], Value::Null, "{backup:#}");
    }
    let expected = fs::read_to_string(sb.join("data/ledger.csv")).unwrap();
    let listed = |r: Run| r.expect_code(0).json().as_array().unwrap().len();
    assert_eq!(listed(restic_s3(&s3, &["snapshots", "--json"])), 2);

    // The status says which copy is immutable.
    let status = run(&s3, &sb, &["status"]).expect_code(0).stdout;
    assert!(
        status.contains("repository offsite (copy of main; immutable: Object Lock, 1 days)"),
        "{status}"
    );

    // Retention there says `last = 1`, but the older snapshot is locked for a day: kept.
    let forget = run(&s3, &sb, &["--repo", "offsite", "--json", "forget"])
        .expect_code(0)
        .json();
    let decisions = forget[0]["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2, "{forget:#}");
    assert!(decisions.iter().all(|d| d["keep"] == true), "{forget:#}");
    assert!(
        decisions.iter().any(|d| d["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("object lock until")),
        "{forget:#}"
    );
    assert_eq!(listed(restic_s3(&s3, &["snapshots", "--json"])), 2);

    // The attack, with the host's keys.
    let before_attack = jiff::Timestamp::now().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = Command::new("python3")
        .args(["-c", ATTACK, &s3.endpoint()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attack: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(attack["deleted"].as_u64().unwrap() > 5, "{attack}");
    assert_eq!(attack["left"], 0, "every object looks deleted: {attack}");
    assert!(
        attack["version_delete_refused"]
            .as_str()
            .is_some_and(|e| e.contains("AccessDenied")),
        "a locked pack's version was deleted: {attack}"
    );
    // restic sees no repository there any more.
    assert_ne!(restic_s3(&s3, &["snapshots"]).code, 0);

    let undo = run(
        &s3,
        &sb,
        &[
            "--repo",
            "offsite",
            "--json",
            "undelete",
            "--since",
            &before_attack,
        ],
    )
    .expect_code(0)
    .json();
    assert!(
        undo["undeleted"]["restored"]["data"].as_u64().unwrap() >= 1,
        "{undo:#}"
    );
    assert_eq!(undo["undeleted"]["restored"]["config"], 1, "{undo:#}");

    // Whole again, by restic's own check, and it restores the newest ledger.
    restic_s3(&s3, &["check", "--read-data"]).expect_code(0);
    assert_eq!(listed(restic_s3(&s3, &["snapshots", "--json"])), 2);
    let target = sb.join("from-copy");
    restic_s3(
        &s3,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .expect_code(0);
    let data = sb.join("data");
    let restored = crate::util::under(&target.join("files/files"), &data.join("ledger.csv"));
    assert_eq!(fs::read_to_string(restored).unwrap(), expected);
}

#[test]
fn a_copy_into_a_bucket_that_does_not_lock_is_refused() {
    let s3 = MotoServer::start().expect("start moto_server");
    s3.create_bucket(BUCKET).unwrap();
    let sb = Sandbox::new();
    setup(&s3, &sb);
    run(&s3, &sb, &["init"]).expect_code(0);
    let backup = run(&s3, &sb, &["--json", "backup"]).json();
    let copy = &backup["copies"][0];
    assert!(
        copy["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not lock what it keeps")),
        "{backup:#}"
    );
    assert!(
        copy["hint"]
            .as_str()
            .is_some_and(|h| h.contains("Object Lock")),
        "{backup:#}"
    );
    // Nothing was copied into the unlocked bucket: no snapshot there.
    let snapshots: Vec<String> = s3
        .list_keys(BUCKET, "lb/snapshots/")
        .unwrap()
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .collect();
    assert!(snapshots.is_empty(), "{snapshots:?}");
}

//! An S3 repository on a server started for the test on 127.0.0.1 that checks every
//! request's signature (`s3s-fs`): the right keys are proven right, and a wrong one fails.

use std::fs;

use lifeboat_testing::{SigningS3, write_fixture_tree, write_large_file};

use crate::util::{Run, Sandbox, assert_same_tree, toml_path, toml_str, under};

const BUCKET: &str = "lifeboat-it";

#[test]
fn s3_repository_round_trip() {
    let s3 = SigningS3::start().expect("start s3s-fs");
    s3.create_bucket(BUCKET).unwrap();
    let sb = Sandbox::new();
    let src = sb.join("src");
    write_fixture_tree(&src);
    let artifact = sb.join("artifact.bin");
    write_large_file(&artifact, 2_500_000, 11);
    let url = format!(
        "s3://{BUCKET}/lifeboat?endpoint={}&region=us-east-1",
        s3.endpoint()
    );
    sb.write_plan_with_url(
        &toml_str(&url),
        &format!(
            "[assets.web]\ntype = \"files\"\npaths = [{}]\n\n[assets.vault]\ntype = \"command\"\nbackup = {}\nfilename = \"vault.snap\"\n",
            toml_path(&src),
            toml_str(&format!("cat {}", artifact.display())),
        ),
    );
    let run = |args: &[&str]| {
        let mut cmd = sb.cmd(args);
        for (k, v) in s3.aws_env() {
            cmd.env(k, v);
        }
        Run::from(cmd.output().unwrap())
    };

    // Before init: no repository (10), and nothing written to the bucket.
    assert_eq!(run(&["snapshots"]).code, 10);
    assert!(s3.list_keys(BUCKET, "").is_empty());

    run(&["init"]).expect_code(0);
    let backup = run(&["--json", "backup"]).expect_code(0).json();
    assert!(
        backup["assets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["ok"] == true),
        "{backup:#}"
    );

    // Objects only, not the directory markers the backend creates.
    let keys: Vec<String> = s3
        .list_keys(BUCKET, "lifeboat/")
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .collect();
    assert!(keys.contains(&"lifeboat/config".to_owned()), "{keys:#?}");
    for dir in ["keys/", "snapshots/", "index/", "data/"] {
        let prefix = format!("lifeboat/{dir}");
        assert!(
            keys.iter().any(|k| k.starts_with(&prefix)),
            "nothing under {prefix}: {keys:#?}"
        );
    }
    let snapshot_keys = keys
        .iter()
        .filter(|k| k.starts_with("lifeboat/snapshots/"))
        .count();
    assert_eq!(snapshot_keys, 2, "{keys:#?}");
    let outside: Vec<String> = s3
        .list_keys(BUCKET, "")
        .into_iter()
        .filter(|k| !k.starts_with("lifeboat/"))
        .collect();
    assert!(
        outside.is_empty(),
        "objects outside the prefix: {outside:?}"
    );

    let text = run(&["snapshots"]).expect_code(0);
    assert!(
        text.stdout.contains("web") && text.stdout.contains("vault"),
        "{}",
        text.stdout
    );
    let listed = run(&["--json", "snapshots"]).expect_code(0).json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed:#}");

    let out = sb.join("out");
    run(&["restore", "web", "--to", out.to_str().unwrap()]).expect_code(0);
    assert_same_tree(&src, &under(&out, &src));
    let dump = run(&["dump", "vault"]).expect_code(0);
    assert!(
        dump.stdout_bytes == fs::read(&artifact).unwrap(),
        "artifact differs"
    );
    let verify = run(&["--json", "verify", "--read-data"])
        .expect_code(0)
        .json();
    assert_eq!(verify["errors"], serde_json::json!([]), "{verify:#}");
    assert_eq!(verify["artifacts_verified"], 1, "{verify:#}");
}

/// Keys from a profile in `~/.aws/credentials` (`AWS_PROFILE`), as the AWS tools read them,
/// when neither the plan nor the environment gives any. Without keys at all the store refuses
/// and the error names the repository.
#[test]
fn s3_keys_come_from_an_aws_profile_file() {
    let s3 = SigningS3::start().expect("start s3s-fs");
    s3.create_bucket(BUCKET).unwrap();
    let sb = Sandbox::new();
    let src = sb.join("src");
    write_fixture_tree(&src);
    let url = format!(
        "s3://{BUCKET}/profiled?endpoint={}&region=us-east-1",
        s3.endpoint()
    );
    sb.write_plan_with_url(
        &toml_str(&url),
        &format!(
            "[assets.web]\ntype = \"files\"\npaths = [{}]\n",
            toml_path(&src)
        ),
    );
    let home = sb.join("home");
    fs::create_dir_all(home.join(".aws")).unwrap();
    fs::write(
        home.join(".aws/credentials"),
        format!(
            "[backup]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [stale]\naws_access_key_id = {}\naws_secret_access_key = not-the-secret\n",
            s3.access_key(),
            s3.secret_key(),
            s3.access_key()
        ),
    )
    .unwrap();
    let run = |profile: Option<&str>, args: &[&str]| {
        let mut cmd = sb.cmd(args);
        cmd.env("HOME", &home)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env_remove("AWS_CONFIG_FILE");
        match profile {
            Some(p) => cmd.env("AWS_PROFILE", p),
            None => cmd.env_remove("AWS_PROFILE"),
        };
        Run::from(cmd.output().unwrap())
    };
    run(Some("backup"), &["init"]).expect_code(0);
    run(Some("backup"), &["backup"]).expect_code(0);
    let out = sb.join("out");
    run(
        Some("backup"),
        &["restore", "web", "--to", out.to_str().unwrap()],
    )
    .expect_code(0);
    assert_same_tree(&src, &under(&out, &src));

    // The server checks signatures: a profile with a wrong secret is refused.
    let stale = run(Some("stale"), &["snapshots"]);
    assert_ne!(stale.code, 0, "{}", stale.stdout);
    assert!(
        stale.stderr.contains("repository main")
            && stale.stderr.contains("hint: the S3 store refused the keys"),
        "{}",
        stale.stderr
    );

    let anonymous = run(None, &["snapshots"]);
    assert_ne!(anonymous.code, 0, "{}", anonymous.stdout);
    assert!(
        anonymous.stderr.contains("repository main")
            && anonymous.stderr.contains("hint: no S3 keys found"),
        "{}",
        anonymous.stderr
    );
}

/// Every job against a server that checks signatures, and the same plan with a wrong secret or
/// an unknown key id: refused, naming the repository, and nothing written.
#[test]
fn signed_requests_for_every_job_and_wrong_keys_refused() {
    let s3 = SigningS3::start().expect("start s3s-fs");
    s3.create_bucket(BUCKET).unwrap();
    let sb = Sandbox::new();
    let src = sb.join("src");
    write_fixture_tree(&src);
    fs::write(sb.join("db.txt"), "rows\n").unwrap();
    let url = format!(
        "s3://{BUCKET}/signed?endpoint={}&region=us-east-1",
        s3.endpoint()
    );
    sb.write_plan_with_url(
        &toml_str(&url),
        &format!(
            "[assets.web]\ntype = \"files\"\npaths = [{}]\nretention = {{ last = 1 }}\n\n\
             [assets.db]\ntype = \"command\"\nbackup = {}\nretention = {{ last = 1 }}\n",
            toml_path(&src),
            toml_str(&format!("cat {}", sb.join("db.txt").display())),
        ),
    );
    let run = |keys: &[(String, String)], args: &[&str]| {
        let mut cmd = sb.cmd(args);
        cmd.envs(keys.iter().map(|(k, v)| (k, v)));
        Run::from(cmd.output().unwrap())
    };
    let right = s3.aws_env();
    for args in [
        &["init"][..],
        &["backup"],
        &["backup"],
        &["snapshots"],
        &["verify", "--read-data"],
        &["dump", "db"],
        &["forget"],
        &["prune"],
        &["unlock"],
    ] {
        run(&right, args).expect_code(0);
    }
    let out = sb.join("out");
    run(&right, &["restore", "web", "--to", out.to_str().unwrap()]).expect_code(0);
    assert_same_tree(&src, &under(&out, &src));

    let before = s3.list_keys(BUCKET, "");
    let with = |key: &str, secret: &str| {
        vec![
            ("AWS_ACCESS_KEY_ID".to_owned(), key.to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), secret.to_owned()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ]
    };
    for keys in [
        with(s3.access_key(), "a-wrong-secret"),
        with("AKIDUNKNOWN", s3.secret_key()),
    ] {
        for args in [&["snapshots"][..], &["backup"]] {
            let refused = run(&keys, args);
            assert_ne!(refused.code, 0, "{args:?}: {}", refused.stdout);
            let all = format!("{}{}", refused.stdout, refused.stderr);
            assert!(
                all.contains("repository main")
                    && all.contains("hint: the S3 store refused the keys"),
                "{args:?}: {all}"
            );
            assert!(!all.contains(s3.secret_key()), "{all}");
        }
    }
    assert_eq!(
        s3.list_keys(BUCKET, ""),
        before,
        "a refused job wrote nothing"
    );
}

/// `storage-class` applies to data packs only: the index, snapshots, keys and config stay
/// in the standard class (moto records each object's class), so the repository can always be
/// listed and opened; the data still reads back.
#[test]
fn storage_class_applies_to_data_packs_only() {
    let s3 = lifeboat_testing::MotoServer::start().expect("start moto_server");
    s3.create_bucket(BUCKET).unwrap();
    let sb = Sandbox::new();
    let artifact = sb.join("artifact.bin");
    write_large_file(&artifact, 3_000_000, 5);
    let url = format!(
        "s3://{BUCKET}/dr?endpoint={}&region=us-east-1&path-style=true&storage-class=STANDARD_IA",
        s3.endpoint()
    );
    sb.write_plan_with_url(
        &toml_str(&url),
        &format!(
            "[assets.vault]\ntype = \"command\"\nbackup = {}\nfilename = \"vault.snap\"\n",
            toml_str(&format!("cat {}", artifact.display())),
        ),
    );
    let run = |args: &[&str]| {
        let mut cmd = sb.cmd(args);
        cmd.envs(s3.aws_env());
        Run::from(cmd.output().unwrap())
    };
    run(&["init"]).expect_code(0);
    run(&["backup"]).expect_code(0);

    let objects: Vec<(String, String)> = s3
        .list_objects(BUCKET, "dr/")
        .unwrap()
        .into_iter()
        .filter(|(k, _)| !k.ends_with('/'))
        .collect();
    let (packs, rest): (Vec<_>, Vec<_>) =
        objects.iter().partition(|(k, _)| k.starts_with("dr/data/"));
    assert!(!packs.is_empty(), "{objects:?}");
    for (key, class) in &packs {
        assert_eq!(class, "STANDARD_IA", "{key}");
    }
    for dir in ["dr/config", "dr/keys/", "dr/index/", "dr/snapshots/"] {
        assert!(
            rest.iter().any(|(k, _)| k.starts_with(dir)),
            "no {dir} in {objects:?}"
        );
    }
    for (key, class) in &rest {
        assert_eq!(class, "STANDARD", "{key}");
    }
    let dumped = run(&["dump", "vault"]).expect_code(0);
    assert!(
        dumped.stdout_bytes == fs::read(&artifact).unwrap(),
        "the artifact reads back"
    );
}

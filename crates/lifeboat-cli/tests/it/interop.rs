//! Interop with Debian's restic 0.14, both ways.

use std::fs;

use lifeboat_testing::{write_fixture_tree, write_large_file};
use serde_json::Value;

use crate::util::{Sandbox, assert_same_tree, restic, tags, toml_path, toml_str, under};

#[test]
fn restic_lists_checks_and_restores_a_lifeboat_repository() {
    let sb = Sandbox::new();
    let src = sb.join("src");
    write_fixture_tree(&src);
    let artifact = sb.join("artifact.bin");
    write_large_file(&artifact, 1_500_000, 3);
    sb.write_plan(&format!(
        "[assets.web]\ntype = \"files\"\npaths = [{}]\n\n[assets.vault]\ntype = \"command\"\nbackup = {}\nfilename = \"vault.snap\"\n",
        toml_path(&src),
        toml_str(&format!("cat {}", artifact.display())),
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    let ours = sb.snapshots();

    let listed = restic(&sb.repo(), &["snapshots", "--json"])
        .expect_code(0)
        .json();
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.len(), 2, "{listed:#?}");
    for asset in ["web", "vault"] {
        let tag = format!("asset={asset}");
        let snap = listed
            .iter()
            .find(|s| tags(s).contains(&tag.as_str()))
            .unwrap_or_else(|| panic!("restic lists no snapshot tagged {tag}: {listed:#?}"));
        let t = tags(snap);
        assert!(t.contains(&"lifeboat"), "{t:?}");
        assert!(t.contains(&"plan=it"), "{t:?}");
        assert_eq!(snap["paths"], serde_json::json!([format!("/{asset}")]));
        let lifeboat_id = &ours.iter().find(|s| s["asset"] == asset).unwrap()["id"];
        assert_eq!(&snap["id"], lifeboat_id);
    }

    let check = restic(&sb.repo(), &["check", "--read-data"]).expect_code(0);
    assert!(check.stdout.contains("no errors"), "{}", check.stdout);

    let out = sb.join("out");
    let web = listed
        .iter()
        .find(|s| tags(s).contains(&"asset=web"))
        .unwrap();
    restic(
        &sb.repo(),
        &[
            "restore",
            web["short_id"].as_str().unwrap(),
            "--target",
            out.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    assert_same_tree(&src, &under(&out.join("web/files"), &src));
    assert!(out.join("web/lifeboat-manifest.json").is_file());
}

/// A command asset and a repository holding its snapshot, for restic to read.
fn command_asset_backed_up(sb: &Sandbox) -> Vec<u8> {
    let artifact = sb.join("artifact.bin");
    write_large_file(&artifact, 1_500_000, 3);
    sb.write_plan(&format!(
        "[assets.vault]\ntype = \"command\"\nbackup = {}\nfilename = \"vault.snap\"\n",
        toml_str(&format!("cat {}", artifact.display())),
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    fs::read(&artifact).unwrap()
}

#[test]
fn restic_restores_command_artifacts_and_manifests() {
    let sb = Sandbox::new();
    let want = command_asset_backed_up(&sb);
    let out = sb.join("out");
    restic(
        &sb.repo(),
        &["restore", "latest", "--target", out.to_str().unwrap()],
    )
    .expect_code(0);
    let got = fs::read(out.join("vault/data/vault.snap")).unwrap();
    assert_eq!(got.len(), want.len(), "restic restored the artifact's size");
    assert!(got == want, "restic restored other bytes for the artifact");
    // The manifest travels with each snapshot, readable without Lifeboat.
    let manifest: Value =
        serde_json::from_slice(&fs::read(out.join("vault/lifeboat-manifest.json")).unwrap())
            .expect("restic restored the manifest");
    assert_eq!(manifest["asset"], "vault", "{manifest:#}");
    assert_eq!(manifest["artifacts"][0]["size"], want.len(), "{manifest:#}");
}

#[test]
fn restic_dumps_command_artifacts() {
    let sb = Sandbox::new();
    let want = command_asset_backed_up(&sb);
    let dump = restic(&sb.repo(), &["dump", "latest", "/vault/data/vault.snap"]).expect_code(0);
    assert!(dump.stdout_bytes == want, "restic dump gave other bytes");
    restic(&sb.repo(), &["dump", "latest", "/"]).expect_code(0);
}

#[test]
fn lifeboat_lists_and_restores_a_restic_repository() {
    let sb = Sandbox::new();
    let dir = sb.join("plain");
    write_fixture_tree(&dir);
    restic(&sb.repo(), &["init"]).expect_code(0);
    restic(&sb.repo(), &["backup", dir.to_str().unwrap()]).expect_code(0);
    let theirs = restic(&sb.repo(), &["snapshots", "--json"])
        .expect_code(0)
        .json();
    let short = theirs[0]["short_id"].as_str().unwrap().to_owned();

    sb.write_plan(&format!(
        "[assets.web]\ntype = \"files\"\npaths = [{}]\n",
        toml_path(&sb.join("elsewhere"))
    ));
    let snaps = sb.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:#?}");
    assert_eq!(snaps[0]["asset"], Value::Null);
    assert_eq!(snaps[0]["short_id"], short.as_str());
    assert_eq!(snaps[0]["id"], theirs[0]["id"]);
    let text = sb.run_ok(&["snapshots"]);
    assert!(
        text.stdout.contains("not written by Lifeboat"),
        "{}",
        text.stdout
    );

    let out = sb.join("out");
    sb.run_ok(&[
        "restore",
        "web",
        "--snapshot",
        &short,
        "--to",
        out.to_str().unwrap(),
    ]);
    assert_same_tree(&dir, &under(&out, &dir));
    // In place needs a manifest to know the original paths: refused, nothing written.
    let refused = sb.run(&["restore", "web", "--snapshot", &short, "--yes"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(!sb.join("elsewhere").exists());
    sb.run_ok(&["verify", "--read-data"]);
}

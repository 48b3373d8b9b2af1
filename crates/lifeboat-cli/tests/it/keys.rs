//! `lifeboat key`: restic-format keys. restic opens the repository with an added key and no
//! longer with a removed one; the current key stays; `passwd` leaves only the new password
//! working; no password shows in output or the audit log.

use std::{fs, path::Path};

use crate::util::{PASSWORD, PASSWORD_ENV, Sandbox, toml_path};

const NEW: &str = "added-key-password-9d1e";
const NEWER: &str = "rotated-key-password-77ab";

/// restic on `repo` with `password` instead of the test one.
fn restic_with(repo: &Path, password: &str) -> std::process::Output {
    std::process::Command::new("restic")
        .arg("-r")
        .arg(repo)
        .args(["--no-cache", "snapshots", "--json"])
        .env("RESTIC_PASSWORD", password)
        .env_remove("RESTIC_REPOSITORY")
        .output()
        .expect("run restic (apt-get install restic)")
}

/// A plan with one files asset and its repository created.
fn initialized() -> Sandbox {
    let sb = Sandbox::new();
    let data = sb.join("data.txt");
    fs::write(&data, "x").unwrap();
    sb.write_plan(&format!(
        "[assets.data]\ntype = \"files\"\npaths = [{}]\n",
        toml_path(&data)
    ));
    sb.run_ok(&["init"]);
    sb
}

fn keys(sb: &Sandbox) -> Vec<serde_json::Value> {
    sb.run_ok(&["--json", "key", "list"])
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn restic_opens_the_repository_with_an_added_key_and_not_a_removed_one() {
    let sb = initialized();
    sb.run_ok(&["backup"]);
    let first = keys(&sb);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["current"], true);

    let file = sb.join("new-password");
    fs::write(&file, format!("{NEW}\n")).unwrap();
    let added = sb
        .run_ok(&[
            "--json",
            "key",
            "add",
            "--new-password-file",
            file.to_str().unwrap(),
        ])
        .json();
    let id = added["added"].as_str().unwrap().to_owned();
    let listed = keys(&sb);
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let new = listed.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(new["current"], false);
    assert!(
        new["username"].is_string() && new["hostname"].is_string(),
        "{new:#}"
    );
    assert!(
        restic_with(&sb.repo(), NEW).status.success(),
        "restic opens with the new key"
    );

    // The current key cannot go; the new one can, and restic no longer opens with it.
    let current = first[0]["id"].as_str().unwrap();
    let refused = sb.run(&["key", "remove", &current[..8]]).expect_code(1);
    assert!(
        refused
            .stderr
            .contains("the one this plan opens the repository with"),
        "{}",
        refused.stderr
    );
    sb.run_ok(&["key", "remove", &id[..8]]);
    assert_eq!(keys(&sb).len(), 1);
    let gone = restic_with(&sb.repo(), NEW);
    assert!(!gone.status.success(), "restic refuses a removed key");

    let audit = fs::read_to_string(sb.join(".lifeboat/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"key add\"") && audit.contains(&format!("key remove {}", &id[..8])),
        "{audit}"
    );
    assert!(!audit.contains(NEW), "{audit}");
}

#[test]
fn passwd_leaves_only_the_new_password_working() {
    let sb = initialized();
    let file = sb.join("newer");
    fs::write(&file, NEWER).unwrap();
    let run = sb.run_ok(&[
        "key",
        "passwd",
        "--new-password-file",
        file.to_str().unwrap(),
    ]);
    assert!(
        run.stdout.contains(&format!("password-env {PASSWORD_ENV}")),
        "it says where the plan reads the password: {}",
        run.stdout
    );
    assert!(!run.stdout.contains(NEWER) && !run.stderr.contains(NEWER));
    assert!(restic_with(&sb.repo(), NEWER).status.success());
    assert!(
        !restic_with(&sb.repo(), PASSWORD).status.success(),
        "the old key is gone"
    );
    // The plan still gives the old password: Lifeboat says the password is wrong (exit 12).
    sb.run(&["snapshots"]).expect_code(12);
    let ok = sb
        .cmd(&["--json", "key", "list"])
        .env(PASSWORD_ENV, NEWER)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
}

#[test]
fn a_new_password_never_comes_from_a_pipe_without_a_file() {
    let sb = initialized();
    let run = sb.run(&["key", "add"]).expect_code(1);
    assert!(
        run.stderr.contains("stdin is not a terminal"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--new-password-file"), "{}", run.stderr);
    assert_eq!(keys(&sb).len(), 1);
}

/// The password from a command, as escrow tools give it (`pass show`, `op read`, `vault kv
/// get`, `systemd-creds cat`): here a command reading a file. restic opens what Lifeboat made
/// with that file's content; a failing command names the repository and says why, and the
/// password is in no output.
#[test]
fn a_password_command_gives_the_repository_password() {
    let sb = Sandbox::new();
    let secret = "escrowed-password-4f2a";
    let file = sb.join("escrow.txt");
    fs::write(&file, format!("{secret}\n")).unwrap();
    let data = sb.join("data.txt");
    fs::write(&data, "x").unwrap();
    let plan = |command: &str| {
        format!(
            "version = 1\n[plan]\nname = \"it\"\n\n[repositories.main]\nurl = {}\npassword-command = {}\n\n\
             [assets.data]\ntype = \"files\"\npaths = [{}]\n",
            toml_path(&sb.repo()),
            crate::util::toml_str(command),
            toml_path(&data),
        )
    };
    sb.write_raw_plan(&plan(&format!("cat {}", file.display())));
    let init = sb.run_ok(&["init"]);
    let backup = sb.run_ok(&["backup"]);
    let opened = restic_with(&sb.repo(), secret);
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    let snaps: serde_json::Value = serde_json::from_slice(&opened.stdout).unwrap();
    assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{snaps}");

    sb.write_raw_plan(&plan("echo 'vault: permission denied' >&2; exit 2"));
    let failed = sb.run(&["snapshots"]);
    assert_ne!(failed.code, 0);
    assert!(
        failed.stderr.contains("repository main"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("permission denied"),
        "{}",
        failed.stderr
    );
    for out in [
        &init.stdout,
        &init.stderr,
        &backup.stdout,
        &backup.stderr,
        &failed.stderr,
    ] {
        assert!(!out.contains(secret), "the password was printed: {out}");
    }
}

//! Bad input: each is one clear message, the right exit code, and nothing written.

use std::fs;

use crate::util::{PASSWORD_ENV, Run, Sandbox, listing, toml_path};

/// Exit code, stdout and stderr with the temp dir shown as `[TMP]`, for snapshots.
fn report(sb: &Sandbox, run: &Run) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        run.code,
        sb.filter(&run.stdout),
        sb.filter(&run.stderr)
    )
}

/// A plan with one files asset over `<tmp>/src` (created) and `extra` appended to the asset.
fn plan_with(sb: &Sandbox, extra: &str) {
    let src = sb.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), "a\n").unwrap();
    sb.write_plan(&format!(
        "[assets.web]\ntype = \"files\"\npaths = [{}]\n{extra}",
        toml_path(&src)
    ));
}

#[track_caller]
fn assert_no_repository(sb: &Sandbox) {
    assert!(
        !sb.repo().exists(),
        "a repository was written: {:?}",
        listing(&sb.repo())
    );
}

#[test]
fn malformed_toml_names_file_and_line() {
    let sb = Sandbox::new();
    sb.write_raw_plan("version = 1\n\n[plan\nname = \"it\"\n");
    let run = sb.run(&["init"]);
    insta::assert_snapshot!(report(&sb, &run), @r#"
exit: 1
--- stdout
--- stderr
error: [TMP]/lifeboat.toml:3:6: invalid TOML: unclosed table, expected `]`
"#);
    assert!(run.stderr.contains("lifeboat.toml:3:"), "{}", run.stderr);
    assert_no_repository(&sb);
}

#[test]
fn unknown_key_suggests_the_known_one() {
    let sb = Sandbox::new();
    plan_with(&sb, "retention = { dayly = 7 }\n");
    let run = sb.run(&["init"]);
    insta::assert_snapshot!(report(&sb, &run), @r#"
exit: 1
--- stdout
--- stderr
error: [TMP]/lifeboat.toml:13:15: assets.web.retention.dayly: unknown key, did you mean daily?
"#);
    assert!(run.stderr.contains("did you mean daily"), "{}", run.stderr);
    assert_no_repository(&sb);
}

#[test]
fn clear_text_password_is_refused_and_never_printed() {
    const SECRET: &str = "Qx7-clear-text-in-the-plan";
    let sb = Sandbox::new();
    let src = sb.join("src");
    fs::create_dir_all(&src).unwrap();
    sb.write_raw_plan(&format!(
        "version = 1\n\n[plan]\nname = \"it\"\n\n[repositories.main]\nurl = {}\npassword = \"{SECRET}\"\n\n[assets.web]\ntype = \"files\"\npaths = [{}]\n",
        toml_path(&sb.repo()),
        toml_path(&src),
    ));
    let run = sb.run(&["init"]);
    insta::assert_snapshot!(report(&sb, &run), @r#"
exit: 1
--- stdout
--- stderr
error: [TMP]/lifeboat.toml:8:1: repositories.main.password: a password may not be written in the plan file
  hint: use password-env = "LIFEBOAT_PASSWORD", password-file or password-command
"#);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    let json = sb.run(&["--json", "backup"]);
    assert_eq!(json.code, 1);
    assert!(json.json()["error"].is_string(), "{}", json.stdout);
    for out in [&run.stdout, &run.stderr, &json.stdout, &json.stderr] {
        assert!(!out.contains("Qx7"), "the password was printed: {out}");
    }
    assert_no_repository(&sb);
}

#[test]
fn missing_password_variable_is_named() {
    let sb = Sandbox::new();
    plan_with(&sb, "");
    let run = Run::from(sb.cmd(&["init"]).env_remove(PASSWORD_ENV).output().unwrap());
    insta::assert_snapshot!(report(&sb, &run), @r#"
exit: 1
--- stdout
--- stderr
error: read password of repository main: environment variable LB_TEST_PW is not set
  hint: export LB_TEST_PW=... before running Lifeboat
"#);
    assert!(run.stderr.contains(PASSWORD_ENV), "{}", run.stderr);
    assert_no_repository(&sb);

    // Same for an existing repository.
    sb.run_ok(&["init"]);
    let before = listing(&sb.repo());
    let run = Run::from(
        sb.cmd(&["backup"])
            .env_remove(PASSWORD_ENV)
            .output()
            .unwrap(),
    )
    .expect_code(1);
    assert!(run.stderr.contains(PASSWORD_ENV), "{}", run.stderr);
    assert_eq!(
        listing(&sb.repo()),
        before,
        "a backup without password wrote"
    );
}

#[test]
fn wrong_password_exits_12_and_writes_nothing() {
    let sb = Sandbox::new();
    plan_with(&sb, "");
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    let before = listing(&sb.repo());

    let wrong = |args: &[&str]| {
        Run::from(
            sb.cmd(args)
                .env(PASSWORD_ENV, "not-the-password")
                .output()
                .unwrap(),
        )
    };
    let run = wrong(&["backup"]);
    insta::assert_snapshot!(report(&sb, &run), @r#"
exit: 12
--- stdout
--- stderr
error: open repository main at [TMP]/repo: wrong password
  hint: check the password source named in the plan (password-env, password-file or password-command)
"#);
    assert_eq!(run.code, 12);
    for args in [&["snapshots"][..], &["verify"], &["forget"], &["prune"]] {
        let run = wrong(args);
        assert_eq!(run.code, 12, "{args:?}: {run:?}");
    }
    let json = wrong(&["--json", "snapshots"]);
    assert_eq!(json.code, 12);
    assert_eq!(json.json()["exit-code"], 12, "{}", json.stdout);
    assert_eq!(listing(&sb.repo()), before, "a wrong password wrote");
}

#[test]
fn missing_repository_exits_10_with_init_hint() {
    let sb = Sandbox::new();
    plan_with(&sb, "");
    let run = sb.run(&["backup"]);
    insta::assert_snapshot!(report(&sb, &run), @r#"
exit: 10
--- stdout
--- stderr
error: open repository main at [TMP]/repo: no repository there
  hint: run `lifeboat init` to create it, or check the plan's url
"#);
    assert_eq!(run.code, 10);
    assert!(run.stderr.contains("lifeboat init"), "{}", run.stderr);
    for args in [
        &["snapshots"][..],
        &["verify"],
        &["status"],
        &["dump", "web"],
    ] {
        let run = sb.run(args);
        assert_eq!(run.code, 10, "{args:?}: {run:?}");
    }
    assert_no_repository(&sb);
}

#[test]
fn init_twice_is_refused() {
    let sb = Sandbox::new();
    plan_with(&sb, "");
    sb.run_ok(&["init"]);
    let before = listing(&sb.repo());
    let run = sb.run(&["init"]);
    insta::assert_snapshot!(report(&sb, &run), @r#"
exit: 1
--- stdout
--- stderr
error: init repository main at [TMP]/repo: a repository already exists there
  hint: use it as it is, or point the plan at an empty location
"#);
    assert_eq!(run.code, 1);
    assert_eq!(listing(&sb.repo()), before, "a second init wrote");
    sb.run_ok(&["snapshots"]);
}

#[test]
fn missing_source_path_names_asset_and_path() {
    let sb = Sandbox::new();
    let gone = sb.join("no-such-dir");
    sb.write_plan(&format!(
        "[assets.web]\ntype = \"files\"\npaths = [{}]\n",
        toml_path(&gone)
    ));
    sb.run_ok(&["init"]);
    let before = listing(&sb.repo());
    let run = sb.run(&["backup"]);
    insta::assert_snapshot!(report(&sb, &run), @r#"
exit: 1
--- stdout
web              FAILED   read asset web: [TMP]/no-such-dir: No such file or directory (os error 2)
                          hint: fix assets.web.paths in the plan, or create the path
--- stderr
"#);
    assert_eq!(run.code, 1);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("web"), "{all}");
    assert!(all.contains(&gone.display().to_string()), "{all}");
    assert!(sb.snapshots().is_empty());
    assert_eq!(listing(&sb.repo()), before, "a failed backup wrote");
}

#[test]
fn unknown_asset_lists_the_plans_assets() {
    let sb = Sandbox::new();
    plan_with(
        &sb,
        "\n[assets.vault]\ntype = \"command\"\nbackup = \"echo v\"\n",
    );
    sb.run_ok(&["init"]);
    let before = listing(&sb.repo());
    let run = sb.run(&["backup", "nope"]);
    insta::assert_snapshot!(report(&sb, &run), @r#"
exit: 1
--- stdout
--- stderr
error: unknown asset nope
  hint: the plan has: web, vault
"#);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("web, vault"), "{}", run.stderr);
    // Named with a known one, nothing runs either.
    let run = sb.run(&["backup", "web", "nope"]).expect_code(1);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    for args in [
        &["restore", "nope", "--dry-run"][..],
        &["dump", "nope"],
        &["snapshots", "--asset", "nope"],
    ] {
        let run = sb.run(args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("web, vault"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(listing(&sb.repo()), before, "an unknown asset wrote");
}

//! `examples/quickstart.toml` as shipped, run in a copy: the embedded default repository.

use std::{fs, os::unix::fs::PermissionsExt, path::Path};

use crate::util::{Run, Sandbox, assert_same_tree, under};

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn quickstart_example_uses_the_embedded_default() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let sb = Sandbox::new();
    fs::copy(examples.join("quickstart.toml"), sb.plan_path()).unwrap();
    copy_tree(
        &examples.join("quickstart-data"),
        &sb.join("quickstart-data"),
    );
    let password = sb.join(".lifeboat/password");

    // No repository yet: 10, and the hint says how to make one.
    let run = sb.run(&["backup"]);
    assert_eq!(run.code, 10, "{run:?}");
    assert!(run.stderr.contains("lifeboat init"), "{}", run.stderr);
    // Only the audit log records the attempt: no password, no repository.
    assert!(!password.exists(), "a failed backup wrote a password");
    assert!(
        !sb.join(".lifeboat/repo").exists(),
        "a failed backup wrote a repository"
    );

    let init = sb.run_ok(&["init"]);
    assert!(init.stdout.contains("KEEP A COPY"), "{}", init.stdout);
    assert!(
        init.stdout.contains(&password.display().to_string()),
        "{}",
        init.stdout
    );
    let mode = fs::metadata(&password).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "password file mode {mode:o}");
    assert_eq!(fs::read_to_string(&password).unwrap().trim().len(), 64);
    assert!(sb.join(".lifeboat/repo/config").is_file());

    // A second init keeps the password and the repository.
    let before = fs::read(&password).unwrap();
    let again = sb.run(&["init"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert_eq!(fs::read(&password).unwrap(), before);

    let backup = sb.run_ok(&["--json", "backup"]).json();
    let assets = backup["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 3, "{backup:#}");
    assert!(assets.iter().all(|a| a["ok"] == true), "{backup:#}");
    let status = Run::from(sb.cmd(&["--json", "status"]).output().unwrap()).expect_code(0);
    assert!(
        status
            .json()
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["breach"] == false),
        "{}",
        status.stdout
    );
    sb.run_ok(&["verify", "--read-data"]);

    let out = sb.join("out");
    sb.run_ok(&["restore", "site", "--to", out.to_str().unwrap()]);
    let site = sb.join("quickstart-data/site");
    assert_same_tree(&site, &under(&out, &site));
    let env = sb.join("out-env");
    sb.run_ok(&["restore", "env", "--to", env.to_str().unwrap()]);
    let redacted = fs::read_to_string(under(&env, &sb.join("quickstart-data/app.env"))).unwrap();
    assert!(redacted.contains("API_KEY=<redacted>"), "{redacted}");
    assert!(!redacted.contains("sk_test_123"), "{redacted}");
    let inventory = sb.run_ok(&["dump", "inventory"]);
    assert!(
        inventory.stdout.contains("index.html"),
        "{}",
        inventory.stdout
    );
}

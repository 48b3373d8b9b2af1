//! Files assets: back up, restore elsewhere and in place, byte for byte; `.env` redaction.

use std::fs;

use lifeboat_testing::{compare_trees, tree_digest, write_fixture_tree, write_large_file};

use crate::util::{FILE_MTIMES, Sandbox, assert_same_tree, restic, tags, toml_path, under};

/// Over 100 MiB, so that the file spans many chunks and packs.
const LARGE: u64 = 105 * 1024 * 1024;

fn files_plan(sb: &Sandbox, src: &std::path::Path) {
    sb.write_plan(&format!(
        "[assets.web]\ntype = \"files\"\npaths = [{}]\n",
        toml_path(src)
    ));
}

#[test]
fn files_round_trip_byte_for_byte() {
    let sb = Sandbox::new();
    let src = sb.join("src");
    write_fixture_tree(&src);
    write_large_file(&src.join("large.bin"), LARGE, 42);
    files_plan(&sb, &src);

    sb.run_ok(&["init"]);
    let backup = sb.run_ok(&["--json", "backup"]).json();
    let asset = &backup["assets"][0];
    assert_eq!(asset["asset"], "web", "{backup:#}");
    assert_eq!(asset["ok"], true, "{backup:#}");
    assert_eq!(asset["error"], serde_json::Value::Null, "{backup:#}");
    let files = tree_digest(&src)
        .values()
        .filter(|e| matches!(e.kind, lifeboat_testing::EntryKind::File { .. }))
        .count();
    assert_eq!(asset["files"], files, "{backup:#}");
    let id = asset["snapshot"].as_str().expect("a snapshot id");
    assert!(asset["bytes"].as_u64().unwrap() >= LARGE, "{backup:#}");

    let out = sb.join("out");
    let restore = sb.run_ok(&["restore", "web", "--to", out.to_str().unwrap()]);
    assert!(restore.stdout.contains(&id[..8]), "{}", restore.stdout);
    assert_same_tree(&src, &under(&out, &src));
    // Nothing but the original path under the target.
    let top: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(top.len(), 1, "{top:?}");
}

#[test]
fn restore_in_place_needs_yes_and_takes_a_safety_snapshot() {
    let sb = Sandbox::new();
    let src = sb.join("src");
    write_fixture_tree(&src);
    files_plan(&sb, &src);
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    let original = tree_digest(&src);

    // Damage the target: change one file, delete one, add one.
    fs::write(src.join("hello.txt"), "changed after the backup\n").unwrap();
    fs::remove_file(src.join("old.txt")).unwrap();
    fs::remove_dir_all(src.join("nested")).unwrap();
    fs::write(src.join("new.txt"), "new after the backup\n").unwrap();
    let damaged = tree_digest(&src);

    let refused = sb.run(&["restore", "web"]).expect_code(1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("restore asset web"),
        "{}",
        refused.stderr
    );
    compare_trees(&damaged, &tree_digest(&src), FILE_MTIMES)
        .unwrap_or_else(|d| panic!("a refused restore changed the target: {d}"));
    assert_eq!(
        sb.snapshots().len(),
        1,
        "a refused restore wrote a snapshot"
    );

    let dry = sb.run_ok(&["restore", "web", "--dry-run"]);
    assert!(dry.stdout.contains("would"), "{}", dry.stdout);
    assert!(dry.stdout.contains("safety snapshot"), "{}", dry.stdout);
    compare_trees(&damaged, &tree_digest(&src), FILE_MTIMES)
        .unwrap_or_else(|d| panic!("a dry run changed the target: {d}"));
    assert_eq!(sb.snapshots().len(), 1, "a dry run wrote a snapshot");

    let done = sb.run_ok(&["--json", "restore", "web", "--yes"]).json();
    compare_trees(&original, &tree_digest(&src), FILE_MTIMES)
        .unwrap_or_else(|d| panic!("restore --yes did not bring the tree back: {d}"));
    let safety_id = done["safety_snapshot"]
        .as_str()
        .unwrap_or_else(|| panic!("no safety snapshot in {done:#}"));
    // No staging directory left beside the target.
    let beside: Vec<_> = fs::read_dir(sb.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // (`.lifeboat` itself holds the catalog and the audit log.)
        .filter(|n| n.starts_with(".lifeboat-"))
        .collect();
    assert!(beside.is_empty(), "left behind: {beside:?}");

    let snaps = sb.snapshots();
    let safety: Vec<_> = snaps
        .iter()
        .filter(|s| tags(s).contains(&"safety"))
        .collect();
    assert_eq!(safety.len(), 1, "{snaps:#?}");
    assert_eq!(safety[0]["id"], safety_id);
    assert_eq!(safety[0]["asset"], "web");

    // The safety snapshot holds the damaged state.
    let undo = sb.join("undo");
    sb.run_ok(&[
        "restore",
        "web",
        "--snapshot",
        &safety_id[..8],
        "--to",
        undo.to_str().unwrap(),
    ]);
    let undone = under(&undo, &src);
    assert_eq!(
        fs::read_to_string(undone.join("hello.txt")).unwrap(),
        "changed after the backup\n"
    );
    assert!(undone.join("new.txt").exists());
    assert!(!undone.join("old.txt").exists());
    compare_trees(&damaged, &tree_digest(&undone), FILE_MTIMES)
        .unwrap_or_else(|d| panic!("safety snapshot differs from the damaged tree: {d}"));

    // `latest` still means the regular snapshot, not the safety one.
    let again = sb.join("again");
    sb.run_ok(&["restore", "web", "--to", again.to_str().unwrap()]);
    compare_trees(&original, &tree_digest(&under(&again, &src)), FILE_MTIMES)
        .unwrap_or_else(|d| panic!("latest restored the safety snapshot: {d}"));
}

#[test]
fn redacted_env_keeps_keys_and_never_stores_values() {
    let sb = Sandbox::new();
    let env = sb.join("app/.env");
    fs::create_dir_all(env.parent().unwrap()).unwrap();
    fs::write(
        &env,
        "# database\nDB_PASSWORD=hunter2\nexport API_TOKEN='hunter2-token'\n\nEMPTY=\n",
    )
    .unwrap();
    sb.write_plan(&format!(
        "[assets.env]\ntype = \"files\"\npaths = [{}]\nredact = \"values\"\n",
        toml_path(&env)
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);

    let out = sb.join("out");
    sb.run_ok(&["restore", "env", "--to", out.to_str().unwrap()]);
    let restored = fs::read_to_string(under(&out, &env)).unwrap();
    assert_eq!(
        restored,
        "# database\nDB_PASSWORD=<redacted>\nexport API_TOKEN=<redacted>\n\nEMPTY=<redacted>\n"
    );

    // What the repository holds, read with restic rather than through Lifeboat.
    let in_repo = format!("/env/files{}", env.display());
    let stored = restic(&sb.repo(), &["dump", "latest", &in_repo]).expect_code(0);
    assert_eq!(stored.stdout, restored);
    let listed = restic(&sb.repo(), &["snapshots", "--json"]).expect_code(0);
    assert!(!listed.stdout.contains("hunter2"), "{}", listed.stdout);
}

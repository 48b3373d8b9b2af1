//! Command assets: stdout is the artifact; a failing command leaves no snapshot.

use std::fs;

use lifeboat_testing::write_large_file;

use crate::util::{Sandbox, restic, toml_path, toml_str};

/// Not a multiple of any chunk or block size.
const ARTIFACT: u64 = 3_000_017;

#[test]
fn command_artifact_dumps_and_restores_byte_for_byte() {
    let sb = Sandbox::new();
    let expected = sb.join("expected.bin");
    write_large_file(&expected, ARTIFACT, 7);
    let restored = sb.join("restored.bin");
    sb.write_plan(&format!(
        "[assets.vault]\ntype = \"command\"\nbackup = {}\nrestore = {}\nfilename = \"vault.snap\"\n",
        toml_str(&format!("cat {}", expected.display())),
        toml_str(&format!("cat > {}", restored.display())),
    ));
    let want = fs::read(&expected).unwrap();

    sb.run_ok(&["init"]);
    let backup = sb.run_ok(&["--json", "backup"]).json();
    let asset = &backup["assets"][0];
    assert_eq!(asset["ok"], true, "{backup:#}");
    assert_eq!(asset["artifacts"][0]["name"], "vault.snap", "{backup:#}");
    assert_eq!(asset["artifacts"][0]["size"], ARTIFACT, "{backup:#}");

    let dump = sb.run_ok(&["dump", "vault"]);
    assert!(
        dump.stdout_bytes == want,
        "dump differs from the command's output"
    );
    let named = sb.run_ok(&["dump", "vault", "vault.snap"]);
    assert!(
        named.stdout_bytes == want,
        "dump of the named artifact differs"
    );

    let done = sb.run_ok(&["--json", "restore", "vault", "--yes"]).json();
    assert_eq!(done["bytes"], ARTIFACT, "{done:#}");
    assert!(
        fs::read(&restored).unwrap() == want,
        "the restore command got other bytes"
    );
    // Restoring over the original takes a safety snapshot (by running the backup again).
    assert!(done["safety_snapshot"].is_string(), "{done:#}");

    let file = sb.join("out/vault.snap");
    sb.run_ok(&["restore", "vault", "--to", file.to_str().unwrap()]);
    assert!(
        fs::read(&file).unwrap() == want,
        "restore --to wrote other bytes"
    );
    // An existing file is not overwritten without --yes.
    let again = sb.run(&["restore", "vault", "--to", file.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("exists"), "{}", again.stderr);
}

const SEALED: &str = "echo partial; echo 'vault is sealed' >&2; exit 4";

#[test]
fn failing_command_is_an_error_and_leaves_no_snapshot() {
    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.vault]\ntype = \"command\"\nbackup = {}\n",
        toml_str(SEALED)
    ));
    sb.run_ok(&["init"]);

    let text = sb.run(&["backup"]).expect_code(1);
    let all = format!("{}{}", text.stdout, text.stderr);
    assert!(all.contains("vault is sealed"), "{all}");
    assert!(all.contains("status 4"), "{all}");

    let json = sb.run(&["--json", "backup"]).expect_code(1);
    let report = json.json();
    let asset = &report["assets"][0];
    assert_eq!(asset["ok"], false, "{report:#}");
    assert_eq!(asset["snapshot"], serde_json::Value::Null, "{report:#}");
    let error = asset["error"].as_str().expect("an error message");
    assert!(error.contains("vault is sealed"), "{error}");
    assert!(error.contains("status 4"), "{error}");
    assert!(error.contains("vault"), "{error}");

    assert!(sb.snapshots().is_empty(), "{:#?}", sb.snapshots());
    // Not even a partial snapshot that Lifeboat would hide.
    let raw = restic(&sb.repo(), &["snapshots", "--json"]).expect_code(0);
    assert_eq!(raw.json(), serde_json::json!([]), "{}", raw.stdout);
    sb.run_ok(&["verify", "--read-data"]);
}

#[test]
fn one_failing_asset_of_two_is_partial() {
    let sb = Sandbox::new();
    let src = sb.join("site");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("index.html"), "<h1>up</h1>\n").unwrap();
    sb.write_plan(&format!(
        "[assets.vault]\ntype = \"command\"\nbackup = {}\n\n[assets.site]\ntype = \"files\"\npaths = [{}]\n",
        toml_str(SEALED),
        toml_path(&src),
    ));
    sb.run_ok(&["init"]);

    let run = sb.run(&["--json", "backup"]).expect_code(3);
    let report = run.json();
    let by_name = |name: &str| {
        report["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["asset"] == name)
            .unwrap_or_else(|| panic!("no {name} in {report:#}"))
            .clone()
    };
    assert_eq!(by_name("site")["ok"], true, "{report:#}");
    assert_eq!(by_name("vault")["ok"], false, "{report:#}");

    let site = sb.snapshots_of("site");
    assert_eq!(site.len(), 1, "{:#?}", sb.snapshots());
    assert!(sb.snapshots_of("vault").is_empty());
    assert_eq!(site[0]["id"], by_name("site")["snapshot"]);
    sb.run_ok(&["verify", "--read-data"]);
}

//! `verify`: a damaged pack traced to the assets and snapshots it takes down, checksums of every
//! snapshot, the newest snapshot's size against the ones before it, and assets named on the
//! command line.

use std::{fs, os::unix::fs::PermissionsExt, path::PathBuf};

use lifeboat_testing::write_large_file;
use serde_json::Value;

use crate::util::{Run, Sandbox, toml_str};

/// `[assets.NAME]` of type command writing the file `<tmp>/NAME.bin`, then `extra` lines.
fn command_asset(sb: &Sandbox, name: &str, extra: &str) -> String {
    format!(
        "[assets.{name}]\ntype = \"command\"\nbackup = {}\n{extra}\n",
        toml_str(&format!(
            "cat {}",
            sb.join(&format!("{name}.bin")).display()
        ))
    )
}

/// The findings of a `verify --json` report.
fn findings(report: &Value) -> Vec<Value> {
    report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings list: {report:#}"))
        .clone()
}

/// The short ids of `asset`'s snapshots, oldest first.
fn short_ids(sb: &Sandbox, asset: &str) -> Vec<String> {
    sb.snapshots_of(asset)
        .iter()
        .map(|s| s["short_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The largest pack file of the repository.
fn largest_pack(sb: &Sandbox) -> PathBuf {
    let mut packs: Vec<(u64, PathBuf)> = Vec::new();
    for dir in fs::read_dir(sb.repo().join("data")).unwrap() {
        for file in fs::read_dir(dir.unwrap().path()).unwrap() {
            let file = file.unwrap();
            packs.push((file.metadata().unwrap().len(), file.path()));
        }
    }
    packs.sort();
    packs.pop().expect("a pack file").1
}

#[test]
fn a_flipped_byte_names_the_asset_and_snapshots_it_damages() {
    let sb = Sandbox::new();
    // db's output is six times web's, so the largest pack holds db's data.
    write_large_file(&sb.join("db.bin"), 6_000_000, 1);
    write_large_file(&sb.join("web.bin"), 1_000_000, 2);
    sb.write_plan(&format!(
        "{}{}",
        command_asset(&sb, "db", ""),
        command_asset(&sb, "web", "")
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    // The same output again: deduplicated, so the second snapshot uses the same pack.
    sb.run_ok(&["backup", "db"]);
    let db = short_ids(&sb, "db");
    let web = short_ids(&sb, "web");
    assert_eq!((db.len(), web.len()), (2, 1));

    let clean = sb.run_ok(&["--json", "verify", "--read-data"]).json();
    assert_eq!(findings(&clean), Vec::<Value>::new(), "{clean:#}");
    // Every snapshot's artifact, not only the newest of each asset.
    assert_eq!(clean["artifacts_verified"], 3, "{clean:#}");
    assert_eq!(clean["artifact_bytes_read"], 13_000_000, "{clean:#}");

    let pack = largest_pack(&sb);
    let pack_id = pack.file_name().unwrap().to_str().unwrap().to_owned();
    // Pack files are written read-only.
    fs::set_permissions(&pack, fs::Permissions::from_mode(0o600)).unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&pack, bytes).unwrap();

    let damaged = sb
        .run(&["--json", "verify", "--read-data"])
        .expect_code(1)
        .json();
    let found = findings(&damaged);
    let pack_findings: Vec<&Value> = found
        .iter()
        .filter(|f| f["kind"] == "pack-damaged")
        .collect();
    let named: Vec<(&str, &str)> = pack_findings
        .iter()
        .map(|f| {
            (
                f["asset"].as_str().unwrap(),
                f["snapshot"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [("db", db[0].as_str()), ("db", db[1].as_str())],
        "{damaged:#}"
    );
    for f in &pack_findings {
        assert_eq!(f["pack"], pack_id.as_str(), "{f:#}");
        assert_eq!(f["level"], "error", "{f:#}");
    }
    assert!(
        found.iter().all(|f| f["asset"] != "web"),
        "web's data is intact: {damaged:#}"
    );
    // The artifacts that use the pack cannot be read back either; web's still matches.
    let unreadable: Vec<&str> = found
        .iter()
        .filter(|f| f["kind"] == "artifact-unreadable")
        .map(|f| f["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(unreadable, [db[0].as_str(), db[1].as_str()], "{damaged:#}");
    assert_eq!(damaged["artifacts_verified"], 1, "{damaged:#}");

    let text = sb.run(&["verify", "--read-data"]).expect_code(1);
    for id in &db {
        let line = format!(
            "error: asset db, snapshot {id}: pack {}: data does not match its hash",
            &pack_id[..8]
        );
        assert!(text.stdout.contains(&line), "{line}\n{}", text.stdout);
    }
    assert!(!text.stdout.contains("asset web"), "{}", text.stdout);

    // 100% is all of it: the same findings.
    let all = sb
        .run(&["--json", "verify", "--read-data=100%"])
        .expect_code(1)
        .json();
    assert_eq!(all["read_data"], "all", "{all:#}");
    assert_eq!(findings(&all), found);
}

#[test]
fn read_data_takes_a_percentage_of_more_than_0_up_to_100() {
    let sb = Sandbox::new();
    sb.write_plan(&command_asset(&sb, "db", ""));
    for (value, reason) in [
        (
            "0%",
            "0% is out of range: give more than 0% and at most 100%",
        ),
        (
            "150%",
            "150% is out of range: give more than 0% and at most 100%",
        ),
        ("abc", "expected a percentage such as 10%, not \"abc\""),
        ("10", "expected a percentage such as 10%, not \"10\""),
    ] {
        let run: Run = sb.run(&["verify", &format!("--read-data={value}")]);
        assert_eq!(run.code, 2, "{value}: {run:?}");
        assert!(
            run.stderr
                .contains(&format!("invalid value '{value}' for '--read-data")),
            "{value}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(reason), "{value}: {}", run.stderr);
    }
    // Nothing was opened: the plan's repository does not even exist.
    assert!(!sb.repo().exists());

    // A share of the packs on a real repository.
    write_large_file(&sb.join("db.bin"), 100_000, 3);
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    let some = sb.run_ok(&["--json", "verify", "--read-data=10%"]).json();
    assert_eq!(some["read_data"], "10%", "{some:#}");
    // Artifacts are read in full only with all data.
    assert_eq!(some["artifacts_verified"], 0, "{some:#}");

    // Some packs really are read: with a byte flipped in every data pack, any share of them
    // finds damage.
    let packs = data_packs(&sb.repo());
    assert!(packs.len() >= 2, "{packs:?}");
    for pack in &packs {
        flip_byte(pack, 200);
    }
    let damaged = sb
        .run(&["--json", "verify", "--read-data=10%"])
        .expect_code(1);
    assert!(
        !damaged.json()["errors"].as_array().unwrap().is_empty(),
        "{}",
        damaged.stdout
    );
}

/// The pack files under `repo/data`.
fn data_packs(repo: &std::path::Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect()
}

/// Inverts the byte at `offset` of `path`.
fn flip_byte(path: &std::path::Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_dump_ten_times_smaller_than_usual_is_an_anomaly() {
    let sb = Sandbox::new();
    sb.write_plan(&command_asset(&sb, "db", ""));
    sb.run_ok(&["init"]);
    for seed in 1..=3 {
        write_large_file(&sb.join("db.bin"), 1_000_000, seed);
        sb.run_ok(&["backup"]);
    }
    let steady = sb.run_ok(&["--json", "verify"]).json();
    assert_eq!(findings(&steady), Vec::<Value>::new(), "{steady:#}");

    write_large_file(&sb.join("db.bin"), 100_000, 4);
    sb.run_ok(&["backup"]);
    let newest = short_ids(&sb, "db").pop().unwrap();

    let report = sb.run(&["--json", "verify"]).expect_code(1).json();
    let [finding] = findings(&report)
        .try_into()
        .unwrap_or_else(|f: Vec<Value>| {
            panic!("expected one finding, got {f:#?}");
        });
    assert_eq!(finding["kind"], "size-anomaly", "{finding:#}");
    assert_eq!(finding["asset"], "db", "{finding:#}");
    assert_eq!(finding["snapshot"], newest.as_str(), "{finding:#}");
    assert_eq!(finding["bytes"], 100_000, "{finding:#}");
    assert_eq!(finding["average_bytes"], 1_000_000, "{finding:#}");

    let text = sb.run(&["verify"]).expect_code(1);
    let line = format!(
        "error: asset db, snapshot {newest}: size 97.7 KiB is 10% of the average of the 3 snapshots before it (976.6 KiB), below the 50% threshold"
    );
    assert!(text.stdout.contains(&line), "{line}\n{}", text.stdout);
    assert!(
        text.stdout
            .contains("hint: if the change is expected, widen assets.db.anomaly in the plan"),
        "{}",
        text.stdout
    );

    // A plan that expects such swings accepts it.
    sb.write_plan(&command_asset(&sb, "db", "anomaly = { below = 0.05 }"));
    let accepted = sb.run_ok(&["--json", "verify"]).json();
    assert_eq!(findings(&accepted), Vec::<Value>::new(), "{accepted:#}");
}

#[test]
fn verify_examines_only_the_assets_named() {
    let sb = Sandbox::new();
    write_large_file(&sb.join("web.bin"), 50_000, 1);
    sb.write_plan(&format!(
        "{}{}",
        command_asset(&sb, "web", ""),
        command_asset(&sb, "db", "")
    ));
    sb.run_ok(&["init"]);
    for seed in 1..=3 {
        write_large_file(&sb.join("db.bin"), 1_000_000, seed);
        sb.run_ok(&["backup"]);
    }
    // db's newest dump is a tenth of the usual: an anomaly of db only.
    write_large_file(&sb.join("db.bin"), 100_000, 4);
    sb.run_ok(&["backup", "db"]);

    let all = sb.run(&["--json", "verify"]).expect_code(1).json();
    assert_eq!(all["assets"], serde_json::json!(["web", "db"]), "{all:#}");
    assert!(findings(&all).iter().any(|f| f["asset"] == "db"), "{all:#}");

    let web = sb
        .run_ok(&["--json", "verify", "web", "--read-data"])
        .json();
    assert_eq!(web["assets"], serde_json::json!(["web"]), "{web:#}");
    assert_eq!(findings(&web), Vec::<Value>::new(), "{web:#}");
    assert_eq!(web["snapshots_examined"], 3, "{web:#}");
    // web's three artifacts, none of db's four.
    assert_eq!(web["artifacts_verified"], 3, "{web:#}");
    assert_eq!(web["artifact_bytes_read"], 150_000, "{web:#}");

    let db = sb.run(&["--json", "verify", "db"]).expect_code(1).json();
    assert_eq!(db["assets"], serde_json::json!(["db"]), "{db:#}");

    let typo = sb.run(&["verify", "wbe"]).expect_code(1);
    assert!(
        typo.stderr
            .contains("error: unknown asset wbe, did you mean web?"),
        "{}",
        typo.stderr
    );
    assert!(
        typo.stderr.contains("hint: the plan has: web, db"),
        "{}",
        typo.stderr
    );
}

/// `size = { min, max }`: a backup outside the bounds is kept but partial (exit 3) and raises
/// `size-anomaly`; verify reports the same snapshot, with the key to change.
#[test]
fn absolute_size_bounds_flag_the_backup_and_verify() {
    let rx = lifeboat_testing::Receiver::start();
    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "{}\n[notify.hook]\ntype = \"webhook\"\nurl = {}\non = [\"size-anomaly\"]\n",
        command_asset(&sb, "db", "size = { min = \"200KB\", max = \"2MB\" }"),
        toml_str(&rx.url("/hook"))
    ));
    sb.run_ok(&["init"]);
    write_large_file(&sb.join("db.bin"), 1_000_000, 1);
    sb.run_ok(&["backup"]);
    assert!(
        rx.requests("/").is_empty(),
        "within the bounds: {:#?}",
        rx.requests("/")
    );

    write_large_file(&sb.join("db.bin"), 150_000, 2);
    let run = sb.run(&["--json", "backup"]).expect_code(3);
    let asset = &run.json()["assets"][0];
    assert_eq!(asset["ok"], true, "the snapshot is kept: {asset:#}");
    let breach = asset["size_breach"].as_str().expect("a size breach");
    assert_eq!(
        breach,
        "size 146.5 KiB is below the minimum of 195.3 KiB (assets.db.size)"
    );
    let sent = rx.requests("/hook");
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let body = String::from_utf8_lossy(&sent[0].body).into_owned();
    assert!(
        body.contains("size-anomaly") && body.contains(breach),
        "{body}"
    );

    let report = sb.run(&["--json", "verify"]).expect_code(1).json();
    let [finding] = findings(&report)
        .try_into()
        .unwrap_or_else(|f: Vec<Value>| panic!("expected one finding, got {f:#?}"));
    assert_eq!(finding["kind"], "size-anomaly", "{finding:#}");
    assert!(
        finding["message"]
            .as_str()
            .is_some_and(|m| m.ends_with(&format!(": {breach}"))),
        "{finding:#}"
    );
    assert_eq!(
        finding["hint"],
        "if the size is expected, change assets.db.size.min in the plan"
    );

    write_large_file(&sb.join("db.bin"), 3_000_000, 3);
    let over = sb.run(&["--json", "backup"]).expect_code(3).json();
    assert_eq!(
        over["assets"][0]["size_breach"],
        "size 2.9 MiB is above the maximum of 1.9 MiB (assets.db.size)"
    );
}
